//! The fencing crate's [`Firewall`] port for real mode: nftables rules in the fenced member's own network
//! namespace that cut its database off, established connections included.
//!
//! Where the rules sit. A fence must stop the *old primary* from taking writes, from every client, over every
//! session it already has. So the rules are a host firewall: a table `inet quorumlab_fence` inside the member's
//! own namespace (the lab's stand-in for its host), whose input chain drops every TCP segment to the database's
//! port (`tcp dport P drop`) and whose output chain drops every segment from it (`tcp sport P drop`). Rules on
//! the clients' side, or on the path between, would have to know every client and every route; rules on the
//! database's host know only its port and cover them all, loopback clients included. The table is separate from
//! the lab's partition table (`inet quorumlab`, see [`super::lab`]), so a fence and a partition never overwrite
//! one another, and a `drop` in either is final whatever the other accepts.
//!
//! Established connections. Neither chain looks at connection-tracking state, so a segment of a session opened
//! before the fence is dropped like any other: the old primary neither hears the write nor can acknowledge it.
//! The chains hook at priority 0 (filter), after conntrack (-200) and at or before a host's own filter chains.
//!
//! The broken variant (`broken: true`), the planted bug `firewall_keeps_established` of the simulator made real:
//! the same rule set with `ct state established,related accept` first in each chain, the classic host firewall
//! rule that lets every connection open before the fence carry on, so the old primary keeps acknowledging writes
//! on its established sessions while new connections are refused. It confirms exactly as the correct one does —
//! its rules *are* in force — which is why only a check over an established session catches it. The leak needs
//! the kernel to have been tracking the session from its start: a namespace tracks connections only once some
//! rule needs conntrack, and a session it first sees mid-stream is `ct state new`, not `established`. Real hosts
//! with a stateful firewall always track; in a lab, [`track_connections`] makes a host do so.
//!
//! Confirmation. `block` replaces the table in one nft transaction (`table …` / `delete table …` / `table … {…}`,
//! so no packet sees half a rule set), then lists it back with `nft list table`: it is `Confirmed` only when the
//! kernel lists exactly the intended chains and rules, `Failed` on any nft error or a listing that differs.
//! `unblock` deletes the table (declaring it first, so deleting a missing table is no error) and is `Confirmed`
//! once `nft list tables` no longer shows it.
//!
//! No call blocks and every operation ends. `block` and `unblock` only start the work and return its
//! [`RequestId`]; [`NftFirewall::outcome`] collects the outcome later. Each member's operations run in the order
//! they were started, on one worker thread per member (a late `block` must never land after the `unblock` that
//! followed it), and each must end within its deadline ([`DEADLINE`] by default) counted from the call that
//! started it: an nft process still running then is killed and the operation reports `TimedOut`. An nft
//! transaction is atomic in the kernel, so a timed-out `block` left either the whole rule set or none of it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use quorumlab_fencing::ports::{Firewall, RequestId};
use quorumlab_fencing::{DeviceOutcome, MemberId};
use tokio::sync::oneshot;

/// The fence's table (family `inet`) in the fenced member's namespace.
pub const TABLE: &str = "quorumlab_fence";

/// The table [`track_connections`] installs.
pub const HOST_TABLE: &str = "quorumlab_host";

/// How long an operation may take, from the call that started it, unless [`NftFirewall::with_deadline`] says.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Where one member's database runs: its host's network namespace and its TCP port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceTarget {
    pub ns: String,
    pub port: u16,
}

/// An operation's outcome and what happened, for logs and test failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub outcome: DeviceOutcome,
    pub detail: String,
}

impl Report {
    fn failed(detail: impl Into<String>) -> Report {
        Report { outcome: DeviceOutcome::Failed, detail: detail.into() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Block,
    Unblock,
}

struct Job {
    op: Op,
    target: FenceTarget,
    broken: bool,
    deadline: Instant,
    done: oneshot::Sender<Report>,
}

/// The nftables firewall. Clones share the request counter, the members' worker threads and the waiting
/// outcomes; the workers end once every clone is gone and their queued operations have run.
#[derive(Clone)]
pub struct NftFirewall {
    targets: Arc<BTreeMap<MemberId, FenceTarget>>,
    broken: bool,
    deadline: Duration,
    next: Arc<AtomicU64>,
    queues: Arc<Mutex<BTreeMap<MemberId, mpsc::Sender<Job>>>>,
    waiting: Arc<Mutex<BTreeMap<RequestId, oneshot::Receiver<Report>>>>,
}

impl NftFirewall {
    /// A firewall for these members' databases; `broken` plants the rule that keeps established connections.
    pub fn new(targets: BTreeMap<MemberId, FenceTarget>, broken: bool) -> NftFirewall {
        NftFirewall {
            targets: Arc::new(targets),
            broken,
            deadline: DEADLINE,
            next: Arc::default(),
            queues: Arc::default(),
            waiting: Arc::default(),
        }
    }

    /// The same firewall with another deadline per operation.
    pub fn with_deadline(mut self, deadline: Duration) -> NftFirewall {
        self.deadline = deadline;
        self
    }

    /// Whether this is the broken variant.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// The outcome of operation `id`, once it has one (`Failed` for an unknown or already collected id).
    pub async fn outcome(&self, id: RequestId) -> DeviceOutcome {
        self.report(id).await.outcome
    }

    /// [`NftFirewall::outcome`] with what happened.
    pub async fn report(&self, id: RequestId) -> Report {
        let rx = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        match rx {
            Some(rx) => rx.await.unwrap_or_else(|_| Report::failed("the operation's worker ended without an outcome")),
            None => Report::failed(format!("no outcome waits under request {}", id.0)),
        }
    }

    /// Starts `op` on `member`'s database host, behind that member's earlier operations.
    fn start(&self, op: Op, member: MemberId) -> RequestId {
        let id = RequestId(self.next.fetch_add(1, Ordering::Relaxed));
        let deadline = now() + self.deadline;
        let (done, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id, rx);
        let Some(target) = self.targets.get(&member) else {
            let _ = done.send(Report::failed(format!("member {} has no database this firewall knows", member.0)));
            return id;
        };
        let job = Job { op, target: target.clone(), broken: self.broken, deadline, done };
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let job = match queues.get(&member) {
            Some(queue) => match queue.send(job) {
                Ok(()) => return id,
                // The worker is gone (it can only have panicked): start another.
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (queue, jobs) = mpsc::channel::<Job>();
        let worker = std::thread::Builder::new().name(format!("fence-{}", member.0)).spawn(move || {
            for Job { op, target, broken, deadline, done } in jobs {
                let _ = done.send(execute(op, &target, broken, deadline));
            }
        });
        match worker {
            Ok(_) => {
                let _ = queue.send(job);
                queues.insert(member, queue);
            }
            Err(e) => {
                let _ = job.done.send(Report::failed(format!("cannot start the fence worker: {e}")));
            }
        }
        id
    }
}

impl Firewall for NftFirewall {
    /// Drops all TCP traffic to and from `member`'s database port in its namespace; confirmed once listed back.
    fn block(&mut self, member: MemberId) -> RequestId {
        self.start(Op::Block, member)
    }

    /// Deletes the fence's table in `member`'s namespace; confirmed once it is gone.
    fn unblock(&mut self, member: MemberId) -> RequestId {
        self.start(Op::Unblock, member)
    }
}

/// Why an operation did not confirm.
enum Problem {
    Failed(String),
    TimedOut(String),
}

fn execute(op: Op, target: &FenceTarget, broken: bool, deadline: Instant) -> Report {
    let result = match op {
        Op::Block => block(target, broken, deadline),
        Op::Unblock => unblock(target, deadline),
    };
    let report = match result {
        Ok(detail) => Report { outcome: DeviceOutcome::Confirmed, detail },
        Err(Problem::Failed(detail)) => Report { outcome: DeviceOutcome::Failed, detail },
        Err(Problem::TimedOut(detail)) => Report { outcome: DeviceOutcome::TimedOut, detail },
    };
    if report.outcome != DeviceOutcome::Confirmed {
        tracing::warn!(?op, ns = %target.ns, port = target.port, outcome = ?report.outcome, "fence: {}", report.detail);
    }
    report
}

fn block(target: &FenceTarget, broken: bool, deadline: Instant) -> Result<String, Problem> {
    nft(&target.ns, &["-f", "-"], Some(&ruleset(target.port, broken)), deadline)?;
    let listed = nft(&target.ns, &["list", "table", "inet", TABLE], None, deadline)?;
    let want = chains(target.port, broken);
    let have = parse_listing(&listed);
    if have != want {
        return Err(Problem::Failed(format!(
            "{}: nft accepted the fence but lists other rules (want {want:?}):\n{listed}",
            target.ns
        )));
    }
    Ok(format!("{}: port {} fenced{}", target.ns, target.port, if broken { " (broken variant)" } else { "" }))
}

fn unblock(target: &FenceTarget, deadline: Instant) -> Result<String, Problem> {
    nft(&target.ns, &["-f", "-"], Some(&format!("table inet {TABLE}\ndelete table inet {TABLE}\n")), deadline)?;
    let tables = nft(&target.ns, &["list", "tables"], None, deadline)?;
    if tables.lines().any(|l| l.trim() == format!("table inet {TABLE}")) {
        return Err(Problem::Failed(format!("{}: nft deleted the fence but still lists it:\n{tables}", target.ns)));
    }
    Ok(format!("{}: fence removed", target.ns))
}

/// The fence's rule set for a database on `port`: the table replaced whole in one transaction.
fn ruleset(port: u16, broken: bool) -> String {
    let mut text = format!("table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n");
    for (chain, (hook, rules)) in chains(port, broken) {
        text.push_str(&format!("  chain {chain} {{\n    type filter hook {hook} priority 0; policy accept;\n"));
        for rule in rules {
            text.push_str(&format!("    {rule}\n"));
        }
        text.push_str("  }\n");
    }
    text.push_str("}\n");
    text
}

/// Chain name → (hook, rules as `nft list` prints them).
type Chains = BTreeMap<String, (String, Vec<String>)>;

/// The fence's chains: what [`ruleset`] installs and what the listing must show.
fn chains(port: u16, broken: bool) -> Chains {
    let keep = broken.then(|| "ct state established,related accept".to_string());
    [("input", format!("tcp dport {port} drop")), ("output", format!("tcp sport {port} drop"))]
        .into_iter()
        .map(|(chain, drop)| (chain.to_string(), (chain.to_string(), keep.iter().cloned().chain([drop]).collect())))
        .collect()
}

/// The chains of one table as `nft list table` prints it: each chain's hook and its rules in order.
fn parse_listing(listed: &str) -> Chains {
    let mut chains = Chains::new();
    let mut current: Option<String> = None;
    for line in listed.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(name) = line.strip_prefix("chain ").and_then(|rest| rest.strip_suffix(" {")) {
            chains.insert(name.to_string(), (String::new(), Vec::new()));
            current = Some(name.to_string());
            continue;
        }
        let Some(entry) = current.as_ref().and_then(|name| chains.get_mut(name)) else { continue };
        if line == "}" {
            current = None;
        } else if let Some(rest) = line.strip_prefix("type ") {
            let mut words = rest.split_whitespace().skip_while(|w| *w != "hook").skip(1);
            entry.0 = words.next().unwrap_or_default().to_string();
        } else {
            entry.1.push(line.to_string());
        }
    }
    chains
}

/// Makes `ns` track connections from now on, as every host with a stateful firewall does: a table
/// `inet quorumlab_host` whose input chain accepts established and related traffic (and, by its policy, all
/// else), which changes no verdict but needs conntrack. Without it the kernel does not follow a namespace's
/// connections, and the broken variant could not tell a session opened before the fence from a new one.
pub fn track_connections(ns: &str) -> Result<(), String> {
    let deadline = now() + DEADLINE;
    let rules = format!(
        "table inet {HOST_TABLE}\ndelete table inet {HOST_TABLE}\ntable inet {HOST_TABLE} {{\n  chain input {{\n    \
         type filter hook input priority 10; policy accept;\n    ct state established,related accept\n  }}\n}}\n"
    );
    let explain = |p: Problem| match p {
        Problem::Failed(why) | Problem::TimedOut(why) => why,
    };
    nft(ns, &["-f", "-"], Some(&rules), deadline).map_err(explain)?;
    let listed = nft(ns, &["list", "table", "inet", HOST_TABLE], None, deadline).map_err(explain)?;
    if !listed.contains("ct state established,related accept") {
        return Err(format!("{ns}: nft accepted the host table but lists:\n{listed}"));
    }
    Ok(())
}

/// The deadlines' clock: the machine's, since nft runs in real time, never inside a simulation.
#[allow(clippy::disallowed_methods, reason = "real mode only: nft processes run on the machine's clock")]
fn now() -> Instant {
    Instant::now()
}

/// Runs `nft args` inside `ns` (`ip netns exec`, which execs: the child is nft itself), feeding it `input`;
/// kills it at `deadline`. Returns its standard output.
fn nft(ns: &str, args: &[&str], input: Option<&str>, deadline: Instant) -> Result<String, Problem> {
    let what = format!("ip netns exec {ns} nft {}", args.join(" "));
    if now() >= deadline {
        return Err(Problem::TimedOut(format!("`{what}`: the deadline passed before it could start")));
    }
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft"])
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Problem::Failed(format!("`{what}`: {e}")))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A rule set is far smaller than a pipe's buffer, so this cannot block; a write error (nft exited
        // early) shows in its exit status and standard error below.
        let _ = stdin.write_all(text.as_bytes());
    }
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Problem::TimedOut(format!("`{what}` was still running at the deadline; killed it")));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Problem::Failed(format!("`{what}`: {e}")));
            }
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if status.success() {
        Ok(stdout)
    } else {
        Err(Problem::Failed(format!("`{what}` failed ({status}): {}", stderr.trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_replaces_its_table_and_drops_both_ways() {
        let text = ruleset(5432, false);
        assert!(text.starts_with("table inet quorumlab_fence\ndelete table inet quorumlab_fence\n"), "{text}");
        assert!(text.contains("hook input priority 0") && text.contains("hook output priority 0"), "{text}");
        assert!(text.contains("tcp dport 5432 drop") && text.contains("tcp sport 5432 drop"), "{text}");
        assert!(!text.contains("ct state"), "the correct fence must not spare any connection:\n{text}");
        let broken = ruleset(5432, true);
        let input = broken.split("chain input").nth(1).expect("an input chain");
        let (accept, drop) = (input.find("ct state established,related accept"), input.find("tcp dport 5432 drop"));
        assert!(accept.is_some() && accept < drop, "the broken variant accepts established first:\n{broken}");
    }

    #[test]
    fn a_listing_is_read_back_chain_by_chain() {
        let listed = "table inet quorumlab_fence {\n\tchain input {\n\t\ttype filter hook input priority filter; \
                      policy accept;\n\t\tct state established,related accept\n\t\ttcp dport 5432 drop\n\t}\n\n\t\
                      chain output {\n\t\ttype filter hook output priority filter; policy accept;\n\t\t\
                      ct state established,related accept\n\t\ttcp sport 5432 drop\n\t}\n}\n";
        assert_eq!(parse_listing(listed), chains(5432, true));
        assert_ne!(parse_listing(listed), chains(5432, false));
        assert_ne!(parse_listing(listed), chains(5433, true));
        assert_eq!(parse_listing(""), Chains::new());
    }
}
