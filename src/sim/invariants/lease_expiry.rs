//! A lease never expires under a holder that kept it alive (etcd's lease contract; etcd issues
//! #15247 and #12528, where a stuck old leader renewed and revoked).
//!
//! When a KeepAlive sent at `t` is answered with a TTL, the holder may act as the holder until
//! `t + TTL` (by a clock that runs true; margins for clock rate are the holder's business). So a
//! lease may end by expiry only at or after the latest `t + TTL` of the answers its holders got:
//! the expiry takes effect when its revoke first applies on any node (from then on a reader can
//! see the keys gone and another client can take them).
//!
//! Answers and expiries arrive in either order (an answer can come back after a revoke applied
//! elsewhere), so both orders are checked. Times are simulated time.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::types::{LeaseId, NodeId};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseExpiryViolation {
    #[error(
        "lease {lease} expired at {expired_at:?} (its revoke first applied on node {node}, revision {revision}), but a \
         KeepAlive sent at {sent_at:?} was answered with a TTL of {ttl:?}: its holder may act as the holder until \
         {:?}",
        *sent_at + *ttl
    )]
    ExpiredUnderAHolder {
        lease: LeaseId,
        node: NodeId,
        revision: u64,
        expired_at: Duration,
        sent_at: Duration,
        ttl: Duration,
    },
}

#[derive(Clone, Debug, Default)]
pub struct LeaseExpiry {
    /// Per lease, the answered KeepAlive (or grant) whose `sent + ttl` is latest.
    promised: BTreeMap<LeaseId, (Duration, Duration)>,
    /// Per lease, where and when its expiry first applied.
    expired: BTreeMap<LeaseId, (NodeId, u64, Duration)>,
}

impl LeaseExpiry {
    /// A holder got an answer to a KeepAlive (or grant) it sent at `sent_at`.
    pub fn on_answered(
        &mut self,
        lease: LeaseId,
        sent_at: Duration,
        ttl: Duration,
    ) -> Result<(), LeaseExpiryViolation> {
        let promised = self.promised.entry(lease).or_insert((sent_at, ttl));
        if sent_at + ttl > promised.0 + promised.1 {
            *promised = (sent_at, ttl);
        }
        self.check(lease)
    }

    /// A node applied the revoke of an expired lease at `at`.
    pub fn on_expired(
        &mut self,
        lease: LeaseId,
        node: NodeId,
        revision: u64,
        at: Duration,
    ) -> Result<(), LeaseExpiryViolation> {
        self.expired.entry(lease).or_insert((node, revision, at));
        self.check(lease)
    }

    fn check(&self, lease: LeaseId) -> Result<(), LeaseExpiryViolation> {
        match (self.promised.get(&lease), self.expired.get(&lease)) {
            (Some(&(sent_at, ttl)), Some(&(node, revision, expired_at))) if expired_at < sent_at + ttl => {
                Err(LeaseExpiryViolation::ExpiredUnderAHolder { lease, node, revision, expired_at, sent_at, ttl })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn an_expiry_after_the_last_promise_passes_in_either_order() {
        let mut l = LeaseExpiry::default();
        l.on_answered(7, ms(1000), ms(3000)).expect("promise");
        l.on_answered(7, ms(500), ms(3000)).expect("an older promise changes nothing");
        l.on_expired(7, 1, 40, ms(4000)).expect("expired exactly at the promise");
        let mut l = LeaseExpiry::default();
        l.on_expired(7, 1, 40, ms(9000)).expect("expiry first");
        l.on_answered(7, ms(1000), ms(3000)).expect("the answer arrives late but promised less");
    }

    #[test]
    fn an_expiry_before_a_promise_ran_out_is_caught_in_either_order() {
        let mut l = LeaseExpiry::default();
        l.on_answered(7, ms(2000), ms(3000)).expect("promise");
        let v = l.on_expired(7, 2, 41, ms(4999)).expect_err("expired 1 ms early");
        assert!(v.to_string().contains("until 5s"), "{v}");
        let mut l = LeaseExpiry::default();
        l.on_expired(7, 2, 41, ms(4000)).expect("no promise yet");
        l.on_answered(7, ms(2000), ms(3000)).expect_err("an answer promising past the expiry");
        let mut l = LeaseExpiry::default();
        l.on_answered(8, ms(2000), ms(3000)).expect("promise on another lease");
        l.on_expired(7, 2, 41, ms(2500)).expect("leases are independent");
    }
}
