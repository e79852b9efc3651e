//! What the simulation observed, in the order it happened: every node's store events (told by
//! the store as each write is made, see [`crate::store::observe`]), every write a client saw
//! acknowledged, and every power loss and wiped disk. The invariant checkers read it after each
//! simulation step ([`super::invariants::Invariants`]), and keep per node the [`NodeLog`] that
//! the events describe.
//!
//! Caller's duties:
//! 1. Give every node's store the cluster's [`EventQueue`] as its observer.
//! 2. Push [`Observed::Acknowledged`] when a client receives an ok for a write, and
//!    [`Observed::PowerLoss`] / [`Observed::Wiped`] when the simulator makes a node lose state,
//!    before the node restarts.
//! 3. Drain the queue after every step; the queue grows without bound otherwise.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::store::observe::PayloadDigest;
use std::time::Duration;

use super::trace::sim_now;
use crate::store::{StoreChange, StoreEvent, StoreObserver};
use crate::types::{LeaseId, LogId, NodeId};

/// One thing the simulation observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    Store(StoreEvent),
    /// A client got an ok for its write `(client_id, seq)`, applied at log index `revision`.
    Acknowledged {
        revision: u64,
        client_id: u64,
        seq: u64,
    },
    /// The node's host lost power: its unflushed writes are gone.
    PowerLoss {
        node: NodeId,
    },
    /// The node's disk was replaced by an empty one.
    Wiped {
        node: NodeId,
    },
    /// A lease ended on `node` (its revoke applied), at simulated time `at`. Recorded beside the
    /// store event, which carries no time.
    LeaseEnded {
        node: NodeId,
        lease: LeaseId,
        log_id: LogId,
        expired: bool,
        ttl: Duration,
        at: Duration,
    },
    /// `node` saved its own committed vote for `term`: it was elected, at simulated time `at`.
    Elected {
        term: u64,
        node: NodeId,
        at: Duration,
    },
    /// A lease holder got an answer to a KeepAlive (or grant) it sent at `sent_at`: it may act as
    /// the holder until `sent_at + ttl`.
    LeaseAnswered {
        lease: LeaseId,
        sent_at: Duration,
        ttl: Duration,
    },
    /// `holder` learned it won the campaign for `key` at `revision`, holding `lease`.
    Won {
        key: String,
        holder: String,
        revision: u64,
        lease: LeaseId,
    },
}

/// A queue of observations, shared by every node's store and the simulator.
#[derive(Default)]
pub struct EventQueue {
    events: Mutex<Vec<Observed>>,
}

impl EventQueue {
    pub fn push(&self, observed: Observed) {
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push(observed);
    }

    /// Moves every queued observation into `out` (which should be empty; its allocation is
    /// reused by the queue, so draining every step allocates nothing in steady state).
    pub fn drain_into(&self, out: &mut Vec<Observed>) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *events, out);
    }
}

impl StoreObserver for EventQueue {
    fn record(&self, event: StoreEvent) {
        let node = event.node;
        let timed = match &event.change {
            StoreChange::LeaseEnded { id, log_id, expired, ttl_ms } => Some(Observed::LeaseEnded {
                node,
                lease: *id,
                log_id: *log_id,
                expired: *expired,
                ttl: Duration::from_millis(*ttl_ms),
                at: sim_now(),
            }),
            StoreChange::VoteSaved { term, voted_for, committed: true } if *voted_for == node => {
                Some(Observed::Elected { term: *term, node, at: sim_now() })
            }
            _ => None,
        };
        self.push(Observed::Store(event));
        if let Some(t) = timed {
            self.push(t);
        }
    }
}

/// One node's storage, as its events describe it.
#[derive(Clone, Debug, Default)]
pub struct NodeLog {
    /// (term, voted for, committed) of the last saved vote.
    pub vote: Option<(u64, NodeId, bool)>,
    /// The entries in the log: `entries[i]` is at index `first_index + i`.
    /// Invariant: consecutive indexes (appends, truncates and purges cut only at the ends).
    pub entries: VecDeque<(LogId, PayloadDigest)>,
    pub first_index: u64,
    pub purged: Option<LogId>,
    pub committed: Option<LogId>,
    pub applied: Option<LogId>,
    /// The vote at the last flush: a power loss cannot take the node's vote below it.
    pub durable_vote: Option<(u64, NodeId, bool)>,
    /// `committed` and `applied` at the last flush: a power loss cannot take the node below.
    pub durable_committed: Option<LogId>,
    pub durable_applied: Option<LogId>,
    /// A power loss happened since the node was last opened.
    pub lost_power: bool,
    /// The node's disk was wiped since it was last opened.
    pub wiped: bool,
    /// Log matching has compared this node's committed entries up to here.
    pub commit_checked: Option<u64>,
}

impl NodeLog {
    /// The term the node is in (its vote's), 0 before any vote.
    pub fn term(&self) -> u64 {
        self.vote.map_or(0, |v| v.0)
    }

    pub fn get(&self, index: u64) -> Option<&(LogId, PayloadDigest)> {
        let offset = index.checked_sub(self.first_index)?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    pub fn last(&self) -> Option<&(LogId, PayloadDigest)> {
        self.entries.back()
    }

    /// Entries written at their index, replacing any there and after (openraft truncates before
    /// appending a conflicting entry, but replacing keeps the view right either way).
    pub fn append(&mut self, entries: &[(LogId, PayloadDigest)]) {
        let Some(first) = entries.first() else { return };
        let end = self.first_index + self.entries.len() as u64;
        if first.0.index < self.first_index || first.0.index > end {
            // Before the log's start or beyond its end (never done by openraft): the log is
            // just these entries now.
            self.entries.clear();
        }
        if self.entries.is_empty() {
            self.first_index = first.0.index;
        }
        self.truncate(first.0.index);
        self.entries.extend(entries.iter().copied());
    }

    /// Removes every entry at `since` and after.
    pub fn truncate(&mut self, since: u64) {
        let keep = since.saturating_sub(self.first_index);
        self.entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }

    /// Removes every entry up to and including `upto`.
    pub fn purge(&mut self, upto: LogId) {
        while self.entries.front().is_some_and(|(id, _)| id.index <= upto.index) {
            self.entries.pop_front();
            self.first_index += 1;
        }
        if self.entries.is_empty() {
            self.first_index = self.first_index.max(upto.index + 1);
        }
        self.purged = self.purged.max(Some(upto));
    }

    /// The view of a node just opened with this state.
    pub fn opened(
        vote: Option<(u64, NodeId, bool)>,
        committed: Option<LogId>,
        purged: Option<LogId>,
        applied: Option<LogId>,
        log: &[(LogId, PayloadDigest)],
        commit_checked: Option<u64>,
    ) -> Self {
        let first_index = log.first().map_or(purged.map_or(0, |p| p.index + 1), |(id, _)| id.index);
        NodeLog {
            vote,
            durable_vote: vote,
            entries: log.iter().copied().collect(),
            first_index,
            purged,
            committed,
            applied,
            durable_committed: committed,
            durable_applied: applied,
            lost_power: false,
            wiped: false,
            commit_checked,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::LogId;

    fn id(term: u64, index: u64) -> (LogId, PayloadDigest) {
        (LogId::new(openraft::CommittedLeaderId::new(term, 1), index), index)
    }

    #[test]
    fn appends_truncates_and_purges_keep_indexes_consecutive() {
        let mut log = NodeLog::default();
        log.append(&[id(1, 0), id(1, 1), id(1, 2)]);
        log.append(&[id(2, 2), id(2, 3)]);
        assert_eq!(log.get(2), Some(&id(2, 2)));
        assert_eq!(log.last(), Some(&id(2, 3)));
        log.truncate(3);
        assert_eq!(log.last(), Some(&id(2, 2)));
        log.purge(id(1, 1).0);
        assert_eq!((log.first_index, log.get(1), log.get(2)), (2, None, Some(&id(2, 2))));
        log.purge(id(2, 2).0);
        assert_eq!((log.first_index, log.last()), (3, None));
        log.append(&[id(3, 3)]);
        assert_eq!(log.get(3), Some(&id(3, 3)));
    }
}
