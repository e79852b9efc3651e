//! Experiments that reproduce published measurements with the real node code in the simulator, as opposed to the
//! suite's pass/fail checks: each runs a fixed procedure many times from one seed and reports a distribution.
//!
//! - [`election_timeouts`]: the Raft paper's Figure 16, the time to replace a crashed leader for several ranges
//!   of election timeouts (`quorumlab experiment election-timeouts`, `docs/election-timeouts.md`).

pub mod election_timeouts;
