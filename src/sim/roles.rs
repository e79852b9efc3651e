//! Every node's role over time, as its metrics showed it: the lanes of a timeline picture, and the moments
//! leaders were elected. Recorded by each host's metrics watcher (a change of role or term) and by the driver
//! (a crash or power loss: the node is down until its host restarts).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::ServerState;
use serde::Serialize;

use crate::types::NodeId;

/// What one node was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Candidate,
    Follower,
    Learner,
    /// Crashed, powered off, or not started yet.
    Down,
}

impl Role {
    pub fn of(state: ServerState) -> Role {
        match state {
            ServerState::Leader => Role::Leader,
            ServerState::Candidate => Role::Candidate,
            ServerState::Follower => Role::Follower,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Down,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Candidate => "candidate",
            Role::Follower => "follower",
            Role::Learner => "learner",
            Role::Down => "down",
        }
    }
}

/// From `at` on, `node` was `role` in `term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RoleChange {
    #[serde(rename = "at_ms", serialize_with = "ser_ms")]
    pub at: Duration,
    pub node: NodeId,
    pub role: Role,
    pub term: u64,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// The shared, append-only list of role changes, in simulated-time order.
#[derive(Clone, Default)]
pub struct RoleLog {
    changes: Arc<Mutex<Vec<RoleChange>>>,
}

impl RoleLog {
    /// Records `node`'s role from `at`, unless it already had that role and term.
    pub fn record(&self, at: Duration, node: NodeId, role: Role, term: u64) {
        let mut changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        let last = changes.iter().rev().find(|c| c.node == node);
        if last.is_some_and(|l| l.role == role && l.term == term) {
            return;
        }
        changes.push(RoleChange { at, node, role, term });
    }

    /// A node went down: it keeps its last term.
    pub fn down(&self, at: Duration, node: NodeId) {
        let term = self.term_of(node);
        self.record(at, node, Role::Down, term);
    }

    fn term_of(&self, node: NodeId) -> u64 {
        let changes = self.changes.lock().unwrap_or_else(|p| p.into_inner());
        changes.iter().rev().find(|c| c.node == node).map_or(0, |c| c.term)
    }

    pub fn changes(&self) -> Vec<RoleChange> {
        self.changes.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_kept_and_down_keeps_the_term() {
        let log = RoleLog::default();
        let ms = Duration::from_millis;
        log.record(ms(0), 1, Role::Follower, 0);
        log.record(ms(5), 1, Role::Follower, 0);
        log.record(ms(10), 1, Role::Leader, 1);
        log.down(ms(20), 1);
        let changes = log.changes();
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[2], RoleChange { at: ms(20), node: 1, role: Role::Down, term: 1 });
    }
}
