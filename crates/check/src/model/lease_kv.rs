//! An etcd-style key-value store with leases and transactions (`lease-kv`); the vocabulary is in
//! `docs/history-format.md`.
//!
//! State: per present key its value, its `version` (etcd: 1 on creation, +1 per put, gone on delete) and the
//! lease it is attached to; the set of live leases; the set of leases that ended (they never live again, and
//! their ids are never granted again). A lease ends by `lease-revoke` or by **expiry**, which the server
//! decides by its own clock at any moment after the grant; either way every key attached to it vanishes in
//! that same step.
//!
//! ## Why expiry is an explicit step, not a lazy kill
//! `step` returns one successor, so the tempting design kills a lease lazily, at the first op whose result
//! needs it dead (a read that sees its key absent). Killing is irreversible and only restricts later ops, so
//! for `ok` reads that is complete. It is not complete in general, and the counterexamples are pinned as tests:
//! 1. an op with an unknown outcome cannot kill (contract point 1: one effect per state), yet its effect may
//!    depend on an expiry nobody observed first: the holder's lease expires, another client's campaign txn
//!    (`put leader if create = 0`) times out, a later read sees the new holder. Deciding the unknown txn's
//!    branch from a state where the old lease still lives takes the else branch, and no order explains the read;
//! 2. an `ok` put observes nothing, yet its effect depends on expiry: on a key whose lease expired first it
//!    creates the key (version 1), otherwise it bumps the version; a later `version = 1` compare tells which.
//!
//! So each lease that can ever be live gets one spontaneous step, "lease L expires", searched like an op with
//! an unknown outcome invoked with the grant: the search places it at any point after the grant, or never.
//! Every history a real server can produce is then a sequence of this model's steps, and no op needs to guess.
//! Steps on a lease that is not live do not fit, so an expiry after a revoke is never tried twice.
//!
//! ## Leases whose grant's outcome is unknown
//! The id of a grant that timed out is unknown, so such a grant constrains nothing by itself. If an op later
//! names an id no `ok` grant returned, an unknown grant may have returned it: that id gets a second
//! spontaneous step, "granted by an unknown grant", available from the first unknown grant's invocation. The
//! model does not count: two such ids may both be explained by one unknown grant (too lenient, never wrong).
//!
//! ## Splitting
//! An op touches its keys (all the keys of a txn) and its leases; the history splits into the connected
//! components of those ([`Model::objects`]). Revoke and expiry delete only keys attached by a `put-lease` that
//! named the lease, so they stay inside the lease's component.

#[cfg(test)]
mod tests;
mod txn;

use std::collections::{BTreeMap, BTreeSet};

use super::cas_register::{parse_cas, CasOutcome};
use super::{unsupported, Model};
use crate::history::{Interval, Operation};
use crate::value::Value;

pub use txn::{Cmp, Compare, Target, Txn, TxnOp};

/// The model has no parameters: every key starts absent, as in etcd.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseKv;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    pub value: Value,
    /// Puts since the key was created; at least 1.
    pub version: u64,
    pub lease: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct LeaseKvState {
    /// Present keys only.
    /// Invariant: an entry's lease is in `live` (a lease's end deletes its keys in the same step).
    pub keys: BTreeMap<String, Entry>,
    pub live: BTreeSet<i64>,
    /// Leases that were live and ended. Kept because a later grant of the same id cannot happen; an id in
    /// neither set was never granted in this order of the ops.
    pub ended: BTreeSet<i64>,
}

impl LeaseKvState {
    fn put(&mut self, key: &str, value: &Value, lease: Option<i64>) {
        let version = self.keys.get(key).map_or(0, |e| e.version) + 1;
        self.keys.insert(key.to_string(), Entry { value: value.clone(), version, lease });
    }

    fn end_lease(&mut self, lease: i64) {
        self.live.remove(&lease);
        self.ended.insert(lease);
        self.keys.retain(|_, e| e.lease != Some(lease));
    }

    fn is_unseen(&self, lease: i64) -> bool {
        !self.live.contains(&lease) && !self.ended.contains(&lease)
    }

    fn value(&self, key: &str) -> Value {
        self.keys.get(key).map_or(Value::Nil, |e| e.value.clone())
    }
}

/// What a `lease-revoke` reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked,
    /// `ok` with value `false`: the server did not know the lease (it had ended, or was never granted).
    NotFound,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseKvOp {
    /// An op that fits every state and changes nothing: `sget`, and `get`, `lease-grant`, `lease-keepalive`,
    /// `lease-ttl` with an unknown outcome. Keeps its description.
    Unconstrained(String),
    /// An `ok` linearizable read; `Nil` = absent.
    Get {
        key: String,
        seen: Value,
    },
    Put {
        key: String,
        value: Value,
        lease: Option<i64>,
        known: bool,
    },
    Delete {
        key: String,
    },
    Cas {
        key: String,
        expected: Value,
        new: Value,
        outcome: CasOutcome,
    },
    Txn(Txn),
    Grant {
        lease: i64,
    },
    Revoke {
        lease: i64,
        outcome: RevokeOutcome,
    },
    /// `lease-keepalive` or `lease-ttl` answered: the lease was live (`true`) or unknown to the server.
    LeaseAlive {
        lease: i64,
        alive: bool,
        f: &'static str,
        ttl: i64,
    },
    /// Spontaneous: the server's clock ended the lease.
    Expire {
        lease: i64,
    },
    /// Spontaneous: an unknown-outcome grant returned this id.
    UnknownGrant {
        lease: i64,
    },
}

/// A key in a history: a string, keyword or integer.
fn key_name(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) | Value::Keyword(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn lease_id(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        _ => None,
    }
}

fn lease_object(lease: i64) -> String {
    format!("lease {lease}")
}

fn event_key(op: &Operation) -> Result<String, String> {
    op.key.clone().ok_or_else(|| format!("`{}` needs the event's key", op.f))
}

fn put_value(v: &Value) -> Result<Value, String> {
    if v.is_nil() {
        return Err("a put needs a value (nil means absent; use delete)".to_string());
    }
    Ok(v.clone())
}

impl LeaseKvOp {
    fn leases(&self) -> Vec<i64> {
        match self {
            LeaseKvOp::Put { lease: Some(l), .. } => vec![*l],
            LeaseKvOp::Txn(t) => t
                .then_ops
                .iter()
                .chain(&t.else_ops)
                .filter_map(|op| match op {
                    TxnOp::Put { lease, .. } => *lease,
                    _ => None,
                })
                .collect(),
            LeaseKvOp::Grant { lease }
            | LeaseKvOp::Revoke { lease, .. }
            | LeaseKvOp::LeaseAlive { lease, .. }
            | LeaseKvOp::Expire { lease }
            | LeaseKvOp::UnknownGrant { lease } => vec![*lease],
            _ => Vec::new(),
        }
    }
}

impl Model for LeaseKv {
    type Op = LeaseKvOp;
    type State = LeaseKvState;

    fn name(&self) -> &'static str {
        "lease-kv"
    }

    fn init(&self) -> LeaseKvState {
        LeaseKvState::default()
    }

    fn parse(&self, op: &Operation) -> Result<LeaseKvOp, String> {
        let unknown = op.output.is_none();
        let lease_in =
            |v: &Value| lease_id(v).ok_or_else(|| format!("`{}` needs a lease id (an integer), got {v}", op.f));
        let parsed = match op.f.as_str() {
            "sget" => LeaseKvOp::Unconstrained(format!("sget {} (serializable, unchecked)", event_key(op)?)),
            "get" if unknown => LeaseKvOp::Unconstrained(format!("get {} → ?", event_key(op)?)),
            "get" => LeaseKvOp::Get { key: event_key(op)?, seen: op.output.clone().unwrap_or_default() },
            "put" => LeaseKvOp::Put { key: event_key(op)?, value: put_value(&op.input)?, lease: None, known: !unknown },
            "put-lease" => {
                let Some((value, lease)) = op.input.as_pair() else {
                    return Err(format!("put-lease needs [value lease], got {}", op.input));
                };
                let lease = Some(lease_in(lease)?);
                LeaseKvOp::Put { key: event_key(op)?, value: put_value(value)?, lease, known: !unknown }
            }
            "delete" => LeaseKvOp::Delete { key: event_key(op)? },
            "cas" => {
                let (expected, new, outcome) = parse_cas(op)?;
                LeaseKvOp::Cas { key: event_key(op)?, expected, new, outcome }
            }
            "txn" => LeaseKvOp::Txn(txn::parse_txn(&op.input, op.output.as_ref())?),
            "lease-grant" => match &op.output {
                None => LeaseKvOp::Unconstrained(format!("lease-grant ttl {} → ? (unknown id)", op.input)),
                Some(id) => LeaseKvOp::Grant { lease: lease_in(id)? },
            },
            "lease-revoke" => {
                let outcome = match &op.output {
                    None => RevokeOutcome::Unknown,
                    Some(Value::Bool(false)) => RevokeOutcome::NotFound,
                    Some(_) => RevokeOutcome::Revoked,
                };
                LeaseKvOp::Revoke { lease: lease_in(&op.input)?, outcome }
            }
            f @ ("lease-keepalive" | "lease-ttl") => {
                let f = if f == "lease-ttl" { "lease-ttl" } else { "lease-keepalive" };
                let lease = lease_in(&op.input)?;
                match &op.output {
                    None => LeaseKvOp::Unconstrained(format!("{f} {lease} → ?")),
                    // etcd: a keepalive of an unknown lease answers TTL 0; TimeToLive answers -1, and 0 for a
                    // live lease in its last second (the remaining time is truncated to whole seconds).
                    Some(Value::Int(ttl)) => {
                        let alive = if f == "lease-ttl" { *ttl >= 0 } else { *ttl > 0 };
                        LeaseKvOp::LeaseAlive { lease, alive, f, ttl: *ttl }
                    }
                    Some(other) => {
                        return Err(format!("an ok {f} returns the remaining TTL (an integer), got {other}"))
                    }
                }
            }
            _ => return Err(unsupported(
                self.name(),
                op,
                "get, sget, put, put-lease, delete, cas, txn, lease-grant, lease-revoke, lease-keepalive, lease-ttl",
            )),
        };
        Ok(parsed)
    }

    fn partition_by_key(&self) -> bool {
        false
    }

    fn objects(&self, op: &LeaseKvOp) -> Option<Vec<String>> {
        let mut objects: Vec<String> = match op {
            LeaseKvOp::Get { key, .. }
            | LeaseKvOp::Put { key, .. }
            | LeaseKvOp::Delete { key }
            | LeaseKvOp::Cas { key, .. } => vec![key.clone()],
            LeaseKvOp::Txn(t) => t
                .compares
                .iter()
                .map(|c| c.key.clone())
                .chain(t.then_ops.iter().chain(&t.else_ops).map(|op| op.key().to_string()))
                .collect(),
            _ => Vec::new(),
        };
        objects.extend(op.leases().into_iter().map(lease_object));
        Some(objects)
    }

    fn spontaneous(&self, ops: &[(Operation, Self::Op)]) -> Vec<(Operation, Self::Op)> {
        let step = |from: &Operation, op: LeaseKvOp| {
            let interval = Interval { return_index: None, return_line: None, return_time_ns: None, ..from.interval };
            let f = if matches!(op, LeaseKvOp::Expire { .. }) { "lease-expire" } else { "lease-grant" };
            let lease = op.leases()[0];
            let operation = Operation {
                id: usize::MAX,
                process: from.process,
                f: f.to_string(),
                key: None,
                input: Value::Int(lease),
                output: None,
                interval,
            };
            (operation, op)
        };
        let mut granted: BTreeMap<i64, &Operation> = BTreeMap::new();
        let mut named: BTreeSet<i64> = BTreeSet::new();
        let mut first_unknown_grant: Option<&Operation> = None;
        for (operation, op) in ops {
            match op {
                LeaseKvOp::Grant { lease } => {
                    granted.entry(*lease).or_insert(operation);
                }
                LeaseKvOp::Unconstrained(_) if operation.f == "lease-grant" => {
                    first_unknown_grant = first_unknown_grant.or(Some(operation));
                }
                op => named.extend(op.leases()),
            }
        }
        let mut steps: Vec<(Operation, Self::Op)> =
            granted.iter().map(|(&lease, grant)| step(grant, LeaseKvOp::Expire { lease })).collect();
        if let Some(grant) = first_unknown_grant {
            for &lease in named.iter().filter(|l| !granted.contains_key(l)) {
                steps.push(step(grant, LeaseKvOp::UnknownGrant { lease }));
                steps.push(step(grant, LeaseKvOp::Expire { lease }));
            }
        }
        steps
    }

    fn step(&self, state: &LeaseKvState, op: &LeaseKvOp) -> Option<LeaseKvState> {
        let unchanged = || Some(state.clone());
        match op {
            LeaseKvOp::Unconstrained(_) => unchanged(),
            LeaseKvOp::Get { key, seen } => (state.value(key) == *seen).then(|| state.clone()),
            LeaseKvOp::Put { key, value, lease, known } => {
                if lease.is_some_and(|l| !state.live.contains(&l)) {
                    // An unknown put on a dead lease was rejected: the same as never placing it.
                    return if *known { None } else { unchanged() };
                }
                let mut next = state.clone();
                next.put(key, value, *lease);
                Some(next)
            }
            LeaseKvOp::Delete { key } => {
                let mut next = state.clone();
                next.keys.remove(key);
                Some(next)
            }
            LeaseKvOp::Cas { key, expected, new, outcome } => {
                let matches = state.value(key) == *expected;
                match outcome {
                    CasOutcome::CompareFailed => (!matches).then(|| state.clone()),
                    CasOutcome::Swapped | CasOutcome::Unknown if matches => {
                        let mut next = state.clone();
                        if new.is_nil() {
                            next.keys.remove(key);
                        } else {
                            next.put(key, new, None);
                        }
                        Some(next)
                    }
                    CasOutcome::Unknown => unchanged(),
                    CasOutcome::Swapped => None,
                }
            }
            LeaseKvOp::Txn(t) => t.step(state),
            LeaseKvOp::Grant { lease } | LeaseKvOp::UnknownGrant { lease } => state.is_unseen(*lease).then(|| {
                let mut next = state.clone();
                next.live.insert(*lease);
                next
            }),
            LeaseKvOp::Revoke { lease, outcome } => {
                let live = state.live.contains(lease);
                match outcome {
                    RevokeOutcome::NotFound => (!live).then(|| state.clone()),
                    RevokeOutcome::Revoked if !live => None,
                    // An unknown revoke of a lease that is not live did nothing.
                    RevokeOutcome::Unknown if !live => unchanged(),
                    RevokeOutcome::Revoked | RevokeOutcome::Unknown => {
                        let mut next = state.clone();
                        next.end_lease(*lease);
                        Some(next)
                    }
                }
            }
            LeaseKvOp::LeaseAlive { lease, alive, .. } => (state.live.contains(lease) == *alive).then(|| state.clone()),
            LeaseKvOp::Expire { lease } => state.live.contains(lease).then(|| {
                let mut next = state.clone();
                next.end_lease(*lease);
                next
            }),
        }
    }

    fn is_unconstrained(&self, op: &LeaseKvOp) -> bool {
        matches!(op, LeaseKvOp::Unconstrained(_))
    }

    fn is_read_only(&self, op: &LeaseKvOp) -> bool {
        match op {
            LeaseKvOp::Unconstrained(_) | LeaseKvOp::Get { .. } | LeaseKvOp::LeaseAlive { .. } => true,
            LeaseKvOp::Cas { outcome: CasOutcome::CompareFailed, .. } => true,
            LeaseKvOp::Revoke { outcome: RevokeOutcome::NotFound, .. } => true,
            LeaseKvOp::Txn(t) => t.outcome.as_ref().is_some_and(|(succeeded, _)| !t.writes(*succeeded)),
            _ => false,
        }
    }

    fn describe_op(&self, op: &LeaseKvOp) -> String {
        match op {
            LeaseKvOp::Unconstrained(d) => d.clone(),
            LeaseKvOp::Get { key, seen: Value::Nil } => format!("get {key} → nil (absent)"),
            LeaseKvOp::Get { key, seen } => format!("get {key} → {seen}"),
            LeaseKvOp::Put { key, value, lease: None, .. } => format!("put {key} {value}"),
            LeaseKvOp::Put { key, value, lease: Some(l), .. } => format!("put {key} {value} with lease {l}"),
            LeaseKvOp::Delete { key } => format!("delete {key}"),
            LeaseKvOp::Cas { key, expected, new, outcome: CasOutcome::CompareFailed } => {
                format!("cas {key} {expected}→{new} (compare failed)")
            }
            LeaseKvOp::Cas { key, expected, new, .. } => format!("cas {key} {expected}→{new}"),
            LeaseKvOp::Txn(t) => t.describe(),
            LeaseKvOp::Grant { lease } => format!("lease-grant → {lease}"),
            LeaseKvOp::Revoke { lease, outcome: RevokeOutcome::NotFound } => {
                format!("lease-revoke {lease} → not found")
            }
            LeaseKvOp::Revoke { lease, .. } => format!("lease-revoke {lease}"),
            LeaseKvOp::LeaseAlive { lease, f, ttl, .. } => format!("{f} {lease} → {ttl}"),
            LeaseKvOp::Expire { lease } => format!("lease {lease} expires (server clock; any time after its grant)"),
            LeaseKvOp::UnknownGrant { lease } => format!("lease {lease} granted by a grant whose outcome is unknown"),
        }
    }

    fn describe_state(&self, state: &LeaseKvState) -> String {
        let mut parts: Vec<String> = state
            .keys
            .iter()
            .map(|(k, e)| match e.lease {
                None => format!("{k}={} (v{})", e.value, e.version),
                Some(l) => format!("{k}={} (v{}, lease {l})", e.value, e.version),
            })
            .collect();
        if parts.is_empty() {
            parts.push("no keys".to_string());
        }
        let ids = |set: &BTreeSet<i64>| set.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        if !state.live.is_empty() {
            parts.push(format!("live leases {}", ids(&state.live)));
        }
        if !state.ended.is_empty() {
            parts.push(format!("ended leases {}", ids(&state.ended)));
        }
        parts.join("; ")
    }

    fn requirement(&self, op: &LeaseKvOp) -> String {
        match op {
            LeaseKvOp::Get { key, seen: Value::Nil } => format!("{key} to be absent"),
            LeaseKvOp::Get { key, seen } => format!("{key} to be {seen}"),
            LeaseKvOp::Put { lease: Some(l), .. } => format!("lease {l} to be live"),
            LeaseKvOp::Cas { key, expected, outcome: CasOutcome::CompareFailed, .. } => {
                format!("{key} to differ from {expected}")
            }
            LeaseKvOp::Cas { key, expected, .. } => format!("{key} to be {expected}"),
            LeaseKvOp::Txn(t) => match &t.outcome {
                Some((succeeded, _)) => format!(
                    "the compares to {} and the gets to return what they returned{}",
                    if *succeeded { "hold" } else { "not all hold" },
                    if t.branch(*succeeded).iter().any(|o| matches!(o, TxnOp::Put { lease: Some(_), .. })) {
                        ", with its leases live"
                    } else {
                        ""
                    }
                ),
                None => "nothing (it fits any state)".to_string(),
            },
            LeaseKvOp::Grant { lease } => format!("lease id {lease} never to have been granted before"),
            LeaseKvOp::Revoke { lease, outcome: RevokeOutcome::NotFound } => format!("lease {lease} not to be live"),
            LeaseKvOp::Revoke { lease, .. } | LeaseKvOp::Expire { lease } => format!("lease {lease} to be live"),
            LeaseKvOp::LeaseAlive { lease, alive: true, .. } => format!("lease {lease} to be live"),
            LeaseKvOp::LeaseAlive { lease, alive: false, .. } => format!("lease {lease} not to be live"),
            LeaseKvOp::UnknownGrant { lease } => format!("lease id {lease} never to have been granted before"),
            LeaseKvOp::Unconstrained(_) | LeaseKvOp::Put { lease: None, .. } | LeaseKvOp::Delete { .. } => {
                "nothing (it fits any state)".to_string()
            }
        }
    }
}
