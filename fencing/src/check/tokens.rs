//! Safety property: **fencing tokens never decrease along an acknowledged write's chain.** On
//! the ancestry of every acknowledged entry, from position 1 to the entry, the tokens the entries
//! were appended under are non-decreasing.
//!
//! A later holder of the leader key has a larger token, and replicas refuse replication under a
//! token lower than the highest they have seen. So an entry appended under token `t` right after
//! an entry of token `t' > t` means a deposed primary kept writing onto a log that had already
//! seen its successor — it was not fenced, and a write it acknowledged rests on that. The matrix
//! counts it with forks as TWO PRIMARIES. Decreases on branches nobody acknowledged are allowed:
//! a deposed primary may scribble on its own log until it is stopped; it must not be believed.

use std::fmt;

use super::chain::Chains;
use super::{AckedEntry, DbRecord, EntryId, Outcome, Violation};

pub const PROPERTY: &str = "tokens monotone";

/// A token that went down on the chain of an acknowledged entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenDecrease {
    /// The first acknowledged entry (in the record's ack order) with a decrease on its chain.
    pub acked: AckedEntry,
    /// Where the token goes down on that chain (the lowest such position): `after` sits here,
    /// right after `before`, and `before.token > after.token`.
    pub pos: u64,
    pub before: EntryId,
    pub after: EntryId,
    /// How many distinct acknowledged entries have a decrease on their chain.
    pub affected: usize,
}

impl fmt::Display for TokenDecrease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = if self.affected == 1 { "y has a decrease on its" } else { "ies have a decrease on their" };
        write!(
            f,
            "fencing token went down on an acknowledged write's chain: at position {} entry {} (token {}) follows \
             entry {} (token {}), on the chain of {}. Member {} appended under token {} onto a log that had seen \
             token {}: it was not fenced. {} acknowledged entr{s} chain (TWO PRIMARIES).",
            self.pos,
            self.after,
            self.after.token.0,
            self.before,
            self.before.token.0,
            self.acked,
            self.after.member.0,
            self.after.token.0,
            self.before.token.0,
            self.affected,
        )
    }
}

/// Judges `record`: no token decrease on the chain of any acknowledged entry.
pub fn check(record: &DbRecord) -> Outcome {
    super::on_chains(record, PROPERTY, judge)
}

pub(crate) fn judge(chains: &Chains<'_>) -> Outcome {
    let record = chains.record();
    // `drop[i]`: the lowest entry on `i`'s chain whose token is below its parent's. One pass in
    // preorder (parents first) carries it down every chain.
    let mut drop: Vec<Option<usize>> = vec![None; chains.len()];
    for &i in chains.preorder() {
        drop[i] = chains
            .parent(i)
            .and_then(|p| drop[p].or_else(|| (chains.entry(i).id.token < chains.entry(p).id.token).then_some(i)));
    }
    let mut bad: Vec<usize> = (0..record.acks.len()).filter(|&k| drop[chains.ack_entry(k)].is_some()).collect();
    let Some(&first) = bad.first() else { return Outcome::Pass };
    let at = drop[chains.ack_entry(first)].expect("filtered on it");
    let before = chains.parent(at).expect("a decrease follows a parent");
    bad.sort_unstable_by_key(|&k| chains.ack_entry(k));
    bad.dedup_by_key(|k| chains.ack_entry(*k));
    Outcome::Fail(Violation::TokenDecrease(Box::new(TokenDecrease {
        acked: AckedEntry::of_ack(record, first),
        pos: chains.entry(at).pos,
        before: chains.entry(before).id,
        after: chains.entry(at).id,
        affected: bad.len(),
    })))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Hist;
    use super::*;
    use crate::Token;

    fn decrease_of(record: &DbRecord) -> TokenDecrease {
        match check(record) {
            Outcome::Fail(Violation::TokenDecrease(d)) => *d,
            other => panic!("expected a token decrease, got {other}"),
        }
    }

    #[test]
    fn rising_and_equal_tokens_pass() {
        assert_eq!(check(&DbRecord::default()), Outcome::Pass);
        let mut h = Hist::sync();
        let a = h.extend(1, 3, None, 2);
        let b = h.extend(2, 5, Some(a[1]), 2);
        let c = h.extend(1, 8, Some(b[1]), 1);
        h.ack(a[0], 1).ack(b[1], 2).ack(c[0], 3);
        assert_eq!(check(&h.r), Outcome::Pass);
    }

    /// m2 (token 5) writes positions 1–2; m1, still believing in token 3, appends position 3 on
    /// top of them and acknowledges it.
    #[test]
    fn an_acknowledged_write_under_a_lower_token_fails() {
        let mut h = Hist::sync();
        let b = h.extend(2, 5, None, 2);
        let a = h.extend(1, 3, Some(b[1]), 1);
        h.ack(b[0], 1).ack(a[0], 2);
        let d = decrease_of(&h.r);
        assert_eq!((d.acked.entry, d.pos, d.before, d.after, d.affected), (a[0], 3, b[1], a[0], 1));
        assert_eq!((d.before.token, d.after.token), (Token(5), Token(3)));
        let text = d.to_string();
        for needle in ["position 3", "m1/t3/#1 (token 3)", "m2/t5/#2 (token 5)", "Member 1 appended under token 3"] {
            assert!(text.contains(needle), "{needle:?} missing from: {text}");
        }
    }

    #[test]
    fn a_decrease_deep_in_the_chain_is_named_where_it_happens() {
        let mut h = Hist::sync();
        let b = h.extend(2, 5, None, 2);
        let a = h.extend(1, 3, Some(b[1]), 1);
        let c = h.extend(3, 9, Some(a[0]), 3);
        h.ack(c[2], 7).ack(c[0], 8);
        let d = decrease_of(&h.r);
        assert_eq!((d.acked.entry, d.pos, d.before, d.after, d.affected), (c[2], 3, b[1], a[0], 2));
    }

    #[test]
    fn a_decrease_on_an_unacknowledged_branch_passes() {
        let mut h = Hist::sync();
        let b = h.extend(2, 5, None, 2);
        h.extend(1, 3, Some(b[1]), 2);
        h.ack(b[1], 1);
        assert_eq!(check(&h.r), Outcome::Pass, "the deposed primary's scribbles were never acknowledged");
    }
}
