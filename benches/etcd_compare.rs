//! quorumlab against etcd on the same machine, in the same run, under the same load (issue 12): 3 members on
//! loopback with an fsync per append, 32-byte values, 1, 16 and 64 clients that each keep one put in flight.
//!
//! `cargo bench --bench etcd_compare` starts Debian's etcd (`apt-get install etcd-server`; any `etcd` on `PATH`,
//! or `ETCD=/path/to/etcd`) and a quorumlab cluster of `quorumlab node` processes, one after the other, drives
//! both with the same closed-loop load, and prints writes per second, p50 and p99, and the ratio. Without etcd it
//! says so and measures quorumlab alone.
//!
//! Load: each client is its own connection (a tonic channel for etcd, a quorumlab `Client` session) on one
//! multi-thread tokio runtime, and sends its next put (a unique key) only when the previous one is answered.
//! etcd clients connect to the members round robin, as etcd's Go client balances; quorumlab's client finds the
//! leader itself. Each level runs a warm-up, then [`measure`] of measured load.
//!
//! For profiling: `ETCD_COMPARE_ONLY=quorumlab` skips etcd, `ETCD_COMPARE_SECONDS=N` measures N s per level, and
//! `ETCD_COMPARE_NODE_ARGS="--snapshot-every 100000"` passes arguments to every `quorumlab node`, and
//! `ETCD_COMPARE_CLIENTS=64` runs only the levels listed (comma-separated).
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall-clock time")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quorumlab::client::{admin, Client, ClientConfig};
use quorumlab::local::{free_addrs, LocalCluster};
use quorumlab::net::Transport;

mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

const EXE: &str = env!("CARGO_BIN_EXE_quorumlab");
const CONCURRENCY: [usize; 3] = [1, 16, 64];

/// The client counts to run: [`CONCURRENCY`], or those listed in `ETCD_COMPARE_CLIENTS`.
fn client_counts() -> Vec<usize> {
    match std::env::var("ETCD_COMPARE_CLIENTS") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse().unwrap_or_else(|_| panic!("ETCD_COMPARE_CLIENTS: {n:?} is not a client count")))
            .collect(),
        Err(_) => CONCURRENCY.to_vec(),
    }
}
const VALUE: &[u8] = b"0123456789abcdef0123456789abcdef";
const WARMUP: Duration = Duration::from_secs(1);

/// Measured load per level: 5 s, or `ETCD_COMPARE_SECONDS` (longer runs for a profiler to attach to).
fn measure() -> Duration {
    let secs = std::env::var("ETCD_COMPARE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    Duration::from_secs(secs)
}

/// One level's result.
#[derive(Clone, Default)]
struct Level {
    writes_per_s: f64,
    p50: Duration,
    p99: Duration,
    /// quorumlab only: each node's log I/O over the measured span, and whether it led at the end of it.
    log_io: Vec<NodeIo>,
}

/// One quorumlab node's log I/O over a measured span (from the `log_*` counters of its `Status`).
#[derive(Clone, Copy, Default)]
struct NodeIo {
    id: u64,
    leader: bool,
    appends: u64,
    entries: u64,
    flushes: u64,
    early: u64,
}

/// Every node's `Status`, by id (a node that does not answer is left out).
async fn statuses(cluster: &LocalCluster) -> Vec<quorumlab::pb::StatusResponse> {
    let mut out = Vec::new();
    for addr in cluster.endpoints() {
        if let Ok(s) = admin::status(Transport::Tcp, &addr, Duration::from_secs(2)).await {
            out.push(s);
        }
    }
    out
}

/// Each node's log I/O between two `statuses` readings.
fn log_io_between(before: &[quorumlab::pb::StatusResponse], after: &[quorumlab::pb::StatusResponse]) -> Vec<NodeIo> {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.id == a.id)?;
            Some(NodeIo {
                id: a.id,
                leader: a.role == "leader",
                appends: a.log_appends.saturating_sub(b.log_appends),
                entries: a.log_entries.saturating_sub(b.log_entries),
                flushes: a.log_flushes.saturating_sub(b.log_flushes),
                early: a.log_early_appends.saturating_sub(b.log_early_appends),
            })
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs `clients` closed loops of `put` for the warm-up and the measured span. `put(client, seq)` makes one
/// acknowledged write, hands the client back, and panics on failure (a benchmark that loses writes measures
/// nothing).
async fn drive<C, F, Fut>(clients: Vec<C>, put: F) -> Level
where
    C: Send + 'static,
    F: Fn(C, u64) -> Fut + Send + Sync + Copy + 'static,
    Fut: std::future::Future<Output = C> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let measured_from = start + WARMUP;
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    c = put(c, seq).await;
                    seq += 1;
                    if t >= measured_from {
                        latencies.push(t.elapsed());
                    }
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(WARMUP + measure()).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("client task"));
    }
    latencies.sort();
    Level {
        writes_per_s: latencies.len() as f64 / measure().as_secs_f64(),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
        log_io: Vec::new(),
    }
}

async fn quorumlab_levels() -> Vec<Level> {
    let addrs = free_addrs(3).expect("free loopback ports");
    let extra = std::env::var("ETCD_COMPARE_NODE_ARGS").unwrap_or_default();
    let extra: Vec<&str> = extra.split_whitespace().collect();
    let cluster = LocalCluster::start(Path::new(EXE), addrs, None, &extra, true).expect("start quorumlab nodes");
    cluster.wait_listening(Duration::from_secs(20)).await.expect("nodes listening");
    cluster.initialize(Duration::from_secs(5)).await.expect("initialize the cluster");
    cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10)).await.expect("a leader");
    let mut levels = Vec::new();
    for (round, n) in client_counts().into_iter().enumerate() {
        let clients: Vec<(Client, String)> = (0..n)
            .map(|i| {
                let mut cfg = ClientConfig::new(cluster.endpoints(), Transport::Tcp);
                cfg.overall_timeout = Duration::from_secs(10);
                (Client::new(cfg).expect("client"), format!("r{round}-c{i}-"))
            })
            .collect();
        // The nodes' log counters at both ends of the measured span, read beside the load.
        let span = async {
            tokio::time::sleep(WARMUP).await;
            let before = statuses(&cluster).await;
            tokio::time::sleep(measure()).await;
            log_io_between(&before, &statuses(&cluster).await)
        };
        let load = drive(clients, |(mut c, prefix): (Client, String), seq| async move {
            let key = format!("{prefix}{seq:010}");
            if let Err(e) = c.put(key.as_bytes(), VALUE).await {
                panic!("quorumlab put {key}: {e}");
            }
            (c, prefix)
        });
        let (mut level, log_io) = tokio::join!(load, span);
        level.log_io = log_io;
        levels.push(level);
    }
    drop(cluster);
    levels
}

/// The etcd executable: `ETCD`, else `etcd` on `PATH`.
fn etcd_exe() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ETCD") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("etcd")).find(|p| p.is_file())
}

/// Three etcd members on loopback, killed when dropped.
struct Etcd {
    procs: Vec<Child>,
    clients: Vec<String>,
    dir: tempfile::TempDir,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

fn start_etcd(exe: &Path) -> Etcd {
    let dir = tempfile::Builder::new().prefix("quorumlab-etcd-").tempdir().expect("temp dir");
    let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log");
    let ports = free_addrs(6).expect("free loopback ports");
    let addrs: Vec<String> = ports.values().cloned().collect();
    let (clients, peers) = (addrs[..3].to_vec(), addrs[3..].to_vec());
    let cluster: Vec<String> = peers.iter().enumerate().map(|(i, p)| format!("m{i}=http://{p}")).collect();
    let procs = (0..3)
        .map(|i| {
            Command::new(exe)
                .args(["--name", &format!("m{i}")])
                .arg("--data-dir")
                .arg(dir.path().join(format!("m{i}")))
                .args(["--listen-client-urls", &format!("http://{}", clients[i])])
                .args(["--advertise-client-urls", &format!("http://{}", clients[i])])
                .args(["--listen-peer-urls", &format!("http://{}", peers[i])])
                .args(["--initial-advertise-peer-urls", &format!("http://{}", peers[i])])
                .args(["--initial-cluster", &cluster.join(",")])
                .args(["--initial-cluster-state", "new", "--initial-cluster-token", "quorumlab-bench"])
                // etcd's defaults otherwise, as quorumlab's: 100 ms heartbeats, 1 s election timeout.
                .args(["--logger", "zap", "--log-level", "error"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log.try_clone().expect("etcd log"))
                .spawn()
                .expect("start etcd")
        })
        .collect();
    Etcd { procs, clients, dir }
}

type KvClient = etcdserverpb::kv_client::KvClient<tonic::transport::Channel>;

async fn etcd_client(addr: &str) -> Result<KvClient, tonic::transport::Error> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .tcp_nodelay(true);
    Ok(KvClient::new(endpoint.connect().await?))
}

async fn etcd_levels(exe: &Path) -> Vec<Level> {
    let etcd = start_etcd(exe);
    // Ready when a put through every member is acknowledged (a leader exists and every member forwards to it).
    let deadline = Instant::now() + Duration::from_secs(30);
    for addr in &etcd.clients {
        loop {
            let ready = async {
                let Ok(mut c) = etcd_client(addr).await else { return false };
                c.put(etcdserverpb::PutRequest { key: b"ready".to_vec(), value: VALUE.to_vec(), ..Default::default() })
                    .await
                    .is_ok()
            };
            if tokio::time::timeout(Duration::from_secs(2), ready).await.unwrap_or(false) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "etcd at {addr} did not accept a put within 30 s (its log: {})",
                etcd.dir.path().join("etcd.log").display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut levels = Vec::new();
    for (round, n) in client_counts().into_iter().enumerate() {
        let mut clients = Vec::new();
        for i in 0..n {
            let addr = &etcd.clients[i % etcd.clients.len()];
            let client = etcd_client(addr).await.unwrap_or_else(|e| panic!("connect to etcd at {addr}: {e}"));
            clients.push((client, format!("r{round}-c{i}-")));
        }
        levels.push(
            drive(clients, |(mut c, prefix): (KvClient, String), seq| async move {
                let key = format!("{prefix}{seq:010}");
                let put = etcdserverpb::PutRequest {
                    key: key.clone().into_bytes(),
                    value: VALUE.to_vec(),
                    ..Default::default()
                };
                if let Err(e) = c.put(put).await {
                    panic!("etcd put {key}: {e}");
                }
                (c, prefix)
            })
            .await,
        );
    }
    levels
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names another benchmark skips this one.
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if !filter.is_empty() && !filter.iter().any(|f| "etcd_compare".contains(f.as_str())) {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    // ETCD_COMPARE_ONLY=quorumlab skips etcd (to profile quorumlab alone).
    let only_ours = std::env::var("ETCD_COMPARE_ONLY").is_ok_and(|v| v == "quorumlab");
    let etcd = if only_ours { None } else { etcd_exe() };
    let theirs = match &etcd {
        Some(exe) => Some(rt.block_on(etcd_levels(exe))),
        None if only_ours => None,
        None => {
            println!(
                "etcd_compare: no etcd found (install Debian's etcd-server: apt-get install etcd-server, or set \
                 ETCD=/path/to/etcd); measuring quorumlab alone"
            );
            None
        }
    };
    let ours = rt.block_on(quorumlab_levels());
    println!(
        "\n3 members on 127.0.0.1, fsync per append, {}-byte values, closed loop, {} s measured per level ({}):",
        VALUE.len(),
        measure().as_secs(),
        etcd.as_ref().map_or("quorumlab only".to_string(), |e| format!("etcd: {}", e.display()))
    );
    println!("| clients | quorumlab writes/s (p50 / p99 ms) | etcd writes/s (p50 / p99 ms) | ratio | p99 ratio |");
    println!("|---|---|---|---|---|");
    for (i, n) in client_counts().into_iter().enumerate() {
        let q = &ours[i];
        let (e, ratio, p99) = match &theirs {
            Some(t) => (
                format!("{:.0} ({:.1} / {:.1})", t[i].writes_per_s, ms(t[i].p50), ms(t[i].p99)),
                format!("{:.2}", q.writes_per_s / t[i].writes_per_s),
                format!("{:.2}", ms(q.p99) / ms(t[i].p99)),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        println!("| {n} | {:.0} ({:.1} / {:.1}) | {e} | {ratio} | {p99} |", q.writes_per_s, ms(q.p50), ms(q.p99));
    }
    println!(
        "\nquorumlab's log I/O per acknowledged write over the measured span (flushes, appends, appends acknowledged before their flush; entries per flush):"
    );
    for (i, n) in client_counts().into_iter().enumerate() {
        let q = &ours[i];
        let writes = (q.writes_per_s * measure().as_secs_f64()).max(1.0);
        let nodes: Vec<String> = q
            .log_io
            .iter()
            .map(|io| {
                format!(
                    "node {}{}: {:.2} flushes, {:.2} appends, {:.2} early, {:.1} entries/flush",
                    io.id,
                    if io.leader { " (leader)" } else { "" },
                    io.flushes as f64 / writes,
                    io.appends as f64 / writes,
                    io.early as f64 / writes,
                    io.entries as f64 / (io.flushes.max(1) as f64),
                )
            })
            .collect();
        println!("- {n} clients: {}", nodes.join("; "));
    }
}
