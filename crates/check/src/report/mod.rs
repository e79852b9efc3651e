//! Rendering a [`Verdict`](crate::Verdict): words for a student, JSON for a program, HTML for the eye.

pub mod html;
pub mod text;
