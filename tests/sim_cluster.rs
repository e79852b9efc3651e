//! A real quorumlab cluster (openraft + sled + tonic) inside turmoil's simulated network.

// A simulation replays from its seed only if tokio was built with `--cfg tokio_unstable`
// (.cargo/config.toml sets it; a RUSTFLAGS variable silently replaces that): fail here, clearly.
#[cfg(not(tokio_unstable))]
compile_error!(
    "simulated tests need `--cfg tokio_unstable`; your RUSTFLAGS replaced .cargo/config.toml's. \
     Run with RUSTFLAGS=\"$RUSTFLAGS --cfg tokio_unstable\""
);

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quorumlab::client::{admin, Client, ClientConfig};
use quorumlab::net::Transport;
use quorumlab::node::PlantedBug;
use quorumlab::runtime::{for_each_test_seed, replay_command, test_seeds};
use quorumlab::sim::history::Recorder;
use quorumlab::sim::{Shared, SimCluster, SimOptions};

const SEC: Duration = Duration::from_secs(1);

fn cluster(seed: u64, n: u64) -> (SimCluster<'static>, Shared) {
    quorumlab::sim::trace::init_tracing();
    let c = SimCluster::new(SimOptions::new(seed, n));
    let s = c.shared.clone();
    (c, s)
}

/// A client whose deadline outlasts a leader change. With the topology's default timing
/// (election timeouts of 1-2 s) seed 11 elects the next leader 3.6 s after the old one crashes;
/// the default 5 s went to an attempt at the crashed leader (2.5 s), "no leader yet" from the
/// others, and a second attempt at the crashed leader, and the write ended "unknown".
fn patient_client(s: &Shared) -> Result<Client, String> {
    let mut cfg = ClientConfig::new(s.endpoints(), Transport::Sim);
    cfg.overall_timeout = cfg.attempt_timeout + Duration::from_millis(4 * s.options.timing.election_timeout_ms_max);
    Client::new(cfg)
}

/// Writes `count` keys `{prefix}{i}` = `v{i}`; returns the acknowledged ones.
async fn write_keys(s: &Shared, prefix: &str, range: std::ops::Range<u32>) -> Result<BTreeMap<String, String>, String> {
    let mut client = patient_client(s)?;
    let mut acked = BTreeMap::new();
    for i in range {
        let (k, v) = (format!("{prefix}{i}"), format!("v{i}"));
        client.put(k.as_bytes(), v.as_bytes()).await.map_err(|e| format!("put {k}: {e}"))?;
        acked.insert(k, v);
    }
    Ok(acked)
}

/// Reads every key back through a linearizable read.
async fn read_all(s: &Shared, acked: &BTreeMap<String, String>) -> Result<(), String> {
    let mut client = patient_client(s)?;
    for (k, v) in acked {
        let got = client.get(k.as_bytes()).await.map_err(|e| format!("get {k}: {e}"))?;
        let got = got.map(|f| String::from_utf8_lossy(&f.value).into_owned());
        if got.as_deref() != Some(v.as_str()) {
            return Err(format!("acknowledged write lost: {k} should be {v:?}, read {got:?}"));
        }
    }
    Ok(())
}

#[test]
fn three_nodes_elect_a_leader_take_writes_and_read_them_back() {
    for_each_test_seed(&[1], "sim_cluster", "three_nodes_elect", three_nodes_take_writes);
}

fn three_nodes_take_writes(seed: u64) {
    let (mut c, s) = cluster(seed, 3);
    c.client("workload", async move {
        s.initialize(1).await?;
        s.wait_for_leader_among(&[1, 2, 3], 5 * SEC).await.ok_or("no leader elected")?;
        let acked = write_keys(&s, "k", 0..20).await?;
        read_all(&s, &acked).await?;
        let mut client = s.client();
        let r = client
            .cas(b"k0", Some(Some(b"v0".to_vec())), None, Some(b"new".to_vec()))
            .await
            .map_err(|e| e.to_string())?;
        assert!(r.succeeded, "cas with the right expectation must succeed");
        let r2 = client
            .cas(b"k0", Some(Some(b"v0".to_vec())), None, Some(b"x".to_vec()))
            .await
            .map_err(|e| e.to_string())?;
        assert!(!r2.succeeded, "cas with a stale expectation must fail");
        assert!(r2.revision > r.revision, "every command gets its own revision");
        let got = client.get(b"k0").await.map_err(|e| e.to_string())?.ok_or("k0 vanished")?;
        assert_eq!(got.value, b"new");
        assert_eq!(got.mod_revision, r.revision, "mod_revision is the revision of the last write");
        client.delete(b"k1").await.map_err(|e| e.to_string())?;
        assert_eq!(client.get(b"k1").await.map_err(|e| e.to_string())?, None);
        Ok(())
    });
    c.run().unwrap();
}

/// 3 nodes; the leader is cut off together with a client host ("beside") that sits next to it.
/// The majority elects a new leader and overwrites a key; nothing sent through the old leader may
/// succeed; after the repair every node converges, every acknowledged write is readable, and the
/// whole client history is linearizable.
#[test]
fn an_isolated_leader_is_replaced_and_cannot_serve_writes_or_reads() {
    for seed in test_seeds(&[7, 8, 9]) {
        let violations = isolated_leader_scenario(seed, None);
        assert!(
            violations.is_empty(),
            "seed {seed}: {violations:#?}\nreplay: {}",
            replay_command(seed, "sim_cluster", "an_isolated_leader_is_replaced")
        );
    }
}

/// Negative control: with stale local reads planted in every node, the same scenario must catch
/// the deposed leader answering a read, and the linearizability checker must reject the history.
#[test]
fn negative_control_a_leader_serving_local_reads_is_caught() {
    for seed in test_seeds(&[7]) {
        let violations = isolated_leader_scenario(seed, Some(PlantedBug::StaleLocalReads));
        let replay = replay_command(seed, "sim_cluster", "negative_control_a_leader_serving_local_reads");
        assert!(violations.iter().any(|v| v.contains("answered a read")), "{violations:#?}\nreplay: {replay}");
        assert!(violations.iter().any(|v| v.contains("not linearizable")), "{violations:#?}\nreplay: {replay}");
    }
}

/// Runs the scenario and returns every violation seen (empty: all good).
fn isolated_leader_scenario(seed: u64, planted_bug: Option<PlantedBug>) -> Vec<String> {
    quorumlab::sim::trace::init_tracing();
    let mut opts = SimOptions::new(seed, 3);
    opts.planted_bug = planted_bug;
    let mut c = SimCluster::new(opts);
    let s = c.shared.clone();
    let rec = Recorder::with_trace(s.trace.clone());
    let violations: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let phase = Arc::new(AtomicU32::new(0));
    let old_leader = Arc::new(AtomicU32::new(0));
    {
        let (s, rec, phase, old_leader) = (s.clone(), rec.clone(), phase.clone(), old_leader.clone());
        c.client("workload", async move {
            s.initialize(1).await?;
            let old = s.wait_for_leader_among(&[1, 2, 3], 5 * SEC).await.ok_or("no leader elected")?;
            let mut client = rec.client(s.client());
            for i in 0..10 {
                client.put(&format!("k{i}"), "before").await.map_err(|e| e.to_string())?;
            }
            let old_term = s.metrics()[&old].current_term;
            let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != old).collect();
            for r in &rest {
                turmoil::partition(s.host(old), s.host(*r));
                turmoil::partition("beside", s.host(*r));
            }
            s.trace.record(format!("nemesis: isolate leader {old} with client host beside"));
            let applied_at_cut = s.applied(old);
            old_leader.store(old as u32, Ordering::SeqCst);
            // The new leader is looked for among every node, the isolated one included: it must be
            // elected at a higher term, and it must not be the node that was cut off.
            let mut elected = None;
            s.wait_for(10 * SEC, |s| {
                elected = s.leader().filter(|(_, term)| *term > old_term);
                elected.is_some()
            })
            .await;
            let (new, new_term) = elected.ok_or(format!("no leader above term {old_term} within 10 s"))?;
            if new == old {
                return Err(format!("the isolated node {old} leads again, at term {new_term}"));
            }
            // Overwrite keys the old leader still holds, so a stale read would show.
            for i in 0..10 {
                client.put(&format!("k{i}"), "after").await.map_err(|e| e.to_string())?;
            }
            phase.store(1, Ordering::SeqCst);
            while phase.load(Ordering::SeqCst) != 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            // Cut off, the old leader may have appended the write sent beside it, but never
            // committed or applied anything more.
            if s.applied(old) != applied_at_cut {
                let now = s.applied(old);
                return Err(format!("isolated old leader {old} applied past {applied_at_cut:?} to {now:?}"));
            }
            for r in &rest {
                turmoil::repair(s.host(old), s.host(*r));
                turmoil::repair("beside", s.host(*r));
            }
            s.trace.record("nemesis: heal");
            if !s.wait_for(20 * SEC, Shared::converged).await {
                let applied: Vec<_> = s.metrics().values().map(|m| m.last_applied).collect();
                return Err(format!("nodes did not converge after repair: {applied:?}"));
            }
            for i in 0..10 {
                let key = format!("k{i}");
                let got = client.get(&key).await.map_err(|e| e.to_string())?;
                if got.as_ref().map(|f| f.value.as_slice()) != Some(b"after".as_slice()) {
                    return Err(format!("acknowledged write lost: {key} should be \"after\", read {got:?}"));
                }
            }
            // Healed, the old leader has learned the new term, so it no longer leads its old one
            // (it may lead a later term, after an election of its own).
            let m = s.metrics()[&old].clone();
            if m.current_term < new_term {
                return Err(format!(
                    "old leader {old} did not step down after the heal: {:?} at term {}, new leader {new} at {new_term}",
                    m.state, m.current_term
                ));
            }
            // The write sent through the old leader never reached a quorum: it is not readable.
            if client.get("minority").await.map_err(|e| e.to_string())?.is_some() {
                return Err("a write through the isolated leader became visible".into());
            }
            Ok(())
        });
    }
    {
        let (s, rec, violations) = (s.clone(), rec.clone(), violations.clone());
        c.client("beside", async move {
            while phase.load(Ordering::SeqCst) != 1 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let old = u64::from(old_leader.load(Ordering::SeqCst));
            let mut beside = rec.client(s.client_of(&[old]));
            if let Ok(r) = beside.put("minority", "x").await {
                let v = format!("isolated old leader {old} acknowledged a write at revision {}", r.revision);
                violations.lock().unwrap().push(v);
            }
            if let Ok(found) = beside.get("k0").await {
                let v = found.map(|f| String::from_utf8_lossy(&f.value).into_owned());
                let v =
                    format!("isolated old leader {old} answered a read of k0: {v:?} (the majority wrote \"after\")");
                violations.lock().unwrap().push(v);
            }
            phase.store(2, Ordering::SeqCst);
            Ok(())
        });
    }
    if let Err(e) = c.run() {
        violations.lock().unwrap().push(format!("simulation failed: {e}"));
    }
    let mut v = violations.lock().unwrap().clone();
    v.extend(check_history(&rec, "isolated-leader", seed));
    v
}

/// Checks a recorded history; a violation says why and where the history was saved.
fn check_history(rec: &Recorder, scenario: &str, seed: u64) -> Option<String> {
    match rec.check() {
        Ok(v) if v.is_linearizable() => None,
        Ok(v) => {
            let path = std::env::temp_dir().join(format!("quorumlab-{scenario}-seed-{seed}.jsonl"));
            let saved = match rec.write_jsonl(&path) {
                Ok(()) => format!("history saved; explain it with: quorumlab check {}", path.display()),
                Err(e) => format!("could not save the history: {e}"),
            };
            let why = v.violation().map(|(p, v)| format!("{p:?}: {v:?}")).unwrap_or_default();
            Some(format!("client history not linearizable ({saved}): {why}"))
        }
        Err(e) => Some(format!("checker error: {e}")),
    }
}

/// Runs `scenario` with a planted bug on seeds 1 to 10 (or `QUORUMLAB_SEED` alone) until one of
/// its violations is one that `caught` recognises; prints and returns that seed.
fn first_seed_that_catches(
    bug: PlantedBug,
    test_name: &str,
    mut scenario: impl FnMut(u64) -> Vec<String>,
    caught: impl Fn(&str) -> bool,
) -> u64 {
    let seeds = test_seeds(&(1..=10).collect::<Vec<_>>());
    let mut missed = Vec::new();
    for &seed in &seeds {
        let violations = scenario(seed);
        if let Some(v) = violations.iter().find(|v| caught(v)) {
            println!("planted bug {bug:?} caught by seed {seed}: {v}\nall it saw: {violations:#?}");
            println!("replay: {}", replay_command(seed, "sim_cluster", test_name));
            return seed;
        }
        missed.push((seed, violations));
    }
    panic!("planted bug {bug:?} went unnoticed on seeds {seeds:?}; what each seed saw instead: {missed:#?}")
}

/// Negative control: a leader that acknowledges a write once it has appended it locally, before
/// a majority holds it. Cut off with a client beside it, it acknowledges the client's write,
/// which the majority never sees; the scenario or the history checker must notice.
#[test]
fn negative_control_a_leader_acknowledging_before_a_majority_is_caught() {
    let bug = PlantedBug::AckBeforeMajority;
    first_seed_that_catches(
        bug,
        "negative_control_a_leader_acknowledging",
        |seed| isolated_leader_scenario(seed, Some(bug)),
        |v| {
            v.contains("acknowledged a write")
                || v.contains("acknowledged write lost")
                || v.contains("not linearizable")
        },
    );
}

/// 3 nodes; a writer's requests still reach the leader but the leader's answers to it are cut
/// (a one-way partition), so its write commits while the client hears nothing and times out.
/// The client must report that write as unknown, never failed: after the heal another client
/// reads it, and the whole history must be linearizable.
#[test]
fn a_write_whose_answer_is_lost_is_reported_unknown_not_failed() {
    for seed in test_seeds(&[1, 2, 3]) {
        let violations = lost_answer_scenario(seed, None);
        assert!(
            violations.is_empty(),
            "seed {seed}: {violations:#?}\nreplay: {}",
            replay_command(seed, "sim_cluster", "a_write_whose_answer_is_lost")
        );
    }
}

/// Negative control: a client library that reports a timed-out write as failed. The write
/// applied, so a history with it as `fail` and a later read of its value is not linearizable.
#[test]
fn negative_control_a_client_reporting_a_timed_out_write_as_failed_is_caught() {
    let bug = PlantedBug::ClientReportsTimeoutAsFailed;
    first_seed_that_catches(
        bug,
        "negative_control_a_client_reporting",
        |seed| lost_answer_scenario(seed, Some(bug)),
        |v| v.contains("not linearizable"),
    );
}

/// Runs the lost-answer scenario with `client_bug` planted in the writer's client library;
/// returns every violation seen (empty: all good).
fn lost_answer_scenario(seed: u64, client_bug: Option<PlantedBug>) -> Vec<String> {
    quorumlab::sim::trace::init_tracing();
    let mut c = SimCluster::new(SimOptions::new(seed, 3));
    let s = c.shared.clone();
    let rec = Recorder::with_trace(s.trace.clone());
    {
        let (s, rec) = (s.clone(), rec.clone());
        c.client("writer", async move {
            s.initialize(1).await?;
            let leader = s.wait_for_leader_among(&[1, 2, 3], 5 * SEC).await.ok_or("no leader elected")?;
            let mut cfg = ClientConfig::new(s.endpoints(), Transport::Sim);
            cfg.planted_bug = client_bug;
            let mut writer = rec.client(Client::new(cfg)?);
            // Connects the writer to the leader, so the write below goes straight to it.
            writer.put("k", "first").await.map_err(|e| e.to_string())?;
            turmoil::partition_oneway(s.host(leader), "writer");
            s.trace.record(format!("nemesis: cut leader {leader}'s answers to the writer"));
            let outcome = writer.put("k", "second").await;
            turmoil::repair_oneway(s.host(leader), "writer");
            s.trace.record("nemesis: heal");
            if let Ok(r) = outcome {
                return Err(format!("the write was acknowledged at {} although its answers were cut", r.revision));
            }
            let mut reader = rec.client(s.client());
            let got = reader.get("k").await.map_err(|e| e.to_string())?;
            if got.as_ref().map(|f| f.value.as_slice()) != Some(b"second".as_slice()) {
                return Err(format!("the write whose answer was lost did not apply (read {got:?}): nothing tested"));
            }
            Ok(())
        });
    }
    let mut violations = Vec::new();
    if let Err(e) = c.run() {
        violations.push(format!("simulation failed: {e}"));
    }
    violations.extend(check_history(&rec, "lost-answer", seed));
    violations
}

/// Crash a follower, keep writing, restart it; then crash the leader, keep writing, restart it.
/// With a snapshot every 50 entries the restarted nodes must catch up across purged logs.
#[test]
fn crashed_follower_and_leader_restart_and_catch_up_without_losing_writes() {
    for_each_test_seed(&[11], "sim_cluster", "crashed_follower_and_leader", crash_and_restart);
}

fn crash_and_restart(seed: u64) {
    quorumlab::sim::trace::init_tracing();
    let mut opts = SimOptions::new(seed, 3);
    opts.snapshot_every = 50;
    opts.logs_kept_after_snapshot = 10;
    let mut c = SimCluster::new(opts);
    let s = c.shared.clone();
    let phase = Arc::new(AtomicU32::new(0));
    let acked: Arc<std::sync::Mutex<BTreeMap<String, String>>> = Arc::default();
    {
        let (s, phase, acked) = (s.clone(), phase.clone(), acked.clone());
        c.client("workload", async move {
            s.initialize(1).await?;
            s.wait_for_leader_among(&[1, 2, 3], 5 * SEC).await.ok_or("no leader elected")?;
            for round in 0..4u32 {
                let got = write_keys(&s, &format!("r{round}-"), 0..120).await?;
                acked.lock().unwrap().extend(got);
                phase.store(round + 1, Ordering::SeqCst);
                // Wait for the test to crash or restart a node before the next round.
                while phase.load(Ordering::SeqCst) == round + 1 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            let all = acked.lock().unwrap().clone();
            read_all(&s, &all).await
        });
    }
    let wait_phase = |c: &mut SimCluster, p: u32| {
        let ph = phase.clone();
        assert!(c.run_until(60 * SEC, move |_| ph.load(Ordering::SeqCst) == p).unwrap(), "phase {p} not reached");
    };
    let follower = |s: &Shared| {
        let (leader, _) = s.leader().expect("a leader");
        if leader == 1 {
            2
        } else {
            1
        }
    };
    // Round 1 done: crash a follower.
    wait_phase(&mut c, 1);
    let f = follower(&s);
    c.crash(f);
    phase.store(10, Ordering::SeqCst);
    // Round 2 done (written without the follower, log purged behind snapshots): restart it.
    wait_phase(&mut c, 2);
    c.bounce(f);
    c.run_until_caught_up(f, 30 * SEC).unwrap();
    let fm = s.metrics()[&f].clone();
    assert!(fm.snapshot.is_some(), "follower {f} should have caught up by snapshot: {fm:?}");
    phase.store(20, Ordering::SeqCst);
    // Round 3 done: crash the leader; a new one must take over for round 4.
    wait_phase(&mut c, 3);
    let (leader, _) = s.leader().expect("a leader");
    c.crash(leader);
    phase.store(30, Ordering::SeqCst);
    wait_phase(&mut c, 4);
    c.bounce(leader);
    c.run_until_caught_up(leader, 30 * SEC).unwrap();
    phase.store(40, Ordering::SeqCst);
    c.run().unwrap();
    // The workload read every acknowledged write back through the leader; each node must also
    // hold them itself, the two restarted ones included.
    assert!(c.run_until(30 * SEC, Shared::converged).unwrap(), "nodes did not converge: {:?}", s.metrics());
    let acked = acked.lock().unwrap().clone();
    let nodes = s.nodes.lock().unwrap().clone();
    assert_eq!(nodes.len(), 3, "every node should be running at the end");
    for (id, node) in &nodes {
        for (k, v) in &acked {
            let got = node.reader.get(k.as_bytes()).unwrap().map(|(v, _)| v);
            assert_eq!(got.as_deref(), Some(v.as_bytes()), "node {id} lost acknowledged write {k}");
        }
    }
}

/// A node whose disk is wiped comes back empty and is brought up to date by snapshot.
///
/// A wiped voter has also forgotten its vote, so it could vote twice in one term: Raft assumes
/// stable storage. This test keeps the leader stable; it checks catch-up, not amnesia safety.
#[test]
fn a_wiped_follower_catches_up_by_snapshot() {
    for_each_test_seed(&[5], "sim_cluster", "a_wiped_follower", wiped_follower);
}

fn wiped_follower(seed: u64) {
    quorumlab::sim::trace::init_tracing();
    let mut opts = SimOptions::new(seed, 3);
    opts.snapshot_every = 40;
    opts.logs_kept_after_snapshot = 5;
    let mut c = SimCluster::new(opts);
    let s = c.shared.clone();
    {
        let s = s.clone();
        c.client("workload", async move {
            s.initialize(1).await?;
            s.wait_for_leader_among(&[1, 2, 3], 5 * SEC).await.ok_or("no leader")?;
            write_keys(&s, "k", 0..100).await?;
            Ok(())
        });
    }
    // Runs until the workload has finished: every write below is acknowledged.
    c.run().unwrap();
    let f = {
        let (l, _) = s.leader().unwrap();
        if l == 3 {
            2
        } else {
            3
        }
    };
    // The leader must have purged the log the wiped node needs, or it could catch up by plain
    // replication and this test would not exercise snapshots at all.
    let (leader, _) = s.leader().unwrap();
    let purged = s.metrics()[&leader].purged.map(|l| l.index);
    c.crash(f);
    c.wipe(f).unwrap();
    c.bounce(f);
    c.run_until_caught_up(f, 30 * SEC).unwrap();
    let fm = s.metrics()[&f].clone();
    let installed = fm.snapshot.map(|l| l.index);
    assert!(installed.is_some(), "wiped node {f} caught up without installing a snapshot: {fm:?}");
    assert!(purged.is_some(), "leader {leader} had not purged its log, so no snapshot was needed");
    assert!(installed >= purged, "node {f}'s snapshot (up to {installed:?}) misses entries purged up to {purged:?}");
    let reader = s.nodes.lock().unwrap()[&f].reader.clone();
    for i in 0..100 {
        let (v, _) =
            reader.get(format!("k{i}").as_bytes()).unwrap().unwrap_or_else(|| panic!("k{i} missing on wiped node"));
        assert_eq!(v, format!("v{i}").into_bytes());
    }
}

/// Membership changes through the admin service: start with voters 1-3, add node 4 as a learner
/// (it catches up), make it a voter, then remove node 1. Writes keep working, node 4 holds every
/// write, and node 1 is out of the voter set.
#[test]
fn a_learner_joins_becomes_a_voter_and_an_old_voter_leaves() {
    for_each_test_seed(&[21], "sim_cluster", "a_learner_joins", learner_joins);
}

fn learner_joins(seed: u64) {
    quorumlab::sim::trace::init_tracing();
    let mut c = SimCluster::new(SimOptions::new(seed, 4));
    let s = c.shared.clone();
    c.client("workload", async move {
        s.initialize_with(1, &[1, 2, 3]).await?;
        let leader = s.wait_for_leader_among(&[1, 2, 3], 5 * SEC).await.ok_or("no leader elected")?;
        let mut acked = write_keys(&s, "a", 0..20).await?;
        let via = s.endpoint(leader);
        admin::add_learner(Transport::Sim, &via, 4, &s.endpoint(4), true, 10 * SEC).await?;
        admin::change_membership(Transport::Sim, &via, &[1, 2, 3, 4], false, 10 * SEC).await?;
        acked.extend(write_keys(&s, "b", 0..20).await?);
        // Removing node 1 may remove the leader itself; go through whoever leads now.
        let leader = s.wait_for_leader_among(&[1, 2, 3, 4], 5 * SEC).await.ok_or("no leader")?;
        admin::change_membership(Transport::Sim, &s.endpoint(leader), &[2, 3, 4], false, 10 * SEC).await?;
        let leader = s.wait_for_leader_among(&[2, 3, 4], 10 * SEC).await.ok_or("no leader among 2-4")?;
        acked.extend(write_keys(&s, "c", 0..20).await?);
        read_all(&s, &acked).await?;
        let voters: Vec<u64> = s.metrics()[&leader].membership_config.membership().voter_ids().collect();
        if voters != [2, 3, 4] {
            return Err(format!("voters should be [2, 3, 4], are {voters:?}"));
        }
        let four = s.nodes.lock().unwrap()[&4].reader.clone();
        if !s.wait_for(5 * SEC, |_| four.applied_index() >= s.max_applied()).await {
            return Err("node 4 did not catch up".into());
        }
        for k in acked.keys() {
            if four.get(k.as_bytes()).map_err(|e| e.to_string())?.is_none() {
                return Err(format!("node 4 is missing {k}"));
            }
        }
        Ok(())
    });
    c.run().unwrap();
}
