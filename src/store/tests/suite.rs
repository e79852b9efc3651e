//! openraft's own storage test suite, in both durability modes.
//!
//! `Suite::test_all` builds its own tokio runtime per case, so these are plain `#[test]`s.

use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

use crate::store::{open_db, open_dir, open_sim, sim_db, Durability, LogStore, SimDisk, StateMachineStore};
use crate::types::{StorageError, TypeConfig};

/// Real mode: a fresh temporary directory per case, flushed on every append.
struct FsyncDirBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for FsyncDirBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("create temp dir");
        let (log, sm) = open_dir(&dir.path().join("node"), Durability::Fsync).expect("open store");
        Ok((dir, log, sm))
    }
}

/// Simulation mode: a temporary sled Db, never flushed.
struct SimDbBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, ()> for SimDbBuilder {
    async fn build(&self) -> Result<((), LogStore, StateMachineStore), StorageError> {
        let db = sim_db().expect("open sim db");
        let (log, sm) = open_db(db, Durability::ProcessCrash).expect("open store");
        Ok(((), log, sm))
    }
}

/// Simulation with power loss: a fresh simulated disk per case, journaling every write.
struct SimDiskBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, SimDisk> for SimDiskBuilder {
    async fn build(&self) -> Result<(SimDisk, LogStore, StateMachineStore), StorageError> {
        let disk = SimDisk::new().expect("simulated disk");
        let (log, sm) = open_sim(&disk, 1, None, None).expect("open store");
        Ok((disk, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes_on_a_simulated_disk() -> Result<(), StorageError> {
    Suite::test_all(SimDiskBuilder)
}

#[test]
fn openraft_storage_suite_passes_with_fsync_dir() -> Result<(), StorageError> {
    Suite::test_all(FsyncDirBuilder)
}

#[test]
fn openraft_storage_suite_passes_with_process_crash_sim_db() -> Result<(), StorageError> {
    Suite::test_all(SimDbBuilder)
}
