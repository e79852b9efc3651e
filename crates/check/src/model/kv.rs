//! A key-value store, one independent register per key (the shape of etcd's and Porcupine's kv tests).
//!
//! `get`/`read`, `put`/`write v`, `delete`, `cas [expected new]`, `append s`. An absent key reads as `nil`, and
//! `cas [nil v]` expects it absent. `append` concatenates strings (an absent key counts as `""`) or pushes onto a
//! list. Keys are independent, so a history is checked key by key; an operation without a key belongs to one
//! unnamed register, which is how a single-register log (Jepsen's etcd benchmark) is read.

use super::cas_register::{cas_requirement, describe_cas, parse_cas, step_cas, CasOutcome};
use super::{unsupported, Model};
use crate::history::Operation;
use crate::value::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kv {
    /// What every key holds before its first write; `nil` means absent. Porcupine's kv histories use `""`.
    pub initial: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    /// `None`: the read's result is unknown, so it constrains nothing. `Some(Nil)`: it saw the key absent.
    Get(Option<Value>),
    Put(Value),
    Delete,
    Cas {
        expected: Value,
        new: Value,
        outcome: CasOutcome,
    },
    Append(Value),
}

impl Model for Kv {
    type Op = KvOp;
    /// `Nil` is "absent".
    type State = Value;

    fn name(&self) -> &'static str {
        "kv"
    }

    fn init(&self) -> Value {
        self.initial.clone()
    }

    fn parse(&self, op: &Operation) -> Result<KvOp, String> {
        match op.f.as_str() {
            "get" | "read" => Ok(KvOp::Get(op.output.clone())),
            "put" | "write" => Ok(KvOp::Put(op.input.clone())),
            "delete" => Ok(KvOp::Delete),
            "append" => Ok(KvOp::Append(op.input.clone())),
            "cas" => {
                let (expected, new, outcome) = parse_cas(op)?;
                Ok(KvOp::Cas { expected, new, outcome })
            }
            _ => Err(unsupported(self.name(), op, "get, put, delete, cas, append")),
        }
    }

    fn partition_by_key(&self) -> bool {
        true
    }

    fn step(&self, state: &Value, op: &KvOp) -> Option<Value> {
        match op {
            KvOp::Get(None) => Some(state.clone()),
            KvOp::Get(Some(seen)) => (seen == state).then(|| state.clone()),
            KvOp::Put(value) => Some(value.clone()),
            KvOp::Delete => Some(Value::Nil),
            KvOp::Cas { expected, new, outcome } => step_cas(state, expected, new, *outcome),
            KvOp::Append(suffix) => append(state, suffix),
        }
    }

    fn is_unconstrained(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get(None))
    }

    fn is_read_only(&self, op: &KvOp) -> bool {
        matches!(op, KvOp::Get(_) | KvOp::Cas { outcome: CasOutcome::CompareFailed, .. })
    }

    fn describe_op(&self, op: &KvOp) -> String {
        match op {
            KvOp::Get(None) => "get → ? (unknown)".to_string(),
            KvOp::Get(Some(Value::Nil)) => "get → nil (absent)".to_string(),
            KvOp::Get(Some(v)) => format!("get → {v}"),
            KvOp::Put(v) => format!("put {v}"),
            KvOp::Delete => "delete".to_string(),
            KvOp::Cas { expected, new, outcome } => describe_cas(expected, new, *outcome),
            KvOp::Append(v) => format!("append {v}"),
        }
    }

    fn describe_state(&self, state: &Value) -> String {
        match state {
            Value::Nil => "absent".to_string(),
            v => v.to_string(),
        }
    }

    fn requirement(&self, op: &KvOp) -> String {
        match op {
            KvOp::Get(Some(Value::Nil)) => "the key to be absent".to_string(),
            KvOp::Get(Some(v)) => format!("the value to be {v}"),
            KvOp::Cas { expected, outcome, .. } => cas_requirement(expected, *outcome),
            KvOp::Append(_) => "a string or list to append to".to_string(),
            KvOp::Get(None) | KvOp::Put(_) | KvOp::Delete => "nothing (it fits any value)".to_string(),
        }
    }
}

fn append(state: &Value, suffix: &Value) -> Option<Value> {
    match (state, suffix) {
        (Value::Nil, Value::Str(s)) => Some(Value::Str(s.clone())),
        (Value::Str(a), Value::Str(b)) => Some(Value::Str(format!("{a}{b}"))),
        (Value::Nil, v) => Some(Value::List(vec![v.clone()])),
        (Value::List(items), v) => {
            let mut items = items.clone();
            items.push(v.clone());
            Some(Value::List(items))
        }
        _ => None,
    }
}
