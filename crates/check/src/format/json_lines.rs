//! quorumlab's own history format: JSON lines, one event per line. See `docs/history-format.md`.
//!
//! `{"process":0,"type":"invoke","f":"put","key":"k","value":3,"time_ns":1200}`

use serde::Deserialize;

use super::FormatError;
use crate::history::{Event, EventKind, History};
use crate::value::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    process: u64,
    #[serde(rename = "type")]
    kind: Kind,
    f: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: serde_json::Value,
    #[serde(default)]
    time_ns: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

pub fn read(text: &str) -> Result<History, FormatError> {
    let mut history = History::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(raw).map_err(|e| FormatError::at(line, e.to_string()))?;
        let value = Value::from_json(&parsed.value).map_err(|m| FormatError::at(line, format!("\"value\": {m}")))?;
        let kind = match parsed.kind {
            Kind::Invoke => EventKind::Invoke,
            Kind::Ok => EventKind::Ok,
            Kind::Fail => EventKind::Fail,
            Kind::Info => EventKind::Info,
        };
        history.push(Event {
            process: parsed.process,
            kind,
            f: parsed.f,
            key: parsed.key,
            value,
            time_ns: parsed.time_ns,
            line: Some(line),
        });
    }
    Ok(history)
}

/// Writes a history in this format, one event per line — what the simulator records.
pub fn write(history: &History, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    for event in &history.events {
        let mut line = serde_json::Map::new();
        line.insert("process".into(), event.process.into());
        line.insert("type".into(), event.kind.name().into());
        line.insert("f".into(), event.f.clone().into());
        if let Some(key) = &event.key {
            line.insert("key".into(), key.clone().into());
        }
        line.insert("value".into(), event.value.to_json());
        if let Some(t) = event.time_ns {
            line.insert("time_ns".into(), t.into());
        }
        writeln!(out, "{}", serde_json::Value::Object(line))?;
    }
    Ok(())
}
