//! The experiment's output: a text table and cumulative percentages for people, JSON for programs, and one
//! self-contained HTML page (inline CSS and SVG; no scripts, fonts, images or links) with the two panels of the
//! paper's Figure 16 as CDF plots. Pure functions of a [`Report`].

use std::fmt::Write as _;

use serde::Serialize;

use crate::html::escape as esc;

use super::stats::Distribution;
use super::{Procedure, RangeResult, Report, TimeoutRange, VOTERS};

/// Where the text output reads the cumulative distribution, in milliseconds: the bottom panel's scale and the
/// top panel's decades.
pub const CDF_POINTS_MS: [u64; 11] = [25, 50, 100, 150, 200, 300, 500, 1000, 2000, 5000, 10000];

/// What the paper reports for a range in its text, where it reports anything.
pub fn paper_says(range: TimeoutRange) -> Option<&'static str> {
    match (range.min_ms, range.max_ms) {
        (150, 150) => Some("> 10 s (split votes)"),
        (150, 155) => Some("median 287 ms"),
        (150, 200) => Some("worst of 1000: 513 ms"),
        (12, 24) => Some("mean 35 ms, longest 152 ms"),
        _ => None,
    }
}

/// A downtime for a table cell: milliseconds, or `>CAP` when beyond the cap.
fn cell(v: Option<u64>, cap_ms: u64) -> String {
    match v {
        Some(v) => v.to_string(),
        None => format!(">{cap_ms}"),
    }
}

fn cap_ms(report: &Report) -> u64 {
    report.config.cap.as_millis() as u64
}

/// The mean number of candidates per trial and the share of trials (percent) in which two or more nodes
/// campaigned, as `2.1 (71%)`.
fn candidates_cell(r: &RangeResult) -> String {
    if r.trials.is_empty() {
        return "-".into();
    }
    let n = r.trials.len() as f64;
    let mean = r.trials.iter().map(|t| t.candidates as f64).sum::<f64>() / n;
    let several = r.trials.iter().filter(|t| t.candidates >= 2).count() as f64;
    format!("{mean:.1} ({:.0}%)", 100.0 * several / n)
}

/// Trials whose election took more than one term.
fn more_than_one_term(r: &RangeResult) -> usize {
    r.trials.iter().filter(|t| t.terms > 1).count()
}

/// The setup in a few lines (text and HTML share it).
fn setup_lines(report: &Report) -> Vec<String> {
    let c = &report.config;
    vec![
        format!(
            "{VOTERS} voters in one datacenter (links 1 ms + up to 4 ms jitter, 1 ms simulation tick); the heartbeat \
             interval is half the minimum election timeout, and openraft sends heartbeats every 3/2 of it."
        ),
        "Each trial crashes the leader at a uniformly random moment within one heartbeat period and measures the \
         simulated time until a node wins an election at a higher term (saves its own committed vote); the crashed \
         node then restarts from its disk and catches up before the next trial."
            .to_string(),
        match c.procedure {
            Procedure::OneCluster => format!(
                "{} trials per range, all on one cluster (its leader crashed and restarted again and again, as in the \
                 paper), cap {} ms, seed {}.",
                c.trials,
                c.cap.as_millis(),
                c.seed
            ),
            Procedure::FreshCluster => format!(
                "{} trials per range, each on a newly started cluster (independent trials), cap {} ms, seed {}.",
                c.trials,
                c.cap.as_millis(),
                c.seed
            ),
        },
    ]
}

/// The table and the cumulative percentages, for a terminal.
pub fn text(report: &Report) -> String {
    let cap = cap_ms(report);
    let mut out = String::from("Raft paper, Figure 16: time without a leader after the leader crashes\n");
    for line in setup_lines(report) {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<12} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>4}  {:<11} paper",
        "range", "hb/sent", "trials", "min", "mean", "p50", "p90", "p99", "max", ">cap", "candidates"
    );
    for r in &report.ranges {
        let d = r.distribution();
        let _ = writeln!(
            out,
            "{:<12} {:>7} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>6} {:>4}  {:<11} {}",
            r.range.label(),
            format!("{}/{}", r.range.heartbeat_ms(), r.range.heartbeat_period_ms()),
            d.trials(),
            cell(d.min(), cap),
            d.mean_measured().map_or("-".to_string(), |m| format!("{m:.0}")),
            cell(d.percentile(50.0), cap),
            cell(d.percentile(90.0), cap),
            cell(d.percentile(99.0), cap),
            cell(d.max(), cap),
            d.capped(),
            candidates_cell(r),
            paper_says(r.range).unwrap_or(""),
        );
    }
    out.push_str(
        "\nTimes in ms. hb/sent: the heartbeat interval configured / how often openraft sends one. mean: of the \
         trials within the cap. >cap: trials with no new leader within the cap. candidates: nodes that campaigned \
         per trial, on average (the share of trials with two or more: a split vote in the paper's Raft).\n",
    );
    let slow: Vec<String> = report
        .ranges
        .iter()
        .filter(|r| more_than_one_term(r) > 0)
        .map(|r| format!("{} {}", r.range.label(), more_than_one_term(r)))
        .collect();
    if slow.is_empty() {
        out.push_str("Every election was decided in the first term after the crash.\n");
    } else {
        let _ = writeln!(out, "Trials whose election took more than one term: {}", slow.join(", "));
    }
    let superseded: Vec<String> = report
        .ranges
        .iter()
        .map(|r| (r, r.trials.iter().filter(|t| t.superseded()).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{} {n}", r.range.label()))
        .collect();
    if !superseded.is_empty() {
        let _ = writeln!(
            out,
            "New leaders superseded in their own term by a candidate with a higher node id (openraft 0.9): {}",
            superseded.join(", ")
        );
    }
    let _ = writeln!(out, "\nCumulative % of trials with a new leader within x ms:");
    let _ = write!(out, "{:<12}", "x (ms)");
    for x in CDF_POINTS_MS {
        let _ = write!(out, " {x:>6}");
    }
    out.push('\n');
    for r in &report.ranges {
        let d = r.distribution();
        let _ = write!(out, "{:<12}", r.range.label());
        for x in CDF_POINTS_MS {
            let _ = write!(out, " {:>6.1}", d.cdf_at(x));
        }
        out.push('\n');
    }
    let unprovoked: Vec<String> = report
        .ranges
        .iter()
        .filter(|r| r.unprovoked_elections > 0)
        .map(|r| format!("{} {}", r.range.label(), r.unprovoked_elections))
        .collect();
    if !unprovoked.is_empty() {
        let _ = writeln!(
            out,
            "\nLeader changes nobody caused (a wait for the crash moment started over): {}",
            unprovoked.join(", ")
        );
    }
    out.push_str(
        "\nWhy these are not the paper's numbers (openraft's leader lease, candidates ordered by node id, timers that \
         tick every 3/2 heartbeats): docs/election-timeouts.md\n",
    );
    let _ = writeln!(out, "Reproduce: {}", report.config.command());
    out
}

/// One range in the JSON output.
#[derive(Serialize)]
struct RangeJson<'a> {
    range: String,
    timeout_min_ms: u64,
    timeout_max_ms: u64,
    heartbeat_ms: u64,
    heartbeat_period_ms: u64,
    /// openraft's `election_timeout_min..election_timeout_max` (the maximum left out).
    openraft_election_timeout_ms: [u64; 2],
    sim_seed: u64,
    trials: usize,
    capped: usize,
    /// Downtime statistics in ms; `null`: beyond the cap.
    min_ms: Option<u64>,
    p50_ms: Option<u64>,
    p90_ms: Option<u64>,
    p99_ms: Option<u64>,
    max_ms: Option<u64>,
    mean_measured_ms: Option<f64>,
    /// Trials whose election took more than one term.
    more_than_one_term: usize,
    /// Trials whose first-elected leader a higher node id superseded in the same term.
    superseded: usize,
    unprovoked_elections: u64,
    /// Every distinct measured downtime with the percentage of all trials that took at most that long.
    cdf: Vec<CdfPoint>,
    /// Every trial, in order.
    trial_list: &'a [super::Trial],
}

#[derive(Serialize)]
struct CdfPoint {
    ms: u64,
    percent: f64,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    experiment: &'static str,
    voters: u64,
    seed: u64,
    trials_per_range: u32,
    cap_ms: u64,
    procedure: Procedure,
    command: String,
    ranges: Vec<RangeJson<'a>>,
}

/// The whole distribution of every range, for programs.
pub fn json(report: &Report) -> String {
    let ranges = report
        .ranges
        .iter()
        .map(|r| {
            let d = r.distribution();
            RangeJson {
                range: r.range.to_string(),
                timeout_min_ms: r.range.min_ms,
                timeout_max_ms: r.range.max_ms,
                heartbeat_ms: r.timing.heartbeat_ms,
                heartbeat_period_ms: r.range.heartbeat_period_ms(),
                openraft_election_timeout_ms: [r.timing.election_timeout_ms_min, r.timing.election_timeout_ms_max],
                sim_seed: r.sim_seed,
                trials: d.trials(),
                capped: d.capped(),
                min_ms: d.min(),
                p50_ms: d.percentile(50.0),
                p90_ms: d.percentile(90.0),
                p99_ms: d.percentile(99.0),
                max_ms: d.max(),
                mean_measured_ms: d.mean_measured(),
                more_than_one_term: more_than_one_term(r),
                superseded: r.trials.iter().filter(|t| t.superseded()).count(),
                unprovoked_elections: r.unprovoked_elections,
                cdf: d.steps().into_iter().map(|(ms, percent)| CdfPoint { ms, percent }).collect(),
                trial_list: &r.trials,
            }
        })
        .collect();
    let view = ReportJson {
        experiment: "election-timeouts",
        voters: VOTERS,
        seed: report.config.seed,
        trials_per_range: report.config.trials,
        cap_ms: cap_ms(report),
        procedure: report.config.procedure,
        command: report.config.command(),
        ranges,
    };
    let mut s = serde_json::to_string_pretty(&view).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// How a panel's x axis maps milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// Logarithmic from `lo` to `hi` ms (the paper's top panel).
    Log { lo: u64, hi: u64 },
    /// Linear from 0 to `hi` ms (the paper's bottom panel).
    Linear { hi: u64 },
}

impl Scale {
    /// Where `ms` falls, from 0 (left) to 1 (right), clamped to the axis.
    fn frac(self, ms: f64) -> f64 {
        let f = match self {
            Scale::Log { lo, hi } => {
                let (lo, hi) = ((lo as f64).log10(), (hi as f64).log10());
                (ms.max(1.0).log10() - lo) / (hi - lo)
            }
            Scale::Linear { hi } => ms / hi as f64,
        };
        f.clamp(0.0, 1.0)
    }

    fn start(self) -> u64 {
        match self {
            Scale::Log { lo, .. } => lo,
            Scale::Linear { .. } => 0,
        }
    }

    fn end(self) -> u64 {
        match self {
            Scale::Log { hi, .. } | Scale::Linear { hi } => hi,
        }
    }

    /// Labelled ticks: decades on a log axis, round steps (at most about ten) on a linear one.
    fn ticks(self) -> Vec<u64> {
        match self {
            Scale::Log { lo, hi } => {
                std::iter::successors(Some(lo), |&t| t.checked_mul(10)).take_while(|&t| t <= hi).collect()
            }
            Scale::Linear { hi } => {
                let step =
                    [50, 100, 200, 500, 1000, 2000, 5000, 10000].into_iter().find(|s| hi / s <= 10).unwrap_or(hi);
                (0..=hi / step).map(|k| k * step).collect()
            }
        }
    }

    /// Unlabelled grid lines: 2–9 of each decade on a log axis.
    fn minor(self) -> Vec<u64> {
        match self {
            Scale::Log { .. } => {
                self.ticks().into_iter().flat_map(|d| (2..10).map(move |k| d * k)).filter(|&t| t < self.end()).collect()
            }
            Scale::Linear { .. } => Vec::new(),
        }
    }
}

/// The smallest power of ten ≥ `v` (at least 10).
fn decade_above(v: u64) -> u64 {
    let mut d = 10;
    while d < v {
        d *= 10;
    }
    d
}

/// The largest power of ten ≤ `v` (at least 1).
fn decade_below(v: u64) -> u64 {
    let mut d = 1;
    while d * 10 <= v {
        d *= 10;
    }
    d
}

/// One panel of the figure: its title, its x axis and its ranges, each with its place in the report (which picks
/// its colour, so a range has the same colour in both panels).
pub struct Panel<'a> {
    pub title: &'static str,
    pub scale: Scale,
    pub ranges: Vec<(usize, &'a RangeResult)>,
}

/// The paper's two panels for the ranges of `report` ([`TimeoutRange::panels`]), leaving out an empty one: the
/// top on a log axis from 100 ms (or the decade below the shortest time) to the decade above the cap, the bottom
/// on a linear axis from 0 to 600 ms (as the paper) or further if a measured time is longer.
pub fn panels(report: &Report) -> Vec<Panel<'_>> {
    let top: Vec<(usize, &RangeResult)> =
        report.ranges.iter().enumerate().filter(|(_, r)| r.range.panels().0).collect();
    let bottom: Vec<(usize, &RangeResult)> =
        report.ranges.iter().enumerate().filter(|(_, r)| r.range.panels().1).collect();
    let shortest = |rs: &[(usize, &RangeResult)]| rs.iter().filter_map(|(_, r)| r.distribution().min()).min();
    let longest =
        |rs: &[(usize, &RangeResult)]| rs.iter().filter_map(|(_, r)| r.distribution().measured().last().copied()).max();
    let mut out = Vec::new();
    if !top.is_empty() {
        let lo = decade_below(shortest(&top).unwrap_or(100).min(100));
        let hi = decade_above(cap_ms(report).max(longest(&top).unwrap_or(0)).max(lo * 10));
        out.push(Panel { title: "Varying the randomness (150 ms minimum)", scale: Scale::Log { lo, hi }, ranges: top });
    }
    if !bottom.is_empty() {
        let hi = longest(&bottom).unwrap_or(0).div_ceil(100).max(6) * 100;
        out.push(Panel { title: "Scaling the minimum election timeout", scale: Scale::Linear { hi }, ranges: bottom });
    }
    out
}

const COLORS: [&str; 10] =
    ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

/// One panel as an inline SVG: a step CDF per range (`<path class="cdf">`), axes, grid and a legend.
pub fn svg(panel: &Panel<'_>, cap_ms: u64) -> String {
    const W: f64 = 760.0;
    const H: f64 = 380.0;
    const LEFT: f64 = 60.0;
    const RIGHT: f64 = 210.0;
    const TOP: f64 = 15.0;
    const BOTTOM: f64 = 50.0;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |ms: f64| LEFT + panel.scale.frac(ms) * pw;
    let y = |pct: f64| TOP + ph - pct / 100.0 * ph;
    let mut s = format!(
        "<svg class=\"panel\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"{}\">",
        esc(panel.title)
    );
    for t in panel.scale.minor() {
        let _ = write!(
            s,
            "<line class=\"minor\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{1:.1}\"/>",
            x(t as f64),
            TOP + ph
        );
    }
    for t in panel.scale.ticks() {
        let xt = x(t as f64);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{xt:.1}\" x2=\"{xt:.1}\" y1=\"{TOP}\" y2=\"{0:.1}\"/>\
             <text x=\"{xt:.1}\" y=\"{1:.1}\" text-anchor=\"middle\">{t}</text>",
            TOP + ph,
            TOP + ph + 16.0
        );
    }
    for pct in (0..=100).step_by(20) {
        let yt = y(pct as f64);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{0:.1}\" y1=\"{yt:.1}\" y2=\"{yt:.1}\"/>\
             <text x=\"{1:.1}\" y=\"{2:.1}\" text-anchor=\"end\">{pct}%</text>",
            LEFT + pw,
            LEFT - 6.0,
            yt + 4.0
        );
    }
    let _ = write!(
        s,
        "<rect class=\"frame\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\"/>\
         <text x=\"{0:.1}\" y=\"{1:.1}\" text-anchor=\"middle\">time without leader (ms{2})</text>\
         <text transform=\"translate(14 {3:.1}) rotate(-90)\" text-anchor=\"middle\">cumulative percent</text>",
        LEFT + pw / 2.0,
        H - 10.0,
        if matches!(panel.scale, Scale::Log { .. }) { ", log scale" } else { "" },
        TOP + ph / 2.0
    );
    for (i, (place, r)) in panel.ranges.iter().enumerate() {
        let color = COLORS[place % COLORS.len()];
        let d: Distribution = r.distribution();
        let mut path = format!("M{:.1} {:.1}", x(panel.scale.start() as f64), y(0.0));
        for (ms, pct) in d.steps() {
            let _ = write!(path, " H{:.1} V{:.1}", x(ms as f64), y(pct));
        }
        let _ = write!(path, " H{:.1}", x(panel.scale.end() as f64));
        let _ = write!(
            s,
            "<path class=\"cdf\" d=\"{path}\" stroke=\"{color}\"><title>{}</title></path>",
            esc(&r.range.label())
        );
        let ly = TOP + 14.0 + i as f64 * 22.0;
        let lx = LEFT + pw + 16.0;
        let capped = if d.capped() > 0 { format!(" ({} &gt; {cap_ms} ms)", d.capped()) } else { String::new() };
        let _ = write!(
            s,
            "<line class=\"key\" x1=\"{lx:.1}\" x2=\"{0:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\"/>\
             <text x=\"{1:.1}\" y=\"{2:.1}\">{3}{capped}</text>",
            lx + 24.0,
            lx + 30.0,
            ly + 4.0,
            esc(&r.range.label())
        );
    }
    s.push_str("</svg>");
    s
}

/// One self-contained page: the setup, the two panels and the table.
pub fn html(report: &Report) -> String {
    let cap = cap_ms(report);
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>quorumlab: election timeouts (Raft paper, Figure 16)</title><style>\
         body{font-family:sans-serif;margin:2em;max-width:62em;color:#222}\
         svg text{font-size:12px;fill:#222}svg .grid{stroke:#ccc;stroke-width:1}\
         svg .minor{stroke:#eee;stroke-width:1}svg .frame{fill:none;stroke:#444}\
         svg .cdf{fill:none;stroke-width:2}svg .key{stroke-width:3}\
         table{border-collapse:collapse;margin-top:1em}td,th{border:1px solid #999;padding:3px 8px;font-size:13px;\
         text-align:right}td:first-child,th:first-child,td:last-child,th:last-child{text-align:left}\
         </style></head><body><h1>Election timeouts: the Raft paper's Figure 16, in simulation</h1>",
    );
    for line in setup_lines(report) {
        let _ = write!(out, "<p>{}</p>", esc(&line));
    }
    for panel in panels(report) {
        let _ = write!(out, "<h2>{}</h2>{}", esc(panel.title), svg(&panel, cap));
    }
    out.push_str(
        "<h2>Downtime per range (ms)</h2><table><tr><th>range</th><th>heartbeat / sent every</th><th>trials</th>\
         <th>min</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>max</th><th>&gt; cap</th>\
         <th>candidates (≥ 2)</th><th>the paper</th></tr>",
    );
    for r in &report.ranges {
        let d = r.distribution();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.range.label()),
            r.range.heartbeat_ms(),
            r.range.heartbeat_period_ms(),
            d.trials(),
            esc(&cell(d.min(), cap)),
            d.mean_measured().map_or("-".to_string(), |m| format!("{m:.0}")),
            esc(&cell(d.percentile(50.0), cap)),
            esc(&cell(d.percentile(90.0), cap)),
            esc(&cell(d.percentile(99.0), cap)),
            esc(&cell(d.max(), cap)),
            d.capped(),
            esc(&candidates_cell(r)),
            esc(paper_says(r.range).unwrap_or("")),
        );
    }
    let _ = writeln!(out, "</table><p>Reproduce: <code>{}</code></p></body></html>", esc(&report.config.command()));
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Config, Trial};
    use super::*;

    fn trial(downtime_ms: Option<u64>, terms: u64) -> Trial {
        Trial {
            crash_at_ms: 1000,
            wait_ms: 3,
            old_leader: 1,
            old_term: 2,
            downtime_ms,
            new_leader: downtime_ms.map(|_| 2),
            terms,
            candidates: terms.min(4),
            settled: downtime_ms.map(|_| (2, 3)),
            restart_after_ms: 5,
        }
    }

    fn result(min_ms: u64, max_ms: u64, downtimes: &[Option<u64>]) -> RangeResult {
        let range = TimeoutRange { min_ms, max_ms };
        RangeResult {
            range,
            timing: range.timing(),
            sim_seed: 9,
            trials: downtimes.iter().map(|d| trial(*d, if d.is_some() { 1 } else { 7 })).collect(),
            unprovoked_elections: 0,
        }
    }

    fn report(ranges: Vec<RangeResult>) -> Report {
        Report {
            config: Config {
                ranges: ranges.iter().map(|r| r.range).collect(),
                trials: ranges.first().map_or(0, |r| r.trials.len() as u32),
                seed: 1,
                cap: Duration::from_secs(10),
                procedure: Procedure::OneCluster,
            },
            ranges,
        }
    }

    fn sample() -> Report {
        report(vec![
            result(150, 150, &[None, None, Some(4000), None]),
            result(150, 155, &[Some(300), Some(280), Some(520), Some(290)]),
            result(150, 300, &[Some(400), Some(450), Some(500), Some(610)]),
            result(12, 24, &[Some(30), Some(35), Some(40), Some(150)]),
        ])
    }

    #[test]
    fn text_has_a_row_per_range_with_its_percentiles_and_cdf() {
        let t = text(&sample());
        let row = t.lines().find(|l| l.starts_with("150–155 ms")).expect("a row for 150–155");
        let cells: Vec<&str> = row.split_whitespace().collect();
        // range(2 words) hb trials min mean p50 p90 p99 max >cap candidates(2 words) paper…
        assert_eq!(
            &cells[2..13],
            ["75/112", "4", "280", "348", "290", "520", "520", "520", "0", "1.0", "(0%)"],
            "{row}"
        );
        assert!(row.contains("median 287 ms"), "the paper's figure beside ours: {row}");
        let capped = t.lines().find(|l| l.starts_with("150–150 ms")).expect("a row for 150–150");
        let cells: Vec<&str> = capped.split_whitespace().collect();
        assert_eq!(
            &cells[4..13],
            ["4000", "4000", ">10000", ">10000", ">10000", ">10000", "3", "3.2", "(75%)"],
            "{capped}"
        );
        assert!(t.contains("more than one term: 150–150 ms 3"), "{t}");
        let cdf = t.lines().filter(|l| l.starts_with("12–24 ms")).nth(1).expect("a CDF row for 12–24");
        let pct: Vec<&str> = cdf.split_whitespace().skip(2).collect();
        assert_eq!(
            pct,
            ["0.0", "75.0", "75.0", "100.0", "100.0", "100.0", "100.0", "100.0", "100.0", "100.0", "100.0"]
        );
        assert!(t.contains("Reproduce: quorumlab experiment election-timeouts --ranges 150-150,150-155,150-300,12-24"));
    }

    #[test]
    fn json_carries_every_trial_and_null_beyond_the_cap() {
        let v: serde_json::Value = serde_json::from_str(&json(&sample())).expect("valid JSON");
        let ranges = v["ranges"].as_array().expect("ranges");
        assert_eq!(ranges.len(), 4);
        assert_eq!(ranges[0]["range"], "150-150");
        assert_eq!(ranges[0]["capped"], 3);
        assert!(ranges[0]["p50_ms"].is_null());
        assert_eq!(ranges[0]["trial_list"].as_array().map(Vec::len), Some(4));
        assert_eq!(ranges[1]["p50_ms"], 290);
        assert_eq!(ranges[1]["openraft_election_timeout_ms"], serde_json::json!([150, 156]));
        assert_eq!(ranges[3]["cdf"][0], serde_json::json!({"ms": 30, "percent": 25.0}));
    }

    #[test]
    fn each_panel_has_one_path_per_range_and_its_own_axis() {
        let r = sample();
        let ps = panels(&r);
        assert_eq!(ps.len(), 2);
        let labels = |p: &Panel| p.ranges.iter().map(|(_, r)| r.range.to_string()).collect::<Vec<_>>();
        assert_eq!(labels(&ps[0]), ["150-150", "150-155", "150-300"]);
        assert_eq!(labels(&ps[1]), ["150-300", "12-24"], "150–300 is in both panels, as in the paper");
        assert_eq!(ps[0].scale, Scale::Log { lo: 100, hi: 10000 });
        assert_eq!(ps[1].scale, Scale::Linear { hi: 700 }, "600 ms as in the paper, widened to the longest (610)");
        for p in &ps {
            let svg = svg(p, 10_000);
            assert_eq!(svg.matches("<path class=\"cdf\"").count(), p.ranges.len(), "{svg}");
            assert_eq!(svg.matches("<svg").count(), 1);
        }
        let (top, bottom) = (svg(&ps[0], 10_000), svg(&ps[1], 10_000));
        let color_of = |svg: &str| {
            svg.split("<title>150–300 ms</title>")
                .next()
                .and_then(|s| s.rsplit("stroke=\"").next())
                .map(|s| s[..7].to_string())
        };
        assert_eq!(color_of(&top), color_of(&bottom), "150–300 has one colour in both panels");
        assert!(top.contains("3 &gt; 10000 ms"), "the legend says how many trials hit the cap");
        assert!(top.contains(">1000</text>") && top.contains(">10000</text>"), "decade ticks");
    }

    #[test]
    fn a_cdf_path_steps_up_at_each_time_and_ends_at_its_share() {
        let r = result(100, 200, &[Some(100), Some(300), None, Some(300)]);
        let p = Panel { title: "t", scale: Scale::Linear { hi: 600 }, ranges: vec![(0, &r)] };
        let svg = svg(&p, 10_000);
        let d = svg.split("<path class=\"cdf\" d=\"").nth(1).and_then(|s| s.split('"').next()).expect("a path");
        // Plot: x 60..550 (490 px for 600 ms), y 330 (0 %) .. 15 (100 %).
        assert_eq!(d, "M60.0 330.0 H141.7 V251.2 H305.0 V93.8 H550.0");
    }

    #[test]
    fn the_page_is_self_contained() {
        let page = html(&sample());
        assert!(page.starts_with("<!doctype html>"));
        for banned in ["<script", "src=", "href=", "http:", "https:", "url(", "@import", "<link", "<img"] {
            assert!(!page.contains(banned), "the page must not contain {banned:?}");
        }
        assert_eq!(page.matches("<svg").count(), 2, "two panels");
        assert_eq!(page.matches("<path class=\"cdf\"").count(), 5, "one path per range per panel");
        assert!(page.contains("<td>150–155 ms</td>"));
    }

    #[test]
    fn log_axis_ticks_are_decades_with_minor_lines() {
        let s = Scale::Log { lo: 100, hi: 10000 };
        assert_eq!(s.ticks(), [100, 1000, 10000]);
        assert_eq!(s.minor().len(), 16);
        assert_eq!(s.frac(1000.0), 0.5);
        assert_eq!(s.frac(5.0), 0.0, "clamped");
        assert_eq!(Scale::Linear { hi: 600 }.ticks(), [0, 100, 200, 300, 400, 500, 600]);
        assert_eq!((decade_below(150), decade_above(10000), decade_above(10001)), (100, 10000, 100000));
    }
}
