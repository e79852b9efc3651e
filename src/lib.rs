//! quorumlab: a real Raft key-value cluster (openraft + sled + tonic) that runs under turmoil's
//! deterministic simulated network and, with the same code, as real processes over TCP.

pub mod pb {
    //! Generated protobuf and gRPC code (`proto/quorumlab.proto`).
    tonic::include_proto!("quorumlab.v1");
}

pub mod cli;
pub mod client;
pub mod clock;
pub mod db;
pub mod experiment;
pub mod html;
pub mod lease;
pub mod local;
pub mod net;
pub mod node;
pub mod real;
pub mod runtime;
pub mod sim;
pub mod store;
pub mod suite;
pub mod types;
pub mod whatif;
