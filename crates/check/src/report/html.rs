//! A self-contained HTML page (inline SVG and CSS, no scripts, no links) drawing each key's history as bars
//! over time, one row per process, with the operation that cannot be linearized marked in red.
//!
//! Time is the event index, not wall-clock time: it is what the checker reasons with, and it keeps bars of
//! fast operations visible. Unknown-outcome operations run to the right edge with a dashed outline.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::check::PartitionOps;
use crate::verdict::{OpSummary, Outcome, Verdict};

/// Keys drawn at most: violations and unknowns first, then linearizable keys in key order.
const MAX_PARTITIONS: usize = 12;
/// Operations drawn per key; for longer histories a window around the culprit is shown.
const MAX_OPS: usize = 400;
const WIDTH: f64 = 1100.0;
const ROW: f64 = 26.0;
const LEFT: f64 = 90.0;

pub fn render(verdict: &Verdict, partitions: &[PartitionOps], text_report: &str) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>quorumlab check: {}</title><style>\
         body{{font-family:sans-serif;margin:2em;color:#222}} pre{{background:#f6f6f6;padding:1em;overflow:auto}}\
         .ok{{fill:#cfe3f7;stroke:#4a7fb0}} .placed{{fill:#c9ecc9;stroke:#3b8a3b}} .bad{{fill:#f6b3b3;stroke:#c00;stroke-width:2}}\
         .unknown{{fill:#eee;stroke:#888;stroke-dasharray:4 3}} text{{font-size:11px}} .axis{{fill:#555}}\
         </style></head><body>\n<h1>{}</h1>\n",
        verdict.outcome.words(),
        escape(verdict.outcome.words())
    );
    html.push_str(
        "<p>Each bar is one operation, from its invocation to its return. Red: the operation that cannot be \
         placed. Green: the longest linearizable prefix found. Dashed: outcome unknown (it may take effect \
         any time after its invocation, or never). Hover a bar for details.</p>\n",
    );
    let _ = writeln!(html, "<pre>{}</pre>", escape(text_report));
    let mut order: Vec<&PartitionOps> = partitions.iter().collect();
    let outcome_of = |key: &Option<String>| {
        verdict.partitions.iter().find(|p| &p.key == key).map_or(Outcome::Linearizable, |p| p.outcome)
    };
    order.sort_by_key(|(key, _)| std::cmp::Reverse(outcome_of(key)));
    for (key, ops) in order.into_iter().take(MAX_PARTITIONS) {
        let partition = verdict.partitions.iter().find(|p| &p.key == key);
        let violation = partition.and_then(|p| p.violation.as_ref());
        let culprit = violation.map(|v| v.culprit.interval.invoke_index);
        let placed: BTreeSet<usize> =
            violation.map(|v| v.prefix.iter().map(|p| p.op.interval.invoke_index).collect()).unwrap_or_default();
        let title = key.as_ref().map_or("the history".to_string(), |k| format!("key {k:?}"));
        let words = if verdict.unchecked_keys.contains(key) {
            "not checked (an earlier key already failed)"
        } else {
            outcome_of(key).words()
        };
        let _ = writeln!(html, "<h2>{}: {}</h2>", escape(&title), words);
        draw(&mut html, ops, culprit, &placed);
    }
    if partitions.len() > MAX_PARTITIONS {
        let _ = writeln!(html, "<p>{} more keys not drawn.</p>", partitions.len() - MAX_PARTITIONS);
    }
    html.push_str("</body></html>\n");
    html
}

fn draw(html: &mut String, ops: &[OpSummary], culprit: Option<usize>, placed: &BTreeSet<usize>) {
    let window = window(ops, culprit);
    if window.is_empty() {
        html.push_str("<p>No operations.</p>\n");
        return;
    }
    if window.len() < ops.len() {
        let _ = writeln!(html, "<p>Showing {} of {} operations around the marked one.</p>", window.len(), ops.len());
    }
    let start = window.iter().map(|o| o.interval.invoke_index).min().unwrap_or(0);
    let last_return = window.iter().filter_map(|o| o.interval.return_index).max().unwrap_or(start);
    let last_invoke = window.iter().map(|o| o.interval.invoke_index).max().unwrap_or(start);
    let end = last_return.max(last_invoke) + 2;
    let rows: BTreeMap<u64, usize> = window
        .iter()
        .map(|o| o.process)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, p)| (p, i))
        .collect();
    let x = |index: usize| LEFT + (index - start) as f64 * (WIDTH - LEFT - 10.0) / (end - start) as f64;
    let height = rows.len() as f64 * ROW + 20.0;
    let _ = writeln!(html, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\">");
    for (process, row) in &rows {
        let y = *row as f64 * ROW + 16.0;
        let _ = writeln!(html, "<text class=\"axis\" x=\"4\" y=\"{y}\">process {process}</text>");
    }
    for op in &window {
        let row = rows.get(&op.process).copied().unwrap_or(0);
        let x0 = x(op.interval.invoke_index);
        let x1 = x(op.interval.return_index.unwrap_or(end)).max(x0 + 3.0);
        let y = row as f64 * ROW + 4.0;
        let class = if Some(op.interval.invoke_index) == culprit {
            "bad"
        } else if op.unknown {
            "unknown"
        } else if placed.contains(&op.interval.invoke_index) {
            "placed"
        } else {
            "ok"
        };
        let tip = format!(
            "process {}: {}{} — invoked at event {}, {}",
            op.process,
            op.description,
            if op.unknown { " (outcome unknown)" } else { "" },
            op.interval.invoke_index + 1,
            op.interval.return_index.map_or("never returned".to_string(), |r| format!("returned at event {}", r + 1))
        );
        let _ = writeln!(
            html,
            "<g><title>{}</title><rect class=\"{class}\" x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{}\" rx=\"3\"/>",
            escape(&tip),
            x1 - x0,
            ROW - 8.0
        );
        // A label only where it fits: roughly 6 px per character.
        if (x1 - x0) > op.description.chars().count() as f64 * 6.0 + 6.0 {
            let _ =
                write!(html, "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>", x0 + 3.0, y + 13.0, escape(&op.description));
        }
        html.push_str("</g>\n");
    }
    html.push_str("</svg>\n");
}

/// All ops if few enough, otherwise `MAX_OPS` ops centred on the culprit (or the first ones).
fn window(ops: &[OpSummary], culprit: Option<usize>) -> Vec<&OpSummary> {
    if ops.len() <= MAX_OPS {
        return ops.iter().collect();
    }
    let centre = culprit.and_then(|c| ops.iter().position(|o| o.interval.invoke_index == c)).unwrap_or(0);
    let first = centre.saturating_sub(MAX_OPS * 3 / 4).min(ops.len() - MAX_OPS);
    ops[first..first + MAX_OPS].iter().collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
