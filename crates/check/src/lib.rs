//! quorumlab's linearizability checker: a pure function from a history to a verdict.
//!
//! Data flows one way: a file is read by [`format`](mod@format) into a [`History`]; [`check_history`] pairs its events
//! into operations, splits them per key and searches each key for a linearization under a [`model`]; the
//! [`Verdict`] is rendered by [`report`] as text, JSON or an HTML drawing. Nothing here touches the clock
//! except to honour a [`Budget`] deadline, and nothing touches the network or the disk: the simulator calls
//! [`check_history`] directly on the history it recorded, with a deterministic budget
//! ([`Budget::with_max_steps`]), so that a replayed seed reaches the same verdict.
//!
//! How to use it from code:
//! 1. build a [`History`] in real-time order (`invoke`, then `ok` / `fail` / `info` from the same process);
//! 2. pick a [`ModelKind`] (or any type implementing [`Model`] with [`check_with`]);
//! 3. call [`check_history`] with a [`Budget`]; an exhausted budget yields [`Outcome::Unknown`], never a guess.
//!    Steps and memo memory are deterministic limits; a deadline is not, and is meant for the command line;
//! 4. or call [`check_history_with_options`] to search every key (`all_keys`) instead of stopping at the
//!    first one proven not linearizable, or to set how many threads search keys at once. Neither changes
//!    the outcome, and the verdict is the same whichever thread finishes first.

pub mod check;
pub mod cli;
pub mod format;
pub mod history;
pub mod model;
pub mod report;
mod search;
pub mod synth;
pub mod value;
pub mod verdict;

pub use check::{
    check_history, check_history_with_options, check_with, check_with_options, describe_partitions, CheckError,
    CheckOptions, PartitionOps,
};
pub use history::{Event, EventKind, History, HistoryError, Interval, Operation};
pub use model::{CasRegister, Kv, LeaseKv, Model, ModelKind, MultiRegister};
pub use search::{Budget, Exhausted};
pub use value::Value;
pub use verdict::{OpSummary, Outcome, PartitionVerdict, PlacedOp, Stats, Verdict, Violation};
