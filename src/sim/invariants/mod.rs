//! Safety properties checked over what a simulation observed, one file per property, each
//! citing the Raft paper section it defends, each with its violation type.
//!
//! [`Invariants`] feeds every observation (see [`super::observe`]) to the properties, in the
//! order it happened, incrementally: each event is looked at once and touches only the state of
//! its node and the indexes it names, so checking after every simulation step costs about as
//! much as the events of that step. The first violation is kept and reported from then on.
//!
//! Caller's duties:
//! 1. Call [`Invariants::check`] after every simulation step (`SimCluster::step` does), so a
//!    violation is reported at the step that made it.
//! 2. Report acknowledged writes and power losses through the [`EventQueue`], not directly, so
//!    they are checked in order with the store events around them.

pub mod availability;
pub mod durability;
pub mod election_safety;
pub mod leader_completeness;
pub mod linearizable;
pub mod log_matching;
pub mod state_machine_safety;

use std::collections::BTreeMap;

use durability::DurabilityViolation;
use election_safety::{ElectionSafetyViolation, LeadersByTerm};
use leader_completeness::LeaderCompletenessViolation;
use log_matching::{LogMatching, LogMatchingViolation};
use state_machine_safety::{AppliedEntry, StateMachineSafety, StateMachineSafetyViolation};

use super::observe::{EventQueue, NodeLog, Observed};
use crate::store::{StoreChange, StoreEvent};
use crate::types::NodeId;

/// A violated safety property, naming it, the nodes and the term or index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error(transparent)]
    ElectionSafety(#[from] ElectionSafetyViolation),
    #[error(transparent)]
    LogMatching(#[from] LogMatchingViolation),
    #[error(transparent)]
    LeaderCompleteness(#[from] LeaderCompletenessViolation),
    #[error(transparent)]
    StateMachineSafety(#[from] StateMachineSafetyViolation),
    #[error(transparent)]
    Durability(#[from] DurabilityViolation),
}

/// Every safety property, checked incrementally over the observations of a run.
#[derive(Default)]
pub struct Invariants {
    /// Each node's storage as its events describe it.
    nodes: BTreeMap<NodeId, NodeLog>,
    leaders: LeadersByTerm,
    log_matching: LogMatching,
    state_machine: StateMachineSafety,
    durability: durability::Durability,
    /// The first violation found; checking stops there.
    violation: Option<Violation>,
    /// Observations checked so far.
    checked: u64,
    /// The buffer the queue is drained into, kept to reuse its allocation.
    batch: Vec<Observed>,
}

impl Invariants {
    /// Checks every observation queued since the last call. Once a violation is found it is
    /// returned by every later call.
    pub fn check(&mut self, queue: &EventQueue) -> Result<(), Violation> {
        if let Some(v) = &self.violation {
            return Err(v.clone());
        }
        let mut batch = std::mem::take(&mut self.batch);
        queue.drain_into(&mut batch);
        let mut result = Ok(());
        for observed in batch.drain(..) {
            if result.is_ok() {
                result = self.observe(observed);
            }
        }
        self.batch = batch;
        if let Err(v) = &result {
            self.violation = Some(v.clone());
        }
        result
    }

    /// The first violation found, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    /// Observations checked so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Every (term, leader) seen in a committed vote.
    pub fn leaders(&self) -> &LeadersByTerm {
        &self.leaders
    }

    /// What node `id`'s storage holds, as its events describe it.
    pub fn node(&self, id: NodeId) -> Option<&NodeLog> {
        self.nodes.get(&id)
    }

    /// Checks one observation and updates the state it changes.
    pub fn observe(&mut self, observed: Observed) -> Result<(), Violation> {
        self.checked += 1;
        match observed {
            Observed::Store(StoreEvent { node, change }) => self.store_change(node, change),
            Observed::Acknowledged { revision, client_id, seq } => {
                Ok(self.durability.on_acknowledged(revision, client_id, seq, &self.state_machine.applied)?)
            }
            Observed::PowerLoss { node } => {
                self.nodes.entry(node).or_default().lost_power = true;
                Ok(())
            }
            Observed::Wiped { node } => {
                self.nodes.entry(node).or_default().wiped = true;
                Ok(())
            }
        }
    }

    fn store_change(&mut self, node: NodeId, change: StoreChange) -> Result<(), Violation> {
        let log = self.nodes.entry(node).or_default();
        match change {
            StoreChange::Opened { vote, committed, last_purged, applied, log: entries } => {
                self.state_machine.on_reopened(node, log, committed, applied)?;
                let vote = vote.map(|v| (v.leader_id.term, v.leader_id.node_id, v.committed));
                *log = NodeLog::opened(vote, committed, last_purged, applied, &entries, log.commit_checked);
            }
            StoreChange::VoteSaved { term, voted_for, committed } => {
                log.vote = Some((term, voted_for, committed));
                if committed {
                    self.leaders.observe_and_check(term, voted_for)?;
                    if voted_for == node {
                        leader_completeness::check_new_leader(node, term, log, &self.log_matching.committed)?;
                    }
                }
            }
            StoreChange::Appended { entries } => {
                self.log_matching.on_append(node, &self.nodes, &entries)?;
                self.nodes.entry(node).or_default().append(&entries);
            }
            StoreChange::Truncated { since } => {
                self.log_matching.on_truncate(node, log, since)?;
                log.truncate(since);
            }
            StoreChange::Purged { upto } => log.purge(upto),
            StoreChange::CommittedSaved { committed } => {
                self.state_machine.on_committed(node, log, committed)?;
                self.log_matching.on_commit(node, log, committed)?;
                log.committed = committed;
            }
            StoreChange::Applied { log_id, request, digest } => {
                let entry = AppliedEntry { log_id, digest, request, node };
                self.state_machine.on_applied(log, entry)?;
                self.durability.on_applied(&entry)?;
                log.applied = Some(log_id);
            }
            StoreChange::SnapshotInstalled { last } => {
                self.state_machine.on_snapshot_installed(node, log, last)?;
                log.applied = last;
                log.committed = log.committed.max(last);
                // Entries the snapshot covers are as good as purged: openraft purges them next.
                if let Some(last) = last {
                    log.purge(last);
                }
            }
            StoreChange::Flushed => {
                log.durable_committed = log.committed;
                log.durable_applied = log.applied;
            }
        }
        Ok(())
    }
}
