//! One suite run: a topology laid out as a simulated cluster, a fault schedule played under client load with the
//! invariants checked after every step (the safety phase), then everything healed and the cluster held to
//! converge and serve again (the liveness phase), ending in a [`RunRecord`].
//!
//! Timeline, in simulated time:
//! 1. set-up: the first client datacenter's client initializes the voters, waits for a leader, adds learners;
//! 2. `warmup` of load with no fault; the schedule's times count from its end;
//! 3. the schedule plays (the nemesis starts and ends each fault; every change of the active set opens a new
//!    availability window, predicted by the oracle with the leader of that moment);
//! 4. everything heals; the load goes on for `after_heal` (zero unless asked: `whatif` measures latency after
//!    the heal with it); within [`LIVENESS_ELECTIONS`] election timeouts one leader must hold every voter, a fresh
//!    write must succeed from every client datacenter, every voter must apply the same entries, and every key is
//!    read once so a lost acknowledged write shows in the history;
//! 5. the history is checked for linearizability and the windows against the oracle.
//!
//! Caller's duties: one run per thread at a time (a simulation owns its thread's RNG); build configs with
//! [`RunConfig::new`] so the defaults match the suite's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use quorumlab_quorum::{predict_with_leader, RaftVariant, Topology};
use serde::Serialize;

use super::history::Recorder;
use super::invariants::availability::{self, DcVerdict, Window};
use super::invariants::linearizable;
use super::nemesis::Nemesis;
use super::schedule::Schedule;
use super::trace::sim_now;
use super::workload::{self, Control, Phase, WorkloadOptions};
use super::{SimCluster, SimOptions};
use crate::node::PlantedBug;
use crate::types::NodeId;

/// Election timeouts (the topology's maximum) the cluster gets after the heal to have one leader again.
pub const LIVENESS_ELECTIONS: u64 = 10;

/// Election timeouts (the topology's maximum) a fault window gives elections before availability is judged.
///
/// Two are not enough for openraft 0.9 when the leader dies: its followers first wait out the dead leader's lease
/// (about one election timeout past its last heartbeat), then their own election timeout, and one split vote costs
/// a third (`etcd-2-2-1`, `crash:leader`, seed 35: no leader for ~6.9 s).
pub const SETTLE_ELECTIONS: u64 = 3;

/// Everything one run needs; the same config and seed give the same record, bit for bit.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub topology: Arc<Topology>,
    pub schedule: Schedule,
    pub seed: u64,
    pub workload: WorkloadOptions,
    /// Load before the schedule starts.
    pub warmup: Duration,
    /// Load after the heal, before the liveness phase's fresh writes and reads (zero: none).
    pub after_heal: Duration,
    /// For negative controls only.
    pub planted_bug: Option<PlantedBug>,
    /// The database, its supervisors and their fence (issue: fencing); `None` runs the key-value cluster alone.
    pub fencing: Option<super::fencing::FencingOptions>,
    /// The election rules the oracle predicts with: quorumlab's node's own ([`RaftVariant::QUORUMLAB_NODE`]); a
    /// negative control predicts with the wrong ones to prove the comparison can fail.
    pub variant: RaftVariant,
}

impl RunConfig {
    pub fn new(topology: &Topology, schedule: Schedule, seed: u64) -> RunConfig {
        RunConfig {
            topology: Arc::new(topology.clone()),
            schedule,
            seed,
            workload: WorkloadOptions::default(),
            warmup: Duration::from_secs(1),
            after_heal: Duration::ZERO,
            planted_bug: None,
            fencing: None,
            variant: RaftVariant::QUORUMLAB_NODE,
        }
    }

    /// A fencing run: the database hosts the topology places, their supervisors with `fencing`'s
    /// strategy, and a key-value load without lease holders (the supervisors are the lease holders).
    pub fn with_fencing(mut self, fencing: super::fencing::FencingOptions) -> RunConfig {
        self.workload.holders = None;
        self.workload.think = Duration::from_millis(100);
        self.warmup = Duration::from_secs(5);
        self.fencing = Some(fencing);
        self
    }

    /// How long after a window opens elections are given to settle before availability is judged:
    /// [`SETTLE_ELECTIONS`] of the topology's longest election timeouts, plus one client deadline for clients to
    /// find the new leader.
    pub fn settle(&self) -> Duration {
        Duration::from_millis(SETTLE_ELECTIONS * self.topology.raft_timing().election_timeout_ms_max)
            + self.workload.op_timeout
    }

    /// The command that replays this run.
    pub fn replay_command(&self) -> String {
        let name = self.topology.name();
        let shipped = quorumlab_quorum::shipped::load(name).is_ok_and(|t| t == *self.topology);
        let topology = if shipped { name.to_string() } else { self.topology.source().to_string() };
        let schedule = self.schedule.spec(&self.topology);
        let after = if self.after_heal.is_zero() {
            String::new()
        } else {
            format!(" --after-heal {}ms", self.after_heal.as_millis())
        };
        match &self.fencing {
            None => format!("quorumlab suite {topology} --schedule '{schedule}' --seed {}{after}", self.seed),
            Some(f) => {
                let bugs = f.bugs.names();
                let bugs = if bugs.is_empty() { String::new() } else { format!(" --bugs {}", bugs.join(",")) };
                let sync = match (f.synchronous, f.degradable) {
                    (false, _) => " --async",
                    (true, true) => " --degradable",
                    (true, false) => "",
                };
                let mut sync = sync.to_string();
                if f.watchdog_kind == crate::sim::fencing::WatchdogKind::Hardware {
                    sync.push_str(" --hardware-watchdog");
                }
                if f.failsafe {
                    sync.push_str(" --failsafe");
                }
                let path = match f.fence_path {
                    Some(quorumlab_quorum::FencePath::InBand) => " --fence-path in-band",
                    _ => "",
                };
                format!(
                    "quorumlab fencing run {topology} --strategy '{}' --schedule '{schedule}' --seed {}{sync}{path}{bugs}",
                    f.strategy.name(),
                    self.seed
                )
            }
        }
    }
}

/// One invariant's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "why", rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail(String),
    /// Not judged in this run, and why (e.g. the run stopped before it could be).
    NotChecked(String),
}

impl Verdict {
    pub fn failed(&self) -> bool {
        matches!(self, Verdict::Fail(_))
    }
}

/// The result of one run.
#[derive(Clone, Debug, Serialize)]
pub struct RunRecord {
    pub topology: String,
    pub schedule: String,
    pub seed: u64,
    /// Per property: pass, fail (with why) or not checked.
    pub verdicts: BTreeMap<String, Verdict>,
    pub windows: Vec<Window>,
    /// Predicted against observed, per window (by index) and client datacenter.
    pub availability: Vec<(usize, DcVerdict)>,
    pub replay: String,
    pub trace_digest: u64,
    /// Simulated time the run took.
    pub simulated_ms: u64,
    pub operations: usize,
    pub leader_changes: usize,
    pub highest_term: u64,
    /// Every node's role over time.
    #[serde(skip)]
    pub roles: Vec<super::roles::RoleChange>,
    #[serde(skip)]
    pub trace: Vec<String>,
    #[serde(skip)]
    pub history: Option<quorumlab_check::History>,
    /// Each history process's client datacenter (`dc1`, or `dc1/holder` for a lease holder).
    #[serde(skip)]
    pub tags: BTreeMap<u64, String>,
    /// What every lease holder did, in order.
    #[serde(skip)]
    pub holder_log: Vec<super::workload::HolderEvent>,
    /// The database's record and what the fencing checks made of it (fencing runs only).
    pub fencing: Option<super::fencing::verdict::FencingSummary>,
}

impl RunRecord {
    /// The record of a run that could not be made at all (real mode: the lab could not be built), failing with
    /// `why`.
    pub fn not_run(config: &RunConfig, replay: String, why: String) -> RunRecord {
        let mut verdicts: BTreeMap<String, Verdict> =
            PROPERTIES.iter().map(|p| (p.to_string(), Verdict::NotChecked(why.clone()))).collect();
        verdicts.insert(PROPERTIES[3].into(), Verdict::Fail(format!("the run could not be made: {why}")));
        RunRecord {
            topology: config.topology.name().to_string(),
            schedule: config.schedule.describe(&config.topology),
            seed: config.seed,
            verdicts,
            windows: Vec::new(),
            availability: Vec::new(),
            replay,
            trace_digest: 0,
            simulated_ms: 0,
            operations: 0,
            leader_changes: 0,
            highest_term: 0,
            roles: Vec::new(),
            trace: Vec::new(),
            history: None,
            tags: BTreeMap::new(),
            holder_log: Vec::new(),
            fencing: None,
        }
    }

    /// Whether every checked property held.
    pub fn passed(&self) -> bool {
        !self.verdicts.values().any(Verdict::failed)
    }

    /// The failures, one line each.
    pub fn failures(&self) -> Vec<String> {
        self.verdicts
            .iter()
            .filter_map(|(name, v)| if let Verdict::Fail(why) = v { Some(format!("{name}: {why}")) } else { None })
            .collect()
    }
}

/// The properties every run judges, in report order.
pub const PROPERTIES: [&str; 4] =
    ["safety invariants", "linearizability", "availability as predicted", "liveness after heal"];

/// Runs one config to its record.
pub fn run(config: &RunConfig) -> RunRecord {
    let mut options = SimOptions::from_topology(&config.topology, config.seed);
    options.planted_bug = config.planted_bug;
    let timing = options.timing;
    let election_max = Duration::from_millis(timing.election_timeout_ms_max);
    let mut c = SimCluster::new(options);
    let shared = c.shared.clone();
    let acks = shared.clone();
    let rec = Recorder::with_trace(shared.trace.clone())
        .on_ack(Arc::new(move |revision, client_id, seq| acks.acknowledged(revision, client_id, seq)));
    let control = Arc::new(Control::default());
    let client_dcs: Vec<(String, String)> = shared.options.client_hosts().into_iter().collect();
    for (i, (dc, host)) in client_dcs.iter().enumerate() {
        let f =
            workload::client(shared.clone(), rec.clone(), control.clone(), dc.clone(), config.workload.clone(), i == 0);
        c.client(host, f);
    }
    let world = config.fencing.clone().map(|f| {
        let world = Arc::new(super::fencing::World::new(f, shared.clone(), Recorder::with_trace(shared.trace.clone())));
        c.add_databases(world.clone(), control.clone());
        world
    });
    let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
    let mut windows: Vec<Window> = Vec::new();
    let mut nemesis = Nemesis::default();
    let outcome = drive(&mut c, config, &control, &mut nemesis, &mut windows, election_max);
    let safety = match &outcome {
        Err(Stop::Invariant(why)) => Verdict::Fail(why.clone()),
        _ => match shared.check_safety() {
            Ok(()) => Verdict::Pass,
            Err(why) => Verdict::Fail(why),
        },
    };
    verdicts.insert(PROPERTIES[0].into(), safety);
    let liveness = match &outcome {
        Ok(()) => Verdict::Pass,
        Err(Stop::Liveness(why)) => Verdict::Fail(why.clone()),
        Err(Stop::Invariant(_)) => Verdict::NotChecked("the run stopped at a safety violation".into()),
        Err(Stop::Setup(why)) => Verdict::Fail(format!("the cluster could not be set up: {why}")),
    };
    verdicts.insert(PROPERTIES[3].into(), liveness);
    let (history, tags, availability) = judge_history(config, &rec, &windows, &mut verdicts);
    let fencing = world.map(|w| super::fencing::verdict::judge(&w, &windows, &mut verdicts));
    let leaders = shared.leaders.lock().map(|l| l.clone()).unwrap_or_default();
    RunRecord {
        topology: config.topology.name().to_string(),
        schedule: config.schedule.describe(&config.topology),
        seed: config.seed,
        verdicts,
        availability,
        windows,
        replay: config.replay_command(),
        trace_digest: shared.trace.digest(),
        simulated_ms: c.sim.elapsed().as_millis() as u64,
        operations: history.events.len() / 2,
        leader_changes: leaders.0.len(),
        highest_term: shared.metrics().values().map(|m| m.current_term).max().unwrap_or(0),
        roles: shared.roles.changes(),
        trace: shared.trace.lines(),
        history: Some(history),
        tags,
        holder_log: control.holder_log.lock().map(|l| l.clone()).unwrap_or_default(),
        fencing,
    }
}

/// The checks a run's client history answers, the same in the simulator and on real processes: linearizability,
/// and each window's availability against the oracle. Returns the history, its tags and the per-window verdicts.
pub(crate) fn judge_history(
    config: &RunConfig,
    rec: &Recorder,
    windows: &[Window],
    verdicts: &mut BTreeMap<String, Verdict>,
) -> (quorumlab_check::History, BTreeMap<u64, String>, Vec<(usize, DcVerdict)>) {
    let history = rec.history();
    verdicts.insert(
        PROPERTIES[1].into(),
        match linearizable::check(&rec.check()) {
            Ok(()) => Verdict::Pass,
            Err(v) => Verdict::Fail(v.to_string()),
        },
    );
    let tags = rec.tags();
    let compared = availability::compare(windows, &history, &tags, config.settle(), config.workload.op_timeout);
    let disagreements: Vec<String> = compared
        .iter()
        .filter(|(_, v)| !v.agree)
        .map(|(i, v)| format!("{} / {}: {}", windows[*i].faults.join(" + "), v.dc, v.note))
        .collect();
    verdicts.insert(
        PROPERTIES[2].into(),
        if disagreements.is_empty() { Verdict::Pass } else { Verdict::Fail(disagreements.join("; ")) },
    );
    (history, tags, compared)
}

/// Why a run stopped early, or what failed in its liveness phase.
enum Stop {
    Setup(String),
    Invariant(String),
    Liveness(String),
}

/// Set-up, the safety phase and the liveness phase.
fn drive(
    c: &mut SimCluster<'_>,
    config: &RunConfig,
    control: &Control,
    nemesis: &mut Nemesis,
    windows: &mut Vec<Window>,
    election_max: Duration,
) -> Result<(), Stop> {
    let step = |c: &mut SimCluster<'_>| -> Result<bool, Stop> { c.step().map_err(Stop::Invariant) };
    // 1. Set-up.
    let setup_deadline = Duration::from_secs(60);
    while control.phase() == Phase::Setup {
        if let Some(why) = control.setup_error.lock().ok().and_then(|e| e.clone()) {
            return Err(Stop::Setup(why));
        }
        if c.sim.elapsed() > setup_deadline {
            return Err(Stop::Setup("no leader within 60 s of simulated time".into()));
        }
        if step(c)? {
            return Err(Stop::Setup(control.setup_error.lock().ok().and_then(|e| e.clone()).unwrap_or_default()));
        }
    }
    // 2–3. Warm-up, then the schedule.
    let origin = c.sim.elapsed() + config.warmup;
    let mut events: Vec<(Duration, bool, usize)> = Vec::new();
    for (i, s) in config.schedule.steps.iter().enumerate() {
        events.push((origin + s.start, true, i));
        events.push((origin + s.end(), false, i));
    }
    // At one instant, ends before starts, then schedule order.
    events.sort_by_key(|&(at, start, i)| (at, start, i));
    let heal_at = origin + config.schedule.end();
    let mut next = 0;
    while c.sim.elapsed() < heal_at || next < events.len() {
        while next < events.len() && events[next].0 <= c.sim.elapsed() {
            let (_, start, i) = events[next];
            let leader = c.shared.leader().map(|(id, _)| id);
            if start {
                nemesis.start(c, i, &config.schedule.steps[i].fault, leader);
            } else {
                nemesis.stop(c, i);
            }
            next += 1;
            // A new window opens whenever the active set changes (several changes at one instant make one).
            if next == events.len() || events[next].0 > events[next - 1].0 {
                open_window(c, config, nemesis, windows, leader);
            }
        }
        if step(c)? {
            return Err(Stop::Liveness("every client stopped before the schedule ended (see the trace)".into()));
        }
    }
    // 4. Liveness.
    nemesis.heal(c);
    close_window(windows, c.sim.elapsed());
    let healed = c.sim.elapsed();
    let leader_deadline = healed + election_max * LIVENESS_ELECTIONS as u32;
    let mut one_leader: Option<Duration> = None;
    loop {
        if control.phase() != Phase::Liveness && c.sim.elapsed() >= healed + config.after_heal {
            control.set_phase(Phase::Liveness);
        }
        if one_leader.is_none() && single_leader(c).is_some() {
            one_leader = Some(c.sim.elapsed());
        }
        if one_leader.is_none() && c.sim.elapsed() > leader_deadline {
            return Err(Stop::Liveness(format!(
                "no single leader {} election timeouts after the heal: {}",
                LIVENESS_ELECTIONS,
                describe_nodes(c)
            )));
        }
        if step(c)? {
            break;
        }
    }
    let fresh = control.fresh_writes.lock().map(|f| f.clone()).unwrap_or_default();
    let failed: Vec<String> =
        fresh.iter().filter_map(|(dc, r)| r.as_ref().err().map(|e| format!("{dc}: {e}"))).collect();
    if !failed.is_empty() {
        return Err(Stop::Liveness(format!("a fresh write failed after the heal ({})", failed.join("; "))));
    }
    let voters = c.shared.options.voters();
    let converged = |c: &SimCluster<'_>| {
        let applied: Vec<Option<u64>> = voters.iter().map(|&v| c.shared.applied(v)).collect();
        applied.iter().all(|a| a.is_some() && *a == applied[0])
    };
    let converge_deadline = c.sim.elapsed() + election_max * LIVENESS_ELECTIONS as u32;
    while !converged(c) {
        if c.sim.elapsed() > converge_deadline {
            return Err(Stop::Liveness(format!("the voters did not converge after the heal: {}", describe_nodes(c))));
        }
        step(c)?;
    }
    Ok(())
}

/// Closes the open window (if any) and opens one for the active faults, predicted where the oracle can.
fn open_window(
    c: &SimCluster<'_>,
    config: &RunConfig,
    nemesis: &Nemesis,
    windows: &mut Vec<Window>,
    leader: Option<NodeId>,
) {
    open_window_at(c.sim.elapsed(), config, nemesis.active(), windows, leader);
}

/// [`open_window`] at `now` with `active` faults: shared by the simulator and real mode.
pub(crate) fn open_window_at(
    now: Duration,
    config: &RunConfig,
    active: &[super::nemesis::ActiveFault],
    windows: &mut Vec<Window>,
    leader: Option<NodeId>,
) {
    close_window(windows, now);
    if active.is_empty() {
        return;
    }
    let topology = &config.topology;
    let predicted = active.iter().all(|a| a.fault.predicted() && a.shape.is_some());
    let connectivity = super::nemesis::connectivity_of(active, topology);
    let prediction = predicted.then(|| predict_with_leader(topology, &connectivity, config.variant, leader));
    let faults = active
        .iter()
        .map(|a| match &a.shape {
            Some(shape) if !matches!(a.fault, super::schedule::Fault::Shape { .. }) => {
                format!("{} ({})", a.fault.label(topology), shape.label(topology))
            }
            _ => a.fault.label(topology),
        })
        .collect();
    windows.push(Window { faults, start: now, end: now, leader, prediction });
}

pub(crate) fn close_window(windows: &mut [Window], now: Duration) {
    if let Some(last) = windows.last_mut() {
        if last.end == last.start {
            last.end = now;
        }
    }
}

/// The leader when exactly one voter leads in the highest term any voter has and every voter follows it.
fn single_leader(c: &SimCluster<'_>) -> Option<NodeId> {
    let metrics = c.shared.metrics();
    let voters = c.shared.options.voters();
    let term = voters.iter().filter_map(|v| metrics.get(v)).map(|m| m.current_term).max()?;
    let leaders: Vec<NodeId> = voters
        .iter()
        .filter(|v| metrics.get(v).is_some_and(|m| m.state == ServerState::Leader && m.current_term == term))
        .copied()
        .collect();
    let [leader] = leaders[..] else { return None };
    voters.iter().all(|v| metrics.get(v).is_some_and(|m| m.current_leader == Some(leader))).then_some(leader)
}

/// Every node's role, term, leader and applied index, for a liveness failure's explanation.
fn describe_nodes(c: &SimCluster<'_>) -> String {
    let metrics = c.shared.metrics();
    let parts: Vec<String> = c
        .shared
        .options
        .nodes
        .iter()
        .map(|(id, host)| match metrics.get(id) {
            Some(m) => format!(
                "{host} {:?} term {} leader {} applied {}",
                m.state,
                m.current_term,
                m.current_leader.map_or("-".into(), |l| l.to_string()),
                m.last_applied.map_or("-".into(), |l| l.index.to_string())
            ),
            None => format!("{host} down"),
        })
        .collect();
    format!("{} (at {:?})", parts.join(", "), sim_now())
}
