//! The key-value state machine in sled: openraft's [`RaftStateMachine`], plus [`KvReader`] for
//! linearizable reads.
//!
//! Tree `sm`, one tree so that one sled batch makes each apply atomic:
//! - `0x00 "applied"` → bincode `LogId`; `0x00 "membership"` → bincode `StoredMembership`;
//! - `0x01 ++ key` → bincode [`Versioned`];
//! - `0x02 ++ client_id (big-endian)` → bincode [`Session`];
//! - `0x03 ++ lease id (big-endian)` → bincode [`LeaseRecord`], one per live lease;
//! - `0x04 ++ lease id (big-endian) ++ key` → empty: the lease index, one per key attached to a
//!   lease, so a revoke finds its keys without scanning every key.
//!
//! Recovery therefore never sees a key change without the applied id and session that go with it,
//! nor a lease revoked with some of its keys still present.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend};
use sled::Tree;

use super::codec::{self, decode, encode, CorruptRecord};
use super::disk::Disk;
use super::kv::{
    check_session, execute, noop_response, LeaseRecord, Overlay, Session, SessionCheck, StateView, Versioned,
    NO_SESSION,
};
use super::leader_flush::Early;
use super::observe::{payload_digest, StoreChange};
use super::snapshot::{CapturedState, PayloadWriter, SnapshotBuilder, SnapshotPayload, SnapshotStore};
use super::writes::Writes;
use crate::types::{
    Entry, LeaseId, LogId, Op, Request, Response, Snapshot, SnapshotData, SnapshotMeta, StorageError, StoredMembership,
    TypeConfig,
};

const APPLIED_KEY: &[u8] = b"\x00applied";
const MEMBERSHIP_KEY: &[u8] = b"\x00membership";
const KV_PREFIX: u8 = 0x01;
const SESSION_PREFIX: u8 = 0x02;
const LEASE_PREFIX: u8 = 0x03;
const LEASE_INDEX_PREFIX: u8 = 0x04;

fn kv_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(KV_PREFIX);
    k.extend_from_slice(key);
    k
}

fn session_key(client_id: u64) -> [u8; 9] {
    let mut k = [SESSION_PREFIX; 9];
    k[1..].copy_from_slice(&client_id.to_be_bytes());
    k
}

fn lease_key(id: LeaseId) -> [u8; 9] {
    let mut k = [LEASE_PREFIX; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn lease_index_prefix(id: LeaseId) -> [u8; 9] {
    let mut k = [LEASE_INDEX_PREFIX; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn lease_index_key(id: LeaseId, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + key.len());
    k.extend_from_slice(&lease_index_prefix(id));
    k.extend_from_slice(key);
    k
}

fn read_versioned(sm: &Tree, key: &[u8]) -> Result<Option<Versioned>, StorageError> {
    match sm.get(kv_key(key)).map_err(codec::read_state_machine)? {
        Some(bytes) => decode(&bytes).map(Some).map_err(codec::read_state_machine),
        None => Ok(None),
    }
}

/// The applied state in the `sm` tree, as [`execute`] reads it.
struct TreeView<'a>(&'a Tree);

impl StateView for TreeView<'_> {
    type Error = StorageError;

    fn key(&self, key: &[u8]) -> Result<Option<Versioned>, StorageError> {
        read_versioned(self.0, key)
    }

    fn lease(&self, id: LeaseId) -> Result<Option<LeaseRecord>, StorageError> {
        match self.0.get(lease_key(id)).map_err(codec::read_state_machine)? {
            Some(bytes) => decode(&bytes).map(Some).map_err(codec::read_state_machine),
            None => Ok(None),
        }
    }

    fn lease_keys(&self, id: LeaseId) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut keys = Vec::new();
        for item in self.0.scan_prefix(lease_index_prefix(id)).keys() {
            keys.push(item.map_err(codec::read_state_machine)?[9..].to_vec());
        }
        Ok(keys)
    }
}

/// Every live lease and its record, kept in memory beside the tree for the leader's lease keeper
/// (which must not scan sled on every tick). Invariant: equal to the `0x03` records in `sm`.
pub type LeaseTable = Arc<RwLock<BTreeMap<LeaseId, LeaseRecord>>>;

/// Reads the applied key-value state. Cheap to clone; shares the state machine's tree, so it
/// sees every batch as soon as `apply` has written it.
///
/// Linearizability is the caller's duty: read only after `Raft::ensure_linearizable` returned
/// and the state machine has applied up to the index it returned.
#[derive(Clone)]
pub struct KvReader {
    sm: Tree,
    applied_index: Arc<AtomicU64>,
    leases: LeaseTable,
}

impl KvReader {
    /// The key's value and its mod_revision (log index of its last write), or `None` if absent.
    pub fn get(&self, key: &[u8]) -> Result<Option<(Vec<u8>, u64)>, StorageError> {
        Ok(read_versioned(&self.sm, key)?.map(|v| (v.value, v.mod_revision)))
    }

    /// The key's whole record, or `None` if absent.
    pub fn record(&self, key: &[u8]) -> Result<Option<Versioned>, StorageError> {
        read_versioned(&self.sm, key)
    }

    /// Every live lease at the applied index.
    pub fn leases(&self) -> BTreeMap<LeaseId, LeaseRecord> {
        self.leases.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// One live lease, or `None` if it was never granted or has ended.
    pub fn lease(&self, id: LeaseId) -> Option<LeaseRecord> {
        self.leases.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// The keys attached to a lease, sorted.
    pub fn lease_keys(&self, id: LeaseId) -> Result<Vec<Vec<u8>>, StorageError> {
        TreeView(&self.sm).lease_keys(id)
    }

    /// Log index of the last entry applied to the state machine (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.applied_index.load(Ordering::Acquire)
    }
}

/// The key-value state machine of one node.
pub struct StateMachineStore {
    disk: Disk,
    sm: Tree,
    snapshots: SnapshotStore,
    /// Invariant: equal to the records under `APPLIED_KEY` / `MEMBERSHIP_KEY` in `sm`
    /// (cached, because openraft asks often).
    applied: Option<LogId>,
    membership: StoredMembership,
    /// Invariant: `applied.map_or(0, |l| l.index)`, published for [`KvReader`].
    applied_index: Arc<AtomicU64>,
    leases: LeaseTable,
    /// Told of every change of `membership` (see `leader_flush`).
    early: Arc<Early>,
}

impl StateMachineStore {
    pub(crate) fn open(disk: &Disk, early: Arc<Early>) -> Result<Self, StorageError> {
        let sm = disk.db.open_tree("sm").map_err(codec::read_state_machine)?;
        let snapshots = SnapshotStore::open(&disk.db).map_err(codec::read_snapshot)?;
        let applied: Option<LogId> = match sm.get(APPLIED_KEY).map_err(codec::read_state_machine)? {
            Some(bytes) => Some(decode(&bytes).map_err(codec::read_state_machine)?),
            None => None,
        };
        let membership: StoredMembership = match sm.get(MEMBERSHIP_KEY).map_err(codec::read_state_machine)? {
            Some(bytes) => decode(&bytes).map_err(codec::read_state_machine)?,
            None => StoredMembership::default(),
        };
        let applied_index = Arc::new(AtomicU64::new(applied.map_or(0, |l| l.index)));
        let leases = Arc::new(RwLock::new(read_leases(&sm)?));
        early.applied_membership(&membership);
        Ok(Self { disk: disk.clone(), sm, snapshots, applied, membership, applied_index, leases, early })
    }

    /// The log id of the last applied entry.
    pub(crate) fn applied(&self) -> Option<LogId> {
        self.applied
    }

    /// Brings the state machine up to the current snapshot if a crash came between saving an
    /// installed snapshot and replacing the state with it.
    pub(crate) fn catch_up_with_snapshot(&mut self) -> Result<(), StorageError> {
        if let Some((meta, data)) = self.snapshots.current()? {
            if meta.last_log_id > self.applied {
                tracing::warn!(snapshot_id = %meta.snapshot_id, "state machine behind its snapshot; reinstalling");
                let payload = SnapshotPayload::from_bytes(&data, &meta)?;
                self.replace_state(&meta, payload)?;
            }
        }
        Ok(())
    }

    /// A reader of the applied state, for linearizable reads and the status call.
    pub fn reader(&self) -> KvReader {
        KvReader { sm: self.sm.clone(), applied_index: self.applied_index.clone(), leases: self.leases.clone() }
    }

    fn read_session(&self, client_id: u64) -> Result<Option<Session>, StorageError> {
        match self.sm.get(session_key(client_id)).map_err(codec::read_state_machine)? {
            Some(bytes) => decode(&bytes).map(Some).map_err(codec::read_state_machine),
            None => Ok(None),
        }
    }

    fn apply_request(
        &self,
        state: &mut Overlay<'_, TreeView<'_>>,
        sessions: &mut BTreeMap<u64, Session>,
        request: &Request,
        term: u64,
        index: u64,
    ) -> Result<Response, StorageError> {
        if let Op::Batch(requests) = &request.op {
            let mut response = Response { revision: index, succeeded: true, ..Response::default() };
            for r in requests {
                response.batch.push(self.apply_request(state, sessions, r, term, index)?);
            }
            return Ok(response);
        }
        let session = match sessions.get(&request.client_id) {
            Some(s) => Some(s.clone()),
            None => self.read_session(request.client_id)?,
        };
        if let SessionCheck::Duplicate(earlier) = check_session(request, session.as_ref()) {
            tracing::debug!(%request, index, "duplicate request answered from its session");
            return Ok(earlier);
        }
        let response = execute(&request.op, state, term, index)?;
        if request.client_id != NO_SESSION {
            let session = Session { last_seq: request.seq, last_response: response.clone() };
            sessions.insert(request.client_id, session);
        }
        Ok(response)
    }

    fn set_applied(&mut self, applied: Option<LogId>, membership: StoredMembership) {
        self.applied = applied;
        if membership != self.membership {
            self.early.applied_membership(&membership);
        }
        self.membership = membership;
        self.applied_index.store(applied.map_or(0, |l| l.index), Ordering::Release);
    }

    /// Replaces the whole state with a snapshot's, in one group of writes.
    fn replace_state(&mut self, meta: &SnapshotMeta, payload: SnapshotPayload) -> Result<(), StorageError> {
        let mut writes = Writes::default();
        for key in self.sm.iter().keys() {
            writes.remove(key.map_err(codec::read_state_machine)?);
        }
        // A later insert of the same key in a batch overrides the remove above.
        if let Some(applied) = meta.last_log_id {
            writes.insert(APPLIED_KEY, encode(&applied).map_err(codec::write_state_machine)?);
        }
        writes.insert(MEMBERSHIP_KEY, encode(&meta.last_membership).map_err(codec::write_state_machine)?);
        for (key, versioned) in &payload.kv {
            writes.insert(kv_key(key), encode(versioned).map_err(codec::write_state_machine)?);
        }
        for (client_id, session) in &payload.sessions {
            writes.insert(&session_key(*client_id), encode(session).map_err(codec::write_state_machine)?);
        }
        for (id, lease) in &payload.leases {
            writes.insert(&lease_key(*id), encode(lease).map_err(codec::write_state_machine)?);
        }
        for (key, versioned) in &payload.kv {
            if versioned.lease != 0 {
                writes.insert(lease_index_key(versioned.lease, key), &[][..]);
            }
        }
        self.disk.apply(&self.sm, writes).map_err(codec::write_state_machine)?;
        *self.leases.write().unwrap_or_else(|p| p.into_inner()) = payload.leases.into_iter().collect();
        self.set_applied(meta.last_log_id, meta.last_membership.clone());
        Ok(())
    }

    /// Copies the applied state, for a snapshot: the stored records go into the payload's bytes as they are (see
    /// [`PayloadWriter`]), in key order and then client id order, as sled iterates them.
    pub(crate) fn capture(&self) -> Result<CapturedState, StorageError> {
        let mut out = PayloadWriter::new(self.applied).map_err(codec::write_state_machine)?;
        for item in self.sm.scan_prefix([KV_PREFIX]) {
            let (key, value) = item.map_err(codec::read_state_machine)?;
            out.push_kv(&key[1..], &value);
        }
        out.begin_sessions();
        for item in scan_ids(&self.sm, SESSION_PREFIX, "session") {
            let (client_id, value) = item?;
            out.push_session(client_id, &value);
        }
        out.begin_leases();
        for item in scan_ids(&self.sm, LEASE_PREFIX, "lease") {
            let (id, value) = item?;
            out.push_lease(id, &value);
        }
        Ok(out.finish())
    }
}

/// The records under `prefix ++ id (big-endian u64)`, in id order, with their ids; a key of another length is
/// reported as a corrupt `what` record.
fn scan_ids<'a>(
    sm: &'a Tree,
    prefix: u8,
    what: &'a str,
) -> impl Iterator<Item = Result<(u64, sled::IVec), StorageError>> + 'a {
    sm.scan_prefix([prefix]).map(move |item| {
        let (key, value) = item.map_err(codec::read_state_machine)?;
        let id = <[u8; 8]>::try_from(&key[1..])
            .map_err(|_| codec::read_state_machine(CorruptRecord(format!("{what} key of {} bytes", key.len()))))?;
        Ok((u64::from_be_bytes(id), value))
    })
}

fn read_leases(sm: &Tree) -> Result<BTreeMap<LeaseId, LeaseRecord>, StorageError> {
    let mut leases = BTreeMap::new();
    for item in scan_ids(sm, LEASE_PREFIX, "lease") {
        let (id, value) = item?;
        leases.insert(id, decode(&value).map_err(codec::read_state_machine)?);
    }
    Ok(leases)
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let view = TreeView(&self.sm);
        let mut state = Overlay::new(&view);
        let mut sessions = BTreeMap::new();
        let mut responses = Vec::new();
        let mut observed = Vec::new();
        let mut applied = self.applied;
        let mut membership = self.membership.clone();
        for entry in entries {
            let index = entry.log_id.index;
            debug_assert!(applied.is_none_or(|a| a.index < index), "apply {} after {applied:?}", entry.log_id);
            // The record a revoke ends, for the observer (its checkpointed remainder bounds a lawful expiry).
            let ending = match &entry.payload {
                EntryPayload::Normal(Request { op: Op::LeaseRevoke { id, .. }, .. })
                    if self.disk.observer.is_some() =>
                {
                    state.lease(*id)?
                }
                _ => None,
            };
            let response = match &entry.payload {
                EntryPayload::Blank => noop_response(index),
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    noop_response(index)
                }
                EntryPayload::Normal(request) => {
                    self.apply_request(&mut state, &mut sessions, request, entry.log_id.leader_id.term, index)?
                }
            };
            if self.disk.observer.is_some() {
                let requests = match &entry.payload {
                    EntryPayload::Normal(r) => r.sessions(),
                    _ => Vec::new(),
                };
                observed.push(StoreChange::Applied {
                    log_id: entry.log_id,
                    requests,
                    digest: payload_digest(&entry.payload),
                });
                if let EntryPayload::Normal(Request { op: Op::LeaseCheckpoint { id, remaining_ms }, .. }) =
                    &entry.payload
                {
                    if response.succeeded && *remaining_ms > 0 {
                        observed.push(StoreChange::LeaseCheckpointed { id: *id });
                    }
                }
                if let EntryPayload::Normal(Request { op: Op::LeaseRevoke { id, expired, .. }, .. }) = &entry.payload {
                    if let (true, Some(record)) = (response.succeeded, ending) {
                        let (id, expired, ttl_ms) = (*id, *expired, record.ttl_ms);
                        observed.push(StoreChange::LeaseEnded { id, log_id: entry.log_id, expired, ttl_ms });
                    }
                }
            }
            debug_assert!(response.revision <= index, "a response revision is never in the future");
            responses.push(response);
            applied = Some(entry.log_id);
        }
        if applied == self.applied {
            return Ok(responses);
        }
        // One group of writes: the key changes, the sessions, the applied id and the membership land
        // together or not at all.
        let mut writes = Writes::default();
        let Overlay { kv, leases, lease_index, .. } = state;
        for (key, value) in &kv {
            match value {
                Some(v) => writes.insert(kv_key(key), encode(v).map_err(codec::write_state_machine)?),
                None => writes.remove(kv_key(key)),
            }
        }
        for (id, lease) in &leases {
            match lease {
                Some(l) => writes.insert(&lease_key(*id), encode(l).map_err(codec::write_state_machine)?),
                None => writes.remove(&lease_key(*id)),
            }
        }
        for ((id, key), present) in &lease_index {
            match present {
                true => writes.insert(lease_index_key(*id, key), &[][..]),
                false => writes.remove(lease_index_key(*id, key)),
            }
        }
        for (client_id, session) in &sessions {
            writes.insert(&session_key(*client_id), encode(session).map_err(codec::write_state_machine)?);
        }
        if let Some(a) = applied {
            writes.insert(APPLIED_KEY, encode(&a).map_err(codec::write_state_machine)?);
        }
        // Membership changes rarely; rewriting it with every batch cost a sled insert per apply.
        if membership != self.membership {
            writes.insert(MEMBERSHIP_KEY, encode(&membership).map_err(codec::write_state_machine)?);
        }
        self.disk.apply(&self.sm, writes).map_err(codec::write_state_machine)?;
        if !leases.is_empty() {
            let mut table = self.leases.write().unwrap_or_else(|p| p.into_inner());
            for (id, lease) in leases {
                match lease {
                    Some(l) => table.insert(id, l),
                    None => table.remove(&id),
                };
            }
        }
        self.set_applied(applied, membership);
        for change in observed {
            self.disk.emit(|| change);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            disk: self.disk.clone(),
            snapshots: self.snapshots.clone(),
            membership: self.membership.clone(),
            captured: Some(self.capture()),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotData>, StorageError> {
        Ok(Box::default())
    }

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, snapshot: Box<SnapshotData>) -> Result<(), StorageError> {
        // openraft installs only a snapshot beyond `committed`, and it has asked us to apply
        // nothing beyond `committed`, so the state only moves forward.
        debug_assert!(
            meta.last_log_id > self.applied,
            "install {:?} over applied {:?}",
            meta.last_log_id,
            self.applied
        );
        let payload = SnapshotPayload::from_bytes(&snapshot.0, meta)?;
        // Snapshot first: if a crash comes before the state is replaced, open() finishes the job
        // from the saved snapshot (`catch_up_with_snapshot`).
        self.snapshots.replace(&self.disk, meta, &snapshot.0)?;
        self.replace_state(meta, payload)?;
        self.disk.emit(|| StoreChange::SnapshotInstalled { last: meta.last_log_id });
        self.disk.flush().await.map_err(codec::write_snapshot)?;
        tracing::info!(snapshot_id = %meta.snapshot_id, last_log_id = ?meta.last_log_id, "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        Ok(self.snapshots.current()?.map(|(meta, data)| Snapshot { meta, snapshot: Box::new(SnapshotData(data)) }))
    }
}
