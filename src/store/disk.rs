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

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use sled::{Db, IVec, Tree};

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
    /// Trees whose latest write group's redo record is still stored (`Fsync` only; see [`Disk::apply_with_redo`]).
    redo_live: Arc<Mutex<BTreeSet<IVec>>>,
}

/// Where redo records live, in the default tree: this prefix, then the tree's name.
pub(crate) const REDO_PREFIX: &[u8] = b"quorumlab.redo/";

fn redo_key(tree: &[u8]) -> Vec<u8> {
    [REDO_PREFIX, tree].concat()
}

/// Why a crash's write group could not be made again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplayError {
    #[error(transparent)]
    Sled(#[from] sled::Error),
    #[error("{0}")]
    Corrupt(String),
}

impl Disk {
    /// A real disk (`Fsync`) or a simulated one without power loss (`ProcessCrash`).
    pub(crate) fn plain(db: Db, durability: Durability) -> Self {
        Disk {
            db,
            durability,
            journal: None,
            observer: None,
            ack_before_flush: false,
            forget_vote_on_restart: false,
            redo_live: Arc::default(),
        }
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
            redo_live: Arc::default(),
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
            (Durability::Fsync, _) => self.apply_with_redo(tree, ops),
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

    /// `Fsync`'s write group: plain sled writes, made all-or-nothing by a redo record.
    ///
    /// sled recovers a prefix of its log: after a crash or a power loss, every write it keeps was made after every
    /// other write it keeps. A group of more than one write first stores, in one insert, a redo record of the whole
    /// group (one key per tree), then makes the writes. So after a crash either the record is gone, and with it every
    /// write of the group (they came later), or it is there, and [`Disk::replay_redo`] makes the whole group again
    /// when the store opens (each write sets a key to a value or removes it, so making it twice changes nothing).
    /// The first single write to a tree after a group removes the group's record before it writes, so a replay never
    /// undoes a later write; every write to a tree goes through here, under one lock, so groups never interleave.
    ///
    /// Why not a sled `Batch`, which is all-or-nothing too: sled 0.34 seals its I/O buffer at the end of every batch
    /// and writes it out with a `sync_file_range` of its own on its thread pool, so each batch (an append, an apply,
    /// the commit index) cost a disk write, and a flush waited for all of them (benches/etcd_compare.rs).
    fn apply_with_redo(&self, tree: &Tree, ops: Vec<(IVec, Option<IVec>)>) -> sled::Result<()> {
        let name = tree.name();
        let mut live = self.redo_live.lock().unwrap_or_else(|e| e.into_inner());
        if ops.len() > 1 {
            let record: Vec<(&[u8], Option<&[u8]>)> = ops.iter().map(|(k, v)| (&k[..], v.as_deref())).collect();
            let bytes = super::codec::encode(&record).map_err(|e| sled::Error::Unsupported(e.to_string()))?;
            self.db.insert(redo_key(&name), bytes)?;
            live.insert(name);
        } else if live.remove(&name) {
            self.db.remove(redo_key(&name))?;
        }
        for (key, value) in ops {
            match value {
                Some(v) => tree.insert(key, v)?,
                None => tree.remove(key)?,
            };
        }
        Ok(())
    }

    /// Makes again every write group whose redo record a crash left behind (see [`Disk::apply_with_redo`]), then
    /// removes the records and flushes. Called once when the store opens, before anything reads it. Returns how
    /// many groups it made again.
    pub(crate) fn replay_redo(&self) -> Result<usize, ReplayError> {
        let mut replayed = 0;
        for item in self.db.scan_prefix(REDO_PREFIX) {
            let (key, bytes) = item?;
            let tree = self.db.open_tree(&key[REDO_PREFIX.len()..])?;
            let record: Vec<(Vec<u8>, Option<Vec<u8>>)> = super::codec::decode(&bytes)
                .map_err(|e| ReplayError::Corrupt(format!("redo record {:?}: {e}", String::from_utf8_lossy(&key))))?;
            for (key, value) in record {
                match value {
                    Some(v) => tree.insert(key, v)?,
                    None => tree.remove(key)?,
                };
            }
            self.db.remove(&key)?;
            replayed += 1;
        }
        if replayed > 0 && self.durability == Durability::Fsync {
            self.db.flush()?;
        }
        Ok(replayed)
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
