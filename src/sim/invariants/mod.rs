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
pub mod campaign;
pub mod durability;
pub mod election_safety;
pub mod leader_completeness;
pub mod lease_expiry;
pub mod lease_takeover;
pub mod linearizable;
pub mod log_matching;
pub mod state_machine_safety;

use std::collections::BTreeMap;

use campaign::{CampaignViolation, Campaigns};
use durability::DurabilityViolation;
use election_safety::{ElectionSafetyViolation, LeadersByTerm};
use leader_completeness::LeaderCompletenessViolation;
use lease_expiry::{LeaseExpiry, LeaseExpiryViolation};
use lease_takeover::{LeaseTakeover, LeaseTakeoverViolation};
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
    #[error(transparent)]
    LeaseExpiry(#[from] LeaseExpiryViolation),
    #[error(transparent)]
    LeaseTakeover(#[from] LeaseTakeoverViolation),
    #[error(transparent)]
    Campaign(#[from] CampaignViolation),
}

/// Every safety property, checked incrementally over the observations of a run.
#[derive(Debug, Default)]
pub struct Invariants {
    /// Each node's storage as its events describe it.
    nodes: BTreeMap<NodeId, NodeLog>,
    leaders: LeadersByTerm,
    log_matching: LogMatching,
    state_machine: StateMachineSafety,
    durability: durability::Durability,
    lease_expiry: LeaseExpiry,
    lease_takeover: LeaseTakeover,
    campaigns: Campaigns,
    /// Every election, in the order observed: (term, the node elected, simulated time).
    elections: Vec<(u64, NodeId, std::time::Duration)>,
    /// Every candidacy, in the order observed: (term, the candidate), from the candidate's vote for itself.
    candidacies: Vec<(u64, NodeId)>,
    /// The first violation found; checking stops there.
    violation: Option<Violation>,
    /// Observations checked so far.
    checked: u64,
    /// Applications (on any node) of entries that carried more than one client command: a leader's batches.
    batched: u64,
    /// The buffer the queue is drained into, kept to reuse its allocation.
    batch: Vec<Observed>,
}

impl Invariants {
    /// Invariants for a cluster whose maximum election timeout is `election_max` (what a new
    /// leader adds to every lease it takes over).
    pub fn new(election_max: std::time::Duration) -> Self {
        let mut invariants = Invariants::default();
        invariants.lease_takeover.extension = election_max;
        invariants
    }

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

    /// How many applications of a leader's batch (an entry of several client commands) were checked, on any node.
    pub fn batched(&self) -> u64 {
        self.batched
    }

    /// Every (term, leader) seen in a committed vote.
    pub fn leaders(&self) -> &LeadersByTerm {
        &self.leaders
    }

    /// Every election observed so far, in order: (term, the node elected, the simulated time it saved its own
    /// committed vote, i.e. learned that a majority voted for it). openraft 0.9 may elect several nodes in one term,
    /// each with a higher node id than the last (see [`election_safety`]).
    pub fn elections(&self) -> &[(u64, NodeId, std::time::Duration)] {
        &self.elections
    }

    /// Every candidacy observed so far, in order: (term, the candidate), seen when a node saved an uncommitted
    /// vote for itself (it became a candidate).
    pub fn candidacies(&self) -> &[(u64, NodeId)] {
        &self.candidacies
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
            Observed::LeaseEnded { node, lease, log_id, expired, ttl, at } => {
                self.campaigns.on_lease_ended(lease, log_id.index)?;
                if expired {
                    // A take-over violation explains an early expiry better than the promise it broke.
                    self.lease_takeover.on_expired(lease, ttl, log_id.leader_id.term, at)?;
                    self.lease_expiry.on_expired(lease, node, log_id.index, at)?;
                }
                Ok(())
            }
            Observed::Elected { term, node, at } => {
                self.elections.push((term, node, at));
                self.lease_takeover.on_elected(term, at);
                Ok(())
            }
            Observed::LeaseAnswered { lease, sent_at, ttl } => {
                Ok(self.lease_expiry.on_answered(lease, sent_at, ttl)?)
            }
            Observed::Won { key, holder, revision, lease } => {
                Ok(self.campaigns.on_won(&key, &holder, revision, lease)?)
            }
        }
    }

    fn store_change(&mut self, node: NodeId, change: StoreChange) -> Result<(), Violation> {
        let log = self.nodes.entry(node).or_default();
        match change {
            StoreChange::Opened { vote, committed, last_purged, applied, log: entries } => {
                self.state_machine.on_reopened(node, log, committed, applied)?;
                let vote = vote.map(|v| (v.leader_id.term, v.leader_id.node_id, v.committed));
                if !log.wiped {
                    // What a restart must keep: every saved vote after a crash, the flushed one after a power loss.
                    let floor = if log.lost_power { log.durable_vote } else { log.vote };
                    election_safety::check_vote_kept(node, floor, vote)?;
                }
                *log = NodeLog::opened(vote, committed, last_purged, applied, &entries, log.commit_checked);
                // While it was down after a power loss nobody was compared with it: what it
                // came back with must agree with what the others hold now.
                self.log_matching.on_append(node, &self.nodes, &entries)?;
            }
            StoreChange::VoteSaved { term, voted_for, committed } => {
                election_safety::check_vote_moves_forward(node, log.vote, (term, voted_for, committed))?;
                log.vote = Some((term, voted_for, committed));
                if voted_for == node && !committed {
                    self.candidacies.push((term, node));
                }
                if committed {
                    self.leaders.observe(term, voted_for);
                    if voted_for == node {
                        leader_completeness::check_new_leader(node, term, log, &self.log_matching.committed)?;
                    }
                }
            }
            StoreChange::Appended { entries } => {
                let mut term = None;
                for (id, _) in &entries {
                    if term != Some(id.leader_id.term) {
                        term = Some(id.leader_id.term);
                        self.lease_takeover.on_appended(id.leader_id.term, id.index);
                    }
                }
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
            StoreChange::Applied { log_id, requests, digest } => {
                self.batched += u64::from(requests.len() > 1);
                let entry = AppliedEntry { log_id, digest, requests, node };
                self.state_machine.on_applied(log, entry.clone())?;
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
            // Checked from `Observed::LeaseEnded`, which the queue records beside it with its time.
            StoreChange::LeaseEnded { .. } => {}
            StoreChange::LeaseCheckpointed { id } => self.lease_takeover.on_checkpointed(id),
            StoreChange::Flushed => {
                log.durable_vote = log.vote;
                log.durable_committed = log.committed;
                log.durable_applied = log.applied;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::LogId;

    fn id(term: u64, index: u64) -> LogId {
        LogId::new(openraft::CommittedLeaderId::new(term, 1), index)
    }

    fn ev(node: NodeId, change: StoreChange) -> Observed {
        Observed::Store(StoreEvent { node, change })
    }

    fn opened(node: NodeId, committed: Option<LogId>, applied: Option<LogId>, log: &[(LogId, u64)]) -> Observed {
        ev(node, StoreChange::Opened { vote: None, committed, last_purged: None, applied, log: log.to_vec() })
    }

    fn run(events: Vec<Observed>) -> Result<Invariants, Violation> {
        let queue = EventQueue::default();
        for e in events {
            queue.push(e);
        }
        let mut inv = Invariants::default();
        inv.check(&queue)?;
        Ok(inv)
    }

    /// One node's healthy life: elected, appends, commits, applies, flushes, loses power after
    /// the flush and comes back with what was flushed.
    fn healthy() -> Vec<Observed> {
        vec![
            opened(1, None, None, &[]),
            ev(1, StoreChange::VoteSaved { term: 1, voted_for: 1, committed: true }),
            ev(1, StoreChange::Appended { entries: vec![(id(1, 0), 0), (id(1, 1), 11)] }),
            ev(1, StoreChange::Flushed),
            ev(1, StoreChange::CommittedSaved { committed: Some(id(1, 1)) }),
            ev(1, StoreChange::Applied { log_id: id(1, 0), requests: vec![], digest: 0 }),
            ev(1, StoreChange::Applied { log_id: id(1, 1), requests: vec![(7, 1)], digest: 11 }),
            Observed::Acknowledged { revision: 1, client_id: 7, seq: 1 },
            ev(1, StoreChange::Flushed),
            Observed::PowerLoss { node: 1 },
            reopened(1, Some(id(1, 1)), Some(id(1, 1)), &[(id(1, 0), 0), (id(1, 1), 11)]),
        ]
    }

    /// Node 1 reopening with the vote it flushed in [`healthy`].
    fn reopened(node: NodeId, committed: Option<LogId>, applied: Option<LogId>, log: &[(LogId, u64)]) -> Observed {
        let vote = Some(crate::types::Vote::new_committed(1, 1));
        ev(node, StoreChange::Opened { vote, committed, last_purged: None, applied, log: log.to_vec() })
    }

    /// Negative control: a node that restarts without the vote it flushed.
    #[test]
    fn reopening_without_the_flushed_vote_is_caught() {
        let mut events = healthy();
        events.pop();
        events.push(opened(1, Some(id(1, 1)), Some(id(1, 1)), &[(id(1, 0), 0), (id(1, 1), 11)]));
        let err = run(events).unwrap_err();
        assert!(matches!(err, Violation::ElectionSafety(_)) && err.to_string().contains("forgot its vote"), "{err}");
    }

    #[test]
    fn a_healthy_history_passes_and_is_counted() {
        let inv = run(healthy()).unwrap();
        assert_eq!(inv.checked(), 11);
        assert_eq!(inv.leaders().0.get(&1), Some(&[1].into()));
        assert_eq!(inv.node(1).map(|n| n.applied), Some(Some(id(1, 1))));
    }

    /// Negative control: a power loss that takes the node below what it had flushed.
    #[test]
    fn reopening_below_the_last_flush_is_caught() {
        let mut events = healthy();
        events.pop();
        events.push(reopened(1, Some(id(1, 1)), Some(id(1, 0)), &[(id(1, 0), 0), (id(1, 1), 11)]));
        let err = run(events).unwrap_err();
        assert!(matches!(err, Violation::StateMachineSafety(_)), "{err}");
        assert!(err.to_string().contains("before losing power"), "{err}");
    }

    /// Negative control: a client told its write landed at a revision where another write was
    /// applied.
    #[test]
    fn an_acknowledgement_at_someone_elses_revision_is_caught() {
        let mut events = healthy();
        events.push(Observed::Acknowledged { revision: 1, client_id: 8, seq: 1 });
        let err = run(events).unwrap_err();
        assert!(matches!(err, Violation::Durability(_)), "{err}");
    }

    /// Negative control: another node commits a different entry at a committed index.
    #[test]
    fn a_different_entry_committed_at_a_committed_index_is_caught() {
        let mut events = healthy();
        events.extend([
            opened(2, None, None, &[]),
            ev(2, StoreChange::Appended { entries: vec![(id(1, 0), 0), (id(2, 1), 22)] }),
            ev(2, StoreChange::CommittedSaved { committed: Some(id(2, 1)) }),
        ]);
        let err = run(events).unwrap_err();
        assert!(matches!(err, Violation::LogMatching(_)), "{err}");
    }

    /// Negative control: a node back from a power loss holding, under a log id another node
    /// holds, another command (its leader gave the index away while it was down).
    #[test]
    fn a_node_coming_back_with_a_conflicting_entry_is_caught() {
        let err = run(vec![
            opened(1, None, None, &[(id(1, 0), 0), (id(1, 1), 11)]),
            opened(2, None, None, &[(id(1, 0), 0), (id(1, 1), 11)]),
            Observed::PowerLoss { node: 2 },
            ev(1, StoreChange::Truncated { since: 1 }),
            ev(1, StoreChange::Appended { entries: vec![(id(1, 1), 99)] }),
            opened(2, None, None, &[(id(1, 0), 0), (id(1, 1), 11)]),
        ])
        .unwrap_err();
        assert!(matches!(err, Violation::LogMatching(_)), "{err}");
    }

    /// A wiped node may come back empty; once a violation is found, it sticks.
    #[test]
    fn a_wiped_node_may_come_back_empty_and_violations_stick() {
        let mut events = healthy();
        events.extend([Observed::Wiped { node: 1 }, opened(1, None, None, &[])]);
        run(events).unwrap();

        let queue = EventQueue::default();
        let mut inv = Invariants::default();
        queue.push(ev(1, StoreChange::VoteSaved { term: 3, voted_for: 2, committed: true }));
        queue.push(ev(1, StoreChange::VoteSaved { term: 3, voted_for: 1, committed: true }));
        let first = inv.check(&queue).unwrap_err();
        assert!(matches!(first, Violation::ElectionSafety(_)));
        assert_eq!(inv.check(&queue), Err(first.clone()));
        assert_eq!(inv.violation(), Some(&first));
    }
}
