//! Pinned cases for the refined oracle, each named as a sentence; the event sequence is in its doc comment.

use std::collections::BTreeSet;

use super::*;
use crate::connectivity::FaultShape;
use crate::shipped;

use Availability::{Available, Either, Unavailable};
use RaftVariant::{LeaderLease, Plain, PreVote};

fn topology(name: &str) -> Topology {
    shipped::load(name).expect("shipped topology")
}

fn cut(a: &str, b: &str) -> FaultShape {
    FaultShape::CutDcLink { a: a.into(), b: b.into() }
}

fn under(t: &Topology, fault: FaultShape, variant: RaftVariant, leader: Option<NodeId>) -> LeaderPrediction {
    predict_with_leader(t, &fault.apply(t).expect("fault applies"), variant, leader)
}

fn dcs(p: &LeaderPrediction) -> Vec<(&str, Availability)> {
    p.client_dcs.iter().map(|(dc, &a)| (dc.as_str(), a)).collect()
}

#[test]
fn quorumlab_node_follows_the_lease_rule() {
    assert_eq!(quorumlab_node_variant(), LeaderLease);
    assert_eq!(RaftVariant::QUORUMLAB_NODE, LeaderLease);
}

/// 2/2/1, leader dc1-n1, cut dc1–dc2. dc2's voters miss the leader and campaign; dc3-n1 still hears dc1-n1
/// and refuses them (lease), so dc2 gathers 2 < 3 and the term never moves: dc2's clients are stranded.
/// This is what the simulator measured with quorumlab's node (issue 14).
#[test]
fn two_two_one_cut_with_the_leader_in_dc1_strands_dc2_under_the_lease_rule() {
    let t = topology("etcd-2-2-1");
    let p = under(&t, cut("dc1", "dc2"), LeaderLease, Some(1));
    assert_eq!(dcs(&p), [("dc1", Available), ("dc2", Unavailable)]);
    assert_eq!(p.leaders_after, BTreeSet::from([1]));
    assert!(!p.leadership_can_move);
    assert!(p.disruptors.is_empty());
    assert_eq!(
        p.reasons["dc2"],
        "dc2 cannot write: the dc1 leader dc1-n1 keeps its lease through dc3-n1, which refuses dc2's vote requests."
    );
    assert!(p.reasons["dc1"].starts_with("dc1 can write: the dc1 leader dc1-n1 is in dc1"), "{}", p.reasons["dc1"]);
    assert!(
        p.caveats[0].starts_with("Log freshness: once dc1-n1 commits a write during the fault, dc2-n1"),
        "{:?}",
        p.caveats
    );
}

/// Same cut, no leader when it starts: any of the five may win, so each client DC may or may not write, and the
/// DCs that are not stranded are exactly the network-only union.
#[test]
fn two_two_one_cut_with_no_leader_is_the_union_view() {
    let t = topology("etcd-2-2-1");
    let connectivity = cut("dc1", "dc2").apply(&t).expect("applies");
    let union = predict(&t, &connectivity);
    for variant in [PreVote, LeaderLease] {
        let p = predict_with_leader(&t, &connectivity, variant, None);
        assert_eq!(dcs(&p), [("dc1", Either), ("dc2", Either)], "{variant:?}");
        assert_eq!(p.leaders_after, union.possible_leaders());
        for (dc, &can) in &union.client_dcs {
            assert_eq!(p.availability(dc) != Unavailable, can, "{variant:?} {dc}");
        }
    }
}

/// Plain Raft, leader dc1-n1, cut dc1–dc2: dc2 keeps campaigning, dc3-n1 adopts each higher term and the dc1
/// leader steps down; a dc2 leader is unseated the same way by dc1. Only dc3-n1 is heard by everyone, so
/// leadership settles there and both sides can write (after stalls).
#[test]
fn two_two_one_cut_under_plain_raft_settles_on_dc3_after_dc2_unseats_the_dc1_leader() {
    let t = topology("etcd-2-2-1");
    let p = under(&t, cut("dc1", "dc2"), Plain, Some(1));
    assert_eq!(p.disruptors, BTreeSet::from([3, 4]));
    assert_eq!(p.leaders_after, BTreeSet::from([5]));
    assert!(p.leadership_can_move && !p.churns);
    assert_eq!(dcs(&p), [("dc1", Available), ("dc2", Available)]);
    assert!(p.summary.contains("until dc3-n1 wins"), "{}", p.summary);
}

/// PreVote, same cut: dc2-n1's pre-vote is granted by dc2-n2 and dc3-n1 while logs are equal, so dc2 may take
/// over, and dc1 may take it back; dc3-n1 hears a leader all along and never campaigns.
#[test]
fn two_two_one_cut_under_prevote_lets_either_side_lead_while_logs_are_equal() {
    let t = topology("etcd-2-2-1");
    let p = under(&t, cut("dc1", "dc2"), PreVote, Some(1));
    assert_eq!(p.disruptors, BTreeSet::from([3, 4]));
    assert_eq!(p.leaders_after, BTreeSet::from([1, 2, 3, 4]));
    assert_eq!(dcs(&p), [("dc1", Either), ("dc2", Either)]);
    assert!(p.caveats[0].contains("once dc1-n1 commits a write during the fault, dc2-n1"), "{:?}", p.caveats);
}

/// The one-way trap: cut dc1–dc2 and drop dc3 → dc1. dc1-n1 can no longer hear dc3-n1's acknowledgements, so it
/// lost its majority; but dc3-n1 still hears its heartbeats and, under the lease rule, refuses dc2's votes.
/// The network allows a dc2 leader (dc2 + dc3 = 3), yet nobody is elected: the whole cluster is unavailable.
/// Plain Raft escapes: dc3-n1 adopts dc2's higher term and a dc2 (or dc3) leader settles.
#[test]
fn a_one_way_cut_that_keeps_the_old_leaders_heartbeats_flowing_freezes_the_cluster_under_the_lease_rule() {
    let t = topology("etcd-2-2-1");
    let fault = FaultShape::All {
        faults: vec![cut("dc1", "dc2"), FaultShape::OneWayDc { from: "dc3".into(), to: "dc1".into() }],
    };
    let connectivity = fault.apply(&t).expect("applies");
    assert!(predict(&t, &connectivity).client_dc_can_commit("dc2"), "the network alone allows dc2");
    let p = predict_with_leader(&t, &connectivity, LeaderLease, Some(1));
    assert!(p.leaders_after.is_empty());
    assert_eq!(dcs(&p), [("dc1", Unavailable), ("dc2", Unavailable)]);
    assert!(p.reasons["dc2"].contains("refuse every vote request while its lease holds"), "{}", p.reasons["dc2"]);
    let plain = predict_with_leader(&t, &connectivity, Plain, Some(1));
    assert_eq!(plain.leaders_after, BTreeSet::from([3, 4, 5]));
    assert_eq!(dcs(&plain), [("dc1", Unavailable), ("dc2", Available)]);
}

/// A leader that can send but not receive: every follower hears it, so nobody ever times out, and it can commit
/// nothing. Without a leader that steps down on a lost quorum, no variant recovers.
#[test]
fn a_leader_that_can_only_send_blocks_every_variant() {
    let t = topology("etcd-3");
    let fault =
        FaultShape::All { faults: vec![FaultShape::OneWay { from: 2, to: 1 }, FaultShape::OneWay { from: 3, to: 1 }] };
    for variant in RaftVariant::ALL {
        let p = under(&t, fault.clone(), variant, Some(1));
        assert!(p.leaders_after.is_empty(), "{variant:?}");
        assert_eq!(dcs(&p), [("dc1", Unavailable)], "{variant:?}");
    }
}

/// A node that hears nobody but reaches everyone: plain Raft lets it unseat every leader for ever (it can never
/// win); PreVote stops it (its pre-vote needs replies); the lease rule makes the voters refuse it, and only a
/// request straight to the leader might unseat it, which is allowed, not required.
#[test]
fn a_deaf_node_churns_plain_raft_is_stopped_by_prevote_and_only_may_disrupt_under_the_lease_rule() {
    let t = topology("etcd-3");
    let fault =
        FaultShape::All { faults: vec![FaultShape::OneWay { from: 1, to: 3 }, FaultShape::OneWay { from: 2, to: 3 }] };
    let plain = under(&t, fault.clone(), Plain, Some(1));
    assert!(plain.churns);
    assert_eq!(plain.leaders_after, BTreeSet::from([1, 2]));
    assert_eq!(dcs(&plain), [("dc1", Either)]);
    let prevote = under(&t, fault.clone(), PreVote, Some(1));
    assert_eq!((prevote.leaders_after.clone(), dcs(&prevote)), (BTreeSet::from([1]), vec![("dc1", Available)]));
    let lease = under(&t, fault, LeaderLease, Some(1));
    assert_eq!(lease.disruptors, BTreeSet::from([3]));
    assert_eq!(lease.leaders_after, BTreeSet::from([1, 2]));
    assert_eq!(dcs(&lease), [("dc1", Available)], "every possible leader is in dc1");
}

/// The leader's datacenter burns: no heartbeats, so the survivors elect among themselves.
#[test]
fn a_lost_leader_is_replaced_by_whoever_the_survivors_can_elect() {
    let t = topology("etcd-2-2-1");
    for variant in RaftVariant::ALL {
        let p = under(&t, FaultShape::LoseDc { dc: "dc1".into() }, variant, Some(1));
        assert_eq!(p.leaders_after, BTreeSet::from([3, 4, 5]), "{variant:?}");
        assert_eq!(dcs(&p), [("dc1", Unavailable), ("dc2", Available)], "{variant:?}");
        assert!(p.leadership_can_move);
    }
}

#[test]
fn a_learner_or_unknown_leader_counts_as_no_leader() {
    let t = topology("etcd-2-2-1");
    let none = under(&t, cut("dc1", "dc2"), LeaderLease, None);
    assert_eq!(under(&t, cut("dc1", "dc2"), LeaderLease, Some(99)).client_dcs, none.client_dcs);
}

/// openraft issue #2080, "Liveness deadlock: old leader heartbeats block a connected quorum", with two-way links
/// only: five voters, the old leader dc1-n1 talks only with the bridge dc1-n2; dc1-n2, dc1-n3 and dc1-n4 talk to
/// each other; dc1-n5 is isolated. The leader has 2 < 3, the bridge still hears it and refuses dc1-n3's and
/// dc1-n4's votes, so the connected three never elect anyone. Plain Raft and PreVote both elect one of them.
#[test]
fn openraft_2080_an_old_leader_that_reaches_only_the_bridge_blocks_the_quorum_around_it() {
    let t = topology("etcd-5");
    let both =
        |a: NodeId, b: NodeId| vec![FaultShape::OneWay { from: a, to: b }, FaultShape::OneWay { from: b, to: a }];
    let mut faults = vec![FaultShape::IsolateNode { node: 5 }];
    faults.extend(both(1, 3));
    faults.extend(both(1, 4));
    let connectivity = FaultShape::All { faults }.apply(&t).expect("applies");
    let lease = predict_with_leader(&t, &connectivity, LeaderLease, Some(1));
    assert!(lease.leaders_after.is_empty());
    assert_eq!(dcs(&lease), [("dc1", Unavailable)]);
    assert_eq!(predict_with_leader(&t, &connectivity, Plain, Some(1)).leaders_after, BTreeSet::from([2]));
    assert_eq!(predict_with_leader(&t, &connectivity, PreVote, Some(1)).leaders_after, BTreeSet::from([3, 4]));
}

/// The timeline of the pinned case under the lease rule: dc2 campaigns in vain with rising terms, dc3-n1 keeps
/// following the leader, and when the link heals dc2's higher term forces exactly one election (§9.6). Under
/// PreVote no term climbs in vain, so nothing is forced.
#[test]
fn the_two_two_one_timeline_shows_dc2_climbing_and_one_election_on_heal_under_the_lease_rule() {
    let t = topology("etcd-2-2-1");
    let connectivity = cut("dc1", "dc2").apply(&t).expect("applies");
    let rows = term_timeline(&t, &connectivity, LeaderLease, Some(1));
    let row = |host: &str| rows.iter().find(|r| r.host == host).expect("a row per node");
    assert_eq!(row("dc1-n1").during, "leads at term t");
    assert_eq!(row("dc3-n1").during, "follows dc1-n1 at term t; refuses other candidates (lease)");
    assert_eq!(row("dc2-n1").during, "campaigns: term t + 1, t + 2, …; never wins");
    assert!(row("dc2-n1").on_heal.contains("one election"));
    assert!(row("dc1-n1").on_heal.contains("steps down"));
    let prevote = term_timeline(&t, &connectivity, PreVote, Some(1));
    assert!(prevote.iter().all(|r| r.on_heal.starts_with("no forced election")), "{prevote:?}");
}
