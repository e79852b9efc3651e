//! Election Safety (Raft paper §5.2, Figure 3): at most one leader can be elected in a given term.
//!
//! The simulator records every (term, node) at which a node's metrics showed it as leader; two
//! different nodes leading in one term would let both commit, and the log would fork.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::NodeId;

/// Leaders seen, per term.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeadersByTerm(pub BTreeMap<u64, BTreeSet<NodeId>>);

impl LeadersByTerm {
    pub fn observe(&mut self, term: u64, leader: NodeId) {
        self.0.entry(term).or_default().insert(leader);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElectionSafetyViolation {
    #[error("election safety violated: term {term} had {} leaders: {leaders:?}", leaders.len())]
    TwoLeadersInOneTerm { term: u64, leaders: BTreeSet<NodeId> },
}

/// Checks that no term had more than one leader.
pub fn check(seen: &LeadersByTerm) -> Result<(), ElectionSafetyViolation> {
    match seen.0.iter().find(|(_, leaders)| leaders.len() > 1) {
        Some((term, leaders)) => {
            Err(ElectionSafetyViolation::TwoLeadersInOneTerm { term: *term, leaders: leaders.clone() })
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leader_per_term_passes() {
        let mut seen = LeadersByTerm::default();
        seen.observe(1, 1);
        seen.observe(1, 1);
        seen.observe(2, 3);
        assert_eq!(check(&seen), Ok(()));
    }

    /// Negative control: two leaders in one term must be caught.
    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut seen = LeadersByTerm::default();
        seen.observe(1, 1);
        seen.observe(2, 2);
        seen.observe(2, 3);
        let err = check(&seen).unwrap_err();
        assert_eq!(err, ElectionSafetyViolation::TwoLeadersInOneTerm { term: 2, leaders: [2, 3].into() });
        assert!(err.to_string().contains("term 2 had 2 leaders"));
    }
}
