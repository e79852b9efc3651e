//! The `whatif` HTML report: one self-contained file (no scripts, fonts or anything fetched), the summary tables,
//! and per scenario an SVG timeline a student reads at a glance: one lane per node coloured by role and labelled
//! with its term, the fault window shaded and named, each client datacenter's operations as ticks coloured by
//! outcome, and every election marked.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::render::{self, Table};
use super::{Outcome, Report, Row, Timeline};
use crate::sim::roles::Role;

pub const LEADER: &str = "#2b6cb0";
pub const FOLLOWER: &str = "#bcd0e6";
pub const CANDIDATE: &str = "#dd6b20";
pub const LEARNER: &str = "#e2e8f0";
pub const DOWN: &str = "#4a5568";
pub const OK: &str = "#2f855a";
pub const FAILED: &str = "#c53030";
pub const UNKNOWN: &str = "#d69e2e";
pub const FAULT: &str = "#fbd38d";

pub fn role_colour(role: Role) -> &'static str {
    match role {
        Role::Leader => LEADER,
        Role::Follower => FOLLOWER,
        Role::Candidate => CANDIDATE,
        Role::Learner => LEARNER,
        Role::Down => DOWN,
    }
}

pub fn outcome_colour(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => OK,
        Outcome::Failed => FAILED,
        Outcome::Unknown => UNKNOWN,
    }
}

pub use crate::html::escape;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1a202c;\
max-width:1100px}table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}th,td{border:1px solid #cbd5e0;\
padding:3px 7px;text-align:left;vertical-align:top}th{background:#edf2f7}td.fail{background:#fed7d7;font-weight:bold}\
section{margin:28px 0;border-top:1px solid #cbd5e0;padding-top:8px}p.lesson{font-size:15px;background:#f7fafc;\
border-left:4px solid #2b6cb0;padding:6px 10px}code{font-size:12px;background:#edf2f7;padding:1px 4px}\
.legend span{display:inline-block;margin-right:14px;font-size:13px}.sw{display:inline-block;width:12px;height:12px;\
vertical-align:middle;margin-right:4px;border:1px solid #718096}";

fn table_html(t: &Table) -> String {
    let mut out = String::from("<table><tr>");
    for h in &t.header {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for c in r {
            let class = if c.starts_with("FAIL") || c == "DISAGREE" { " class=\"fail\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

fn legend() -> String {
    let items = [
        (LEADER, "leader"),
        (FOLLOWER, "follower"),
        (CANDIDATE, "candidate"),
        (LEARNER, "learner"),
        (DOWN, "down"),
        (FAULT, "fault window"),
        (OK, "operation ok"),
        (FAILED, "failed"),
        (UNKNOWN, "outcome unknown"),
    ];
    let mut out = String::from("<p class=\"legend\">");
    for (colour, name) in items {
        let _ = write!(out, "<span><i class=\"sw\" style=\"background:{colour}\"></i>{name}</span>");
    }
    out.push_str("<span>◆ an election (node and term)</span></p>\n");
    out
}

/// The whole page: for each report its tables, lessons and one timeline per scenario (its first seed); with
/// `compare`, the side-by-side table first.
pub fn page(reports: &[Report], compare: Option<&Table>) -> String {
    let title = reports.iter().map(|r| r.topology.as_str()).collect::<Vec<_>>().join(" vs ");
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>quorumlab whatif {}</title>\
         <style>{STYLE}</style></head><body>\n<h1>quorumlab whatif {}</h1>\n",
        escape(&title),
        escape(&title)
    );
    if let Some(t) = compare {
        out.push_str("<h2>Side by side</h2>\n");
        out.push_str(&table_html(t));
    }
    for report in reports {
        let _ = writeln!(
            out,
            "<h2>{}: {}</h2>\n<p>{}</p>",
            escape(&report.topology),
            escape(&report.description),
            escape(&render::legend())
        );
        out.push_str(&table_html(&render::summary_table(report)));
        out.push_str("<p>Write latency p50/p99 in ms, before | during | after the fault:</p>\n");
        out.push_str(&table_html(&render::latency_table(report)));
        out.push_str(&legend());
        let failures = render::failures(report);
        if !failures.is_empty() {
            let _ = writeln!(out, "<h3>Failures</h3>\n<pre>{}</pre>", escape(failures.trim()));
        }
        // One timeline per scenario: its first failing seed if one failed, else its first seed.
        let mut drawn = BTreeMap::new();
        for row in &report.rows {
            if drawn.contains_key(&row.spec) {
                continue;
            }
            let same = report.rows.iter().filter(|r| r.spec == row.spec);
            let failing = same.clone().find(|r| !r.passed || r.agree == Some(false));
            drawn.insert(row.spec.clone(), ());
            out.push_str(&section(failing.unwrap_or(row)));
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn section(row: &Row) -> String {
    let mut out = format!(
        "<section id=\"{}\"><h3>{}: {} <small>(seed {})</small></h3>\n<p class=\"lesson\">{}</p>\n",
        escape(&format!("{}-{}", row.topology, row.spec)),
        escape(&row.topology),
        escape(&row.scenario),
        row.seed,
        escape(&row.lesson)
    );
    out.push_str(&timeline_svg(&row.timeline));
    if let Some(oracle) = &row.oracle {
        let _ = writeln!(out, "<p>The quorum math: {}</p>", escape(oracle));
    }
    let _ = writeln!(out, "<p>Replay: <code>{}</code></p></section>", escape(&row.replay));
    out
}

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 16.0;
const LANE: f64 = 18.0;
const GAP: f64 = 5.0;
const TOP: f64 = 26.0;

/// One scenario's timeline as an SVG element.
pub fn timeline_svg(t: &Timeline) -> String {
    let span = (t.to - t.from).max(1) as f64;
    let plot = WIDTH - LEFT - RIGHT;
    let x = |ms: i64| LEFT + ((ms.clamp(t.from, t.to) - t.from) as f64) * plot / span;
    let lanes = t.nodes.len() + t.clients.len();
    let bottom = TOP + lanes as f64 * (LANE + GAP);
    let height = bottom + 34.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    // The fault window, under everything.
    let (fx0, fx1) = (x(0), x(t.fault_end));
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"14\" font-weight=\"bold\">fault: {}</text>\n\
         <text x=\"{fx1:.1}\" y=\"14\" text-anchor=\"end\" fill=\"#4a5568\">heal ▸</text>",
        fx0 + 4.0,
        escape(&t.fault_label)
    );
    for (i, lane) in t.nodes.iter().enumerate() {
        let y = TOP + i as f64 * (LANE + GAP);
        let _ = writeln!(
            out,
            "<g class=\"lane node\" data-host=\"{}\"><text x=\"4\" y=\"{:.1}\">{}</text>",
            escape(&lane.host),
            y + 13.0,
            escape(&lane.host)
        );
        // The role in force at the view's start, then every change inside it.
        let mut current = lane.changes.iter().rev().find(|c| c.0 <= t.from).map(|c| (t.from, c.1, c.2));
        let mut segments = Vec::new();
        for &(at, role, term) in lane.changes.iter().filter(|c| c.0 > t.from && c.0 <= t.to) {
            if let Some(c) = current {
                segments.push((c.0, at, c.1, c.2));
            }
            current = Some((at, role, term));
        }
        if let Some(c) = current {
            segments.push((c.0, t.to, c.1, c.2));
        }
        for (from, to, role, term) in segments {
            let (x0, x1) = (x(from), x(to));
            let _ = write!(
                out,
                "<rect class=\"role {}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{LANE}\" fill=\"{}\">\
                 <title>{} {} term {term}</title></rect>",
                role.name(),
                (x1 - x0).max(0.5),
                role_colour(role),
                escape(&lane.host),
                role.name()
            );
            if x1 - x0 >= 26.0 && role != Role::Down {
                let ink = if role == Role::Leader { "#fff" } else { "#1a202c" };
                let _ = write!(
                    out,
                    "<text class=\"term\" x=\"{:.1}\" y=\"{:.1}\" fill=\"{ink}\">t{term}</text>",
                    x0 + 3.0,
                    y + 13.0
                );
            }
        }
        out.push_str("</g>\n");
    }
    for (j, (dc, ops)) in t.clients.iter().enumerate() {
        let y = TOP + (t.nodes.len() + j) as f64 * (LANE + GAP);
        let _ = writeln!(
            out,
            "<g class=\"lane client\" data-dc=\"{}\"><text x=\"4\" y=\"{:.1}\">{} clients</text>\
             <rect x=\"{LEFT}\" y=\"{y:.1}\" width=\"{plot:.1}\" height=\"{LANE}\" fill=\"#f7fafc\"/>",
            escape(dc),
            y + 13.0,
            escape(dc)
        );
        // One colour per pixel column (the worst outcome in it), runs of one colour drawn as one rectangle.
        let mut columns: BTreeMap<i64, Outcome> = BTreeMap::new();
        for &(at, outcome) in ops {
            let px = x(at).floor() as i64;
            let e = columns.entry(px).or_insert(outcome);
            *e = (*e).max(outcome);
        }
        let mut runs: Vec<(i64, i64, Outcome)> = Vec::new();
        for (px, outcome) in columns {
            match runs.last_mut() {
                Some(last) if last.1 == px && last.2 == outcome => last.1 = px + 1,
                _ => runs.push((px, px + 1, outcome)),
            }
        }
        for (x0, x1, outcome) in runs {
            let _ = write!(
                out,
                "<rect class=\"op {}\" x=\"{x0}\" y=\"{:.1}\" width=\"{}\" height=\"{:.1}\" fill=\"{}\"/>",
                outcome.name(),
                y + 2.0,
                x1 - x0,
                LANE - 4.0,
                outcome_colour(outcome)
            );
        }
        out.push_str("</g>\n");
    }
    // The fault window, shaded over the lanes so every lane shows what happened inside it.
    let _ = writeln!(
        out,
        "<rect class=\"fault-window\" x=\"{fx0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{FAULT}\" \
         fill-opacity=\"0.25\" stroke=\"#c05621\" stroke-dasharray=\"4,3\"><title>{}</title></rect>",
        TOP - 6.0,
        fx1 - fx0,
        bottom - TOP + 6.0,
        escape(&t.fault_label)
    );
    // Elections: a line through the node lanes and a diamond on the winner's lane.
    let nodes_bottom = TOP + t.nodes.len() as f64 * (LANE + GAP) - GAP;
    for (at, host, term) in &t.elections {
        let ex = x(*at);
        let lane = t.nodes.iter().position(|n| &n.host == host).unwrap_or(0);
        let ey = TOP + lane as f64 * (LANE + GAP) + LANE / 2.0;
        let _ = writeln!(
            out,
            "<g class=\"election\"><title>{} elected, term {term}, at {}</title><line x1=\"{ex:.1}\" y1=\"{:.1}\" \
             x2=\"{ex:.1}\" y2=\"{nodes_bottom:.1}\" stroke=\"#1a202c\" stroke-dasharray=\"2,2\"/><path d=\"M{ex:.1} \
             {:.1} l5 5 l-5 5 l-5 -5 z\" fill=\"#1a202c\" stroke=\"#fff\"/></g>",
            escape(host),
            offset(*at),
            TOP - 4.0,
            ey - 5.0
        );
    }
    // The time axis, in seconds from the fault's start.
    let step = if span > 40_000.0 { 5_000 } else { 2_000 };
    let first = t.from.div_euclid(step) * step;
    let mut tick = first;
    while tick <= t.to {
        if tick >= t.from {
            let tx = x(tick);
            let _ = writeln!(
                out,
                "<line x1=\"{tx:.1}\" y1=\"{bottom:.1}\" x2=\"{tx:.1}\" y2=\"{:.1}\" stroke=\"#718096\"/>\
                 <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#4a5568\">{}</text>",
                bottom + 4.0,
                bottom + 16.0,
                offset(tick)
            );
        }
        tick += step;
    }
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{:.1}\" fill=\"#4a5568\">seconds from the fault's start</text></svg>",
        bottom + 30.0
    );
    out
}

fn offset(ms: i64) -> String {
    if ms == 0 {
        "0 s".into()
    } else if ms % 1000 == 0 {
        format!("{:+} s", ms / 1000)
    } else {
        format!("{:+.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatif::NodeLane;

    fn timeline() -> Timeline {
        Timeline {
            from: -1000,
            to: 10_000,
            fault_end: 8000,
            fault_label: "cut dc1–dc2 <&>".into(),
            nodes: vec![
                NodeLane {
                    host: "dc1-n1".into(),
                    dc: "dc1".into(),
                    changes: vec![(-5000, Role::Follower, 1), (-4000, Role::Leader, 2)],
                },
                NodeLane {
                    host: "dc2-n1".into(),
                    dc: "dc2".into(),
                    changes: vec![(-5000, Role::Follower, 2), (1000, Role::Candidate, 3), (9000, Role::Leader, 4)],
                },
            ],
            clients: vec![
                ("dc1".into(), (0..1000).map(|i| (i * 5 - 900, Outcome::Ok)).collect()),
                ("dc2".into(), vec![(-500, Outcome::Ok), (2000, Outcome::Unknown), (3000, Outcome::Failed)]),
            ],
            elections: vec![(9000, "dc2-n1".into(), 4)],
        }
    }

    #[test]
    fn the_timeline_has_a_lane_per_node_and_client_the_fault_window_and_the_election() {
        let svg = timeline_svg(&timeline());
        assert_eq!(svg.matches("class=\"lane node\"").count(), 2);
        assert_eq!(svg.matches("class=\"lane client\"").count(), 2);
        assert_eq!(svg.matches("class=\"fault-window\"").count(), 1);
        assert!(svg.contains("fault: cut dc1–dc2 &lt;&amp;&gt;"), "labels are escaped");
        assert!(svg.contains("class=\"role leader\"") && svg.contains("class=\"role candidate\""));
        assert!(svg.contains(">t2</text>"), "a wide segment is labelled with its term");
        assert!(svg.contains("class=\"op unknown\"") && svg.contains("class=\"op failed\""));
        assert!(svg.contains("dc2-n1 elected, term 4, at +9 s"));
        for colour in [LEADER, FOLLOWER, CANDIDATE, OK, FAILED, UNKNOWN, FAULT] {
            assert!(svg.contains(colour), "{colour} is drawn");
        }
        // Operations closer than a pixel merge into runs: far fewer rectangles than operations.
        assert!(svg.matches("class=\"op ok\"").count() < 10);
    }
}
