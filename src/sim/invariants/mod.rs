//! Safety properties checked over what a simulation observed, one file per property.

pub mod election_safety;
