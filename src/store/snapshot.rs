//! Snapshots: the serialized state machine, the durable "current snapshot", and the builder.
//!
//! Tree `snapshot`: `meta` → bincode `SnapshotMeta`, `data` → the [`SnapshotPayload`] bytes,
//! always written together in one batch or transaction.

use openraft::RaftSnapshotBuilder;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::{Db, Tree};

use super::codec::{self, decode, encode, CorruptRecord};
use super::disk::Disk;
use super::kv::{LeaseRecord, Session, Versioned};
use super::writes::Writes;
use crate::types::{LogId, Snapshot, SnapshotData, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

const META_KEY: &[u8] = b"meta";
const DATA_KEY: &[u8] = b"data";

/// Version of the [`SnapshotPayload`] byte layout; bump it when the layout changes.
pub(crate) const PAYLOAD_FORMAT: u32 = 2;

/// The whole key-value state and the client sessions, as shipped to a follower.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotPayload {
    /// Always [`PAYLOAD_FORMAT`] when written; first, so a reader can check it before the rest.
    pub format: u32,
    /// The applied log id this state corresponds to.
    /// Invariant: equals the `last_log_id` of the snapshot meta shipped with it.
    pub applied: Option<LogId>,
    /// Sorted by key.
    pub kv: Vec<(Vec<u8>, Versioned)>,
    /// Sorted by client id.
    pub sessions: Vec<(u64, Session)>,
    /// Every live lease, sorted by id (the lease index is rebuilt from the keys' records).
    pub leases: Vec<(crate::types::LeaseId, LeaseRecord)>,
}

impl SnapshotPayload {
    /// Decodes snapshot data received from a leader or read back from disk, checking that it
    /// belongs to `meta`.
    pub(crate) fn from_bytes(bytes: &[u8], meta: &SnapshotMeta) -> Result<Self, StorageError> {
        let format: u32 = decode(bytes).map_err(codec::read_snapshot)?;
        if format != PAYLOAD_FORMAT {
            let msg = format!("snapshot payload format {format}, this build reads {PAYLOAD_FORMAT}");
            return Err(codec::read_snapshot(CorruptRecord(msg)));
        }
        let payload: SnapshotPayload = decode(bytes).map_err(codec::read_snapshot)?;
        if payload.applied != meta.last_log_id {
            let msg = format!(
                "snapshot {} holds state applied up to {:?} but its meta says {:?}",
                meta.snapshot_id, payload.applied, meta.last_log_id
            );
            return Err(codec::read_snapshot(CorruptRecord(msg)));
        }
        Ok(payload)
    }
}

/// Writes a [`SnapshotPayload`]'s bytes straight from the records the state machine stores, without decoding a
/// record or building the payload: bincode lays out a `Vec` as its length (`u64`) and then its items, and a stored
/// key record or session is already `encode(&Versioned)` / `encode(&Session)`. So the bytes are exactly
/// `encode(&payload)` (a unit test holds them to it). Decoding every record and encoding it again cost about a fifth
/// of a saturated simulated cluster's time; a corrupt record now surfaces where the snapshot is decoded (on install
/// or restart) instead of where it is built.
///
/// Caller's duties: [`PayloadWriter::push_kv`] in key order, then [`PayloadWriter::begin_sessions`] once, then
/// [`PayloadWriter::push_session`] in client id order, then [`PayloadWriter::begin_leases`] once, then
/// [`PayloadWriter::push_lease`] in lease id order, then [`PayloadWriter::finish`].
pub(crate) struct PayloadWriter {
    bytes: Vec<u8>,
    applied: Option<LogId>,
    /// Where the item count of the `Vec` being written sits, and how many items it has so far.
    count_at: usize,
    count: u64,
}

impl PayloadWriter {
    pub(crate) fn new(applied: Option<LogId>) -> Result<Self, bincode::Error> {
        let mut bytes = encode(&PAYLOAD_FORMAT)?;
        bytes.extend(encode(&applied)?);
        let count_at = bytes.len();
        bytes.extend_from_slice(&0u64.to_le_bytes());
        Ok(PayloadWriter { bytes, applied, count_at, count: 0 })
    }

    /// One key and its stored record (`encode(&Versioned)`).
    pub(crate) fn push_kv(&mut self, key: &[u8], record: &[u8]) {
        self.bytes.extend_from_slice(&(key.len() as u64).to_le_bytes());
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(record);
        self.count += 1;
    }

    /// Ends the keys and starts the sessions.
    pub(crate) fn begin_sessions(&mut self) {
        self.seal_count();
        self.count_at = self.bytes.len();
        self.bytes.extend_from_slice(&0u64.to_le_bytes());
    }

    /// One client's stored session (`encode(&Session)`).
    pub(crate) fn push_session(&mut self, client_id: u64, record: &[u8]) {
        self.bytes.extend_from_slice(&client_id.to_le_bytes());
        self.bytes.extend_from_slice(record);
        self.count += 1;
    }

    /// Ends the sessions and starts the leases.
    pub(crate) fn begin_leases(&mut self) {
        self.begin_sessions();
    }

    /// One live lease's stored record (`encode(&LeaseRecord)`).
    pub(crate) fn push_lease(&mut self, id: crate::types::LeaseId, record: &[u8]) {
        self.push_session(id, record);
    }

    pub(crate) fn finish(mut self) -> CapturedState {
        self.seal_count();
        CapturedState { applied: self.applied, bytes: self.bytes }
    }

    fn seal_count(&mut self) {
        self.bytes[self.count_at..self.count_at + 8].copy_from_slice(&self.count.to_le_bytes());
        self.count = 0;
    }
}

/// The applied state copied for a snapshot: the log id it holds and the payload's bytes.
pub(crate) struct CapturedState {
    pub applied: Option<LogId>,
    pub bytes: Vec<u8>,
}

/// The durable current snapshot of one node.
#[derive(Clone)]
pub(crate) struct SnapshotStore {
    /// Invariant: `meta` and `data` are both present or both absent, and `data` decodes to a
    /// payload whose `applied` equals `meta.last_log_id`.
    tree: Tree,
}

impl SnapshotStore {
    pub(crate) fn open(db: &Db) -> Result<Self, sled::Error> {
        Ok(Self { tree: db.open_tree("snapshot")? })
    }

    pub(crate) fn current(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StorageError> {
        let meta = self.tree.get(META_KEY).map_err(codec::read_snapshot)?;
        let data = self.tree.get(DATA_KEY).map_err(codec::read_snapshot)?;
        match (meta, data) {
            (Some(meta), Some(data)) => {
                let meta: SnapshotMeta = decode(&meta).map_err(codec::read_snapshot)?;
                Ok(Some((meta, data.to_vec())))
            }
            (None, None) => Ok(None),
            _ => Err(codec::read_snapshot(CorruptRecord("snapshot meta without data or data without meta".into()))),
        }
    }

    /// Replaces the current snapshot (used by install, which openraft only calls with a newer one).
    pub(crate) fn replace(&self, disk: &Disk, meta: &SnapshotMeta, data: &[u8]) -> Result<(), StorageError> {
        let mut writes = Writes::default();
        writes.insert(META_KEY, encode(meta).map_err(codec::write_snapshot)?);
        writes.insert(DATA_KEY, data);
        disk.apply(&self.tree, writes).map_err(codec::write_snapshot)
    }

    /// Saves a freshly built snapshot unless a newer one is already current. A build runs
    /// concurrently with the state machine, so an install may have landed meanwhile; keeping the
    /// newer one preserves "snapshot covers every purged entry".
    pub(crate) fn save_unless_older(
        &self,
        disk: &Disk,
        meta: &SnapshotMeta,
        data: &[u8],
    ) -> Result<bool, StorageError> {
        if disk.is_simulated() {
            // Simulation runs every host on one thread and there is no `.await` between the
            // check and the write, so no install can land in between; and the write goes through
            // the disk, so a simulated power loss can undo it.
            if let Some((current, _)) = self.current()? {
                if current.last_log_id > meta.last_log_id {
                    return Ok(false);
                }
            }
            self.replace(disk, meta, data)?;
            return Ok(true);
        }
        let meta_bytes = encode(meta).map_err(codec::write_snapshot)?;
        let result = self.tree.transaction(|tx| {
            if let Some(bytes) = tx.get(META_KEY)? {
                let current: SnapshotMeta = decode(&bytes).map_err(ConflictableTransactionError::Abort)?;
                if current.last_log_id > meta.last_log_id {
                    return Ok(false);
                }
            }
            tx.insert(META_KEY, meta_bytes.as_slice())?;
            tx.insert(DATA_KEY, data)?;
            Ok(true)
        });
        match result {
            Ok(saved) => Ok(saved),
            Err(TransactionError::Abort(e)) => Err(codec::read_snapshot(e)),
            Err(TransactionError::Storage(e)) => Err(codec::write_snapshot(e)),
        }
    }
}

/// Builds a snapshot from state captured when openraft asked for the builder.
///
/// openraft runs the build in a separate task while the state machine keeps applying, so the
/// state is copied up front (in `get_snapshot_builder`, which is serialized with `apply`) rather
/// than read from the live tree, which has no point-in-time view.
pub struct SnapshotBuilder {
    pub(crate) disk: Disk,
    pub(crate) snapshots: SnapshotStore,
    pub(crate) membership: StoredMembership,
    /// The captured state, or the error met while capturing it (reported by `build_snapshot`);
    /// taken by the one build (no copy of the whole state).
    pub(crate) captured: Option<Result<CapturedState, StorageError>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let CapturedState { applied, bytes: data } = self.captured.take().ok_or_else(|| {
            codec::write_snapshot(std::io::Error::other("a snapshot builder was asked to build twice"))
        })??;
        // generate_id is persistent and deterministic, so ids never repeat and simulation traces
        // stay reproducible (no clock, no randomness).
        let unique = self.disk.db.generate_id().map_err(codec::write_snapshot)?;
        let snapshot_id = match applied {
            Some(id) => format!("{}-{}-{unique}", id.leader_id, id.index),
            None => format!("empty-{unique}"),
        };
        let meta = SnapshotMeta { last_log_id: applied, last_membership: self.membership.clone(), snapshot_id };
        let saved = self.snapshots.save_unless_older(&self.disk, &meta, &data)?;
        if saved {
            self.disk.flush().await.map_err(codec::write_snapshot)?;
        }
        tracing::debug!(snapshot_id = %meta.snapshot_id, saved, bytes = data.len(), "built snapshot");
        Ok(Snapshot { meta, snapshot: Box::new(SnapshotData(data)) })
    }
}
