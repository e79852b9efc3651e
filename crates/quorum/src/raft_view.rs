//! What Raft does under a fault, per leader location and per election variant: [`predict_with_leader`]
//! applied to every case `explain` judges, and the text that shows it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::connectivity::Connectivity;
use crate::leader::{predict_with_leader, term_timeline, Availability, RaftVariant};
use crate::predict::predict;
use crate::report::Doc;
use crate::topology::{NodeId, Topology};

/// The refined prediction for one starting leader and one variant, by host name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RaftOutcome {
    /// Host leading when the fault starts; `None` for no leader.
    pub leader_at_start: Option<String>,
    /// The starting leader is down (its datacenter lost): the same as no leader.
    pub leader_at_start_down: bool,
    pub variant: RaftVariant,
    pub client_dcs: BTreeMap<String, Availability>,
    pub leaders_after: Vec<String>,
    pub leadership_can_move: bool,
    pub disruptors: Vec<String>,
    pub churns: bool,
    pub reasons: BTreeMap<String, String>,
    pub summary: String,
    pub caveats: Vec<String>,
}

/// Who can unseat a leader under each variant: the union, over every possible leader, of the voters that can
/// unseat it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Disruptors {
    /// Plain Raft: voters that miss a possible leader's heartbeats and whose higher term reaches it.
    pub plain: Vec<String>,
    /// PreVote: those of them that could lead themselves (their pre-vote succeeds while their log is fresh).
    pub prevote: Vec<String>,
    /// Leader lease: those of them that can send to the leader directly (allowed, not required).
    pub lease: Vec<String>,
}

/// The leaders to ask about: none, then the first voter of each datacenter that has one (under datacenter
/// faults every voter of a datacenter fares alike).
pub fn leader_locations(topology: &Topology) -> Vec<Option<NodeId>> {
    let mut locations = vec![None];
    for dc in topology.datacenters() {
        if let Some(&first) = topology.nodes_in_dc(&dc.name).iter().find(|&&id| topology.voter_ids().contains(&id)) {
            locations.push(Some(first));
        }
    }
    locations
}

/// Every (leader location × variant) outcome for one connectivity.
pub fn outcomes(topology: &Topology, connectivity: &Connectivity) -> Vec<RaftOutcome> {
    let host = |id: NodeId| topology.host(id).unwrap_or("?").to_string();
    let hosts = |ids: &BTreeSet<NodeId>| ids.iter().map(|&id| host(id)).collect::<Vec<_>>();
    let mut all = Vec::new();
    for leader in leader_locations(topology) {
        for variant in RaftVariant::ALL {
            let p = predict_with_leader(topology, connectivity, variant, leader);
            all.push(RaftOutcome {
                leader_at_start: leader.map(host),
                leader_at_start_down: leader.is_some_and(|l| connectivity.is_down(l)),
                variant,
                client_dcs: p.client_dcs,
                leaders_after: hosts(&p.leaders_after),
                leadership_can_move: p.leadership_can_move,
                disruptors: hosts(&p.disruptors),
                churns: p.churns,
                reasons: p.reasons,
                summary: p.summary,
                caveats: p.caveats,
            });
        }
    }
    all
}

/// The disruptors of every possible leader, per variant. Asks about the first possible leader of each
/// datacenter only: under the datacenter-level faults `explain` enumerates, every voter of a datacenter fares
/// alike, so the union is the same and the cost does not grow with the square of the voters.
pub fn disruptors(topology: &Topology, connectivity: &Connectivity) -> Disruptors {
    let mut seen_dcs = BTreeSet::new();
    let possible: Vec<NodeId> = predict(topology, connectivity)
        .possible_leaders()
        .into_iter()
        .filter(|&l| topology.dc_of(l).is_some_and(|dc| seen_dcs.insert(dc.to_string())))
        .collect();
    let of = |variant: RaftVariant| -> Vec<String> {
        let all: BTreeSet<NodeId> = possible
            .iter()
            .flat_map(|&l| predict_with_leader(topology, connectivity, variant, Some(l)).disruptors)
            .collect();
        all.iter().filter_map(|&id| topology.host(id).map(str::to_string)).collect()
    };
    Disruptors { plain: of(RaftVariant::Plain), prevote: of(RaftVariant::PreVote), lease: of(RaftVariant::LeaderLease) }
}

/// `dc1 ✓ dc2 ✗`.
pub fn cell(client_dcs: &BTreeMap<String, Availability>, order: &[&str]) -> String {
    let mark = |a: Availability| match a {
        Availability::Available => "✓",
        Availability::Unavailable => "✗",
        Availability::Either => "?",
    };
    order
        .iter()
        .filter_map(|dc| client_dcs.get(*dc).map(|&a| format!("{dc} {}", mark(a))))
        .collect::<Vec<_>>()
        .join(" ")
}

pub const LEGEND: &str = "✓ its clients' writes commit once elections settle; ✗ none commit; ? either, depending on a \
race (allowed, not required). quorumlab's node (openraft 0.9) follows the leader lease rule: a voter that hears a \
live leader refuses other candidates' votes.";

pub const DISRUPTOR_DEFINITION: &str = "A disruptor is a voter that misses a leader's heartbeats and unseats it by \
campaigning. Without PreVote, any such voter whose higher term reaches the leader does, whether or not it could \
lead. PreVote stops the ones that could never lead (nobody grants their pre-vote); it does not stop a voter that \
could lead itself while its log is as fresh as the voters'. The lease rule makes every voter that still hears the \
leader refuse the campaigner and keep its term, so only a vote request sent straight to the leader can unseat it, \
and only once the leader's own lease lapses.";

/// The (leader location × variant) table rows for one case, the label on the first row.
pub fn rows(label: &str, outcomes: &[RaftOutcome], order: &[&str]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut by_leader: Vec<(&Option<String>, bool, Vec<&RaftOutcome>)> = Vec::new();
    for outcome in outcomes {
        match by_leader.iter_mut().find(|(l, _, _)| *l == &outcome.leader_at_start) {
            Some((_, _, list)) => list.push(outcome),
            None => by_leader.push((&outcome.leader_at_start, outcome.leader_at_start_down, vec![outcome])),
        }
    }
    for (i, (leader, down, list)) in by_leader.iter().enumerate() {
        let at_start = match (leader, down) {
            (None, _) => "none".to_string(),
            (Some(host), true) => format!("{host} (down)"),
            (Some(host), false) => host.clone(),
        };
        let mut row = vec![if i == 0 { label.to_string() } else { String::new() }, at_start];
        for variant in RaftVariant::ALL {
            row.push(list.iter().find(|o| o.variant == variant).map_or(String::new(), |o| cell(&o.client_dcs, order)));
        }
        let lease = list.iter().find(|o| o.variant == RaftVariant::QUORUMLAB_NODE);
        row.push(lease.map_or(String::new(), |o| list_or_nobody(&o.leaders_after)));
        rows.push(row);
    }
    rows
}

pub const HEADER: [&str; 6] =
    ["fault", "leader at start", "plain Raft", "PreVote", "leader lease", "leads after (lease)"];

fn list_or_nobody(items: &[String]) -> String {
    if items.is_empty() {
        "nobody".to_string()
    } else {
        items.join(", ")
    }
}

/// The full story for one fault and one starting leader: per variant, the verdicts with their reasons and a
/// per-node timeline.
pub fn story(doc: &mut Doc, topology: &Topology, connectivity: &Connectivity, leader: Option<NodeId>) {
    for variant in RaftVariant::ALL {
        let p = predict_with_leader(topology, connectivity, variant, leader);
        let node = if variant == RaftVariant::QUORUMLAB_NODE { " (quorumlab's node)" } else { "" };
        doc.heading(format!("{}{node}", variant.name()));
        doc.para(p.summary.clone());
        doc.lines(p.reasons.values().map(|r| format!("- {r}")).collect());
        let rows = term_timeline(topology, connectivity, variant, leader)
            .into_iter()
            .map(|row| vec![row.host, row.during, row.on_heal])
            .collect();
        doc.table(&["node", "while the fault lasts (t = term at its start)", "when it heals"], rows);
        doc.para(p.caveats.join(" "));
    }
}
