//! The host's watchdog as the supervisor tracks it.
//!
//! Safety property: **a primary's watchdog, if the supervisor stops feeding it, fires no later
//! than the lease's safe deadline.** That is what makes a paused supervisor safe: by the time the
//! leader key can expire and another member win it, this host has been reset. So a feed is only
//! allowed at readings up to `safe_until − timeout` (the decision carries that bound, and the
//! host must drop a feed it could not make in time), and `fires_by` — an upper bound on when the
//! watchdog fires — never exceeds the safe deadline of a primary.

use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchdogState {
    Disarmed,
    /// Arming requested; no answer yet.
    Arming,
    /// Armed with `timeout`; fires no later than `fires_by` unless fed.
    Armed {
        timeout: Duration,
        fires_by: Duration,
    },
}

impl WatchdogState {
    pub fn is_active(&self) -> bool {
        !matches!(self, WatchdogState::Disarmed)
    }

    pub fn is_armed(&self) -> bool {
        matches!(self, WatchdogState::Armed { .. })
    }

    /// The host reports the watchdog armed at `now`: it was armed no later than `now`.
    pub fn armed(&mut self, now: Duration, timeout: Duration) {
        *self = WatchdogState::Armed { timeout, fires_by: now + timeout };
    }

    /// The latest reading at which a feed keeps the watchdog within `safe_until`, if a feed is
    /// still possible at `now`; records the feed's worst case.
    pub fn feed(&mut self, now: Duration, safe_until: Duration) -> Option<Duration> {
        let WatchdogState::Armed { timeout, fires_by } = self else { return None };
        let not_after = safe_until.checked_sub(*timeout)?;
        if now > not_after {
            return None;
        }
        *fires_by = (*fires_by).max(not_after + *timeout);
        Some(not_after)
    }

    /// A feed with no lease bound (failsafe: the lease has passed, the failsafe members vouch):
    /// feed now or not at all.
    pub fn feed_now(&mut self, now: Duration) -> Option<Duration> {
        let WatchdogState::Armed { timeout, fires_by } = self else { return None };
        *fires_by = (*fires_by).max(now + *timeout);
        Some(now)
    }

    /// Does the watchdog fire by `safe_until` if never fed again? Vacuously true when disarmed.
    pub fn covers(&self, safe_until: Duration) -> bool {
        match self {
            WatchdogState::Armed { fires_by, .. } => *fires_by <= safe_until,
            WatchdogState::Disarmed | WatchdogState::Arming => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn a_feed_is_allowed_only_while_the_watchdog_would_still_fire_before_the_deadline() {
        let mut w = WatchdogState::Disarmed;
        assert_eq!(w.feed(s(0), s(30)), None, "nothing to feed");
        w.armed(s(0), s(25));
        assert!(w.covers(s(29)));
        assert_eq!(w.feed(s(4), s(30)), Some(s(5)), "feed by 5 s so it fires by 30 s");
        assert!(w.covers(s(30)));
        assert_eq!(w.feed(s(6), s(30)), None, "too late: fed at 6 s it would fire at 31 s");
        assert_eq!(w.feed(s(6), s(20)), None, "a deadline shorter than the timeout never allows a feed");
    }

    #[test]
    fn an_arm_reported_late_is_not_covered_until_the_lease_moves_on() {
        let mut w = WatchdogState::Arming;
        w.armed(s(10), s(25));
        assert!(!w.covers(s(30)), "fires by 35 s, lease safe until 30 s");
        assert!(w.covers(s(40)));
    }
}
