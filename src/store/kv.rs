//! What a command does to the key-value state, as pure functions: no sled, no openraft.
//!
//! The state machine hands [`execute`] an [`Overlay`] over its applied state and persists the
//! writes the overlay collected. Keeping every decision here (CAS, transactions, lease grants and
//! revokes, the exactly-once rule) lets them be tested directly, without sled or openraft.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::types::{
    ApplyError, Compare, CompareOp, CompareTarget, KeyValue, LeaseId, Op, Request, Response, TxnOp, TxnOpResult,
};

/// A key's current record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: Vec<u8>,
    /// Log index of the write that created the key since it was last absent.
    pub create_revision: u64,
    /// Log index of the last write to this key.
    /// Invariant: `create_revision <= mod_revision` and both `>= 1`; revision 0 means "absent"
    /// in the client API.
    pub mod_revision: u64,
    /// Writes since creation, 1 after the creating one.
    pub version: u64,
    /// The lease the key is attached to, 0 = none. Invariant: a non-zero lease is live and its
    /// index entry `(lease, key)` exists.
    pub lease: LeaseId,
}

impl Versioned {
    pub fn to_key_value(&self, key: &[u8]) -> KeyValue {
        KeyValue {
            key: key.to_vec(),
            value: self.value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.mod_revision,
            version: self.version,
            lease: self.lease,
        }
    }
}

/// A live lease as the state machine keeps it. Its expiry is not here: that is the leader's
/// clock's business, not the log's (only checkpoints of the remaining TTL are logged).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub ttl_ms: u64,
    /// The TTL that remained at the last checkpoint, 0 = none since the last renewal.
    pub remaining_ms: u64,
}

/// The applied state a command reads: the state machine's tree in production, a map in tests.
pub trait StateView {
    type Error;
    fn key(&self, key: &[u8]) -> Result<Option<Versioned>, Self::Error>;
    fn lease(&self, id: LeaseId) -> Result<Option<LeaseRecord>, Self::Error>;
    /// Every key attached to the lease, sorted.
    fn lease_keys(&self, id: LeaseId) -> Result<Vec<Vec<u8>>, Self::Error>;
}

/// Writes of one `apply` call on top of the applied state, so later commands of a batch see
/// earlier ones. `None` = delete.
pub struct Overlay<'a, S> {
    base: &'a S,
    pub kv: BTreeMap<Vec<u8>, Option<Versioned>>,
    pub leases: BTreeMap<LeaseId, Option<LeaseRecord>>,
    /// The lease index: `true` = `(lease, key)` added, `false` = removed.
    pub lease_index: BTreeMap<(LeaseId, Vec<u8>), bool>,
}

impl<'a, S: StateView> Overlay<'a, S> {
    pub fn new(base: &'a S) -> Self {
        Overlay { base, kv: BTreeMap::new(), leases: BTreeMap::new(), lease_index: BTreeMap::new() }
    }

    pub fn key(&self, key: &[u8]) -> Result<Option<Versioned>, S::Error> {
        match self.kv.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.key(key),
        }
    }

    pub fn lease(&self, id: LeaseId) -> Result<Option<LeaseRecord>, S::Error> {
        match self.leases.get(&id) {
            Some(l) => Ok(l.clone()),
            None => self.base.lease(id),
        }
    }

    fn lease_keys(&self, id: LeaseId) -> Result<Vec<Vec<u8>>, S::Error> {
        let mut keys: BTreeSet<Vec<u8>> = self.base.lease_keys(id)?.into_iter().collect();
        for ((lease, key), present) in self.lease_index.range((id, Vec::new())..) {
            if *lease != id {
                break;
            }
            if *present {
                keys.insert(key.clone());
            } else {
                keys.remove(key);
            }
        }
        Ok(keys.into_iter().collect())
    }

    fn set(&mut self, key: &[u8], record: Option<Versioned>, before: Option<&Versioned>) {
        let old_lease = before.map_or(0, |b| b.lease);
        let new_lease = record.as_ref().map_or(0, |r| r.lease);
        if old_lease != new_lease {
            if old_lease != 0 {
                self.lease_index.insert((old_lease, key.to_vec()), false);
            }
            if new_lease != 0 {
                self.lease_index.insert((new_lease, key.to_vec()), true);
            }
        }
        self.kv.insert(key.to_vec(), record);
    }

    /// Writes `value` to `key` at `index`, keeping create revision and version as etcd does.
    fn put(&mut self, key: &[u8], value: &[u8], lease: LeaseId, index: u64) -> Result<Option<Versioned>, S::Error> {
        let before = self.key(key)?;
        let record = Versioned {
            value: value.to_vec(),
            create_revision: before.as_ref().map_or(index, |b| b.create_revision),
            mod_revision: index,
            version: before.as_ref().map_or(1, |b| b.version + 1),
            lease,
        };
        self.set(key, Some(record), before.as_ref());
        Ok(before)
    }

    fn delete(&mut self, key: &[u8]) -> Result<Option<Versioned>, S::Error> {
        let before = self.key(key)?;
        if before.is_some() {
            self.set(key, None, before.as_ref());
        }
        Ok(before)
    }

    fn lease_is_live(&self, lease: LeaseId) -> Result<bool, S::Error> {
        Ok(lease == 0 || self.lease(lease)?.is_some())
    }
}

/// The last write a client made, kept so a retried duplicate gets the same answer (Raft thesis
/// §6.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub last_seq: u64,
    pub last_response: Response,
}

/// Whether a request must be applied or answered from its client's session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionCheck {
    /// Apply it; record the session afterwards when `client_id != 0`.
    Apply,
    /// Already applied (`seq <= last_seq`): answer with this response and change nothing.
    ///
    /// Only the latest response is kept, so a request older than the latest (`seq < last_seq`)
    /// gets the latest response. A client has one write outstanding at a time, so it has already
    /// received the answer to any older `seq`; such a request is a stale network duplicate.
    Duplicate(Response),
}

/// Client id that opts out of deduplication.
pub const NO_SESSION: u64 = 0;

pub fn check_session(request: &Request, session: Option<&Session>) -> SessionCheck {
    if request.client_id == NO_SESSION {
        return SessionCheck::Apply;
    }
    match session {
        Some(s) if request.seq <= s.last_seq => SessionCheck::Duplicate(s.last_response.clone()),
        _ => SessionCheck::Apply,
    }
}

/// The response to a Blank or Membership entry applied at `index`.
pub fn noop_response(index: u64) -> Response {
    Response { revision: index, succeeded: true, ..Response::default() }
}

/// Applies `op`, an entry of `term` at log index `index`: the response, with the writes left in `state`.
///
/// A command that cannot apply (a put naming a lease that is not live) changes nothing and says
/// why in `Response::error`; a transaction is checked whole before any of its writes.
pub fn execute<S: StateView>(op: &Op, state: &mut Overlay<'_, S>, term: u64, index: u64) -> Result<Response, S::Error> {
    let mut response = Response { revision: index, ..Response::default() };
    match op {
        // The state machine applies a batch's commands one by one, each with its session; a batch never gets here.
        Op::Batch(_) => {
            debug_assert!(false, "execute() called with a batch");
            tracing::error!(index, "a batch reached execute(); nothing applied");
        }
        Op::Put { key, value, lease } => {
            if !state.lease_is_live(*lease)? {
                response.error = Some(ApplyError::LeaseNotFound(*lease));
                return Ok(response);
            }
            let before = state.put(key, value, *lease, index)?;
            debug_assert!(before.as_ref().is_none_or(|b| b.mod_revision < index), "a key written after its command");
            response.succeeded = true;
            set_prev(&mut response, before.as_ref());
        }
        Op::Delete { key } => {
            let before = state.delete(key)?;
            response.succeeded = true;
            set_prev(&mut response, before.as_ref());
        }
        Op::Cas { key, expect_value, expect_revision, new_value } => {
            let current = state.key(key)?;
            set_prev(&mut response, current.as_ref());
            let value_holds = match expect_value {
                None => true,
                Some(None) => current.is_none(),
                Some(Some(v)) => current.as_ref().is_some_and(|c| &c.value == v),
            };
            let revision_holds = expect_revision.is_none_or(|r| r == response.prev_revision);
            if value_holds && revision_holds {
                response.succeeded = true;
                match new_value {
                    Some(v) => {
                        state.put(key, v, 0, index)?;
                    }
                    None => {
                        state.delete(key)?;
                    }
                }
            }
        }
        Op::Txn(txn) => {
            let mut holds = true;
            for compare in &txn.compares {
                holds &= compare_holds(compare, state.key(&compare.key)?.as_ref());
            }
            let branch = if holds { &txn.success } else { &txn.failure };
            for op in branch {
                if let TxnOp::Put { lease, .. } = op {
                    if !state.lease_is_live(*lease)? {
                        response.error = Some(ApplyError::LeaseNotFound(*lease));
                        return Ok(response);
                    }
                }
            }
            response.succeeded = holds;
            for op in branch {
                let result = match op {
                    TxnOp::Put { key, value, lease } => {
                        TxnOpResult::Put { prev: state.put(key, value, *lease, index)?.map(|v| v.to_key_value(key)) }
                    }
                    TxnOp::Delete { key } => {
                        TxnOpResult::Delete { prev: state.delete(key)?.map(|v| v.to_key_value(key)) }
                    }
                    TxnOp::Get { key } => TxnOpResult::Get { found: state.key(key)?.map(|v| v.to_key_value(key)) },
                };
                response.results.push(result);
            }
        }
        Op::LeaseGrant { ttl_ms } => {
            state.leases.insert(index, Some(LeaseRecord { ttl_ms: *ttl_ms, remaining_ms: 0 }));
            response.succeeded = true;
            response.lease = index;
            response.ttl_ms = *ttl_ms;
        }
        Op::LeaseRevoke { expired: true, term: decided_in, .. } if *decided_in != term => {
            // Decided by a leader of another term: that leader's deadlines may have been extended since.
        }
        Op::LeaseRevoke { id, .. } => {
            let Some(record) = state.lease(*id)? else {
                response.error = Some(ApplyError::LeaseNotFound(*id));
                return Ok(response);
            };
            for key in state.lease_keys(*id)? {
                let prev = state.delete(&key)?;
                debug_assert!(
                    prev.as_ref().is_some_and(|p| p.lease == *id),
                    "the lease index names a key of another lease"
                );
                response.results.push(TxnOpResult::Delete { prev: prev.map(|v| v.to_key_value(&key)) });
            }
            state.leases.insert(*id, None);
            response.succeeded = true;
            response.lease = *id;
            response.ttl_ms = record.ttl_ms;
        }
        Op::LeaseCheckpoint { id, remaining_ms } => {
            if let Some(mut record) = state.lease(*id)? {
                record.remaining_ms = (*remaining_ms).min(record.ttl_ms);
                state.leases.insert(*id, Some(record));
                response.succeeded = true;
                response.lease = *id;
            }
        }
    }
    Ok(response)
}

fn set_prev(response: &mut Response, before: Option<&Versioned>) {
    response.prev_value = before.map(|b| b.value.clone());
    response.prev_revision = before.map_or(0, |b| b.mod_revision);
}

/// Whether `compare` holds for a key whose record is `current` (etcd's rules: an absent key has
/// version, revisions and lease 0, and no value compare on it holds).
pub fn compare_holds(compare: &Compare, current: Option<&Versioned>) -> bool {
    use std::cmp::Ordering;
    let ordering = match (&compare.target, current) {
        (CompareTarget::Value(_), None) => return false,
        (CompareTarget::Value(v), Some(c)) => c.value.as_slice().cmp(v.as_slice()),
        (CompareTarget::Version(n), c) => c.map_or(0, |c| c.version).cmp(n),
        (CompareTarget::CreateRevision(n), c) => c.map_or(0, |c| c.create_revision).cmp(n),
        (CompareTarget::ModRevision(n), c) => c.map_or(0, |c| c.mod_revision).cmp(n),
        (CompareTarget::Lease(n), c) => c.map_or(0, |c| c.lease).cmp(n),
    };
    match compare.op {
        CompareOp::Equal => ordering == Ordering::Equal,
        CompareOp::NotEqual => ordering != Ordering::Equal,
        CompareOp::Less => ordering == Ordering::Less,
        CompareOp::Greater => ordering == Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::types::Txn;

    /// An applied state held in maps: what the overlay reads beneath its own writes.
    #[derive(Default)]
    struct MapState {
        kv: BTreeMap<Vec<u8>, Versioned>,
        leases: BTreeMap<LeaseId, LeaseRecord>,
    }

    impl StateView for MapState {
        type Error = Infallible;
        fn key(&self, key: &[u8]) -> Result<Option<Versioned>, Infallible> {
            Ok(self.kv.get(key).cloned())
        }
        fn lease(&self, id: LeaseId) -> Result<Option<LeaseRecord>, Infallible> {
            Ok(self.leases.get(&id).cloned())
        }
        fn lease_keys(&self, id: LeaseId) -> Result<Vec<Vec<u8>>, Infallible> {
            Ok(self.kv.iter().filter(|(_, v)| v.lease == id).map(|(k, _)| k.clone()).collect())
        }
    }

    impl MapState {
        /// Applies `op` at `index` and folds the overlay's writes back in, as the state machine does.
        fn apply(&mut self, op: &Op, index: u64) -> Response {
            let mut overlay = Overlay::new(&*self);
            let Ok(response) = execute(op, &mut overlay, 1, index);
            let (kv, leases) = (overlay.kv, overlay.leases);
            for (k, v) in kv {
                match v {
                    Some(v) => self.kv.insert(k, v),
                    None => self.kv.remove(&k),
                };
            }
            for (id, l) in leases {
                match l {
                    Some(l) => self.leases.insert(id, l),
                    None => self.leases.remove(&id),
                };
            }
            response
        }

        fn value(&self, key: &str) -> Option<&str> {
            self.kv.get(key.as_bytes()).map(|v| std::str::from_utf8(&v.value).expect("utf8"))
        }
    }

    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    fn put(key: &str, value: &str, lease: LeaseId) -> Op {
        Op::Put { key: b(key), value: b(value), lease }
    }

    fn rec(value: &str, mod_revision: u64) -> Versioned {
        Versioned { value: b(value), create_revision: mod_revision, mod_revision, version: 1, lease: 0 }
    }

    fn cas(expect_value: Option<Option<&str>>, expect_revision: Option<u64>, new_value: Option<&str>) -> Op {
        Op::Cas {
            key: b("k"),
            expect_value: expect_value.map(|e| e.map(b)),
            expect_revision,
            new_value: new_value.map(b),
        }
    }

    fn cmp(key: &str, op: CompareOp, target: CompareTarget) -> Compare {
        Compare { key: b(key), op, target }
    }

    #[test]
    fn cas_table() {
        let present = Some(rec("a", 3));
        // (case, current, op, expected success, expected value afterwards)
        type Case<'a> = (&'a str, Option<Versioned>, Op, bool, Option<&'a str>);
        let table: Vec<Case> = vec![
            ("no expectations always swaps", present.clone(), cas(None, None, Some("b")), true, Some("b")),
            ("value matches", present.clone(), cas(Some(Some("a")), None, Some("b")), true, Some("b")),
            ("value differs", present.clone(), cas(Some(Some("x")), None, Some("b")), false, Some("a")),
            ("value expected but absent", None, cas(Some(Some("a")), None, Some("b")), false, None),
            ("must be absent and is", None, cas(Some(None), None, Some("b")), true, Some("b")),
            ("must be absent but is present", present.clone(), cas(Some(None), None, Some("b")), false, Some("a")),
            ("revision matches", present.clone(), cas(None, Some(3), Some("b")), true, Some("b")),
            ("revision differs", present.clone(), cas(None, Some(4), Some("b")), false, Some("a")),
            ("revision 0 means absent", None, cas(None, Some(0), Some("b")), true, Some("b")),
            ("revision 0 but present", present.clone(), cas(None, Some(0), Some("b")), false, Some("a")),
            ("both hold", present.clone(), cas(Some(Some("a")), Some(3), Some("b")), true, Some("b")),
            ("value holds, revision not", present.clone(), cas(Some(Some("a")), Some(2), Some("b")), false, Some("a")),
            ("revision holds, value not", present.clone(), cas(Some(Some("x")), Some(3), Some("b")), false, Some("a")),
            ("swap to None deletes", present.clone(), cas(Some(Some("a")), None, None), true, None),
            ("delete of absent changes nothing", None, cas(Some(None), None, None), true, None),
        ];
        for (case, current, op, succeeded, after) in table {
            let mut state = MapState::default();
            if let Some(c) = &current {
                state.kv.insert(b("k"), c.clone());
            }
            let resp = state.apply(&op, 10);
            assert_eq!(resp.succeeded, succeeded, "{case}: succeeded");
            assert_eq!(state.value("k"), after, "{case}: value afterwards");
            assert_eq!(resp.revision, 10, "{case}: revision is the applying index");
            assert_eq!(resp.prev_value, current.as_ref().map(|c| c.value.clone()), "{case}: prev_value");
            assert_eq!(resp.prev_revision, current.as_ref().map_or(0, |c| c.mod_revision), "{case}: prev_revision");
        }
    }

    #[test]
    fn put_and_delete_report_the_previous_record_and_keep_etcd_revisions() {
        let mut state = MapState::default();
        assert_eq!(state.apply(&put("k", "old", 0), 4).prev_revision, 0);
        let resp = state.apply(&put("k", "v", 0), 7);
        assert_eq!((resp.succeeded, resp.prev_value.as_deref(), resp.prev_revision), (true, Some(&b"old"[..]), 4));
        let k = &state.kv[&b("k")];
        assert_eq!((k.create_revision, k.mod_revision, k.version), (4, 7, 2), "create stays, mod and version move");

        let del = Op::Delete { key: b("k") };
        let resp = state.apply(&del, 9);
        assert_eq!((resp.prev_value.as_deref(), resp.prev_revision), (Some(&b"v"[..]), 7));
        assert_eq!(state.apply(&del, 10), Response { revision: 10, succeeded: true, ..Response::default() });
        state.apply(&put("k", "again", 0), 12);
        let k = &state.kv[&b("k")];
        assert_eq!((k.create_revision, k.version), (12, 1), "a re-created key starts over");
    }

    #[test]
    fn a_transaction_is_all_or_nothing_and_reads_its_own_branch() {
        let mut state = MapState::default();
        state.apply(&put("a", "1", 0), 2);
        let txn = |expect: &str| {
            Op::Txn(Txn {
                compares: vec![cmp("a", CompareOp::Equal, CompareTarget::Value(b(expect)))],
                success: vec![
                    TxnOp::Put { key: b("a"), value: b("2"), lease: 0 },
                    TxnOp::Put { key: b("b"), value: b("2"), lease: 0 },
                    TxnOp::Get { key: b("b") },
                ],
                failure: vec![TxnOp::Get { key: b("a") }],
            })
        };
        let failed = state.apply(&txn("0"), 5);
        assert!(!failed.succeeded && failed.error.is_none());
        assert!(matches!(&failed.results[..], [TxnOpResult::Get { found: Some(kv) }] if kv.value == b("1")));
        assert_eq!((state.value("a"), state.value("b")), (Some("1"), None), "the failure branch wrote nothing");

        let done = state.apply(&txn("1"), 6);
        assert!(done.succeeded);
        assert_eq!((state.value("a"), state.value("b")), (Some("2"), Some("2")));
        assert_eq!(state.kv[&b("a")].mod_revision, 6);
        assert_eq!(state.kv[&b("b")].mod_revision, 6, "both writes at one revision");
        let read = &done.results[2];
        assert!(matches!(read, TxnOpResult::Get { found: Some(kv) } if kv.value == b("2") && kv.mod_revision == 6));
    }

    #[test]
    fn compares_follow_etcds_rules_for_absent_keys() {
        let present = Versioned { value: b("v"), create_revision: 3, mod_revision: 8, version: 4, lease: 11 };
        // (compare, holds when absent, holds when present)
        let table = [
            (cmp("k", CompareOp::Equal, CompareTarget::CreateRevision(0)), true, false),
            (cmp("k", CompareOp::Equal, CompareTarget::CreateRevision(3)), false, true),
            (cmp("k", CompareOp::Greater, CompareTarget::ModRevision(7)), false, true),
            (cmp("k", CompareOp::Less, CompareTarget::Version(4)), true, false),
            (cmp("k", CompareOp::Equal, CompareTarget::Lease(11)), false, true),
            (cmp("k", CompareOp::Equal, CompareTarget::Value(b("v"))), false, true),
            (cmp("k", CompareOp::NotEqual, CompareTarget::Value(b("v"))), false, false),
            (cmp("k", CompareOp::Less, CompareTarget::Value(b("w"))), false, true),
        ];
        for (c, when_absent, when_present) in table {
            assert_eq!(compare_holds(&c, None), when_absent, "{c} on an absent key");
            assert_eq!(compare_holds(&c, Some(&present)), when_present, "{c} on a present key");
        }
    }

    #[test]
    fn a_revoke_deletes_every_attached_key_at_one_revision() {
        let mut state = MapState::default();
        let grant = state.apply(&Op::LeaseGrant { ttl_ms: 3000 }, 5);
        assert_eq!((grant.lease, grant.ttl_ms), (5, 3000), "the lease id is the grant's index");
        state.apply(&put("leader", "n1", 5), 6);
        state.apply(&put("member", "n1", 5), 7);
        state.apply(&put("other", "x", 0), 8);
        state.apply(&put("member", "detached", 0), 9);

        let revoke = state.apply(&Op::LeaseRevoke { id: 5, expired: true, term: 1 }, 10);
        assert!(revoke.succeeded);
        assert_eq!(revoke.results.len(), 1, "only the key still attached goes");
        assert_eq!(state.value("leader"), None);
        assert_eq!((state.value("member"), state.value("other")), (Some("detached"), Some("x")));
        assert!(state.leases.is_empty());

        let again = state.apply(&Op::LeaseRevoke { id: 5, expired: false, term: 0 }, 11);
        assert_eq!((again.succeeded, again.error), (false, Some(ApplyError::LeaseNotFound(5))));
    }

    #[test]
    fn an_expiry_decided_in_another_term_applies_nothing() {
        let mut state = MapState::default();
        state.apply(&Op::LeaseGrant { ttl_ms: 3000 }, 2);
        state.apply(&put("leader", "n1", 2), 3);
        let mut overlay = Overlay::new(&state);
        let Ok(stale) = execute(&Op::LeaseRevoke { id: 2, expired: true, term: 4 }, &mut overlay, 6, 9);
        assert!(!stale.succeeded && stale.error.is_none());
        assert!(overlay.kv.is_empty() && overlay.leases.is_empty(), "the lease and its key stay");
        let Ok(client) = execute(&Op::LeaseRevoke { id: 2, expired: false, term: 0 }, &mut overlay, 6, 10);
        assert!(client.succeeded, "a client's revoke is not bound to a term");
    }

    #[test]
    fn the_overlay_keeps_the_lease_index_within_one_batch() {
        let state = MapState::default();
        let mut overlay = Overlay::new(&state);
        let Ok(_) = execute(&Op::LeaseGrant { ttl_ms: 3000 }, &mut overlay, 1, 2);
        let Ok(_) = execute(&put("a", "1", 2), &mut overlay, 1, 3);
        let Ok(_) = execute(&put("b", "1", 2), &mut overlay, 1, 4);
        let Ok(_) = execute(&Op::Delete { key: b("b") }, &mut overlay, 1, 5);
        let Ok(revoke) = execute(&Op::LeaseRevoke { id: 2, expired: false, term: 0 }, &mut overlay, 1, 6);
        assert_eq!(revoke.results.len(), 1, "a grant, puts and a delete earlier in the batch are seen");
        assert_eq!(overlay.kv.get(&b("a")), Some(&None));
    }

    #[test]
    fn a_dead_lease_fails_the_whole_command_and_writes_nothing() {
        let mut state = MapState::default();
        let resp = state.apply(&put("k", "v", 42), 3);
        assert_eq!((resp.succeeded, resp.error), (false, Some(ApplyError::LeaseNotFound(42))));
        assert!(state.kv.is_empty());

        let campaign = Op::Txn(Txn {
            compares: vec![cmp("leader", CompareOp::Equal, CompareTarget::CreateRevision(0))],
            success: vec![
                TxnOp::Put { key: b("a"), value: b("1"), lease: 0 },
                TxnOp::Put { key: b("leader"), value: b("n1"), lease: 42 },
            ],
            failure: vec![],
        });
        let resp = state.apply(&campaign, 4);
        assert_eq!(resp.error, Some(ApplyError::LeaseNotFound(42)));
        assert!(state.kv.is_empty(), "not even the put before the leased one");
    }

    #[test]
    fn a_checkpoint_never_exceeds_the_ttl_and_ignores_dead_leases() {
        let mut state = MapState::default();
        state.apply(&Op::LeaseGrant { ttl_ms: 3000 }, 2);
        state.apply(&Op::LeaseCheckpoint { id: 2, remaining_ms: 9999 }, 3);
        assert_eq!(state.leases[&2].remaining_ms, 3000);
        let resp = state.apply(&Op::LeaseCheckpoint { id: 7, remaining_ms: 10 }, 4);
        assert!(!resp.succeeded && resp.error.is_none());
        assert_eq!(state.leases.len(), 1);
    }

    #[test]
    fn sessions_answer_duplicates_and_ignore_client_zero() {
        let earlier = Response { revision: 5, succeeded: true, ..Response::default() };
        let session = Session { last_seq: 3, last_response: earlier.clone() };
        let req = |client_id, seq| Request { client_id, seq, op: Op::Delete { key: b("k") } };
        assert_eq!(check_session(&req(9, 3), Some(&session)), SessionCheck::Duplicate(earlier.clone()));
        assert_eq!(check_session(&req(9, 2), Some(&session)), SessionCheck::Duplicate(earlier));
        assert_eq!(check_session(&req(9, 4), Some(&session)), SessionCheck::Apply);
        assert_eq!(check_session(&req(9, 1), None), SessionCheck::Apply);
        assert_eq!(check_session(&req(NO_SESSION, 1), Some(&session)), SessionCheck::Apply);
    }
}
