//! The `quorumlab` command line. Exit codes: 0 success, 1 operation failed, 2 usage error.

mod cluster;
mod experiment;
mod fencing;
mod kv;
mod lease;
mod node;
mod suite;
mod txn;
mod whatif;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// quorumlab: a testbed for Raft consensus and fencing.
#[derive(Debug, Parser)]
#[command(name = "quorumlab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one Raft key-value node (a real process over TCP).
    Node(node::NodeArgs),
    /// Start, initialize and inspect a cluster of real node processes.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Read and write keys (linearizable reads; exactly-once writes).
    #[command(subcommand)]
    Kv(kv::KvCommand),
    /// Grant, renew, revoke and inspect leases (keys attached to a lease die with it).
    #[command(subcommand)]
    Lease(lease::LeaseCommand),
    /// Check a history for linearizability.
    Check(quorumlab_check::cli::Args),
    /// Quorum math over datacenter topologies.
    Quorum(quorumlab_quorum::cli::Args),
    Suite(suite::SuiteArgs),
    /// The failover supervisor: fence strategies against the faults that split a primary from its quorum.
    Fencing(fencing::FencingArgs),
    Whatif(whatif::WhatifArgs),
    /// Reproduce published measurements in the simulator (the Raft paper's Figure 16: election timeouts).
    Experiment(experiment::ExperimentArgs),
}

/// Where every command that talks to a cluster looks when neither `--endpoints` nor
/// `QUORUMLAB_ENDPOINTS` says: the three nodes `quorumlab cluster up` starts by default.
pub const DEFAULT_ENDPOINTS: &str = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

/// Exit code for an operation that failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for a usage error.
pub const EXIT_USAGE: u8 = 2;

/// Parses the command line, runs it, and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match cli.command {
        Command::Suite(_) | Command::Fencing(_) | Command::Whatif(_) | Command::Experiment(_) => {
            crate::sim::trace::init_suite_tracing()
        }
        _ => crate::sim::trace::init_cli_tracing(),
    }
    let code = match cli.command {
        Command::Check(args) => pure(|out, err| quorumlab_check::cli::run(args, out, err)),
        Command::Quorum(args) => pure(|out, err| quorumlab_quorum::cli::run(args, out, err)),
        Command::Node(args) => with_runtime(node::run(args)),
        Command::Cluster(cmd) => with_runtime(cluster::run(cmd)),
        Command::Kv(cmd) => with_runtime(kv::run(cmd)),
        Command::Lease(cmd) => with_runtime(lease::run(cmd)),
        Command::Suite(args) => suite::run(args),
        Command::Fencing(args) => fencing::run(args),
        Command::Whatif(args) => whatif::run(args),
        Command::Experiment(args) => experiment::run(args),
    };
    ExitCode::from(code)
}

fn pure(f: impl FnOnce(&mut dyn Write, &mut dyn Write) -> i32) -> u8 {
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let code = f(&mut out, &mut err);
    let _ = out.flush();
    u8::try_from(code).unwrap_or(EXIT_FAILED)
}

fn with_runtime(f: impl std::future::Future<Output = u8>) -> u8 {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            EXIT_FAILED
        }
    }
}

/// More seeds than anyone reads, and fewer than would exhaust memory.
pub(crate) const MAX_SEEDS: u64 = 10_000;

/// Topology files or shipped names, resolved; the first that fails is the error (it names the file, line and
/// field, or lists the shipped names).
pub(crate) fn resolve_topologies(names: &[String]) -> Result<Vec<std::sync::Arc<quorumlab_quorum::Topology>>, String> {
    names
        .iter()
        .map(|name| quorumlab_quorum::shipped::resolve(name).map(std::sync::Arc::new).map_err(|e| e.to_string()))
        .collect()
}

/// `--seed S` alone, or seeds 1..=N.
pub(crate) fn seed_list(seed: Option<u64>, seeds: u64) -> Result<Vec<u64>, String> {
    match seed {
        Some(seed) => Ok(vec![seed]),
        None if seeds == 0 || seeds > MAX_SEEDS => Err(format!("--seeds must be at least 1 and at most {MAX_SEEDS}")),
        None => Ok((1..=seeds).collect()),
    }
}

/// Parses `ID=HOST:PORT`.
pub(crate) fn parse_peer(s: &str) -> Result<(u64, String), String> {
    let (id, addr) =
        s.split_once('=').ok_or_else(|| format!("expected ID=HOST:PORT (e.g. 2=127.0.0.1:7002), got {s:?}"))?;
    let id: u64 = id.trim().parse().map_err(|_| format!("node id must be a whole number ≥ 1, got {id:?}"))?;
    if id == 0 {
        return Err("node id must be a whole number ≥ 1, got 0".into());
    }
    parse_addr(addr).map(|a| (id, a))
}

/// Checks `HOST:PORT`.
pub(crate) fn parse_addr(s: &str) -> Result<String, String> {
    let s = s.trim();
    let (host, port) =
        s.rsplit_once(':').ok_or_else(|| format!("expected HOST:PORT (e.g. 127.0.0.1:7001), got {s:?}"))?;
    if host.is_empty() {
        return Err(format!("missing host in {s:?}; expected HOST:PORT"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(s.to_string()),
        _ => Err(format!("port must be 1-65535, got {port:?} in {s:?}")),
    }
}

/// A comma-separated list of `HOST:PORT` endpoints.
#[derive(Clone, Debug)]
pub struct Endpoints(pub Vec<String>);

/// Parses a comma-separated endpoint list.
pub(crate) fn parse_endpoints(s: &str) -> Result<Endpoints, String> {
    let list: Vec<String> = s.split(',').filter(|p| !p.trim().is_empty()).map(parse_addr).collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err("at least one endpoint is needed (HOST:PORT,HOST:PORT,...)".into());
    }
    Ok(Endpoints(list))
}

/// Parses a duration like `5s`, `1500ms` or `2m`.
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit()).map(|i| s.split_at(i)).unwrap_or((s, "s"));
    let n: u64 = num.parse().map_err(|_| format!("expected a duration like 5s, 1500ms or 2m, got {s:?}"))?;
    match unit {
        "ms" => Ok(std::time::Duration::from_millis(n)),
        "s" => Ok(std::time::Duration::from_secs(n)),
        "m" => Ok(std::time::Duration::from_secs(n * 60)),
        _ => Err(format!("unknown unit {unit:?} in {s:?}; use ms, s or m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_parsing_names_what_is_wrong() {
        assert_eq!(parse_peer("2=127.0.0.1:7002"), Ok((2, "127.0.0.1:7002".into())));
        assert!(parse_peer("127.0.0.1:7002").unwrap_err().contains("ID=HOST:PORT"));
        assert!(parse_peer("x=127.0.0.1:7002").unwrap_err().contains("whole number"));
        assert!(parse_peer("0=127.0.0.1:7002").unwrap_err().contains("≥ 1"));
        assert!(parse_peer("2=127.0.0.1:99999").unwrap_err().contains("port"));
        assert!(parse_peer("2=:7002").unwrap_err().contains("missing host"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1500ms"), Ok(std::time::Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(std::time::Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(std::time::Duration::from_secs(7)));
        assert!(parse_duration("5h").is_err());
    }
}
