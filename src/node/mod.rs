//! A quorumlab node: one openraft instance over sled storage, serving gRPC.
//!
//! The same code runs as a real process (`quorumlab node`) and as a turmoil host; the only
//! difference is the [`Transport`] handed to the network seam and the storage [`Durability`].
//!
//! Caller's duties:
//! 1. Open storage first (`store::open_dir` for a real process, `store::open_db` in simulation).
//! 2. Call [`start`] inside the runtime that will own the node (a turmoil host's, in simulation).
//! 3. Initialize the cluster once, on one node, with the full voter set (`Admin/Initialize`).
//! 4. Stop with [`RunningNode::shutdown`]; in simulation a crashed host just drops everything.

pub mod batcher;
pub mod convert;
pub mod lease_keeper;
pub mod raft_network;
pub mod service;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::net::{self, Transport};
use crate::pb;
use crate::store::{FlushGate, KvReader, LogStore, StateMachineStore};
use crate::types::{NodeId, Raft};
pub use raft_network::MAX_MESSAGE_BYTES;
use service::Services;

/// Raft timing, in milliseconds: the same type a topology file's `[raft]` table fills, so a node, the simulator
/// and the quorum math never disagree on defaults or field names.
pub use quorumlab_quorum::RaftTiming as Timing;

/// A real node's snapshot policy unless `quorumlab node --snapshot-every` says otherwise: a snapshot (which copies
/// the whole key-value state) every this many entries. etcd's default `--snapshot-count` (3.4). At 1,000 entries a
/// node under load spent a tenth of its time copying its state again and again, and the copies put spikes in the
/// latency (benches/etcd_compare.rs, docs/simulation-speed.md). Simulated tests, and real-mode suite runs, which take
/// the simulator's policy, snapshot far more often on purpose (`SimOptions`), to exercise snapshots and catch-up.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 100_000;

/// Entries a real node keeps behind its snapshot for slow followers: half the snapshot interval.
pub fn logs_kept_after_snapshot(snapshot_every: u64) -> u64 {
    snapshot_every / 2
}

/// A deliberate bug that a negative-control test plants to prove that a check can fail.
/// Never set outside tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// Answer `Get` from local state whenever this node believes it leads, skipping the
    /// read-index round trip: the classic stale read of a leader that was deposed behind its back.
    StaleLocalReads,
    /// Storage acknowledges appended entries before they are flushed (simulated disk only): a
    /// power loss of a majority can then lose an acknowledged write.
    AckBeforeFlush,
    /// Storage forgets the vote when the node restarts (simulated disk only): the node can vote
    /// twice in one term, so two leaders can be elected in it.
    ForgetVoteOnRestart,
    /// A leader answers a write as soon as it has appended the entry to its own log, without
    /// waiting for a majority to hold it: a leader cut off right then acknowledges writes that
    /// the next leader overwrites.
    AckBeforeMajority,
    /// The client library reports a write whose attempt timed out (outcome unknown) as failed,
    /// although the write may have committed. Planted through `ClientConfig::planted_bug`.
    ClientReportsTimeoutAsFailed,
    /// A node that believes it leads answers a lease KeepAlive without confirming its leadership
    /// with a read-index: an isolated or deposed leader keeps telling a holder "renewed" while
    /// the real leader lets the lease expire.
    KeepAliveWithoutReadIndex,
    /// A new leader keeps the lease deadline it saw a lease start with instead of resetting
    /// every lease to now + TTL + an election timeout: renewals the old leader answered are lost.
    LeaseKeepsOldExpiry,
    /// The lease workload's holders campaign for the leader key with a plain put instead of a
    /// transaction that requires the key to be absent: two holders can then both win it.
    CampaignWithPlainPut,
    /// A leader counts a follower's acknowledgement without waiting for its own log to be durable as far (the
    /// flush gate, `store::FlushGate`): as it acknowledges its own proposals before their flush, a write can
    /// commit while on disk on only a follower, and a power loss of the leader can lose it.
    NoLeaderFlushGate,
}

/// Everything a node needs besides its storage.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Address to bind, e.g. `127.0.0.1:7001` or, in simulation, `0.0.0.0:7000`.
    pub listen: String,
    /// Address peers and clients use to reach this node (`dc1-n1:7000` in simulation).
    pub advertise: String,
    pub transport: Transport,
    pub timing: Timing,
    /// Build a snapshot after this many log entries since the last one; the log is then purged
    /// behind the snapshot, keeping `logs_kept_after_snapshot` entries for slow followers.
    pub snapshot_every: u64,
    pub logs_kept_after_snapshot: u64,
    /// How often the leader logs each lease's remaining TTL (etcd's lease checkpoint), so a new
    /// leader restarts a lease from its remainder instead of its full TTL; `None` (etcd's default)
    /// proposes none, and leader changes faster than a TTL then keep leases alive forever.
    pub lease_checkpoint_interval: Option<Duration>,
    /// `None` in every real configuration.
    pub planted_bug: Option<PlantedBug>,
}

impl NodeConfig {
    fn raft_config(&self) -> Result<openraft::Config, NodeError> {
        let t = &self.timing;
        let config = openraft::Config {
            cluster_name: "quorumlab".into(),
            heartbeat_interval: t.heartbeat_ms,
            election_timeout_min: t.election_timeout_ms_min,
            election_timeout_max: t.election_timeout_ms_max,
            install_snapshot_timeout: t.request_timeout_ms.max(t.rpc_timeout_ms * 10),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.logs_kept_after_snapshot,
            purge_batch_size: 64,
            ..Default::default()
        };
        config.validate().map_err(|e| NodeError::Config(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid Raft configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot start Raft: {0}")]
    Raft(String),
}

/// A started node.
pub struct RunningNode {
    pub id: NodeId,
    pub raft: Raft,
    pub reader: KvReader,
    server: JoinHandle<()>,
    lease_keeper: JoinHandle<()>,
}

/// Starts a node: Raft over the given storage, and the gRPC server on `config.listen`.
pub async fn start(config: NodeConfig, log: LogStore, sm: StateMachineStore) -> Result<RunningNode, NodeError> {
    let raft_config = Arc::new(config.raft_config()?);
    log.serve(config.id).await.map_err(|e| NodeError::Raft(e.to_string()))?;
    let stored_vote = {
        use openraft::storage::RaftLogStorage;
        log.clone().read_vote().await.map_err(|e| NodeError::Raft(e.to_string()))?
    };
    let reader = sm.reader();
    let log_io = log.io();
    let flush_gate = match config.planted_bug {
        Some(PlantedBug::NoLeaderFlushGate) => FlushGate::open(),
        _ => log.flush_gate(),
    };
    let network = raft_network::Network {
        id: config.id,
        flush_gate,
        transport: config.transport,
        rpc_timeout: Duration::from_millis(config.timing.rpc_timeout_ms),
        snapshot_timeout: Duration::from_millis(raft_config.install_snapshot_timeout),
        backoff: Duration::from_millis(config.timing.heartbeat_ms.max(10)),
    };
    let raft = Raft::new(config.id, raft_config, network, log, sm).await.map_err(|e| NodeError::Raft(e.to_string()))?;
    let incoming = net::listen(config.transport, &config.listen)
        .await
        .map_err(|source| NodeError::Listen { addr: config.listen.clone(), source })?;
    let leases = lease_keeper::SharedLeases::default();
    let proposals = lease_keeper::ProposalOrder::default();
    let request_timeout = Duration::from_millis(config.timing.request_timeout_ms);
    let election_max = Duration::from_millis(config.timing.election_timeout_ms_max);
    let services = Services {
        id: config.id,
        addr: config.advertise.clone(),
        raft: raft.clone(),
        reader: reader.clone(),
        request_timeout,
        planted_bug: config.planted_bug,
        leases: leases.clone(),
        lease_proposals: proposals.clone(),
        lease_poll: Duration::from_millis(config.timing.heartbeat_ms.max(10)),
        min_lease_ttl: election_max * 3 / 2,
        stored_vote,
        log_io,
        batcher: batcher::Batcher::start(raft.clone()),
    };
    let keeper = lease_keeper::LeaseKeeper {
        id: config.id,
        raft: raft.clone(),
        reader: reader.clone(),
        leases,
        tick: Duration::from_millis(config.timing.heartbeat_ms.max(10)),
        request_timeout,
        extension: election_max,
        checkpoint_every: config.lease_checkpoint_interval,
        proposals,
        planted_bug: config.planted_bug,
    };
    let lease_keeper = tokio::spawn(keeper.run());
    let router = tonic::transport::Server::builder()
        .add_service(
            pb::raft_service_server::RaftServiceServer::new(services.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(pb::kv_service_server::KvServiceServer::new(services.clone()))
        .add_service(pb::admin_service_server::AdminServiceServer::new(services));
    let id = config.id;
    let server = tokio::spawn(async move {
        if let Err(e) = router.serve_with_incoming(incoming).await {
            tracing::error!(node = id, error = %e, "gRPC server stopped");
        }
    });
    Ok(RunningNode { id: config.id, raft, reader, server, lease_keeper })
}

impl RunningNode {
    /// Stops Raft and the server.
    pub async fn shutdown(self) {
        self.lease_keeper.abort();
        let _ = self.raft.shutdown().await;
        self.server.abort();
    }
}
