//! `quorum explain TOPOLOGY`: what a topology survives, as a short proof built from the oracle's own answers.
//!
//! Every verdict below comes from [`predict`] on a [`FaultShape`]; the arithmetic is then re-derived from voter
//! counts and the two must agree (checked in debug builds), so the text cannot claim what the oracle denies.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::connectivity::{Connectivity, FaultShape};
use crate::leader::RaftVariant;
use crate::majority::{failures_tolerated, min_overlap, most_distant_majorities};
use crate::predict::{predict, Prediction};
use crate::raft_view::{self, Disruptors, RaftOutcome};
use crate::report::Doc;
use crate::topology::{NodeId, Topology};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DcSummary {
    pub name: String,
    pub voters: u32,
    pub learners: u32,
    pub clients: bool,
    pub hosts: Vec<String>,
}

/// Where a leader in one datacenter could gather votes under one fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderAttempt {
    pub dc: String,
    /// The datacenter has no live voter (lost, or learners only).
    pub lost: bool,
    /// Datacenters whose voters it reaches both ways, with their voter counts, its own first.
    pub reaches: Vec<(String, usize)>,
    pub votes: usize,
    pub holds_majority: bool,
    /// e.g. `dc1 + dc3 = 2 + 1 = 3 ≥ 3`.
    pub arithmetic: String,
    /// Client datacenters that can commit while this datacenter leads.
    pub serves_client_dcs: Vec<String>,
}

/// One fault (or pair of faults) and what survives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultCase {
    pub label: String,
    pub faults: Vec<FaultShape>,
    /// For each cut link in this case, `(a, b, datacenters that still exchange messages with both ends)`.
    /// Nothing is relayed through them: Raft never forwards messages; each side simply reaches them directly.
    pub both_sides_seen_by: Vec<(String, String, Vec<String>)>,
    pub majority_survives: bool,
    pub leader_dcs: Vec<String>,
    pub attempts: Vec<LeaderAttempt>,
    pub client_dcs_can_commit: Vec<String>,
    pub client_dcs_cannot_commit: Vec<String>,
    /// Who can unseat a possible leader, per variant (see [`crate::raft_view::DISRUPTOR_DEFINITION`]).
    pub disruptors: Disruptors,
    /// What Raft does: per leader location at the fault's start and per variant, once elections settle.
    pub raft: Vec<RaftOutcome>,
}

/// Two majorities, named, and the voters they share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedVoterExample {
    pub situation: String,
    pub first: Vec<String>,
    pub second: Vec<String>,
    pub shared: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Intersection {
    pub min_overlap: isize,
    pub examples: Vec<SharedVoterExample>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExplainReport {
    pub name: String,
    pub description: String,
    pub source: String,
    pub placement: String,
    pub voters: usize,
    pub majority: usize,
    pub failures_tolerated: usize,
    /// Learners in the whole cluster: they copy the log and never count toward a majority.
    pub learners: usize,
    /// The election rules quorumlab's node follows (openraft 0.9): `leader_lease`.
    pub quorumlab_node_variant: RaftVariant,
    pub datacenters: Vec<DcSummary>,
    pub single_faults: Vec<FaultCase>,
    pub double_faults: Vec<FaultCase>,
    pub intersection: Intersection,
}

/// Builds the report. Errors only if a fault cannot apply, which would be a bug in fault enumeration.
pub fn explain(topology: &Topology) -> Result<ExplainReport, crate::FaultError> {
    let singles = FaultShape::single_dc_faults(topology);
    let single_faults =
        singles.iter().map(|fault| judged_case(topology, vec![fault.clone()])).collect::<Result<Vec<_>, _>>()?;
    let mut double_faults = Vec::new();
    for (i, a) in singles.iter().enumerate() {
        for b in &singles[i + 1..] {
            if cuts_a_link_to_a_lost_dc(a, b) || cuts_a_link_to_a_lost_dc(b, a) {
                continue;
            }
            double_faults.push(judged_case(topology, vec![a.clone(), b.clone()])?);
        }
    }
    let intersection = intersection(topology, single_faults.iter().chain(&double_faults))?;
    let datacenters = topology
        .datacenters()
        .iter()
        .map(|dc| DcSummary {
            name: dc.name.clone(),
            voters: dc.voters,
            learners: dc.learners,
            clients: dc.clients,
            hosts: hosts(topology, &topology.nodes_in_dc(&dc.name)),
        })
        .collect();
    Ok(ExplainReport {
        name: topology.name().to_string(),
        description: topology.description().to_string(),
        source: topology.source().to_string(),
        placement: topology.placement_label(),
        voters: topology.voter_count(),
        majority: topology.majority(),
        failures_tolerated: failures_tolerated(topology.voter_count()),
        learners: topology.nodes().len() - topology.voter_count(),
        quorumlab_node_variant: RaftVariant::QUORUMLAB_NODE,
        datacenters,
        single_faults,
        double_faults,
        intersection,
    })
}

/// `lose dc1` + `cut dc1–dc2` is just `lose dc1`: such pairs only repeat a single fault.
fn cuts_a_link_to_a_lost_dc(first: &FaultShape, second: &FaultShape) -> bool {
    match (first, second) {
        (FaultShape::LoseDc { dc }, FaultShape::CutDcLink { a, b }) => dc == a || dc == b,
        _ => false,
    }
}

fn hosts<'a>(topology: &Topology, ids: impl IntoIterator<Item = &'a NodeId>) -> Vec<String> {
    ids.into_iter().filter_map(|&id| topology.host(id).map(str::to_string)).collect()
}

/// A case with what Raft does in it: the outcomes per leader location and rule, and the disruptors.
fn judged_case(topology: &Topology, faults: Vec<FaultShape>) -> Result<FaultCase, crate::FaultError> {
    let mut case = fault_case(topology, faults)?;
    let connectivity = FaultShape::All { faults: case.faults.clone() }.apply(topology)?;
    case.disruptors = raft_view::disruptors(topology, &connectivity);
    case.raft = raft_view::outcomes(topology, &connectivity);
    Ok(case)
}

/// A case from the network's view alone (`disruptors` and `raft` left empty): cheap enough for `place`, which
/// judges thousands of them.
pub(crate) fn fault_case(topology: &Topology, faults: Vec<FaultShape>) -> Result<FaultCase, crate::FaultError> {
    let all = FaultShape::All { faults: faults.clone() };
    let connectivity = all.apply(topology)?;
    let prediction = predict(topology, &connectivity);
    let majority = topology.majority();
    let mut attempts = Vec::new();
    for dc in topology.datacenters().iter().filter(|dc| dc.voters > 0) {
        let live: Vec<NodeId> =
            topology.nodes_in_dc(&dc.name).into_iter().filter(|&id| !prediction.quorum_of(id).is_empty()).collect();
        let Some(&representative) = live.first() else {
            attempts.push(LeaderAttempt {
                dc: dc.name.clone(),
                lost: true,
                reaches: Vec::new(),
                votes: 0,
                holds_majority: false,
                arithmetic: "lost".to_string(),
                serves_client_dcs: Vec::new(),
            });
            continue;
        };
        let quorum = prediction.quorum_of(representative);
        // Datacenter-level faults treat every voter of a datacenter alike; one speaks for all.
        debug_assert!(live.iter().all(|&id| prediction.quorum_of(id).len() == quorum.len()));
        let mut by_dc: BTreeMap<&str, usize> = BTreeMap::new();
        for &id in &quorum {
            *by_dc.entry(topology.dc_of(id).unwrap_or("?")).or_default() += 1;
        }
        let mut reaches: Vec<(String, usize)> = vec![(dc.name.clone(), by_dc.remove(dc.name.as_str()).unwrap_or(0))];
        for other in topology.datacenters() {
            if let Some(count) = by_dc.remove(other.name.as_str()) {
                reaches.push((other.name.clone(), count));
            }
        }
        let votes = quorum.len();
        let holds_majority = votes >= majority;
        debug_assert_eq!(holds_majority, prediction.can_lead(representative), "arithmetic and oracle disagree");
        let names: Vec<&str> = reaches.iter().map(|(name, _)| name.as_str()).collect();
        let counts: Vec<String> = reaches.iter().map(|(_, count)| count.to_string()).collect();
        let sum = if reaches.len() > 1 {
            format!("{} = {} = {votes}", names.join(" + "), counts.join(" + "))
        } else {
            format!("{} = {votes}", names.join(""))
        };
        let comparison = if holds_majority { "≥" } else { "<" };
        let served = prediction.served_by(representative);
        let serves_client_dcs = topology
            .client_dcs()
            .into_iter()
            .filter(|client_dc| {
                connectivity.client_entry_nodes(topology, client_dc).iter().any(|id| served.contains(id))
            })
            .map(str::to_string)
            .collect();
        attempts.push(LeaderAttempt {
            dc: dc.name.clone(),
            lost: false,
            reaches,
            votes,
            holds_majority,
            arithmetic: format!("{sum} {comparison} {majority}"),
            serves_client_dcs,
        });
    }
    let leader_dcs: Vec<String> = attempts.iter().filter(|a| a.holds_majority).map(|a| a.dc.clone()).collect();
    let (can, cannot): (Vec<_>, Vec<_>) = prediction.client_dcs.iter().partition(|(_, &ok)| ok);
    let both_sides_seen_by = seen_from_both_sides(topology, &faults, &connectivity);
    let single = faults.len() == 1;
    let label = faults
        .iter()
        .map(|fault| labelled(topology, fault, &both_sides_seen_by, single))
        .collect::<Vec<_>>()
        .join(" + ");
    Ok(FaultCase {
        label,
        majority_survives: prediction.any_leader_possible(),
        leader_dcs,
        attempts,
        client_dcs_can_commit: can.into_iter().map(|(dc, _)| dc.clone()).collect(),
        client_dcs_cannot_commit: cannot.into_iter().map(|(dc, _)| dc.clone()).collect(),
        disruptors: Disruptors::default(),
        raft: Vec::new(),
        both_sides_seen_by,
        faults,
    })
}

fn labelled(
    topology: &Topology,
    fault: &FaultShape,
    seen_by: &[(String, String, Vec<String>)],
    single: bool,
) -> String {
    let label = fault.label(topology);
    let FaultShape::CutDcLink { a, b } = fault else { return label };
    if topology.nodes_in_dc(a).is_empty() || topology.nodes_in_dc(b).is_empty() {
        // A datacenter without nodes only carries clients: no Raft message crosses this link.
        return label;
    }
    match seen_by.iter().find(|(x, y, _)| x == a && y == b) {
        Some((_, _, via)) if via.len() == 1 => format!("{label} ({} sees both sides)", via[0]),
        Some((_, _, via)) if !via.is_empty() => format!("{label} ({} see both sides)", via.join(", ")),
        _ if single => format!("{label} (nobody sees both sides)"),
        _ => label,
    }
}

/// For each cut link, the datacenters that still exchange messages with both of its ends.
fn seen_from_both_sides(
    topology: &Topology,
    faults: &[FaultShape],
    connectivity: &Connectivity,
) -> Vec<(String, String, Vec<String>)> {
    let linked = |x: &str, y: &str| {
        let (xs, ys) = (topology.nodes_in_dc(x), topology.nodes_in_dc(y));
        xs.iter().any(|&p| ys.iter().any(|&q| connectivity.two_way(p, q)))
    };
    faults
        .iter()
        .filter_map(|fault| match fault {
            FaultShape::CutDcLink { a, b } => {
                let via = topology
                    .datacenters()
                    .iter()
                    .map(|dc| dc.name.as_str())
                    .filter(|c| c != a && c != b && linked(c, a) && linked(c, b))
                    .map(str::to_string)
                    .collect();
                Some((a.clone(), b.clone(), via))
            }
            _ => None,
        })
        .collect()
}

fn intersection<'a>(
    topology: &Topology,
    cases: impl Iterator<Item = &'a FaultCase>,
) -> Result<Intersection, crate::FaultError> {
    let voters = topology.voter_ids();
    let (first, last, shared) = most_distant_majorities(&voters);
    let mut examples = vec![SharedVoterExample {
        situation: "the two majorities that overlap least".to_string(),
        first: hosts(topology, &first),
        second: hosts(topology, &last),
        shared: hosts(topology, &shared),
    }];
    // A fault under which leaders in two datacenters are possible with different majorities: the case people
    // get wrong, where the shared voter is what keeps them from both committing.
    for case in cases {
        let prediction: Prediction =
            predict(topology, &FaultShape::All { faults: case.faults.clone() }.apply(topology)?);
        let mut leader_per_dc: BTreeMap<String, NodeId> = BTreeMap::new();
        for leader in prediction.possible_leaders() {
            if let Some(dc) = topology.dc_of(leader) {
                leader_per_dc.entry(dc.to_string()).or_insert(leader);
            }
        }
        let leaders: Vec<NodeId> = leader_per_dc.values().copied().collect();
        let pair = leaders.iter().enumerate().find_map(|(i, &a)| {
            leaders[i + 1..].iter().find(|&&b| prediction.quorum_of(a) != prediction.quorum_of(b)).map(|&b| (a, b))
        });
        if let Some((a, b)) = pair {
            let shared: BTreeSet<NodeId> = prediction.shared_voters(a, b);
            examples.push(SharedVoterExample {
                situation: format!(
                    "{}: a leader in {} or a leader in {}",
                    case.label,
                    topology.dc_of(a).unwrap_or("?"),
                    topology.dc_of(b).unwrap_or("?")
                ),
                first: hosts(topology, &prediction.quorum_of(a)),
                second: hosts(topology, &prediction.quorum_of(b)),
                shared: hosts(topology, &shared),
            });
            break;
        }
    }
    Ok(Intersection { min_overlap: min_overlap(voters.len(), topology.majority()), examples })
}

impl ExplainReport {
    pub fn doc(&self) -> Doc {
        let mut doc = Doc::default();
        doc.heading(format!("{} ({} voters placed {})", self.name, self.voters, self.placement));
        doc.para(format!("{}\nsource: {}", self.description, self.source));
        let rows = self
            .datacenters
            .iter()
            .map(|dc| {
                let clients = if dc.clients { "yes" } else { "no" };
                // A datacenter without nodes holds clients, or only database hosts (which are not Raft nodes).
                let hosts = match (dc.hosts.is_empty(), dc.clients) {
                    (false, _) => dc.hosts.join(" "),
                    (true, true) => "(clients only)".to_string(),
                    (true, false) => "(no nodes)".to_string(),
                };
                vec![dc.name.clone(), dc.voters.to_string(), dc.learners.to_string(), clients.into(), hosts]
            })
            .collect();
        doc.table(&["datacenter", "voters", "learners", "clients", "hosts"], rows);
        let mut arithmetic = vec![
            format!("voters            = {}", self.voters),
            format!("majority          = {}/2 + 1 = {}", self.voters, self.majority),
            format!(
                "failures tolerated = {} − {} = {} {}, anywhere",
                self.voters,
                self.majority,
                self.failures_tolerated,
                if self.failures_tolerated == 1 { "voter" } else { "voters" }
            ),
        ];
        arithmetic.push(format!(
            "learners          = {}: they copy the log but never vote and never count toward a majority",
            self.learners
        ));
        doc.lines(arithmetic);
        for dc in self.datacenters.iter().filter(|dc| dc.clients && dc.voters == 0) {
            doc.para(if dc.learners == 0 {
                format!(
                    "{} has clients but no node: they send their writes over its links to nodes in other \
                     datacenters, so they can write only while one of those reaches the leader both ways.",
                    dc.name
                )
            } else {
                format!(
                    "{} has clients but no voters: they write through its learners, which hand the writes to the \
                     leader in another datacenter, so they can write only while a learner there reaches the leader \
                     both ways. A learner adds no vote and no tolerance (Raft dissertation §4.2.1).",
                    dc.name
                )
            });
        }

        doc.heading("One fault at a time");
        doc.para(
            "A leader needs votes and acknowledgements from a majority, itself included, over links that work \
             both ways. For each fault, each datacenter's best attempt:",
        );
        let mut rows = Vec::new();
        for case in &self.single_faults {
            for (i, attempt) in case.attempts.iter().enumerate() {
                let label = if i == 0 { case.label.clone() } else { String::new() };
                let verdict = match (attempt.lost, attempt.holds_majority) {
                    (true, _) => "—".to_string(),
                    (false, true) => "majority".to_string(),
                    (false, false) => "no majority".to_string(),
                };
                let serves =
                    if attempt.holds_majority { list_or_none(&attempt.serves_client_dcs) } else { String::new() };
                rows.push(vec![label, attempt.dc.clone(), attempt.arithmetic.clone(), verdict, serves]);
            }
        }
        doc.table(&["fault", "leader in", "votes it can gather", "verdict", "clients it serves"], rows);
        doc.para(
            "Where leaders in two datacenters are possible, there is still at most one leader per term: their \
             majorities share a voter, who votes once per term (see below). Clients whose datacenter reaches no \
             possible leader must wait; their writes are refused, not lost. This table is what the network allows; \
             which possible leader really leads depends on where the leader is when the fault starts and on the \
             election rules:",
        );

        doc.heading("What Raft does: per leader location and election rule");
        doc.para(raft_view::LEGEND);
        let order: Vec<&str> = self.datacenters.iter().filter(|dc| dc.clients).map(|dc| dc.name.as_str()).collect();
        let mut rows = Vec::new();
        for case in &self.single_faults {
            rows.extend(raft_view::rows(&case.label, &case.raft, &order));
        }
        doc.table(&raft_view::HEADER, rows);
        doc.para(
            "With no leader at the start (\"none\"), PreVote and the lease rule give the union view of the table \
             above: any possible leader may win. Plain Raft can be narrower: leaders that some voter keeps \
             unseating give way to one nobody can unseat. Log freshness is not in the table: once a leader commits a write during the fault, a \
             voter that missed it can no longer win an election (§5.4.1), which can only narrow who leads.",
        );
        doc.para(raft_view::DISRUPTOR_DEFINITION);
        let mut lines = vec!["fault: plain Raft | PreVote | leader lease".to_string()];
        for case in &self.single_faults {
            let d = &case.disruptors;
            lines.push(format!(
                "{}: {} | {} | {}",
                case.label,
                list_or_none(&d.plain),
                list_or_none(&d.prevote),
                list_or_none(&d.lease)
            ));
        }
        doc.lines(lines);

        if !self.double_faults.is_empty() {
            doc.heading("Two faults at once");
            doc.para(
                "Pairs that cut a link to a lost datacenter repeat the loss alone and are left out. The last column \
                 is the union view (clients that reach some possible leader); `quorum explain --fault … --fault …` \
                 shows what Raft does per leader location.",
            );
            let rows = self
                .double_faults
                .iter()
                .map(|case| {
                    let best = case
                        .attempts
                        .iter()
                        .filter(|a| !a.lost)
                        .max_by_key(|a| (a.holds_majority, a.votes))
                        .map_or("every voter lost".to_string(), |a| format!("{}: {}", a.dc, a.arithmetic));
                    let verdict = if case.majority_survives { "majority" } else { "no majority" };
                    vec![
                        case.label.clone(),
                        list_or_none(&case.leader_dcs),
                        best,
                        verdict.to_string(),
                        list_or_none(&case.client_dcs_can_commit),
                    ]
                })
                .collect();
            doc.table(&["faults", "leader can be in", "best attempt", "verdict", "clients that may write"], rows);
        }

        doc.heading("Why two leaders can never both commit");
        let m = self.majority;
        doc.lines(vec![
            format!("two majorities hold {m} + {m} = {} votes, but there are only {} voters,", 2 * m, self.voters),
            format!(
                "so they share at least {} + {} − {} = {} {}.",
                m,
                m,
                self.voters,
                self.intersection.min_overlap,
                if self.intersection.min_overlap == 1 { "voter" } else { "voters" }
            ),
        ]);
        let mut lines = Vec::new();
        for example in &self.intersection.examples {
            lines.push(format!("{}:", example.situation));
            lines.push(format!("  {{{}}}", example.first.join(" ")));
            lines.push(format!("  {{{}}}", example.second.join(" ")));
            lines.push(format!("  share {}", example.shared.join(" ")));
        }
        doc.lines(lines);
        doc.lines(vec![
            "1. One leader per term (§5.2): a shared voter grants one vote per term, so two candidates cannot both"
                .into(),
            "   win the same term. Two nodes can still both believe they lead, in different terms: a deposed leader"
                .into(),
            "   that has not heard of the new term (§8, dissertation §6.4). It commits nothing more, because its"
                .into(),
            "   majority now holds the higher term and refuses its appends.".into(),
            "2. Election restriction (§5.4.1): a voter refuses a candidate whose log is less up to date than its"
                .into(),
            "   own, and every majority holds a voter with each committed entry, so every new leader holds every"
                .into(),
            "   committed write.".into(),
            "3. Commit rule (§5.4.2, Figure 8): a leader counts replicas only for an entry of its own term; an".into(),
            "   entry of an earlier term that is stored on a majority is not yet committed (a later leader may".into(),
            "   still overwrite it) until an entry of the current term is stored on a majority after it.".into(),
        ]);
        doc
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}
