//! `quorumlab kv`: read and write keys.

use std::time::Duration;

use clap::Subcommand;

use super::{parse_duration, parse_endpoints, txn, Endpoints, DEFAULT_ENDPOINTS, EXIT_FAILED};
use crate::client::{Client, ClientConfig, Found, WriteError};
use crate::net::Transport;
use crate::types::{show, Compare, KeyValue, LeaseId, Response, Txn, TxnOp, TxnOpResult};

#[derive(Debug, clap::Args)]
pub struct Conn {
    /// Cluster endpoints, comma-separated HOST:PORT.
    #[arg(long, global = true, env = "QUORUMLAB_ENDPOINTS", default_value = DEFAULT_ENDPOINTS, value_parser = parse_endpoints)]
    pub(super) endpoints: Endpoints,
    /// Give up after this long (retries included), e.g. 5s or 1500ms.
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    pub(super) timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Write KEY = VALUE.
    Put {
        key: String,
        value: String,
        /// Attach KEY to this lease: it is deleted when the lease is revoked or expires. A lease
        /// that is not live fails the put (nothing written).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        lease: Option<LeaseId>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Read KEY and print its value. Exits 1 if the key is absent.
    ///
    /// Linearizable by default: the leader confirms it still leads a quorum before it answers.
    Get {
        key: String,
        /// Answer from the contacted member's own applied state, without asking the leader: works
        /// in a minority, and may be stale. Says on stderr which member answered, at which revision.
        #[arg(long)]
        serializable: bool,
        /// Also print a second line: create_revision=… mod_revision=… version=… lease=…
        #[arg(long)]
        meta: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete KEY.
    Del {
        key: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Set KEY to NEW only if it currently holds the expected value and/or revision.
    Cas {
        key: String,
        new: String,
        /// The value KEY must hold now.
        #[arg(long, conflicts_with = "expect_absent")]
        expect: Option<String>,
        /// KEY must not exist now.
        #[arg(long)]
        expect_absent: bool,
        /// The revision of KEY's last modification must be this (0 = absent).
        #[arg(long)]
        expect_revision: Option<u64>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Run a transaction: compares, then a --then or an --else branch, atomic at one revision.
    #[command(long_about = txn::HELP)]
    Txn {
        /// A compare, e.g. 'create(leader) = 0' (repeat; all must hold).
        #[arg(long = "if", value_name = "COMPARE", value_parser = txn::parse_compare)]
        compares: Vec<Compare>,
        /// An operation if the compares hold, e.g. 'put leader n1 --lease 7' (repeat).
        #[arg(long = "then", value_name = "OP", value_parser = txn::parse_op)]
        success: Vec<TxnOp>,
        /// An operation if they do not, e.g. 'get leader' (repeat).
        #[arg(long = "else", value_name = "OP", value_parser = txn::parse_op)]
        failure: Vec<TxnOp>,
        #[command(flatten)]
        conn: Conn,
    },
}

pub(super) fn client(conn: &Conn) -> Result<Client, String> {
    let mut cfg = ClientConfig::new(conn.endpoints.0.clone(), Transport::Tcp);
    cfg.overall_timeout = conn.timeout;
    cfg.attempt_timeout = conn.timeout.min(Duration::from_secs(3));
    Client::new(cfg)
}

pub(super) fn report_write(what: &str, r: Result<Response, WriteError>) -> u8 {
    match r {
        Ok(r) => {
            println!("OK {what} at revision {}", r.revision);
            0
        }
        Err(WriteError::Unknown(e)) => {
            eprintln!("error: {what}: outcome unknown, the write may or may not have been applied: {e}");
            EXIT_FAILED
        }
        Err(WriteError::Failed(e)) => {
            eprintln!("error: {what} failed (not applied): {e}");
            EXIT_FAILED
        }
    }
}

pub async fn run(cmd: KvCommand) -> u8 {
    let conn = match &cmd {
        KvCommand::Put { conn, .. }
        | KvCommand::Get { conn, .. }
        | KvCommand::Del { conn, .. }
        | KvCommand::Cas { conn, .. }
        | KvCommand::Txn { conn, .. } => conn,
    };
    let mut c = match client(conn) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return super::EXIT_USAGE;
        }
    };
    match &cmd {
        KvCommand::Put { key, value, lease, .. } => {
            report_write("put", c.put_with_lease(key.as_bytes(), value.as_bytes(), lease.unwrap_or(0)).await)
        }
        KvCommand::Del { key, .. } => report_write("delete", c.delete(key.as_bytes()).await),
        KvCommand::Get { key, serializable: false, meta, .. } => report_get(key, *meta, c.get(key.as_bytes()).await),
        KvCommand::Get { key, serializable: true, meta, .. } => match c.get_serializable(key.as_bytes()).await {
            Ok(read) => {
                eprintln!(
                    "note: serializable read, possibly stale: member {} answered from its state at revision {}",
                    read.member, read.revision
                );
                report_get(key, *meta, Ok(read.found))
            }
            Err(e) => report_get(key, *meta, Err(e)),
        },
        KvCommand::Txn { compares, success, failure, .. } => {
            let t = Txn { compares: compares.clone(), success: success.clone(), failure: failure.clone() };
            report_txn(&t, c.txn(t.clone()).await)
        }
        KvCommand::Cas { key, new, expect, expect_absent, expect_revision, .. } => {
            let expect_value = match (expect, expect_absent) {
                (Some(v), _) => Some(Some(v.as_bytes().to_vec())),
                (None, true) => Some(None),
                (None, false) => None,
            };
            if expect_value.is_none() && expect_revision.is_none() {
                eprintln!("error: cas needs --expect OLD, --expect-absent or --expect-revision N");
                return super::EXIT_USAGE;
            }
            match c.cas(key.as_bytes(), expect_value, *expect_revision, Some(new.as_bytes().to_vec())).await {
                Ok(r) if !r.succeeded => {
                    eprintln!("cas: comparison failed (revision {}); nothing changed", r.revision);
                    EXIT_FAILED
                }
                r => report_write("cas", r),
            }
        }
    }
}

fn report_get(key: &str, meta: bool, r: Result<Option<Found>, crate::client::ReadError>) -> u8 {
    match r {
        Ok(Some(found)) => {
            println!("{}", String::from_utf8_lossy(&found.value));
            if meta {
                println!(
                    "create_revision={} mod_revision={} version={} lease={}",
                    found.create_revision, found.mod_revision, found.version, found.lease
                );
            }
            0
        }
        Ok(None) => {
            eprintln!("{key}: not found");
            EXIT_FAILED
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}

/// Prints which branch ran, the revision and one line per operation of that branch. Exit 0 if the
/// compares held, 1 if they did not (like `kv cas`), and a write's exit code on an error.
fn report_txn(t: &Txn, r: Result<Response, WriteError>) -> u8 {
    let r = match r {
        Ok(r) => r,
        Err(e) => return report_write("txn", Err(e)),
    };
    let (verdict, ops) = if r.succeeded {
        ("SUCCESS: the compares held; the --then branch", &t.success)
    } else {
        ("FAILURE: the compares did not hold; the --else branch", &t.failure)
    };
    println!("{verdict} applied at revision {}", r.revision);
    for (op, result) in ops.iter().zip(&r.results) {
        println!("{}", describe_result(op, result));
    }
    if r.succeeded {
        0
    } else {
        EXIT_FAILED
    }
}

fn describe_result(op: &TxnOp, result: &TxnOpResult) -> String {
    let meta = |kv: &KeyValue| {
        format!(
            "{} (create_revision={} mod_revision={} version={} lease={})",
            show(&kv.value),
            kv.create_revision,
            kv.mod_revision,
            kv.version,
            kv.lease
        )
    };
    match (op, result) {
        (TxnOp::Get { key }, TxnOpResult::Get { found: Some(kv) }) => format!("get {}: {}", show(key), meta(kv)),
        (TxnOp::Get { key }, TxnOpResult::Get { found: None }) => format!("get {}: absent", show(key)),
        (TxnOp::Put { .. }, TxnOpResult::Put { prev: Some(kv) }) => format!("{op}: was {}", meta(kv)),
        (TxnOp::Put { .. }, TxnOpResult::Put { prev: None }) => format!("{op}: created"),
        (TxnOp::Delete { key }, TxnOpResult::Delete { prev: Some(kv) }) => {
            format!("del {}: deleted, was {}", show(key), meta(kv))
        }
        (TxnOp::Delete { key }, TxnOpResult::Delete { prev: None }) => format!("del {}: was absent", show(key)),
        (op, result) => format!("{op}: {result:?}"),
    }
}
