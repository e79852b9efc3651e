//! The simulated disk: a power loss loses exactly what was not flushed at `Fsync`'s flush points,
//! the planted storage bugs do what they say, and the observer hears every write in order.

use std::sync::{Arc, Mutex};

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::RaftLogReader;

use super::{blank_entry, get, log_id, put, request_entry};
use crate::node::PlantedBug;
use crate::store::observe::payload_digest;
use crate::store::{open_sim, SimDisk, StoreChange, StoreEvent, StoreObserver};
use crate::types::{EntryPayload, Vote};

#[derive(Default)]
struct Recorded(Mutex<Vec<StoreEvent>>);

impl StoreObserver for Recorded {
    fn record(&self, event: StoreEvent) {
        self.0.lock().expect("lock").push(event);
    }
}

impl Recorded {
    fn take(&self) -> Vec<StoreChange> {
        std::mem::take(&mut *self.0.lock().expect("lock")).into_iter().map(|e| e.change).collect()
    }
}

#[tokio::test]
async fn a_power_loss_keeps_flushed_writes_and_loses_the_rest() {
    let disk = SimDisk::new().expect("disk");
    {
        let (mut log, mut sm) = open_sim(&disk, 1, None, None).expect("open");
        log.save_vote(&Vote::new(2, 1)).await.expect("vote");
        log.blocking_append([blank_entry(1), request_entry(2, 7, 1, put("k", "v"))]).await.expect("append");
        // Neither commit nor apply flushes: both are redone from the durable log.
        log.save_committed(Some(log_id(1, 2))).await.expect("commit");
        sm.apply([blank_entry(1), request_entry(2, 7, 1, put("k", "v"))]).await.expect("apply");
        assert!(disk.unflushed_groups() > 0);
    }
    let lost = disk.power_loss().expect("power loss");
    assert!(lost.groups >= 2 && lost.writes >= lost.groups, "{lost:?}");
    assert_eq!(disk.unflushed_groups(), 0);
    let (mut log, mut sm) = open_sim(&disk, 1, None, None).expect("reopen");
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new(2, 1)));
    let entries = log.try_get_log_entries(..).await.expect("entries");
    assert_eq!(entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(log.read_committed().await.expect("committed"), None);
    assert_eq!(sm.applied_state().await.expect("applied").0, None);
    assert_eq!(get(&sm, "k"), None);
}

#[tokio::test]
async fn a_process_crash_keeps_unflushed_writes() {
    let disk = SimDisk::new().expect("disk");
    {
        let (mut log, mut sm) = open_sim(&disk, 1, None, None).expect("open");
        log.blocking_append([blank_entry(1), request_entry(2, 7, 1, put("k", "v"))]).await.expect("append");
        sm.apply([blank_entry(1), request_entry(2, 7, 1, put("k", "v"))]).await.expect("apply");
    }
    let (_log, sm) = open_sim(&disk, 1, None, None).expect("reopen");
    assert_eq!(get(&sm, "k"), Some(("v".into(), 2)));
}

#[tokio::test]
async fn truncate_and_purge_are_flushed() {
    let disk = SimDisk::new().expect("disk");
    {
        let (mut log, _sm) = open_sim(&disk, 1, None, None).expect("open");
        log.blocking_append((1..=4).map(blank_entry)).await.expect("append");
        log.truncate(log_id(1, 4)).await.expect("truncate");
        log.purge(log_id(1, 1)).await.expect("purge");
    }
    disk.power_loss().expect("power loss");
    let (mut log, _sm) = open_sim(&disk, 1, None, None).expect("reopen");
    let entries = log.try_get_log_entries(..).await.expect("entries");
    assert_eq!(entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![2, 3]);
}

/// The planted bug `AckBeforeFlush`: an acknowledged append is lost by a power loss.
#[tokio::test]
async fn ack_before_flush_loses_acknowledged_entries_on_power_loss() {
    let disk = SimDisk::new().expect("disk");
    {
        let (mut log, _sm) = open_sim(&disk, 1, None, Some(PlantedBug::AckBeforeFlush)).expect("open");
        log.save_vote(&Vote::new(1, 1)).await.expect("vote");
        log.blocking_append([blank_entry(1)]).await.expect("acknowledged");
    }
    disk.power_loss().expect("power loss");
    let (mut log, _sm) = open_sim(&disk, 1, None, None).expect("reopen");
    assert!(log.try_get_log_entries(..).await.expect("entries").is_empty());
}

/// The planted bug `ForgetVoteOnRestart`: after a mere process crash the node is back at the
/// vote of its previous term.
#[tokio::test]
async fn forget_vote_on_restart_brings_back_the_previous_terms_vote() {
    let disk = SimDisk::new().expect("disk");
    let bug = Some(PlantedBug::ForgetVoteOnRestart);
    {
        let (mut log, _sm) = open_sim(&disk, 1, None, bug).expect("open");
        log.save_vote(&Vote::new(2, 1)).await.expect("vote");
        log.save_vote(&Vote::new(3, 2)).await.expect("vote");
        let mut committed = Vote::new(3, 2);
        committed.commit();
        log.save_vote(&committed).await.expect("vote");
        assert_eq!(log.read_vote().await.expect("vote"), Some(committed));
    }
    let (mut log, _sm) = open_sim(&disk, 1, None, bug).expect("reopen");
    assert_eq!(log.read_vote().await.expect("vote"), Some(Vote::new(2, 1)));
    drop(log);
    let (mut log, _sm) = open_sim(&disk, 1, None, bug).expect("reopen");
    assert_eq!(log.read_vote().await.expect("vote"), None, "then to no vote at all");
}

#[tokio::test]
async fn the_observer_hears_every_write_in_order() {
    let disk = SimDisk::new().expect("disk");
    let recorded = Arc::new(Recorded::default());
    let observer: Arc<dyn StoreObserver> = recorded.clone();
    let request = request_entry(2, 7, 1, put("k", "v"));
    let digest = payload_digest(&request.payload);
    {
        let (mut log, mut sm) = open_sim(&disk, 4, Some(observer.clone()), None).expect("open");
        let opened = recorded.take();
        assert!(
            matches!(&opened[..], [StoreChange::Opened { vote: None, applied: None, log, .. }] if log.is_empty()),
            "{opened:?}"
        );
        let mut vote = Vote::new(2, 4);
        vote.commit();
        log.save_vote(&vote).await.expect("vote");
        log.blocking_append([blank_entry(1), request.clone()]).await.expect("append");
        log.save_committed(Some(log_id(1, 2))).await.expect("commit");
        sm.apply([blank_entry(1), request.clone()]).await.expect("apply");
        log.truncate(log_id(1, 3)).await.expect("truncate");
        let blank = payload_digest(&EntryPayload::Blank);
        assert_eq!(
            recorded.take(),
            vec![
                StoreChange::Flushed,
                StoreChange::VoteSaved { term: 2, voted_for: 4, committed: true },
                StoreChange::Appended { entries: vec![(log_id(1, 1), blank), (log_id(1, 2), digest)] },
                StoreChange::Flushed,
                StoreChange::CommittedSaved { committed: Some(log_id(1, 2)) },
                StoreChange::Applied { log_id: log_id(1, 1), requests: vec![], digest: blank },
                StoreChange::Applied { log_id: log_id(1, 2), requests: vec![(7, 1)], digest },
                StoreChange::Truncated { since: 3 },
                StoreChange::Flushed,
            ]
        );
    }
    let _reopened = open_sim(&disk, 4, Some(observer), None).expect("reopen");
    let events = std::mem::take(&mut *recorded.0.lock().expect("lock"));
    assert!(events.iter().all(|e| e.node == 4));
    let StoreChange::Opened { committed, applied, log, .. } = &events.last().expect("opened").change else {
        panic!("the last event of an open is Opened: {events:?}")
    };
    assert_eq!((*committed, *applied), (Some(log_id(1, 2)), Some(log_id(1, 2))));
    assert_eq!(log.iter().map(|(id, _)| id.index).collect::<Vec<_>>(), vec![1, 2]);
}
