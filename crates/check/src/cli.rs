//! `quorumlab check FILE`: read a history, check it, report.
//!
//! Exit codes: 0 linearizable, 1 not linearizable, 2 unknown — and 2 for anything that prevented a verdict
//! (unreadable file, malformed history, bad flag value). The report goes to `out`; diagnostics go to `err`.

use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::check::{check_history_with_options, describe_partitions, CheckOptions};
use crate::format::edn::{Edn, Reader};
use crate::format::jepsen_edn::to_value;
use crate::format::{default_model, read_history, with_format_initial, InputFormat};
use crate::model::{CasRegister, Kv, LeaseKv, ModelKind, MultiRegister};
use crate::report;
use crate::search::Budget;
use crate::value::Value;
use crate::verdict::Verdict;

/// Exit code when no verdict could be reached (also the code for "unknown").
pub const EXIT_NO_VERDICT: i32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelName {
    /// Key-value store: get/put/delete/cas/append per key; an absent key reads as nil.
    Kv,
    /// One compare-and-set register per key (Knossos): read/write/cas; a nil read is unknown.
    CasRegister,
    /// Registers changed by transactions of [:read k v] / [:write k v].
    MultiRegister,
    /// etcd-style store with leases and transactions: get/sget/put/put-lease/delete/cas/txn/lease-*.
    LeaseKv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Check a history for linearizability.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The history file.
    pub file: PathBuf,
    /// The sequential model to check against. Default: lease-kv if the history has lease ops (`lease-*`,
    /// `put-lease`) or `sget`, else multi-register if it has `txn` ops, kv for
    /// json, jepsen-log and porcupine-kv input, cas-register for Jepsen EDN.
    #[arg(long, value_enum)]
    pub model: Option<ModelName>,
    /// The input file's format.
    #[arg(long, value_enum, default_value = "auto")]
    pub format: InputFormat,
    /// Initial value of every key or register, as an EDN literal: 0, nil, "text", :keyword.
    /// Default: what the input format defines ("" for porcupine-kv, whichever model checks it), else 0 for
    /// cas-register and multi-register and nil (absent) for kv.
    #[arg(long, value_name = "VALUE")]
    pub initial: Option<String>,
    /// Give up with verdict "unknown" after this long: 500ms, 60s, 5m, 1h.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Give up with verdict "unknown" after this many search steps on one key. Unlike --timeout, the same
    /// file gets the same verdict on every machine.
    #[arg(long, value_name = "STEPS")]
    pub max_steps: Option<u64>,
    /// Give up with verdict "unknown" when one key's memo would exceed this many MiB.
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub max_memo_mib: usize,
    /// Search every key to the end and explain each one. By default the check stops at the first key (in key
    /// order) proven not linearizable, and lists the keys after it as not checked; the outcome is the same.
    #[arg(long)]
    pub all_keys: bool,
    /// How many keys to search at once, one thread each. Default: one per core. The verdict does not depend
    /// on it; peak memory does (one memo per thread, each up to --max-memo-mib).
    #[arg(long, value_name = "N")]
    pub threads: Option<NonZeroUsize>,
    /// Also write a self-contained HTML page drawing the history and marking the op that cannot be placed.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// How to print the verdict on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

/// Runs the command, writing the report to `out` and diagnostics to `err`; returns the process exit code.
pub fn run(args: Args, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match run_inner(&args, out) {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(err, "quorumlab check: {message}");
            if args.output == OutputFormat::Json {
                let json = serde_json::json!({ "file": args.file.display().to_string(), "outcome": "error", "error": message });
                let _ = writeln!(out, "{json}");
            }
            EXIT_NO_VERDICT
        }
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    file: String,
    input_format: &'static str,
    exit_code: i32,
    #[serde(flatten)]
    verdict: &'a Verdict,
}

fn run_inner(args: &Args, out: &mut dyn Write) -> Result<i32, String> {
    let source = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).map_err(|e| format!("cannot read {source}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|e| format!("{source}: not UTF-8 text ({e})"))?;
    let (history, format) = read_history(&text, args.format).map_err(|e| format!("{source}: {e}"))?;
    let mut model = match args.model {
        None => default_model(format, &history),
        Some(ModelName::Kv) => with_format_initial(format, ModelKind::Kv(Kv::default())),
        Some(ModelName::CasRegister) => with_format_initial(format, ModelKind::CasRegister(CasRegister::default())),
        Some(ModelName::MultiRegister) => {
            with_format_initial(format, ModelKind::MultiRegister(MultiRegister::default()))
        }
        Some(ModelName::LeaseKv) => ModelKind::LeaseKv(LeaseKv),
    };
    if let (Some(_), ModelKind::LeaseKv(_)) = (&args.initial, &model) {
        return Err("--initial does not apply to lease-kv: its keys start absent (version 0), as etcd's do".into());
    }
    if let Some(initial) = &args.initial {
        model = model.with_initial(parse_initial(initial)?);
    }
    let budget = Budget {
        max_memo_bytes: args.max_memo_mib.saturating_mul(1 << 20),
        max_steps: args.max_steps,
        ..Budget::with_timeout(args.timeout)
    };
    let options = CheckOptions { budget, all_keys: args.all_keys, threads: args.threads };
    let verdict = check_history_with_options(&history, &model, &options).map_err(|e| format!("{source}: {e}"))?;
    let code = verdict.outcome.exit_code();
    let text_report = report::text::render(&verdict, &source);
    match args.output {
        OutputFormat::Text => out.write_all(text_report.as_bytes()),
        OutputFormat::Json => {
            let report =
                JsonReport { file: source.clone(), input_format: format.name(), exit_code: code, verdict: &verdict };
            let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
            writeln!(out, "{json}")
        }
    }
    .map_err(|e| format!("cannot write the report: {e}"))?;
    if let Some(path) = &args.html {
        let partitions = describe_partitions(&history, &model).map_err(|e| format!("{source}: {e}"))?;
        let page = report::html::render(&verdict, &partitions, &text_report);
        std::fs::write(path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(code)
}

/// `--initial` as an EDN literal; a bare word other than nil/true/false is refused so a typo cannot
/// silently become a keyword.
fn parse_initial(text: &str) -> Result<Value, String> {
    let hint = "--initial takes an EDN literal such as 0, nil, \"text\" or :keyword";
    let mut reader = Reader::new(text);
    let form = reader.read().map_err(|e| format!("{hint}: {}", e.message))?;
    if reader.skip_blank().is_some() {
        return Err(format!("{hint}; got more than one value in {text:?}"));
    }
    match form {
        None => Err(format!("{hint}; got nothing")),
        Some(Edn::Symbol(s)) if s == "null" => Ok(Value::Nil),
        Some(Edn::Symbol(s)) => Err(format!("{hint}; `{s}` is a bare word (quote it for a string)")),
        Some(form) => to_value(&form).map_err(|e| format!("{hint}: {e}")),
    }
}

/// `500ms`, `60s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 500ms, 60s, 5m or 1h"))?;
    let seconds = |factor: u64| n.checked_mul(factor).map(Duration::from_secs);
    let duration = match unit {
        "ms" => Some(Duration::from_millis(n)),
        "" | "s" => seconds(1),
        "m" | "min" => seconds(60),
        "h" => seconds(3600),
        _ => None,
    };
    duration.ok_or_else(|| format!("`{text}` is not a duration like 500ms, 60s, 5m or 1h"))
}
