//! Properties of the refined oracle ([`predict_with_leader`]) over random topologies, random directed graphs,
//! every variant and every starting leader. As in `properties.rs`, each property is a plain function returning
//! `Err(reason)` and has a negative control: a deliberately wrong oracle that proptest must catch.

mod common;
use common::{control_config, topology_and_graph};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use quorumlab_quorum::{
    predict, predict_with_leader, Availability, Connectivity, LeaderPrediction, NodeId, RaftVariant, Topology,
};

/// What a property of the refined oracle is checked against: [`predict_with_leader`], or a wrong one.
type Oracle = fn(&Topology, &Connectivity, RaftVariant, Option<NodeId>) -> LeaderPrediction;

/// A case: topology, graph, variant, and the leader at the fault's start (`None`, or any node, learners and
/// crashed nodes included: the oracle must treat those as no leader).
fn case() -> impl Strategy<Value = (Topology, Connectivity, RaftVariant, Option<NodeId>)> {
    (topology_and_graph(), prop::sample::select(RaftVariant::ALL.to_vec()), any::<Option<prop::sample::Index>>())
        .prop_map(|((topology, connectivity), variant, pick)| {
            let leader = pick.map(|index| index.index(topology.nodes().len()) as NodeId + 1);
            (topology, connectivity, variant, leader)
        })
}

/// (d) Safety of the refinement: it never promises what the network forbids. Every leader it names can hold a
/// majority over links that work both ways, and a client datacenter it does not call unavailable reaches a
/// possible leader both ways. (A wrong "yes" here would send the partition suite looking for writes that no
/// correct cluster can commit, and hide a cluster that commits them.)
fn never_promises_what_the_network_forbids(
    topology: &Topology,
    connectivity: &Connectivity,
    variant: RaftVariant,
    leader: Option<NodeId>,
    oracle: Oracle,
) -> Result<(), String> {
    let union = predict(topology, connectivity);
    let refined = oracle(topology, connectivity, variant, leader);
    if !refined.leaders_after.is_subset(&union.possible_leaders()) {
        return Err(format!(
            "{variant:?}, leader {leader:?}: names leaders {:?}, the network allows only {:?}",
            refined.leaders_after,
            union.possible_leaders()
        ));
    }
    let client_dcs: Vec<&str> = refined.client_dcs.keys().map(String::as_str).collect();
    let mut expected = topology.client_dcs();
    expected.sort_unstable();
    if client_dcs != expected {
        return Err(format!("client datacenters {client_dcs:?}, expected {expected:?}"));
    }
    for (dc, &availability) in &refined.client_dcs {
        if availability != Availability::Unavailable && !union.client_dc_can_commit(dc) {
            return Err(format!(
                "{variant:?}, leader {leader:?}: {dc} is {availability:?} but reaches no possible leader"
            ));
        }
    }
    Ok(())
}

/// (e) The lease holds: under the lease rule, a live leader that keeps a majority both ways, and that no voter
/// missing its heartbeats can send to, stays the only leader, and each client datacenter writes iff it reaches
/// it both ways. (The voters that miss it are fewer than a majority, and every other voter refuses them.)
fn the_lease_keeps_a_leader_that_keeps_its_majority(
    topology: &Topology,
    connectivity: &Connectivity,
    leader: NodeId,
    oracle: Oracle,
) -> Result<(), String> {
    let union = predict(topology, connectivity);
    let can_reach_it_unheard = topology
        .voter_ids()
        .into_iter()
        .any(|v| v != leader && !connectivity.can_send(leader, v) && connectivity.can_send(v, leader));
    if !union.can_lead(leader) || can_reach_it_unheard {
        return Ok(());
    }
    let refined = oracle(topology, connectivity, RaftVariant::LeaderLease, Some(leader));
    if refined.leaders_after != [leader].into() || refined.leadership_can_move {
        return Err(format!(
            "leader {leader} keeps its majority and lease, yet leaders after {:?}",
            refined.leaders_after
        ));
    }
    for (dc, &availability) in &refined.client_dcs {
        let reaches = connectivity
            .client_entry_nodes(topology, dc)
            .iter()
            .any(|&n| n == leader || connectivity.two_way(n, leader));
        let expected = if reaches { Availability::Available } else { Availability::Unavailable };
        if availability != expected {
            return Err(format!("leader {leader} stays: {dc} should be {expected:?}, not {availability:?}"));
        }
    }
    Ok(())
}

/// (f) With no leader at the start, PreVote and the lease rule give exactly the network-only union: a client
/// datacenter is not unavailable iff it reaches some possible leader.
fn no_leader_is_the_union(
    topology: &Topology,
    connectivity: &Connectivity,
    variant: RaftVariant,
) -> Result<(), String> {
    let union = predict(topology, connectivity);
    let refined = predict_with_leader(topology, connectivity, variant, None);
    for (dc, &can) in &union.client_dcs {
        if (refined.availability(dc) != Availability::Unavailable) != can {
            return Err(format!("{variant:?}: {dc} is {:?}, the union says {can}", refined.availability(dc)));
        }
    }
    Ok(())
}

/// (g) The fields agree with each other: a datacenter is available iff every leader after serves it and
/// leadership does not churn, unavailable iff none does; the timeline has one row per node.
fn the_answer_agrees_with_itself(
    topology: &Topology,
    connectivity: &Connectivity,
    variant: RaftVariant,
    leader: Option<NodeId>,
) -> Result<(), String> {
    let p = predict_with_leader(topology, connectivity, variant, leader);
    for (dc, &availability) in &p.client_dcs {
        let serves = |l: &NodeId| {
            connectivity.client_entry_nodes(topology, dc).iter().any(|&n| n == *l || connectivity.two_way(n, *l))
        };
        let served = p.leaders_after.iter().filter(|l| serves(l)).count();
        let expected = match served {
            0 => Availability::Unavailable,
            n if n == p.leaders_after.len() && !p.churns => Availability::Available,
            _ => Availability::Either,
        };
        if availability != expected || !p.reasons.contains_key(dc) {
            return Err(format!("{variant:?}, leader {leader:?}: {dc} is {availability:?}, expected {expected:?}"));
        }
    }
    if p.caveats.is_empty() || !p.caveats[0].starts_with("Log freshness") {
        return Err("the log-freshness caveat is missing".into());
    }
    let rows = quorumlab_quorum::term_timeline(topology, connectivity, variant, leader);
    if rows.len() != topology.nodes().len() {
        return Err(format!("{} timeline rows for {} nodes", rows.len(), topology.nodes().len()));
    }
    Ok(())
}

proptest! {
    #![proptest_config(Config { cases: 500, ..Config::default() })]

    #[test]
    fn the_refined_answer_agrees_with_itself((topology, connectivity, variant, leader) in case()) {
        prop_assert_eq!(the_answer_agrees_with_itself(&topology, &connectivity, variant, leader), Ok(()));
    }

    #[test]
    fn the_refined_oracle_never_promises_what_the_network_forbids((topology, connectivity, variant, leader) in case()) {
        prop_assert_eq!(
            never_promises_what_the_network_forbids(&topology, &connectivity, variant, leader, predict_with_leader),
            Ok(())
        );
    }

    #[test]
    fn under_the_lease_rule_a_leader_that_keeps_its_majority_stays((topology, connectivity, _, leader) in case()) {
        if let Some(leader) = leader {
            prop_assert_eq!(
                the_lease_keeps_a_leader_that_keeps_its_majority(&topology, &connectivity, leader, predict_with_leader),
                Ok(())
            );
        }
    }

    #[test]
    fn with_no_leader_prevote_and_the_lease_rule_give_the_union((topology, connectivity) in topology_and_graph()) {
        for variant in [RaftVariant::PreVote, RaftVariant::LeaderLease] {
            prop_assert_eq!(no_leader_is_the_union(&topology, &connectivity, variant), Ok(()));
        }
    }
}

/// A wrong oracle for the negative control of (d): it believes a node that hears the leader can also answer
/// it, so every link that works one way is taken to work both ways ("clients hear the leader, so they write").
fn predict_as_if_links_were_symmetric(
    topology: &Topology,
    connectivity: &Connectivity,
    variant: RaftVariant,
    leader: Option<NodeId>,
) -> LeaderPrediction {
    let mut symmetric = connectivity.clone();
    for (from, to) in connectivity.cut_links().collect::<Vec<_>>() {
        if connectivity.can_send(to, from) {
            symmetric.heal_one_way(from, to);
        }
    }
    predict_with_leader(topology, &symmetric, variant, leader)
}

/// Negative control for (d): an oracle that takes one-way links for two-way ones must be caught promising writes.
#[test]
fn negative_control_d_an_oracle_that_ignores_link_direction_is_caught() {
    let mut runner = TestRunner::new(control_config(500));
    let result = runner.run(&case(), |(topology, connectivity, variant, leader)| {
        never_promises_what_the_network_forbids(
            &topology,
            &connectivity,
            variant,
            leader,
            predict_as_if_links_were_symmetric,
        )
        .map_err(TestCaseError::fail)
    });
    assert!(
        matches!(result, Err(TestError::Fail(..))),
        "an oracle that ignores link direction went unnoticed: {result:?}"
    );
}

/// A wrong oracle for the negative control of (e): asked about the lease rule, it answers for plain Raft, where
/// a voter that hears the leader still adopts a campaigner's higher term and passes it on.
fn predict_forgetting_the_lease(
    topology: &Topology,
    connectivity: &Connectivity,
    variant: RaftVariant,
    leader: Option<NodeId>,
) -> LeaderPrediction {
    let variant = if variant == RaftVariant::LeaderLease { RaftVariant::Plain } else { variant };
    predict_with_leader(topology, connectivity, variant, leader)
}

/// Negative control for (e): an oracle that forgets the lease must be caught unseating a leader the lease keeps.
#[test]
fn negative_control_e_an_oracle_that_forgets_the_lease_is_caught() {
    let mut runner = TestRunner::new(control_config(2_000));
    let strategy = (topology_and_graph(), any::<prop::sample::Index>());
    let result = runner.run(&strategy, |((topology, connectivity), pick)| {
        let leader = pick.index(topology.nodes().len()) as NodeId + 1;
        the_lease_keeps_a_leader_that_keeps_its_majority(&topology, &connectivity, leader, predict_forgetting_the_lease)
            .map_err(TestCaseError::fail)
    });
    assert!(matches!(result, Err(TestError::Fail(..))), "an oracle without the lease went unnoticed: {result:?}");
}

/// The pinned shape behind (e): the control must also fail on the case issue 14 measured.
#[test]
fn negative_control_e_fails_on_the_two_two_one_cut() {
    let topology = quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped");
    let cut = quorumlab_quorum::FaultShape::CutDcLink { a: "dc1".into(), b: "dc2".into() };
    let connectivity = cut.apply(&topology).expect("applies");
    assert_eq!(
        the_lease_keeps_a_leader_that_keeps_its_majority(&topology, &connectivity, 1, predict_with_leader),
        Ok(())
    );
    assert!(the_lease_keeps_a_leader_that_keeps_its_majority(
        &topology,
        &connectivity,
        1,
        predict_forgetting_the_lease
    )
    .is_err());
}
