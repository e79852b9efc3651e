//! A compare-and-set register with Knossos semantics (`knossos.model/cas-register`).
//!
//! `read`, `write v`, `cas [expected new]`. A `:read` that returns `nil` tells nothing (Knossos writes `nil`
//! for "the result was lost"), so it fits every state. A `cas` completion whose value is `false` means the CAS
//! happened and found a different value; any other `ok` means it swapped.

use super::{unsupported, Model};
use crate::history::Operation;
use crate::value::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CasRegister {
    /// The register's value before the first operation (Knossos histories use `0`).
    pub initial: Value,
}

impl Default for CasRegister {
    fn default() -> Self {
        CasRegister { initial: Value::Int(0) }
    }
}

/// How a `cas` ended, as far as the client knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    Swapped,
    CompareFailed,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    /// `None`: the read's result is unknown, so it constrains nothing.
    Read(Option<Value>),
    Write(Value),
    Cas {
        expected: Value,
        new: Value,
        outcome: CasOutcome,
    },
}

/// Reads `[expected new]` and the completion shared by the register and key-value models.
pub(crate) fn parse_cas(op: &Operation) -> Result<(Value, Value, CasOutcome), String> {
    let Some((expected, new)) = op.input.as_pair() else {
        return Err(format!("cas needs a value [expected new], got {}", op.input));
    };
    let outcome = match &op.output {
        None => CasOutcome::Unknown,
        Some(Value::Bool(false)) => CasOutcome::CompareFailed,
        Some(_) => CasOutcome::Swapped,
    };
    Ok((expected.clone(), new.clone(), outcome))
}

pub(crate) fn describe_cas(expected: &Value, new: &Value, outcome: CasOutcome) -> String {
    match outcome {
        // Reports mark unknown outcomes themselves, so an unknown CAS reads like a swap.
        CasOutcome::Swapped | CasOutcome::Unknown => format!("cas {expected}→{new}"),
        CasOutcome::CompareFailed => format!("cas {expected}→{new} (compare failed)"),
    }
}

/// The effect of a `cas` shared by the register and key-value models.
pub(crate) fn step_cas(state: &Value, expected: &Value, new: &Value, outcome: CasOutcome) -> Option<Value> {
    let matches = state == expected;
    match outcome {
        CasOutcome::Swapped if matches => Some(new.clone()),
        CasOutcome::CompareFailed if !matches => Some(state.clone()),
        CasOutcome::Unknown => Some(if matches { new.clone() } else { state.clone() }),
        _ => None,
    }
}

pub(crate) fn cas_requirement(expected: &Value, outcome: CasOutcome) -> String {
    match outcome {
        CasOutcome::CompareFailed => format!("the value to differ from {expected}"),
        _ => format!("the value to be {expected}"),
    }
}

impl Model for CasRegister {
    type Op = RegisterOp;
    type State = Value;

    fn name(&self) -> &'static str {
        "cas-register"
    }

    fn init(&self) -> Value {
        self.initial.clone()
    }

    fn parse(&self, op: &Operation) -> Result<RegisterOp, String> {
        match op.f.as_str() {
            "read" => Ok(RegisterOp::Read(op.output.clone().filter(|v| !v.is_nil()))),
            "write" => Ok(RegisterOp::Write(op.input.clone())),
            "cas" => {
                let (expected, new, outcome) = parse_cas(op)?;
                Ok(RegisterOp::Cas { expected, new, outcome })
            }
            _ => Err(unsupported(self.name(), op, "read, write, cas")),
        }
    }

    fn partition_by_key(&self) -> bool {
        true
    }

    fn step(&self, state: &Value, op: &RegisterOp) -> Option<Value> {
        match op {
            RegisterOp::Read(None) => Some(state.clone()),
            RegisterOp::Read(Some(seen)) => (seen == state).then(|| state.clone()),
            RegisterOp::Write(value) => Some(value.clone()),
            RegisterOp::Cas { expected, new, outcome } => step_cas(state, expected, new, *outcome),
        }
    }

    fn is_unconstrained(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(None))
    }

    fn is_read_only(&self, op: &RegisterOp) -> bool {
        matches!(op, RegisterOp::Read(_) | RegisterOp::Cas { outcome: CasOutcome::CompareFailed, .. })
    }

    fn describe_op(&self, op: &RegisterOp) -> String {
        match op {
            RegisterOp::Read(None) => "read → ? (unknown)".to_string(),
            RegisterOp::Read(Some(v)) => format!("read → {v}"),
            RegisterOp::Write(v) => format!("write {v}"),
            RegisterOp::Cas { expected, new, outcome } => describe_cas(expected, new, *outcome),
        }
    }

    fn describe_state(&self, state: &Value) -> String {
        state.to_string()
    }

    fn requirement(&self, op: &RegisterOp) -> String {
        match op {
            RegisterOp::Read(Some(v)) => format!("the value to be {v}"),
            RegisterOp::Read(None) | RegisterOp::Write(_) => "nothing (it fits any value)".to_string(),
            RegisterOp::Cas { expected, outcome, .. } => cas_requirement(expected, *outcome),
        }
    }
}
