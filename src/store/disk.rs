//! How a node's stores reach their sled `Db`, and the simulated disk that can lose power.
//!
//! [`SimDisk`] models a disk whose cache is lost on power loss: every write since the last flush
//! is kept in an undo journal (the key and the value it replaced), a flush empties the journal,
//! and [`SimDisk::power_loss`] rolls the journal back in reverse, one whole write group at a time.
//! The flush points are exactly those of [`Durability::Fsync`] (append acknowledged after a flush,
//! `save_vote`, `truncate`, `purge`, snapshot save and install), so the simulation proves what a
//! real node survives, and a flush costs nothing but emptying a `Vec`.
//!
//! A process crash (the simulator's `crash`) loses nothing: the `Db` and its journal outlive it.
//!
//! A flush takes no simulated time by default, so nothing can happen between a write and its
//! flush. [`SimDisk::set_flush_delay`] gives it a duration, as a real fsync has: a flush then
//! makes durable the writes made before it started, once the delay has passed, and a power loss
//! in between loses them; meanwhile openraft may already have sent the entries to followers.
//!
//! Invariant: after `power_loss`, every tree holds exactly what it held at the last flush,
//! because each journal record holds the value its write replaced and records are undone newest
//! first. This holds only if every write to the node's trees goes through [`Disk::apply`].

use std::sync::{Arc, Mutex};

use sled::{Batch, Db, IVec, Tree};

use super::observe::{emit, Observer, StoreChange};
use super::writes::Writes;
use super::{Durability, OpenError};

/// One write group: the tree and, for every key written in order, the value it replaced.
type Group = (Tree, Vec<(IVec, Option<IVec>)>);

/// The writes made since the last flush.
#[derive(Default)]
struct JournalState {
    /// Unflushed write groups, oldest first, each with its sequence number.
    groups: std::collections::VecDeque<(u64, Group)>,
    /// Sequence number of the next write group.
    next: u64,
    flush_delay: std::time::Duration,
}

type Journal = Arc<Mutex<JournalState>>;

fn lock(journal: &Journal) -> std::sync::MutexGuard<'_, JournalState> {
    journal.lock().unwrap_or_else(|e| e.into_inner())
}

/// A node's simulated disk: a temporary sled `Db` and its undo journal. Cloning shares both.
#[derive(Clone)]
pub struct SimDisk {
    db: Db,
    journal: Journal,
}

/// What a power loss undid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PowerLoss {
    /// Write groups rolled back (an append, an apply, a vote…).
    pub groups: usize,
    /// Keys restored.
    pub writes: usize,
}

impl SimDisk {
    /// A fresh, empty disk.
    pub fn new() -> Result<Self, OpenError> {
        Ok(SimDisk { db: super::sim_db()?, journal: Journal::default() })
    }

    /// Loses every write made since the last flush. Call it only while no store of this disk is
    /// in use (the node's host has crashed): a running store caches what it wrote.
    pub fn power_loss(&self) -> Result<PowerLoss, sled::Error> {
        let groups = std::mem::take(&mut lock(&self.journal).groups);
        let mut lost = PowerLoss { groups: groups.len(), writes: 0 };
        for (_, (tree, writes)) in groups.into_iter().rev() {
            for (key, old) in writes.into_iter().rev() {
                match old {
                    Some(v) => tree.insert(key, v)?,
                    None => tree.remove(key)?,
                };
                lost.writes += 1;
            }
        }
        Ok(lost)
    }

    /// Write groups made since the last flush.
    pub fn unflushed_groups(&self) -> usize {
        lock(&self.journal).groups.len()
    }

    /// How long a flush takes, in simulated time, from now on (zero by default).
    pub fn set_flush_delay(&self, delay: std::time::Duration) {
        lock(&self.journal).flush_delay = delay;
    }

    pub fn flush_delay(&self) -> std::time::Duration {
        lock(&self.journal).flush_delay
    }

    fn db(&self) -> &Db {
        &self.db
    }

    fn journal(&self) -> Journal {
        self.journal.clone()
    }
}

/// What a node's stores share about their disk: the `Db`, when a write counts as durable, the
/// simulated disk's journal and the observer (both simulation only), and the planted bug.
#[derive(Clone)]
pub(crate) struct Disk {
    pub db: Db,
    pub durability: Durability,
    journal: Option<Journal>,
    pub observer: Option<Observer>,
    /// Planted bug (simulation only): `append` acknowledges without flushing.
    pub ack_before_flush: bool,
    /// Planted bug (simulation only): a restart brings back the vote of the node's previous
    /// term, forgetting the vote it cast in its latest one.
    pub forget_vote_on_restart: bool,
}

impl Disk {
    /// A real disk (`Fsync`) or a simulated one without power loss (`ProcessCrash`).
    pub(crate) fn plain(db: Db, durability: Durability) -> Self {
        Disk { db, durability, journal: None, observer: None, ack_before_flush: false, forget_vote_on_restart: false }
    }

    /// A simulated disk that honours flushes and can lose power.
    pub(crate) fn simulated(disk: &SimDisk, observer: Option<Observer>) -> Self {
        Disk {
            db: disk.db().clone(),
            durability: Durability::ProcessCrash,
            journal: Some(disk.journal()),
            observer,
            ack_before_flush: false,
            forget_vote_on_restart: false,
        }
    }

    /// Whether this is a [`SimDisk`] (which journals every write).
    pub(crate) fn is_simulated(&self) -> bool {
        self.journal.is_some()
    }

    /// Tells the observer, if any, about a change; builds nothing without one.
    pub(crate) fn emit(&self, change: impl FnOnce() -> StoreChange) {
        emit(&self.observer, change)
    }

    /// Applies one group of writes to `tree`, all-or-nothing (see [`Writes`]).
    pub(crate) fn apply(&self, tree: &Tree, writes: Writes) -> sled::Result<()> {
        let ops = writes.into_ops();
        match (self.durability, &self.journal) {
            (Durability::Fsync, _) => {
                let mut batch = Batch::default();
                for (key, value) in ops {
                    match value {
                        Some(v) => batch.insert(key, v),
                        None => batch.remove(key),
                    }
                }
                tree.apply_batch(batch)
            }
            (Durability::ProcessCrash, None) => {
                for (key, value) in ops {
                    match value {
                        Some(v) => tree.insert(key, v)?,
                        None => tree.remove(key)?,
                    };
                }
                Ok(())
            }
            (Durability::ProcessCrash, Some(journal)) => {
                // sled hands back the replaced value of every insert and remove, so the undo
                // record costs no extra read.
                let mut undo = Vec::with_capacity(ops.len());
                for (key, value) in ops {
                    let old = match value {
                        Some(v) => tree.insert(&key, v)?,
                        None => tree.remove(&key)?,
                    };
                    undo.push((key, old));
                }
                let mut j = lock(journal);
                let seq = j.next;
                j.next += 1;
                j.groups.push_back((seq, (tree.clone(), undo)));
                Ok(())
            }
        }
    }

    /// Makes every write so far durable: sled's flush under `Fsync`, emptying the journal on a
    /// simulated disk, nothing under plain `ProcessCrash`. sled flushes the whole `Db`, so this
    /// also persists the state machine's writes made before it.
    pub(crate) async fn flush(&self) -> sled::Result<()> {
        match (self.durability, &self.journal) {
            (Durability::Fsync, _) => self.db.flush_async().await.map(|_| ()),
            (Durability::ProcessCrash, None) => Ok(()),
            (Durability::ProcessCrash, Some(journal)) => {
                let (delay, upto) = {
                    let j = lock(journal);
                    (j.flush_delay, j.next)
                };
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                self.flush_before(upto);
                Ok(())
            }
        }
    }

    /// The simulated disk's flush of every write so far, taking no time (no-op on other disks).
    pub(crate) fn flush_now(&self) {
        if let Some(journal) = &self.journal {
            let upto = lock(journal).next;
            self.flush_before(upto);
        }
    }

    /// Makes the write groups numbered below `upto` durable. The observer hears `Flushed` only
    /// when that leaves nothing unflushed, as the event promises every earlier write durable.
    fn flush_before(&self, upto: u64) {
        let Some(journal) = &self.journal else { return };
        let mut j = lock(journal);
        let before = j.groups.len();
        while j.groups.front().is_some_and(|(seq, _)| *seq < upto) {
            j.groups.pop_front();
        }
        let all_flushed = before > 0 && j.groups.is_empty();
        drop(j);
        if all_flushed {
            self.emit(|| StoreChange::Flushed);
        }
    }
}
