//! The fencing matrix: rows are fence strategies and level layouts (the deliberately broken
//! variants included), columns the fencing faults, cells the worst outcome over the seeds with the
//! median failover time. Every cell is an ordinary suite run ([`crate::sim::run`]) through the
//! suite's runner ([`crate::suite::run_all`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use quorumlab_quorum::Topology;
use serde::Serialize;

use super::faults::{scenarios, Scenario};
use super::strategy::{Bugs, FencingOptions, Strategy};
use super::verdict::MatrixCell;
use crate::sim::run::{run, RunConfig, RunRecord};
use crate::sim::shrink::{shrink, Shrunk};
use crate::suite::{run_all, Case};

/// One row: a strategy, possibly broken on purpose.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub label: String,
    /// Whether this row is a correct configuration (it must never be unsafe within assumptions).
    pub correct: bool,
    #[serde(skip)]
    pub options: FencingOptions,
}

impl Row {
    fn new(options: FencingOptions) -> Row {
        Row { label: options.label(), correct: !options.bugs.any() && options.synchronous, options }
    }
}

/// The correct strategies, `none` with a degradable synchronous mode and with failsafe mode, then the
/// contrast (asynchronous replication), then the broken variants the negative controls plant.
pub fn rows() -> Vec<Row> {
    let mut rows: Vec<Row> = Strategy::ALL.iter().map(|&s| Row::new(FencingOptions::new(s))).collect();
    let degradable = FencingOptions { degradable: true, ..FencingOptions::new(Strategy::None) };
    rows.push(Row::new(degradable.clone()));
    let failsafe = FencingOptions { failsafe: true, ..FencingOptions::new(Strategy::None) };
    rows.push(Row::new(failsafe.clone()));
    rows.push(Row::new(FencingOptions { synchronous: false, ..FencingOptions::new(Strategy::None) }));
    let broken = |s: Strategy, bugs: Bugs| Row::new(FencingOptions { bugs, ..FencingOptions::new(s) });
    let b = Bugs::default();
    rows.extend([
        Row::new(FencingOptions { bugs: Bugs { silent_degrade: true, ..b }, ..degradable }),
        Row::new(FencingOptions { bugs: Bugs { failsafe_counts_timeouts: true, ..b }, ..failsafe }),
        broken(Strategy::None, Bugs { no_self_demotion: true, ..b }),
        broken(Strategy::Stonith, Bugs { timeout_as_success: true, ..b }),
        broken(Strategy::Firewall, Bugs { firewall_keeps_established: true, ..b }),
        broken(Strategy::Firewall, Bugs { firewall_confirms_early: true, ..b }),
        broken(Strategy::Credentials, Bugs { token_on_too_few: true, ..b }),
        broken(Strategy::Credentials, Bugs { check_yield_append: true, ..b }),
        broken(Strategy::None, Bugs { deadline_from_reply: true, ..b }),
        broken(Strategy::None, Bugs { serializable_renewal: true, ..b }),
    ]);
    rows
}

/// Picks rows by label (`stonith`, `none +no-self-demotion`) and scenarios by name or number.
pub fn select(row_labels: &[String], faults: &[String]) -> Result<(Vec<Row>, Vec<Scenario>), String> {
    let all = rows();
    let rows = if row_labels.is_empty() {
        all
    } else {
        row_labels
            .iter()
            .map(|l| {
                all.iter().find(|r| &r.label == l).cloned().ok_or_else(|| {
                    let labels: Vec<&str> = all.iter().map(|r| r.label.as_str()).collect();
                    format!("unknown matrix row {l:?}; the rows are: {}", labels.join("; "))
                })
            })
            .collect::<Result<_, _>>()?
    };
    let scenarios = if faults.is_empty() {
        scenarios()
    } else {
        faults.iter().map(|f| Scenario::find(f)).collect::<Result<_, _>>()?
    };
    Ok((rows, scenarios))
}

/// The runs of a matrix, in row, column, seed order.
pub fn cases(
    topology: &Arc<Topology>,
    rows: &[Row],
    scenarios: &[Scenario],
    seeds: &[u64],
) -> Vec<(usize, usize, Case)> {
    let mut out = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for (s, scenario) in scenarios.iter().enumerate() {
            let Some(schedule) = scenario.schedule(topology) else { continue };
            for &seed in seeds {
                let config =
                    RunConfig::new(topology, schedule.clone(), seed).with_fencing(scenario.options(&row.options));
                let name = format!("{} × {} {}", row.label, scenario.id, scenario.name);
                out.push((r, s, Case { name, config }));
            }
        }
    }
    out
}

/// Why a configuration is not expected to stay safe in a scenario, if it is not: the matrix shows these
/// cells (that is its point) but does not count them as failures of a correct configuration.
pub fn excused(options: &FencingOptions, scenario: &Scenario) -> Option<&'static str> {
    if !options.synchronous {
        return Some("asynchronous replication acknowledges writes a failover can lose");
    }
    if !scenario.within_assumptions {
        return Some("the clock runs slower than the configured margin allows");
    }
    if scenario.pauses && options.strategy == Strategy::None {
        return Some("a lease and self-demotion cannot stop a process that is paused past its lease (Kleppmann)");
    }
    let lying = options.bugs.lying_stonith || scenario.bugs.lying_stonith;
    if lying && matches!(options.strategy, Strategy::Stonith | Strategy::StonithOrFirewall) {
        return Some("a lying power switch confirms a level on its own");
    }
    None
}

/// One cell: the worst outcome over its seeds.
#[derive(Clone, Debug, Serialize)]
pub struct CellResult {
    pub cell: MatrixCell,
    pub runs: usize,
    /// Median time from the fault's start to the new primary's promotion, over the runs that failed over.
    pub median_failover_ms: Option<u64>,
    /// The first seed that showed the worst outcome, and the command that replays it.
    pub seed: Option<u64>,
    pub replay: Option<String>,
    /// Safety properties of the Raft KV that failed (never expected).
    pub kv_failures: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Matrix {
    pub topology: String,
    pub seeds: Vec<u64>,
    pub rows: Vec<Row>,
    pub columns: Vec<(String, String, String)>,
    /// `cells[row][column]`; `None` where the scenario does not apply to the topology.
    pub cells: Vec<Vec<Option<CellResult>>>,
}

/// Runs the matrix on `jobs` threads; `done` is called after each run.
pub fn run_matrix(
    topology: &Arc<Topology>,
    rows: Vec<Row>,
    scenarios: Vec<Scenario>,
    seeds: &[u64],
    jobs: usize,
    done: impl Fn(&Case, &RunRecord) + Sync,
) -> Matrix {
    let cases = cases(topology, &rows, &scenarios, seeds);
    let plain: Vec<Case> = cases.iter().map(|(_, _, c)| c.clone()).collect();
    let records = run_all(&plain, jobs, done);
    let mut grouped: BTreeMap<(usize, usize), Vec<&RunRecord>> = BTreeMap::new();
    for ((r, s, _), record) in cases.iter().zip(&records) {
        grouped.entry((*r, *s)).or_default().push(record);
    }
    let mut cells = vec![vec![None; scenarios.len()]; rows.len()];
    for ((r, s), records) in grouped {
        cells[r][s] = Some(cell(&records));
    }
    Matrix {
        topology: topology.name().to_string(),
        seeds: seeds.to_vec(),
        columns: scenarios.iter().map(|s| (s.id.to_string(), s.name.to_string(), s.about.to_string())).collect(),
        rows,
        cells,
    }
}

fn cell(records: &[&RunRecord]) -> CellResult {
    let summaries: Vec<(&RunRecord, MatrixCell, Option<u64>)> = records
        .iter()
        .map(|r| {
            let f = r.fencing.as_ref();
            (*r, f.map_or(MatrixCell::Unavailable, |f| f.cell), f.and_then(|f| f.failover_ms))
        })
        .collect();
    let worst = summaries.iter().map(|(_, c, _)| *c).max().unwrap_or(MatrixCell::Safe);
    let first = summaries.iter().find(|(_, c, _)| *c == worst).map(|(r, _, _)| *r);
    let mut failovers: Vec<u64> = summaries.iter().filter_map(|(_, _, f)| *f).collect();
    failovers.sort_unstable();
    let kv_failures = records
        .iter()
        .flat_map(|r| {
            r.verdicts
                .iter()
                .filter(|(name, v)| v.failed() && !name.starts_with("db: ") && *name != "availability as predicted")
                .map(move |(name, _)| format!("seed {}: {name}", r.seed))
        })
        .collect();
    CellResult {
        cell: worst,
        runs: records.len(),
        median_failover_ms: failovers.get(failovers.len() / 2).copied().filter(|_| !failovers.is_empty()),
        seed: first.map(|r| r.seed),
        replay: first.filter(|_| worst != MatrixCell::Safe).map(|r| r.replay.clone()),
        kv_failures,
    }
}

impl Matrix {
    fn cell_text(c: &Option<CellResult>, strategy: Strategy) -> String {
        match c {
            None => "n/a".into(),
            Some(c) if c.cell.unsafe_for(strategy) => c.cell.label().to_uppercase(),
            Some(c) => match c.median_failover_ms {
                Some(ms) => format!("{} {:.1}s", c.cell.label(), ms as f64 / 1000.0),
                None => c.cell.label().to_string(),
            },
        }
    }

    /// A Markdown table, then a legend of the columns.
    pub fn markdown(&self) -> String {
        let mut out = format!("Fencing matrix, {}, seeds {:?}\n\n| strategy |", self.topology, self.seeds);
        for (id, name, _) in &self.columns {
            out.push_str(&format!(" {id} {name} |"));
        }
        out.push_str("\n|---|");
        out.push_str(&"---|".repeat(self.columns.len()));
        out.push('\n');
        for (row, cells) in self.rows.iter().zip(&self.cells) {
            out.push_str(&format!("| {} |", row.label.replace('|', "\\|")));
            for c in cells {
                out.push_str(&format!(" {} |", Matrix::cell_text(c, row.options.strategy)));
            }
            out.push('\n');
        }
        out.push('\n');
        for (id, name, about) in &self.columns {
            out.push_str(&format!("- **{id} {name}**: {about}\n"));
        }
        out
    }

    /// Aligned columns for a terminal.
    pub fn text(&self) -> String {
        let mut table: Vec<Vec<String>> = Vec::new();
        let mut head = vec!["strategy".to_string()];
        head.extend(self.columns.iter().map(|(id, _, _)| id.clone()));
        table.push(head);
        for (row, cells) in self.rows.iter().zip(&self.cells) {
            let mut line = vec![row.label.clone()];
            line.extend(cells.iter().map(|c| Matrix::cell_text(c, row.options.strategy)));
            table.push(line);
        }
        let widths: Vec<usize> =
            (0..table[0].len()).map(|i| table.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        let mut out = format!("Fencing matrix, {}, seeds {:?}\n", self.topology, self.seeds);
        for line in &table {
            let cells: Vec<String> =
                line.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out.push('\n');
        for (id, name, about) in &self.columns {
            out.push_str(&format!("{id:>3} {name}: {about}\n"));
        }
        let replays: Vec<String> = self
            .rows
            .iter()
            .zip(&self.cells)
            .flat_map(|(row, cells)| {
                cells.iter().zip(&self.columns).filter_map(move |(c, (id, _, _))| {
                    let c = c.as_ref()?;
                    c.replay
                        .as_ref()
                        .filter(|_| c.cell.unsafe_for(row.options.strategy))
                        .map(|r| format!("{} × {id}: {r}", row.label))
                })
            })
            .collect();
        if !replays.is_empty() {
            out.push_str("\nunsafe cells replay with:\n");
            for r in replays {
                out.push_str(&format!("  {r}\n"));
            }
        }
        out
    }

    /// One self-contained HTML page (no scripts, no external resources).
    pub fn html(&self) -> String {
        let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let mut out = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>quorumlab fencing matrix</title><style>\
             body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;\
             padding:4px 8px;font-size:13px}td.safe{background:#c8efc8}td.unavailable{background:#eee}\
             td.stale-reads{background:#fde9a8}td.bad{background:#f4a0a0;font-weight:bold}</style></head><body>",
        );
        out.push_str(&format!(
            "<h1>Fencing matrix: {}</h1><p>seeds {:?}</p><table><tr><th>strategy</th>",
            esc(&self.topology),
            self.seeds
        ));
        for (id, name, about) in &self.columns {
            out.push_str(&format!("<th title=\"{}\">{} {}</th>", esc(about), esc(id), esc(name)));
        }
        out.push_str("</tr>");
        for (row, cells) in self.rows.iter().zip(&self.cells) {
            out.push_str(&format!("<tr><th>{}</th>", esc(&row.label)));
            for c in cells {
                let class = match c.as_ref().map(|c| c.cell) {
                    Some(cell) if cell.unsafe_for(row.options.strategy) => "bad",
                    Some(MatrixCell::Safe) => "safe",
                    Some(MatrixCell::Unavailable) | None => "unavailable",
                    Some(MatrixCell::StaleReads) => "stale-reads",
                    Some(_) => "bad",
                };
                out.push_str(&format!(
                    "<td class=\"{class}\">{}</td>",
                    esc(&Matrix::cell_text(c, row.options.strategy))
                ));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table><ul>");
        for (id, name, about) in &self.columns {
            out.push_str(&format!("<li><b>{} {}</b>: {}</li>", esc(id), esc(name), esc(about)));
        }
        out.push_str("</ul></body></html>\n");
        out
    }

    /// Correct rows that were unsafe where nothing excuses it ([`excused`]), or failed over where the
    /// scenario allows no failover (a blip shorter than `retry_timeout`).
    pub fn violations(&self, scenarios: &[Scenario]) -> Vec<String> {
        let mut out = Vec::new();
        for (row, cells) in self.rows.iter().zip(&self.cells) {
            for (c, s) in cells.iter().zip(scenarios) {
                if let Some(c) = c {
                    if row.correct && excused(&row.options, s).is_none() && c.cell.unsafe_for(row.options.strategy) {
                        out.push(format!(
                            "{} × {} {}: {}",
                            row.label,
                            s.id,
                            s.name,
                            c.replay.clone().unwrap_or_default()
                        ));
                    }
                    if row.correct && s.failovers == Some(0) && c.median_failover_ms.is_some() {
                        out.push(format!("{} × {} {}: a failover where none may happen", row.label, s.id, s.name));
                    }
                    for k in &c.kv_failures {
                        out.push(format!("{} × {} {}: the Raft KV failed: {k}", row.label, s.id, s.name));
                    }
                }
            }
        }
        out
    }
}

/// Shrinks the schedule of `config`, a fencing run that is unsafe for its strategy, with at most `budget`
/// more runs: the smallest schedule found that is still unsafe (see [`crate::sim::shrink`]).
pub fn shrink_unsafe(config: &RunConfig, budget: usize) -> Shrunk {
    let strategy = config.fencing.as_ref().map_or(Strategy::None, |f| f.strategy);
    shrink(&config.schedule, budget, |candidate| {
        let r = run(&RunConfig { schedule: candidate.clone(), ..config.clone() });
        r.fencing.as_ref().is_some_and(|f| f.cell.unsafe_for(strategy))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Matrix {
        let cell = |cell, ms| {
            Some(CellResult {
                cell,
                runs: 1,
                median_failover_ms: ms,
                seed: Some(1),
                replay: Some("quorumlab fencing run etcd-2-2-1 --strategy 'none' --seed 1".into()),
                kv_failures: vec![],
            })
        };
        Matrix {
            topology: "etcd-2-2-1".into(),
            seeds: vec![1],
            rows: rows().into_iter().take(2).collect(),
            columns: vec![
                ("3".into(), "pause-supervisor".into(), "a <paused> supervisor".into()),
                ("11".into(), "no-quorum".into(), "x".into()),
            ],
            cells: vec![
                vec![cell(MatrixCell::TwoPrimaries, Some(5_600)), cell(MatrixCell::Unavailable, None)],
                vec![cell(MatrixCell::Safe, Some(5_700)), None],
            ],
        }
    }

    #[test]
    fn every_format_shows_every_cell_and_the_html_page_is_self_contained() {
        let m = tiny();
        let md = m.markdown();
        assert!(md.contains("| none | TWO PRIMARIES | unavailable |"), "{md}");
        assert!(md.contains("| watchdog | safe 5.7s | n/a |"), "{md}");
        let text = m.text();
        assert!(
            text.contains("unsafe cells replay with:") && text.contains("none × 3: quorumlab fencing run"),
            "{text}"
        );
        let html = m.html();
        assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"));
        assert!(
            html.contains("<td class=\"bad\">TWO PRIMARIES</td>") && html.contains("<td class=\"safe\">safe 5.7s</td>")
        );
        assert!(html.contains("a &lt;paused&gt; supervisor"), "column notes are escaped");
        assert!(
            !html.contains("<script") && !html.contains("src=") && !html.contains("href="),
            "no external resources"
        );
    }

    #[test]
    fn a_correct_row_unsafe_where_nothing_excuses_it_is_a_violation() {
        let m = tiny();
        let scenarios: Vec<Scenario> = ["pause-supervisor", "no-quorum-replica-dies"]
            .iter()
            .map(|n| Scenario::find(n).expect("a fault"))
            .collect();
        assert!(m.violations(&scenarios).is_empty(), "none under a pause is excused (Kleppmann)");
        let mut m = m;
        m.cells[1][0] = m.cells[0][0].clone();
        let v = m.violations(&scenarios);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].starts_with("watchdog × 3 pause-supervisor"), "{v:?}");
        let blip = [Scenario::find("consensus-blip").expect("a fault")];
        let mut m = tiny();
        m.cells = vec![vec![None], vec![m.cells[1][0].clone()]];
        let v = m.violations(&blip);
        assert_eq!(v, ["watchdog × 10a consensus-blip: a failover where none may happen"], "a blip fails over nobody");
    }

    #[test]
    fn unknown_rows_and_faults_are_refused_with_the_list() {
        let e = select(&["sideways".into()], &[]).unwrap_err();
        assert!(e.contains("stonith&firewall"), "{e}");
        let e = select(&[], &["99".into()]).unwrap_err();
        assert!(e.contains("pause-host (4)"), "{e}");
    }
}
