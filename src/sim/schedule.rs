//! The fault vocabulary and the schedule type: what happens to the cluster, when, and for how long.
//!
//! [`FaultShape`] (from the quorum crate) is the vocabulary for everything the oracle models: the oracle and the
//! nemesis read the same value. Faults the oracle does not model join the same schedule as further [`Fault`]
//! variants. Faults that name "the leader" are resolved to a [`FaultShape`] when they start, against the leader
//! the cluster has at that moment, and the resolved shape is what both the nemesis and the oracle see.
//!
//! A schedule is a list of [`Step`]s: (start, fault, duration) in simulated time, measured from the moment the
//! cluster first has a leader and every client is running. Steps may overlap.

use std::fmt;
use std::time::Duration;

use quorumlab_quorum::{FaultShape, Topology};
use serde::Serialize;

use super::fencing::faults::DbFault;
use crate::types::NodeId;

/// One node, named directly or by its role when the fault starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Node(NodeId),
    /// The node that leads when the fault starts.
    Leader,
    /// The lowest-id voter that does not lead when the fault starts.
    Follower,
}

/// One fault of a schedule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// A network or crash fault the oracle models, applied as given.
    Shape { shape: FaultShape },
    /// Cut the leader off from every other node and client.
    IsolateLeader,
    /// Cut the leader's whole datacenter off.
    IsolateLeaderDc,
    /// Crash a node's process (everything it wrote survives); it restarts when the fault ends.
    Crash { target: Target },
    /// Cut a node's power: a crash that also loses what it wrote but had not flushed; it restarts when the fault
    /// ends.
    PowerLoss { target: Target },
    /// Pause a node: every message to and from it is held for the duration, then delivered late. (turmoil 0.7 cannot
    /// stop one host's clock, so its timers keep running; from outside it looks like a GC pause.)
    Pause { target: Target },
    /// Add latency to every link between two datacenters (one-way, per message).
    LatencySpike { a: String, b: String, extra_ms: u64 },
    /// Links between two datacenters flap: each tick a working link breaks with probability `percent`/100 and
    /// loses what is in flight; a broken one comes back the next tick.
    Loss { a: String, b: String, percent: u8 },
    /// The clocks of a datacenter's client hosts (where lease holders run) run at `percent` of true
    /// speed: below 100 they run slow, so a holder believes its lease lasts longer than the leader
    /// does. Raft's timers are not touched (see [`crate::clock`]).
    ClockRate { dc: String, percent: u64 },
    /// A fault of the database layer a failover supervisor protects (see [`super::fencing::faults`]).
    Db { db: DbFault },
}

impl Fault {
    /// The fault as the oracle sees it once `leader` is known: `None` for faults the oracle does not model (pause,
    /// latency, loss), and for leader faults when there is no leader.
    pub fn shape(&self, topology: &Topology, leader: Option<NodeId>) -> Option<FaultShape> {
        let node = |target: &Target| resolve(topology, target, leader);
        match self {
            Fault::Shape { shape } => Some(shape.clone()),
            Fault::IsolateLeader | Fault::Db { db: DbFault::IsolateWithLeader { .. } } => {
                leader.map(|node| FaultShape::IsolateNode { node })
            }
            Fault::IsolateLeaderDc => {
                leader.and_then(|l| topology.dc_of(l)).map(|dc| FaultShape::IsolateDc { dc: dc.to_string() })
            }
            Fault::Crash { target } | Fault::PowerLoss { target } => {
                node(target).map(|node| FaultShape::CrashNode { node })
            }
            Fault::Pause { .. }
            | Fault::LatencySpike { .. }
            | Fault::Loss { .. }
            | Fault::ClockRate { .. }
            | Fault::Db { .. } => None,
        }
    }

    /// Whether the oracle's availability prediction applies while this fault is active.
    pub fn predicted(&self) -> bool {
        !matches!(self, Fault::Pause { .. } | Fault::LatencySpike { .. } | Fault::Loss { .. })
    }

    /// The name of the fault, by its shape: `cut dc1–dc2`, `isolate the leader`, `power loss of the leader`.
    pub fn label(&self, topology: &Topology) -> String {
        let target = |t: &Target| match t {
            Target::Node(id) => topology.host(*id).map_or_else(|| format!("node {id}"), str::to_string),
            Target::Leader => "the leader".to_string(),
            Target::Follower => "a follower".to_string(),
        };
        match self {
            Fault::Shape { shape } => shape.label(topology),
            Fault::IsolateLeader => "isolate the leader".to_string(),
            Fault::IsolateLeaderDc => "isolate the leader's dc".to_string(),
            Fault::Crash { target: t } => format!("crash {}", target(t)),
            Fault::PowerLoss { target: t } => format!("power loss of {}", target(t)),
            Fault::Pause { target: t } => format!("pause {}", target(t)),
            Fault::LatencySpike { a, b, extra_ms } => format!("latency +{extra_ms} ms {a}–{b}"),
            Fault::Loss { a, b, percent } => format!("loss {percent}% {a}–{b}"),
            Fault::ClockRate { dc, percent } => format!("{dc}'s clocks at {percent}% speed"),
            Fault::Db { db } => db.label(topology),
        }
    }

    /// The fault as `quorumlab suite --faults` spells it; [`Fault::parse`] reads it back. Network shapes use the
    /// same spelling as `quorumlab quorum explain --fault` (`cut:dc1:dc2`).
    pub fn spec(&self, topology: &Topology) -> String {
        let target = |t: &Target| match t {
            Target::Node(id) => topology.host(*id).map_or_else(|| id.to_string(), str::to_string),
            Target::Leader => "leader".to_string(),
            Target::Follower => "follower".to_string(),
        };
        let host = |id: &NodeId| topology.host(*id).map_or_else(|| id.to_string(), str::to_string);
        match self {
            Fault::Shape { shape } => match shape {
                FaultShape::IsolateNode { node } => format!("isolate:{}", host(node)),
                FaultShape::CrashNode { node } => format!("crash:{}", host(node)),
                FaultShape::IsolateDc { dc } => format!("isolate:{dc}"),
                FaultShape::LoseDc { dc } => format!("lose:{dc}"),
                FaultShape::CutDcLink { a, b } => format!("cut:{a}:{b}"),
                FaultShape::OneWay { from, to } => format!("drop:{}:{}", host(from), host(to)),
                FaultShape::OneWayDc { from, to } => format!("drop:{from}:{to}"),
                FaultShape::MajoritiesRing => "ring".to_string(),
                FaultShape::Bridge => "bridge".to_string(),
                FaultShape::SplitGroups { groups } => {
                    let groups: Vec<String> =
                        groups.iter().map(|g| g.iter().map(host).collect::<Vec<_>>().join(",")).collect();
                    format!("split:{}", groups.join("|"))
                }
                FaultShape::All { faults } => faults
                    .iter()
                    .map(|f| Fault::Shape { shape: f.clone() }.spec(topology))
                    .collect::<Vec<_>>()
                    .join("+"),
            },
            Fault::IsolateLeader => "isolate:leader".to_string(),
            Fault::IsolateLeaderDc => "isolate:leader-dc".to_string(),
            Fault::Crash { target: t } => format!("crash:{}", target(t)),
            Fault::PowerLoss { target: t } => format!("power-loss:{}", target(t)),
            Fault::Pause { target: t } => format!("pause:{}", target(t)),
            Fault::LatencySpike { a, b, extra_ms } => format!("latency:{a}:{b}:{extra_ms}"),
            Fault::Loss { a, b, percent } => format!("loss:{a}:{b}:{percent}"),
            Fault::ClockRate { dc, percent } => format!("clock:{dc}:{percent}"),
            Fault::Db { db } => db.spec(topology),
        }
    }

    /// Reads a fault spec (see [`SPEC_HELP`]) against a topology; the error says what is allowed. Network shapes
    /// are read by the quorum crate's own parser, so the oracle and the suite share one vocabulary.
    pub fn parse(spec: &str, topology: &Topology) -> Result<Fault, String> {
        let bad = |why: String| format!("fault {spec:?}: {why}; {SPEC_HELP}");
        let parts: Vec<&str> = spec.split(':').collect();
        let target = |name: &str| match name {
            "leader" => Ok(Target::Leader),
            "follower" => Ok(Target::Follower),
            host => match topology.node_by_host(host) {
                Some(node) => Ok(Target::Node(node.id)),
                None => Err(bad(format!("no node {host:?} in {}", topology.name()))),
            },
        };
        let link = |a: &str, b: &str| -> Result<(String, String), String> {
            let dc = |name: &str| match topology.datacenter(name) {
                Some(dc) => Ok(dc.name.clone()),
                None => Err(bad(format!("no datacenter {name:?} in {}", topology.name()))),
            };
            if a == b {
                return Err(bad("a link joins two different datacenters".into()));
            }
            Ok((dc(a)?, dc(b)?))
        };
        let amount = |text: &str| text.parse::<u64>().map_err(|_| bad(format!("{text:?} is not a whole number")));
        if let Some(db) = DbFault::parse(spec, topology) {
            return db.map(|db| Fault::Db { db });
        }
        match parts.as_slice() {
            ["isolate", "leader"] => Ok(Fault::IsolateLeader),
            ["isolate", "leader-dc"] => Ok(Fault::IsolateLeaderDc),
            ["ring"] => Ok(Fault::Shape { shape: FaultShape::MajoritiesRing }),
            ["bridge"] => Ok(Fault::Shape { shape: FaultShape::Bridge }),
            ["crash", t] => Ok(Fault::Crash { target: target(t)? }),
            ["power-loss", t] => Ok(Fault::PowerLoss { target: target(t)? }),
            ["pause", t] => Ok(Fault::Pause { target: target(t)? }),
            ["latency", a, b, ms] => {
                let (a, b) = link(a, b)?;
                Ok(Fault::LatencySpike { a, b, extra_ms: amount(ms)? })
            }
            ["clock", dc, percent] => match (topology.datacenter(dc), amount(percent)?) {
                (None, _) => Err(bad(format!("no datacenter {dc:?} in {}", topology.name()))),
                (Some(_), 0) | (Some(_), 1001..) => Err(bad("a clock runs at 1 to 1000 percent of true speed".into())),
                (Some(d), p) => Ok(Fault::ClockRate { dc: d.name.clone(), percent: p }),
            },
            ["loss", a, b, percent] => {
                let (a, b) = link(a, b)?;
                match amount(percent)? {
                    p @ 1..=100 => Ok(Fault::Loss { a, b, percent: p as u8 }),
                    _ => Err(bad("loss is a percentage from 1 to 100".into())),
                }
            }
            _ => quorumlab_quorum::fault_report::parse_fault(topology, spec)
                .map(|shape| Fault::Shape { shape })
                .map_err(|e| bad(e.trim_start_matches("--fault ").to_string())),
        }
    }
}

/// `1500ms`, `12s` or a bare number of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000)
    } else {
        (text, 1)
    };
    let n: u64 = number.trim().parse().map_err(|_| format!("{text:?} is not a duration (e.g. 1500ms or 12s)"))?;
    Ok(Duration::from_millis(n.saturating_mul(unit_ms)))
}

/// What [`Fault::parse`] accepts.
pub const SPEC_HELP: &str = "faults are isolate:DC|HOST|leader|leader-dc, lose:DC, cut:DC:DC, drop:DC:DC, \
drop:HOST:HOST, ring, bridge, crash:HOST|leader|follower, power-loss:HOST|leader|follower, \
pause:HOST|leader|follower, latency:DC:DC:MS, loss:DC:DC:PERCENT, clock:DC:PERCENT (client clocks' speed); \
database faults (topologies with databases): db-isolate:T, pause-supervisor:T, pause-host:T, db-crash:T, \
db-clock:T:PERCENT with T = primary, replica or a database host";

/// The node a target names, given the leader when the fault starts.
pub fn resolve(topology: &Topology, target: &Target, leader: Option<NodeId>) -> Option<NodeId> {
    match target {
        Target::Node(id) => Some(*id),
        Target::Leader => leader,
        Target::Follower => topology.voter_ids().into_iter().find(|v| Some(*v) != leader),
    }
}

/// One fault, when it starts and how long it lasts (simulated time, from the schedule's start).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    #[serde(serialize_with = "ser_ms")]
    pub start: Duration,
    pub fault: Fault,
    #[serde(serialize_with = "ser_ms")]
    pub duration: Duration,
}

impl Step {
    pub fn end(&self) -> Duration {
        self.start + self.duration
    }
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// A list of faults in simulated time; they may overlap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Schedule {
    pub steps: Vec<Step>,
}

impl Schedule {
    /// One fault from `start` for `duration`.
    pub fn single(fault: Fault, start: Duration, duration: Duration) -> Schedule {
        Schedule { steps: vec![Step { start, fault, duration }] }
    }

    /// When the last fault ends.
    pub fn end(&self) -> Duration {
        self.steps.iter().map(Step::end).max().unwrap_or_default()
    }

    /// The schedule as `quorumlab suite --schedule` reads it: `cut:dc1:dc2@0ms+12000ms;crash:leader@3000ms+1000ms`.
    pub fn spec(&self, topology: &Topology) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| format!("{}@{}ms+{}ms", s.fault.spec(topology), s.start.as_millis(), s.duration.as_millis()))
            .collect();
        steps.join(";")
    }

    /// Reads [`Schedule::spec`]'s form; a step without `@START+DURATION` starts at 0 and lasts `default_duration`.
    pub fn parse(spec: &str, topology: &Topology, default_duration: Duration) -> Result<Schedule, String> {
        let mut steps = Vec::new();
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (fault, start, duration) = match part.rsplit_once('@') {
                Some((fault, when)) => {
                    let (start, duration) = when.split_once('+').ok_or_else(|| {
                        format!("schedule step {part:?}: expected FAULT@START+DURATION, e.g. cut:dc1:dc2@0ms+12s")
                    })?;
                    (fault, parse_duration(start)?, parse_duration(duration)?)
                }
                None => (part, Duration::ZERO, default_duration),
            };
            steps.push(Step { start, fault: Fault::parse(fault, topology)?, duration });
        }
        if steps.is_empty() {
            return Err(format!("empty schedule; {SPEC_HELP}"));
        }
        Ok(Schedule { steps })
    }

    /// `cut dc1–dc2 @2.0s for 8.0s; crash the leader @4.0s for 1.0s`.
    pub fn describe(&self, topology: &Topology) -> String {
        if self.steps.is_empty() {
            return "no faults".to_string();
        }
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{} @{:.1}s for {:.1}s",
                    s.fault.label(topology),
                    s.start.as_secs_f64(),
                    s.duration.as_secs_f64()
                )
            })
            .collect();
        steps.join("; ")
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(id) => write!(f, "node {id}"),
            Target::Leader => write!(f, "leader"),
            Target::Follower => write!(f, "follower"),
        }
    }
}

/// Every single fault worth running on `topology`, each named by its shape: every datacenter lost and isolated,
/// every link cut, one-way cuts between datacenters, the leader and the leader's datacenter isolated, a
/// majorities ring and a bridge, and a crash, a power loss and a pause of the leader.
pub fn single_faults(topology: &Topology) -> Vec<Fault> {
    let dcs: Vec<String> = topology.datacenters().iter().map(|dc| dc.name.clone()).collect();
    let mut faults = Vec::new();
    let shape = |shape| Fault::Shape { shape };
    if dcs.len() > 1 {
        faults.extend(dcs.iter().map(|dc| shape(FaultShape::LoseDc { dc: dc.clone() })));
        faults.extend(dcs.iter().map(|dc| shape(FaultShape::IsolateDc { dc: dc.clone() })));
        faults.extend(topology.dc_links().map(|(a, b, _)| shape(FaultShape::CutDcLink { a: a.into(), b: b.into() })));
        for from in &dcs {
            for to in dcs.iter().filter(|to| *to != from) {
                faults.push(shape(FaultShape::OneWayDc { from: from.clone(), to: to.clone() }));
            }
        }
        faults.push(Fault::IsolateLeaderDc);
    } else {
        // One datacenter: the one-way cuts are between nodes, the leader's outbound link to a follower.
        let voters: Vec<NodeId> = topology.voter_ids().into_iter().collect();
        if voters.len() > 1 {
            faults.push(shape(FaultShape::OneWay { from: voters[0], to: voters[1] }));
        }
    }
    faults.push(Fault::IsolateLeader);
    if topology.voter_count() >= 3 {
        faults.push(shape(FaultShape::MajoritiesRing));
        faults.push(shape(FaultShape::Bridge));
    }
    faults.push(Fault::Crash { target: Target::Leader });
    faults.push(Fault::PowerLoss { target: Target::Leader });
    faults.push(Fault::Pause { target: Target::Leader });
    faults
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_single_fault_spec_reads_back_as_the_same_fault() {
        for name in quorumlab_quorum::shipped::NAMES {
            let t = quorumlab_quorum::shipped::load(name).expect("shipped");
            for fault in single_faults(&t) {
                let spec = fault.spec(&t);
                assert_eq!(Fault::parse(&spec, &t), Ok(fault.clone()), "{name}: {spec}");
            }
        }
    }

    #[test]
    fn a_schedule_spec_reads_back_as_the_same_schedule() {
        let t = quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped");
        let schedule = Schedule {
            steps: vec![
                Step { start: Duration::ZERO, fault: Fault::IsolateLeader, duration: Duration::from_secs(12) },
                Step {
                    start: Duration::from_millis(2500),
                    fault: Fault::Loss { a: "dc1".into(), b: "dc3".into(), percent: 5 },
                    duration: Duration::from_secs(1),
                },
            ],
        };
        assert_eq!(Schedule::parse(&schedule.spec(&t), &t, Duration::ZERO), Ok(schedule));
        let default = Schedule::parse("cut:dc1:dc2", &t, Duration::from_secs(9)).expect("parses");
        assert_eq!(default.end(), Duration::from_secs(9));
        assert!(Schedule::parse("cut:dc1:dc2@1s", &t, Duration::ZERO).unwrap_err().contains("FAULT@START+DURATION"));
        assert!(Schedule::parse("cut:dc1:dc2@xs+1s", &t, Duration::ZERO).unwrap_err().contains("not a duration"));
    }

    #[test]
    fn a_bad_fault_spec_says_what_is_allowed() {
        let t = quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped");
        let err = Fault::parse("cut:dc1:dc9", &t).unwrap_err();
        assert!(err.contains("no such datacenter") && err.contains("faults are"), "{err}");
        assert!(Fault::parse("loss:dc1:dc2:0", &t).unwrap_err().contains("percentage"));
        assert!(Fault::parse("latency:dc1:dc9:50", &t).unwrap_err().contains("no datacenter \"dc9\""));
        assert!(Fault::parse("explode", &t).unwrap_err().contains("expected lose:DC"));
        assert!(Fault::parse("cut:dc1:dc1", &t).is_err());
        assert!(Fault::parse("clock:dc1:0", &t).unwrap_err().contains("1 to 1000 percent"));
        assert!(Fault::parse("clock:dc9:50", &t).unwrap_err().contains("no datacenter \"dc9\""));
    }

    #[test]
    fn a_clock_fault_reads_back_and_names_its_datacenter() {
        let t = quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped");
        let slow = Fault::parse("clock:dc1:50", &t).expect("parses");
        assert_eq!(slow, Fault::ClockRate { dc: "dc1".into(), percent: 50 });
        assert_eq!(Fault::parse(&slow.spec(&t), &t), Ok(slow.clone()));
        assert_eq!(slow.label(&t), "dc1's clocks at 50% speed");
        assert_eq!(slow.shape(&t, Some(1)), None, "client clocks change nothing the oracle models");
    }

    #[test]
    fn leader_faults_resolve_against_the_leader_when_they_start() {
        let t = quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped");
        assert_eq!(Fault::IsolateLeaderDc.shape(&t, Some(4)), Some(FaultShape::IsolateDc { dc: "dc2".into() }));
        assert_eq!(Fault::IsolateLeader.shape(&t, None), None);
        assert_eq!(
            Fault::PowerLoss { target: Target::Follower }.shape(&t, Some(1)),
            Some(FaultShape::CrashNode { node: 2 })
        );
        assert_eq!(Fault::Pause { target: Target::Leader }.shape(&t, Some(1)), None);
    }
}
