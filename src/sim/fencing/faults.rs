//! The faults a failover supervisor must survive, each a named schedule over the suite's own
//! [`Schedule`] type: the database-level faults below join the Raft-level ones (`crash:leader`,
//! `isolate:leader`, `cut:dc1:dc2`, …) in the same schedule and the same nemesis.
//!
//! A database fault names its target by role when it starts: `primary` is the member serving as
//! primary at that moment, `replica` the lowest-numbered member that is not and whose host is up (two
//! `db-crash:replica` at once crash two replicas).

use std::time::Duration;

use quorumlab_quorum::{FencePath, Topology};
use serde::Serialize;

use super::strategy::{Bugs, FencingOptions};
use crate::sim::schedule::{Schedule, Step};

/// Which database member a fault hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbTarget {
    Primary,
    Replica,
    Member(u64),
}

/// A fault of the database layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "db_fault", rename_all = "snake_case")]
pub enum DbFault {
    /// Cut the target, one replica of its datacenter (if it has one) and that datacenter's database
    /// client off from the voters (every Raft node); the database network between members still works.
    IsolateWithReplica { target: DbTarget },
    /// As [`DbFault::IsolateWithReplica`], and the target's messages to every database host and client
    /// outside its island are dropped: it still hears its peers, they no longer hear it (a one-way fault
    /// of its uplink), so to them it is gone while it keeps committing through the replica beside it.
    IsolateMuted { target: DbTarget },
    /// As [`DbFault::IsolateMuted`] without the replica: the target and its datacenter's database client
    /// cut off from the voters, and the target unheard by every other database host. Synchronous writes
    /// there cannot commit.
    IsolateAlone { target: DbTarget },
    /// The target (unheard by the rest, as in [`DbFault::IsolateMuted`]) and its datacenter's database
    /// client cut off together with the Raft KV's leader (as of the fault's start), which is isolated
    /// from the other voters as by `isolate:leader`: the primary still reaches one consensus member, a
    /// deposed leader whose local state says the primary holds the key. Its replicas stay outside.
    IsolateWithLeader { target: DbTarget },
    /// Pause the target's supervisor process (SIGSTOP): its database keeps serving.
    PauseSupervisor { target: DbTarget },
    /// Pause the target's supervisor the moment it next sends a lease renewal, until the fault ends: the
    /// renewal is answered while the process is stopped, and the answer is read only when it resumes.
    PauseSupervisorRenewing { target: DbTarget, for_ms: u64 },
    /// Pause the target's whole host: database, supervisor, and a software watchdog's count;
    /// messages to and from it wait and arrive late.
    PauseHost { target: DbTarget },
    /// Crash the target's host; it boots again when the fault ends.
    Crash { target: DbTarget },
    /// The target host's clock runs at `percent` of true speed.
    Clock { target: DbTarget, percent: u64 },
}

impl DbFault {
    pub fn target(&self) -> DbTarget {
        match self {
            DbFault::IsolateWithReplica { target }
            | DbFault::IsolateMuted { target }
            | DbFault::IsolateAlone { target }
            | DbFault::IsolateWithLeader { target }
            | DbFault::PauseSupervisor { target }
            | DbFault::PauseSupervisorRenewing { target, .. }
            | DbFault::PauseHost { target }
            | DbFault::Crash { target }
            | DbFault::Clock { target, .. } => *target,
        }
    }

    /// Whether the fault cuts an island of hosts off from the voters outside it.
    pub fn island(&self) -> bool {
        matches!(
            self,
            DbFault::IsolateWithReplica { .. }
                | DbFault::IsolateMuted { .. }
                | DbFault::IsolateAlone { .. }
                | DbFault::IsolateWithLeader { .. }
        )
    }

    /// Whether nothing the target sends leaves its island.
    pub fn mutes_target(&self) -> bool {
        self.island() && !matches!(self, DbFault::IsolateWithReplica { .. })
    }

    pub fn label(&self, topology: &Topology) -> String {
        let t = match self.target() {
            DbTarget::Primary => "the primary".to_string(),
            DbTarget::Replica => "a replica".to_string(),
            DbTarget::Member(m) => topology.db_host(m).map_or_else(|| format!("member {m}"), |d| d.host.clone()),
        };
        match self {
            DbFault::IsolateWithReplica { .. } => format!("cut {t}, a replica and their clients off from the voters"),
            DbFault::IsolateMuted { .. } => {
                format!("cut {t}, a replica and their clients off from the voters, and {t} unheard by the rest")
            }
            DbFault::IsolateAlone { .. } => {
                format!("cut {t} and its clients off from the voters, and {t} unheard by the other database hosts")
            }
            DbFault::IsolateWithLeader { .. } => {
                format!("cut {t}, its clients and the Raft leader off from the rest, and {t} unheard by the rest")
            }
            DbFault::PauseSupervisor { .. } => format!("pause {t}'s supervisor"),
            DbFault::PauseSupervisorRenewing { for_ms, .. } => {
                format!("pause {t}'s supervisor for {for_ms} ms as it next renews its lease")
            }
            DbFault::PauseHost { .. } => format!("pause {t}'s whole host"),
            DbFault::Crash { .. } => format!("crash {t}'s host"),
            DbFault::Clock { percent, .. } => format!("{t}'s clock at {percent}% speed"),
        }
    }

    pub fn spec(&self, topology: &Topology) -> String {
        let t = match self.target() {
            DbTarget::Primary => "primary".to_string(),
            DbTarget::Replica => "replica".to_string(),
            DbTarget::Member(m) => topology.db_host(m).map_or_else(|| m.to_string(), |d| d.host.clone()),
        };
        match self {
            DbFault::IsolateWithReplica { .. } => format!("db-isolate:{t}"),
            DbFault::IsolateMuted { .. } => format!("db-isolate-muted:{t}"),
            DbFault::IsolateAlone { .. } => format!("db-isolate-alone:{t}"),
            DbFault::IsolateWithLeader { .. } => format!("db-isolate-with-leader:{t}"),
            DbFault::PauseSupervisor { .. } => format!("pause-supervisor:{t}"),
            DbFault::PauseSupervisorRenewing { for_ms, .. } => format!("pause-supervisor-renewing:{t}:{for_ms}"),
            DbFault::PauseHost { .. } => format!("pause-host:{t}"),
            DbFault::Crash { .. } => format!("db-crash:{t}"),
            DbFault::Clock { percent, .. } => format!("db-clock:{t}:{percent}"),
        }
    }

    /// Reads `db-isolate:T`, `db-isolate-muted:T`, `db-isolate-alone:T`, `db-isolate-with-leader:T`, `pause-supervisor:T`,
    /// `pause-supervisor-renewing:T:MS`, `pause-host:T`, `db-crash:T`, `db-clock:T:PERCENT`
    /// (T = primary, replica or a database host); `None` if `spec` is not a database fault.
    pub fn parse(spec: &str, topology: &Topology) -> Option<Result<DbFault, String>> {
        let parts: Vec<&str> = spec.split(':').collect();
        let target = |name: &str| -> Result<DbTarget, String> {
            match name {
                "primary" => Ok(DbTarget::Primary),
                "replica" => Ok(DbTarget::Replica),
                host => topology.db_by_host(host).map(|d| DbTarget::Member(d.member)).ok_or_else(|| {
                    let hosts: Vec<&str> = topology.db_hosts().iter().map(|d| d.host.as_str()).collect();
                    format!(
                        "fault {spec:?}: no database host {host:?} in {} (its database hosts: {}; or primary, replica)",
                        topology.name(),
                        if hosts.is_empty() { "none".to_string() } else { hosts.join(", ") }
                    )
                }),
            }
        };
        let fault = match parts.as_slice() {
            ["db-isolate", t] => target(t).map(|target| DbFault::IsolateWithReplica { target }),
            ["db-isolate-muted", t] => target(t).map(|target| DbFault::IsolateMuted { target }),
            ["db-isolate-alone", t] => target(t).map(|target| DbFault::IsolateAlone { target }),
            ["db-isolate-with-leader", t] => target(t).map(|target| DbFault::IsolateWithLeader { target }),
            ["pause-supervisor", t] => target(t).map(|target| DbFault::PauseSupervisor { target }),
            ["pause-supervisor-renewing", t, ms] => match ms.parse::<u64>() {
                Ok(for_ms @ 1..=600_000) => target(t).map(|target| DbFault::PauseSupervisorRenewing { target, for_ms }),
                _ => Err(format!("fault {spec:?}: the pause lasts 1 to 600000 ms, not {ms:?}")),
            },
            ["pause-host", t] => target(t).map(|target| DbFault::PauseHost { target }),
            ["db-crash", t] => target(t).map(|target| DbFault::Crash { target }),
            ["db-clock", t, p] => match p.parse::<u64>() {
                Ok(percent @ 1..=1000) => target(t).map(|target| DbFault::Clock { target, percent }),
                _ => Err(format!("fault {spec:?}: a clock runs at 1 to 1000 percent of true speed, not {p:?}")),
            },
            [head, ..]
                if matches!(
                    *head,
                    "db-isolate"
                        | "db-isolate-muted"
                        | "db-isolate-alone"
                        | "db-isolate-with-leader"
                        | "pause-supervisor"
                        | "pause-supervisor-renewing"
                        | "pause-host"
                        | "db-crash"
                        | "db-clock"
                ) =>
            {
                Err(format!(
                    "fault {spec:?}: database faults are db-isolate:T, db-isolate-muted:T, db-isolate-alone:T, db-isolate-with-leader:T, \
                     pause-supervisor:T, pause-supervisor-renewing:T:MS, pause-host:T, db-crash:T, db-clock:T:PERCENT, \
                     with T = primary, replica or a database host"
                ))
            }
            _ => return None,
        };
        Some(fault)
    }
}

/// One of the twelve faults (some in two variants), as a schedule and the option changes it
/// implies (a fence path, a lying device).
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `1`, `10a`, `12b`: the fault's number in the fencing matrix.
    pub id: &'static str,
    pub name: &'static str,
    /// What it shows, in one sentence.
    pub about: &'static str,
    /// The schedule spec (see [`Schedule::parse`]), times in seconds of the fencing timing's ttl.
    spec: &'static str,
    pub fence_path: Option<FencePath>,
    pub bugs: Bugs,
    /// Whether a correct configuration must stay safe here (false only where the environment
    /// breaks the supervisor's own assumption, e.g. a clock beyond the margin).
    pub within_assumptions: bool,
    /// How many failovers a correct configuration makes: `Some(0)` for a blip, `None` when it depends.
    pub failovers: Option<usize>,
    /// Whether the old primary's supervisor (or whole host) stops while its database could still serve: a
    /// lease and self-demotion alone cannot cover that (Kleppmann's pause).
    pub pauses: bool,
}

/// Every fencing scenario, in matrix order.
pub fn scenarios() -> Vec<Scenario> {
    let s = |id, name, about, spec| Scenario {
        id,
        name,
        about,
        spec,
        fence_path: None,
        bugs: Bugs::default(),
        within_assumptions: true,
        failovers: None,
        pauses: spec.contains("pause-"),
    };
    vec![
        s("1", "isolate-primary", "the primary, a replica and their clients cut off from the voters", "db-isolate:primary@0s+18s"),
        s(
            "1b",
            "isolate-primary-muted",
            "as 1, and the other side no longer hears the primary (it still hears them): to them it is gone",
            "db-isolate-muted:primary@0s+18s",
        ),
        s(
            "1c",
            "isolate-primary-alone",
            "the primary and its clients cut off from the voters and from its replicas: no synchronous write can commit, and degrading to asynchronous needs the consensus store it cannot reach",
            "db-isolate-alone:primary@0s+18s",
        ),
        Scenario {
            fence_path: Some(FencePath::InBand),
            ..s(
                "2",
                "isolate-primary-inband",
                "as 1 with the old primary's supervisor hung (so only a fence stops it) and the fence devices reachable only across the cut",
                "db-isolate:primary@0s+18s;pause-supervisor:primary@0s+18s",
            )
        },
        s("3", "pause-supervisor", "the primary's supervisor paused past ttl while its database keeps serving", "pause-supervisor:primary@0s+12s"),
        Scenario {
            pauses: false,
            ..s(
                "3b",
                "pause-mid-renewal",
                "the primary's supervisor stopped for 5.5 s (less than ttl) with a renewal in flight, and the primary then cut off as in 1b: a lease counted from the answer outlives the lease the store keeps",
                "pause-supervisor-renewing:primary:5500@0s+7s;db-isolate-muted:primary@1500ms+18s",
            )
        },
        s("4", "pause-host", "the primary's whole host paused past ttl (a softdog pauses too), then resumed", "pause-host:primary@0s+12s"),
        s(
            "5",
            "resume-in-flight",
            "as 3, and right after the failover the new primary's host stalls for 4 s: replication under the old and the new token in flight together while the token goes in",
            "pause-supervisor:primary@0s+14s;pause-host:primary@6s+4s",
        ),
        Scenario {
            bugs: Bugs { lying_stonith: true, ..Bugs::default() },
            ..s("6", "lying-stonith", "as 3, with a power switch that reports the host off and leaves it running", "pause-supervisor:primary@0s+12s")
        },
        s(
            "7",
            "firewall-sessions",
            "as 3 while clients hold open sessions on the old primary: a firewall must cut them too",
            "pause-supervisor:primary@0s+12s",
        ),
        s("8", "kv-leader-crash", "the Raft KV's leader crashes while the primary renews through it", "crash:leader@0s+10s"),
        s("9", "kv-leader-isolated", "the Raft KV's leader isolated in a minority while the primary renews through it", "isolate:leader@0s+12s"),
        s(
            "9b",
            "kv-leader-isolated-with-primary",
            "the primary and its clients cut off with the Raft KV's leader, away from the replicas and the other voters: the deposed leader's local state still says the primary holds the key",
            "db-isolate-with-leader:primary@0s+18s",
        ),
        Scenario {
            failovers: Some(0),
            ..s("10a", "consensus-blip", "the primary cut off for less than retry_timeout: no failover", "db-isolate:primary@0s+1s")
        },
        s("10b", "cut-link", "one inter-datacenter link cut while the third datacenter sees both", "cut:dc1:dc2@0s+18s"),
        s(
            "11",
            "no-quorum-replica-dies",
            "the consensus store loses its quorum, then a replica dies: unavailable, never unsafe",
            "cut:dc1:dc2@0s+18s;lose:dc3@0s+18s;db-crash:replica@6s+10s",
        ),
        s(
            "11b",
            "replicas-die",
            "every replica crashes while the consensus store is healthy: strict synchronous replication stops writes; a degradable primary records the degrade in the store and keeps serving, and nobody is promoted meanwhile",
            "db-crash:replica@0s+12s;db-crash:replica@0s+12s",
        ),
        s(
            "11c",
            "consensus-lost-replica-dies",
            "three of five voters down (every database host still up and connected), then a replica dies: failsafe mode keeps the primary serving while every member answers it, and stops it when one does not",
            "lose:dc2@0s+18s;lose:dc3@0s+18s;db-crash:replica@8s+8s",
        ),
        s(
            "12a",
            "slow-clock-within-margin",
            "the primary cut off while its clock runs 0.5% slow (the margin is 1%)",
            "db-clock:primary:995@0s+20s;db-isolate:primary@1s+18s",
        ),
        Scenario {
            within_assumptions: false,
            ..s(
                "12b",
                "slow-clock-beyond-margin",
                "the primary cut off while its clock runs 20% slow: beyond the margin a lease alone is unsafe",
                "db-clock:primary:800@0s+20s;db-isolate:primary@1s+18s",
            )
        },
    ]
}

impl Scenario {
    /// The schedule on `topology`; faults naming datacenters it lacks are dropped (a one-datacenter
    /// topology has no link to cut), and `None` if nothing is left.
    pub fn schedule(&self, topology: &Topology) -> Option<Schedule> {
        let steps: Vec<Step> = self
            .spec
            .split(';')
            .filter_map(|part| Schedule::parse(part, topology, Duration::ZERO).ok())
            .flat_map(|s| s.steps)
            .collect();
        (!steps.is_empty()).then_some(Schedule { steps })
    }

    /// The options for `base` under this scenario.
    pub fn options(&self, base: &FencingOptions) -> FencingOptions {
        let mut o = base.clone();
        if self.fence_path.is_some() {
            o.fence_path = self.fence_path;
        }
        o.bugs = o.bugs.union(self.bugs);
        o
    }

    pub fn find(name: &str) -> Result<Scenario, String> {
        scenarios().into_iter().find(|s| s.name == name || s.id == name).ok_or_else(|| {
            let names: Vec<String> = scenarios().iter().map(|s| format!("{} ({})", s.name, s.id)).collect();
            format!("unknown fencing fault {name:?}; the faults are {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_has_a_schedule_on_the_shipped_fencing_topologies() {
        for name in ["etcd-2-2-1", "etcd-3-2"] {
            let t = quorumlab_quorum::shipped::load(name).expect("shipped");
            for s in scenarios() {
                let sched = s.schedule(&t).unwrap_or_else(|| panic!("{name}: scenario {} has no schedule", s.name));
                assert!(!sched.steps.is_empty());
            }
        }
    }

    #[test]
    fn database_faults_parse_and_print_back() {
        let t = quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped");
        for spec in [
            "db-isolate:primary",
            "db-isolate-with-leader:primary",
            "db-isolate-alone:primary",
            "pause-supervisor:dc1-db2",
            "pause-supervisor-renewing:primary:3000",
            "pause-host:replica",
            "db-crash:primary",
            "db-clock:primary:90",
        ] {
            let f = DbFault::parse(spec, &t).expect("a database fault").expect("valid");
            assert_eq!(f.spec(&t), spec);
        }
        assert!(DbFault::parse("crash:leader", &t).is_none());
        let e = DbFault::parse("pause-host:dc9-db1", &t).unwrap().unwrap_err();
        assert!(e.contains("dc1-db1, dc1-db2, dc2-db1"), "{e}");
        assert!(DbFault::parse("db-clock:primary:0", &t).unwrap().is_err());
    }
}
