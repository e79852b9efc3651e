//! Election Safety (Raft paper §5.2, Figure 3): at most one leader can be elected in a given term.
//!
//! Fed from the store, at every change: in openraft a vote is committed (`Vote::committed`) only
//! once a leader is established, and every node saves the committed vote of the leader it
//! accepts, the leader first, before it sends a single entry. So every committed vote saved by
//! any node names the leader of its term; two different names for one term mean two leaders,
//! which could both commit, and the log would fork. A leader that lasts less than a metrics
//! update is seen too, as its saved vote is an event, not a sample.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::NodeId;

/// Leaders seen, per term.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeadersByTerm(pub BTreeMap<u64, BTreeSet<NodeId>>);

impl LeadersByTerm {
    pub fn observe(&mut self, term: u64, leader: NodeId) {
        self.0.entry(term).or_default().insert(leader);
    }

    /// Records that `leader` leads `term` and checks that term alone (the incremental check).
    pub fn observe_and_check(&mut self, term: u64, leader: NodeId) -> Result<(), ElectionSafetyViolation> {
        let leaders = self.0.entry(term).or_default();
        if leaders.insert(leader) && leaders.len() > 1 {
            return Err(ElectionSafetyViolation::TwoLeadersInOneTerm { term, leaders: leaders.clone() });
        }
        Ok(())
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

    #[test]
    fn the_incremental_check_catches_the_second_leader_of_a_term() {
        let mut seen = LeadersByTerm::default();
        assert_eq!(seen.observe_and_check(1, 1), Ok(()));
        assert_eq!(seen.observe_and_check(1, 1), Ok(()));
        assert_eq!(seen.observe_and_check(2, 2), Ok(()));
        let err = seen.observe_and_check(1, 3).unwrap_err();
        assert_eq!(err, ElectionSafetyViolation::TwoLeadersInOneTerm { term: 1, leaders: [1, 3].into() });
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
