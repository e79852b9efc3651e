//! Opening refuses what is not a quorumlab store, with a message naming the path.

use crate::store::{open_db, open_dir, sim_db, Durability, OpenError, MARKER_KEY};

#[test]
fn a_non_empty_foreign_directory_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");

    let err = open_dir(dir.path(), Durability::Fsync).err().expect("must refuse");
    assert!(matches!(err, OpenError::NotAStore { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{} is not a quorumlab data directory (no quorumlab store marker)", dir.path().display())
    );
    let names: Vec<_> =
        std::fs::read_dir(dir.path()).expect("list").filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")], "nothing written");
}

#[test]
fn a_sled_store_of_another_program_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let other = sled::open(dir.path()).expect("sled");
        other.insert("their", "data").expect("insert");
        other.flush().expect("flush");
    }
    let err = open_dir(dir.path(), Durability::Fsync).err().expect("must refuse");
    assert!(err.to_string().contains("is not a quorumlab data directory"), "{err}");
}

#[test]
fn a_file_is_not_a_data_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("write");
    let err = open_dir(&file, Durability::Fsync).err().expect("must refuse");
    assert!(matches!(err, OpenError::NotADirectory { .. }), "{err:?}");
}

#[test]
fn an_empty_or_missing_directory_becomes_a_store_and_reopens() {
    let dir = tempfile::tempdir().expect("temp dir");
    drop(open_dir(dir.path(), Durability::Fsync).expect("empty dir"));
    drop(open_dir(dir.path(), Durability::Fsync).expect("reopen"));
    drop(open_dir(&dir.path().join("a/b"), Durability::Fsync).expect("missing dir"));
}

#[test]
fn a_store_from_a_future_format_is_refused() {
    let db = sim_db().expect("sim db");
    db.insert(MARKER_KEY, b"quorumlab-store/\x00\x00\x00\x09".to_vec()).expect("insert");
    let err = open_db(db, Durability::ProcessCrash).err().expect("must refuse");
    assert!(matches!(err, OpenError::UnsupportedFormat { ref found, expected: 2, .. } if found == "9"), "{err:?}");
}

#[test]
fn a_second_open_of_a_directory_in_use_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let _first = open_dir(dir.path(), Durability::Fsync).expect("first");
    let err = open_dir(dir.path(), Durability::Fsync).err().expect("must refuse");
    assert!(matches!(err, OpenError::Sled { .. }), "{err:?}");
}
