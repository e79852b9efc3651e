//! What real mode can see of a node from outside its process: status polls from the hub (never cut off by a
//! fault, so a node that does not answer is down or paused), turned into the role timeline and the one safety
//! property a poll can judge.
//!
//! Election safety from outside. openraft 0.9 may elect two leaders in one term (a higher node id supersedes a
//! lower, see [`crate::sim::invariants::election_safety`]), so "one leader per term" is not its rule, and polls
//! that arrive at different nodes at different moments cannot order two leaders' elections anyway. What a poll
//! can judge soundly is each node's own vote: polls of one node are answered in order, and openraft's safety
//! rests on a vote that never moves backwards, across restarts too (a node that forgets its vote on a `kill -9`
//! can grant a second majority in one term). So every node's polled vote must never be below one it showed
//! before. Sampling can miss a regression that is undone between two polls; it cannot invent one.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::admin;
use crate::net::Transport;
use crate::pb;
use crate::sim::invariants::election_safety::VoteKey;
use crate::sim::roles::{Role, RoleLog};
use crate::sim::trace::sim_now;
use crate::types::NodeId;

/// How often every node is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(50);

/// The last answer of every node, the role timeline, and any vote that went backwards.
#[derive(Clone, Default)]
pub struct Observer {
    inner: Arc<Mutex<Seen>>,
    pub roles: RoleLog,
    /// Where each change of a node's role or term is written, beside the nemesis's lines.
    trace: Option<crate::sim::trace::Trace>,
}

#[derive(Default)]
struct Seen {
    last: BTreeMap<NodeId, pb::StatusResponse>,
    votes: BTreeMap<NodeId, VoteKey>,
    leaders: std::collections::BTreeSet<(u64, NodeId)>,
    violations: Vec<String>,
}

fn role_of(status: &pb::StatusResponse) -> Role {
    match status.role.as_str() {
        "leader" => Role::Leader,
        "candidate" => Role::Candidate,
        "follower" => Role::Follower,
        "learner" => Role::Learner,
        _ => Role::Down,
    }
}

impl Observer {
    /// An observer that also writes every change of a node's role or term to `trace`.
    pub fn with_trace(trace: crate::sim::trace::Trace) -> Observer {
        Observer { trace: Some(trace), ..Observer::default() }
    }

    /// Takes in one node's answer at `at`.
    pub fn observe(&self, at: Duration, status: pb::StatusResponse) {
        let mut seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let node = status.id;
        if let Some(v) = &status.vote {
            let vote: VoteKey = (v.term, v.node_id, v.committed);
            if let Some(before) = seen.votes.get(&node).copied() {
                if vote < before {
                    seen.violations.push(format!(
                        "election safety: node {node}'s vote went backwards at {:.3} s: {before:?} then {vote:?} \
                         (term, voted for, committed)",
                        at.as_secs_f64()
                    ));
                }
            }
            let highest = vote.max(seen.votes.get(&node).copied().unwrap_or_default());
            seen.votes.insert(node, highest);
        }
        let role = role_of(&status);
        let before = seen.last.get(&node).map(|s| (s.role.clone(), s.current_term));
        if before != Some((status.role.clone(), status.current_term)) {
            if let Some(trace) = &self.trace {
                trace.record_at(at, format!("observe: node {node} {} in term {}", status.role, status.current_term));
            }
        }
        if role == Role::Leader {
            seen.leaders.insert((status.current_term, node));
        }
        self.roles.record(at, node, role, status.current_term);
        seen.last.insert(node, status);
    }

    /// A node went down (the driver killed it): its last answer no longer stands.
    pub fn down(&self, at: Duration, node: NodeId) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).last.remove(&node);
        self.roles.down(at, node);
    }

    /// Polls every address once, all at the same time.
    pub async fn poll(&self, addrs: &BTreeMap<NodeId, String>) {
        let polls = addrs.values().map(|addr| admin::status(Transport::Tcp, addr, Duration::from_millis(300)));
        let answers = futures::future::join_all(polls).await;
        for status in answers.into_iter().flatten() {
            self.observe(sim_now(), status);
        }
    }

    /// The leader in the highest term any voter in `voters` reports, if exactly one voter leads it.
    pub fn leader(&self, voters: &[NodeId]) -> Option<NodeId> {
        let seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let statuses: Vec<&pb::StatusResponse> = voters.iter().filter_map(|v| seen.last.get(v)).collect();
        let term = statuses.iter().map(|s| s.current_term).max()?;
        let leaders: Vec<NodeId> =
            statuses.iter().filter(|s| s.current_term == term && s.role == "leader").map(|s| s.id).collect();
        match leaders[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    /// The leader every voter in `voters` answers with, when one of them leads in the highest term.
    pub fn single_leader(&self, voters: &[NodeId]) -> Option<NodeId> {
        let leader = self.leader(voters)?;
        let seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        voters.iter().all(|v| seen.last.get(v).is_some_and(|s| s.leader_id == leader)).then_some(leader)
    }

    /// Whether every voter answered with the same applied index.
    pub fn converged(&self, voters: &[NodeId]) -> bool {
        let seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let applied: Vec<Option<u64>> =
            voters.iter().map(|v| seen.last.get(v).and_then(|s| s.applied.as_ref().map(|l| l.index))).collect();
        applied.iter().all(|a| a.is_some() && *a == applied[0])
    }

    /// Each node's last answer in one line, for a liveness failure's explanation.
    pub fn describe(&self) -> String {
        let seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let parts: Vec<String> = seen
            .last
            .values()
            .map(|s| {
                format!(
                    "node {} {} term {} leader {} applied {}",
                    s.id,
                    s.role,
                    s.current_term,
                    s.leader_id,
                    s.applied.as_ref().map_or("-".into(), |l| l.index.to_string())
                )
            })
            .collect();
        parts.join(", ")
    }

    pub fn violations(&self) -> Vec<String> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).violations.clone()
    }

    /// (term, leader) pairs seen, and the highest term.
    pub fn leaders(&self) -> (usize, u64) {
        let seen = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let term = seen.last.values().map(|s| s.current_term).chain(seen.leaders.iter().map(|l| l.0)).max();
        (seen.leaders.len(), term.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: u64, role: &str, term: u64, vote: (u64, u64, bool)) -> pb::StatusResponse {
        pb::StatusResponse {
            id,
            role: role.into(),
            current_term: term,
            vote: Some(pb::Vote { term: vote.0, node_id: vote.1, committed: vote.2 }),
            leader_id: if role == "leader" { id } else { 0 },
            ..Default::default()
        }
    }

    #[test]
    fn a_vote_that_moves_forward_passes() {
        let o = Observer::default();
        o.observe(Duration::from_millis(1), status(1, "follower", 1, (1, 2, false)));
        o.observe(Duration::from_millis(2), status(1, "follower", 1, (1, 2, true)));
        o.observe(Duration::from_millis(3), status(1, "leader", 2, (2, 1, true)));
        assert!(o.violations().is_empty(), "{:?}", o.violations());
        assert_eq!(o.leaders(), (1, 2));
    }

    /// Negative control: a node that comes back from a restart having forgotten its vote.
    #[test]
    fn a_forgotten_vote_is_caught() {
        let o = Observer::default();
        o.observe(Duration::from_millis(1), status(3, "follower", 5, (5, 2, true)));
        o.down(Duration::from_millis(2), 3);
        o.observe(Duration::from_millis(3), status(3, "follower", 5, (5, 0, false)));
        let v = o.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("node 3's vote went backwards"), "{v:?}");
    }
}
