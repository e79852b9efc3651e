//! Client histories recorded in simulation, in the shape the linearizability checker reads.
//!
//! Every operation is an `invoke` followed by `ok` (it happened, with its result), `fail` (it
//! certainly did not happen) or `info` (unknown: a write whose answer never came). As in Jepsen, a
//! process whose operation ended in `info` never invokes again: the client continues as a new
//! process, because the old one may still have a write in flight.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use quorumlab_check::{Budget, CheckOptions, Event, EventKind, History, Kv, LeaseKv, ModelKind, Value, Verdict};

/// The checker's budget per key for a simulated history; exhausting it gives `unknown`, which the suite reports
/// as a violation (an unproven history is not a passing one).
pub const CHECK_STEPS: u64 = 5_000_000;

use super::trace::{sim_now, Trace};
use crate::client::{Client, Found, KeepAlive, LeaseError, ReadError, WriteError};
use crate::types::{Compare, CompareOp, CompareTarget, LeaseId, Response, Txn, TxnOp, TxnOpResult};

/// A shared, append-only history of client operations.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    trace: Option<Trace>,
    on_ack: Option<AckHook>,
}

/// Called with `(revision, client_id, seq)` whenever a write is acknowledged, so the durability invariant can hold
/// the cluster to it.
pub type AckHook = Arc<dyn Fn(u64, u64, u64) + Send + Sync>;

#[derive(Default)]
struct Inner {
    history: History,
    next_process: u64,
    /// Which client (e.g. which datacenter's) each process belongs to, where the client said.
    tags: BTreeMap<u64, String>,
}

impl Recorder {
    /// A recorder that also writes each completed operation to `trace`.
    pub fn with_trace(trace: Trace) -> Self {
        Recorder { inner: Arc::default(), trace: Some(trace), on_ack: None }
    }

    /// Also calls `hook` for every acknowledged write.
    pub fn on_ack(mut self, hook: AckHook) -> Self {
        self.on_ack = Some(hook);
        self
    }

    fn new_process(&self, tag: Option<&str>) -> u64 {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let p = inner.next_process;
        inner.next_process += 1;
        if let Some(tag) = tag {
            inner.tags.insert(p, tag.to_string());
        }
        p
    }

    /// A new process tagged `tag`, for a client that records its own operations (the database's).
    pub fn process(&self, tag: &str) -> u64 {
        self.new_process(Some(tag))
    }

    /// Records one event of `process`'s operation `f` on `key`.
    pub fn event(&self, process: u64, kind: EventKind, f: &str, key: &str, value: Value) {
        self.push(process, kind, f, key, value);
    }

    /// The tag of every process whose client was created with [`Recorder::tagged_client`].
    pub fn tags(&self) -> BTreeMap<u64, String> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).tags.clone()
    }

    fn push(&self, process: u64, kind: EventKind, f: &str, key: &str, value: Value) {
        self.push_event(process, kind, f, Some(key), value);
    }

    /// An event of an operation on no single key (a transaction, a lease call) when `key` is `None`.
    fn push_event(&self, process: u64, kind: EventKind, f: &str, key: Option<&str>, value: Value) {
        let mut event = Event::new(process, kind, f, value);
        event.key = key.map(str::to_string);
        event.time_ns = Some(sim_now().as_nanos() as u64);
        if kind != EventKind::Invoke {
            if let Some(t) = &self.trace {
                let key = key.unwrap_or("-");
                t.record(format!("client p{process}: {f} {key:?} -> {} {}", kind.name(), event.value));
            }
        }
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).history.push(event);
    }

    pub fn history(&self) -> History {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).history.clone()
    }

    /// Checks the history against the `kv` model (absent keys read as nil), within [`CHECK_STEPS`] search steps
    /// per key: a budget in steps, never wall-clock time, so a seed's verdict is the same on any machine. One
    /// thread: the suite already runs one simulation per core.
    ///
    /// A history with lease or transaction operations is checked against `lease-kv`, which also
    /// knows that a lease may expire at any moment and takes its keys with it.
    pub fn check(&self) -> Result<Verdict, String> {
        let history = self.history();
        let leases = history.events.iter().any(|e| e.f.starts_with("lease") || e.f == "txn" || e.f == "put-lease");
        let model = if leases { ModelKind::LeaseKv(LeaseKv) } else { ModelKind::Kv(Kv::default()) };
        let options = CheckOptions {
            budget: Budget::with_max_steps(CHECK_STEPS),
            all_keys: false,
            threads: std::num::NonZeroUsize::new(1),
        };
        quorumlab_check::check_history_with_options(&history, &model, &options).map_err(|e| e.to_string())
    }

    /// Writes the history in quorumlab's JSON-lines format, for `quorumlab check FILE`.
    pub fn write_jsonl(&self, path: &std::path::Path) -> std::io::Result<()> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        quorumlab_check::format::json_lines::write(&self.history(), &mut file)?;
        std::io::Write::flush(&mut file)
    }

    /// Wraps a client so that everything it does is recorded.
    pub fn client(&self, client: Client) -> RecordingClient {
        RecordingClient { process: self.new_process(None), client, rec: self.clone(), tag: None }
    }

    /// Like [`Recorder::client`], with every process it uses tagged (e.g. with its datacenter).
    pub fn tagged_client(&self, client: Client, tag: &str) -> RecordingClient {
        let process = self.new_process(Some(tag));
        RecordingClient { process, client, rec: self.clone(), tag: Some(tag.to_string()) }
    }
}

/// A [`Client`] that records its operations. Keys and values are strings.
pub struct RecordingClient {
    client: Client,
    process: u64,
    rec: Recorder,
    tag: Option<String>,
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

impl RecordingClient {
    fn finish_write(&mut self, f: &str, key: &str, r: &Result<Response, WriteError>, ok: impl Fn(&Response) -> Value) {
        self.finish(f, Some(key), r, ok)
    }

    /// Records a write's outcome: `ok` with its value, `fail` (certainly not applied), or `info` (unknown; the
    /// process is retired and the client continues as a new one).
    fn finish(
        &mut self,
        f: &str,
        key: Option<&str>,
        r: &Result<Response, WriteError>,
        ok: impl Fn(&Response) -> Value,
    ) {
        match r {
            Ok(resp) => {
                if let Some(hook) = &self.rec.on_ack {
                    let (client_id, seq) = self.client.last_write();
                    hook(resp.revision, client_id, seq);
                }
                self.rec.push_event(self.process, EventKind::Ok, f, key, ok(resp))
            }
            Err(WriteError::Failed(_)) => self.rec.push_event(self.process, EventKind::Fail, f, key, Value::Nil),
            Err(WriteError::Unknown(_)) => {
                self.rec.push_event(self.process, EventKind::Info, f, key, Value::Nil);
                self.process = self.rec.new_process(self.tag.as_deref());
            }
        }
    }

    pub async fn put(&mut self, key: &str, value: &str) -> Result<Response, WriteError> {
        self.rec.push(self.process, EventKind::Invoke, "put", key, s(value));
        let r = self.client.put(key.as_bytes(), value.as_bytes()).await;
        self.finish_write("put", key, &r, |_| s(value));
        r
    }

    pub async fn delete(&mut self, key: &str) -> Result<Response, WriteError> {
        self.rec.push(self.process, EventKind::Invoke, "delete", key, Value::Nil);
        let r = self.client.delete(key.as_bytes()).await;
        self.finish_write("delete", key, &r, |_| Value::Nil);
        r
    }

    /// Compare-and-swap by value; `expected == None` means "the key must be absent".
    pub async fn cas(&mut self, key: &str, expected: Option<&str>, new: &str) -> Result<Response, WriteError> {
        let input = Value::List(vec![expected.map(s).unwrap_or(Value::Nil), s(new)]);
        self.rec.push(self.process, EventKind::Invoke, "cas", key, input);
        let expect = Some(expected.map(|e| e.as_bytes().to_vec()));
        let r = self.client.cas(key.as_bytes(), expect, None, Some(new.as_bytes().to_vec())).await;
        self.finish_write("cas", key, &r, |resp| Value::Bool(resp.succeeded));
        r
    }

    /// Grants a lease; the ok value is its id.
    pub async fn lease_grant(&mut self, ttl: std::time::Duration) -> Result<Response, WriteError> {
        let input = Value::Int(ttl.as_millis() as i64);
        self.rec.push_event(self.process, EventKind::Invoke, "lease-grant", None, input);
        let r = self.client.lease_grant(ttl).await;
        self.finish("lease-grant", None, &r, |resp| Value::Int(resp.lease as i64));
        r
    }

    /// Renews a lease. An answer of "not found" is recorded as a TTL of 0 (etcd's answer); no
    /// answer changes nothing the model can see, so it is recorded as failed.
    pub async fn lease_keep_alive(&mut self, id: LeaseId) -> Result<KeepAlive, LeaseError> {
        self.rec.push_event(self.process, EventKind::Invoke, "lease-keepalive", None, Value::Int(id as i64));
        let r = self.client.lease_keep_alive(id).await;
        let (kind, value) = match &r {
            Ok(ka) => (EventKind::Ok, Value::Int(ka.ttl.as_millis().max(1) as i64)),
            Err(LeaseError::NotFound(_)) => (EventKind::Ok, Value::Int(0)),
            Err(LeaseError::NoAnswer(_)) => (EventKind::Fail, Value::Nil),
        };
        self.rec.push_event(self.process, kind, "lease-keepalive", None, value);
        r
    }

    /// Revokes a lease (its keys go with it).
    pub async fn lease_revoke(&mut self, id: LeaseId) -> Result<Response, WriteError> {
        self.rec.push_event(self.process, EventKind::Invoke, "lease-revoke", None, Value::Int(id as i64));
        let r = self.client.lease_revoke(id).await;
        self.finish("lease-revoke", None, &r, |_| Value::Nil);
        r
    }

    /// A put that attaches `key` to `lease`.
    pub async fn put_with_lease(&mut self, key: &str, value: &str, lease: LeaseId) -> Result<Response, WriteError> {
        let input = Value::List(vec![s(value), Value::Int(lease as i64)]);
        self.rec.push(self.process, EventKind::Invoke, "put-lease", key, input.clone());
        let r = self.client.put_with_lease(key.as_bytes(), value.as_bytes(), lease).await;
        self.finish_write("put-lease", key, &r, |_| Value::Nil);
        r
    }

    /// Campaigns for `key`: one transaction that puts `value` with `lease` if the key does not
    /// exist (its create revision is 0), and otherwise reads who holds it.
    pub async fn campaign(&mut self, key: &str, value: &str, lease: LeaseId) -> Result<Response, WriteError> {
        let txn = Txn {
            compares: vec![Compare {
                key: key.as_bytes().to_vec(),
                op: CompareOp::Equal,
                target: CompareTarget::CreateRevision(0),
            }],
            success: vec![TxnOp::Put { key: key.as_bytes().to_vec(), value: value.as_bytes().to_vec(), lease }],
            failure: vec![TxnOp::Get { key: key.as_bytes().to_vec() }],
        };
        let l = |items: Vec<Value>| Value::List(items);
        let input = l(vec![
            l(vec![l(vec![s("create"), s(key), s("="), Value::Int(0)])]),
            l(vec![l(vec![s("put-lease"), s(key), s(value), Value::Int(lease as i64)])]),
            l(vec![l(vec![s("get"), s(key)])]),
        ]);
        self.rec.push_event(self.process, EventKind::Invoke, "txn", None, input);
        let r = self.client.txn(txn).await;
        self.finish("txn", None, &r, |resp| {
            let reads = resp
                .results
                .iter()
                .filter_map(|res| match res {
                    TxnOpResult::Get { found } => {
                        Some(found.as_ref().map(|kv| s(&String::from_utf8_lossy(&kv.value))).unwrap_or(Value::Nil))
                    }
                    _ => None,
                })
                .collect();
            l(vec![Value::Bool(resp.succeeded), l(reads)])
        });
        r
    }

    /// A read with no answer changes nothing, so it is recorded as failed.
    pub async fn get(&mut self, key: &str) -> Result<Option<Found>, ReadError> {
        self.rec.push(self.process, EventKind::Invoke, "get", key, Value::Nil);
        let r = self.client.get(key.as_bytes()).await;
        match &r {
            Ok(found) => {
                let v = found.as_ref().map(|f| s(&String::from_utf8_lossy(&f.value))).unwrap_or(Value::Nil);
                self.rec.push(self.process, EventKind::Ok, "get", key, v);
            }
            Err(_) => self.rec.push(self.process, EventKind::Fail, "get", key, Value::Nil),
        }
        r
    }
}
