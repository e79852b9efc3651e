//! `quorumlab experiment election-timeouts` (the Raft paper's Figure 16) on a few trials: every crash of the
//! leader is followed by a new leader, no sooner than the timeouts allow, and a seed replays bit for bit.

#[cfg(not(tokio_unstable))]
compile_error!(
    "simulated tests need `--cfg tokio_unstable`; your RUSTFLAGS replaced .cargo/config.toml's. \
     Run with RUSTFLAGS=\"$RUSTFLAGS --cfg tokio_unstable\""
);

use std::process::Command;
use std::time::Duration;

use quorumlab::experiment::election_timeouts::{self as et, Config, Procedure, TimeoutRange};

const CAP: Duration = Duration::from_secs(10);

fn range(min_ms: u64, max_ms: u64) -> TimeoutRange {
    TimeoutRange { min_ms, max_ms }
}

fn config(trials: u32, seed: u64, cap: Duration) -> Config {
    Config { ranges: vec![], trials, seed, cap, procedure: Procedure::OneCluster }
}

/// The earliest a new leader can be elected after the crash. The paper's bound: a follower times out at least
/// one minimum election timeout after the last heartbeat it heard, and that heartbeat came at most one heartbeat
/// period before the crash. openraft adds its leader lease: a follower that knows a leader waits the lease
/// (openraft's maximum election timeout) *plus* its own timeout before it campaigns, and refuses votes within
/// the lease, so nobody is elected before min + lease − period.
fn lower_bounds(r: TimeoutRange) -> (u64, u64) {
    let period = r.heartbeat_period_ms();
    let paper = r.min_ms.saturating_sub(r.heartbeat_ms());
    let lease = r.timing().election_timeout_ms_max;
    (paper, r.min_ms + lease - period)
}

#[test]
fn every_crash_elects_a_new_leader_no_sooner_than_the_timeouts_allow() {
    for r in [range(150, 155), range(12, 24)] {
        let result = et::measure_range(r, &config(6, 7, CAP), |_| {}).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(result.trials.len(), 6);
        let (paper_bound, lease_bound) = lower_bounds(r);
        for t in &result.trials {
            let downtime = t.downtime_ms.unwrap_or_else(|| panic!("{r}: no new leader within {CAP:?}: {t:?}"));
            let new = t.new_leader.expect("a new leader");
            assert_ne!(new, t.old_leader, "{r}: the crashed leader cannot be re-elected while down: {t:?}");
            assert!(t.terms >= 1 && t.candidates >= 1, "{r}: {t:?}");
            assert!(downtime >= paper_bound, "{r}: {downtime} ms is below the paper's bound {paper_bound}: {t:?}");
            assert!(downtime >= lease_bound, "{r}: {downtime} ms is below openraft's bound {lease_bound}: {t:?}");
            assert!(t.wait_ms < r.heartbeat_period_ms(), "{r}: the crash comes within one heartbeat period: {t:?}");
        }
        // Each trial crashes the leader of the term the last one elected (not always the node first elected: in
        // openraft 0.9 a higher node id may be elected in the same term right after, superseding it).
        for pair in result.trials.windows(2) {
            assert_eq!(pair[1].old_term, pair[0].old_term + pair[0].terms, "{r}: {pair:?}");
        }
    }
}

#[test]
fn a_trial_beyond_the_cap_counts_as_capped_and_the_next_one_still_runs() {
    let r = range(150, 155);
    let result =
        et::measure_range(r, &config(2, 3, Duration::from_millis(50)), |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert!(result.trials.iter().all(|t| t.downtime_ms.is_none() && t.new_leader.is_none()), "{:?}", result.trials);
    let d = result.distribution();
    assert_eq!((d.trials(), d.capped(), d.percentile(50.0)), (2, 2, None));
}

#[test]
fn the_same_seed_gives_the_same_trials_on_one_thread_or_several() {
    let config = Config { ranges: vec![range(25, 50), range(12, 24)], ..config(4, 11, CAP) };
    let alone: Vec<et::RangeResult> =
        config.ranges.iter().map(|r| et::measure_range(*r, &config, |_| {}).expect("runs")).collect();
    let together = et::run(&config, 2, |_, _| {}).expect("runs");
    assert_eq!(together.ranges, alone, "two threads, one range each, give what each range gives alone");
    let again = et::run(&config, 1, |_, _| {}).expect("runs");
    assert_eq!(again, together, "the same seed replays");
    let other = et::measure_range(range(25, 50), &Config { seed: 12, ..config.clone() }, |_| {}).expect("runs");
    assert_ne!(other.trials, alone[0].trials, "another seed, other trials");
}

#[test]
fn fresh_clusters_give_independent_trials_that_replay_too() {
    let config = Config { procedure: Procedure::FreshCluster, ..config(3, 4, CAP) };
    let r = range(25, 50);
    let a = et::measure_range(r, &config, |_| {}).expect("runs");
    assert_eq!(a, et::measure_range(r, &config, |_| {}).expect("runs"), "the same seed replays");
    let (paper_bound, lease_bound) = lower_bounds(r);
    for t in &a.trials {
        let downtime = t.downtime_ms.unwrap_or_else(|| panic!("no new leader: {t:?}"));
        assert!(downtime >= paper_bound.max(lease_bound), "{t:?}");
        assert_eq!(t.old_term, a.trials[0].old_term, "every trial starts from a newly elected cluster: {t:?}");
    }
}

#[test]
fn the_command_prints_the_same_table_twice_and_valid_json() {
    let run = |format: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_quorumlab"))
            .args(["experiment", "election-timeouts", "--ranges", "12-24", "--trials", "3", "--seed", "5"])
            .args(["--jobs", "1", "--format", format])
            .output()
            .expect("run quorumlab");
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let text = run("text");
    assert!(text.lines().any(|l| l.starts_with("12–24 ms")), "{text}");
    assert_eq!(run("text"), text, "same seed, same output");
    let json: serde_json::Value = serde_json::from_str(&run("json")).expect("valid JSON");
    assert_eq!(json["ranges"][0]["range"], "12-24");
    assert_eq!(json["ranges"][0]["trials"], 3);
    let html = run("html");
    assert!(html.contains("<svg") && !html.contains("<script"), "{html}");
}
