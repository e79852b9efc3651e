//! At most one holder of a campaign key at any revision: the property a leader election on the
//! KV exists for (Patroni's leader key, etcd's `concurrency.Election`).
//!
//! A holder wins at revision `r` with lease `L` (the write that made it the key's holder) and
//! holds until `L` ends (revoked or expired: either deletes the key). So two wins of one key by
//! different holders at `r1 < r2` are lawful only if the first win's lease ended at a revision
//! below `r2`. Checked whenever a win or a lease end is seen, in whatever order they arrive.

use std::collections::BTreeMap;

use crate::types::LeaseId;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CampaignViolation {
    #[error(
        "two holders of {key:?}: {first} won it at revision {first_revision} with lease {first_lease}, which had not \
         ended when {second} won it at revision {second_revision}"
    )]
    TwoHolders {
        key: String,
        first: String,
        first_revision: u64,
        first_lease: LeaseId,
        second: String,
        second_revision: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Win {
    holder: String,
    revision: u64,
    lease: LeaseId,
}

#[derive(Clone, Debug, Default)]
pub struct Campaigns {
    wins: BTreeMap<String, Vec<Win>>,
    /// The revision at which each lease ended.
    ended: BTreeMap<LeaseId, u64>,
}

impl Campaigns {
    /// `holder` learned it won `key` at `revision` holding `lease`.
    pub fn on_won(&mut self, key: &str, holder: &str, revision: u64, lease: LeaseId) -> Result<(), CampaignViolation> {
        let win = Win { holder: holder.to_string(), revision, lease };
        let wins = self.wins.entry(key.to_string()).or_default();
        wins.push(win);
        wins.sort_by_key(|w| w.revision);
        self.check(key)
    }

    /// A lease ended at `revision`.
    pub fn on_lease_ended(&mut self, lease: LeaseId, revision: u64) -> Result<(), CampaignViolation> {
        self.ended.entry(lease).or_insert(revision);
        let keys: Vec<String> = self.wins.keys().cloned().collect();
        keys.iter().try_for_each(|k| self.check(k))
    }

    fn check(&self, key: &str) -> Result<(), CampaignViolation> {
        let Some(wins) = self.wins.get(key) else { return Ok(()) };
        for pair in wins.windows(2) {
            let (first, second) = (&pair[0], &pair[1]);
            if first.holder == second.holder && first.lease == second.lease {
                continue;
            }
            let ended_before = self.ended.get(&first.lease).is_some_and(|&end| end < second.revision);
            if !ended_before {
                return Err(CampaignViolation::TwoHolders {
                    key: key.to_string(),
                    first: first.holder.clone(),
                    first_revision: first.revision,
                    first_lease: first.lease,
                    second: second.holder.clone(),
                    second_revision: second.revision,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_win_needs_the_first_lease_ended_below_it() {
        let mut c = Campaigns::default();
        c.on_won("leader", "dc1", 10, 5).expect("first win");
        c.on_lease_ended(5, 20).expect("the first holder's lease ends");
        c.on_won("leader", "dc2", 25, 21).expect("then another may win");
        let v = c.on_won("leader", "dc3", 30, 26).expect_err("dc2's lease 21 is still live");
        assert!(v.to_string().contains("dc2 won it at revision 25 with lease 21"), "{v}");
    }

    #[test]
    fn wins_learned_out_of_order_are_judged_by_revision() {
        let mut c = Campaigns::default();
        c.on_won("leader", "dc2", 25, 21).expect("the later win is learned first");
        c.on_won("leader", "dc1", 10, 5).expect_err("lease 5 has not ended: dc1 still held it at 25");
        let mut c = Campaigns::default();
        c.on_won("leader", "dc2", 25, 21).expect("later win first");
        c.on_lease_ended(5, 20).expect("end learned before the win it precedes");
        c.on_won("leader", "dc1", 10, 5).expect("lawful once lease 5 is known to have ended at 20");
        c.on_won("other", "dc1", 26, 22).expect("keys are independent");
    }
}
