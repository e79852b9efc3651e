//! `quorumlab suite`: the partition suite's matrix from the command line.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::suite;

/// Run topologies through every single fault (or one schedule), checking every invariant, the client history and
/// the oracle's availability prediction. Exit 0 all passed, 1 a violation, 2 usage error.
#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Topology files or shipped names (default: every shipped topology).
    topologies: Vec<String>,
    /// Only these faults (comma-separated), e.g. cut:dc1:dc2,isolate:leader,power-loss:leader.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// One schedule instead of the single faults: FAULT@START+DURATION;… e.g. 'cut:dc1:dc2@0ms+10s'.
    #[arg(long, conflicts_with = "faults")]
    schedule: Option<String>,
    /// Seeds 1..=N for every case.
    #[arg(long, default_value_t = 3, conflicts_with = "seed")]
    seeds: u64,
    /// Exactly this seed (replays one run).
    #[arg(long)]
    seed: Option<u64>,
    /// Simulations to run at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only shard K of N (e.g. 2/4); the N shards together are the whole matrix.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// text: a line per run and a summary; json: one record per line.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// Keep the client load going this long after the heal, before the liveness checks (e.g. 5s; `whatif` runs
    /// use it to measure latency after the heal, and their replay commands carry it).
    #[arg(long, value_parser = super::parse_duration)]
    after_heal: Option<std::time::Duration>,
    /// Run on real `quorumlab node` processes, each in its own network namespace, with nftables cuts, SIGKILL
    /// crashes and SIGSTOP pauses, one run at a time (needs root, iproute2 and nftables). Latency and clock
    /// faults stay in the simulator.
    #[arg(long)]
    real: bool,
    /// Run every case both in the simulator and on real processes and print the two side by side per window and
    /// client datacenter (implies --real).
    #[arg(long)]
    compare_sim: bool,
    /// Where failing runs' histories and traces are written.
    #[arg(long, default_value = "quorumlab-suite-failures")]
    out: PathBuf,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("expected K/N with 1 ≤ K ≤ N (e.g. 2/4), got {s:?}");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

pub fn run(args: SuiteArgs) -> u8 {
    let names: Vec<String> = if args.topologies.is_empty() {
        quorumlab_quorum::shipped::NAMES.iter().map(|s| s.to_string()).collect()
    } else {
        args.topologies.clone()
    };
    let topologies = match super::resolve_topologies(&names) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let seeds = match super::seed_list(args.seed, args.seeds) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let cases = match suite::matrix(&topologies, args.schedule.as_deref(), &args.faults, &seeds) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let mut cases = match args.shard {
        Some((k, n)) => suite::shard(cases, k, n),
        None => cases,
    };
    if let Some(after) = args.after_heal {
        for case in &mut cases {
            case.config.after_heal = after;
        }
    }
    let real = args.real || args.compare_sim;
    let real_options = if real {
        match real_setup(&cases) {
            Ok(o) => Some(o),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    } else {
        None
    };
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    // Real runs share the machine's cores and wall clock with their nodes: one at a time.
    let jobs = if real { 1 } else { jobs };
    let bar = ProgressBar::new(cases.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} elapsed, ~{eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let json = args.format == "json";
    let runner = |config: &crate::sim::run::RunConfig| match &real_options {
        Some(o) => crate::real::run::run_or_fail(config, o),
        None => crate::sim::run::run(config),
    };
    let records = suite::run_all_with(&cases, jobs, runner, |case, record| {
        let line = if json {
            serde_json::to_string(record).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        } else {
            let mut line = suite::summary_line(&case.name, record);
            for failure in record.failures() {
                line.push_str(&format!("\n       {failure}\n       replay: {}", record.replay));
            }
            line
        };
        bar.suspend(|| println!("{line}"));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let mut disagree = false;
    if args.compare_sim {
        let sims = suite::run_all(&cases, args.jobs.unwrap_or(2).max(1), |_, _| {});
        let tables: Vec<(String, Vec<crate::real::agreement::Row>)> = cases
            .iter()
            .zip(sims.iter().zip(&records))
            .map(|(case, (sim, real))| {
                (
                    format!("{} [seed {}]", case.name, case.config.seed),
                    crate::real::agreement::compare(&case.config, sim, real),
                )
            })
            .collect();
        disagree = tables.iter().any(|(_, rows)| rows.iter().any(|r| !r.agree));
        println!("\nSimulator against real processes, per fault window and client datacenter:\n");
        println!("{}", crate::real::agreement::markdown(&tables));
    }
    let failed: Vec<(&suite::Case, &crate::sim::run::RunRecord)> =
        cases.iter().zip(&records).filter(|(_, r)| !r.passed()).collect();
    for (case, record) in &failed {
        if let Err(e) = save(&args.out, case, record) {
            eprintln!("error: could not save the failing run's history and trace: {e}");
        }
    }
    if !json {
        println!(
            "{} runs, {} passed, {} failed{}",
            records.len(),
            records.len() - failed.len(),
            failed.len(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(" (histories and traces in {})", args.out.display())
            }
        );
    }
    if failed.is_empty() && !disagree {
        0
    } else {
        EXIT_FAILED
    }
}

/// Checks that real mode can run here and every case can run in it; the options to run them with.
fn real_setup(cases: &[suite::Case]) -> Result<crate::real::run::RealOptions, String> {
    for case in cases {
        if let Some(why) = crate::real::run::unsupported(&case.config) {
            return Err(format!("{}: cannot run on real processes: {why}", case.name));
        }
    }
    crate::real::available()?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the quorumlab executable: {e}"))?;
    Ok(crate::real::run::RealOptions { exe, planted_bug: None })
}

/// Writes a failing run's history (for `quorumlab check`) and trace.
fn save(dir: &std::path::Path, case: &suite::Case, record: &crate::sim::run::RunRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stem: String = format!("{}-seed-{}", case.name, record.seed)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    let mut trace = std::fs::File::create(dir.join(format!("{stem}.trace")))?;
    for line in &record.trace {
        writeln!(trace, "{line}")?;
    }
    if let Some(history) = &record.history {
        let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join(format!("{stem}.jsonl")))?);
        quorumlab_check::format::json_lines::write(history, &mut file)?;
        file.flush()?;
    }
    Ok(())
}
