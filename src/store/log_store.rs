//! The Raft log and the vote, in sled: openraft's [`RaftLogStorage`] and [`RaftLogReader`].
//!
//! Tree `raft_log`: big-endian index → bincode `Entry`.
//! Tree `raft_state`: `vote`, `committed`, `last_purged` → bincode `Vote` / `LogId`.
//!
//! Group commit: `append` writes its entries and returns; one flusher task per store makes them durable and only
//! then tells openraft (the append's callback). Every append that arrived while a flush ran is covered by the next
//! one flush, so under load one fsync acknowledges many appends. The callback is the acknowledgement, and it runs
//! only after a flush that started after the entries were written, with one exception: a leader's own proposals,
//! acknowledged at once so that they travel to followers while the leader's disk works, and kept from committing
//! before that flush by the flush gate (`leader_flush`). The flusher tells the gate how far the log is durable.
//! `truncate` and `purge` first wait until every earlier append is flushed and acknowledged, so no acknowledgement
//! can arrive for entries already cut away.
//!
//! Entries appended since the store opened are also kept decoded in memory ([`Recent`]) until they are purged or
//! truncated: openraft reads every entry back soon after appending it (to replicate it, and to hand it to the state
//! machine once committed), and serving those reads from sled meant a range scan and a decode per entry per read.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogReader};
use sled::Tree;

use super::codec::{self, decode, encode, index_from_key, index_key, CorruptRecord};
use super::disk::Disk;
use super::leader_flush::{Early, FlushGate};
use super::observe::{self, payload_digest, StoreChange};
use super::writes::Writes;
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig, Vote};

const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const LAST_PURGED_KEY: &[u8] = b"last_purged";
/// The node a restarted leader's vote names for its old term (see `LogStore::serve`): no node's id, above all.
pub const ABDICATED: NodeId = NodeId::MAX;
/// Planted bug `ForgetVoteOnRestart` only: the last vote of an earlier term than the current one.
const EARLIER_VOTE_KEY: &[u8] = b"planted_bug.earlier_vote";

/// The Raft log and vote of one node. Cloning shares the same trees and [`Recent`] (it is also the log reader).
#[derive(Clone)]
pub struct LogStore {
    disk: Disk,
    /// Invariant: the indexes are consecutive (openraft never leaves a hole; purge and truncate
    /// cut only at the ends), and in a running cluster all are above `last_purged` (restored on
    /// open if a crash interrupted a purge).
    log: Tree,
    state: Tree,
    recent: Arc<Mutex<Recent>>,
    /// The flusher task's queue, started by the first append (inside the node's runtime).
    committer: Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<FlushJob>>>>,
    io: Arc<LogIoCounters>,
    /// Why a flush of early-acknowledged entries failed, if one did: every later append fails with it.
    failed: Arc<Mutex<Option<String>>>,
    /// What early acknowledgement of a leader's own proposals needs (see `leader_flush`).
    early: Arc<Early>,
}

/// How much log I/O a store has done since it opened: appends (openraft's `append` calls), the entries they
/// carried, and the flushes that made them durable. `flushes / appends` tells how many appends one flush
/// covers; `entries / flushes` how many entries. Shown by `Status`, and by `benches/etcd_compare.rs` per write.
#[derive(Debug, Default)]
struct LogIoCounters {
    appends: AtomicU64,
    entries: AtomicU64,
    flushes: AtomicU64,
    /// Appends acknowledged before their flush (a leader's own proposals, see `leader_flush`).
    early: AtomicU64,
}

/// A reading of a store's [`LogIoCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogIo {
    pub appends: u64,
    pub entries: u64,
    pub flushes: u64,
    pub early: u64,
}

/// Reads a store's log I/O counters; cheap to clone, and it outlives nothing (the counters are shared).
#[derive(Clone, Debug)]
pub struct LogIoReader(Arc<LogIoCounters>);

impl LogIoReader {
    pub fn read(&self) -> LogIo {
        LogIo {
            appends: self.0.appends.load(Ordering::Relaxed),
            entries: self.0.entries.load(Ordering::Relaxed),
            flushes: self.0.flushes.load(Ordering::Relaxed),
            early: self.0.early.load(Ordering::Relaxed),
        }
    }
}

/// What the flusher does, in order.
enum FlushJob {
    /// Acknowledge an append, whose last entry has this index (if it had any), once a flush covers it.
    Ack(LogFlushed<TypeConfig>, Option<u64>),
    /// Make an append already acknowledged (a leader's proposal, see `leader_flush`) durable through this index.
    Flush(u64),
    /// Answer once every earlier job is done.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

impl FlushJob {
    fn needs_flush(&self) -> bool {
        !matches!(self, FlushJob::Barrier(_))
    }

    /// The index through which the log is durable once this job's flush is done.
    fn durable_through(&self) -> Option<u64> {
        match self {
            FlushJob::Ack(_, last) => *last,
            FlushJob::Flush(last) => Some(*last),
            FlushJob::Barrier(_) => None,
        }
    }
}

/// The flusher: takes every job queued so far, flushes once, tells how far the log is durable, acknowledges them
/// in order.
async fn group_commit(
    disk: Disk,
    io: Arc<LogIoCounters>,
    early: Arc<Early>,
    failed: Arc<Mutex<Option<String>>>,
    mut jobs: tokio::sync::mpsc::UnboundedReceiver<FlushJob>,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while let Ok(job) = jobs.try_recv() {
            batch.push(job);
        }
        let flushed = if batch.iter().any(FlushJob::needs_flush) {
            io.flushes.fetch_add(1, Ordering::Relaxed);
            disk.flush().await.map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        match &flushed {
            Ok(()) => {
                if let Some(index) = batch.iter().filter_map(FlushJob::durable_through).max() {
                    early.durable_through(index);
                }
            }
            // An early acknowledgement has no callback left to fail: the next append fails instead, and the gate
            // stays shut, so nothing the failed flush held commits.
            Err(e) => *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone()),
        }
        for job in batch {
            match job {
                FlushJob::Ack(callback, _) => callback.log_io_completed(flushed.clone().map_err(std::io::Error::other)),
                FlushJob::Flush(_) => {}
                FlushJob::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// The tail of the log appended since the store opened, decoded.
///
/// Invariant: every entry here is in `log` under its index, equal to what decoding it from there gives (entries
/// enter after sled took them and leave before sled drops them), and the indexes run without a hole up to the last
/// entry of `log`. So a read whose first index is here is served
/// entirely from here, and any other read goes to sled. It holds because every change to `log` goes through
/// `append`, `truncate` or a purge, and each makes the same change here after sled took it. Never persisted: a
/// reopened store (after a crash or a power loss) starts with none.
#[derive(Default)]
struct Recent {
    entries: BTreeMap<u64, Entry>,
}

impl Recent {
    /// Takes entries just written after `last_before`, the log's last index before them. openraft appends right
    /// after the last entry (or after truncating there); an append anywhere else (openraft's storage test suite
    /// does that) empties `Recent`, so sled answers every read.
    fn extend(&mut self, last_before: Option<u64>, appended: Vec<Entry>) {
        let contiguous = appended.windows(2).all(|w| w[0].log_id.index + 1 == w[1].log_id.index);
        let follows = match (last_before, appended.first()) {
            (Some(last), Some(first)) => first.log_id.index == last + 1,
            _ => true,
        };
        let tail = contiguous && follows;
        if !tail {
            self.entries.clear();
            return;
        }
        self.entries.extend(appended.into_iter().map(|e| (e.log_id.index, e)));
    }

    /// The entries of `range` if its first index is held (then everything after it is too).
    fn get(&self, range: &(Bound<u64>, Bound<u64>)) -> Option<Vec<Entry>> {
        let start = match range.0 {
            Bound::Included(s) => s,
            Bound::Excluded(s) => s.checked_add(1)?,
            Bound::Unbounded => return None,
        };
        if !self.entries.contains_key(&start) {
            return None;
        }
        Some(self.entries.range(*range).map(|(_, e)| e.clone()).collect())
    }
}

impl LogStore {
    pub(crate) fn open(disk: &Disk) -> Result<Self, StorageError> {
        let log = disk.db.open_tree("raft_log").map_err(codec::read_logs)?;
        let state = disk.db.open_tree("raft_state").map_err(codec::read_store)?;
        let mut store = Self {
            log,
            state,
            disk: disk.clone(),
            recent: Arc::default(),
            committer: Arc::default(),
            io: Arc::default(),
            early: Arc::new(Early::new(None, BTreeMap::new())),
            failed: Arc::default(),
        };
        // Everything a store holds when it opens is durable (opening flushes recovery), and the membership
        // entries it holds are the ones in force.
        let mut memberships = BTreeMap::new();
        let mut last = store.last_purged()?.map(|p| p.index);
        for item in store.log.iter() {
            let (key, value) = item.map_err(codec::read_logs)?;
            let entry = Self::decode_entry(&key, &value)?;
            if let openraft::EntryPayload::Membership(m) = entry.payload {
                memberships.insert(entry.log_id.index, m);
            }
            last = last.max(Some(entry.log_id.index));
        }
        store.early = Arc::new(Early::new(last, memberships));
        Ok(store)
    }

    /// Names the node this store serves, before Raft starts on it: its own proposals as a leader are then
    /// acknowledged before their flush, behind the [`FlushGate`] (see `leader_flush`). A store that serves no node
    /// acknowledges after every flush.
    ///
    /// A node that held a committed vote for itself (it led) starts having given up its term. openraft 0.9
    /// restores a node with such a vote as the leader of that term at once; but a crash or a power loss may have
    /// taken entries it had already sent to followers before their flush, and leading the same term again it
    /// would give their log ids to other entries (two entries with one log id: Log Matching broken). So its vote
    /// becomes `(term, ABDICATED)`, uncommitted: above its own and every candidate's of that term (a vote never
    /// goes back, and it grants no vote in that term), below every vote of a later term (the next leader's
    /// messages are taken, not refused as from a lower term). It leads again only after winning an election, as
    /// in Raft. (Moving to its own vote in the next term instead made every restarted leader refuse a new leader
    /// of that term with a lower id, and forced another election.)
    pub async fn serve(&self, me: NodeId) -> Result<(), StorageError> {
        self.early.serve(me);
        if let Some(vote) = self.stored_vote() {
            if vote.is_committed() && vote.leader_id.node_id == me {
                self.clone().save_vote(&Vote::new(vote.leader_id.term, ABDICATED)).await?;
            }
        }
        Ok(())
    }

    /// The gate that holds followers' acknowledgements until this store's log is durable as far.
    pub fn flush_gate(&self) -> FlushGate {
        self.early.gate()
    }

    pub(crate) fn early(&self) -> Arc<Early> {
        self.early.clone()
    }

    /// The log I/O counters of this store (and of its clones).
    pub fn io(&self) -> LogIoReader {
        LogIoReader(self.io.clone())
    }

    /// Queues `job` for the flusher, starting it if it is not running.
    fn queue(&self, job: FlushJob) {
        let mut committer = self.committer.lock().unwrap_or_else(|e| e.into_inner());
        let job = match committer.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(tokio::sync::mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(group_commit(self.disk.clone(), self.io.clone(), self.early.clone(), self.failed.clone(), rx));
        let _ = tx.send(job);
        *committer = Some(tx);
    }

    /// Waits until every append so far is flushed and acknowledged.
    async fn appends_acknowledged(&self) {
        if self.committer.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return;
        }
        let (done, wait) = tokio::sync::oneshot::channel();
        self.queue(FlushJob::Barrier(done));
        let _ = wait.await;
    }

    /// The vote as stored; `None` if there is none or it cannot be read (then nothing is acknowledged early).
    fn stored_vote(&self) -> Option<Vote> {
        let bytes = self.state.get(VOTE_KEY).ok()??;
        decode(&bytes).ok()
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Planted bug `ForgetVoteOnRestart`: when the store opens, the vote goes back to the one
    /// the node held in its previous term (none if it had none), so the node may vote a second
    /// time in its latest term. Going back only one term keeps every log entry's term at or
    /// below the vote, which openraft asserts when it makes a leader.
    pub(crate) fn forget_vote(&self) -> Result<(), StorageError> {
        let mut writes = Writes::default();
        match self.state.get(EARLIER_VOTE_KEY).map_err(codec::read_vote)? {
            Some(earlier) => writes.insert(VOTE_KEY, earlier),
            None => writes.remove(VOTE_KEY),
        }
        writes.remove(EARLIER_VOTE_KEY);
        self.disk.apply(&self.state, writes).map_err(codec::write_vote)?;
        self.disk.flush_now();
        Ok(())
    }

    /// What the log and vote hold now, for [`StoreChange::Opened`] (fills in everything but
    /// `applied`, which the state machine knows).
    pub(crate) fn opened_state(&self) -> Result<StoreChange, StorageError> {
        let mut log = Vec::with_capacity(self.log.len());
        for item in self.log.iter() {
            let (key, value) = item.map_err(codec::read_logs)?;
            let entry = Self::decode_entry(&key, &value)?;
            log.push((entry.log_id, payload_digest(&entry.payload)));
        }
        let vote = match self.state.get(VOTE_KEY).map_err(codec::read_vote)? {
            Some(bytes) => Some(decode(&bytes).map_err(codec::read_vote)?),
            None => None,
        };
        Ok(StoreChange::Opened {
            vote,
            committed: self.read_state(COMMITTED_KEY)?,
            last_purged: self.last_purged()?,
            applied: None,
            log,
        })
    }

    /// Finishes a purge that a crash interrupted between recording `last_purged` and deleting
    /// the entries, restoring the invariant on `log`.
    pub(crate) fn finish_interrupted_purge(&self) -> Result<(), StorageError> {
        if let Some(purged) = self.last_purged()? {
            self.remove_through(purged.index)?;
            self.early.purged(purged.index);
        }
        Ok(())
    }

    fn read_state<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.state.get(key).map_err(codec::read_store)? {
            Some(bytes) => decode(&bytes).map(Some).map_err(codec::read_store),
            None => Ok(None),
        }
    }

    fn write_state<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        let bytes = encode(value).map_err(codec::write_store)?;
        let mut writes = Writes::default();
        writes.insert(key, bytes);
        self.disk.apply(&self.state, writes).map_err(codec::write_store)
    }

    fn last_purged(&self) -> Result<Option<LogId>, StorageError> {
        self.read_state(LAST_PURGED_KEY)
    }

    fn remove_range(&self, range: impl RangeBounds<[u8; 8]>) -> Result<(), StorageError> {
        let mut writes = Writes::default();
        for key in self.log.range(range).keys() {
            writes.remove(key.map_err(codec::read_logs)?);
        }
        self.disk.apply(&self.log, writes).map_err(codec::delete_logs)
    }

    /// Removes the entries up to and including `index`: from `Recent` first, so that it never holds an entry sled
    /// does not (a reader in between finds them in sled).
    fn remove_through(&self, index: u64) -> Result<(), StorageError> {
        {
            let mut recent = self.recent();
            recent.entries = match index.checked_add(1) {
                Some(next) => recent.entries.split_off(&next),
                None => BTreeMap::new(),
            };
        }
        self.remove_range(..=index_key(index))
    }

    /// Removes the entries from `index` on, from `Recent` first (see `remove_through`).
    fn remove_from(&self, index: u64) -> Result<(), StorageError> {
        self.recent().entries.split_off(&index);
        self.remove_range(index_key(index)..)
    }

    fn decode_entry(key: &[u8], value: &[u8]) -> Result<Entry, StorageError> {
        let index = index_from_key(key).map_err(codec::read_logs)?;
        let entry: Entry = decode(value).map_err(codec::read_logs)?;
        if entry.log_id.index != index {
            let msg = format!("entry {} stored under index {index}", entry.log_id);
            return Err(codec::read_logs(CorruptRecord(msg)));
        }
        Ok(entry)
    }
}

fn to_key_range<RB: RangeBounds<u64>>(range: &RB) -> (Bound<[u8; 8]>, Bound<[u8; 8]>) {
    let map = |b: Bound<&u64>| match b {
        Bound::Included(i) => Bound::Included(index_key(*i)),
        Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
        Bound::Unbounded => Bound::Unbounded,
    };
    (map(range.start_bound()), map(range.end_bound()))
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        if let (Bound::Included(s) | Bound::Excluded(s), Bound::Included(e) | Bound::Excluded(e)) =
            (range.start_bound(), range.end_bound())
        {
            // sled panics on a range whose start is after its end.
            if s > e {
                return Ok(Vec::new());
            }
        }
        let bounds = (range.start_bound().cloned(), range.end_bound().cloned());
        if let Some(entries) = self.recent().get(&bounds) {
            return Ok(entries);
        }
        let mut entries = Vec::new();
        for item in self.log.range(to_key_range(&range)) {
            let (key, value) = item.map_err(codec::read_logs)?;
            let entry = Self::decode_entry(&key, &value)?;
            debug_assert!(
                entries.last().is_none_or(|prev: &Entry| prev.log_id.index + 1 == entry.log_id.index),
                "hole in the log before {}",
                entry.log_id
            );
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id = self.last_purged()?;
        let last_entry = match self.log.last().map_err(codec::read_logs)? {
            Some((key, value)) => Some(Self::decode_entry(&key, &value)?.log_id),
            None => None,
        };
        // `max`, not "last entry if any": openraft's storage suite appends below a purge point
        // (openraft itself never does), and the answer must still not go backwards.
        let last_log_id = last_entry.max(last_purged_log_id);
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let mut writes = Writes::default();
        if self.disk.forget_vote_on_restart {
            if let Some(current) = self.read_vote().await? {
                if current.leader_id.term < vote.leader_id.term {
                    writes.insert(EARLIER_VOTE_KEY, encode(&current).map_err(codec::write_vote)?);
                }
            }
        }
        writes.insert(VOTE_KEY, encode(vote).map_err(codec::write_vote)?);
        self.disk.apply(&self.state, writes).map_err(codec::write_vote)?;
        self.disk.flush().await.map_err(codec::write_vote)?;
        self.disk.emit(|| observe::vote_saved(vote));
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        match self.state.get(VOTE_KEY).map_err(codec::read_vote)? {
            Some(bytes) => decode(&bytes).map(Some).map_err(codec::read_vote),
            None => Ok(None),
        }
    }

    /// Not flushed: openraft only uses it to re-apply committed entries sooner after a restart,
    /// and the next append or vote flush persists it anyway.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        match committed {
            Some(c) => self.write_state(COMMITTED_KEY, &c)?,
            None => {
                let mut writes = Writes::default();
                writes.remove(COMMITTED_KEY);
                self.disk.apply(&self.state, writes).map_err(codec::write_store)?;
            }
        }
        self.disk.emit(|| StoreChange::CommittedSaved { committed });
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        self.read_state(COMMITTED_KEY)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        if let Some(e) = self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(codec::write_logs(std::io::Error::other(format!("an earlier flush failed: {e}"))));
        }
        let mut writes = Writes::default();
        let mut observed = Vec::new();
        let mut appended = Vec::new();
        for entry in entries {
            let bytes = encode(&entry).map_err(codec::write_logs)?;
            writes.insert(&index_key(entry.log_id.index), bytes);
            if self.disk.observer.is_some() {
                observed.push((entry.log_id, payload_digest(&entry.payload)));
            }
            appended.push(entry);
        }
        // The log's last index before this append, for `Recent`: known from it, read from sled only when it is
        // empty (after opening, or when everything was purged).
        let last_before = match self.recent().entries.last_key_value() {
            Some((&last, _)) => Some(last),
            None => self
                .log
                .last()
                .map_err(codec::read_logs)?
                .map(|(k, _)| index_from_key(&k))
                .transpose()
                .map_err(codec::read_logs)?,
        };
        // One group of writes (see `Writes`): a crash keeps all of these entries or none, so no hole can appear.
        self.disk.apply(&self.log, writes).map_err(codec::write_logs)?;
        let count = appended.len() as u64;
        let last = appended.last().map(|e| e.log_id.index);
        self.early.appended(&appended);
        // Only this node's own proposals as leader (see `leader_flush`); the vote is read only for those.
        let early = !self.disk.ack_before_flush && self.early.may_acknowledge(&appended, || self.stored_vote());
        self.recent().extend(last_before, appended);
        self.disk.emit(|| StoreChange::Appended { entries: observed });
        self.io.appends.fetch_add(1, Ordering::Relaxed);
        self.io.entries.fetch_add(count, Ordering::Relaxed);
        // Acknowledge only what is durable: the flusher calls back after a flush that covers these entries (in
        // Fsync mode and on the simulated disk; under plain ProcessCrash the Db outlives the crashed process, so
        // the write itself is enough). Two exceptions: a leader's own proposals, acknowledged at once and held
        // back by the flush gate instead (see `leader_flush`); and the planted bug, which acknowledges anything
        // with the entries still in the disk's cache.
        match (self.disk.ack_before_flush, early, last) {
            (true, _, _) => {
                // The bug takes what is written for durable, in its own flush gate too.
                if let Some(last) = last {
                    self.early.durable_through(last);
                }
                callback.log_io_completed(Ok(()))
            }
            (false, true, Some(last)) => {
                self.io.early.fetch_add(1, Ordering::Relaxed);
                callback.log_io_completed(Ok(()));
                self.queue(FlushJob::Flush(last));
            }
            (false, _, _) => self.queue(FlushJob::Ack(callback, last)),
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.appends_acknowledged().await;
        debug_assert!(self.last_purged()?.is_none_or(|p| p.index < log_id.index), "truncating purged entries");
        self.remove_from(log_id.index)?;
        self.disk.emit(|| StoreChange::Truncated { since: log_id.index });
        // Flushed so that entries a conflict removed cannot come back after power loss.
        self.disk.flush().await.map_err(codec::delete_logs)?;
        self.early.truncated(log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.appends_acknowledged().await;
        let previous = self.last_purged()?;
        debug_assert!(previous <= Some(log_id), "last_purged moves forward: {previous:?} -> {log_id}");
        // Record first: if a crash comes between the two writes, open() finishes the deletion.
        self.write_state(LAST_PURGED_KEY, &log_id)?;
        self.remove_through(log_id.index)?;
        self.disk.emit(|| StoreChange::Purged { upto: log_id });
        self.disk.flush().await.map_err(codec::delete_logs)?;
        self.early.purged(log_id.index);
        Ok(())
    }
}
