//! Byte layout of every record the store writes, and the mapping of low-level failures to
//! openraft's [`StorageError`].
//!
//! Values are bincode 1.3 (fixed-width integers, little-endian). Keys that must sort by log
//! index are big-endian `u64`, so sled's byte order is index order.

use std::error::Error;

use openraft::{ErrorSubject, ErrorVerb, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::types::{NodeId, StorageError};

/// A record that is present but cannot be what this module wrote: a truncated key, an unknown
/// version, a snapshot whose data disagrees with its metadata.
#[derive(Debug, thiserror::Error)]
#[error("corrupt store record: {0}")]
pub(crate) struct CorruptRecord(pub String);

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, bincode::Error> {
    bincode::serialize(value)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, bincode::Error> {
    bincode::deserialize(bytes)
}

/// The key of the log entry at `index`: big-endian, so sled iterates entries in index order.
pub(crate) fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

pub(crate) fn index_from_key(key: &[u8]) -> Result<u64, CorruptRecord> {
    let bytes: [u8; 8] =
        key.try_into().map_err(|_| CorruptRecord(format!("log key is {} bytes, expected 8", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

fn storage_error<E: Error + 'static>(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: &E) -> StorageError {
    StorageError::IO { source: StorageIOError::new(subject, verb, e) }
}

pub(crate) fn read_logs<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e)
}

pub(crate) fn write_logs<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::Logs, ErrorVerb::Write, &e)
}

pub(crate) fn delete_logs<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::Logs, ErrorVerb::Delete, &e)
}

pub(crate) fn read_vote<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::Vote, ErrorVerb::Read, &e)
}

pub(crate) fn write_vote<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::Vote, ErrorVerb::Write, &e)
}

pub(crate) fn read_store<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::Store, ErrorVerb::Read, &e)
}

pub(crate) fn write_store<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::Store, ErrorVerb::Write, &e)
}

pub(crate) fn read_state_machine<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::StateMachine, ErrorVerb::Read, &e)
}

pub(crate) fn write_state_machine<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::StateMachine, ErrorVerb::Write, &e)
}

pub(crate) fn read_snapshot<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Read, &e)
}

pub(crate) fn write_snapshot<E: Error + 'static>(e: E) -> StorageError {
    storage_error(ErrorSubject::Snapshot(None), ErrorVerb::Write, &e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_sort_in_index_order() {
        let mut keys: Vec<[u8; 8]> = [256u64, 1, 255, 65_536, 0].iter().map(|&i| index_key(i)).collect();
        keys.sort();
        let indexes: Vec<u64> = keys.iter().map(|k| index_from_key(k).unwrap_or(u64::MAX)).collect();
        assert_eq!(indexes, vec![0, 1, 255, 256, 65_536]);
    }

    #[test]
    fn a_short_log_key_is_corrupt_not_a_panic() {
        let err = index_from_key(&[1, 2, 3]).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("corrupt store record: log key is 3 bytes, expected 8"));
    }
}
