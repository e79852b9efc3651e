//! Runs a quorumlab cluster inside turmoil's deterministic simulated network.
//!
//! Each Raft node is a turmoil host running the same [`crate::node`] code as a real process, over
//! the simulated transport. Storage is real sled on a simulated disk ([`store::SimDisk`]): the
//! simulator keeps every node's disk across a simulated crash, like an OS page cache that
//! outlives a killed process, so a `crash` + `bounce` restarts the node with exactly what it
//! wrote; [`SimCluster::power_loss`] also loses what the node had not flushed.
//!
//! Every store reports its writes ([`observe`]); [`SimCluster::step`] checks every safety
//! property ([`invariants`]) over the writes of each step.
//!
//! Caller's duties:
//! 1. Build a [`SimCluster`] with a seed; every random choice (turmoil's network, openraft's
//!    election timeouts, tokio's scheduler, client ids and backoff) then flows from that seed.
//! 2. Add client futures with [`SimCluster::client`]; they talk to nodes only through gRPC.
//! 3. Drive the simulation with [`SimCluster::run`], [`SimCluster::run_until`] or
//!    [`SimCluster::step`] (all check the invariants after every step); crash, power off and
//!    bounce hosts between steps; partitions may also be cut from inside a client future.
//! 4. When a client gets an ok for a write, call [`Shared::acknowledged`] with its revision.

pub mod fencing;
pub mod history;
pub mod holder;
pub mod invariants;
pub mod layout;
pub mod nemesis;
pub mod observe;
pub mod roles;
pub mod run;
pub mod schedule;
pub mod shrink;
pub mod trace;
pub mod workload;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::ServerState;
use quorumlab_quorum::Topology;

use crate::client::{admin, Client, ClientConfig};
use crate::clock::HostClock;
use crate::net::Transport;
use crate::node::{self, NodeConfig, PlantedBug, Timing};
use crate::runtime;
use crate::store::{self, KvReader, SimDisk};
use crate::types::{NodeId, Raft, RaftMetrics};
pub use invariants::election_safety::LeadersByTerm;
pub use invariants::{Invariants, Violation};
use observe::{EventQueue, Observed};
use trace::sim_now;
pub use trace::Trace;

/// The port every simulated node listens on.
pub const PORT: u16 = 7000;

/// How to build a simulated cluster: usually [`SimOptions::from_topology`]; [`SimOptions::new`] is a one-datacenter
/// topology.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub seed: u64,
    /// Where every host sits, and the latency of every link.
    pub topology: Arc<Topology>,
    /// Raft nodes, voters and learners: id → host name. Ids are 1-based.
    pub nodes: BTreeMap<NodeId, String>,
    pub timing: Timing,
    pub snapshot_every: u64,
    pub logs_kept_after_snapshot: u64,
    /// The simulation fails if it runs longer than this (simulated time).
    pub duration: Duration,
    /// turmoil's step: every host runs once per tick, and messages arrive on tick boundaries, so
    /// it is the resolution of simulated latency. It also bounds speed: an idle cluster costs
    /// about one poll of every host per tick.
    pub tick: Duration,
    /// How often leaders checkpoint leases (see `NodeConfig::lease_checkpoint_interval`).
    pub lease_checkpoint_interval: Option<Duration>,
    /// A bug planted in every node, for negative-control tests.
    pub planted_bug: Option<PlantedBug>,
}

impl SimOptions {
    /// `n` voters in one datacenter, 1–5 ms apart.
    pub fn new(seed: u64, n: u64) -> Self {
        SimOptions::from_topology(&layout::flat_topology(n), seed)
    }
}

/// A running node as the simulator sees it: for observation, never for issuing client requests.
#[derive(Clone)]
pub struct NodeView {
    pub raft: Raft,
    pub reader: KvReader,
}

/// State shared between the simulator, its hosts and client futures.
#[derive(Clone)]
pub struct Shared {
    pub options: Arc<SimOptions>,
    pub trace: Trace,
    /// The node currently running on each host (replaced when a host restarts).
    pub nodes: Arc<Mutex<BTreeMap<NodeId, NodeView>>>,
    /// Every node's disk; it outlives simulated crashes (not power losses' unflushed writes).
    dbs: Arc<Mutex<Disks>>,
    /// Every (term, leader) any node's metrics ever showed (for tests; the election safety
    /// check reads every committed vote instead, see [`invariants::election_safety`]).
    pub leaders: Arc<Mutex<LeadersByTerm>>,
    /// What every store wrote, every acknowledged write, every power loss, in order.
    pub observed: Arc<EventQueue>,
    /// Every node's role over time (for timelines and time-to-leader).
    pub roles: roles::RoleLog,
    /// The safety properties, checked over `observed` after every step.
    pub invariants: Arc<Mutex<Invariants>>,
    /// Each host's clock, for code above the KV (see [`crate::clock`]); made on first use.
    clocks: Arc<Mutex<BTreeMap<String, HostClock>>>,
}

impl Shared {
    pub fn host(&self, id: NodeId) -> &str {
        self.options.nodes.get(&id).map(String::as_str).unwrap_or("?")
    }

    pub fn endpoint(&self, id: NodeId) -> String {
        format!("{}:{PORT}", self.host(id))
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.options.nodes.keys().map(|id| self.endpoint(*id)).collect()
    }

    /// A client session that knows every node.
    pub fn client(&self) -> Client {
        self.client_of(&self.options.nodes.keys().copied().collect::<Vec<_>>())
    }

    /// A client session that starts from the given nodes.
    pub fn client_of(&self, ids: &[NodeId]) -> Client {
        let cfg = ClientConfig::new(ids.iter().map(|id| self.endpoint(*id)).collect(), Transport::Sim);
        Client::new(cfg).unwrap_or_else(|e| unreachable!("a simulated cluster always has endpoints: {e}"))
    }

    /// The clock of `host`: its offset (under a second) and rate (within 100 parts per million
    /// of true time, as a crystal oscillator drifts) are drawn from the seed and the host's name,
    /// so they do not depend on which host asked first.
    pub fn clock(&self, host: &str) -> HostClock {
        let mut clocks = self.clocks.lock().unwrap_or_else(|e| e.into_inner());
        let (offset, ppm) = self.seeded_clock(host);
        clocks.entry(host.to_string()).or_insert_with(|| HostClock::sim(offset, ppm)).clone()
    }

    /// A host's clock offset and rate as the seed draws them.
    pub fn seeded_clock(&self, host: &str) -> (Duration, i64) {
        let h = runtime::stream_seed(self.options.seed, "clock/", host);
        let offset = Duration::from_micros(h % 1_000_000);
        let drift = ((h >> 32) % 201) as i64 - 100;
        (offset, crate::clock::PPM + drift)
    }

    /// Checks the safety properties over everything observed since the last check.
    pub fn check_safety(&self) -> Result<(), String> {
        let mut invariants = self.invariants.lock().map_err(|e| e.to_string())?;
        invariants.check(&self.observed).map_err(|e| e.to_string())
    }

    /// Records that a client got an ok for its write `(client_id, seq)` at `revision` (the
    /// response's revision): from now on every node applying `revision` must apply that write.
    pub fn acknowledged(&self, revision: u64, client_id: u64, seq: u64) {
        self.observed.push(Observed::Acknowledged { revision, client_id, seq });
    }

    /// Metrics of every running node.
    pub fn metrics(&self) -> BTreeMap<NodeId, RaftMetrics> {
        let nodes = self.nodes.lock().map(|n| n.clone()).unwrap_or_default();
        nodes.into_iter().map(|(id, n)| (id, n.raft.metrics().borrow().clone())).collect()
    }

    /// The index node `id` has applied up to (None: not running, or nothing applied).
    pub fn applied(&self, id: NodeId) -> Option<u64> {
        self.metrics().get(&id).and_then(|m| m.last_applied).map(|l| l.index)
    }

    /// The highest index any running node has applied.
    pub fn max_applied(&self) -> u64 {
        self.metrics().values().filter_map(|m| m.last_applied.map(|l| l.index)).max().unwrap_or(0)
    }

    /// Whether every voter is running and all have applied the same index.
    pub fn converged(&self) -> bool {
        let m = self.metrics();
        let applied: Vec<_> = m.values().map(|m| m.last_applied.map(|l| l.index)).collect();
        applied.len() == self.options.nodes.len() && applied.windows(2).all(|w| w[0] == w[1])
    }

    /// The leader with the highest term among running nodes that believe they lead.
    pub fn leader(&self) -> Option<(NodeId, u64)> {
        self.metrics()
            .into_iter()
            .filter(|(_, m)| m.state == ServerState::Leader)
            .map(|(id, m)| (id, m.current_term))
            .max_by_key(|(_, t)| *t)
    }

    /// Polls (in simulated time) until `pred` holds or `timeout` passes.
    pub async fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&Shared) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if pred(self) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until some node leads among the nodes in `among`, and returns it.
    pub async fn wait_for_leader_among(&self, among: &[NodeId], timeout: Duration) -> Option<NodeId> {
        let mut found = None;
        self.wait_for(timeout, |s| {
            found = s.leader_among(among);
            found.is_some()
        })
        .await;
        found
    }

    fn leader_among(&self, among: &[NodeId]) -> Option<NodeId> {
        self.metrics()
            .into_iter()
            .filter(|(id, m)| among.contains(id) && m.state == ServerState::Leader)
            .max_by_key(|(_, m)| m.current_term)
            .map(|(id, _)| id)
    }

    /// Initializes the cluster through node `via` with the topology's voters; learners stay uninitialized until
    /// [`Shared::add_learners`] adds them.
    pub async fn initialize(&self, via: NodeId) -> Result<(), String> {
        self.initialize_with(via, &self.options.voters()).await
    }

    /// Adds the topology's learners through the current leader and waits until each has caught up.
    pub async fn add_learners(&self, timeout: Duration) -> Result<(), String> {
        for id in self.options.learners() {
            let leader = self
                .wait_for_leader_among(&self.options.voters(), timeout)
                .await
                .ok_or("no leader to add learners through")?;
            admin::add_learner(Transport::Sim, &self.endpoint(leader), id, &self.endpoint(id), true, timeout).await?;
        }
        Ok(())
    }

    /// Initializes the cluster through node `via` with only `voters`; the other hosts run
    /// uninitialized until they are added as learners.
    pub async fn initialize_with(&self, via: NodeId, voters: &[NodeId]) -> Result<(), String> {
        let members: BTreeMap<u64, String> = voters.iter().map(|id| (*id, self.endpoint(*id))).collect();
        admin::initialize(Transport::Sim, &self.endpoint(via), &members, Duration::from_secs(2)).await
    }
}

/// Every node's simulated disk, and how long a flush takes on new ones.
#[derive(Default)]
struct Disks {
    by_node: BTreeMap<NodeId, SimDisk>,
    flush_delay: Duration,
}

impl Disks {
    fn new_disk(&self) -> Result<SimDisk, store::OpenError> {
        let disk = SimDisk::new()?;
        disk.set_flush_delay(self.flush_delay);
        Ok(disk)
    }
}

/// A simulated cluster: the turmoil simulation plus the state its hosts share.
pub struct SimCluster<'a> {
    pub sim: turmoil::Sim<'a>,
    pub shared: Shared,
    /// Every host added so far, nodes and clients, in the order added.
    hosts: Vec<String>,
    /// The database hosts, their supervisors and fence devices, when the run has them.
    pub fencing: Option<Arc<fencing::World>>,
    /// Links the nemesis moved out of the healthy state, by (smaller host, larger host).
    pub(crate) links: BTreeMap<(String, String), nemesis::LinkState>,
}

impl<'a> SimCluster<'a> {
    pub fn new(options: SimOptions) -> Self {
        runtime::seed_thread_rng(options.seed);
        runtime::align_tokio_task_ids();
        // Hosts the topology does not place (a test's own client hosts) get the local link's latency.
        let local = options.topology.local_link();
        let sim = turmoil::Builder::new()
            .rng_seed(options.seed)
            .simulation_duration(options.duration)
            .tick_duration(options.tick)
            .min_message_latency(local.latency())
            .max_message_latency(local.latency() + local.jitter())
            .tcp_capacity(4096)
            .build();
        let election_max = Duration::from_millis(options.timing.election_timeout_ms_max);
        let shared = Shared {
            options: Arc::new(options),
            trace: Trace::default(),
            nodes: Arc::default(),
            dbs: Arc::default(),
            leaders: Arc::default(),
            observed: Arc::default(),
            roles: roles::RoleLog::default(),
            invariants: Arc::new(Mutex::new(Invariants::new(election_max))),
            clocks: Arc::default(),
        };
        let mut cluster = SimCluster { sim, shared, hosts: Vec::new(), fencing: None, links: BTreeMap::new() };
        let ids: Vec<NodeId> = cluster.shared.options.nodes.keys().copied().collect();
        for id in ids {
            cluster.add_host(id);
        }
        cluster
    }

    fn add_host(&mut self, id: NodeId) {
        let shared = self.shared.clone();
        let name = shared.host(id).to_string();
        self.sim.host(name.clone(), move || run_host(shared.clone(), id));
        self.place_links(&name);
    }

    /// Adds the topology's database hosts (each with its supervisor) and one database client per
    /// client datacenter, all sharing `world`; the driver then applies what their fence devices queue.
    pub fn add_databases(&mut self, world: Arc<fencing::World>, control: Arc<workload::Control>) {
        for (&member, host) in &world.members.clone() {
            let w = world.clone();
            self.sim.host(host.clone(), move || fencing::db_host(w.clone(), member));
            self.place_links(host);
        }
        for dc in self.shared.options.client_hosts().into_keys() {
            let f = fencing::clients::run(world.clone(), control.clone(), dc.clone());
            self.client(&fencing::db_client_host(&dc), f);
        }
        self.fencing = Some(world);
    }

    /// Gives every link between `host` and the hosts before it its topology's latency profile.
    fn place_links(&mut self, host: &str) {
        for other in &self.hosts {
            if let Some(profile) = self.shared.options.link_between(host, other) {
                layout::set_link(&self.sim, host, other, profile);
            }
        }
        self.hosts.push(host.to_string());
    }

    /// Adds a client future; it ends the simulation with an error if it returns one. A host named
    /// [`layout::client_host`] of a datacenter is placed there; any other name gets local links.
    pub fn client<F>(&mut self, name: &str, f: F)
    where
        F: Future<Output = Result<(), String>> + 'static,
    {
        self.sim.client(name, async move { f.await.map_err(|e| e.into()) });
        self.place_links(name);
    }

    /// Runs until every client future has finished, checking the safety properties after every
    /// step.
    pub fn run(&mut self) -> Result<(), String> {
        while !self.step_checked()? {}
        Ok(())
    }

    /// Advances the simulation by one tick, then checks the safety properties over what the
    /// tick did. The error names the property, the nodes and the term or index; a violation is
    /// reported even when the tick also failed (a node may panic right after one).
    /// `Ok(true)` once every client future has finished.
    pub fn step(&mut self) -> Result<bool, String> {
        self.step_checked()
    }

    /// One tick and its check; true once every client future has finished.
    fn step_checked(&mut self) -> Result<bool, String> {
        // A node that breaks an invariant may panic on its own assertion later in the same tick;
        // the violation, recorded before the panic, is the better report.
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.sim.step()));
        if let Some(world) = &self.fencing {
            let now = self.sim.elapsed();
            for action in world.after_step(now) {
                match action {
                    fencing::HostAction::Crash(host) => self.crash_host(&host),
                    fencing::HostAction::Boot(host) => self.sim.bounce(host),
                }
            }
        }
        let checked = self.shared.check_safety();
        match stepped {
            Ok(stepped) => {
                checked?;
                stepped.map_err(|e| e.to_string())
            }
            Err(panic) => {
                checked?;
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Steps the simulation until `pred` holds (true) or `timeout` of simulated time passes
    /// (false). Hosts keep running after every client future has finished.
    pub fn run_until(&mut self, timeout: Duration, mut pred: impl FnMut(&Shared) -> bool) -> Result<bool, String> {
        let deadline = self.sim.elapsed() + timeout;
        loop {
            if pred(&self.shared) {
                self.shared.check_safety()?;
                return Ok(true);
            }
            if self.sim.elapsed() >= deadline {
                self.shared.check_safety()?;
                return Ok(false);
            }
            self.step()?;
        }
    }

    /// Steps until node `id` has applied at least what the most advanced node had applied when
    /// this was called.
    pub fn run_until_caught_up(&mut self, id: NodeId, timeout: Duration) -> Result<(), String> {
        let target = self.shared.max_applied();
        if self.run_until(timeout, |s| s.applied(id) >= Some(target))? {
            Ok(())
        } else {
            Err(format!(
                "node {id} did not catch up to index {target} within {timeout:?} (at {:?})",
                self.shared.applied(id)
            ))
        }
    }

    /// Kills a node's host: its in-flight state is gone, its storage is kept.
    pub fn crash(&mut self, id: NodeId) {
        self.shared.trace.record_at(self.sim.elapsed(), format!("nemesis: crash node {id}"));
        self.shared.roles.down(self.sim.elapsed(), id);
        if let Ok(mut n) = self.shared.nodes.lock() {
            n.remove(&id);
        }
        let host = self.shared.host(id).to_string();
        self.crash_host(&host);
    }

    /// Kills a host without a goodbye (see [`nemesis::crash_silently`]).
    pub fn crash_host(&mut self, host: &str) {
        nemesis::crash_silently(&mut self.sim, &self.shared.options, &self.links, &self.hosts, host);
    }

    /// Restarts a crashed node's host from its storage.
    pub fn bounce(&mut self, id: NodeId) {
        self.shared.trace.record_at(self.sim.elapsed(), format!("nemesis: restart node {id}"));
        let host = self.shared.host(id).to_string();
        self.sim.bounce(host);
    }

    /// Replaces a node's storage with an empty one (a wiped disk); takes effect at the next bounce.
    pub fn wipe(&mut self, id: NodeId) -> Result<(), String> {
        self.shared.trace.record_at(self.sim.elapsed(), format!("nemesis: wipe node {id}'s disk"));
        let mut disks = self.shared.dbs.lock().map_err(|e| e.to_string())?;
        let disk = disks.new_disk().map_err(|e| e.to_string())?;
        disks.by_node.insert(id, disk);
        self.shared.observed.push(Observed::Wiped { node: id });
        Ok(())
    }

    /// Makes every flush take `delay` of simulated time on every node's disk, as a real fsync
    /// does, so a power loss can land between a write and its flush (zero by default).
    pub fn set_flush_delay(&mut self, delay: Duration) -> Result<(), String> {
        self.shared.trace.record_at(self.sim.elapsed(), format!("disks: every flush takes {delay:?}"));
        let mut disks = self.shared.dbs.lock().map_err(|e| e.to_string())?;
        disks.flush_delay = delay;
        for disk in disks.by_node.values() {
            disk.set_flush_delay(delay);
        }
        Ok(())
    }

    /// Makes every flush on node `id`'s disk take `delay` (a slow disk on one node), until its disk is wiped.
    pub fn set_flush_delay_of(&mut self, id: NodeId, delay: Duration) -> Result<(), String> {
        self.shared.trace.record_at(self.sim.elapsed(), format!("disks: every flush of node {id} takes {delay:?}"));
        let disks = self.shared.dbs.lock().map_err(|e| e.to_string())?;
        let disk = disks.by_node.get(&id).ok_or_else(|| format!("node {id} has no disk yet"))?;
        disk.set_flush_delay(delay);
        Ok(())
    }

    /// Cuts a node's power: its host crashes (as [`SimCluster::crash`]) and its disk loses every
    /// write made since its last flush. [`SimCluster::bounce`] restarts it from what is left.
    pub fn power_loss(&mut self, id: NodeId) -> Result<(), String> {
        self.shared.roles.down(self.sim.elapsed(), id);
        if let Ok(mut n) = self.shared.nodes.lock() {
            n.remove(&id);
        }
        let host = self.shared.host(id).to_string();
        self.crash_host(&host);
        let disk = self.shared.dbs.lock().map_err(|e| e.to_string())?.by_node.get(&id).cloned();
        let lost = match disk {
            Some(disk) => disk.power_loss().map_err(|e| format!("power loss of node {id}: {e}"))?,
            None => store::PowerLoss::default(),
        };
        self.shared.trace.record_at(
            self.sim.elapsed(),
            format!(
                "nemesis: power loss node {id} ({} unflushed write groups, {} keys rolled back)",
                lost.groups, lost.writes
            ),
        );
        self.shared.observed.push(Observed::PowerLoss { node: id });
        Ok(())
    }
}

/// A turmoil host: open (or reopen) the node's storage, start the node, and watch its metrics.
async fn run_host(shared: Shared, id: NodeId) -> turmoil::Result {
    let disk = {
        let mut disks = shared.dbs.lock().map_err(|e| e.to_string())?;
        match disks.by_node.get(&id) {
            Some(disk) => disk.clone(),
            None => {
                let disk = disks.new_disk()?;
                disks.by_node.insert(id, disk.clone());
                disk
            }
        }
    };
    let opts = &shared.options;
    let (log, sm) = store::open_sim(&disk, id, Some(shared.observed.clone()), opts.planted_bug)?;
    let config = NodeConfig {
        id,
        listen: format!("0.0.0.0:{PORT}"),
        advertise: shared.endpoint(id),
        transport: Transport::Sim,
        timing: opts.timing,
        snapshot_every: opts.snapshot_every,
        logs_kept_after_snapshot: opts.logs_kept_after_snapshot,
        lease_checkpoint_interval: opts.lease_checkpoint_interval,
        planted_bug: opts.planted_bug,
    };
    let running = node::start(config, log, sm).await?;
    let view = NodeView { raft: running.raft.clone(), reader: running.reader.clone() };
    shared.nodes.lock().map_err(|e| e.to_string())?.insert(id, view);
    shared.trace.record(format!("node {id}: started"));
    let mut metrics = running.raft.metrics();
    let mut last: Option<Shown> = None;
    loop {
        // Metrics change on every replication ack too; only what the trace shows is compared, and
        // only a change of it is formatted (most changes under load are not).
        let shown = Shown::of(&metrics.borrow_and_update());
        if shown.state == ServerState::Leader {
            shared.leaders.lock().map_err(|e| e.to_string())?.observe(shown.term, id);
        }
        shared.roles.record(sim_now(), id, roles::Role::of(shown.state), shown.term);
        if last.as_ref() != Some(&shown) {
            shared.trace.record(shown.describe(id));
            last = Some(shown);
        }
        if metrics.changed().await.is_err() {
            return Ok(());
        }
    }
}

/// The part of a node's metrics the trace records.
#[derive(PartialEq)]
struct Shown {
    state: ServerState,
    term: u64,
    leader: Option<NodeId>,
    last_log: Option<u64>,
    applied: Option<u64>,
    snapshot: Option<u64>,
    purged: Option<u64>,
    voters: Vec<NodeId>,
}

impl Shown {
    fn of(m: &RaftMetrics) -> Self {
        Shown {
            state: m.state,
            term: m.current_term,
            leader: m.current_leader,
            last_log: m.last_log_index,
            applied: m.last_applied.map(|l| l.index),
            snapshot: m.snapshot.map(|l| l.index),
            purged: m.purged.map(|l| l.index),
            voters: m.membership_config.membership().voter_ids().collect(),
        }
    }

    /// One trace line.
    fn describe(&self, id: NodeId) -> String {
        fn or_dash(v: Option<u64>) -> String {
            v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
        }
        let voters: Vec<String> = self.voters.iter().map(|v| v.to_string()).collect();
        format!(
            "node {id}: {:?} term {} leader {} last_log {} applied {} snapshot {} purged {} voters [{}]",
            self.state,
            self.term,
            or_dash(self.leader),
            or_dash(self.last_log),
            or_dash(self.applied),
            or_dash(self.snapshot),
            or_dash(self.purged),
            voters.join(","),
        )
    }
}
