//! Jepsen's plain-text logs of the etcd register test, as used by checker authors as a benchmark:
//!
//! ```text
//! (fields are separated by tabs in real logs; spaces are accepted too)
//! INFO  jepsen.util - 3 :invoke :cas [1 4]
//! INFO  jepsen.util - 3 :fail :cas [1 4]
//! INFO  jepsen.util - 1 :ok :read nil
//! INFO  jepsen.util - 2 :fail :read :timed-out
//! ```
//!
//! That benchmark's semantics differ from Knossos's and are translated here, so the models need not know:
//! 1. `:ok :read nil` means the key is absent — read it with the `kv` model, whose `nil` is "absent";
//! 2. `:fail :cas` means the compare failed: the CAS happened and changed nothing (an `ok` with value `false`);
//! 3. a `:fail` whose value is `:timed-out`, and an `:info`, are unknown outcomes; so is an invocation that
//!    never completed;
//! 4. any other `:fail` did not happen.
//!
//! Lines without `jepsen.util - ` (startup noise, stack traces) and nemesis lines are skipped.

use super::edn::Reader;
use super::jepsen_edn::to_value;
use super::FormatError;
use crate::history::{Event, EventKind, History};
use crate::value::Value;

pub const MARKER: &str = "jepsen.util - ";

pub fn read(text: &str) -> Result<History, FormatError> {
    let mut history = History::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let Some(at) = raw.find(MARKER) else { continue };
        let rest = raw[at + MARKER.len()..].trim();
        let [process, kind, f, value_text] = split_fields(rest);
        if f.is_empty() {
            return Err(FormatError::at(line, format!("expected `PROCESS :type :f VALUE`, got `{rest}`")));
        }
        let Ok(process) = process.parse::<u64>() else {
            continue; // `:nemesis` and other non-client processes
        };
        let mut reader = Reader::new(value_text);
        let value = match reader.read() {
            Ok(Some(v)) => to_value(&v).map_err(|m| FormatError::at(line, m))?,
            Ok(None) => Value::Nil,
            Err(e) => return Err(FormatError::at(line, e.message)),
        };
        let f = f.trim_start_matches(':').to_string();
        let timed_out = value == Value::Keyword("timed-out".into());
        let (kind, value) = match kind {
            ":invoke" => (EventKind::Invoke, value),
            ":ok" => (EventKind::Ok, value),
            ":info" => (EventKind::Info, Value::Nil),
            ":fail" if timed_out => (EventKind::Info, Value::Nil),
            ":fail" if f == "cas" => (EventKind::Ok, Value::Bool(false)),
            ":fail" => (EventKind::Fail, Value::Nil),
            other => return Err(FormatError::at(line, format!("`{other}` is not :invoke, :ok, :fail or :info"))),
        };
        history.push(Event { process, kind, f, key: None, value, time_ns: None, line: Some(line) });
    }
    Ok(history)
}

/// The first three whitespace-separated fields, then the rest of the line (the value, which may hold spaces).
fn split_fields(rest: &str) -> [&str; 4] {
    let mut fields = [""; 4];
    let mut remaining = rest;
    for field in fields.iter_mut().take(3) {
        remaining = remaining.trim_start();
        let end = remaining.find(char::is_whitespace).unwrap_or(remaining.len());
        *field = &remaining[..end];
        remaining = &remaining[end..];
    }
    fields[3] = remaining.trim();
    fields
}
