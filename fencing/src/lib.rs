//! The pure decision core of quorumlab's failover supervisor: a Patroni-like agent per database
//! host that may promote only through consensus and fences the old primary first, so that a
//! correct configuration never yields two primaries.
//!
//! Events in, decisions out. Nothing here performs I/O, reads a clock or knows about turmoil,
//! tokio or openraft: time arrives as [`std::time::Duration`] readings of the host's own clock
//! (which may run at a different rate from the consensus leader's; the configured clock margin
//! covers that), and every effect leaves as a [`supervisor::Decision`] for the host to execute.
//!
//! - [`config`]: the configuration and the rules that refuse impossible ones
//!   (`loop_wait + 2 × retry_timeout ≤ ttl`, a positive watchdog timeout, …) with the numbers.
//! - [`levels`]: fence plans as Pacemaker levels (levels OR-ed in order, devices AND-ed within a
//!   level) and [`levels::FenceRun`], which judges device outcomes: a timeout is a failure.
//! - [`supervisor`]: the roles and Patroni's rules (safe deadlines from send times, demotion,
//!   eligibility, watchdog, fencing before promotion), one file per safety property.
//! - [`ports`]: the traits a simulator (or a deployment) implements so decisions reach the world —
//!   [`ports::ConsensusStore`], [`ports::PowerSwitch`], [`ports::Firewall`],
//!   [`ports::CredentialAuthority`], [`ports::Watchdog`]. None is implemented here.
//! - [`check`]: the checkers that judge one simulated run's database history
//!   ([`check::DbRecord`]): no fork among acknowledged writes, tokens never decreasing along the
//!   chain, no acknowledged write lost under synchronous replication, no stale read by a deposed
//!   primary; and [`check::classify`], the run's cell in the matrix. One file per property.
//!
//! A host drives it like this: build a [`supervisor::Supervisor`] from a validated
//! [`config::SupervisorConfig`]; call `step(now, Event::Tick)` every loop and `step(now, event)`
//! whenever a port reports an outcome; execute the returned decisions in order.

pub mod check;
pub mod config;
pub mod levels;
pub mod ports;
pub mod supervisor;

pub use config::{ConfigError, Planted, SupervisorConfig, WatchdogMode};
pub use levels::{Device, DeviceKind, DeviceOutcome, FencePlan, FenceRun, FenceStep, Level};
pub use supervisor::{Decision, DemoteReason, Event, Role, Supervisor};

/// A database host (a member of the failover cluster).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub u64);

/// A lease in the consensus store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeaseId(pub u64);

/// A fencing token: the create revision of the leader key its holder took. Stable across
/// renewals; a later holding has a larger one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);
