//! Reads of the log answer what sled holds, whether the recently appended entries kept in memory serve them or
//! sled does: across truncation, purge, appends that do not follow the log's end, and a reopen.

use std::ops::RangeBounds;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::RaftLogReader;

use super::{blank_entry, log_id, put, request_entry};
use crate::store::codec::decode;
use crate::store::{open_db, sim_db, Durability, LogStore};
use crate::types::{Entry, LogId};

fn entries(from: u64, to: u64) -> Vec<Entry> {
    (from..=to).map(|i| request_entry(i, 3, i, put(&format!("k{i}"), &format!("v{i}")))).collect()
}

/// The log ids sled itself holds in `range`, decoded from the tree.
fn in_sled(db: &sled::Db, range: impl RangeBounds<u64>) -> Vec<LogId> {
    let tree = db.open_tree("raft_log").expect("tree");
    tree.iter()
        .values()
        .map(|v| decode::<Entry>(&v.expect("value")).expect("an entry").log_id)
        .filter(|id| range.contains(&id.index))
        .collect()
}

async fn read(log: &mut LogStore, range: impl RangeBounds<u64> + Clone + std::fmt::Debug + Send) -> Vec<LogId> {
    log.try_get_log_entries(range).await.expect("read").into_iter().map(|e| e.log_id).collect()
}

#[tokio::test]
async fn reads_agree_with_sled_through_truncate_purge_and_reopen() {
    let db = sim_db().expect("sim db");
    let (mut log, _sm) = open_db(db.clone(), Durability::ProcessCrash).expect("open");
    log.blocking_append(entries(1, 8)).await.expect("append");
    assert_eq!(read(&mut log, 3..6).await, in_sled(&db, 3..6));
    assert_eq!(read(&mut log, 1..).await.len(), 8);

    // A conflict: the tail from 5 on is replaced by entries of a later term.
    log.truncate(log_id(1, 5)).await.expect("truncate");
    let newer: Vec<Entry> = (5..=6).map(|i| Entry { log_id: log_id(2, i), ..blank_entry(i) }).collect();
    log.blocking_append(newer).await.expect("append");
    assert_eq!(read(&mut log, 0..).await, in_sled(&db, 0..));
    assert_eq!(read(&mut log, 5..=6).await, vec![log_id(2, 5), log_id(2, 6)]);
    assert!(read(&mut log, 7..).await.is_empty(), "the truncated entries are gone from every read");

    log.purge(log_id(1, 3)).await.expect("purge");
    assert_eq!(read(&mut log, 0..).await, in_sled(&db, 0..));
    assert_eq!(read(&mut log, 0..).await.first().map(|id| id.index), Some(4));
    drop(log);

    // Reopened: nothing is held in memory; sled answers, then the new tail is held again.
    let (mut log, _sm) = open_db(db.clone(), Durability::ProcessCrash).expect("reopen");
    assert_eq!(read(&mut log, 4..).await, in_sled(&db, 4..));
    log.blocking_append([Entry { log_id: log_id(2, 7), ..blank_entry(7) }]).await.expect("append");
    assert_eq!(read(&mut log, 4..).await, in_sled(&db, 4..));
    assert_eq!(read(&mut log, 7..8).await, vec![log_id(2, 7)]);
}

#[tokio::test]
async fn an_append_that_does_not_follow_the_end_leaves_reads_to_sled() {
    let db = sim_db().expect("sim db");
    let (mut log, _sm) = open_db(db.clone(), Durability::ProcessCrash).expect("open");
    log.blocking_append(entries(1, 4)).await.expect("append");
    // openraft never does this; its storage test suite does. Entry 2 is overwritten in place, 3 and 4 stay.
    log.blocking_append([Entry { log_id: log_id(2, 2), ..blank_entry(2) }]).await.expect("append");
    assert_eq!(read(&mut log, 2..).await, in_sled(&db, 2..));
    assert_eq!(read(&mut log, 2..).await, vec![log_id(2, 2), log_id(1, 3), log_id(1, 4)]);
    log.blocking_append(entries(5, 6)).await.expect("append");
    assert_eq!(read(&mut log, 0..).await, in_sled(&db, 0..));
}
