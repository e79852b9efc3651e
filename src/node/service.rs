//! The gRPC services a node serves: Raft peer RPCs, the client key-value API and admin calls.
//!
//! Every client-facing call runs under the node's request deadline: a leader cut off from its
//! quorum cannot commit or confirm its leadership, and must answer `DeadlineExceeded` (outcome
//! unknown for a write) rather than hang or, worse, answer a read from its local state.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, ForwardToLeader, RaftError};
use openraft::ServerState;
use prost::Message;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::convert;
use crate::pb;
use crate::store::KvReader;
use crate::types::{Node, NodeId, Op, Raft, Request, Snapshot, SnapshotData};

/// Shared by the three services of one node.
#[derive(Clone)]
pub struct Services {
    pub id: NodeId,
    pub addr: String,
    pub raft: Raft,
    pub reader: KvReader,
    /// Deadline for one client request (a write's commit, a read's leadership check).
    pub request_timeout: Duration,
    pub planted_bug: Option<super::PlantedBug>,
}

/// Builds the status a non-leader answers with: the leader hint travels as a typed protobuf
/// message in the status details, so clients redirect without parsing text.
pub fn not_leader(f: &ForwardToLeader<NodeId, Node>) -> Status {
    match (f.leader_id, &f.leader_node) {
        (Some(id), Some(node)) => {
            let hint = pb::LeaderHint { leader_id: id, leader_addr: node.addr.clone() };
            Status::with_details(
                tonic::Code::FailedPrecondition,
                format!("not the leader; the leader is node {id} at {}", node.addr),
                hint.encode_to_vec().into(),
            )
        }
        _ => Status::unavailable("not the leader, and no leader is known (election in progress?)"),
    }
}

/// Decodes the leader hint of a [`not_leader`] status.
pub fn leader_hint(status: &Status) -> Option<pb::LeaderHint> {
    if status.code() != tonic::Code::FailedPrecondition || status.details().is_empty() {
        return None;
    }
    pb::LeaderHint::decode(status.details()).ok()
}

impl Services {
    async fn deadline<T>(&self, what: &str, f: impl Future<Output = Result<T, Status>>) -> Result<T, Status> {
        match tokio::time::timeout(self.request_timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(Status::deadline_exceeded(format!(
                "{what} did not complete within {:?} (node {} may be cut off from its quorum); the outcome is unknown",
                self.request_timeout, self.id
            ))),
        }
    }

    async fn write(&self, client_id: u64, seq: u64, op: Op) -> Result<GrpcResponse<pb::WriteResponse>, Status> {
        op.validate().map_err(Status::invalid_argument)?;
        let req = Request { client_id, seq, op };
        if self.planted_bug == Some(super::PlantedBug::AckBeforeMajority)
            && self.raft.metrics().borrow().current_leader == Some(self.id)
        {
            return self.deadline("the write", self.ack_after_local_append(req)).await;
        }
        self.deadline("the write", async {
            match self.raft.client_write(req).await {
                Ok(resp) => {
                    Ok(GrpcResponse::new(pb::WriteResponse { result: Some(convert::response_to_pb(&resp.data)) }))
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(not_leader(&f)),
                Err(e) => Err(Status::unavailable(e.to_string())),
            }
        })
        .await
    }

    /// The planted bug [`super::PlantedBug::AckBeforeMajority`]: propose the write in the
    /// background and answer success once this node's own log has grown past where it was,
    /// inventing the revision instead of waiting for the state machine's result.
    async fn ack_after_local_append(&self, req: Request) -> Result<GrpcResponse<pb::WriteResponse>, Status> {
        let mut metrics = self.raft.metrics();
        let before = metrics.borrow().last_log_index;
        let raft = self.raft.clone();
        tokio::spawn(async move {
            let _ = raft.client_write(req).await;
        });
        let appended = metrics
            .wait_for(|m| m.last_log_index > before)
            .await
            .map_err(|_| Status::unavailable("Raft stopped"))?
            .last_log_index
            .unwrap_or_default();
        let resp = crate::types::Response { revision: appended, succeeded: true, prev_value: None, prev_revision: 0 };
        Ok(GrpcResponse::new(pb::WriteResponse { result: Some(convert::response_to_pb(&resp)) }))
    }
}

#[tonic::async_trait]
impl pb::kv_service_server::KvService for Services {
    async fn put(&self, r: GrpcRequest<pb::PutRequest>) -> Result<GrpcResponse<pb::WriteResponse>, Status> {
        let r = r.into_inner();
        self.write(r.client_id, r.seq, Op::Put { key: r.key, value: r.value }).await
    }

    async fn delete(&self, r: GrpcRequest<pb::DeleteRequest>) -> Result<GrpcResponse<pb::WriteResponse>, Status> {
        let r = r.into_inner();
        self.write(r.client_id, r.seq, Op::Delete { key: r.key }).await
    }

    async fn compare_and_swap(
        &self,
        r: GrpcRequest<pb::CompareAndSwapRequest>,
    ) -> Result<GrpcResponse<pb::WriteResponse>, Status> {
        let r = r.into_inner();
        if r.expect_value.is_none() && r.expect_revision.is_none() {
            return Err(Status::invalid_argument("compare-and-swap needs expect_value and/or expect_revision"));
        }
        let op = Op::Cas {
            key: r.key,
            expect_value: r.expect_value.map(|e| e.value),
            expect_revision: r.expect_revision,
            new_value: r.new_value,
        };
        self.write(r.client_id, r.seq, op).await
    }

    /// A linearizable read: confirm leadership with a quorum (read-index), wait until the state
    /// machine has applied up to that index, then read.
    async fn get(&self, r: GrpcRequest<pb::GetRequest>) -> Result<GrpcResponse<pb::GetResponse>, Status> {
        let key = r.into_inner().key;
        if key.is_empty() {
            return Err(Status::invalid_argument("key must not be empty"));
        }
        self.deadline("the linearizable read", async {
            let confirm = async {
                if self.planted_bug == Some(super::PlantedBug::StaleLocalReads) {
                    let m = self.raft.metrics().borrow().clone();
                    if m.current_leader == Some(self.id) {
                        return Ok(None);
                    }
                }
                self.raft.ensure_linearizable().await
            };
            match confirm.await {
                Ok(_) => {}
                Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => return Err(not_leader(&f)),
                Err(e) => return Err(Status::unavailable(e.to_string())),
            }
            let found = self.reader.get(&key).map_err(|e| Status::internal(e.to_string()))?;
            let revision = self.reader.applied_index();
            Ok(GrpcResponse::new(match found {
                Some((value, mod_revision)) => pb::GetResponse { found: true, value, mod_revision, revision },
                None => pb::GetResponse { found: false, value: vec![], mod_revision: 0, revision },
            }))
        })
        .await
    }
}

#[tonic::async_trait]
impl pb::raft_service_server::RaftService for Services {
    async fn append_entries(
        &self,
        r: GrpcRequest<pb::AppendEntriesRequest>,
    ) -> Result<GrpcResponse<pb::AppendEntriesResponse>, Status> {
        let req = convert::append_from_pb(r.get_ref())?;
        let resp = self.raft.append_entries(req).await.map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(GrpcResponse::new(convert::append_resp_to_pb(&resp)))
    }

    async fn vote(&self, r: GrpcRequest<pb::VoteRequest>) -> Result<GrpcResponse<pb::VoteResponse>, Status> {
        let req = convert::vote_req_from_pb(r.get_ref())?;
        let resp = self.raft.vote(req).await.map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(GrpcResponse::new(convert::vote_resp_to_pb(&resp)))
    }

    async fn full_snapshot(
        &self,
        r: GrpcRequest<pb::FullSnapshotRequest>,
    ) -> Result<GrpcResponse<pb::FullSnapshotResponse>, Status> {
        let r = r.into_inner();
        let vote = convert::vote_from_pb(r.vote.as_ref())?;
        let meta = convert::snapshot_meta_from_pb(r.meta.as_ref())?;
        let snapshot = Snapshot { meta, snapshot: Box::new(SnapshotData(r.data)) };
        let resp =
            self.raft.install_full_snapshot(vote, snapshot).await.map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(GrpcResponse::new(pb::FullSnapshotResponse { vote: Some(convert::vote_to_pb(&resp.vote)) }))
    }
}

fn role_name(s: ServerState) -> &'static str {
    match s {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

fn membership_err<E: std::fmt::Display>(e: RaftError<NodeId, E>) -> Status {
    match e {
        RaftError::APIError(e) => Status::failed_precondition(e.to_string()),
        RaftError::Fatal(f) => Status::unavailable(f.to_string()),
    }
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for Services {
    async fn initialize(
        &self,
        r: GrpcRequest<pb::InitializeRequest>,
    ) -> Result<GrpcResponse<pb::InitializeResponse>, Status> {
        let members: BTreeMap<NodeId, Node> =
            r.into_inner().members.into_iter().map(|n| (n.id, Node::new(n.addr))).collect();
        if members.is_empty() {
            return Err(Status::invalid_argument("initialize needs at least one member"));
        }
        self.raft.initialize(members).await.map_err(|e| match e {
            RaftError::APIError(e) => Status::already_exists(e.to_string()),
            RaftError::Fatal(f) => Status::unavailable(f.to_string()),
        })?;
        Ok(GrpcResponse::new(pb::InitializeResponse {}))
    }

    async fn add_learner(
        &self,
        r: GrpcRequest<pb::AddLearnerRequest>,
    ) -> Result<GrpcResponse<pb::MembershipResponse>, Status> {
        let r = r.into_inner();
        let node = r.node.ok_or_else(|| Status::invalid_argument("missing required field `node`"))?;
        let resp = self.deadline("add-learner", async {
            self.raft.add_learner(node.id, Node::new(node.addr), r.blocking).await.map_err(membership_err)
        });
        let resp = resp.await?;
        Ok(GrpcResponse::new(pb::MembershipResponse { log_id: Some(convert::log_id_to_pb(&resp.log_id)) }))
    }

    async fn change_membership(
        &self,
        r: GrpcRequest<pb::ChangeMembershipRequest>,
    ) -> Result<GrpcResponse<pb::MembershipResponse>, Status> {
        let r = r.into_inner();
        let voters: BTreeSet<NodeId> = r.voters.into_iter().collect();
        if voters.is_empty() {
            return Err(Status::invalid_argument("a membership needs at least one voter"));
        }
        let resp = self
            .deadline("change-membership", async {
                self.raft.change_membership(voters, r.retain).await.map_err(membership_err)
            })
            .await?;
        Ok(GrpcResponse::new(pb::MembershipResponse { log_id: Some(convert::log_id_to_pb(&resp.log_id)) }))
    }

    async fn status(&self, _r: GrpcRequest<pb::StatusRequest>) -> Result<GrpcResponse<pb::StatusResponse>, Status> {
        let m = self.raft.metrics().borrow().clone();
        // openraft 0.9's metrics carry no committed index; the core's state does.
        let committed = self.raft.with_raft_state(|st| st.committed).await.ok().flatten();
        let membership = m.membership_config.membership();
        let leader_addr =
            m.current_leader.and_then(|l| membership.get_node(&l).map(|n| n.addr.clone())).unwrap_or_default();
        Ok(GrpcResponse::new(pb::StatusResponse {
            id: self.id,
            addr: self.addr.clone(),
            role: role_name(m.state).to_string(),
            current_term: m.current_term,
            vote: Some(convert::vote_to_pb(&m.vote)),
            leader_id: m.current_leader.unwrap_or(0),
            leader_addr,
            last_log_index: m.last_log_index,
            committed: convert::opt_log_id_to_pb(&committed),
            applied: convert::opt_log_id_to_pb(&m.last_applied),
            membership: Some(convert::membership_to_pb(membership)),
            snapshot: convert::opt_log_id_to_pb(&m.snapshot),
            purged: convert::opt_log_id_to_pb(&m.purged),
        }))
    }
}
