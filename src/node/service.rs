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
use super::lease_keeper::{ProposalOrder, SharedLeases};
use crate::lease::LeaseRefusal;
use crate::pb;
use crate::store::KvReader;
use crate::types::{ApplyError, Node, NodeId, Op, Raft, Request, Response, Snapshot, SnapshotData, TxnOpResult};

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
    /// The leader's lease deadlines, shared with the lease keeper.
    pub leases: SharedLeases,
    pub lease_proposals: ProposalOrder,
    /// How often a KeepAlive for a lease whose revoke is on its way looks again.
    pub lease_poll: Duration,
    /// The shortest lease a client may be granted: 1.5 x the maximum election timeout.
    pub min_lease_ttl: Duration,
    /// The vote storage held when the node started. Until openraft has loaded it, its metrics still show the
    /// initial vote (term 0), and `Status` answers `UNAVAILABLE` rather than a vote the node never held.
    pub stored_vote: Option<crate::types::Vote>,
    /// The log store's I/O counters, for `Status`.
    pub log_io: crate::store::LogIoReader,
    /// Where single-key writes wait to share an entry (see [`super::batcher`]).
    pub batcher: super::batcher::Batcher,
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

/// Replicates `request` and returns what applying it did, or the status a client sees: [`not_leader`] on a
/// follower, `UNAVAILABLE` for any other Raft error. Used by direct proposals and the batcher alike.
pub async fn client_write(raft: &Raft, request: Request) -> Result<Response, Status> {
    match raft.client_write(request).await {
        Ok(resp) => Ok(resp.data),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(not_leader(&f)),
        Err(e) => Err(Status::unavailable(e.to_string())),
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
        let resp = self.propose(client_id, seq, op).await?;
        Ok(GrpcResponse::new(pb::WriteResponse { result: Some(convert::response_to_pb(&resp)) }))
    }

    /// Validates a client command, replicates it and returns what applying it did. A command
    /// that committed but could not apply (its lease is not live) is `NOT_FOUND`: certainly not
    /// applied, and a retry of the same `(client_id, seq)` gets the same answer.
    async fn propose(&self, client_id: u64, seq: u64, op: Op) -> Result<Response, Status> {
        op.validate().map_err(Status::invalid_argument)?;
        if let Op::LeaseGrant { ttl_ms } = op {
            if Duration::from_millis(ttl_ms) < self.min_lease_ttl {
                return Err(Status::invalid_argument(format!(
                    "lease TTL {ttl_ms} ms is below the minimum {} ms (1.5 x the maximum election timeout)",
                    self.min_lease_ttl.as_millis()
                )));
            }
        }
        if matches!(op, Op::LeaseCheckpoint { .. } | Op::LeaseRevoke { expired: true, .. }) {
            return Err(Status::invalid_argument("lease checkpoints and expiries are proposed by the leader only"));
        }
        let req = Request { client_id, seq, op };
        if self.planted_bug == Some(super::PlantedBug::AckBeforeMajority)
            && self.raft.metrics().borrow().current_leader == Some(self.id)
        {
            return self.deadline("the write", self.ack_after_local_append(req)).await;
        }
        let resp = self
            .deadline("the write", async {
                if super::batcher::Batcher::batches(&req.op) {
                    return self.batcher.propose(req).await;
                }
                client_write(&self.raft, req).await
            })
            .await?;
        match &resp.error {
            Some(ApplyError::LeaseNotFound(_)) => {
                Err(Status::not_found(resp.error.as_ref().map(|e| e.to_string()).unwrap_or_default()))
            }
            None => Ok(resp),
        }
    }

    /// Confirms with a quorum that this node still leads (a read-index) and waits until the
    /// state machine has applied up to the read index; returns the read index.
    async fn confirm_leadership(&self) -> Result<u64, Status> {
        match self.raft.ensure_linearizable().await {
            Ok(read) => Ok(read.map_or(0, |l| l.index)),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(not_leader(&f)),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }

    fn believes_it_leads(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id)
    }

    fn lock_leases(&self) -> std::sync::MutexGuard<'_, crate::lease::LeaderLeases> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the leader's lease table about live lease `id`, as the leader of `term` (confirmed by a read-index
    /// just before). A lease that ran out but whose revoke has not applied is neither renewable nor gone: wait (within
    /// the caller's deadline) until the revoke applies (`NOT_FOUND`), or answer `UNAVAILABLE` once this node no
    /// longer leads `term` (a revoke lost with a leader change leaves the lease live under the next leader).
    async fn ask_leases<T>(
        &self,
        id: u64,
        term: u64,
        mut ask: impl FnMut(
            &mut crate::lease::LeaderLeases,
            tokio::time::Instant,
            &crate::store::kv::LeaseRecord,
        ) -> Result<T, LeaseRefusal>,
    ) -> Result<T, Status> {
        loop {
            let record = self.reader.lease(id).ok_or_else(|| Self::lease_refused(id, LeaseRefusal::NotFound))?;
            let answer = {
                let mut leases = self.lock_leases();
                if leases.term() != Some(term) {
                    Err(LeaseRefusal::NotReady)
                } else {
                    ask(&mut leases, tokio::time::Instant::now(), &record)
                }
            };
            match answer {
                Err(LeaseRefusal::Expiring) if self.raft.metrics().borrow().current_term == term => {
                    tokio::time::sleep(self.lease_poll).await;
                }
                Err(LeaseRefusal::Expiring) => return Err(Self::lease_refused(id, LeaseRefusal::NotReady)),
                other => return other.map_err(|refusal| Self::lease_refused(id, refusal)),
            }
        }
    }

    fn lease_refused(id: u64, refusal: LeaseRefusal) -> Status {
        match refusal {
            LeaseRefusal::NotFound => {
                Status::not_found(format!("lease {id} not found (never granted, revoked or expired)"))
            }
            LeaseRefusal::Expiring => {
                Status::unavailable(format!("lease {id} ran out; its revoke has not applied yet"))
            }
            LeaseRefusal::NotReady => {
                Status::unavailable("this leader has not taken over the leases yet (its first commit has not applied)")
            }
        }
    }

    /// The planted bug [`super::PlantedBug::AckBeforeMajority`]: propose the write in the
    /// background and answer success once this node's own log has grown past where it was,
    /// inventing the revision instead of waiting for the state machine's result.
    async fn ack_after_local_append(&self, req: Request) -> Result<Response, Status> {
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
        Ok(Response { revision: appended, succeeded: true, ..Response::default() })
    }
}

#[tonic::async_trait]
impl pb::kv_service_server::KvService for Services {
    async fn put(&self, r: GrpcRequest<pb::PutRequest>) -> Result<GrpcResponse<pb::WriteResponse>, Status> {
        let r = r.into_inner();
        self.write(r.client_id, r.seq, Op::Put { key: r.key, value: r.value, lease: r.lease }).await
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
    /// machine has applied up to that index, then read. A serializable read skips all that and
    /// answers from this member's applied state, saying so.
    async fn get(&self, r: GrpcRequest<pb::GetRequest>) -> Result<GrpcResponse<pb::GetResponse>, Status> {
        let r = r.into_inner();
        if r.key.is_empty() {
            return Err(Status::invalid_argument("key must not be empty"));
        }
        if r.serializable {
            return self.read_local(&r.key, true).map(GrpcResponse::new);
        }
        self.deadline("the linearizable read", async {
            if self.planted_bug == Some(super::PlantedBug::StaleLocalReads) && self.believes_it_leads() {
                return self.read_local(&r.key, false);
            }
            self.confirm_leadership().await?;
            self.read_local(&r.key, false)
        })
        .await
        .map(GrpcResponse::new)
    }

    async fn txn(&self, r: GrpcRequest<pb::TxnRequest>) -> Result<GrpcResponse<pb::TxnResponse>, Status> {
        let r = r.into_inner();
        let txn = convert::txn_from_pb(&r.compares, &r.success, &r.failure)?;
        let resp = self.propose(r.client_id, r.seq, Op::Txn(txn)).await?;
        Ok(GrpcResponse::new(pb::TxnResponse {
            revision: resp.revision,
            succeeded: resp.succeeded,
            results: resp.results.iter().map(convert::txn_result_to_pb).collect(),
        }))
    }

    async fn lease_grant(
        &self,
        r: GrpcRequest<pb::LeaseGrantRequest>,
    ) -> Result<GrpcResponse<pb::LeaseGrantResponse>, Status> {
        let r = r.into_inner();
        let resp = self.propose(r.client_id, r.seq, Op::LeaseGrant { ttl_ms: r.ttl_ms }).await?;
        Ok(GrpcResponse::new(pb::LeaseGrantResponse { id: resp.lease, ttl_ms: resp.ttl_ms }))
    }

    async fn lease_revoke(
        &self,
        r: GrpcRequest<pb::LeaseRevokeRequest>,
    ) -> Result<GrpcResponse<pb::LeaseRevokeResponse>, Status> {
        let r = r.into_inner();
        let resp = self.propose(r.client_id, r.seq, Op::LeaseRevoke { id: r.id, expired: false, term: 0 }).await?;
        let deleted_keys = resp
            .results
            .iter()
            .filter_map(|res| match res {
                TxnOpResult::Delete { prev: Some(kv) } => Some(kv.key.clone()),
                _ => None,
            })
            .collect();
        Ok(GrpcResponse::new(pb::LeaseRevokeResponse { revision: resp.revision, deleted_keys }))
    }

    /// Renews a lease. Only a leader that still leads may: it confirms its leadership with a
    /// read-index first (openraft 0.9 has no CheckQuorum, so an isolated leader still calls itself
    /// leader) and answers once the state machine has applied up to that index.
    async fn lease_keep_alive(
        &self,
        r: GrpcRequest<pb::LeaseKeepAliveRequest>,
    ) -> Result<GrpcResponse<pb::LeaseKeepAliveResponse>, Status> {
        let id = r.into_inner().id;
        if id == 0 {
            return Err(Status::invalid_argument("lease id 0 means \"no lease\"; name a granted lease"));
        }
        self.deadline("the keep-alive", async {
            let read_index =
                if self.planted_bug == Some(super::PlantedBug::KeepAliveWithoutReadIndex) && self.believes_it_leads() {
                    self.reader.applied_index()
                } else {
                    self.confirm_leadership().await?
                };
            let term = self.raft.metrics().borrow().current_term;
            // The state machine has applied up to the read index: a lease it does not hold is not live,
            // whether or not this leader has taken over the leases yet.
            let record = self.reader.lease(id).ok_or_else(|| Self::lease_refused(id, LeaseRefusal::NotFound))?;
            if record.remaining_ms > 0 || self.lock_leases().is_unsettled(id) {
                // A checkpoint holds (or may yet land with) an older remainder: clear it through Raft before
                // promising the full TTL, or a new leader would restart the lease from that remainder (etcd does
                // the same). Ordered with the keeper's checkpoints, so a clear never overtakes one.
                let _order = self.lease_proposals.lock().await;
                let clear = Request { client_id: 0, seq: 0, op: Op::LeaseCheckpoint { id, remaining_ms: 0 } };
                self.raft.client_write(clear).await.map_err(|e| Status::unavailable(e.to_string()))?;
                self.lock_leases().settle(id);
            }
            let ttl = self.ask_leases(id, term, |leases, now, record| leases.renew(id, now, Some(record))).await?;
            Ok(GrpcResponse::new(pb::LeaseKeepAliveResponse { id, ttl_ms: ttl.as_millis() as u64, read_index }))
        })
        .await
    }

    async fn lease_time_to_live(
        &self,
        r: GrpcRequest<pb::LeaseTimeToLiveRequest>,
    ) -> Result<GrpcResponse<pb::LeaseTimeToLiveResponse>, Status> {
        let r = r.into_inner();
        if r.id == 0 {
            return Err(Status::invalid_argument("lease id 0 means \"no lease\"; name a granted lease"));
        }
        self.deadline("the time-to-live call", async {
            self.confirm_leadership().await?;
            let term = self.raft.metrics().borrow().current_term;
            let (remaining, granted) =
                self.ask_leases(r.id, term, |leases, now, record| leases.remaining(r.id, now, Some(record))).await?;
            let keys = if r.keys {
                self.reader.lease_keys(r.id).map_err(|e| Status::internal(e.to_string()))?
            } else {
                Vec::new()
            };
            Ok(GrpcResponse::new(pb::LeaseTimeToLiveResponse {
                id: r.id,
                ttl_ms: remaining.as_millis() as u64,
                granted_ttl_ms: granted.as_millis() as u64,
                keys,
            }))
        })
        .await
    }
}

impl Services {
    /// Reads a key from this member's applied state.
    fn read_local(&self, key: &[u8], serializable: bool) -> Result<pb::GetResponse, Status> {
        let found = self.reader.record(key).map_err(|e| Status::internal(e.to_string()))?;
        let revision = self.reader.applied_index();
        let mut resp = pb::GetResponse { revision, serializable, member: self.id, ..Default::default() };
        if let Some(v) = found {
            resp.found = true;
            resp.value = v.value;
            resp.mod_revision = v.mod_revision;
            resp.create_revision = v.create_revision;
            resp.version = v.version;
            resp.lease = v.lease;
        }
        Ok(resp)
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

/// Refuses `store::ABDICATED` as a node's id: a restarted leader's vote names it for the term it gave up.
fn reserved_ids<'a>(ids: impl IntoIterator<Item = &'a NodeId>) -> Result<(), Status> {
    match ids.into_iter().find(|id| **id == crate::store::ABDICATED) {
        Some(id) => Err(Status::invalid_argument(format!(
            "node id {id} is reserved (a restarted leader's vote names it); use a smaller id"
        ))),
        None => Ok(()),
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
        reserved_ids(members.keys())?;
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
        reserved_ids([&node.id])?;
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
        reserved_ids(&voters)?;
        let resp = self
            .deadline("change-membership", async {
                self.raft.change_membership(voters, r.retain).await.map_err(membership_err)
            })
            .await?;
        Ok(GrpcResponse::new(pb::MembershipResponse { log_id: Some(convert::log_id_to_pb(&resp.log_id)) }))
    }

    async fn status(&self, _r: GrpcRequest<pb::StatusRequest>) -> Result<GrpcResponse<pb::StatusResponse>, Status> {
        let m = self.raft.metrics().borrow().clone();
        if self.stored_vote.as_ref().is_some_and(|stored| m.vote.partial_cmp(stored) == Some(std::cmp::Ordering::Less))
        {
            return Err(Status::unavailable(format!(
                "node {} is starting: Raft has not loaded its state yet",
                self.id
            )));
        }
        // openraft 0.9's metrics carry no committed index; the core's state does.
        let committed = self.raft.with_raft_state(|st| st.committed).await.ok().flatten();
        let membership = m.membership_config.membership();
        let io = self.log_io.read();
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
            log_appends: io.appends,
            log_entries: io.entries,
            log_flushes: io.flushes,
            log_early_appends: io.early,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::reserved_ids;
    use crate::store::ABDICATED;

    #[test]
    fn the_abdicated_id_is_refused_as_a_members_id() {
        assert!(reserved_ids(&[1, 2, 3]).is_ok());
        let refused = reserved_ids(&[1, ABDICATED]).expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(refused.message().contains("reserved"), "{}", refused.message());
    }
}
