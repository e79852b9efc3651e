//! The partition suite on real processes: `quorumlab node` processes in network namespaces, cut by nftables,
//! killed by SIGKILL, judged by the same checks as the simulator. These tests need root, iproute2 and nftables;
//! elsewhere each says SKIPPED and why (`.ci/run` installs the tools, and CI runs as root).
//!
//! The deep ones are `#[ignore]`d: the sim-vs-real agreement over every single fault of `etcd-2-2-1` and
//! `etcd-3`, and fifty `kill -9` cycles under load (`cargo test --release --test real_partitions -- --ignored
//! --nocapture`).
#![allow(clippy::disallowed_methods, reason = "real processes run in wall time: deadlines and figures use it")]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quorumlab::real::run::{run, RealOptions};
use quorumlab::sim::invariants::availability;
use quorumlab::sim::run::{RunConfig, RunRecord, PROPERTIES};
use quorumlab::sim::schedule::Schedule;
use quorumlab::suite::{matrix, FAULT_DURATION};
use quorumlab_quorum::{predict_with_leader, shipped, Availability, Connectivity, FaultShape, RaftVariant};

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quorumlab"))
}

/// `None` (after saying SKIPPED) where real mode cannot run. With `QUORUMLAB_REQUIRE_REAL=1` (set by `.ci/run`
/// once it has installed the tools as root) a machine that cannot run it fails instead: CI never passes by
/// skipping.
fn real_mode() -> Option<RealOptions> {
    match quorumlab::real::available() {
        Ok(()) => Some(RealOptions { exe: exe(), planted_bug: None }),
        Err(why) if std::env::var("QUORUMLAB_REQUIRE_REAL").is_ok_and(|v| v == "1") => {
            panic!("QUORUMLAB_REQUIRE_REAL=1, but real mode cannot run here: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

fn config(topology: &str, schedule: &str, seed: u64) -> RunConfig {
    let t = shipped::load(topology).expect("shipped topology");
    let schedule = Schedule::parse(schedule, &t, FAULT_DURATION).expect("schedule");
    RunConfig::new(&t, schedule, seed)
}

/// Namespaces on this machine whose names this process's labs would use.
fn my_namespaces(pid: u32) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.starts_with(&format!("quorumlab-{pid}.")))
        .map(str::to_string)
        .collect()
}

fn explain(r: &RunRecord) -> String {
    format!(
        "{:?}\nreplay: {}\ntrace tail:\n{}",
        r.failures(),
        r.replay,
        r.trace.iter().rev().take(30).rev().cloned().collect::<Vec<_>>().join("\n")
    )
}

/// A cut dc1–dc2 on etcd-2-2-1, where dc3 sees both sides: the dc1 leader keeps its majority through dc3, so
/// dc1 writes and dc2 cannot, exactly as the oracle (and the simulator) say. The rules are really in force
/// during the fault, and nothing of the lab is left afterwards.
#[test]
fn a_real_cut_is_judged_as_the_oracle_predicts() {
    let Some(options) = real_mode() else { return };
    let r = run(&config("etcd-2-2-1", "cut:dc1:dc2@0ms+14s", 1), &options).expect("a real run");
    assert!(r.passed(), "{}", explain(&r));
    let predicted: Vec<(String, Availability, bool)> =
        r.availability.iter().map(|(_, v)| (v.dc.clone(), v.predicted, v.agree)).collect();
    assert_eq!(
        predicted,
        vec![("dc1".into(), Availability::Available, true), ("dc2".into(), Availability::Unavailable, true)]
    );
    let dc2 = &r.availability[1].1.observed;
    assert!(dc2.writes > 0 && dc2.acked == 0, "dc2 must try to write and fail: {dc2:?}");
    assert!(
        r.trace.iter().any(|l| l.contains("nftables: 18 directed cuts in force")),
        "dc1's 2 nodes and client cut from dc2's 2 nodes and client, both ways (3 × 3 × 2, client↔client \
         included), and read back from every namespace: {:?}",
        r.trace.iter().filter(|l| l.contains("nftables")).collect::<Vec<_>>()
    );
    assert!(r.operations > 100, "the load ran: {} operations", r.operations);
    // Other tests in this process run labs of their own: look for this run's only.
    let run_id = r
        .trace
        .iter()
        .find_map(|l| l.split("cluster up in lab ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .expect("the trace names the lab")
        .to_string();
    let left: Vec<String> = my_namespaces(std::process::id())
        .into_iter()
        .filter(|ns| ns.starts_with(&format!("quorumlab-{run_id}-")))
        .collect();
    assert!(left.is_empty(), "the lab removed its namespaces: {left:?}");

    // Negative control for real mode's availability check: the same real history, judged against plain Raft's
    // prediction (dc2 elects through dc3 and writes), must disagree.
    let cfg = config("etcd-2-2-1", "cut:dc1:dc2@0ms+14s", 1);
    let mut cut = Connectivity::full_mesh(&cfg.topology);
    FaultShape::CutDcLink { a: "dc1".into(), b: "dc2".into() }.apply_to(&cfg.topology, &mut cut).expect("a cut");
    let plain: Vec<_> = r
        .windows
        .iter()
        .map(|w| availability::Window {
            prediction: w
                .prediction
                .as_ref()
                .map(|_| predict_with_leader(&cfg.topology, &cut, RaftVariant::Plain, w.leader)),
            ..w.clone()
        })
        .collect();
    let history = r.history.as_ref().expect("history");
    let judged = availability::compare(&plain, history, &r.tags, cfg.settle(), cfg.workload.op_timeout);
    assert!(judged.iter().any(|(_, v)| v.dc == "dc2" && !v.agree), "plain Raft's prediction must fail: {judged:?}");

    // Negative control for the agreement table: a run set against itself agrees; against a copy whose history
    // was lost, every row differs.
    assert!(quorumlab::real::agreement::compare(&cfg, &r, &r).iter().all(|row| row.agree));
    let lost = RunRecord { history: None, ..r.clone() };
    let rows = quorumlab::real::agreement::compare(&cfg, &r, &lost);
    assert!(!rows.is_empty() && rows.iter().all(|row| !row.agree), "{rows:?}");
}

/// Negative control: nodes planted with stale local reads, the leader's datacenter isolated. The old leader
/// answers its own datacenter's reads from local state while the majority elects another leader and writes:
/// real mode's linearizability check must fail the run.
#[test]
fn stale_reads_on_real_processes_are_caught() {
    let Some(mut options) = real_mode() else { return };
    options.planted_bug = Some("stale-local-reads".into());
    let r = run(&config("etcd-2-2-1", "isolate:leader-dc@0ms+14s", 1), &options).expect("a real run");
    assert!(r.verdicts[PROPERTIES[1]].failed(), "stale reads must fail linearizability: {:?}", r.verdicts);
}

/// A cluster that never comes up (the nodes' executable exits at once) fails the run as a set-up failure, with
/// the lab gone and the clients told to stop, instead of hanging or passing.
#[test]
fn a_cluster_that_never_starts_fails_as_set_up() {
    let Some(mut options) = real_mode() else { return };
    options.exe = PathBuf::from("/bin/false");
    let r = run(&config("etcd-3", "crash:leader@0ms+2s", 1), &options).expect("the run is made, and fails");
    assert!(!r.passed());
    let liveness = format!("{:?}", r.verdicts[PROPERTIES[3]]);
    assert!(liveness.contains("could not be set up"), "{liveness}");
}

/// Ctrl-C during a real run: the handler removes the lab's namespaces and kills its node processes.
#[test]
fn ctrl_c_removes_the_lab_and_its_processes() {
    let Some(_) = real_mode() else { return };
    let mut child = Command::new(exe())
        .args(["suite", "etcd-3", "--real", "--faults", "crash:leader", "--seed", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("quorumlab suite --real");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut nodes: Vec<i32> = Vec::new();
    while nodes.len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        nodes = my_namespaces(pid)
            .iter()
            .flat_map(|ns| {
                let out = Command::new("ip").args(["netns", "pids", ns]).output().expect("ip netns pids");
                String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
    }
    assert!(nodes.len() >= 3, "the run started its 3 nodes in their namespaces: {nodes:?}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "the handler exits 130");
    assert!(my_namespaces(pid).is_empty(), "namespaces left: {:?}", my_namespaces(pid));
    for node in nodes {
        // Reaped by the handler's SIGKILL and by init, the pid is gone (or a zombie of nobody's we can ignore).
        let alive = std::fs::read_to_string(format!("/proc/{node}/stat")).is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "node process {node} outlived the interrupted run");
    }
}

/// A lab dropped while a panic unwinds takes its namespaces with it.
#[test]
fn a_panic_leaves_no_namespace_behind() {
    let Some(_) = real_mode() else { return };
    let hosts = vec!["panic-a".to_string(), "panic-b".to_string()];
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let inner = seen.clone();
    let joined = std::thread::spawn(move || {
        let lab = quorumlab::real::lab::Lab::create(&hosts).expect("lab");
        *inner.lock().unwrap() = lab.namespaces();
        panic!("a test fails while its lab is up");
    })
    .join();
    assert!(joined.is_err());
    let names = seen.lock().unwrap().clone();
    assert_eq!(names.len(), 3, "hub and two hosts: {names:?}");
    let now = my_namespaces(std::process::id());
    assert!(names.iter().all(|n| !now.contains(n)), "left behind: {now:?}");
}

/// A `kill -9`ed run leaves namespaces (and a process inside one); the next lab removes them, and only them: a
/// namespace that is not a quorumlab run's, and one whose owner is alive, stay.
#[test]
fn leftovers_of_a_dead_run_are_cleaned_and_nothing_else() {
    let Some(_) = real_mode() else { return };
    // A dead owner: a process that has exited (its pid and start time no longer match a live process).
    let mut gone = Command::new("true").spawn().expect("true");
    let dead_pid = gone.id();
    gone.wait().expect("wait");
    let dead = format!("quorumlab-{dead_pid}.1.0-dc1-n1");
    let foreign = format!("quorumlab-not-a-run-{}", std::process::id());
    let other = format!("somebody-else-{}", std::process::id());
    for ns in [&dead, &foreign, &other] {
        assert!(Command::new("ip").args(["netns", "add", ns]).status().expect("ip").success(), "{ns}");
    }
    let mut sleeper = Command::new("ip").args(["netns", "exec", &dead, "sleep", "600"]).spawn().expect("sleep");
    std::thread::sleep(Duration::from_millis(300));
    let live = quorumlab::real::lab::Lab::create(&["alive-a".to_string()]).expect("a live lab");
    let cleaned = quorumlab::real::lab::clean_leftovers();
    let list =
        String::from_utf8_lossy(&Command::new("ip").args(["netns", "list"]).output().expect("ip").stdout).to_string();
    let exists = |ns: &str| list.lines().any(|l| l.split_whitespace().next() == Some(ns));
    let sleeper_done = sleeper.try_wait().expect("try_wait");
    for ns in [&foreign, &other] {
        let _ = Command::new("ip").args(["netns", "del", ns]).status();
    }
    let _ = sleeper.kill();
    assert!(!exists(&dead), "the dead run's namespace was removed (cleaned by Lab::create: {cleaned:?})");
    assert!(sleeper_done.is_some(), "the process inside it was killed");
    assert!(exists(&foreign) && exists(&other), "foreign namespaces stay:\n{list}");
    assert!(live.namespaces().len() == 2, "a live lab is never a leftover: {:?}", live.namespaces());
}

/// R1 from the real side: fifty `kill -9`s of the leader (and, every fifth, of a follower) under load, each
/// restarted from its data directory, and no acknowledged write lost: every key is read at the end, so a lost
/// write would fail linearizability. A killed leader stays down 4 s, longer than a failover (its lease, then an
/// election timeout), so every leader kill forces an election: a leader back within the lease would simply lead
/// on in its old term, and the test would never see a new leader take over with acknowledged writes in flight.
#[test]
#[ignore = "about 6 minutes of wall time: cargo test --release --test real_partitions -- --ignored --nocapture"]
fn fifty_kill_nines_lose_no_acknowledged_write() {
    let Some(options) = real_mode() else { return };
    let steps: Vec<String> = (0..50)
        .map(|i| {
            let target = if i % 5 == 4 { "follower" } else { "leader" };
            format!("crash:{target}@{}ms+4s", i * 6500)
        })
        .collect();
    let t = shipped::load("etcd-2-2-1").expect("shipped");
    let schedule = Schedule::parse(&steps.join(";"), &t, FAULT_DURATION).expect("schedule");
    let started = Instant::now();
    let r = run(&RunConfig::new(&t, schedule, 1), &options).expect("a real run");
    let kills = r.trace.iter().filter(|l| l.contains("real: SIGKILL")).count();
    let restarts = r.trace.iter().filter(|l| l.contains("from its data directory")).count();
    let history = r.history.as_ref().expect("history");
    let acked_writes =
        history.events.iter().filter(|e| e.kind == quorumlab_check::EventKind::Ok && e.f != "get").count();
    println!(
        "{kills} kill -9s, {restarts} restarts, {} operations ({acked_writes} acknowledged writes), {} leader terms, \
         {:.0} s wall time; verdicts {:?}",
        r.operations,
        r.highest_term,
        started.elapsed().as_secs_f64(),
        r.verdicts
    );
    assert_eq!(kills, 50);
    assert_eq!(restarts, 50);
    assert!(r.highest_term > 30, "40 leader kills must force elections: highest term {}", r.highest_term);
    assert!(r.passed(), "{}", explain(&r));
}

/// Sim-vs-real agreement: every single fault of etcd-2-2-1 and etcd-3 (latency faults excepted: no netem
/// here), run both ways; every window and client datacenter must read the same, or differ only where the oracle
/// allows either outcome or does not model the fault, with the reason printed.
#[test]
#[ignore = "about 12 minutes of wall time: cargo test --release --test real_partitions -- --ignored --nocapture"]
fn simulator_and_real_processes_agree_on_every_single_fault() {
    let Some(options) = real_mode() else { return };
    let topologies: Vec<Arc<quorumlab_quorum::Topology>> =
        ["etcd-2-2-1", "etcd-3"].iter().map(|n| Arc::new(shipped::load(n).expect("shipped"))).collect();
    let cases = matrix(&topologies, None, &[], &[1]).expect("matrix");
    let cases: Vec<_> = cases.into_iter().filter(|c| quorumlab::real::run::unsupported(&c.config).is_none()).collect();
    let mut tables = Vec::new();
    let mut unexplained = Vec::new();
    for case in &cases {
        let sim = quorumlab::sim::run::run(&case.config);
        let real = run(&case.config, &options).expect("a real run");
        let rows = quorumlab::real::agreement::compare(&case.config, &sim, &real);
        for row in rows.iter().filter(|r| !r.agree) {
            if !(row.predicted == "either" || row.predicted == "not modelled") {
                unexplained.push(format!("{} / {}: {}", case.name, row.dc, row.why));
            }
        }
        if !real.passed() {
            unexplained.push(format!("{}: the real run failed: {}", case.name, explain(&real)));
        }
        tables.push((case.name.clone(), rows));
    }
    println!("{}", quorumlab::real::agreement::markdown(&tables));
    assert!(unexplained.is_empty(), "{unexplained:#?}");
}
