//! Log Matching (Raft paper §5.3, Figure 3): if two logs contain an entry with the same index
//! and term, the entries are the same command (and the logs are identical up to it); hence
//! every node that commits an index commits the same entry there.
//!
//! Checked from the store's events, incrementally:
//! - on every append, no other node may hold an entry with the same (term, index) and another
//!   payload digest, and terms never decrease along a node's log. A leader that lost power
//!   before flushing an entry nobody else received may give its log id to another command
//!   (openraft 0.9 restores a node holding a committed vote for itself as leader of the same term;
//!   quorumlab's store now gives such a term up when it restarts, `LogStore::serve`, but this check
//!   does not count on it): no log holds the lost entry, so no log can disagree, and that is not
//!   a violation. If another log does hold it (a leader sends before its flush), they disagree,
//!   and that is one. Nodes that lost power are not compared until they reopen (what they hold
//!   is unknown until then);
//!   the log they reopen with is compared with every other node's as if appended;
//! - on every `save_committed`, the node's newly committed entries (those its log still holds)
//!   must equal what any node committed at those indexes before, and the committed log id must
//!   be the one in its log;
//! - a node never truncates an entry it has committed.
//!
//! The committed entries found here are also what [`super::leader_completeness`] checks new
//! leaders against.

use std::collections::BTreeMap;

use crate::sim::observe::NodeLog;
use crate::store::observe::PayloadDigest;
use crate::types::{LogId, NodeId};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogMatchingViolation {
    #[error(
        "log matching violated: entry (term {term}, index {index}) holds command {first_digest:#x} on node \
         {first_node} but {second_digest:#x} on node {second_node}"
    )]
    SameLogIdDifferentCommand {
        term: u64,
        index: u64,
        first_node: NodeId,
        first_digest: PayloadDigest,
        second_node: NodeId,
        second_digest: PayloadDigest,
    },
    #[error(
        "log matching violated: node {node}'s log has term {later_term} at index {index} after term {earlier_term}"
    )]
    TermWentBackInLog { node: NodeId, index: u64, earlier_term: u64, later_term: u64 },
    #[error(
        "log matching violated: index {index} committed as {first} (digest {first_digest:#x}) by node {first_node} \
         but as {second} (digest {second_digest:#x}) by node {second_node}"
    )]
    CommittedEntriesDiffer {
        index: u64,
        first_node: NodeId,
        first: LogId,
        first_digest: PayloadDigest,
        second_node: NodeId,
        second: LogId,
        second_digest: PayloadDigest,
    },
    #[error("log matching violated: node {node} committed {committed} but its log holds {held:?} there")]
    CommittedIdNotInLog { node: NodeId, committed: LogId, held: Option<LogId> },
    #[error(
        "log matching violated: node {node} truncated its log from index {since}, below its commit index {committed}"
    )]
    TruncatedCommitted { node: NodeId, since: u64, committed: u64 },
}

/// An entry some node committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedEntry {
    pub log_id: LogId,
    pub digest: PayloadDigest,
    /// The first node seen committing it.
    pub node: NodeId,
    /// That node's term when it reported the commit: the entry was committed in this term or
    /// an earlier one.
    pub reported_in_term: u64,
}

/// What log matching remembers across events.
#[derive(Clone, Debug, Default)]
pub struct LogMatching {
    /// Index → the entry committed there.
    pub committed: BTreeMap<u64, CommittedEntry>,
}

impl LogMatching {
    /// Before `entries` are appended to node `node`'s log; `logs` holds every node's.
    pub fn on_append(
        &self,
        node: NodeId,
        logs: &BTreeMap<NodeId, NodeLog>,
        entries: &[(LogId, PayloadDigest)],
    ) -> Result<(), LogMatchingViolation> {
        let empty = NodeLog::default();
        let log = logs.get(&node).unwrap_or(&empty);
        let mut previous =
            entries.first().and_then(|(id, _)| id.index.checked_sub(1)).and_then(|i| log.get(i)).copied();
        for &(log_id, digest) in entries {
            let (term, index) = (log_id.leader_id.term, log_id.index);
            if let Some((prev, _)) = previous {
                if prev.leader_id.term > term {
                    return Err(LogMatchingViolation::TermWentBackInLog {
                        node,
                        index,
                        earlier_term: prev.leader_id.term,
                        later_term: term,
                    });
                }
            }
            for (&other, other_log) in logs {
                if other == node || other_log.lost_power {
                    continue;
                }
                if let Some(&(held, held_digest)) = other_log.get(index) {
                    if held == log_id && held_digest != digest {
                        return Err(LogMatchingViolation::SameLogIdDifferentCommand {
                            term,
                            index,
                            first_node: other,
                            first_digest: held_digest,
                            second_node: node,
                            second_digest: digest,
                        });
                    }
                }
            }
            previous = Some((log_id, digest));
        }
        Ok(())
    }

    /// Before the log of `node` is truncated from `since`.
    pub fn on_truncate(&self, node: NodeId, log: &NodeLog, since: u64) -> Result<(), LogMatchingViolation> {
        match log.committed {
            Some(c) if c.index >= since => {
                Err(LogMatchingViolation::TruncatedCommitted { node, since, committed: c.index })
            }
            _ => Ok(()),
        }
    }

    /// When `node` saves `committed`; `log` is its log (updated by the caller afterwards).
    pub fn on_commit(
        &mut self,
        node: NodeId,
        log: &mut NodeLog,
        committed: Option<LogId>,
    ) -> Result<(), LogMatchingViolation> {
        let Some(committed) = committed else { return Ok(()) };
        if committed.index >= log.first_index {
            let held = log.get(committed.index).map(|(id, _)| *id);
            if held != Some(committed) {
                return Err(LogMatchingViolation::CommittedIdNotInLog { node, committed, held });
            }
        }
        let from = log.commit_checked.map_or(0, |c| c + 1).max(log.first_index);
        let term = log.term();
        for index in from..=committed.index {
            let Some(&(log_id, digest)) = log.get(index) else { break };
            let entry = CommittedEntry { log_id, digest, node, reported_in_term: term };
            let first = *self.committed.entry(index).or_insert(entry);
            if first.log_id != log_id || first.digest != digest {
                return Err(LogMatchingViolation::CommittedEntriesDiffer {
                    index,
                    first_node: first.node,
                    first: first.log_id,
                    first_digest: first.digest,
                    second_node: node,
                    second: log_id,
                    second_digest: digest,
                });
            }
        }
        log.commit_checked = log.commit_checked.max(Some(committed.index));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn id(term: u64, index: u64) -> LogId {
        LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
    }

    fn log_of(entries: &[(LogId, PayloadDigest)]) -> NodeLog {
        let mut log = NodeLog::default();
        log.append(entries);
        log
    }

    #[test]
    fn agreeing_logs_pass() {
        let mut lm = LogMatching::default();
        let entries = [(id(1, 0), 10), (id(1, 1), 11), (id(2, 2), 12)];
        let mut logs = BTreeMap::new();
        for node in 1..=3 {
            lm.on_append(node, &logs, &entries).unwrap();
            logs.insert(node, log_of(&entries));
            let mut log = log_of(&entries);
            lm.on_commit(node, &mut log, Some(id(2, 2))).unwrap();
        }
        assert_eq!(lm.committed.len(), 3);
    }

    /// Negative control: one (term, index), two commands, on two nodes.
    #[test]
    fn one_log_id_with_two_commands_is_caught() {
        let lm = LogMatching::default();
        let mut logs = BTreeMap::new();
        logs.insert(1, log_of(&[(id(1, 1), 10)]));
        let err = lm.on_append(2, &logs, &[(id(1, 1), 99)]).unwrap_err();
        assert!(matches!(
            err,
            LogMatchingViolation::SameLogIdDifferentCommand { index: 1, first_node: 1, second_node: 2, .. }
        ));
        assert!(err.to_string().starts_with("log matching violated"));
        // A log id that only a node which lost power held (it has not restarted) is not compared.
        logs.get_mut(&1).unwrap().lost_power = true;
        assert_eq!(lm.on_append(2, &logs, &[(id(1, 1), 99)]), Ok(()));
        // Nor is a node's own lost entry: re-using a log id nobody holds is no violation.
        let own: BTreeMap<_, _> = [(2, log_of(&[(id(1, 1), 10)]))].into();
        assert_eq!(lm.on_append(2, &own, &[(id(1, 1), 99)]), Ok(()));
    }

    /// Negative control: two nodes commit different entries at one index.
    #[test]
    fn two_nodes_committing_different_entries_are_caught() {
        let mut lm = LogMatching::default();
        let mut a = log_of(&[(id(1, 1), 10), (id(1, 2), 11)]);
        let mut b = log_of(&[(id(1, 1), 10), (id(2, 2), 22)]);
        lm.on_commit(1, &mut a, Some(id(1, 2))).unwrap();
        let err = lm.on_commit(2, &mut b, Some(id(2, 2))).unwrap_err();
        assert!(matches!(
            err,
            LogMatchingViolation::CommittedEntriesDiffer { index: 2, first_node: 1, second_node: 2, .. }
        ));
    }

    /// Negative control: a commit of an id the node's log does not hold, a term going back, a
    /// committed entry truncated.
    #[test]
    fn a_node_contradicting_its_own_log_is_caught() {
        let mut lm = LogMatching::default();
        let mut a = log_of(&[(id(1, 1), 10)]);
        let err = lm.on_commit(1, &mut a, Some(id(2, 1))).unwrap_err();
        assert!(matches!(err, LogMatchingViolation::CommittedIdNotInLog { node: 1, .. }));

        let logs: BTreeMap<_, _> = [(1, log_of(&[(id(3, 1), 10)]))].into();
        let err = lm.on_append(1, &logs, &[(id(2, 2), 20)]).unwrap_err();
        assert!(matches!(
            err,
            LogMatchingViolation::TermWentBackInLog { index: 2, earlier_term: 3, later_term: 2, .. }
        ));

        let mut b = log_of(&[(id(1, 1), 10), (id(1, 2), 11)]);
        b.committed = Some(id(1, 2));
        assert!(matches!(lm.on_truncate(2, &b, 2), Err(LogMatchingViolation::TruncatedCommitted { since: 2, .. })));
        assert_eq!(lm.on_truncate(2, &b, 3), Ok(()));
    }
}
