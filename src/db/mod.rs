//! The database a failover supervisor protects: one primary and replicas, each with a replicated
//! log of writes ([`log::DbLog`]) on sled, serving gRPC (`DatabaseService` in `proto/`) over the
//! same network seam as the Raft nodes — real TCP or turmoil's simulated TCP.
//!
//! It is deliberately dumb, like PostgreSQL under Patroni: it does not know about leases or the
//! consensus store. Its supervisor ([`crate::sim::fencing`]'s agent) tells it to serve as primary
//! under a fencing token, to stop, and which primary to follow. What it does guarantee:
//! - **synchronous replication**: with `synchronous`, a write is acknowledged only once at least
//!   one replica that follows this primary stored it (PostgreSQL's `ANY 1 (*)`); without it, as
//!   soon as the primary stored it (the contrast: acknowledged writes can be lost on failover).
//!   Which replica may then be promoted without losing an acknowledged write is the supervisor's
//!   quorum rule (see `sim::fencing::agent`), not the database's;
//! - **tokens**: every entry carries its primary's token; with `enforce_tokens` (the credentials
//!   fence) a replica refuses replication under a token below one it has seen, checking and
//!   appending atomically;
//! - **upstream**: a replica accepts replication only from the primary its supervisor told it to
//!   follow (as a PostgreSQL standby streams from its `primary_conninfo`);
//! - reads on the primary see only what is committed (replicated, in synchronous mode);
//! - a host firewall ([`gate::Gate`]) in front of every connection, in and out.
//!
//! Invariant: while it serves as primary, a write is acknowledged only if the primary's epoch
//! (bumped by every promotion, stop and session drop) is the one it was appended under.

pub mod gate;
pub mod log;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quorumlab_fencing::check::{Entry, EntryId};
use quorumlab_fencing::{MemberId, Token};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tonic::{Request, Response, Status};

use crate::net::{self, Deadlines, Transport};
use crate::pb;
pub use gate::Gate;
pub use log::{DbLog, Refused};

/// A deliberate database bug, for negative controls only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbBug {
    /// A replica checks the token, yields, then appends without checking again: a token installed
    /// in between does not stop the deposed primary's entries.
    CheckYieldAppend,
}

/// How one database member runs.
#[derive(Clone, Debug)]
pub struct DbConfig {
    pub member: u64,
    pub listen: String,
    /// Every member's address (`host:port`), this one's included.
    pub members: BTreeMap<u64, String>,
    pub transport: Transport,
    pub synchronous: bool,
    pub enforce_tokens: bool,
    /// How long a write waits for its commit before its outcome is unknown.
    pub request_timeout: Duration,
    /// How long one replication call may take.
    pub replicate_timeout: Duration,
    pub bug: Option<DbBug>,
}

/// What a member did, for the run's record.
#[derive(Clone, Debug)]
pub enum DbEvent {
    Appended(Entry),
    Acked { member: u64, entry: EntryId },
    Promoted { member: u64, token: u64 },
    Stopped { member: u64 },
}

pub type Observe = Arc<dyn Fn(DbEvent) + Send + Sync>;

/// The role the supervisor gave this member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serving {
    Replica { upstream: Option<u64> },
    Primary { token: u64 },
}

struct State {
    log: DbLog,
    serving: Serving,
    accepting: bool,
    epoch: u64,
    /// Promotions so far: a replication task serves one.
    promotion: u64,
    /// The log's length when this member was last promoted.
    promoted_len: u64,
    /// As primary: how far each peer's log matches ours.
    matched: BTreeMap<u64, u64>,
    /// As a synchronous primary: acknowledging without a replica, after its supervisor recorded that
    /// in the consensus store (Patroni's `synchronous_mode` without `_strict`).
    degraded: bool,
    /// Since when a write has waited for a replica (none waits: `None`).
    behind_since: Option<tokio::time::Instant>,
    /// The log's length when it last stopped acknowledging alone: a replica holding this much holds
    /// every write acknowledged meanwhile.
    sync_from: u64,
    /// When a replica last accepted replication from this primary.
    last_match_at: Option<tokio::time::Instant>,
    paused: bool,
}

/// One member's durable storage: its log entries and its seen token, on sled.
#[derive(Clone)]
pub struct DbDisk {
    tree: sled::Tree,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    id: (u64, u64, u64),
    parent: Option<(u64, u64, u64)>,
    key: String,
    value: String,
}

fn pack(id: EntryId) -> (u64, u64, u64) {
    (id.member.0, id.token.0, id.seq)
}

fn unpack((member, token, seq): (u64, u64, u64)) -> EntryId {
    EntryId { member: MemberId(member), token: Token(token), seq }
}

const META: &[u8] = b"meta";

impl DbDisk {
    /// A fresh temporary disk (simulation: it outlives crashes of the host that uses it).
    pub fn temporary() -> Result<DbDisk, String> {
        let db = sled::Config::new().temporary(true).open().map_err(|e| e.to_string())?;
        Ok(DbDisk { tree: db.open_tree("db").map_err(|e| e.to_string())? })
    }

    fn load(&self) -> Result<DbLog, String> {
        let (seen, next_seq) = match self.tree.get(META).map_err(|e| e.to_string())? {
            Some(v) => bincode::deserialize::<(u64, u64)>(&v).map_err(|e| e.to_string())?,
            None => (0, 0),
        };
        let mut entries = Vec::new();
        for item in self.tree.scan_prefix(b"e") {
            let (_, v) = item.map_err(|e| e.to_string())?;
            let s: Stored = bincode::deserialize(&v).map_err(|e| e.to_string())?;
            let pos = entries.len() as u64 + 1;
            entries.push(Entry { id: unpack(s.id), parent: s.parent.map(unpack), pos, key: s.key, value: s.value });
        }
        Ok(DbLog::restore(entries, seen, next_seq))
    }

    /// Writes positions `from..` of `log` and its meta, and drops anything stored past its end.
    fn save(&self, log: &DbLog, from: u64) -> Result<(), String> {
        let mut batch = sled::Batch::default();
        for e in log.entries().iter().skip(from.saturating_sub(1) as usize) {
            let s = Stored { id: pack(e.id), parent: e.parent.map(pack), key: e.key.clone(), value: e.value.clone() };
            batch.insert(entry_key(e.pos).to_vec(), bincode::serialize(&s).map_err(|e| e.to_string())?);
        }
        let mut past = log.len() + 1;
        while self.tree.contains_key(entry_key(past)).map_err(|e| e.to_string())? {
            batch.remove(entry_key(past).to_vec());
            past += 1;
        }
        batch.insert(META, bincode::serialize(&(log.seen_token(), log.next_seq())).map_err(|e| e.to_string())?);
        self.tree.apply_batch(batch).map_err(|e| e.to_string())
    }
}

fn entry_key(pos: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = b'e';
    k[1..].copy_from_slice(&pos.to_be_bytes());
    k
}

/// A running member: what its supervisor drives and its gRPC service serves. Cloning shares it.
#[derive(Clone)]
pub struct Db {
    cfg: Arc<DbConfig>,
    state: Arc<Mutex<State>>,
    disk: DbDisk,
    pub gate: Gate,
    /// Something to replicate, or a role change.
    changed: Arc<Notify>,
    /// The highest committed position (acknowledgeable), as primary.
    commit: Arc<watch::Sender<u64>>,
    observe: Option<Observe>,
}

impl Db {
    /// Opens the member from its disk, as a replica following nobody until told.
    pub fn open(cfg: DbConfig, disk: DbDisk, gate: Gate, observe: Option<Observe>) -> Result<Db, String> {
        let log = disk.load()?;
        let state = State {
            log,
            serving: Serving::Replica { upstream: None },
            accepting: false,
            epoch: 0,
            promotion: 0,
            promoted_len: 0,
            matched: BTreeMap::new(),
            degraded: false,
            behind_since: None,
            sync_from: 0,
            last_match_at: None,
            paused: false,
        };
        Ok(Db {
            cfg: Arc::new(cfg),
            state: Arc::new(Mutex::new(state)),
            disk,
            gate,
            changed: Arc::default(),
            commit: Arc::new(watch::channel(0).0),
            observe,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn member(&self) -> u64 {
        self.cfg.member
    }

    pub fn config(&self) -> &DbConfig {
        &self.cfg
    }

    fn emit(&self, e: DbEvent) {
        if let Some(o) = &self.observe {
            o(e)
        }
    }

    /// Serves gRPC on `listen` until the host dies.
    pub async fn serve(self) -> Result<(), String> {
        let incoming = net::listen(self.cfg.transport, &self.cfg.listen).await.map_err(|e| e.to_string())?;
        let gate = self.gate.clone();
        let incoming = futures::StreamExt::map(incoming, move |c| c.map(|c| gate.wrap(c)));
        tonic::transport::Server::builder()
            .add_service(pb::database_service_server::DatabaseServiceServer::new(self))
            .serve_with_incoming(incoming)
            .await
            .map_err(|e| e.to_string())
    }

    pub fn serving(&self) -> Serving {
        self.lock().serving
    }

    /// Whether it serves writes as primary now.
    pub fn is_primary(&self) -> bool {
        let s = self.lock();
        matches!(s.serving, Serving::Primary { .. }) && s.accepting
    }

    pub fn len(&self) -> u64 {
        self.lock().log.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn head(&self) -> Option<EntryId> {
        self.lock().log.head()
    }

    pub fn seen_token(&self) -> u64 {
        self.lock().log.seen_token()
    }

    /// Pauses (or resumes) the whole database process: requests wait, replication stops.
    pub fn set_paused(&self, paused: bool) {
        self.lock().paused = paused;
        self.changed.notify_waiters();
    }

    async fn while_paused(&self) {
        while self.lock().paused {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Follow `upstream` as a replica (the supervisor read who holds the leader key).
    pub fn follow(&self, upstream: Option<u64>) {
        let mut s = self.lock();
        if let Serving::Replica { upstream: u } = &mut s.serving {
            *u = upstream;
        }
    }

    /// Starts serving as primary under `token`; false if this member has seen a higher token
    /// (it was fenced: it must not serve under this one).
    pub fn promote(&self, token: u64) -> bool {
        let mut s = self.lock();
        if self.cfg.enforce_tokens && s.log.seen_token() > token {
            return false;
        }
        s.log.install_token(token);
        let _ = self.disk.save(&s.log, s.log.len() + 1);
        s.serving = Serving::Primary { token };
        s.accepting = true;
        s.epoch += 1;
        s.promotion += 1;
        s.promoted_len = s.log.len();
        s.matched.clear();
        s.degraded = false;
        s.behind_since = None;
        s.sync_from = 0;
        s.last_match_at = None;
        let promotion = s.promotion;
        let commit = if self.cfg.synchronous { 0 } else { s.log.len() };
        drop(s);
        self.commit.send_replace(commit);
        self.emit(DbEvent::Promoted { member: self.cfg.member, token });
        for (&peer, addr) in &self.cfg.members {
            if peer != self.cfg.member {
                tokio::spawn(self.clone().replicate_to(peer, addr.clone(), promotion));
            }
        }
        true
    }

    /// How long the oldest write still waiting for a replica has waited (a synchronous primary only).
    pub fn behind_for(&self) -> Option<Duration> {
        self.lock().behind_since.map(|t| t.elapsed())
    }

    /// Whether a replica accepted replication from this primary within `within`.
    pub fn replica_streaming(&self, within: Duration) -> bool {
        self.lock().last_match_at.is_some_and(|t| t.elapsed() <= within)
    }

    /// Whether this primary acknowledges through a replica again and some replica holds every write it
    /// acknowledged alone.
    pub fn synchronous_again(&self) -> bool {
        let s = self.lock();
        !s.degraded && s.matched.values().any(|&m| m >= s.sync_from)
    }

    pub fn degraded(&self) -> bool {
        self.lock().degraded
    }

    /// Acknowledge without a replica (`true`) or with one again. Its supervisor calls it only after the
    /// consensus store recorded the change (to degrade), or before it records it (to upgrade), so no
    /// replica is promoted while this member acknowledges alone.
    pub fn set_degraded(&self, degraded: bool) {
        let mut s = self.lock();
        if s.degraded != degraded {
            s.degraded = degraded;
            if !degraded {
                s.sync_from = s.log.len();
            }
            self.recompute_commit(&mut s);
        }
    }

    /// Stops acknowledging anything: every write still waiting fails (its outcome unknown to its client).
    pub fn stop_accepting(&self) {
        let mut s = self.lock();
        if s.accepting {
            s.accepting = false;
            s.epoch += 1;
            drop(s);
            self.emit(DbEvent::Stopped { member: self.cfg.member });
            self.changed.notify_waiters();
        }
    }

    /// Drops every client session: writes in flight fail.
    pub fn drop_sessions(&self) {
        self.lock().epoch += 1;
        self.changed.notify_waiters();
    }

    /// Back to a replica following nobody, until its supervisor reads the next holder.
    pub fn demote(&self) {
        self.stop_accepting();
        let mut s = self.lock();
        s.serving = Serving::Replica { upstream: None };
        s.epoch += 1;
    }

    fn recompute_commit(&self, s: &mut State) {
        let commit = if self.cfg.synchronous && !s.degraded {
            s.matched.values().copied().max().unwrap_or(0).min(s.log.len())
        } else {
            s.log.len()
        };
        if commit < s.log.len() {
            s.behind_since.get_or_insert_with(tokio::time::Instant::now);
        } else {
            s.behind_since = None;
        }
        self.commit.send_if_modified(|c| {
            let moved = commit > *c;
            if moved {
                *c = commit;
            }
            moved
        });
    }

    /// One peer's replication, for as long as this member serves as primary in `epoch`.
    async fn replicate_to(self, peer: u64, addr: String, promotion: u64) {
        let deadlines = Deadlines { connect: self.cfg.replicate_timeout, request: self.cfg.replicate_timeout };
        let gate = self.gate.clone();
        let Ok(channel) = net::channel_through(self.cfg.transport, &addr, deadlines, move |c| gate.wrap(c)) else {
            return;
        };
        let mut client = pb::database_service_client::DatabaseServiceClient::new(channel);
        let mut next = self.len() + 1;
        loop {
            self.while_paused().await;
            let notified = self.changed.notified();
            let request = {
                let s = self.lock();
                let Serving::Primary { token } = s.serving else { return };
                if s.promotion != promotion || !s.accepting {
                    return;
                }
                let len = s.log.len();
                next = next.clamp(1, len + 1);
                let prev_pos = next - 1;
                let batch: Vec<pb::DbEntry> =
                    s.log.entries().iter().skip(prev_pos as usize).take(64).map(entry_to_pb).collect();
                pb::DbReplicateRequest {
                    from_member: self.cfg.member,
                    token,
                    prev_pos,
                    prev: s.log.at(prev_pos).map(|e| id_to_pb(e.id)),
                    entries: batch,
                }
            };
            let sent = request.entries.len() as u64;
            let prev_pos = request.prev_pos;
            match client.replicate(request).await {
                Ok(r) => {
                    let r = r.into_inner();
                    if r.accepted {
                        let mut s = self.lock();
                        let m = s.matched.entry(peer).or_default();
                        *m = prev_pos + sent;
                        s.last_match_at = Some(tokio::time::Instant::now());
                        next = prev_pos + sent + 1;
                        self.recompute_commit(&mut s);
                        if next <= s.log.len() {
                            continue;
                        }
                    } else if r.refused == "mismatch" {
                        next = (next - 1).min(r.len + 1).max(1);
                        continue;
                    } else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
            // Caught up: wait for a new entry, or send a heartbeat.
            let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
        }
    }

    async fn write(&self, key: String, value: String) -> Result<pb::DbWriteResponse, Status> {
        self.while_paused().await;
        let (entry, epoch, token) = {
            let mut s = self.lock();
            let Serving::Primary { token } = s.serving else {
                return Err(Status::failed_precondition(format!("member {} is not the primary", self.cfg.member)));
            };
            if !s.accepting {
                return Err(Status::failed_precondition(format!(
                    "member {} stopped accepting writes",
                    self.cfg.member
                )));
            }
            let entry = s
                .log
                .append_local(self.cfg.member, token, self.cfg.enforce_tokens, &key, &value)
                .map_err(|r| Status::failed_precondition(format!("fenced: {r:?}")))?;
            self.disk.save(&s.log, entry.pos).map_err(Status::internal)?;
            self.recompute_commit(&mut s);
            (entry, s.epoch, token)
        };
        self.emit(DbEvent::Appended(entry.clone()));
        self.changed.notify_waiters();
        let mut commit = self.commit.subscribe();
        let committed = tokio::time::timeout(self.cfg.request_timeout, commit.wait_for(|&c| c >= entry.pos)).await;
        let s = self.lock();
        let still = s.epoch == epoch && s.accepting && s.log.at(entry.pos).map(|e| e.id) == Some(entry.id);
        match committed {
            Ok(Ok(_)) if still => {
                drop(s);
                self.emit(DbEvent::Acked { member: self.cfg.member, entry: entry.id });
                Ok(pb::DbWriteResponse { pos: entry.pos, token, entry: Some(id_to_pb(entry.id)) })
            }
            Ok(Ok(_)) | Ok(Err(_)) => Err(Status::unavailable("the primary stepped down; the outcome is unknown")),
            Err(_) => Err(Status::deadline_exceeded(format!(
                "not replicated to any replica within {:?}; the outcome is unknown",
                self.cfg.request_timeout
            ))),
        }
    }

    /// Reads at the commit position. A new primary first waits until its whole log as it was at promotion is on
    /// a replica (Raft's rule for a new leader's reads): before that, it cannot tell acknowledged entries from the
    /// rest, and answering from an older position could miss an acknowledged write.
    async fn read(&self, key: &str) -> Result<pb::DbReadResponse, Status> {
        let promoted_len = self.lock().promoted_len;
        let mut commit = self.commit.subscribe();
        if tokio::time::timeout(self.cfg.request_timeout, commit.wait_for(|&c| c >= promoted_len)).await.is_err() {
            return Err(Status::unavailable("the new primary's log is not on any replica yet"));
        }
        let s = self.lock();
        let Serving::Primary { token } = s.serving else {
            return Err(Status::failed_precondition(format!("member {} is not the primary", self.cfg.member)));
        };
        if !s.accepting {
            return Err(Status::failed_precondition(format!("member {} stopped serving", self.cfg.member)));
        }
        let upto = *self.commit.borrow();
        let (value, head) = s.log.read(key, upto);
        Ok(pb::DbReadResponse { value, token, head: head.map(id_to_pb) })
    }

    async fn replicate(&self, r: pb::DbReplicateRequest) -> Result<pb::DbReplicateResponse, Status> {
        self.while_paused().await;
        let batch: Vec<Entry> = r.entries.iter().map(entry_from_pb).collect::<Result<_, _>>()?;
        let prev = r.prev.as_ref().map(id_from_pb);
        let refuse = |s: &State, why: Refused| pb::DbReplicateResponse {
            accepted: false,
            len: match why {
                Refused::Mismatch { len } => len,
                _ => s.log.len(),
            },
            refused: why.code().into(),
        };
        let enforce = self.cfg.enforce_tokens;
        if self.cfg.bug == Some(DbBug::CheckYieldAppend) {
            {
                let s = self.lock();
                if let Err(why) = self.admit(&s, &r, prev) {
                    return Ok(refuse(&s, why));
                }
            }
            // The planted bug: yield between the check and the append (a slow disk write, say).
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut s = self.lock();
            if s.log.check_prev(r.prev_pos, prev).is_err() {
                return Ok(refuse(&s, Refused::Mismatch { len: s.log.len().min(r.prev_pos.saturating_sub(1)) }));
            }
            let changed = s.log.append_after(r.prev_pos, &batch);
            if changed > 0 {
                self.disk.save(&s.log, r.prev_pos + 1).map_err(Status::internal)?;
            }
            return Ok(pb::DbReplicateResponse { accepted: true, len: s.log.len(), refused: String::new() });
        }
        let mut s = self.lock();
        if let Err(why) = self.admit(&s, &r, prev) {
            return Ok(refuse(&s, why));
        }
        match s.log.replicate(r.token, enforce, r.prev_pos, prev, &batch) {
            Ok(changed) => {
                if changed > 0 || !batch.is_empty() {
                    self.disk.save(&s.log, r.prev_pos + 1).map_err(Status::internal)?;
                }
                Ok(pb::DbReplicateResponse { accepted: true, len: s.log.len(), refused: String::new() })
            }
            Err(why) => Ok(refuse(&s, why)),
        }
    }

    /// Whether this member takes replication from the sender at all: a replica following it, under a token it
    /// accepts, after the entry it expects.
    fn admit(&self, s: &State, r: &pb::DbReplicateRequest, prev: Option<EntryId>) -> Result<(), Refused> {
        match s.serving {
            Serving::Replica { upstream: Some(u) } if u == r.from_member => {}
            _ => return Err(Refused::Upstream),
        }
        if self.cfg.enforce_tokens && r.token < s.log.seen_token() {
            return Err(Refused::Token { seen: s.log.seen_token() });
        }
        s.log.check_prev(r.prev_pos, prev)
    }

    fn install_token(&self, token: u64, member: u64) -> Result<u64, Status> {
        let mut s = self.lock();
        let seen = s.log.install_token(token);
        self.disk.save(&s.log, s.log.len() + 1).map_err(Status::internal)?;
        if seen == token && member != self.cfg.member {
            if let Serving::Replica { upstream } = &mut s.serving {
                *upstream = Some(member);
            }
        }
        Ok(seen)
    }

    /// A member about to be promoted appends what a replica further along holds, if that continues its own
    /// log; false if it does not (the logs diverged) and nothing was appended.
    pub fn catch_up(&self, entries: &[pb::DbEntry]) -> Result<bool, String> {
        let batch: Vec<Entry> =
            entries.iter().map(entry_from_pb).collect::<Result<_, _>>().map_err(|s| s.to_string())?;
        let Some(first) = batch.first() else { return Ok(true) };
        let mut s = self.lock();
        let prev_pos = first.pos.saturating_sub(1);
        if prev_pos != s.log.len() || s.log.check_prev(prev_pos, first.parent).is_err() {
            return Ok(false);
        }
        s.log.append_after(prev_pos, &batch);
        self.disk.save(&s.log, prev_pos + 1)?;
        Ok(true)
    }

    fn status(&self) -> pb::DbStatusResponse {
        let s = self.lock();
        let (primary, token) = match s.serving {
            Serving::Primary { token } => (s.accepting, token),
            Serving::Replica { .. } => (false, 0),
        };
        pb::DbStatusResponse {
            member: self.cfg.member,
            primary,
            token,
            len: s.log.len(),
            seen_token: s.log.seen_token(),
        }
    }
}

pub fn id_to_pb(id: EntryId) -> pb::DbEntryId {
    pb::DbEntryId { member: id.member.0, token: id.token.0, seq: id.seq }
}

pub fn id_from_pb(id: &pb::DbEntryId) -> EntryId {
    EntryId { member: MemberId(id.member), token: Token(id.token), seq: id.seq }
}

fn entry_to_pb(e: &Entry) -> pb::DbEntry {
    pb::DbEntry {
        id: Some(id_to_pb(e.id)),
        parent: e.parent.map(id_to_pb),
        pos: e.pos,
        key: e.key.clone(),
        value: e.value.clone(),
    }
}

fn entry_from_pb(e: &pb::DbEntry) -> Result<Entry, Status> {
    let id = e.id.as_ref().ok_or_else(|| Status::invalid_argument("a replicated entry without an id"))?;
    Ok(Entry {
        id: id_from_pb(id),
        parent: e.parent.as_ref().map(id_from_pb),
        pos: e.pos,
        key: e.key.clone(),
        value: e.value.clone(),
    })
}

fn check_key(key: &str) -> Result<(), Status> {
    if key.is_empty() || key.len() > 1024 {
        return Err(Status::invalid_argument("a key must be 1 to 1024 bytes"));
    }
    Ok(())
}

#[tonic::async_trait]
impl pb::database_service_server::DatabaseService for Db {
    async fn write(&self, r: Request<pb::DbWriteRequest>) -> Result<Response<pb::DbWriteResponse>, Status> {
        let r = r.into_inner();
        check_key(&r.key)?;
        Db::write(self, r.key, r.value).await.map(Response::new)
    }

    async fn read(&self, r: Request<pb::DbReadRequest>) -> Result<Response<pb::DbReadResponse>, Status> {
        let r = r.into_inner();
        check_key(&r.key)?;
        self.while_paused().await;
        Db::read(self, &r.key).await.map(Response::new)
    }

    async fn replicate(&self, r: Request<pb::DbReplicateRequest>) -> Result<Response<pb::DbReplicateResponse>, Status> {
        Db::replicate(self, r.into_inner()).await.map(Response::new)
    }

    async fn status(&self, _: Request<pb::DbStatusRequest>) -> Result<Response<pb::DbStatusResponse>, Status> {
        self.while_paused().await;
        Ok(Response::new(Db::status(self)))
    }

    async fn install_token(
        &self,
        r: Request<pb::DbInstallTokenRequest>,
    ) -> Result<Response<pb::DbInstallTokenResponse>, Status> {
        self.while_paused().await;
        let r = r.into_inner();
        if r.token == 0 {
            return Err(Status::invalid_argument("token 0 is no token"));
        }
        let seen = Db::install_token(self, r.token, r.member)?;
        Ok(Response::new(pb::DbInstallTokenResponse { seen_token: seen }))
    }

    async fn fetch(&self, r: Request<pb::DbFetchRequest>) -> Result<Response<pb::DbFetchResponse>, Status> {
        self.while_paused().await;
        let from = r.into_inner().from_pos.max(1);
        let s = self.lock();
        let entries = s.log.entries().iter().skip((from - 1) as usize).take(10_000).map(entry_to_pb).collect();
        Ok(Response::new(pb::DbFetchResponse { entries }))
    }
}
