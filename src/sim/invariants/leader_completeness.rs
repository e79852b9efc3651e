//! Leader Completeness (Raft paper §5.4, Figure 3, proved in §5.4.3): if a log entry is
//! committed in a given term, it is present in the logs of the leaders of all higher terms.
//!
//! Checked when a node saves the committed vote that makes it leader of term T (see
//! [`super::election_safety`]): every entry [`super::log_matching`] has seen committed by a node
//! whose term was below T must be in the new leader's log, unless the leader's log was purged
//! behind a snapshot past it. An entry reported in a term at or above T may have been committed
//! by a later leader, which T's leader need not hold, so it is not checked. Commits that no
//! node reported before the election are not checked either: the check is sound, not complete.

use std::collections::BTreeMap;

use super::log_matching::CommittedEntry;
use crate::sim::observe::NodeLog;
use crate::types::{LogId, NodeId};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaderCompletenessViolation {
    #[error(
        "leader completeness violated: node {leader} became leader of term {term} holding {held:?} at index \
         {index}, where node {committed_by} had committed {committed} in term {reported_in_term} or before"
    )]
    LeaderLacksCommittedEntry {
        leader: NodeId,
        term: u64,
        index: u64,
        committed: LogId,
        committed_by: NodeId,
        reported_in_term: u64,
        held: Option<LogId>,
    },
}

/// Checks the log of `leader`, which just became leader of `term`, against what was committed.
pub fn check_new_leader(
    leader: NodeId,
    term: u64,
    log: &NodeLog,
    committed: &BTreeMap<u64, CommittedEntry>,
) -> Result<(), LeaderCompletenessViolation> {
    for (&index, entry) in committed.range(log.first_index..) {
        if entry.reported_in_term >= term {
            continue;
        }
        let held = log.get(index).map(|(id, _)| *id);
        if held != Some(entry.log_id) {
            return Err(LeaderCompletenessViolation::LeaderLacksCommittedEntry {
                leader,
                term,
                index,
                committed: entry.log_id,
                committed_by: entry.node,
                reported_in_term: entry.reported_in_term,
                held,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
    }

    fn committed(entries: &[(LogId, u64)]) -> BTreeMap<u64, CommittedEntry> {
        entries
            .iter()
            .map(|&(log_id, reported_in_term)| {
                (log_id.index, CommittedEntry { log_id, digest: 0, node: 1, reported_in_term })
            })
            .collect()
    }

    #[test]
    fn a_leader_holding_every_committed_entry_passes() {
        let mut log = NodeLog::default();
        log.append(&[(id(1, 1), 0), (id(1, 2), 0), (id(2, 3), 0)]);
        let c = committed(&[(id(1, 1), 1), (id(1, 2), 2), (id(2, 3), 2), (id(3, 4), 3)]);
        // Index 4 was reported in term 3, not below 3: a later leader's, not required.
        assert_eq!(check_new_leader(2, 3, &log, &c), Ok(()));
        // Purged entries are covered by the leader's snapshot.
        log.purge(id(1, 2));
        assert_eq!(check_new_leader(2, 3, &log, &c), Ok(()));
    }

    /// Negative control: a new leader missing an entry committed in an earlier term.
    #[test]
    fn a_leader_missing_a_committed_entry_is_caught() {
        let mut log = NodeLog::default();
        log.append(&[(id(1, 1), 0)]);
        let c = committed(&[(id(1, 1), 1), (id(1, 2), 1)]);
        let err = check_new_leader(3, 2, &log, &c).unwrap_err();
        assert_eq!(
            err,
            LeaderCompletenessViolation::LeaderLacksCommittedEntry {
                leader: 3,
                term: 2,
                index: 2,
                committed: id(1, 2),
                committed_by: 1,
                reported_in_term: 1,
                held: None,
            }
        );
        assert!(err.to_string().contains("node 3 became leader of term 2"));
    }
}
