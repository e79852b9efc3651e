//! Random schedules that shrink: proptest draws 1–4 overlapping faults with random starts and durations over a
//! random shipped topology and a random seed, runs them through the suite's engine, and requires every property
//! to hold. A failure shrinks to a minimal schedule and prints the seed, the schedule and the command that replays
//! it. The negative control plants a bug and checks that shrinking ends at a small schedule.
//!
//! Deterministic: proptest's own RNG runs from a fixed seed (`PROPTEST_RNG_SEED` overrides it), so a failure here
//! is the same failure on every machine.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use quorumlab::node::PlantedBug;
use quorumlab::sim::run::{run, RunConfig};
use quorumlab::sim::schedule::{single_faults, Schedule, Step};
use quorumlab_quorum::shipped;

/// A drawn case: which shipped topology, which faults (index into its single faults, start, duration), which seed.
#[derive(Clone, Debug)]
struct Drawn {
    topology: usize,
    steps: Vec<(usize, u64, u64)>,
    seed: u64,
}

fn drawn(topologies: std::ops::Range<usize>) -> impl Strategy<Value = Drawn> {
    (topologies, prop::collection::vec((0usize..64, 0u64..8_000, 1_000u64..9_000), 1..=4), 1u64..1_000)
        .prop_map(|(topology, steps, seed)| Drawn { topology, steps, seed })
}

/// The run config a drawn case stands for.
fn config(d: &Drawn, planted_bug: Option<PlantedBug>) -> RunConfig {
    let t = shipped::load(shipped::NAMES[d.topology % shipped::NAMES.len()]).expect("shipped");
    let faults = single_faults(&t);
    let steps = d
        .steps
        .iter()
        .map(|&(fault, start_ms, duration_ms)| Step {
            start: Duration::from_millis(start_ms / 100 * 100),
            fault: faults[fault % faults.len()].clone(),
            duration: Duration::from_millis(duration_ms / 100 * 100),
        })
        .collect();
    let mut config = RunConfig::new(&t, Schedule { steps }, d.seed);
    config.planted_bug = planted_bug;
    config
}

/// Runs a drawn case; a failure says what broke and how to replay it.
fn check(d: &Drawn, planted_bug: Option<PlantedBug>) -> Result<(), TestCaseError> {
    let config = config(d, planted_bug);
    let record = run(&config);
    if record.passed() {
        Ok(())
    } else {
        Err(TestCaseError::fail(format!(
            "{} / {} / seed {}: {}\nreplay: {}",
            record.topology,
            record.schedule,
            record.seed,
            record.failures().join("; "),
            record.replay
        )))
    }
}

fn runner(cases: u32, shrink_iters: u32) -> TestRunner {
    let seed = std::env::var("PROPTEST_RNG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_127);
    TestRunner::new(Config {
        cases,
        max_shrink_iters: shrink_iters,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn random_overlapping_schedules_keep_every_property() {
    quorumlab::sim::trace::init_tracing();
    let result = runner(6, 64).run(&drawn(0..shipped::NAMES.len()), |d| check(&d, None));
    if let Err(TestError::Fail(why, d)) = &result {
        panic!("a random schedule broke a property; shrunk to {d:?}:\n{why}");
    }
    result.expect("random schedules");
}

/// Negative control: with `AckBeforeMajority` planted (a leader answers a write before a majority holds it),
/// random schedules on 2/2/1 must find a failure, and shrinking must bring it down to at most two faults.
#[test]
fn negative_control_a_planted_bug_is_found_and_shrinks_to_a_small_schedule() {
    quorumlab::sim::trace::init_tracing();
    let etcd_2_2_1 = shipped::NAMES.iter().position(|n| *n == "etcd-2-2-1").expect("shipped");
    let result =
        runner(16, 48).run(&drawn(etcd_2_2_1..etcd_2_2_1 + 1), |d| check(&d, Some(PlantedBug::AckBeforeMajority)));
    match result {
        Err(TestError::Fail(why, d)) => {
            println!("shrunk to {} fault(s), seed {}:\n{why}", d.steps.len(), d.seed);
            assert!(d.steps.len() <= 2, "shrinking should leave at most two faults, left {d:?}");
            assert!(why.message().contains("replay: quorumlab suite"), "the failure prints its replay command: {why}");
        }
        other => panic!("the planted bug was not found in 16 random schedules: {other:?}"),
    }
}
