//! Simulation speed: simulated seconds per wall-clock second (issue 2, "Benchmarks").
//!
//! A real 3- or 5-voter quorumlab cluster (openraft + sled + tonic) inside turmoil, measured after
//! it is initialized and has elected a leader:
//! - `idle`: nothing but Raft heartbeats;
//! - `loaded`: one client writing 100 puts per simulated second (unique keys, paced by
//!   `tokio::time::sleep` inside the simulation).
//!
//! One criterion iteration steps the simulation through [`SIM_PER_ITER`] of simulated time, and
//! the throughput is declared as that many seconds, so criterion's `elem/s` figure *is* the
//! speed-up over real time. A summary with the plain ratio is printed at the end.
//!
//! Each case keeps one cluster across all its iterations (a fresh election per iteration would
//! measure start-up, not steady state). The loaded cluster's log grows by 1,000 entries per
//! iteration and is snapshotted and purged as it would be in a long test.
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall-clock time")]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quorumlab::sim::{SimCluster, SimOptions};

/// Simulated time per criterion iteration.
const SIM_PER_ITER: Duration = Duration::from_secs(10);
/// The loaded client's write rate.
const WRITES_PER_SIM_SECOND: u64 = 100;

/// Simulated and wall time measured for one case, for the closing summary.
#[derive(Default)]
struct Tally {
    sim: Duration,
    wall: Duration,
    writes_acked: u64,
}

/// A cluster stepped only by the benchmark, with an optional writing client.
struct Running {
    cluster: SimCluster<'static>,
    acked: Arc<AtomicU64>,
}

fn start(voters: u64, loaded: bool) -> Running {
    // As the tests do: a `RUST_LOG` subscriber (default `warn`), so the figure includes its cost.
    quorumlab::sim::trace::init_tracing();
    let mut opts = SimOptions::new(42, voters);
    // The simulation must never end on its own: criterion decides how long it runs.
    opts.duration = Duration::from_secs(10_000_000);
    let mut cluster = SimCluster::new(opts);
    let shared = cluster.shared.clone();
    let acked = Arc::new(AtomicU64::new(0));
    {
        let (s, acked) = (shared.clone(), acked.clone());
        cluster.client("bench", async move {
            s.initialize(1).await?;
            let ids: Vec<u64> = (1..=voters).collect();
            s.wait_for_leader_among(&ids, Duration::from_secs(10)).await.ok_or("no leader elected")?;
            if !loaded {
                return Ok(());
            }
            // Pace by absolute deadlines so a slow reply does not lower the offered rate.
            let mut client = s.client();
            let period = Duration::from_secs(1) / WRITES_PER_SIM_SECOND as u32;
            let mut next = tokio::time::Instant::now();
            for i in 0u64.. {
                let key = format!("bench-{i:012}");
                client.put(key.as_bytes(), b"0123456789abcdef").await.map_err(|e| format!("put {key}: {e}"))?;
                acked.fetch_add(1, Ordering::Relaxed);
                next += period;
                tokio::time::sleep_until(next).await;
            }
            Ok(())
        });
    }
    let ready = cluster
        .run_until(Duration::from_secs(30), |s| s.leader().is_some())
        .unwrap_or_else(|e| panic!("simulation failed while electing: {e}"));
    assert!(ready, "{voters} voters elected no leader within 30 simulated seconds");
    if loaded {
        let writing = cluster
            .run_until(Duration::from_secs(30), |_| acked.load(Ordering::Relaxed) > 0)
            .unwrap_or_else(|e| panic!("simulation failed before the first write: {e}"));
        assert!(writing, "no write acknowledged within 30 simulated seconds");
    }
    Running { cluster, acked }
}

fn sim_speed(c: &mut Criterion) {
    let summary: Rc<RefCell<Vec<(String, Tally)>>> = Rc::default();
    let mut group = c.benchmark_group("sim_speed");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(SIM_PER_ITER.as_secs()));
    for voters in [3u64, 5] {
        for loaded in [false, true] {
            let load = if loaded { "loaded_100ops" } else { "idle" };
            let name = format!("{voters}_voters/{load}");
            let mut running = start(voters, loaded);
            let mut tally = Tally::default();
            let acked_before = running.acked.load(Ordering::Relaxed);
            group.bench_function(BenchmarkId::new(format!("{voters}_voters"), load), |b| {
                b.iter_custom(|iters| {
                    let t0 = Instant::now();
                    for _ in 0..iters {
                        // The predicate never holds: step through exactly SIM_PER_ITER.
                        running
                            .cluster
                            .run_until(SIM_PER_ITER, |_| false)
                            .unwrap_or_else(|e| panic!("simulation failed: {e}"));
                    }
                    let wall = t0.elapsed();
                    tally.sim += SIM_PER_ITER * iters as u32;
                    tally.wall += wall;
                    wall
                })
            });
            tally.writes_acked = running.acked.load(Ordering::Relaxed) - acked_before;
            if loaded {
                // The offered load must have been served, or the figure would flatter an idle cluster.
                let expected = tally.sim.as_secs() * WRITES_PER_SIM_SECOND;
                assert!(
                    tally.writes_acked * 10 >= expected * 9,
                    "{name}: only {} of ~{expected} writes acknowledged",
                    tally.writes_acked
                );
            }
            summary.borrow_mut().push((name, tally));
        }
    }
    group.finish();
    println!("\nsimulation speed (simulated time / wall-clock time, all iterations incl. warm-up):");
    for (name, t) in summary.borrow().iter() {
        let writes = if t.writes_acked > 0 { format!(", {} writes acked", t.writes_acked) } else { String::new() };
        println!(
            "  {name:<22} {:>8.1}x real time  ({:>6.0} s simulated in {:>6.2} s wall{writes})",
            t.sim.as_secs_f64() / t.wall.as_secs_f64(),
            t.sim.as_secs_f64(),
            t.wall.as_secs_f64(),
        );
    }
}

criterion_group!(benches, sim_speed);
criterion_main!(benches);
