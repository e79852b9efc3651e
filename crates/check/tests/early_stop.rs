//! Stopping at the first key proven not linearizable, and searching keys in parallel, change how much work a
//! check does, never its verdict. No assertion here is about wall time: work is counted in search steps.

mod common;

use std::num::NonZeroUsize;

use quorumlab_check::{check_history_with_options, Budget, CheckOptions, History, Kv, ModelKind, Outcome, Verdict};

fn check(history: &History, budget: Budget, all_keys: bool, threads: usize) -> Verdict {
    let options = CheckOptions { budget, all_keys, threads: NonZeroUsize::new(threads) };
    check_history_with_options(history, &ModelKind::Kv(Kv::default()), &options).expect("well-formed")
}

fn key(k: &str) -> Option<String> {
    Some(k.to_string())
}

/// A budget the hard key cannot finish in: 20 million steps (tens of seconds of search) and 256 MiB of memo.
fn roomy() -> Budget {
    Budget { max_memo_bytes: 256 << 20, ..Budget::with_max_steps(20_000_000) }
}

/// Issue 8's case: 50 clients, 10 keys; `k3` is not linearizable, `k7` is innocent but its search runs past
/// 20 million steps. The check names `k3` after searching `k0`…`k3` only (a few thousand steps), cancels
/// whatever search of a later key a thread had started, and lists `k4`…`k9` as not checked.
#[test]
fn a_failing_key_is_reported_without_searching_a_hard_innocent_key_after_it() {
    let history = common::fifty_clients_ten_keys(3, 7, 600);
    for threads in [1, 2, 4] {
        let verdict = check(&history, roomy(), false, threads);
        assert_eq!(verdict.outcome, Outcome::NotLinearizable);
        let (failing, _) = verdict.violation().expect("a violation is explained");
        assert_eq!(failing.key, key("k3"));
        assert_eq!(verdict.partitions.len(), 4, "k0…k3 were searched");
        assert_eq!(verdict.unchecked_keys, (4..10).map(|k| key(&format!("k{k}"))).collect::<Vec<_>>());
        assert!(verdict.stats.steps < 100_000, "{} steps on {threads} threads", verdict.stats.steps);
        assert!(verdict.stats.peak_memo_entries < 10_000, "{} memo entries", verdict.stats.peak_memo_entries);
    }
}

/// The same history with `--all-keys` (today's explanation of every key): the same outcome and the same
/// failing key, after the hard key's search used up a 2-million-step budget — that is the work stopping early
/// saves.
#[test]
fn all_keys_explains_every_key_and_agrees_on_the_failing_one() {
    let history = common::fifty_clients_ten_keys(3, 7, 600);
    let verdict = check(&history, Budget::with_max_steps(2_000_000), true, 2);
    assert_eq!(verdict.outcome, Outcome::NotLinearizable);
    assert_eq!(verdict.violation().expect("a violation").0.key, key("k3"));
    assert_eq!(verdict.partitions.len(), 10);
    assert!(verdict.unchecked_keys.is_empty());
    assert_eq!(verdict.partitions[7].outcome, Outcome::Unknown, "k7 is hard: {:?}", verdict.partitions[7]);
    assert!(verdict.stats.steps > 2_000_000);
    let stopped = check(&history, Budget::with_max_steps(2_000_000), false, 2);
    assert_eq!(stopped.partitions[..], verdict.partitions[..4], "the keys both searched are explained alike");
}

/// The price of a verdict that does not depend on thread timing: when the hard key comes *before* the
/// failing one in key order, it is searched to the end of its budget, because it might have failed too and
/// the first failing key in key order is the one reported. Pinned so that a change to that rule is a
/// decision, not an accident.
#[test]
fn a_hard_key_before_the_failing_one_is_still_searched_to_the_end_of_its_budget() {
    let history = common::fifty_clients_ten_keys(7, 2, 600);
    for threads in [1, 3] {
        let verdict = check(&history, Budget::with_max_steps(1_000_000), false, threads);
        assert_eq!(verdict.outcome, Outcome::NotLinearizable);
        assert_eq!(verdict.violation().expect("a violation").0.key, key("k7"));
        assert_eq!(verdict.partitions[2].outcome, Outcome::Unknown);
        assert_eq!(verdict.partitions.len(), 8);
        assert!(verdict.stats.steps > 1_000_000);
    }
}

/// Several keys fail: the first in key order is reported, on any number of threads, and every verdict is
/// identical.
#[test]
fn with_several_failing_keys_the_first_in_key_order_is_reported() {
    let mut history = common::fifty_clients_ten_keys(5, 7, 100);
    let read = history
        .events
        .iter()
        .rposition(|e| e.kind == quorumlab_check::EventKind::Ok && e.f == "get" && e.key == key("k8"))
        .expect("k8 has a get");
    history.events[read].value = quorumlab_check::Value::Str("also never written".into());
    let one = check(&history, roomy(), false, 1);
    assert_eq!(one.violation().expect("a violation").0.key, key("k5"));
    for threads in [2, 3, 8] {
        assert_eq!(check(&history, roomy(), false, threads), one, "{threads} threads");
    }
    let all = check(&history, roomy(), true, 1);
    let failing: Vec<_> = all.partitions.iter().filter(|p| p.violation.is_some()).map(|p| p.key.clone()).collect();
    assert_eq!(failing, vec![key("k5"), key("k8")]);
    assert_eq!(check(&history, roomy(), true, 4), all);
}
