//! The nemesis: turns the faults active at a moment into turmoil calls, and writes each change to the trace.
//! Tests never call turmoil's partition functions themselves.
//!
//! It works from a desired state, not from a list of undo actions: every time a fault starts or ends it computes
//! the [`Connectivity`] of all active network faults (the same value the oracle reads), which nodes must be down,
//! which hosts are paused and which links are slow or lossy, and then changes exactly the turmoil links and hosts
//! whose state differs. Overlapping faults therefore compose, and healing is "no fault active".
//!
//! Client hosts sit beside their datacenter's nodes: a client host is cut from node `x` exactly when its whole
//! datacenter is (every node of its datacenter is cut from `x`; for `x` in its own datacenter, when `x` is cut
//! from every other node). So "isolate dc2" strands dc2's client with dc2, and "isolate dc1-n1" cuts dc1-n1 from
//! its own datacenter's client too.
//!
//! Caller's duties: call [`Nemesis::start`] and [`Nemesis::stop`] between simulation steps, with the leader at that
//! moment; call [`Nemesis::heal`] before the liveness phase.

use std::collections::{BTreeMap, BTreeSet};

use quorumlab_quorum::{Connectivity, FaultShape, Topology};

use super::fencing::faults::{DbFault, DbTarget};
use super::schedule::{resolve, Fault, Target};
use super::{layout, SimCluster};
use crate::types::NodeId;

/// What one direction of a link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    Ok,
    Cut,
    Held,
}

/// The state of the link between two hosts (`a < b`): both directions, and extras.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkState {
    a_to_b: Dir,
    b_to_a: Dir,
    extra_latency_ms: u64,
    loss_percent: u8,
}

const HEALTHY: LinkState = LinkState { a_to_b: Dir::Ok, b_to_a: Dir::Ok, extra_latency_ms: 0, loss_percent: 0 };

impl LinkState {
    /// What the direction from the smaller host name to the larger does.
    pub fn a_to_b(&self) -> Dir {
        self.a_to_b
    }
    /// What the direction from the larger host name to the smaller does.
    pub fn b_to_a(&self) -> Dir {
        self.b_to_a
    }
    /// Latency added to every message, each way.
    pub fn extra_latency_ms(&self) -> u64 {
        self.extra_latency_ms
    }
    /// The share of messages lost, each way.
    pub fn loss_percent(&self) -> u8 {
        self.loss_percent
    }
}

/// The links a set of active faults asks for: every host pair `(a, b)` with `a < b` whose link is not healthy.
pub type LinkPlan = BTreeMap<(String, String), LinkState>;

/// A fault that has started, with what it resolved to when it did.
#[derive(Clone, Debug)]
pub struct ActiveFault {
    pub id: usize,
    pub fault: Fault,
    /// The oracle's view of it (`None` for pause, latency and loss, or a leader fault with no leader).
    pub shape: Option<FaultShape>,
    /// The node it targets (crash, power loss, pause).
    pub node: Option<NodeId>,
    /// A database fault: the member it hit, and every host it cuts off (the member, a replica
    /// beside it and their datacenter's database client).
    pub member: Option<u64>,
    pub hosts: Vec<String>,
}

impl ActiveFault {
    /// Fault `id` as it resolves when it starts with `leader` leading: its oracle shape and the node it
    /// targets. Database faults need the simulated database and resolve in [`Nemesis::start`].
    pub fn resolve(id: usize, fault: &Fault, topology: &Topology, leader: Option<NodeId>) -> ActiveFault {
        let node = match fault {
            Fault::Crash { target } | Fault::PowerLoss { target } | Fault::Pause { target } => {
                resolve(topology, target, leader)
            }
            _ => None,
        };
        ActiveFault {
            id,
            fault: fault.clone(),
            shape: fault.shape(topology, leader),
            node,
            member: None,
            hosts: vec![],
        }
    }

    /// How the fault resolved, for the trace: ` (dc1-n1)` when it named the leader; empty when nothing was named.
    pub fn resolved_label(&self, topology: &Topology) -> String {
        match (&self.shape, &self.fault) {
            (Some(shape), Fault::IsolateLeader | Fault::IsolateLeaderDc) => format!(" ({})", shape.label(topology)),
            (_, Fault::Crash { target: Target::Leader | Target::Follower })
            | (_, Fault::PowerLoss { target: Target::Leader | Target::Follower })
            | (_, Fault::Pause { target: Target::Leader | Target::Follower }) => {
                self.node.and_then(|n| topology.host(n)).map(|h| format!(" ({h})")).unwrap_or_default()
            }
            (_, Fault::Db { .. }) if !self.hosts.is_empty() => format!(" ({})", self.hosts.join(", ")),
            _ => String::new(),
        }
    }
}

/// The connectivity of the network faults among `active`, as the oracle sees it.
pub fn connectivity_of(active: &[ActiveFault], topology: &Topology) -> Connectivity {
    let mut connectivity = Connectivity::full_mesh(topology);
    for shape in active.iter().filter_map(|a| a.shape.as_ref()) {
        // Shapes were checked against this topology when parsed or resolved.
        let _ = shape.apply_to(topology, &mut connectivity);
    }
    connectivity
}

/// Applies faults to one simulated cluster.
#[derive(Default)]
pub struct Nemesis {
    active: Vec<ActiveFault>,
    /// Nodes this nemesis took down.
    down: BTreeSet<NodeId>,
    /// Database members this nemesis crashed.
    db_down: BTreeSet<u64>,
}

impl Nemesis {
    /// Starts fault `id` (a schedule step's index); `leader` resolves faults that name the leader.
    pub fn start(&mut self, c: &mut SimCluster<'_>, id: usize, fault: &Fault, leader: Option<NodeId>) -> ActiveFault {
        let topology = c.shared.options.topology.clone();
        let mut active = ActiveFault::resolve(id, fault, &topology, leader);
        if let Fault::Db { db } = fault {
            (active.member, active.hosts) = resolve_db(c, db, leader, &self.db_down);
        }
        let resolved = active.resolved_label(&topology);
        c.shared.trace.record_at(c.sim.elapsed(), format!("nemesis: start {}{resolved}", fault.label(&topology)));
        self.active.push(active.clone());
        self.sync(c);
        active
    }

    /// Ends fault `id`.
    pub fn stop(&mut self, c: &mut SimCluster<'_>, id: usize) {
        if let Some(pos) = self.active.iter().position(|a| a.id == id) {
            let ended = self.active.remove(pos);
            c.shared
                .trace
                .record_at(c.sim.elapsed(), format!("nemesis: end {}", ended.fault.label(&c.shared.options.topology)));
            self.sync(c);
        }
    }

    /// Ends every fault: every link healthy, every node the nemesis took down restarted.
    pub fn heal(&mut self, c: &mut SimCluster<'_>) {
        if !self.active.is_empty() {
            c.shared.trace.record_at(c.sim.elapsed(), "nemesis: heal everything");
        }
        self.active.clear();
        self.sync(c);
    }

    pub fn active(&self) -> &[ActiveFault] {
        &self.active
    }

    /// The connectivity of every active network fault, as the oracle sees it.
    pub fn connectivity(&self, topology: &Topology) -> Connectivity {
        connectivity_of(&self.active, topology)
    }

    /// Makes turmoil match the active faults.
    fn sync(&mut self, c: &mut SimCluster<'_>) {
        let options = c.shared.options.clone();
        let topology = &options.topology;
        let connectivity = self.connectivity(topology);

        // Nodes: down ones crash (or lose power), ones no longer down restart.
        let power_loss: BTreeSet<NodeId> =
            self.active.iter().filter(|a| matches!(a.fault, Fault::PowerLoss { .. })).filter_map(|a| a.node).collect();
        let want_down: BTreeSet<NodeId> = connectivity.down_nodes().clone();
        for &id in want_down.difference(&self.down.clone()) {
            if power_loss.contains(&id) {
                if let Err(e) = c.power_loss(id) {
                    c.shared.trace.record_at(c.sim.elapsed(), format!("nemesis: {e}"));
                }
            } else {
                c.crash(id);
            }
        }
        for &id in self.down.clone().difference(&want_down) {
            c.bounce(id);
        }
        self.down = want_down;

        // Client clocks: a datacenter's client host runs at its seeded rate scaled by every active clock fault.
        for (dc, host) in options.client_hosts() {
            let clock = c.shared.clock(&host);
            let mut ppm = c.shared.seeded_clock(&host).1;
            for a in &self.active {
                if let Fault::ClockRate { dc: d, percent } = &a.fault {
                    if *d == dc {
                        ppm = ppm * *percent as i64 / 100;
                    }
                }
            }
            if clock.rate_ppm() != ppm {
                clock.set_rate(c.sim.elapsed(), ppm);
            }
        }

        // Database faults: pauses and clocks act on the world; crashes on the host; cuts are links below.
        let paused: BTreeSet<String> = self.sync_databases(c);

        // Links.
        let wanted = plan_links(&options, &self.active, &c.hosts, paused);
        let mut touched: BTreeSet<(String, String)> = wanted.keys().cloned().collect();
        touched.extend(c.links.keys().cloned());
        for key in touched {
            let before = c.links.get(&key).copied().unwrap_or(HEALTHY);
            let after = wanted.get(&key).copied().unwrap_or(HEALTHY);
            if before != after {
                apply_link(&mut c.sim, &options, &key.0, &key.1, before, after);
            }
        }
        if let Some(world) = &c.fencing {
            let mut cuts = BTreeSet::new();
            for ((a, b), state) in &wanted {
                if state.a_to_b == Dir::Cut {
                    cuts.insert((a.clone(), b.clone()));
                }
                if state.b_to_a == Dir::Cut {
                    cuts.insert((b.clone(), a.clone()));
                }
            }
            world.set_cuts(cuts);
        }
        c.links = wanted;
    }

    /// Applies the active database faults to the world and the database hosts; returns the hosts
    /// whose messages must be held (paused hosts).
    fn sync_databases(&mut self, c: &mut SimCluster<'_>) -> BTreeSet<String> {
        let Some(world) = c.fencing.clone() else { return BTreeSet::new() };
        let now = c.sim.elapsed();
        let mut agent_paused = BTreeSet::new();
        let mut renewing = BTreeMap::new();
        let mut host_paused = BTreeSet::new();
        let mut crashed = BTreeSet::new();
        let mut rates: BTreeMap<u64, u64> = BTreeMap::new();
        for a in &self.active {
            let (Fault::Db { db }, Some(m)) = (&a.fault, a.member) else { continue };
            match db {
                DbFault::PauseSupervisor { .. } => {
                    agent_paused.insert(m);
                }
                DbFault::PauseSupervisorRenewing { for_ms, .. } => {
                    renewing.insert(m, std::time::Duration::from_millis(*for_ms));
                }
                DbFault::PauseHost { .. } => {
                    host_paused.insert(m);
                }
                DbFault::Crash { .. } => {
                    crashed.insert(m);
                }
                DbFault::Clock { percent, .. } => {
                    let rate = rates.entry(m).or_insert(100);
                    *rate = *rate * percent / 100;
                }
                DbFault::IsolateWithReplica { .. }
                | DbFault::IsolateMuted { .. }
                | DbFault::IsolateAlone { .. }
                | DbFault::IsolateWithLeader { .. } => {}
            }
        }
        for &m in world.members.keys() {
            world.set_agent_paused(m, agent_paused.contains(&m));
            world.set_pause_on_renewal(m, renewing.get(&m).copied());
            let paused_now = world.host_is_paused(m);
            if paused_now != host_paused.contains(&m) {
                world.set_host_paused(m, host_paused.contains(&m), now);
            }
            let host = world.host(m).to_string();
            let clock = c.shared.clock(&host);
            let ppm = c.shared.seeded_clock(&host).1 * rates.get(&m).copied().unwrap_or(100) as i64 / 100;
            if clock.rate_ppm() != ppm {
                clock.set_rate(now, ppm);
            }
            let down = self.db_down.contains(&m);
            if crashed.contains(&m) && !down {
                let host = world.crash(m, now);
                c.crash_host(&host);
            } else if !crashed.contains(&m) && down {
                if let Some(host) = world.boot(m, now) {
                    c.sim.bounce(host);
                }
            }
        }
        self.db_down = crashed;
        host_paused.iter().map(|&m| world.host(m).to_string()).collect()
    }
}

/// What every link between `hosts` must be while `active` is: cut where a network fault cuts it (client hosts
/// with their datacenter, see the module doc), held where a host in `paused` (or paused by a fault) sits, slow
/// or lossy where a latency or loss fault says. The simulator applies the plan to turmoil, real mode to
/// nftables: one plan, so both cut exactly the same links.
pub fn plan_links(
    options: &super::SimOptions,
    active: &[ActiveFault],
    hosts: &[String],
    mut paused: BTreeSet<String>,
) -> LinkPlan {
    let topology = &options.topology;
    let connectivity = connectivity_of(active, topology);
    paused.extend(
        active
            .iter()
            .filter(|a| matches!(a.fault, Fault::Pause { .. }))
            .filter_map(|a| a.node.and_then(|n| topology.host(n)).map(str::to_string)),
    );
    let islands: Vec<BTreeSet<String>> = active
        .iter()
        .filter(|a| matches!(&a.fault, Fault::Db { db } if db.island()))
        .map(|a| a.hosts.iter().cloned().collect())
        .collect();
    // Muted hosts, with their island: nothing they send leaves it.
    let muted: Vec<(String, BTreeSet<String>)> = active
        .iter()
        .filter(|a| matches!(&a.fault, Fault::Db { db } if db.mutes_target()))
        .filter_map(|a| Some((a.hosts.first()?.clone(), a.hosts.iter().cloned().collect())))
        .collect();
    let mut slow: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut lossy: BTreeMap<(String, String), u8> = BTreeMap::new();
    for a in active {
        match &a.fault {
            Fault::LatencySpike { a, b, extra_ms } => *slow.entry(ordered(a, b)).or_default() += extra_ms,
            Fault::Loss { a, b, percent } => {
                let e = lossy.entry(ordered(a, b)).or_default();
                *e = (*e).max(*percent);
            }
            _ => {}
        }
    }
    let cut: BTreeSet<(NodeId, NodeId)> = connectivity.cut_links().collect();
    let down = connectivity.down_nodes().clone();
    let mut wanted: BTreeMap<(String, String), LinkState> = BTreeMap::new();
    for (i, a) in hosts.iter().enumerate() {
        for b in &hosts[i + 1..] {
            let (a, b) = if a < b { (a, b) } else { (b, a) };
            // A database island is cut from the voters outside it (every Raft node), not from the other
            // database hosts; inside an island (a Raft leader cut off with it included) every host hears every other.
            let is_node = |h: &str| topology.node_by_host(h).is_some();
            let inside = islands.iter().any(|i| i.contains(a) && i.contains(b));
            let island_cut = islands.iter().any(|i| {
                (i.contains(a) && !i.contains(b) && is_node(b)) || (i.contains(b) && !i.contains(a) && is_node(a))
            });
            let unheard = |from: &str, to: &str| muted.iter().any(|(m, island)| m == from && !island.contains(to));
            let blocked = |from: &str, to: &str| {
                unheard(from, to) || (!inside && (island_cut || host_blocked(options, topology, &cut, &down, from, to)))
            };
            let mut state = HEALTHY;
            state.a_to_b = if blocked(a, b) { Dir::Cut } else { Dir::Ok };
            state.b_to_a = if blocked(b, a) { Dir::Cut } else { Dir::Ok };
            if paused.contains(a) || paused.contains(b) {
                // A paused host's messages wait; a cut direction still drops (a dropped message is always allowed).
                for dir in [&mut state.a_to_b, &mut state.b_to_a] {
                    if *dir == Dir::Ok {
                        *dir = Dir::Held;
                    }
                }
            }
            if let (Some(da), Some(db)) = (options.dc_of_host(a), options.dc_of_host(b)) {
                let key = ordered(&da, &db);
                state.extra_latency_ms = slow.get(&key).copied().unwrap_or(0);
                state.loss_percent = lossy.get(&key).copied().unwrap_or(0);
            }
            if state != HEALTHY {
                wanted.insert((a.clone(), b.clone()), state);
            }
        }
    }
    wanted
}

/// The database member a fault names when it starts, and the hosts it cuts off.
fn resolve_db(
    c: &SimCluster<'_>,
    fault: &DbFault,
    leader: Option<NodeId>,
    db_down: &BTreeSet<u64>,
) -> (Option<u64>, Vec<String>) {
    let Some(world) = &c.fencing else { return (None, Vec::new()) };
    let primary = world.primary().map(|(m, _)| m);
    let member = match fault.target() {
        DbTarget::Member(m) => Some(m),
        DbTarget::Primary => primary,
        DbTarget::Replica => world.members.keys().copied().find(|&m| Some(m) != primary && !db_down.contains(&m)),
    };
    let Some(member) = member else { return (None, Vec::new()) };
    let mut hosts = vec![world.host(member).to_string()];
    let dc = world.topology.db_host(member).map(|d| d.dc.clone()).unwrap_or_default();
    if let DbFault::IsolateWithReplica { .. } | DbFault::IsolateMuted { .. } = fault {
        if let Some(replica) = world.topology.db_hosts().iter().find(|d| d.dc == dc && d.member != member) {
            hosts.push(replica.host.clone());
        }
    }
    if let DbFault::IsolateWithReplica { .. } | DbFault::IsolateMuted { .. } | DbFault::IsolateWithLeader { .. } = fault
    {
        hosts.push(super::fencing::db_client_host(&dc));
    }
    if let DbFault::IsolateWithLeader { .. } = fault {
        hosts.extend(leader.and_then(|l| world.topology.host(l)).map(str::to_string));
    }
    (Some(member), hosts)
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// Whether messages from host `from` to host `to` are dropped by the explicit cuts `cut` (between node ids).
fn host_blocked(
    options: &super::SimOptions,
    topology: &Topology,
    cut: &BTreeSet<(NodeId, NodeId)>,
    down: &BTreeSet<NodeId>,
    from: &str,
    to: &str,
) -> bool {
    let node = |host: &str| topology.node_by_host(host).map(|n| n.id);
    match (node(from), node(to)) {
        (Some(x), Some(y)) => cut.contains(&(x, y)),
        (Some(x), None) => client_blocked(options, topology, cut, down, to, x, |other| (x, other)),
        (None, Some(y)) => client_blocked(options, topology, cut, down, from, y, |other| (other, y)),
        (None, None) => dcs_cut(options, topology, cut, from, to),
    }
}

/// Whether two hosts that are not Raft nodes (database hosts, clients) are cut: when they sit in
/// different datacenters and every node of the one is cut from every node of the other.
fn dcs_cut(
    options: &super::SimOptions,
    topology: &Topology,
    cut: &BTreeSet<(NodeId, NodeId)>,
    from: &str,
    to: &str,
) -> bool {
    let (Some(a), Some(b)) = (options.dc_of_host(from), options.dc_of_host(to)) else { return false };
    if a == b {
        return false;
    }
    let (xs, ys) = (topology.nodes_in_dc(&a), topology.nodes_in_dc(&b));
    !xs.is_empty() && !ys.is_empty() && xs.iter().all(|x| ys.iter().all(|y| cut.contains(&(*x, *y))))
}

/// Whether the client host `client` is cut from node `x` in the direction `link(other)` describes: when every node
/// of its datacenter is cut from it or down (for `x` in its own datacenter: when every other node is cut from it).
/// A lost datacenter's clients are lost with it, as the oracle has clients reach the cluster through their
/// datacenter's nodes.
fn client_blocked(
    options: &super::SimOptions,
    topology: &Topology,
    cut: &BTreeSet<(NodeId, NodeId)>,
    down: &BTreeSet<NodeId>,
    client: &str,
    x: NodeId,
    link: impl Fn(NodeId) -> (NodeId, NodeId),
) -> bool {
    let Some(dc) = options.dc_of_host(client) else { return false };
    let same_dc = topology.dc_of(x) == Some(dc.as_str());
    let others: Vec<NodeId> =
        if same_dc { topology.node_ids().filter(|&n| n != x).collect() } else { topology.nodes_in_dc(&dc) };
    let gone = |other: NodeId| !same_dc && down.contains(&other);
    !others.is_empty() && others.iter().all(|&other| cut.contains(&link(other)) || gone(other))
}

/// Crashes `host` without a goodbye, as a host that loses power or panics sends none: every link of it is cut
/// both ways while its tasks drop, so the FIN and RST segments its sockets would send go nowhere, then put
/// back as it was (`links`: what the nemesis set, by smaller host name). Besides being the real thing, this
/// keeps a seed's run its own: tokio drops a runtime's tasks in an order set by process-wide task ids, and
/// each segment sent would draw its latency from the run's RNG in that order, so runs side by side on other
/// threads would change this one. Links held by a pause are left held.
pub(crate) fn crash_silently(
    sim: &mut turmoil::Sim<'_>,
    options: &super::SimOptions,
    links: &BTreeMap<(String, String), LinkState>,
    hosts: &[String],
    host: &str,
) {
    let mut changed = Vec::new();
    for other in hosts.iter().filter(|h| h.as_str() != host) {
        let key = ordered(host, other);
        let before = links.get(&key).copied().unwrap_or(HEALTHY);
        if before.a_to_b == Dir::Held || before.b_to_a == Dir::Held {
            continue;
        }
        let after = LinkState { a_to_b: Dir::Cut, b_to_a: Dir::Cut, ..before };
        if before != after {
            apply_link(sim, options, &key.0, &key.1, before, after);
            changed.push((key, before, after));
        }
    }
    sim.crash(host.to_string());
    for ((a, b), before, after) in changed {
        apply_link(sim, options, &a, &b, after, before);
    }
}

/// Moves one turmoil link from `before` to `after`.
fn apply_link(
    sim: &mut turmoil::Sim<'_>,
    options: &super::SimOptions,
    a: &str,
    b: &str,
    before: LinkState,
    after: LinkState,
) {
    // Back to healthy first: release delivers what a pause held; repair clears cuts and random breaks.
    if before.a_to_b == Dir::Held || before.b_to_a == Dir::Held {
        sim.release(a, b);
    } else {
        sim.repair(a, b);
    }
    let any_cut = after.a_to_b == Dir::Cut || after.b_to_a == Dir::Cut;
    if !any_cut && (after.a_to_b == Dir::Held || after.b_to_a == Dir::Held) {
        sim.hold(a, b);
    }
    if after.a_to_b != Dir::Ok && any_cut {
        sim.partition_oneway(a, b);
    }
    if after.b_to_a != Dir::Ok && any_cut {
        sim.partition_oneway(b, a);
    }
    if before.extra_latency_ms != after.extra_latency_ms {
        let base = options.link_between(a, b).unwrap_or(options.topology.local_link());
        let extra = std::time::Duration::from_millis(after.extra_latency_ms);
        let profile = quorumlab_quorum::LinkProfile {
            latency_ms: base.latency_ms + extra.as_millis() as u64,
            jitter_ms: base.jitter_ms,
        };
        layout::set_link(sim, a, b, profile);
    }
    let was_cut = before.a_to_b == Dir::Cut || before.b_to_a == Dir::Cut;
    if before.loss_percent != after.loss_percent || any_cut || was_cut {
        let rate = if any_cut { 0.0 } else { f64::from(after.loss_percent) / 100.0 };
        sim.set_link_fail_rate(a, b, rate);
    }
}
