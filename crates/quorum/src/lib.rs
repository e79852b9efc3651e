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
//! 3. ask [`predict`]: where no leader is possible no write may commit (safety); where one is possible, a write
//!    through a node with [`Prediction::can_commit_from`] must eventually commit once elections settle (liveness).

pub mod cli;
pub mod connectivity;
pub mod explain;
pub mod guide;
pub mod majority;
pub mod place;
pub mod predict;
pub mod report;
pub mod shipped;
pub mod table;
pub mod topology;
mod topology_file;

pub use connectivity::{Connectivity, FaultError, FaultShape};
pub use majority::{failures_tolerated, majority, QuorumRule};
pub use predict::{predict, predict_with, NodeVerdict, Prediction};
pub use topology::{Datacenter, LinkProfile, Node, NodeId, RaftTiming, Role, Topology, TopologyError};
