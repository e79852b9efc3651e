//! Simulation speed: simulated seconds per wall-clock second (issue 2, "Benchmarks").
//!
//! A real 3- or 5-voter quorumlab cluster (openraft + sled + tonic) inside turmoil, measured after
//! it is initialized and has elected a leader:
//! - `idle`: nothing but Raft heartbeats;
//! - `loaded_100ops`: one client writing 100 puts per simulated second (unique keys, paced by
//!   `tokio::time::sleep` inside the simulation);
//! - `saturated_16_clients`: sixteen client sessions on one client host, each writing back to back
//!   (one write in flight per session, as the client library requires), over a bounded key set:
//!   the cluster's throughput. Its figure is acknowledged writes per wall-clock second;
//! - `rpc_floor`: back-to-back status calls, to price one simulated gRPC round trip and so bound
//!   the loaded figure from above (see `docs/simulation-speed.md`).
//!
//! `QUORUMLAB_BENCH_SIM_SECONDS=20 cargo bench --bench sim_speed -- saturated` steps each chosen case
//! exactly 20 simulated seconds once instead of letting criterion choose, so two builds do identical
//! work (the simulation is deterministic) and compare by wall and CPU time.
//!
//! `QUORUMLAB_BENCH_TICK_MS=10 cargo bench --bench sim_speed` reruns it with a coarser turmoil
//! tick (coarser latency resolution), and `QUORUMLAB_BENCH_HEARTBEAT_MS=100` with a slower
//! heartbeat, to show what each costs.
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
use quorumlab::net::{self, Deadlines, Transport};
use quorumlab::pb::{self, admin_service_client::AdminServiceClient};
use quorumlab::sim::{SimCluster, SimOptions};

/// Simulated time per criterion iteration.
const SIM_PER_ITER: Duration = Duration::from_secs(10);
/// The loaded client's write rate.
const WRITES_PER_SIM_SECOND: u64 = 100;
/// Concurrent client sessions in the saturated case, each with one write in flight
/// (`QUORUMLAB_BENCH_CLIENTS` overrides it).
const SATURATING_CLIENTS: u64 = 16;
/// Keys each saturating session cycles over: the state stays bounded (a snapshot copies all of it), as in a
/// long-running cluster rather than one whose key space grows without end.
const KEYS_PER_SATURATING_CLIENT: u64 = 256;
/// Simulated time per iteration of the saturated case: a few thousand writes, so an iteration
/// takes about a wall-clock second.
const SATURATED_SIM_PER_ITER: Duration = Duration::from_secs(1);
/// Round trips one write needs at the least: client → leader, then to each of two followers an
/// append-entries with the entry and one with the new commit index.
const MIN_RPCS_PER_WRITE: f64 = 5.0;

/// Simulated and wall time measured for one case, for the closing summary.
#[derive(Default)]
struct Tally {
    sim: Duration,
    wall: Duration,
    /// The stepping thread's own CPU time over the same iterations: on a shared machine it is what a free core
    /// would have taken, where the wall time also counts waiting for the core.
    cpu: Duration,
    /// Writes acknowledged or status calls answered, by case.
    count: u64,
}

impl Tally {
    fn speed(&self) -> f64 {
        self.sim.as_secs_f64() / self.wall.as_secs_f64()
    }

    fn wall_per_sim_second(&self) -> f64 {
        self.wall.as_secs_f64() / self.sim.as_secs_f64()
    }
}

/// A cluster stepped only by the benchmark, with an optional writing client.
struct Running {
    cluster: SimCluster<'static>,
    acked: Arc<AtomicU64>,
}

fn start(voters: u64, load: Load) -> Running {
    // As the tests do: a `RUST_LOG` subscriber (default `warn`), so the figure includes its cost.
    quorumlab::sim::trace::init_tracing();
    let mut opts = SimOptions::new(42, voters);
    opts.tick = tick();
    if let Some(hb) = heartbeat_ms() {
        // Election timeouts keep their default ratio to the heartbeat (6x to 12x).
        opts.timing.heartbeat_ms = hb;
        opts.timing.election_timeout_ms_min = 6 * hb;
        opts.timing.election_timeout_ms_max = 12 * hb;
    }
    if load == Load::Saturated {
        // A throughput figure is for a node under load: a real node's snapshot policy, not the tests' (which
        // snapshot every 500 entries on purpose). Kept at 1,000 entries, the real default when the figures in
        // docs/simulation-speed.md were measured, so they stay comparable (real nodes now default to 100,000).
        opts.snapshot_every = 1000;
        opts.logs_kept_after_snapshot = quorumlab::node::logs_kept_after_snapshot(opts.snapshot_every);
    }
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
            match load {
                Load::Idle | Load::Rpcs => return Ok(()),
                Load::Writes => {}
                Load::Saturated => return saturate(&s, &acked).await,
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
    if matches!(load, Load::Writes | Load::Saturated) {
        let writing = cluster
            .run_until(Duration::from_secs(30), |_| acked.load(Ordering::Relaxed) > 0)
            .unwrap_or_else(|e| panic!("simulation failed before the first write: {e}"));
        assert!(writing, "no write acknowledged within 30 simulated seconds");
    }
    Running { cluster, acked }
}

/// [`SATURATING_CLIENTS`] sessions writing back to back, each as its own task with its own
/// connections; returns only on a failed write.
async fn saturate(s: &quorumlab::sim::Shared, acked: &Arc<AtomicU64>) -> Result<(), String> {
    let mut tasks = Vec::new();
    for c in 0..saturating_clients() {
        let (mut client, acked) = (s.client(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let key = format!("sat-{c:02}-{:04}", i % KEYS_PER_SATURATING_CLIENT);
                client.put(key.as_bytes(), b"0123456789abcdef").await.map_err(|e| format!("put {key}: {e}"))?;
                acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("a saturating client panicked: {e}"))??;
    }
    Ok(())
}

/// `QUORUMLAB_BENCH_SIM_SECONDS`: step each case exactly this long once, outside criterion, so two builds do the
/// same work and their wall and CPU times compare directly.
fn fixed_sim_seconds() -> Option<Duration> {
    whole_from_env("QUORUMLAB_BENCH_SIM_SECONDS", "seconds").map(Duration::from_secs)
}

/// CPU time this thread has run (Linux `schedstat`; zero elsewhere). The simulation is single-threaded, so this is
/// its cost without the time spent waiting for a core that other work held.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|ns| ns.parse().ok()))
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

/// [`SATURATING_CLIENTS`], unless `QUORUMLAB_BENCH_CLIENTS` says otherwise.
fn saturating_clients() -> u64 {
    whole_from_env("QUORUMLAB_BENCH_CLIENTS", "client sessions").unwrap_or(SATURATING_CLIENTS)
}

/// The benchmark filter criterion was given (`cargo bench --bench sim_speed -- saturated`), if any.
fn case_filter() -> Option<String> {
    // criterion's options that take a value: that value is not the filter.
    const WITH_VALUE: [&str; 8] = [
        "--profile-time",
        "--measurement-time",
        "--warm-up-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--color",
        "--output-format",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    (0..args.len())
        .find(|&i| !args[i].starts_with('-') && (i == 0 || !WITH_VALUE.contains(&args[i - 1].as_str())))
        .map(|i| args[i].clone())
}

/// turmoil's tick: 1 ms (the simulator's default) unless `QUORUMLAB_BENCH_TICK_MS` says otherwise,
/// to show what a coarser latency resolution buys.
fn tick() -> Duration {
    Duration::from_millis(millis_from_env("QUORUMLAB_BENCH_TICK_MS").unwrap_or(1))
}

/// `QUORUMLAB_BENCH_HEARTBEAT_MS`, if set: the leader's heartbeat interval (default 50 ms).
fn heartbeat_ms() -> Option<u64> {
    millis_from_env("QUORUMLAB_BENCH_HEARTBEAT_MS")
}

/// A knob in whole milliseconds; a value that is not one stops the bench rather than being ignored.
fn millis_from_env(name: &str) -> Option<u64> {
    whole_from_env(name, "milliseconds")
}

/// A whole number above 0 of `unit`; a value that is not one stops the bench rather than being ignored.
fn whole_from_env(name: &str, unit: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(n) if n > 0 => Some(n),
        _ => panic!("{name} must be a whole number of {unit} above 0, got {value:?}"),
    }
}

/// The cost floor of one simulated gRPC round trip: a client on its own host calls `Admin/Status`
/// on node 1 back to back over one HTTP/2 connection, while the cluster idles. Status touches no
/// storage, so the figure is tonic + hyper + h2 + turmoil's TCP on both ends, plus the idle
/// cluster's own cost (subtract the `idle` case per simulated second to isolate the RPCs).
///
/// A replicated write needs at least five such round trips (client → leader, and per follower
/// one append-entries carrying the entry and one carrying the new commit index), which bounds
/// the loaded speed-up from above whatever Raft and storage cost.
fn rpc_floor(voters: u64) -> (Running, Arc<AtomicU64>) {
    let mut running = start(voters, Load::Rpcs);
    let calls = Arc::new(AtomicU64::new(0));
    {
        let (s, calls) = (running.cluster.shared.clone(), calls.clone());
        running.cluster.client("rpc-floor", async move {
            let deadlines = Deadlines { connect: Duration::from_secs(1), request: Duration::from_secs(1) };
            let channel = net::channel(Transport::Sim, &s.endpoint(1), deadlines).map_err(|e| e.to_string())?;
            let mut admin = AdminServiceClient::new(channel);
            loop {
                admin.status(pb::StatusRequest {}).await.map_err(|e| format!("status: {e}"))?;
                calls.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    (running, calls)
}

/// What runs beside the Raft cluster in one case.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    Idle,
    /// One client writing [`WRITES_PER_SIM_SECOND`].
    Writes,
    /// [`SATURATING_CLIENTS`] sessions writing as fast as the cluster answers.
    Saturated,
    /// Back-to-back status calls (see [`rpc_floor`]).
    Rpcs,
}

fn sim_speed(c: &mut Criterion) {
    let summary: Rc<RefCell<Vec<(String, Tally)>>> = Rc::default();
    let mut group = c.benchmark_group("sim_speed");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    let cases = [
        (3u64, Load::Idle),
        (3, Load::Writes),
        (3, Load::Saturated),
        (5, Load::Idle),
        (5, Load::Writes),
        (3, Load::Rpcs),
    ];
    let only = case_filter();
    for (voters, load) in cases {
        let sim_per_iter = if load == Load::Saturated { SATURATED_SIM_PER_ITER } else { SIM_PER_ITER };
        group.throughput(Throughput::Elements(sim_per_iter.as_secs()));
        if load == Load::Writes && tick() > Duration::from_millis(2) {
            // Messages arrive on tick boundaries, so a write's four hops take at least four ticks
            // and one sequential client cannot offer the load; the figure would be meaningless.
            println!(
                "skipping {voters}_voters/loaded_100ops: a {:?} tick cannot carry 100 sequential writes/s",
                tick()
            );
            continue;
        }
        let label = match load {
            Load::Idle => "idle".to_string(),
            Load::Writes => "loaded_100ops".to_string(),
            Load::Saturated => format!("saturated_{}_clients", saturating_clients()),
            Load::Rpcs => "rpc_floor".to_string(),
        };
        let name = format!("{voters}_voters/{label}");
        if only.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            // Building a cluster costs seconds; skip the ones criterion's filter would not run.
            continue;
        }
        let (mut running, counter) = match load {
            Load::Rpcs => rpc_floor(voters),
            _ => {
                let running = start(voters, load);
                let acked = running.acked.clone();
                (running, acked)
            }
        };
        let mut tally = Tally::default();
        let count_before = counter.load(Ordering::Relaxed);
        if let Some(fixed) = fixed_sim_seconds() {
            // The same simulated work every time (the simulation is deterministic), so two builds compare.
            let (t0, cpu0) = (Instant::now(), thread_cpu());
            running.cluster.run_until(fixed, |_| false).unwrap_or_else(|e| panic!("simulation failed: {e}"));
            (tally.wall, tally.cpu, tally.sim) = (t0.elapsed(), thread_cpu().saturating_sub(cpu0), fixed);
            tally.count = counter.load(Ordering::Relaxed) - count_before;
            summary.borrow_mut().push((name, tally));
            continue;
        }
        group.bench_function(BenchmarkId::new(format!("{voters}_voters"), label), |b| {
            b.iter_custom(|iters| {
                let t0 = Instant::now();
                let cpu0 = thread_cpu();
                for _ in 0..iters {
                    // The predicate never holds: step through exactly sim_per_iter.
                    running
                        .cluster
                        .run_until(sim_per_iter, |_| false)
                        .unwrap_or_else(|e| panic!("simulation failed: {e}"));
                }
                let wall = t0.elapsed();
                tally.cpu += thread_cpu().saturating_sub(cpu0);
                tally.sim += sim_per_iter * iters as u32;
                tally.wall += wall;
                wall
            })
        });
        tally.count = counter.load(Ordering::Relaxed) - count_before;
        if load == Load::Writes {
            // The offered load must have been served, or the figure would flatter an idle cluster.
            let expected = tally.sim.as_secs() * WRITES_PER_SIM_SECOND;
            assert!(
                tally.count * 10 >= expected * 9,
                "{name}: only {} of ~{expected} writes acknowledged",
                tally.count
            );
        }
        summary.borrow_mut().push((name, tally));
    }
    group.finish();
    println!(
        "\nsimulation speed (simulated time / wall-clock time, all iterations incl. warm-up; tick {:?}, heartbeat {} ms):",
        tick(),
        heartbeat_ms().unwrap_or(quorumlab::node::Timing::default().heartbeat_ms),
    );
    let summary = summary.borrow();
    for (name, t) in summary.iter() {
        let counted = if name.ends_with("rpc_floor") { "status calls" } else { "writes acked" };
        let extra = if t.count > 0 {
            let per_wall = t.count as f64 / t.wall.as_secs_f64();
            let per_cpu = t.count as f64 / t.cpu.as_secs_f64();
            let per_sim = t.count as f64 / t.sim.as_secs_f64();
            format!(
                "\n  {:<30} {} {counted}: {per_wall:.0}/wall s, {per_cpu:.0}/CPU s, {per_sim:.0}/simulated s",
                "", t.count
            )
        } else {
            String::new()
        };
        println!(
            "  {name:<30} {:>8.1}x real time  ({:>6.0} s simulated in {:>6.2} s wall, {:>6.2} s CPU){extra}",
            t.speed(),
            t.sim.as_secs_f64(),
            t.wall.as_secs_f64(),
            t.cpu.as_secs_f64(),
        );
    }
    // The ceiling argument: wall time per round trip, net of what the idle cluster costs anyway.
    let idle = summary.iter().find(|(n, _)| n == "3_voters/idle").map(|(_, t)| t.wall_per_sim_second());
    let rpcs = summary.iter().find(|(n, _)| n == "3_voters/rpc_floor").map(|(_, t)| t);
    if let (Some(idle), Some(rpcs)) = (idle, rpcs) {
        if rpcs.count > 0 {
            let net = (rpcs.wall.as_secs_f64() - idle * rpcs.sim.as_secs_f64()).max(0.0);
            let per_rpc = net / rpcs.count as f64;
            let ceiling = 1.0 / (idle + WRITES_PER_SIM_SECOND as f64 * MIN_RPCS_PER_WRITE * per_rpc);
            println!(
                "\none simulated gRPC round trip costs {:.1} us of wall time (net of the idle cluster);\n\
                 a write needs >= {MIN_RPCS_PER_WRITE} of them, so {WRITES_PER_SIM_SECOND} writes per simulated second \
                 cap a 3-voter cluster at {:.0}x real time before Raft or storage do any work",
                per_rpc * 1e6,
                ceiling,
            );
        }
    }
}

criterion_group!(benches, sim_speed);
criterion_main!(benches);
