//! A leader's own proposals are acknowledged before their flush, and only those (`store::leader_flush`): entries a
//! follower takes, this node's entries of an earlier term, membership changes and a lone voter's proposals all
//! wait for the flush. The flush gate opens only once the flush is done, and a power loss before it loses what
//! was acknowledged early, which is why followers' acknowledgements must pass the gate.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, Membership};

use crate::store::{open_sim, FlushGate, LogStore, SimDisk, StateMachineStore, ABDICATED};
use crate::types::{Entry, LogId, Vote};

const FLUSH: Duration = Duration::from_millis(50);

fn entry(term: u64, leader: u64, index: u64) -> Entry {
    Entry { log_id: LogId::new(CommittedLeaderId::new(term, leader), index), payload: EntryPayload::Blank }
}

fn membership(term: u64, leader: u64, index: u64, configs: &[&[u64]]) -> Entry {
    let configs: Vec<BTreeSet<u64>> = configs.iter().map(|c| c.iter().copied().collect()).collect();
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(term, leader), index),
        payload: EntryPayload::Membership(Membership::new(configs, None)),
    }
}

/// Node 1's store on a disk whose flushes take [`FLUSH`], holding `vote` and the membership `configs` (in its log
/// at index 1 and applied).
async fn node_one(vote: Vote, configs: &[&[u64]]) -> (SimDisk, LogStore, StateMachineStore, FlushGate) {
    let disk = SimDisk::new().expect("disk");
    let (mut log, mut sm) = open_sim(&disk, 1, None, None).expect("open");
    log.serve(1).await.expect("serve");
    disk.set_flush_delay(FLUSH);
    let m = membership(1, 1, 1, configs);
    log.blocking_append([m.clone()]).await.expect("append membership");
    sm.apply([m]).await.expect("apply membership");
    log.save_vote(&vote).await.expect("vote");
    let gate = log.flush_gate();
    (disk, log, sm, gate)
}

/// Appends `entries` and tells whether the append was acknowledged before its flush: openraft's blocking append
/// returns when the callback comes, and then the entries are still in the disk's cache.
async fn acknowledged_early(disk: &SimDisk, log: &mut LogStore, entries: Vec<Entry>) -> bool {
    log.blocking_append(entries).await.expect("append");
    disk.unflushed_groups() > 0
}

#[tokio::test(start_paused = true)]
async fn a_leaders_proposals_are_acknowledged_at_once_and_the_gate_opens_after_their_flush() {
    let (disk, mut log, _sm, mut gate) = node_one(Vote::new_committed(1, 1), &[&[1, 2, 3]]).await;
    assert!(gate.durable(1, Duration::ZERO).await, "the membership entry was acknowledged after its flush");
    assert!(acknowledged_early(&disk, &mut log, vec![entry(1, 1, 2), entry(1, 1, 3)]).await);
    assert_eq!(log.io().read().early, 1, "the early append is counted");
    assert!(!gate.durable(3, FLUSH / 2).await, "the gate opened before the flush was done");
    assert!(gate.durable(3, FLUSH).await, "the gate stayed shut after the flush");
    assert_eq!(disk.unflushed_groups(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_power_loss_before_the_flush_loses_what_a_leader_acknowledged_early() {
    let (disk, mut log, _sm, _gate) = node_one(Vote::new_committed(1, 1), &[&[1, 2, 3]]).await;
    assert!(acknowledged_early(&disk, &mut log, vec![entry(1, 1, 2)]).await);
    drop(log);
    // (In a simulation the power loss crashes the node's host too, flusher and all.)
    disk.power_loss().expect("power loss");
    let (mut log, _sm) = open_sim(&disk, 1, None, None).expect("reopen");
    assert_eq!(log.get_log_state().await.expect("state").last_log_id.map(|l| l.index), Some(1));
}

#[tokio::test(start_paused = true)]
async fn entries_a_follower_takes_wait_for_their_flush() {
    // Node 1 follows node 2 in term 2.
    let (disk, mut log, _sm, _gate) = node_one(Vote::new_committed(2, 2), &[&[1, 2, 3]]).await;
    assert!(!acknowledged_early(&disk, &mut log, vec![entry(2, 2, 2)]).await);
    // Its own entries of term 1, sent back to it by node 2, too.
    assert!(!acknowledged_early(&disk, &mut log, vec![entry(1, 1, 3)]).await);
}

#[tokio::test(start_paused = true)]
async fn a_leader_waits_for_the_flush_while_it_alone_is_a_quorum() {
    let (disk, mut log, mut sm, _gate) = node_one(Vote::new_committed(1, 1), &[&[1]]).await;
    assert!(!acknowledged_early(&disk, &mut log, vec![entry(1, 1, 2)]).await, "a lone voter acknowledged early");
    // Growing: the joint membership needs a follower of the new configuration too, but until it is applied the
    // store does not rely on it (the applied one, a lone voter, might still be in force after a snapshot).
    let joint = membership(1, 1, 3, &[&[1], &[1, 2, 3]]);
    assert!(!acknowledged_early(&disk, &mut log, vec![joint.clone()]).await, "a membership change went early");
    assert!(!acknowledged_early(&disk, &mut log, vec![entry(1, 1, 4)]).await);
    sm.apply([joint]).await.expect("apply");
    assert!(acknowledged_early(&disk, &mut log, vec![entry(1, 1, 5)]).await);
    tokio::time::sleep(FLUSH * 2).await;
    // Shrinking: once the log's last membership makes node 1 a lone voter again, it waits again, although the
    // applied one still needs a follower.
    assert!(!acknowledged_early(&disk, &mut log, vec![membership(1, 1, 6, &[&[1]])]).await);
    assert!(!acknowledged_early(&disk, &mut log, vec![entry(1, 1, 7)]).await);
    // A conflict cuts that membership away, and the joint one is in force again.
    log.truncate(LogId::new(CommittedLeaderId::new(1, 1), 6)).await.expect("truncate");
    assert!(acknowledged_early(&disk, &mut log, vec![entry(1, 1, 6)]).await);
}

#[tokio::test(start_paused = true)]
async fn a_store_serving_no_node_acknowledges_only_after_the_flush() {
    let disk = SimDisk::new().expect("disk");
    let (mut log, mut sm) = open_sim(&disk, 1, None, None).expect("open");
    disk.set_flush_delay(FLUSH);
    let m = membership(1, 1, 1, &[&[1, 2, 3]]);
    log.blocking_append([m.clone()]).await.expect("append");
    sm.apply([m]).await.expect("apply");
    log.save_vote(&Vote::new_committed(1, 1)).await.expect("vote");
    assert!(!acknowledged_early(&disk, &mut log, vec![entry(1, 1, 2)]).await);
}

#[tokio::test]
async fn a_restarted_leader_gives_up_its_term() {
    let disk = SimDisk::new().expect("disk");
    {
        let (mut log, _sm) = open_sim(&disk, 1, None, None).expect("open");
        log.save_vote(&Vote::new_committed(3, 1)).await.expect("vote");
    }
    let (mut log, _sm) = open_sim(&disk, 1, None, None).expect("reopen");
    log.serve(1).await.expect("serve");
    let vote = log.read_vote().await.expect("vote").expect("a vote");
    assert_eq!(vote, Vote::new(3, ABDICATED), "it would lead term 3 again at once");
    assert!(vote > Vote::new_committed(3, 1), "a vote never goes back");
    assert!(vote > Vote::new(3, 3), "it must grant no candidate of term 3");
    assert!(vote < Vote::new(4, 2), "it must take the messages of term 4's leader");
    // A vote for another node stays as it was.
    log.save_vote(&Vote::new_committed(5, 2)).await.expect("vote");
    log.serve(1).await.expect("serve");
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new_committed(5, 2)));
}
