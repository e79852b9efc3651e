//! Several registers changed together by transactions (`knossos.model/multi-register`).
//!
//! The only operation is `txn`, a list of micro-ops `[:read k v]` and `[:write k v]` applied atomically in
//! order. A read of `nil` is unknown and fits any value. A transaction may touch several registers, so the
//! history is never split per key.

use std::collections::BTreeMap;

use super::{unsupported, Model};
use crate::history::Operation;
use crate::value::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiRegister {
    /// What every register holds before its first write (`0` in Knossos's data).
    pub initial: Value,
}

impl Default for MultiRegister {
    fn default() -> Self {
        MultiRegister { initial: Value::Int(0) }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MicroOp {
    /// `None`: the value read is unknown.
    Read(Value, Option<Value>),
    Write(Value, Value),
}

impl MultiRegister {
    fn current<'a>(&'a self, state: &'a BTreeMap<Value, Value>, register: &Value) -> &'a Value {
        state.get(register).unwrap_or(&self.initial)
    }
}

impl Model for MultiRegister {
    type Op = Vec<MicroOp>;
    /// Registers that were written; the others hold `initial`.
    type State = BTreeMap<Value, Value>;

    fn name(&self) -> &'static str {
        "multi-register"
    }

    fn init(&self) -> Self::State {
        BTreeMap::new()
    }

    fn parse(&self, op: &Operation) -> Result<Vec<MicroOp>, String> {
        if op.f != "txn" {
            return Err(unsupported(self.name(), op, "txn"));
        }
        // The completion carries the values read; an unknown outcome only has the invocation's writes.
        let value = op.output.as_ref().unwrap_or(&op.input);
        let Value::List(micro_ops) = value else {
            return Err(format!("txn needs a list of [:read k v] / [:write k v], got {value}"));
        };
        micro_ops
            .iter()
            .map(|micro| match micro {
                Value::List(parts) if parts.len() == 3 => {
                    let (register, v) = (parts[1].clone(), parts[2].clone());
                    match &parts[0] {
                        Value::Keyword(f) | Value::Str(f) if f == "read" => {
                            Ok(MicroOp::Read(register, Some(v).filter(|v| !v.is_nil())))
                        }
                        Value::Keyword(f) | Value::Str(f) if f == "write" => Ok(MicroOp::Write(register, v)),
                        other => Err(format!("txn micro-op must be :read or :write, got {other}")),
                    }
                }
                other => Err(format!("txn micro-op must be [:read k v] or [:write k v], got {other}")),
            })
            .collect()
    }

    fn partition_by_key(&self) -> bool {
        false
    }

    fn step(&self, state: &Self::State, op: &Vec<MicroOp>) -> Option<Self::State> {
        let mut next = state.clone();
        for micro in op {
            match micro {
                MicroOp::Read(_, None) => {}
                MicroOp::Read(register, Some(seen)) => {
                    if self.current(&next, register) != seen {
                        return None;
                    }
                }
                MicroOp::Write(register, value) => {
                    // Invariant: a register holding `initial` is not stored, so equal states compare equal.
                    if *value == self.initial {
                        next.remove(register);
                    } else {
                        next.insert(register.clone(), value.clone());
                    }
                }
            }
        }
        Some(next)
    }

    fn is_unconstrained(&self, op: &Vec<MicroOp>) -> bool {
        op.iter().all(|micro| matches!(micro, MicroOp::Read(_, None)))
    }

    fn is_read_only(&self, op: &Vec<MicroOp>) -> bool {
        op.iter().all(|micro| matches!(micro, MicroOp::Read(..)))
    }

    fn describe_op(&self, op: &Vec<MicroOp>) -> String {
        let parts: Vec<String> = op
            .iter()
            .map(|micro| match micro {
                MicroOp::Read(r, None) => format!("read {r} → ?"),
                MicroOp::Read(r, Some(v)) => format!("read {r} → {v}"),
                MicroOp::Write(r, v) => format!("write {r} {v}"),
            })
            .collect();
        format!("txn [{}]", parts.join(", "))
    }

    fn describe_state(&self, state: &Self::State) -> String {
        if state.is_empty() {
            return format!("all registers {}", self.initial);
        }
        let parts: Vec<String> = state.iter().map(|(r, v)| format!("{r}={v}")).collect();
        format!("{} (others {})", parts.join(" "), self.initial)
    }

    fn requirement(&self, op: &Vec<MicroOp>) -> String {
        let reads: Vec<String> = op
            .iter()
            .filter_map(|micro| match micro {
                MicroOp::Read(r, Some(v)) => Some(format!("{r}={v}")),
                _ => None,
            })
            .collect();
        if reads.is_empty() {
            "nothing (it fits any state)".to_string()
        } else {
            format!("the registers to read {} at that moment", reads.join(", "))
        }
    }
}
