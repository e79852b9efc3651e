//! Safety property: **acknowledged writes lie on one chain, with no fork.** Every acknowledged
//! entry is an ancestor-or-self (through parent links) of the acknowledged entry with the highest
//! position.
//!
//! This is the database side of "never two primaries": a primary acknowledges only writes on its
//! own log, so two acknowledged entries on different branches mean two members each acted as
//! primary, and clients were told both stories. The matrix calls it TWO PRIMARIES. Two different
//! acknowledged entries at the same position are a fork too: one chain holds one entry per
//! position.
//!
//! What it allows: unacknowledged entries off the chain (a new primary truncating its
//! predecessor's unacknowledged tail is normal failover), and acknowledgements that arrive late in
//! simulated time — a deposed primary's ack of an entry that is on the chain was a legal promise.
//! The check is about the chain, never about the clock.

use std::fmt;

use super::chain::Chains;
use super::{AckedEntry, DbRecord, EntryId, Outcome, Violation};

pub const PROPERTY: &str = "no fork";

/// Two acknowledged entries on different branches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fork {
    /// The acknowledged entry with the highest position: the chain every ack should be on.
    pub tip: AckedEntry,
    /// An acknowledged entry off that chain (the first such in the record's ack order).
    pub branch: AckedEntry,
    /// The first position where the two chains hold different entries.
    pub parted_at: u64,
    /// The last entry the two chains share (at `parted_at − 1`), if any.
    pub common: Option<EntryId>,
    /// How many distinct acknowledged entries lie off the tip's chain.
    pub off_chain: usize,
}

impl fmt::Display for Fork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acknowledged writes forked: {} is not on the chain of the highest acknowledged write, {}; ",
            self.branch, self.tip
        )?;
        match self.common {
            Some(common) => {
                write!(f, "their chains part at position {} (after the common entry {common}). ", self.parted_at)?
            }
            None => write!(f, "their chains share no entry (they part at position {}). ", self.parted_at)?,
        }
        let s = if self.off_chain == 1 { "y lies" } else { "ies lie" };
        write!(f, "{} acknowledged entr{s} off that chain: ", self.off_chain)?;
        let (b, t) = (&self.branch, &self.tip);
        if b.acked_by == t.acked_by {
            write!(f, "member {} acknowledged writes on both branches", b.acked_by.0)?;
        } else {
            write!(f, "members {} and {} both acted as primary", b.acked_by.0, t.acked_by.0)?;
        }
        write!(
            f,
            " (under tokens {} and {}) and clients were told both stories (TWO PRIMARIES).",
            b.entry.token.0, t.entry.token.0
        )
    }
}

/// Judges `record`: every acknowledged entry on the chain of the highest one.
pub fn check(record: &DbRecord) -> Outcome {
    super::on_chains(record, PROPERTY, judge)
}

pub(crate) fn judge(chains: &Chains<'_>) -> Outcome {
    let record = chains.record();
    // The highest acknowledged position; on a tie, the first such ack in the record's order.
    let Some(tip_ack) =
        (0..record.acks.len()).max_by_key(|&k| (chains.entry(chains.ack_entry(k)).pos, std::cmp::Reverse(k)))
    else {
        return Outcome::Pass;
    };
    let tip = chains.ack_entry(tip_ack);
    let mut off: Vec<usize> =
        (0..record.acks.len()).filter(|&k| !chains.is_ancestor_or_self(chains.ack_entry(k), tip)).collect();
    let Some(&branch_ack) = off.first() else { return Outcome::Pass };
    let branch = chains.ack_entry(branch_ack);
    let common = chains.common_ancestor(branch, tip);
    off.sort_unstable_by_key(|&k| chains.ack_entry(k));
    off.dedup_by_key(|k| chains.ack_entry(*k));
    Outcome::Fail(Violation::Fork(Box::new(Fork {
        tip: AckedEntry::of_ack(record, tip_ack),
        branch: AckedEntry::of_ack(record, branch_ack),
        parted_at: common.map_or(1, |c| chains.entry(c).pos + 1),
        common: common.map(|c| chains.entry(c).id),
        off_chain: off.len(),
    })))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Hist;
    use super::super::{Ack, Malformed};
    use super::*;
    use crate::{MemberId, Token};

    fn fork_of(record: &DbRecord) -> Fork {
        match check(record) {
            Outcome::Fail(Violation::Fork(f)) => *f,
            other => panic!("expected a fork, got {other}"),
        }
    }

    #[test]
    fn an_empty_record_and_an_unacknowledged_one_pass() {
        assert_eq!(check(&DbRecord::default()), Outcome::Pass);
        let mut h = Hist::sync();
        let a = h.extend(1, 1, None, 2);
        h.extend(2, 2, Some(a[0]), 2);
        assert_eq!(check(&h.r), Outcome::Pass, "forked logs, but nothing on the branches was promised");
    }

    #[test]
    fn acks_from_a_single_member_on_its_log_pass() {
        let mut h = Hist::sync();
        let a = h.extend(1, 1, None, 5);
        for (t, id) in a.iter().enumerate() {
            h.ack(*id, t as u64);
        }
        h.ack(a[2], 9);
        assert_eq!(check(&h.r), Outcome::Pass);
    }

    /// m1 (token 1) appends 1–3 and acknowledges 1–2; m2 (token 2) takes over from position 2,
    /// dropping m1's unacknowledged 3, and acknowledges its own 3–4.
    #[test]
    fn a_new_primary_truncating_an_unacknowledged_tail_passes() {
        let mut h = Hist::sync();
        let a = h.extend(1, 1, None, 3);
        h.ack(a[0], 1).ack(a[1], 2);
        let b = h.extend(2, 2, Some(a[1]), 2);
        h.ack(b[0], 5).ack(b[1], 6);
        assert_eq!(check(&h.r), Outcome::Pass);
    }

    /// m1's ack of position 2 reaches its client at 9 ms, after m2 took over (at 4 ms) and
    /// acknowledged on top of it: late, but on the chain.
    #[test]
    fn a_deposed_primarys_late_ack_on_the_chain_passes() {
        let mut h = Hist::sync();
        h.promote(1, 1, 0);
        let a = h.extend(1, 1, None, 2);
        h.ack(a[0], 1);
        h.promote(2, 2, 4);
        let b = h.extend(2, 2, Some(a[1]), 1);
        h.ack(b[0], 5).ack(a[1], 9);
        assert_eq!(check(&h.r), Outcome::Pass);
    }

    /// m1 (token 1) acknowledges positions 1–3; m2 (token 2) branches off after position 2 and
    /// acknowledges positions 3–4. m1's position 3 is off the chain of m2's position 4.
    #[test]
    fn two_primaries_acknowledging_on_forked_chains_fail() {
        let mut h = Hist::sync();
        let a = h.extend(1, 1, None, 3);
        h.ack(a[0], 1).ack(a[1], 2).ack(a[2], 3);
        let b = h.extend(2, 2, Some(a[1]), 2);
        h.ack(b[0], 4).ack(b[1], 5);
        let f = fork_of(&h.r);
        assert_eq!((f.tip.entry, f.branch.entry, f.parted_at, f.common, f.off_chain), (b[1], a[2], 3, Some(a[1]), 1));
        assert_eq!((f.branch.acked_by, f.tip.acked_by), (MemberId(1), MemberId(2)));
        let text = f.to_string();
        for needle in
            ["m1/t1/#3", "m2/t2/#2", "position 3", "m1/t1/#2", "member 1 under token 1 at 3ms", "TWO PRIMARIES"]
        {
            assert!(text.contains(needle), "{needle:?} missing from: {text}");
        }
    }

    #[test]
    fn two_acknowledged_entries_at_the_same_position_are_a_fork() {
        let mut h = Hist::sync();
        let root = h.append(1, 1, None, "x", "0");
        let a = h.append(1, 1, Some(root), "x", "a");
        let b = h.append(2, 2, Some(root), "x", "b");
        h.ack(b, 1).ack(a, 2);
        let f = fork_of(&h.r);
        assert_eq!(
            (f.tip.entry, f.branch.entry, f.parted_at, f.common),
            (b, a, 2, Some(root)),
            "tie: the first ack is the tip"
        );
    }

    #[test]
    fn acknowledged_entries_on_separate_roots_share_nothing() {
        let mut h = Hist::sync();
        let a = h.extend(1, 1, None, 1);
        let b = h.extend(2, 2, None, 2);
        h.ack(a[0], 1).ack(b[1], 2).ack(a[0], 3);
        let f = fork_of(&h.r);
        assert_eq!((f.parted_at, f.common, f.off_chain), (1, None, 1), "a repeated ack is one entry");
        assert!(f.to_string().contains("share no entry"), "{f}");
    }

    #[test]
    fn a_missing_parent_is_a_malformed_record_not_a_panic() {
        let mut h = Hist::sync();
        let a = h.extend(1, 1, None, 2);
        h.ack(a[1], 1);
        let ghost = EntryId { member: MemberId(5), token: Token(5), seq: 1 };
        h.r.entries.get_mut(&a[1]).expect("recorded").parent = Some(ghost);
        let Outcome::Fail(v) = check(&h.r) else { panic!("a malformed record must fail") };
        assert_eq!(
            v,
            Violation::Malformed {
                property: PROPERTY,
                problem: Malformed::MissingParent { entry: a[1], parent: ghost }
            }
        );
        assert!(v.to_string().contains("entry m1/t1/#2 names parent m5/t5/#1"), "{v}");

        let mut h = Hist::sync();
        h.r.acks.push(Ack { entry: ghost, member: MemberId(5), at: Default::default() });
        assert!(matches!(
            check(&h.r),
            Outcome::Fail(Violation::Malformed { problem: Malformed::UnknownAckedEntry { .. }, .. })
        ));
    }
}
