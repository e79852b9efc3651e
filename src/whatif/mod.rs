//! `quorumlab whatif`: a topology through every way it can break, the cluster's answer beside the quorum math's.
//!
//! This is a reading of the partition suite's records, not a second engine: the cases are [`suite::matrix`]'s
//! single faults, run by [`suite::run_all`] with every invariant, the history check and the oracle comparison on.
//! The one thing a `whatif` run adds is load after the heal ([`RunConfig::after_heal`]), so latency after the
//! heal can be measured; its replay command carries that too.
//!
//! Per scenario and seed, [`Row`] says per client datacenter what share of its writes were acknowledged during
//! the fault and how write latency moved (before, during, after), how long the cluster went without a working
//! leader, how many elections it took, and a sentence saying what the scenario teaches ([`lesson`]).

pub mod html;
pub mod lesson;
pub mod render;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quorumlab_quorum::{Availability, Topology};
use serde::Serialize;

use crate::sim::invariants::availability::{operations, Op};
use crate::sim::roles::{Role, RoleChange};
use crate::sim::run::{RunConfig, RunRecord, Verdict};
use crate::sim::schedule::{single_faults, Fault};
use crate::suite::{self, Case};

/// How long the load goes on after the heal, so latency after it can be measured.
pub const AFTER_HEAL: Duration = Duration::from_secs(5);

/// The scenarios of `topology`: the suite's single faults, or the ones `wanted` names by their spec
/// (`cut:dc1:dc2`); `all` or nothing means every one. An unknown name is an error that lists the allowed ones.
pub fn scenarios(topology: &Topology, wanted: &[String]) -> Result<Vec<Fault>, String> {
    let all = single_faults(topology);
    if wanted.is_empty() || wanted.iter().any(|w| w == "all") {
        return Ok(all);
    }
    wanted
        .iter()
        .map(|w| {
            let fault = Fault::parse(w, topology).ok().filter(|f| all.contains(f));
            fault.ok_or_else(|| {
                let allowed: Vec<String> = all.iter().map(|f| f.spec(topology)).collect();
                format!("no scenario {w:?} for {}; the scenarios are: all, {}", topology.name(), allowed.join(", "))
            })
        })
        .collect()
}

/// The suite's cases for `faults` over `seeds`, with load after the heal.
pub fn cases(topology: &Arc<Topology>, faults: &[Fault], seeds: &[u64]) -> Result<Vec<Case>, String> {
    let specs: Vec<String> = faults.iter().map(|f| f.spec(topology)).collect();
    let mut cases = suite::matrix(std::slice::from_ref(topology), None, &specs, seeds)?;
    for case in &mut cases {
        case.config.after_heal = AFTER_HEAL;
    }
    Ok(cases)
}

/// Write latency percentiles of one phase, over the acknowledged writes invoked in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub acked: u64,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
}

impl Latency {
    fn of(mut ms: Vec<u64>) -> Latency {
        ms.sort_unstable();
        Latency { acked: ms.len() as u64, p50_ms: percentile(&ms, 50), p99_ms: percentile(&ms, 99) }
    }
}

/// The `p`th percentile of sorted `values` (nearest rank); `None` when there are none.
pub fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as u64).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

/// One client datacenter's writes in one run.
#[derive(Clone, Debug, Serialize)]
pub struct DcRow {
    pub dc: String,
    /// The oracle's word for the fault window (`None`: the oracle does not model the fault).
    pub predicted: Option<Availability>,
    /// Whether the run agreed with it (`None`: not predicted).
    pub agree: Option<bool>,
    /// Writes invoked during the fault, up to one client deadline before the heal (so each had its full deadline
    /// inside the fault), and how they ended.
    pub writes: u64,
    /// Acknowledged before the heal (a compare that failed counts: the cluster answered).
    pub acked: u64,
    /// Certainly not applied.
    pub failed: u64,
    /// Outcome unknown (the client gave up waiting), or answered only after the heal.
    pub unknown: u64,
    pub before: Latency,
    pub during: Latency,
    pub after: Latency,
}

impl DcRow {
    /// The share of writes acknowledged during the fault, in percent (`None`: no write was invoked).
    pub fn share(&self) -> Option<u64> {
        (self.writes > 0).then(|| self.acked * 100 / self.writes)
    }
}

/// Simulated time, in milliseconds from the fault's start (negative: before it).
pub type RelMs = i64;

/// One scenario × seed: what the cluster did, beside what the oracle said.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub topology: String,
    /// The scenario by its shape ("cut dc1–dc2, dc3 sees both sides").
    pub scenario: String,
    /// The fault as `--scenario` takes it (`cut:dc1:dc2`).
    pub spec: String,
    pub seed: u64,
    pub fault_ms: u64,
    pub dcs: Vec<DcRow>,
    /// The longest stretch of the fault in which no client operation was answered (reads are linearizable, so
    /// each answer proves a leader that reaches a majority): the time the cluster had no working leader. Near zero when the leader never stopped working; the whole fault
    /// when nobody could write.
    pub stall_during_ms: u64,
    /// The same over the load after the heal: a heal can depose a leader too (voters that were cut off come back
    /// with higher terms).
    pub stall_after_heal_ms: u64,
    /// From the fault's start to the first acknowledgement of a write invoked after it (`None`: none during the
    /// fault).
    pub first_ack_after_fault_ms: Option<u64>,
    /// The same from the heal.
    pub first_ack_after_heal_ms: Option<u64>,
    /// Who led as the fault started, and as it ended (host names).
    pub leader_before: Option<String>,
    pub leader_at_heal: Option<String>,
    /// Nodes that became leader from the fault's start to the end of the run.
    pub elections: usize,
    pub highest_term: u64,
    /// Every checked property: "pass", "FAIL: why" or "not checked: why".
    pub verdicts: BTreeMap<String, String>,
    /// Whether every property held (safety, linearizability, availability as predicted, liveness after heal).
    pub passed: bool,
    /// Predicted and observed agree on every client datacenter (`None`: the oracle does not model the fault).
    pub agree: Option<bool>,
    /// What the oracle said would happen to leadership.
    pub oracle: Option<String>,
    /// One sentence: what this scenario teaches.
    pub lesson: String,
    pub replay: String,
    #[serde(skip)]
    pub timeline: Timeline,
}

/// What a timeline picture draws, in milliseconds from the fault's start.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub from: RelMs,
    pub to: RelMs,
    pub fault_end: RelMs,
    pub fault_label: String,
    /// Host name and datacenter of every node, in id order, with its role changes (time, role, term).
    pub nodes: Vec<NodeLane>,
    /// Per client datacenter: every key-value operation as (time, outcome).
    pub clients: Vec<(String, Vec<(RelMs, Outcome)>)>,
    /// (time, host, term) of every election shown.
    pub elections: Vec<(RelMs, String, u64)>,
}

#[derive(Clone, Debug, Default)]
pub struct NodeLane {
    pub host: String,
    pub dc: String,
    pub changes: Vec<(RelMs, Role, u64)>,
}

/// How one client operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    Unknown,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Unknown => "unknown",
        }
    }
}

/// Reads one run's record as a row. `config` is the case the record came from.
pub fn analyze(config: &RunConfig, record: &RunRecord) -> Row {
    let topology = &config.topology;
    let step = config.schedule.steps.first();
    let fault = step.map(|s| s.fault.clone());
    let window = record.windows.first();
    let (start, end) = match window {
        Some(w) => (w.start, w.end),
        None => (Duration::ZERO, Duration::ZERO),
    };
    let ops: Vec<Op> = record.history.as_ref().map(|h| operations(h, &record.tags)).unwrap_or_default();
    let client_dcs: Vec<String> = topology.client_dcs().iter().map(|s| s.to_string()).collect();
    let kv = |op: &&Op| client_dcs.contains(&op.dc);
    let verdict_for =
        |dc: &str| record.availability.iter().find(|(i, v)| *i == 0 && v.dc == dc).map(|(_, v)| (v.predicted, v.agree));
    let judged_until = end.saturating_sub(config.workload.op_timeout);
    // Writes invoked in [from, to) and answered before `to`: the same rule as the share, so a stranded
    // datacenter's late answers after the heal never show as latency "during" the fault.
    let phase = |ops: &[&Op], from: Duration, to: Duration| {
        Latency::of(
            ops.iter()
                .filter(|o| o.write && o.ok && o.invoked >= from && o.invoked < to)
                .filter(|o| o.completed.is_some_and(|c| c < to))
                .filter_map(|o| o.completed.map(|c| c.saturating_sub(o.invoked).as_millis() as u64))
                .collect(),
        )
    };
    let dcs = client_dcs
        .iter()
        .map(|dc| {
            let mine: Vec<&Op> = ops.iter().filter(kv).filter(|o| &o.dc == dc).collect();
            let during: Vec<&&Op> =
                mine.iter().filter(|o| o.write && o.invoked >= start && o.invoked < judged_until).collect();
            let acked = during.iter().filter(|o| o.ok && o.completed.is_some_and(|c| c < end)).count() as u64;
            let failed = during.iter().filter(|o| !o.ok && o.completed.is_some()).count() as u64;
            let (predicted, agree) = verdict_for(dc).map_or((None, None), |(p, a)| (Some(p), Some(a)));
            DcRow {
                dc: dc.clone(),
                predicted,
                agree,
                writes: during.len() as u64,
                acked,
                failed,
                unknown: during.len() as u64 - acked - failed,
                before: phase(&mine, start.saturating_sub(config.warmup), start),
                during: phase(&mine, start, end),
                after: phase(&mine, end, end + config.after_heal),
            }
        })
        .collect::<Vec<_>>();
    let first_ack_after = |at: Duration| {
        ops.iter()
            .filter(kv)
            .filter(|o| o.write && o.ok && o.invoked >= at)
            .filter_map(|o| o.completed)
            .min()
            .map(|c| c.saturating_sub(at).as_millis() as u64)
    };
    let first_ack_after_fault_ms = first_ack_after(start).filter(|&ms| start + Duration::from_millis(ms) < end);
    let first_ack_after_heal_ms = first_ack_after(end);
    // Any answered operation proves a working leader: reads are linearizable, so the leader confirmed a majority
    // for each. Counting reads too keeps the workload's mix (a run of reads between two writes) out of the stall.
    let acks: Vec<Duration> = ops.iter().filter(kv).filter(|o| o.ok).filter_map(|o| o.completed).collect();
    // During the fault a stall is cut at the heal (what follows belongs to the heal). After the heal it runs on
    // to the next answer, however late, so a leaderless stretch longer than the load after the heal is not cut.
    let stall_during_ms = longest_stall(&acks, start, end);
    let next_ack = acks.iter().copied().filter(|&t| t >= end + config.after_heal).min();
    let stall_after_heal_ms = longest_stall(&acks, end, next_ack.unwrap_or(end + config.after_heal).max(end));
    let host = |id: u64| topology.host(id).unwrap_or("?").to_string();
    let elections = elections(&record.roles).into_iter().filter(|c| c.at >= start).count();
    let agree = window.and_then(|w| w.prediction.as_ref()).map(|_| dcs.iter().all(|d| d.agree != Some(false)));
    let verdicts = record
        .verdicts
        .iter()
        .map(|(name, v)| {
            let text = match v {
                Verdict::Pass => "pass".to_string(),
                Verdict::Fail(why) => format!("FAIL: {why}"),
                Verdict::NotChecked(why) => format!("not checked: {why}"),
            };
            (name.clone(), text)
        })
        .collect();
    let scenario = match &fault {
        Some(f) => suite::case_name(topology, f).split_once(": ").map_or(String::new(), |(_, s)| s.to_string()),
        None => record.schedule.clone(),
    };
    let mut row = Row {
        topology: record.topology.clone(),
        scenario,
        spec: fault.as_ref().map_or_else(String::new, |f| f.spec(topology)),
        seed: record.seed,
        fault_ms: (end - start).as_millis() as u64,
        dcs,
        stall_during_ms,
        stall_after_heal_ms,
        first_ack_after_fault_ms,
        first_ack_after_heal_ms,
        leader_before: window.and_then(|w| w.leader).map(host),
        leader_at_heal: leader_at(&record.roles, end).map(host),
        elections,
        highest_term: record.highest_term,
        verdicts,
        passed: record.passed(),
        agree,
        oracle: window.and_then(|w| w.prediction.as_ref()).map(|p| p.summary.clone()),
        lesson: String::new(),
        replay: record.replay.clone(),
        timeline: timeline(config, record, &ops, start, end),
    };
    let shape = fault.as_ref().and_then(|f| f.shape(topology, window.and_then(|w| w.leader)));
    row.lesson = lesson::lesson(topology, fault.as_ref(), shape.as_ref(), window, &row);
    row
}

/// The longest stretch of `[from, to)` with no acknowledgement in `acks` (in ms).
pub fn longest_stall(acks: &[Duration], from: Duration, to: Duration) -> u64 {
    let mut inside: Vec<Duration> = acks.iter().copied().filter(|&t| t >= from && t < to).collect();
    inside.sort_unstable();
    let mut last = from;
    let mut longest = Duration::ZERO;
    for t in inside.into_iter().chain(std::iter::once(to)) {
        longest = longest.max(t.saturating_sub(last));
        last = t;
    }
    longest.as_millis() as u64
}

/// The moments a node won an election: it became leader under a (term, node) no leader had before. A node that
/// restarts and shows its old leadership for a moment (openraft does, until it hears the higher term) is not one.
pub fn elections(roles: &[RoleChange]) -> Vec<RoleChange> {
    let mut seen = std::collections::BTreeSet::new();
    roles.iter().filter(|c| c.role == Role::Leader && seen.insert((c.term, c.node))).copied().collect()
}

/// The node leading at `at`: the highest-term node whose last change by then made it leader.
pub fn leader_at(roles: &[RoleChange], at: Duration) -> Option<u64> {
    let mut last: BTreeMap<u64, &RoleChange> = BTreeMap::new();
    for c in roles.iter().filter(|c| c.at <= at) {
        last.insert(c.node, c);
    }
    last.values().filter(|c| c.role == Role::Leader).max_by_key(|c| c.term).map(|c| c.node)
}

fn timeline(config: &RunConfig, record: &RunRecord, ops: &[Op], start: Duration, end: Duration) -> Timeline {
    let topology = &config.topology;
    let rel = |t: Duration| t.as_millis() as i64 - start.as_millis() as i64;
    let from = -(config.warmup.as_millis() as i64);
    let to = rel(end + config.after_heal) + 500;
    let nodes = topology
        .nodes()
        .iter()
        .map(|n| NodeLane {
            host: n.host.clone(),
            dc: n.dc.clone(),
            changes: record.roles.iter().filter(|c| c.node == n.id).map(|c| (rel(c.at), c.role, c.term)).collect(),
        })
        .collect();
    let clients = topology
        .client_dcs()
        .iter()
        .map(|dc| {
            let mut marks: Vec<(RelMs, Outcome)> = ops
                .iter()
                .filter(|o| o.dc == *dc)
                .map(|o| match o.completed {
                    Some(c) if o.ok => (rel(c), Outcome::Ok),
                    Some(c) => (rel(c), Outcome::Failed),
                    None => (rel(o.invoked), Outcome::Unknown),
                })
                .filter(|(t, _)| *t >= from && *t <= to)
                .collect();
            marks.sort();
            (dc.to_string(), marks)
        })
        .collect();
    let elections = elections(&record.roles)
        .iter()
        .filter(|c| rel(c.at) >= from && rel(c.at) <= to)
        .map(|c| (rel(c.at), topology.host(c.node).unwrap_or("?").to_string(), c.term))
        .collect();
    let fault_label = config.schedule.steps.first().map_or_else(String::new, |s| s.fault.label(topology));
    Timeline { from, to, fault_end: rel(end), fault_label, nodes, clients, elections }
}

/// One topology's rows, in scenario order and then seed order.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub topology: String,
    pub description: String,
    pub voters: usize,
    pub seeds: Vec<u64>,
    pub rows: Vec<Row>,
}

impl Report {
    pub fn new(topology: &Topology, seeds: &[u64], rows: Vec<Row>) -> Report {
        Report {
            topology: topology.name().to_string(),
            description: topology.description().to_string(),
            voters: topology.voter_count(),
            seeds: seeds.to_vec(),
            rows,
        }
    }

    /// Rows that failed a check or disagreed with the oracle.
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| !r.passed || r.agree == Some(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!((percentile(&v, 50), percentile(&v, 99), percentile(&v, 100)), (Some(50), Some(99), Some(100)));
        assert_eq!((percentile(&[7], 50), percentile(&[7], 99)), (Some(7), Some(7)));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[1, 2], 50), Some(1));
    }

    #[test]
    fn the_longest_stall_counts_the_edges() {
        // (After the heal, `analyze` passes the next answer's time as `to`, so a long stall is never cut.)
        let ms = Duration::from_millis;
        let acks = [ms(100), ms(150), ms(900), ms(2000)];
        assert_eq!(longest_stall(&acks, ms(0), ms(1000)), 750);
        assert_eq!(longest_stall(&acks, ms(1000), ms(1500)), 500, "no ack at all: the whole span");
        assert_eq!(longest_stall(&acks, ms(120), ms(160)), 30);
    }

    #[test]
    fn a_restart_showing_old_leadership_is_not_an_election() {
        let ms = Duration::from_millis;
        let change = |at, node, role, term| RoleChange { at: ms(at), node, role, term };
        let roles = vec![
            change(0, 1, Role::Leader, 1),
            change(100, 1, Role::Down, 1),
            change(300, 2, Role::Leader, 2),
            change(400, 1, Role::Leader, 1),
            change(401, 1, Role::Follower, 2),
        ];
        assert_eq!(elections(&roles).iter().map(|c| c.at).collect::<Vec<_>>(), vec![ms(0), ms(300)]);
    }

    #[test]
    fn the_leader_at_a_moment_is_the_highest_term_leader_then() {
        let ms = Duration::from_millis;
        let change = |at, node, role, term| RoleChange { at: ms(at), node, role, term };
        let roles = vec![
            change(0, 1, Role::Leader, 1),
            change(0, 2, Role::Follower, 1),
            change(100, 2, Role::Leader, 2),
            change(150, 1, Role::Follower, 2),
            change(200, 2, Role::Down, 2),
        ];
        assert_eq!(leader_at(&roles, ms(50)), Some(1));
        assert_eq!(leader_at(&roles, ms(120)), Some(2), "a stale leader of a lower term is not the leader");
        assert_eq!(leader_at(&roles, ms(250)), None);
    }

    #[test]
    fn an_unknown_scenario_lists_the_allowed_ones() {
        let t = quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped");
        assert_eq!(scenarios(&t, &[]).expect("all").len(), single_faults(&t).len());
        assert_eq!(scenarios(&t, &["cut:dc1:dc2".into()]).expect("one").len(), 1);
        let e = scenarios(&t, &["cut:dc1:dc9".into()]).unwrap_err();
        assert!(e.contains("cut:dc1:dc2") && e.contains("all"), "{e}");
    }
}
