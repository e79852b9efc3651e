//! etcd-style transactions for the `lease-kv` model: `[compares then-ops else-ops]`, one atomic step.

use super::{key_name, lease_id, LeaseKvState};
use crate::value::Value;

/// What a compare looks at. Revisions are raft indexes the model cannot know, so only "is it 0" is checkable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Value(Value),
    Version(i64),
    /// `create` or `mod` revision compared with 0: `true` means "= 0", i.e. the key is absent.
    RevisionIsZero,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Gt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compare {
    pub key: String,
    pub cmp: Cmp,
    pub target: Target,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOp {
    Put { key: String, value: Value, lease: Option<i64> },
    Delete { key: String },
    Get { key: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub then_ops: Vec<TxnOp>,
    pub else_ops: Vec<TxnOp>,
    /// `None`: unknown outcome. `Some((succeeded, values the branch's gets returned))`.
    pub outcome: Option<(bool, Vec<Value>)>,
}

fn word(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) | Value::Keyword(s) => Some(s),
        _ => None,
    }
}

fn parse_compare(c: &Value) -> Result<Compare, String> {
    let shape = "a compare is [target key op operand], target value|version|create|mod, op =|!=|<|>";
    let Value::List(parts) = c else { return Err(format!("{shape}; got {c}")) };
    let [target, key, op, operand] = parts.as_slice() else { return Err(format!("{shape}; got {c}")) };
    let key = key_name(key).ok_or_else(|| format!("compare key must be a string, keyword or integer, got {key}"))?;
    let cmp = match word(op) {
        Some("=") => Cmp::Eq,
        Some("!=") => Cmp::Ne,
        Some("<") => Cmp::Lt,
        Some(">") => Cmp::Gt,
        _ => return Err(format!("compare op must be =, !=, < or >, got {op} in {c}")),
    };
    let target = match word(target) {
        Some("value") => {
            if !matches!(cmp, Cmp::Eq | Cmp::Ne) {
                return Err(format!("value compares support = and != only, got {c}"));
            }
            if operand.is_nil() {
                return Err(format!("a value compare needs a value (test absence with [create key = 0]), got {c}"));
            }
            Target::Value(operand.clone())
        }
        Some("version") => match operand {
            Value::Int(n) if *n >= 0 => Target::Version(*n),
            _ => return Err(format!("a version compare needs a non-negative integer, got {c}")),
        },
        Some("create" | "mod") => {
            if !matches!(cmp, Cmp::Eq | Cmp::Ne) || *operand != Value::Int(0) {
                return Err(format!(
                    "revision compares are only supported as = 0 (absent) or != 0 (present): the model cannot \
                     know raft indexes; got {c}"
                ));
            }
            Target::RevisionIsZero
        }
        _ => return Err(format!("compare target must be value, version, create or mod, got {target} in {c}")),
    };
    Ok(Compare { key, cmp, target })
}

fn parse_op(op: &Value) -> Result<TxnOp, String> {
    let shape = "a txn op is [put k v], [put-lease k v lease], [delete k] or [get k]";
    let Value::List(parts) = op else { return Err(format!("{shape}; got {op}")) };
    let key = || {
        parts
            .get(1)
            .and_then(key_name)
            .ok_or_else(|| format!("txn op key must be a string, keyword or integer, got {op}"))
    };
    let value = |v: &Value| {
        if v.is_nil() {
            Err(format!("a put needs a value (nil means absent; use delete), got {op}"))
        } else {
            Ok(v.clone())
        }
    };
    match (parts.first().and_then(word), parts.len()) {
        (Some("put"), 3) => Ok(TxnOp::Put { key: key()?, value: value(&parts[2])?, lease: None }),
        (Some("put-lease"), 4) => {
            let lease = lease_id(&parts[3]).ok_or_else(|| format!("a lease id is an integer, got {op}"))?;
            Ok(TxnOp::Put { key: key()?, value: value(&parts[2])?, lease: Some(lease) })
        }
        (Some("delete"), 2) => Ok(TxnOp::Delete { key: key()? }),
        (Some("get"), 2) => Ok(TxnOp::Get { key: key()? }),
        _ => Err(format!("{shape}; got {op}")),
    }
}

fn list<'a>(v: &'a Value, what: &str) -> Result<&'a [Value], String> {
    match v {
        Value::List(items) => Ok(items),
        other => Err(format!("txn {what} must be a list, got {other}")),
    }
}

/// Reads a txn's input `[compares then-ops else-ops]` and its `ok` output `[succeeded [get results…]]`.
pub fn parse_txn(input: &Value, output: Option<&Value>) -> Result<Txn, String> {
    let Value::List(parts) = input else {
        return Err(format!("txn input must be [compares then-ops else-ops], got {input}"));
    };
    let [compares, then_ops, else_ops] = parts.as_slice() else {
        return Err(format!("txn input must be [compares then-ops else-ops], got {input}"));
    };
    let compares = list(compares, "compares")?.iter().map(parse_compare).collect::<Result<_, _>>()?;
    let then_ops: Vec<TxnOp> = list(then_ops, "then-ops")?.iter().map(parse_op).collect::<Result<_, _>>()?;
    let else_ops: Vec<TxnOp> = list(else_ops, "else-ops")?.iter().map(parse_op).collect::<Result<_, _>>()?;
    let outcome = match output {
        None => None,
        Some(out) => {
            let shape = "an ok txn returns [succeeded [results of the branch's gets]]";
            let Some((Value::Bool(succeeded), Value::List(results))) = out.as_pair() else {
                return Err(format!("{shape}, got {out}"));
            };
            let branch = if *succeeded { &then_ops } else { &else_ops };
            let gets = branch.iter().filter(|op| matches!(op, TxnOp::Get { .. })).count();
            if gets != results.len() {
                return Err(format!(
                    "{shape}: the branch taken has {gets} gets but {} results came back",
                    results.len()
                ));
            }
            Some((*succeeded, results.clone()))
        }
    };
    Ok(Txn { compares, then_ops, else_ops, outcome })
}

impl Compare {
    /// etcd's rule: a value compare on an absent key is false whatever the operator; a version compare
    /// sees 0 for an absent key.
    pub fn holds(&self, state: &LeaseKvState) -> bool {
        let entry = state.keys.get(&self.key);
        match &self.target {
            Target::Value(v) => match entry {
                None => false,
                Some(e) => (e.value == *v) == (self.cmp == Cmp::Eq),
            },
            Target::Version(n) => {
                let version = entry.map_or(0, |e| e.version as i64);
                match self.cmp {
                    Cmp::Eq => version == *n,
                    Cmp::Ne => version != *n,
                    Cmp::Lt => version < *n,
                    Cmp::Gt => version > *n,
                }
            }
            Target::RevisionIsZero => entry.is_none() == (self.cmp == Cmp::Eq),
        }
    }

    pub fn describe(&self) -> String {
        let cmp = match self.cmp {
            Cmp::Eq => "=",
            Cmp::Ne => "!=",
            Cmp::Lt => "<",
            Cmp::Gt => ">",
        };
        match &self.target {
            Target::Value(v) => format!("value({}) {cmp} {v}", self.key),
            Target::Version(n) => format!("version({}) {cmp} {n}", self.key),
            Target::RevisionIsZero => format!("create({}) {cmp} 0", self.key),
        }
    }
}

impl TxnOp {
    pub fn key(&self) -> &str {
        match self {
            TxnOp::Put { key, .. } | TxnOp::Delete { key } | TxnOp::Get { key } => key,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            TxnOp::Put { key, value, lease: None } => format!("put {key} {value}"),
            TxnOp::Put { key, value, lease: Some(l) } => format!("put {key} {value} lease {l}"),
            TxnOp::Delete { key } => format!("delete {key}"),
            TxnOp::Get { key } => format!("get {key}"),
        }
    }
}

impl Txn {
    pub fn branch(&self, succeeded: bool) -> &[TxnOp] {
        if succeeded {
            &self.then_ops
        } else {
            &self.else_ops
        }
    }

    /// Runs the branch the state selects (or, for an `ok` txn, the one it reported, which must be the one the
    /// state selects). `None`: the txn cannot have happened here; `Some(state)` unchanged: it did nothing.
    pub fn step(&self, state: &LeaseKvState) -> Option<LeaseKvState> {
        let succeeded = self.compares.iter().all(|c| c.holds(state));
        if self.outcome.as_ref().is_some_and(|(reported, _)| *reported != succeeded) {
            return None;
        }
        let mut next = state.clone();
        let mut seen = Vec::new();
        for op in self.branch(succeeded) {
            match op {
                TxnOp::Get { key } => seen.push(next.keys.get(key).map_or(Value::Nil, |e| e.value.clone())),
                TxnOp::Delete { key } => {
                    next.keys.remove(key);
                }
                TxnOp::Put { key, value, lease } => {
                    if lease.is_some_and(|l| !next.live.contains(&l)) {
                        // etcd rejects the whole txn (lease not found): an ok one cannot be here, an unknown one
                        // did nothing, which is the same as not placing it at all.
                        return if self.outcome.is_some() { None } else { Some(state.clone()) };
                    }
                    next.put(key, value, *lease);
                }
            }
        }
        match &self.outcome {
            Some((_, results)) if *results != seen => None,
            _ => Some(next),
        }
    }

    pub fn writes(&self, succeeded: bool) -> bool {
        self.branch(succeeded).iter().any(|op| !matches!(op, TxnOp::Get { .. }))
    }

    pub fn describe(&self) -> String {
        let join = |ops: &[TxnOp]| ops.iter().map(TxnOp::describe).collect::<Vec<_>>().join(", ");
        let compares = self.compares.iter().map(Compare::describe).collect::<Vec<_>>().join(" and ");
        let head = format!("txn if [{compares}] then [{}] else [{}]", join(&self.then_ops), join(&self.else_ops));
        match &self.outcome {
            None => head,
            Some((succeeded, results)) => {
                let results = results.iter().map(Value::to_string).collect::<Vec<_>>().join(" ");
                format!("{head} → {} [{results}]", if *succeeded { "then" } else { "else" })
            }
        }
    }
}
