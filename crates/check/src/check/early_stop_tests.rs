//! The negative control for stopping early: over generated multi-key histories with one key corrupted, the
//! verdict with early stop must agree with the verdict that explains every key, on any number of threads.
//! The same property run against a planted wrong early stop must fail, or it proves nothing.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

use super::{check_partitions, CheckOptions, StopRule};
use crate::history::{EventKind, History};
use crate::model::Kv;
use crate::synth::{kv_history, Scripted, SynthConfig};
use crate::value::Value;
use crate::verdict::Verdict;

fn check(history: &History, all_keys: bool, threads: usize, rule: StopRule) -> Verdict {
    let options = CheckOptions { all_keys, threads: NonZeroUsize::new(threads), ..CheckOptions::default() };
    check_partitions(history, &Kv::default(), &options, rule).expect("generated histories are well-formed")
}

/// A history of a correct store over `keys` keys; if `corrupt` names a key that has a successful get, that
/// get's result becomes a value nobody wrote, so that key (and only it) is not linearizable.
fn generate(script: &[u32], keys: usize, clients: usize, unknown_per_mille: u32, corrupt: Option<usize>) -> History {
    let config = SynthConfig { operations: script.len() / 3 + 1, keys, clients, unknown_per_mille };
    let mut history = kv_history(&config, &mut Scripted { script, position: 0 });
    if let Some(key) = corrupt.map(|k| format!("k{}", k % keys)) {
        let read = history
            .events
            .iter()
            .position(|e| e.kind == EventKind::Ok && e.f == "get" && e.key.as_deref() == Some(key.as_str()));
        if let Some(read) = read {
            history.events[read].value = Value::Str("never written".into());
        }
    }
    history
}

/// Early stop explains a prefix of what `--all-keys` explains, with the same outcome and the same failing
/// key, and the keys it skipped are exactly the rest; threads change nothing.
fn early_stop_agrees(history: &History, rule: StopRule) -> Result<(), TestCaseError> {
    let all = check(history, true, 1, StopRule::OnFailure);
    prop_assert_eq!(&check(history, true, 3, StopRule::OnFailure), &all, "all keys, 3 threads");
    for threads in [1, 3] {
        let stopped = check(history, false, threads, rule);
        prop_assert_eq!(stopped.outcome, all.outcome, "outcome on {} threads", threads);
        prop_assert_eq!(
            stopped.violation().map(|(p, _)| &p.key),
            all.violation().map(|(p, _)| &p.key),
            "failing key on {} threads",
            threads
        );
        let searched = stopped.partitions.len();
        prop_assert!(searched <= all.partitions.len());
        prop_assert_eq!(&stopped.partitions[..], &all.partitions[..searched]);
        let rest: Vec<Option<String>> = all.partitions[searched..].iter().map(|p| p.key.clone()).collect();
        prop_assert_eq!(&stopped.unchecked_keys, &rest);
    }
    Ok(())
}

type Case = (Vec<u32>, usize, usize, u32, Option<usize>);

fn cases() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(any::<u32>(), 0..240),
        2usize..6,
        1usize..7,
        prop_oneof![Just(0u32), 1u32..200],
        prop::option::weighted(0.8, 0usize..6),
    )
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, rng_seed: RngSeed::Fixed(8), ..Config::default() })
}

#[test]
fn early_stop_gives_the_verdict_of_all_keys() {
    // Cases where stopping early skipped a key, and where a key before the failing one was searched: without
    // enough of both the property would hold vacuously.
    let (skipped, searched_before) = (AtomicUsize::new(0), AtomicUsize::new(0));
    runner(256)
        .run(&cases(), |(script, keys, clients, unknown, corrupt)| {
            let history = generate(&script, keys, clients, unknown, corrupt);
            let stopped = check(&history, false, 1, StopRule::OnFailure);
            if !stopped.unchecked_keys.is_empty() {
                skipped.fetch_add(1, Ordering::Relaxed);
            }
            if stopped.violation().is_some() && stopped.partitions.len() > 1 {
                searched_before.fetch_add(1, Ordering::Relaxed);
            }
            early_stop_agrees(&history, StopRule::OnFailure)
        })
        .expect("early stop agrees with --all-keys");
    let (skipped, searched_before) = (skipped.into_inner(), searched_before.into_inner());
    assert!(
        skipped >= 40 && searched_before >= 40,
        "{skipped} cases skipped keys, {searched_before} searched keys first"
    );
}

/// The planted bug stops at the first decided key, failing or not, and so calls a history linearizable when
/// a later key fails. The property must catch it.
#[test]
fn a_planted_early_stop_that_ignores_later_failing_keys_is_caught() {
    let result = runner(256).run(&cases(), |(script, keys, clients, unknown, corrupt)| {
        early_stop_agrees(&generate(&script, keys, clients, unknown, corrupt), StopRule::PlantedBugOnAnyVerdict)
    });
    match result {
        Err(TestError::Fail(_, (script, keys, clients, unknown, corrupt))) => {
            let history = generate(&script, keys, clients, unknown, corrupt);
            let planted = check(&history, false, 1, StopRule::PlantedBugOnAnyVerdict);
            let right = check(&history, false, 1, StopRule::OnFailure);
            assert_ne!(planted.outcome, right.outcome, "the shrunk case shows the wrong verdict");
        }
        other => panic!("the planted bug should have been caught, got {other:?}"),
    }
}
