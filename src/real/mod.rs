//! Real mode: the partition suite's schedules on real `quorumlab node` processes, each in its own network
//! namespace, with nftables for cuts and losses and signals for crashes and pauses (issue: real processes, real
//! partitions). It reuses the suite's engine whole — schedules, the nemesis's link plan, the client load, the
//! oracle's windows and the checks — and replaces only what touches the world: [`lab`] for the network,
//! [`crate::local::LocalCluster`] for the processes, [`observe`] for what a status poll can see.

pub mod agreement;
pub mod firewall;
pub mod lab;
pub mod observe;
pub mod run;

pub use lab::available;
