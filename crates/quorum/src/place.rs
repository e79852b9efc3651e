//! `quorum place --voters N --dcs D`: every way to spread N voters over D datacenters, ranked by what it
//! survives, each verdict computed by the oracle and explained with the arithmetic.
//!
//! The rules the rankings keep rediscovering (f = failures tolerated = n − majority):
//! 1. losing a datacenter is survivable iff it holds at most f voters;
//! 2. losing a datacenter plus one more node iff it holds at most f − 1;
//! 3. an even-sized cluster tolerates no more than the odd size below it.

use serde::Serialize;

use crate::connectivity::FaultShape;
use crate::explain::fault_case;
use crate::leader::{predict_with_leader, Availability, RaftVariant};
use crate::majority::{failures_tolerated, majority};
use crate::predict::predict;
use crate::report::Doc;
use crate::topology::{placement_label, Topology};

/// Largest `--voters` accepted: placements grow quickly and nobody runs more.
pub const MAX_VOTERS: u32 = 21;
/// Largest `--dcs` accepted.
pub const MAX_DCS: u32 = 7;

/// One placement and the faults it survives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub rank: usize,
    pub voters_per_dc: Vec<u32>,
    pub label: String,
    pub dcs_used: usize,
    pub survives_any_dc_loss: bool,
    pub dc_losses_survived: usize,
    /// Every link cut leaves a majority; false when there is no link to cut (one datacenter).
    pub survives_any_link_cut: bool,
    pub link_cuts_survived: usize,
    pub link_cuts: usize,
    /// Link cuts after which every datacenter's clients can still write under some leader (the union view).
    pub link_cuts_all_clients_write: usize,
    /// Link cuts after which every datacenter's clients can write wherever the leader was when the cut
    /// started, under quorumlab's node (the lease rule).
    pub link_cuts_all_clients_write_any_leader: usize,
    /// Datacenters (among those used) whose loss plus any one more node still leaves a majority.
    pub dc_loss_plus_node_survived: Vec<String>,
    pub reasons: Vec<String>,
}

/// The best placement for a nearby cluster size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SizeComparison {
    pub voters: u32,
    pub majority: usize,
    pub failures_tolerated: usize,
    pub best: Option<Placement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaceReport {
    pub voters: u32,
    pub dcs: u32,
    pub max_per_dc: Option<u32>,
    pub majority: usize,
    pub failures_tolerated: usize,
    pub placements: Vec<Placement>,
    pub other_sizes: Vec<SizeComparison>,
    pub lessons: Vec<String>,
}

/// Why `place` could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceError {
    #[error("--voters must be between 1 and {MAX_VOTERS}, not {0}")]
    Voters(u32),
    #[error("--dcs must be between 1 and {MAX_DCS}, not {0}")]
    Dcs(u32),
    #[error("--max-per-dc must be at least 1")]
    MaxPerDc,
    #[error("no placement of {voters} voters over {dcs} datacenters with at most {max_per_dc} per datacenter")]
    NoPlacement { voters: u32, dcs: u32, max_per_dc: u32 },
}

impl PlaceError {
    /// Usage errors versus an empty answer, for the exit code.
    pub fn is_usage(&self) -> bool {
        !matches!(self, PlaceError::NoPlacement { .. })
    }
}

/// Every placement of `voters` over `dcs` datacenters, largest first within a placement, ranked.
pub fn place(voters: u32, dcs: u32, max_per_dc: Option<u32>) -> Result<PlaceReport, PlaceError> {
    if !(1..=MAX_VOTERS).contains(&voters) {
        return Err(PlaceError::Voters(voters));
    }
    if !(1..=MAX_DCS).contains(&dcs) {
        return Err(PlaceError::Dcs(dcs));
    }
    if max_per_dc == Some(0) {
        return Err(PlaceError::MaxPerDc);
    }
    let placements = ranked(voters, dcs, max_per_dc);
    if placements.is_empty() {
        return Err(PlaceError::NoPlacement { voters, dcs, max_per_dc: max_per_dc.unwrap_or(voters) });
    }
    let other_sizes: Vec<SizeComparison> = (voters.saturating_sub(2).max(1)..=voters + 1)
        .filter(|&n| n != voters)
        .map(|n| SizeComparison {
            voters: n,
            majority: majority(n as usize),
            failures_tolerated: failures_tolerated(n as usize),
            best: ranked(n, dcs, max_per_dc).into_iter().next(),
        })
        .collect();
    let lessons = lessons(voters, &placements, &other_sizes);
    Ok(PlaceReport {
        voters,
        dcs,
        max_per_dc,
        majority: majority(voters as usize),
        failures_tolerated: failures_tolerated(voters as usize),
        placements,
        other_sizes,
        lessons,
    })
}

fn ranked(voters: u32, dcs: u32, max_per_dc: Option<u32>) -> Vec<Placement> {
    let mut all = Vec::new();
    partitions(voters, dcs as usize, max_per_dc.unwrap_or(voters).min(voters), &mut Vec::new(), &mut all);
    let mut scored: Vec<Placement> = all.iter().filter_map(|counts| score(counts)).collect();
    scored.sort_by_key(|p| {
        (
            std::cmp::Reverse((
                p.survives_any_dc_loss,
                p.survives_any_link_cut,
                every_cut_keeps_every_client(p),
                p.dc_loss_plus_node_survived.len(),
            )),
            fatal_single_faults(p),
            std::cmp::Reverse(p.dcs_used),
            p.voters_per_dc.first().copied(),
            p.label.clone(),
        )
    });
    for (i, placement) in scored.iter_mut().enumerate() {
        placement.rank = i + 1;
    }
    scored
}

/// Non-increasing sequences of `slots` counts, each ≤ `max`, summing to `left`.
fn partitions(left: u32, slots: usize, max: u32, prefix: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
    if prefix.len() == slots {
        if left == 0 {
            out.push(prefix.clone());
        }
        return;
    }
    let remaining_slots = (slots - prefix.len()) as u32;
    for count in (0..=max.min(left)).rev() {
        if count * remaining_slots < left {
            break;
        }
        prefix.push(count);
        partitions(left - count, slots, count, prefix, out);
        prefix.pop();
    }
}

fn score(counts: &[u32]) -> Option<Placement> {
    let topology = Topology::from_voter_counts(&placement_label(counts), counts).ok()?;
    let n = topology.voter_count();
    let m = topology.majority();
    let f = n - m;
    let used: Vec<(String, usize)> =
        topology.datacenters().iter().map(|dc| (dc.name.clone(), dc.voters as usize)).collect();
    let mut reasons = Vec::new();

    let mut dc_losses_survived = 0;
    let mut fatal_dc = None;
    for (name, held) in &used {
        let case = fault_case(&topology, vec![FaultShape::LoseDc { dc: name.clone() }]).ok()?;
        debug_assert_eq!(case.majority_survives, n - held >= m, "rule 1 and the oracle disagree");
        if case.majority_survives {
            dc_losses_survived += 1;
        } else if fatal_dc.is_none() {
            fatal_dc = Some((name.clone(), *held));
        }
    }
    let largest = used.iter().map(|(_, held)| *held).max().unwrap_or(0);
    reasons.push(match &fatal_dc {
        None => format!(
            "any one DC lost: every DC holds ≤ {f} = {n} − {m} voters, so at least {n} − {largest} = {} ≥ {m} remain",
            n - largest
        ),
        Some((dc, held)) => format!(
            "{dc} lost: it holds {held} > {f} = {n} − {m} voters, leaving {n} − {held} = {} < {m}: no majority",
            n - held
        ),
    });

    let mut link_cuts = 0;
    let mut link_cuts_survived = 0;
    let mut link_cuts_all_clients_write = 0;
    let mut link_cuts_all_clients_write_any_leader = 0;
    let mut fatal_cut = None;
    let mut stranding_cut = None;
    for (a, b, _) in topology.dc_links() {
        link_cuts += 1;
        let fault = FaultShape::CutDcLink { a: a.into(), b: b.into() };
        let case = fault_case(&topology, vec![fault.clone()]).ok()?;
        if case.majority_survives {
            link_cuts_survived += 1;
        } else if fatal_cut.is_none() {
            let best = case.attempts.iter().max_by_key(|x| x.votes).map(|x| x.arithmetic.clone()).unwrap_or_default();
            fatal_cut = Some(format!("{}: best side {best}: no majority", case.label));
        }
        if case.client_dcs_cannot_commit.is_empty() {
            link_cuts_all_clients_write += 1;
        } else if case.majority_survives && stranding_cut.is_none() {
            stranding_cut = Some(format!(
                "{}: a majority survives, but {}'s clients reach no possible leader: stranded",
                case.label,
                case.client_dcs_cannot_commit.join(", ")
            ));
        }
        let connectivity = fault.apply(&topology).ok()?;
        let every_leader_serves_everyone =
            crate::raft_view::leader_locations(&topology).into_iter().flatten().all(|leader| {
                predict_with_leader(&topology, &connectivity, RaftVariant::QUORUMLAB_NODE, Some(leader))
                    .client_dcs
                    .values()
                    .all(|&a| a == Availability::Available)
            });
        if every_leader_serves_everyone {
            link_cuts_all_clients_write_any_leader += 1;
        }
    }
    reasons.push(match (fatal_cut, stranding_cut) {
        _ if link_cuts == 0 => "no link to cut: one datacenter".to_string(),
        (Some(reason), _) => reason,
        (None, Some(reason)) => reason,
        (None, None) => format!(
            "any one link cut: a majority survives and every DC's clients reach a possible leader ({} of {} cuts \
             whatever the leader's place, under the lease rule)",
            link_cuts_all_clients_write_any_leader, link_cuts
        ),
    });

    let mut dc_loss_plus_node_survived = Vec::new();
    for (name, held) in &used {
        let mut fault = vec![FaultShape::LoseDc { dc: name.clone() }];
        let other = topology.voter_ids().into_iter().find(|&id| topology.dc_of(id) != Some(name.as_str()));
        // Any other voter is as good as another: only the count left matters.
        let survives = match other {
            Some(node) => {
                fault.push(FaultShape::CrashNode { node });
                let connectivity = FaultShape::All { faults: fault }.apply(&topology).ok()?;
                predict(&topology, &connectivity).any_leader_possible()
            }
            None => false,
        };
        debug_assert_eq!(survives, n >= held + 1 + m, "rule 2 and the oracle disagree");
        if survives {
            dc_loss_plus_node_survived.push(name.clone());
        }
    }
    let smallest = used.iter().map(|(_, held)| *held).min().unwrap_or(0);
    reasons.push(if dc_loss_plus_node_survived.len() == used.len() {
        format!("any DC lost plus one node: {n} − {largest} − 1 = {} ≥ {m}", n - largest - 1)
    } else if dc_loss_plus_node_survived.is_empty() {
        format!(
            "no DC lost plus one node: even the smallest DC leaves {n} − {smallest} − 1 = {} < {m}",
            (n - smallest).saturating_sub(1)
        )
    } else {
        format!(
            "{} lost plus one node: {n} − {smallest} − 1 = {} ≥ {m}; a bigger DC plus one node: no majority",
            dc_loss_plus_node_survived.join(" or "),
            n - smallest - 1
        )
    });

    Some(Placement {
        rank: 0,
        voters_per_dc: counts.to_vec(),
        label: placement_label(&counts[..counts.iter().filter(|&&c| c > 0).count()]),
        dcs_used: used.len(),
        survives_any_dc_loss: fatal_dc.is_none(),
        dc_losses_survived,
        survives_any_link_cut: link_cuts > 0 && link_cuts_survived == link_cuts,
        link_cuts_survived,
        link_cuts,
        link_cuts_all_clients_write,
        link_cuts_all_clients_write_any_leader,
        dc_loss_plus_node_survived,
        reasons,
    })
}

fn lessons(voters: u32, placements: &[Placement], others: &[SizeComparison]) -> Vec<String> {
    let mut lessons = Vec::new();
    let best = &placements[0];
    // For each number of datacenters used, the most balanced placement that still dies with one datacenter.
    for used in (2..=best.dcs_used.max(2)).rev() {
        let worse = placements
            .iter()
            .filter(|p| !p.survives_any_dc_loss && p.dcs_used == used)
            .min_by_key(|p| p.voters_per_dc.first().copied());
        if let (Some(worse), true) = (worse, best.survives_any_dc_loss) {
            lessons.push(format!("{} beats {}: {}.", best.label, worse.label, worse.reasons[0]));
        }
    }
    if let Some(single) = placements.iter().find(|p| p.dcs_used == 1) {
        lessons.push(format!(
            "{} voters in one DC do not survive losing it: the DC is the failure domain, however many voters it holds.",
            single.voters_per_dc[0]
        ));
    }
    let describe = |n: u32, p: &Placement| {
        format!(
            "{} as {} tolerate{} {} node {}, survive{} losing any DC: {}, survive{} a DC plus one node \
             for {} of {} {}",
            count_voters(n as i64),
            p.label,
            if n == 1 { "s" } else { "" },
            failures_tolerated(n as usize),
            if failures_tolerated(n as usize) == 1 { "failure" } else { "failures" },
            if n == 1 { "s" } else { "" },
            if p.survives_any_dc_loss { "yes" } else { "no" },
            if n == 1 { "s" } else { "" },
            p.dc_loss_plus_node_survived.len(),
            p.dcs_used,
            if p.dcs_used == 1 { "DC" } else { "DCs" }
        )
    };
    for other in others {
        let Some(theirs) = &other.best else { continue };
        if other.voters + 2 == voters {
            lessons.push(format!(
                "{} vs {} ({}): {}; {}.",
                best.label,
                theirs.label,
                count_voters(other.voters as i64),
                describe(voters, best),
                describe(other.voters, theirs)
            ));
        }
        let (odd, even, odd_best, even_best) = if other.voters == voters + 1 && !voters.is_multiple_of(2) {
            (voters, other.voters, best, theirs)
        } else if other.voters + 1 == voters && voters.is_multiple_of(2) {
            (other.voters, voters, theirs, best)
        } else {
            continue;
        };
        let costs = even_best.dc_losses_survived * odd_best.dcs_used < odd_best.dc_losses_survived * even_best.dcs_used
            || even_best.dc_loss_plus_node_survived.len() * odd_best.dcs_used
                < odd_best.dc_loss_plus_node_survived.len() * even_best.dcs_used;
        let verdict = if costs { "buys nothing and here it costs" } else { "buys nothing and can cost" };
        lessons.push(format!(
            "{} {} voter {verdict}: majority {} → {}, failures tolerated stay {}; best {}: {}; best {}: {}. \
             Every write now waits for one more acknowledgement.",
            if matches!(even, 8 | 11 | 18) { "An" } else { "A" },
            ordinal(even),
            majority(odd as usize),
            majority(even as usize),
            failures_tolerated(odd as usize),
            odd_best.label,
            survival(odd_best),
            even_best.label,
            survival(even_best),
        ));
    }
    lessons
}

fn survival(p: &Placement) -> String {
    format!(
        "survives {} of {} DC losses, {} of {} link cuts, a DC lost plus one node for {} of {}",
        p.dc_losses_survived,
        p.dcs_used,
        p.link_cuts_survived,
        p.link_cuts,
        p.dc_loss_plus_node_survived.len(),
        p.dcs_used
    )
}

/// 4 → "4th", 21 → "21st".
fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

impl PlaceReport {
    pub fn doc(&self) -> Doc {
        let mut doc = Doc::default();
        let cap = self.max_per_dc.map_or(String::new(), |k| format!(", at most {k} per DC"));
        doc.heading(format!("{} voters over {} datacenters{cap}", self.voters, self.dcs));
        doc.lines(vec![
            format!("majority           = {}/2 + 1 = {}", self.voters, self.majority),
            format!("failures tolerated = {} − {} = {} (f)", self.voters, self.majority, self.failures_tolerated),
            format!("a DC loss is survivable iff that DC holds ≤ f = {}", count_voters(self.failures_tolerated as i64)),
            format!(
                "a DC loss plus one node iff that DC holds ≤ f − 1 = {}",
                count_voters(self.failures_tolerated as i64 - 1)
            ),
        ]);
        let rows = self
            .placements
            .iter()
            .map(|p| {
                vec![
                    p.rank.to_string(),
                    p.label.clone(),
                    format!("{}/{}", p.dc_losses_survived, p.dcs_used),
                    cuts(p.link_cuts_survived, p.link_cuts),
                    cuts(p.link_cuts_all_clients_write, p.link_cuts),
                    cuts(p.link_cuts_all_clients_write_any_leader, p.link_cuts),
                    format!("{}/{}", p.dc_loss_plus_node_survived.len(), p.dcs_used),
                    p.reasons[0].clone(),
                ]
            })
            .collect();
        doc.table(
            &["rank", "placement", "DC lost", "link cut", "clients write", "any leader", "DC lost + node", "why"],
            rows,
        );
        doc.para(
            "link cut: a majority survives the cut. clients write: every datacenter's clients still reach a possible \
             leader (each placement puts clients in every datacenter). any leader: they can write wherever the \
             leader was when the cut started, under quorumlab's node (the lease rule keeps a leader that keeps its \
             majority, even if it strands a datacenter). — : one datacenter, no link to cut.",
        );
        let rows = self
            .other_sizes
            .iter()
            .map(|o| {
                let best = o.best.as_ref();
                vec![
                    o.voters.to_string(),
                    o.majority.to_string(),
                    o.failures_tolerated.to_string(),
                    best.map_or("—".into(), |p| p.label.clone()),
                    best.map_or("—".into(), |p| format!("{}/{}", p.dc_losses_survived, p.dcs_used)),
                    best.map_or("—".into(), |p| format!("{}/{}", p.dc_loss_plus_node_survived.len(), p.dcs_used)),
                ]
            })
            .collect();
        doc.heading("Nearby cluster sizes, best placement each");
        doc.table(&["voters", "majority", "tolerated", "best", "DC lost", "DC lost + node"], rows);
        doc.heading(format!("Why {} ranks first", self.placements[0].label));
        let mut why: Vec<String> = self.placements[0].reasons.iter().map(|r| format!("- {r}")).collect();
        if let Some(second) = self.placements.get(1) {
            why.push(format!("- it ranks above {}: {}", second.label, ranks_above(&self.placements[0], second)));
        }
        doc.lines(why);
        if !self.lessons.is_empty() {
            doc.heading("What this shows");
            doc.lines(self.lessons.iter().map(|l| format!("- {l}")).collect());
        }
        doc
    }
}

/// `3/3`, or `—` when there is no link to cut.
fn cuts(survived: usize, of: usize) -> String {
    if of == 0 {
        "—".to_string()
    } else {
        format!("{survived}/{of}")
    }
}

/// Whether every link cut leaves every datacenter's clients a possible leader (false with no link to cut).
fn every_cut_keeps_every_client(p: &Placement) -> bool {
    p.link_cuts > 0 && p.link_cuts_all_clients_write == p.link_cuts
}

/// Single faults (a DC lost, a link cut) that leave no majority: one datacenter has one, 2/2 has three.
fn fatal_single_faults(p: &Placement) -> usize {
    (p.dcs_used - p.dc_losses_survived) + (p.link_cuts - p.link_cuts_survived)
}

/// The first ranking criterion on which `first` beats `second`, in words.
fn ranks_above(first: &Placement, second: &Placement) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" };
    if first.survives_any_dc_loss != second.survives_any_dc_loss {
        format!("survives losing any DC ({} vs {})", yes(first.survives_any_dc_loss), yes(second.survives_any_dc_loss))
    } else if first.survives_any_link_cut != second.survives_any_link_cut {
        format!(
            "keeps a majority through any link cut ({} vs {})",
            yes(first.survives_any_link_cut),
            yes(second.survives_any_link_cut)
        )
    } else if every_cut_keeps_every_client(first) != every_cut_keeps_every_client(second) {
        format!(
            "every link cut leaves every DC's clients a leader to write to ({}/{} vs {}/{})",
            first.link_cuts_all_clients_write, first.link_cuts, second.link_cuts_all_clients_write, second.link_cuts
        )
    } else if first.dc_loss_plus_node_survived.len() != second.dc_loss_plus_node_survived.len() {
        format!(
            "survives a DC lost plus one node for more DCs ({} vs {})",
            first.dc_loss_plus_node_survived.len(),
            second.dc_loss_plus_node_survived.len()
        )
    } else if fatal_single_faults(first) != fatal_single_faults(second) {
        format!(
            "fewer single faults leave no majority ({} vs {}: a DC lost or a link cut)",
            fatal_single_faults(first),
            fatal_single_faults(second)
        )
    } else if first.dcs_used != second.dcs_used {
        format!("a tie on every fault; it spreads over more DCs ({} vs {})", first.dcs_used, second.dcs_used)
    } else {
        "a tie on every fault; the more balanced placement is listed first".to_string()
    }
}

/// "1 voter", "2 voters".
fn count_voters(n: i64) -> String {
    if n == 1 {
        "1 voter".into()
    } else {
        format!("{n} voters")
    }
}
