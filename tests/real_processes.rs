//! Real `quorumlab node` processes on 127.0.0.1: kill the leader with SIGKILL, lose nothing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use quorumlab::client::{admin, Client, ClientConfig};
use quorumlab::local::{free_addrs, poll, LocalCluster};
use quorumlab::net::Transport;

const EXE: &str = env!("CARGO_BIN_EXE_quorumlab");
const SEC: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_survive_a_sigkilled_leader_and_the_restarted_node_catches_up() {
    let args = ["--heartbeat-ms", "50", "--election-timeout-ms", "300", "--snapshot-every", "64"];
    let mut cluster = LocalCluster::start(Path::new(EXE), free_addrs(3).unwrap(), None, &args, true).unwrap();
    cluster.wait_listening(20 * SEC).await.unwrap();
    let endpoints = cluster.endpoints().join(",");
    let init = Command::new(EXE).args(["cluster", "init", "--endpoints", &endpoints]).output().unwrap();
    assert!(init.status.success(), "cluster init failed: {}", String::from_utf8_lossy(&init.stderr));
    let leader = cluster.wait_for_leader(&[1, 2, 3], 10 * SEC).await.unwrap();

    let mut cfg = ClientConfig::new(cluster.endpoints(), Transport::Tcp);
    cfg.overall_timeout = 10 * SEC;
    let mut client = Client::new(cfg).unwrap();
    for i in 0..200 {
        client.put(format!("key-{i}").as_bytes(), format!("value-{i}").as_bytes()).await.unwrap();
    }

    let old_term = admin::status(Transport::Tcp, &cluster.addrs[&leader], SEC).await.unwrap().current_term;
    // SIGKILL: no clean shutdown, no flush beyond what each append already made durable.
    cluster.kill(leader);
    // Ask every node, the killed one included: the new leader must lead a higher term, and must
    // not be the node that was killed.
    let new = poll(15 * SEC, async || leader_above(&cluster, old_term).await).await;
    let (new_leader, new_term) = new.unwrap_or_else(|| panic!("no node leads a term above {old_term} after the kill"));
    assert_ne!(new_leader, leader, "the killed node {leader} still answers as leader at term {new_term}");
    for i in 0..200 {
        let got = client.get(format!("key-{i}").as_bytes()).await.unwrap();
        assert_eq!(got.map(|f| f.value), Some(format!("value-{i}").into_bytes()), "key-{i} lost");
    }
    client.put(b"after-kill", b"yes").await.unwrap();

    // Restart the killed node from its data directory; it must catch up.
    cluster.restart(leader).unwrap();
    let target = admin::status(Transport::Tcp, &cluster.addrs[&new_leader], SEC).await.unwrap();
    let target = target.applied.map(|l| l.index).unwrap();
    let addr = cluster.addrs[&leader].clone();
    let caught_up = poll(20 * SEC, async || {
        let s = admin::status(Transport::Tcp, &addr, Duration::from_millis(500)).await.ok()?;
        (s.applied.map(|l| l.index)? >= target).then_some(())
    })
    .await;
    assert!(caught_up.is_some(), "the restarted node {leader} did not catch up to {target}");
    // openraft resumes leadership on restart when its vote was committed: the old leader must
    // instead have learned the new term (it may lead a later one, after an election of its own).
    let restarted = admin::status(Transport::Tcp, &addr, SEC).await.unwrap();
    assert!(
        restarted.current_term >= new_term,
        "the restarted old leader still holds term {} below the new leader's {new_term}: {restarted:?}",
        restarted.current_term
    );

    // `cluster status` shows all three, one of them leader; with debug logging on, stdout is
    // still nothing but the JSON (logs go to stderr).
    let status = Command::new(EXE)
        .args(["cluster", "status", "--endpoints", &endpoints, "--format", "json"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v.as_array().unwrap().iter().filter(|n| n["role"] == "leader").count(), 1, "{v:#}");
}

/// The node that says it leads the highest term above `term`, asking every node of the cluster.
async fn leader_above(cluster: &LocalCluster, term: u64) -> Option<(u64, u64)> {
    let mut best = None;
    for (id, addr) in &cluster.addrs {
        let Ok(s) = admin::status(Transport::Tcp, addr, Duration::from_millis(300)).await else { continue };
        if s.role == "leader" && s.current_term > term && best.is_none_or(|(_, t)| s.current_term > t) {
            best = Some((*id, s.current_term));
        }
    }
    best
}

/// `cluster add-learner` and `cluster set-voters` grow a 3-voter cluster of processes to 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_adds_a_learner_and_makes_it_a_voter() {
    let mut cluster = LocalCluster::start(Path::new(EXE), free_addrs(4).unwrap(), None, &[], true).unwrap();
    cluster.wait_listening(20 * SEC).await.unwrap();
    let three: Vec<String> = (1..=3).map(|id| cluster.addrs[&id].clone()).collect();
    let run = |args: &[&str]| {
        let out = Command::new(EXE).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["cluster", "init", "--endpoints", &three.join(",")]);
    cluster.wait_for_leader(&[1, 2, 3], 10 * SEC).await.unwrap();
    run(&["kv", "put", "before", "4", "--endpoints", &three.join(",")]);
    let out =
        run(&["cluster", "add-learner", "--endpoints", &three.join(","), "--id", "4", "--addr", &cluster.addrs[&4]]);
    assert!(out.contains("added as a learner"), "{out}");
    let out = run(&["cluster", "set-voters", "1,2,3,4", "--endpoints", &three.join(",")]);
    assert!(out.contains("voters are now 1,2,3,4"), "{out}");
    // Node 4 learns the new configuration by replication; wait until it has applied it.
    let addr4 = cluster.addrs[&4].clone();
    let seen = poll(10 * SEC, async || {
        let s = admin::status(Transport::Tcp, &addr4, SEC).await.ok()?;
        let voters: Vec<Vec<u64>> = s.membership?.configs.into_iter().map(|c| c.ids).collect();
        (voters == vec![vec![1, 2, 3, 4]] && s.role == "follower").then_some(())
    })
    .await;
    assert!(seen.is_some(), "node 4 never reported itself a voter in [1, 2, 3, 4]");
    // The new voter answers through the leader like any other endpoint.
    let got = run(&["kv", "get", "before", "--endpoints", &cluster.addrs[&4]]);
    assert_eq!(got.trim(), "4");
    cluster.stop(5 * SEC).await;
}
