//! Safety properties checked over what a simulation observed, one file per property.

pub mod availability;
pub mod election_safety;
pub mod linearizable;
