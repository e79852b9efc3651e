//! A group of writes to one sled tree that must land together.
//!
//! Under [`Durability::Fsync`] the group is one sled `Batch`, which sled recovers all-or-nothing
//! after a power loss. Under [`Durability::ProcessCrash`] (simulation) it is plain inserts and
//! removes in a row: a simulated crash cancels a node only at an `.await`, and there is none
//! between them, while the `Db` itself never crashes; so the group is just as all-or-nothing, and
//! it skips sled 0.34's per-batch log pinning, which seals the I/O buffer and wakes sled's
//! thread pool on every batch (about 1.5x simulation speed under load, see benches/sim_speed.rs).

use sled::{Batch, IVec, Tree};

use super::Durability;

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

    /// Applies the writes in order (a later write to a key overrides an earlier one).
    pub(crate) fn apply(self, tree: &Tree, durability: Durability) -> sled::Result<()> {
        match durability {
            Durability::Fsync => {
                let mut batch = Batch::default();
                for (key, value) in self.ops {
                    match value {
                        Some(v) => batch.insert(key, v),
                        None => batch.remove(key),
                    }
                }
                tree.apply_batch(batch)
            }
            Durability::ProcessCrash => {
                for (key, value) in self.ops {
                    match value {
                        Some(v) => tree.insert(key, v)?,
                        None => tree.remove(key)?,
                    };
                }
                Ok(())
            }
        }
    }
}
