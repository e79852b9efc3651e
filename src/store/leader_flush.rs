//! A leader's own flush, off the path of its replication (the Raft thesis, §10.2.1: "the leader can write to its
//! disk in parallel with replicating to followers").
//!
//! openraft 0.9 runs an append and then, only once the append's callback has come, sends the entries to followers
//! and counts the leader as holding them. With one client a write therefore waited for two flushes one after the
//! other: the leader's, then a follower's. So a leader's store acknowledges the entries it has just proposed when
//! they are written, before they are flushed, and the flush runs while they travel. What keeps that safe is the
//! **flush gate**: a follower's acknowledgement of entries up to index `i` reaches openraft only once the leader's
//! own log is durable through `i` ([`FlushGate::durable`], in the node's network client).
//!
//! Why a write is then still on disk on a majority when it commits: a committing quorum holds the leader (counted
//! at once) and, unless the leader alone is a quorum, at least one follower; that follower's acknowledgement
//! passed the gate, so the leader had flushed too; and every follower flushes before it acknowledges (followers
//! never acknowledge early). When the leader alone is a quorum (one voter) nothing would hold its commit back, so
//! then its store does not acknowledge early ([`Early::may_acknowledge`]).
//!
//! The planted bug `NoLeaderFlushGate` opens the gate: followers' acknowledgements count at once, and a leader that
//! loses power can take a committed write with it (`tests/sim_invariants.rs`).

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use openraft::EntryPayload;

use crate::types::{Entry, Membership, NodeId, StoredMembership, Vote};

/// What a store shares about early acknowledgement: who it is, which memberships it holds, and how far its log is
/// durable.
pub(crate) struct Early {
    /// The node the store belongs to, once it serves one (`LogStore::serve`).
    me: OnceLock<NodeId>,
    /// The membership entries now in the log, by index: the last one is the effective membership, unless the
    /// state machine's (from a snapshot) is later.
    in_log: Mutex<BTreeMap<u64, Membership>>,
    /// The state machine's membership: the last one applied or installed.
    applied: Mutex<StoredMembership>,
    /// The log is durable through this index (`None`: nothing known durable).
    durable: tokio::sync::watch::Sender<Option<u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `me` alone is a quorum of `membership`: it is the only voter of every configuration of a joint one.
/// A membership with no configuration at all counts as such (nothing is known; do not acknowledge early).
fn alone_a_quorum(membership: &Membership, me: NodeId) -> bool {
    membership.get_joint_config().iter().all(|config| config.len() == 1 && config.contains(&me))
}

impl Early {
    pub(crate) fn new(durable: Option<u64>, in_log: BTreeMap<u64, Membership>) -> Self {
        Early {
            me: OnceLock::new(),
            in_log: Mutex::new(in_log),
            applied: Mutex::new(StoredMembership::default()),
            durable: tokio::sync::watch::Sender::new(durable),
        }
    }

    /// Names the node the store serves; only its own proposals as a leader are acknowledged early.
    pub(crate) fn serve(&self, me: NodeId) {
        let _ = self.me.set(me);
    }

    /// Whether an append of `entries`, made while the store holds `vote`, may be acknowledged before its flush:
    /// - they are this node's proposals as the leader of `vote` (never entries a follower takes from a leader,
    ///   including this node's own entries of an earlier term sent back to it);
    /// - none changes the membership (so the one in force is known here);
    /// - the leader alone is a quorum neither of the log's last membership nor of the state machine's.
    pub(crate) fn may_acknowledge(&self, entries: &[Entry], vote: impl FnOnce() -> Option<Vote>) -> bool {
        let Some(&me) = self.me.get() else { return false };
        if entries.first().is_none_or(|e| e.log_id.leader_id.node_id != me) {
            return false;
        }
        let Some(vote) = vote() else { return false };
        let leads = vote.is_committed() && vote.leader_id.node_id == me;
        let proposed = entries
            .iter()
            .all(|e| e.log_id.leader_id == vote.leader_id && !matches!(e.payload, EntryPayload::Membership(_)));
        if entries.is_empty() || !leads || !proposed {
            return false;
        }
        let in_log_alone = lock(&self.in_log).last_key_value().is_some_and(|(_, m)| alone_a_quorum(m, me));
        let applied_alone = alone_a_quorum(lock(&self.applied).membership(), me);
        !in_log_alone && !applied_alone
    }

    /// Notes the membership entries among `entries`, just appended.
    pub(crate) fn appended(&self, entries: &[Entry]) {
        let mut in_log = lock(&self.in_log);
        for e in entries {
            if let EntryPayload::Membership(m) = &e.payload {
                in_log.insert(e.log_id.index, m.clone());
            }
        }
    }

    /// The entries from `since` on are gone, and the log is durable through what is left (truncate flushes).
    pub(crate) fn truncated(&self, since: u64) {
        lock(&self.in_log).split_off(&since);
        self.durable.send_modify(|d| *d = (*d).min(since.checked_sub(1)));
    }

    /// The entries through `upto` are gone (purge flushes): they are in the state machine, and durable.
    pub(crate) fn purged(&self, upto: u64) {
        let mut in_log = lock(&self.in_log);
        *in_log = match upto.checked_add(1) {
            Some(next) => in_log.split_off(&next),
            None => BTreeMap::new(),
        };
        drop(in_log);
        self.durable_through(upto);
    }

    /// The state machine's membership changed (an apply or a snapshot).
    pub(crate) fn applied_membership(&self, membership: &StoredMembership) {
        *lock(&self.applied) = membership.clone();
    }

    /// A flush made every entry through `index` durable.
    pub(crate) fn durable_through(&self, index: u64) {
        self.durable.send_if_modified(|d| {
            let raise = *d < Some(index);
            if raise {
                *d = Some(index);
            }
            raise
        });
    }

    pub(crate) fn gate(&self) -> FlushGate {
        FlushGate { durable: Some(self.durable.subscribe()) }
    }
}

/// Holds a follower's acknowledgement until the leader's own log is durable as far (see the module docs).
#[derive(Clone, Debug)]
pub struct FlushGate {
    /// `None`: the gate is open (planted bug `NoLeaderFlushGate`, or a node without a store).
    durable: Option<tokio::sync::watch::Receiver<Option<u64>>>,
}

impl FlushGate {
    /// A gate that holds nothing back: the planted bug `NoLeaderFlushGate`.
    pub fn open() -> Self {
        FlushGate { durable: None }
    }

    /// Waits until this node's log is durable through `index`; false if `timeout` passes first.
    pub async fn durable(&mut self, index: u64, timeout: Duration) -> bool {
        let Some(durable) = &mut self.durable else { return true };
        let reached = durable.wait_for(|d| *d >= Some(index));
        matches!(tokio::time::timeout(timeout, reached).await, Ok(Ok(_)))
    }
}
