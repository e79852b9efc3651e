//! The checkers that judge one run's database history: pure functions from a [`DbRecord`] to an
//! [`Outcome`], one file per safety property, each with its violation type beside it.
//!
//! The simulator runs database hosts — one primary at a time, if fencing works, and replicas —
//! each with a replicated log. A primary holding fencing token `t` (the create revision of the
//! leader key it won) appends entries and, under synchronous replication, acknowledges a write
//! only once enough replicas stored it. The run ends by healing and settling; the record says
//! what every primary appended, acknowledged and answered, and who was primary at the end.
//!
//! - [`fork`]: **acknowledged writes lie on one chain** — two primaries acknowledging writes on
//!   forked logs is what the matrix calls TWO PRIMARIES.
//! - [`tokens`]: **fencing tokens never decrease along an acknowledged write's chain** — a
//!   primary appending under a token lower than its log had seen is a primary that was not fenced.
//! - [`lost_write`]: **with synchronous replication, every acknowledged write is in the final
//!   primary's log** (asynchronous runs are not judged; [`lost_write::lost`] counts their losses).
//! - [`stale_reads`]: **no deposed primary answers a read that misses an acknowledged write**.
//!
//! The record's parent links make every entry's chain explicit, so the checks never replay a
//! log: an index built once ([`chain`]) answers "is `a` on the chain of `b`" in O(1), and each
//! check is O(n log n) in entries, acks and reads.
//!
//! Caller's duties (the simulator's):
//! 1. Record every entry any primary appended, acknowledged or not, under an [`EntryId`] unique
//!    for the run, with the entry right before it in that primary's log as `parent` and its
//!    position (`parent`'s plus one; 1 for the first).
//! 2. Record an [`Ack`] only for a write whose client was told it succeeded, stamped with the
//!    simulated time the answer left the primary. A late ack is fine: it is judged by its entry.
//! 3. Record a [`ServedRead`] with the head of the log the primary answered from and the time the
//!    client sent the request, not the time the primary received it.
//! 4. Record a [`Promotion`] when a member starts serving as primary, with its token.
//! 5. Set [`DbRecord::final_primary`] only after the run healed and settled.
//!
//! A record that contradicts itself (a parent missing from `entries`, a position that is not its
//! parent's plus one, an ack of an unknown entry) is reported as [`Malformed`] by the checks that
//! need the broken part: a failure, never a panic and never a pass.

pub mod chain;
pub mod fork;
pub mod lost_write;
pub mod stale_reads;
pub mod tokens;

#[cfg(test)]
mod random;
#[cfg(test)]
mod testkit;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::{MemberId, Token};

/// Names one log entry for the whole run: the member whose primary appended it, under which
/// token, and that primary's own append counter (unique per member and token).
///
/// Displays as `m2/t5/#1`: member 2, token 5, its first append under that token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    pub member: MemberId,
    pub token: Token,
    pub seq: u64,
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}/t{}/#{}", self.member.0, self.token.0, self.seq)
    }
}

/// One entry as its primary appended it. `parent` is the entry right before it in that primary's
/// log (None at position 1): following parents from any entry gives the whole chain it was
/// written on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    pub parent: Option<EntryId>,
    pub pos: u64,
    pub key: String,
    pub value: String,
}

/// A write acknowledged to a client: by `member` under its token, at simulated time `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub entry: EntryId,
    pub member: MemberId,
    pub at: Duration,
}

/// A read a member served as primary: the client sent it at `sent`, the member answered at
/// `served` from its log whose last entry was `head` (None = empty log), under `token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedRead {
    pub member: MemberId,
    pub token: Token,
    pub sent: Duration,
    pub served: Duration,
    pub key: String,
    pub value: Option<String>,
    pub head: Option<EntryId>,
}

/// A member started serving as primary under `token` at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promotion {
    pub member: MemberId,
    pub token: Token,
    pub at: Duration,
}

/// One run's database history, as the simulator recorded it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbRecord {
    /// Every entry any primary appended, acknowledged or not.
    pub entries: BTreeMap<EntryId, Entry>,
    pub acks: Vec<Ack>,
    pub reads: Vec<ServedRead>,
    pub promotions: Vec<Promotion>,
    /// Whether writes were acknowledged only after synchronous replication.
    pub synchronous: bool,
    /// After the run healed and settled: the member that is primary and the last entry of its
    /// log. None = no primary at the end (the lost-write check then says it could not judge, it
    /// does not pass).
    pub final_primary: Option<(MemberId, Option<EntryId>)>,
}

/// A check's verdict on one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail(Violation),
    /// The record cannot tell (an asynchronous run, no primary at the end): why, in words.
    /// Not a pass.
    NotJudged(String),
}

impl Outcome {
    pub fn is_pass(&self) -> bool {
        matches!(self, Outcome::Pass)
    }

    pub fn is_fail(&self) -> bool {
        matches!(self, Outcome::Fail(_))
    }

    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Outcome::Fail(v) => Some(v),
            Outcome::Pass | Outcome::NotJudged(_) => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pass => f.write_str("pass"),
            Outcome::Fail(v) => write!(f, "FAIL: {v}"),
            Outcome::NotJudged(why) => write!(f, "not judged: {why}"),
        }
    }
}

/// Why a check failed. Each variant displays as one paragraph naming the members, tokens,
/// positions, entries and simulated times involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The record contradicts itself, so `property` could not be checked. A simulator bug,
    /// reported as a failure so that it is never mistaken for a pass.
    Malformed {
        property: &'static str,
        problem: Malformed,
    },
    // Boxed: a violation is rare and large; an `Outcome` stays small.
    Fork(Box<fork::Fork>),
    TokenDecrease(Box<tokens::TokenDecrease>),
    LostWrites(Box<lost_write::LostWrites>),
    StaleReads(Box<stale_reads::StaleReads>),
}

impl Violation {
    pub fn is_malformed(&self) -> bool {
        matches!(self, Violation::Malformed { .. })
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Malformed { property, problem } => {
                write!(f, "malformed record, cannot check \"{property}\": {problem}.")
            }
            Violation::Fork(v) => v.fmt(f),
            Violation::TokenDecrease(v) => v.fmt(f),
            Violation::LostWrites(v) => v.fmt(f),
            Violation::StaleReads(v) => v.fmt(f),
        }
    }
}

/// How a record contradicts itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// `entries` holds an entry under a key that is not its own id.
    KeyMismatch {
        key: EntryId,
        id: EntryId,
    },
    MissingParent {
        entry: EntryId,
        parent: EntryId,
    },
    /// An entry's position is not its parent's plus one (or not 1 without a parent).
    BadPosition {
        entry: EntryId,
        pos: u64,
        parent: Option<(EntryId, u64)>,
    },
    /// `acks[index]` names an entry that is not in `entries`.
    UnknownAckedEntry {
        index: usize,
        entry: EntryId,
        member: MemberId,
    },
    /// `reads[index]` was answered from a head that is not in `entries`.
    UnknownReadHead {
        index: usize,
        head: EntryId,
        member: MemberId,
    },
    /// The final primary's head is not in `entries`.
    UnknownFinalHead {
        member: MemberId,
        head: EntryId,
    },
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::KeyMismatch { key, id } => write!(f, "the entry stored under {key} says its id is {id}"),
            Malformed::MissingParent { entry, parent } => {
                write!(f, "entry {entry} names parent {parent}, which is not among the recorded entries")
            }
            Malformed::BadPosition { entry, pos, parent: Some((parent, parent_pos)) } => write!(
                f,
                "entry {entry} is at position {pos} but its parent {parent} is at position {parent_pos} \
                 (a child's position is its parent's plus one)"
            ),
            Malformed::BadPosition { entry, pos, parent: None } => {
                write!(f, "entry {entry} has no parent but is at position {pos} (a log starts at position 1)")
            }
            Malformed::UnknownAckedEntry { index, entry, member } => write!(
                f,
                "ack #{index} (by member {}) acknowledges entry {entry}, which is not among the recorded entries",
                member.0
            ),
            Malformed::UnknownReadHead { index, head, member } => write!(
                f,
                "read #{index} (served by member {}) was answered from a log ending at {head}, \
                 which is not among the recorded entries",
                member.0
            ),
            Malformed::UnknownFinalHead { member, head } => write!(
                f,
                "the final primary, member {}, has a log ending at {head}, which is not among the recorded entries",
                member.0
            ),
        }
    }
}

/// An acknowledged entry as a violation names it: the entry, where it sits, and one of its acks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckedEntry {
    pub entry: EntryId,
    pub pos: u64,
    pub key: String,
    /// The member that acknowledged it (under the entry's token) and when, from the ack the
    /// violation names.
    pub acked_by: MemberId,
    pub acked_at: Duration,
}

impl AckedEntry {
    /// The entry of `record.acks[ack]`. The caller has checked that it is in `entries`.
    pub(crate) fn of_ack(record: &DbRecord, ack: usize) -> AckedEntry {
        let a = &record.acks[ack];
        let e = &record.entries[&a.entry];
        AckedEntry { entry: e.id, pos: e.pos, key: e.key.clone(), acked_by: a.member, acked_at: a.at }
    }
}

impl fmt::Display for AckedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "entry {} (key {:?}, position {}) acknowledged by member {} under token {} at {:?}",
            self.entry, self.key, self.pos, self.acked_by.0, self.entry.token.0, self.acked_at
        )
    }
}

/// Every check by name, over one shared index of the record's chains.
pub fn check_all(record: &DbRecord) -> BTreeMap<&'static str, Outcome> {
    let built = chain::Chains::build(record);
    let judge = |property: &'static str, f: Judge| judge_built(&built, property, f);
    BTreeMap::from([
        (fork::PROPERTY, judge(fork::PROPERTY, fork::judge)),
        (tokens::PROPERTY, judge(tokens::PROPERTY, tokens::judge)),
        (lost_write::PROPERTY, judge(lost_write::PROPERTY, lost_write::judge)),
        (stale_reads::PROPERTY, judge(stale_reads::PROPERTY, stale_reads::judge)),
    ])
}

/// One property's judge over the record's chains.
type Judge = fn(&chain::Chains<'_>) -> Outcome;

/// Builds the chains and judges one property over them; a record whose chains cannot be built fails it as
/// malformed (every check's shared front).
fn on_chains(record: &DbRecord, property: &'static str, judge: Judge) -> Outcome {
    judge_built(&chain::Chains::build(record), property, judge)
}

fn judge_built(built: &Result<chain::Chains<'_>, Malformed>, property: &'static str, judge: Judge) -> Outcome {
    match built {
        Ok(chains) => judge(chains),
        Err(problem) => Outcome::Fail(Violation::Malformed { property, problem: problem.clone() }),
    }
}

/// One run's cell in the matrix: its worst violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cell {
    Safe,
    /// Acknowledged writes forked, or a token went down along an acknowledged write's chain.
    TwoPrimaries,
    /// Synchronous replication, and an acknowledged write is missing from the final log.
    LostWrite,
    /// A deposed primary answered a read that missed an acknowledged write.
    StaleReads,
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cell::Safe => "SAFE",
            Cell::TwoPrimaries => "TWO PRIMARIES",
            Cell::LostWrite => "LOST WRITE",
            Cell::StaleReads => "STALE READS",
        })
    }
}

/// The record's cell, worst first: TwoPrimaries (fork or token decrease) > LostWrite >
/// StaleReads > Safe.
///
/// `Safe` means no check failed; a check that could not judge (an asynchronous run's lost
/// writes, a run with no final primary) does not make a cell unsafe — read [`check_all`] for
/// those. A malformed record fails the checks that need its broken part, so it is never `Safe`:
/// broken chains fail every check and classify as TwoPrimaries. Tell a recorder bug from a real
/// violation with [`Violation::is_malformed`].
pub fn classify(record: &DbRecord) -> Cell {
    classify_outcomes(&check_all(record))
}

/// [`classify`] from outcomes already computed by [`check_all`].
pub fn classify_outcomes(outcomes: &BTreeMap<&'static str, Outcome>) -> Cell {
    let failed = |property: &str| outcomes.get(property).is_some_and(Outcome::is_fail);
    if failed(fork::PROPERTY) || failed(tokens::PROPERTY) {
        Cell::TwoPrimaries
    } else if failed(lost_write::PROPERTY) {
        Cell::LostWrite
    } else if failed(stale_reads::PROPERTY) {
        Cell::StaleReads
    } else {
        Cell::Safe
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::Hist;
    use super::*;

    #[test]
    fn an_empty_record_is_safe_but_its_lost_writes_are_not_judged() {
        let all = check_all(&DbRecord::default());
        assert_eq!(
            all.keys().copied().collect::<Vec<_>>(),
            ["no acknowledged write lost", "no fork", "no stale reads", "tokens monotone"]
        );
        assert!(all["no fork"].is_pass() && all["tokens monotone"].is_pass() && all["no stale reads"].is_pass());
        assert!(matches!(all["no acknowledged write lost"], Outcome::NotJudged(_)), "asynchronous and no primary");
        assert_eq!(classify(&DbRecord::default()), Cell::Safe);
    }

    #[test]
    fn a_clean_failover_is_safe() {
        let mut h = Hist::sync();
        h.promote(1, 10, 0);
        let a = h.extend(1, 10, None, 2);
        h.ack(a[0], 1).ack(a[1], 2);
        h.promote(2, 12, 10);
        let b = h.extend(2, 12, Some(a[1]), 1);
        h.ack(b[0], 11);
        h.read(2, 12, 12, 13, "k3", Some("m2/t12/#1"), Some(b[0]));
        h.finish(2, Some(b[0]));
        let all = check_all(&h.r);
        assert!(all.values().all(Outcome::is_pass), "{all:?}");
        assert_eq!(classify(&h.r), Cell::Safe);
    }

    /// m1 (token 10) acknowledges a write at position 2; m2 (token 12) acknowledges another at
    /// position 2 on its own branch; m1, deposed, then answers a read of m2's key from its own log.
    /// Every property but "tokens monotone" fails; the worst is the fork.
    #[test]
    fn classification_takes_the_worst_violation() {
        let mut h = Hist::sync();
        h.promote(1, 10, 0);
        let root = h.append(1, 10, None, "x", "1");
        let a = h.append(1, 10, Some(root), "y", "a");
        h.ack(root, 1).ack(a, 2);
        h.promote(2, 12, 3);
        let b = h.append(2, 12, Some(root), "y", "b");
        h.ack(b, 4);
        h.read(1, 10, 5, 6, "y", Some("a"), Some(a));
        h.finish(2, Some(b));
        assert_eq!(classify(&h.r), Cell::TwoPrimaries);
        let all = check_all(&h.r);
        assert!(
            all["no fork"].is_fail() && all["no stale reads"].is_fail() && all["no acknowledged write lost"].is_fail()
        );
        assert!(all["tokens monotone"].is_pass());

        // Without m1's ack of position 2 there is no fork and nothing acknowledged was lost; the
        // stale read is left.
        h.r.acks.retain(|ack| ack.entry != a);
        assert_eq!(classify(&h.r), Cell::StaleReads);
    }

    #[test]
    fn a_lost_write_outranks_a_stale_read() {
        let mut h = Hist::sync();
        h.promote(1, 10, 0);
        let a = h.extend(1, 10, None, 2);
        h.ack(a[0], 1).ack(a[1], 2);
        h.promote(2, 12, 3);
        h.read(1, 10, 5, 6, "k2", None, None);
        h.finish(2, Some(a[0]));
        assert_eq!(classify(&h.r), Cell::LostWrite);
        h.r.synchronous = false;
        assert_eq!(classify(&h.r), Cell::StaleReads, "asynchronous: losses are by design, not judged");
    }

    #[test]
    fn a_token_decrease_without_a_fork_is_two_primaries() {
        let mut h = Hist::sync();
        let a = h.append(2, 12, None, "x", "1");
        let b = h.append(1, 10, Some(a), "x", "2");
        h.ack(a, 1).ack(b, 2);
        h.finish(1, Some(b));
        let all = check_all(&h.r);
        assert!(all["no fork"].is_pass());
        assert!(all["tokens monotone"].is_fail());
        assert_eq!(classify(&h.r), Cell::TwoPrimaries);
    }

    #[test]
    fn a_malformed_record_is_never_safe() {
        let mut h = Hist::sync();
        let a = h.append(1, 10, None, "x", "1");
        h.ack(a, 1);
        h.finish(1, Some(a));
        let ghost = EntryId { member: MemberId(9), token: Token(9), seq: 9 };
        h.r.entries.get_mut(&a).expect("recorded").parent = Some(ghost);
        let all = check_all(&h.r);
        for (name, outcome) in &all {
            let v = outcome.violation().unwrap_or_else(|| panic!("{name}: {outcome}"));
            assert!(v.is_malformed(), "{name}: {v}");
        }
        assert_eq!(classify(&h.r), Cell::TwoPrimaries);
        let text = all["no fork"].to_string();
        assert!(text.contains("m9/t9/#9") && text.contains("not among the recorded entries"), "{text}");
    }

    #[test]
    fn cells_read_as_the_matrix_prints_them() {
        let cells = [Cell::Safe, Cell::TwoPrimaries, Cell::LostWrite, Cell::StaleReads].map(|c| c.to_string());
        assert_eq!(cells, ["SAFE", "TWO PRIMARIES", "LOST WRITE", "STALE READS"]);
    }

    /// 10,000 entries on one chain, 5,000 acks and 5,000 reads: the index makes every check
    /// near-linear (a naive walk per ack would be 50 million steps).
    #[test]
    fn a_ten_thousand_entry_chain_is_checked_quickly() {
        let mut h = Hist::sync();
        h.promote(1, 10, 0);
        let chain = h.extend(1, 10, None, 10_000);
        for (i, id) in chain.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            h.ack(*id, i as u64 + 1);
        }
        for (i, id) in chain.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
            let key = h.r.entries[id].key.clone();
            h.read(1, 10, i as u64 + 1, i as u64 + 2, &key, None, Some(*id));
        }
        h.finish(1, chain.last().copied());
        assert_eq!(h.r.acks.len(), 5_000);
        let all = check_all(&h.r);
        assert!(all.values().all(Outcome::is_pass), "{all:?}");
    }
}
