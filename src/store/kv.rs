//! What a command does to the key-value state, as pure functions: no sled, no openraft.
//!
//! The state machine reads the current record of a key and the client's session, asks these
//! functions for the response and the write, and persists the write. Keeping the decision here
//! lets the CAS table and the exactly-once rule be tested directly.

use serde::{Deserialize, Serialize};

use crate::types::{Op, Request, Response};

/// A key's current value and the log index of the command that last wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioned {
    pub value: Vec<u8>,
    /// Log index of the last Put, successful Cas or Delete that wrote this key.
    /// Invariant: `mod_revision >= 1`; revision 0 means "absent" in the client API.
    pub mod_revision: u64,
}

/// What applying a command does to its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyWrite {
    /// Leave the key as it is (failed Cas, delete of an absent key).
    Keep,
    Set(Versioned),
    Remove,
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
    Response { revision: index, succeeded: true, prev_value: None, prev_revision: 0 }
}

/// Applies `op` at log index `index` to a key whose current record is `current`.
pub fn execute(op: &Op, current: Option<&Versioned>, index: u64) -> (Response, KeyWrite) {
    debug_assert!(current.is_none_or(|c| c.mod_revision < index), "a key cannot be written after its command");
    let prev_value = current.map(|c| c.value.clone());
    let prev_revision = current.map_or(0, |c| c.mod_revision);
    let set = |value: &Vec<u8>| KeyWrite::Set(Versioned { value: value.clone(), mod_revision: index });
    let (succeeded, write) = match op {
        Op::Put { value, .. } => (true, set(value)),
        Op::Delete { .. } => (true, if current.is_some() { KeyWrite::Remove } else { KeyWrite::Keep }),
        Op::Cas { expect_value, expect_revision, new_value, .. } => {
            let value_holds = match expect_value {
                None => true,
                Some(None) => current.is_none(),
                Some(Some(v)) => current.is_some_and(|c| &c.value == v),
            };
            let revision_holds = expect_revision.is_none_or(|r| r == prev_revision);
            if !(value_holds && revision_holds) {
                (false, KeyWrite::Keep)
            } else {
                match new_value {
                    Some(v) => (true, set(v)),
                    None if current.is_some() => (true, KeyWrite::Remove),
                    None => (true, KeyWrite::Keep),
                }
            }
        }
    };
    (Response { revision: index, succeeded, prev_value, prev_revision }, write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(value: &str, mod_revision: u64) -> Versioned {
        Versioned { value: value.as_bytes().to_vec(), mod_revision }
    }

    fn cas(expect_value: Option<Option<&str>>, expect_revision: Option<u64>, new_value: Option<&str>) -> Op {
        Op::Cas {
            key: b"k".to_vec(),
            expect_value: expect_value.map(|e| e.map(|v| v.as_bytes().to_vec())),
            expect_revision,
            new_value: new_value.map(|v| v.as_bytes().to_vec()),
        }
    }

    #[test]
    fn cas_table() {
        let present = Some(rec("a", 3));
        // (case, current, op, expected success, expected write)
        let set_b = KeyWrite::Set(rec("b", 10));
        let table: Vec<(&str, Option<Versioned>, Op, bool, KeyWrite)> = vec![
            ("no expectations always swaps", present.clone(), cas(None, None, Some("b")), true, set_b.clone()),
            ("value matches", present.clone(), cas(Some(Some("a")), None, Some("b")), true, set_b.clone()),
            ("value differs", present.clone(), cas(Some(Some("x")), None, Some("b")), false, KeyWrite::Keep),
            ("value expected but absent", None, cas(Some(Some("a")), None, Some("b")), false, KeyWrite::Keep),
            ("must be absent and is", None, cas(Some(None), None, Some("b")), true, set_b.clone()),
            ("must be absent but is present", present.clone(), cas(Some(None), None, Some("b")), false, KeyWrite::Keep),
            ("revision matches", present.clone(), cas(None, Some(3), Some("b")), true, set_b.clone()),
            ("revision differs", present.clone(), cas(None, Some(4), Some("b")), false, KeyWrite::Keep),
            ("revision 0 means absent", None, cas(None, Some(0), Some("b")), true, set_b.clone()),
            ("revision 0 but present", present.clone(), cas(None, Some(0), Some("b")), false, KeyWrite::Keep),
            ("both hold", present.clone(), cas(Some(Some("a")), Some(3), Some("b")), true, set_b.clone()),
            (
                "value holds, revision not",
                present.clone(),
                cas(Some(Some("a")), Some(2), Some("b")),
                false,
                KeyWrite::Keep,
            ),
            (
                "revision holds, value not",
                present.clone(),
                cas(Some(Some("x")), Some(3), Some("b")),
                false,
                KeyWrite::Keep,
            ),
            ("swap to None deletes", present.clone(), cas(Some(Some("a")), None, None), true, KeyWrite::Remove),
            ("delete of absent changes nothing", None, cas(Some(None), None, None), true, KeyWrite::Keep),
        ];
        for (case, current, op, succeeded, write) in table {
            let (resp, got) = execute(&op, current.as_ref(), 10);
            assert_eq!(resp.succeeded, succeeded, "{case}: succeeded");
            assert_eq!(got, write, "{case}: write");
            assert_eq!(resp.revision, 10, "{case}: revision is the applying index");
            assert_eq!(resp.prev_value, current.as_ref().map(|c| c.value.clone()), "{case}: prev_value");
            assert_eq!(resp.prev_revision, current.as_ref().map_or(0, |c| c.mod_revision), "{case}: prev_revision");
        }
    }

    #[test]
    fn put_and_delete_report_the_previous_record() {
        let put = Op::Put { key: b"k".to_vec(), value: b"v".to_vec() };
        let (resp, write) = execute(&put, Some(&rec("old", 4)), 7);
        assert_eq!(
            resp,
            Response { revision: 7, succeeded: true, prev_value: Some(b"old".to_vec()), prev_revision: 4 }
        );
        assert_eq!(write, KeyWrite::Set(rec("v", 7)));

        let del = Op::Delete { key: b"k".to_vec() };
        assert_eq!(execute(&del, None, 8), (noop_response(8), KeyWrite::Keep));
        let (resp, write) = execute(&del, Some(&rec("v", 7)), 9);
        assert_eq!(resp.prev_value.as_deref(), Some(&b"v"[..]));
        assert_eq!((resp.revision, resp.prev_revision, write), (9, 7, KeyWrite::Remove));
    }

    #[test]
    fn sessions_answer_duplicates_and_ignore_client_zero() {
        let earlier = Response { revision: 5, succeeded: true, prev_value: None, prev_revision: 0 };
        let session = Session { last_seq: 3, last_response: earlier.clone() };
        let req = |client_id, seq| Request { client_id, seq, op: Op::Delete { key: b"k".to_vec() } };
        assert_eq!(check_session(&req(9, 3), Some(&session)), SessionCheck::Duplicate(earlier.clone()));
        assert_eq!(check_session(&req(9, 2), Some(&session)), SessionCheck::Duplicate(earlier));
        assert_eq!(check_session(&req(9, 4), Some(&session)), SessionCheck::Apply);
        assert_eq!(check_session(&req(9, 1), None), SessionCheck::Apply);
        assert_eq!(check_session(&req(NO_SESSION, 1), Some(&session)), SessionCheck::Apply);
    }
}
