//! Who can send to whom: a directed graph over a topology's nodes, and the named fault shapes that build one.
//!
//! Links are directed because real cuts are: a firewall rule or a saturated uplink can drop `a → b` while
//! `b → a` still works. Raft messages are never relayed, so only direct links matter (no transitive closure).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::topology::{NodeId, Role, Topology};

/// A directed "can send to" graph over the nodes of one topology; every node can always talk to itself.
/// Starts as a full mesh; faults remove directed links or take nodes down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connectivity {
    nodes: BTreeSet<NodeId>,
    /// Directed links that drop every message, `(from, to)`.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Crashed nodes: they neither send nor receive, and do not campaign.
    down: BTreeSet<NodeId>,
    /// Directed datacenter links that drop client traffic, `(from, to)`. Only clients of a datacenter without
    /// nodes read it: they reach the cluster over these links (node-to-node links are in `cut`).
    client_cut: BTreeSet<(String, String)>,
    /// Datacenters lost whole: their clients are gone with them.
    lost_dcs: BTreeSet<String>,
}

impl Connectivity {
    /// Every node reaches every other node.
    pub fn full_mesh(topology: &Topology) -> Connectivity {
        Connectivity {
            nodes: topology.node_ids().collect(),
            cut: BTreeSet::new(),
            down: BTreeSet::new(),
            client_cut: BTreeSet::new(),
            lost_dcs: BTreeSet::new(),
        }
    }

    pub fn nodes(&self) -> &BTreeSet<NodeId> {
        &self.nodes
    }

    /// Whether a message from `from` arrives at `to`.
    pub fn can_send(&self, from: NodeId, to: NodeId) -> bool {
        let alive = |n: NodeId| self.nodes.contains(&n) && !self.down.contains(&n);
        alive(from) && alive(to) && (from == to || !self.cut.contains(&(from, to)))
    }

    /// Whether `a` and `b` can exchange a request and its reply.
    pub fn two_way(&self, a: NodeId, b: NodeId) -> bool {
        self.can_send(a, b) && self.can_send(b, a)
    }

    pub fn is_down(&self, node: NodeId) -> bool {
        self.down.contains(&node)
    }

    /// Drops messages `from → to` only.
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        if from != to {
            self.cut.insert((from, to));
        }
    }

    /// Drops messages in both directions between `a` and `b`.
    pub fn cut_both_ways(&mut self, a: NodeId, b: NodeId) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Restores `from → to` (a no-op when the link already works).
    pub fn heal_one_way(&mut self, from: NodeId, to: NodeId) {
        self.cut.remove(&(from, to));
    }

    pub fn crash(&mut self, node: NodeId) {
        self.down.insert(node);
    }

    /// Directed links that currently drop messages, in order.
    pub fn cut_links(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.cut.iter().copied()
    }

    pub fn down_nodes(&self) -> &BTreeSet<NodeId> {
        &self.down
    }

    /// The nodes clients of datacenter `dc` send their requests through: its own nodes; for a datacenter with
    /// clients but no node, every live node whose datacenter it still exchanges traffic with both ways.
    pub fn client_entry_nodes(&self, topology: &Topology, dc: &str) -> Vec<NodeId> {
        let own = topology.nodes_in_dc(dc);
        if !own.is_empty() {
            return own;
        }
        if self.lost_dcs.contains(dc) {
            return Vec::new();
        }
        let open = |other: &str| {
            !self.client_cut.contains(&(dc.to_string(), other.to_string()))
                && !self.client_cut.contains(&(other.to_string(), dc.to_string()))
        };
        topology
            .nodes()
            .iter()
            .filter(|node| !self.down.contains(&node.id) && open(&node.dc))
            .map(|node| node.id)
            .collect()
    }

    fn cut_clients(&mut self, from: &str, to: &str) {
        self.client_cut.insert((from.to_string(), to.to_string()));
    }
}

/// A fault that a user or a fault suite names, for a [`FaultShape`] that cannot apply to a topology.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    #[error("unknown datacenter \"{0}\"")]
    UnknownDatacenter(String),
    #[error("a link joins two different datacenters, not \"{0}\" with itself")]
    SameDatacenter(String),
    #[error("node {0} is in more than one group")]
    NodeInTwoGroups(NodeId),
    #[error("node {0} is in no group: name every node when splitting into groups")]
    NodeInNoGroup(NodeId),
}

/// A network fault named by its shape. [`FaultShape::apply`] turns it into a [`Connectivity`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum FaultShape {
    /// Cut every link to and from one node; it keeps running (and may campaign).
    IsolateNode { node: NodeId },
    /// The node crashes: no links, no campaigning.
    CrashNode { node: NodeId },
    /// Cut every link between one datacenter and the rest; inside it, nodes still talk.
    IsolateDc { dc: String },
    /// The datacenter is gone: every node in it is down.
    LoseDc { dc: String },
    /// Cut both directions of the link between two datacenters; others may still see both (non-transitive).
    CutDcLink { a: String, b: String },
    /// Cut one direction only: nothing sent from `from` arrives at `to`.
    OneWay { from: NodeId, to: NodeId },
    /// Cut one direction between two datacenters: nothing sent from a node in `from` arrives in `to`.
    OneWayDc { from: String, to: String },
    /// Nodes talk only within their own group; every node must be in exactly one group.
    SplitGroups { groups: Vec<BTreeSet<NodeId>> },
    /// Voters in a ring (id order), each hearing only its nearest neighbours — just enough to see a majority,
    /// but no two neighbouring views are the same. Learners keep every link.
    MajoritiesRing,
    /// The middle voter (id order) sees everyone; the nodes before it and the nodes after it cannot talk.
    Bridge,
    /// Several faults at once.
    All { faults: Vec<FaultShape> },
}

impl FaultShape {
    /// The connectivity of a full mesh after this fault.
    pub fn apply(&self, topology: &Topology) -> Result<Connectivity, FaultError> {
        let mut connectivity = Connectivity::full_mesh(topology);
        self.apply_to(topology, &mut connectivity)?;
        Ok(connectivity)
    }

    /// Adds this fault to an existing connectivity (faults compose by removing links).
    pub fn apply_to(&self, topology: &Topology, connectivity: &mut Connectivity) -> Result<(), FaultError> {
        let all: Vec<NodeId> = topology.node_ids().collect();
        let known_node = |node: NodeId| topology.node(node).map(|_| node).ok_or(FaultError::UnknownNode(node));
        let dc_nodes = |dc: &str| match topology.datacenter(dc) {
            Some(_) => Ok(topology.nodes_in_dc(dc)),
            None => Err(FaultError::UnknownDatacenter(dc.to_string())),
        };
        match self {
            FaultShape::IsolateNode { node } => {
                let node = known_node(*node)?;
                for &other in &all {
                    connectivity.cut_both_ways(node, other);
                }
            }
            FaultShape::CrashNode { node } => connectivity.crash(known_node(*node)?),
            FaultShape::IsolateDc { dc } => {
                let inside = dc_nodes(dc)?;
                for other in topology.datacenters().iter().filter(|other| other.name != *dc) {
                    connectivity.cut_clients(dc, &other.name);
                    connectivity.cut_clients(&other.name, dc);
                }
                for &a in &inside {
                    for &b in all.iter().filter(|b| !inside.contains(b)) {
                        connectivity.cut_both_ways(a, b);
                    }
                }
            }
            FaultShape::LoseDc { dc } => {
                for node in dc_nodes(dc)? {
                    connectivity.crash(node);
                }
                connectivity.lost_dcs.insert(dc.clone());
            }
            FaultShape::CutDcLink { a, b } | FaultShape::OneWayDc { from: a, to: b } => {
                if a == b {
                    return Err(FaultError::SameDatacenter(a.clone()));
                }
                let (side_a, side_b) = (dc_nodes(a)?, dc_nodes(b)?);
                let both_ways = matches!(self, FaultShape::CutDcLink { .. });
                connectivity.cut_clients(a, b);
                if both_ways {
                    connectivity.cut_clients(b, a);
                }
                for &x in &side_a {
                    for &y in &side_b {
                        connectivity.cut_one_way(x, y);
                        if both_ways {
                            connectivity.cut_one_way(y, x);
                        }
                    }
                }
            }
            FaultShape::OneWay { from, to } => connectivity.cut_one_way(known_node(*from)?, known_node(*to)?),
            FaultShape::SplitGroups { groups } => {
                let mut group_of = std::collections::BTreeMap::new();
                for (index, group) in groups.iter().enumerate() {
                    for &node in group {
                        if group_of.insert(known_node(node)?, index).is_some() {
                            return Err(FaultError::NodeInTwoGroups(node));
                        }
                    }
                }
                if let Some(&missing) = all.iter().find(|node| !group_of.contains_key(node)) {
                    return Err(FaultError::NodeInNoGroup(missing));
                }
                for &a in &all {
                    for &b in &all {
                        if group_of.get(&a) != group_of.get(&b) {
                            connectivity.cut_one_way(a, b);
                        }
                    }
                }
            }
            FaultShape::MajoritiesRing => {
                let voters: Vec<NodeId> = topology.voter_ids().into_iter().collect();
                let n = voters.len();
                // Hearing `reach` neighbours on each side gives a view of 1 + 2·reach ≥ majority voters.
                let reach = crate::majority::majority(n).saturating_sub(1).div_ceil(2);
                for (i, &a) in voters.iter().enumerate() {
                    for (j, &b) in voters.iter().enumerate() {
                        let distance = i.abs_diff(j).min(n - i.abs_diff(j));
                        if distance > reach {
                            connectivity.cut_one_way(a, b);
                        }
                    }
                }
            }
            FaultShape::Bridge => {
                let voters: Vec<NodeId> = topology.voter_ids().into_iter().collect();
                let bridge = voters[voters.len() / 2];
                for &a in all.iter().filter(|&&a| a < bridge) {
                    for &b in all.iter().filter(|&&b| b > bridge) {
                        connectivity.cut_both_ways(a, b);
                    }
                }
            }
            FaultShape::All { faults } => {
                for fault in faults {
                    fault.apply_to(topology, connectivity)?;
                }
            }
        }
        Ok(())
    }

    /// A short name a reader can follow: `lose dc1`, `cut dc1–dc2`, `isolate dc2-n1`.
    pub fn label(&self, topology: &Topology) -> String {
        let host = |node: &NodeId| topology.host(*node).map_or_else(|| format!("node {node}"), str::to_string);
        match self {
            FaultShape::IsolateNode { node } => format!("isolate {}", host(node)),
            FaultShape::CrashNode { node } => format!("crash {}", host(node)),
            FaultShape::IsolateDc { dc } => format!("isolate {dc}"),
            FaultShape::LoseDc { dc } => format!("lose {dc}"),
            FaultShape::CutDcLink { a, b } => format!("cut {a}–{b}"),
            FaultShape::OneWay { from, to } => format!("drop {} → {}", host(from), host(to)),
            FaultShape::OneWayDc { from, to } => format!("drop {from} → {to}"),
            FaultShape::SplitGroups { groups } => {
                let names: Vec<String> =
                    groups.iter().map(|group| group.iter().map(&host).collect::<Vec<_>>().join(" ")).collect();
                format!("split {{{}}}", names.join("} | {"))
            }
            FaultShape::MajoritiesRing => "majorities ring".to_string(),
            FaultShape::Bridge => {
                let voters: Vec<NodeId> = topology.voter_ids().into_iter().collect();
                voters.get(voters.len() / 2).map_or("bridge".to_string(), |b| format!("bridge via {}", host(b)))
            }
            FaultShape::All { faults } => {
                faults.iter().map(|fault| fault.label(topology)).collect::<Vec<_>>().join(" + ")
            }
        }
    }

    /// Every single-datacenter fault worth asking about: each datacenter lost, then each inter-DC link cut.
    pub fn single_dc_faults(topology: &Topology) -> Vec<FaultShape> {
        let mut faults: Vec<FaultShape> =
            topology.datacenters().iter().map(|dc| FaultShape::LoseDc { dc: dc.name.clone() }).collect();
        faults
            .extend(topology.dc_links().map(|(a, b, _)| FaultShape::CutDcLink { a: a.to_string(), b: b.to_string() }));
        faults
    }
}

/// Whether `node` is a voter that is up: only those vote and campaign.
pub(crate) fn is_live_voter(topology: &Topology, connectivity: &Connectivity, node: NodeId) -> bool {
    topology.node(node).is_some_and(|n| n.role == Role::Voter) && !connectivity.is_down(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dc4 holds clients and no node: its clients enter through every node whose datacenter link to dc4 works
    /// both ways, and through none once dc4 is lost or isolated.
    #[test]
    fn clients_of_a_datacenter_without_nodes_enter_through_the_links_that_still_work() {
        let text = "name = \"t\"\ndescription = \"d\"\n\
            [[datacenter]]\nname = \"dc1\"\nvoters = 1\n[[datacenter]]\nname = \"dc2\"\nvoters = 2\n\
            [[datacenter]]\nname = \"dc4\"\nvoters = 0\nclients = true\n\
            [[link]]\nbetween = [\"dc1\", \"dc2\"]\nlatency_ms = 1\n[[link]]\nbetween = [\"dc1\", \"dc4\"]\nlatency_ms = 1\n\
            [[link]]\nbetween = [\"dc2\", \"dc4\"]\nlatency_ms = 1\n";
        let t = Topology::parse("t.toml", text).expect("a client-only datacenter is valid");
        let entries = |fault: FaultShape| fault.apply(&t).expect("applies").client_entry_nodes(&t, "dc4");
        assert_eq!(Connectivity::full_mesh(&t).client_entry_nodes(&t, "dc4"), [1, 2, 3]);
        assert_eq!(entries(FaultShape::CutDcLink { a: "dc1".into(), b: "dc4".into() }), [2, 3]);
        assert_eq!(entries(FaultShape::OneWayDc { from: "dc4".into(), to: "dc2".into() }), [1]);
        assert_eq!(entries(FaultShape::LoseDc { dc: "dc2".into() }), [1]);
        assert!(entries(FaultShape::LoseDc { dc: "dc4".into() }).is_empty());
        assert!(entries(FaultShape::IsolateDc { dc: "dc4".into() }).is_empty());
        assert_eq!(Connectivity::full_mesh(&t).client_entry_nodes(&t, "dc2"), [2, 3], "a DC with nodes: its own");
    }
}
