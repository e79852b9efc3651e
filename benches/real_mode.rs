//! Real mode: writes per second and p50/p99 write latency on a 3-node loopback cluster of real
//! `quorumlab node` processes (fsync on every append), with 1, 16 and 64 concurrent clients
//! (issue 2, "Benchmarks").
//!
//! One criterion iteration is one acknowledged put with a unique key; the throughput is declared
//! as one element per iteration, so criterion's `elem/s` is writes per second. Each client is its
//! own [`Client`] session with its own connections, running as its own task on a multi-thread
//! tokio runtime. Every put's latency is recorded; p50/p99 are printed at the end.
//!
//! The node processes live in a [`LocalCluster`] whose `Drop` kills them, so they never outlive the
//! benchmark, not even when it panics.
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall-clock time")]

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quorumlab::client::{Client, ClientConfig};
use quorumlab::local::{free_addrs, LocalCluster};
use quorumlab::net::Transport;

const EXE: &str = env!("CARGO_BIN_EXE_quorumlab");
const NODES: u64 = 3;
const CONCURRENCY: [usize; 3] = [1, 16, 64];
const VALUE: &[u8] = b"0123456789abcdef0123456789abcdef";

/// Starts the processes, initializes the cluster and waits for a leader.
async fn start_cluster() -> LocalCluster {
    let addrs = free_addrs(NODES).expect("free loopback ports");
    let cluster = LocalCluster::start(Path::new(EXE), addrs, None, &[], true).expect("start quorumlab nodes");
    cluster.wait_listening(Duration::from_secs(20)).await.expect("nodes listening");
    cluster.initialize(Duration::from_secs(5)).await.expect("initialize the cluster");
    let all: Vec<u64> = (1..=NODES).collect();
    cluster.wait_for_leader(&all, Duration::from_secs(10)).await.expect("a leader");
    cluster
}

/// One client session and the next key it writes.
struct Writer {
    client: Client,
    name: String,
    next: u64,
}

/// Runs `ops` puts split across the writers, each writer sequential, all writers concurrent.
/// Returns the writers, the wall time and every put's latency.
async fn run_writers(writers: Vec<Writer>, ops: u64) -> (Vec<Writer>, Duration, Vec<Duration>) {
    let n = writers.len() as u64;
    let t0 = Instant::now();
    let tasks: Vec<_> = writers
        .into_iter()
        .enumerate()
        .map(|(i, mut w)| {
            // Spread the remainder so the writers together issue exactly `ops` puts.
            let mine = ops / n + u64::from((i as u64) < ops % n);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(mine as usize);
                for _ in 0..mine {
                    let key = format!("{}-{:010}", w.name, w.next);
                    w.next += 1;
                    let start = Instant::now();
                    if let Err(e) = w.client.put(key.as_bytes(), VALUE).await {
                        panic!("put {key}: {e}");
                    }
                    latencies.push(start.elapsed());
                }
                (w, latencies)
            })
        })
        .collect();
    let mut writers = Vec::new();
    let mut latencies = Vec::new();
    for t in tasks {
        let (w, l) = t.await.expect("writer task");
        writers.push(w);
        latencies.extend(l);
    }
    (writers, t0.elapsed(), latencies)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Summary {
    clients: usize,
    ops: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn real_mode(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let cluster = rt.block_on(start_cluster());
    let mut summaries = Vec::new();
    let mut group = c.benchmark_group("real_mode_3_nodes");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    group.throughput(Throughput::Elements(1));
    for clients in CONCURRENCY {
        let mut writers: Option<Vec<Writer>> = Some(
            (0..clients)
                .map(|i| {
                    let mut cfg = ClientConfig::new(cluster.endpoints(), Transport::Tcp);
                    cfg.overall_timeout = Duration::from_secs(10);
                    let client = Client::new(cfg).expect("client");
                    Writer { client, name: format!("c{clients}-w{i}"), next: 0 }
                })
                .collect(),
        );
        let mut latencies: Vec<Duration> = Vec::new();
        let mut wall = Duration::ZERO;
        group.bench_function(BenchmarkId::new("put", format!("{clients}_clients")), |b| {
            b.iter_custom(|iters| {
                let ws = writers.take().expect("writers are returned after every run");
                let (ws, elapsed, l) = rt.block_on(run_writers(ws, iters));
                writers = Some(ws);
                latencies.extend(l);
                wall += elapsed;
                elapsed
            })
        });
        latencies.sort();
        summaries.push(Summary {
            clients,
            ops: latencies.len(),
            wall,
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
            max: latencies.last().copied().unwrap_or_default(),
        });
    }
    group.finish();
    drop(cluster);
    println!("\nreal mode, 3 node processes on 127.0.0.1, fsync per append (all iterations incl. warm-up):");
    for s in &summaries {
        println!(
            "  {:>2} clients: {:>7.0} writes/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} puts)",
            s.clients,
            s.ops as f64 / s.wall.as_secs_f64(),
            s.p50.as_secs_f64() * 1e3,
            s.p99.as_secs_f64() * 1e3,
            s.max.as_secs_f64() * 1e3,
            s.ops
        );
    }
}

criterion_group!(benches, real_mode);
criterion_main!(benches);
