//! Reading histories from files: quorumlab's JSON lines, Jepsen EDN, Jepsen etcd logs, Porcupine kv EDN.
//!
//! Each reader produces the same [`History`]; the differences in meaning between formats (what `:fail` or a
//! `nil` read means) are translated by the reader or by the default model it implies ([`default_model`]).

pub mod edn;
pub mod jepsen_edn;
pub mod jepsen_log;
pub mod json_lines;

use std::fmt;

use crate::history::History;
use crate::model::{CasRegister, Kv, LeaseKv, ModelKind, MultiRegister};
use crate::value::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Decide from the file's first non-blank, non-comment line.
    Auto,
    /// quorumlab's JSON lines (docs/history-format.md).
    Json,
    /// A Jepsen/Knossos EDN history: a vector or a stream of op maps.
    JepsenEdn,
    /// A Jepsen text log of the etcd register test (`INFO  jepsen.util - 3 :invoke :cas [1 4]`).
    JepsenLog,
    /// Porcupine's kv EDN: op maps with a `:key` and string values, get/put/append.
    PorcupineKv,
}

impl InputFormat {
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Auto => "auto",
            InputFormat::Json => "json",
            InputFormat::JepsenEdn => "jepsen-edn",
            InputFormat::JepsenLog => "jepsen-log",
            InputFormat::PorcupineKv => "porcupine-kv",
        }
    }
}

/// A file that could not be read as a history; always names the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub line: usize,
    pub message: String,
}

impl FormatError {
    pub fn at(line: usize, message: impl Into<String>) -> FormatError {
        FormatError { line, message: message.into() }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for FormatError {}

/// Guesses the format from the first meaningful line: `{"` is JSON, a Jepsen log line carries
/// `jepsen.util - `, EDN starts with `[`, `(` or `{:` (with a `:key` it is Porcupine's kv flavour).
pub fn detect(text: &str) -> InputFormat {
    if text.lines().take(200).any(|l| l.contains(jepsen_log::MARKER)) {
        return InputFormat::JepsenLog;
    }
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with(';') && !l.starts_with("//"));
    match first {
        Some(l) if l.starts_with("{\"") || l.starts_with("{ \"") => InputFormat::Json,
        Some(l) if l.contains(":key ") => InputFormat::PorcupineKv,
        _ => InputFormat::JepsenEdn,
    }
}

/// Reads `text` as `format` (detecting it if `Auto`); returns the history and the format actually used.
pub fn read_history(text: &str, format: InputFormat) -> Result<(History, InputFormat), FormatError> {
    let format = if format == InputFormat::Auto { detect(text) } else { format };
    let history = match format {
        InputFormat::Json => json_lines::read(text)?,
        InputFormat::JepsenEdn | InputFormat::PorcupineKv | InputFormat::Auto => jepsen_edn::read(text)?,
        InputFormat::JepsenLog => jepsen_log::read(text)?,
    };
    Ok((history, format))
}

/// The model a history of this format most likely needs, when the user does not name one:
/// lease ops (`lease-*`, `put-lease`) or `sget` → lease-kv (whatever the format); `txn` ops → multi-register; JSON and Porcupine kv → kv (Porcupine's keys start as `""`);
/// the etcd log → kv on one unnamed key (`nil` = absent); other EDN → Knossos's cas-register at 0.
pub fn default_model(format: InputFormat, history: &History) -> ModelKind {
    let leases = |f: &str| f.starts_with("lease-") || f == "put-lease" || f == "sget";
    if history.events.iter().any(|e| leases(&e.f)) {
        return ModelKind::LeaseKv(LeaseKv);
    }
    let model = if history.events.iter().any(|e| e.f == "txn") {
        ModelKind::MultiRegister(MultiRegister::default())
    } else {
        match format {
            InputFormat::PorcupineKv | InputFormat::Json | InputFormat::JepsenLog => ModelKind::Kv(Kv::default()),
            InputFormat::JepsenEdn | InputFormat::Auto => ModelKind::CasRegister(CasRegister::default()),
        }
    };
    with_format_initial(format, model)
}

/// The initial value the format itself defines for every key, if it defines one: Porcupine's kv test
/// starts every key at `""`. Other formats leave it to the model (`nil` for kv, `0` for registers).
pub fn initial_value(format: InputFormat) -> Option<Value> {
    match format {
        InputFormat::PorcupineKv => Some(Value::Str(String::new())),
        InputFormat::Json | InputFormat::JepsenLog | InputFormat::JepsenEdn | InputFormat::Auto => None,
    }
}

/// `model` starting from the format's initial value, when the format defines one. A model named by the user
/// goes through here too, so naming the model a format already implies cannot change the verdict; only an
/// explicit initial value (`--initial`) overrides the format.
pub fn with_format_initial(format: InputFormat, model: ModelKind) -> ModelKind {
    match initial_value(format) {
        Some(initial) => model.with_initial(initial),
        None => model,
    }
}
