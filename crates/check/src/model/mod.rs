//! Sequential specifications: what a correct single-copy object would answer.
//!
//! A model turns each [`Operation`] into its own typed op once, then the search asks it one question over and
//! over: "in this state, can this op take effect, and what is the state after?". Adding a model means one file
//! with one `impl Model`, plus a variant in [`ModelKind`] so the command line can name it.
//!
//! Contract every model must keep, or verdicts become wrong:
//! 1. `step` is deterministic and pure; an op with an unknown outcome still has one effect per state
//!    (an unknown `cas` swaps if the value matched, else changes nothing);
//! 2. `State` equality means "no later operation can tell them apart" — the memo relies on it;
//! 3. `is_unconstrained` only returns `true` for ops that succeed in every state and change nothing;
//! 4. `is_read_only` only returns `true` for ops that change no state they fit (reads, failed compares);
//! 5. if `objects` answers, every object an op's `step` reads or changes is among its objects, and every
//!    spontaneous step touches only objects some op of the history touches (the split relies on it).

mod cas_register;
mod kv;
pub mod lease_kv;
mod multi_register;

pub use cas_register::CasRegister;
pub use kv::Kv;
pub use lease_kv::LeaseKv;
pub use multi_register::MultiRegister;

use std::fmt::Debug;
use std::hash::Hash;

use crate::history::Operation;
use crate::value::Value;

/// `Sync` because partitions are searched on several threads at once, all sharing the model and the ops.
pub trait Model: Sync {
    type Op: Clone + Debug + Sync;
    type State: Clone + Eq + Hash + Debug;

    /// The name used on the command line and in reports.
    fn name(&self) -> &'static str;

    fn init(&self) -> Self::State;

    /// Reads one paired operation; the error says in user terms what is wrong with it.
    fn parse(&self, op: &Operation) -> Result<Self::Op, String>;

    /// `true` if operations on different keys are independent objects, so the history may be split per key
    /// (P-compositionality: the whole is linearizable iff every key is).
    fn partition_by_key(&self) -> bool;

    /// The objects `op` reads or changes, for a model whose ops may span several objects (transactions,
    /// leases). When it answers `Some` for every op, the history is split into the connected components of
    /// "two ops share an object" and each component is searched alone; an op touching nothing is searched
    /// with the others that touch nothing. Objects are compared by name: two objects that happen to share a
    /// name are merged, which is only slower, never wrong. `None` (the default): `partition_by_key` decides.
    fn objects(&self, _op: &Self::Op) -> Option<Vec<String>> {
        None
    }

    /// Steps the system may take by itself, unasked (a lease expiring by the server's clock), derived from
    /// the whole history. Each is searched like an operation with an unknown outcome: it may take effect at
    /// any moment after the invocation its `Operation` names, or never. They are not counted as operations.
    fn spontaneous(&self, _ops: &[(Operation, Self::Op)]) -> Vec<(Operation, Self::Op)> {
        Vec::new()
    }

    /// The state after `op` takes effect in `state`, or `None` if its result is impossible in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// Ops that fit every state and change nothing (an unknown read) can be dropped before searching.
    fn is_unconstrained(&self, _op: &Self::Op) -> bool {
        false
    }

    /// Ops that never change the state. The search places such an op as soon as it fits and never tries
    /// another order for it: any linearization can move it to the front without changing another op's state.
    fn is_read_only(&self, _op: &Self::Op) -> bool {
        false
    }

    /// A short description of the op, e.g. `read → 3` or `cas 1→4 (failed: value differed)`.
    fn describe_op(&self, op: &Self::Op) -> String;

    /// The state in words, e.g. `3` or `absent`.
    fn describe_state(&self, state: &Self::State) -> String;

    /// What the op needs of the state to take effect, completing "it needs …", e.g. `the value to be 3`.
    fn requirement(&self, op: &Self::Op) -> String;
}

/// The models the command line can name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelKind {
    Kv(Kv),
    CasRegister(CasRegister),
    MultiRegister(MultiRegister),
    LeaseKv(LeaseKv),
}

impl ModelKind {
    pub fn name(&self) -> &'static str {
        match self {
            ModelKind::Kv(m) => m.name(),
            ModelKind::CasRegister(m) => m.name(),
            ModelKind::MultiRegister(m) => m.name(),
            ModelKind::LeaseKv(m) => m.name(),
        }
    }

    /// The same model with a different initial value (for every key, or every register). `lease-kv` has none:
    /// its keys start absent, as etcd's do, and it is returned unchanged (the command line refuses `--initial`).
    pub fn with_initial(self, initial: Value) -> ModelKind {
        match self {
            ModelKind::Kv(_) => ModelKind::Kv(Kv { initial }),
            ModelKind::CasRegister(_) => ModelKind::CasRegister(CasRegister { initial }),
            ModelKind::MultiRegister(_) => ModelKind::MultiRegister(MultiRegister { initial }),
            ModelKind::LeaseKv(m) => ModelKind::LeaseKv(m),
        }
    }
}

/// `f` names the model accepts, for error messages.
pub(crate) fn unsupported(model: &str, op: &Operation, accepted: &str) -> String {
    format!("the {model} model has no operation `{}` (it accepts {accepted})", op.f)
}
