//! Topology files and quorum math: which cuts of a datacenter network leave a working Raft majority, and why.
//!
//! Pure code over data, no I/O outside [`shipped::resolve`] and [`cli`]:
//! topology file → [`Topology`] → a [`FaultShape`] gives a [`Connectivity`] → [`predict`] gives a
//! [`Prediction`]. The partition suite holds the simulated cluster to that prediction.
//!
//! How a fault suite uses it:
//! 1. load a topology with [`shipped::resolve`] (or [`Topology::parse`]) and place one node per [`Node`];
//! 2. apply a [`FaultShape`] to the simulated network, and the same shape to the topology to get a
//!    [`Connectivity`];
//! 3. ask [`predict`]: where no leader is possible no write may commit (safety);
//! 4. ask [`predict_with_leader`] with the node that leads when the fault starts and the cluster's
//!    [`RaftVariant`] (quorumlab's node: [`RaftVariant::QUORUMLAB_NODE`]) for what Raft really does once elections
//!    settle: per client datacenter [`Availability::Available`] (writes must commit), [`Availability::Unavailable`]
//!    (none may) or [`Availability::Either`] (allowed, not required), with a reason in words.

pub mod cli;
pub mod connectivity;
pub mod explain;
pub mod fault_report;
pub mod guide;
pub mod leader;
pub mod majority;
pub mod place;
pub mod predict;
pub mod raft_view;
pub mod report;
pub mod shipped;
pub mod table;
pub mod topology;
mod topology_file;

pub use connectivity::{Connectivity, FaultError, FaultShape};
pub use leader::{
    predict_with_leader, quorumlab_node_variant, term_timeline, Availability, LeaderPrediction, RaftVariant,
    TimelineRow,
};
pub use majority::{failures_tolerated, majority, QuorumRule};
pub use predict::{predict, predict_with, NodeVerdict, Prediction};
pub use topology::{
    Datacenter, DbHost, FencePath, LinkProfile, MemberId, Node, NodeId, RaftTiming, Role, Topology, TopologyError,
};
