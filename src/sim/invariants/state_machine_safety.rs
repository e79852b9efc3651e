//! State Machine Safety (Raft paper §5.4.3, Figure 3): if a node has applied a log entry at a
//! given index, no other node ever applies a different entry at that index.
//!
//! Checked from the store's events, incrementally, with what it rests on:
//! - every apply, on any node, at any time (a node that re-applies after a restart included),
//!   must be the entry first applied at that index: same log id, same payload digest;
//! - a node applies in index order without gaps, and only what it has committed;
//! - a node's commit and apply indexes never go back, except across a restart, where they may
//!   restart from what the store kept (openraft re-applies the log from there) but never from
//!   below what was durable at the last flush, nor (after a process crash, which loses nothing)
//!   below what it had.

use std::collections::BTreeMap;

use crate::sim::observe::NodeLog;
use crate::store::observe::PayloadDigest;
use crate::types::{LogId, NodeId};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateMachineSafetyViolation {
    #[error(
        "state machine safety violated: index {index} applied as {first} (client/seq {first_request:?}) on node \
         {first_node} but as {second} (client/seq {second_request:?}) on node {second_node}"
    )]
    DifferentCommandsAtOneIndex {
        index: u64,
        first_node: NodeId,
        first: LogId,
        first_request: Vec<(u64, u64)>,
        second_node: NodeId,
        second: LogId,
        second_request: Vec<(u64, u64)>,
    },
    #[error("state machine safety violated: node {node} applied {got} after {after:?} (expected index {expected})")]
    ApplyOutOfOrder { node: NodeId, after: Option<LogId>, expected: u64, got: LogId },
    #[error("state machine safety violated: node {node} applied {applied} beyond its commit index {committed:?}")]
    AppliedUncommitted { node: NodeId, applied: LogId, committed: Option<LogId> },
    #[error(
        "state machine safety violated: node {node}'s {what} index went back from {from:?} to {to:?} while running"
    )]
    WentBack { node: NodeId, what: &'static str, from: Option<LogId>, to: Option<LogId> },
    #[error(
        "state machine safety violated: node {node} reopened with {what} {reopened:?}, below the {durable:?} it had \
         made durable{}",
        if *.lost_power { " before losing power" } else { " (a process crash loses nothing)" }
    )]
    LostDurableState {
        node: NodeId,
        what: &'static str,
        durable: Option<LogId>,
        reopened: Option<LogId>,
        lost_power: bool,
    },
}

/// An entry as first applied at its index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedEntry {
    pub log_id: LogId,
    pub digest: PayloadDigest,
    /// The `(client_id, seq)` of each client command the entry carries: none for a blank or membership entry,
    /// several for a leader's batch.
    pub requests: Vec<(u64, u64)>,
    pub node: NodeId,
}

/// What state machine safety remembers across events.
#[derive(Clone, Debug, Default)]
pub struct StateMachineSafety {
    /// Index → the entry first applied there, by any node.
    pub applied: BTreeMap<u64, AppliedEntry>,
}

impl StateMachineSafety {
    /// Before `log` (node `node`'s) records the apply of `entry`.
    pub fn on_applied(&mut self, log: &NodeLog, entry: AppliedEntry) -> Result<(), StateMachineSafetyViolation> {
        let node = entry.node;
        let expected = log.applied.map_or(0, |a| a.index + 1);
        if entry.log_id.index != expected {
            return Err(StateMachineSafetyViolation::ApplyOutOfOrder {
                node,
                after: log.applied,
                expected,
                got: entry.log_id,
            });
        }
        if log.committed.is_none_or(|c| c.index < entry.log_id.index) {
            return Err(StateMachineSafetyViolation::AppliedUncommitted {
                node,
                applied: entry.log_id,
                committed: log.committed,
            });
        }
        let first = self.applied.entry(entry.log_id.index).or_insert_with(|| entry.clone()).clone();
        if first.log_id != entry.log_id || first.digest != entry.digest {
            return Err(StateMachineSafetyViolation::DifferentCommandsAtOneIndex {
                index: entry.log_id.index,
                first_node: first.node,
                first: first.log_id,
                first_request: first.requests,
                second_node: node,
                second: entry.log_id,
                second_request: entry.requests,
            });
        }
        Ok(())
    }

    /// Before `log` (node `node`'s) records `committed` as its commit index.
    pub fn on_committed(
        &self,
        node: NodeId,
        log: &NodeLog,
        committed: Option<LogId>,
    ) -> Result<(), StateMachineSafetyViolation> {
        if committed < log.committed {
            return Err(StateMachineSafetyViolation::WentBack {
                node,
                what: "commit",
                from: log.committed,
                to: committed,
            });
        }
        Ok(())
    }

    /// Before `log` (node `node`'s) records a snapshot installed up to `last`.
    pub fn on_snapshot_installed(
        &self,
        node: NodeId,
        log: &NodeLog,
        last: Option<LogId>,
    ) -> Result<(), StateMachineSafetyViolation> {
        if last < log.applied {
            return Err(StateMachineSafetyViolation::WentBack { node, what: "apply", from: log.applied, to: last });
        }
        Ok(())
    }

    /// When node `node`, whose view before the restart was `before`, reopens its store with
    /// `committed` and `applied`. A wiped node may come back with nothing.
    pub fn on_reopened(
        &self,
        node: NodeId,
        before: &NodeLog,
        committed: Option<LogId>,
        applied: Option<LogId>,
    ) -> Result<(), StateMachineSafetyViolation> {
        if before.wiped {
            return Ok(());
        }
        let lost_power = before.lost_power;
        let (durable_committed, durable_applied) = if lost_power {
            (before.durable_committed, before.durable_applied)
        } else {
            (before.committed, before.applied)
        };
        // The store's recovery may move the state machine up to its snapshot, never down.
        if applied < durable_applied {
            return Err(StateMachineSafetyViolation::LostDurableState {
                node,
                what: "applied",
                durable: durable_applied,
                reopened: applied,
                lost_power,
            });
        }
        if committed < durable_committed {
            return Err(StateMachineSafetyViolation::LostDurableState {
                node,
                what: "committed",
                durable: durable_committed,
                reopened: committed,
                lost_power,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
    }

    fn applied(node: NodeId, log_id: LogId, request: Option<(u64, u64)>) -> AppliedEntry {
        AppliedEntry {
            log_id,
            digest: request.map_or(0, |r| r.0 * 1000 + r.1),
            requests: request.into_iter().collect(),
            node,
        }
    }

    fn committed_log(committed: LogId) -> NodeLog {
        NodeLog { committed: Some(committed), ..NodeLog::default() }
    }

    #[test]
    fn nodes_applying_the_same_entries_pass() {
        let mut sms = StateMachineSafety::default();
        for node in 1..=3 {
            let mut log = committed_log(id(1, 1));
            sms.on_applied(&log, applied(node, id(1, 0), None)).unwrap();
            log.applied = Some(id(1, 0));
            sms.on_applied(&log, applied(node, id(1, 1), Some((7, 1)))).unwrap();
        }
    }

    /// Negative control: two nodes apply different commands at one index.
    #[test]
    fn different_commands_at_one_index_are_caught() {
        let mut sms = StateMachineSafety::default();
        let log = committed_log(id(2, 0));
        sms.on_applied(&log, applied(1, id(1, 0), Some((7, 1)))).unwrap();
        let err = sms.on_applied(&log, applied(2, id(2, 0), Some((8, 1)))).unwrap_err();
        assert!(matches!(
            &err,
            StateMachineSafetyViolation::DifferentCommandsAtOneIndex {
                index: 0,
                first_node: 1,
                second_node: 2,
                first_request,
                second_request,
                ..
            } if first_request == &[(7, 1)] && second_request == &[(8, 1)]
        ));
        assert!(err.to_string().starts_with("state machine safety violated: index 0"));
    }

    /// Negative controls: a gap, an apply beyond commit, a commit going back, a reopened node
    /// below what it made durable.
    #[test]
    fn a_node_going_back_or_skipping_is_caught() {
        let sms_ro = StateMachineSafety::default();
        let mut sms = StateMachineSafety::default();
        let log = NodeLog { applied: Some(id(1, 1)), committed: Some(id(1, 5)), ..NodeLog::default() };
        let gap = sms.on_applied(&log, applied(1, id(1, 3), None)).unwrap_err();
        assert!(matches!(gap, StateMachineSafetyViolation::ApplyOutOfOrder { expected: 2, .. }));
        let early = NodeLog { committed: Some(id(1, 1)), ..log.clone() };
        let beyond = sms.on_applied(&early, applied(1, id(1, 2), None)).unwrap_err();
        assert!(matches!(beyond, StateMachineSafetyViolation::AppliedUncommitted { .. }));
        assert!(matches!(
            sms_ro.on_committed(1, &log, Some(id(1, 4))),
            Err(StateMachineSafetyViolation::WentBack { .. })
        ));
        assert!(matches!(
            sms_ro.on_snapshot_installed(1, &log, Some(id(1, 0))),
            Err(StateMachineSafetyViolation::WentBack { what: "apply", .. })
        ));

        let mut before = NodeLog {
            applied: Some(id(1, 9)),
            committed: Some(id(1, 9)),
            durable_applied: Some(id(1, 4)),
            durable_committed: Some(id(1, 5)),
            ..NodeLog::default()
        };
        // A process crash keeps everything.
        assert!(sms_ro.on_reopened(1, &before, Some(id(1, 9)), Some(id(1, 9))).is_ok());
        let crash = sms_ro.on_reopened(1, &before, Some(id(1, 9)), Some(id(1, 4))).unwrap_err();
        assert!(crash.to_string().contains("a process crash loses nothing"));
        // A power loss keeps what was flushed.
        before.lost_power = true;
        assert!(sms_ro.on_reopened(1, &before, Some(id(1, 5)), Some(id(1, 4))).is_ok());
        let power = sms_ro.on_reopened(1, &before, Some(id(1, 5)), Some(id(1, 3))).unwrap_err();
        assert!(matches!(
            power,
            StateMachineSafetyViolation::LostDurableState { what: "applied", lost_power: true, .. }
        ));
    }
}
