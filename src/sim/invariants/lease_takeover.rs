//! After a leader change no lease expires earlier than the take-over rule allows (etcd's
//! `Promote`): renewals are not in the log, so the new leader of term `T` cannot know when each
//! lease was last renewed, and must give every lease that existed when it took over at least
//! its full TTL plus the maximum election timeout, counted from its election.
//!
//! Checked for each expiry: the lease was granted before term `T` began (its id, the grant's
//! index, is below the first index of term `T`), where `T` is the term of the leader that
//! proposed the revoke (the term of the revoke's entry); then the revoke must first apply at or
//! after `elected(T) + TTL + max election timeout`. A lease granted within term `T` is held to
//! [`super::lease_expiry`]'s rule instead, and so is a lease that was ever checkpointed (a new
//! leader lawfully restarts it from a checkpointed remainder; a renewal then clears it). Leaders
//! checkpoint only when configured to (`lease_checkpoint_interval`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::types::LeaseId;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseTakeoverViolation {
    #[error(
        "lease {lease} (TTL {ttl:?}) expired at {expired_at:?} under the leader of term {term}, elected at \
         {elected_at:?}: a new leader must give every lease it takes over its TTL plus an election timeout \
         ({extension:?}), so no expiry before {:?}",
        *elected_at + *ttl + *extension
    )]
    ExpiredTooSoonAfterTakeover {
        lease: LeaseId,
        ttl: Duration,
        term: u64,
        elected_at: Duration,
        extension: Duration,
        expired_at: Duration,
    },
}

#[derive(Clone, Debug, Default)]
pub struct LeaseTakeover {
    /// The maximum election timeout: the extension every take-over adds.
    pub extension: Duration,
    /// When each term's leader was first seen elected (its committed vote).
    elected: BTreeMap<u64, Duration>,
    /// The first log index of each term, from appended entries.
    first_index: BTreeMap<u64, u64>,
    /// Leases that ever had a remainder checkpointed: a new leader lawfully restarts them from it.
    checkpointed: std::collections::BTreeSet<LeaseId>,
}

impl LeaseTakeover {
    pub fn on_checkpointed(&mut self, lease: LeaseId) {
        self.checkpointed.insert(lease);
    }

    pub fn on_elected(&mut self, term: u64, at: Duration) {
        self.elected.entry(term).or_insert(at);
    }

    /// An entry of `term` at `index` was appended somewhere.
    pub fn on_appended(&mut self, term: u64, index: u64) {
        let first = self.first_index.entry(term).or_insert(index);
        *first = (*first).min(index);
    }

    /// The revoke of expired lease `lease` (TTL `ttl`), an entry of `term`, first applied at `at`.
    pub fn on_expired(
        &self,
        lease: LeaseId,
        ttl: Duration,
        term: u64,
        at: Duration,
    ) -> Result<(), LeaseTakeoverViolation> {
        let (Some(&elected_at), Some(&first)) = (self.elected.get(&term), self.first_index.get(&term)) else {
            return Ok(());
        };
        if lease >= first || self.checkpointed.contains(&lease) || at >= elected_at + ttl + self.extension {
            return Ok(());
        }
        Err(LeaseTakeoverViolation::ExpiredTooSoonAfterTakeover {
            lease,
            ttl,
            term,
            elected_at,
            extension: self.extension,
            expired_at: at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_lease_older_than_the_term_gets_its_ttl_and_an_election() {
        let mut t = LeaseTakeover { extension: ms(2000), ..LeaseTakeover::default() };
        t.on_elected(3, ms(10_000));
        t.on_appended(3, 50);
        t.on_appended(3, 49);
        t.on_expired(12, ms(3000), 3, ms(15_000)).expect("at the bound");
        let v = t.on_expired(12, ms(3000), 3, ms(14_999)).expect_err("1 ms early");
        assert!(v.to_string().contains("no expiry before 15s"), "{v}");
        t.on_expired(49, ms(3000), 3, ms(10_500)).expect("granted in the term: not this rule's business");
        t.on_expired(12, ms(3000), 4, ms(1)).expect("a term never seen elected is not judged");
    }
}
