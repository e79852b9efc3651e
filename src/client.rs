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
use crate::types::{Op, Response};

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
    async fn call(&mut self, request: Call) -> Result<Reply, GaveUp> {
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
                Attempt::Done(r) => return Ok(r),
                Attempt::Fatal(reason) => return Err(GaveUp { reason, maybe_applied }),
                Attempt::Retry { reason, maybe_applied: m } => {
                    maybe_applied |= m;
                    last = reason;
                }
            }
            self.backoff(attempt).await;
        }
        let reason = format!("gave up after {:?}; last error: {last}", self.cfg.overall_timeout);
        Err(GaveUp { reason, maybe_applied })
    }

    async fn write(&mut self, op: Op) -> Result<Response, WriteError> {
        op.validate().map_err(WriteError::Failed)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        let cmd = convert::command_to_pb(&crate::types::Request { client_id: self.client_id, seq, op });
        match self.call(Call::Write(cmd)).await {
            Ok(Reply::Write(r)) => Ok(r),
            Ok(Reply::Get(_)) => unreachable!("a write is answered with a write reply"),
            Err(GaveUp { reason, maybe_applied: true })
                if self.cfg.planted_bug == Some(PlantedBug::ClientReportsTimeoutAsFailed) =>
            {
                Err(WriteError::Failed(reason))
            }
            Err(GaveUp { reason, maybe_applied: true }) => Err(WriteError::Unknown(reason)),
            Err(GaveUp { reason, maybe_applied: false }) => Err(WriteError::Failed(reason)),
        }
    }

    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<Response, WriteError> {
        self.write(Op::Put { key: key.to_vec(), value: value.to_vec() }).await
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

    /// A linearizable read, served by the leader after it confirms leadership with a quorum.
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Found>, ReadError> {
        if key.is_empty() {
            return Err(ReadError("key must not be empty".into()));
        }
        match self.call(Call::Get(pb::GetRequest { key: key.to_vec() })).await {
            Ok(Reply::Get(r)) => Ok(r.found.then_some(Found { value: r.value, mod_revision: r.mod_revision })),
            Ok(Reply::Write(_)) => unreachable!("a read is answered with a read reply"),
            Err(GaveUp { reason, .. }) => Err(ReadError(reason)),
        }
    }
}

/// One client request, sent unchanged on every attempt.
enum Call {
    Write(pb::Command),
    Get(pb::GetRequest),
}

enum Reply {
    Write(Response),
    Get(pb::GetResponse),
}

/// Why [`Client::call`] stopped trying; `maybe_applied` if any attempt may have taken effect.
struct GaveUp {
    reason: String,
    maybe_applied: bool,
}

impl Call {
    async fn send(&self, kv: &mut KvServiceClient<Channel>) -> Result<Reply, Status> {
        match self {
            Call::Write(cmd) => send_command(kv, cmd.clone()).await.map(Reply::Write),
            Call::Get(req) => kv.get(req.clone()).await.map(|r| Reply::Get(r.into_inner())),
        }
    }
}

async fn send_command(kv: &mut KvServiceClient<Channel>, cmd: pb::Command) -> Result<Response, Status> {
    let (client_id, seq) = (cmd.client_id, cmd.seq);
    let reply = match cmd.op {
        Some(pb::command::Op::Put(p)) => kv.put(pb::PutRequest { key: p.key, value: p.value, client_id, seq }).await,
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
