//! The lease keeper: the task that makes the leader's lease clock ([`crate::lease`]) act.
//!
//! Every heartbeat interval it looks at this node's Raft state:
//! - not the leader: it drops any deadlines it kept (a follower never expires a lease);
//! - the leader, but its first commit of the term has not applied: it waits;
//! - the leader, ready: it takes over the leases once per term, keeps the set in line with the
//!   state machine, and for each lease that ran out confirms its leadership (a read-index) and
//!   proposes the revoke through Raft. The lease ends when that revoke applies, at a revision.
//!
//! Every Raft call it makes runs under the node's request deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::ServerState;
use tokio::time::Instant;

use super::PlantedBug;
use crate::lease::{LeaderLeases, TakeOver};
use crate::store::KvReader;
use crate::types::{NodeId, Op, Raft, Request};

/// Shared between the keeper and the KeepAlive / TimeToLive handlers.
pub type SharedLeases = Arc<Mutex<LeaderLeases>>;

/// Held while a lease checkpoint, or a KeepAlive's clearing of one, goes through Raft: so a
/// checkpoint proposed before a renewal can never land after the renewal's clearing of it (a new
/// leader would then restart the renewed lease from a stale, shorter remainder).
pub type ProposalOrder = Arc<tokio::sync::Mutex<()>>;

pub struct LeaseKeeper {
    pub id: NodeId,
    pub raft: Raft,
    pub reader: KvReader,
    pub leases: SharedLeases,
    pub tick: Duration,
    pub request_timeout: Duration,
    /// The maximum election timeout: what a new leader adds to every lease when it takes over.
    pub extension: Duration,
    /// See `NodeConfig::lease_checkpoint_interval`.
    pub checkpoint_every: Option<Duration>,
    pub proposals: ProposalOrder,
    pub planted_bug: Option<PlantedBug>,
}

impl LeaseKeeper {
    pub async fn run(self) {
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_checkpoint = Instant::now();
        loop {
            interval.tick().await;
            self.step().await;
            if let Some(every) = self.checkpoint_every {
                if last_checkpoint.elapsed() >= every {
                    last_checkpoint = Instant::now();
                    self.checkpoint().await;
                }
            }
        }
    }

    /// Logs what remains of every lease this leader keeps (etcd's lease checkpoint). Each lease is
    /// marked unsettled before its checkpoint is proposed: if the write's outcome is unknown, the
    /// next KeepAlive clears the remainder through Raft before answering, so a checkpoint that
    /// lands late can never shorten a renewed lease.
    async fn checkpoint(&self) {
        let _order = self.proposals.lock().await;
        let remaining = {
            let mut leases = self.lock();
            if leases.term() != Some(self.raft.metrics().borrow().current_term) {
                return;
            }
            let remaining = leases.remaining_all(Instant::now());
            for (id, _) in &remaining {
                leases.unsettle(*id);
            }
            remaining
        };
        for (id, left) in remaining {
            let remaining_ms = (left.as_millis() as u64).max(1);
            let op = Op::LeaseCheckpoint { id, remaining_ms };
            let write = self.raft.client_write(Request { client_id: 0, seq: 0, op });
            if !matches!(tokio::time::timeout(self.request_timeout, write).await, Ok(Ok(_))) {
                return;
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeaderLeases> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn step(&self) {
        let m = self.raft.metrics().borrow().clone();
        let now = Instant::now();
        let live = self.reader.leases();
        let leading = m.state == ServerState::Leader && m.current_leader == Some(self.id);
        let ready = leading && m.last_applied.is_some_and(|l| l.leader_id.term == m.current_term);
        let due = {
            let mut leases = self.lock();
            // Only the planted take-over bug reads when a lease was first seen; real nodes skip the bookkeeping.
            if self.planted_bug == Some(PlantedBug::LeaseKeepsOldExpiry) {
                leases.observe(now, &live);
            }
            if !leading {
                leases.demote();
                return;
            }
            if !ready {
                return;
            }
            if leases.term() != Some(m.current_term) {
                let rule = match self.planted_bug {
                    Some(PlantedBug::LeaseKeepsOldExpiry) => TakeOver::KeepOldExpiry,
                    _ => TakeOver::Reset { extension: self.extension },
                };
                leases.promote(m.current_term, now, &live, rule);
                tracing::debug!(node = self.id, term = m.current_term, leases = live.len(), "took over the leases");
            }
            leases.sync(now, &live);
            leases.due(now);
            leases.expiring()
        };
        for id in due {
            // Confirm, then check nothing moved: the revoke carries this term, and the state machine
            // ignores it unless it commits in this term (a leader deposed and re-elected meanwhile must
            // not act on deadlines another leader may have extended).
            if !self.confirm_leadership().await {
                return;
            }
            let still = self.raft.metrics().borrow().current_term == m.current_term
                && self.lock().term() == Some(m.current_term)
                && self.lock().expiring().contains(&id);
            if !still {
                return;
            }
            let op = Op::LeaseRevoke { id, expired: true, term: m.current_term };
            let revoke = Request { client_id: 0, seq: 0, op };
            match tokio::time::timeout(self.request_timeout, self.raft.client_write(revoke)).await {
                Ok(Ok(_)) => tracing::debug!(node = self.id, lease = id, "lease expired"),
                Ok(Err(e)) => {
                    tracing::debug!(node = self.id, lease = id, error = %e, "could not revoke an expired lease")
                }
                Err(_) => tracing::debug!(node = self.id, lease = id, "revoke of an expired lease timed out"),
            }
        }
    }

    /// A read-index round: `true` if a quorum still follows this node.
    async fn confirm_leadership(&self) -> bool {
        matches!(tokio::time::timeout(self.request_timeout, self.raft.ensure_linearizable()).await, Ok(Ok(_)))
    }
}
