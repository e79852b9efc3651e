//! Durability of acknowledged writes (Raft paper §5.4 and §8: a leader answers a client only
//! once the entry is committed, and a committed entry is never lost): every write a client saw
//! acknowledged survives crashes, power losses and leader changes.
//!
//! A write acknowledged at revision `r` (the log index of its entry) was applied at `r` as
//! `(client_id, seq)`; so every node that ever applies index `r`, before or after the
//! acknowledgement, after any restart, must apply that `(client_id, seq)` there. An
//! acknowledged entry that no node ever applies again is not caught here: the run reads every
//! acknowledged key back once the cluster has healed.

use std::collections::{BTreeMap, BTreeSet};

use super::state_machine_safety::AppliedEntry;
use crate::types::{LogId, NodeId};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurabilityViolation {
    #[error(
        "durability violated: client {client_id} seq {seq} was acknowledged at revision {revision}, but node {node} \
         applied {log_id} there with client/seq {found:?}"
    )]
    AcknowledgedWriteReplaced {
        revision: u64,
        client_id: u64,
        seq: u64,
        node: NodeId,
        log_id: LogId,
        found: Vec<(u64, u64)>,
    },
}

/// What durability remembers: revision → the acknowledged `(client_id, seq)`s (several when the leader batched
/// several clients' writes into the entry at that index).
#[derive(Clone, Debug, Default)]
pub struct Durability {
    pub acknowledged: BTreeMap<u64, BTreeSet<(u64, u64)>>,
}

impl Durability {
    /// A client got an ok for `(client_id, seq)` at `revision`; `applied` is what was first
    /// applied at each index (see [`super::state_machine_safety`]).
    pub fn on_acknowledged(
        &mut self,
        revision: u64,
        client_id: u64,
        seq: u64,
        applied: &BTreeMap<u64, AppliedEntry>,
    ) -> Result<(), DurabilityViolation> {
        self.acknowledged.entry(revision).or_default().insert((client_id, seq));
        match applied.get(&revision) {
            Some(entry) => check(revision, (client_id, seq), entry),
            None => Ok(()),
        }
    }

    /// A node applied `entry`.
    pub fn on_applied(&self, entry: &AppliedEntry) -> Result<(), DurabilityViolation> {
        for &acked in self.acknowledged.get(&entry.log_id.index).into_iter().flatten() {
            check(entry.log_id.index, acked, entry)?;
        }
        Ok(())
    }
}

fn check(revision: u64, (client_id, seq): (u64, u64), entry: &AppliedEntry) -> Result<(), DurabilityViolation> {
    if entry.requests.contains(&(client_id, seq)) {
        return Ok(());
    }
    Err(DurabilityViolation::AcknowledgedWriteReplaced {
        revision,
        client_id,
        seq,
        node: entry.node,
        log_id: entry.log_id,
        found: entry.requests.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
    }

    fn entry(node: NodeId, index: u64, request: (u64, u64)) -> AppliedEntry {
        AppliedEntry { log_id: id(1, index), digest: 0, requests: vec![request], node }
    }

    #[test]
    fn acknowledged_writes_applied_where_they_were_acknowledged_pass() {
        let mut d = Durability::default();
        let applied: BTreeMap<_, _> = [(5, entry(1, 5, (7, 1)))].into();
        d.on_acknowledged(5, 7, 1, &applied).unwrap();
        d.on_applied(&entry(2, 5, (7, 1))).unwrap();
        d.on_applied(&entry(2, 6, (8, 1))).unwrap();
    }

    /// Negative control: after the acknowledged write is lost, a node applies another at its
    /// revision (and an acknowledgement arriving after a different apply is caught too).
    #[test]
    fn an_acknowledged_write_replaced_at_its_revision_is_caught() {
        let mut d = Durability::default();
        d.on_acknowledged(5, 7, 1, &BTreeMap::new()).unwrap();
        let err = d.on_applied(&entry(3, 5, (9, 4))).unwrap_err();
        assert_eq!(
            err,
            DurabilityViolation::AcknowledgedWriteReplaced {
                revision: 5,
                client_id: 7,
                seq: 1,
                node: 3,
                log_id: id(1, 5),
                found: vec![(9, 4)],
            }
        );
        assert!(err.to_string().starts_with("durability violated: client 7 seq 1"));

        let applied: BTreeMap<_, _> = [(6, entry(1, 6, (9, 5)))].into();
        assert!(d.on_acknowledged(6, 7, 2, &applied).is_err());
    }

    /// A leader's batch acknowledges several writes at one revision: each must be in what any node applies there.
    /// Negative control: a node that applies the batch without one of them is caught.
    #[test]
    fn every_write_of_a_batch_is_checked_at_its_revision() {
        let mut d = Durability::default();
        let batch = |node, requests: Vec<(u64, u64)>| AppliedEntry { log_id: id(1, 5), digest: 0, requests, node };
        let applied: BTreeMap<_, _> = [(5, batch(1, vec![(7, 1), (8, 3)]))].into();
        d.on_acknowledged(5, 7, 1, &applied).unwrap();
        d.on_acknowledged(5, 8, 3, &applied).unwrap();
        d.on_applied(&batch(2, vec![(7, 1), (8, 3)])).unwrap();
        let err = d.on_applied(&batch(3, vec![(7, 1)])).unwrap_err();
        assert!(err.to_string().starts_with("durability violated: client 8 seq 3"), "{err}");
    }
}
