//! Jepsen EDN histories: a vector (or list) of op maps, or a bare stream of op maps, one per line or not.
//!
//! `{:process 0, :type :invoke, :f :write, :value 3}`; extra keys (`:time`, `:index`, `:error`) are ignored
//! except `:time` (kept for drawing) and `:key` (Porcupine-style kv histories put the key there). Ops whose
//! `:process` is not an integer — the `:nemesis` — are not client operations and are skipped.

use super::edn::{Edn, EdnError, Reader};
use super::FormatError;
use crate::history::{Event, EventKind, History};
use crate::value::Value;

pub fn read(text: &str) -> Result<History, FormatError> {
    let mut reader = Reader::new(text);
    let mut history = History::new();
    // A history may be wrapped in one top-level `[...]` or `(...)`; we step inside it by hand so every op
    // keeps the line it starts on.
    let mut close = None;
    loop {
        let next = reader.skip_blank();
        match (next, close) {
            (None, None) => break,
            (None, Some(c)) => {
                return Err(FormatError::at(reader.line(), format!("the history's `{c}` is never closed")))
            }
            (Some(b), Some(c)) if b == c as u8 => {
                reader.consume();
                close = None;
                continue;
            }
            (Some(b'['), None) if history.events.is_empty() => {
                reader.consume();
                close = Some(']');
                continue;
            }
            (Some(b'('), None) if history.events.is_empty() => {
                reader.consume();
                close = Some(')');
                continue;
            }
            _ => {}
        }
        let line = reader.line();
        let form = reader.read().map_err(edn_error)?;
        let Some(form) = form else { break };
        if let Some(event) = event_from_map(&form, line)? {
            history.push(event);
        }
    }
    Ok(history)
}

fn edn_error(e: EdnError) -> FormatError {
    FormatError::at(e.line, e.message)
}

/// Turns one op map into an event; `None` for ops of non-client processes.
pub(crate) fn event_from_map(form: &Edn, line: usize) -> Result<Option<Event>, FormatError> {
    if !matches!(form, Edn::Map(_)) {
        return Err(FormatError::at(line, "expected an operation map like {:process 0, :type :invoke, ...}"));
    }
    let process = match form.get("process") {
        Some(Edn::Int(p)) if *p >= 0 => *p as u64,
        Some(Edn::Int(p)) => return Err(FormatError::at(line, format!(":process {p} is negative"))),
        Some(_) => return Ok(None),
        None => return Err(FormatError::at(line, "operation has no :process")),
    };
    let kind = match form.get("type") {
        Some(Edn::Keyword(t)) => match t.as_str() {
            "invoke" => EventKind::Invoke,
            "ok" => EventKind::Ok,
            "fail" => EventKind::Fail,
            "info" => EventKind::Info,
            other => return Err(FormatError::at(line, format!(":type :{other} is not :invoke, :ok, :fail or :info"))),
        },
        _ => return Err(FormatError::at(line, "operation has no :type keyword")),
    };
    let f = match form.get("f") {
        Some(Edn::Keyword(f)) | Some(Edn::Symbol(f)) | Some(Edn::Str(f)) => f.clone(),
        _ => return Err(FormatError::at(line, "operation has no :f keyword")),
    };
    let value = match form.get("value") {
        None => Value::Nil,
        Some(v) => to_value(v).map_err(|m| FormatError::at(line, format!(":value {m}")))?,
    };
    let key = match form.get("key") {
        None | Some(Edn::Nil) => None,
        Some(Edn::Str(s)) | Some(Edn::Keyword(s)) | Some(Edn::Symbol(s)) => Some(s.clone()),
        Some(Edn::Int(i)) => Some(i.to_string()),
        Some(_) => return Err(FormatError::at(line, ":key must be a string, keyword or integer")),
    };
    let time_ns = match form.get("time") {
        Some(Edn::Int(t)) if *t >= 0 => Some(*t as u64),
        _ => None,
    };
    Ok(Some(Event { process, kind, f, key, value, time_ns, line: Some(line) }))
}

/// Converts EDN to a [`Value`]; maps and floats have no meaning to the models, so they are refused.
pub(crate) fn to_value(edn: &Edn) -> Result<Value, String> {
    Ok(match edn {
        Edn::Nil => Value::Nil,
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Int(i) => Value::Int(*i),
        Edn::Str(s) => Value::Str(s.clone()),
        Edn::Char(c) => Value::Str(c.to_string()),
        Edn::Keyword(k) => Value::Keyword(k.clone()),
        Edn::Symbol(s) => Value::Keyword(s.clone()),
        Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => {
            Value::List(items.iter().map(to_value).collect::<Result<_, _>>()?)
        }
        Edn::Number(n) => return Err(format!("{n} is not an integer (floats and big numbers are not supported)")),
        Edn::Map(_) => return Err("maps are not supported as values".to_string()),
        Edn::Tagged(tag, _) => return Err(format!("tagged literal #{tag} is not supported as a value")),
    })
}
