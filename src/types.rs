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

impl Request {
    /// The `(client_id, seq)` of every client command this request carries: its own, or each of a batch's.
    pub fn sessions(&self) -> Vec<(u64, u64)> {
        match &self.op {
            Op::Batch(requests) => requests.iter().flat_map(Request::sessions).collect(),
            _ => vec![(self.client_id, self.seq)],
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {} seq {}: {}", self.client_id, self.seq, self.op)
    }
}

/// A lease's id: the Raft log index at which its grant applied (unique, never reused). 0 = no lease.
pub type LeaseId = u64;

/// Most operations one transaction may carry in both branches together (etcd's `--max-txn-ops`).
pub const MAX_TXN_OPS: usize = 128;
/// Longest lease a client may ask for (a day): longer is a configuration mistake, not a lease.
pub const MAX_LEASE_TTL_MS: u64 = 24 * 3600 * 1000;

/// What a write does to the key-value state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Set `key` to `value`, attached to `lease` (0 = none; a put without a lease detaches the key
    /// from any lease it had). Fails with [`ApplyError::LeaseNotFound`] if the lease is not live.
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: LeaseId,
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
    /// If every compare holds, the `success` ops, else the `failure` ops: atomic, at one revision.
    Txn(Txn),
    /// A new lease of `ttl_ms`; its id is the index this applies at.
    LeaseGrant {
        ttl_ms: u64,
    },
    /// Ends a lease and deletes every key attached to it, at one revision. `expired` marks a revoke
    /// the leader proposed because the lease ran out (etcd's expiry is a revoke through Raft too);
    /// such a revoke applies only if it commits in `term`, the term of the leader whose clock
    /// decided it, so a leader deposed and re-elected meanwhile cannot act on deadlines another
    /// leader has since extended. A client's revoke has `expired: false, term: 0`.
    LeaseRevoke {
        id: LeaseId,
        expired: bool,
        term: u64,
    },
    /// The leader records how much of a lease's TTL remained, so a later leader does not restart
    /// it from its full TTL (etcd's lease checkpoint). `remaining_ms == 0` clears the record.
    LeaseCheckpoint {
        id: LeaseId,
        remaining_ms: u64,
    },
    /// Several clients' single-key commands, proposed as one entry by the leader's batcher and never accepted from
    /// a client. Each applies in order, with its own session, at the entry's index (its revision); no two touch the
    /// same key, so no key is modified twice at one revision. openraft 0.9 flushes the leader's log once per entry,
    /// so one entry for many writes is what lets one flush cover them (see `node::batcher`).
    Batch(Vec<Request>),
}

/// An etcd-style transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Txn {
    pub compares: Vec<Compare>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

/// One condition of a transaction: `target(key) op operand`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub key: Vec<u8>,
    pub op: CompareOp,
    pub target: CompareTarget,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareOp {
    Equal,
    NotEqual,
    Less,
    Greater,
}

/// What a compare reads of its key, and the operand. An absent key has version, create and mod
/// revision 0 and lease 0; a value compare on an absent key is false whatever the operator
/// (etcd's rule).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    Value(Vec<u8>),
    Version(u64),
    CreateRevision(u64),
    ModRevision(u64),
    Lease(LeaseId),
}

/// One operation of a transaction branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOp {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: LeaseId,
    },
    Delete {
        key: Vec<u8>,
    },
    /// A read at the transaction's revision (after the branch's earlier ops).
    Get {
        key: Vec<u8>,
    },
}

impl TxnOp {
    pub fn key(&self) -> &[u8] {
        match self {
            TxnOp::Put { key, .. } | TxnOp::Delete { key } | TxnOp::Get { key } => key,
        }
    }
}

impl Op {
    /// The key a single-key command writes; `None` for transactions and lease commands.
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Op::Put { key, .. } | Op::Delete { key } | Op::Cas { key, .. } => Some(key),
            Op::Txn(_) | Op::LeaseGrant { .. } | Op::LeaseRevoke { .. } | Op::LeaseCheckpoint { .. } | Op::Batch(_) => {
                None
            }
        }
    }

    /// Checks the limits a client command must respect. Lease TTL bounds depend on the cluster's
    /// timing and are checked by the node before it proposes a grant.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Op::Put { key, value, .. } => {
                check_key(key)?;
                check_value(value)
            }
            Op::Delete { key } => check_key(key),
            Op::Cas { key, expect_value, new_value, .. } => {
                check_key(key)?;
                if let Some(Some(v)) = expect_value {
                    check_value(v)?;
                }
                if let Some(v) = new_value {
                    check_value(v)?;
                }
                Ok(())
            }
            Op::Txn(txn) => txn.validate(),
            Op::LeaseGrant { ttl_ms } if *ttl_ms == 0 || *ttl_ms > MAX_LEASE_TTL_MS => {
                Err(format!("lease TTL {ttl_ms} ms is outside 1..={MAX_LEASE_TTL_MS} ms"))
            }
            Op::LeaseRevoke { id, .. } | Op::LeaseCheckpoint { id, .. } if *id == 0 => {
                Err("lease id 0 means \"no lease\"; name a granted lease".into())
            }
            Op::LeaseGrant { .. } | Op::LeaseRevoke { .. } | Op::LeaseCheckpoint { .. } => Ok(()),
            Op::Batch(_) => Err("batches are proposed by the leader only".into()),
        }
    }
}

impl Txn {
    /// Size limits, well-formed compares, and no key written twice in one branch (etcd refuses
    /// that too: the outcome would depend on the order of the ops).
    pub fn validate(&self) -> Result<(), String> {
        let ops = self.compares.len() + self.success.len() + self.failure.len();
        if ops > MAX_TXN_OPS {
            return Err(format!(
                "a transaction may carry at most {MAX_TXN_OPS} compares and operations; this one has {ops}"
            ));
        }
        for (i, c) in self.compares.iter().enumerate() {
            check_key(&c.key).map_err(|e| format!("compare {}: {e}", i + 1))?;
            if let CompareTarget::Value(v) = &c.target {
                check_value(v).map_err(|e| format!("compare {}: {e}", i + 1))?;
            }
        }
        for (branch, ops) in [("success", &self.success), ("failure", &self.failure)] {
            let mut written = std::collections::BTreeSet::new();
            for (i, op) in ops.iter().enumerate() {
                check_key(op.key()).map_err(|e| format!("{branch} op {}: {e}", i + 1))?;
                if let TxnOp::Put { value, .. } = op {
                    check_value(value).map_err(|e| format!("{branch} op {}: {e}", i + 1))?;
                }
                if !matches!(op, TxnOp::Get { .. }) && !written.insert(op.key()) {
                    return Err(format!("{branch} branch writes key {} twice", show(op.key())));
                }
            }
        }
        Ok(())
    }
}

fn check_key(key: &[u8]) -> Result<(), String> {
    if key.is_empty() {
        return Err("key must not be empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!("key is {} bytes; the limit is {MAX_KEY_BYTES}", key.len()));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!("value is {} bytes; the limit is {MAX_VALUE_BYTES}", value.len()));
    }
    Ok(())
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put { key, value, lease: 0 } => write!(f, "put {} = {}", show(key), show(value)),
            Op::Put { key, value, lease } => write!(f, "put {} = {} with lease {lease}", show(key), show(value)),
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
            Op::Txn(txn) => write!(f, "{txn}"),
            Op::LeaseGrant { ttl_ms } => write!(f, "lease grant {ttl_ms} ms"),
            Op::LeaseRevoke { id, expired: false, .. } => write!(f, "lease revoke {id}"),
            Op::LeaseRevoke { id, expired: true, term } => write!(f, "lease {id} expired (term {term})"),
            Op::LeaseCheckpoint { id, remaining_ms } => write!(f, "lease {id} checkpoint {remaining_ms} ms left"),
            Op::Batch(requests) => {
                write!(f, "batch of {}: ", requests.len())?;
                for (i, r) in requests.iter().enumerate() {
                    write!(f, "{}[{r}]", if i > 0 { ", " } else { "" })?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            CompareOp::Equal => "=",
            CompareOp::NotEqual => "!=",
            CompareOp::Less => "<",
            CompareOp::Greater => ">",
        };
        let key = show(&self.key);
        match &self.target {
            CompareTarget::Value(v) => write!(f, "value({key}) {op} {}", show(v)),
            CompareTarget::Version(n) => write!(f, "version({key}) {op} {n}"),
            CompareTarget::CreateRevision(n) => write!(f, "create({key}) {op} {n}"),
            CompareTarget::ModRevision(n) => write!(f, "mod({key}) {op} {n}"),
            CompareTarget::Lease(n) => write!(f, "lease({key}) {op} {n}"),
        }
    }
}

impl fmt::Display for TxnOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxnOp::Put { key, value, lease: 0 } => write!(f, "put {} {}", show(key), show(value)),
            TxnOp::Put { key, value, lease } => write!(f, "put {} {} lease={lease}", show(key), show(value)),
            TxnOp::Delete { key } => write!(f, "delete {}", show(key)),
            TxnOp::Get { key } => write!(f, "get {}", show(key)),
        }
    }
}

impl fmt::Display for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |items: Vec<String>| items.join(", ");
        write!(
            f,
            "txn if [{}] then [{}] else [{}]",
            join(self.compares.iter().map(|c| c.to_string()).collect()),
            join(self.success.iter().map(|o| o.to_string()).collect()),
            join(self.failure.iter().map(|o| o.to_string()).collect())
        )
    }
}

/// Renders bytes as text when they are UTF-8, as hex otherwise.
pub fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => format!("{s:?}"),
        Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// A key's full record as a read or a transaction returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Revision of the write that created the key (since it was last absent). Stable across
    /// later writes, so the create revision of a leader key is its holder's fencing token.
    pub create_revision: u64,
    /// Revision of the key's last write.
    pub mod_revision: u64,
    /// Writes since the key was created: 1 after the creating put.
    pub version: u64,
    /// The lease the key is attached to (0 = none).
    pub lease: LeaseId,
}

/// The result of one transaction operation, in branch order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnOpResult {
    /// The previous record of the key, if any.
    Put {
        prev: Option<KeyValue>,
    },
    Delete {
        prev: Option<KeyValue>,
    },
    Get {
        found: Option<KeyValue>,
    },
}

/// Why a committed command changed nothing. Deterministic: every replica decides the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyError {
    /// The command named a lease that is not live at its revision (never granted, revoked or
    /// expired).
    LeaseNotFound(LeaseId),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::LeaseNotFound(id) => write!(f, "lease {id} not found (never granted, revoked or expired)"),
        }
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
    /// Txn: one result per operation of the branch taken (`succeeded` says which).
    pub results: Vec<TxnOpResult>,
    /// LeaseGrant: the new lease's id (also `revision`) and TTL; LeaseRevoke: the lease ended.
    pub lease: LeaseId,
    pub ttl_ms: u64,
    /// Set when the command committed but changed nothing because it could not apply.
    pub error: Option<ApplyError>,
    /// `Op::Batch`: each command's response, in order. Never stored (a session keeps a single command's response),
    /// so sessions written before batches existed still decode.
    #[serde(skip)]
    pub batch: Vec<Response>,
}
