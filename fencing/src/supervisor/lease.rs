//! The holder's side of the lease: when its own clock says the leader key may no longer be
//! trusted.
//!
//! Safety property: **the safe deadline counts from the send time of the last answered renewal,
//! never from the answer.** The KV leader promises the lease lives `ttl` from when *it* renewed
//! it, which is after the request left this host; the answer can arrive arbitrarily late (a
//! paused process, a slow link), so `reply time + ttl` can lie past the lease's real expiry.
//! The clock margin covers this host's clock running faster than the leader's.
//!
//! The send time used is the *earlier* of the time this supervisor decided to renew and the send
//! time the host reports: a host that reports its reply time as the send time (the planted bug
//! "counts its deadline from the KeepAlive reply") cannot push the deadline out.

use std::time::Duration;

use crate::config::clock_margin;
use crate::LeaseId;

/// A lease this supervisor holds, and its renewals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLease {
    pub id: LeaseId,
    clock_margin_ppm: u64,
    /// The largest TTL the supervisor's timing rules were validated for.
    ttl_cap: Duration,
    /// Invariant: `safe_until == basis_send + basis_ttl − clock_margin(basis_ttl)`, and
    /// `basis_send` is no later than the decision to send the renewal it belongs to.
    safe_until: Duration,
    basis_send: Duration,
    basis_ttl: Duration,
    /// When the renewal in flight was decided, if one is.
    in_flight: Option<Duration>,
    /// When the oldest renewal not yet answered was decided: consensus trouble started then.
    unanswered_since: Option<Duration>,
    last_renewal: Duration,
}

impl HeldLease {
    /// A lease granted by a request decided at `asked_at` whose answered attempt was sent at
    /// `sent_at` (host clock), with the store's `ttl`.
    pub fn granted(
        id: LeaseId,
        asked_at: Duration,
        sent_at: Duration,
        ttl: Duration,
        ttl_cap: Duration,
        clock_margin_ppm: u64,
    ) -> Self {
        let mut lease = HeldLease {
            id,
            clock_margin_ppm,
            ttl_cap,
            safe_until: Duration::ZERO,
            basis_send: Duration::ZERO,
            basis_ttl: Duration::ZERO,
            in_flight: None,
            unanswered_since: None,
            last_renewal: asked_at,
        };
        lease.set_basis(asked_at.min(sent_at), ttl);
        lease
    }

    /// The host clock reading until which this holder may act as the key's holder.
    pub fn safe_until(&self) -> Duration {
        self.safe_until
    }

    /// The send time the deadline counts from.
    pub fn basis_send(&self) -> Duration {
        self.basis_send
    }

    pub fn expired(&self, now: Duration) -> bool {
        now >= self.safe_until
    }

    /// How long renewals have gone unanswered, if any is outstanding or failed since the last answer.
    pub fn trouble(&self, now: Duration) -> Option<Duration> {
        self.unanswered_since.map(|since| now.saturating_sub(since))
    }

    pub fn in_flight(&self) -> Option<Duration> {
        self.in_flight
    }

    /// A renewal is due a loop after the last one, or at once after a failed one.
    pub fn renewal_due(&self, now: Duration, loop_wait: Duration) -> bool {
        self.in_flight.is_none() && (self.unanswered_since.is_some() || now >= self.last_renewal + loop_wait)
    }

    pub fn renewal_sent(&mut self, now: Duration) {
        self.in_flight = Some(now);
        self.last_renewal = now;
        self.unanswered_since.get_or_insert(now);
    }

    /// A renewal answered: the store renewed the lease for `ttl` from a request sent at `sent_at`.
    /// Returns false (and changes nothing) if no renewal was in flight.
    pub fn answered(&mut self, sent_at: Duration, ttl: Duration) -> bool {
        let Some(decided) = self.in_flight.take() else { return false };
        let send = decided.min(sent_at);
        let before = self.safe_until;
        let candidate = deadline(send, ttl.min(self.ttl_cap), self.clock_margin_ppm);
        if candidate > self.safe_until {
            self.set_basis(send, ttl);
        }
        self.unanswered_since = None;
        debug_assert!(self.safe_until >= before, "a renewal never moves the safe deadline earlier");
        debug_assert!(self.safe_until <= deadline(decided, self.ttl_cap, self.clock_margin_ppm));
        true
    }

    /// The planted bug [`crate::config::Planted::deadline_from_reply`]: counts the deadline from
    /// `reply`, the moment the answer was read, whatever the send time was.
    pub fn answered_at_reply(&mut self, reply: Duration, ttl: Duration) -> bool {
        if self.in_flight.take().is_none() {
            return false;
        }
        if deadline(reply, ttl.min(self.ttl_cap), self.clock_margin_ppm) > self.safe_until {
            self.set_basis(reply, ttl);
        }
        self.unanswered_since = None;
        true
    }

    /// The renewal in flight failed (or was given up): trouble continues, a retry may go.
    pub fn failed(&mut self) {
        self.in_flight = None;
    }

    fn set_basis(&mut self, send: Duration, ttl: Duration) {
        self.basis_send = send;
        self.basis_ttl = ttl.min(self.ttl_cap);
        self.safe_until = deadline(self.basis_send, self.basis_ttl, self.clock_margin_ppm);
    }

    /// The invariant of this state, checked after every supervisor step.
    pub fn check(&self, now: Duration) -> Result<(), String> {
        let expected = deadline(self.basis_send, self.basis_ttl, self.clock_margin_ppm);
        if self.safe_until != expected {
            return Err(format!(
                "lease {}: safe deadline {:?} is not send {:?} + ttl {:?} − margin",
                self.id.0, self.safe_until, self.basis_send, self.basis_ttl
            ));
        }
        if self.basis_send > now {
            return Err(format!(
                "lease {}: deadline counts from {:?}, after now {:?}",
                self.id.0, self.basis_send, now
            ));
        }
        if self.basis_ttl > self.ttl_cap {
            return Err(format!(
                "lease {}: ttl {:?} above the configured {:?}",
                self.id.0, self.basis_ttl, self.ttl_cap
            ));
        }
        Ok(())
    }
}

/// `send + ttl − clock_margin(ttl)`.
pub fn deadline(send: Duration, ttl: Duration, clock_margin_ppm: u64) -> Duration {
    send + ttl.saturating_sub(clock_margin(ttl, clock_margin_ppm))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(30);

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn lease() -> HeldLease {
        // 1 % margin: 300 ms of a 30 s TTL.
        HeldLease::granted(LeaseId(7), ms(0), ms(0), TTL, TTL, 10_000)
    }

    #[test]
    fn the_deadline_counts_from_the_send_minus_the_margin() {
        let mut l = lease();
        assert_eq!(l.safe_until(), ms(29_700));
        l.renewal_sent(ms(10_000));
        assert!(l.answered(ms(10_000), TTL));
        assert_eq!(l.safe_until(), ms(39_700), "10 s + 30 s − 300 ms");
    }

    #[test]
    fn the_planted_reply_rule_outlives_the_stores_lease_by_the_wait() {
        let mut l = lease();
        l.renewal_sent(ms(10_000));
        // Answered at once, read 3 s later (the process was stopped).
        assert!(l.answered_at_reply(ms(13_000), TTL));
        assert_eq!(l.safe_until(), ms(42_700), "3 s past the store's 40 s, less the margin");
        assert!(l.safe_until() > ms(10_000) + TTL);
    }

    #[test]
    fn a_reply_time_reported_as_the_send_time_does_not_extend_the_deadline() {
        let mut l = lease();
        l.renewal_sent(ms(10_000));
        // The host (wrongly) reports when the answer came, 5 s after the request left.
        assert!(l.answered(ms(15_000), TTL));
        assert_eq!(l.safe_until(), ms(39_700), "counted from the decision to send, not from the reply");
    }

    #[test]
    fn an_answer_nobody_waits_for_changes_nothing() {
        let mut l = lease();
        assert!(!l.answered(ms(20_000), TTL));
        assert_eq!(l.safe_until(), ms(29_700));
    }

    #[test]
    fn a_shorter_ttl_never_moves_the_deadline_earlier() {
        let mut l = lease();
        l.renewal_sent(ms(1_000));
        assert!(l.answered(ms(1_000), Duration::from_secs(3)));
        assert_eq!(l.safe_until(), ms(29_700), "4 s − margin is earlier than what was already promised");
    }

    #[test]
    fn a_longer_ttl_than_configured_is_capped() {
        let mut l = lease();
        l.renewal_sent(ms(1_000));
        assert!(l.answered(ms(1_000), Duration::from_secs(300)));
        assert_eq!(l.safe_until(), ms(30_700));
    }

    #[test]
    fn trouble_lasts_from_the_first_unanswered_renewal_until_an_answer() {
        let mut l = lease();
        l.renewal_sent(ms(10_000));
        l.failed();
        assert!(l.renewal_due(ms(10_001), Duration::from_secs(10)), "retry at once");
        l.renewal_sent(ms(12_000));
        assert_eq!(l.trouble(ms(14_000)), Some(ms(4_000)), "since the first failed renewal");
        assert!(l.answered(ms(12_000), TTL));
        assert_eq!(l.trouble(ms(14_000)), None);
        assert_eq!(l.safe_until(), ms(41_700));
    }
}
