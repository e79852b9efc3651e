//! Availability as predicted: where the quorum oracle says clients can write, their writes commit; where it says
//! they cannot, none does, and no read is answered. Raft promises safety always and liveness only where a
//! majority can be reached (Raft paper §5, dissertation §3.1); this holds the cluster to exactly that boundary.
//!
//! The prediction is [`quorumlab_quorum::predict_with_leader`] for quorumlab's node ([`RaftVariant::LeaderLease`]:
//! openraft 0.9 refuses votes while a leader lease is live, and has no PreVote), given the node that led when the
//! fault window opened. [`Availability::Either`] is "allowed, not required" (a disruption or an election race may
//! go either way) and is not held to anything.
//!
//! Per fault window and client datacenter, once elections had `settle` to finish after the window opened:
//! - predicted available: of the writes invoked after the settle point and at least one client deadline before the
//!   window closed, at least [`AVAILABLE_SHARE`] percent are acknowledged (a failed compare-and-swap counts: the
//!   cluster answered), and there is at least one;
//! - predicted unavailable: no write invoked after the settle point is acknowledged before the window closes, and no
//!   read is answered: reads fail or time out, never a (possibly stale) answer.

use std::collections::BTreeMap;
use std::time::Duration;

use quorumlab_check::{EventKind, History};
use quorumlab_quorum::{Availability, LeaderPrediction};
use serde::Serialize;

/// The share of writes, in percent, that must be acknowledged where the oracle predicts availability.
pub const AVAILABLE_SHARE: u64 = 80;

/// One stretch of time with one set of active faults.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    /// The faults active, by name.
    pub faults: Vec<String>,
    #[serde(serialize_with = "ser_ms")]
    pub start: Duration,
    #[serde(serialize_with = "ser_ms")]
    pub end: Duration,
    /// The node leading when the window opened.
    pub leader: Option<u64>,
    /// `None` where a fault the oracle does not model (pause, latency, loss) is active.
    pub prediction: Option<LeaderPrediction>,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// What one client datacenter saw in one window, after the settle point.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// Writes invoked in the judged span, and how many of them were acknowledged.
    pub writes: u64,
    pub acked: u64,
    /// Writes invoked after the settle point and acknowledged before the window closed.
    pub acked_in_window: u64,
    /// Reads answered in the window after the settle point.
    pub reads_answered: u64,
    /// Write latencies (ms) of acknowledged writes invoked in the window, for percentiles.
    #[serde(skip)]
    pub latencies_ms: Vec<u64>,
}

/// What a client datacenter saw, in one word, whatever was predicted: the same reading of [`Observed`] as
/// [`compare`]'s, so the simulator's and real mode's windows can be set side by side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// At least [`AVAILABLE_SHARE`] percent of its judged writes were acknowledged.
    Writes,
    /// No write acknowledged in the window after the settle point, and no read answered.
    NoWrites,
    /// Some answers, fewer than an available cluster gives.
    Partial,
    /// Nothing was invoked in the judged span.
    NotJudged,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Writes => "writes",
            Outcome::NoWrites => "no writes",
            Outcome::Partial => "partial",
            Outcome::NotJudged => "not judged",
        }
    }
}

impl Observed {
    pub fn outcome(&self) -> Outcome {
        if self.writes > 0 && self.acked * 100 >= self.writes * AVAILABLE_SHARE {
            Outcome::Writes
        } else if self.acked_in_window == 0 && self.reads_answered == 0 {
            if self.writes == 0 {
                Outcome::NotJudged
            } else {
                Outcome::NoWrites
            }
        } else {
            Outcome::Partial
        }
    }
}

/// The comparison for one window and one client datacenter.
#[derive(Clone, Debug, Serialize)]
pub struct DcVerdict {
    pub dc: String,
    pub predicted: Availability,
    pub observed: Observed,
    pub agree: bool,
    /// Why, in words, when they disagree (or why nothing was judged).
    pub note: String,
}

/// Compares every window's prediction with the history. `tags` maps each history process to its datacenter.
pub fn compare(
    windows: &[Window],
    history: &History,
    tags: &BTreeMap<u64, String>,
    settle: Duration,
    op_timeout: Duration,
) -> Vec<(usize, DcVerdict)> {
    let ops = operations(history, tags);
    let mut out = Vec::new();
    for (index, window) in windows.iter().enumerate() {
        let Some(prediction) = &window.prediction else { continue };
        let settled = window.start + settle;
        let judged_until = window.end.saturating_sub(op_timeout);
        for (dc, predicted) in &prediction.client_dcs {
            let seen = observe(window, &ops, dc, settle, op_timeout);
            let (agree, note) = judge(*predicted, &seen, settled >= judged_until);
            let reason = prediction.reasons.get(dc).cloned().unwrap_or_default();
            let note = if agree { note } else { format!("{note}; the oracle: {reason}") };
            out.push((index, DcVerdict { dc: dc.clone(), predicted: *predicted, observed: seen, agree, note }));
        }
    }
    out
}

fn judge(predicted: Availability, seen: &Observed, too_short: bool) -> (bool, String) {
    match predicted {
        Availability::Either => (true, "either outcome is allowed".into()),
        Availability::Available if too_short => (true, "the window is shorter than the settle time".into()),
        Availability::Available if seen.writes == 0 => {
            (false, "predicted to write, but no write was invoked after the cluster had time to settle".into())
        }
        Availability::Available => {
            let ok = seen.acked * 100 >= seen.writes * AVAILABLE_SHARE;
            let note = format!("{} of {} writes acknowledged ({}% needed)", seen.acked, seen.writes, AVAILABLE_SHARE);
            (ok, if ok { note } else { format!("predicted to write, but only {note}") })
        }
        Availability::Unavailable => {
            if seen.acked_in_window > 0 {
                (false, format!("predicted unable to write, yet {} writes were acknowledged", seen.acked_in_window))
            } else if seen.reads_answered > 0 {
                (false, format!("predicted unable to reach a leader, yet {} reads were answered", seen.reads_answered))
            } else {
                (true, "no write acknowledged, no read answered".into())
            }
        }
    }
}

/// What client datacenter `dc` saw in `window`, once elections had `settle` to finish after it opened.
pub fn observe(window: &Window, ops: &[Op], dc: &str, settle: Duration, op_timeout: Duration) -> Observed {
    let settled = window.start + settle;
    let mut seen = Observed::default();
    let judged_until = window.end.saturating_sub(op_timeout);
    for op in ops.iter().filter(|op| op.dc == dc && op.invoked >= settled) {
        let in_window = op.completed.is_some_and(|t| t < window.end);
        if op.write {
            if op.invoked < judged_until {
                seen.writes += 1;
                if op.ok {
                    seen.acked += 1;
                }
            }
            if op.ok && in_window {
                seen.acked_in_window += 1;
                if let Some(t) = op.completed {
                    seen.latencies_ms.push((t - op.invoked).as_millis() as u64);
                }
            }
        } else if op.ok && in_window && op.invoked < window.end {
            seen.reads_answered += 1;
        }
    }
    seen
}

/// One completed or abandoned client operation.
#[derive(Clone, Debug)]
pub struct Op {
    /// The process's tag: its client datacenter (`dc1`), or `dc1/holder` for a lease holder.
    pub dc: String,
    /// Anything but a read.
    pub write: bool,
    /// Answered: acknowledged, or a compare that failed (the cluster answered either way).
    pub ok: bool,
    pub invoked: Duration,
    /// `None`: the outcome is unknown (the client gave up waiting).
    pub completed: Option<Duration>,
}

/// Every operation of the tagged processes, in the order they completed.
pub fn operations(history: &History, tags: &BTreeMap<u64, String>) -> Vec<Op> {
    let mut open: BTreeMap<u64, (bool, Duration)> = BTreeMap::new();
    let mut ops = Vec::new();
    let at = |ns: Option<u64>| Duration::from_nanos(ns.unwrap_or(0));
    for event in &history.events {
        let Some(dc) = tags.get(&event.process) else { continue };
        match event.kind {
            EventKind::Invoke => {
                open.insert(event.process, (event.f != "get", at(event.time_ns)));
            }
            kind => {
                if let Some((write, invoked)) = open.remove(&event.process) {
                    let ok = kind == EventKind::Ok;
                    let completed = (kind != EventKind::Info).then(|| at(event.time_ns));
                    ops.push(Op { dc: dc.clone(), write, ok, invoked, completed });
                }
            }
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorumlab_check::{Event, Value};

    fn history(events: &[(u64, EventKind, &str, u64)]) -> History {
        let mut h = History::default();
        for &(p, kind, f, ms) in events {
            let mut e = Event::new(p, kind, f, Value::Nil).with_key("k0");
            e.time_ns = Some(ms * 1_000_000);
            h.push(e);
        }
        h
    }

    fn window(dc1: Availability) -> Window {
        let prediction = LeaderPrediction {
            variant: quorumlab_quorum::RaftVariant::LeaderLease,
            leader: Some(1),
            client_dcs: BTreeMap::from([("dc1".to_string(), dc1)]),
            leaders_after: Default::default(),
            leadership_can_move: false,
            disruptors: Default::default(),
            churns: false,
            reasons: BTreeMap::from([("dc1".to_string(), "because".to_string())]),
            summary: String::new(),
            caveats: vec![],
        };
        Window {
            faults: vec!["cut".into()],
            start: Duration::ZERO,
            end: Duration::from_secs(10),
            leader: Some(1),
            prediction: Some(prediction),
        }
    }

    fn verdict(w: Window, h: &History) -> DcVerdict {
        let tags = BTreeMap::from([(0, "dc1".to_string()), (1, "dc1".to_string())]);
        let v = compare(&[w], h, &tags, Duration::from_secs(2), Duration::from_secs(1));
        v.into_iter().next().expect("one verdict").1
    }

    #[test]
    fn an_acknowledged_write_where_none_is_possible_is_caught() {
        use EventKind::*;
        let h = history(&[(0, Invoke, "put", 3000), (0, Ok, "put", 3010)]);
        let v = verdict(window(Availability::Unavailable), &h);
        assert!(!v.agree && v.note.contains("1 writes were acknowledged"), "{v:?}");
    }

    #[test]
    fn an_answered_read_where_no_leader_is_reachable_is_caught() {
        use EventKind::*;
        let h = history(&[
            (0, Invoke, "get", 3000),
            (0, Ok, "get", 3010),
            (1, Invoke, "put", 4000),
            (1, Info, "put", 5500),
        ]);
        let v = verdict(window(Availability::Unavailable), &h);
        assert!(!v.agree && v.note.contains("reads were answered"), "{v:?}");
    }

    #[test]
    fn writes_before_the_settle_point_are_not_judged() {
        use EventKind::*;
        let h = history(&[(0, Invoke, "put", 500), (0, Ok, "put", 600)]);
        assert!(verdict(window(Availability::Unavailable), &h).agree);
    }

    #[test]
    fn a_stranded_datacenter_predicted_available_is_caught_and_a_working_one_passes() {
        use EventKind::*;
        let stuck = history(&[
            (0, Invoke, "put", 3000),
            (0, Info, "put", 4500),
            (1, Invoke, "put", 5000),
            (1, Info, "put", 6500),
        ]);
        let v = verdict(window(Availability::Available), &stuck);
        assert!(!v.agree && v.note.contains("only 0 of 2"), "{v:?}");
        let fine =
            history(&[(0, Invoke, "put", 3000), (0, Ok, "put", 3020), (0, Invoke, "cas", 4000), (0, Ok, "cas", 4020)]);
        assert!(verdict(window(Availability::Available), &fine).agree);
        assert!(verdict(window(Availability::Either), &stuck).agree);
    }
}
