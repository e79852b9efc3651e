//! Partition-suite speed: wall time per scenario run and runs per hour (issue 8, "Speed").
//!
//! A run is what the suite's matrix makes: a topology laid out, set-up and election, a second of warm-up, one
//! 14 s fault under the default client load (one client per client datacenter), the heal and the liveness phase,
//! with every invariant checked after every step and the history checked at the end.
//!
//! Cases: `etcd-2-2-1` under `cut dc1–dc2` (a partial partition, two client datacenters) and under `crash the
//! leader`, and `etcd-3` under `isolate the leader`. criterion reports wall time per run; the summary printed at
//! the end turns it into runs per hour on one core and with `--jobs 2` (runs are independent, one per core), and
//! says how much of a run the linearizability check takes (timed again on the run's own history).
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall-clock time")]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use quorumlab::sim::run::{run, RunConfig};
use quorumlab::sim::schedule::{Fault, Schedule};
use quorumlab::suite::FAULT_DURATION;
use quorumlab_check::{Budget, CheckOptions, Kv, ModelKind};

/// (case, wall per run, checker time, simulated time) for the summary.
static TALLY: Mutex<Vec<(String, Duration, Duration, Duration)>> = Mutex::new(Vec::new());

fn config(topology: &str, fault: &str, seed: u64) -> RunConfig {
    let t = quorumlab_quorum::shipped::load(topology).expect("shipped");
    let fault = Fault::parse(fault, &t).expect("fault");
    RunConfig::new(&t, Schedule::single(fault, Duration::ZERO, FAULT_DURATION), seed)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("suite_run");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for (topology, fault) in
        [("etcd-2-2-1", "cut:dc1:dc2"), ("etcd-2-2-1", "crash:leader"), ("etcd-3", "isolate:leader")]
    {
        let name = format!("{topology} {fault}");
        let mut seed = 0;
        let mut failed = Vec::new();
        group.bench_function(&name, |b| {
            b.iter(|| {
                seed += 1;
                let r = run(&config(topology, fault, seed));
                if !r.passed() {
                    failed.push(format!("{}\n    {}", r.replay, r.failures().join("\n    ")));
                }
                r
            })
        });
        // The bench sweeps far more seeds than `cargo test`; a failing one is news, printed, not hidden.
        for f in &failed {
            println!("FAILED during the bench: {f}");
        }
        // One more run, timed by hand, with its checker share.
        let started = Instant::now();
        let r = run(&config(topology, fault, 1_000));
        let wall = started.elapsed();
        let history = r.history.clone().unwrap_or_default();
        let options = CheckOptions {
            budget: Budget::with_max_steps(quorumlab::sim::history::CHECK_STEPS),
            all_keys: false,
            threads: std::num::NonZeroUsize::new(1),
        };
        let started = Instant::now();
        let _ = quorumlab_check::check_history_with_options(&history, &ModelKind::Kv(Kv::default()), &options);
        let check = started.elapsed();
        TALLY.lock().unwrap().push((name, wall, check, Duration::from_millis(r.simulated_ms)));
    }
    group.finish();
    println!(
        "\ncase                              wall/run  sim/run  runs/h (1 core)  runs/h (--jobs 2)  checker share"
    );
    for (name, wall, check, sim) in TALLY.lock().unwrap().iter() {
        let per_hour = 3600.0 / wall.as_secs_f64();
        println!(
            "{name:<33} {:>7.2}s {:>7.1}s {:>16.0} {:>18.0} {:>13.1}%",
            wall.as_secs_f64(),
            sim.as_secs_f64(),
            per_hour,
            2.0 * per_hour,
            100.0 * check.as_secs_f64() / wall.as_secs_f64()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
