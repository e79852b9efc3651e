//! openraft's own storage test suite, in both durability modes.
//!
//! `Suite::test_all` builds its own tokio runtime per case, so these are plain `#[test]`s.

use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

use crate::store::{open_db, open_dir, sim_db, Durability, LogStore, StateMachineStore};
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

#[test]
fn openraft_storage_suite_passes_with_fsync_dir() -> Result<(), StorageError> {
    Suite::test_all(FsyncDirBuilder)
}

#[test]
fn openraft_storage_suite_passes_with_process_crash_sim_db() -> Result<(), StorageError> {
    Suite::test_all(SimDbBuilder)
}
