//! The failover supervisor in simulation (issue 11): correct fence configurations stay safe in the faults
//! they cover, each deliberately broken fence is caught within ten seeds with the command that replays
//! it, a consensus blip fails over nobody, and a run replays bit for bit.
//!
//! The whole matrix (every strategy × every fault) is `quorumlab fencing matrix`; its expected cells for
//! `etcd-2-2-1`, seed 1, are pinned by the ignored test at the end (`cargo test --release -- --ignored`).

use quorumlab::sim::fencing::faults::Scenario;
use quorumlab::sim::fencing::matrix;
use quorumlab::sim::fencing::strategy::{Bugs, FencingOptions, Strategy};
use quorumlab::sim::fencing::verdict::MatrixCell;
use quorumlab::sim::run::{run, RunConfig, RunRecord};
use quorumlab_quorum::shipped;

fn fencing_run(topology: &str, options: &FencingOptions, fault: &str, seed: u64) -> RunRecord {
    let t = shipped::load(topology).expect("a shipped topology");
    let scenario = Scenario::find(fault).expect("a fencing fault");
    let schedule = scenario.schedule(&t).expect("the fault applies");
    run(&RunConfig::new(&t, schedule, seed).with_fencing(scenario.options(options)))
}

fn cell(r: &RunRecord) -> MatrixCell {
    r.fencing.as_ref().expect("a fencing run").cell
}

/// The Raft KV's own properties (every one but the availability comparison, which fencing faults do not predict).
fn kv_failures(r: &RunRecord) -> Vec<String> {
    r.failures().into_iter().filter(|f| !f.starts_with("db: ") && !f.starts_with("availability")).collect()
}

#[test]
fn correct_configurations_stay_safe_in_the_faults_they_cover() {
    quorumlab::sim::trace::init_tracing();
    let cases: [(Strategy, &[&str]); 5] = [
        (Strategy::Watchdog, &["pause-supervisor", "pause-host"]),
        (Strategy::StonithAndFirewall, &["isolate-primary-inband", "lying-stonith"]),
        (Strategy::Credentials, &["resume-in-flight", "firewall-sessions"]),
        (Strategy::Firewall, &["firewall-sessions"]),
        (
            Strategy::None,
            &["isolate-primary", "kv-leader-isolated", "pause-mid-renewal", "kv-leader-isolated-with-primary"],
        ),
    ];
    for (strategy, faults) in cases {
        for fault in faults {
            let r = fencing_run("etcd-2-2-1", &FencingOptions::new(strategy), fault, 1);
            assert!(
                !cell(&r).unsafe_for(strategy),
                "{strategy} × {fault}: {:?}\n{}\nreplay: {}",
                cell(&r),
                r.failures().join("\n"),
                r.replay
            );
            assert!(kv_failures(&r).is_empty(), "{strategy} × {fault}: the Raft KV failed: {:?}", kv_failures(&r));
        }
    }
    // And on a second topology: 3/2 over two datacenters.
    for (strategy, fault) in [(Strategy::Watchdog, "pause-supervisor"), (Strategy::Stonith, "isolate-primary")] {
        let r = fencing_run("etcd-3-2", &FencingOptions::new(strategy), fault, 1);
        assert!(!cell(&r).unsafe_for(strategy), "etcd-3-2 {strategy} × {fault}: {:?}\nreplay: {}", cell(&r), r.replay);
    }
}

/// Runs seeds 1..=10 until the run is unsafe; shrinks its schedule (a few more runs) and prints the
/// replay command of the smallest schedule that still fails. Returns the seed.
fn caught_within_ten_seeds(what: &str, options: &FencingOptions, fault: &str) -> u64 {
    let t = shipped::load("etcd-2-2-1").expect("a shipped topology");
    for seed in 1..=10 {
        let r = fencing_run("etcd-2-2-1", options, fault, seed);
        if cell(&r).unsafe_for(options.strategy) {
            let scenario = Scenario::find(fault).expect("a fencing fault");
            let config = RunConfig::new(&t, scenario.schedule(&t).expect("applies"), seed)
                .with_fencing(scenario.options(options));
            let shrunk = matrix::shrink_unsafe(&config, 4);
            assert!(shrunk.schedule.steps.len() <= config.schedule.steps.len());
            let replay = RunConfig { schedule: shrunk.schedule, ..config }.replay_command();
            eprintln!("{what} × {fault}: {} at seed {seed}; shrunk, replay: {replay}", cell(&r).label());
            return seed;
        }
    }
    panic!("{what} × {fault}: not caught within ten seeds");
}

/// Shrinking keeps the failure: the shrunk schedule of a caught control, run again, is still unsafe.
#[test]
fn a_caught_control_shrinks_to_a_schedule_that_still_fails() {
    quorumlab::sim::trace::init_tracing();
    let t = shipped::load("etcd-2-2-1").expect("a shipped topology");
    let options = broken(Strategy::None, Bugs { deadline_from_reply: true, ..Bugs::default() });
    let seed = caught_within_ten_seeds("none +deadline-from-reply", &options, "pause-mid-renewal");
    let scenario = Scenario::find("pause-mid-renewal").expect("a fencing fault");
    let config =
        RunConfig::new(&t, scenario.schedule(&t).expect("applies"), seed).with_fencing(scenario.options(&options));
    let shrunk = matrix::shrink_unsafe(&config, 8);
    assert!(shrunk.runs <= 8);
    let again = run(&RunConfig { schedule: shrunk.schedule.clone(), ..config.clone() });
    assert!(cell(&again).unsafe_for(Strategy::None), "the shrunk schedule {:?} no longer fails", shrunk.schedule);
    let total =
        |s: &quorumlab::sim::schedule::Schedule| s.steps.iter().map(|st| st.duration).sum::<std::time::Duration>();
    assert!(total(&shrunk.schedule) <= total(&config.schedule));
    assert!(again.replay.contains("--bugs deadline-from-reply"), "{}", again.replay);
}

fn broken(strategy: Strategy, bugs: Bugs) -> FencingOptions {
    FencingOptions { bugs, ..FencingOptions::new(strategy) }
}

#[test]
fn negative_control_a_lease_alone_does_not_stop_a_paused_supervisor() {
    quorumlab::sim::trace::init_tracing();
    let seed = caught_within_ten_seeds("none", &FencingOptions::new(Strategy::None), "pause-supervisor");
    assert_eq!(seed, 1);
}

#[test]
fn negative_control_a_primary_that_never_demotes_itself() {
    quorumlab::sim::trace::init_tracing();
    let options = broken(Strategy::None, Bugs { no_self_demotion: true, ..Bugs::default() });
    caught_within_ten_seeds("none +no-self-demotion", &options, "isolate-primary-muted");
}

#[test]
fn negative_control_stonith_or_firewall_with_a_lying_switch_first_never_runs_the_firewall() {
    quorumlab::sim::trace::init_tracing();
    let options = FencingOptions::new(Strategy::StonithOrFirewall);
    caught_within_ten_seeds("stonith|firewall", &options, "lying-stonith");
}

#[test]
fn negative_control_a_fence_driver_that_reports_success_when_unreachable() {
    quorumlab::sim::trace::init_tracing();
    let options = broken(Strategy::Stonith, Bugs { timeout_as_success: true, ..Bugs::default() });
    caught_within_ten_seeds("stonith +timeout-as-success", &options, "isolate-primary-inband");
}

#[test]
fn negative_control_a_firewall_that_keeps_established_connections() {
    quorumlab::sim::trace::init_tracing();
    let options = broken(Strategy::Firewall, Bugs { firewall_keeps_established: true, ..Bugs::default() });
    caught_within_ten_seeds("firewall +firewall-keeps-established", &options, "firewall-sessions");
}

#[test]
fn negative_control_a_firewall_that_confirms_before_its_rule_is_in_force() {
    quorumlab::sim::trace::init_tracing();
    let options = broken(Strategy::Firewall, Bugs { firewall_confirms_early: true, ..Bugs::default() });
    caught_within_ten_seeds("firewall +firewall-confirms-early", &options, "firewall-sessions");
}

#[test]
fn negative_control_a_token_installed_on_too_few_replicas() {
    quorumlab::sim::trace::init_tracing();
    let options = broken(Strategy::Credentials, Bugs { token_on_too_few: true, ..Bugs::default() });
    caught_within_ten_seeds("credentials +token-on-too-few", &options, "resume-in-flight");
}

#[test]
fn negative_control_a_replica_that_checks_the_token_yields_then_appends() {
    quorumlab::sim::trace::init_tracing();
    let options = broken(Strategy::Credentials, Bugs { check_yield_append: true, ..Bugs::default() });
    caught_within_ten_seeds("credentials +check-yield-append", &options, "resume-in-flight");
}

/// A supervisor stopped with its renewal in flight reads the answer late: counted from the answer, its
/// lease outlives the store's by the stop, and the new primary's first writes overlap its last. The
/// correct rule (from the send) is safe in the same run (`correct_configurations_stay_safe_…`).
#[test]
fn negative_control_a_holder_that_counts_its_deadline_from_the_reply() {
    quorumlab::sim::trace::init_tracing();
    let options = broken(Strategy::None, Bugs { deadline_from_reply: true, ..Bugs::default() });
    caught_within_ten_seeds("none +deadline-from-reply", &options, "pause-mid-renewal");
}

/// A primary cut off with the deposed KV leader "renews" by a serializable read there, which still names
/// it: it keeps serving reads after a new primary's writes are acknowledged. With synchronous replication
/// the replicas follow only the primary the store names, so the damage is stale reads, which break
/// self-demotion's promise (the correct rule demotes in the same run).
#[test]
fn negative_control_a_holder_that_trusts_a_serializable_read() {
    quorumlab::sim::trace::init_tracing();
    let options = broken(Strategy::None, Bugs { serializable_renewal: true, ..Bugs::default() });
    caught_within_ten_seeds("none +serializable-renewal", &options, "kv-leader-isolated-with-primary");
}

/// A primary with no replica that drops to asynchronous replication without recording it in the store
/// acknowledges alone while the other side promotes a replica that lacks those writes.
#[test]
fn negative_control_a_primary_that_degrades_to_async_without_the_store() {
    quorumlab::sim::trace::init_tracing();
    let options = FencingOptions {
        degradable: true,
        bugs: Bugs { silent_degrade: true, ..Bugs::default() },
        ..FencingOptions::new(Strategy::None)
    };
    caught_within_ten_seeds("none [degradable] +silent-degrade", &options, "isolate-primary-alone");
}

/// Degrading is a consensus write, and so is coming back: with every replica down the primary records
/// `async:<me>` and keeps serving (strict synchronous mode stops writes instead); when a replica returns it
/// acknowledges through it again and records `sync` once the replica holds every write acknowledged alone.
/// Cut off from the store, it cannot degrade at all.
#[test]
fn a_degradable_primary_degrades_and_recovers_only_through_the_store() {
    quorumlab::sim::trace::init_tracing();
    let t = shipped::load("etcd-2-2-1").expect("a shipped topology");
    // Both replicas down for 6 s; a no-op clock fault keeps the load running 10 s after they return.
    let spec = "db-crash:replica@0s+6s;db-crash:replica@0s+6s;db-clock:primary:100@0s+16s";
    let schedule = quorumlab::sim::schedule::Schedule::parse(spec, &t, std::time::Duration::ZERO).expect("a schedule");
    let degradable = FencingOptions { degradable: true, ..FencingOptions::new(Strategy::None) };
    let r = run(&RunConfig::new(&t, schedule.clone(), 1).with_fencing(degradable));
    let at = |what: &str| r.trace.iter().position(|l| l.contains(what));
    let degraded = at("degraded to asynchronous replication, recorded in the consensus store");
    let streams = at("a replica streams again");
    let again = at("synchronous again, recorded in the consensus store");
    assert!(degraded.is_some() && streams > degraded && again > streams, "{degraded:?} {streams:?} {again:?}");
    let f = r.fencing.as_ref().expect("a fencing run");
    assert_eq!((f.cell, f.promotions.len()), (MatrixCell::Safe, 1), "{:?}", f.promotions);
    assert!(kv_failures(&r).is_empty(), "{:?}", kv_failures(&r));
    let strict = run(&RunConfig::new(&t, schedule, 1).with_fencing(FencingOptions::new(Strategy::None)));
    let strict_acks = strict.fencing.as_ref().expect("a fencing run").acknowledged;
    assert!(f.acknowledged > strict_acks, "degrading kept writes going: {} vs {strict_acks}", f.acknowledged);

    let alone = fencing_run(
        "etcd-2-2-1",
        &FencingOptions { degradable: true, ..FencingOptions::new(Strategy::None) },
        "isolate-primary-alone",
        1,
    );
    assert!(alone.trace.iter().any(|l| l.contains("the consensus store did not take the degrade")));
    assert!(!alone.trace.iter().any(|l| l.contains("degraded to asynchronous")));
    assert!(!cell(&alone).unsafe_for(Strategy::None));
}

/// Failsafe mode: with the consensus store gone but every database host connected, the primary keeps
/// serving while every member answers it, and demotes soon after one dies; without it, it demotes at once.
#[test]
fn in_failsafe_mode_the_primary_serves_through_a_store_outage_until_a_member_stops_answering() {
    quorumlab::sim::trace::init_tracing();
    let demoted_at = |r: &RunRecord| {
        r.trace.iter().find(|l| l.contains("demoted")).and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
    };
    let plain = fencing_run("etcd-2-2-1", &FencingOptions::new(Strategy::None), "consensus-lost-replica-dies", 1);
    let failsafe = FencingOptions { failsafe: true, ..FencingOptions::new(Strategy::None) };
    let kept = fencing_run("etcd-2-2-1", &failsafe, "consensus-lost-replica-dies", 1);
    // The store is lost at 5 s (after the 5 s warm-up: 10 s simulated); the replica dies at 13 s.
    let (plain_at, kept_at) = (demoted_at(&plain).expect("demotes"), demoted_at(&kept).expect("demotes"));
    assert!(plain_at < 8.0, "without failsafe: demoted at {plain_at}");
    assert!((13.0..15.0).contains(&kept_at), "with failsafe: demoted at {kept_at}, after the replica died at 13 s");
    let acks = |r: &RunRecord| r.fencing.as_ref().expect("a fencing run").acknowledged;
    assert!(acks(&kept) > acks(&plain), "{} vs {}", acks(&kept), acks(&plain));
    assert!(!cell(&kept).unsafe_for(Strategy::None));
}

/// A failsafe check that counts a ping that timed out as an answer keeps a primary its peers cannot hear.
#[test]
fn negative_control_a_failsafe_that_counts_timeouts_as_answers() {
    quorumlab::sim::trace::init_tracing();
    let options = FencingOptions {
        failsafe: true,
        bugs: Bugs { failsafe_counts_timeouts: true, ..Bugs::default() },
        ..FencingOptions::new(Strategy::None)
    };
    caught_within_ten_seeds("none [failsafe] +failsafe-counts-timeouts", &options, "isolate-primary-muted");
}

#[test]
fn the_asynchronous_contrast_loses_acknowledged_writes_on_failover() {
    quorumlab::sim::trace::init_tracing();
    let options = FencingOptions { synchronous: false, ..FencingOptions::new(Strategy::None) };
    caught_within_ten_seeds("none [async]", &options, "pause-supervisor");
}

#[test]
fn a_consensus_blip_shorter_than_retry_timeout_fails_over_nobody() {
    quorumlab::sim::trace::init_tracing();
    let r = fencing_run("etcd-2-2-1", &FencingOptions::new(Strategy::None), "consensus-blip", 1);
    let f = r.fencing.as_ref().expect("a fencing run");
    assert_eq!(f.failover_ms, None, "promotions: {:?}", f.promotions);
    assert_eq!(f.promotions.len(), 1, "one primary for the whole run: {:?}", f.promotions);
    assert_eq!(f.cell, MatrixCell::Safe);
}

#[test]
fn with_a_required_watchdog_a_host_that_cannot_arm_one_refuses_leadership() {
    quorumlab::sim::trace::init_tracing();
    let options = FencingOptions { watchdog_available: false, ..FencingOptions::new(Strategy::Watchdog) };
    let r = fencing_run("etcd-2-2-1", &options, "consensus-blip", 1);
    let f = r.fencing.as_ref().expect("a fencing run");
    assert!(f.promotions.is_empty(), "nobody may lead without a watchdog: {:?}", f.promotions);
    assert_eq!(f.acknowledged, 0);
    assert!(r.trace.iter().any(|l| l.contains("supervisor") && l.contains("Candidate")), "they did try");
    assert!(kv_failures(&r).is_empty(), "{:?}", kv_failures(&r));
}

#[test]
fn a_fencing_run_replays_bit_for_bit() {
    quorumlab::sim::trace::init_tracing();
    let options = FencingOptions::new(Strategy::Credentials);
    let a = fencing_run("etcd-2-2-1", &options, "pause-supervisor", 3);
    let b = fencing_run("etcd-2-2-1", &options, "pause-supervisor", 3);
    assert_eq!(a.trace_digest, b.trace_digest, "same seed, different traces");
    assert_eq!(a.fencing.as_ref().map(|f| f.acknowledged), b.fencing.as_ref().map(|f| f.acknowledged));
    assert!(a.replay.starts_with("quorumlab fencing run etcd-2-2-1 --strategy 'credentials'"), "{}", a.replay);
}

/// The whole matrix for etcd-2-2-1 at seed 1, against `tests/fencing-matrix-etcd-2-2-1.md`. About 220 runs:
/// `cargo test --release --test sim_fencing -- --ignored`. `QUORUMLAB_BLESS=1` rewrites the pin.
#[test]
#[ignore]
fn the_fencing_matrix_matches_the_pinned_one() {
    let t = std::sync::Arc::new(shipped::load("etcd-2-2-1").expect("shipped"));
    let (rows, scenarios) = matrix::select(&[], &[]).expect("the whole matrix");
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let m = matrix::run_matrix(&t, rows, scenarios.clone(), &[1], jobs, |_, _| {});
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fencing-matrix-etcd-2-2-1.md");
    let got = m.markdown();
    if std::env::var_os("QUORUMLAB_BLESS").is_some() {
        std::fs::write(&path, &got).expect("write the pin");
    }
    let want = std::fs::read_to_string(&path).expect("the pinned matrix");
    assert_eq!(got, want, "the fencing matrix changed; if on purpose, rerun with QUORUMLAB_BLESS=1");
    assert!(m.violations(&scenarios).is_empty(), "{:?}", m.violations(&scenarios));
}
