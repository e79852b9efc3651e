//! Figure 16 of the Raft paper (Ongaro & Ousterhout, extended version): how long a five-voter cluster is without
//! a leader after its leader crashes, for several ranges of election timeouts.
//!
//! For each range: five voters on the flat topology (one datacenter, links of 1 ms plus up to 4 ms of jitter),
//! the heartbeat interval set to half the minimum election timeout as in the paper, every node started at its own
//! random moment (so each node's openraft timer ticks at its own phase, as for separately started processes), and
//! then, trial after trial:
//! 1. wait until the cluster is stable: one leader, every voter following it at its term, all applied up to the
//!    leader's first entry;
//! 2. wait a moment drawn uniformly within one heartbeat period, then crash the leader;
//! 3. step until some node is elected at a higher term ([`Invariants::elections`]: the moment the winner saved
//!    its own committed vote, i.e. learned that a majority voted for it), or the cap passes;
//! 4. after another moment drawn uniformly within one heartbeat period, restart the crashed node from its disk,
//!    and wait until the cluster is stable again, the restarted node caught up.
//!
//! [`Procedure::OneCluster`] (the default, as the paper did) runs every trial of a range on one cluster;
//! [`Procedure::FreshCluster`] starts a new cluster for each, so that the trials are independent (openraft keeps
//! per process what the paper's Raft redraws at every timer reset; see `docs/election-timeouts.md`).
//!
//! The heartbeat period is the one openraft 0.9 really keeps: its timer ticks every 3/2 of the configured
//! heartbeat interval and a leader sends its heartbeats on a tick ([`TimeoutRange::heartbeat_period_ms`]), so a
//! crash time drawn uniformly over one such period falls at a uniformly random phase of the heartbeats.
//!
//! Every random choice comes from the run's seed: each range gets its own ChaCha8 stream, keyed by the seed and the
//! range, which draws the simulation's seed, the start moments, and then the crash and restart moments. A range's
//! results so do not depend on which other ranges run, in which order, or on how many threads.
//!
//! The statistics ([`stats`]) and the output formats ([`render`]) are pure functions of the trials.
//!
//! [`Invariants::elections`]: crate::sim::Invariants::elections

pub mod render;
pub mod stats;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use openraft::ServerState;
use quorumlab_quorum::RaftTiming;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::runtime;
use crate::sim::{layout, Invariants, Shared, SimCluster, SimOptions};
use crate::types::NodeId;

/// Voters in every cluster, as in the paper.
pub const VOTERS: u64 = 5;

/// The smallest minimum election timeout allowed: the heartbeat is half of it and must be at least 1 ms.
pub const SMALLEST_MIN_MS: u64 = 2;

/// The largest election timeout allowed (a minute): anything longer says nothing about Figure 16.
pub const LARGEST_MAX_MS: u64 = 60_000;

/// How long each trial waits for a new leader before counting the trial as "more than the cap", by default.
pub const DEFAULT_CAP: Duration = Duration::from_secs(10);

/// Trials per range by default, as in the paper: the whole default run (ten ranges, one cluster each) takes about
/// a minute on two cores in a release build (measured in `docs/election-timeouts.md`).
pub const DEFAULT_TRIALS: u32 = 1000;

/// The most trials per range allowed.
pub const MAX_TRIALS: u32 = 100_000;

/// A range of election timeouts in milliseconds, both ends included, as the paper writes them: `150–155` means
/// every timeout is drawn uniformly from 150, 151, …, 155 ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct TimeoutRange {
    pub min_ms: u64,
    pub max_ms: u64,
}

/// The ranges of the paper's top panel (varying randomness above a 150 ms minimum).
pub const PAPER_TOP: [TimeoutRange; 6] = [
    TimeoutRange { min_ms: 150, max_ms: 150 },
    TimeoutRange { min_ms: 150, max_ms: 151 },
    TimeoutRange { min_ms: 150, max_ms: 155 },
    TimeoutRange { min_ms: 150, max_ms: 175 },
    TimeoutRange { min_ms: 150, max_ms: 200 },
    TimeoutRange { min_ms: 150, max_ms: 300 },
];

/// The ranges of the paper's bottom panel (scaling the minimum, the range as wide as the minimum); the paper's
/// bottom panel also shows 150–300 ms, measured once with the top panel.
pub const PAPER_BOTTOM: [TimeoutRange; 4] = [
    TimeoutRange { min_ms: 12, max_ms: 24 },
    TimeoutRange { min_ms: 25, max_ms: 50 },
    TimeoutRange { min_ms: 50, max_ms: 100 },
    TimeoutRange { min_ms: 100, max_ms: 200 },
];

/// Every range of Figure 16: the top panel's, then the bottom panel's.
pub fn paper_ranges() -> Vec<TimeoutRange> {
    PAPER_TOP.iter().chain(PAPER_BOTTOM.iter()).copied().collect()
}

impl fmt::Display for TimeoutRange {
    /// `150-155`, the form `--ranges` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min_ms, self.max_ms)
    }
}

impl TimeoutRange {
    /// Parses `MIN-MAX` (milliseconds, both ends included; `MIN` alone means no randomness).
    pub fn parse(s: &str) -> Result<TimeoutRange, String> {
        let what = "a range is MIN-MAX in whole milliseconds, e.g. 150-300";
        let s = s.trim();
        let (min, max) = s.split_once('-').unwrap_or((s, s));
        let number = |v: &str| v.trim().parse::<u64>().map_err(|_| format!("{s:?} is not a range: {what}"));
        let (min_ms, max_ms) = (number(min)?, number(max)?);
        if min_ms < SMALLEST_MIN_MS {
            return Err(format!(
                "range {s:?}: the minimum must be at least {SMALLEST_MIN_MS} ms (it must be > 0, and the heartbeat, \
                 half of it, at least 1 ms)"
            ));
        }
        if min_ms > max_ms {
            return Err(format!("range {s:?}: the minimum must be ≤ the maximum ({what})"));
        }
        if max_ms > LARGEST_MAX_MS {
            return Err(format!("range {s:?}: the maximum must be at most {LARGEST_MAX_MS} ms"));
        }
        Ok(TimeoutRange { min_ms, max_ms })
    }

    /// Parses a comma-separated list of ranges, e.g. `150-150,150-155,12-24`; duplicates are refused.
    pub fn parse_list(s: &str) -> Result<Vec<TimeoutRange>, String> {
        let mut out: Vec<TimeoutRange> = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let r = TimeoutRange::parse(part)?;
            if out.contains(&r) {
                return Err(format!("range {r} is given twice"));
            }
            out.push(r);
        }
        if out.is_empty() {
            return Err("no ranges: give MIN-MAX[,MIN-MAX…], e.g. 150-150,150-300".into());
        }
        Ok(out)
    }

    /// `150–155 ms`, for people.
    pub fn label(&self) -> String {
        format!("{}–{} ms", self.min_ms, self.max_ms)
    }

    /// The heartbeat interval configured: half the minimum election timeout, as in the paper.
    pub fn heartbeat_ms(&self) -> u64 {
        (self.min_ms / 2).max(1)
    }

    /// How often a leader really sends heartbeats: openraft 0.9's timer ticks every 3/2 of the configured
    /// interval (`Tick::spawn(heartbeat_interval * 3 / 2)` in `Raft::new`), and a leader sends heartbeats on a
    /// tick once the interval has passed since the last ones, so on every tick.
    pub fn heartbeat_period_ms(&self) -> u64 {
        (self.heartbeat_ms() * 3 / 2).max(1)
    }

    /// The Raft timing of this range's cluster.
    ///
    /// openraft draws an election timeout from `min..max`, the maximum left out, and refuses `min == max`, so the
    /// paper's inclusive `150–155` becomes openraft's `150..156` (and `150–150` its `150..151`: always 150).
    /// openraft bounds every RPC itself (an append-entries by the heartbeat interval, a vote request by the
    /// minimum election timeout), so the RPC deadline here only bounds connecting; it and the client request
    /// deadline keep their defaults, which no trial reaches (no client writes).
    pub fn timing(&self) -> RaftTiming {
        RaftTiming {
            heartbeat_ms: self.heartbeat_ms(),
            election_timeout_ms_min: self.min_ms,
            election_timeout_ms_max: self.max_ms + 1,
            ..RaftTiming::default()
        }
    }

    /// The panels of the paper this range belongs to: the top one (a 150 ms minimum, varying randomness) and/or
    /// the bottom one (the range as wide as its minimum, scaling the minimum; ranges of neither kind go there
    /// too). 150–300 ms is in both, as in the paper.
    pub fn panels(&self) -> (bool, bool) {
        let top = self.min_ms == 150;
        let bottom = !top || self.max_ms == 2 * self.min_ms;
        (top, bottom)
    }
}

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub ranges: Vec<TimeoutRange>,
    pub trials: u32,
    pub seed: u64,
    /// A trial that elects no new leader within this long counts as "more than the cap".
    pub cap: Duration,
    pub procedure: Procedure,
}

/// Whether the trials of a range share one cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Procedure {
    /// One cluster per range, its leader crashed and restarted trial after trial, as in the paper. openraft keeps
    /// per process what the paper's Raft redraws at every timer reset (the election timeout, the timer's phase),
    /// so consecutive trials are not independent.
    #[default]
    OneCluster,
    /// A newly started cluster for every trial (five processes started at independent random moments): the
    /// trials are independent and identically distributed.
    FreshCluster,
}

impl Config {
    /// The command that reproduces this run.
    pub fn command(&self) -> String {
        let ranges: Vec<String> = self.ranges.iter().map(|r| r.to_string()).collect();
        format!(
            "quorumlab experiment election-timeouts --ranges {} --trials {} --cap {}ms --seed {}{}",
            ranges.join(","),
            self.trials,
            self.cap.as_millis(),
            self.seed,
            if self.procedure == Procedure::FreshCluster { " --fresh" } else { "" }
        )
    }
}

/// One crash of the leader and what followed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Trial {
    /// Simulated time of the crash, in milliseconds since the simulation started.
    pub crash_at_ms: u64,
    /// How long after the cluster was seen stable the crash came: uniform in `0..heartbeat period`.
    pub wait_ms: u64,
    /// The crashed leader and its term.
    pub old_leader: NodeId,
    pub old_term: u64,
    /// From the crash until a node was elected at a higher term; `None`: not within the cap.
    pub downtime_ms: Option<u64>,
    /// The node elected.
    pub new_leader: Option<NodeId>,
    /// Terms the election went through: the new leader's term less the old one (1: decided in the first term),
    /// or, for a trial that hit the cap, the highest term any node reached by then less the old one.
    pub terms: u64,
    /// Nodes that became candidates after the crash, up to the step in which the new leader was elected (or the
    /// cap): 1 when a single node timed out first; more when several campaigned at once, which in the paper's
    /// Raft risks a split vote.
    pub candidates: u64,
    /// How long after the new leader's election (or the cap) the crashed node was restarted: uniform in
    /// `0..heartbeat period`, so its timer ticks at a random phase.
    pub restart_after_ms: u64,
    /// The leader and term once the cluster was stable again, the crashed node back and caught up. Usually the
    /// new leader; in openraft 0.9 a candidate with a higher node id can also win the same term right after it
    /// and supersede it (see `sim::invariants::election_safety`).
    pub settled: Option<(NodeId, u64)>,
}

impl Trial {
    /// Whether the node first elected was superseded in its own term by a higher node id before the cluster
    /// settled.
    pub fn superseded(&self) -> bool {
        match (self.new_leader, self.settled) {
            (Some(new), Some((leader, term))) => term == self.old_term + self.terms && leader != new,
            _ => false,
        }
    }
}

/// One range's trials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RangeResult {
    pub range: TimeoutRange,
    pub timing: RaftTiming,
    /// The (first) simulation's seed, drawn from the run's seed and the range.
    pub sim_seed: u64,
    pub trials: Vec<Trial>,
    /// Elections nobody caused: a node was elected while a trial waited for its crash moment (a heartbeat came too
    /// late for some follower's timeout). Such a wait starts over and is not a trial.
    pub unprovoked_elections: u64,
}

impl RangeResult {
    pub fn distribution(&self) -> stats::Distribution {
        stats::Distribution::new(&self.trials.iter().map(|t| t.downtime_ms).collect::<Vec<_>>())
    }
}

/// Every range's results, in the order the ranges were given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub config: Config,
    pub ranges: Vec<RangeResult>,
}

/// Runs every range of `config` on `jobs` threads (each simulation is single-threaded; one per thread at a
/// time); `on_trial` is called after each trial. Returns the results in the ranges' order, or every range's
/// failure.
pub fn run(config: &Config, jobs: usize, on_trial: impl Fn(&TimeoutRange, &Trial) + Sync) -> Result<Report, String> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RangeResult, String>>>> = Mutex::new(vec![None; config.ranges.len()]);
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, config.ranges.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(range) = config.ranges.get(i) else { return };
                let result = measure_range(*range, config, |t| on_trial(range, t));
                if let Ok(mut results) = results.lock() {
                    results[i] = Some(result);
                }
            });
        }
    });
    let mut ranges = Vec::new();
    let mut failures = Vec::new();
    for result in results.into_inner().unwrap_or_default().into_iter().flatten() {
        match result {
            Ok(r) => ranges.push(r),
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("\n"));
    }
    if ranges.len() != config.ranges.len() {
        return Err("a range's simulation thread died without a result".into());
    }
    Ok(Report { config: config.clone(), ranges })
}

/// The seed of one range's ChaCha8 stream: the run's seed mixed with the range.
fn range_seed(seed: u64, range: TimeoutRange) -> u64 {
    runtime::stream_seed(seed, "experiment/election-timeouts/", &range.to_string())
}

/// How long the cluster may take to become stable before a trial (the first election, or the restarted node
/// catching up after the last crash, including any election still running when the last trial hit its cap).
fn settle_budget(range: TimeoutRange) -> Duration {
    Duration::from_secs(30) + Duration::from_millis(range.max_ms * 40)
}

/// The leader and its term, when the cluster is stable: every voter running, exactly one leader, every other
/// voter following it at its term, and all of them applied up to the same entry, one the leader wrote in its term
/// (its first entry is committed everywhere: the election is over).
pub fn stable_leader(s: &Shared, voters: &[NodeId]) -> Option<(NodeId, u64)> {
    let m = s.metrics();
    if voters.iter().any(|id| !m.contains_key(id)) {
        return None;
    }
    let mut leaders = m.iter().filter(|(_, m)| m.state == ServerState::Leader);
    let (&leader, lm) = leaders.next()?;
    if leaders.next().is_some() {
        return None;
    }
    let term = lm.current_term;
    let applied = lm.last_applied?;
    if applied.leader_id != openraft::CommittedLeaderId::new(term, leader) {
        return None;
    }
    let following = |m: &crate::types::RaftMetrics| {
        m.state == ServerState::Follower && m.current_term == term && m.current_leader == Some(leader)
    };
    let all = m.iter().all(|(id, m)| (*id == leader || following(m)) && m.last_applied == Some(applied));
    all.then_some((leader, term))
}

/// Runs `config.trials` crashes of the leader of a five-voter cluster with election timeouts in `range`;
/// `on_trial` is called after each, once the cluster is stable again. Fails, naming the range, trial and seed, if a
/// safety property breaks, the simulation fails, or the cluster does not become stable in time.
pub fn measure_range(
    range: TimeoutRange,
    config: &Config,
    mut on_trial: impl FnMut(&Trial),
) -> Result<RangeResult, String> {
    let seed = config.seed;
    let mut rng = ChaCha8Rng::seed_from_u64(range_seed(seed, range));
    let fail = |trial: usize, what: String| format!("range {range} (trial {}, seed {seed}): {what}", trial + 1);
    let sim_seed: u64 = rng.gen();
    let trials_per_cluster = match config.procedure {
        Procedure::OneCluster => config.trials,
        Procedure::FreshCluster => 1,
    };
    let mut run = Run::start(range, config, sim_seed, trials_per_cluster, &mut rng).map_err(|e| fail(0, e))?;
    let mut out = RangeResult { range, timing: range.timing(), sim_seed, trials: Vec::new(), unprovoked_elections: 0 };
    while out.trials.len() < config.trials as usize {
        let i = out.trials.len();
        if config.procedure == Procedure::FreshCluster && i > 0 {
            let sim_seed: u64 = rng.gen();
            run = Run::start(range, config, sim_seed, 1, &mut rng).map_err(|e| fail(i, e))?;
        }
        let mut trial = loop {
            let (leader, term) = run.settle().map_err(|e| fail(i, e))?;
            match run.trial(leader, term, &mut rng).map_err(|e| fail(i, e))? {
                Some(trial) => break trial,
                None => {
                    out.unprovoked_elections += 1;
                    if out.unprovoked_elections > 100 + 10 * u64::from(config.trials) {
                        return Err(fail(
                            i,
                            "the leader keeps changing with no crash: heartbeats cannot keep up".into(),
                        ));
                    }
                }
            }
        };
        trial.settled = Some(run.settle().map_err(|e| fail(i, e))?);
        on_trial(&trial);
        out.trials.push(trial);
    }
    Ok(out)
}

/// One simulated cluster being measured.
struct Run {
    c: SimCluster<'static>,
    s: Shared,
    voters: Vec<NodeId>,
    range: TimeoutRange,
    cap: Duration,
    settle: Duration,
}

impl Run {
    /// A five-voter cluster for `range`, long enough for `trials` trials, with every node started at its own
    /// random moment within one heartbeat period, and initialized.
    ///
    /// Why the staggered start: real processes start at different moments, so each one's openraft timer ticks at
    /// its own phase, and which follower notices a crash first depends on it. The simulator starts every host at
    /// 0, so each node is crashed at once and restarted at its moment, before the cluster is initialized.
    fn start(
        range: TimeoutRange,
        config: &Config,
        sim_seed: u64,
        trials: u32,
        rng: &mut ChaCha8Rng,
    ) -> Result<Run, String> {
        let period = range.heartbeat_period_ms();
        let settle = settle_budget(range);
        let mut options = SimOptions::from_topology(&layout::flat_topology(VOTERS), sim_seed);
        options.timing = range.timing();
        options.duration = (settle + config.cap + Duration::from_millis(3 * period)) * trials.max(1) + settle;
        let mut c = SimCluster::new(options);
        let s = c.shared.clone();
        let voters = s.options.voters();
        {
            let s = s.clone();
            let before = Duration::from_millis(period + 1);
            c.client("experiment", async move {
                tokio::time::sleep(before).await;
                s.initialize(1).await
            });
        }
        c.step()?;
        let start = c.sim.elapsed();
        let mut starts: Vec<(u64, NodeId)> = voters.iter().map(|id| (rng.gen_range(0..period), *id)).collect();
        starts.sort_unstable();
        for id in &voters {
            c.crash(*id);
        }
        for (at, id) in starts {
            let until = start + Duration::from_millis(at);
            c.run_until(until.saturating_sub(c.sim.elapsed()), |_| false)?;
            c.bounce(id);
        }
        Ok(Run { c, s, voters, range, cap: config.cap, settle })
    }

    /// Steps until the cluster is stable ([`stable_leader`]); its leader and term.
    fn settle(&mut self) -> Result<(NodeId, u64), String> {
        let voters = &self.voters;
        if !self.c.run_until(self.settle, |s| stable_leader(s, voters).is_some())? {
            return Err(format!("no stable leader within {:?} of simulated time: {}", self.settle, summary(&self.s)));
        }
        stable_leader(&self.s, voters).ok_or_else(|| "unreachable: the cluster was just stable".into())
    }

    /// One trial from a stable cluster led by `leader` in `term`: wait a random moment within one heartbeat period,
    /// crash the leader, step until a node is elected at a higher term or the cap passes, then restart the crashed
    /// node after another random moment. `None` (and nothing crashed) if a node was elected while waiting.
    fn trial(&mut self, leader: NodeId, term: u64, rng: &mut ChaCha8Rng) -> Result<Option<Trial>, String> {
        let (c, s) = (&mut self.c, &self.s);
        let period = self.range.heartbeat_period_ms();
        let elections_before = election_count(s);
        let wait = rng.gen_range(0..period);
        c.run_until(Duration::from_millis(wait), |_| false)?;
        if election_count(s) != elections_before || s.leader() != Some((leader, term)) {
            return Ok(None);
        }
        let candidacies_before = checker(s, 0, |i| i.candidacies().len());
        let crash_at = c.sim.elapsed();
        c.crash(leader);
        let mut elected = None;
        c.run_until(self.cap, |s| {
            elected =
                checker(s, None, |i| i.elections()[elections_before..].iter().find(|(t, _, _)| *t > term).copied());
            elected.is_some()
        })?;
        let elected = elected.filter(|(_, _, at)| at.saturating_sub(crash_at) <= self.cap);
        let candidates: BTreeSet<NodeId> = checker(s, BTreeSet::new(), |i| {
            i.candidacies()[candidacies_before..].iter().filter(|(t, _)| *t > term).map(|(_, n)| *n).collect()
        });
        let terms = match elected {
            Some((t, _, _)) => t - term,
            None => s.metrics().values().map(|m| m.current_term).max().unwrap_or(term).saturating_sub(term),
        };
        // Restart the crashed node at a random phase too, not in step with the election just seen.
        let restart = rng.gen_range(0..period);
        c.run_until(Duration::from_millis(restart), |_| false)?;
        c.bounce(leader);
        Ok(Some(Trial {
            crash_at_ms: crash_at.as_millis() as u64,
            wait_ms: wait,
            old_leader: leader,
            old_term: term,
            downtime_ms: elected.map(|(_, _, at)| at.saturating_sub(crash_at).as_millis() as u64),
            new_leader: elected.map(|(_, node, _)| node),
            terms,
            candidates: candidates.len() as u64,
            restart_after_ms: restart,
            settled: None,
        }))
    }
}

/// Reads the cluster's invariant checker, which sees every election and candidacy (`default` if its lock is
/// poisoned, which only a panicking step can do, and that step's error is reported first).
fn checker<T>(s: &Shared, default: T, f: impl FnOnce(&Invariants) -> T) -> T {
    s.invariants.lock().map(|i| f(&i)).unwrap_or(default)
}

/// How many elections the checker has seen so far.
fn election_count(s: &Shared) -> usize {
    checker(s, 0, |i| i.elections().len())
}

/// Each running node's state, term and leader, for an error message.
fn summary(s: &Shared) -> String {
    let parts: Vec<String> = s
        .metrics()
        .iter()
        .map(|(id, m)| {
            format!(
                "node {id} {:?} term {} leader {:?} applied {:?}",
                m.state,
                m.current_term,
                m.current_leader,
                m.last_applied.map(|l| l.index)
            )
        })
        .collect();
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_say_what_is_allowed() {
        assert_eq!(TimeoutRange::parse("150-300"), Ok(TimeoutRange { min_ms: 150, max_ms: 300 }));
        assert_eq!(TimeoutRange::parse(" 150 "), Ok(TimeoutRange { min_ms: 150, max_ms: 150 }));
        assert!(TimeoutRange::parse("200-100").unwrap_err().contains("minimum must be ≤ the maximum"));
        assert!(TimeoutRange::parse("0-10").unwrap_err().contains("at least 2 ms"));
        assert!(TimeoutRange::parse("1-10").unwrap_err().contains("at least 2 ms"));
        assert!(TimeoutRange::parse("fast").unwrap_err().contains("MIN-MAX"));
        assert!(TimeoutRange::parse("10-99999999").unwrap_err().contains("at most"));
        let all = TimeoutRange::parse_list("150-150,150-151,12-24").unwrap();
        assert_eq!(all.iter().map(|r| r.to_string()).collect::<Vec<_>>(), ["150-150", "150-151", "12-24"]);
        assert!(TimeoutRange::parse_list("150-300,150-300").unwrap_err().contains("twice"));
        assert!(TimeoutRange::parse_list(",").unwrap_err().contains("no ranges"));
    }

    #[test]
    fn timing_is_valid_for_openraft_for_every_paper_range_and_the_smallest() {
        let mut ranges = paper_ranges();
        ranges.push(TimeoutRange { min_ms: SMALLEST_MIN_MS, max_ms: SMALLEST_MIN_MS });
        for r in ranges {
            let t = r.timing();
            assert_eq!(t.heartbeat_ms * 2, r.min_ms - r.min_ms % 2, "{r}: heartbeat is half the minimum");
            let config = openraft::Config {
                heartbeat_interval: t.heartbeat_ms,
                election_timeout_min: t.election_timeout_ms_min,
                election_timeout_max: t.election_timeout_ms_max,
                ..Default::default()
            };
            assert!(config.validate().is_ok(), "{r}: openraft refuses {t:?}");
            assert!(r.heartbeat_period_ms() >= 1 && r.heartbeat_period_ms() < r.min_ms, "{r}");
        }
        let t = TimeoutRange { min_ms: 150, max_ms: 155 }.timing();
        assert_eq!((t.heartbeat_ms, t.election_timeout_ms_min, t.election_timeout_ms_max), (75, 150, 156));
        assert_eq!(TimeoutRange { min_ms: 150, max_ms: 155 }.heartbeat_period_ms(), 112);
        assert_eq!(TimeoutRange { min_ms: 12, max_ms: 24 }.heartbeat_period_ms(), 9);
    }

    #[test]
    fn the_paper_ranges_fall_into_its_two_panels() {
        let top: Vec<String> = paper_ranges().iter().filter(|r| r.panels().0).map(|r| r.to_string()).collect();
        let bottom: Vec<String> = paper_ranges().iter().filter(|r| r.panels().1).map(|r| r.to_string()).collect();
        assert_eq!(top, ["150-150", "150-151", "150-155", "150-175", "150-200", "150-300"]);
        assert_eq!(bottom, ["150-300", "12-24", "25-50", "50-100", "100-200"]);
    }

    #[test]
    fn each_range_has_its_own_seed() {
        let a = range_seed(1, PAPER_TOP[0]);
        assert_ne!(a, range_seed(1, PAPER_TOP[1]));
        assert_ne!(a, range_seed(2, PAPER_TOP[0]));
        assert_eq!(a, range_seed(1, PAPER_TOP[0]));
    }
}
