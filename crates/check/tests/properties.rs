//! Property tests: histories produced by a correct store are accepted; corrupt one result and they are
//! rejected. The generator is driven by a vector of choices, so proptest shrinks a failure to a short history.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};
use quorumlab_check::synth::{kv_history, Scripted, SynthConfig};
use quorumlab_check::{check_history, Budget, EventKind, History, Kv, ModelKind, Outcome, Value};

fn generate(script: &[u32], keys: usize, clients: usize, unknown_per_mille: u32) -> History {
    generate_n(script.len() / 3 + 1, script, keys, clients, unknown_per_mille)
}

fn generate_n(operations: usize, script: &[u32], keys: usize, clients: usize, unknown_per_mille: u32) -> History {
    let config = SynthConfig { operations, keys, clients, unknown_per_mille };
    kv_history(&config, &mut Scripted { script, position: 0 })
}

fn outcome(history: &History) -> Outcome {
    check_history(history, &ModelKind::Kv(Kv::default()), &Budget::unlimited()).expect("well-formed").outcome
}

/// Replaces the result of the `which`-th successful `get` by a value no one ever wrote.
fn corrupt_a_read(history: &mut History, which: prop::sample::Index) -> bool {
    let reads: Vec<usize> = (0..history.events.len())
        .filter(|&i| history.events[i].kind == EventKind::Ok && history.events[i].f == "get")
        .collect();
    if reads.is_empty() {
        return false;
    }
    history.events[reads[which.index(reads.len())]].value = Value::Str("never written".into());
    true
}

/// A fixed seed: the same cases on every run and machine (set `PROPTEST_RNG_SEED` to explore others).
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig { cases: n, failure_persistence: None, rng_seed: seed(), ..ProptestConfig::default() }
}

fn seed() -> RngSeed {
    let fixed = std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    RngSeed::Fixed(fixed)
}

proptest! {
    #![proptest_config(cases(96))]

    #[test]
    fn histories_of_a_correct_store_are_linearizable(
        script in prop::collection::vec(any::<u32>(), 0..240),
        keys in 1usize..4,
        clients in 1usize..7,
        unknown_per_mille in prop_oneof![Just(0u32), 1u32..300],
    ) {
        let history = generate(&script, keys, clients, unknown_per_mille);
        prop_assert_eq!(outcome(&history), Outcome::Linearizable);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_rejected(
        script in prop::collection::vec(any::<u32>(), 0..240),
        keys in 1usize..4,
        clients in 1usize..7,
        unknown_per_mille in 0u32..200,
        which in any::<prop::sample::Index>(),
    ) {
        let mut history = generate(&script, keys, clients, unknown_per_mille);
        prop_assume!(corrupt_a_read(&mut history, which));
        prop_assert_eq!(outcome(&history), Outcome::NotLinearizable);
    }
}

/// Shows shrinking at work on a deliberately wrong checker: one that treats unknown outcomes as failures
/// (`info` = "did not happen"). proptest finds a history of up to ~160 events that it wrongly rejects and
/// shrinks it to 10–24 events (seed-dependent): an unknown `put` and a later op that saw its value, plus
/// noise the step-wise shrinker cannot remove without changing the interleaving.
#[test]
fn shrinking_finds_a_small_counterexample_for_a_wrong_checker() {
    let config =
        Config { cases: 256, max_shrink_iters: 8192, failure_persistence: None, rng_seed: seed(), ..Config::default() };
    let mut runner = TestRunner::new(config);
    // One `[u32; 4]` per generator step (see `synth`), so shrinking removes whole steps.
    let strategy = (1usize..40, prop::collection::vec(prop::array::uniform4(any::<u32>()), 0..80));
    let wrong_checker_accepts = |(operations, steps): (usize, Vec<[u32; 4]>)| {
        let script: Vec<u32> = steps.concat();
        let mut history = generate_n(operations, &script, 1, 3, 300);
        for event in &mut history.events {
            if event.kind == EventKind::Info {
                event.kind = EventKind::Fail;
            }
        }
        prop_assert_eq!(outcome(&history), Outcome::Linearizable);
        Ok(())
    };
    match runner.run(&strategy, wrong_checker_accepts) {
        Err(TestError::Fail(_, (operations, steps))) => {
            let script: Vec<u32> = steps.concat();
            let history = generate_n(operations, &script, 1, 3, 300);
            assert!(history.events.len() <= 24, "shrunk to {} events: {:#?}", history.events.len(), history.events);
        }
        other => panic!("the wrong checker should have been caught, got {other:?}"),
    }
}

/// A deeper sweep for release runs: `cargo test -p quorumlab-check --release -- --ignored`.
#[test]
#[ignore]
fn deep_sweep_of_larger_histories() {
    let mut runner =
        TestRunner::new(Config { cases: 2_000, failure_persistence: None, rng_seed: seed(), ..Config::default() });
    let strategy = (prop::collection::vec(any::<u32>(), 0..3_000), 1usize..6, 1usize..12, 0u32..100);
    runner
        .run(&strategy, |(script, keys, clients, unknown)| {
            let history = generate(&script, keys, clients, unknown);
            prop_assert_eq!(outcome(&history), Outcome::Linearizable);
            Ok(())
        })
        .expect("every generated history is linearizable");
}
