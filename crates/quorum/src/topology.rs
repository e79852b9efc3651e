//! The parsed, validated shape of a cluster: datacenters, the nodes and database hosts in them, how each
//! datacenter's fence devices are reached, the links between them and the Raft timing. Built only by
//! [`Topology::parse`] (from a topology file) or [`Topology::from_voter_counts`] (for placement questions and
//! tests), so every value of this type has passed validation.
//!
//! Invariants (checked on construction, relied on everywhere else):
//! 1. at least one voter in total, and every datacenter holds at least one node, has clients or holds database
//!    hosts (a client-only or database-only datacenter reaches the cluster through the others);
//! 2. node ids are 1-based and dense, in file order: datacenter by datacenter, voters before learners;
//! 3. host names are `<dc>-n<k>`, `k` counting from 1 within the datacenter;
//! 4. there is a link profile for every unordered pair of distinct datacenters;
//! 5. database hosts have their own member ids, 1-based and dense in file order (datacenter by datacenter), apart
//!    from node ids; their host names are `<dc>-db<k>`, `k` counting from 1 within the datacenter (at most 9, so
//!    `k` is one digit);
//! 6. every datacenter says how its fence devices are reached ([`FencePath`], out of band unless the file says
//!    otherwise).
//!
//! No two placed hosts share a name: a node's ends in `-n<k>`, a database host's in `-db<k>`, and what comes
//! before that last `-` is the datacenter's name.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

pub use crate::topology_file::TopologyError;

/// A node's id: 1-based, stable for a given topology file (the simulator uses it as the Raft node id).
pub type NodeId = u64;

/// What a node does in consensus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Votes in elections and counts towards the commit majority.
    Voter,
    /// Receives the log but never votes and never campaigns.
    Learner,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    pub id: NodeId,
    /// `<dc>-n<k>`, e.g. `dc1-n2`: a fault can address a whole datacenter by its prefix.
    pub host: String,
    pub dc: String,
    pub role: Role,
}

/// A database host's member id: 1-based, dense in file order, a numbering apart from [`NodeId`].
pub type MemberId = u64;

/// How the fence devices (power switch, firewall, credential authority) that act on a datacenter's database hosts
/// are reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FencePath {
    /// Over a dedicated management network that no network fault cuts: a fencer anywhere can always reach them.
    OutOfBand,
    /// Across the same links as everything else: a cut that separates the fencer's datacenter from this one makes
    /// the devices unreachable from the fencer.
    InBand,
}

/// One database host (a primary or a replica of the database a failover supervisor manages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbHost {
    /// 1-based and dense in file order, datacenter by datacenter; a numbering apart from node ids.
    pub member: MemberId,
    /// `<dc>-db<k>`, e.g. `dc1-db2`, `k` counting from 1 within the datacenter.
    pub host: String,
    pub dc: String,
}

/// One datacenter as the file declared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Datacenter {
    pub name: String,
    pub voters: u32,
    pub learners: u32,
    /// Whether clients sit here; they reach the cluster through this datacenter's nodes.
    pub clients: bool,
    /// How many database hosts sit here (`<dc>-db1`, `<dc>-db2`, …); 0 when the file says nothing.
    pub databases: u32,
    /// How the fence devices acting on this datacenter's database hosts are reached; out of band by default.
    pub fence_path: FencePath,
}

/// Latency and jitter of one link, in milliseconds (one way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LinkProfile {
    pub latency_ms: u64,
    pub jitter_ms: u64,
}

impl LinkProfile {
    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    pub fn jitter(&self) -> Duration {
        Duration::from_millis(self.jitter_ms)
    }
}

/// Raft timing: the one type the topology file, the simulator and a real node all use. Defaults follow etcd's
/// (100 ms heartbeat, 1 s election timeout); a topology file's `[raft]` table overrides any field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_timeout_ms_min: u64,
    pub election_timeout_ms_max: u64,
    /// Deadline of one peer RPC (append-entries, vote): every RPC has one.
    pub rpc_timeout_ms: u64,
    /// Deadline a node gives one client request before answering "outcome unknown".
    pub request_timeout_ms: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_ms: 100,
            election_timeout_ms_min: 1000,
            election_timeout_ms_max: 2000,
            rpc_timeout_ms: 200,
            request_timeout_ms: 2000,
        }
    }
}

/// A validated cluster topology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Topology {
    name: String,
    description: String,
    /// Where it came from: a file path, `shipped:<name>` or `generated`.
    source: String,
    datacenters: Vec<Datacenter>,
    nodes: Vec<Node>,
    /// Every database host in member order.
    db_hosts: Vec<DbHost>,
    local_link: LinkProfile,
    #[serde(skip)]
    dc_links: BTreeMap<(String, String), LinkProfile>,
    raft: RaftTiming,
}

/// The unordered pair key for a datacenter link: smaller name first.
pub(crate) fn pair_key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

impl Topology {
    /// Assembles a topology from already-validated parts and numbers its nodes and database hosts (invariants 2,
    /// 3 and 5).
    pub(crate) fn assemble(
        name: String,
        description: String,
        source: String,
        datacenters: Vec<Datacenter>,
        local_link: LinkProfile,
        dc_links: BTreeMap<(String, String), LinkProfile>,
        raft: RaftTiming,
    ) -> Topology {
        let mut nodes = Vec::new();
        for dc in &datacenters {
            let roles = std::iter::repeat_n(Role::Voter, dc.voters as usize)
                .chain(std::iter::repeat_n(Role::Learner, dc.learners as usize));
            for (k, role) in roles.enumerate() {
                let id = nodes.len() as NodeId + 1;
                nodes.push(Node { id, host: format!("{}-n{}", dc.name, k + 1), dc: dc.name.clone(), role });
            }
        }
        let mut db_hosts = Vec::new();
        for dc in &datacenters {
            for k in 1..=dc.databases {
                let member = db_hosts.len() as MemberId + 1;
                db_hosts.push(DbHost { member, host: format!("{}-db{k}", dc.name), dc: dc.name.clone() });
            }
        }
        let topology = Topology { name, description, source, datacenters, nodes, db_hosts, local_link, dc_links, raft };
        debug_assert!(topology.voter_count() >= 1, "invariant 1: at least one voter");
        debug_assert!(
            topology.datacenters.iter().all(|dc| dc.voters + dc.learners + dc.databases >= 1 || dc.clients),
            "invariant 1"
        );
        topology
    }

    /// A topology of voters only, datacenters named `dc1`, `dc2`, … in the given order, 1 ms inside a datacenter
    /// and 10 ms between, no database hosts. Datacenters with zero voters are left out (a datacenter must hold
    /// something).
    pub fn from_voter_counts(name: &str, voters_per_dc: &[u32]) -> Result<Topology, TopologyError> {
        let datacenters: Vec<Datacenter> = voters_per_dc
            .iter()
            .enumerate()
            .filter(|(_, &voters)| voters > 0)
            .map(|(i, &voters)| Datacenter {
                name: format!("dc{}", i + 1),
                voters,
                learners: 0,
                clients: true,
                databases: 0,
                fence_path: FencePath::OutOfBand,
            })
            .collect();
        if datacenters.is_empty() {
            return Err(TopologyError::new("generated", None, "no voters: a cluster needs at least one voter"));
        }
        let mut dc_links = BTreeMap::new();
        for (i, a) in datacenters.iter().enumerate() {
            for b in &datacenters[i + 1..] {
                dc_links.insert(pair_key(&a.name, &b.name), LinkProfile { latency_ms: 10, jitter_ms: 1 });
            }
        }
        Ok(Topology::assemble(
            name.to_string(),
            format!("{} voters placed {}", voters_per_dc.iter().sum::<u32>(), placement_label(voters_per_dc)),
            "generated".to_string(),
            datacenters,
            LinkProfile { latency_ms: 1, jitter_ms: 0 },
            dc_links,
            RaftTiming::default(),
        ))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn datacenters(&self) -> &[Datacenter] {
        &self.datacenters
    }

    pub fn datacenter(&self, name: &str) -> Option<&Datacenter> {
        self.datacenters.iter().find(|dc| dc.name == name)
    }

    /// Every node in id order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        let index = usize::try_from(id.checked_sub(1)?).ok()?;
        self.nodes.get(index)
    }

    pub fn node_by_host(&self, host: &str) -> Option<&Node> {
        self.nodes.iter().find(|node| node.host == host)
    }

    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.iter().map(|node| node.id)
    }

    pub fn voter_ids(&self) -> BTreeSet<NodeId> {
        self.nodes.iter().filter(|node| node.role == Role::Voter).map(|node| node.id).collect()
    }

    pub fn voter_count(&self) -> usize {
        self.nodes.iter().filter(|node| node.role == Role::Voter).count()
    }

    /// Votes a leader needs, itself included: `voters / 2 + 1`.
    pub fn majority(&self) -> usize {
        crate::majority::majority(self.voter_count())
    }

    /// The ids of the nodes in datacenter `dc`, in id order (empty for an unknown name).
    pub fn nodes_in_dc(&self, dc: &str) -> Vec<NodeId> {
        self.nodes.iter().filter(|node| node.dc == dc).map(|node| node.id).collect()
    }

    pub fn voters_in_dc(&self, dc: &str) -> usize {
        self.datacenter(dc).map_or(0, |dc| dc.voters as usize)
    }

    pub fn host(&self, id: NodeId) -> Option<&str> {
        self.node(id).map(|node| node.host.as_str())
    }

    pub fn dc_of(&self, id: NodeId) -> Option<&str> {
        self.node(id).map(|node| node.dc.as_str())
    }

    /// Every database host in member order.
    pub fn db_hosts(&self) -> &[DbHost] {
        &self.db_hosts
    }

    /// The database host with this member id; `None` for 0 or an id past the last.
    pub fn db_host(&self, member: MemberId) -> Option<&DbHost> {
        let index = usize::try_from(member.checked_sub(1)?).ok()?;
        self.db_hosts.get(index)
    }

    /// The database host named `host` (`<dc>-db<k>`).
    pub fn db_by_host(&self, host: &str) -> Option<&DbHost> {
        self.db_hosts.iter().find(|db| db.host == host)
    }

    /// How the fence devices of datacenter `dc` are reached; `None` for an unknown name.
    pub fn fence_path(&self, dc: &str) -> Option<FencePath> {
        self.datacenter(dc).map(|dc| dc.fence_path)
    }

    /// The datacenter a placed host sits in: a node's, a database host's (`<dc>-db<k>`), or any other host named
    /// `<dc>-<suffix>` (non-empty suffix) where `<dc>` is one of this topology's datacenters (e.g. `dc1-client`,
    /// `dc2-dbclient`). When datacenter names are prefixes of each other (`dc1`, `dc1-east`), the longest one that
    /// matches wins: `dc1-east-client` sits in `dc1-east`. `None` for any other name.
    pub fn dc_of_host(&self, host: &str) -> Option<&str> {
        if let Some(node) = self.node_by_host(host) {
            return Some(&node.dc);
        }
        if let Some(db) = self.db_by_host(host) {
            return Some(&db.dc);
        }
        self.datacenters
            .iter()
            .map(|dc| dc.name.as_str())
            .filter(|dc| host.strip_prefix(dc).and_then(|rest| rest.strip_prefix('-')).is_some_and(|s| !s.is_empty()))
            .max_by_key(|dc| dc.len())
    }

    /// Datacenters where clients sit, in file order.
    pub fn client_dcs(&self) -> Vec<&str> {
        self.datacenters.iter().filter(|dc| dc.clients).map(|dc| dc.name.as_str()).collect()
    }

    /// The link profile inside any one datacenter.
    pub fn local_link(&self) -> LinkProfile {
        self.local_link
    }

    /// The link profile between two datacenters (the local one when `a == b`); `None` for an unknown name.
    pub fn dc_link(&self, a: &str, b: &str) -> Option<LinkProfile> {
        if a == b {
            return self.datacenter(a).map(|_| self.local_link);
        }
        self.dc_links.get(&pair_key(a, b)).copied()
    }

    /// Every pair of distinct datacenters with its link, in name order.
    pub fn dc_links(&self) -> impl Iterator<Item = (&str, &str, LinkProfile)> + '_ {
        self.dc_links.iter().map(|((a, b), link)| (a.as_str(), b.as_str(), *link))
    }

    /// The link profile the simulator should give messages between two nodes; `None` for an unknown id.
    pub fn latency_between(&self, a: NodeId, b: NodeId) -> Option<LinkProfile> {
        self.dc_link(self.dc_of(a)?, self.dc_of(b)?)
    }

    pub fn raft_timing(&self) -> RaftTiming {
        self.raft
    }

    /// Voters per datacenter as `2/2/1`, in file order.
    pub fn placement_label(&self) -> String {
        let counts: Vec<u32> = self.datacenters.iter().map(|dc| dc.voters).collect();
        placement_label(&counts)
    }
}

/// `[2, 2, 1]` → `2/2/1`.
pub fn placement_label(voters_per_dc: &[u32]) -> String {
    voters_per_dc.iter().map(u32::to_string).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_named_after_their_datacenter_and_ids_follow_file_order() {
        let topology = Topology::from_voter_counts("t", &[2, 0, 1]).expect("valid");
        let hosts: Vec<_> = topology.nodes().iter().map(|n| (n.id, n.host.as_str())).collect();
        assert_eq!(hosts, vec![(1, "dc1-n1"), (2, "dc1-n2"), (3, "dc3-n1")]);
        assert_eq!(topology.majority(), 2);
        assert_eq!(topology.latency_between(1, 3).map(|l| l.latency_ms), Some(10));
        assert_eq!(topology.latency_between(1, 2).map(|l| l.latency_ms), Some(1));
        assert_eq!(topology.node(0), None);
        assert_eq!(topology.node(4), None);
    }

    #[test]
    fn zero_voters_is_an_error_not_a_panic() {
        assert!(Topology::from_voter_counts("t", &[0, 0]).is_err());
    }

    #[test]
    fn generated_topologies_hold_no_databases_and_fence_out_of_band() {
        let topology = Topology::from_voter_counts("t", &[2, 1]).expect("valid");
        assert!(topology.db_hosts().is_empty());
        assert!(topology.datacenters().iter().all(|dc| dc.databases == 0 && dc.fence_path == FencePath::OutOfBand));
        assert_eq!(topology.db_host(1), None);
        assert_eq!(topology.fence_path("dc2"), Some(FencePath::OutOfBand));
        assert_eq!(topology.fence_path("dc3"), None);
    }

    /// `dc1`, `dc2` and `dc10`: `dc1` is a prefix of `dc10`, so `dc10-…` must not be read as `dc1` + `0-…`.
    fn with_databases() -> Topology {
        let text = r#"
name = "dbs"
description = "databases in three datacenters"

[[datacenter]]
name = "dc1"
voters = 1
databases = 2
clients = true

[[datacenter]]
name = "dc2"
voters = 1
learners = 1
databases = 1
fence_path = "in-band"
clients = true

[[datacenter]]
name = "dc10"
voters = 1
clients = true
databases = 3

[[link]]
between = ["dc1", "dc2"]
latency_ms = 10

[[link]]
between = ["dc1", "dc10"]
latency_ms = 10

[[link]]
between = ["dc2", "dc10"]
latency_ms = 10
"#;
        Topology::parse("dbs.toml", text).expect("valid")
    }

    #[test]
    fn database_hosts_are_named_per_datacenter_and_numbered_across_them_apart_from_node_ids() {
        let topology = with_databases();
        let dbs: Vec<_> = topology.db_hosts().iter().map(|db| (db.member, db.host.as_str(), db.dc.as_str())).collect();
        assert_eq!(
            dbs,
            vec![
                (1, "dc1-db1", "dc1"),
                (2, "dc1-db2", "dc1"),
                (3, "dc2-db1", "dc2"),
                (4, "dc10-db1", "dc10"),
                (5, "dc10-db2", "dc10"),
                (6, "dc10-db3", "dc10"),
            ]
        );
        // Node ids are their own numbering: databases take none of them.
        let nodes: Vec<_> = topology.nodes().iter().map(|n| (n.id, n.host.as_str())).collect();
        assert_eq!(nodes, vec![(1, "dc1-n1"), (2, "dc2-n1"), (3, "dc2-n2"), (4, "dc10-n1")]);
        assert_eq!(topology.db_host(3).map(|db| db.host.as_str()), Some("dc2-db1"));
        assert_eq!(topology.db_host(0), None);
        assert_eq!(topology.db_host(7), None);
        assert_eq!(topology.db_by_host("dc10-db2").map(|db| db.member), Some(5));
        assert_eq!(topology.db_by_host("dc2-db2"), None);
        assert_eq!(topology.db_by_host("dc1-n1"), None);
        assert_eq!(topology.datacenter("dc10").map(|dc| dc.databases), Some(3));
    }

    #[test]
    fn fence_path_defaults_to_out_of_band_and_reads_in_band() {
        let topology = with_databases();
        assert_eq!(topology.fence_path("dc1"), Some(FencePath::OutOfBand));
        assert_eq!(topology.fence_path("dc2"), Some(FencePath::InBand));
        assert_eq!(topology.fence_path("dc10"), Some(FencePath::OutOfBand));
        assert_eq!(topology.fence_path("dc3"), None);
    }

    #[test]
    fn fence_path_serializes_in_the_file_spelling() {
        let json = serde_json::to_string(&[FencePath::OutOfBand, FencePath::InBand]).expect("serializable");
        assert_eq!(json, r#"["out-of-band","in-band"]"#);
    }

    #[test]
    fn dc_of_host_places_nodes_databases_and_other_hosts_by_the_longest_datacenter_name() {
        let topology = with_databases();
        assert_eq!(topology.dc_of_host("dc1-n1"), Some("dc1"));
        assert_eq!(topology.dc_of_host("dc1-db2"), Some("dc1"));
        assert_eq!(topology.dc_of_host("dc2-client"), Some("dc2"));
        assert_eq!(topology.dc_of_host("dc2-dbclient"), Some("dc2"));
        assert_eq!(topology.dc_of_host("dc10-client"), Some("dc10"));
        assert_eq!(topology.dc_of_host("dc10-db3"), Some("dc10"));
        assert_eq!(topology.dc_of_host("dc10-n1"), Some("dc10"));
        assert_eq!(topology.dc_of_host("dc1-client"), Some("dc1"));
        assert_eq!(topology.dc_of_host("dc3-client"), None, "unknown datacenter");
        assert_eq!(topology.dc_of_host("dc100-client"), None, "dc10 is a prefix of dc100, but not with a '-'");
        assert_eq!(topology.dc_of_host("web1"), None);
        assert_eq!(topology.dc_of_host("dc1"), None, "a datacenter name is not a host");
        assert_eq!(topology.dc_of_host("dc1-"), None, "no suffix");
        assert_eq!(topology.dc_of_host(""), None);
    }

    #[test]
    fn dc_of_host_prefers_the_longest_name_whatever_the_file_order() {
        let text = r#"
name = "prefixes"
description = "datacenter names that are prefixes of each other"

[[datacenter]]
name = "east-1"
voters = 1

[[datacenter]]
name = "east"
voters = 2

[[link]]
between = ["east", "east-1"]
latency_ms = 5
"#;
        let topology = Topology::parse("prefixes.toml", text).expect("valid");
        assert_eq!(topology.dc_of_host("east-1-client"), Some("east-1"));
        assert_eq!(topology.dc_of_host("east-1-n1"), Some("east-1"));
        assert_eq!(topology.dc_of_host("east-n1"), Some("east"));
        assert_eq!(topology.dc_of_host("east-2-client"), Some("east"));
    }
}
