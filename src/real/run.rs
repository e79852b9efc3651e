//! One suite run on real processes: the same [`RunConfig`], schedule, client load, windows, oracle and checks as
//! [`crate::sim::run`], played in wall time on `quorumlab node` processes, each in its own network namespace of
//! a [`Lab`].
//!
//! What changes from the simulator, and only that:
//! - Links: the nemesis's own plan ([`plan_links`]) becomes nftables input rules per host; loss is a random drop
//!   of that share of packets. Links have no latency (no `sch_netem` here), so latency faults are refused.
//! - Crash is SIGKILL, restarted from the data directory when the fault ends. Pause is SIGSTOP, then SIGCONT:
//!   truer than the simulator's, which can only hold a host's messages.
//! - Power loss is SIGKILL too, and the trace says so: what a killed process wrote but did not fsync is in the
//!   kernel's page cache and survives, and nothing short of a block-device fault layer can drop it honestly.
//!   The simulator's power loss, which does drop it, remains the test of flush discipline.
//! - Checks: what can be judged from outside the processes. Linearizability (every key is read at the end, so a
//!   lost acknowledged write fails it: that is durability seen from a client), availability against the oracle,
//!   liveness after the heal, and election safety from status polls ([`super::observe`]). The in-process
//!   invariants (log matching, state machine safety, the store-fed vote check) need the simulator.
//! - Time: wall time since the run began ([`set_real_epoch`]); the same seed draws the same client operations,
//!   but thread scheduling and the kernel make no two runs alike, so verdicts are compared, not digests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::lab::{InputRules, Lab};
use super::observe::{Observer, POLL_EVERY};
use crate::client::admin;
use crate::local::LocalCluster;
use crate::net::Transport;
use crate::sim::history::Recorder;
use crate::sim::invariants::availability;
use crate::sim::nemesis::{connectivity_of, plan_links, ActiveFault, Dir};
use crate::sim::run::{
    close_window, judge_history, open_window_at, RunConfig, RunRecord, Verdict, LIVENESS_ELECTIONS, PROPERTIES,
};
use crate::sim::schedule::Fault;
use crate::sim::trace::{set_real_epoch, sim_now, Trace};
use crate::sim::workload::{self, Control, LoadEnv, Phase};
use crate::sim::SimOptions;
use crate::types::NodeId;

/// The port every node listens on, at its namespace's address.
const PORT: u16 = 7000;

/// What real mode needs beyond the config.
#[derive(Clone, Debug)]
pub struct RealOptions {
    /// The `quorumlab` executable the nodes run.
    pub exe: PathBuf,
    /// `--planted-bug` for every node (negative controls only).
    pub planted_bug: Option<String>,
}

/// Why a schedule cannot run on real processes, or `None` when it can.
pub fn unsupported(config: &RunConfig) -> Option<String> {
    if config.fencing.is_some() {
        return Some("fencing runs need the simulated database; run them with `quorumlab fencing run`".into());
    }
    config.schedule.steps.iter().find_map(|s| match &s.fault {
        Fault::LatencySpike { .. } => Some(format!(
            "{}: this kernel has no sch_netem, so real mode cannot add latency; run it in the simulator",
            s.fault.label(&config.topology)
        )),
        Fault::ClockRate { .. } => Some(format!(
            "{}: real processes share the machine's clock; run clock faults in the simulator",
            s.fault.label(&config.topology)
        )),
        Fault::Db { .. } => Some(format!(
            "{}: database faults need the simulated database; run them with `quorumlab fencing run`",
            s.fault.label(&config.topology)
        )),
        _ => None,
    })
}

/// The command that replays a real run.
pub fn replay_command(config: &RunConfig) -> String {
    format!("{} --real", config.replay_command())
}

/// [`run`], with a run that could not be made at all recorded as a failed record.
pub fn run_or_fail(config: &RunConfig, options: &RealOptions) -> RunRecord {
    run(config, options).unwrap_or_else(|why| RunRecord::not_run(config, replay_command(config), why))
}

/// Real runs in one process take turns: their time line ([`set_real_epoch`]) is the process's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `config` on real processes in a new lab; the lab and every process are gone when it returns.
pub fn run(config: &RunConfig, options: &RealOptions) -> Result<RunRecord, String> {
    if let Some(why) = unsupported(config) {
        return Err(why);
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let sim_options = SimOptions::from_topology(&config.topology, config.seed);
    let nodes: Vec<(NodeId, String)> = sim_options.nodes.iter().map(|(id, h)| (*id, h.clone())).collect();
    let clients: Vec<(String, String)> = sim_options.client_hosts().into_iter().collect();
    let hosts: Vec<String> =
        nodes.iter().map(|(_, h)| h.clone()).chain(clients.iter().map(|(_, h)| h.clone())).collect();
    let lab = Lab::create(&hosts)?;
    let dir = tempfile::Builder::new().prefix("quorumlab-real-").tempdir().map_err(|e| e.to_string())?;
    let addrs: BTreeMap<NodeId, String> =
        nodes.iter().map(|(id, h)| (*id, format!("{}:{PORT}", lab.hosts[h].ip))).collect();

    let trace = Trace::default();
    #[allow(clippy::disallowed_methods, reason = "real mode's time line is wall time, by definition")]
    set_real_epoch(Some(Instant::now()));
    let rec = Recorder::with_trace(trace.clone());
    let control = Arc::new(Control::default());
    let mut workload = config.workload.clone();
    // Lease holders judge leases by their host's clock, which real mode cannot set: the key-value load only.
    workload.holders = None;
    let env = LoadEnv {
        seed: config.seed,
        endpoints: addrs.values().cloned().collect(),
        transport: Transport::Tcp,
        election_timeout_ms_max: config.topology.raft_timing().election_timeout_ms_max,
    };
    let mut client_threads = Vec::new();
    for (dc, host) in &clients {
        let ns = lab.hosts[host].ns.clone();
        let (env, rec, control, dc, workload) =
            (env.clone(), rec.clone(), control.clone(), dc.clone(), workload.clone());
        let thread = std::thread::Builder::new().name(format!("client {dc}")).spawn(move || {
            super::lab::enter_namespace(&ns)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            rt.block_on(workload::kv_load(env, rec, control.clone(), dc, workload))
        });
        client_threads.push(thread.map_err(|e| e.to_string())?);
    }

    let hub = lab.hub().to_string();
    let driver = Driver {
        config: config.clone(),
        options: options.clone(),
        sim_options,
        addrs,
        dir: dir.path().to_path_buf(),
        trace: trace.clone(),
        control: control.clone(),
        observer: Observer::with_trace(trace.clone()),
        lab,
    };
    let outcome = std::thread::scope(|s| {
        s.spawn(|| -> Result<Driven, String> {
            super::lab::enter_namespace(&hub)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            Ok(rt.block_on(driver.drive(client_threads)))
        })
        .join()
        .map_err(|_| "the real-mode driver panicked".to_string())?
    });
    // Whatever became of the driver, no client thread outlives the run by more than its current operation.
    control.set_phase(Phase::Abandoned);
    let elapsed = sim_now();
    set_real_epoch(None);
    let (outcome, windows, observer) = outcome?;

    let mut verdicts: BTreeMap<String, Verdict> = BTreeMap::new();
    let violations = observer.violations();
    verdicts.insert(
        PROPERTIES[0].into(),
        if violations.is_empty() { Verdict::Pass } else { Verdict::Fail(violations.join("; ")) },
    );
    verdicts.insert(
        PROPERTIES[3].into(),
        match &outcome {
            Ok(()) => Verdict::Pass,
            Err(Stop::Setup(why)) => Verdict::Fail(format!("the cluster could not be set up: {why}")),
            Err(Stop::Liveness(why)) => Verdict::Fail(why.clone()),
        },
    );
    let (history, tags, compared) = judge_history(config, &rec, &windows, &mut verdicts);
    let (leader_changes, highest_term) = observer.leaders();
    Ok(RunRecord {
        topology: config.topology.name().to_string(),
        schedule: config.schedule.describe(&config.topology),
        seed: config.seed,
        verdicts,
        availability: compared,
        windows,
        replay: replay_command(config),
        trace_digest: trace.digest(),
        simulated_ms: elapsed.as_millis() as u64,
        operations: history.events.len() / 2,
        leader_changes,
        highest_term,
        roles: observer.roles.changes(),
        trace: trace.lines(),
        history: Some(history),
        tags,
        holder_log: Vec::new(),
        fencing: None,
    })
}

enum Stop {
    Setup(String),
    Liveness(String),
}

/// What the driver hands back: how the run ended, its fault windows, and what the polls saw.
type Driven = (Result<(), Stop>, Vec<availability::Window>, Observer);

/// The run's driver: it lives in the hub's namespace, where it reaches every node and no fault reaches it.
struct Driver {
    config: RunConfig,
    options: RealOptions,
    sim_options: SimOptions,
    addrs: BTreeMap<NodeId, String>,
    dir: PathBuf,
    trace: Trace,
    control: Arc<Control>,
    observer: Observer,
    lab: Lab,
}

/// What the nemesis has done to the processes.
#[derive(Default)]
struct Applied {
    down: BTreeSet<NodeId>,
    paused: BTreeSet<NodeId>,
}

type ClientThread = std::thread::JoinHandle<Result<(), String>>;

impl Driver {
    async fn drive(mut self, clients: Vec<ClientThread>) -> (Result<(), Stop>, Vec<availability::Window>, Observer) {
        let mut windows = Vec::new();
        let mut cluster = match self.start_cluster() {
            Ok(c) => c,
            Err(why) => {
                self.control.set_phase(Phase::Abandoned);
                return (Err(Stop::Setup(why)), windows, self.observer);
            }
        };
        let poller = {
            let (observer, addrs) = (self.observer.clone(), self.addrs.clone());
            tokio::spawn(async move {
                loop {
                    observer.poll(&addrs).await;
                    tokio::time::sleep(POLL_EVERY).await;
                }
            })
        };
        let outcome = self.drive_phases(&mut cluster, clients, &mut windows).await;
        poller.abort();
        // Clients that are still running (the run failed before they finished) stop now.
        self.control.set_phase(Phase::Abandoned);
        cluster.stop(Duration::from_secs(2)).await;
        (outcome, windows, self.observer)
    }

    fn start_cluster(&self) -> Result<LocalCluster, String> {
        let timing = self.config.topology.raft_timing();
        let mut args = vec![
            "--heartbeat-ms".to_string(),
            timing.heartbeat_ms.to_string(),
            "--election-timeout-ms".to_string(),
            timing.election_timeout_ms_min.to_string(),
            "--election-timeout-max-ms".to_string(),
            timing.election_timeout_ms_max.to_string(),
            // The simulator's snapshot policy, so that a real run snapshots, purges and catches up as often.
            "--snapshot-every".to_string(),
            self.sim_options.snapshot_every.to_string(),
        ];
        if let Some(bug) = &self.options.planted_bug {
            args.extend(["--planted-bug".to_string(), bug.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let prefix: BTreeMap<NodeId, Vec<String>> = self
            .sim_options
            .nodes
            .iter()
            .map(|(id, host)| (*id, vec!["ip".into(), "netns".into(), "exec".into(), self.lab.hosts[host].ns.clone()]))
            .collect();
        LocalCluster::start_prefixed(&self.options.exe, self.addrs.clone(), self.dir.clone(), &args, prefix)
            .map_err(|e| format!("starting the nodes: {e}"))
    }

    async fn drive_phases(
        &mut self,
        cluster: &mut LocalCluster,
        clients: Vec<ClientThread>,
        windows: &mut Vec<availability::Window>,
    ) -> Result<(), Stop> {
        let config = self.config.clone();
        let election_max = Duration::from_millis(config.topology.raft_timing().election_timeout_ms_max);
        let voters = self.sim_options.voters();
        // 1. Set-up: voters initialized through the first, a leader, learners added.
        cluster.wait_listening(Duration::from_secs(20)).await.map_err(Stop::Setup)?;
        let voter_addrs: BTreeMap<NodeId, String> = voters.iter().map(|v| (*v, self.addrs[v].clone())).collect();
        admin::initialize(Transport::Tcp, &self.addrs[&voters[0]], &voter_addrs, Duration::from_secs(5))
            .await
            .map_err(Stop::Setup)?;
        let leader = cluster.wait_for_leader(&voters, election_max * 10).await.map_err(Stop::Setup)?;
        for learner in self.sim_options.learners() {
            admin::add_learner(
                Transport::Tcp,
                &self.addrs[&leader],
                learner,
                &self.addrs[&learner],
                true,
                election_max * 10,
            )
            .await
            .map_err(|e| Stop::Setup(format!("adding learner {learner}: {e}")))?;
        }
        self.trace.record(format!("real: cluster up in lab {}, leader node {leader}", self.lab.run_id));
        self.control.set_phase(Phase::Load);

        // 2–3. Warm-up, then the schedule, in wall time.
        let origin = sim_now() + config.warmup;
        let mut events: Vec<(Duration, bool, usize)> = Vec::new();
        for (i, s) in config.schedule.steps.iter().enumerate() {
            events.push((origin + s.start, true, i));
            events.push((origin + s.end(), false, i));
        }
        events.sort_by_key(|&(at, start, i)| (at, start, i));
        let mut active: Vec<ActiveFault> = Vec::new();
        let mut applied = Applied::default();
        let mut next = 0;
        while next < events.len() {
            sleep_until(events[next].0).await;
            let at = events[next].0;
            let leader = self.observer.leader(&voters);
            while next < events.len() && events[next].0 == at {
                let (_, start, i) = events[next];
                let fault = &config.schedule.steps[i].fault;
                if start {
                    let a = ActiveFault::resolve(i, fault, &config.topology, leader);
                    let resolved = a.resolved_label(&config.topology);
                    self.trace.record(format!("nemesis: start {}{resolved}", fault.label(&config.topology)));
                    if matches!(fault, Fault::PowerLoss { .. }) {
                        self.trace.record(
                            "nemesis: power loss is a SIGKILL on real processes (unflushed writes survive in the page \
                             cache)",
                        );
                    }
                    active.push(a);
                } else if let Some(pos) = active.iter().position(|a| a.id == i) {
                    let ended = active.remove(pos);
                    self.trace.record(format!("nemesis: end {}", ended.fault.label(&config.topology)));
                }
                next += 1;
            }
            // The window turns when the change begins: a heal's first restarted node or removed rule can answer
            // a client before the last change lands, and that answer belongs to the healed window.
            let changed_at = sim_now();
            self.sync(cluster, &active, &mut applied).map_err(Stop::Liveness)?;
            open_window_at(changed_at, &config, &active, windows, leader);
        }
        sleep_until(origin + config.schedule.end()).await;

        // 4. Heal, then liveness.
        if !active.is_empty() {
            self.trace.record("nemesis: heal everything");
        }
        let healed = sim_now();
        self.sync(cluster, &[], &mut applied).map_err(Stop::Liveness)?;
        close_window(windows, healed);
        sleep_until(healed + config.after_heal).await;
        self.control.set_phase(Phase::Liveness);
        let leader_deadline = healed + election_max * LIVENESS_ELECTIONS as u32;
        while self.observer.single_leader(&voters).is_none() {
            if sim_now() > leader_deadline {
                return Err(Stop::Liveness(format!(
                    "no single leader {LIVENESS_ELECTIONS} election timeouts after the heal: {}",
                    self.observer.describe()
                )));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        // Each client makes its fresh write (retried for 30 election timeouts) and reads every key.
        let clients_deadline = sim_now() + election_max * 40;
        for thread in clients {
            while !thread.is_finished() {
                if sim_now() > clients_deadline {
                    return Err(Stop::Liveness("a client did not finish its liveness phase".into()));
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
            if let Ok(Err(e)) | Err(e) = thread.join().map_err(|_| "a client thread panicked".to_string()) {
                return Err(Stop::Liveness(format!("a client stopped: {e}")));
            }
        }
        let fresh = self.control.fresh_writes.lock().map(|f| f.clone()).unwrap_or_default();
        let failed: Vec<String> =
            fresh.iter().filter_map(|(dc, r)| r.as_ref().err().map(|e| format!("{dc}: {e}"))).collect();
        if !failed.is_empty() {
            return Err(Stop::Liveness(format!("a fresh write failed after the heal ({})", failed.join("; "))));
        }
        let converge_deadline = sim_now() + election_max * LIVENESS_ELECTIONS as u32;
        loop {
            // Two polls in a row must agree, so a poll taken before the last write applied everywhere does not pass.
            tokio::time::sleep(POLL_EVERY * 2).await;
            if self.observer.converged(&voters) {
                break;
            }
            if sim_now() > converge_deadline {
                return Err(Stop::Liveness(format!(
                    "the voters did not converge after the heal: {}",
                    self.observer.describe()
                )));
            }
        }
        Ok(())
    }

    /// Makes the processes and the firewall match `active`: the same desired-state sync as the simulator's
    /// nemesis, on SIGKILL, SIGSTOP and nftables.
    fn sync(
        &mut self,
        cluster: &mut LocalCluster,
        active: &[ActiveFault],
        applied: &mut Applied,
    ) -> Result<(), String> {
        let topology = self.config.topology.clone();
        let connectivity = connectivity_of(active, &topology);
        let want_down: BTreeSet<NodeId> = connectivity.down_nodes().clone();
        let want_paused: BTreeSet<NodeId> = active
            .iter()
            .filter(|a| matches!(a.fault, Fault::Pause { .. }))
            .filter_map(|a| a.node)
            .filter(|n| !want_down.contains(n))
            .collect();
        let host = |id: &NodeId| topology.host(*id).unwrap_or("?").to_string();
        for id in applied.paused.difference(&want_paused) {
            if cluster.is_running(*id) {
                cluster.signal(*id, Signal::SIGCONT)?;
                self.trace.record(format!("real: SIGCONT {}", host(id)));
            }
        }
        for id in want_down.difference(&applied.down) {
            cluster.kill(*id);
            self.observer.down(sim_now(), *id);
            self.trace.record(format!("real: SIGKILL {}", host(id)));
        }
        for id in applied.down.difference(&want_down) {
            cluster.restart(*id).map_err(|e| format!("restarting node {id}: {e}"))?;
            self.trace.record(format!("real: restart {} from its data directory", host(id)));
        }
        for id in want_paused.difference(&applied.paused) {
            cluster.signal(*id, Signal::SIGSTOP)?;
            self.trace.record(format!("real: SIGSTOP {}", host(id)));
        }
        applied.down = want_down;
        applied.paused = want_paused;

        // Links: the simulator's plan; a held (paused) link needs no rule, as the process itself is stopped.
        let hosts: Vec<String> = self.lab.hosts.keys().cloned().collect();
        let plan = plan_links(&self.sim_options, active, &hosts, BTreeSet::new());
        let mut rules: BTreeMap<String, InputRules> = BTreeMap::new();
        for ((a, b), state) in &plan {
            let (ip_a, ip_b) = (self.lab.hosts[a].ip, self.lab.hosts[b].ip);
            if state.a_to_b() == Dir::Cut {
                rules.entry(b.clone()).or_default().drop_from.push(ip_a);
            }
            if state.b_to_a() == Dir::Cut {
                rules.entry(a.clone()).or_default().drop_from.push(ip_b);
            }
            let loss = state.loss_percent();
            if loss > 0 && state.a_to_b() != Dir::Cut && state.b_to_a() != Dir::Cut {
                rules.entry(b.clone()).or_default().lose_from.push((ip_a, loss));
                rules.entry(a.clone()).or_default().lose_from.push((ip_b, loss));
            }
        }
        let cuts: usize = rules.values().map(|r| r.drop_from.len()).sum();
        let lossy: usize = rules.values().map(|r| r.lose_from.len()).sum();
        if self.lab.apply(&rules)? {
            self.trace.record(format!("real: nftables: {cuts} directed cuts in force, {lossy} lossy directions"));
        }
        Ok(())
    }
}

async fn sleep_until(at: Duration) {
    let now = sim_now();
    if at > now {
        tokio::time::sleep(at - now).await;
    }
}

/// The `quorumlab` executable beside the running one (tests run from `target/<profile>/deps`).
pub fn default_exe() -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut candidates = vec![me.with_file_name("quorumlab")];
    if let Some(parent) = me.parent().and_then(Path::parent) {
        candidates.push(parent.join("quorumlab"));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| format!("no quorumlab executable beside {}", me.display()))
}
