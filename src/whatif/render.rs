//! `whatif` reports as text, markdown and JSON; [`super::html`] draws the page.

use std::collections::BTreeMap;

use super::lesson::seconds;
use super::{DcRow, Latency, Report, Row};

/// A table of cells, printed as aligned text or as markdown.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn text(&self) -> String {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate() {
                out.push_str(c);
                if i + 1 < cells.len() {
                    out.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.header);
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }

    pub fn markdown(&self) -> String {
        let esc = |c: &String| c.replace('|', "\\|");
        let mut out = format!("| {} |\n", self.header.iter().map(esc).collect::<Vec<_>>().join(" | "));
        out.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
        for r in &self.rows {
            out.push_str(&format!("| {} |\n", r.iter().map(esc).collect::<Vec<_>>().join(" | ")));
        }
        out
    }
}

/// "100% 9/14": the share of writes acknowledged during the fault, and p50/p99 latency (ms) of those.
pub fn dc_cell(d: &DcRow) -> String {
    match d.share() {
        None => "no writes".into(),
        Some(share) => match (d.during.p50_ms, d.during.p99_ms) {
            (Some(p50), Some(p99)) if d.acked > 0 => format!("{share}% of {} · {p50}/{p99}", d.writes),
            _ => format!("{share}% of {}", d.writes),
        },
    }
}

fn latency(l: &Latency) -> String {
    match (l.p50_ms, l.p99_ms) {
        (Some(p50), Some(p99)) => format!("{p50}/{p99}"),
        _ => "—".into(),
    }
}

pub fn oracle_cell(row: &Row) -> String {
    match row.agree {
        None => "not modelled".into(),
        Some(true) => {
            let said: Vec<String> =
                row.dcs.iter().filter_map(|d| d.predicted.map(|p| format!("{} {}", d.dc, p.name()))).collect();
            format!("agree ({})", said.join(", "))
        }
        Some(false) => "DISAGREE".into(),
    }
}

pub fn checks_cell(row: &Row) -> String {
    if row.passed {
        "ok".into()
    } else {
        let failed: Vec<&str> =
            row.verdicts.iter().filter(|(_, v)| v.starts_with("FAIL")).map(|(k, _)| k.as_str()).collect();
        format!("FAIL: {}", failed.join(", "))
    }
}

/// The summary table: one row per scenario and seed.
pub fn summary_table(report: &Report) -> Table {
    let dcs: Vec<String> =
        report.rows.first().map(|r| r.dcs.iter().map(|d| d.dc.clone()).collect()).unwrap_or_default();
    let mut header = vec!["scenario".to_string(), "seed".into()];
    header.extend(dcs.iter().cloned());
    header.extend(
        [
            "stall in fault",
            "stall after heal",
            "first write ok: fault | heal",
            "elections",
            "term",
            "checks",
            "predicted vs observed",
        ]
        .map(String::from),
    );
    let rows = report
        .rows
        .iter()
        .map(|r| {
            let mut cells = vec![r.scenario.clone(), r.seed.to_string()];
            cells.extend(r.dcs.iter().map(dc_cell));
            cells.extend([
                seconds(r.stall_during_ms),
                seconds(r.stall_after_heal_ms),
                format!(
                    "{} | {}",
                    r.first_ack_after_fault_ms.map_or_else(|| "none".into(), seconds),
                    r.first_ack_after_heal_ms.map_or_else(|| "none".into(), seconds)
                ),
                r.elections.to_string(),
                r.highest_term.to_string(),
                checks_cell(r),
                oracle_cell(r),
            ]);
            cells
        })
        .collect();
    Table { header, rows }
}

/// Write latency p50/p99 (ms) before, during and after the fault, per client datacenter.
pub fn latency_table(report: &Report) -> Table {
    let dcs: Vec<String> =
        report.rows.first().map(|r| r.dcs.iter().map(|d| d.dc.clone()).collect()).unwrap_or_default();
    let mut header = vec!["scenario".to_string(), "seed".into()];
    header.extend(dcs.iter().map(|dc| format!("{dc} before | during | after")));
    let rows = report
        .rows
        .iter()
        .map(|r| {
            let mut cells = vec![r.scenario.clone(), r.seed.to_string()];
            cells.extend(
                r.dcs
                    .iter()
                    .map(|d| format!("{} | {} | {}", latency(&d.before), latency(&d.during), latency(&d.after))),
            );
            cells
        })
        .collect();
    Table { header, rows }
}

/// The first seed's lesson of each scenario, in order.
pub fn lessons(report: &Report) -> Vec<(String, String)> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for r in &report.rows {
        if seen.insert(r.spec.clone(), ()).is_none() {
            out.push((r.scenario.clone(), r.lesson.clone()));
        }
    }
    out
}

fn heading(report: &Report) -> String {
    let scenarios = lessons(report).len();
    let seeds = report.seeds.len();
    let fault = crate::suite::FAULT_DURATION.as_millis() as u64;
    format!(
        "whatif {}: {}\n{scenarios} scenarios × {seeds} seed{}, each fault held {} under load",
        report.topology,
        report.description,
        if seeds == 1 { "" } else { "s" },
        seconds(fault)
    )
}

/// What the columns mean.
pub fn legend() -> String {
    format!(
        "Per client datacenter: the share of the writes it invoked during the fault that were acknowledged before \
         the heal, of how many, then p50/p99 write latency in ms. Stall: the longest stretch in which no client \
         operation was answered (reads are linearizable, so an answer proves a leader with a majority): during the \
         fault, and from the heal on ({} of load follow it). First write ok: from the fault (or the heal) to the \
         first acknowledgement of a write invoked after it.",
        seconds(super::AFTER_HEAL.as_millis() as u64)
    )
}

pub fn text(report: &Report) -> String {
    let mut out = format!("{}\n{}\n\n", heading(report), legend());
    out.push_str(&summary_table(report).text());
    out.push_str("\nWrite latency p50/p99 in ms, before | during | after the fault:\n\n");
    out.push_str(&latency_table(report).text());
    out.push_str("\nWhat each scenario teaches:\n");
    for (scenario, lesson) in lessons(report) {
        out.push_str(&format!("- {scenario}: {lesson}\n"));
    }
    out.push_str(&failures(report));
    out
}

pub fn markdown(report: &Report) -> String {
    let mut out = format!("## {}\n\n{}\n\n", heading(report), legend());
    out.push_str(&summary_table(report).markdown());
    out.push_str("\nWrite latency p50/p99 in ms, before | during | after the fault:\n\n");
    out.push_str(&latency_table(report).markdown());
    out.push_str("\n### What each scenario teaches\n\n");
    for (scenario, lesson) in lessons(report) {
        out.push_str(&format!("- **{scenario}**: {lesson}\n"));
    }
    let f = failures(report);
    if !f.is_empty() {
        out.push_str(&format!("\n```\n{f}```\n"));
    }
    out
}

/// Every failing or disagreeing row with its replay command; empty when none.
pub fn failures(report: &Report) -> String {
    let mut out = String::new();
    for r in report.failures() {
        out.push_str(&format!("\nFAILED {}: {} [seed {}]\n", r.topology, r.scenario, r.seed));
        for (name, v) in r.verdicts.iter().filter(|(_, v)| v.starts_with("FAIL")) {
            out.push_str(&format!("  {name}: {v}\n"));
        }
        out.push_str(&format!("  replay: {}\n", r.replay));
    }
    out
}

/// Two placements through the same scenarios: rows by the fault's spec, in the first's order then the second's.
pub fn compare_table(a: &Report, b: &Report) -> Table {
    let mut specs: Vec<(String, String)> = Vec::new();
    for r in a.rows.iter().chain(&b.rows) {
        let label = r.scenario.split(',').next().unwrap_or(&r.scenario).to_string();
        match specs.iter_mut().find(|(s, _)| s == &r.spec) {
            // The same fault may read differently on each placement ("bridge via dc1-n3" / "via dc2-n1").
            Some((_, known)) if !known.split(" / ").any(|k| k == label) => known.push_str(&format!(" / {label}")),
            Some(_) => {}
            None => specs.push((r.spec.clone(), label)),
        }
    }
    let side = |report: &Report, spec: &str| -> [String; 3] {
        let rows: Vec<&Row> = report.rows.iter().filter(|r| r.spec == spec).collect();
        if rows.is_empty() {
            return ["—".into(), "—".into(), "—".into()];
        }
        // Over the seeds: the worst share per datacenter, the longest time without a working leader.
        let mut worst: BTreeMap<&str, Option<u64>> = BTreeMap::new();
        for r in &rows {
            for d in &r.dcs {
                let e = worst.entry(d.dc.as_str()).or_insert(Some(100));
                *e = match (*e, d.share()) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    _ => None,
                };
            }
        }
        let order: Vec<&str> = rows[0].dcs.iter().map(|d| d.dc.as_str()).collect();
        let writes: Vec<String> = order
            .iter()
            .map(|dc| match worst.get(dc).copied().flatten() {
                Some(s) => format!("{dc} {s}%"),
                None => format!("{dc} —"),
            })
            .collect();
        let no_leader = rows.iter().map(|r| r.stall_during_ms).max().unwrap_or(0);
        let verdict = if rows.iter().all(|r| r.passed && r.agree != Some(false)) { "ok" } else { "FAIL" };
        [writes.join(" · "), seconds(no_leader), verdict.into()]
    };
    let header = vec![
        "scenario".to_string(),
        format!("{}: writes acknowledged", a.topology),
        format!("{}: longest stall", a.topology),
        format!("{}: checks", a.topology),
        format!("{}: writes acknowledged", b.topology),
        format!("{}: longest stall", b.topology),
        format!("{}: checks", b.topology),
    ];
    let rows = specs
        .iter()
        .map(|(spec, label)| {
            let mut cells = vec![label.clone()];
            cells.extend(side(a, spec));
            cells.extend(side(b, spec));
            cells
        })
        .collect();
    Table { header, rows }
}

pub fn compare_text(a: &Report, b: &Report, markdown: bool) -> String {
    let table = compare_table(a, b);
    let intro = format!(
        "whatif --compare {} {}: the same scenarios on both placements (the worst share over {} seed{} per datacenter)",
        a.topology,
        b.topology,
        a.seeds.len(),
        if a.seeds.len() == 1 { "" } else { "s" }
    );
    let mut out =
        if markdown { format!("## {intro}\n\n{}", table.markdown()) } else { format!("{intro}\n\n{}", table.text()) };
    // Then each placement's own report: latency, elections and lessons the side-by-side table leaves out.
    for report in [a, b] {
        out.push('\n');
        out.push_str(&if markdown { self::markdown(report) } else { text(report) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tables_align_and_markdown_escapes_bars() {
        let t = Table { header: vec!["a".into(), "bb".into()], rows: vec![vec!["ccc".into(), "d|e".into()]] };
        assert_eq!(t.text(), "a    bb\nccc  d|e\n");
        assert!(t.markdown().contains("| ccc | d\\|e |"));
    }
}
