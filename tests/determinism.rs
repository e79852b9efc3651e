//! The same seed must give a bit-identical trace; different seeds must give different traces.

use std::time::Duration;

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
    let a = run(42);
    let b = run(42);
    assert!(a.len() > 20, "the trace should record elections and client operations: {a:#?}");
    assert!(a.iter().any(|l| l.contains("Leader")), "trace records leadership");
    assert!(a.iter().any(|l| l.contains("client: put")), "trace records client operations");
    if a != b {
        let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        panic!(
            "seed 42 diverged at line {first}:\n  run 1: {:?}\n  run 2: {:?}\nreplay with: cargo test --test determinism",
            a.get(first),
            b.get(first)
        );
    }
}

#[test]
fn different_seeds_give_different_traces() {
    assert_ne!(run(1), run(2), "two seeds produced identical traces: the seed is not reaching the simulation");
}
