//! The lab: one network namespace per host (each Raft node, each datacenter's client), all on one bridge in a
//! hub namespace, with cuts and losses as nftables rules inside each host's own namespace.
//!
//! Why one bridge and rules per host, not a bridge per datacenter: every fault the suite knows cuts host pairs
//! (a datacenter cut is every pair across it; a one-way drop, a bridge node or a ring cut single pairs), and the
//! simulator's nemesis already turns faults into a plan per host pair ([`crate::sim::nemesis::plan_links`]). One
//! flat segment lets the lab apply that same plan one to one, with no routing between bridges to get wrong.
//! Latency is the exception: the kernel here has no `sch_netem`, so links have loopback-like latency and latency
//! faults stay in the simulator.
//!
//! A rule drops at the receiver's input hook (`ip saddr … drop`), not at the sender's output: a packet dropped on
//! output fails the sender's `connect` at once with `EPERM`, which no real partition does; dropped on input the
//! sender hears nothing, as across a cut cable.
//!
//! Ownership and clean-up. Every namespace is named `quorumlab-<run id>-<host>`, and the run id carries the
//! owning process's pid and start time. The hub holds the only addresses outside the hosts' namespaces, so the
//! machine's own namespace gets no interface, route or rule. Dropping a [`Lab`] (also while a panic unwinds)
//! kills every process inside its namespaces and deletes them; Ctrl-C and SIGTERM do the same for every live lab
//! before the process exits; and [`clean_leftovers`] (run by every new lab) removes the namespaces of runs whose
//! owner is gone (a `kill -9`ed test), and only those: it never touches a namespace it cannot parse as a
//! quorumlab run's, nor one whose owner is alive.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Every namespace a lab creates starts with this.
pub const PREFIX: &str = "quorumlab-";

/// The lab's subnet. Each lab has its own hub namespace and bridge, so labs side by side never share it.
const SUBNET: [u8; 3] = [10, 213, 0];

/// One host's place in the lab.
#[derive(Clone, Debug)]
pub struct HostNet {
    pub ns: String,
    pub ip: Ipv4Addr,
}

/// What one host's namespace drops: packets from these addresses, entirely or this percent of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputRules {
    pub drop_from: Vec<Ipv4Addr>,
    pub lose_from: Vec<(Ipv4Addr, u8)>,
}

/// A run's namespaces; deleted (with every process inside) when dropped.
pub struct Lab {
    pub run_id: String,
    hub: String,
    pub hosts: BTreeMap<String, HostNet>,
    applied: BTreeMap<String, InputRules>,
}

static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Whether this machine can host a lab; the error says what is missing, for a test to print as its skip reason.
pub fn available() -> Result<(), String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err("real partitions need root (network namespaces and nftables)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status();
        if found.is_err() {
            return Err(format!("`{tool}` is not installed (Debian: apt-get install {package})"));
        }
    }
    // Its own run id: tests side by side in one process each probe.
    let probe = format!("{PREFIX}{}-probe", run_id(SEQ.fetch_add(1, Ordering::SeqCst)));
    run("ip", &["netns", "add", &probe]).map_err(|e| format!("cannot create a network namespace: {e}"))?;
    let nft = run("ip", &["netns", "exec", &probe, "nft", "list", "tables"]);
    let _ = run("ip", &["netns", "del", &probe]);
    nft.map_err(|e| format!("nftables does not work inside a namespace: {e}"))?;
    Ok(())
}

/// This process's run id for its `seq`th lab: `<pid>.<start time in clock ticks>.<seq>`.
fn run_id(seq: u64) -> String {
    let pid = std::process::id();
    format!("{pid}.{}.{seq}", start_time(pid).unwrap_or(0))
}

/// A process's start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`): with the pid, it names the
/// process uniquely, so a recycled pid is not mistaken for a lab's living owner.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// The owner (pid, start time) of a namespace a lab created, or `None` for any other name.
fn owner(ns: &str) -> Option<(u32, u64)> {
    let id = ns.strip_prefix(PREFIX)?.split_once('-')?.0;
    let mut parts = id.split('.');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u64>().ok()?;
    parts.next().is_none().then_some((pid, start))
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    run_with_input(program, args, None)
}

fn run_with_input(program: &str, args: &[&str], input: Option<&str>) -> Result<String, String> {
    use std::io::Write;
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).map_err(|e| format!("{program}: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// Every namespace on this machine.
fn namespaces() -> Vec<String> {
    run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Kills every process inside `ns`, then deletes it.
fn delete_namespace(ns: &str) {
    for pid in run("ip", &["netns", "pids", ns]).unwrap_or_default().split_whitespace() {
        if let Ok(pid) = pid.parse::<i32>() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _ = run("ip", &["netns", "del", ns]);
}

/// Deletes the namespaces (and kills the processes inside) of every earlier lab whose owner is gone. Returns the
/// namespaces it deleted.
pub fn clean_leftovers() -> Vec<String> {
    let mut cleaned = Vec::new();
    for ns in namespaces() {
        let Some((pid, start)) = owner(&ns) else { continue };
        if start_time(pid) == Some(start) {
            continue;
        }
        delete_namespace(&ns);
        cleaned.push(ns);
    }
    cleaned
}

/// Deletes every lab still alive in this process, on Ctrl-C or SIGTERM, then exits.
fn install_signal_cleanup() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = ctrlc::set_handler(|| {
            let ids: Vec<String> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
            for ns in namespaces() {
                if ids.iter().any(|id| ns.starts_with(&format!("{PREFIX}{id}-"))) {
                    delete_namespace(&ns);
                }
            }
            eprintln!("quorumlab: interrupted; removed the lab's namespaces and processes");
            std::process::exit(130);
        });
    });
}

impl Lab {
    /// Creates a namespace per host, joined by one bridge in a hub namespace (address `.1`, where the driver
    /// runs); hosts get `.2`, `.3`… in the given order.
    pub fn create(hosts: &[String]) -> Result<Lab, String> {
        if hosts.len() > 250 {
            return Err(format!("a lab holds at most 250 hosts, not {}", hosts.len()));
        }
        install_signal_cleanup();
        clean_leftovers();
        let run_id = run_id(SEQ.fetch_add(1, Ordering::SeqCst));
        LIVE.lock().map_err(|e| e.to_string())?.push(run_id.clone());
        let mut lab =
            Lab { hub: format!("{PREFIX}{run_id}-hub"), run_id, hosts: BTreeMap::new(), applied: BTreeMap::new() };
        lab.build(hosts)?;
        Ok(lab)
    }

    fn build(&mut self, hosts: &[String]) -> Result<(), String> {
        let [a, b, c] = SUBNET;
        let hub = self.hub.clone();
        run("ip", &["netns", "add", &hub])?;
        run("ip", &["-n", &hub, "link", "set", "lo", "up"])?;
        run("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        run("ip", &["-n", &hub, "addr", "add", &format!("{a}.{b}.{c}.1/24"), "dev", "br0"])?;
        run("ip", &["-n", &hub, "link", "set", "br0", "up"])?;
        for (k, host) in hosts.iter().enumerate() {
            let ns = format!("{PREFIX}{}-{host}", self.run_id);
            let ip = Ipv4Addr::new(a, b, c, k as u8 + 2);
            run("ip", &["netns", "add", &ns])?;
            self.hosts.insert(host.clone(), HostNet { ns: ns.clone(), ip });
            let port = format!("h{}", k + 2);
            run("ip", &["-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            run("ip", &["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            run("ip", &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    pub fn ip(&self, host: &str) -> Option<Ipv4Addr> {
        self.hosts.get(host).map(|h| h.ip)
    }

    pub fn host_of(&self, ip: Ipv4Addr) -> Option<&str> {
        self.hosts.iter().find(|(_, h)| h.ip == ip).map(|(name, _)| name.as_str())
    }

    /// The hub's namespace: the driver runs there, outside every fault (no rule ever names its address).
    pub fn hub(&self) -> &str {
        &self.hub
    }

    /// Makes every host's input rules what `rules` says (hosts it does not name drop nothing). Only hosts
    /// whose rules changed are touched; each host's table is replaced in one nft transaction, then listed back:
    /// a rule counts as in force only once the kernel shows it. Returns whether anything changed.
    pub fn apply(&mut self, rules: &BTreeMap<String, InputRules>) -> Result<bool, String> {
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        let mut changed = false;
        for host in hosts {
            let want = rules.get(&host).cloned().unwrap_or_default();
            if self.applied.get(&host).cloned().unwrap_or_default() == want {
                continue;
            }
            let ns = self.hosts[&host].ns.clone();
            run_with_input("ip", &["netns", "exec", &ns, "nft", "-f", "-"], Some(&ruleset(&want)))?;
            let listed = run("ip", &["netns", "exec", &ns, "nft", "list", "table", "inet", "quorumlab"])?;
            let words: std::collections::BTreeSet<&str> =
                listed.split(|c: char| !(c.is_ascii_digit() || c == '.')).filter(|w| !w.is_empty()).collect();
            let missing: Vec<String> = want
                .drop_from
                .iter()
                .chain(want.lose_from.iter().map(|(ip, _)| ip))
                .map(Ipv4Addr::to_string)
                .filter(|ip| !words.contains(ip.as_str()))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "{host}: nft accepted the rules but does not list them for {missing:?}:\n{listed}"
                ));
            }
            self.applied.insert(host, want);
            changed = true;
        }
        Ok(changed)
    }

    /// The rules in force in `host`'s namespace, as nft lists them (for tests and the trace).
    pub fn listed(&self, host: &str) -> Result<String, String> {
        let ns = &self.hosts.get(host).ok_or_else(|| format!("no host {host} in the lab"))?.ns;
        run("ip", &["netns", "exec", ns, "nft", "list", "ruleset"])
    }

    /// A command run inside `host`'s namespace (`ip netns exec`, which execs: the child's pid is the program's).
    pub fn command(&self, host: &str, program: &std::path::Path) -> Result<Command, String> {
        let ns = &self.hosts.get(host).ok_or_else(|| format!("no host {host} in the lab"))?.ns;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program);
        Ok(cmd)
    }

    /// Moves the calling thread into `host`'s namespace (or the hub's, for `None`): every socket it opens from
    /// then on lives there. Run a current-thread runtime on that thread, so no task migrates off it.
    pub fn enter(&self, host: Option<&str>) -> Result<(), String> {
        let ns = match host {
            None => &self.hub,
            Some(h) => &self.hosts.get(h).ok_or_else(|| format!("no host {h} in the lab"))?.ns,
        };
        enter_namespace(ns)
    }

    /// The namespaces of this lab that exist right now.
    pub fn namespaces(&self) -> Vec<String> {
        let mine = format!("{PREFIX}{}-", self.run_id);
        namespaces().into_iter().filter(|ns| ns.starts_with(&mine)).collect()
    }
}

/// Moves the calling thread into the named namespace.
pub fn enter_namespace(ns: &str) -> Result<(), String> {
    let file = std::fs::File::open(format!("/run/netns/{ns}")).map_err(|e| format!("namespace {ns}: {e}"))?;
    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("entering {ns}: {e}"))
}

/// One host's table: replaced whole (declare, delete, define in one transaction, so no packet sees half of it).
fn ruleset(rules: &InputRules) -> String {
    let mut chain = String::new();
    if !rules.drop_from.is_empty() {
        let set: Vec<String> = rules.drop_from.iter().map(Ipv4Addr::to_string).collect();
        chain.push_str(&format!("    ip saddr {{ {} }} drop\n", set.join(", ")));
    }
    for (ip, percent) in &rules.lose_from {
        chain.push_str(&format!("    ip saddr {ip} numgen random mod 100 < {percent} drop\n"));
    }
    format!(
        "table inet quorumlab\ndelete table inet quorumlab\ntable inet quorumlab {{\n  chain input {{\n    \
         type filter hook input priority 0; policy accept;\n{chain}  }}\n}}\n"
    )
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces() {
            delete_namespace(&ns);
        }
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|id| *id != self.run_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_only_from_lab_names() {
        assert_eq!(owner("quorumlab-123.456.0-dc1-n1"), Some((123, 456)));
        assert_eq!(owner("quorumlab-123.456.7-hub"), Some((123, 456)));
        for other in ["quorumlab", "quorumlab-hub", "quorumlab-12-dc1", "quorumlab-1.2.3.4-x", "netns-1.2.3-x", "x"] {
            assert_eq!(owner(other), None, "{other}");
        }
    }

    #[test]
    fn this_process_is_alive_to_its_own_check() {
        let pid = std::process::id();
        let start = start_time(pid).expect("/proc is readable");
        assert!(owner(&format!("{PREFIX}{pid}.{start}.0-hub")).is_some_and(|(p, s)| start_time(p) == Some(s)));
    }

    #[test]
    fn a_ruleset_replaces_the_table_and_drops_on_input() {
        let text = ruleset(&InputRules {
            drop_from: vec![Ipv4Addr::new(10, 213, 0, 2), Ipv4Addr::new(10, 213, 0, 3)],
            lose_from: vec![(Ipv4Addr::new(10, 213, 0, 4), 20)],
        });
        assert!(text.starts_with("table inet quorumlab\ndelete table inet quorumlab\n"), "{text}");
        assert!(text.contains("hook input"), "{text}");
        assert!(text.contains("ip saddr { 10.213.0.2, 10.213.0.3 } drop"), "{text}");
        assert!(text.contains("ip saddr 10.213.0.4 numgen random mod 100 < 20 drop"), "{text}");
    }
}
