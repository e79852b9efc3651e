//! What the store tells an observer, at the moment each write is made (see [`StoreEvent`]).
//!
//! The simulator's invariant checkers read these events after every simulation step instead of
//! copying every node's whole state: the store knows exactly what it appended, committed and
//! applied, and in which order.
//!
//! Caller's duties:
//! 1. Pass an observer only in simulation ([`super::open_sim`]); real processes pass none, and
//!    then no event is even built (every emission is behind an `Option`).
//! 2. `record` is called synchronously inside a storage call: keep it cheap (push to a queue)
//!    and never call back into the store from it.
//! 3. An event describes a write made, not one made durable: under the simulated disk a write
//!    is durable only once a later [`StoreChange::Flushed`] for the same node is recorded, and a
//!    power loss discards what came after the last one. [`StoreChange::Opened`] then tells the
//!    observer what the node actually restarted with.

use std::sync::Arc;

use crate::types::{EntryPayload, LeaseId, LogId, NodeId, Vote};

/// A digest of an entry's payload: two entries with one log id and different digests are two
/// different commands (FNV-1a over the payload's bincode bytes).
pub type PayloadDigest = u64;

/// Receives every store event of one or more nodes.
pub trait StoreObserver: Send + Sync {
    fn record(&self, event: StoreEvent);
}

/// One store write, by one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreEvent {
    pub node: NodeId,
    pub change: StoreChange,
}

/// What one store write changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChange {
    /// The store was opened (a start or a restart), holding this state. Emitted once per open,
    /// after recovery, before openraft reads anything.
    Opened {
        vote: Option<Vote>,
        committed: Option<LogId>,
        last_purged: Option<LogId>,
        applied: Option<LogId>,
        /// Every entry in the log, in index order.
        log: Vec<(LogId, PayloadDigest)>,
    },
    /// `save_vote`: the node's vote, flushed before this returns.
    VoteSaved { term: u64, voted_for: NodeId, committed: bool },
    /// `append`: entries written, in index order (replacing any entry at the same index).
    Appended { entries: Vec<(LogId, PayloadDigest)> },
    /// `truncate`: every entry at `since` and after was removed.
    Truncated { since: u64 },
    /// `purge`: every entry up to and including `upto` was removed.
    Purged { upto: LogId },
    /// `save_committed`.
    CommittedSaved { committed: Option<LogId> },
    /// `apply`: one entry applied to the state machine. `request` is `(client_id, seq)` for a
    /// normal entry, `None` for a blank or membership entry.
    Applied { log_id: LogId, requests: Vec<(u64, u64)>, digest: PayloadDigest },
    /// `apply`: a lease ended at `revision`, revoked by a client or (`expired`) by the leader
    /// because it ran out; every key attached to it was deleted at that revision.
    LeaseEnded { id: LeaseId, log_id: LogId, expired: bool, ttl_ms: u64 },
    /// `apply`: a lease's remaining TTL was checkpointed (a non-zero remainder a new leader
    /// restarts it from).
    LeaseCheckpointed { id: LeaseId },
    /// `install_snapshot`: the state machine replaced by a snapshot's, applied up to `last`.
    SnapshotInstalled { last: Option<LogId> },
    /// Every write of this node made before this event is now durable (simulated disk only).
    Flushed,
}

/// A node's handle on its observer. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Observer {
    node: NodeId,
    sink: Arc<dyn StoreObserver>,
}

impl Observer {
    pub(crate) fn new(node: NodeId, sink: Arc<dyn StoreObserver>) -> Self {
        Observer { node, sink }
    }

    pub(crate) fn record(&self, change: StoreChange) {
        self.sink.record(StoreEvent { node: self.node, change });
    }
}

/// Emits the change built by `change` when there is an observer; builds nothing otherwise.
pub(crate) fn emit(observer: &Option<Observer>, change: impl FnOnce() -> StoreChange) {
    if let Some(o) = observer {
        o.record(change());
    }
}

/// The digest of a payload (see [`PayloadDigest`]).
pub fn payload_digest(payload: &EntryPayload) -> PayloadDigest {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    // Writing into a hasher cannot fail; a payload that cannot be encoded could not be stored.
    let _ = bincode::serialize_into(&mut h, payload);
    h.0
}

struct Fnv(u64);

impl std::io::Write for Fnv {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for b in buf {
            self.0 ^= *b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A vote as the event reports it.
pub(crate) fn vote_saved(vote: &Vote) -> StoreChange {
    StoreChange::VoteSaved { term: vote.leader_id.term, voted_for: vote.leader_id.node_id, committed: vote.committed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Op, Request};

    #[test]
    fn digests_tell_commands_apart() {
        let put = |v: &str| {
            EntryPayload::Normal(Request {
                client_id: 1,
                seq: 1,
                op: Op::Put { key: b"k".to_vec(), value: v.as_bytes().to_vec(), lease: 0 },
            })
        };
        assert_eq!(payload_digest(&put("a")), payload_digest(&put("a")));
        assert_ne!(payload_digest(&put("a")), payload_digest(&put("b")));
        assert_ne!(payload_digest(&put("a")), payload_digest(&EntryPayload::Blank));
    }
}
