//! Durable Raft storage in sled: the log store and the key-value state machine behind openraft's
//! storage-v2 traits ([`LogStore`]: `RaftLogStorage`; [`StateMachineStore`]: `RaftStateMachine`).
//!
//! One sled `Db` per node holds five trees: the default tree (the store marker, and the redo record of a
//! tree's last write group while it is needed: `quorumlab.redo/<tree>`), `raft_log`
//! (entries by big-endian index), `raft_state` (vote, committed, last purged), `sm` (applied id,
//! membership, keys and client sessions, one tree so each apply is one atomic batch) and
//! `snapshot` (the current snapshot's meta and data).
//!
//! # Durability
//! [`Durability::Fsync`] (real processes) flushes sled before acknowledging an append, before
//! `save_vote` returns, when a log is truncated or purged, and when a snapshot is saved or
//! installed. [`Durability::ProcessCrash`] never calls sled's flush: the simulator keeps the
//! `sled::Db` alive across a simulated crash, as an OS page cache survives a process crash, so
//! every completed write survives. On a [`SimDisk`] (what the simulator uses, via [`open_sim`])
//! the same flush points as `Fsync` empty an undo journal instead, so a simulated power loss
//! loses exactly what a real one could. A write is a synchronous sled call with no `.await`
//! inside it, so a crash (which drops the node's futures at an await point) never cuts one in half.
//!
//! # Observation
//! [`open_sim`] takes an optional [`StoreObserver`] told of every vote, append, truncate, purge,
//! commit, apply, snapshot install and flush as it is written (see [`observe`]).
//!
//! # Caller duties
//! 1. Open each node's storage once: [`open_dir`] for a real process, [`open_db`] in simulation.
//!    Never hold two stores on one `Db` at a time (two writers would interleave one log); in
//!    simulation drop the old node before reopening after `bounce`.
//! 2. In simulation, create each node's `Db` with [`sim_db`] before the first start and keep
//!    that handle outside the turmoil host, so `crash` + `bounce` reopens the same state.
//! 3. Give both stores to `openraft::Raft::new` and write to the trees through nothing else.
//! 4. Serve a read from [`KvReader`] only after `Raft::ensure_linearizable` has returned (it
//!    waits until the state machine has applied the read index).
//! 5. Clients keep at most one write outstanding per `client_id` and increase `seq` by one per
//!    new write; a retry reuses the same `seq` (see [`kv::SessionCheck`]).
//! 6. openraft decides when to snapshot and purge; set its snapshot policy and
//!    `max_in_snapshot_log_to_keep` low enough in tests that purge (and catch-up by snapshot)
//!    actually happens.
//! 7. Sessions are kept forever, one record per `client_id` ever seen, and travel in every
//!    snapshot: give each client process one id, not one per request.

// openraft's traits fix `StorageError` (224 bytes) as the error type; our helpers return what
// the traits return instead of boxing and unboxing on every call.
#![allow(clippy::result_large_err)]

mod codec;
mod disk;
pub mod kv;
mod leader_flush;
mod log_store;
pub mod observe;
mod snapshot;
mod state_machine;
#[cfg(test)]
mod tests;
mod writes;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use disk::Disk;
pub use disk::{PowerLoss, SimDisk};
pub use leader_flush::FlushGate;
pub use log_store::{LogIo, LogIoReader, LogStore, ABDICATED};
pub use observe::{StoreChange, StoreEvent, StoreObserver};
pub use snapshot::SnapshotBuilder;
pub use state_machine::{KvReader, StateMachineStore};

use crate::node::PlantedBug;
use crate::types::{NodeId, StorageError};

/// When a write counts as durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Survive power loss: flush to disk before acknowledging an append, before `save_vote`
    /// returns, and when a snapshot is saved or installed. For real processes.
    ///
    /// `apply` does not flush: after power loss the state machine may come back behind, and
    /// openraft re-applies the durable log from its applied id (or, if the log was purged,
    /// [`open_dir`] reinstalls the durable snapshot first). Responses are deterministic, so
    /// re-applying gives the same answers and sessions.
    Fsync,
    /// Survive a crash of the process only, because the `sled::Db` outlives it. For simulation,
    /// where an fsync buys nothing and costs most of the run time.
    ProcessCrash,
}

/// Why storage could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{} is not a quorumlab data directory (no quorumlab store marker)", path.display())]
    NotAStore { path: PathBuf },
    #[error("{} holds quorumlab store format {found}; this build reads format {expected}", path.display())]
    UnsupportedFormat { path: PathBuf, found: String, expected: u32 },
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot open the sled store at {} (is another node using it?): {source}", path.display())]
    Sled { path: PathBuf, source: sled::Error },
    #[error("cannot recover the store at {}: {source}", path.display())]
    Recover { path: PathBuf, source: Box<StorageError> },
}

/// Key of the store marker in the default tree.
const MARKER_KEY: &[u8] = b"quorumlab.store";
/// Marker value: this prefix, then the format version as a big-endian `u32`.
const MARKER_MAGIC: &[u8] = b"quorumlab-store/";
/// Version of the on-disk layout described in the module docs; bump it when the layout changes.
///
/// 2 added redo records (format 1 wrote each group as a sled batch). A format-1 store opens and is marked 2: it
/// holds no redo record, and everything else is unchanged.
pub const STORE_FORMAT: u32 = 2;
/// The older format this build still opens (see [`STORE_FORMAT`]).
const UPGRADABLE_FORMAT: u32 = 1;

/// Where a simulation Db lives, for error messages (sled does not expose its temporary path).
const SIM_DB_LOCATION: &str = "(simulation sled db)";

/// Opens (creating if needed) the store in `path`, for a real node process.
///
/// Fails, without writing anything, when `path` is a non-empty directory that is not a sled
/// store, and fails when it is a sled store without the quorumlab marker.
pub fn open_dir(path: &Path, durability: Durability) -> Result<(LogStore, StateMachineStore), OpenError> {
    check_dir_before_open(path)?;
    let db =
        sled::Config::new().path(path).open().map_err(|source| OpenError::Sled { path: path.to_path_buf(), source })?;
    open_at(Disk::plain(db, durability), path)
}

/// Opens the store in an already open `Db`, for the simulator, which keeps the `Db` alive across
/// a simulated crash of the node (caller duty 2).
pub fn open_db(db: sled::Db, durability: Durability) -> Result<(LogStore, StateMachineStore), OpenError> {
    open_at(Disk::plain(db, durability), Path::new(SIM_DB_LOCATION))
}

/// Opens node `node`'s store on a simulated disk, which honours the flush points of
/// [`Durability::Fsync`] and can lose power ([`SimDisk::power_loss`]). `observer`, if given, is
/// told of every write (a [`StoreChange::Opened`] first). `bug` plants a storage bug
/// (`AckBeforeFlush`, `ForgetVoteOnRestart`) for a negative-control test; other bugs are the
/// node's business and ignored here. Only the simulator calls this, so no real configuration
/// can plant a bug in storage.
pub fn open_sim(
    disk: &SimDisk,
    node: NodeId,
    observer: Option<Arc<dyn StoreObserver>>,
    bug: Option<PlantedBug>,
) -> Result<(LogStore, StateMachineStore), OpenError> {
    let mut d = Disk::simulated(disk, observer.map(|o| observe::Observer::new(node, o)));
    d.ack_before_flush = bug == Some(PlantedBug::AckBeforeFlush);
    d.forget_vote_on_restart = bug == Some(PlantedBug::ForgetVoteOnRestart);
    open_at(d, Path::new(SIM_DB_LOCATION))
}

/// A temporary sled `Db` tuned for simulation: removed when the last handle drops, no background
/// flush thread, a modest cache (a simulation runs many nodes in one process).
pub fn sim_db() -> Result<sled::Db, OpenError> {
    sled::Config::new()
        .temporary(true)
        .flush_every_ms(None)
        .cache_capacity(16 * 1024 * 1024)
        .open()
        .map_err(|source| OpenError::Sled { path: PathBuf::from(SIM_DB_LOCATION), source })
}

/// Refuses a non-empty directory that sled did not create, before sled writes its files there.
fn check_dir_before_open(path: &Path) -> Result<(), OpenError> {
    let io_err = |source| OpenError::Io { path: path.to_path_buf(), source };
    if !path.exists() {
        return Ok(());
    }
    if !path.is_dir() {
        return Err(OpenError::NotADirectory { path: path.to_path_buf() });
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io_err)? {
        names.push(entry.map_err(io_err)?.file_name());
    }
    let has = |name: &str| names.iter().any(|n| n == name);
    let made_by_sled = has("conf") && has("db");
    if !names.is_empty() && !made_by_sled {
        return Err(OpenError::NotAStore { path: path.to_path_buf() });
    }
    Ok(())
}

fn open_at(disk: Disk, location: &Path) -> Result<(LogStore, StateMachineStore), OpenError> {
    let db = &disk.db;
    let sled_err = |source| OpenError::Sled { path: location.to_path_buf(), source };
    let recover_err = |source| OpenError::Recover { path: location.to_path_buf(), source: Box::new(source) };
    let write_marker = || -> sled::Result<()> {
        let mut marker = MARKER_MAGIC.to_vec();
        marker.extend_from_slice(&STORE_FORMAT.to_be_bytes());
        db.insert(MARKER_KEY, marker)?;
        if disk.durability == Durability::Fsync {
            db.flush()?;
        }
        Ok(())
    };
    match db.get(MARKER_KEY).map_err(sled_err)? {
        Some(marker) => {
            if check_marker(&marker, location)? == UPGRADABLE_FORMAT {
                write_marker().map_err(sled_err)?;
            }
        }
        None if is_empty(db).map_err(sled_err)? => write_marker().map_err(sled_err)?,
        None => return Err(OpenError::NotAStore { path: location.to_path_buf() }),
    }
    // Before anything reads a tree: a write group that a crash cut short is made whole.
    disk.replay_redo().map_err(|e| match e {
        disk::ReplayError::Sled(source) => sled_err(source),
        disk::ReplayError::Corrupt(msg) => recover_err(codec::read_store(codec::CorruptRecord(msg))),
    })?;
    let log = LogStore::open(&disk).map_err(recover_err)?;
    log.finish_interrupted_purge().map_err(recover_err)?;
    let mut sm = StateMachineStore::open(&disk, log.early()).map_err(recover_err)?;
    sm.catch_up_with_snapshot().map_err(recover_err)?;
    if disk.forget_vote_on_restart {
        log.forget_vote().map_err(recover_err)?;
    }
    // On a simulated disk, recovery is flushed before the node starts: the observer's view of
    // what is durable starts from what it is told here.
    disk.flush_now();
    if disk.observer.is_some() {
        let mut opened = log.opened_state().map_err(recover_err)?;
        if let StoreChange::Opened { applied, .. } = &mut opened {
            *applied = sm.applied();
        }
        disk.emit(|| opened);
    }
    Ok((log, sm))
}

/// The store format a marker names, if this build opens it.
fn check_marker(marker: &[u8], location: &Path) -> Result<u32, OpenError> {
    let Some(version) = marker.strip_prefix(MARKER_MAGIC) else {
        return Err(OpenError::NotAStore { path: location.to_path_buf() });
    };
    match <[u8; 4]>::try_from(version).map(u32::from_be_bytes) {
        Ok(v @ (STORE_FORMAT | UPGRADABLE_FORMAT)) => Ok(v),
        Ok(other) => Err(OpenError::UnsupportedFormat {
            path: location.to_path_buf(),
            found: other.to_string(),
            expected: STORE_FORMAT,
        }),
        Err(_) => Err(OpenError::UnsupportedFormat {
            path: location.to_path_buf(),
            found: format!("{version:?}"),
            expected: STORE_FORMAT,
        }),
    }
}

/// A Db with no record in any tree: fresh (possibly left by a crash before the marker was written).
fn is_empty(db: &sled::Db) -> Result<bool, sled::Error> {
    if !db.is_empty() {
        return Ok(false);
    }
    for name in db.tree_names() {
        if !db.open_tree(&name)?.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}
