//! `quorumlab lease`: grant, renew, revoke and inspect etcd-style leases.
//!
//! Honesty rules, the same as `kv`: a lease the cluster answered "not found" is certainly not
//! live (exit 1); a call nobody answered leaves the lease's fate unknown (exit 1, said so on
//! stderr), and a holder may count on it only until TTL after its last *answered* send.

use std::time::Duration;

use clap::Subcommand;
use tokio::time::Instant;

use super::kv::{client, report_write, Conn};
use super::{parse_duration, EXIT_FAILED, EXIT_USAGE};
use crate::client::{Client, KeepAlive, LeaseError};
use crate::types::{show, LeaseId, TxnOpResult};

const KEEP_ALIVE_HELP: &str = "\
Renew lease ID through the leader, which first confirms with a quorum that it still leads.

Each answered renewal prints the TTL the leader gave and how long you may count on the lease from
now. That safe time counts from when the answered request was SENT, not from when the answer
came: the leader restarted the TTL somewhere between the two, so only the send time is a bound you
know. Keep a margin for your own clock's rate on top.

--once (the default) renews once. --every DUR renews periodically, for --for DUR if given (else
until interrupted); a renewal that gets no answer is retried at the next period until the lease's
safe time from the last answered send runs out.

Exit codes: 0 the last renewal was answered; 1 the lease is not found (certain: it was
never granted, was revoked or expired), or the last renewal got no answer (unknown: the lease may
still be live until its TTL from the last answered send); 2 usage error.";

#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Grant a lease of TTL (e.g. 5s, 1500ms) and print its id.
    ///
    /// The cluster refuses a TTL below 1.5 x its maximum election timeout (3s with default timing).
    Grant {
        #[arg(value_parser = parse_duration)]
        ttl: Duration,
        #[command(flatten)]
        conn: Conn,
    },
    /// Renew lease ID through the leader (once, or periodically).
    #[command(long_about = KEEP_ALIVE_HELP)]
    KeepAlive {
        /// The lease id, as `lease grant` printed it.
        #[arg(value_parser = lease_id)]
        id: LeaseId,
        /// Renew once (the default).
        #[arg(long, conflicts_with_all = ["every", "for_"])]
        once: bool,
        /// Renew every DUR (e.g. 1s); keep it well below the TTL.
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        every: Option<Duration>,
        /// With --every: stop after DUR.
        #[arg(long = "for", value_name = "DUR", requires = "every", value_parser = parse_duration)]
        for_: Option<Duration>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke lease ID now, deleting every key attached to it at one revision.
    Revoke {
        /// The lease id, as `lease grant` printed it.
        #[arg(value_parser = lease_id)]
        id: LeaseId,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print what remains of lease ID's TTL, by the leader's clock.
    Ttl {
        /// The lease id, as `lease grant` printed it.
        #[arg(value_parser = lease_id)]
        id: LeaseId,
        /// Also list the keys attached to the lease.
        #[arg(long)]
        keys: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

fn lease_id(s: &str) -> Result<LeaseId, String> {
    match s.trim().parse::<LeaseId>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(format!("a lease id is a whole number ≥ 1 (as `lease grant` printed it), got {s:?}")),
    }
}

pub async fn run(cmd: LeaseCommand) -> u8 {
    let conn = match &cmd {
        LeaseCommand::Grant { conn, .. }
        | LeaseCommand::KeepAlive { conn, .. }
        | LeaseCommand::Revoke { conn, .. }
        | LeaseCommand::Ttl { conn, .. } => conn,
    };
    let mut c = match client(conn) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    match cmd {
        LeaseCommand::Grant { ttl, .. } => match c.lease_grant(ttl).await {
            Ok(r) => {
                println!("lease {} granted with TTL {} ms", r.lease, r.ttl_ms);
                0
            }
            Err(e) => report_write("lease grant", Err(e)),
        },
        LeaseCommand::Revoke { id, .. } => match c.lease_revoke(id).await {
            Ok(r) => {
                let keys: Vec<&[u8]> = r
                    .results
                    .iter()
                    .filter_map(|res| match res {
                        TxnOpResult::Delete { prev: Some(kv) } => Some(kv.key.as_slice()),
                        _ => None,
                    })
                    .collect();
                println!("OK lease {id} revoked at revision {}; keys deleted: {}", r.revision, keys.len());
                for k in keys {
                    println!("deleted {}", show(k));
                }
                0
            }
            Err(e) => report_write("lease revoke", Err(e)),
        },
        LeaseCommand::Ttl { id, keys, .. } => match c.lease_time_to_live(id, keys).await {
            Ok(t) => {
                println!(
                    "lease {id}: {} ms of {} ms left (by the leader's clock)",
                    t.remaining.as_millis(),
                    t.granted.as_millis()
                );
                if keys {
                    println!("keys attached: {}", t.keys.len());
                    for k in &t.keys {
                        println!("key {}", show(k));
                    }
                }
                0
            }
            Err(e) => {
                eprintln!("error: lease ttl: {}", describe_lease_error(&e));
                EXIT_FAILED
            }
        },
        LeaseCommand::KeepAlive { id, every, for_, conn, .. } => {
            if let Some(every) = every {
                if every < Duration::from_millis(10) {
                    eprintln!("error: --every {every:?} is too short; renew every 10ms or more (well below the TTL)");
                    return EXIT_USAGE;
                }
                // One renewal must not outlast the period, or the loop falls behind the TTL.
                c = match client(&Conn { endpoints: conn.endpoints.clone(), timeout: conn.timeout.min(every) }) {
                    Ok(c) => c,
                    Err(e) => {
                        eprintln!("error: {e}");
                        return EXIT_USAGE;
                    }
                };
            }
            keep_alive(&mut c, id, every, for_).await
        }
    }
}

fn describe_lease_error(e: &LeaseError) -> String {
    match e {
        LeaseError::NotFound(_) => format!("{e}; it is certainly not live"),
        LeaseError::NoAnswer(reason) => format!("no leader answered ({reason}); the lease's state is unknown"),
    }
}

async fn keep_alive(c: &mut Client, id: LeaseId, every: Option<Duration>, for_: Option<Duration>) -> u8 {
    let start = Instant::now();
    let end = for_.map(|d| start + d);
    let mut last: Option<KeepAlive> = None;
    let mut next = start;
    loop {
        let answered = match c.lease_keep_alive(id).await {
            Ok(ka) => {
                let now = Instant::now();
                let safe = (ka.sent_at + ka.ttl).saturating_duration_since(now);
                println!(
                    "lease {id} renewed: TTL {} ms; safe for {} ms from now (counted from the send; leader's read index {})",
                    ka.ttl.as_millis(),
                    safe.as_millis(),
                    ka.read_index
                );
                last = Some(ka);
                true
            }
            Err(e @ LeaseError::NotFound(_)) => {
                eprintln!("error: lease keep-alive: {}", describe_lease_error(&e));
                return EXIT_FAILED;
            }
            Err(LeaseError::NoAnswer(reason)) => {
                let now = Instant::now();
                match last.map(|ka| (ka.sent_at + ka.ttl).saturating_duration_since(now)) {
                    Some(left) if !left.is_zero() => eprintln!(
                        "warning: lease {id}: no answer ({reason}); it may still be live for {} ms (its TTL from the last answered send)",
                        left.as_millis()
                    ),
                    Some(_) => {
                        eprintln!(
                            "error: lease {id}: no answer ({reason}), and its TTL from the last answered send has passed: treat the lease as lost"
                        );
                        return EXIT_FAILED;
                    }
                    None => eprintln!("warning: lease {id}: no answer ({reason})"),
                }
                false
            }
        };
        let Some(every) = every else {
            return if answered { 0 } else { unknown(id, last) };
        };
        next += every;
        let now = Instant::now();
        if next < now {
            next = now;
        }
        if end.is_some_and(|end| next > end) {
            return if answered { 0 } else { unknown(id, last) };
        }
        tokio::time::sleep_until(next).await;
    }
}

fn unknown(id: LeaseId, last: Option<KeepAlive>) -> u8 {
    let now = Instant::now();
    match last.map(|ka| (ka.sent_at + ka.ttl).saturating_duration_since(now)) {
        Some(left) => eprintln!(
            "error: lease {id} keep-alive: outcome unknown: your lease may still be live until its TTL from the last answered send ({} ms from now), and may already be gone; do not count on it",
            left.as_millis()
        ),
        None => eprintln!(
            "error: lease {id} keep-alive: outcome unknown: no renewal was answered; your lease may still be live until its TTL from the last answered send before this run"
        ),
    }
    EXIT_FAILED
}
