//! `quorumlab quorum table | explain | place`. The main binary parses [`Args`] and calls [`run`]; everything
//! here writes to the given writers only, so tests run the real command in memory.
//!
//! Exit codes: 0 the report was written; 1 the operation failed (nothing to report, or a write failed);
//! 2 usage or input error (bad flag value, unreadable or invalid topology file).

use std::io::Write;

use serde::Serialize;

use crate::place::{place, MAX_DCS, MAX_VOTERS};
use crate::report::Doc;

/// Version of the JSON field names documented in `docs/quorum-json.md`; bumped on any breaking change.
/// Version 2: `bridges` became `both_sides_seen_by`, `disruptors` became an object per election rule, and
/// `explain` gained `learners`, `quorumlab_node_variant` and per-fault `raft` outcomes.
pub const JSON_SCHEMA_VERSION: u32 = 2;

/// Largest `--max` for `quorum table`.
pub const MAX_TABLE_SIZE: usize = 999;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Cluster size, majority and failures tolerated (etcd's FAQ table), and why an even size buys nothing.
    Table {
        /// Largest cluster size to list.
        #[arg(long, default_value_t = 9)]
        max: usize,
        #[command(flatten)]
        format: FormatArg,
    },
    /// What a topology survives: every DC loss, every link cut, every pair of them, with the arithmetic and
    /// what Raft does per leader location; with --fault, one fault in detail.
    Explain {
        /// A topology file, or a shipped name such as etcd-2-2-1.
        topology: String,
        /// One fault to explain in detail (repeat for several at once): lose:DC, isolate:DC, cut:DC:DC,
        /// drop:DC:DC (messages from the first to the second), crash:HOST, isolate:HOST, drop:HOST:HOST.
        #[arg(long = "fault", value_name = "SPEC")]
        faults: Vec<String>,
        /// With --fault: the host leading when the fault starts; adds every node's part, per election rule.
        #[arg(long, value_name = "HOST")]
        leader: Option<String>,
        /// With --fault: the quorum rule for "can lead"; `half` is deliberately wrong, to show split brain.
        #[arg(long, value_enum, default_value_t = Rule::Majority)]
        rule: Rule,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Every placement of N voters over D datacenters, ranked by the faults it survives.
    Place {
        #[arg(long)]
        voters: u32,
        #[arg(long)]
        dcs: u32,
        /// Leave out placements with more than K voters in one datacenter.
        #[arg(long, value_name = "K")]
        max_per_dc: Option<u32>,
        #[command(flatten)]
        format: FormatArg,
    },
}

/// The quorum rule `explain --fault` counts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Rule {
    /// n/2 + 1, what Raft uses.
    #[default]
    Majority,
    /// n/2: wrong on purpose; two halves of an even cluster can both lead.
    Half,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns that read like a short proof.
    #[default]
    Text,
    /// Stable field names, documented in docs/quorum-json.md.
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, clap::Args)]
pub struct FormatArg {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Runs the command, writing the report to `out` and diagnostics to `err`; returns the process exit code.
pub fn run(args: Args, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match execute(args) {
        Ok(text) => match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => 0,
            Err(error) => {
                let _ = writeln!(err, "quorum: cannot write the report: {error}");
                1
            }
        },
        Err((code, message)) => {
            let _ = writeln!(err, "quorum: {message}");
            code
        }
    }
}

/// The report as text, or an exit code and a message.
fn execute(args: Args) -> Result<String, (i32, String)> {
    match args.command {
        Command::Table { max, format } => {
            if !(1..=MAX_TABLE_SIZE).contains(&max) {
                return Err((2, format!("--max must be between 1 and {MAX_TABLE_SIZE}, not {max}")));
            }
            let report = crate::table::table_report(max);
            render("table", &report, report.doc(), format.format)
        }
        Command::Explain { topology, faults, leader, rule, format } => {
            let topology = crate::shipped::resolve(&topology).map_err(|error| (2, error.to_string()))?;
            if faults.is_empty() {
                if leader.is_some() || rule != Rule::Majority {
                    return Err((2, "--leader and --rule need a --fault to apply to".to_string()));
                }
                let report = crate::explain::explain(&topology).map_err(|error| (1, error.to_string()))?;
                return render("explain", &report, report.doc(), format.format);
            }
            let shapes = faults
                .iter()
                .map(|spec| crate::fault_report::parse_fault(&topology, spec))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|message| (2, message))?;
            let rule = match rule {
                Rule::Majority => crate::majority::QuorumRule::MAJORITY,
                Rule::Half => crate::majority::QuorumRule::HALF,
            };
            let report = crate::fault_report::fault_report(&topology, shapes, leader.as_deref(), rule)
                .map_err(|message| (2, message))?;
            render("explain", &report, report.doc(&topology), format.format)
        }
        Command::Place { voters, dcs, max_per_dc, format } => {
            let report = place(voters, dcs, max_per_dc).map_err(|error| {
                let code = if error.is_usage() { 2 } else { 1 };
                (code, error.to_string())
            })?;
            debug_assert!(voters <= MAX_VOTERS && dcs <= MAX_DCS);
            render("place", &report, report.doc(), format.format)
        }
    }
}

fn render(command: &str, report: &impl Serialize, doc: Doc, format: Format) -> Result<String, (i32, String)> {
    match format {
        Format::Text => Ok(doc.to_text()),
        Format::Markdown => Ok(doc.to_markdown()),
        Format::Json => {
            let mut value = serde_json::to_value(report).map_err(|error| (1, error.to_string()))?;
            if let serde_json::Value::Object(fields) = &mut value {
                fields.insert("command".into(), command.into());
                fields.insert("schema_version".into(), JSON_SCHEMA_VERSION.into());
            }
            serde_json::to_string_pretty(&value).map(|json| json + "\n").map_err(|error| (1, error.to_string()))
        }
    }
}
