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
use crate::model::{CasRegister, Kv, ModelKind, MultiRegister};
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
/// `txn` ops → multi-register; JSON and Porcupine kv → kv (Porcupine's keys start as `""`);
/// the etcd log → kv on one unnamed key (`nil` = absent); other EDN → Knossos's cas-register at 0.
pub fn default_model(format: InputFormat, history: &History) -> ModelKind {
    if history.events.iter().any(|e| e.f == "txn") {
        return ModelKind::MultiRegister(MultiRegister::default());
    }
    match format {
        InputFormat::PorcupineKv => ModelKind::Kv(Kv { initial: Value::Str(String::new()) }),
        InputFormat::Json | InputFormat::JepsenLog => ModelKind::Kv(Kv::default()),
        InputFormat::JepsenEdn | InputFormat::Auto => ModelKind::CasRegister(CasRegister::default()),
    }
}
