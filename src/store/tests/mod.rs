//! Store tests: openraft's storage suite in both durability modes, then quorumlab's own
//! guarantees (reopen, exactly-once, KV semantics, snapshots, refusal of foreign directories).

mod durability;
mod leader_flush;
mod log_io;
mod log_reads;
mod open;
mod redo;
mod sim_disk;
mod snapshot;
mod state_machine;
mod suite;

use std::collections::BTreeSet;

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload, Membership};

use super::StateMachineStore;
use crate::types::{Entry, LogId, Op, Request, Response};

fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn request_entry(index: u64, client_id: u64, seq: u64, op: Op) -> Entry {
    Entry { log_id: log_id(1, index), payload: EntryPayload::Normal(Request { client_id, seq, op }) }
}

fn blank_entry(index: u64) -> Entry {
    Entry { log_id: log_id(1, index), payload: EntryPayload::Blank }
}

fn membership_entry(index: u64, voters: &[u64]) -> Entry {
    let voters: BTreeSet<u64> = voters.iter().copied().collect();
    Entry { log_id: log_id(1, index), payload: EntryPayload::Membership(Membership::new(vec![voters], None)) }
}

fn put(key: &str, value: &str) -> Op {
    Op::Put { key: key.as_bytes().to_vec(), value: value.as_bytes().to_vec(), lease: 0 }
}

fn get(sm: &StateMachineStore, key: &str) -> Option<(String, u64)> {
    let found = sm.reader().get(key.as_bytes()).expect("read");
    found.map(|(v, rev)| (String::from_utf8(v).expect("utf8 value"), rev))
}

/// Applies one entry and returns its single response.
async fn apply_one(sm: &mut StateMachineStore, entry: Entry) -> Response {
    let mut responses = sm.apply([entry]).await.expect("apply");
    assert_eq!(responses.len(), 1, "one response per entry");
    responses.remove(0)
}
