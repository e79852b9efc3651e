//! The Raft leader's lease clock: which lease runs out when, by the leader's own clock.
//!
//! I/O-free: every method takes `now`, nothing here reads a clock, talks to Raft or touches
//! storage. The node's lease keeper (`node::lease_keeper`) drives it, and the KeepAlive and
//! TimeToLive handlers ask it.
//!
//! The rules (etcd's, and where openraft differs, safer):
//! - Only the leader keeps deadlines. Followers hold leases (in the state machine) but never
//!   expire them; a lease ends only by a `LeaseRevoke` committed through Raft.
//! - Renewals are not in the log, so a new leader cannot know when each lease was last renewed.
//!   It takes over only after its first commit in its term has applied (then it has applied every
//!   grant and revoke before it) and gives every lease `now + TTL + extension`, where the
//!   extension is the maximum election timeout. A checkpointed remaining TTL replaces the full TTL.
//!   Consequence, shown and not hidden: leader changes more frequent than the TTL keep a lease
//!   alive forever (etcd issues #9395, #9888).
//! - A renewal moves a deadline to `now + TTL`, never earlier than it was.
//! - A lease whose deadline passed is marked expiring: from then on a KeepAlive cannot revive it
//!   (etcd waits for the revoke and answers "not found"), so no holder is told "renewed" about a
//!   lease whose revoke is already on its way through the log.
//!
//! Caller's duties:
//! 1. Confirm leadership (a read-index) before [`LeaderLeases::renew`] answers a KeepAlive and
//!    before proposing the revoke of a lease [`LeaderLeases::due`] returned.
//! 2. [`LeaderLeases::demote`] as soon as this node is not the leader of the term it promoted in.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::store::kv::LeaseRecord;
use crate::types::LeaseId;

/// Where one lease stands on the leader's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deadline {
    /// Live until this instant.
    At(Instant),
    /// Ran out; its revoke is being proposed. Never renewed again.
    Expiring,
}

/// Why a lease could not be renewed or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseRefusal {
    /// Not live: never granted, revoked, or already ran out.
    NotFound,
    /// This node leads but has not taken over the leases yet (its first commit has not applied).
    NotReady,
    /// The lease ran out and its revoke is on its way: it is not renewable, but it is not gone
    /// either until the revoke applies (a revoke lost with a leader change leaves it live).
    Expiring,
}

/// How a new leader sets deadlines when it takes over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakeOver {
    /// `now + (checkpointed remaining or TTL) + extension`: the correct rule.
    Reset { extension: Duration },
    /// The planted bug `LeaseKeepsOldExpiry`: keep the deadline this node saw the lease start
    /// with (`first seen + TTL`), as if renewals the old leader granted had never happened.
    KeepOldExpiry,
}

/// The leader's lease deadlines, for the term it took over in.
#[derive(Debug, Default)]
pub struct LeaderLeases {
    active: Option<Active>,
    /// Leases whose checkpoint this node proposed without learning the outcome: a KeepAlive must
    /// clear their remainder through Raft before answering. Kept across terms (conservative).
    unsettled: std::collections::BTreeSet<LeaseId>,
    /// When this node first saw each lease live (used only by the planted bug's take-over).
    first_seen: BTreeMap<LeaseId, Instant>,
}

#[derive(Debug)]
struct Active {
    term: u64,
    deadlines: BTreeMap<LeaseId, (Deadline, Duration)>,
}

impl LeaderLeases {
    /// The term this node took over the leases in, if it has.
    pub fn term(&self) -> Option<u64> {
        self.active.as_ref().map(|a| a.term)
    }

    /// Notes when leases were first seen, on every node (leader or not).
    pub fn observe(&mut self, now: Instant, live: &BTreeMap<LeaseId, LeaseRecord>) {
        self.first_seen.retain(|id, _| live.contains_key(id));
        for id in live.keys() {
            self.first_seen.entry(*id).or_insert(now);
        }
    }

    /// Takes over every live lease as the leader of `term` (after its first commit applied).
    pub fn promote(&mut self, term: u64, now: Instant, live: &BTreeMap<LeaseId, LeaseRecord>, rule: TakeOver) {
        let deadlines = live
            .iter()
            .map(|(id, lease)| {
                let ttl = Duration::from_millis(lease.ttl_ms);
                let at = match rule {
                    TakeOver::Reset { extension } => {
                        let left = if lease.remaining_ms > 0 { Duration::from_millis(lease.remaining_ms) } else { ttl };
                        now + left + extension
                    }
                    TakeOver::KeepOldExpiry => self.first_seen.get(id).copied().unwrap_or(now) + ttl,
                };
                (*id, (Deadline::At(at), ttl))
            })
            .collect();
        self.active = Some(Active { term, deadlines });
    }

    /// Stops keeping deadlines (this node no longer leads).
    pub fn demote(&mut self) {
        self.active = None;
    }

    /// Brings the set of leases in line with the state machine: a lease granted since gets
    /// `now + TTL` (it was granted by this leader, just now), an ended one is dropped.
    pub fn sync(&mut self, now: Instant, live: &BTreeMap<LeaseId, LeaseRecord>) {
        let Some(active) = &mut self.active else { return };
        active.deadlines.retain(|id, _| live.contains_key(id));
        for (id, lease) in live {
            let ttl = Duration::from_millis(lease.ttl_ms);
            active.deadlines.entry(*id).or_insert((Deadline::At(now + ttl), ttl));
        }
    }

    /// Renews a live lease to `now + TTL` and returns the TTL. `live` is the lease's record in the
    /// state machine, which has applied at least up to the confirmed read index.
    pub fn renew(&mut self, id: LeaseId, now: Instant, live: Option<&LeaseRecord>) -> Result<Duration, LeaseRefusal> {
        let active = self.active.as_mut().ok_or(LeaseRefusal::NotReady)?;
        let Some(lease) = live else {
            active.deadlines.remove(&id);
            return Err(LeaseRefusal::NotFound);
        };
        let ttl = Duration::from_millis(lease.ttl_ms);
        let entry = active.deadlines.entry(id).or_insert((Deadline::At(now + ttl), ttl));
        match entry.0 {
            Deadline::Expiring => Err(LeaseRefusal::Expiring),
            Deadline::At(at) if at <= now => {
                entry.0 = Deadline::Expiring;
                Err(LeaseRefusal::Expiring)
            }
            Deadline::At(at) => {
                // Never earlier than the deadline it had: a take-over's extension outlives an early renewal
                // (etcd shortens it; a longer lease costs availability, never safety).
                entry.0 = Deadline::At(at.max(now + ttl));
                Ok(ttl)
            }
        }
    }

    /// What remains of a lease's TTL, and its granted TTL. `live` is the lease's record in the
    /// state machine: a lease granted since the last [`LeaderLeases::sync`] starts its TTL now.
    pub fn remaining(
        &mut self,
        id: LeaseId,
        now: Instant,
        live: Option<&LeaseRecord>,
    ) -> Result<(Duration, Duration), LeaseRefusal> {
        let active = self.active.as_mut().ok_or(LeaseRefusal::NotReady)?;
        let Some(lease) = live else {
            active.deadlines.remove(&id);
            return Err(LeaseRefusal::NotFound);
        };
        let ttl = Duration::from_millis(lease.ttl_ms);
        match active.deadlines.entry(id).or_insert((Deadline::At(now + ttl), ttl)) {
            (Deadline::At(at), ttl) if *at > now => Ok((*at - now, *ttl)),
            _ => Err(LeaseRefusal::Expiring),
        }
    }

    /// A checkpoint of `id` is about to be proposed.
    pub fn unsettle(&mut self, id: LeaseId) {
        self.unsettled.insert(id);
    }

    /// A KeepAlive of `id` cleared its remainder through Raft.
    pub fn settle(&mut self, id: LeaseId) {
        self.unsettled.remove(&id);
    }

    /// Whether a checkpoint of `id` may still land (see [`LeaderLeases::unsettle`]).
    pub fn is_unsettled(&self, id: LeaseId) -> bool {
        self.unsettled.contains(&id)
    }

    /// What remains of every lease that has not run out, for a checkpoint.
    pub fn remaining_all(&self, now: Instant) -> Vec<(LeaseId, Duration)> {
        let Some(active) = &self.active else { return Vec::new() };
        active
            .deadlines
            .iter()
            .filter_map(|(id, (d, _))| match d {
                Deadline::At(at) if *at > now => Some((*id, *at - now)),
                _ => None,
            })
            .collect()
    }

    /// Leases whose deadline has passed, now marked expiring: the caller proposes their revokes.
    pub fn due(&mut self, now: Instant) -> Vec<LeaseId> {
        let Some(active) = &mut self.active else { return Vec::new() };
        let mut due = Vec::new();
        for (id, (deadline, _)) in active.deadlines.iter_mut() {
            if matches!(deadline, Deadline::At(at) if *at <= now) {
                *deadline = Deadline::Expiring;
                due.push(*id);
            }
        }
        due
    }

    /// Leases marked expiring whose revoke has not committed yet (to propose again).
    pub fn expiring(&self) -> Vec<LeaseId> {
        let Some(active) = &self.active else { return Vec::new() };
        active.deadlines.iter().filter(|(_, (d, _))| *d == Deadline::Expiring).map(|(id, _)| *id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(leases: &[(LeaseId, u64)]) -> BTreeMap<LeaseId, LeaseRecord> {
        leases.iter().map(|(id, ttl)| (*id, LeaseRecord { ttl_ms: *ttl, remaining_ms: 0 })).collect()
    }

    const EXT: Duration = Duration::from_millis(2000);

    #[test]
    fn a_new_leader_gives_every_lease_its_ttl_plus_an_election() {
        let t0 = Instant::now();
        let mut leases = LeaderLeases::default();
        assert_eq!(
            leases.renew(5, t0, Some(&LeaseRecord { ttl_ms: 3000, remaining_ms: 0 })),
            Err(LeaseRefusal::NotReady)
        );
        leases.promote(2, t0, &live(&[(5, 3000)]), TakeOver::Reset { extension: EXT });
        let record = LeaseRecord { ttl_ms: 3000, remaining_ms: 0 };
        assert_eq!(
            leases.remaining(5, t0, Some(&record)),
            Ok((Duration::from_millis(5000), Duration::from_millis(3000)))
        );
        assert!(leases.due(t0 + Duration::from_millis(4999)).is_empty());
        assert_eq!(leases.due(t0 + Duration::from_millis(5000)), vec![5]);
        let record = LeaseRecord { ttl_ms: 3000, remaining_ms: 0 };
        assert_eq!(
            leases.renew(5, t0 + Duration::from_millis(5001), Some(&record)),
            Err(LeaseRefusal::Expiring),
            "not renewable, and not gone until its revoke applies"
        );
        assert_eq!(leases.expiring(), vec![5], "an expiring lease stays expiring until its revoke lands");
    }

    #[test]
    fn a_renewal_moves_the_deadline_to_now_plus_ttl() {
        let t0 = Instant::now();
        let mut leases = LeaderLeases::default();
        leases.promote(2, t0, &live(&[(5, 3000)]), TakeOver::Reset { extension: EXT });
        let record = LeaseRecord { ttl_ms: 3000, remaining_ms: 0 };
        let t1 = t0 + Duration::from_millis(4000);
        assert_eq!(leases.renew(5, t1, Some(&record)), Ok(Duration::from_millis(3000)));
        assert!(leases.due(t1 + Duration::from_millis(2999)).is_empty());
        assert_eq!(leases.due(t1 + Duration::from_millis(3000)), vec![5]);
        assert_eq!(leases.renew(9, t1, None), Err(LeaseRefusal::NotFound));
    }

    #[test]
    fn an_early_renewal_never_shortens_a_take_over_deadline() {
        let t0 = Instant::now();
        let mut leases = LeaderLeases::default();
        leases.promote(2, t0, &live(&[(5, 3000)]), TakeOver::Reset { extension: EXT });
        let record = LeaseRecord { ttl_ms: 3000, remaining_ms: 0 };
        leases.renew(5, t0 + Duration::from_millis(100), Some(&record)).expect("renewed");
        assert!(leases.due(t0 + Duration::from_millis(4999)).is_empty(), "the take-over's 5 s still stand");
        assert_eq!(leases.due(t0 + Duration::from_millis(5000)), vec![5]);
    }

    #[test]
    fn a_checkpoint_replaces_the_full_ttl_at_take_over() {
        let t0 = Instant::now();
        let mut leases = LeaderLeases::default();
        let mut table = live(&[(5, 60_000)]);
        table.get_mut(&5).expect("lease").remaining_ms = 1000;
        leases.promote(3, t0, &table, TakeOver::Reset { extension: EXT });
        assert_eq!(leases.remaining(5, t0, table.get(&5)).map(|r| r.0), Ok(Duration::from_millis(3000)));
    }

    #[test]
    fn sync_adds_new_grants_and_drops_ended_leases() {
        let t0 = Instant::now();
        let mut leases = LeaderLeases::default();
        leases.promote(2, t0, &live(&[(5, 3000)]), TakeOver::Reset { extension: EXT });
        let t1 = t0 + Duration::from_millis(100);
        let now_live = live(&[(7, 4000)]);
        leases.sync(t1, &now_live);
        assert_eq!(leases.remaining(5, t1, None), Err(LeaseRefusal::NotFound));
        assert_eq!(leases.remaining(7, t1, now_live.get(&7)).map(|r| r.0), Ok(Duration::from_millis(4000)));
        let granted_since = live(&[(9, 3000)]);
        let t2 = t1 + Duration::from_millis(10);
        assert_eq!(
            leases.remaining(9, t2, granted_since.get(&9)).map(|r| r.0),
            Ok(Duration::from_millis(3000)),
            "a lease granted since the last sync starts its TTL at the first question"
        );
        leases.demote();
        assert_eq!(leases.remaining(7, t1, now_live.get(&7)), Err(LeaseRefusal::NotReady));
    }

    #[test]
    fn the_planted_take_over_keeps_the_expiry_first_seen() {
        let t0 = Instant::now();
        let mut leases = LeaderLeases::default();
        leases.observe(t0, &live(&[(5, 3000)]));
        let later = t0 + Duration::from_millis(2500);
        leases.promote(4, later, &live(&[(5, 3000)]), TakeOver::KeepOldExpiry);
        let record = LeaseRecord { ttl_ms: 3000, remaining_ms: 0 };
        assert_eq!(leases.remaining(5, later, Some(&record)).map(|r| r.0), Ok(Duration::from_millis(500)));
    }
}
