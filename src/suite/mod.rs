//! The partition suite's matrix: which runs to make (topology × fault × seed), a stable slice of them for one
//! machine (`--shard K/N`), and running them on several cores (`--jobs J`). It only calls [`crate::sim::run`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quorumlab_quorum::{FaultShape, Topology};

use crate::sim::run::{run, RunConfig, RunRecord};
use crate::sim::schedule::{single_faults, Fault, Schedule};

/// How long each single fault of the matrix lasts: long enough for elections to settle
/// ([`RunConfig::settle`]: three election timeouts and a client deadline, 7.5 s with etcd's timing) and then to
/// watch writes for a few seconds (at least one client deadline of them must remain to be judged).
pub const FAULT_DURATION: Duration = Duration::from_secs(14);

/// One run of the matrix, named by its shape.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub config: RunConfig,
}

/// Every single fault of every topology (or the given schedule) over the seeds, in a stable order.
pub fn matrix(
    topologies: &[Arc<Topology>],
    schedule: Option<&str>,
    faults: &[String],
    seeds: &[u64],
) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for t in topologies {
        let schedules: Vec<(String, Schedule)> = match schedule {
            Some(spec) => {
                let s = Schedule::parse(spec, t, FAULT_DURATION)?;
                vec![(format!("{}: {}", t.name(), s.describe(t)), s)]
            }
            None => {
                let faults: Vec<Fault> = if faults.is_empty() {
                    single_faults(t)
                } else {
                    faults.iter().map(|f| Fault::parse(f, t)).collect::<Result<_, _>>()?
                };
                faults
                    .into_iter()
                    .map(|f| (case_name(t, &f), Schedule::single(f, Duration::ZERO, FAULT_DURATION)))
                    .collect()
            }
        };
        for (name, schedule) in schedules {
            for &seed in seeds {
                cases.push(Case { name: name.clone(), config: RunConfig::new(t, schedule.clone(), seed) });
            }
        }
    }
    Ok(cases)
}

/// The case's name, by its shape: "etcd-2-2-1: cut dc1–dc2, dc3 sees both sides".
pub fn case_name(t: &Topology, fault: &Fault) -> String {
    let label = fault.label(t);
    let bystanders: Vec<&str> = match fault {
        Fault::Shape { shape: FaultShape::CutDcLink { a, b } } => {
            t.datacenters().iter().map(|dc| dc.name.as_str()).filter(|dc| dc != a && dc != b).collect()
        }
        _ => vec![],
    };
    match bystanders.as_slice() {
        [] => format!("{}: {label}", t.name()),
        [one] => format!("{}: {label}, {one} sees both sides", t.name()),
        many => format!("{}: {label}, {} see both sides", t.name(), many.join(" and ")),
    }
}

/// Shard `k` of `n` (1-based): every `n`th case starting at `k - 1`. The shards of one `n` are disjoint and their
/// union is the whole matrix.
pub fn shard(cases: Vec<Case>, k: usize, n: usize) -> Vec<Case> {
    cases.into_iter().enumerate().filter(|(i, _)| n > 0 && i % n == k.saturating_sub(1)).map(|(_, c)| c).collect()
}

/// Runs `cases` on `jobs` threads (each simulation is single-threaded and deterministic); `done` is called as each
/// finishes. Returns the records in the cases' order.
pub fn run_all(cases: &[Case], jobs: usize, done: impl Fn(&Case, &RunRecord) + Sync) -> Vec<RunRecord> {
    run_all_with(cases, jobs, run, done)
}

/// [`run_all`] with another runner for each config (real mode's, one at a time).
pub fn run_all_with(
    cases: &[Case],
    jobs: usize,
    runner: impl Fn(&RunConfig) -> RunRecord + Sync,
    done: impl Fn(&Case, &RunRecord) + Sync,
) -> Vec<RunRecord> {
    let next = AtomicUsize::new(0);
    let records: Mutex<Vec<Option<RunRecord>>> = Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|scope| {
        // More threads than cases would only idle (and a huge --jobs would fail to start them).
        for _ in 0..jobs.clamp(1, cases.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { return };
                let record = runner(&case.config);
                done(case, &record);
                if let Ok(mut records) = records.lock() {
                    records[i] = Some(record);
                }
            });
        }
    });
    records.into_inner().unwrap_or_default().into_iter().flatten().collect()
}

/// One line per run: the case, the seed, and predicted against observed per client datacenter.
pub fn summary_line(case: &str, r: &RunRecord) -> String {
    let dcs: Vec<String> = r
        .availability
        .iter()
        .map(|(_, v)| {
            format!(
                "{} {}→{}/{}{}",
                v.dc,
                v.predicted.name(),
                v.observed.acked,
                v.observed.writes,
                if v.agree { "" } else { " DISAGREE" }
            )
        })
        .collect();
    format!(
        "{} {case} [seed {}] | {} | terms ≤ {}",
        if r.passed() { "ok  " } else { "FAIL" },
        r.seed,
        if dcs.is_empty() { "not predicted".to_string() } else { dcs.join(", ") },
        r.highest_term
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover_the_matrix() {
        let t = Arc::new(quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped"));
        let all = matrix(&[t], None, &[], &[1, 2, 3]).expect("matrix");
        let names = |cases: &[Case]| cases.iter().map(|c| (c.name.clone(), c.config.seed)).collect::<Vec<_>>();
        let mut union = Vec::new();
        for k in 1..=4 {
            union.extend(names(&shard(all.clone(), k, 4)));
        }
        union.sort();
        let mut whole = names(&all);
        whole.sort();
        assert_eq!(union, whole);
        assert_eq!(shard(all.clone(), 1, 1).len(), all.len());
    }
}
