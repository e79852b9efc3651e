//! `quorumlab whatif`: a topology through every way it can break, predicted beside observed.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::suite;
use crate::whatif::{self, html, render, Report};

/// Run a topology through every way it can break (a DC lost or isolated, a link cut, the leader isolated, crashed
/// or paused, one-way cuts...) in the simulator, and show per client datacenter what really happened beside what
/// the quorum math predicts. Exit 0 all agreed and held, 1 a safety check failed or a prediction disagreed,
/// 2 usage error.
#[derive(Debug, Args)]
pub struct WhatifArgs {
    /// Topology files or shipped names (etcd-2-2-1, etcd-3-2, ...).
    #[arg(required_unless_present = "compare")]
    topologies: Vec<String>,
    /// Only these scenarios, by their fault spec (comma-separated, e.g. cut:dc1:dc2,isolate:leader); `all` is
    /// every one, and a wrong name lists them.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    scenario: Vec<String>,
    /// Seeds 1..=N for every scenario.
    #[arg(long, default_value_t = 1, conflicts_with = "seed")]
    seeds: u64,
    /// Exactly this seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Two placements through the same scenarios, side by side (e.g. --compare etcd-3-2 etcd-2-2-1).
    #[arg(long, num_args = 2, value_names = ["A", "B"], conflicts_with = "topologies")]
    compare: Option<Vec<String>>,
    /// Simulations to run at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    #[arg(long, default_value = "text", value_parser = ["text", "json", "markdown", "html"])]
    format: String,
    /// Write the report here instead of standard output (an HTML report is one self-contained file).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: WhatifArgs) -> u8 {
    let names = args.compare.clone().unwrap_or_else(|| args.topologies.clone());
    let topologies = match super::resolve_topologies(&names) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(t) = topologies.iter().find(|t| t.client_dcs().is_empty()) {
        eprintln!(
            "error: {} has no datacenter with clients = true: whatif measures what clients see, so at least one is needed",
            t.name()
        );
        return EXIT_USAGE;
    }
    let seeds = match super::seed_list(args.seed, args.seeds) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    // Fail on an unwritable --out now, not after every simulation has run.
    if let Some(path) = &args.out {
        if let Err(e) = std::fs::File::create(path) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    // Every name must be a scenario of at least one topology (with --compare, a third datacenter's scenario
    // exists on one placement only, and is simply not run on the other).
    let mut wanted: Vec<String> = Vec::new();
    for name in &args.scenario {
        if !wanted.contains(name) {
            wanted.push(name.clone());
        }
    }
    {
        for name in wanted.iter().filter(|w| *w != "all") {
            if topologies.iter().all(|t| whatif::scenarios(t, std::slice::from_ref(name)).is_err()) {
                let errors: Vec<String> =
                    topologies.iter().filter_map(|t| whatif::scenarios(t, std::slice::from_ref(name)).err()).collect();
                eprintln!("error: {}", errors.join("\nerror: "));
                return EXIT_USAGE;
            }
        }
    }
    // With --compare, a scenario one placement lacks (a third datacenter's) is simply not run there.
    let mut cases = Vec::new();
    let mut owners = Vec::new();
    for (i, t) in topologies.iter().enumerate() {
        let mine: Vec<String> =
            wanted.iter().filter(|w| whatif::scenarios(t, std::slice::from_ref(w)).is_ok()).cloned().collect();
        if mine.is_empty() {
            continue;
        }
        let faults = match whatif::scenarios(t, &mine) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        };
        match whatif::cases(t, &faults, &seeds) {
            Ok(c) => {
                owners.extend(std::iter::repeat_n(i, c.len()));
                cases.extend(c);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    }
    if cases.is_empty() {
        eprintln!("error: no scenario of {:?} exists on any of {}", args.scenario, names.join(", "));
        return EXIT_USAGE;
    }
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let bar = ProgressBar::new(cases.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} elapsed, ~{eta} left  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let records = suite::run_all(&cases, jobs, |case, _| {
        bar.set_message(case.name.clone());
        bar.inc(1);
    });
    bar.finish_and_clear();
    let mut rows: Vec<Vec<whatif::Row>> = vec![Vec::new(); topologies.len()];
    for ((case, record), &i) in cases.iter().zip(&records).zip(&owners) {
        rows[i].push(whatif::analyze(&case.config, record));
    }
    let reports: Vec<Report> = topologies.iter().zip(rows).map(|(t, rows)| Report::new(t, &seeds, rows)).collect();
    let compare = match (&args.compare, reports.as_slice()) {
        (Some(_), [a, b]) => Some(render::compare_table(a, b)),
        _ => None,
    };
    let output = match args.format.as_str() {
        "json" => {
            let value = serde_json::json!({ "reports": reports });
            serde_json::to_string_pretty(&value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")) + "\n"
        }
        "html" => html::page(&reports, compare.as_ref()),
        "markdown" => match (&compare, reports.as_slice()) {
            (Some(_), [a, b]) => render::compare_text(a, b, true),
            _ => reports.iter().map(render::markdown).collect::<Vec<_>>().join("\n"),
        },
        _ => match (&compare, reports.as_slice()) {
            (Some(_), [a, b]) => render::compare_text(a, b, false),
            _ => reports.iter().map(render::text).collect::<Vec<_>>().join("\n"),
        },
    };
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &output) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return EXIT_USAGE;
            }
            eprintln!("wrote {}", path.display());
        }
        None => print!("{output}"),
    }
    let failed: Vec<&whatif::Row> = reports.iter().flat_map(Report::failures).collect();
    if failed.is_empty() {
        0
    } else {
        // Always on standard error too, so a report written to a file still says why the exit code is 1.
        for r in &failed {
            eprintln!("FAILED {}: {} [seed {}]\n  replay: {}", r.topology, r.scenario, r.seed, r.replay);
        }
        EXIT_FAILED
    }
}
