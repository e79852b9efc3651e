//! `quorumlab node`: one real node process.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{parse_addr, parse_peer, EXIT_FAILED, EXIT_USAGE};
use crate::client::admin;
use crate::net::Transport;
use crate::node::{self, NodeConfig, Timing};
use crate::store::{self, Durability};

#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// This node's id (a whole number ≥ 1; the largest, 18446744073709551615, is reserved: a restarted leader's
    /// vote names it for the term it gave up).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=crate::store::ABDICATED - 1))]
    id: u64,
    /// Address to listen on (HOST:PORT); also the address peers and clients use.
    #[arg(long, value_parser = parse_addr)]
    listen: String,
    /// Directory of this node's durable storage (created if missing).
    #[arg(long)]
    data_dir: PathBuf,
    /// Another voter, as ID=HOST:PORT (repeat for each).
    #[arg(long = "peer", value_parser = parse_peer)]
    peers: Vec<(u64, String)>,
    /// Initialize a new cluster of this node and its peers (ignored if already initialized).
    #[arg(long)]
    init: bool,
    /// Raft heartbeat interval in milliseconds.
    #[arg(long, default_value_t = Timing::default().heartbeat_ms)]
    heartbeat_ms: u64,
    /// Minimum election timeout in milliseconds.
    #[arg(long, default_value_t = Timing::default().election_timeout_ms_min)]
    election_timeout_ms: u64,
    /// Maximum election timeout in milliseconds (default: twice the minimum).
    #[arg(long)]
    election_timeout_max_ms: Option<u64>,
    /// For negative controls only: run with a planted bug (stale-local-reads or ack-before-majority), so a
    /// real-process run can show that its checks catch it.
    #[arg(long, hide = true, value_parser = parse_planted_bug)]
    planted_bug: Option<node::PlantedBug>,
    /// Build a snapshot (and purge the log behind it) every this many entries.
    #[arg(long, default_value_t = node::DEFAULT_SNAPSHOT_EVERY)]
    snapshot_every: u64,
    /// As leader, log every lease's remaining TTL this often (etcd's lease checkpoint), e.g. 5m, so
    /// leader changes cannot keep a lease alive forever. Off by default, as in etcd.
    #[arg(long, value_parser = super::parse_duration)]
    lease_checkpoint_interval: Option<std::time::Duration>,
}

/// The planted bugs a real node can carry (the others live in the simulated disk or the client library).
pub const REAL_PLANTED_BUGS: [(&str, node::PlantedBug); 2] = [
    ("stale-local-reads", node::PlantedBug::StaleLocalReads),
    ("ack-before-majority", node::PlantedBug::AckBeforeMajority),
];

fn parse_planted_bug(s: &str) -> Result<node::PlantedBug, String> {
    REAL_PLANTED_BUGS.iter().find(|(name, _)| *name == s).map(|(_, bug)| *bug).ok_or_else(|| {
        let names: Vec<&str> = REAL_PLANTED_BUGS.iter().map(|(n, _)| *n).collect();
        format!("{s:?} is not a planted bug a real node can carry; one of {}", names.join(", "))
    })
}

pub async fn run(args: NodeArgs) -> u8 {
    if args.election_timeout_max_ms.is_some_and(|max| max < args.election_timeout_ms) {
        eprintln!("error: --election-timeout-max-ms must be at least --election-timeout-ms");
        return EXIT_USAGE;
    }
    if let Some((id, _)) = args.peers.iter().find(|(id, _)| *id == args.id) {
        eprintln!("error: --peer {id}=… names this node itself; list only the other voters");
        return EXIT_USAGE;
    }
    let (log, sm) = match store::open_dir(&args.data_dir, Durability::Fsync) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    let timing = Timing {
        heartbeat_ms: args.heartbeat_ms,
        election_timeout_ms_min: args.election_timeout_ms,
        election_timeout_ms_max: args.election_timeout_max_ms.unwrap_or(args.election_timeout_ms * 2),
        ..Timing::default()
    };
    let config = NodeConfig {
        id: args.id,
        listen: args.listen.clone(),
        advertise: args.listen.clone(),
        transport: Transport::Tcp,
        timing,
        snapshot_every: args.snapshot_every,
        logs_kept_after_snapshot: node::logs_kept_after_snapshot(args.snapshot_every),
        lease_checkpoint_interval: args.lease_checkpoint_interval,
        planted_bug: args.planted_bug,
    };
    let running = match node::start(config, log, sm).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    eprintln!("node {} listening on {} (data in {})", args.id, args.listen, args.data_dir.display());
    if args.init {
        let mut members: BTreeMap<u64, String> = args.peers.iter().cloned().collect();
        members.insert(args.id, args.listen.clone());
        match admin::initialize(Transport::Tcp, &args.listen, &members, Duration::from_secs(5)).await {
            Ok(()) => eprintln!("initialized a cluster of {} voters", members.len()),
            Err(e) => eprintln!("not initializing: {e}"),
        }
    }
    wait_for_stop_signal().await;
    eprintln!("node {} stopping", args.id);
    running.shutdown().await;
    0
}

async fn wait_for_stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
