//! A group of writes to one sled tree that must land together, applied by [`super::disk::Disk::apply`].
//!
//! Under [`Durability::Fsync`] the group is plain sled writes after a redo record of the whole group, which
//! the store makes again when it opens after a crash or power loss cut the group short (see `Disk::apply`'s
//! `apply_with_redo`). Under [`Durability::ProcessCrash`] (simulation) it is plain inserts and
//! removes in a row: a simulated crash cancels a node only at an `.await`, and there is none
//! between them, and a simulated power loss undoes the whole group or none of it (the journal
//! records it as one group); so the group is just as all-or-nothing, and it skips sled 0.34's
//! per-batch log pinning, which seals the I/O buffer and wakes sled's thread pool on every batch
//! (about 1.5x simulation speed under load, see benches/sim_speed.rs).
//!
//! [`Durability::Fsync`]: super::Durability::Fsync
//! [`Durability::ProcessCrash`]: super::Durability::ProcessCrash

use sled::IVec;

#[derive(Default)]
pub(crate) struct Writes {
    ops: Vec<(IVec, Option<IVec>)>,
}

impl Writes {
    pub(crate) fn insert(&mut self, key: impl Into<IVec>, value: impl Into<IVec>) {
        self.ops.push((key.into(), Some(value.into())));
    }

    pub(crate) fn remove(&mut self, key: impl Into<IVec>) {
        self.ops.push((key.into(), None));
    }

    /// The writes in order (a later write to a key overrides an earlier one); `None` removes.
    pub(crate) fn into_ops(self) -> Vec<(IVec, Option<IVec>)> {
        self.ops
    }
}
