//! The values operations carry, independent of the file format they were read from.
//!
//! EDN, JSON and Jepsen logs all reduce to this small set. Floats are deliberately absent: a model compares
//! values for equality and hashes them into its memo, and floats do neither well. A reader that meets one
//! reports an error instead of guessing.

use std::fmt;

/// A value read from a history: the argument of an invocation or the result of a completion.
///
/// `Nil` doubles as "absent" in the `kv` model and as "unknown" for a Knossos `cas-register` read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Str(String),
    /// An EDN keyword such as `:x`, stored without the colon.
    Keyword(String),
    /// An EDN vector, list or set, or a JSON array.
    List(Vec<Value>),
}

impl Value {
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The elements if this is a list of exactly two values, as a `cas` argument `[expected new]` is.
    pub fn as_pair(&self) -> Option<(&Value, &Value)> {
        match self {
            Value::List(items) if items.len() == 2 => Some((&items[0], &items[1])),
            _ => None,
        }
    }

    /// Converts a JSON value; objects and floats have no meaning in a history and are refused.
    pub fn from_json(json: &serde_json::Value) -> Result<Value, String> {
        Ok(match json {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => return Err(format!("number {n} is not a 64-bit integer")),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect::<Result<_, _>>()?)
            }
            serde_json::Value::Object(_) => return Err("objects are not supported as values".into()),
        })
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Nil => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Keyword(k) => serde_json::Value::String(format!(":{k}")),
            Value::List(items) => serde_json::Value::Array(items.iter().map(Value::to_json).collect()),
        }
    }
}

/// Renders in EDN syntax, the notation most histories in the wild use: `nil`, `3`, `"x"`, `:x`, `[1 2]`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil => write!(f, "nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::Keyword(k) => write!(f, ":{k}"),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, " ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
        }
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
