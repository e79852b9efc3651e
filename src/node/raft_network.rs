//! openraft's outgoing RPCs, sent over gRPC through the network seam.
//!
//! Error mapping is what makes openraft's backoff work: a peer that cannot be reached
//! (`Unavailable`, a refused or reset connection) is [`Unreachable`], so openraft sleeps before
//! retrying; a deadline that passes is a [`Timeout`]; anything else is a [`NetworkError`].

use std::future::Future;
use std::time::Duration;

use openraft::error::{
    Fatal, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse};
use tonic::transport::Channel;

use super::convert;
use crate::net::{self, Deadlines, Transport};
use crate::pb;
use crate::pb::raft_service_client::RaftServiceClient;
use crate::store::FlushGate;
use crate::types::{Node, NodeId, Snapshot, TypeConfig, Vote};

/// Largest gRPC message a node sends or accepts: a full snapshot travels as one message.
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024 * 1024;

/// Creates one [`PeerClient`] per target node.
#[derive(Clone)]
pub struct Network {
    pub id: NodeId,
    /// Holds a follower's acknowledgement until this node's own log is durable as far: a leader acknowledges its
    /// own proposals before their flush (see `store::leader_flush`).
    pub flush_gate: FlushGate,
    pub transport: Transport,
    /// Deadline for one append-entries or vote RPC.
    pub rpc_timeout: Duration,
    /// Deadline for shipping and installing a whole snapshot.
    pub snapshot_timeout: Duration,
    /// How long openraft waits before retrying an unreachable peer.
    pub backoff: Duration,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerClient {
        let deadlines = Deadlines { connect: self.rpc_timeout, request: self.snapshot_timeout };
        let channel = net::channel(self.transport, &node.addr, deadlines)
            .map_err(|e| format!("bad address {:?} for node {target}: {e}", node.addr));
        PeerClient { id: self.id, target, channel, net: self.clone() }
    }
}

/// The RPC client for one peer.
pub struct PeerClient {
    id: NodeId,
    target: NodeId,
    channel: Result<Channel, String>,
    net: Network,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, Node, RaftError<NodeId, E>>;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

impl PeerClient {
    fn client(&self) -> Result<RaftServiceClient<Channel>, Unreachable> {
        match &self.channel {
            Ok(c) => Ok(RaftServiceClient::new(c.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)),
            Err(e) => Err(Unreachable::new(&Msg(e.clone()))),
        }
    }

    /// Runs one RPC under a deadline and maps its failure to what openraft expects.
    async fn call<T>(
        &self,
        action: RPCTypes,
        timeout: Duration,
        rpc: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(timeout, rpc).await {
            Err(_) => Err(Failure::Timeout(Timeout { action, id: self.id, target: self.target, timeout })),
            Ok(Ok(resp)) => Ok(resp.into_inner()),
            Ok(Err(status)) => Err(match status.code() {
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                    Failure::Timeout(Timeout { action, id: self.id, target: self.target, timeout })
                }
                tonic::Code::Unavailable | tonic::Code::Unknown => Failure::Unreachable(Unreachable::new(&status)),
                _ => Failure::Network(NetworkError::new(&status)),
            }),
        }
    }
}

enum Failure {
    Timeout(Timeout<NodeId>),
    Unreachable(Unreachable),
    Network(NetworkError),
}

impl<E: std::error::Error> From<Failure> for RPCError<NodeId, Node, E> {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Timeout(t) => RPCError::Timeout(t),
            Failure::Unreachable(u) => RPCError::Unreachable(u),
            Failure::Network(n) => RPCError::Network(n),
        }
    }
}

/// The index through which a follower's answer says it holds the leader's log, if it says so.
fn matched_index(rpc: &AppendEntriesRequest<TypeConfig>, resp: &AppendEntriesResponse<NodeId>) -> Option<u64> {
    match resp {
        AppendEntriesResponse::Success => rpc.entries.last().map(|e| e.log_id).or(rpc.prev_log_id).map(|l| l.index),
        AppendEntriesResponse::PartialSuccess(matched) => matched.map(|l| l.index),
        AppendEntriesResponse::Conflict | AppendEntriesResponse::HigherVote(_) => None,
    }
}

fn decode_err(s: tonic::Status) -> NetworkError {
    NetworkError::new(&s)
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let mut client = self.client()?;
        let req = convert::append_to_pb(&rpc);
        let timeout = option.hard_ttl().min(self.net.rpc_timeout.max(option.soft_ttl()));
        let deadline = tokio::time::Instant::now() + timeout;
        let resp = self.call(RPCTypes::AppendEntries, timeout, client.append_entries(req)).await?;
        let resp = convert::append_resp_from_pb(&resp).map_err(|s| RPCError::Network(decode_err(s)))?;
        // The follower holds the entries through `matched`; openraft counts that towards a commit only once this
        // node (the leader) holds them durably too.
        if let Some(matched) = matched_index(&rpc, &resp) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !self.net.flush_gate.durable(matched, left).await {
                return Err(RPCError::Timeout(Timeout {
                    action: RPCTypes::AppendEntries,
                    id: self.id,
                    target: self.target,
                    timeout,
                }));
            }
        }
        Ok(resp)
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> Result<VoteResponse<NodeId>, RpcErr> {
        let mut client = self.client()?;
        let req = convert::vote_req_to_pb(&rpc);
        let timeout = option.hard_ttl().min(self.net.rpc_timeout.max(option.soft_ttl()));
        let resp = self.call(RPCTypes::Vote, timeout, client.vote(req)).await?;
        convert::vote_resp_from_pb(&resp).map_err(|s| RPCError::Network(decode_err(s)))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let mut client = self.client()?;
        let req = pb::FullSnapshotRequest {
            vote: Some(convert::vote_to_pb(&vote)),
            meta: Some(convert::snapshot_meta_to_pb(&snapshot.meta)),
            data: snapshot.snapshot.0.clone(),
        };
        let timeout = self.net.snapshot_timeout;
        let send = self.call(RPCTypes::InstallSnapshot, timeout, client.full_snapshot(req));
        let resp = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            r = send => r,
        };
        let resp = resp.map_err(|f| match f {
            Failure::Timeout(t) => StreamingError::Timeout(t),
            Failure::Unreachable(u) => StreamingError::Unreachable(u),
            Failure::Network(n) => StreamingError::Network(n),
        })?;
        let vote = convert::vote_from_pb(resp.vote.as_ref()).map_err(|s| StreamingError::Network(decode_err(s)))?;
        Ok(SnapshotResponse { vote })
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.net.backoff))
    }
}
