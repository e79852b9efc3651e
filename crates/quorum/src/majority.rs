//! Majority arithmetic, the one rule everything else leans on.
//!
//! Why a majority: a leader may only commit what a majority of voters stored, and it may only be elected by a
//! majority of votes. Any two majorities of the same voters share at least one voter (`2·m > n`), and that shared
//! voter votes once per term and remembers what it stored, so two leaders can never both commit conflicting
//! writes. Everything in this crate that says "majority" means [`majority`]; [`QuorumRule`] exists so tests can feed
//! a deliberately wrong rule and watch the intersection property fail.

use std::collections::BTreeSet;

use crate::topology::NodeId;

/// Votes needed out of `voters`, the voter itself included: `voters / 2 + 1`.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

fn half(voters: usize) -> usize {
    voters / 2
}

/// Voters that may fail while a majority remains: `(voters − 1) / 2` (0 for an empty cluster).
pub fn failures_tolerated(voters: usize) -> usize {
    voters.saturating_sub(1) / 2
}

/// The fewest voters any two majorities of `voters` share: `2·majority − voters` (≥ 1 for the true rule).
pub fn min_overlap(voters: usize, majority: usize) -> isize {
    2 * majority as isize - voters as isize
}

/// How many votes out of `n` voters make a quorum. The real rule is [`QuorumRule::MAJORITY`].
#[derive(Clone, Copy)]
pub struct QuorumRule {
    pub name: &'static str,
    pub votes_needed: fn(usize) -> usize,
}

impl QuorumRule {
    pub const MAJORITY: QuorumRule = QuorumRule { name: "majority (n/2 + 1)", votes_needed: majority };

    /// A deliberately wrong rule, for teaching and negative controls: half the voters, `n / 2`. Two halves of an
    /// even cluster share nobody, so two leaders could commit at once.
    pub const HALF: QuorumRule = QuorumRule { name: "half (n/2), WRONG", votes_needed: half };

    /// Whether this rule guarantees that any two quorums of `voters` intersect.
    pub fn quorums_intersect(&self, voters: usize) -> bool {
        min_overlap(voters, (self.votes_needed)(voters)) >= 1
    }
}

impl std::fmt::Debug for QuorumRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The two majorities of `voters` (in id order) that overlap least — the first `m` and the last `m` — and the
/// voters they share. Panics never; returns empty sets for an empty voter set.
pub fn most_distant_majorities(voters: &BTreeSet<NodeId>) -> (BTreeSet<NodeId>, BTreeSet<NodeId>, BTreeSet<NodeId>) {
    let m = majority(voters.len()).min(voters.len());
    let first: BTreeSet<NodeId> = voters.iter().take(m).copied().collect();
    let last: BTreeSet<NodeId> = voters.iter().rev().take(m).copied().collect();
    let shared: BTreeSet<NodeId> = first.intersection(&last).copied().collect();
    // Invariant: two majorities of the same voters share at least one voter; everything else rests on it.
    debug_assert!(voters.is_empty() || !shared.is_empty(), "majorities must intersect");
    (first, last, shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_and_tolerance_match_the_etcd_faq_table() {
        let table: Vec<(usize, usize, usize)> = (1..=9).map(|n| (n, majority(n), failures_tolerated(n))).collect();
        let etcd_faq =
            vec![(1, 1, 0), (2, 2, 0), (3, 2, 1), (4, 3, 1), (5, 3, 2), (6, 4, 2), (7, 4, 3), (8, 5, 3), (9, 5, 4)];
        assert_eq!(table, etcd_faq);
    }

    #[test]
    fn a_half_is_not_a_majority_and_the_rule_check_says_so() {
        let half = QuorumRule { name: "half", votes_needed: |n| n / 2 };
        assert!(!half.quorums_intersect(4), "two halves of 4 are disjoint");
        assert!((1..=50).all(|n| QuorumRule::MAJORITY.quorums_intersect(n)));
    }

    #[test]
    fn the_most_distant_majorities_of_five_share_the_middle_voter() {
        let voters: BTreeSet<NodeId> = (1..=5).collect();
        let (first, last, shared) = most_distant_majorities(&voters);
        assert_eq!(first, BTreeSet::from([1, 2, 3]));
        assert_eq!(last, BTreeSet::from([3, 4, 5]));
        assert_eq!(shared, BTreeSet::from([3]));
    }
}
