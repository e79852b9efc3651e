//! Who may be promoted: Patroni's eligibility rules, from what this host knows of itself and of
//! the other members.
//!
//! Safety property: **never promote while another member still reports itself primary and
//! reachable**, and (lost-write property) never promote a replica further behind than
//! `maximum_lag_on_failover`, nor, in synchronous mode, one outside the synchronous set.
//!
//! In failsafe mode an old primary may keep serving past its lease while every failsafe member
//! answers it directly; so a replica that saw a member primary and reachable stays ineligible for
//! a whole `ttl` after that report, long enough for the old primary to miss its next failsafe
//! answers (fresh for 1.5 × `loop_wait`, [`SupervisorConfig::failsafe_freshness`]) and demote: the
//! configuration requires `ttl > 2.5 × loop_wait` in failsafe mode.
//!
//! Caller's duty: report every member once a loop, with `reachable = false` when it did not
//! answer; the latest report about a member is taken as current, however old.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::config::SupervisorConfig;
use crate::MemberId;

/// This host's own replication state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalStatus {
    /// Log positions behind the last known primary.
    pub lag: u64,
    /// Whether this member is in the synchronous set (as recorded in the consensus store).
    pub in_sync_set: bool,
}

/// What this host last heard from (or about) another member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerView {
    pub claims_primary: bool,
    /// It answered this host directly.
    pub reachable: bool,
    pub lag: u64,
    /// Host clock reading of the report.
    pub at: Duration,
}

/// Why this member may not be promoted now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Ineligible {
    #[error("no replication status reported yet")]
    NoLocalStatus,
    #[error("lag {lag} exceeds maximum_lag_on_failover {max}")]
    Lagging { lag: u64, max: u64 },
    #[error("synchronous mode and not a member of the synchronous set")]
    NotInSyncSet,
    #[error("member {} still reports itself primary and answers", .member.0)]
    PrimaryStillReachable { member: MemberId },
    #[error("failsafe mode: member {} was primary and answering at {:?}, ineligible until {:?}", .member.0, .seen_at, .until)]
    FailsafePrimaryRecentlySeen { member: MemberId, seen_at: Duration, until: Duration },
}

#[derive(Clone, Debug, Default)]
pub struct Membership {
    local: Option<LocalStatus>,
    peers: BTreeMap<MemberId, PeerView>,
    /// When each member last reported itself primary and reachable.
    primary_seen: BTreeMap<MemberId, Duration>,
    failsafe: BTreeSet<MemberId>,
}

impl Membership {
    pub fn set_local(&mut self, status: LocalStatus) {
        self.local = Some(status);
    }

    pub fn report(&mut self, me: MemberId, member: MemberId, view: PeerView) {
        if member == me {
            return;
        }
        if view.claims_primary && view.reachable {
            self.primary_seen.insert(member, view.at);
        }
        self.peers.insert(member, view);
    }

    pub fn set_failsafe(&mut self, me: MemberId, members: impl IntoIterator<Item = MemberId>) {
        self.failsafe = members.into_iter().filter(|&m| m != me).collect();
    }

    pub fn peer(&self, member: MemberId) -> Option<&PeerView> {
        self.peers.get(&member)
    }

    /// The member that most recently reported itself primary, if any.
    pub fn last_primary(&self) -> Option<MemberId> {
        self.peers.iter().filter(|(_, v)| v.claims_primary).max_by_key(|(_, v)| v.at).map(|(&m, _)| m)
    }

    /// May this member be promoted at `now`?
    pub fn eligibility(&self, cfg: &SupervisorConfig, now: Duration) -> Result<(), Ineligible> {
        let local = self.local.ok_or(Ineligible::NoLocalStatus)?;
        if local.lag > cfg.maximum_lag_on_failover {
            return Err(Ineligible::Lagging { lag: local.lag, max: cfg.maximum_lag_on_failover });
        }
        if cfg.synchronous_mode && !local.in_sync_set {
            return Err(Ineligible::NotInSyncSet);
        }
        if let Some((&member, _)) = self.peers.iter().find(|(_, v)| v.claims_primary && v.reachable) {
            return Err(Ineligible::PrimaryStillReachable { member });
        }
        if cfg.failsafe_mode {
            for (&member, &seen_at) in &self.primary_seen {
                let until = seen_at + cfg.ttl;
                if now < until {
                    return Err(Ineligible::FailsafePrimaryRecentlySeen { member, seen_at, until });
                }
            }
        }
        Ok(())
    }

    /// Failsafe: a primary cut off from consensus keeps serving only while every member of the
    /// failsafe list answered it directly within the last 1.5 × `loop_wait`, none of them claiming to
    /// be primary. An empty list never holds.
    pub fn failsafe_holds(&self, cfg: &SupervisorConfig, now: Duration) -> bool {
        cfg.failsafe_mode
            && !self.failsafe.is_empty()
            && self.failsafe.iter().all(|m| {
                self.peers.get(m).is_some_and(|v| {
                    (v.reachable || cfg.planted.failsafe_counts_timeouts)
                        && !v.claims_primary
                        && now.saturating_sub(v.at) <= cfg.failsafe_freshness()
                        && v.at <= now
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: MemberId = MemberId(1);

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    fn view(claims_primary: bool, reachable: bool, at: Duration) -> PeerView {
        PeerView { claims_primary, reachable, lag: 0, at }
    }

    fn eligible_members() -> Membership {
        let mut m = Membership::default();
        m.set_local(LocalStatus { lag: 0, in_sync_set: true });
        m
    }

    #[test]
    fn a_member_that_never_reported_its_lag_is_not_eligible() {
        let m = Membership::default();
        assert_eq!(m.eligibility(&SupervisorConfig::patroni_defaults(), s(0)), Err(Ineligible::NoLocalStatus));
    }

    #[test]
    fn a_lagging_member_is_not_eligible_and_one_at_the_limit_is() {
        let cfg = SupervisorConfig { maximum_lag_on_failover: 100, ..SupervisorConfig::patroni_defaults() };
        let mut m = Membership::default();
        m.set_local(LocalStatus { lag: 101, in_sync_set: false });
        assert_eq!(m.eligibility(&cfg, s(0)), Err(Ineligible::Lagging { lag: 101, max: 100 }));
        m.set_local(LocalStatus { lag: 100, in_sync_set: false });
        assert_eq!(m.eligibility(&cfg, s(0)), Ok(()));
    }

    #[test]
    fn in_synchronous_mode_only_the_synchronous_set_is_eligible() {
        let cfg = SupervisorConfig { synchronous_mode: true, ..SupervisorConfig::patroni_defaults() };
        let mut m = Membership::default();
        m.set_local(LocalStatus { lag: 0, in_sync_set: false });
        assert_eq!(m.eligibility(&cfg, s(0)), Err(Ineligible::NotInSyncSet));
    }

    #[test]
    fn a_reachable_primary_blocks_promotion_until_it_stops_claiming_or_answering() {
        let cfg = SupervisorConfig::patroni_defaults();
        let mut m = eligible_members();
        m.report(ME, MemberId(2), view(true, true, s(1)));
        assert_eq!(m.eligibility(&cfg, s(1)), Err(Ineligible::PrimaryStillReachable { member: MemberId(2) }));
        m.report(ME, MemberId(2), view(true, false, s(2)));
        assert_eq!(m.eligibility(&cfg, s(2)), Ok(()), "an unreachable old primary is the fence's job");
        assert_eq!(m.last_primary(), Some(MemberId(2)));
    }

    #[test]
    fn in_failsafe_mode_a_primary_seen_answering_blocks_promotion_for_a_ttl() {
        let cfg = SupervisorConfig { failsafe_mode: true, ..SupervisorConfig::patroni_defaults() };
        let mut m = eligible_members();
        m.report(ME, MemberId(2), view(true, true, s(10)));
        m.report(ME, MemberId(2), view(true, false, s(11)));
        assert!(matches!(m.eligibility(&cfg, s(39)), Err(Ineligible::FailsafePrimaryRecentlySeen { .. })));
        assert_eq!(m.eligibility(&cfg, s(40)), Ok(()));
    }

    #[test]
    fn failsafe_holds_only_while_every_listed_member_answers_freshly() {
        let cfg = SupervisorConfig { failsafe_mode: true, ..SupervisorConfig::patroni_defaults() };
        let mut m = eligible_members();
        assert!(!m.failsafe_holds(&cfg, s(0)), "an empty list never holds");
        m.set_failsafe(ME, [ME, MemberId(2), MemberId(3)]);
        m.report(ME, MemberId(2), view(false, true, s(5)));
        assert!(!m.failsafe_holds(&cfg, s(5)), "member 3 has not answered");
        m.report(ME, MemberId(3), view(false, true, s(6)));
        assert!(m.failsafe_holds(&cfg, s(20)));
        assert!(!m.failsafe_holds(&cfg, s(21)), "member 2's answer is older than 1.5 × loop_wait");
        m.report(ME, MemberId(2), view(true, true, s(21)));
        assert!(!m.failsafe_holds(&cfg, s(21)), "a member that claims primary is no failsafe answer");
        let off = SupervisorConfig { failsafe_mode: false, ..cfg };
        m.report(ME, MemberId(2), view(false, true, s(21)));
        assert!(!m.failsafe_holds(&off, s(21)), "off unless configured");
    }
}
