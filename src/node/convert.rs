//! Conversions between the protobuf wire types and openraft's types.
//!
//! Decoding is fallible: a peer or client can send anything, so a missing required field becomes a
//! [`tonic::Status::invalid_argument`], never a panic.

use std::collections::{BTreeMap, BTreeSet};

use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, VoteRequest, VoteResponse};
use openraft::{CommittedLeaderId, EntryPayload};
use tonic::Status;

use crate::pb;
use crate::types::{
    ApplyError, Compare, CompareOp, CompareTarget, Entry, KeyValue, LeaseId, LogId, Membership, Node, NodeId, Op,
    Request, Response, SnapshotMeta, StoredMembership, Txn, TxnOp, TxnOpResult, TypeConfig, Vote,
};

fn missing(field: &str) -> Status {
    Status::invalid_argument(format!("missing required field `{field}`"))
}

pub fn log_id_to_pb(l: &LogId) -> pb::LogId {
    pb::LogId { term: l.leader_id.term, leader_id: l.leader_id.node_id, index: l.index }
}

pub fn log_id_from_pb(l: &pb::LogId) -> LogId {
    LogId::new(CommittedLeaderId::new(l.term, l.leader_id), l.index)
}

pub fn opt_log_id_to_pb(l: &Option<LogId>) -> Option<pb::LogId> {
    l.as_ref().map(log_id_to_pb)
}

pub fn opt_log_id_from_pb(l: &Option<pb::LogId>) -> Option<LogId> {
    l.as_ref().map(log_id_from_pb)
}

pub fn vote_to_pb(v: &Vote) -> pb::Vote {
    pb::Vote { term: v.leader_id.term, node_id: v.leader_id.node_id, committed: v.committed }
}

pub fn vote_from_pb(v: Option<&pb::Vote>) -> Result<Vote, Status> {
    let v = v.ok_or_else(|| missing("vote"))?;
    Ok(if v.committed { Vote::new_committed(v.term, v.node_id) } else { Vote::new(v.term, v.node_id) })
}

pub fn membership_to_pb(m: &Membership) -> pb::Membership {
    pb::Membership {
        configs: m.get_joint_config().iter().map(|c| pb::VoterSet { ids: c.iter().copied().collect() }).collect(),
        nodes: m.nodes().map(|(id, n)| pb::Node { id: *id, addr: n.addr.clone() }).collect(),
    }
}

pub fn membership_from_pb(m: Option<&pb::Membership>) -> Result<Membership, Status> {
    let m = m.ok_or_else(|| missing("membership"))?;
    let configs: Vec<BTreeSet<NodeId>> = m.configs.iter().map(|c| c.ids.iter().copied().collect()).collect();
    let nodes: BTreeMap<NodeId, Node> = m.nodes.iter().map(|n| (n.id, Node::new(n.addr.clone()))).collect();
    for c in &configs {
        if let Some(id) = c.iter().find(|id| !nodes.contains_key(id)) {
            return Err(Status::invalid_argument(format!("membership names voter {id} without an address")));
        }
    }
    Ok(Membership::new(configs, nodes))
}

pub fn command_to_pb(r: &Request) -> pb::Command {
    let op = match &r.op {
        Op::Put { key, value, lease } => pb::command::Op::Put(put_to_pb(key, value, *lease)),
        Op::Delete { key } => pb::command::Op::Delete(pb::DeleteOp { key: key.clone() }),
        Op::Cas { key, expect_value, expect_revision, new_value } => pb::command::Op::Cas(pb::CasOp {
            key: key.clone(),
            expect_value: expect_value.clone().map(|value| pb::ExpectedValue { value }),
            expect_revision: *expect_revision,
            new_value: new_value.clone(),
        }),
        Op::Txn(txn) => pb::command::Op::Txn(pb::TxnOp {
            compares: txn.compares.iter().map(compare_to_pb).collect(),
            success: txn.success.iter().map(txn_op_to_pb).collect(),
            failure: txn.failure.iter().map(txn_op_to_pb).collect(),
        }),
        Op::LeaseGrant { ttl_ms } => pb::command::Op::LeaseGrant(pb::LeaseGrantOp { ttl_ms: *ttl_ms }),
        Op::LeaseRevoke { id, expired, term } => {
            pb::command::Op::LeaseRevoke(pb::LeaseRevokeOp { id: *id, expired: *expired, term: *term })
        }
        Op::LeaseCheckpoint { id, remaining_ms } => {
            pb::command::Op::LeaseCheckpoint(pb::LeaseCheckpointOp { id: *id, remaining_ms: *remaining_ms })
        }
        Op::Batch(requests) => {
            pb::command::Op::Batch(pb::CommandBatch { commands: requests.iter().map(command_to_pb).collect() })
        }
    };
    pb::Command { client_id: r.client_id, seq: r.seq, op: Some(op) }
}

pub fn command_from_pb(c: &pb::Command) -> Result<Request, Status> {
    let op = match c.op.as_ref().ok_or_else(|| missing("command.op"))? {
        pb::command::Op::Put(p) => Op::Put { key: p.key.clone(), value: p.value.clone(), lease: p.lease },
        pb::command::Op::Delete(d) => Op::Delete { key: d.key.clone() },
        pb::command::Op::Cas(c) => Op::Cas {
            key: c.key.clone(),
            expect_value: c.expect_value.as_ref().map(|e| e.value.clone()),
            expect_revision: c.expect_revision,
            new_value: c.new_value.clone(),
        },
        pb::command::Op::Txn(t) => Op::Txn(txn_from_pb(&t.compares, &t.success, &t.failure)?),
        pb::command::Op::LeaseGrant(g) => Op::LeaseGrant { ttl_ms: g.ttl_ms },
        pb::command::Op::LeaseRevoke(r) => Op::LeaseRevoke { id: r.id, expired: r.expired, term: r.term },
        pb::command::Op::LeaseCheckpoint(c) => Op::LeaseCheckpoint { id: c.id, remaining_ms: c.remaining_ms },
        pb::command::Op::Batch(b) => {
            let mut requests = Vec::with_capacity(b.commands.len());
            for c in &b.commands {
                if matches!(c.op, Some(pb::command::Op::Batch(_))) {
                    return Err(Status::invalid_argument("a batch cannot hold a batch"));
                }
                requests.push(command_from_pb(c)?);
            }
            Op::Batch(requests)
        }
    };
    Ok(Request { client_id: c.client_id, seq: c.seq, op })
}

fn put_to_pb(key: &[u8], value: &[u8], lease: LeaseId) -> pb::PutOp {
    pb::PutOp { key: key.to_vec(), value: value.to_vec(), lease }
}

pub fn compare_to_pb(c: &Compare) -> pb::Compare {
    use pb::compare::{Op as P, Target as T};
    let op = match c.op {
        CompareOp::Equal => P::Equal,
        CompareOp::NotEqual => P::NotEqual,
        CompareOp::Less => P::Less,
        CompareOp::Greater => P::Greater,
    };
    let target = match &c.target {
        CompareTarget::Value(v) => T::Value(v.clone()),
        CompareTarget::Version(n) => T::Version(*n),
        CompareTarget::CreateRevision(n) => T::CreateRevision(*n),
        CompareTarget::ModRevision(n) => T::ModRevision(*n),
        CompareTarget::Lease(n) => T::Lease(*n),
    };
    pb::Compare { key: c.key.clone(), op: op as i32, target: Some(target) }
}

pub fn txn_op_to_pb(op: &TxnOp) -> pb::RequestOp {
    let op = match op {
        TxnOp::Put { key, value, lease } => pb::request_op::Op::Put(put_to_pb(key, value, *lease)),
        TxnOp::Delete { key } => pb::request_op::Op::Delete(pb::DeleteOp { key: key.clone() }),
        TxnOp::Get { key } => pb::request_op::Op::Get(key.clone()),
    };
    pb::RequestOp { op: Some(op) }
}

/// Decodes a transaction, naming the compare or operation that is malformed.
pub fn txn_from_pb(
    compares: &[pb::Compare],
    success: &[pb::RequestOp],
    failure: &[pb::RequestOp],
) -> Result<Txn, Status> {
    use pb::compare::{Op as P, Target as T};
    let mut txn = Txn::default();
    for (i, c) in compares.iter().enumerate() {
        let op = match P::try_from(c.op) {
            Ok(P::Equal) => CompareOp::Equal,
            Ok(P::NotEqual) => CompareOp::NotEqual,
            Ok(P::Less) => CompareOp::Less,
            Ok(P::Greater) => CompareOp::Greater,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "compare {}: unknown operator {}; allowed: EQUAL, NOT_EQUAL, LESS, GREATER",
                    i + 1,
                    c.op
                )))
            }
        };
        let target = match c.target.as_ref() {
            Some(T::Value(v)) => CompareTarget::Value(v.clone()),
            Some(T::Version(n)) => CompareTarget::Version(*n),
            Some(T::CreateRevision(n)) => CompareTarget::CreateRevision(*n),
            Some(T::ModRevision(n)) => CompareTarget::ModRevision(*n),
            Some(T::Lease(n)) => CompareTarget::Lease(*n),
            None => {
                return Err(Status::invalid_argument(format!(
                    "compare {}: no target; set one of value, version, create_revision, mod_revision, lease",
                    i + 1
                )))
            }
        };
        txn.compares.push(Compare { key: c.key.clone(), op, target });
    }
    for (branch, ops, out) in [("success", success, &mut txn.success), ("failure", failure, &mut txn.failure)] {
        for (i, op) in ops.iter().enumerate() {
            out.push(match op.op.as_ref() {
                Some(pb::request_op::Op::Put(p)) => {
                    TxnOp::Put { key: p.key.clone(), value: p.value.clone(), lease: p.lease }
                }
                Some(pb::request_op::Op::Delete(d)) => TxnOp::Delete { key: d.key.clone() },
                Some(pb::request_op::Op::Get(key)) => TxnOp::Get { key: key.clone() },
                None => {
                    return Err(Status::invalid_argument(format!(
                        "{branch} op {}: empty; set one of put, delete, get",
                        i + 1
                    )))
                }
            });
        }
    }
    Ok(txn)
}

pub fn key_value_to_pb(kv: &KeyValue) -> pb::KeyValue {
    pb::KeyValue {
        key: kv.key.clone(),
        value: kv.value.clone(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}

pub fn key_value_from_pb(kv: &pb::KeyValue) -> KeyValue {
    KeyValue {
        key: kv.key.clone(),
        value: kv.value.clone(),
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        lease: kv.lease,
    }
}

pub fn txn_result_to_pb(r: &TxnOpResult) -> pb::TxnOpResult {
    use pb::txn_op_result::Kind;
    let (kind, kv) = match r {
        TxnOpResult::Put { prev } => (Kind::Put, prev),
        TxnOpResult::Delete { prev } => (Kind::Delete, prev),
        TxnOpResult::Get { found } => (Kind::Get, found),
    };
    pb::TxnOpResult { kind: kind as i32, kv: kv.as_ref().map(key_value_to_pb) }
}

pub fn txn_result_from_pb(r: &pb::TxnOpResult) -> TxnOpResult {
    use pb::txn_op_result::Kind;
    let kv = r.kv.as_ref().map(key_value_from_pb);
    match Kind::try_from(r.kind) {
        Ok(Kind::Put) => TxnOpResult::Put { prev: kv },
        Ok(Kind::Delete) => TxnOpResult::Delete { prev: kv },
        Ok(Kind::Get) | Err(_) => TxnOpResult::Get { found: kv },
    }
}

pub fn response_to_pb(r: &Response) -> pb::CommandResult {
    pb::CommandResult {
        revision: r.revision,
        succeeded: r.succeeded,
        prev_value: r.prev_value.clone(),
        prev_revision: r.prev_revision,
        results: r.results.iter().map(txn_result_to_pb).collect(),
        lease: r.lease,
        ttl_ms: r.ttl_ms,
        lease_not_found: r.error.as_ref().map(|ApplyError::LeaseNotFound(id)| *id),
    }
}

pub fn response_from_pb(r: &pb::CommandResult) -> Response {
    Response {
        revision: r.revision,
        succeeded: r.succeeded,
        prev_value: r.prev_value.clone(),
        prev_revision: r.prev_revision,
        results: r.results.iter().map(txn_result_from_pb).collect(),
        lease: r.lease,
        ttl_ms: r.ttl_ms,
        error: r.lease_not_found.map(ApplyError::LeaseNotFound),
        batch: Vec::new(),
    }
}

fn entry_to_pb(e: &Entry) -> pb::Entry {
    let payload = match &e.payload {
        EntryPayload::Blank => pb::entry::Payload::Blank(pb::Blank {}),
        EntryPayload::Normal(r) => pb::entry::Payload::Normal(command_to_pb(r)),
        EntryPayload::Membership(m) => pb::entry::Payload::Membership(membership_to_pb(m)),
    };
    pb::Entry { log_id: Some(log_id_to_pb(&e.log_id)), payload: Some(payload) }
}

fn entry_from_pb(e: &pb::Entry) -> Result<Entry, Status> {
    let log_id = log_id_from_pb(e.log_id.as_ref().ok_or_else(|| missing("entry.log_id"))?);
    let payload = match e.payload.as_ref().ok_or_else(|| missing("entry.payload"))? {
        pb::entry::Payload::Blank(_) => EntryPayload::Blank,
        pb::entry::Payload::Normal(c) => EntryPayload::Normal(command_from_pb(c)?),
        pb::entry::Payload::Membership(m) => EntryPayload::Membership(membership_from_pb(Some(m))?),
    };
    Ok(Entry { log_id, payload })
}

pub fn append_to_pb(r: &AppendEntriesRequest<TypeConfig>) -> pb::AppendEntriesRequest {
    pb::AppendEntriesRequest {
        vote: Some(vote_to_pb(&r.vote)),
        prev_log_id: opt_log_id_to_pb(&r.prev_log_id),
        entries: r.entries.iter().map(entry_to_pb).collect(),
        leader_commit: opt_log_id_to_pb(&r.leader_commit),
    }
}

pub fn append_from_pb(r: &pb::AppendEntriesRequest) -> Result<AppendEntriesRequest<TypeConfig>, Status> {
    Ok(AppendEntriesRequest {
        vote: vote_from_pb(r.vote.as_ref())?,
        prev_log_id: opt_log_id_from_pb(&r.prev_log_id),
        entries: r.entries.iter().map(entry_from_pb).collect::<Result<_, _>>()?,
        leader_commit: opt_log_id_from_pb(&r.leader_commit),
    })
}

pub fn append_resp_to_pb(r: &AppendEntriesResponse<NodeId>) -> pb::AppendEntriesResponse {
    use pb::append_entries_response::Result as R;
    let result = match r {
        AppendEntriesResponse::Success => R::Success(pb::Blank {}),
        AppendEntriesResponse::PartialSuccess(Some(l)) => R::PartialSuccess(log_id_to_pb(l)),
        AppendEntriesResponse::PartialSuccess(None) => R::PartialSuccessNone(pb::Blank {}),
        AppendEntriesResponse::Conflict => R::Conflict(pb::Blank {}),
        AppendEntriesResponse::HigherVote(v) => R::HigherVote(vote_to_pb(v)),
    };
    pb::AppendEntriesResponse { result: Some(result) }
}

pub fn append_resp_from_pb(r: &pb::AppendEntriesResponse) -> Result<AppendEntriesResponse<NodeId>, Status> {
    use pb::append_entries_response::Result as R;
    Ok(match r.result.as_ref().ok_or_else(|| missing("result"))? {
        R::Success(_) => AppendEntriesResponse::Success,
        R::PartialSuccess(l) => AppendEntriesResponse::PartialSuccess(Some(log_id_from_pb(l))),
        R::PartialSuccessNone(_) => AppendEntriesResponse::PartialSuccess(None),
        R::Conflict(_) => AppendEntriesResponse::Conflict,
        R::HigherVote(v) => AppendEntriesResponse::HigherVote(vote_from_pb(Some(v))?),
    })
}

pub fn vote_req_to_pb(r: &VoteRequest<NodeId>) -> pb::VoteRequest {
    pb::VoteRequest { vote: Some(vote_to_pb(&r.vote)), last_log_id: opt_log_id_to_pb(&r.last_log_id) }
}

pub fn vote_req_from_pb(r: &pb::VoteRequest) -> Result<VoteRequest<NodeId>, Status> {
    Ok(VoteRequest { vote: vote_from_pb(r.vote.as_ref())?, last_log_id: opt_log_id_from_pb(&r.last_log_id) })
}

pub fn vote_resp_to_pb(r: &VoteResponse<NodeId>) -> pb::VoteResponse {
    pb::VoteResponse {
        vote: Some(vote_to_pb(&r.vote)),
        vote_granted: r.vote_granted,
        last_log_id: opt_log_id_to_pb(&r.last_log_id),
    }
}

pub fn vote_resp_from_pb(r: &pb::VoteResponse) -> Result<VoteResponse<NodeId>, Status> {
    Ok(VoteResponse {
        vote: vote_from_pb(r.vote.as_ref())?,
        vote_granted: r.vote_granted,
        last_log_id: opt_log_id_from_pb(&r.last_log_id),
    })
}

pub fn snapshot_meta_to_pb(m: &SnapshotMeta) -> pb::SnapshotMeta {
    pb::SnapshotMeta {
        last_log_id: opt_log_id_to_pb(&m.last_log_id),
        last_membership: Some(pb::StoredMembership {
            log_id: opt_log_id_to_pb(m.last_membership.log_id()),
            membership: Some(membership_to_pb(m.last_membership.membership())),
        }),
        snapshot_id: m.snapshot_id.clone(),
    }
}

pub fn snapshot_meta_from_pb(m: Option<&pb::SnapshotMeta>) -> Result<SnapshotMeta, Status> {
    let m = m.ok_or_else(|| missing("meta"))?;
    let sm = m.last_membership.as_ref().ok_or_else(|| missing("meta.last_membership"))?;
    Ok(SnapshotMeta {
        last_log_id: opt_log_id_from_pb(&m.last_log_id),
        last_membership: StoredMembership::new(
            opt_log_id_from_pb(&sm.log_id),
            membership_from_pb(sm.membership.as_ref())?,
        ),
        snapshot_id: m.snapshot_id.clone(),
    })
}
