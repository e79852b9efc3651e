//! Safety property: **with synchronous replication, every acknowledged write is in the final
//! primary's log.** After the run heals and settles, every acknowledged entry is an
//! ancestor-or-self of the final primary's head.
//!
//! Synchronous replication acknowledges a write only once enough replicas stored it, so the
//! member promoted next — which must be one of them, if failover is correct — carries it forward.
//! A write that is acknowledged and then missing from the final log was promised and broken.
//!
//! Not judged, with the reason as the outcome (not a pass):
//! - asynchronous replication: a primary acknowledges before any replica has the write, so a
//!   failover may lose it by design. [`lost`] still lists those losses, for a report to show the
//!   contrast with synchronous runs;
//! - no primary at the end: there is no final log to look in.

use std::fmt;

use super::chain::Chains;
use super::{AckedEntry, DbRecord, EntryId, Malformed, Outcome, Violation};
use crate::MemberId;

pub const PROPERTY: &str = "no acknowledged write lost";

/// The outcome for asynchronous records.
pub const ASYNCHRONOUS: &str = "asynchronous replication: acknowledged writes may be lost on failover by design";

/// The outcome for records without a final primary.
pub const NO_FINAL_PRIMARY: &str =
    "no primary at the end of the run: there is no final log to look for acknowledged writes in";

/// Acknowledged writes missing from the final primary's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostWrites {
    pub final_primary: MemberId,
    /// The last entry of the final primary's log (None = empty) and that log's length.
    pub final_head: Option<EntryId>,
    pub final_len: u64,
    /// Every lost entry, each once, in id order.
    pub lost: Vec<EntryId>,
    /// The lost write acknowledged earliest in simulated time.
    pub first: AckedEntry,
    /// What the final log holds at `first`'s position instead (None: the log is shorter).
    pub in_its_place: Option<EntryId>,
}

impl fmt::Display for LostWrites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.lost.len();
        let (s, are) = if n == 1 { ("", "is") } else { ("s", "are") };
        write!(
            f,
            "{n} acknowledged write{s} {are} missing from the final primary's log: member {}'s log ",
            self.final_primary.0
        )?;
        match self.final_head {
            Some(head) => write!(f, "ends at {head} (position {})", self.final_len)?,
            None => f.write_str("is empty")?,
        }
        write!(f, ". The earliest acknowledged, {}, is not in it: ", self.first)?;
        match self.in_its_place {
            Some(other) => write!(f, "position {} there holds {other} instead. ", self.first.pos)?,
            None => write!(f, "that log stops before position {}. ", self.first.pos)?,
        }
        f.write_str("With synchronous replication an acknowledged write must survive failover.")
    }
}

/// Judges `record`: every acknowledged entry on the final primary's chain, if replication was
/// synchronous and there is a final primary.
pub fn check(record: &DbRecord) -> Outcome {
    super::on_chains(record, PROPERTY, judge)
}

pub(crate) fn judge(chains: &Chains<'_>) -> Outcome {
    let record = chains.record();
    if !record.synchronous {
        return Outcome::NotJudged(ASYNCHRONOUS.into());
    }
    let (member, head) = match final_head(chains) {
        Ok(Some(found)) => found,
        Ok(None) => return Outcome::NotJudged(NO_FINAL_PRIMARY.into()),
        Err(problem) => return Outcome::Fail(Violation::Malformed { property: PROPERTY, problem }),
    };
    let lost_acks = lost_acks(chains, head);
    let Some(&first) = lost_acks.iter().min_by_key(|&&k| (record.acks[k].at, k)) else { return Outcome::Pass };
    let first = AckedEntry::of_ack(record, first);
    Outcome::Fail(Violation::LostWrites(Box::new(LostWrites {
        final_primary: member,
        final_head: head.map(|h| chains.entry(h).id),
        final_len: head.map_or(0, |h| chains.entry(h).pos),
        lost: distinct_entries(chains, &lost_acks),
        in_its_place: head.and_then(|h| chains.at_position(h, first.pos)).map(|i| chains.entry(i).id),
        first,
    })))
}

/// The acknowledged entries missing from the final primary's log, each once, in id order —
/// whatever the replication mode, so that a report can count an asynchronous run's losses.
///
/// Empty when that cannot be told: no final primary, or a malformed record ([`check`] says which).
pub fn lost(record: &DbRecord) -> Vec<EntryId> {
    let Ok(chains) = Chains::build(record) else { return Vec::new() };
    match final_head(&chains) {
        Ok(Some((_, head))) => distinct_entries(&chains, &lost_acks(&chains, head)),
        Ok(None) | Err(_) => Vec::new(),
    }
}

/// The final primary and its head's index (None = empty log), or None without a final primary.
type FinalHead = Option<(MemberId, Option<usize>)>;

fn final_head(chains: &Chains<'_>) -> Result<FinalHead, Malformed> {
    let Some((member, head)) = chains.record().final_primary else { return Ok(None) };
    let head = match head {
        None => None,
        Some(id) => Some(chains.index(&id).ok_or(Malformed::UnknownFinalHead { member, head: id })?),
    };
    Ok(Some((member, head)))
}

/// Indexes into `record.acks` of the acks whose entry is not on the chain ending at `head`.
fn lost_acks(chains: &Chains<'_>, head: Option<usize>) -> Vec<usize> {
    let on_final = |k: usize| head.is_some_and(|h| chains.is_ancestor_or_self(chains.ack_entry(k), h));
    (0..chains.record().acks.len()).filter(|&k| !on_final(k)).collect()
}

fn distinct_entries(chains: &Chains<'_>, acks: &[usize]) -> Vec<EntryId> {
    let mut ids: Vec<EntryId> = acks.iter().map(|&k| chains.entry(chains.ack_entry(k)).id).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Hist;
    use super::*;

    fn lost_of(record: &DbRecord) -> LostWrites {
        match check(record) {
            Outcome::Fail(Violation::LostWrites(l)) => *l,
            other => panic!("expected lost writes, got {other}"),
        }
    }

    /// m1 (token 1) acknowledges positions 1–3; m2 (token 2) takes over from position 1 and ends
    /// the run as primary with positions 2–3 of its own. m1's 2 and 3 are gone.
    fn failover_that_loses_two_writes(h: &mut Hist) -> (Vec<EntryId>, Vec<EntryId>) {
        let a = h.extend(1, 1, None, 3);
        h.ack(a[0], 1).ack(a[2], 3).ack(a[1], 2).ack(a[2], 4);
        let b = h.extend(2, 2, Some(a[0]), 2);
        h.finish(2, Some(b[1]));
        (a, b)
    }

    #[test]
    fn every_acknowledged_write_in_the_final_log_passes() {
        let mut h = Hist::sync();
        let a = h.extend(1, 1, None, 3);
        h.ack(a[0], 1).ack(a[1], 2);
        let b = h.extend(2, 2, Some(a[1]), 2);
        h.ack(b[0], 5);
        h.finish(2, Some(b[1]));
        assert_eq!(check(&h.r), Outcome::Pass, "m1's unacknowledged position 3 may go");
        assert!(lost(&h.r).is_empty());
    }

    #[test]
    fn a_synchronous_write_missing_from_the_final_log_fails() {
        let mut h = Hist::sync();
        let (a, b) = failover_that_loses_two_writes(&mut h);
        let l = lost_of(&h.r);
        assert_eq!(l.lost, vec![a[1], a[2]]);
        assert_eq!((l.first.entry, l.in_its_place, l.final_head, l.final_len), (a[1], Some(b[0]), Some(b[1]), 3));
        let text = l.to_string();
        for needle in [
            "2 acknowledged writes are missing",
            "member 2's log ends at m2/t2/#2 (position 3)",
            "m1/t1/#2",
            "at 2ms",
            "position 2 there holds m2/t2/#1",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from: {text}");
        }
    }

    #[test]
    fn an_asynchronous_run_is_not_judged_but_its_losses_are_counted() {
        let mut h = Hist::asynchronous();
        let (a, _) = failover_that_loses_two_writes(&mut h);
        assert_eq!(check(&h.r), Outcome::NotJudged(ASYNCHRONOUS.into()));
        assert_eq!(lost(&h.r), vec![a[1], a[2]]);
    }

    #[test]
    fn without_a_final_primary_nothing_is_judged() {
        let mut h = Hist::sync();
        failover_that_loses_two_writes(&mut h);
        h.r.final_primary = None;
        assert_eq!(check(&h.r), Outcome::NotJudged(NO_FINAL_PRIMARY.into()));
        assert!(lost(&h.r).is_empty(), "cannot be told");
        assert_eq!(
            check(&DbRecord { synchronous: true, ..DbRecord::default() }),
            Outcome::NotJudged(NO_FINAL_PRIMARY.into())
        );
    }

    #[test]
    fn an_empty_final_log_loses_every_acknowledged_write() {
        let mut h = Hist::sync();
        let a = h.extend(1, 1, None, 2);
        h.finish(2, None);
        assert_eq!(check(&h.r), Outcome::Pass, "nothing acknowledged, nothing lost");
        h.ack(a[1], 7);
        let l = lost_of(&h.r);
        assert_eq!((l.lost.clone(), l.final_head, l.final_len, l.in_its_place), (vec![a[1]], None, 0, None));
        assert!(l.to_string().contains("member 2's log is empty"), "{l}");
    }

    #[test]
    fn an_unknown_final_head_is_malformed() {
        let mut h = Hist::sync();
        let a = h.extend(1, 1, None, 1);
        let ghost = EntryId { seq: 9, ..a[0] };
        h.finish(1, Some(ghost));
        assert_eq!(
            check(&h.r),
            Outcome::Fail(Violation::Malformed {
                property: PROPERTY,
                problem: Malformed::UnknownFinalHead { member: crate::MemberId(1), head: ghost }
            })
        );
    }
}
