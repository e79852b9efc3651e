//! Real `quorumlab node` processes on 127.0.0.1: kill the leader with SIGKILL, lose nothing.
#![allow(clippy::disallowed_methods, reason = "real processes run on wall-clock time")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use quorumlab::client::{admin, Client, ClientConfig};
use quorumlab::net::Transport;

const EXE: &str = env!("CARGO_BIN_EXE_quorumlab");

/// Ports that are free right now (bound to port 0, then released).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node(id: u64, addrs: &BTreeMap<u64, String>, dir: &Path) -> Proc {
    let mut cmd = Command::new(EXE);
    cmd.args(["node", "--id", &id.to_string(), "--listen", &addrs[&id]]);
    cmd.arg("--data-dir").arg(dir.join(format!("node-{id}")));
    cmd.args(["--heartbeat-ms", "50", "--election-timeout-ms", "300", "--snapshot-every", "64"]);
    for (p, a) in addrs.iter().filter(|(p, _)| **p != id) {
        cmd.arg("--peer").arg(format!("{p}={a}"));
    }
    Proc(cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn node"))
}

async fn wait_until<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn leader_of(addrs: &BTreeMap<u64, String>, among: &[u64]) -> Option<u64> {
    for id in among {
        if let Ok(s) = admin::status(Transport::Tcp, &addrs[id], Duration::from_millis(500)).await {
            if s.role == "leader" {
                return Some(s.id);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_survive_a_sigkilled_leader_and_the_restarted_node_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let addrs: BTreeMap<u64, String> =
        free_ports(3).into_iter().enumerate().map(|(i, p)| (i as u64 + 1, format!("127.0.0.1:{p}"))).collect();
    let mut procs: BTreeMap<u64, Proc> = addrs.keys().map(|id| (*id, start_node(*id, &addrs, dir.path()))).collect();
    let endpoints: Vec<String> = addrs.values().cloned().collect();

    for a in addrs.values() {
        wait_until("nodes to listen", Duration::from_secs(20), async || {
            admin::status(Transport::Tcp, a, Duration::from_millis(300)).await.ok()
        })
        .await;
    }
    let init = Command::new(EXE).args(["cluster", "init", "--endpoints", &endpoints.join(",")]).output().unwrap();
    assert!(init.status.success(), "cluster init failed: {}", String::from_utf8_lossy(&init.stderr));
    let leader = wait_until("a leader", Duration::from_secs(10), async || leader_of(&addrs, &[1, 2, 3]).await).await;

    let mut cfg = ClientConfig::new(endpoints.clone(), Transport::Tcp);
    cfg.overall_timeout = Duration::from_secs(10);
    let mut client = Client::new(cfg).unwrap();
    for i in 0..200 {
        client.put(format!("key-{i}").as_bytes(), format!("value-{i}").as_bytes()).await.unwrap();
    }

    // SIGKILL: no clean shutdown, no flush beyond what each append already made durable.
    procs.remove(&leader);
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|n| *n != leader).collect();
    let new_leader = wait_until("a new leader", Duration::from_secs(15), async || leader_of(&addrs, &rest).await).await;
    assert_ne!(new_leader, leader);
    for i in 0..200 {
        let got = client.get(format!("key-{i}").as_bytes()).await.unwrap();
        assert_eq!(got.map(|f| f.value), Some(format!("value-{i}").into_bytes()), "key-{i} lost");
    }
    client.put(b"after-kill", b"yes").await.unwrap();

    // Restart the killed node from its data directory; it must catch up.
    procs.insert(leader, start_node(leader, &addrs, dir.path()));
    let target = admin::status(Transport::Tcp, &addrs[&new_leader], Duration::from_secs(1)).await.unwrap();
    let target = target.applied.map(|l| l.index).unwrap();
    wait_until("the restarted node to catch up", Duration::from_secs(20), async || {
        let s = admin::status(Transport::Tcp, &addrs[&leader], Duration::from_millis(500)).await.ok()?;
        (s.applied.map(|l| l.index)? >= target).then_some(())
    })
    .await;

    // `cluster status` shows all three.
    let status = Command::new(EXE)
        .args(["cluster", "status", "--endpoints", &endpoints.join(","), "--format", "json"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v.as_array().unwrap().iter().filter(|n| n["role"] == "leader").count(), 1, "{v:#}");
}
