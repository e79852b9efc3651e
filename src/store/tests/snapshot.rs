//! The snapshot payload written straight from stored records is byte for byte what bincode makes of the payload.

use openraft::storage::RaftStateMachine;

use super::{log_id, membership_entry, put, request_entry};
use crate::store::codec::{decode, encode};
use crate::store::kv::{Session, Versioned};
use crate::store::snapshot::SnapshotPayload;
use crate::store::{open_db, sim_db, Durability};
use crate::types::{Op, Response};

#[tokio::test]
async fn a_captured_payload_is_the_bincode_of_the_state_it_holds() {
    let mut sm = open_db(sim_db().expect("sim db"), Durability::ProcessCrash).expect("open").1;
    sm.apply([
        membership_entry(1, &[1, 2, 3]),
        request_entry(2, 7, 1, put("b", "2")),
        request_entry(3, u64::MAX - 1, 1, put("a", "1")),
        request_entry(4, 7, 2, put("a-longer-key-than-an-inline-ivec-holds", &"v".repeat(100))),
        request_entry(5, 9, 1, Op::Delete { key: b"b".to_vec() }),
        request_entry(6, 11, 1, Op::LeaseGrant { ttl_ms: 3000 }),
        request_entry(7, 11, 2, Op::LeaseGrant { ttl_ms: 4000 }),
        request_entry(8, 11, 3, Op::Put { key: b"held".to_vec(), value: b"h".to_vec(), lease: 7 }),
    ])
    .await
    .expect("apply");
    let captured = sm.capture().expect("capture");
    assert_eq!(captured.applied, Some(log_id(1, 8)));
    let payload: SnapshotPayload = decode(&captured.bytes).expect("the bytes decode as a payload");
    let rec = |value: &str, revision| Versioned {
        value: value.as_bytes().to_vec(),
        create_revision: revision,
        mod_revision: revision,
        version: 1,
        lease: 0,
    };
    let keys: Vec<(Vec<u8>, Versioned)> = vec![
        (b"a".to_vec(), rec("1", 3)),
        (b"a-longer-key-than-an-inline-ivec-holds".to_vec(), rec(&"v".repeat(100), 4)),
        (b"held".to_vec(), Versioned { lease: 7, ..rec("h", 8) }),
    ];
    assert_eq!(payload.kv, keys);
    let clients: Vec<u64> = payload.sessions.iter().map(|(id, _)| *id).collect();
    assert_eq!(clients, vec![7, 9, 11, u64::MAX - 1], "sessions in client id order");
    let leases: Vec<(u64, u64)> = payload.leases.iter().map(|(id, l)| (*id, l.ttl_ms)).collect();
    assert_eq!(leases, vec![(6, 3000), (7, 4000)], "leases in id order");
    let deleted = Response {
        revision: 5,
        succeeded: true,
        prev_value: Some(b"2".to_vec()),
        prev_revision: 2,
        ..Response::default()
    };
    assert_eq!(payload.sessions[1].1, Session { last_seq: 1, last_response: deleted });
    assert_eq!(payload.applied, Some(log_id(1, 8)));
    assert_eq!(encode(&payload).expect("encode"), captured.bytes, "byte for byte what bincode writes");
}

#[tokio::test]
async fn an_empty_state_captures_as_an_empty_payload() {
    let sm = open_db(sim_db().expect("sim db"), Durability::ProcessCrash).expect("open").1;
    let captured = sm.capture().expect("capture");
    let payload: SnapshotPayload = decode(&captured.bytes).expect("decodes");
    assert!(payload.kv.is_empty() && payload.sessions.is_empty() && payload.leases.is_empty());
    assert!(payload.applied.is_none());
    assert_eq!(encode(&payload).expect("encode"), captured.bytes);
}
