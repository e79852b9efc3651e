//! `quorum explain TOPOLOGY --fault SPEC… [--leader HOST] [--rule majority|half]`: one fault (or several at
//! once) in detail: who could lead with which voters, what Raft does per leader location and election rule,
//! and, for one starting leader, every node's part while the fault lasts and when it heals.
//!
//! Fault specs, one `--fault` each (several apply at once):
//! `lose:DC`, `isolate:DC`, `cut:DC:DC` (both ways), `drop:DC:DC` (messages from the first to the second),
//! `crash:HOST`, `isolate:HOST`, `drop:HOST:HOST`.

use serde::Serialize;

use crate::connectivity::FaultShape;
use crate::leader::{term_timeline, RaftVariant, TimelineRow};
use crate::majority::QuorumRule;
use crate::predict::predict_with;
use crate::raft_view::{self, RaftOutcome};
use crate::report::Doc;
use crate::topology::{NodeId, Topology};

/// Turns one `--fault` spec into a shape, or says what is wrong with it.
pub fn parse_fault(topology: &Topology, spec: &str) -> Result<FaultShape, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let dc = |name: &str| topology.datacenter(name).map(|d| d.name.clone());
    let node = |host: &str| topology.node_by_host(host).map(|n| n.id);
    let shape = match parts.as_slice() {
        ["lose", d] => dc(d).map(|dc| FaultShape::LoseDc { dc }),
        ["isolate", x] => {
            dc(x).map(|dc| FaultShape::IsolateDc { dc }).or(node(x).map(|node| FaultShape::IsolateNode { node }))
        }
        ["crash", h] => node(h).map(|node| FaultShape::CrashNode { node }),
        ["cut", a, b] if a != b => dc(a).zip(dc(b)).map(|(a, b)| FaultShape::CutDcLink { a, b }),
        ["drop", a, b] if a != b => dc(a)
            .zip(dc(b))
            .map(|(from, to)| FaultShape::OneWayDc { from, to })
            .or(node(a).zip(node(b)).map(|(from, to)| FaultShape::OneWay { from, to })),
        _ => {
            return Err(format!(
                "--fault {spec}: expected lose:DC, isolate:DC, cut:DC:DC, drop:DC:DC, crash:HOST, isolate:HOST or \
                 drop:HOST:HOST"
            ))
        }
    };
    shape.ok_or_else(|| format!("--fault {spec}: no such datacenter or host in {}", topology.name()))
}

/// One fault in detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultReport {
    pub name: String,
    pub placement: String,
    pub fault: String,
    pub faults: Vec<FaultShape>,
    /// The quorum rule the "can lead" lines use: `majority (n/2 + 1)`, or the wrong `half (n/2), WRONG`.
    pub rule: String,
    /// Votes needed under `rule`.
    pub majority: usize,
    /// Each voter that could lead under `rule`, with the voters it reaches both ways.
    pub can_lead: Vec<(String, Vec<String>)>,
    /// Two would-be leaders whose vote sets share nobody (only a wrong rule allows it).
    pub disjoint: Option<(String, String)>,
    /// What Raft does, per leader location and variant (majority rule only).
    pub raft: Vec<RaftOutcome>,
    pub leader_at_start: Option<String>,
    /// Per variant, every node's part (when `--leader` is given, majority rule only).
    pub timelines: Vec<(RaftVariant, Vec<TimelineRow>)>,
}

/// Builds the report; `leader` is a host name.
pub fn fault_report(
    topology: &Topology,
    faults: Vec<FaultShape>,
    leader: Option<&str>,
    rule: QuorumRule,
) -> Result<FaultReport, String> {
    let leader_id: Option<NodeId> = match leader {
        Some(host) => {
            Some(topology.node_by_host(host).map(|n| n.id).ok_or_else(|| format!("--leader {host}: no such host"))?)
        }
        None => None,
    };
    let all = FaultShape::All { faults: faults.clone() };
    let connectivity = all.apply(topology).map_err(|e| e.to_string())?;
    let prediction = predict_with(topology, &connectivity, rule);
    let host = |id: NodeId| topology.host(id).unwrap_or("?").to_string();
    let can_lead: Vec<(String, Vec<String>)> = prediction
        .possible_leaders()
        .into_iter()
        .map(|l| (host(l), prediction.quorum_of(l).into_iter().map(host).collect()))
        .collect();
    let leaders: Vec<NodeId> = prediction.possible_leaders().into_iter().collect();
    let disjoint = leaders.iter().enumerate().find_map(|(i, &a)| {
        leaders[i + 1..].iter().find(|&&b| prediction.shared_voters(a, b).is_empty()).map(|&b| (host(a), host(b)))
    });
    let majority_rule = rule.name == QuorumRule::MAJORITY.name;
    let raft = if majority_rule { raft_view::outcomes(topology, &connectivity) } else { Vec::new() };
    let timelines = match (majority_rule, leader_id) {
        (true, Some(l)) => {
            RaftVariant::ALL.iter().map(|&v| (v, term_timeline(topology, &connectivity, v, Some(l)))).collect()
        }
        _ => Vec::new(),
    };
    Ok(FaultReport {
        name: topology.name().to_string(),
        placement: topology.placement_label(),
        fault: all.label(topology),
        faults,
        rule: rule.name.to_string(),
        majority: prediction.majority,
        can_lead,
        disjoint,
        raft,
        leader_at_start: leader.map(str::to_string),
        timelines,
    })
}

impl FaultReport {
    /// The "who can lead" lines alone, as the guide quotes them.
    pub fn leader_lines(&self) -> Vec<String> {
        let mut lines =
            vec![format!("{}, {}, rule {}: majority = {}", self.name, self.fault, self.rule, self.majority)];
        if self.can_lead.is_empty() {
            let lost =
                self.faults.iter().any(|f| matches!(f, FaultShape::LoseDc { .. } | FaultShape::CrashNode { .. }));
            let cut =
                self.faults.iter().any(|f| !matches!(f, FaultShape::LoseDc { .. } | FaultShape::CrashNode { .. }));
            let until = match (lost, cut) {
                (true, true) => "until enough voters are back or links heal",
                (true, false) => "until enough voters are back",
                _ => "until links heal",
            };
            lines.push(format!("  no node can lead: every write is refused {until}"));
        }
        for (leader, quorum) in &self.can_lead {
            lines.push(format!("  {leader} can lead with {{{}}}", quorum.join(" ")));
        }
        if let Some((a, b)) = &self.disjoint {
            lines.push(format!("  {a} and {b} share no voter: both could lead and commit at once (split brain)"));
        }
        lines
    }

    pub fn doc(&self, topology: &Topology) -> Doc {
        let mut doc = Doc::default();
        doc.lines(self.leader_lines());
        if self.raft.is_empty() {
            return doc;
        }
        doc.heading("What Raft does: per leader location and election rule");
        doc.para(raft_view::LEGEND);
        let order: Vec<&str> = topology.client_dcs();
        // One fault, named on the first line: the table needs no fault column.
        let rows = raft_view::rows("", &self.raft, &order).into_iter().map(|row| row[1..].to_vec()).collect();
        doc.table(&raft_view::HEADER[1..], rows);
        if let Some(leader) = &self.leader_at_start {
            let Some(id) = topology.node_by_host(leader).map(|n| n.id) else { return doc };
            let Ok(connectivity) = (FaultShape::All { faults: self.faults.clone() }).apply(topology) else {
                return doc;
            };
            doc.heading(format!("{}, leader {leader} when the fault starts", self.fault));
            raft_view::story(&mut doc, topology, &connectivity, Some(id));
        }
        doc
    }
}
