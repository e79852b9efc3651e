//! The leader's write batcher: clients' single-key writes that wait at the same time go to Raft as one entry.
//!
//! openraft 0.9's core awaits the flush of every entry it appends before it handles its next message
//! (`RaftCore::append_to_log`), so a leader proposing one entry per write makes one flush per write, whatever
//! its store's group commit does: at 64 clients the leader flushed 3,000 times a second while its followers
//! flushed 100 times (`benches/etcd_compare.rs` prints these counts). etcd batches the proposals that wait
//! during one disk write into its next; this does the same one level up, as one [`Op::Batch`] entry.
//!
//! A batch is formed when a proposal slot is free: [`MAX_IN_FLIGHT`] proposal is in Raft at a time, and every
//! write that arrives meanwhile waits in the queue, so under load each proposal carries what arrived during the
//! previous one, and a lone write goes at once, unwrapped (the entry is the write itself, as without the
//! batcher). A batch holds no two commands on the same key: the commands of one entry share its index as their
//! revision, and one key modified twice at one revision would let a compare-and-swap on the first revision pass
//! against the second value. A repeated key starts the next batch. A write whose client stopped waiting (its
//! deadline passed) is dropped before it is proposed: its outcome was reported unknown, and not proposing it
//! keeps it from landing after the client's next write.
//!
//! Safety does not rest here: each command keeps its own session (a retried `(client_id, seq)` in or across
//! batches is answered from it), and the state machine applies a batch's commands one by one, in order.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tonic::Status;

use super::service::client_write;
use crate::store::kv::NO_SESSION;
use crate::types::{Op, Raft, Request, Response};

/// Proposals in Raft at once: one, as etcd has one `Ready` in progress at a time. Measured on the 2-core machine
/// of `benches/etcd_compare.rs`, alternating: 1 did 4,176–4,270 writes/s at 16 clients and 8,533–8,864 at 64,
/// 2 did 3,790–3,913 and 7,708–8,258, 4 did 3,693–3,701 and 7,657–8,030. openraft 0.9 replicates one message at a
/// time per follower and appends one entry at a time, so a second proposal in Raft only splits the next batch.
pub const MAX_IN_FLIGHT: usize = 1;
/// Most commands in one batch.
pub const MAX_BATCH: usize = 256;
/// Most key and value bytes in one batch (the first command is always taken, whatever its size).
pub const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// A write waiting for its batch.
struct Waiting {
    request: Request,
    reply: oneshot::Sender<Result<Response, Status>>,
}

/// The batcher's queue (cheap to clone). The batcher task runs until every clone is dropped.
#[derive(Clone)]
pub struct Batcher {
    queue: mpsc::UnboundedSender<Waiting>,
}

impl Batcher {
    /// Starts the batcher task on the current runtime.
    pub fn start(raft: Raft) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Batcher { queue }
    }

    /// Whether `op` may share an entry with other clients' writes: single-key writes only. Transactions and lease
    /// commands go alone (a lease id is its grant's index, so two grants cannot share one).
    pub fn batches(op: &Op) -> bool {
        matches!(op, Op::Put { .. } | Op::Delete { .. } | Op::Cas { .. })
    }

    /// Proposes `request` in the next batch and waits for its own response.
    pub async fn propose(&self, request: Request) -> Result<Response, Status> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Waiting { request, reply }).map_err(|_| Status::unavailable("the node is shutting down"))?;
        answer.await.map_err(|_| Status::unavailable("the node is shutting down"))?
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut carried: Option<Waiting> = None;
    loop {
        let first = match carried.take() {
            Some(w) => w,
            None => match rx.recv().await {
                Some(w) => w,
                None => return,
            },
        };
        // Wait for a slot first: whatever arrives meanwhile joins this batch.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let batch;
        (batch, carried) = form(first, || rx.try_recv().ok());
        if batch.is_empty() {
            continue;
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            propose(&raft, batch).await;
            drop(slot);
        });
    }
}

/// Forms one batch from `first` and the writes `next` yields while it has some: in order, skipping writes whose
/// client stopped waiting, and stopping before a key already in the batch, at [`MAX_BATCH`] writes, or at
/// [`MAX_BATCH_BYTES`]. Returns the batch and the write that stopped it, which starts the next one.
fn form(first: Waiting, mut next: impl FnMut() -> Option<Waiting>) -> (Vec<Waiting>, Option<Waiting>) {
    let mut batch: Vec<Waiting> = Vec::new();
    let mut keys = BTreeSet::new();
    let mut bytes = 0;
    let mut candidate = Some(first);
    while let Some(w) = candidate.take() {
        if !w.reply.is_closed() {
            let key = w.request.op.key().unwrap_or_default();
            let size = key.len() + value_len(&w.request.op);
            if !batch.is_empty() && (keys.contains(key) || bytes + size > MAX_BATCH_BYTES) {
                return (batch, Some(w));
            }
            keys.insert(key.to_vec());
            bytes += size;
            batch.push(w);
        }
        if batch.len() < MAX_BATCH {
            candidate = next();
        }
    }
    (batch, None)
}

fn value_len(op: &Op) -> usize {
    match op {
        Op::Put { value, .. } => value.len(),
        Op::Cas { expect_value, new_value, .. } => {
            expect_value.as_ref().and_then(|v| v.as_ref()).map_or(0, Vec::len) + new_value.as_ref().map_or(0, Vec::len)
        }
        _ => 0,
    }
}

/// Proposes one batch and answers each of its writes.
async fn propose(raft: &Raft, mut batch: Vec<Waiting>) {
    let request = if batch.len() == 1 {
        batch[0].request.clone()
    } else {
        let requests = batch.iter().map(|w| w.request.clone()).collect();
        Request { client_id: NO_SESSION, seq: 0, op: Op::Batch(requests) }
    };
    match client_write(raft, request).await {
        Ok(response) if batch.len() == 1 => {
            let w = batch.remove(0);
            let _ = w.reply.send(Ok(response));
        }
        Ok(response) if response.batch.len() == batch.len() => {
            for (w, r) in batch.into_iter().zip(response.batch) {
                let _ = w.reply.send(Ok(r));
            }
        }
        Ok(response) => {
            let status = Status::internal(format!(
                "a batch of {} writes applied with {} responses; outcome unknown",
                batch.len(),
                response.batch.len()
            ));
            for w in batch {
                let _ = w.reply.send(Err(status.clone()));
            }
        }
        Err(status) => {
            for w in batch {
                let _ = w.reply.send(Err(status.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Answer = oneshot::Receiver<Result<Response, Status>>;

    fn put(client_id: u64, key: &str, value_len: usize) -> (Waiting, Answer) {
        let (reply, answer) = oneshot::channel();
        let op = Op::Put { key: key.as_bytes().to_vec(), value: vec![b'v'; value_len], lease: 0 };
        (Waiting { request: Request { client_id, seq: 1, op }, reply }, answer)
    }

    fn clients(batch: &[Waiting]) -> Vec<u64> {
        batch.iter().map(|w| w.request.client_id).collect()
    }

    /// Forms a batch from writes `(client, key, value bytes)`; the receivers are returned so the replies stay open.
    fn form_from(writes: &[(u64, &str, usize)]) -> (Vec<Waiting>, Option<Waiting>, Vec<Answer>) {
        let (mut waiting, answers): (std::collections::VecDeque<_>, Vec<_>) =
            writes.iter().map(|&(c, k, n)| put(c, k, n)).unzip();
        let first = waiting.pop_front().expect("a first write");
        let (batch, carried) = form(first, || waiting.pop_front());
        (batch, carried, answers)
    }

    #[test]
    fn a_repeated_key_starts_the_next_batch() {
        let (batch, carried, _answers) = form_from(&[(1, "a", 1), (2, "b", 1), (3, "a", 1), (4, "c", 1)]);
        assert_eq!(clients(&batch), [1, 2]);
        assert_eq!(carried.map(|w| w.request.client_id), Some(3), "the second write of key a waits for the next");
    }

    #[test]
    fn a_batch_stops_at_its_size_limits() {
        let many: Vec<(u64, String)> = (0..MAX_BATCH as u64 + 10).map(|i| (i, format!("k{i}"))).collect();
        let writes: Vec<(u64, &str, usize)> = many.iter().map(|(i, k)| (*i, k.as_str(), 1)).collect();
        let (batch, carried, _answers) = form_from(&writes);
        assert_eq!(batch.len(), MAX_BATCH);
        assert!(carried.is_none(), "past the count limit nothing is taken from the queue");

        let half = MAX_BATCH_BYTES / 2;
        let (batch, carried, _answers) = form_from(&[(1, "a", half), (2, "b", half), (3, "c", 1)]);
        assert_eq!(clients(&batch), [1], "a second half-megabyte value would pass the byte limit");
        assert_eq!(carried.map(|w| w.request.client_id), Some(2));
        let (batch, _, _answers) = form_from(&[(1, "a", MAX_BATCH_BYTES * 2)]);
        assert_eq!(clients(&batch), [1], "a first write is always taken, whatever its size");
    }

    #[test]
    fn a_write_whose_client_stopped_waiting_is_not_proposed() {
        let (a, _answer_a) = put(1, "a", 1);
        let (b, answer_b) = put(2, "b", 1);
        let (c, _answer_c) = put(3, "c", 1);
        drop(answer_b);
        let mut rest = vec![b, c].into_iter();
        let (batch, carried) = form(a, || rest.next());
        assert_eq!(clients(&batch), [1, 3]);
        assert!(carried.is_none());
    }
}
