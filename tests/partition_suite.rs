//! The partition suite: every shipped topology under every single fault it can suffer (every datacenter lost and
//! isolated, every link cut, one-way cuts, the leader and its datacenter isolated, a majorities ring, a bridge, and
//! a crash, a power loss and a pause of the leader), each over three seeds, with every invariant, the client
//! history and the oracle's availability prediction checked. `QUORUMLAB_SEED=N` runs one seed.
//!
//! A failing case prints its name by shape, every failed property and the one command that replays it.

use std::time::Duration;

use quorumlab::sim::run::{run, RunConfig, RunRecord};
use quorumlab::sim::schedule::{single_faults, Fault, Schedule};
use quorumlab_quorum::{shipped, Topology};

/// How long each single fault lasts: long enough to settle (two election timeouts and a client deadline, 5.5 s
/// with etcd's timing) and then watch writes for several seconds.
const FAULT: Duration = Duration::from_secs(12);

fn seeds() -> Vec<u64> {
    match std::env::var("QUORUMLAB_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => vec![1, 2, 3],
    }
}

/// The case's name, by its shape: "etcd-2-2-1: cut dc1–dc2, dc3 sees both sides".
fn case_name(t: &Topology, fault: &Fault) -> String {
    let label = fault.label(t);
    let bystanders: Vec<&str> = match fault {
        Fault::Shape { shape: quorumlab_quorum::FaultShape::CutDcLink { a, b } } => {
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

/// Runs every single fault of one shipped topology over the seeds; fails with every failing case listed.
fn matrix(name: &str) {
    quorumlab::sim::trace::init_tracing();
    let t = shipped::load(name).expect("a shipped topology");
    let mut failures = Vec::new();
    let mut runs = 0;
    for fault in single_faults(&t) {
        for seed in seeds() {
            let config = RunConfig::new(&t, Schedule::single(fault.clone(), Duration::ZERO, FAULT), seed);
            let record = run(&config);
            runs += 1;
            println!("{}", summary(&case_name(&t, &fault), &record));
            if !record.passed() {
                failures.push(format!(
                    "{} (seed {seed}):\n    {}\n    replay: {}\n    or: QUORUMLAB_SEED={seed} cargo test --test partition_suite {}",
                    case_name(&t, &fault),
                    record.failures().join("\n    "),
                    record.replay,
                    test_name(name),
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {runs} runs failed:\n{}", failures.len(), failures.join("\n"));
}

fn test_name(topology: &str) -> String {
    topology.replace('-', "_")
}

/// One line per run: the case, the seed, and predicted against observed per client datacenter.
fn summary(case: &str, r: &RunRecord) -> String {
    let dcs: Vec<String> = r
        .availability
        .iter()
        .map(|(_, v)| {
            format!(
                "{} {:?}→{}/{} acked{}",
                v.dc,
                v.predicted,
                v.observed.acked,
                v.observed.writes,
                if v.agree { "" } else { " DISAGREE" }
            )
        })
        .collect();
    format!(
        "{case} [seed {}] {} | {} | terms ≤ {} | {}",
        r.seed,
        if r.passed() { "ok" } else { "FAILED" },
        dcs.join(", "),
        r.highest_term,
        r.schedule
    )
}

#[test]
fn etcd_3() {
    matrix("etcd-3");
}

#[test]
fn etcd_5() {
    matrix("etcd-5");
}

#[test]
fn etcd_2_2() {
    matrix("etcd-2-2");
}

#[test]
fn etcd_1_1_1() {
    matrix("etcd-1-1-1");
}

#[test]
fn etcd_2_2_1() {
    matrix("etcd-2-2-1");
}

#[test]
fn etcd_3_2() {
    matrix("etcd-3-2");
}

#[test]
fn etcd_3_3_1() {
    matrix("etcd-3-3-1");
}
