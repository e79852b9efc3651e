//! Random single-primary-at-a-time histories: every check passes on them, and planting one
//! violation is always caught by the check that owns it.

use proptest::prelude::*;

use super::testkit::Hist;
use super::*;

/// One primary's term: who, how far its token jumps, what it appends (acknowledged? delivered
/// only after the next promotion?), which keys it is asked for, how much of its predecessor's
/// unacknowledged tail it drops, and how many entries its predecessor scribbles after being
/// deposed.
#[derive(Clone, Debug)]
struct Era {
    member: u64,
    token_gap: u64,
    appends: Vec<(bool, bool)>,
    reads: Vec<u64>,
    truncate: usize,
    zombie: usize,
}

fn arb_era() -> impl Strategy<Value = Era> {
    (
        1u64..4,
        1u64..4,
        prop::collection::vec((any::<bool>(), prop::bool::weighted(0.2)), 1..8),
        prop::collection::vec(0u64..8, 0..4),
        0usize..4,
        0usize..3,
    )
        .prop_map(|(member, token_gap, appends, reads, truncate, zombie)| Era {
            member,
            token_gap,
            appends,
            reads,
            truncate,
            zombie,
        })
}

/// Plays the eras: each new primary keeps its predecessor's log up to the last acknowledged entry
/// (or more), maybe dropping part of the unacknowledged tail; a deposed primary's late acks land
/// after its successor's promotion; only the current primary serves reads. The first entry is
/// always acknowledged.
fn play(eras: &[Era]) -> DbRecord {
    let mut h = Hist::sync();
    let (mut t, mut token) = (0u64, 0u64);
    let mut log: Vec<EntryId> = Vec::new();
    let mut must_keep = 0usize;
    let mut late: Vec<EntryId> = Vec::new();
    let mut prev: Option<(u64, u64)> = None;
    for (n, era) in eras.iter().enumerate() {
        token += era.token_gap;
        if let Some((member, old)) = prev {
            h.extend(member, old, log.last().copied(), era.zombie);
        }
        log.truncate(must_keep.max(log.len().saturating_sub(era.truncate)));
        t += 1;
        h.promote(era.member, token, t);
        for id in late.drain(..) {
            t += 1;
            h.ack(id, t);
        }
        for (i, &(acked, delivered_late)) in era.appends.iter().enumerate() {
            t += 1;
            let id = h.extend(era.member, token, log.last().copied(), 1)[0];
            log.push(id);
            if acked || (n, i) == (0, 0) {
                must_keep = log.len();
                if delivered_late && (n, i) != (0, 0) {
                    late.push(id);
                } else {
                    t += 1;
                    h.ack(id, t);
                }
            }
        }
        for key in &era.reads {
            let key = format!("k{key}");
            let value = log.iter().rev().map(|id| &h.r.entries[id]).find(|e| e.key == key).map(|e| e.value.clone());
            t += 2;
            h.read(era.member, token, t - 1, t, &key, value.as_deref(), log.last().copied());
        }
        prev = Some((era.member, token));
    }
    for id in late.drain(..) {
        t += 1;
        h.ack(id, t);
    }
    let last = eras.last().map_or(1, |e| e.member);
    h.finish(last, log.last().copied());
    h.r
}

/// The acknowledged entry with the highest position and its chain, root first.
fn acked_tip_chain(r: &DbRecord) -> Vec<EntryId> {
    let tip =
        r.acks.iter().map(|a| a.entry).max_by_key(|id| r.entries[id].pos).expect("the first entry is acknowledged");
    let mut chain = vec![tip];
    while let Some(parent) = r.entries[chain.last().expect("non-empty")].parent {
        chain.push(parent);
    }
    chain.reverse();
    chain
}

fn push(r: &mut DbRecord, id: EntryId, parent: Option<EntryId>, at: Duration) {
    let pos = parent.map_or(1, |p| r.entries[&p].pos + 1);
    r.entries.insert(id, Entry { id, parent, pos, key: "k0".into(), value: "planted".into() });
    r.acks.push(Ack { entry: id, member: id.member, at });
}

proptest! {
    // A fixed seed: the same histories on every run, so a failure replays.
    #![proptest_config(ProptestConfig {
        cases: 256,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_127),
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_single_primary_at_a_time_passes_every_check(eras in prop::collection::vec(arb_era(), 1..8)) {
        let r = play(&eras);
        let all = check_all(&r);
        for (name, outcome) in &all {
            prop_assert!(outcome.is_pass(), "{}: {}", name, outcome);
        }
        prop_assert_eq!(classify(&r), Cell::Safe);
        prop_assert!(lost_write::lost(&r).is_empty());
    }

    /// One acknowledged entry at or below the highest acknowledged position, on a branch of its
    /// own, by a member that never held a token.
    #[test]
    fn a_planted_fork_is_always_caught(eras in prop::collection::vec(arb_era(), 1..8), pick in any::<usize>(), at_ms in 0u64..200) {
        let mut r = play(&eras);
        let chain = acked_tip_chain(&r);
        let pos = pick % chain.len() + 1;
        let parent = (pos > 1).then(|| chain[pos - 2]);
        push(&mut r, EntryId { member: MemberId(9), token: Token(99), seq: 1 }, parent, Duration::from_millis(at_ms));
        let outcome = fork::check(&r);
        let Outcome::Fail(Violation::Fork(f)) = &outcome else { return Err(TestCaseError::fail(format!("not caught: {outcome}"))) };
        prop_assert_eq!(f.parted_at, pos as u64);
        prop_assert_eq!(classify(&r), Cell::TwoPrimaries);
    }

    /// An acknowledged entry under token 0 on top of the final primary's log.
    #[test]
    fn a_planted_token_decrease_is_always_caught(eras in prop::collection::vec(arb_era(), 1..8)) {
        let mut r = play(&eras);
        let (member, head) = r.final_primary.expect("played");
        let id = EntryId { member, token: Token(0), seq: 1 };
        push(&mut r, id, head, Duration::from_secs(60));
        r.final_primary = Some((member, Some(id)));
        prop_assert!(fork::check(&r).is_pass());
        prop_assert!(matches!(tokens::check(&r), Outcome::Fail(Violation::TokenDecrease(_))));
        prop_assert_eq!(classify(&r), Cell::TwoPrimaries);
    }

    /// The final primary ends up with the log right before the highest acknowledged entry.
    #[test]
    fn a_planted_lost_write_is_always_caught(eras in prop::collection::vec(arb_era(), 1..8)) {
        let mut r = play(&eras);
        let chain = acked_tip_chain(&r);
        let member = r.final_primary.expect("played").0;
        r.final_primary = Some((member, chain.len().checked_sub(2).map(|i| chain[i])));
        let lost = lost_write::lost(&r);
        prop_assert!(lost.contains(chain.last().expect("non-empty")), "{:?}", lost);
        prop_assert!(matches!(lost_write::check(&r), Outcome::Fail(Violation::LostWrites(_))));
        prop_assert_eq!(classify(&r), Cell::LostWrite);
    }
}

/// Any forest of entries, with acks, reads and promotions drawn at random: forks, token drops,
/// deposed readers and all. Entry `i` may only have an earlier entry as parent.
fn arb_any_record() -> impl Strategy<Value = DbRecord> {
    let entry = (any::<prop::sample::Index>(), prop::bool::weighted(0.15), 1u64..4, 0u64..6, 0u64..3);
    let ack = (any::<prop::sample::Index>(), 0u64..60);
    let read = (1u64..4, 0u64..6, 0u64..60, any::<prop::sample::Index>(), prop::bool::weighted(0.1), 0u64..3);
    let promotion = (1u64..4, 0u64..6, 0u64..60);
    (
        prop::collection::vec(entry, 1..40),
        prop::collection::vec(ack, 0..20),
        prop::collection::vec(read, 0..20),
        prop::collection::vec(promotion, 0..6),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(entries, acks, reads, promotions, last)| {
            let mut r = DbRecord { synchronous: true, ..DbRecord::default() };
            let mut ids: Vec<EntryId> = Vec::new();
            for (seq, (parent, root, member, token, key)) in entries.into_iter().enumerate() {
                let id = EntryId { member: MemberId(member), token: Token(token), seq: seq as u64 };
                let parent = (!ids.is_empty() && !root).then(|| *parent.get(&ids));
                let pos = parent.map_or(1, |p| r.entries[&p].pos + 1);
                r.entries.insert(id, Entry { id, parent, pos, key: format!("k{key}"), value: String::new() });
                ids.push(id);
            }
            for (entry, at) in acks {
                let entry = *entry.get(&ids);
                r.acks.push(Ack { entry, member: entry.member, at: Duration::from_millis(at) });
            }
            for (member, token, sent, head, empty, key) in reads {
                r.reads.push(ServedRead {
                    member: MemberId(member),
                    token: Token(token),
                    sent: Duration::from_millis(sent),
                    served: Duration::from_millis(sent + 1),
                    key: format!("k{key}"),
                    value: None,
                    head: (!empty).then(|| *head.get(&ids)),
                });
            }
            for (member, token, at) in promotions {
                r.promotions.push(Promotion {
                    member: MemberId(member),
                    token: Token(token),
                    at: Duration::from_millis(at),
                });
            }
            let last = *last.get(&ids);
            r.final_primary = Some((last.member, Some(last)));
            r
        })
}

/// The definitions, walked naively: O(acks × chain) and O(reads × acks × chain).
mod naive {
    use super::*;

    pub fn on_chain(r: &DbRecord, a: EntryId, head: Option<EntryId>) -> bool {
        let mut at = head;
        while let Some(id) = at {
            if id == a {
                return true;
            }
            at = r.entries[&id].parent;
        }
        false
    }

    pub fn fork(r: &DbRecord) -> bool {
        let Some(tip) = r.acks.iter().map(|a| a.entry).rev().max_by_key(|id| r.entries[id].pos) else { return false };
        r.acks.iter().any(|a| !on_chain(r, a.entry, Some(tip)))
    }

    pub fn token_drop(r: &DbRecord) -> bool {
        r.acks.iter().any(|a| {
            let mut at = r.entries[&a.entry].clone();
            while let Some(p) = at.parent {
                let parent = r.entries[&p].clone();
                if parent.id.token > at.id.token {
                    return true;
                }
                at = parent;
            }
            false
        })
    }

    pub fn lost(r: &DbRecord) -> Vec<EntryId> {
        let head = r.final_primary.and_then(|(_, h)| h);
        let mut lost: Vec<EntryId> = r.acks.iter().map(|a| a.entry).filter(|&e| !on_chain(r, e, head)).collect();
        lost.sort();
        lost.dedup();
        lost
    }

    pub fn deposed(r: &DbRecord, read: &ServedRead) -> bool {
        r.promotions.iter().any(|p| p.member != read.member && p.token > read.token && p.at < read.sent)
    }

    pub fn stale(r: &DbRecord) -> usize {
        r.reads
            .iter()
            .filter(|read| {
                deposed(r, read)
                    && r.acks.iter().any(|a| {
                        a.at < read.sent && r.entries[&a.entry].key == read.key && !on_chain(r, a.entry, read.head)
                    })
            })
            .count()
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_127),
        ..ProptestConfig::default()
    })]

    /// The indexed checks agree with the definitions walked naively, on any history.
    #[test]
    fn the_index_agrees_with_a_naive_walk(r in arb_any_record()) {
        prop_assert_eq!(fork::check(&r).is_fail(), naive::fork(&r));
        prop_assert_eq!(tokens::check(&r).is_fail(), naive::token_drop(&r));
        prop_assert_eq!(lost_write::lost(&r), naive::lost(&r));
        prop_assert_eq!(lost_write::check(&r).is_fail(), !naive::lost(&r).is_empty());
        let stale = match stale_reads::check(&r) {
            Outcome::Pass => 0,
            Outcome::Fail(Violation::StaleReads(s)) => s.count,
            other => return Err(TestCaseError::fail(format!("{other}"))),
        };
        prop_assert_eq!(stale, naive::stale(&r));
        prop_assert_eq!(stale_reads::deposed_reads(&r), r.reads.iter().filter(|read| naive::deposed(&r, read)).count());
    }
}
