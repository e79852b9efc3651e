//! The log's I/O counters (shown by `Status` and per write by `benches/etcd_compare.rs`) count what happened:
//! every `append` call, the entries it carried, and every flush that made appends durable.

use openraft::storage::RaftLogStorageExt;

use super::{put, request_entry};
use crate::store::{open_dir, Durability, LogIo};

#[tokio::test]
async fn appends_entries_and_flushes_are_counted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut log, _sm) = open_dir(dir.path(), Durability::Fsync).expect("open");
    let io = log.io();
    assert_eq!(io.read(), LogIo::default(), "a store just opened has done no log I/O");

    let three = (1..=3).map(|i| request_entry(i, 1, i, put(&format!("k{i}"), "v")));
    log.blocking_append(three).await.expect("append");
    assert_eq!(
        io.read(),
        LogIo { appends: 1, entries: 3, flushes: 1, early: 0 },
        "one append of three entries, one flush"
    );

    // openraft 0.9 waits for each append's callback before its next append, as these blocking appends do, so
    // every append acknowledged after its flush costs a flush of its own: the leader's bottleneck measured in
    // issue 12. (This store serves no node, so nothing goes early; see `leader_flush` for what does.)
    for i in 4..=5 {
        log.blocking_append([request_entry(i, 1, i, put("k", "v"))]).await.expect("append");
    }
    assert_eq!(io.read(), LogIo { appends: 3, entries: 5, flushes: 3, early: 0 });
    assert_eq!(log.clone().io().read(), io.read(), "a clone of the store shares its counters");
}
