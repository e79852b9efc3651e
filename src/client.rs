//! The client library: leader discovery, redirects, retries with backoff inside one overall
//! deadline, and honest outcomes.
//!
//! A write that did not get an answer may still have been committed. Such a write is reported as
//! [`WriteError::Unknown`], never as failed: a checker must treat it as "may have happened".
//! Retries reuse the same `(client_id, seq)`, so the state machine applies a write at most once
//! however many times the client sends it.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::net::{self, Deadlines, Transport};
use crate::node::service::leader_hint;
use crate::node::{convert, PlantedBug, MAX_MESSAGE_BYTES};
use crate::pb;
use crate::pb::admin_service_client::AdminServiceClient;
use crate::pb::kv_service_client::KvServiceClient;
use crate::runtime;
use crate::types::{LeaseId, Op, Response, Txn};

/// How a client talks to the cluster.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Any nodes of the cluster (`host:port`); the leader is discovered from them.
    pub endpoints: Vec<String>,
    pub transport: Transport,
    /// The whole operation, retries included, ends by this deadline.
    pub overall_timeout: Duration,
    /// Deadline of one attempt.
    pub attempt_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A client-side bug planted by a negative-control test; `None` in every real configuration,
    /// and refused by [`Client::new`] outside simulation.
    pub planted_bug: Option<PlantedBug>,
}

impl ClientConfig {
    pub fn new(endpoints: Vec<String>, transport: Transport) -> Self {
        ClientConfig {
            endpoints,
            transport,
            overall_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_millis(2_500),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(500),
            planted_bug: None,
        }
    }
}

/// Why a write has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The write may or may not have been applied (an attempt timed out or lost its connection).
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// The write was certainly not applied (rejected as invalid, or no attempt reached a leader).
    #[error("failed: {0}")]
    Failed(String),
}

/// Why a read has no result. A read changes nothing, so its failure needs no "unknown".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("read failed: {0}")]
pub struct ReadError(pub String);

/// A value read from the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub value: Vec<u8>,
    /// Revision of the key's last modification.
    pub mod_revision: u64,
    pub create_revision: u64,
    pub version: u64,
    /// 0 = no lease.
    pub lease: LeaseId,
}

/// What a serializable read saw: possibly stale, from whichever member answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerializableRead {
    pub found: Option<Found>,
    /// The member's applied index when it answered.
    pub revision: u64,
    pub member: u64,
}

/// An answered KeepAlive. The holder's safe deadline is `sent_at + ttl` minus its clock-rate
/// margin: it counts from when the answered attempt was *sent*, never from when the answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    pub ttl: Duration,
    /// When the attempt that got this answer left the client (tokio's clock).
    pub sent_at: tokio::time::Instant,
    pub read_index: u64,
}

/// A lease's remaining time, by the leader's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeToLive {
    pub remaining: Duration,
    pub granted: Duration,
    pub keys: Vec<Vec<u8>>,
}

/// Why a lease call has no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// The lease is not live: never granted, revoked or expired. Certain.
    #[error("lease {0} not found (never granted, revoked or expired)")]
    NotFound(LeaseId),
    /// No leader answered in time; the lease may or may not still be live.
    #[error("{0}")]
    NoAnswer(String),
}

/// A client session: a client id and a sequence number make every write exactly-once.
pub struct Client {
    cfg: ClientConfig,
    channels: BTreeMap<String, Channel>,
    /// Where to send the next request: the last known leader, else the next endpoint.
    target: String,
    next_endpoint: usize,
    client_id: u64,
    next_seq: u64,
}

enum Attempt<T> {
    Done(T),
    /// The cluster answered that the request cannot apply (e.g. its lease is not live): certainly
    /// not applied, whatever earlier attempts did, since every attempt carries the same seq.
    Rejected(Status),
    /// Try elsewhere; `maybe_applied` says whether the attempt may have taken effect.
    Retry {
        reason: String,
        maybe_applied: bool,
    },
    Fatal(String),
}

impl Client {
    /// A new session with a client id drawn from the (seeded, in simulation) RNG.
    pub fn new(cfg: ClientConfig) -> Result<Self, String> {
        if cfg.endpoints.is_empty() {
            return Err("no endpoints given".into());
        }
        if cfg.planted_bug.is_some() && cfg.transport != Transport::Sim {
            return Err("planted bugs are for simulated clusters only".into());
        }
        let client_id = runtime::with_rng(runtime::Stream::Clients, |r| r.gen_range(1..u64::MAX));
        let target = cfg.endpoints[0].clone();
        Ok(Client { cfg, channels: BTreeMap::new(), target, next_endpoint: 1, client_id, next_seq: 1 })
    }

    /// The `(client_id, seq)` of the last write this session issued (`seq` 0 before any).
    pub fn last_write(&self) -> (u64, u64) {
        (self.client_id, self.next_seq - 1)
    }

    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    fn channel(&mut self, addr: &str) -> Result<Channel, String> {
        if let Some(c) = self.channels.get(addr) {
            return Ok(c.clone());
        }
        let deadlines = Deadlines { connect: self.cfg.attempt_timeout, request: self.cfg.attempt_timeout };
        let c = net::channel(self.cfg.transport, addr, deadlines).map_err(|e| format!("bad endpoint {addr:?}: {e}"))?;
        self.channels.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    fn kv(&mut self) -> Result<KvServiceClient<Channel>, String> {
        let target = self.target.clone();
        Ok(KvServiceClient::new(self.channel(&target)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Points the next attempt at the hinted leader, or at the next endpoint.
    fn redirect(&mut self, status: Option<&Status>) {
        if let Some(hint) = status.and_then(leader_hint) {
            if !hint.leader_addr.is_empty() && hint.leader_addr != self.target {
                self.target = hint.leader_addr;
                return;
            }
        }
        self.target = self.cfg.endpoints[self.next_endpoint % self.cfg.endpoints.len()].clone();
        self.next_endpoint += 1;
    }

    /// Classifies a failed attempt.
    fn classify<T>(&mut self, status: Status, is_write: bool) -> Attempt<T> {
        let reason = format!("{}: {}", self.target, status.message());
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange => Attempt::Fatal(status.message().to_string()),
            Code::NotFound => Attempt::Rejected(status),
            // Refused before proposing: the node is not the leader.
            Code::FailedPrecondition => {
                self.redirect(Some(&status));
                Attempt::Retry { reason, maybe_applied: false }
            }
            _ => {
                self.redirect(None);
                Attempt::Retry { reason, maybe_applied: is_write }
            }
        }
    }

    async fn backoff(&self, attempt: u32) {
        let base = self.cfg.backoff_min.saturating_mul(1u32 << attempt.min(10)).min(self.cfg.backoff_max);
        let jitter = runtime::with_rng(runtime::Stream::Clients, |r| r.gen_range(0..=base.as_millis() as u64 / 2));
        tokio::time::sleep(base + Duration::from_millis(jitter)).await;
    }

    /// Sends one request until it succeeds, fails for certain, or the overall deadline passes.
    /// Every attempt of a write carries the same `(client_id, seq)`, so retries apply at most once.
    /// On success also returns when the answered attempt was sent.
    async fn call(&mut self, request: Call) -> Result<(Reply, tokio::time::Instant), GaveUp> {
        let is_write = matches!(request, Call::Write(_));
        let deadline = tokio::time::Instant::now() + self.cfg.overall_timeout;
        let mut maybe_applied = false;
        let mut last = String::from("no attempt made");
        for attempt in 0.. {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            let budget = (deadline - now).min(self.cfg.attempt_timeout);
            let sent_at = now;
            let outcome = match self.kv() {
                Err(e) => Attempt::Fatal(e),
                Ok(mut kv) => match tokio::time::timeout(budget, request.send(&mut kv)).await {
                    Err(_) => {
                        self.redirect(None);
                        let reason = format!("{}: no answer within {budget:?}", self.target);
                        Attempt::Retry { reason, maybe_applied: is_write }
                    }
                    Ok(Ok(r)) => Attempt::Done(r),
                    Ok(Err(status)) => self.classify(status, is_write),
                },
            };
            match outcome {
                Attempt::Done(r) => return Ok((r, sent_at)),
                Attempt::Rejected(status) => {
                    return Err(GaveUp {
                        reason: status.message().to_string(),
                        maybe_applied: false,
                        rejected: Some(status),
                    })
                }
                Attempt::Fatal(reason) => return Err(GaveUp { reason, maybe_applied, rejected: None }),
                Attempt::Retry { reason, maybe_applied: m } => {
                    maybe_applied |= m;
                    last = reason;
                }
            }
            self.backoff(attempt).await;
        }
        let reason = format!("gave up after {:?}; last error: {last}", self.cfg.overall_timeout);
        Err(GaveUp { reason, maybe_applied, rejected: None })
    }

    async fn write(&mut self, op: Op) -> Result<Response, WriteError> {
        op.validate().map_err(WriteError::Failed)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let cmd = convert::command_to_pb(&crate::types::Request { client_id: self.client_id, seq, op });
        match self.call(Call::Write(cmd)).await {
            Ok((Reply::Write(r), _)) => Ok(r),
            Ok(_) => unreachable!("a write is answered with a write reply"),
            Err(GaveUp { reason, maybe_applied: true, .. })
                if self.cfg.planted_bug == Some(PlantedBug::ClientReportsTimeoutAsFailed) =>
            {
                Err(WriteError::Failed(reason))
            }
            Err(GaveUp { reason, maybe_applied: true, .. }) => Err(WriteError::Unknown(reason)),
            Err(GaveUp { reason, maybe_applied: false, .. }) => Err(WriteError::Failed(reason)),
        }
    }

    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Response, WriteError> {
        self.put_with_lease(key, value, 0).await
    }

    /// A put that attaches the key to `lease` (0 = none). A lease that is not live fails it.
    pub async fn put_with_lease(&mut self, key: &[u8], value: &[u8], lease: LeaseId) -> Result<Response, WriteError> {
        self.write(Op::Put { key: key.to_vec(), value: value.to_vec(), lease }).await
    }

    pub async fn delete(&mut self, key: &[u8]) -> Result<Response, WriteError> {
        self.write(Op::Delete { key: key.to_vec() }).await
    }

    /// Compare-and-swap; `Ok` with `succeeded == false` means the comparison failed.
    pub async fn cas(
        &mut self,
        key: &[u8],
        expect_value: Option<Option<Vec<u8>>>,
        expect_revision: Option<u64>,
        new_value: Option<Vec<u8>>,
    ) -> Result<Response, WriteError> {
        self.write(Op::Cas { key: key.to_vec(), expect_value, expect_revision, new_value }).await
    }

    /// A transaction; `succeeded` says which branch ran, `results` holds the branch's results.
    pub async fn txn(&mut self, txn: Txn) -> Result<Response, WriteError> {
        self.write(Op::Txn(txn)).await
    }

    /// Grants a lease of `ttl`; the response's `lease` is its id.
    pub async fn lease_grant(&mut self, ttl: Duration) -> Result<Response, WriteError> {
        self.write(Op::LeaseGrant { ttl_ms: ttl.as_millis() as u64 }).await
    }

    /// Revokes a lease, deleting its keys; `results` lists them.
    pub async fn lease_revoke(&mut self, id: LeaseId) -> Result<Response, WriteError> {
        self.write(Op::LeaseRevoke { id, expired: false, term: 0 }).await
    }

    /// Renews a lease through the leader, which confirms its leadership with a quorum first.
    pub async fn lease_keep_alive(&mut self, id: LeaseId) -> Result<KeepAlive, LeaseError> {
        match self.call(Call::KeepAlive(pb::LeaseKeepAliveRequest { id })).await {
            Ok((Reply::KeepAlive(r), sent_at)) => {
                Ok(KeepAlive { ttl: Duration::from_millis(r.ttl_ms), sent_at, read_index: r.read_index })
            }
            Ok(_) => unreachable!("a keep-alive is answered with a keep-alive reply"),
            Err(GaveUp { rejected: Some(_), .. }) => Err(LeaseError::NotFound(id)),
            Err(GaveUp { reason, .. }) => Err(LeaseError::NoAnswer(reason)),
        }
    }

    /// What remains of a lease's TTL, by the leader's clock; with `keys`, also its keys.
    pub async fn lease_time_to_live(&mut self, id: LeaseId, keys: bool) -> Result<TimeToLive, LeaseError> {
        match self.call(Call::TimeToLive(pb::LeaseTimeToLiveRequest { id, keys })).await {
            Ok((Reply::TimeToLive(r), _)) => Ok(TimeToLive {
                remaining: Duration::from_millis(r.ttl_ms),
                granted: Duration::from_millis(r.granted_ttl_ms),
                keys: r.keys,
            }),
            Ok(_) => unreachable!("a time-to-live call is answered with its reply"),
            Err(GaveUp { rejected: Some(_), .. }) => Err(LeaseError::NotFound(id)),
            Err(GaveUp { reason, .. }) => Err(LeaseError::NoAnswer(reason)),
        }
    }

    /// A linearizable read, served by the leader after it confirms leadership with a quorum.
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Found>, ReadError> {
        Ok(self.read(key, false).await?.found)
    }

    /// A serializable read: whichever member the client is talking to answers from its own
    /// applied state, without asking the leader. Fast and available in a minority, and possibly
    /// stale; the answer says which member gave it and at which of its revisions.
    pub async fn get_serializable(&mut self, key: &[u8]) -> Result<SerializableRead, ReadError> {
        self.read(key, true).await
    }

    async fn read(&mut self, key: &[u8], serializable: bool) -> Result<SerializableRead, ReadError> {
        if key.is_empty() {
            return Err(ReadError("key must not be empty".into()));
        }
        match self.call(Call::Get(pb::GetRequest { key: key.to_vec(), serializable })).await {
            Ok((Reply::Get(r), _)) => Ok(SerializableRead {
                found: r.found.then_some(Found {
                    value: r.value,
                    mod_revision: r.mod_revision,
                    create_revision: r.create_revision,
                    version: r.version,
                    lease: r.lease,
                }),
                revision: r.revision,
                member: r.member,
            }),
            Ok(_) => unreachable!("a read is answered with a read reply"),
            Err(GaveUp { reason, .. }) => Err(ReadError(reason)),
        }
    }
}

/// One client request, sent unchanged on every attempt.
enum Call {
    Write(pb::Command),
    Get(pb::GetRequest),
    KeepAlive(pb::LeaseKeepAliveRequest),
    TimeToLive(pb::LeaseTimeToLiveRequest),
}

enum Reply {
    Write(Response),
    Get(pb::GetResponse),
    KeepAlive(pb::LeaseKeepAliveResponse),
    TimeToLive(pb::LeaseTimeToLiveResponse),
}

/// Why [`Client::call`] stopped trying; `maybe_applied` if any attempt may have taken effect;
/// `rejected` if the cluster answered that the request cannot apply.
struct GaveUp {
    reason: String,
    maybe_applied: bool,
    rejected: Option<Status>,
}

impl Call {
    async fn send(&self, kv: &mut KvServiceClient<Channel>) -> Result<Reply, Status> {
        match self {
            Call::Write(cmd) => send_command(kv, cmd.clone()).await.map(Reply::Write),
            Call::Get(req) => kv.get(req.clone()).await.map(|r| Reply::Get(r.into_inner())),
            Call::KeepAlive(req) => kv.lease_keep_alive(*req).await.map(|r| Reply::KeepAlive(r.into_inner())),
            Call::TimeToLive(req) => kv.lease_time_to_live(*req).await.map(|r| Reply::TimeToLive(r.into_inner())),
        }
    }
}

async fn send_command(kv: &mut KvServiceClient<Channel>, cmd: pb::Command) -> Result<Response, Status> {
    let (client_id, seq) = (cmd.client_id, cmd.seq);
    let reply = match cmd.op {
        Some(pb::command::Op::Put(p)) => {
            kv.put(pb::PutRequest { key: p.key, value: p.value, client_id, seq, lease: p.lease }).await
        }
        Some(pb::command::Op::Delete(d)) => kv.delete(pb::DeleteRequest { key: d.key, client_id, seq }).await,
        Some(pb::command::Op::Cas(c)) => {
            kv.compare_and_swap(pb::CompareAndSwapRequest {
                key: c.key,
                expect_value: c.expect_value,
                expect_revision: c.expect_revision,
                new_value: c.new_value,
                client_id,
                seq,
            })
            .await
        }
        Some(pb::command::Op::Txn(t)) => {
            let req = pb::TxnRequest { compares: t.compares, success: t.success, failure: t.failure, client_id, seq };
            let r = kv.txn(req).await?.into_inner();
            return Ok(Response {
                revision: r.revision,
                succeeded: r.succeeded,
                results: r.results.iter().map(convert::txn_result_from_pb).collect(),
                ..Response::default()
            });
        }
        Some(pb::command::Op::LeaseGrant(g)) => {
            let r = kv.lease_grant(pb::LeaseGrantRequest { ttl_ms: g.ttl_ms, client_id, seq }).await?.into_inner();
            return Ok(Response {
                revision: r.id,
                succeeded: true,
                lease: r.id,
                ttl_ms: r.ttl_ms,
                ..Response::default()
            });
        }
        Some(pb::command::Op::LeaseRevoke(l)) => {
            let r = kv.lease_revoke(pb::LeaseRevokeRequest { id: l.id, client_id, seq }).await?.into_inner();
            let results = r
                .deleted_keys
                .into_iter()
                .map(|key| crate::types::TxnOpResult::Delete {
                    prev: Some(crate::types::KeyValue { key, ..Default::default() }),
                })
                .collect();
            return Ok(Response { revision: r.revision, succeeded: true, lease: l.id, results, ..Response::default() });
        }
        Some(pb::command::Op::LeaseCheckpoint(_)) => {
            return Err(Status::invalid_argument("lease checkpoints are proposed by the leader, not by clients"))
        }
        Some(pb::command::Op::Batch(_)) => {
            return Err(Status::invalid_argument("batches are proposed by the leader, not by clients"))
        }
        None => return Err(Status::invalid_argument("empty command")),
    }?;
    let result = reply.into_inner().result.ok_or_else(|| Status::internal("reply without result"))?;
    Ok(convert::response_from_pb(&result))
}

/// Admin calls against one node.
pub mod admin {
    use super::*;

    fn client(transport: Transport, addr: &str, timeout: Duration) -> Result<AdminServiceClient<Channel>, String> {
        let deadlines = Deadlines { connect: timeout, request: timeout };
        let c = net::channel(transport, addr, deadlines).map_err(|e| format!("bad endpoint {addr:?}: {e}"))?;
        Ok(AdminServiceClient::new(c))
    }

    fn describe(addr: &str, s: Status) -> String {
        if s.code() == Code::Unavailable || s.code() == Code::Unknown {
            format!("{addr}: unreachable ({})", s.message())
        } else {
            format!("{addr}: {}", s.message())
        }
    }

    pub async fn status(transport: Transport, addr: &str, timeout: Duration) -> Result<pb::StatusResponse, String> {
        let mut c = client(transport, addr, timeout)?;
        match tokio::time::timeout(timeout, c.status(pb::StatusRequest {})).await {
            Err(_) => Err(format!("{addr}: no answer within {timeout:?}")),
            Ok(r) => r.map(|r| r.into_inner()).map_err(|s| describe(addr, s)),
        }
    }

    /// Adds node `id` at `node_addr` as a learner, through the leader at `addr`; with `blocking`
    /// the call returns once the learner has caught up.
    pub async fn add_learner(
        transport: Transport,
        addr: &str,
        id: u64,
        node_addr: &str,
        blocking: bool,
        timeout: Duration,
    ) -> Result<u64, String> {
        let mut c = client(transport, addr, timeout)?;
        let req = pb::AddLearnerRequest { node: Some(pb::Node { id, addr: node_addr.to_string() }), blocking };
        match tokio::time::timeout(timeout, c.add_learner(req)).await {
            Err(_) => Err(format!("{addr}: no answer within {timeout:?}")),
            Ok(r) => r.map(|r| r.into_inner().log_id.map_or(0, |l| l.index)).map_err(|s| describe(addr, s)),
        }
    }

    /// Changes the voter set, through the leader at `addr` (joint consensus, then the new set).
    pub async fn change_membership(
        transport: Transport,
        addr: &str,
        voters: &[u64],
        retain: bool,
        timeout: Duration,
    ) -> Result<u64, String> {
        let mut c = client(transport, addr, timeout)?;
        let req = pb::ChangeMembershipRequest { voters: voters.to_vec(), retain };
        match tokio::time::timeout(timeout, c.change_membership(req)).await {
            Err(_) => Err(format!("{addr}: no answer within {timeout:?}")),
            Ok(r) => r.map(|r| r.into_inner().log_id.map_or(0, |l| l.index)).map_err(|s| describe(addr, s)),
        }
    }

    /// Initializes a cluster through `addr` with the given voters (id → address).
    pub async fn initialize(
        transport: Transport,
        addr: &str,
        members: &BTreeMap<u64, String>,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut c = client(transport, addr, timeout)?;
        let req = pb::InitializeRequest {
            members: members.iter().map(|(id, a)| pb::Node { id: *id, addr: a.clone() }).collect(),
        };
        match tokio::time::timeout(timeout, c.initialize(req)).await {
            Err(_) => Err(format!("{addr}: no answer within {timeout:?}")),
            Ok(r) => r.map(|_| ()).map_err(|s| describe(addr, s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_over_real_tcp_refuses_a_planted_bug() {
        let mut cfg = ClientConfig::new(vec!["127.0.0.1:1".into()], Transport::Tcp);
        cfg.planted_bug = Some(PlantedBug::ClientReportsTimeoutAsFailed);
        assert!(Client::new(cfg).is_err());
    }
}
