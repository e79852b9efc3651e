//! `quorumlab cluster`: initialize, inspect and run local clusters of real node processes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};

use super::{parse_duration, parse_endpoints, Endpoints, DEFAULT_ENDPOINTS, EXIT_FAILED, EXIT_USAGE};
use crate::client::admin;
use crate::local::LocalCluster;
use crate::net::Transport;
use crate::pb;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Initialize a new cluster whose voters are the nodes at these endpoints.
    Init {
        /// The voters' addresses, comma-separated HOST:PORT (default: the local cluster `cluster up` starts).
        #[arg(long, env = "QUORUMLAB_ENDPOINTS", default_value = DEFAULT_ENDPOINTS, value_parser = parse_endpoints)]
        endpoints: Endpoints,
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Show every endpoint's Raft status, like `etcdctl endpoint status`.
    Status {
        /// The cluster's nodes, comma-separated HOST:PORT (default: the local cluster `cluster up` starts).
        #[arg(long, env = "QUORUMLAB_ENDPOINTS", default_value = DEFAULT_ENDPOINTS, value_parser = parse_endpoints)]
        endpoints: Endpoints,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Add a node as a learner (it replicates the log but does not vote).
    AddLearner {
        /// The cluster's nodes, comma-separated HOST:PORT (default: the local cluster `cluster up` starts).
        #[arg(long, env = "QUORUMLAB_ENDPOINTS", default_value = DEFAULT_ENDPOINTS, value_parser = parse_endpoints)]
        endpoints: Endpoints,
        /// The new node's id (≥ 1; the largest u64 is reserved).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=crate::store::ABDICATED - 1))]
        id: u64,
        /// The new node's address (HOST:PORT).
        #[arg(long, value_parser = super::parse_addr)]
        addr: String,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Change the voter set (learners named here become voters; voters left out are removed).
    SetVoters {
        /// The new voters, comma-separated ids, e.g. 1,2,3,4.
        #[arg(value_delimiter = ',', required = true, value_parser = clap::value_parser!(u64).range(1..=crate::store::ABDICATED - 1))]
        voters: Vec<u64>,
        /// The cluster's nodes, comma-separated HOST:PORT (default: the local cluster `cluster up` starts).
        #[arg(long, env = "QUORUMLAB_ENDPOINTS", default_value = DEFAULT_ENDPOINTS, value_parser = parse_endpoints)]
        endpoints: Endpoints,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Start a local cluster of real node processes, initialize it, and stop it on Ctrl-C.
    Up {
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=9))]
        nodes: u64,
        #[arg(long, default_value_t = 7001)]
        base_port: u16,
        /// Where the nodes keep their data (default: a new temporary directory).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

pub async fn run(cmd: ClusterCommand) -> u8 {
    match cmd {
        ClusterCommand::Init { endpoints, timeout } => init(&endpoints.0, timeout).await,
        ClusterCommand::Status { endpoints, format, timeout } => status(&endpoints.0, format, timeout).await,
        ClusterCommand::Up { nodes, base_port, data_dir } => up(nodes, base_port, data_dir).await,
        ClusterCommand::AddLearner { endpoints, id, addr, timeout } => {
            let r = match find_leader(&endpoints.0, timeout).await {
                Ok(leader) => admin::add_learner(Transport::Tcp, &leader, id, &addr, true, timeout).await,
                Err(e) => Err(e),
            };
            report(r, &format!("node {id} at {addr} added as a learner"))
        }
        ClusterCommand::SetVoters { voters, endpoints, timeout } => {
            let r = match find_leader(&endpoints.0, timeout).await {
                Ok(leader) => admin::change_membership(Transport::Tcp, &leader, &voters, false, timeout).await,
                Err(e) => Err(e),
            };
            let list: Vec<String> = voters.iter().map(u64::to_string).collect();
            report(r, &format!("voters are now {}", list.join(",")))
        }
    }
}

/// The leader's address, as the first endpoint that answers reports it.
async fn find_leader(endpoints: &[String], timeout: Duration) -> Result<String, String> {
    let mut errors = Vec::new();
    for e in endpoints {
        match admin::status(Transport::Tcp, e, timeout.min(Duration::from_secs(2))).await {
            Ok(s) if s.role == "leader" => return Ok(e.clone()),
            Ok(s) if !s.leader_addr.is_empty() => return Ok(s.leader_addr),
            Ok(s) => errors.push(format!("{e}: node {} knows no leader", s.id)),
            Err(err) => errors.push(err),
        }
    }
    Err(format!("no leader found ({})", errors.join("; ")))
}

fn report(r: Result<u64, String>, what: &str) -> u8 {
    match r {
        Ok(index) => {
            println!("OK {what} (log index {index})");
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

/// Asks every endpoint for its id, then initializes the cluster through the first.
async fn init(endpoints: &[String], timeout: Duration) -> u8 {
    let mut members = BTreeMap::new();
    for e in endpoints {
        match admin::status(Transport::Tcp, e, timeout).await {
            Ok(s) => {
                if let Some(prev) = members.insert(s.id, e.clone()) {
                    eprintln!("error: {prev} and {e} both report node id {}", s.id);
                    return EXIT_USAGE;
                }
            }
            Err(err) => {
                eprintln!("error: {err}");
                return EXIT_FAILED;
            }
        }
    }
    match admin::initialize(Transport::Tcp, &endpoints[0], &members, timeout).await {
        Ok(()) => {
            let list: Vec<String> = members.iter().map(|(id, a)| format!("{id}={a}")).collect();
            println!("initialized a cluster of {} voters: {}", members.len(), list.join(" "));
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

fn log_index(l: &Option<pb::LogId>) -> String {
    l.as_ref().map(|l| l.index.to_string()).unwrap_or_else(|| "-".into())
}

fn voters(s: &pb::StatusResponse) -> String {
    let Some(m) = &s.membership else { return "-".into() };
    let sets: Vec<String> =
        m.configs.iter().map(|c| c.ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")).collect();
    sets.join(" + ")
}

async fn status(endpoints: &[String], format: Format, timeout: Duration) -> u8 {
    let mut rows = Vec::new();
    for e in endpoints {
        rows.push((e.clone(), admin::status(Transport::Tcp, e, timeout).await));
    }
    let failed = rows.iter().any(|(_, r)| r.is_err());
    match format {
        Format::Json => {
            let list: Vec<serde_json::Value> = rows
                .iter()
                .map(|(e, r)| match r {
                    Ok(s) => serde_json::json!({
                        "endpoint": e, "id": s.id, "role": s.role, "term": s.current_term,
                        "vote": s.vote.as_ref().map(|v| serde_json::json!({"term": v.term, "node_id": v.node_id, "committed": v.committed})),
                        "leader": (s.leader_id != 0).then_some(s.leader_id),
                        "last_log_index": s.last_log_index,
                        "committed_index": s.committed.as_ref().map(|l| l.index),
                        "applied_index": s.applied.as_ref().map(|l| l.index),
                        "snapshot_index": s.snapshot.as_ref().map(|l| l.index),
                        "purged_index": s.purged.as_ref().map(|l| l.index),
                        "voters": s.membership.as_ref().map(|m| m.configs.iter().map(|c| c.ids.clone()).collect::<Vec<_>>()),
                    }),
                    Err(err) => serde_json::json!({"endpoint": e, "error": err}),
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
        }
        Format::Table => {
            let header = ["ENDPOINT", "ID", "ROLE", "TERM", "LEADER", "LAST LOG", "COMMITTED", "APPLIED", "VOTERS"];
            let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
            for (e, r) in &rows {
                table.push(match r {
                    Ok(s) => vec![
                        e.clone(),
                        s.id.to_string(),
                        s.role.clone(),
                        s.current_term.to_string(),
                        if s.leader_id == 0 { "-".into() } else { s.leader_id.to_string() },
                        s.last_log_index.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
                        log_index(&s.committed),
                        log_index(&s.applied),
                        voters(s),
                    ],
                    Err(err) => vec![e.clone(), format!("error: {err}")],
                });
            }
            print!("{}", render_table(&table));
        }
    }
    if failed {
        EXIT_FAILED
    } else {
        0
    }
}

/// Left-aligned columns separated by two spaces.
fn render_table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter().filter(|r| r.len() > 1).filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r.iter().enumerate().map(|(i, s)| format!("{s:<w$}", w = widths[i])).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Starts `nodes` node processes of this same executable, initializes them, waits for Ctrl-C.
async fn up(nodes: u64, base_port: u16, data_dir: Option<PathBuf>) -> u8 {
    if u64::from(base_port) + nodes > 65_536 {
        eprintln!("error: --base-port {base_port} leaves no room for {nodes} nodes");
        return EXIT_USAGE;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the quorumlab executable: {e}");
            return EXIT_FAILED;
        }
    };
    let addrs: BTreeMap<u64, String> =
        (1..=nodes).map(|id| (id, format!("127.0.0.1:{}", u64::from(base_port) + id - 1))).collect();
    let mut cluster = match LocalCluster::start(&exe, addrs, data_dir, &[], false) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot start the nodes: {e}");
            return EXIT_FAILED;
        }
    };
    let code = async {
        if let Err(e) = cluster.wait_listening(Duration::from_secs(10)).await {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
        // A restarted cluster (same --data-dir) is already initialized; that is fine.
        match cluster.initialize(Duration::from_secs(5)).await {
            Ok(()) => eprintln!("initialized a new cluster"),
            Err(e) => eprintln!("not initializing ({e}); continuing with the existing cluster"),
        }
        let endpoints = cluster.endpoints().join(",");
        println!("cluster of {nodes} nodes is up; data in {}", cluster.dir().display());
        println!("endpoints: {endpoints}");
        println!("try: quorumlab kv put hello world --endpoints {endpoints}");
        println!("press Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
        0
    }
    .await;
    eprintln!("stopping {nodes} nodes");
    cluster.stop(Duration::from_secs(5)).await;
    code
}
