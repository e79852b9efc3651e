//! The ports a host implements so the supervisor's decisions reach the world: the simulator
//! implements them inside turmoil, a real deployment could implement them against etcd-like
//! stores, PDUs, firewalls and `/dev/watchdog`. Nothing in this crate implements them.
//!
//! Every call only *starts* an operation and returns its [`RequestId`]; the outcome comes back
//! later as an [`crate::supervisor::Event`] (or, for fence devices, a
//! [`crate::levels::DeviceOutcome`]) stamped with the host clock's reading when it arrived. No
//! call may block the supervisor, and every operation must end — answered, failed or timed out
//! — by a deadline the port enforces, because a supervisor waiting forever on a port is a
//! supervisor that never demotes.

use std::time::Duration;

use crate::{LeaseId, MemberId, Token};

/// Names one started operation, so its outcome can be matched to it (and a late outcome of an
/// abandoned one recognised and ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// The consensus store: the Raft KV through its leases, transactions and reads.
pub trait ConsensusStore {
    /// Grants a lease of `ttl`. Outcome: `LeaseGranted { id, sent_at, ttl }` where `sent_at` is
    /// when the answered attempt left this host (its clock), or `LeaseGrantFailed`.
    fn grant_lease(&mut self, ttl: Duration) -> RequestId;

    /// Takes the leader key for `member` by a transaction that succeeds only if the key does not
    /// exist (create revision 0), attaching it to `lease`. Outcome: `CampaignWon { token }` with
    /// the key's create revision, `CampaignLost { holder }` from the transaction's else-branch
    /// read, or `CampaignFailed` when the outcome is unknown.
    fn campaign(&mut self, lease: LeaseId, member: MemberId) -> RequestId;

    /// Renews `lease` through a leader that confirmed its leadership with a quorum first.
    /// Outcome: `KeepAliveAnswered { sent_at, ttl }` — `sent_at` the send time of the answered
    /// attempt, never the arrival of the answer — or `KeepAliveFailed` (no answer in time), or
    /// `LeaseGone` (the store says, for certain, that the lease is not live).
    fn keep_alive(&mut self, lease: LeaseId) -> RequestId;

    /// Revokes `lease`, deleting every key attached to it and no other: releasing the leader key
    /// this way can never delete a key a later holder created.
    fn revoke_lease(&mut self, lease: LeaseId) -> RequestId;

    /// Reads the leader key linearizably (never a serializable read: a member cut off from its
    /// quorum would answer with a holder that is long gone). Outcome: the holder and its token.
    fn read_leader(&mut self) -> RequestId;
}

/// A power switch reached by its own path (out of band, or across the same links as the rest).
pub trait PowerSwitch {
    /// Powers `member`'s host off. Confirmed only when the switch reports the outlet off.
    fn power_off(&mut self, member: MemberId) -> RequestId;
    /// Powers it back on. A host that comes back is a replica until it takes the key again.
    fn power_on(&mut self, member: MemberId) -> RequestId;
    /// Asks whether the outlet is on.
    fn status(&mut self, member: MemberId) -> RequestId;
}

/// A firewall that isolates one host.
pub trait Firewall {
    /// Blocks all traffic to and from `member`'s database, established connections included.
    /// Confirmed only once the rule is in force, not when the request was accepted.
    fn block(&mut self, member: MemberId) -> RequestId;
    fn unblock(&mut self, member: MemberId) -> RequestId;
}

/// The authority that issues the credentials (or accepts the fencing tokens) replicas check.
pub trait CredentialAuthority {
    /// Makes every replica refuse `member`'s credentials, or any token below `token`. Confirmed
    /// only when enough replicas acknowledged that the old primary cannot complete a synchronous
    /// commit.
    fn revoke(&mut self, member: MemberId, token: Token) -> RequestId;
}

/// The host's watchdog: once armed it resets the host unless fed within its timeout.
///
/// Two kinds exist and the simulator models both: a software watchdog stops counting while the
/// whole host is paused (softdog), a hardware one does not.
pub trait Watchdog {
    /// Arms it with `timeout`. Outcome: `WatchdogArmed` or `WatchdogArmFailed`.
    fn arm(&mut self, timeout: Duration) -> RequestId;
    /// Restarts its countdown.
    fn feed(&mut self);
    /// Stops it: the host will not be reset.
    fn disarm(&mut self);
}
