//! Safety property: **no deposed primary answers a read that misses an acknowledged write.**
//!
//! A read is *stale* when both hold:
//! - the reader was already deposed when the client asked: before the read was `sent`, some
//!   other member had been promoted with a higher token than the read's;
//! - the answer misses an acknowledged write: a write to the same key, acknowledged before the
//!   read was `sent`, whose entry is not on the chain of the log the read was answered from.
//!
//! Both are needed. A read sent before the successor's promotion may legally be answered from the
//! old log (it is ordered before the failover), and a deposed primary whose log happens to hold
//! every acknowledged write to the key gave a right answer. [`deposed_reads`] counts the weaker
//! figure — reads served after deposition, whatever they returned — for reports.
//!
//! Fencing tokens and revoked credentials do not stop reads: a deposed primary answers from its
//! own log without asking any replica, so nothing checks its token. Only demotion (the lease
//! running out and the primary stepping down), STONITH or a firewall stop it.
//!
//! Cost: promotions are sorted once with the best tokens of two distinct members so far, and each
//! key's acks are sorted by time with running bounds of their chains' preorder intervals (an
//! entry `e` is on the chain ending at `h` iff `enter(e) ≤ enter(h) < exit(e)`, so every ack so far
//! is on it iff the largest `enter` ≤ `enter(h)` < the smallest `exit`). Each read is then two
//! binary searches: O((entries + acks + reads + promotions) · log).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::chain::Chains;
use super::{AckedEntry, DbRecord, Malformed, Outcome, Promotion, ServedRead, Violation};
use crate::{MemberId, Token};

pub const PROPERTY: &str = "no stale reads";

/// Stale reads, counted, with the first as the example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleReads {
    pub count: usize,
    /// The stale read sent earliest (the first in the record's order on a tie).
    pub first: ServedRead,
    /// The earliest promotion that had deposed its reader when it was sent.
    pub deposed_by: Promotion,
    /// The latest-acknowledged write to its key, before it was sent, that its answer misses.
    pub missed: AckedEntry,
}

impl fmt::Display for StaleReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.first;
        let (s, was) = if self.count == 1 { ("", "was") } else { ("s", "were") };
        write!(
            f,
            "{} read{s} {was} served stale by a deposed primary; the first: member {}, serving under token {}, \
             answered a read of key {:?} sent at {:?} and served at {:?} with {} from a log ",
            self.count,
            r.member.0,
            r.token.0,
            r.key,
            r.sent,
            r.served,
            r.value.as_deref().map_or_else(|| "nothing".to_owned(), |v| format!("{v:?}")),
        )?;
        match r.head {
            Some(head) => write!(f, "ending at {head}")?,
            None => f.write_str("that was empty")?,
        }
        write!(
            f,
            ", though member {} had been promoted with token {} at {:?} and {} is not in that log. \
             Fencing tokens and credentials do not stop a deposed primary's reads; only demotion, STONITH or a firewall do.",
            self.deposed_by.member.0, self.deposed_by.token.0, self.deposed_by.at, self.missed,
        )
    }
}

/// Judges `record`: no stale read.
pub fn check(record: &DbRecord) -> Outcome {
    super::on_chains(record, PROPERTY, judge)
}

/// How many reads a member served after it had been deposed (another member promoted with a
/// higher token before the read was sent), whether or not the answer missed anything.
pub fn deposed_reads(record: &DbRecord) -> usize {
    let deposers = Deposers::new(&record.promotions);
    record.reads.iter().filter(|r| deposers.deposed(r)).count()
}

pub(crate) fn judge(chains: &Chains<'_>) -> Outcome {
    let record = chains.record();
    let mut heads = Vec::with_capacity(record.reads.len());
    for (index, read) in record.reads.iter().enumerate() {
        let member = read.member;
        heads.push(read.head.map(|head| chains.index(&head).ok_or(Malformed::UnknownReadHead { index, head, member })));
    }
    let heads: Vec<Option<usize>> = match heads.into_iter().map(Option::transpose).collect() {
        Ok(heads) => heads,
        Err(problem) => return Outcome::Fail(Violation::Malformed { property: PROPERTY, problem }),
    };

    let deposers = Deposers::new(&record.promotions);
    let acks = KeyAcks::new(chains);
    let stale: Vec<usize> = (0..record.reads.len())
        .filter(|&i| deposers.deposed(&record.reads[i]) && acks.misses(chains, &record.reads[i], heads[i]))
        .collect();
    let Some(&first) = stale.iter().min_by_key(|&&i| (record.reads[i].sent, i)) else { return Outcome::Pass };

    // Explain the first one: plain scans, once.
    let read = &record.reads[first];
    let deposed_by = record
        .promotions
        .iter()
        .filter(|p| p.member != read.member && p.token > read.token && p.at < read.sent)
        .min_by_key(|p| p.at)
        .expect("a stale read was deposed")
        .clone();
    let on_read_chain = |k: usize| heads[first].is_some_and(|h| chains.is_ancestor_or_self(chains.ack_entry(k), h));
    let missed = (0..record.acks.len())
        .filter(|&k| record.acks[k].at < read.sent && chains.entry(chains.ack_entry(k)).key == read.key)
        .filter(|&k| !on_read_chain(k))
        .max_by_key(|&k| (record.acks[k].at, std::cmp::Reverse(k)))
        .expect("a stale read missed a write");
    Outcome::Fail(Violation::StaleReads(Box::new(StaleReads {
        count: stale.len(),
        first: read.clone(),
        deposed_by,
        missed: AckedEntry::of_ack(record, missed),
    })))
}

/// Promotions in time order, each with the highest tokens so far of two distinct members.
struct Deposers {
    at: Vec<Duration>,
    best: Vec<Top2>,
}

/// The highest token promoted so far and its member, and the highest token of any other member.
#[derive(Clone, Copy, Debug, Default)]
struct Top2 {
    first: Option<(Token, MemberId)>,
    /// Invariant: the highest token among members other than `first`'s (so ≤ `first`'s).
    second: Option<Token>,
}

impl Top2 {
    fn with(self, token: Token, member: MemberId) -> Top2 {
        match self.first {
            None => Top2 { first: Some((token, member)), second: None },
            Some((t, m)) if m == member => Top2 { first: Some((t.max(token), m)), ..self },
            // The old first beats every other member, so it is the best apart from the new one.
            Some((t, _)) if token > t => Top2 { first: Some((token, member)), second: Some(t) },
            Some(_) => Top2 { second: self.second.max(Some(token)), ..self },
        }
    }

    /// The highest token promoted by a member other than `reader`.
    fn apart_from(&self, reader: MemberId) -> Option<Token> {
        match self.first {
            Some((t, m)) if m != reader => Some(t),
            _ => self.second,
        }
    }
}

impl Deposers {
    fn new(promotions: &[Promotion]) -> Deposers {
        let mut sorted: Vec<&Promotion> = promotions.iter().collect();
        sorted.sort_by_key(|p| p.at);
        let mut top = Top2::default();
        let best = sorted
            .iter()
            .map(|p| {
                top = top.with(p.token, p.member);
                top
            })
            .collect();
        Deposers { at: sorted.iter().map(|p| p.at).collect(), best }
    }

    /// Had another member been promoted with a higher token before `read` was sent?
    fn deposed(&self, read: &ServedRead) -> bool {
        let before = self.at.partition_point(|&at| at < read.sent);
        before > 0 && self.best[before - 1].apart_from(read.member).is_some_and(|t| t > read.token)
    }
}

/// Per key: acks in time order, with running bounds of their entries' preorder intervals.
struct KeyAcks<'r> {
    by_key: BTreeMap<&'r str, Bounds>,
}

#[derive(Default)]
struct Bounds {
    at: Vec<Duration>,
    /// Over the first `j + 1` acks: the largest `enter` and the smallest `exit` of their entries.
    max_enter: Vec<usize>,
    min_exit: Vec<usize>,
}

impl<'r> KeyAcks<'r> {
    fn new(chains: &Chains<'r>) -> KeyAcks<'r> {
        let record = chains.record();
        let mut acks: Vec<(&'r str, Duration, usize)> = (0..record.acks.len())
            .map(|k| {
                let e = chains.ack_entry(k);
                (chains.entry(e).key.as_str(), record.acks[k].at, e)
            })
            .collect();
        acks.sort_unstable();
        let mut by_key: BTreeMap<&'r str, Bounds> = BTreeMap::new();
        for (key, at, e) in acks {
            let b = by_key.entry(key).or_default();
            let max_enter = b.max_enter.last().map_or(chains.enter(e), |&m| m.max(chains.enter(e)));
            let min_exit = b.min_exit.last().map_or(chains.exit(e), |&m| m.min(chains.exit(e)));
            b.at.push(at);
            b.max_enter.push(max_enter);
            b.min_exit.push(min_exit);
        }
        KeyAcks { by_key }
    }

    /// Does the answer to `read`, from the log ending at `head`, miss a write to its key
    /// acknowledged before it was sent?
    fn misses(&self, chains: &Chains<'_>, read: &ServedRead, head: Option<usize>) -> bool {
        let Some(b) = self.by_key.get(read.key.as_str()) else { return false };
        let before = b.at.partition_point(|&at| at < read.sent);
        if before == 0 {
            return false;
        }
        let Some(h) = head else { return true };
        let h = chains.enter(h);
        !(b.max_enter[before - 1] <= h && h < b.min_exit[before - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::Hist;
    use super::super::EntryId;
    use super::*;

    fn stale_of(record: &DbRecord) -> StaleReads {
        match check(record) {
            Outcome::Fail(Violation::StaleReads(s)) => *s,
            other => panic!("expected stale reads, got {other}"),
        }
    }

    /// m1 (token 10) writes x=1 (acknowledged at 2 ms); m2 is promoted with token 12 at 10 ms
    /// and acknowledges x=2 at 15 ms. Returns m1's head and m2's entry.
    fn failover(h: &mut Hist) -> (EntryId, EntryId) {
        h.promote(1, 10, 0);
        let a = h.append(1, 10, None, "x", "1");
        h.ack(a, 2);
        h.promote(2, 12, 10);
        let b = h.append(2, 12, Some(a), "x", "2");
        h.ack(b, 15);
        h.finish(2, Some(b));
        (a, b)
    }

    #[test]
    fn reads_served_by_the_current_primary_pass() {
        assert_eq!(check(&DbRecord::default()), Outcome::Pass);
        let mut h = Hist::sync();
        let (a, b) = failover(&mut h);
        h.read(1, 10, 5, 6, "x", Some("1"), Some(a));
        h.read(2, 12, 20, 21, "x", Some("2"), Some(b));
        h.read(2, 12, 20, 21, "y", None, Some(b));
        assert_eq!(check(&h.r), Outcome::Pass);
        assert_eq!(deposed_reads(&h.r), 0);
    }

    /// The read reaches m1 at 20 ms, after m2's promotion (10 ms) and m2's ack of x=2 (15 ms);
    /// m1 answers x=1 from its own log.
    #[test]
    fn a_deposed_primary_answering_without_an_acknowledged_write_fails() {
        let mut h = Hist::sync();
        let (a, b) = failover(&mut h);
        h.read(1, 10, 20, 22, "x", Some("1"), Some(a));
        let s = stale_of(&h.r);
        assert_eq!((s.count, s.deposed_by.member, s.deposed_by.token, s.missed.entry), (1, MemberId(2), Token(12), b));
        let text = s.to_string();
        for needle in [
            "1 read was served stale",
            "member 1, serving under token 10",
            "sent at 20ms and served at 22ms with \"1\"",
            "ending at m1/t10/#1",
            "member 2 had been promoted with token 12 at 10ms",
            "m2/t12/#1 (key \"x\", position 2) acknowledged by member 2 under token 12 at 15ms",
            "only demotion, STONITH or a firewall",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from: {text}");
        }
        assert_eq!(deposed_reads(&h.r), 1);
    }

    #[test]
    fn a_deposed_primary_whose_answer_misses_nothing_is_only_counted() {
        let mut h = Hist::sync();
        let (a, _) = failover(&mut h);
        h.read(1, 10, 12, 13, "x", Some("1"), Some(a));
        h.read(1, 10, 20, 21, "y", None, Some(a));
        assert_eq!(check(&h.r), Outcome::Pass, "x=2 was acknowledged after the first was sent; nobody wrote y");
        assert_eq!(deposed_reads(&h.r), 2);
    }

    #[test]
    fn a_read_sent_before_the_successors_promotion_may_be_answered_late() {
        let mut h = Hist::sync();
        let (a, _) = failover(&mut h);
        h.read(1, 10, 9, 30, "x", Some("1"), Some(a));
        assert_eq!(check(&h.r), Outcome::Pass);
        assert_eq!(deposed_reads(&h.r), 0);
    }

    #[test]
    fn an_empty_log_misses_every_acknowledged_write_to_the_key() {
        let mut h = Hist::sync();
        failover(&mut h);
        h.read(3, 11, 20, 21, "x", None, None);
        let s = stale_of(&h.r);
        assert_eq!(s.missed.entry.member, MemberId(2), "the latest missed write");
        assert!(s.to_string().contains("with nothing from a log that was empty"), "{s}");
    }

    #[test]
    fn only_another_member_with_a_higher_token_deposes() {
        let mut h = Hist::sync();
        h.promote(1, 10, 0);
        let a = h.append(1, 10, None, "x", "1");
        h.ack(a, 1);
        let side = h.append(1, 10, None, "x", "0");
        h.promote(3, 9, 2).promote(1, 20, 3);
        h.read(1, 10, 5, 6, "x", Some("0"), Some(side));
        assert_eq!(deposed_reads(&h.r), 0, "a lower token elsewhere, and its own re-promotion");
        assert_eq!(check(&h.r), Outcome::Pass);
        h.promote(2, 11, 4);
        assert_eq!(deposed_reads(&h.r), 1);
        assert_eq!(stale_of(&h.r).missed.entry, a, "its own acknowledged write, missing from a stray log");
    }

    #[test]
    fn the_example_is_the_stale_read_sent_first() {
        let mut h = Hist::sync();
        let (a, _) = failover(&mut h);
        h.read(1, 10, 40, 41, "x", Some("1"), Some(a));
        h.read(1, 10, 30, 45, "x", Some("1"), Some(a));
        h.read(1, 10, 12, 13, "x", Some("1"), Some(a));
        let s = stale_of(&h.r);
        assert_eq!((s.count, s.first.sent), (2, Duration::from_millis(30)));
    }

    #[test]
    fn an_unknown_read_head_is_malformed() {
        let mut h = Hist::sync();
        let (a, _) = failover(&mut h);
        let ghost = EntryId { seq: 7, ..a };
        h.read(2, 12, 20, 21, "x", None, Some(ghost));
        assert_eq!(
            check(&h.r),
            Outcome::Fail(Violation::Malformed {
                property: PROPERTY,
                problem: Malformed::UnknownReadHead { index: 0, head: ghost, member: MemberId(2) }
            })
        );
    }

    #[test]
    fn the_best_tokens_of_two_members_track_every_order_of_promotions() {
        let (m1, m2, m3) = (MemberId(1), MemberId(2), MemberId(3));
        let top = Top2::default().with(Token(5), m1).with(Token(7), m2).with(Token(6), m3).with(Token(9), m2);
        assert_eq!(
            (top.apart_from(m2), top.apart_from(m1), top.apart_from(m3)),
            (Some(Token(6)), Some(Token(9)), Some(Token(9)))
        );
        let top = Top2::default().with(Token(5), m1).with(Token(8), m1);
        assert_eq!((top.apart_from(m1), top.apart_from(m2)), (None, Some(Token(8))));
    }
}
