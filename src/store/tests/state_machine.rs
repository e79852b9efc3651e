//! The state machine's own guarantees: revisions, CAS, exactly-once, snapshot transfer.

use openraft::storage::RaftStateMachine;
use openraft::RaftSnapshotBuilder;

use super::{apply_one, blank_entry, get, log_id, membership_entry, put, request_entry};
use crate::store::{open_db, sim_db, Durability, StateMachineStore};
use crate::types::{Op, Response};

fn fresh_sm() -> StateMachineStore {
    let db = sim_db().expect("sim db");
    open_db(db, Durability::ProcessCrash).expect("open").1
}

fn cas(key: &str, expect_value: Option<Option<&str>>, expect_revision: Option<u64>, new_value: Option<&str>) -> Op {
    Op::Cas {
        key: key.as_bytes().to_vec(),
        expect_value: expect_value.map(|e| e.map(|v| v.as_bytes().to_vec())),
        expect_revision,
        new_value: new_value.map(|v| v.as_bytes().to_vec()),
    }
}

fn resp(revision: u64, succeeded: bool, prev_value: Option<&str>, prev_revision: u64) -> Response {
    Response {
        revision,
        succeeded,
        prev_value: prev_value.map(|v| v.as_bytes().to_vec()),
        prev_revision,
        ..Response::default()
    }
}

#[tokio::test]
async fn revisions_are_the_applying_log_index_and_cas_follows_them() {
    let mut sm = fresh_sm();
    assert_eq!(apply_one(&mut sm, blank_entry(1)).await, resp(1, true, None, 0));
    assert_eq!(apply_one(&mut sm, request_entry(2, 0, 0, put("a", "1"))).await, resp(2, true, None, 0));
    assert_eq!(apply_one(&mut sm, request_entry(3, 0, 0, put("a", "2"))).await, resp(3, true, Some("1"), 2));
    assert_eq!(get(&sm, "a"), Some(("2".into(), 3)));

    // Stale revision: refused, nothing written, the current record reported.
    let stale = apply_one(&mut sm, request_entry(4, 0, 0, cas("a", None, Some(2), Some("x")))).await;
    assert_eq!(stale, resp(4, false, Some("2"), 3));
    assert_eq!(get(&sm, "a"), Some(("2".into(), 3)));

    // Current revision and value: swapped, mod_revision moves to this index.
    let swap = apply_one(&mut sm, request_entry(5, 0, 0, cas("a", Some(Some("2")), Some(3), Some("3")))).await;
    assert_eq!(swap, resp(5, true, Some("2"), 3));
    assert_eq!(get(&sm, "a"), Some(("3".into(), 5)));

    // Create-if-absent, then the same again fails.
    let created = apply_one(&mut sm, request_entry(6, 0, 0, cas("b", Some(None), None, Some("new")))).await;
    assert_eq!(created, resp(6, true, None, 0));
    let again = apply_one(&mut sm, request_entry(7, 0, 0, cas("b", Some(None), None, Some("again")))).await;
    assert_eq!(again, resp(7, false, Some("new"), 6));
    assert_eq!(get(&sm, "b"), Some(("new".into(), 6)));

    // CAS to None deletes; deleting an absent key succeeds with no previous value.
    assert_eq!(
        apply_one(&mut sm, request_entry(8, 0, 0, cas("b", None, Some(6), None))).await,
        resp(8, true, Some("new"), 6)
    );
    assert_eq!(get(&sm, "b"), None);
    let del = apply_one(&mut sm, request_entry(9, 0, 0, Op::Delete { key: b"b".to_vec() })).await;
    assert_eq!(del, resp(9, true, None, 0));
    assert_eq!(apply_one(&mut sm, membership_entry(10, &[1, 2, 3])).await, resp(10, true, None, 0));
    assert_eq!(sm.reader().applied_index(), 10);
    assert_eq!(sm.applied_state().await.expect("applied").0, Some(log_id(1, 10)));
}

#[tokio::test]
async fn a_duplicate_returns_the_first_response_and_does_not_reapply() {
    let mut sm = fresh_sm();
    let first = apply_one(&mut sm, request_entry(1, 7, 1, put("k", "v1"))).await;
    assert_eq!(first, resp(1, true, None, 0));
    apply_one(&mut sm, request_entry(2, 0, 0, put("k", "other"))).await;

    // The retry of (client 7, seq 1) lands at index 3: same answer, no write.
    let retry = apply_one(&mut sm, request_entry(3, 7, 1, put("k", "v1"))).await;
    assert_eq!(retry, first);
    assert_eq!(get(&sm, "k"), Some(("other".into(), 2)));

    // The next seq applies; then an older seq is also answered without applying.
    let second = apply_one(&mut sm, request_entry(4, 7, 2, put("k", "v2"))).await;
    assert_eq!(second, resp(4, true, Some("other"), 2));
    assert_eq!(apply_one(&mut sm, request_entry(5, 7, 1, put("k", "v1"))).await, second);
    assert_eq!(get(&sm, "k"), Some(("v2".into(), 4)));

    // Client id 0 opts out: the same (0, seq) applies every time.
    apply_one(&mut sm, request_entry(6, 0, 1, put("z", "a"))).await;
    let again = apply_one(&mut sm, request_entry(7, 0, 1, put("z", "b"))).await;
    assert_eq!(again, resp(7, true, Some("a"), 6));
}

#[tokio::test]
async fn a_duplicate_inside_one_apply_batch_is_caught() {
    let mut sm = fresh_sm();
    let responses = sm
        .apply([
            request_entry(1, 9, 1, put("k", "a")),
            request_entry(2, 9, 1, put("k", "a")),
            request_entry(3, 9, 2, cas("k", Some(Some("a")), Some(1), Some("b"))),
        ])
        .await
        .expect("apply");
    assert_eq!(responses, vec![resp(1, true, None, 0), resp(1, true, None, 0), resp(3, true, Some("a"), 1)]);
    assert_eq!(get(&sm, "k"), Some(("b".into(), 3)));
}

#[tokio::test]
async fn a_snapshot_installed_on_a_fresh_store_gives_identical_reads_and_sessions() {
    let mut leader = fresh_sm();
    leader
        .apply([
            membership_entry(1, &[1, 2, 3]),
            request_entry(2, 5, 1, put("a", "1")),
            request_entry(3, 6, 1, put("b", "2")),
            request_entry(4, 5, 2, Op::Delete { key: b"a".to_vec() }),
            request_entry(5, 0, 0, put("c", "3")),
        ])
        .await
        .expect("apply");
    let snap = leader.get_snapshot_builder().await.build_snapshot().await.expect("build");
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, 5)));
    // A write after the build must not leak into it.
    apply_one(&mut leader, request_entry(6, 0, 0, put("late", "x"))).await;

    let mut follower = fresh_sm();
    let mut receiving = follower.begin_receiving_snapshot().await.expect("begin");
    *receiving = (*snap.snapshot).clone();
    follower.install_snapshot(&snap.meta, receiving).await.expect("install");

    for key in ["a", "b", "c"] {
        assert_eq!(get(&follower, key), get(&leader, key), "key {key}");
    }
    assert_eq!(get(&follower, "b"), Some(("2".into(), 3)));
    assert_eq!(get(&follower, "late"), None);
    assert_eq!(follower.reader().applied_index(), 5);
    let (applied, membership) = follower.applied_state().await.expect("applied");
    assert_eq!(applied, Some(log_id(1, 5)));
    assert_eq!(membership.log_id(), &Some(log_id(1, 1)));
    let current = follower.get_current_snapshot().await.expect("current").expect("a snapshot");
    assert_eq!(current.meta, snap.meta);

    // Sessions travelled too: client 5's retry of seq 2 is answered, not reapplied.
    let retry = apply_one(&mut follower, request_entry(6, 5, 2, Op::Delete { key: b"a".to_vec() })).await;
    assert_eq!(retry, resp(4, true, Some("1"), 2));
}

#[tokio::test]
async fn a_build_that_finishes_after_a_newer_install_does_not_replace_it() {
    let mut source = fresh_sm();
    source.apply([blank_entry(1), request_entry(2, 0, 0, put("k", "v"))]).await.expect("apply");
    let newer = source.get_snapshot_builder().await.build_snapshot().await.expect("build");

    let mut sm = fresh_sm();
    apply_one(&mut sm, blank_entry(1)).await;
    let mut older_builder = sm.get_snapshot_builder().await;
    let mut receiving = sm.begin_receiving_snapshot().await.expect("begin");
    *receiving = (*newer.snapshot).clone();
    sm.install_snapshot(&newer.meta, receiving).await.expect("install");
    let older = older_builder.build_snapshot().await.expect("late build");
    assert_eq!(older.meta.last_log_id, Some(log_id(1, 1)));

    let current = sm.get_current_snapshot().await.expect("current").expect("a snapshot");
    assert_eq!(current.meta, newer.meta);
    assert_eq!(get(&sm, "k"), Some(("v".into(), 2)));
}

#[tokio::test]
async fn snapshot_data_that_disagrees_with_its_meta_is_refused() {
    let mut source = fresh_sm();
    source.apply([blank_entry(1), blank_entry(2)]).await.expect("apply");
    let snap = source.get_snapshot_builder().await.build_snapshot().await.expect("build");
    let mut meta = snap.meta.clone();
    meta.last_log_id = Some(log_id(1, 9));

    let mut sm = fresh_sm();
    let result = sm.install_snapshot(&meta, snap.snapshot.clone()).await;
    assert!(result.is_err(), "mismatched snapshot installed");
    let garbage = Box::new(crate::types::SnapshotData(vec![1, 2, 3]));
    assert!(sm.install_snapshot(&snap.meta, garbage).await.is_err(), "garbage snapshot installed");
    assert_eq!(sm.applied_state().await.expect("applied").0, None);
    assert!(sm.get_current_snapshot().await.expect("current").is_none());
}

/// A leader's batch: every command applies in order at the entry's index, with its own response and session, so a
/// retry of one of them, alone or in a later batch, is answered from its session and not applied again.
#[tokio::test]
async fn a_batch_applies_each_command_with_its_own_session() {
    use crate::types::Request;
    let mut sm = fresh_sm();
    apply_one(&mut sm, request_entry(1, 7, 1, put("a", "1"))).await;
    let batch = |requests: Vec<Request>| Op::Batch(requests);
    let req = |client_id, seq, op| Request { client_id, seq, op };
    let applied = apply_one(
        &mut sm,
        request_entry(
            2,
            0,
            0,
            batch(vec![
                req(8, 1, put("b", "1")),
                req(7, 2, put("a", "2")),
                req(9, 1, cas("a", None, Some(1), Some("x"))),
            ]),
        ),
    )
    .await;
    assert_eq!(
        applied.batch,
        vec![
            resp(2, true, None, 0),
            resp(2, true, Some("1"), 1),
            // Applied after client 7's put in the same entry, so revision 1 is no longer the key's. (The batcher
            // never puts one key twice in a batch; the state machine applies whatever the log holds, in order.)
            resp(2, false, Some("2"), 2)
        ]
    );
    assert_eq!(get(&sm, "a"), Some(("2".into(), 2)));
    assert_eq!(get(&sm, "b"), Some(("1".into(), 2)));

    // Client 8's retry, inside a later batch: answered from its session, the key untouched.
    let retried = apply_one(
        &mut sm,
        request_entry(3, 0, 0, batch(vec![req(8, 1, put("b", "again")), req(10, 1, put("c", "1"))])),
    )
    .await;
    assert_eq!(retried.batch, vec![resp(2, true, None, 0), resp(3, true, None, 0)]);
    assert_eq!(get(&sm, "b"), Some(("1".into(), 2)));
    // And alone.
    assert_eq!(apply_one(&mut sm, request_entry(4, 7, 2, put("a", "again"))).await, resp(2, true, Some("1"), 1));
    assert_eq!(get(&sm, "a"), Some(("2".into(), 2)));
}

#[test]
fn a_client_cannot_send_a_batch() {
    let err = Op::Batch(vec![]).validate().expect_err("a batch from a client is refused");
    assert!(err.contains("leader only"), "{err}");
}
