//! `quorumlab kv`: read and write keys.

use std::time::Duration;

use clap::Subcommand;

use super::{parse_duration, parse_endpoints, Endpoints, EXIT_FAILED};
use crate::client::{Client, ClientConfig, WriteError};
use crate::net::Transport;
use crate::types::Response;

#[derive(Debug, clap::Args)]
pub struct Conn {
    /// Cluster endpoints, comma-separated HOST:PORT.
    #[arg(long, global = true, env = "QUORUMLAB_ENDPOINTS", default_value = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003", value_parser = parse_endpoints)]
    endpoints: Endpoints,
    /// Give up after this long (retries included), e.g. 5s or 1500ms.
    #[arg(long, global = true, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// Write KEY = VALUE.
    Put {
        key: String,
        value: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Read KEY (linearizable). Exits 1 if the key is absent.
    Get {
        key: String,
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
}

fn client(conn: &Conn) -> Result<Client, String> {
    let mut cfg = ClientConfig::new(conn.endpoints.0.clone(), Transport::Tcp);
    cfg.overall_timeout = conn.timeout;
    cfg.attempt_timeout = conn.timeout.min(Duration::from_secs(3));
    Client::new(cfg)
}

fn report_write(what: &str, r: Result<Response, WriteError>) -> u8 {
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
        | KvCommand::Cas { conn, .. } => conn,
    };
    let mut c = match client(conn) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return super::EXIT_USAGE;
        }
    };
    match &cmd {
        KvCommand::Put { key, value, .. } => report_write("put", c.put(key.as_bytes(), value.as_bytes()).await),
        KvCommand::Del { key, .. } => report_write("delete", c.delete(key.as_bytes()).await),
        KvCommand::Get { key, .. } => match c.get(key.as_bytes()).await {
            Ok(Some(found)) => {
                println!("{}", String::from_utf8_lossy(&found.value));
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
        },
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
