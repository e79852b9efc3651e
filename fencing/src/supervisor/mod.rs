//! The per-database-host supervisor: Patroni's failover rules as a pure state machine.
//!
//! The host feeds it [`Event`]s stamped with its own clock's readings and executes the
//! [`Decision`]s it returns. Roles: a **replica** holds a lease and campaigns for the leader key
//! when eligible; a **candidate** has won the key and is arming its watchdog and fencing the old
//! primary; a **primary** serves writes; a **demoted** host stepped down and stays out until its
//! database has rejoined as a replica.
//!
//! The safety rules, each checked next to the state it guards (and re-checked by
//! [`Supervisor::check_invariants`] after every step in debug builds):
//! - the safe deadline is the send time of the last answered renewal + ttl − clock margin, never
//!   counted from a reply ([`lease`]);
//! - a primary whose safe deadline passes, or whose renewals have gone unanswered for
//!   `retry_timeout`, demotes: stops accepting writes and drops its sessions. Trouble shorter
//!   than `retry_timeout` never demotes (unless the deadline itself passes);
//! - promotion needs the key won, eligibility ([`eligibility`]), the configured fence confirmed
//!   ([`crate::levels`]) and, with a watchdog, one armed that would fire before the deadline
//!   ([`watchdog`]). If every fence level fails, the key is released and the host stays a
//!   replica: availability is lost, never safety;
//! - with `watchdog = Required` a host that cannot arm one refuses leadership.
//!
//! Caller's duties:
//! 1. Pass monotonic readings of the host's own clock; call [`Supervisor::step`] with
//!    [`Event::Tick`] at least every `loop_wait` (more often is fine and makes deadlines sharper).
//! 2. Execute decisions in the order returned: `StopAcceptingWrites` before anything after it.
//! 3. Report each outcome as an event when it arrives; bound every consensus call so it ends
//!    (answered or failed) within `retry_timeout`.
//! 4. Report the send time of the *answered attempt* in `KeepAliveAnswered` and `LeaseGranted`.
//! 5. Never feed the watchdog after a `FeedWatchdog`'s `not_after` reading.

pub mod eligibility;
mod events;
pub mod lease;
pub mod watchdog;

pub use events::{Decision, DemoteReason, Event, Refusal, Role};

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::config::{ConfigError, SupervisorConfig, WatchdogMode};
use crate::levels::{FenceRun, FenceStep};
use crate::{LeaseId, MemberId, Token};
use eligibility::{Ineligible, Membership, PeerView};
use lease::HeldLease;
use watchdog::WatchdogState;

#[derive(Clone, Debug)]
enum RoleState {
    Replica,
    Candidate {
        token: Token,
        stage: Stage,
    },
    /// Invariant: `fenced == Some(token)`, the lease is held and safe (or failsafe holds), and
    /// the watchdog covers the safe deadline (Required ⇒ armed).
    Primary {
        token: Token,
    },
    Demoted,
}

#[derive(Clone, Debug)]
enum Stage {
    Arming,
    Fencing(FenceRun),
    /// Fenced; waiting for every promotion gate.
    Ready,
}

#[derive(Clone, Debug)]
enum LeaseSlot {
    None,
    Granting { asked_at: Duration },
    Held(HeldLease),
}

/// One database host's supervisor.
#[derive(Clone, Debug)]
pub struct Supervisor {
    cfg: SupervisorConfig,
    me: MemberId,
    now: Duration,
    role: RoleState,
    lease: LeaseSlot,
    /// The campaign in flight: when it was decided and with which lease.
    campaign: Option<(Duration, LeaseId)>,
    last_campaign: Option<Duration>,
    watchdog: WatchdogState,
    members: Membership,
    /// The key's holder as the last lost campaign read it.
    known_holder: Option<MemberId>,
    fence_target: Option<MemberId>,
    /// How many fence runs this supervisor started: the next run's number.
    fence_runs: u64,
    /// The token the configured fence confirmed for. Invariant: a primary's own token.
    fenced: Option<Token>,
    last_refusal: Option<Refusal>,
}

impl Supervisor {
    /// A supervisor for member `me`, starting as a replica at host clock reading `now`. A host
    /// that restarts (after STONITH, say) starts here again: a replica until it wins the key.
    pub fn new(cfg: SupervisorConfig, me: MemberId, now: Duration) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Supervisor {
            cfg,
            me,
            now,
            role: RoleState::Replica,
            lease: LeaseSlot::None,
            campaign: None,
            last_campaign: None,
            watchdog: WatchdogState::Disarmed,
            members: Membership::default(),
            known_holder: None,
            fence_target: None,
            fence_runs: 0,
            fenced: None,
            last_refusal: None,
        })
    }

    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Replica => Role::Replica,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Primary { .. } => Role::Primary,
            RoleState::Demoted => Role::Demoted,
        }
    }

    pub fn config(&self) -> &SupervisorConfig {
        &self.cfg
    }

    /// The reading until which this host may act as the key's holder, if it holds a lease.
    pub fn safe_until(&self) -> Option<Duration> {
        self.held().map(HeldLease::safe_until)
    }

    /// Why the last candidacy ended without a promotion.
    pub fn last_refusal(&self) -> Option<Refusal> {
        self.last_refusal
    }

    /// Whether this member may be promoted now, and if not why.
    pub fn eligibility(&self) -> Result<(), Ineligible> {
        self.members.eligibility(&self.cfg, self.now)
    }

    /// One event at host clock reading `now`; returns what to do, in order.
    pub fn step(&mut self, now: Duration, event: Event) -> Vec<Decision> {
        // A reading earlier than one already seen is taken as the later one: deadlines only come sooner.
        let now = now.max(self.now);
        self.now = now;
        let mut out = Vec::new();
        let tick = event == Event::Tick;
        self.apply(now, event, &mut out);
        self.enforce_deadlines(now, &mut out);
        if tick {
            self.run_loop(now, &mut out);
        }
        self.maybe_promote(now, &mut out);
        if let Err(violation) = self.check_invariants() {
            debug_assert!(false, "supervisor {} at {now:?}: {violation}", self.me.0);
        }
        out
    }

    fn held(&self) -> Option<&HeldLease> {
        match &self.lease {
            LeaseSlot::Held(l) => Some(l),
            _ => None,
        }
    }

    fn held_mut(&mut self) -> Option<&mut HeldLease> {
        match &mut self.lease {
            LeaseSlot::Held(l) => Some(l),
            _ => None,
        }
    }

    fn apply(&mut self, now: Duration, event: Event, out: &mut Vec<Decision>) {
        match event {
            Event::Tick => {
                let retry_timeout = self.cfg.retry_timeout;
                if let Some(l) = self.held_mut() {
                    if l.in_flight().is_some_and(|sent| now.saturating_sub(sent) >= retry_timeout) {
                        l.failed();
                    }
                }
                if let RoleState::Candidate { stage: Stage::Fencing(run), .. } = &mut self.role {
                    if let Some(step) = run.on_tick(now) {
                        self.fence_progress(step, out);
                    }
                }
            }
            Event::LeaseGranted { id, sent_at, ttl } => match self.lease {
                LeaseSlot::Granting { asked_at } => {
                    let l = HeldLease::granted(id, asked_at, sent_at, ttl, self.cfg.ttl, self.cfg.clock_margin_ppm);
                    self.lease = LeaseSlot::Held(l);
                }
                // A duplicate answer about the lease we hold changes nothing.
                LeaseSlot::Held(ref l) if l.id == id => {}
                // A grant nobody waits for any more would hold nothing but leak: give it back.
                _ => out.push(Decision::ReleaseKey { lease: id }),
            },
            Event::LeaseGrantFailed => {
                if matches!(self.lease, LeaseSlot::Granting { .. }) {
                    self.lease = LeaseSlot::None;
                }
            }
            Event::LeaseGone => {
                if self.held().is_some() {
                    self.lease = LeaseSlot::None;
                    match self.role {
                        RoleState::Primary { .. } => self.demote(DemoteReason::LeaseLost, out),
                        RoleState::Candidate { .. } => self.give_up(Refusal::LostLease, out),
                        RoleState::Replica | RoleState::Demoted => {}
                    }
                }
            }
            Event::CampaignWon { token } => self.won(now, token, out),
            Event::CampaignLost { holder } => {
                if let Some((_, lease)) = self.campaign.take() {
                    self.known_holder = holder;
                    if holder == Some(self.me) {
                        // An earlier campaign whose outcome we never learned won: we hold the key
                        // without knowing its token. Give it back; the next campaign is clean.
                        self.release(lease, out);
                    }
                }
            }
            Event::CampaignFailed => self.campaign = None,
            Event::KeepAliveAnswered { sent_at, ttl } => {
                let from_reply = self.cfg.planted.deadline_from_reply;
                let Some(l) = self.held_mut() else { return };
                let answered = if from_reply { l.answered_at_reply(now, ttl) } else { l.answered(sent_at, ttl) };
                if answered {
                    let safe_until = l.safe_until();
                    if matches!(self.role, RoleState::Candidate { .. } | RoleState::Primary { .. }) {
                        if let Some(not_after) = self.watchdog.feed(now, safe_until) {
                            out.push(Decision::FeedWatchdog { not_after });
                        }
                    }
                }
            }
            Event::KeepAliveFailed => {
                if let Some(l) = self.held_mut() {
                    l.failed();
                }
            }
            Event::LocalStatus(status) => self.members.set_local(status),
            Event::PeerReport { member, claims_primary, reachable, lag } => {
                self.members.report(self.me, member, PeerView { claims_primary, reachable, lag, at: now });
            }
            Event::FailsafeMembers(members) => self.members.set_failsafe(self.me, members),
            Event::WatchdogArmed => {
                if self.watchdog == WatchdogState::Arming {
                    self.watchdog.armed(now, self.cfg.watchdog_timeout());
                    if let RoleState::Candidate { stage: stage @ Stage::Arming, .. } = &mut self.role {
                        *stage = Stage::Ready; // replaced by fencing just below
                        self.begin_fencing(now, out);
                    }
                } else if !self.watchdog.is_armed() {
                    out.push(Decision::DisarmWatchdog);
                }
            }
            Event::WatchdogArmFailed => {
                if self.watchdog == WatchdogState::Arming {
                    self.watchdog = WatchdogState::Disarmed;
                    if let RoleState::Candidate { stage: Stage::Arming, .. } = self.role {
                        if self.cfg.watchdog == WatchdogMode::Required {
                            self.give_up(Refusal::WatchdogUnavailable, out);
                        } else {
                            self.begin_fencing(now, out);
                        }
                    }
                }
            }
            Event::FenceOutcome { at, outcome } => {
                if let RoleState::Candidate { stage: Stage::Fencing(run), .. } = &mut self.role {
                    if let Some(step) = run.on_outcome(now, at, outcome) {
                        self.fence_progress(step, out);
                    }
                }
            }
            Event::Rejoined => {
                if matches!(self.role, RoleState::Demoted) {
                    self.role = RoleState::Replica;
                }
            }
        }
    }

    fn won(&mut self, now: Duration, token: Token, out: &mut Vec<Decision>) {
        let Some((_, lease)) = self.campaign.take() else { return };
        let lease_still_ours = self.held().is_some_and(|l| l.id == lease);
        if !matches!(self.role, RoleState::Replica) || !lease_still_ours {
            // Won with a lease we gave up on, or while not a replica: the key must go back.
            out.push(Decision::ReleaseKey { lease });
            return;
        }
        self.known_holder = Some(self.me);
        if let Err(why) = self.members.eligibility(&self.cfg, now) {
            self.role = RoleState::Candidate { token, stage: Stage::Ready };
            self.give_up(Refusal::Ineligible(why), out);
            return;
        }
        self.fence_target = self.members.last_primary().or(self.previous_holder());
        if self.cfg.watchdog == WatchdogMode::Off {
            self.role = RoleState::Candidate { token, stage: Stage::Ready };
            self.begin_fencing(now, out);
        } else {
            self.role = RoleState::Candidate { token, stage: Stage::Arming };
            self.watchdog = WatchdogState::Arming;
            out.push(Decision::ArmWatchdog { timeout: self.cfg.watchdog_timeout() });
        }
    }

    fn previous_holder(&self) -> Option<MemberId> {
        self.known_holder.filter(|&m| m != self.me)
    }

    fn begin_fencing(&mut self, now: Duration, out: &mut Vec<Decision>) {
        let RoleState::Candidate { token, stage } = &mut self.role else { return };
        if self.cfg.fence.is_none() {
            // Strategy `none`: nothing to confirm; the old primary's lease and self-demotion are the fence.
            self.fenced = Some(*token);
            *stage = Stage::Ready;
            return;
        }
        out.push(Decision::StartFencing { old_primary: self.fence_target });
        self.fence_runs += 1;
        let (run, step) = FenceRun::start(&self.cfg.fence, self.fence_runs, now);
        *stage = Stage::Fencing(run);
        self.fence_progress(step, out);
    }

    fn fence_progress(&mut self, step: FenceStep, out: &mut Vec<Decision>) {
        let RoleState::Candidate { token, stage } = &mut self.role else { return };
        match step {
            FenceStep::Try { at, kind, deadline } => {
                out.push(Decision::FenceTry { target: self.fence_target, at, kind, deadline });
            }
            FenceStep::Confirmed { level } => {
                debug_assert!(matches!(stage, Stage::Fencing(run) if run.level_confirmed(level)));
                self.fenced = Some(*token);
                *stage = Stage::Ready;
            }
            FenceStep::AllLevelsFailed => self.give_up(Refusal::AllFenceLevelsFailed, out),
        }
    }

    /// Deadlines first: a primary past its deadline demotes before anything else is considered.
    fn enforce_deadlines(&mut self, now: Duration, out: &mut Vec<Decision>) {
        let Some(l) = self.held() else { return };
        let expired = l.expired(now);
        let unreachable = l.trouble(now).is_some_and(|t| t >= self.cfg.retry_timeout);
        let lease = l.id;
        match self.role {
            RoleState::Primary { .. } if expired || unreachable => {
                if self.members.failsafe_holds(&self.cfg, now) {
                    if let Some(not_after) = self.watchdog.feed_now(now) {
                        out.push(Decision::FeedWatchdog { not_after });
                    }
                    return;
                }
                let reason = if expired { DemoteReason::LeaseExpired } else { DemoteReason::ConsensusUnreachable };
                self.demote(reason, out);
            }
            RoleState::Candidate { .. } if expired || unreachable => self.give_up(Refusal::LostLease, out),
            RoleState::Replica | RoleState::Demoted if expired => self.release(lease, out),
            _ => {}
        }
    }

    /// The loop's work, once due: keep a lease, renew it, campaign when eligible.
    fn run_loop(&mut self, now: Duration, out: &mut Vec<Decision>) {
        let cfg = &self.cfg;
        match &mut self.lease {
            LeaseSlot::None if matches!(self.role, RoleState::Replica) => {
                self.lease = LeaseSlot::Granting { asked_at: now };
                out.push(Decision::GrantLease { ttl: cfg.ttl });
            }
            LeaseSlot::Granting { asked_at } if now.saturating_sub(*asked_at) >= cfg.retry_timeout => {
                self.lease = LeaseSlot::None; // given up; the next tick asks again
            }
            LeaseSlot::Held(l) if l.renewal_due(now, cfg.loop_wait) => {
                l.renewal_sent(now);
                out.push(Decision::Renew { lease: l.id });
            }
            _ => {}
        }
        if self.campaign.is_some_and(|(asked, _)| now.saturating_sub(asked) >= self.cfg.retry_timeout) {
            self.campaign = None;
        }
        let campaign_due = self.last_campaign.is_none_or(|last| now >= last + self.cfg.loop_wait);
        let healthy_lease = self.held().filter(|l| !l.expired(now));
        if let (RoleState::Replica, None, true, Some(l)) = (&self.role, self.campaign, campaign_due, healthy_lease) {
            if self.members.eligibility(&self.cfg, now).is_ok() {
                let lease = l.id;
                self.campaign = Some((now, lease));
                self.last_campaign = Some(now);
                out.push(Decision::Campaign { lease });
            }
        }
    }

    /// Every promotion gate, checked at the moment of promotion.
    fn maybe_promote(&mut self, now: Duration, out: &mut Vec<Decision>) {
        let RoleState::Candidate { token, stage: Stage::Ready } = self.role else { return };
        if self.fenced != Some(token) {
            return; // still arming; fencing starts when the watchdog answers
        }
        let Some(l) = self.held() else { return };
        if l.expired(now) || l.trouble(now).is_some_and(|t| t >= self.cfg.retry_timeout) {
            return; // enforce_deadlines gives up
        }
        if let Err(why) = self.members.eligibility(&self.cfg, now) {
            self.give_up(Refusal::Ineligible(why), out);
            return;
        }
        if self.cfg.watchdog == WatchdogMode::Required && !self.watchdog.is_armed() {
            self.give_up(Refusal::WatchdogUnavailable, out);
            return;
        }
        if !self.watchdog.covers(l.safe_until()) {
            return; // an arm reported late: wait until renewals carry the deadline past it
        }
        self.role = RoleState::Primary { token };
        self.last_refusal = None;
        out.push(Decision::Promote { token });
    }

    fn demote(&mut self, reason: DemoteReason, out: &mut Vec<Decision>) {
        out.extend([Decision::StopAcceptingWrites, Decision::DropSessions, Decision::Demote { reason }]);
        self.role = RoleState::Demoted;
        self.step_down(out);
    }

    /// A candidate gives the key back and stays a replica.
    fn give_up(&mut self, why: Refusal, out: &mut Vec<Decision>) {
        self.last_refusal = Some(why);
        self.role = RoleState::Replica;
        self.step_down(out);
    }

    fn step_down(&mut self, out: &mut Vec<Decision>) {
        self.fenced = None;
        self.fence_target = None;
        if self.watchdog.is_active() {
            self.watchdog = WatchdogState::Disarmed;
            out.push(Decision::DisarmWatchdog);
        }
        if let Some(lease) = self.held().map(|l| l.id) {
            self.release(lease, out);
        }
    }

    fn release(&mut self, lease: LeaseId, out: &mut Vec<Decision>) {
        if self.held().is_some_and(|l| l.id == lease) {
            self.lease = LeaseSlot::None;
        }
        out.push(Decision::ReleaseKey { lease });
    }

    /// Every safety invariant of the current state; `Err` names the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        let now = self.now;
        if let Some(l) = self.held() {
            l.check(now)?;
        }
        match &self.role {
            RoleState::Primary { token } => {
                if self.fenced != Some(*token) {
                    return Err(format!("primary with token {} but fence confirmed for {:?}", token.0, self.fenced));
                }
                let l = self.held().ok_or("primary without a lease")?;
                let failsafe = self.members.failsafe_holds(&self.cfg, now);
                if l.expired(now) && !failsafe {
                    return Err(format!("primary past its safe deadline {:?} at {now:?}", l.safe_until()));
                }
                if self.cfg.watchdog == WatchdogMode::Required && !self.watchdog.is_armed() {
                    return Err("primary without the required watchdog".into());
                }
                if !self.watchdog.covers(l.safe_until()) && !failsafe {
                    return Err(format!(
                        "primary whose watchdog may fire after its safe deadline {:?}",
                        l.safe_until()
                    ));
                }
            }
            RoleState::Candidate { stage, .. } => {
                if self.held().is_none() {
                    return Err("candidate without a lease".into());
                }
                if matches!(stage, Stage::Arming) && self.watchdog != WatchdogState::Arming {
                    return Err(format!("candidate arming, watchdog {:?}", self.watchdog));
                }
            }
            RoleState::Replica | RoleState::Demoted => {
                if self.watchdog.is_active() {
                    return Err(format!("{:?} with an active watchdog", self.role()));
                }
            }
        }
        Ok(())
    }
}
