//! A cluster of real `quorumlab node` processes on this machine, for `quorumlab cluster up`, the
//! real-process tests and the real-mode benchmarks.
//!
//! Dropping a [`LocalCluster`] kills and reaps every process it started, so no node outlives a
//! failed test or an interrupted benchmark.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::client::admin;
use crate::net::Transport;

/// Node processes, their addresses and their data directories.
pub struct LocalCluster {
    exe: PathBuf,
    dir: PathBuf,
    /// Extra arguments for every `quorumlab node` (timing, snapshot policy).
    node_args: Vec<String>,
    quiet: bool,
    /// Per node, the command its process runs inside (`ip netns exec <ns>` in a lab); none: run directly.
    prefix: BTreeMap<u64, Vec<String>>,
    pub addrs: BTreeMap<u64, String>,
    procs: BTreeMap<u64, Child>,
    _temp: Option<tempfile::TempDir>,
}

/// Where node `id` keeps its data inside the cluster's directory.
pub fn data_dir(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("node-{id}"))
}

/// `n` loopback addresses whose ports are free right now (bound to port 0, then released).
pub fn free_addrs(n: u64) -> std::io::Result<BTreeMap<u64, String>> {
    let listeners: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0")).collect::<Result<_, _>>()?;
    let mut addrs = BTreeMap::new();
    for (i, l) in listeners.iter().enumerate() {
        addrs.insert(i as u64 + 1, format!("127.0.0.1:{}", l.local_addr()?.port()));
    }
    Ok(addrs)
}

impl LocalCluster {
    /// Starts one process of `exe node` per address, with data under `dir` (a new temporary
    /// directory when `None`). `quiet` sends the nodes' output to /dev/null.
    pub fn start(
        exe: &Path,
        addrs: BTreeMap<u64, String>,
        dir: Option<PathBuf>,
        node_args: &[&str],
        quiet: bool,
    ) -> std::io::Result<Self> {
        let (dir, temp) = match dir {
            Some(d) => (d, None),
            None => {
                let t = tempfile::Builder::new().prefix("quorumlab-").tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        let mut cluster = LocalCluster {
            exe: exe.to_path_buf(),
            dir,
            node_args: node_args.iter().map(|s| s.to_string()).collect(),
            quiet,
            prefix: BTreeMap::new(),
            addrs,
            procs: BTreeMap::new(),
            _temp: temp,
        };
        cluster.start_all()?;
        Ok(cluster)
    }

    /// [`LocalCluster::start`], with each node's process started inside the command `prefix[id]` names (its
    /// network namespace: `ip netns exec <ns>`).
    pub fn start_prefixed(
        exe: &Path,
        addrs: BTreeMap<u64, String>,
        dir: PathBuf,
        node_args: &[&str],
        prefix: BTreeMap<u64, Vec<String>>,
    ) -> std::io::Result<Self> {
        let mut cluster = LocalCluster {
            exe: exe.to_path_buf(),
            dir,
            node_args: node_args.iter().map(|s| s.to_string()).collect(),
            quiet: true,
            prefix,
            addrs,
            procs: BTreeMap::new(),
            _temp: None,
        };
        cluster.start_all()?;
        Ok(cluster)
    }

    fn start_all(&mut self) -> std::io::Result<()> {
        let ids: Vec<u64> = self.addrs.keys().copied().collect();
        for id in ids {
            self.restart(id)?;
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.addrs.values().cloned().collect()
    }

    /// (Re)starts node `id` from its data directory.
    pub fn restart(&mut self, id: u64) -> std::io::Result<()> {
        let mut cmd = match self.prefix.get(&id).and_then(|p| p.split_first()) {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&self.exe);
                cmd
            }
            None => Command::new(&self.exe),
        };
        cmd.arg("node").arg("--id").arg(id.to_string()).arg("--listen").arg(&self.addrs[&id]);
        cmd.arg("--data-dir").arg(data_dir(&self.dir, id));
        for (peer, addr) in self.addrs.iter().filter(|(p, _)| **p != id) {
            cmd.arg("--peer").arg(format!("{peer}={addr}"));
        }
        cmd.args(&self.node_args).stdin(Stdio::null());
        if self.quiet {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let child = cmd.spawn()?;
        if let Some(mut old) = self.procs.insert(id, child) {
            let _ = old.kill();
            let _ = old.wait();
        }
        Ok(())
    }

    /// SIGKILLs node `id`: no clean shutdown, nothing flushed beyond what it already acknowledged.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut p) = self.procs.remove(&id) {
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    /// Whether node `id`'s process is running (started and not killed).
    pub fn is_running(&self, id: u64) -> bool {
        self.procs.contains_key(&id)
    }

    /// Sends `signal` to node `id`'s process: SIGSTOP pauses it whole (timers, disk, sockets), SIGCONT
    /// resumes it.
    pub fn signal(&self, id: u64, signal: nix::sys::signal::Signal) -> Result<(), String> {
        let p = self.procs.get(&id).ok_or_else(|| format!("node {id} is not running"))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.id() as i32), signal)
            .map_err(|e| format!("node {id}: {signal}: {e}"))
    }

    /// Asks every node to stop (SIGTERM: Raft shuts down, storage is flushed) and waits up to
    /// `grace` before killing what is left.
    pub async fn stop(&mut self, grace: Duration) {
        for p in self.procs.values() {
            let pid = nix::unistd::Pid::from_raw(p.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline
            && self.procs.values_mut().any(|p| matches!(p.try_wait(), Ok(None)))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let ids: Vec<u64> = self.procs.keys().copied().collect();
        for id in ids {
            self.kill(id);
        }
    }

    /// Waits until every running node answers a status call.
    pub async fn wait_listening(&self, timeout: Duration) -> Result<(), String> {
        for (id, addr) in &self.addrs {
            if !self.procs.contains_key(id) {
                continue;
            }
            let up = poll(timeout, async || admin::status(Transport::Tcp, addr, Duration::from_millis(300)).await.ok())
                .await;
            if up.is_none() {
                return Err(format!("node {id} at {addr} did not start within {timeout:?} (is the port free?)"));
            }
        }
        Ok(())
    }

    /// Initializes a new cluster of all the nodes, through node 1.
    pub async fn initialize(&self, timeout: Duration) -> Result<(), String> {
        let first = self.addrs.values().next().ok_or("a cluster needs at least one node")?;
        admin::initialize(Transport::Tcp, first, &self.addrs, timeout).await
    }

    /// The node among `among` that reports itself leader, if any.
    pub async fn leader_among(&self, among: &[u64]) -> Option<u64> {
        for id in among {
            let addr = self.addrs.get(id)?;
            if let Ok(s) = admin::status(Transport::Tcp, addr, Duration::from_millis(500)).await {
                if s.role == "leader" {
                    return Some(s.id);
                }
            }
        }
        None
    }

    /// Waits until some node among `among` leads.
    pub async fn wait_for_leader(&self, among: &[u64], timeout: Duration) -> Result<u64, String> {
        poll(timeout, async || self.leader_among(among).await)
            .await
            .ok_or_else(|| format!("no leader among nodes {among:?} within {timeout:?}"))
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for p in self.procs.values_mut() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

/// Calls `f` every 100 ms until it returns `Some` or `timeout` passes.
pub async fn poll<T>(timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(t) = f().await {
            return Some(t);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
