//! `quorumlab experiment`: reproductions of published measurements in the simulator.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use super::{parse_duration, EXIT_FAILED, EXIT_USAGE};
use crate::experiment::election_timeouts::{self as et, render, Config, Procedure, TimeoutRange};

#[derive(Debug, Args)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    command: ExperimentCommand,
}

#[derive(Debug, Subcommand)]
enum ExperimentCommand {
    /// The Raft paper's Figure 16: crash the leader of five voters again and again and measure how long the cluster
    /// is without a leader, for several ranges of election timeouts (see docs/election-timeouts.md). Exit 0 done,
    /// 1 a simulation failed, 2 usage error.
    ElectionTimeouts(ElectionTimeoutsArgs),
}

#[derive(Debug, Args)]
struct ElectionTimeoutsArgs {
    /// Election timeout ranges MIN-MAX in ms, both ends included, comma-separated (default: the paper's ten:
    /// 150-150,150-151,150-155,150-175,150-200,150-300,12-24,25-50,50-100,100-200).
    #[arg(long, value_parser = parse_ranges)]
    ranges: Option<Ranges>,
    /// Leader crashes per range.
    #[arg(long, default_value_t = et::DEFAULT_TRIALS, value_parser = parse_trials)]
    trials: u32,
    /// A trial that elects no new leader within this long (simulated) counts as "more than the cap", e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_cap)]
    cap: Duration,
    /// Every random choice (simulation seeds, start, crash and restart moments) comes from this seed: the same seed,
    /// the same output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Start a new cluster for every trial (independent trials) instead of crashing and restarting the leader of one
    /// cluster per range trial after trial, as the paper did.
    #[arg(long)]
    fresh: bool,
    /// Ranges simulated at once, one per thread (default: the machine's cores).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    jobs: Option<u64>,
    /// text: a table and cumulative percentages; json: every trial; html: one self-contained page with the plots.
    #[arg(long, default_value = "text", value_parser = ["text", "json", "html"])]
    format: String,
    /// Write the output here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A parsed `--ranges` list (a newtype, so clap does not take it for a list of values).
#[derive(Clone, Debug)]
struct Ranges(Vec<TimeoutRange>);

fn parse_ranges(s: &str) -> Result<Ranges, String> {
    TimeoutRange::parse_list(s).map(Ranges)
}

fn parse_trials(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if (1..=et::MAX_TRIALS).contains(&n) => Ok(n),
        _ => Err(format!("trials must be a whole number from 1 to {}, got {s:?}", et::MAX_TRIALS)),
    }
}

fn parse_cap(s: &str) -> Result<Duration, String> {
    let cap = parse_duration(s)?;
    if cap < Duration::from_millis(1) || cap > Duration::from_secs(600) {
        return Err(format!("the cap must be from 1ms to 10m, got {s:?}"));
    }
    Ok(cap)
}

pub fn run(args: ExperimentArgs) -> u8 {
    match args.command {
        ExperimentCommand::ElectionTimeouts(a) => election_timeouts(a),
    }
}

fn election_timeouts(a: ElectionTimeoutsArgs) -> u8 {
    let config = Config {
        ranges: a.ranges.map_or_else(et::paper_ranges, |r| r.0),
        trials: a.trials,
        seed: a.seed,
        cap: a.cap,
        procedure: if a.fresh { Procedure::FreshCluster } else { Procedure::OneCluster },
    };
    if let Some(path) = &a.out {
        // Fail before minutes of simulation, not after.
        if let Err(e) = std::fs::write(path, "") {
            eprintln!("error: cannot write {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    let jobs = a.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), |j| j as usize);
    let bar = ProgressBar::new(config.ranges.len() as u64 * u64::from(config.trials));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} trials, {elapsed} elapsed, ~{eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = et::run(&config, jobs, |_, _| bar.inc(1));
    bar.finish_and_clear();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("replay: {}", config.command());
            return EXIT_FAILED;
        }
    };
    let text = match a.format.as_str() {
        "json" => render::json(&report),
        "html" => render::html(&report),
        _ => render::text(&report),
    };
    match &a.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &text) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return EXIT_FAILED;
            }
        }
        None => print!("{text}"),
    }
    0
}
