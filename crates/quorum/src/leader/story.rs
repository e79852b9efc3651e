//! The sentences of a [`super::LeaderPrediction`]: built from the same sets the verdicts come from, so the words
//! cannot claim what the verdicts deny.

use std::collections::BTreeSet;

use super::{Availability, Net, RaftVariant, Reign, Stay, Step};
use crate::topology::NodeId;

pub(super) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// The sentences: built from the same sets the verdicts come from.
pub(super) struct Story<'a> {
    pub(super) net: &'a Net<'a>,
    pub(super) variant: RaftVariant,
    pub(super) start: Option<Reign>,
    pub(super) first: &'a Step,
    pub(super) leaders_after: &'a BTreeSet<NodeId>,
    pub(super) churns: bool,
}

impl Story<'_> {
    fn leader_name(&self, leader: NodeId) -> String {
        let dc = self.net.topology.dc_of(leader).unwrap_or("?");
        format!("the {dc} leader {}", self.net.host(leader))
    }

    pub(super) fn summary(&self) -> String {
        let net = self.net;
        let after = net.hosts(self.leaders_after);
        let Some(start) = self.start else {
            return if self.leaders_after.is_empty() {
                format!(
                    "No voter exchanges messages both ways with a majority ({} of {}): nobody can be elected.",
                    net.majority,
                    net.topology.voter_count()
                )
            } else {
                format!("With no leader when the fault starts, any of {after} may win the election.")
            };
        };
        let leader = start.leader;
        let name = self.leader_name(leader);
        let disruptors = net.hosts(&self.first.disruptors);
        if !net.possible.contains(&leader) {
            let hearers = net.hosts(&net.hearers(leader));
            let hearers = if hearers.is_empty() { "no voter".to_string() } else { hearers };
            let head = format!("{} has lost its majority but still sends heartbeats; {hearers} still hear it", name);
            return match (self.leaders_after.is_empty(), self.variant) {
                (true, RaftVariant::LeaderLease) => format!(
                    "{head}, so they never time out and refuse every vote request while its lease holds: nobody \
                     can be elected (the one-way trap)."
                ),
                (true, _) => format!("{head} and never time out, and no voter that misses it can win: nobody leads."),
                (false, _) => format!("{head}; the voters that miss it elect one of {after}."),
            };
        }
        match (self.variant, self.first.stay) {
            (RaftVariant::LeaderLease, Stay::Sure) => format!(
                "{name} keeps its majority and its lease: every voter that hears it refuses other candidates, and \
                 the voters that miss it are fewer than a majority."
            ),
            (_, Stay::Sure) => format!("{name} keeps its majority, and every voter that misses it is harmless."),
            (RaftVariant::Plain, _) if self.churns => format!(
                "Without PreVote, {disruptors} miss {name}'s heartbeats and their higher terms reach it, so it steps \
                 down; every possible leader is unseated the same way, so leadership churns among {after} and \
                 writes commit only between elections."
            ),
            (RaftVariant::Plain, _) => format!(
                "Without PreVote, {disruptors} miss {name}'s heartbeats and keep campaigning; the higher terms reach \
                 it and it steps down. Writes stall at each election until {} wins: no voter can unseat {}.",
                if self.leaders_after.len() == 1 { after.clone() } else { format!("one of {after}") },
                if self.leaders_after.len() == 1 { "it" } else { "them" },
            ),
            (RaftVariant::PreVote, _) => format!(
                "With PreVote, {disruptors} can still win a pre-vote while their logs are as fresh as the voters' \
                 (disruption allowed, not required), so leadership may move among {after}."
            ),
            (RaftVariant::LeaderLease, _) => format!(
                "{disruptors} miss {name}'s heartbeats but can send to it directly: once its lease lapses it may \
                 adopt their higher term and step down (disruption allowed, not required), so any of {after} may \
                 lead."
            ),
        }
    }

    /// Why leadership may be elsewhere, in a clause.
    fn why_moved(&self) -> String {
        let net = self.net;
        let Some(start) = self.start else {
            return "no leader when the fault starts: any possible leader may win".into();
        };
        let name = self.leader_name(start.leader);
        if !net.possible.contains(&start.leader) {
            return format!("{name} lost its majority, and the voters that miss it elect another");
        }
        let disruptors = net.hosts(&self.first.disruptors);
        match self.variant {
            RaftVariant::Plain if self.churns => {
                format!("{disruptors} unseat every leader they miss: leadership churns")
            }
            RaftVariant::Plain => format!("{disruptors} unseat {name} and every leader they miss"),
            RaftVariant::PreVote => {
                format!("{disruptors} may win a pre-vote while their logs are as fresh as the voters' (allowed, not required)")
            }
            RaftVariant::LeaderLease => {
                format!(
                    "{disruptors} may unseat {name} with a vote request sent straight to it (allowed, not required)"
                )
            }
        }
    }

    pub(super) fn reason(&self, dc: &str, availability: Availability, summary: &str) -> String {
        let net = self.net;
        let after = net.hosts(self.leaders_after);
        let stays =
            self.start.filter(|r| self.first.stay == Stay::Sure && self.leaders_after == &BTreeSet::from([r.leader]));
        match availability {
            Availability::Available => match stays {
                Some(reign) if net.topology.dc_of(reign.leader) == Some(dc) => {
                    format!("{dc} can write: {} is in {dc} and keeps its majority.", self.leader_name(reign.leader))
                }
                Some(reign) => {
                    let via = net
                        .connectivity
                        .client_entry_nodes(net.topology, dc)
                        .into_iter()
                        .find(|&n| net.connectivity.two_way(n, reign.leader));
                    format!(
                        "{dc} can write: {} exchanges messages both ways with {}, which keeps its majority.",
                        via.map_or_else(|| dc.to_string(), |n| net.host(n)),
                        self.leader_name(reign.leader)
                    )
                }
                None => format!(
                    "{dc} can write once elections settle: every leader that may settle ({after}) serves {dc}; {}.",
                    self.why_moved()
                ),
            },
            Availability::Unavailable => {
                if self.leaders_after.is_empty() {
                    return format!("{dc} cannot write: {summary}");
                }
                if let Some(reign) = stays {
                    let name = self.leader_name(reign.leader);
                    // The voters this datacenter's candidates would need, that the leader's heartbeats still reach.
                    let mine = net.connectivity.client_entry_nodes(net.topology, dc);
                    let refusers: BTreeSet<NodeId> = net
                        .hearers(reign.leader)
                        .into_iter()
                        .filter(|&h| mine.iter().any(|&n| n != h && net.connectivity.two_way(n, h)))
                        .collect();
                    return match self.variant {
                        RaftVariant::LeaderLease if !refusers.is_empty() => format!(
                            "{dc} cannot write: {name} keeps its lease through {}, which refuses {dc}'s vote requests.",
                            net.hosts(&refusers)
                        ),
                        _ => format!(
                            "{dc} cannot write: no node in {dc} exchanges messages both ways with {name}, which keeps \
                             its majority, and no voter of {dc} can unseat it."
                        ),
                    };
                }
                format!(
                    "{dc} cannot write: none of the leaders that may settle ({after}) serves {dc}; {}.",
                    self.why_moved()
                )
            }
            Availability::Either => {
                let (served, unserved): (BTreeSet<NodeId>, BTreeSet<NodeId>) =
                    self.leaders_after.iter().partition(|&&l| net.serves(l, dc));
                if unserved.is_empty() {
                    return format!(
                        "{dc} may or may not write: leaders that serve it are unseated again and again; {}.",
                        self.why_moved()
                    );
                }
                format!(
                    "{dc} may or may not write: {} would serve it, {} would not, and which leads depends on a race; \
                     {}.",
                    net.hosts(&served),
                    net.hosts(&unserved),
                    self.why_moved()
                )
            }
        }
    }

    pub(super) fn caveats(&self) -> Vec<String> {
        let net = self.net;
        let mut caveats = Vec::new();
        // A concrete name when one exists: a possible leader outside the starting leader's majority.
        // A concrete name when one exists: a voter the network would let lead that misses the leader's appends.
        let outsider = self.start.filter(|r| net.possible.contains(&r.leader)).and_then(|r| {
            let first = |candidates: &BTreeSet<NodeId>| {
                candidates.iter().copied().find(|&l| l != r.leader && !net.hears(l, r.leader))
            };
            first(self.leaders_after).or_else(|| first(&net.possible)).map(|l| (r.leader, l))
        });
        caveats.push(match outsider {
            Some((leader, outsider)) => format!(
                "Log freshness: once {} commits a write during the fault, {} misses it and can no longer win an \
                 election while the fault lasts (§5.4.1): the election restriction may narrow who leads.",
                net.host(leader),
                net.host(outsider)
            ),
            None => "Log freshness: a voter that missed committed writes can no longer win an election (§5.4.1), \
                     so the election restriction may narrow who leads."
                .to_string(),
        });
        if self.variant == RaftVariant::LeaderLease && !self.first.disruptors.is_empty() {
            caveats.push(
                "Disruption through a direct vote request to the leader is allowed, not required: it depends on \
                 when the leader's own lease lapses."
                    .to_string(),
            );
        }
        caveats
    }
}
