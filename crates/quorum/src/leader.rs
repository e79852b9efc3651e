//! Who leads once elections settle, and so which client datacenters can write. [`predict`] answers from the
//! network alone: who *could* gather a majority. That is not what Raft does. Where the leader sits when the fault
//! starts, and which election rules the nodes follow, decide which of those possible leaders actually leads.
//!
//! The model, node by node, over directed links (a voter *hears* a leader when the leader → voter link works):
//! 1. A live voter that hears a leader never times out, so it never campaigns. A leader that lost its majority
//!    keeps sending heartbeats: nothing in the model makes it step down on its own.
//! 2. A voter that hears no leader campaigns:
//!    - [`RaftVariant::Plain`]: with a higher term at once. Every voter its request reaches adopts the term, stops
//!      accepting the old leader's appends and campaigns in turn, so the higher term spreads along any directed
//!      path of voters; when it reaches the leader, the leader steps down (Raft §5.1, dissertation §9.6).
//!    - [`RaftVariant::PreVote`]: only after a majority grants a pre-vote, which needs links both ways to a
//!      majority and a log as fresh as theirs. A voter that could never lead is stopped; one that could lead is
//!      not while its log is fresh (dissertation §9.6): disruption allowed, not required.
//!    - [`RaftVariant::LeaderLease`]: at once, but a voter that still hears a live leader refuses the vote and
//!      keeps its term (CheckQuorum-style; openraft 0.9 rejects a vote request while its leader lease is live).
//!      Only a vote request sent straight to the leader can unseat it, once the leader's own lease lapses:
//!      disruption allowed, not required. This is what quorumlab's node does: [`RaftVariant::QUORUMLAB_NODE`].
//!      The same rule traps a leader that lost its majority but still reaches a voter the others need: that
//!      voter keeps refusing them, and nobody is elected (openraft issue #2080, "Liveness deadlock: old leader
//!      heartbeats block a connected quorum", pinned in the tests).
//! 3. A leader "settles" when nothing in rule 2 is bound to unseat it; a client datacenter is served by a
//!    leader when one of its nodes exchanges messages both ways with it (or the leader is in it).
//!
//! Caller's duties: pass the node that leads when the fault starts (or `None` for "no leader yet"), compare
//! observations only after elections had time to settle, and read [`Availability::Either`] as "allowed, not
//! required": either outcome is correct.
//!
//! Log freshness is not modelled: the election restriction (§5.4.1) can refuse a candidate the network allows,
//! so [`LeaderPrediction::leaders_after`] is who *may* lead; [`LeaderPrediction::caveats`] says so in words.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::connectivity::{is_live_voter, Connectivity};
use crate::predict::{predict, Prediction};
use crate::topology::{NodeId, Topology};

/// Which election rules the cluster follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RaftVariant {
    /// The Raft paper: a voter that misses heartbeats campaigns with a higher term straight away.
    Plain,
    /// A pre-vote round first: a candidate bumps terms only once a majority would vote for it.
    PreVote,
    /// Voters that hear a live leader refuse other candidates' votes while its lease holds (CheckQuorum-style).
    LeaderLease,
}

impl RaftVariant {
    /// quorumlab's node: openraft 0.9 refuses vote requests while a leader lease is live and has no PreVote.
    pub const QUORUMLAB_NODE: RaftVariant = RaftVariant::LeaderLease;

    pub const ALL: [RaftVariant; 3] = [RaftVariant::Plain, RaftVariant::PreVote, RaftVariant::LeaderLease];

    /// A name for text output.
    pub fn name(self) -> &'static str {
        match self {
            RaftVariant::Plain => "plain Raft",
            RaftVariant::PreVote => "PreVote",
            RaftVariant::LeaderLease => "leader lease",
        }
    }
}

/// The variant quorumlab's node follows (openraft 0.9): [`RaftVariant::LeaderLease`].
pub fn quorumlab_node_variant() -> RaftVariant {
    RaftVariant::QUORUMLAB_NODE
}

/// What clients in one datacenter can expect while a fault lasts, once elections have settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Every leader that may settle serves this datacenter: its writes commit.
    Available,
    /// No leader that may settle serves it: every write is refused or left unanswered, never committed.
    Unavailable,
    /// Some may and some may not: the outcome depends on races (who wins, whether a disruption happens).
    Either,
}

impl Availability {
    pub fn name(self) -> &'static str {
        match self {
            Availability::Available => "writes",
            Availability::Unavailable => "no writes",
            Availability::Either => "either",
        }
    }
}

/// The refined prediction for one topology, one connectivity, one variant and one leader at the fault's start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaderPrediction {
    pub variant: RaftVariant,
    /// The node leading when the fault starts, as given (`None`: no leader, or unknown).
    pub leader: Option<NodeId>,
    /// Every client datacenter of the topology.
    pub client_dcs: BTreeMap<String, Availability>,
    /// Who may lead, holding a majority, once things settle (empty: nobody can commit).
    pub leaders_after: BTreeSet<NodeId>,
    /// Whether leadership may end up anywhere but `leader`.
    pub leadership_can_move: bool,
    /// Voters that can unseat the starting leader under this variant (required for plain Raft, allowed for the
    /// others); empty when there is no live leader.
    pub disruptors: BTreeSet<NodeId>,
    /// No leader stays: every possible leader is unseated in turn, and writes commit only between elections.
    pub churns: bool,
    /// Per client datacenter, one sentence a user understands.
    pub reasons: BTreeMap<String, String>,
    /// What happens to leadership, in one or two sentences.
    pub summary: String,
    /// What the model leaves out and can change the answer, always at least the log-freshness caveat.
    pub caveats: Vec<String>,
}

impl LeaderPrediction {
    /// The availability of client datacenter `dc`; [`Availability::Unavailable`] for an unknown one.
    pub fn availability(&self, dc: &str) -> Availability {
        self.client_dcs.get(dc).copied().unwrap_or(Availability::Unavailable)
    }
}

/// Where a leader stands: its id, and an older leader that never learnt it was replaced and still sends
/// heartbeats to the voters that hear it (they stay quiet, and under the lease rule they refuse votes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Reign {
    leader: NodeId,
    stale: Option<NodeId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stay {
    /// Nothing can unseat it.
    Sure,
    /// It may be unseated, or not: disruption allowed, not required.
    Allowed,
    /// It will be unseated (or it cannot commit anyway).
    Gone,
}

/// What follows one reign.
struct Step {
    stay: Stay,
    disruptors: BTreeSet<NodeId>,
    next: BTreeSet<Reign>,
}

/// The network facts the rules read, computed once.
struct Net<'a> {
    topology: &'a Topology,
    connectivity: &'a Connectivity,
    union: Prediction,
    live_voters: BTreeSet<NodeId>,
    possible: BTreeSet<NodeId>,
    majority: usize,
}

impl<'a> Net<'a> {
    fn new(topology: &'a Topology, connectivity: &'a Connectivity) -> Net<'a> {
        let union = predict(topology, connectivity);
        let live_voters =
            topology.voter_ids().into_iter().filter(|&v| is_live_voter(topology, connectivity, v)).collect();
        let possible = union.possible_leaders();
        Net { topology, connectivity, majority: union.majority, union, live_voters, possible }
    }

    fn hears(&self, voter: NodeId, leader: NodeId) -> bool {
        voter == leader || self.connectivity.can_send(leader, voter)
    }

    /// Live voters other than `leader` that receive its heartbeats.
    fn hearers(&self, leader: NodeId) -> BTreeSet<NodeId> {
        self.live_voters.iter().copied().filter(|&v| v != leader && self.hears(v, leader)).collect()
    }

    /// Live voters reachable from `from` along directed links between live voters, `from` included.
    fn spread(&self, from: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
        let mut seen = from.clone();
        let mut queue: VecDeque<NodeId> = from.iter().copied().collect();
        while let Some(a) = queue.pop_front() {
            for &b in &self.live_voters {
                if !seen.contains(&b) && self.connectivity.can_send(a, b) {
                    seen.insert(b);
                    queue.push_back(b);
                }
            }
        }
        seen
    }

    /// Live voters with a directed path of live voters to `to`, `to` included: whose higher term reaches it.
    fn reaching(&self, to: NodeId) -> BTreeSet<NodeId> {
        let mut seen = BTreeSet::from([to]);
        let mut queue = VecDeque::from([to]);
        while let Some(b) = queue.pop_front() {
            for &a in &self.live_voters {
                if !seen.contains(&a) && self.connectivity.can_send(a, b) {
                    seen.insert(a);
                    queue.push_back(a);
                }
            }
        }
        seen
    }

    /// Whether clients in `dc` reach `leader` both ways through some node of theirs.
    fn serves(&self, leader: NodeId, dc: &str) -> bool {
        let entries = self.connectivity.client_entry_nodes(self.topology, dc);
        entries.iter().any(|&n| n == leader || self.connectivity.two_way(n, leader))
    }

    fn host(&self, id: NodeId) -> String {
        self.topology.host(id).map_or_else(|| format!("node {id}"), str::to_string)
    }

    fn hosts(&self, ids: &BTreeSet<NodeId>) -> String {
        ids.iter().map(|&id| self.host(id)).collect::<Vec<_>>().join(", ")
    }

    /// Voters that hear the stale leader, have not learnt a higher term, and do not hear `leader`: they stay
    /// quiet (a heartbeat keeps resetting their timer).
    fn quiet(&self, variant: RaftVariant, reign: Reign) -> BTreeSet<NodeId> {
        let Some(stale) = reign.stale else { return BTreeSet::new() };
        let woken = match variant {
            // In plain Raft every term bump spreads; those it reached reject the stale leader's appends.
            RaftVariant::Plain => self.spread(&self.campaigners(variant, Reign { leader: stale, stale: None })),
            RaftVariant::PreVote | RaftVariant::LeaderLease => BTreeSet::new(),
        };
        self.hearers(stale)
            .into_iter()
            .filter(|&v| !woken.contains(&v) && !self.hears(v, reign.leader) && v != reign.leader)
            .collect()
    }

    /// Live voters that hear neither `reign.leader` nor a stale leader: they time out and campaign.
    fn campaigners(&self, variant: RaftVariant, reign: Reign) -> BTreeSet<NodeId> {
        let quiet = self.quiet(variant, reign);
        self.live_voters
            .iter()
            .copied()
            .filter(|&v| !self.hears(v, reign.leader) && Some(v) != reign.stale && !quiet.contains(&v))
            .collect()
    }

    /// Possible leaders that start campaigning once `reign` is unseated (its heartbeats stop; a stale leader's
    /// quiet voters stay quiet).
    fn after_unseating(&self, variant: RaftVariant, reign: Reign) -> BTreeSet<Reign> {
        let quiet = self.quiet(variant, reign);
        self.possible
            .iter()
            .copied()
            .filter(|&p| !quiet.contains(&p) && Some(p) != reign.stale)
            .map(|leader| Reign { leader, stale: reign.stale })
            .collect()
    }

    fn step(&self, variant: RaftVariant, reign: Reign) -> Step {
        let leader = reign.leader;
        let campaigners = self.campaigners(variant, reign);
        let with_stale = |ids: &BTreeSet<NodeId>, stale: Option<NodeId>| -> BTreeSet<Reign> {
            ids.iter().map(|&leader| Reign { leader, stale }).collect()
        };
        if self.possible.contains(&leader) {
            let disruptors: BTreeSet<NodeId> = match variant {
                RaftVariant::Plain => campaigners.intersection(&self.reaching(leader)).copied().collect(),
                RaftVariant::PreVote => campaigners.intersection(&self.possible).copied().collect(),
                RaftVariant::LeaderLease => {
                    campaigners.iter().copied().filter(|&c| self.connectivity.can_send(c, leader)).collect()
                }
            };
            if disruptors.is_empty() {
                return Step { stay: Stay::Sure, disruptors, next: BTreeSet::new() };
            }
            let (stay, next) = match variant {
                RaftVariant::Plain => (Stay::Gone, self.after_unseating(variant, reign)),
                RaftVariant::PreVote => (Stay::Allowed, with_stale(&disruptors, reign.stale)),
                RaftVariant::LeaderLease => (Stay::Allowed, self.after_unseating(variant, reign)),
            };
            return Step { stay, disruptors, next };
        }
        // A live leader without a majority: it keeps sending heartbeats, and cannot commit.
        let fresh = || with_stale(&self.possible, None);
        let (disruptors, next) = match variant {
            RaftVariant::Plain => {
                let woken = self.spread(&campaigners);
                let reaching: BTreeSet<NodeId> = campaigners.intersection(&self.reaching(leader)).copied().collect();
                let next = if woken.contains(&leader) {
                    fresh()
                } else {
                    with_stale(&woken.intersection(&self.possible).copied().collect(), Some(leader))
                };
                (reaching, next)
            }
            RaftVariant::PreVote => (
                BTreeSet::new(),
                with_stale(&campaigners.intersection(&self.possible).copied().collect(), Some(leader)),
            ),
            RaftVariant::LeaderLease => {
                let winners: BTreeSet<NodeId> = campaigners
                    .iter()
                    .copied()
                    .filter(|&c| self.union.quorum_of(c).intersection(&campaigners).count() >= self.majority)
                    .collect();
                let reaching: BTreeSet<NodeId> =
                    campaigners.iter().copied().filter(|&c| self.connectivity.can_send(c, leader)).collect();
                let mut next = with_stale(&winners, Some(leader));
                if !reaching.is_empty() {
                    next.extend(fresh());
                }
                (reaching, next)
            }
        };
        Step { stay: Stay::Gone, disruptors, next }
    }
}

/// The refined prediction: who leads once elections settle, given the leader when the fault starts and the
/// election rules, and what that means for each client datacenter. `leader` that is not a live voter counts as
/// no leader (a down leader sends no heartbeats).
pub fn predict_with_leader(
    topology: &Topology,
    connectivity: &Connectivity,
    variant: RaftVariant,
    leader: Option<NodeId>,
) -> LeaderPrediction {
    let net = Net::new(topology, connectivity);
    let start = leader.filter(|l| net.live_voters.contains(l)).map(|leader| Reign { leader, stale: None });
    let first = match start {
        Some(reign) => net.step(variant, reign),
        None => Step {
            stay: Stay::Gone,
            disruptors: BTreeSet::new(),
            next: net.possible.iter().map(|&leader| Reign { leader, stale: None }).collect(),
        },
    };
    // Every reign reachable from the start; those that may stay are the leaders after.
    let mut seen: BTreeSet<Reign> = first.next.clone();
    let mut queue: VecDeque<Reign> = first.next.iter().copied().collect();
    let mut settled: BTreeSet<NodeId> = BTreeSet::new();
    if let (Some(reign), Stay::Sure | Stay::Allowed) = (start, first.stay) {
        settled.insert(reign.leader);
    }
    while let Some(reign) = queue.pop_front() {
        let step = net.step(variant, reign);
        if step.stay != Stay::Gone {
            settled.insert(reign.leader);
        }
        for next in step.next {
            if seen.insert(next) {
                queue.push_back(next);
            }
        }
    }
    let visited: BTreeSet<NodeId> = seen.iter().map(|r| r.leader).collect();
    let churns = settled.is_empty() && !visited.is_empty();
    let leaders_after = if churns { visited } else { settled };
    // Invariant: a refined prediction never names a leader the network does not allow.
    debug_assert!(leaders_after.is_subset(&net.possible), "a leader the network forbids");

    let client_dcs: BTreeMap<String, Availability> = topology
        .client_dcs()
        .into_iter()
        .map(|dc| {
            let served = leaders_after.iter().filter(|&&l| net.serves(l, dc)).count();
            let availability = if served == 0 {
                Availability::Unavailable
            } else if served == leaders_after.len() && !churns {
                Availability::Available
            } else {
                Availability::Either
            };
            (dc.to_string(), availability)
        })
        .collect();
    let leadership_can_move = leaders_after.iter().any(|&l| Some(l) != start.map(|r| r.leader));
    let story = Story { net: &net, variant, start, first: &first, leaders_after: &leaders_after, churns };
    let summary = story.summary();
    let reasons = client_dcs.iter().map(|(dc, &a)| (dc.clone(), story.reason(dc, a, &summary))).collect();
    let summary = capitalized(&summary);
    let caveats = story.caveats();
    LeaderPrediction {
        variant,
        leader,
        client_dcs,
        leaders_after,
        leadership_can_move,
        disruptors: first.disruptors,
        churns,
        reasons,
        summary,
        caveats,
    }
}

mod story;
mod timeline;

use story::{capitalized, Story};
pub use timeline::{term_timeline, TimelineRow};

#[cfg(test)]
mod tests;
