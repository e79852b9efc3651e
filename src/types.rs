//! The one place where openraft's type machinery is configured. Everything else names
//! [`TypeConfig`] through the aliases below, so openraft's generics do not leak across the crate.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Raft node id. Ids are 1-based in every CLI and topology.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// quorumlab's Raft type configuration.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotData,
        AsyncRuntime = crate::runtime::QuorumRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type EntryPayload = openraft::EntryPayload<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Node = openraft::BasicNode;
pub type Membership = openraft::Membership<NodeId, Node>;
pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type RaftMetrics = openraft::RaftMetrics<NodeId, Node>;

/// A serialized state machine: the bytes that a snapshot ships and installs.
/// With `generic-snapshot-data` the snapshot is one value, sent whole by `full_snapshot`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SnapshotData(pub Vec<u8>);

impl fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SnapshotData({} bytes)", self.0.len())
    }
}

/// Largest key a client may write, in bytes.
pub const MAX_KEY_BYTES: usize = 4 * 1024;
/// Largest value a client may write, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// A write replicated through the Raft log.
///
/// `client_id` and `seq` make it exactly-once (Raft thesis §6.3): the state machine remembers,
/// per client, the last applied `seq` and its result, and answers a retried duplicate with that
/// result instead of applying it again. `client_id == 0` opts out of deduplication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub client_id: u64,
    pub seq: u64,
    pub op: Op,
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} seq {}: {}", self.client_id, self.seq, self.op)
    }
}

/// What a write does to the key-value state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
    },
    /// Swap in `new_value` (delete when `None`) if every given expectation holds.
    Cas {
        key: Vec<u8>,
        /// `Some(None)`: the key must be absent; `Some(Some(v))`: its value must be `v`.
        expect_value: Option<Option<Vec<u8>>>,
        /// Revision of the key's last modification; 0 means the key must be absent.
        expect_revision: Option<u64>,
        new_value: Option<Vec<u8>>,
    },
}

impl Op {
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key } | Op::Cas { key, .. } => key,
        }
    }

    /// Checks the size limits a client write must respect.
    pub fn validate(&self) -> Result<(), String> {
        let key = self.key();
        if key.is_empty() {
            return Err("key must not be empty".into());
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(format!("key is {} bytes; the limit is {MAX_KEY_BYTES}", key.len()));
        }
        let values: [Option<&Vec<u8>>; 3] = match self {
            Op::Put { value, .. } => [Some(value), None, None],
            Op::Delete { .. } => [None, None, None],
            Op::Cas { expect_value, new_value, .. } => {
                [expect_value.as_ref().and_then(|v| v.as_ref()), new_value.as_ref(), None]
            }
        };
        for v in values.into_iter().flatten() {
            if v.len() > MAX_VALUE_BYTES {
                return Err(format!("value is {} bytes; the limit is {MAX_VALUE_BYTES}", v.len()));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put { key, value } => write!(f, "put {} = {}", show(key), show(value)),
            Op::Delete { key } => write!(f, "delete {}", show(key)),
            Op::Cas { key, expect_value, expect_revision, new_value } => {
                write!(f, "cas {}", show(key))?;
                match expect_value {
                    Some(Some(v)) => write!(f, " if value = {}", show(v))?,
                    Some(None) => write!(f, " if absent")?,
                    None => {}
                }
                if let Some(r) = expect_revision {
                    write!(f, " if revision = {r}")?;
                }
                match new_value {
                    Some(v) => write!(f, " then {}", show(v)),
                    None => write!(f, " then delete"),
                }
            }
        }
    }
}

/// Renders bytes as text when they are UTF-8, as hex otherwise.
pub fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => format!("{s:?}"),
        Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The result of applying a log entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The Raft log index at which the command applied (for a duplicate: where it first applied).
    pub revision: u64,
    /// For CAS: whether the swap happened. Put and Delete always succeed.
    pub succeeded: bool,
    /// The value before the command, if the key existed.
    pub prev_value: Option<Vec<u8>>,
    /// Revision of the key's previous modification (0 = absent).
    pub prev_revision: u64,
}
