//! The failover supervisor in the simulator: database hosts placed by the topology file, one
//! supervisor agent per database host driving the pure decision core of `quorumlab-fencing`, fence
//! devices reached by their declared path, and the checks that judge the database's history.
//!
//! A run with [`FencingOptions`] is an ordinary suite run ([`super::run`]) with more hosts: the same
//! topology, nemesis, schedule, key-value workload and invariants, plus, per database member
//! `<dc>-db<k>`:
//! - the database ([`crate::db`]) serving gRPC over `turmoil::net`, on sled;
//! - its supervisor ([`agent`]), which talks to the Raft KV through the ordinary client library
//!   (leases, transactions, linearizable reads) and executes the core's decisions;
//! - database clients ([`clients`]), one per client datacenter, which find the primary through
//!   the KV and write and read; their history is checked for linearizability.
//!
//! The simulator plays the fence devices ([`devices`]): a power switch, a firewall, a credential
//! authority and each host's watchdog. A device is reached either out of band (never cut) or in
//! band: then it answers only while the fencer's host can reach the target's datacenter, and times
//! out otherwise. Everything the devices do that needs the simulation itself (powering a host off,
//! resetting it) is queued here and applied by the driver between steps ([`World::after_step`]).

pub mod agent;
pub mod clients;
pub mod devices;
pub mod faults;
pub mod matrix;
pub mod ports;
pub mod strategy;
pub mod verdict;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quorumlab_fencing::check::{DbRecord, Promotion, ServedRead};
use quorumlab_fencing::{MemberId, Token};
use quorumlab_quorum::{FencePath, Topology};

use super::history::Recorder;
use super::Shared;
use crate::db::{Db, DbBug, DbDisk, DbEvent, Gate};
use crate::sim::trace::sim_now;
pub use strategy::{FencingOptions, Strategy, WatchdogKind};

/// The port every database member listens on.
pub const DB_PORT: u16 = 5432;

/// The key the supervisors campaign for.
pub const LEADER_KEY: &str = "/db/leader";

/// Where a degradable synchronous primary records that it acknowledges without a replica
/// (`async:<member>`), and that it no longer does (`sync`): Patroni's `/sync` key.
pub const SYNC_KEY: &str = "/db/sync";

/// The failsafe list a primary records in failsafe mode (member ids, comma-separated): Patroni's `/failsafe`.
pub const FAILSAFE_KEY: &str = "/db/failsafe";

/// The host name of a datacenter's database client.
pub fn db_client_host(dc: &str) -> String {
    format!("{dc}-dbclient")
}

/// Something only the driver can do to the simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    PowerOff {
        member: u64,
    },
    PowerOn {
        member: u64,
    },
    /// A watchdog fired: the host resets (crash, then boot).
    Reset {
        member: u64,
    },
}

/// A host's watchdog, as the simulated hardware keeps it (in simulated time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WatchdogDevice {
    timeout: Duration,
    /// When it fires unless fed, in simulated time (a softdog's deadline moves on while its host is paused).
    fires_at: Duration,
}

/// What the database hosts, agents, devices and clients share with the driver.
pub struct World {
    pub options: FencingOptions,
    pub topology: Arc<Topology>,
    /// Member → host name.
    pub members: BTreeMap<u64, String>,
    pub shared: Shared,
    pub recorder: Recorder,
    record: Mutex<DbRecord>,
    /// The running database of each member (replaced when its host boots again).
    dbs: Mutex<BTreeMap<u64, Db>>,
    disks: Mutex<BTreeMap<u64, DbDisk>>,
    gates: BTreeMap<u64, Gate>,
    commands: Mutex<Vec<Command>>,
    /// Members whose host is powered off, and when the operator powers each back on.
    powered_off: Mutex<BTreeMap<u64, Duration>>,
    watchdogs: Mutex<BTreeMap<u64, WatchdogDevice>>,
    agent_paused: Mutex<BTreeSet<u64>>,
    /// Agents to pause at their next lease renewal: armed with the pause's length, or paused until a time.
    renewal_pause: Mutex<BTreeMap<u64, RenewalPause>>,
    host_paused: Mutex<BTreeMap<u64, Duration>>,
    /// Directed host pairs the nemesis cuts right now.
    cuts: Mutex<BTreeSet<(String, String)>>,
    /// The supervisor role each member's agent last reported.
    roles: Mutex<BTreeMap<u64, quorumlab_fencing::Role>>,
}

/// What the simulation must do to a host for the world (a fence device or a watchdog acted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostAction {
    Crash(String),
    Boot(String),
}

/// A pause that starts at a lease renewal.
#[derive(Clone, Copy, Debug)]
enum RenewalPause {
    Armed(Duration),
    Until(Duration),
}

impl World {
    pub fn new(options: FencingOptions, shared: Shared, recorder: Recorder) -> World {
        let topology = shared.options.topology.clone();
        let members: BTreeMap<u64, String> = topology.db_hosts().iter().map(|d| (d.member, d.host.clone())).collect();
        let gates = members.keys().map(|&m| (m, Gate::default())).collect();
        let record = DbRecord { synchronous: options.synchronous, ..DbRecord::default() };
        World {
            options,
            topology,
            members,
            shared,
            recorder,
            record: Mutex::new(record),
            dbs: Mutex::default(),
            disks: Mutex::default(),
            gates,
            commands: Mutex::default(),
            powered_off: Mutex::default(),
            watchdogs: Mutex::default(),
            agent_paused: Mutex::default(),
            renewal_pause: Mutex::default(),
            host_paused: Mutex::default(),
            cuts: Mutex::default(),
            roles: Mutex::default(),
        }
    }

    pub fn host(&self, member: u64) -> &str {
        self.members.get(&member).map(String::as_str).unwrap_or("?")
    }

    pub fn address(&self, member: u64) -> String {
        format!("{}:{DB_PORT}", self.host(member))
    }

    pub fn member_of_host(&self, host: &str) -> Option<u64> {
        self.members.iter().find(|(_, h)| h.as_str() == host).map(|(&m, _)| m)
    }

    fn trace(&self, line: String) {
        self.shared.trace.record(line);
    }

    pub fn record(&self) -> DbRecord {
        lock(&self.record).clone()
    }

    /// What a database member reports, stamped with simulated time.
    pub fn observe(self: &Arc<Self>) -> crate::db::Observe {
        let world = Arc::downgrade(self);
        Arc::new(move |event| {
            let Some(world) = world.upgrade() else { return };
            let at = super::trace::sim_now();
            let mut r = lock(&world.record);
            match event {
                DbEvent::Appended(entry) => {
                    r.entries.insert(entry.id, entry);
                }
                DbEvent::Acked { member, entry } => {
                    r.acks.push(quorumlab_fencing::check::Ack { entry, member: MemberId(member), at });
                }
                DbEvent::Promoted { member, token } => {
                    r.promotions.push(Promotion { member: MemberId(member), token: Token(token), at });
                    drop(r);
                    world.trace(format!("db {}: serving as primary under token {token}", world.host(member)));
                }
                DbEvent::Stopped { member } => {
                    drop(r);
                    world.trace(format!("db {}: stopped accepting writes", world.host(member)));
                }
            }
        })
    }

    pub fn served_read(&self, read: ServedRead) {
        lock(&self.record).reads.push(read);
    }

    /// The database running on `member`'s host now.
    pub fn db(&self, member: u64) -> Option<Db> {
        lock(&self.dbs).get(&member).cloned()
    }

    pub fn gate(&self, member: u64) -> Gate {
        self.gates.get(&member).cloned().unwrap_or_default()
    }

    /// Opens (or reopens, after a crash) `member`'s database on the host running this.
    pub fn open_db(self: &Arc<Self>, member: u64) -> Result<Db, String> {
        let disk = {
            let mut disks = lock(&self.disks);
            match disks.get(&member) {
                Some(d) => d.clone(),
                None => {
                    let d = DbDisk::temporary()?;
                    disks.insert(member, d.clone());
                    d
                }
            }
        };
        let cfg = crate::db::DbConfig {
            member,
            listen: format!("0.0.0.0:{DB_PORT}"),
            members: self.members.keys().map(|&m| (m, self.address(m))).collect(),
            transport: crate::net::Transport::Sim,
            synchronous: self.options.synchronous,
            enforce_tokens: self.options.strategy.enforces_tokens(),
            request_timeout: Duration::from_millis(1_000),
            replicate_timeout: Duration::from_millis(300),
            bug: self.options.bugs.check_yield_append.then_some(DbBug::CheckYieldAppend),
        };
        let db = Db::open(cfg, disk, self.gate(member), Some(self.observe()))?;
        if lock(&self.host_paused).contains_key(&member) {
            db.set_paused(true);
        }
        lock(&self.dbs).insert(member, db.clone());
        Ok(db)
    }

    pub fn push(&self, command: Command) {
        lock(&self.commands).push(command);
    }

    pub fn is_powered_off(&self, member: u64) -> bool {
        lock(&self.powered_off).contains_key(&member)
    }

    /// Records the role `member`'s supervisor reports. A member whose firewall rule is in force is unfenced
    /// once it is a replica again and its database no longer serves (it demoted, or booted): the rule that
    /// isolated an old primary must not strand a healthy replica.
    pub fn set_role(&self, member: u64, role: quorumlab_fencing::Role) {
        lock(&self.roles).insert(member, role);
        let gate = self.gate(member);
        if role == quorumlab_fencing::Role::Replica
            && gate.is_blocked()
            && self.db(member).is_some_and(|db| !db.is_primary())
        {
            gate.unblock();
            self.trace(format!("fence: {} unfenced (a replica again)", self.host(member)));
        }
    }

    pub fn roles(&self) -> BTreeMap<u64, quorumlab_fencing::Role> {
        lock(&self.roles).clone()
    }

    // ---- pauses (the nemesis sets them)

    pub fn agent_paused(&self, member: u64) -> bool {
        lock(&self.agent_paused).contains(&member)
            || lock(&self.host_paused).contains_key(&member)
            || matches!(lock(&self.renewal_pause).get(&member), Some(RenewalPause::Until(t)) if sim_now() < *t)
    }

    /// Arms a pause of `member`'s agent for `length` at its next lease renewal (`None`: no such pause).
    pub fn set_pause_on_renewal(&self, member: u64, length: Option<Duration>) {
        let mut p = lock(&self.renewal_pause);
        match length {
            Some(length) => {
                p.entry(member).or_insert(RenewalPause::Armed(length));
            }
            None => {
                p.remove(&member);
            }
        }
    }

    /// Called as `member` sends a renewal: an armed pause stops its agent now.
    pub fn renewal_sent(&self, member: u64) {
        let mut p = lock(&self.renewal_pause);
        if let Some(pause) = p.get_mut(&member) {
            if let RenewalPause::Armed(length) = *pause {
                *pause = RenewalPause::Until(sim_now() + length);
                self.shared.trace.record(format!(
                    "supervisor {}: stopped for {} ms with its renewal in flight",
                    self.host(member),
                    length.as_millis()
                ));
            }
        }
    }

    /// Waits while `member`'s agent is paused: a stopped process reads nothing that arrives for it.
    pub async fn until_agent_runs(&self, member: u64) {
        while self.agent_paused(member) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn set_agent_paused(&self, member: u64, paused: bool) {
        let mut p = lock(&self.agent_paused);
        if paused {
            p.insert(member);
        } else {
            p.remove(&member);
        }
    }

    /// Pauses or resumes the whole host: database, agent and (for a softdog) the watchdog's count.
    pub fn set_host_paused(&self, member: u64, paused: bool, now: Duration) {
        let mut p = lock(&self.host_paused);
        if paused {
            p.entry(member).or_insert(now);
        } else if let Some(since) = p.remove(&member) {
            if self.options.watchdog_kind == WatchdogKind::Softdog {
                if let Some(w) = lock(&self.watchdogs).get_mut(&member) {
                    w.fires_at += now.saturating_sub(since);
                }
            }
        }
        drop(p);
        if let Some(db) = self.db(member) {
            db.set_paused(paused);
        }
    }

    // ---- the network as the devices see it

    pub fn set_cuts(&self, cuts: BTreeSet<(String, String)>) {
        *lock(&self.cuts) = cuts;
    }

    /// Whether a message from host `from` reaches host `to` now (both ways needed for a request).
    pub fn reachable(&self, from: &str, to: &str) -> bool {
        let cuts = lock(&self.cuts);
        !cuts.contains(&(from.to_string(), to.to_string())) && !cuts.contains(&(to.to_string(), from.to_string()))
    }

    /// Whether `fencer`'s host reaches the fence devices acting on `target`: always out of band;
    /// in band, only while it reaches the target's host.
    pub fn device_reachable(&self, fencer: u64, target: u64) -> bool {
        let dc = self.topology.db_host(target).map(|d| d.dc.clone()).unwrap_or_default();
        let path = self.options.fence_path.or(self.topology.fence_path(&dc)).unwrap_or(FencePath::OutOfBand);
        match path {
            FencePath::OutOfBand => true,
            FencePath::InBand => {
                // The device sits on the target datacenter's network: reached from the fencer's host, and
                // itself reaching that datacenter's Raft nodes (a host cut off from them has its device cut off too).
                let target_host = self.host(target);
                let to_nodes = self.topology.nodes_in_dc(&dc).into_iter().filter_map(|n| self.topology.host(n));
                let mut nodes = to_nodes.peekable();
                let beside_nodes = nodes.peek().is_none() || nodes.any(|n| self.reachable(target_host, n));
                self.reachable(self.host(fencer), target_host) && beside_nodes
            }
        }
    }

    // ---- watchdogs

    pub fn watchdog_arm(&self, member: u64, timeout: Duration, now: Duration) -> bool {
        if !self.options.watchdog_available {
            return false;
        }
        lock(&self.watchdogs).insert(member, WatchdogDevice { timeout, fires_at: now + timeout });
        true
    }

    pub fn watchdog_feed(&self, member: u64, now: Duration) {
        if let Some(w) = lock(&self.watchdogs).get_mut(&member) {
            w.fires_at = now + w.timeout;
        }
    }

    pub fn watchdog_disarm(&self, member: u64) {
        lock(&self.watchdogs).remove(&member);
    }

    /// Whether `member`'s watchdog is armed now.
    pub fn watchdog_armed(&self, member: u64) -> bool {
        lock(&self.watchdogs).contains_key(&member)
    }

    /// Applies what devices queued and fires watchdogs that ran out; `now` is simulated time. Returns
    /// what the simulation must do to hosts, in order.
    pub fn after_step(&self, now: Duration) -> Vec<HostAction> {
        let mut actions = Vec::new();
        // Watchdogs: a softdog does not count while its host is paused.
        let paused: BTreeSet<u64> = lock(&self.host_paused).keys().copied().collect();
        let fired: Vec<u64> = {
            let mut w = lock(&self.watchdogs);
            let soft = self.options.watchdog_kind == WatchdogKind::Softdog;
            let fired: Vec<u64> =
                w.iter().filter(|(m, d)| now >= d.fires_at && !(soft && paused.contains(m))).map(|(&m, _)| m).collect();
            for m in &fired {
                w.remove(m);
            }
            fired
        };
        for member in fired {
            self.push(Command::Reset { member });
        }
        let due: Vec<u64> =
            lock(&self.powered_off).iter().filter(|(_, &on_at)| now >= on_at).map(|(&m, _)| m).collect();
        for member in due {
            self.push(Command::PowerOn { member });
        }
        let commands: Vec<Command> = std::mem::take(&mut *lock(&self.commands));
        for command in commands {
            let host = self.host(match command {
                Command::PowerOff { member } | Command::PowerOn { member } | Command::Reset { member } => member,
            });
            let host = host.to_string();
            match command {
                Command::PowerOff { member } => {
                    if lock(&self.powered_off).contains_key(&member) {
                        continue;
                    }
                    let back = now + self.options.power_off_for;
                    lock(&self.powered_off).insert(member, back);
                    self.forget(member);
                    actions.push(HostAction::Crash(host.clone()));
                    self.shared.trace.record_at(now, format!("fence: {host} powered off"));
                }
                Command::PowerOn { member } => {
                    if lock(&self.powered_off).remove(&member).is_some() {
                        actions.push(HostAction::Boot(host.clone()));
                        self.shared
                            .trace
                            .record_at(now, format!("fence: {host} powered on (a replica until it wins the key)"));
                    }
                }
                Command::Reset { member } => {
                    if lock(&self.powered_off).contains_key(&member) {
                        continue;
                    }
                    self.forget(member);
                    lock(&self.host_paused).remove(&member);
                    lock(&self.agent_paused).remove(&member);
                    actions.push(HostAction::Crash(host.clone()));
                    actions.push(HostAction::Boot(host.clone()));
                    self.shared.trace.record_at(now, format!("watchdog: {host} reset"));
                }
            }
        }
        actions
    }

    pub fn host_is_paused(&self, member: u64) -> bool {
        lock(&self.host_paused).contains_key(&member)
    }

    /// The nemesis crashes a member's host: its database and role are forgotten; returns the host to crash.
    pub fn crash(&self, member: u64, now: Duration) -> String {
        self.forget(member);
        let host = self.host(member).to_string();
        self.shared.trace.record_at(now, format!("nemesis: crash {host}"));
        host
    }

    /// The nemesis boots a crashed member's host again (its disk kept): the host to boot, unless it is
    /// powered off.
    pub fn boot(&self, member: u64, now: Duration) -> Option<String> {
        if self.is_powered_off(member) {
            return None;
        }
        let host = self.host(member).to_string();
        self.shared.trace.record_at(now, format!("nemesis: boot {host}"));
        Some(host)
    }

    /// A host went down: its database and role are gone.
    fn forget(&self, member: u64) {
        if let Some(db) = lock(&self.dbs).remove(&member) {
            db.stop_accepting();
        }
        lock(&self.roles).remove(&member);
        lock(&self.watchdogs).remove(&member);
    }

    /// The primary now: the serving member with the highest token.
    pub fn primary(&self) -> Option<(u64, u64)> {
        let dbs = lock(&self.dbs);
        dbs.iter()
            .filter(|(_, db)| db.is_primary())
            .filter_map(|(&m, db)| match db.serving() {
                crate::db::Serving::Primary { token } => Some((m, token)),
                _ => None,
            })
            .max_by_key(|&(_, t)| t)
    }

    /// Closes the record: the final primary and its head.
    pub fn finish(&self) -> DbRecord {
        let final_primary = self.primary().and_then(|(m, _)| self.db(m).map(|db| (MemberId(m), db.head())));
        let mut r = lock(&self.record);
        r.final_primary = final_primary;
        r.clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A database host: its database and its supervisor, from boot until the host dies.
pub async fn db_host(world: Arc<World>, member: u64) -> turmoil::Result {
    let db = world.open_db(member)?;
    world.trace(format!(
        "db {}: booted with {} entries (seen token {})",
        world.host(member),
        db.len(),
        db.seen_token()
    ));
    let server = tokio::spawn(db.clone().serve());
    let agent = agent::run(world.clone(), member, db);
    tokio::select! {
        r = server => r.map_err(|e| e.to_string())?.map_err(|e| e.into()),
        r = agent => r.map_err(|e| e.into()),
    }
}
