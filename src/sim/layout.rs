//! A topology becomes a simulated cluster: hosts named as the topology names them, voters and learners as the file
//! says, per-link latency and jitter on every host pair, Raft timing from the file's `[raft]` table, and client
//! hosts placed inside every client datacenter.
//!
//! Host names: Raft nodes are `<dc>-n<k>` (the topology's own names), client hosts `<dc>-client`. A client host
//! sits beside its datacenter's nodes: every link it has gets the same latency profile as theirs, and the nemesis
//! cuts it off exactly where its whole datacenter is cut off (see [`super::nemesis`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quorumlab_quorum::{LinkProfile, Role, Topology};

use super::SimOptions;
use crate::types::NodeId;

/// The host name of the client in datacenter `dc`.
pub fn client_host(dc: &str) -> String {
    format!("{dc}-client")
}

/// A topology of `n` voters in one datacenter, with links of 1–5 ms: what [`SimOptions::new`] builds on.
pub fn flat_topology(n: u64) -> Topology {
    let text = format!(
        "name = \"flat-{n}\"\ndescription = \"{n} voters in one datacenter\"\n\n\
         [[datacenter]]\nname = \"dc1\"\nvoters = {n}\nclients = true\n\n\
         [local_link]\nlatency_ms = 1\njitter_ms = 4\n"
    );
    Topology::parse(&format!("flat-{n}"), &text)
        .unwrap_or_else(|e| unreachable!("a generated one-datacenter topology is valid: {e}"))
}

impl SimOptions {
    /// A simulated cluster laid out on `topology`: its hosts, roles, links and Raft timing.
    pub fn from_topology(topology: &Topology, seed: u64) -> SimOptions {
        SimOptions {
            seed,
            topology: Arc::new(topology.clone()),
            nodes: topology.nodes().iter().map(|node| (node.id, node.host.clone())).collect(),
            timing: topology.raft_timing(),
            snapshot_every: 500,
            logs_kept_after_snapshot: 100,
            duration: Duration::from_secs(600),
            tick: Duration::from_millis(1),
            lease_checkpoint_interval: None,
            planted_bug: None,
        }
    }

    /// Voters, in id order.
    pub fn voters(&self) -> Vec<NodeId> {
        self.topology.nodes().iter().filter(|n| n.role == Role::Voter).map(|n| n.id).collect()
    }

    /// Learners, in id order.
    pub fn learners(&self) -> Vec<NodeId> {
        self.topology.nodes().iter().filter(|n| n.role == Role::Learner).map(|n| n.id).collect()
    }

    /// The datacenter a host sits in: a node's or a database host's own, any other host's by its name's
    /// `<dc>-` prefix (`dc1-client`, `dc2-dbclient`); `None` for hosts placed nowhere.
    pub fn dc_of_host(&self, host: &str) -> Option<String> {
        self.topology.dc_of_host(host).map(str::to_string)
    }

    /// The link profile between two hosts, by their datacenters; `None` when either is not placed.
    pub fn link_between(&self, a: &str, b: &str) -> Option<LinkProfile> {
        self.topology.dc_link(&self.dc_of_host(a)?, &self.dc_of_host(b)?)
    }

    /// Client hosts: client datacenter → host name, in file order.
    pub fn client_hosts(&self) -> BTreeMap<String, String> {
        self.topology.client_dcs().into_iter().map(|dc| (dc.to_string(), client_host(dc))).collect()
    }
}

/// Sets turmoil's latency on the link between two placed hosts: the profile's latency, plus up to its jitter.
pub(super) fn set_link(sim: &turmoil::Sim<'_>, a: &str, b: &str, profile: LinkProfile) {
    sim.set_link_latency(a, b, profile.latency());
    sim.set_link_max_message_latency(a, b, profile.latency() + profile.jitter());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shipped_topology_lays_out_its_hosts_roles_and_timing() {
        let t = quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped");
        let o = SimOptions::from_topology(&t, 7);
        let hosts: Vec<&str> = o.nodes.values().map(String::as_str).collect();
        assert_eq!(hosts, ["dc1-n1", "dc1-n2", "dc2-n1", "dc2-n2", "dc3-n1"]);
        assert_eq!(o.voters(), [1, 2, 3, 4, 5]);
        assert_eq!(o.timing, t.raft_timing());
        assert_eq!(o.client_hosts().into_values().collect::<Vec<_>>(), ["dc1-client", "dc2-client"]);
        assert_eq!(o.dc_of_host("dc2-client").as_deref(), Some("dc2"));
        assert_eq!(o.link_between("dc1-client", "dc3-n1").map(|l| l.latency_ms), Some(15));
        assert_eq!(o.link_between("dc1-n1", "dc1-n2").map(|l| l.latency_ms), Some(1));
        assert_eq!(o.dc_of_host("beside"), None);
    }

    #[test]
    fn the_flat_cluster_is_a_one_datacenter_topology() {
        let o = SimOptions::new(1, 3);
        assert_eq!(o.topology.datacenters().len(), 1);
        assert_eq!(o.voters(), [1, 2, 3]);
        assert!(o.learners().is_empty());
    }
}
