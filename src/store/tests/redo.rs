//! `Fsync`'s write groups are all-or-nothing through a crash: a group cut short after its redo record is made whole
//! when the store opens, and a replay never undoes a later write.
//!
//! A cut is made by hand: the group's record and first write stay, its later writes are taken back directly in
//! sled (as if the crash came between them), and everything is flushed, so a reopen sees exactly that.

use sled::Tree;

use crate::store::disk::{Disk, REDO_PREFIX};
use crate::store::writes::Writes;
use crate::store::{open_dir, Durability};

fn group(pairs: &[(&str, &str)]) -> Writes {
    let mut w = Writes::default();
    for (k, v) in pairs {
        w.insert(k.as_bytes(), v.as_bytes());
    }
    w
}

fn get(tree: &Tree, key: &str) -> Option<String> {
    tree.get(key).expect("read").map(|v| String::from_utf8(v.to_vec()).expect("utf-8"))
}

fn records(db: &sled::Db) -> usize {
    db.scan_prefix(REDO_PREFIX).count()
}

/// A store directory whose tree `t` holds the group {a, b, c} cut after its first write.
fn cut_group(dir: &std::path::Path) {
    let db = sled::Config::new().path(dir).open().expect("sled");
    let disk = Disk::plain(db.clone(), Durability::Fsync);
    let t = db.open_tree("t").expect("tree");
    disk.apply(&t, group(&[("a", "1"), ("b", "1"), ("c", "1")])).expect("group");
    t.remove("b").expect("cut");
    t.remove("c").expect("cut");
    db.flush().expect("flush");
    // The control: what a crash left is torn until the store opens.
    assert_eq!((get(&t, "a"), get(&t, "b"), get(&t, "c")), (Some("1".into()), None, None));
    assert_eq!(records(&db), 1);
}

#[test]
fn a_group_cut_short_is_made_whole_when_the_store_opens() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(open_dir(dir.path(), Durability::Fsync).expect("a new store"));
    cut_group(dir.path());
    drop(open_dir(dir.path(), Durability::Fsync).expect("reopen"));
    let db = sled::Config::new().path(dir.path()).open().expect("sled");
    let t = db.open_tree("t").expect("tree");
    assert_eq!((get(&t, "a"), get(&t, "b"), get(&t, "c")), (Some("1".into()), Some("1".into()), Some("1".into())));
    assert_eq!(records(&db), 0, "the replayed record is removed");
}

#[test]
fn a_single_write_after_a_group_removes_its_record_so_a_replay_cannot_undo_it() {
    let db = sled::Config::new().temporary(true).open().expect("sled");
    let disk = Disk::plain(db.clone(), Durability::Fsync);
    let t = db.open_tree("t").expect("tree");
    let u = db.open_tree("u").expect("tree");
    disk.apply(&t, group(&[("a", "1"), ("b", "1")])).expect("group");
    disk.apply(&u, group(&[("x", "1"), ("y", "1")])).expect("group");
    assert_eq!(records(&db), 2, "one record per tree");
    disk.apply(&t, group(&[("a", "2")])).expect("single write");
    assert_eq!(records(&db), 1, "t's record is gone, u's stays");
    disk.apply(&t, group(&[("b", "2")])).expect("another single write");
    assert_eq!(disk.replay_redo().expect("replay"), 1);
    assert_eq!((get(&t, "a"), get(&t, "b")), (Some("2".into()), Some("2".into())), "later writes survive a replay");
    assert_eq!((get(&u, "x"), get(&u, "y")), (Some("1".into()), Some("1".into())));
}

#[test]
fn a_store_of_the_previous_format_opens_and_is_marked_current() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(open_dir(dir.path(), Durability::Fsync).expect("a new store"));
    {
        let db = sled::Config::new().path(dir.path()).open().expect("sled");
        db.insert(crate::store::MARKER_KEY, b"quorumlab-store/\x00\x00\x00\x01".to_vec()).expect("insert");
        db.flush().expect("flush");
    }
    drop(open_dir(dir.path(), Durability::Fsync).expect("format 1 opens"));
    let db = sled::Config::new().path(dir.path()).open().expect("sled");
    let marker = db.get(crate::store::MARKER_KEY).expect("read").expect("marker");
    assert_eq!(&marker[..], b"quorumlab-store/\x00\x00\x00\x02");
}
