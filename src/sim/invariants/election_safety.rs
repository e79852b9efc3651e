//! Election Safety (Raft paper §5.2, Figure 3), in the form openraft 0.9 implements it.
//!
//! The paper: at most one leader per term. openraft 0.9 (without its `single-term-leader` feature, which
//! quorumlab does not use) names a leader by its *leader id*, (term, node id), ordered first by term and then by
//! node id, and a voter may grant a vote to a higher leader id in the same term. So two nodes can lead one term,
//! the higher node id superseding the lower: the partition suite sees it (etcd-2-2-1, cut dc1–dc2, seed 39: term
//! 6 led by dc1-n2, then by dc3-n1, as three candidates tied). That is openraft's rule, not a bug: log ids carry
//! the leader id too, so the two leaders' entries never pass for each other, and log matching and leader
//! completeness still hold.
//!
//! What makes that safe is that a voter's vote only ever moves forward in this order — it never grants a vote to
//! a leader id below one it granted — and keeps it across restarts. That is what this file checks, at every saved
//! vote and every restart (fed from the store, so a vote that lasts less than a metrics update is seen too):
//! a saved vote must be ≥ the node's previous one, and a restarted node must come back with every vote it saved
//! (after a crash) or at least every vote it flushed (after a power loss). A voter that forgets its vote could
//! grant a lower leader id a second majority in one term, and two leaders could then both commit.
//!
//! [`LeadersByTerm`] still records every leader of every term, for reports.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::NodeId;

/// A vote in openraft 0.9's order: (term, voted-for node, committed), compared in that order.
pub type VoteKey = (u64, NodeId, bool);

/// Leaders seen, per term (openraft may elect several in one term, ordered by node id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeadersByTerm(pub BTreeMap<u64, BTreeSet<NodeId>>);

impl LeadersByTerm {
    pub fn observe(&mut self, term: u64, leader: NodeId) {
        self.0.entry(term).or_default().insert(leader);
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElectionSafetyViolation {
    #[error(
        "election safety violated: node {node} saved vote (term {}, for node {}) after (term {}, for node {}): \
         a vote never moves back",
        to.0, to.1, from.0, from.1
    )]
    VoteMovedBack { node: NodeId, from: VoteKey, to: VoteKey },
    #[error(
        "election safety violated: node {node} restarted with {} after it had kept (term {}, for node {}): \
         it forgot its vote and may vote twice",
        to.map_or("no vote".to_string(), |v| format!("(term {}, for node {})", v.0, v.1)),
        from.0, from.1
    )]
    VoteForgotten { node: NodeId, from: VoteKey, to: Option<VoteKey> },
}

/// A newly saved vote must not be below the node's previous one.
pub fn check_vote_moves_forward(
    node: NodeId,
    before: Option<VoteKey>,
    after: VoteKey,
) -> Result<(), ElectionSafetyViolation> {
    match before {
        Some(before) if after < before => Err(ElectionSafetyViolation::VoteMovedBack { node, from: before, to: after }),
        _ => Ok(()),
    }
}

/// A restarted node must come back with at least `kept` (what its disk had to keep).
pub fn check_vote_kept(
    node: NodeId,
    kept: Option<VoteKey>,
    reopened: Option<VoteKey>,
) -> Result<(), ElectionSafetyViolation> {
    match kept {
        Some(kept) if reopened.is_none_or(|v| v < kept) => {
            Err(ElectionSafetyViolation::VoteForgotten { node, from: kept, to: reopened })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn votes_that_move_forward_pass_even_two_leaders_of_one_term_in_node_order() {
        assert_eq!(check_vote_moves_forward(1, None, (1, 1, false)), Ok(()));
        assert_eq!(check_vote_moves_forward(1, Some((1, 1, false)), (1, 1, true)), Ok(()));
        // openraft's rule: a higher node id may take over a term.
        assert_eq!(check_vote_moves_forward(1, Some((6, 2, true)), (6, 5, false)), Ok(()));
        assert_eq!(check_vote_kept(1, Some((6, 5, true)), Some((7, 3, false))), Ok(()));
        assert_eq!(check_vote_kept(1, None, None), Ok(()));
    }

    /// Negative controls: a vote that moves back, or is forgotten across a restart, is caught.
    #[test]
    fn a_vote_that_moves_back_or_is_forgotten_is_caught() {
        let err = check_vote_moves_forward(3, Some((6, 5, false)), (6, 2, false)).unwrap_err();
        assert!(err.to_string().starts_with("election safety violated: node 3"), "{err}");
        let err = check_vote_kept(2, Some((4, 1, true)), Some((3, 1, true))).unwrap_err();
        assert!(err.to_string().contains("forgot its vote"), "{err}");
        assert!(check_vote_kept(2, Some((4, 1, true)), None).is_err());
    }
}
