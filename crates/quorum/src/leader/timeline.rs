//! A per-node term timeline for one fault, one starting leader and one variant: what each node does while the
//! fault lasts and when it heals. Symbolic (`t` is the term when the fault starts), built from the same sets the
//! refined prediction comes from; the simulated picture of the same run comes from the partition suite.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{predict_with_leader, Net, RaftVariant, Reign, Stay};
use crate::connectivity::Connectivity;
use crate::topology::{NodeId, Role, Topology};

/// One node's line in the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineRow {
    pub host: String,
    pub during: String,
    pub on_heal: String,
}

/// What each node does while the fault lasts, and when it heals, for one variant and starting leader.
pub fn term_timeline(
    topology: &Topology,
    connectivity: &Connectivity,
    variant: RaftVariant,
    leader: Option<NodeId>,
) -> Vec<TimelineRow> {
    let net = Net::new(topology, connectivity);
    let prediction = predict_with_leader(topology, connectivity, variant, leader);
    let start = leader.filter(|l| net.live_voters.contains(l)).map(|leader| Reign { leader, stale: None });
    let first_stay = start.map(|reign| net.step(variant, reign).stay);
    let after = &prediction.leaders_after;
    let after_names = net.hosts(after);
    let one_after = if after.len() == 1 { after.iter().next().copied() } else { None };
    let campaigners: BTreeSet<NodeId> = match start {
        Some(reign) => net.campaigners(variant, reign),
        None => BTreeSet::new(),
    };
    // Voters whose term climbs while they follow no one who can lead them: when the fault heals, the first
    // message between them and the leader carries the higher term, and the leader steps down once (§9.6).
    let climbing: BTreeSet<NodeId> = match (variant, start, first_stay) {
        (RaftVariant::PreVote, ..) => BTreeSet::new(),
        (_, Some(_), Some(Stay::Sure)) => campaigners.clone(),
        (_, Some(reign), _) if !net.possible.contains(&reign.leader) && after.is_empty() => campaigners.clone(),
        _ => BTreeSet::new(),
    };
    let heal_election = !climbing.is_empty() && !after.is_empty();
    topology
        .nodes()
        .iter()
        .map(|node| {
            let n = node.id;
            let host = node.host.clone();
            if connectivity.is_down(n) {
                return TimelineRow { host, during: "down".into(), on_heal: "restarts and catches up".into() };
            }
            if node.role == Role::Learner {
                let during = match one_after {
                    Some(l) if net.serves(l, &node.dc) => format!("learner: copies {}'s log, never votes", net.host(l)),
                    _ => "learner: never votes, never counts toward a majority".to_string(),
                };
                return TimelineRow { host, during, on_heal: "catches up".into() };
            }
            let during = during(&net, variant, start, first_stay, &prediction.disruptors, &campaigners, after, n);
            let on_heal = if heal_election && climbing.contains(&n) {
                "its higher term reaches the leader, which steps down: one election (its log may be too old to win)"
                    .to_string()
            } else if heal_election && after.contains(&n) {
                "sees a higher term and steps down; one election at a term above every climbed one".to_string()
            } else if heal_election {
                "votes in that one election".to_string()
            } else if after.is_empty() {
                "an election at last".to_string()
            } else if after.len() == 1 {
                format!("no election: {after_names} keeps leading")
            } else {
                "no forced election: whoever leads keeps leading".to_string()
            };
            TimelineRow { host, during, on_heal }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn during(
    net: &Net,
    variant: RaftVariant,
    start: Option<Reign>,
    first_stay: Option<Stay>,
    disruptors: &BTreeSet<NodeId>,
    campaigners: &BTreeSet<NodeId>,
    after: &BTreeSet<NodeId>,
    n: NodeId,
) -> String {
    let after_names = net.hosts(after);
    let Some(reign) = start else {
        return if after.contains(&n) {
            "campaigns at t + 1; may win".to_string()
        } else if after.is_empty() {
            "campaigns; never wins".to_string()
        } else {
            format!("votes; follows whichever of {after_names} wins")
        };
    };
    let l = reign.leader;
    let leader = net.host(l);
    let hears = net.hears(n, l);
    let climbs = match variant {
        RaftVariant::Plain | RaftVariant::LeaderLease => "campaigns: term t + 1, t + 2, …",
        RaftVariant::PreVote => "asks for pre-votes",
    };
    match first_stay {
        Some(Stay::Sure) if net.possible.contains(&l) => {
            if n == l {
                "leads at term t".to_string()
            } else if hears && variant == RaftVariant::LeaderLease {
                format!("follows {leader} at term t; refuses other candidates (lease)")
            } else if hears {
                format!("follows {leader} at term t")
            } else if variant == RaftVariant::PreVote {
                "pre-votes refused: term stays t".to_string()
            } else {
                format!("{climbs}; never wins")
            }
        }
        _ if !net.possible.contains(&l) => {
            if n == l {
                "leads in name at term t; commits nothing".to_string()
            } else if hears && !campaigners.contains(&n) {
                let refuses = if variant == RaftVariant::LeaderLease { "; refuses every vote (lease)" } else { "" };
                format!("hears {leader}, never times out{refuses}")
            } else if after.contains(&n) {
                format!("{climbs}; may win")
            } else if after.is_empty() {
                format!("{climbs}; never wins")
            } else {
                format!("follows whichever of {after_names} wins")
            }
        }
        Some(Stay::Gone) => {
            // Plain Raft: the leader is unseated for sure.
            if n == l {
                format!("leads at t; a higher term reaches it and it steps down; {}", settle_phrase(after, n))
            } else if disruptors.contains(&n) {
                "campaigns: term t + 1, t + 2, …, unseating every leader it misses".to_string()
            } else if after.contains(&n) {
                "adopts each higher term; wins at last and then leads for good".to_string()
            } else {
                format!("adopts each higher term; {}", settle_phrase(after, n))
            }
        }
        _ => {
            // Disruption allowed, not required.
            if n == l {
                format!("leads at t; may lose leadership to {}", net.hosts(disruptors))
            } else if disruptors.contains(&n) && variant == RaftVariant::PreVote {
                "pre-vote granted while its log is as fresh: may win at t + 1".to_string()
            } else if disruptors.contains(&n) {
                format!("campaigns: term t + 1, …; its requests reach {leader} directly")
            } else if hears {
                format!("follows {leader} at term t, or whoever takes over")
            } else {
                format!("follows whichever of {after_names} leads")
            }
        }
    }
}

fn settle_phrase(after: &BTreeSet<NodeId>, n: NodeId) -> String {
    if after.contains(&n) {
        "may win back".to_string()
    } else {
        "follows the leader that settles".to_string()
    }
}
