//! The same seed must give a bit-identical trace; different seeds must give different traces.

// A simulation replays from its seed only if tokio was built with `--cfg tokio_unstable`
// (.cargo/config.toml sets it; a RUSTFLAGS variable silently replaces that): fail here, clearly.
#[cfg(not(tokio_unstable))]
compile_error!(
    "simulated tests need `--cfg tokio_unstable`; your RUSTFLAGS replaced .cargo/config.toml's. \
     Run with RUSTFLAGS=\"$RUSTFLAGS --cfg tokio_unstable\""
);

use std::time::Duration;

use quorumlab::runtime::for_each_test_seed;
use quorumlab::sim::{SimCluster, SimOptions};

/// Elect, write, cut the leader off, elect again, write, heal; returns the trace.
fn run(seed: u64) -> Vec<String> {
    quorumlab::sim::trace::init_tracing();
    let mut c = SimCluster::new(SimOptions::new(seed, 3));
    let s = c.shared.clone();
    c.client("workload", async move {
        s.initialize(1).await?;
        let leader = s.wait_for_leader_among(&[1, 2, 3], Duration::from_secs(5)).await.ok_or("no leader")?;
        let mut client = s.client();
        for i in 0..15 {
            let r = client.put(format!("k{i}").as_bytes(), b"v").await;
            s.trace.record(format!("client: put k{i} -> {:?}", r.map(|r| r.revision)));
        }
        let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != leader).collect();
        for r in &rest {
            turmoil::partition(s.host(leader), s.host(*r));
        }
        s.trace.record(format!("nemesis: isolate node {leader}"));
        s.wait_for_leader_among(&rest, Duration::from_secs(10)).await.ok_or("no new leader")?;
        for i in 15..25 {
            let r = client.put(format!("k{i}").as_bytes(), b"v").await;
            s.trace.record(format!("client: put k{i} -> {:?}", r.map(|r| r.revision)));
        }
        for r in &rest {
            turmoil::repair(s.host(leader), s.host(*r));
        }
        s.trace.record("nemesis: heal");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let r = client.get(b"k3").await;
        s.trace.record(format!("client: get k3 -> {:?}", r.map(|f| f.map(|f| f.mod_revision))));
        Ok(())
    });
    c.run().unwrap();
    println!("seed {seed}: {} trace lines, digest {:016x}", c.shared.trace.lines().len(), c.shared.trace.digest());
    c.shared.trace.lines()
}

#[test]
fn the_same_seed_replays_a_bit_identical_trace() {
    for_each_test_seed(&[42], "determinism", "the_same_seed_replays", same_seed_twice);
}

fn same_seed_twice(seed: u64) {
    let a = run(seed);
    let b = run(seed);
    assert!(a.len() > 20, "the trace should record elections and client operations: {a:#?}");
    assert!(a.iter().any(|l| l.contains("Leader")), "trace records leadership");
    assert!(a.iter().any(|l| l.contains("client: put")), "trace records client operations");
    if a != b {
        let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        panic!("seed {seed} diverged at line {first}:\n  run 1: {:?}\n  run 2: {:?}", a.get(first), b.get(first));
    }
}

#[test]
fn different_seeds_give_different_traces() {
    for_each_test_seed(&[1], "determinism", "different_seeds", |seed| {
        let next = seed.wrapping_add(1);
        assert_ne!(
            run(seed),
            run(next),
            "seeds {seed} and {next} produced identical traces: the seed is not reaching the simulation"
        );
    });
}

/// Runs one seed with a workload that opens `sessions` client sessions (each draws a client id)
/// and writes ten keys named `{prefix}{i}`, then crashes every node and restarts two, so the next
/// leader is chosen by election timeouts drawn after the workload ran. Returns the trace line of
/// that election.
fn election_after_restart(seed: u64, sessions: usize, prefix: &'static str) -> String {
    quorumlab::sim::trace::init_tracing();
    let mut c = SimCluster::new(SimOptions::new(seed, 3));
    let s = c.shared.clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (s, done) = (s.clone(), done.clone());
        c.client("workload", async move {
            let mut clients: Vec<_> = (0..sessions).map(|_| s.client()).collect();
            s.initialize(1).await?;
            s.wait_for_leader_among(&[1, 2, 3], Duration::from_secs(5)).await.ok_or("no leader")?;
            let client = clients.first_mut().ok_or("no client session")?;
            for i in 0..10 {
                client.put(format!("{prefix}{i}").as_bytes(), b"v").await.map_err(|e| e.to_string())?;
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        });
    }
    let finished = c.run_until(Duration::from_secs(30), |_| done.load(std::sync::atomic::Ordering::SeqCst)).unwrap();
    assert!(finished, "seed {seed}: the workload did not finish");
    for id in 1..=3 {
        c.crash(id);
    }
    // A restarted leader whose vote is committed resumes leading (openraft 0.9), so node 1, the
    // leader `initialize` made, stays down and nodes 2 and 3 race on fresh timeouts.
    for id in 2..=3 {
        c.bounce(id);
    }
    let elected = c.run_until(Duration::from_secs(10), |s| s.leader().is_some_and(|(_, term)| term > 1)).unwrap();
    assert!(elected, "seed {seed}: no leader after restarting every node: {:#?}", c.shared.trace.lines());
    let lines = c.shared.trace.lines();
    let restarted = lines.iter().rposition(|l| l.contains("nemesis: restart node")).unwrap();
    lines[restarted..]
        .iter()
        .find(|l| l.contains(": Leader term"))
        .unwrap_or_else(|| panic!("seed {seed}: no election in the trace after the restart"))
        .clone()
}

/// Elections and the client workload draw from separate random streams of one seed: a workload
/// that opens more client sessions (more client-id draws) and writes other keys must not move an
/// election. The election compared is the first one after the nodes restart, whose timeouts are
/// drawn after the workload's draws; on one shared stream the extra sessions would shift them.
#[test]
fn a_different_client_workload_gives_the_same_election() {
    for_each_test_seed(&[42, 43, 44], "determinism", "a_different_client_workload", |seed| {
        let one = election_after_restart(seed, 1, "a");
        let many = election_after_restart(seed, 6, "b");
        println!("seed {seed}: {one}");
        assert_eq!(one, many, "seed {seed}: the election moved when only the client workload changed");
    });
}
