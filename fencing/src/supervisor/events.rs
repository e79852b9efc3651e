//! The supervisor's vocabulary: the events a host reports and the decisions it must execute.

use std::time::Duration;

use super::eligibility::{Ineligible, LocalStatus};
use crate::levels::{Attempt, DeviceKind, DeviceOutcome};
use crate::{LeaseId, MemberId, Token};

/// What happened, as the host observed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Time passed: deadlines are checked, the loop's work is done when due.
    Tick,
    LeaseGranted {
        id: LeaseId,
        sent_at: Duration,
        ttl: Duration,
    },
    LeaseGrantFailed,
    /// The store said, for certain, that the lease is not live.
    LeaseGone,
    /// The campaign transaction succeeded; `token` is the key's create revision.
    CampaignWon {
        token: Token,
    },
    /// The key exists; `holder` as the transaction's else-branch read it.
    CampaignLost {
        holder: Option<MemberId>,
    },
    /// The campaign's outcome is unknown.
    CampaignFailed,
    /// The renewal in flight was answered; `sent_at` is when its answered attempt left the host.
    KeepAliveAnswered {
        sent_at: Duration,
        ttl: Duration,
    },
    /// The renewal in flight got no answer in time.
    KeepAliveFailed,
    LocalStatus(LocalStatus),
    PeerReport {
        member: MemberId,
        claims_primary: bool,
        reachable: bool,
        lag: u64,
    },
    /// The failsafe list, as last read from the store.
    FailsafeMembers(Vec<MemberId>),
    WatchdogArmed,
    WatchdogArmFailed,
    FenceOutcome {
        at: Attempt,
        outcome: DeviceOutcome,
    },
    /// The database finished rejoining as a replica after a demotion.
    Rejoined,
}

/// What the host must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    GrantLease {
        ttl: Duration,
    },
    /// Take the leader key by a transaction on create revision 0, attached to `lease`.
    Campaign {
        lease: LeaseId,
    },
    Renew {
        lease: LeaseId,
    },
    /// Revoke `lease`: the leader key goes with it if attached, and no other holder's key can.
    ReleaseKey {
        lease: LeaseId,
    },
    ArmWatchdog {
        timeout: Duration,
    },
    /// Feed the watchdog, but not at a clock reading after `not_after`.
    FeedWatchdog {
        not_after: Duration,
    },
    DisarmWatchdog,
    /// Fencing begins; `old_primary` is `None` when no previous primary is known, which the
    /// devices must read as "every other database host".
    StartFencing {
        old_primary: Option<MemberId>,
    },
    /// Run one attempt of a fence device against `target`.
    FenceTry {
        target: Option<MemberId>,
        at: Attempt,
        kind: DeviceKind,
        deadline: Duration,
    },
    Promote {
        token: Token,
    },
    StopAcceptingWrites,
    DropSessions,
    Demote {
        reason: DemoteReason,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoteReason {
    /// The safe deadline passed without an answered renewal.
    LeaseExpired,
    /// Renewals went unanswered for `retry_timeout`.
    ConsensusUnreachable,
    /// The store said the lease is gone.
    LeaseLost,
}

/// Why a candidate gave the key back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Ineligible(Ineligible),
    WatchdogUnavailable,
    AllFenceLevelsFailed,
    /// Its lease expired or consensus was unreachable for `retry_timeout` before it could promote.
    LostLease,
}

/// The supervisor's role, as the outside sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Replica,
    Candidate,
    Primary,
    Demoted,
}
