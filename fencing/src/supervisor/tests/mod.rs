//! One test per rule of issue 11, named as the rule, with the negative cases beside them.

use std::time::Duration;

use super::eligibility::LocalStatus;
use super::*;
use crate::levels::{Attempt, Device, DeviceKind, DeviceOutcome, FencePlan, Level};

const ME: MemberId = MemberId(1);
const OLD: MemberId = MemberId(2);
const LEASE: LeaseId = LeaseId(40);
const TOKEN: Token = Token(41);
const TTL: Duration = Duration::from_secs(30);

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

/// Patroni's defaults with a 1 % clock margin: a lease granted at 0 is safe until 29.7 s.
fn cfg() -> SupervisorConfig {
    SupervisorConfig::patroni_defaults()
}

fn stonith(retries: u32) -> Device {
    Device::new(DeviceKind::Stonith, s(2), retries)
}

struct Host {
    sup: Supervisor,
    now: Duration,
    /// Every decision so far, in order.
    log: Vec<Decision>,
}

impl Host {
    fn new(cfg: SupervisorConfig) -> Host {
        Host { sup: Supervisor::new(cfg, ME, Duration::ZERO).expect("valid"), now: Duration::ZERO, log: vec![] }
    }

    fn at(&mut self, now: Duration, event: Event) -> Vec<Decision> {
        self.now = now;
        let out = self.sup.step(now, event);
        self.sup.check_invariants().expect("invariants hold after every step");
        self.log.extend(out.iter().cloned());
        out
    }

    fn promoted(&self) -> bool {
        self.log.iter().any(|d| matches!(d, Decision::Promote { .. }))
    }

    /// Tick at 0: a lease is granted (sent at 0), the member reports itself caught up, and the
    /// next tick campaigns.
    fn replica_with_lease(cfg: SupervisorConfig) -> Host {
        let mut h = Host::new(cfg);
        assert_eq!(h.at(s(0), Event::Tick), vec![Decision::GrantLease { ttl: TTL }]);
        h.at(ms(5), Event::LeaseGranted { id: LEASE, sent_at: s(0), ttl: TTL });
        h.at(ms(6), Event::LocalStatus(LocalStatus { lag: 0, in_sync_set: true }));
        h
    }

    /// Campaigns at `now` and wins.
    fn win(&mut self, now: Duration) -> Vec<Decision> {
        let out = self.at(now, Event::Tick);
        assert!(out.contains(&Decision::Campaign { lease: LEASE }), "campaigns: {out:?}");
        self.at(now + ms(10), Event::CampaignWon { token: TOKEN })
    }

    /// A primary under strategy `none`, promoted at 10 ms.
    fn primary(cfg: SupervisorConfig) -> Host {
        let mut h = Host::replica_with_lease(cfg);
        let out = h.win(ms(0));
        assert_eq!(out, vec![Decision::Promote { token: TOKEN }]);
        assert_eq!(h.sup.role(), Role::Primary);
        h
    }

    /// Renewal decided at `sent` and answered at `answered`.
    fn renew(&mut self, sent: Duration, answered: Duration) -> Vec<Decision> {
        let out = self.at(sent, Event::Tick);
        assert!(out.contains(&Decision::Renew { lease: LEASE }), "renews at {sent:?}: {out:?}");
        self.at(answered, Event::KeepAliveAnswered { sent_at: sent, ttl: TTL })
    }
}

fn demotion(reason: DemoteReason) -> Vec<Decision> {
    vec![
        Decision::StopAcceptingWrites,
        Decision::DropSessions,
        Decision::Demote { reason },
        Decision::ReleaseKey { lease: LEASE },
    ]
}

// --- Configuration ------------------------------------------------------------------------

#[test]
fn a_supervisor_refuses_an_impossible_configuration() {
    let bad = SupervisorConfig { retry_timeout: s(11), ..cfg() };
    assert!(matches!(Supervisor::new(bad, ME, s(0)), Err(ConfigError::LoopAndRetriesExceedTtl { .. })));
}

// --- Safe deadline: from the send, never from the reply ------------------------------------

#[test]
fn the_safe_deadline_counts_from_the_send_of_the_last_answered_renewal() {
    let mut h = Host::primary(cfg());
    assert_eq!(h.sup.safe_until(), Some(ms(29_700)), "grant sent at 0 + 30 s − 300 ms");
    h.renew(s(10), ms(10_400));
    assert_eq!(h.sup.safe_until(), Some(ms(39_700)), "from the send at 10 s, not the answer at 10.4 s");
}

#[test]
fn a_reply_time_later_than_the_send_time_does_not_extend_the_deadline() {
    let mut h = Host::primary(cfg());
    assert!(h.at(s(10), Event::Tick).contains(&Decision::Renew { lease: LEASE }));
    // A host that reports the reply's arrival (18 s) as the send time.
    h.at(s(18), Event::KeepAliveAnswered { sent_at: s(18), ttl: TTL });
    assert_eq!(h.sup.safe_until(), Some(ms(39_700)), "still counted from 10 s");
    assert!(h.at(ms(39_700), Event::Tick).starts_with(&demotion(DemoteReason::LeaseExpired)[..3]));
}

#[test]
fn a_grant_reported_with_its_reply_time_counts_from_the_request() {
    let mut h = Host::new(cfg());
    h.at(s(0), Event::Tick);
    h.at(s(4), Event::LeaseGranted { id: LEASE, sent_at: s(4), ttl: TTL });
    assert_eq!(h.sup.safe_until(), Some(ms(29_700)));
}

#[test]
fn a_duplicate_grant_answer_never_releases_the_lease_in_use_but_a_stray_grant_is_given_back() {
    let mut h = Host::primary(cfg());
    assert_eq!(h.at(s(1), Event::LeaseGranted { id: LEASE, sent_at: s(0), ttl: TTL }), vec![]);
    let stray = LeaseId(99);
    assert_eq!(
        h.at(s(2), Event::LeaseGranted { id: stray, sent_at: s(1), ttl: TTL }),
        vec![Decision::ReleaseKey { lease: stray }]
    );
    assert_eq!(h.sup.role(), Role::Primary);
}

#[test]
fn an_answer_to_no_renewal_changes_nothing() {
    let mut h = Host::primary(cfg());
    h.at(s(5), Event::KeepAliveAnswered { sent_at: s(5), ttl: TTL });
    assert_eq!(h.sup.safe_until(), Some(ms(29_700)));
}

// --- Demotion --------------------------------------------------------------------------------

#[test]
fn a_primary_whose_safe_deadline_passes_demotes_stops_writes_and_drops_sessions() {
    let mut h = Host::primary(cfg());
    // The supervisor was paused from 1 s to 29.7 s: its first tick finds the deadline gone.
    h.at(s(1), Event::Tick);
    assert_eq!(h.at(ms(29_699), Event::Tick), vec![Decision::Renew { lease: LEASE }], "not yet");
    assert_eq!(h.at(ms(29_700), Event::Tick), demotion(DemoteReason::LeaseExpired));
    assert_eq!(h.sup.role(), Role::Demoted);
}

#[test]
fn consensus_trouble_shorter_than_retry_timeout_never_demotes() {
    let mut h = Host::primary(cfg());
    assert!(h.at(s(10), Event::Tick).contains(&Decision::Renew { lease: LEASE }));
    h.at(s(12), Event::KeepAliveFailed);
    for t in [13_000, 15_000, 17_000, 19_000] {
        h.at(ms(t), Event::Tick);
        h.at(ms(t + 1), Event::KeepAliveFailed);
    }
    // The retry decided at 19.999 s is answered: 9.999 s of trouble, then none.
    h.renew(ms(19_999), ms(19_999));
    assert_eq!(h.sup.role(), Role::Primary, "9.999 s of trouble");
    for t in (20..60).map(s) {
        if h.at(t, Event::Tick).contains(&Decision::Renew { lease: LEASE }) {
            h.at(t + ms(1), Event::KeepAliveAnswered { sent_at: t, ttl: TTL });
        }
    }
    assert_eq!(h.sup.role(), Role::Primary);
    assert!(!h.log.iter().any(|d| matches!(d, Decision::Demote { .. } | Decision::StopAcceptingWrites)));
}

#[test]
fn consensus_trouble_of_retry_timeout_demotes_before_the_deadline() {
    let mut h = Host::primary(cfg());
    assert!(h.at(s(10), Event::Tick).contains(&Decision::Renew { lease: LEASE }));
    h.at(s(11), Event::KeepAliveFailed);
    h.at(s(15), Event::Tick);
    h.at(s(16), Event::KeepAliveFailed);
    assert_eq!(h.at(s(20), Event::Tick), demotion(DemoteReason::ConsensusUnreachable));
    assert!(s(20) < ms(29_700), "a retry_timeout before the key could expire");
}

#[test]
fn a_renewal_that_hangs_counts_as_trouble() {
    let mut h = Host::primary(cfg());
    assert!(h.at(s(10), Event::Tick).contains(&Decision::Renew { lease: LEASE }));
    h.at(ms(19_999), Event::Tick);
    assert_eq!(h.sup.role(), Role::Primary);
    assert_eq!(h.at(s(20), Event::Tick), demotion(DemoteReason::ConsensusUnreachable));
}

#[test]
fn a_primary_told_its_lease_is_gone_demotes_at_once() {
    let mut h = Host::primary(cfg());
    h.at(s(10), Event::Tick);
    let out = h.at(ms(10_010), Event::LeaseGone);
    assert_eq!(out[..3], demotion(DemoteReason::LeaseLost)[..3]);
    assert!(!out.contains(&Decision::ReleaseKey { lease: LEASE }), "nothing left to release");
}

#[test]
fn a_demoted_host_stays_out_until_it_has_rejoined() {
    let mut h = Host::primary(cfg());
    h.at(s(30), Event::Tick);
    assert_eq!(h.sup.role(), Role::Demoted);
    for t in 31..50 {
        let out = h.at(s(t), Event::Tick);
        assert!(out.is_empty(), "a demoted host neither grants nor campaigns: {out:?}");
    }
    h.at(s(50), Event::Rejoined);
    assert_eq!(h.sup.role(), Role::Replica);
    assert_eq!(h.at(s(51), Event::Tick), vec![Decision::GrantLease { ttl: TTL }]);
}

// --- Promotion: won, eligible, fenced ----------------------------------------------------------

#[test]
fn a_replica_that_did_not_win_the_key_never_promotes() {
    let mut h = Host::replica_with_lease(SupervisorConfig { fence: FencePlan::single(stonith(0)), ..cfg() });
    h.at(s(0), Event::Tick);
    h.at(ms(10), Event::CampaignLost { holder: Some(OLD) });
    // Fence outcomes and watchdog answers nobody asked for change nothing.
    let at = Attempt { run: 1, level: 0, device: 0, attempt: 1 };
    h.at(ms(20), Event::FenceOutcome { at, outcome: DeviceOutcome::Confirmed });
    h.at(ms(30), Event::WatchdogArmed);
    h.at(s(10), Event::Tick);
    assert!(!h.promoted());
    assert_eq!(h.sup.role(), Role::Replica);
}

#[test]
fn a_lagging_replica_does_not_campaign_and_gives_back_a_key_won_while_lagging() {
    let mut h = Host::replica_with_lease(SupervisorConfig { maximum_lag_on_failover: 100, ..cfg() });
    h.at(ms(7), Event::LocalStatus(LocalStatus { lag: 101, in_sync_set: false }));
    let out = h.at(s(0), Event::Tick);
    assert!(!out.iter().any(|d| matches!(d, Decision::Campaign { .. })), "{out:?}");

    // Eligible when it campaigned, lagging by the time it won.
    h.at(s(1), Event::LocalStatus(LocalStatus { lag: 0, in_sync_set: false }));
    assert!(h.at(s(1), Event::Tick).contains(&Decision::Campaign { lease: LEASE }));
    h.at(ms(1_005), Event::LocalStatus(LocalStatus { lag: 500, in_sync_set: false }));
    assert_eq!(h.at(ms(1_010), Event::CampaignWon { token: TOKEN }), vec![Decision::ReleaseKey { lease: LEASE }]);
    assert!(!h.promoted());
    assert!(matches!(h.sup.last_refusal(), Some(Refusal::Ineligible(Ineligible::Lagging { lag: 500, max: 100 }))));
}

#[test]
fn in_synchronous_mode_a_replica_outside_the_sync_set_never_promotes() {
    let sync = SupervisorConfig { synchronous_mode: true, maximum_lag_on_failover: 0, ..cfg() };
    let mut h = Host::replica_with_lease(sync);
    h.at(ms(7), Event::LocalStatus(LocalStatus { lag: 0, in_sync_set: false }));
    for t in 0..5 {
        let out = h.at(s(t * 10), Event::Tick);
        assert!(!out.iter().any(|d| matches!(d, Decision::Campaign { .. })));
    }
    assert_eq!(h.sup.eligibility(), Err(Ineligible::NotInSyncSet));
}

#[test]
fn no_promotion_while_another_member_still_reports_itself_primary_and_reachable() {
    let mut h = Host::replica_with_lease(cfg());
    h.at(ms(7), Event::PeerReport { member: OLD, claims_primary: true, reachable: true, lag: 0 });
    assert!(!h.at(s(0), Event::Tick).iter().any(|d| matches!(d, Decision::Campaign { .. })));
    h.at(s(1), Event::PeerReport { member: OLD, claims_primary: true, reachable: false, lag: 0 });
    assert!(h.at(s(10), Event::Tick).contains(&Decision::Campaign { lease: LEASE }));
    // It answers again, still claiming primary, before the win arrives.
    h.at(ms(10_005), Event::PeerReport { member: OLD, claims_primary: true, reachable: true, lag: 0 });
    assert_eq!(h.at(ms(10_010), Event::CampaignWon { token: TOKEN }), vec![Decision::ReleaseKey { lease: LEASE }]);
    assert!(!h.promoted());
}

#[test]
fn promotion_waits_for_the_fence_and_aims_it_at_the_old_primary() {
    let plan =
        FencePlan { levels: vec![Level { devices: vec![stonith(0), Device::new(DeviceKind::Firewall, s(1), 0)] }] };
    let mut h = Host::replica_with_lease(SupervisorConfig { fence: plan, ..cfg() });
    h.at(ms(7), Event::PeerReport { member: OLD, claims_primary: true, reachable: false, lag: 0 });
    let out = h.win(ms(10));
    let first = Attempt { run: 1, level: 0, device: 0, attempt: 1 };
    assert_eq!(
        out,
        vec![
            Decision::StartFencing { old_primary: Some(OLD) },
            Decision::FenceTry { target: Some(OLD), at: first, kind: DeviceKind::Stonith, deadline: ms(2_020) },
        ]
    );
    assert_eq!(h.sup.role(), Role::Candidate);
    let out = h.at(s(1), Event::FenceOutcome { at: first, outcome: DeviceOutcome::Confirmed });
    let second = Attempt { run: 1, level: 0, device: 1, attempt: 1 };
    assert_eq!(
        out,
        vec![Decision::FenceTry { target: Some(OLD), at: second, kind: DeviceKind::Firewall, deadline: s(2) }]
    );
    assert!(!h.promoted(), "STONITH alone does not confirm a level that also needs the firewall");
    let out = h.at(ms(1_500), Event::FenceOutcome { at: second, outcome: DeviceOutcome::Confirmed });
    assert_eq!(out, vec![Decision::Promote { token: TOKEN }]);
}

#[test]
fn a_fence_timeout_never_leads_to_promotion() {
    let mut h = Host::replica_with_lease(SupervisorConfig { fence: FencePlan::single(stonith(1)), ..cfg() });
    h.win(ms(0));
    let first = Attempt { run: 1, level: 0, device: 0, attempt: 1 };
    h.at(s(1), Event::FenceOutcome { at: first, outcome: DeviceOutcome::TimedOut });
    // The retry never answers: its deadline passes on a tick.
    let out = h.at(s(4), Event::Tick);
    assert!(out.contains(&Decision::ReleaseKey { lease: LEASE }), "{out:?}");
    // Its confirmation arrives too late to count.
    let second = Attempt { run: 1, level: 0, device: 0, attempt: 2 };
    h.at(ms(4_100), Event::FenceOutcome { at: second, outcome: DeviceOutcome::Confirmed });
    assert!(!h.promoted());
    assert_eq!(h.sup.role(), Role::Replica);
    assert_eq!(h.sup.last_refusal(), Some(Refusal::AllFenceLevelsFailed));
}

#[test]
fn when_every_fence_level_fails_the_key_is_released_and_the_host_stays_a_replica() {
    let plan = FencePlan {
        levels: vec![
            Level { devices: vec![stonith(0)] },
            Level { devices: vec![Device::new(DeviceKind::Firewall, s(1), 0)] },
        ],
    };
    let mut h = Host::replica_with_lease(SupervisorConfig { fence: plan, ..cfg() });
    h.win(ms(0));
    let out = h.at(
        s(1),
        Event::FenceOutcome { at: Attempt { run: 1, level: 0, device: 0, attempt: 1 }, outcome: DeviceOutcome::Failed },
    );
    assert!(matches!(out[..], [Decision::FenceTry { kind: DeviceKind::Firewall, .. }]), "level 1 next: {out:?}");
    let out = h.at(
        s(2),
        Event::FenceOutcome { at: Attempt { run: 1, level: 1, device: 0, attempt: 1 }, outcome: DeviceOutcome::Failed },
    );
    assert_eq!(out, vec![Decision::ReleaseKey { lease: LEASE }]);
    assert_eq!(h.sup.role(), Role::Replica);
    // Availability lost, never safety: it campaigns again later, and fences again if it wins.
    assert_eq!(h.at(s(10), Event::Tick), vec![Decision::GrantLease { ttl: TTL }]);
    h.at(ms(10_005), Event::LeaseGranted { id: LEASE, sent_at: s(10), ttl: TTL });
    h.win(s(20));
    // The first run's device answers late; it must not confirm the second run's attempt.
    let late = Attempt { run: 1, level: 0, device: 0, attempt: 1 };
    h.at(ms(20_100), Event::FenceOutcome { at: late, outcome: DeviceOutcome::Confirmed });
    assert!(!h.promoted());
    let current = Attempt { run: 2, ..late };
    assert_eq!(
        h.at(ms(20_200), Event::FenceOutcome { at: current, outcome: DeviceOutcome::Confirmed }),
        vec![Decision::Promote { token: TOKEN }]
    );
}

#[test]
fn a_candidate_whose_lease_runs_out_while_fencing_gives_up() {
    let mut h = Host::replica_with_lease(SupervisorConfig {
        fence: FencePlan::single(Device::new(DeviceKind::Stonith, s(40), 0)),
        ..cfg()
    });
    h.win(ms(0));
    h.at(s(10), Event::Tick);
    h.at(s(11), Event::KeepAliveFailed);
    let out = h.at(s(20), Event::Tick);
    assert!(out.contains(&Decision::ReleaseKey { lease: LEASE }), "{out:?}");
    assert_eq!(h.sup.last_refusal(), Some(Refusal::LostLease));
    h.at(
        s(21),
        Event::FenceOutcome {
            at: Attempt { run: 1, level: 0, device: 0, attempt: 1 },
            outcome: DeviceOutcome::Confirmed,
        },
    );
    assert!(!h.promoted());
}

// --- Watchdog ----------------------------------------------------------------------------------

#[test]
fn the_watchdog_is_armed_with_ttl_minus_safety_margin_before_promotion() {
    let mut h = Host::replica_with_lease(SupervisorConfig { watchdog: WatchdogMode::Required, ..cfg() });
    assert_eq!(h.win(ms(0)), vec![Decision::ArmWatchdog { timeout: s(25) }]);
    assert_eq!(h.sup.role(), Role::Candidate, "not before the watchdog is armed");
    assert_eq!(h.at(ms(20), Event::WatchdogArmed), vec![Decision::Promote { token: TOKEN }]);
    let pos = |want: fn(&Decision) -> bool| h.log.iter().position(want).expect("present");
    assert!(pos(|d| matches!(d, Decision::ArmWatchdog { .. })) < pos(|d| matches!(d, Decision::Promote { .. })));
}

#[test]
fn with_watchdog_required_a_host_that_cannot_arm_it_refuses_leadership() {
    let mut h = Host::replica_with_lease(SupervisorConfig { watchdog: WatchdogMode::Required, ..cfg() });
    h.win(ms(0));
    assert_eq!(h.at(ms(20), Event::WatchdogArmFailed), vec![Decision::ReleaseKey { lease: LEASE }]);
    assert!(!h.promoted());
    assert_eq!(h.sup.last_refusal(), Some(Refusal::WatchdogUnavailable));
}

#[test]
fn with_watchdog_automatic_a_host_that_cannot_arm_it_may_still_lead() {
    let mut h = Host::replica_with_lease(SupervisorConfig { watchdog: WatchdogMode::Automatic, ..cfg() });
    h.win(ms(0));
    assert_eq!(h.at(ms(20), Event::WatchdogArmFailed), vec![Decision::Promote { token: TOKEN }]);
}

#[test]
fn the_watchdog_is_fed_only_while_it_would_fire_before_the_safe_deadline() {
    let mut h = Host::replica_with_lease(SupervisorConfig { watchdog: WatchdogMode::Required, ..cfg() });
    h.win(ms(0));
    h.at(ms(20), Event::WatchdogArmed);
    // Fed on a prompt answer: fed by 14.7 s it fires by 39.7 s, the new safe deadline.
    assert_eq!(h.renew(s(10), ms(10_050)), vec![Decision::FeedWatchdog { not_after: ms(14_700) }]);
    // An answer 4.8 s late: a feed then would let the watchdog fire after the deadline.
    assert_eq!(h.renew(s(20), ms(24_800)), vec![]);
}

#[test]
fn a_watchdog_armed_late_holds_promotion_until_the_lease_covers_it() {
    let mut h = Host::replica_with_lease(SupervisorConfig { watchdog: WatchdogMode::Required, ..cfg() });
    h.win(ms(0));
    // Armed at 8 s: fires by 33 s, after the 29.7 s deadline.
    assert_eq!(h.at(s(8), Event::WatchdogArmed), vec![]);
    assert_eq!(h.sup.role(), Role::Candidate);
    let out = h.renew(s(10), ms(10_010));
    assert_eq!(out, vec![Decision::FeedWatchdog { not_after: ms(14_700) }, Decision::Promote { token: TOKEN }]);
}

#[test]
fn a_demotion_disarms_the_watchdog_after_stopping_writes() {
    let mut h = Host::replica_with_lease(SupervisorConfig { watchdog: WatchdogMode::Required, ..cfg() });
    h.win(ms(0));
    h.at(ms(20), Event::WatchdogArmed);
    let out = h.at(s(30), Event::Tick);
    assert_eq!(
        out,
        vec![
            Decision::StopAcceptingWrites,
            Decision::DropSessions,
            Decision::Demote { reason: DemoteReason::LeaseExpired },
            Decision::DisarmWatchdog,
            Decision::ReleaseKey { lease: LEASE },
        ]
    );
}

// --- Failsafe ----------------------------------------------------------------------------------

fn failsafe_primary() -> Host {
    let mut h = Host::primary(SupervisorConfig { failsafe_mode: true, ..cfg() });
    h.at(ms(20), Event::FailsafeMembers(vec![ME, OLD, MemberId(3)]));
    h
}

fn answers(h: &mut Host, now: Duration) {
    for m in [OLD, MemberId(3)] {
        h.at(now, Event::PeerReport { member: m, claims_primary: false, reachable: true, lag: 0 });
    }
}

#[test]
fn in_failsafe_mode_a_primary_cut_off_from_consensus_serves_while_every_member_answers_it() {
    let mut h = failsafe_primary();
    for t in (10..60).step_by(5) {
        answers(&mut h, s(t));
        h.at(s(t), Event::Tick);
        h.at(s(t) + ms(1), Event::KeepAliveFailed);
    }
    assert_eq!(h.sup.role(), Role::Primary, "50 s without consensus, every failsafe member answering");
    // Member 3 stops answering; its last answer (at 55 s) ages past 1.5 × loop_wait.
    h.at(s(60), Event::PeerReport { member: OLD, claims_primary: false, reachable: true, lag: 0 });
    h.at(s(68), Event::PeerReport { member: OLD, claims_primary: false, reachable: true, lag: 0 });
    let out = h.at(s(70), Event::Tick);
    assert!(!out.contains(&Decision::StopAcceptingWrites), "15 s: still fresh: {out:?}");
    let out = h.at(ms(70_001), Event::Tick);
    assert!(out.starts_with(&[Decision::StopAcceptingWrites, Decision::DropSessions]), "{out:?}");
}

#[test]
fn without_failsafe_mode_the_same_primary_demotes() {
    let mut h = Host::primary(cfg());
    h.at(ms(20), Event::FailsafeMembers(vec![ME, OLD, MemberId(3)]));
    answers(&mut h, s(10));
    h.at(s(10), Event::Tick);
    h.at(s(11), Event::KeepAliveFailed);
    answers(&mut h, s(20)); // every member answering does not help without failsafe mode
    assert_eq!(h.sup.role(), Role::Demoted);
    assert!(h.log.contains(&Decision::Demote { reason: DemoteReason::ConsensusUnreachable }));
}

#[test]
fn in_failsafe_mode_a_replica_waits_a_ttl_after_it_last_saw_a_primary_answering() {
    let mut h = Host::replica_with_lease(SupervisorConfig { failsafe_mode: true, ..cfg() });
    h.at(ms(7), Event::PeerReport { member: OLD, claims_primary: true, reachable: true, lag: 0 });
    h.at(s(1), Event::PeerReport { member: OLD, claims_primary: true, reachable: false, lag: 0 });
    for t in 1..31 {
        let out = h.at(s(t), Event::Tick);
        assert!(!out.iter().any(|d| matches!(d, Decision::Campaign { .. })), "at {t}s");
        if out.contains(&Decision::Renew { lease: LEASE }) {
            h.at(s(t) + ms(1), Event::KeepAliveAnswered { sent_at: s(t), ttl: TTL });
        }
    }
    assert!(h.at(s(31), Event::Tick).contains(&Decision::Campaign { lease: LEASE }));
}

// --- Unfencing ---------------------------------------------------------------------------------

#[test]
fn a_host_back_from_stonith_is_a_replica_until_it_legitimately_wins_the_key() {
    // A fresh supervisor is what a powered-off host starts with.
    let mut h = Host::new(SupervisorConfig { fence: FencePlan::single(stonith(0)), ..cfg() });
    assert_eq!(h.sup.role(), Role::Replica);
    h.at(ms(1), Event::CampaignWon { token: TOKEN }); // a stale answer from its previous life
    h.at(ms(2), Event::WatchdogArmed);
    assert_eq!(h.sup.role(), Role::Replica);
    assert!(!h.promoted());
}

mod random;
