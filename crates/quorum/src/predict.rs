//! The oracle: given a topology and who can send to whom, where can a working majority exist?
//!
//! The rules, each one a line of Raft:
//! 1. A voter can lead only if it can exchange messages both ways (vote request and reply, append and ack) with
//!    a majority of all voters, itself included. Down voters still count in the denominator: membership does
//!    not shrink because a datacenter burned.
//! 2. A node can commit a client's write if it is a possible leader or exchanges messages both ways with one.
//!    Clients in a datacenter reach the cluster through that datacenter's nodes; clients of a datacenter without
//!    nodes, through any node whose datacenter link to theirs works both ways.
//! 3. A voter that can never lead, and misses the heartbeats of some possible leader while still reaching a
//!    voter that leader needs, times out, campaigns with a higher term and makes that leader step down in plain
//!    Raft: it can disrupt. These are only the disruptors PreVote stops (nobody grants them a pre-vote); the full
//!    set per election rule, including voters that could lead themselves, is [`crate::leader`]'s, which also
//!    says who really leads once elections settle. This module is the network's view: who *could* lead.
//!
//! "Can lead" is structural: it says the network allows it. Raft's log-freshness check can still refuse a
//! particular candidate, but never makes a leader possible where this says none is.
//!
//! Possible leaders are alternatives, not a crowd: two of them never hold majorities at once, because their
//! majorities share a voter ([`Prediction::shared_voters`]). [`predict`] asserts this in debug builds.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::connectivity::{is_live_voter, Connectivity};
use crate::majority::QuorumRule;
use crate::topology::{NodeId, Role, Topology};

/// What the network allows for one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeVerdict {
    pub id: NodeId,
    pub host: String,
    pub dc: String,
    pub role: Role,
    pub down: bool,
    /// Voters this node exchanges messages with both ways, itself included (empty unless a live voter).
    pub quorum: BTreeSet<NodeId>,
    pub can_lead: bool,
    /// Possible leaders this node can exchange messages with (itself included when it can lead).
    pub reachable_leaders: BTreeSet<NodeId>,
    pub can_commit: bool,
    pub can_disrupt: bool,
}

/// The oracle's answer for one topology and one connectivity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prediction {
    pub voters: usize,
    pub majority: usize,
    pub nodes: BTreeMap<NodeId, NodeVerdict>,
    /// Per client datacenter: can clients there commit a write?
    pub client_dcs: BTreeMap<String, bool>,
}

/// The prediction under the real majority rule; debug builds assert that possible leaders' majorities intersect.
pub fn predict(topology: &Topology, connectivity: &Connectivity) -> Prediction {
    let prediction = predict_with(topology, connectivity, QuorumRule::MAJORITY);
    debug_assert!(prediction.leader_quorums_intersect(), "two possible leaders with disjoint majorities");
    prediction
}

/// The prediction under any quorum rule: for tests and teaching, to show what a wrong rule breaks.
pub fn predict_with(topology: &Topology, connectivity: &Connectivity, rule: QuorumRule) -> Prediction {
    let voters = topology.voter_ids();
    let majority = (rule.votes_needed)(voters.len());
    let quorum_of = |node: NodeId| -> BTreeSet<NodeId> {
        if !is_live_voter(topology, connectivity, node) {
            return BTreeSet::new();
        }
        voters.iter().copied().filter(|&v| v == node || connectivity.two_way(node, v)).collect()
    };
    let quorums: BTreeMap<NodeId, BTreeSet<NodeId>> = topology.node_ids().map(|id| (id, quorum_of(id))).collect();
    let leaders: BTreeSet<NodeId> =
        quorums.iter().filter(|(_, q)| !q.is_empty() && q.len() >= majority).map(|(&id, _)| id).collect();

    let mut nodes = BTreeMap::new();
    for node in topology.nodes() {
        let id = node.id;
        let reachable_leaders: BTreeSet<NodeId> =
            leaders.iter().copied().filter(|&l| l == id || connectivity.two_way(id, l)).collect();
        let can_lead = leaders.contains(&id);
        let can_disrupt = !can_lead
            && is_live_voter(topology, connectivity, id)
            && leaders.iter().any(|&leader| {
                !connectivity.can_send(leader, id)
                    && quorums[&leader].iter().any(|&needed| needed != id && connectivity.can_send(id, needed))
            });
        nodes.insert(
            id,
            NodeVerdict {
                id,
                host: node.host.clone(),
                dc: node.dc.clone(),
                role: node.role,
                down: connectivity.is_down(id),
                quorum: quorums[&id].clone(),
                can_lead,
                can_commit: !reachable_leaders.is_empty(),
                reachable_leaders,
                can_disrupt,
            },
        );
    }
    let client_dcs = topology
        .client_dcs()
        .into_iter()
        .map(|dc| (dc.to_string(), connectivity.client_entry_nodes(topology, dc).iter().any(|id| nodes[id].can_commit)))
        .collect();
    Prediction { voters: voters.len(), majority, nodes, client_dcs }
}

impl Prediction {
    /// Whether `node` could become leader and hold a majority. False for unknown ids.
    pub fn can_lead(&self, node: NodeId) -> bool {
        self.nodes.get(&node).is_some_and(|v| v.can_lead)
    }

    /// Whether a write sent to `node` can commit (through some possible leader). False for unknown ids.
    pub fn can_commit_from(&self, node: NodeId) -> bool {
        self.nodes.get(&node).is_some_and(|v| v.can_commit)
    }

    /// Whether clients in datacenter `dc` can commit; false for a datacenter without clients.
    pub fn client_dc_can_commit(&self, dc: &str) -> bool {
        self.client_dcs.get(dc).copied().unwrap_or(false)
    }

    /// Whether `node` can never lead yet can depose a leader by campaigning in plain Raft: the disruptors that
    /// PreVote stops. See [`crate::leader::LeaderPrediction::disruptors`] for every rule's full set.
    pub fn can_disrupt(&self, node: NodeId) -> bool {
        self.nodes.get(&node).is_some_and(|v| v.can_disrupt)
    }

    /// Voters that could hold a majority — one at a time.
    pub fn possible_leaders(&self) -> BTreeSet<NodeId> {
        self.nodes.values().filter(|v| v.can_lead).map(|v| v.id).collect()
    }

    pub fn any_leader_possible(&self) -> bool {
        self.nodes.values().any(|v| v.can_lead)
    }

    /// Every node for which [`Prediction::can_disrupt`] holds.
    pub fn disruptors(&self) -> BTreeSet<NodeId> {
        self.nodes.values().filter(|v| v.can_disrupt).map(|v| v.id).collect()
    }

    /// Voters `node` exchanges messages with both ways, itself included.
    pub fn quorum_of(&self, node: NodeId) -> BTreeSet<NodeId> {
        self.nodes.get(&node).map(|v| v.quorum.clone()).unwrap_or_default()
    }

    /// Nodes that can commit while `leader` leads (empty when it cannot lead).
    pub fn served_by(&self, leader: NodeId) -> BTreeSet<NodeId> {
        self.nodes.values().filter(|v| v.reachable_leaders.contains(&leader)).map(|v| v.id).collect()
    }

    /// Voters that two leaders' majorities share: the reason they cannot both commit.
    pub fn shared_voters(&self, a: NodeId, b: NodeId) -> BTreeSet<NodeId> {
        self.quorum_of(a).intersection(&self.quorum_of(b)).copied().collect()
    }

    /// Whether every two possible leaders' majorities share a voter (true for any correct majority rule).
    pub fn leader_quorums_intersect(&self) -> bool {
        let leaders: Vec<NodeId> = self.possible_leaders().into_iter().collect();
        leaders.iter().enumerate().all(|(i, &a)| leaders[i + 1..].iter().all(|&b| !self.shared_voters(a, b).is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectivity::FaultShape;
    use crate::shipped;

    fn topology(name: &str) -> Topology {
        shipped::load(name).expect("shipped topology")
    }

    fn under(topology: &Topology, fault: FaultShape) -> Prediction {
        predict(topology, &fault.apply(topology).expect("fault applies"))
    }

    fn hosts(topology: &Topology, ids: &BTreeSet<NodeId>) -> Vec<String> {
        ids.iter().filter_map(|&id| topology.host(id).map(str::to_string)).collect()
    }

    #[test]
    fn two_two_one_link_cut_leaves_a_majority_on_either_side_through_dc3_but_never_both() {
        let t = topology("etcd-2-2-1");
        let p = under(&t, FaultShape::CutDcLink { a: "dc1".into(), b: "dc2".into() });
        // The common mistake: "dc1 sees 2, dc2 sees 2, 2 < 3, nobody has quorum". dc3 sees both.
        assert_eq!(hosts(&t, &p.possible_leaders()), ["dc1-n1", "dc1-n2", "dc2-n1", "dc2-n2", "dc3-n1"]);
        assert_eq!(hosts(&t, &p.quorum_of(1)), ["dc1-n1", "dc1-n2", "dc3-n1"]);
        assert_eq!(hosts(&t, &p.quorum_of(3)), ["dc2-n1", "dc2-n2", "dc3-n1"]);
        assert_eq!(hosts(&t, &p.shared_voters(1, 3)), ["dc3-n1"]);
        assert!(p.client_dc_can_commit("dc1") && p.client_dc_can_commit("dc2"));
        assert_eq!(hosts(&t, &p.served_by(1)), ["dc1-n1", "dc1-n2", "dc3-n1"], "dc2 cannot reach a dc1 leader");
    }

    #[test]
    fn a_one_way_cut_makes_a_node_that_can_never_lead_but_can_disrupt() {
        let t = topology("etcd-3");
        // dc1-n3 hears nobody but everyone hears it: no heartbeats arrive, so it campaigns and bumps terms.
        let faults = (1..=2).map(|from| FaultShape::OneWay { from, to: 3 }).collect();
        let p = under(&t, FaultShape::All { faults });
        assert!(!p.can_lead(3) && !p.can_commit_from(3));
        assert!(p.can_lead(1) && p.can_lead(2));
        assert_eq!(p.disruptors(), BTreeSet::from([3]));
    }

    #[test]
    fn majorities_ring_on_five_lets_every_node_lead_with_a_different_majority() {
        let t = topology("etcd-5");
        let p = under(&t, FaultShape::MajoritiesRing);
        assert_eq!(p.possible_leaders(), (1..=5).collect());
        assert_eq!(p.quorum_of(1), BTreeSet::from([5, 1, 2]));
        assert_eq!(p.quorum_of(3), BTreeSet::from([2, 3, 4]));
        assert_eq!(p.shared_voters(1, 3), BTreeSet::from([2]));
        assert!(p.leader_quorums_intersect());
        assert_eq!(p.served_by(1), BTreeSet::from([5, 1, 2]), "a leader serves only its own view");
    }

    #[test]
    fn bridge_on_five_lets_either_side_lead_through_the_bridge_which_both_majorities_share() {
        let t = topology("etcd-5");
        let p = under(&t, FaultShape::Bridge);
        assert_eq!(p.possible_leaders(), (1..=5).collect(), "each side has 2 + the bridge = 3");
        assert_eq!(p.served_by(3), (1..=5).collect(), "only the bridge serves everyone");
        assert_eq!(p.shared_voters(1, 5), BTreeSet::from([3]));
        let split = FaultShape::SplitGroups { groups: vec![BTreeSet::from([1, 2]), BTreeSet::from([3, 4, 5])] };
        assert_eq!(under(&t, split).possible_leaders(), BTreeSet::from([3, 4, 5]));
    }

    #[test]
    fn isolating_the_majority_dc_keeps_it_leading_while_losing_it_does_not() {
        let t = topology("etcd-3-2");
        assert_eq!(under(&t, FaultShape::IsolateDc { dc: "dc1".into() }).possible_leaders(), (1..=3).collect());
        let p = under(&t, FaultShape::LoseDc { dc: "dc1".into() });
        assert!(!p.any_leader_possible());
        assert!(!p.client_dc_can_commit("dc2"), "2 of 5 voters must refuse writes");
    }

    /// Every shipped topology under every single fault, checked against counting by hand: a leader in a
    /// datacenter gathers its own voters plus those of every datacenter it still talks to.
    #[test]
    fn every_shipped_topology_under_every_single_dc_fault_matches_hand_counting() {
        for name in shipped::NAMES {
            let t = topology(name);
            for fault in FaultShape::single_dc_faults(&t) {
                let p = under(&t, fault.clone());
                for dc in t.datacenters() {
                    let gathered: usize = t
                        .datacenters()
                        .iter()
                        .filter(|other| match &fault {
                            FaultShape::LoseDc { dc: lost } => *lost != dc.name && *lost != other.name,
                            FaultShape::CutDcLink { a, b } => {
                                !((*a == dc.name && *b == other.name) || (*b == dc.name && *a == other.name))
                            }
                            _ => unreachable!("single_dc_faults yields only these"),
                        })
                        .map(|other| other.voters as usize)
                        .sum();
                    let expected = dc.voters > 0 && gathered >= t.majority();
                    let actual = t.nodes_in_dc(&dc.name).iter().any(|&id| p.can_lead(id));
                    assert_eq!(actual, expected, "{name} / {} / leader in {}", fault.label(&t), dc.name);
                }
            }
            for node in t.node_ids() {
                let p = under(&t, FaultShape::IsolateNode { node });
                assert!(!p.can_lead(node) || t.voter_count() == 1, "{name}: isolated node leads alone");
                let others_lead = t.node_ids().any(|other| other != node && p.can_lead(other));
                let voters_left = t.voter_ids().iter().filter(|&&v| v != node).count();
                assert_eq!(others_lead, voters_left >= t.majority(), "{name}: isolate node {node}");
            }
        }
    }
}
