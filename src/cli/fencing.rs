//! `quorumlab fencing`: the failover supervisor's runs and matrix from the command line.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use quorumlab_quorum::{FencePath, Topology};

use super::{EXIT_FAILED, EXIT_USAGE};
use crate::sim::fencing::faults::Scenario;
use crate::sim::fencing::matrix;
use crate::sim::fencing::strategy::{Bugs, FencingOptions, Strategy};
use crate::sim::run::{run as run_one, RunConfig};
use crate::sim::schedule::Schedule;

#[derive(Debug, Args)]
pub struct FencingArgs {
    #[command(subcommand)]
    command: FencingCommand,
}

#[derive(Debug, Subcommand)]
enum FencingCommand {
    /// Every fence strategy (and the broken variants) against every fencing fault: safe, TWO PRIMARIES,
    /// LOST WRITE, stale reads or unavailable, with the median failover time. Exit 1 if a correct strategy
    /// was unsafe in a fault within its assumptions.
    Matrix(MatrixArgs),
    /// One fencing run: a strategy, a fault (or schedule) and a seed; prints every verdict and replays bit for bit.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct MatrixArgs {
    /// A topology file or shipped name; it must place database hosts.
    #[arg(long, default_value = "etcd-2-2-1")]
    topology: String,
    /// Seeds 1..=N per cell.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Only these rows (strategy labels as the matrix prints them, comma-separated).
    #[arg(long, value_delimiter = ',')]
    rows: Vec<String>,
    /// Only these faults (names or numbers, comma-separated).
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    #[arg(long, default_value = "text", value_parser = ["text", "json", "markdown", "html"])]
    format: String,
    /// Write the matrix here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Simulations at once (default: the machine's cores).
    #[arg(long)]
    jobs: Option<usize>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// A topology file or shipped name; it must place database hosts.
    topology: String,
    /// none, watchdog, stonith, firewall, credentials, stonith&firewall, stonith|firewall.
    #[arg(long, default_value = "none")]
    strategy: String,
    /// A fencing fault by name or number (see `quorumlab fencing matrix --help`), e.g. pause-supervisor or 3.
    #[arg(long, conflicts_with = "schedule")]
    fault: Option<String>,
    /// A schedule instead: FAULT@START+DURATION;… e.g. 'pause-supervisor:primary@0s+12s'.
    #[arg(long)]
    schedule: Option<String>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Acknowledge writes without waiting for the synchronous standby.
    #[arg(long = "async")]
    asynchronous: bool,
    /// Synchronous, but a primary left with no replica may degrade to asynchronous after recording it in the
    /// consensus store (Patroni's synchronous_mode without _strict); the default never degrades.
    #[arg(long, conflicts_with = "asynchronous")]
    degradable: bool,
    /// Patroni's failsafe_mode: while the consensus store is lost, the primary keeps serving as long as every
    /// member of the failsafe list answers it directly.
    #[arg(long)]
    failsafe: bool,
    /// Reach every datacenter's fence devices in band (across the same links as everything else).
    #[arg(long, value_parser = ["out-of-band", "in-band"])]
    fence_path: Option<String>,
    /// A hardware watchdog (keeps counting while its host is paused) instead of a softdog.
    #[arg(long)]
    hardware_watchdog: bool,
    /// Planted bugs for negative controls, comma-separated (e.g. no-self-demotion,lying-stonith).
    #[arg(long, default_value = "")]
    bugs: String,
    /// Print the whole trace.
    #[arg(long)]
    trace: bool,
    /// If the run is unsafe, shrink its schedule (fewer, shorter, earlier faults) with up to this many
    /// more runs, and print the smallest schedule that still fails with its replay command.
    #[arg(long, value_name = "RUNS")]
    shrink: Option<usize>,
}

pub fn run(args: FencingArgs) -> u8 {
    let result = match args.command {
        FencingCommand::Matrix(a) => matrix_cmd(a),
        FencingCommand::Run(a) => run_cmd(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
    }
}

fn topology(name: &str) -> Result<Arc<Topology>, String> {
    let t = quorumlab_quorum::shipped::resolve(name).map_err(|e| e.to_string())?;
    if t.db_hosts().is_empty() {
        return Err(format!(
            "topology {} places no database hosts: give a datacenter `databases = N` (the shipped etcd-2-2-1, \
             etcd-3-2 and etcd-3 have them)",
            t.name()
        ));
    }
    Ok(Arc::new(t))
}

fn matrix_cmd(a: MatrixArgs) -> Result<u8, String> {
    let t = topology(&a.topology)?;
    if a.seeds == 0 {
        return Err("--seeds must be at least 1".into());
    }
    let (rows, scenarios) = matrix::select(&a.rows, &a.faults)?;
    let seeds: Vec<u64> = (1..=a.seeds).collect();
    let total = matrix::cases(&t, &rows, &scenarios, &seeds).len();
    let jobs = a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {elapsed} elapsed, ~{eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let m = matrix::run_matrix(&t, rows, scenarios.clone(), &seeds, jobs, |_, _| bar.inc(1));
    bar.finish_and_clear();
    let text = match a.format.as_str() {
        "json" => serde_json::to_string_pretty(&m).map_err(|e| e.to_string())?,
        "markdown" => m.markdown(),
        "html" => m.html(),
        _ => m.text(),
    };
    match &a.out {
        Some(path) => std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()))?,
        None => print!("{text}"),
    }
    let violations = m.violations(&scenarios);
    for v in &violations {
        eprintln!("UNSAFE (a correct configuration): {v}");
    }
    Ok(if violations.is_empty() { 0 } else { EXIT_FAILED })
}

fn run_cmd(a: RunArgs) -> Result<u8, String> {
    let t = topology(&a.topology)?;
    let mut options = FencingOptions::new(Strategy::parse(&a.strategy)?);
    options.synchronous = !a.asynchronous;
    options.degradable = a.degradable;
    options.failsafe = a.failsafe;
    options.bugs = Bugs::parse(&a.bugs)?;
    if a.hardware_watchdog {
        options.watchdog_kind = crate::sim::fencing::WatchdogKind::Hardware;
    }
    if a.fence_path.as_deref() == Some("in-band") {
        options.fence_path = Some(FencePath::InBand);
    }
    let (schedule, options) = match (&a.fault, &a.schedule) {
        (Some(name), _) => {
            let s = Scenario::find(name)?;
            let schedule =
                s.schedule(&t).ok_or_else(|| format!("fault {} does not apply to topology {}", s.name, t.name()))?;
            (schedule, s.options(&options))
        }
        (None, Some(spec)) => (Schedule::parse(spec, &t, std::time::Duration::from_secs(12))?, options),
        (None, None) => return Err("give --fault NAME or --schedule SPEC".into()),
    };
    let strategy = options.strategy;
    let config = RunConfig::new(&t, schedule, a.seed).with_fencing(options.clone());
    let record = run_one(&config);
    if a.trace {
        for line in &record.trace {
            println!("{line}");
        }
    }
    println!("{} [seed {}]: {}", record.topology, record.seed, record.schedule);
    if let Some(f) = &record.fencing {
        println!(
            "  {}: {} — {} writes acknowledged, failover {}, promotions {:?}",
            f.strategy,
            f.cell.label(),
            f.acknowledged,
            f.failover_ms.map_or("none".into(), |ms| format!("after {:.1} s", ms as f64 / 1000.0)),
            f.promotions
                .iter()
                .map(|(m, t, at)| format!("member {m} token {t} at {:.1}s", *at as f64 / 1000.0))
                .collect::<Vec<_>>()
        );
    }
    for (name, v) in &record.verdicts {
        let shown = match v {
            crate::sim::run::Verdict::Pass => "pass".to_string(),
            crate::sim::run::Verdict::Fail(why) => format!("FAIL: {why}"),
            crate::sim::run::Verdict::NotChecked(why) => format!("not checked: {why}"),
        };
        println!("  {name}: {shown}");
    }
    let unsafe_ = record.fencing.as_ref().is_some_and(|f| f.cell.unsafe_for(strategy));
    let kv_failed =
        record.verdicts.iter().any(|(n, v)| v.failed() && !n.starts_with("db: ") && n != "availability as predicted");
    if unsafe_ || kv_failed {
        println!("replay: {}", record.replay);
        if let (true, Some(budget)) = (unsafe_, a.shrink) {
            let shrunk = matrix::shrink_unsafe(&config, budget);
            println!(
                "shrunk in {} runs to {} fault(s) from {}; replay: {}",
                shrunk.runs,
                shrunk.schedule.steps.len(),
                config.schedule.steps.len(),
                RunConfig { schedule: shrunk.schedule, ..config.clone() }.replay_command()
            );
        }
        return Ok(EXIT_FAILED);
    }
    Ok(0)
}
