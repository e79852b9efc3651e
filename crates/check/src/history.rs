//! Histories: what clients asked for and what they were told, in real-time order.
//!
//! A history is a sequence of [`Event`]s. Every operation starts with an `invoke` event and ends with at most one
//! completion from the same process:
//!
//! 1. `ok` — it happened, and the event's value is its result;
//! 2. `fail` — it certainly did not happen (it is dropped before checking);
//! 3. `info` — unknown: it may have taken effect at any moment after its invocation, or never;
//! 4. no completion at all — same as `info`.
//!
//! The order of events *is* the real-time order: an operation whose completion comes before another's invocation
//! must take effect first. `time_ns` is only for drawing. [`History::operations`] pairs events into
//! [`Operation`]s and rejects histories where that pairing is impossible.

use std::collections::BTreeMap;

use crate::value::Value;

/// What an event says about its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventKind {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Invoke => "invoke",
            EventKind::Ok => "ok",
            EventKind::Fail => "fail",
            EventKind::Info => "info",
        }
    }
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The client that issued the operation. A client has at most one operation in flight.
    pub process: u64,
    pub kind: EventKind,
    /// The operation's function: `read`, `write`, `cas`, `get`, `put`, `delete`, `append`, `txn`.
    pub f: String,
    /// The object the operation touches; histories of independent keys are checked key by key.
    pub key: Option<String>,
    /// The argument on `invoke`, the result on `ok`.
    pub value: Value,
    /// Wall-clock time of the event, used only to draw the history.
    pub time_ns: Option<u64>,
    /// The line of the input file this event came from, for error messages.
    pub line: Option<usize>,
}

impl Event {
    pub fn new(process: u64, kind: EventKind, f: &str, value: Value) -> Event {
        Event { process, kind, f: f.to_string(), key: None, value, time_ns: None, line: None }
    }

    pub fn with_key(mut self, key: &str) -> Event {
        self.key = Some(key.to_string());
        self
    }

    /// "line 12" when the line is known, otherwise "event #3" (1-based) so an error always points somewhere.
    fn place(&self, index: usize) -> String {
        match self.line {
            Some(line) => format!("line {line}"),
            None => format!("event #{}", index + 1),
        }
    }
}

/// A whole history, in real-time order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub events: Vec<Event>,
}

/// Why a sequence of events is not a history.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("{at}: process {process} invoked {f} while its {pending_f} from {pending_at} had not completed; a process has one operation in flight")]
    ConcurrentInvoke { at: String, process: u64, f: String, pending_f: String, pending_at: String },
    #[error("{at}: process {process} completed {f} ({kind}) but had not invoked anything")]
    CompletionWithoutInvoke { at: String, process: u64, f: String, kind: &'static str },
    #[error("{at}: process {process} completed {f} but had invoked {invoked_f} at {invoked_at}")]
    MismatchedCompletion { at: String, process: u64, f: String, invoked_f: String, invoked_at: String },
    #[error("{at}: {message}")]
    BadOperation { at: String, message: String },
}

/// A paired invocation and completion, ready for a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Position in [`History::operations`]' result.
    pub id: usize,
    pub process: u64,
    pub f: String,
    pub key: Option<String>,
    /// The invocation's value (e.g. the written value, or `[expected new]` for `cas`).
    pub input: Value,
    /// The completion's value, or `None` when the outcome is unknown.
    pub output: Option<Value>,
    pub interval: Interval,
}

/// Where an operation sits in the history: from its invocation to its completion. Reports serialize these
/// fields flat beside the operation's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Interval {
    /// Index of the invocation in `History::events`.
    pub invoke_index: usize,
    /// Index of the completion in `History::events`; `None` for an unknown outcome (it may take effect until +∞).
    pub return_index: Option<usize>,
    pub invoke_line: Option<usize>,
    pub return_line: Option<usize>,
    pub invoke_time_ns: Option<u64>,
    pub return_time_ns: Option<u64>,
}

impl Interval {
    /// Where the operation was invoked, for messages: "line 12" or "event #3".
    pub fn invoke_place(&self) -> String {
        match self.invoke_line {
            Some(line) => format!("line {line}"),
            None => format!("event #{}", self.invoke_index + 1),
        }
    }

    /// The whole interval, for reports: "lines 3–7", "line 3, never returned", "events 2–5".
    pub fn describe(&self) -> String {
        match (self.invoke_line, self.return_line) {
            (Some(a), Some(b)) => format!("lines {a}–{b}"),
            (Some(a), None) => format!("line {a}, never returned"),
            _ => match self.return_index {
                Some(r) => format!("events {}–{}", self.invoke_index + 1, r + 1),
                None => format!("event {}, never returned", self.invoke_index + 1),
            },
        }
    }
}

impl Operation {
    /// `true` when the client never learned whether it took effect.
    pub fn is_unknown(&self) -> bool {
        self.output.is_none()
    }
}

impl History {
    pub fn new() -> History {
        History::default()
    }

    pub fn push(&mut self, event: Event) -> &mut History {
        self.events.push(event);
        self
    }

    /// Records that `process` invoked `f` on `key` with argument `value`.
    pub fn invoke(&mut self, process: u64, f: &str, key: Option<&str>, value: Value) -> &mut History {
        let mut event = Event::new(process, EventKind::Invoke, f, value);
        event.key = key.map(str::to_string);
        self.push(event)
    }

    /// Records that the operation `process` has in flight returned `value`.
    pub fn ok(&mut self, process: u64, value: Value) -> &mut History {
        self.complete(process, EventKind::Ok, value)
    }

    /// Records that the operation `process` has in flight certainly did not take effect.
    pub fn fail(&mut self, process: u64) -> &mut History {
        self.complete(process, EventKind::Fail, Value::Nil)
    }

    /// Records that the outcome of the operation `process` has in flight is unknown (a timeout, a crash).
    pub fn info(&mut self, process: u64) -> &mut History {
        self.complete(process, EventKind::Info, Value::Nil)
    }

    /// A completion copies `f` and `key` from the process's latest invocation so callers need not repeat them.
    fn complete(&mut self, process: u64, kind: EventKind, value: Value) -> &mut History {
        let invoked = self.events.iter().rev().find(|e| e.process == process && e.kind == EventKind::Invoke);
        let (f, key) = invoked.map(|e| (e.f.clone(), e.key.clone())).unwrap_or_default();
        let mut event = Event::new(process, kind, &f, value);
        event.key = key;
        self.push(event)
    }

    /// Pairs invocations with completions. `fail`ed operations are left out: they did not happen.
    pub fn operations(&self) -> Result<Vec<Operation>, HistoryError> {
        // Invariant: `pending` holds, per process, the index of its one invocation without a completion.
        let mut pending: BTreeMap<u64, usize> = BTreeMap::new();
        let mut ops: Vec<Operation> = Vec::new();
        for (index, event) in self.events.iter().enumerate() {
            if event.kind == EventKind::Invoke {
                if let Some(&open) = pending.get(&event.process) {
                    let first = &self.events[open];
                    return Err(HistoryError::ConcurrentInvoke {
                        at: event.place(index),
                        process: event.process,
                        f: event.f.clone(),
                        pending_f: first.f.clone(),
                        pending_at: first.place(open),
                    });
                }
                pending.insert(event.process, index);
                continue;
            }
            let Some(open) = pending.remove(&event.process) else {
                return Err(HistoryError::CompletionWithoutInvoke {
                    at: event.place(index),
                    process: event.process,
                    f: event.f.clone(),
                    kind: event.kind.name(),
                });
            };
            let invoke = &self.events[open];
            if invoke.f != event.f {
                return Err(HistoryError::MismatchedCompletion {
                    at: event.place(index),
                    process: event.process,
                    f: event.f.clone(),
                    invoked_f: invoke.f.clone(),
                    invoked_at: invoke.place(open),
                });
            }
            match event.kind {
                EventKind::Fail => {}
                EventKind::Ok => ops.push(paired(invoke, open, Some((event, index)))),
                EventKind::Info | EventKind::Invoke => ops.push(paired(invoke, open, None)),
            }
        }
        for &open in pending.values() {
            ops.push(paired(&self.events[open], open, None));
        }
        ops.sort_by_key(|op| op.interval.invoke_index);
        for (id, op) in ops.iter_mut().enumerate() {
            op.id = id;
        }
        Ok(ops)
    }
}

fn paired(invoke: &Event, invoke_index: usize, completion: Option<(&Event, usize)>) -> Operation {
    Operation {
        id: 0,
        process: invoke.process,
        f: invoke.f.clone(),
        key: invoke.key.clone(),
        input: invoke.value.clone(),
        output: completion.map(|(e, _)| e.value.clone()),
        interval: Interval {
            invoke_index,
            return_index: completion.map(|(_, i)| i),
            invoke_line: invoke.line,
            return_line: completion.and_then(|(e, _)| e.line),
            invoke_time_ns: invoke.time_ns,
            return_time_ns: completion.and_then(|(e, _)| e.time_ns),
        },
    }
}
