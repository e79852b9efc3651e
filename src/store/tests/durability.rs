//! Reopening keeps everything acknowledged, in both modes, and recovery finishes what a crash
//! interrupted.

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{RaftLogReader, RaftSnapshotBuilder};

use super::{apply_one, blank_entry, get, log_id, membership_entry, put, request_entry};
use crate::store::codec::encode;
use crate::store::disk::Disk;
use crate::store::snapshot::SnapshotStore;
use crate::store::{open_db, open_dir, sim_db, Durability, LogStore, StateMachineStore};
use crate::types::{Entry, Response, Vote};

fn entries(from: u64, to: u64) -> Vec<Entry> {
    (from..=to).map(|i| request_entry(i, 3, i, put(&format!("k{i}"), &format!("v{i}")))).collect()
}

/// Writes a log, a vote, a committed id and applied state, then purges the log's start.
async fn write_history(log: &mut LogStore, sm: &mut StateMachineStore) {
    log.blocking_append([membership_entry(1, &[1, 2, 3])]).await.expect("append");
    log.blocking_append(entries(2, 10)).await.expect("append");
    log.save_vote(&Vote::new(4, 2)).await.expect("vote");
    log.save_committed(Some(log_id(1, 8))).await.expect("committed");
    sm.apply(log.try_get_log_entries(1..=8).await.expect("read")).await.expect("apply");
    sm.get_snapshot_builder().await.build_snapshot().await.expect("snapshot");
    log.purge(log_id(1, 5)).await.expect("purge");
}

async fn check_history(log: &mut LogStore, sm: &mut StateMachineStore) {
    let state = log.get_log_state().await.expect("log state");
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 5)));
    assert_eq!(state.last_log_id, Some(log_id(1, 10)));
    let kept = log.try_get_log_entries(0..100).await.expect("read");
    let indexes: Vec<u64> = kept.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, (6..=10).collect::<Vec<_>>());
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new(4, 2)));
    assert_eq!(log.read_committed().await.expect("committed"), Some(log_id(1, 8)));

    let (applied, membership) = sm.applied_state().await.expect("applied");
    assert_eq!(applied, Some(log_id(1, 8)));
    assert_eq!(membership.log_id(), &Some(log_id(1, 1)));
    assert_eq!(sm.reader().applied_index(), 8);
    assert_eq!(get(sm, "k8"), Some(("v8".into(), 8)));
    assert_eq!(get(sm, "k9"), None, "entry 9 was appended, never applied");
    let snapshot = sm.get_current_snapshot().await.expect("snapshot").expect("a snapshot");
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 8)));
    // The session survived: a retry of client 3's seq 8 is answered from it.
    let retry = apply_one(sm, request_entry(9, 3, 8, put("k8", "v8"))).await;
    assert_eq!(retry, Response { revision: 8, succeeded: true, ..Response::default() });
}

#[tokio::test]
async fn reopening_a_directory_keeps_the_log_vote_state_and_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("node-1");
    {
        let (mut log, mut sm) = open_dir(&path, Durability::Fsync).expect("first open");
        write_history(&mut log, &mut sm).await;
    }
    // The log's flusher task holds the Db until it sees the store gone; let it run once, as a process that
    // exits would end it.
    tokio::task::yield_now().await;
    let (mut log, mut sm) = open_dir(&path, Durability::Fsync).expect("reopen");
    check_history(&mut log, &mut sm).await;
}

#[tokio::test]
async fn reopening_a_kept_sim_db_after_a_crash_keeps_everything_without_fsync() {
    let db = sim_db().expect("sim db");
    {
        let (mut log, mut sm) = open_db(db.clone(), Durability::ProcessCrash).expect("first open");
        write_history(&mut log, &mut sm).await;
        // The node's stores drop here, as when turmoil crashes the host; the Db lives on.
    }
    let (mut log, mut sm) = open_db(db, Durability::ProcessCrash).expect("reopen");
    check_history(&mut log, &mut sm).await;
}

#[tokio::test]
async fn truncate_removes_the_conflicting_suffix_durably() {
    let db = sim_db().expect("sim db");
    {
        let (mut log, _sm) = open_db(db.clone(), Durability::ProcessCrash).expect("open");
        log.blocking_append(entries(1, 6)).await.expect("append");
        log.truncate(log_id(1, 4)).await.expect("truncate");
        log.blocking_append([blank_entry(4)]).await.expect("append");
    }
    let (mut log, _sm) = open_db(db, Durability::ProcessCrash).expect("reopen");
    let state = log.get_log_state().await.expect("state");
    assert_eq!(state.last_log_id, Some(log_id(1, 4)));
    let kept = log.try_get_log_entries(1..).await.expect("read");
    assert_eq!(kept.len(), 4);
    assert!(matches!(kept[3].payload, openraft::EntryPayload::Blank), "entry 4 is the new one");
}

/// A crash after `purge` recorded `last_purged` but before it deleted the entries.
#[tokio::test]
async fn reopening_after_an_interrupted_purge_finishes_it() {
    let db = sim_db().expect("sim db");
    {
        let (mut log, _sm) = open_db(db.clone(), Durability::ProcessCrash).expect("open");
        log.blocking_append(entries(1, 6)).await.expect("append");
        let state = db.open_tree("raft_state").expect("tree");
        state.insert("last_purged", encode(&log_id(1, 3)).expect("encode")).expect("insert");
    }
    let (mut log, _sm) = open_db(db, Durability::ProcessCrash).expect("reopen");
    let kept = log.try_get_log_entries(0..).await.expect("read");
    assert_eq!(kept.first().map(|e| e.log_id.index), Some(4));
    assert_eq!(log.get_log_state().await.expect("state").last_purged_log_id, Some(log_id(1, 3)));
}

/// A crash during `install_snapshot` after the snapshot was saved but before the state machine
/// was replaced.
#[tokio::test]
async fn reopening_after_an_interrupted_install_catches_the_state_machine_up() {
    let source_db = sim_db().expect("sim db");
    let (_, mut source) = open_db(source_db, Durability::ProcessCrash).expect("open source");
    source.apply([blank_entry(1), request_entry(2, 4, 1, put("k", "v"))]).await.expect("apply");
    let snap = source.get_snapshot_builder().await.build_snapshot().await.expect("build");

    let db = sim_db().expect("sim db");
    {
        let _stores = open_db(db.clone(), Durability::ProcessCrash).expect("open");
        let disk = Disk::plain(db.clone(), Durability::ProcessCrash);
        SnapshotStore::open(&db).expect("tree").replace(&disk, &snap.meta, &snap.snapshot.0).expect("save");
    }
    let (_, mut sm) = open_db(db, Durability::ProcessCrash).expect("reopen");
    assert_eq!(sm.applied_state().await.expect("applied").0, Some(log_id(1, 2)));
    assert_eq!(get(&sm, "k"), Some(("v".into(), 2)));
    let retry = apply_one(&mut sm, request_entry(3, 4, 1, put("k", "v"))).await;
    assert_eq!(retry.revision, 2, "the session came with the snapshot");
}
