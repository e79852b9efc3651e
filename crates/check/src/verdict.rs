//! What a check concludes, in a form both people (via `report`) and programs (via serde) can read.

use serde::Serialize;

use crate::history::Interval;

/// The three answers. Their order is severity: one `NotLinearizable` key outweighs everything, then `Unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Linearizable,
    Unknown,
    NotLinearizable,
}

impl Outcome {
    /// 0 linearizable, 1 not linearizable, 2 unknown — the convention Maelstrom uses.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Linearizable => 0,
            Outcome::NotLinearizable => 1,
            Outcome::Unknown => 2,
        }
    }

    pub fn words(self) -> &'static str {
        match self {
            Outcome::Linearizable => "linearizable",
            Outcome::NotLinearizable => "NOT linearizable",
            Outcome::Unknown => "unknown",
        }
    }
}

/// The verdict on a whole history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub outcome: Outcome,
    pub model: String,
    /// One entry per key checked (or a single entry with `key: null` when the model does not split by key),
    /// in key order.
    pub partitions: Vec<PartitionVerdict>,
    /// Keys not checked, in key order: a key before them was proven not linearizable, which decided the
    /// outcome, and the check stopped there (see `CheckOptions::all_keys`). Empty when every key was checked.
    pub unchecked_keys: Vec<Option<String>>,
    pub stats: Stats,
}

impl Verdict {
    pub fn is_linearizable(&self) -> bool {
        self.outcome == Outcome::Linearizable
    }

    /// The first partition that is not linearizable, if any.
    pub fn violation(&self) -> Option<(&PartitionVerdict, &Violation)> {
        self.partitions.iter().find_map(|p| p.violation.as_ref().map(|v| (p, v)))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Operations in the history after dropping failed ops, in checked and unchecked keys alike; unknown
    /// reads are counted but not searched.
    pub operations: usize,
    pub unknown_outcomes: usize,
    /// Search steps over the partitions in `partitions`. Work a thread spent on a key that was then cancelled
    /// is not counted, so the figure does not depend on thread timing.
    pub steps: u64,
    /// The largest memo of any partition: entries, and an estimate of its size in bytes.
    pub peak_memo_entries: usize,
    pub peak_memo_bytes_estimate: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionVerdict {
    pub key: Option<String>,
    pub outcome: Outcome,
    pub operations: usize,
    /// Why the verdict is unknown: which budget ran out.
    pub unknown_reason: Option<String>,
    pub violation: Option<Violation>,
    pub steps: u64,
    pub memo_entries: usize,
}

/// Why a partition is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub initial_state: String,
    /// The longest linearizable prefix the search found, in the order the ops took effect.
    pub prefix: Vec<PlacedOp>,
    /// The op that returned without any order letting it take effect.
    pub culprit: OpSummary,
    /// What the culprit needs of the state, completing "it needs …".
    pub requirement: String,
    /// The states in which the culprit could have taken effect, none of which fit it.
    pub observed_states: Vec<String>,
    /// `true` if there were more such states than listed.
    pub observed_states_truncated: bool,
    /// `true` if the culprit fitted some state, but every order that placed it there failed later.
    pub culprit_fits_somewhere: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlacedOp {
    pub op: OpSummary,
    pub state_after: String,
}

/// One operation as a report shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpSummary {
    pub process: u64,
    /// In the model's words, e.g. `read → 3`.
    pub description: String,
    /// `true` if the client never learned the outcome (`info`, timeout, no completion).
    pub unknown: bool,
    /// Where it sits in the history; a `None` return means +∞.
    #[serde(flatten)]
    pub interval: Interval,
}
