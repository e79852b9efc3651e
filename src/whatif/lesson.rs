//! The one sentence a `whatif` row ends with: what the scenario teaches. Built from what the run observed (who
//! kept writing, who led, how long the cluster was without a working leader) and the facts the oracle works from
//! (voter counts, who hears whom), never from the scenario's name, so a topology nobody wrote a sentence for
//! gets one that is true of its own run.

use quorumlab_quorum::{predict, FaultShape, Topology};

use super::Row;
use crate::sim::invariants::availability::Window;
use crate::sim::roles::Role;
use crate::sim::schedule::Fault;

/// What `row`'s scenario teaches, in one sentence.
pub fn lesson(
    topology: &Topology,
    fault: Option<&Fault>,
    shape: Option<&FaultShape>,
    window: Option<&Window>,
    row: &Row,
) -> String {
    if let Some(dc) = row.dcs.iter().find(|d| d.agree == Some(false)) {
        return format!(
            "{} did not do what the quorum math predicted ({}): either the model or the node is wrong here.",
            dc.dc,
            dc.predicted.map_or("no prediction", |p| p.name())
        );
    }
    if let Some((name, why)) = row.verdicts.iter().find(|(_, v)| v.starts_with("FAIL")) {
        return format!("The run broke {name} ({}): replay it and read the trace.", why.trim_start_matches("FAIL: "));
    }
    let writing: Vec<&str> =
        row.dcs.iter().filter(|d| d.share().is_some_and(|s| s >= 80)).map(|d| d.dc.as_str()).collect();
    let stranded: Vec<&str> = row.dcs.iter().filter(|d| d.writes > 0 && d.acked == 0).map(|d| d.dc.as_str()).collect();
    let dc_of_host = |h: &Option<String>| h.as_deref().and_then(|h| topology.dc_of_host(h)).map(str::to_string);
    let before = row.leader_before.clone();
    let leader_dc = dc_of_host(&before);
    let moved = row.leader_at_heal.is_some() && row.leader_at_heal != before;
    let took = seconds(row.stall_during_ms);
    let n = topology.voter_count();
    let majority = topology.majority();
    let voters = |dcs: &[&str]| dcs.iter().map(|dc| topology.voters_in_dc(dc)).sum::<usize>();
    let prediction = window.and_then(|w| w.prediction.as_ref());
    // Whether plain connectivity lets `dc`'s clients reach a majority (before any election rule).
    let connectivity = shape.and_then(|s| s.apply(topology).ok());
    let network_allows =
        |dc: &str| connectivity.as_ref().is_some_and(|c| predict(topology, c).client_dc_can_commit(dc));

    // Elections while the fault lasted, and at or after the heal.
    let during = row.timeline.elections.iter().filter(|e| e.0 >= 0 && e.0 < row.timeline.fault_end).count();
    let at_heal: Vec<u64> =
        row.timeline.elections.iter().filter(|e| e.0 >= row.timeline.fault_end).map(|e| e.2).collect();
    // Terms at the heal: did voters cut off from the leader climb above it?
    let term_at =
        |lane: &super::NodeLane| lane.changes.iter().rev().find(|c| c.0 <= row.timeline.fault_end).map(|c| (c.1, c.2));
    let leader_term = row.timeline.nodes.iter().filter_map(term_at).filter(|c| c.0 == Role::Leader).map(|c| c.1).max();
    let climbed = row.timeline.nodes.iter().filter_map(term_at).any(|c| leader_term.is_some_and(|t| c.1 > t));
    let heal_note = match at_heal.last() {
        Some(term) if during == 0 && climbed => format!(
            " The heal was not free: the higher terms that cut-off voters had climbed to reached the leader and \
             forced one more election (term {term}), and writes stalled for {}.",
            seconds(row.stall_after_heal_ms)
        ),
        Some(term) if during == 0 => format!(" An election followed the heal (term {term})."),
        _ => String::new(),
    };
    // Nobody can lead: the whole cluster stops, reads included.
    if prediction.is_some_and(|p| p.leaders_after.is_empty()) && writing.is_empty() {
        let connected = connectivity.as_ref().is_some_and(|c| !predict(topology, c).possible_leaders().is_empty());
        if connected {
            return format!(
                "A majority of voters still hear each other, yet nobody writes: the old leader {} still sends \
                 heartbeats to a voter that majority needs, and that voter refuses every vote while it hears them \
                 (the one-way trap of the leader lease). Nobody reads either: a linearizable read needs a working \
                 leader.",
                before.as_deref().unwrap_or("")
            );
        }
        return format!(
            "No group of voters that still hear each other reaches a majority ({majority} of {n}), so nobody writes \
             and nobody reads: the cluster is unavailable, not read-only, because a linearizable read needs a \
             leader that can still reach a majority."
        );
    }
    if let (Some(FaultShape::CutDcLink { a, b }), Some(ldc)) = (shape, &leader_dc) {
        let bystanders: Vec<&str> =
            topology.datacenters().iter().map(|d| d.name.as_str()).filter(|d| d != a && d != b).collect();
        let other = if ldc == a {
            Some(b)
        } else if ldc == b {
            Some(a)
        } else {
            None
        };
        let k = voters(&bystanders);
        // The bystanders decide only if neither side is a majority alone and either side is one with them.
        let pivotal = other.is_some_and(|o| {
            voters(&[ldc.as_str()]) < majority
                && voters(&[ldc.as_str()]) + k >= majority
                && voters(&[o.as_str()]) + k >= majority
        });
        if let (Some(other), true) = (other, pivotal) {
            let by = bystanders.join(" and ");
            let plural = if k == 1 { "voter" } else { "voters" };
            let reachable = network_allows(other);
            if !moved && writing.contains(&ldc.as_str()) && stranded.contains(&other.as_str()) {
                return format!(
                    "{by} holds {k} {plural}, yet it decides which side keeps writing: a majority needs it, and it \
                     still hears the leader in {ldc}, so it refuses {other}'s vote requests{}.{heal_note}",
                    if reachable {
                        format!(" and {other}'s clients are stranded although the network lets a majority form through {by}")
                    } else {
                        String::new()
                    }
                );
            }
            if !moved && stranded.is_empty() && writing.len() == row.dcs.len() {
                return format!(
                    "The leader in {ldc} keeps its majority through {by}, and every client still reaches it: this \
                     cut costs nothing because {by} sees both sides and the leader's side holds it.{heal_note}"
                );
            }
        }
        if other.is_none() && stranded.is_empty() && writing.len() == row.dcs.len() && !moved {
            return format!(
                "The leader sits in {ldc}, which still sees both {a} and {b}: cutting the link between them changes \
                 nothing for any client.{heal_note}"
            );
        }
    }
    // Clients the fault itself took away: a lost or isolated datacenter's.
    let taken: Vec<&str> = match shape {
        Some(FaultShape::LoseDc { dc } | FaultShape::IsolateDc { dc }) => vec![dc.as_str()],
        _ => vec![],
    };
    let lost = matches!(shape, Some(FaultShape::LoseDc { .. })) && !matches!(fault, Some(Fault::Crash { .. }));
    // The leader kept working through the fault.
    if before.is_some() && !moved && during == 0 && !writing.is_empty() && stranded.iter().all(|dc| taken.contains(dc))
    {
        let leader = before.as_deref().unwrap_or("?");
        let reach = before
            .as_deref()
            .and_then(|h| topology.node_by_host(h))
            .zip(connectivity.as_ref())
            .map(|(l, c)| predict(topology, c).quorum_of(l.id).len());
        let keeps = reach.map_or_else(|| "a majority".to_string(), |k| format!("{k} of {n} voters"));
        let gone = if stranded.is_empty() {
            "The leader".to_string()
        } else {
            format!(
                "{}'s clients {} with their datacenter; the leader",
                stranded.join(" and "),
                if lost { "went down" } else { "were cut off" }
            )
        };
        return format!(
            "{gone} {leader} in {} keeps {keeps} (a majority is {majority}), so {} never noticed.{heal_note}",
            leader_dc.as_deref().unwrap_or("?"),
            writing.join(" and ")
        );
    }
    // Stranded clients of a datacenter the network still connects to a majority: the election rules decide.
    if let Some(dc) = stranded.iter().find(|dc| network_allows(dc)) {
        let reason = prediction.and_then(|p| p.reasons.get(*dc)).cloned().unwrap_or_default();
        // The oracle's reasons open with "dc2 cannot write: " or "dc2 may or may not write: ".
        let why = reason.split_once(": ").map_or(reason.as_str(), |(_, why)| why);
        let either = prediction.is_some_and(|p| p.availability(dc) == quorumlab_quorum::Availability::Either);
        return if either {
            format!(
                "{dc}'s clients wrote nothing although the network lets them reach a majority; the math allowed \
                 either outcome ({}), and in this run {}.",
                lowercase_first(why.trim_end_matches('.')),
                match (&before, moved) {
                    (Some(b), false) => format!("{b} kept leading"),
                    (_, true) => format!("{} took over", row.leader_at_heal.as_deref().unwrap_or("another node")),
                    (None, false) => "no leader served it".to_string(),
                }
            )
        } else {
            format!(
                "{dc}'s clients wrote nothing although the network lets them reach a majority: {}",
                lowercase_first(why)
            )
        };
    }
    if moved && row.elections > 0 {
        let old = before.as_deref().unwrap_or("the leader");
        // The old leader's first role after the fault ended.
        let stepped_down_after_heal =
            row.timeline.nodes.iter().filter(|n| Some(&n.host) == before.as_ref()).any(|n| {
                n.changes.iter().find(|c| c.0 >= row.timeline.fault_end).is_some_and(|c| c.1 == Role::Follower)
            });
        let new = row.leader_at_heal.as_deref().unwrap_or("another node");
        let what = match (fault, shape) {
            (Some(Fault::Crash { .. }), _) => "crashed".to_string(),
            (Some(Fault::PowerLoss { .. }), _) => "lost power".to_string(),
            (Some(Fault::Pause { .. }), _) => "stopped answering (paused)".to_string(),
            (_, Some(FaultShape::LoseDc { dc })) => format!("went down with {dc}"),
            (_, Some(FaultShape::IsolateDc { dc })) => format!("was cut off with {dc}"),
            _ => "was cut off".to_string(),
        };
        let lost_note = if matches!(fault, Some(Fault::PowerLoss { .. })) {
            " Nothing acknowledged was lost: every acknowledged write was already on a majority's disks."
        } else if matches!(fault, Some(Fault::Pause { .. })) && stepped_down_after_heal {
            " A paused leader looks exactly like a dead one; when it woke it found a higher term and stepped down."
        } else if matches!(fault, Some(Fault::Pause { .. })) {
            " A paused leader looks exactly like a dead one."
        } else {
            ""
        };
        let tail = match stranded.as_slice() {
            [] => String::new(),
            s if s.iter().all(|dc| taken.contains(dc)) => {
                format!(" {}'s clients {} with it.", s.join(" and "), if lost { "went down" } else { "were cut off" })
            }
            s => format!(" {} could not reach the new majority.", s.join(" and ")),
        };
        return format!(
            "When {old} {what}, the voters that remained waited out its lease and an election timeout, then elected \
             {new}: writes stopped for {took}, the price of losing a leader.{lost_note}{tail}"
        );
    }
    // Stranded clients with no way to a majority, beside a datacenter that is a majority on its own.
    if !stranded.is_empty() && stranded.iter().all(|dc| !network_allows(dc)) {
        if let Some(big) = writing.iter().find(|dc| topology.voters_in_dc(dc) >= majority) {
            let k = topology.voters_in_dc(big);
            let m = voters(&stranded);
            return format!(
                "{big} holds {k} of {n} voters, a majority on its own, so it keeps writing whatever happens to the \
                 rest; {} {} {m} and the fault leaves no way to a majority from there: {} clients wait for the \
                 heal.{heal_note}",
                stranded.join(" and "),
                if stranded.len() == 1 { "holds" } else { "hold" },
                if stranded.len() == 1 { "its" } else { "their" }
            );
        }
    }
    // Otherwise: what was seen, and the oracle's account of it.
    let seen = match (writing.is_empty(), stranded.is_empty()) {
        (false, true) => format!("{} kept writing", writing.join(", ")),
        (false, false) => format!("{} kept writing while {} could not", writing.join(", "), stranded.join(", ")),
        (true, false) => format!("{} could not write", stranded.join(", ")),
        (true, true) => "writes went on only in part".to_string(),
    };
    match prediction {
        Some(p) => format!("{seen}: {}", lowercase_first(&p.summary)),
        None => format!(
            "{seen}; the quorum math does not model this fault (it is timing, not connectivity), so only safety \
             and recovery are judged."
        ),
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        // Keep a name's capital (dc1-n1) and an acronym's; lower a sentence's first word.
        Some(c) if c.is_uppercase() && chars.clone().next().is_some_and(|n| n.is_lowercase()) => {
            c.to_lowercase().chain(chars).collect()
        }
        Some(c) => std::iter::once(c).chain(chars).collect(),
        None => String::new(),
    }
}

/// Milliseconds as seconds with one decimal: "1.2 s".
pub fn seconds(ms: u64) -> String {
    format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
}
