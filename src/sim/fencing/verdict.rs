//! What a fencing run's database history says: the checks of `quorumlab_fencing::check` (one file
//! per property there), the database history's linearizability, and the matrix cell.

use std::collections::BTreeMap;
use std::time::Duration;

use quorumlab_fencing::check::{self, Cell, DbRecord, Outcome};
use serde::Serialize;

use super::strategy::Strategy;
use super::World;
use crate::sim::invariants::availability::Window;
use crate::sim::run::Verdict;

/// A matrix cell: the worst thing the run showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MatrixCell {
    Safe,
    Unavailable,
    StaleReads,
    NotLinearizable,
    LostWrite,
    TwoPrimaries,
}

impl MatrixCell {
    pub fn label(&self) -> &'static str {
        match self {
            MatrixCell::Safe => "safe",
            MatrixCell::Unavailable => "unavailable",
            MatrixCell::StaleReads => "stale reads",
            MatrixCell::NotLinearizable => "NOT LINEARIZABLE",
            MatrixCell::LostWrite => "LOST WRITE",
            MatrixCell::TwoPrimaries => "TWO PRIMARIES",
        }
    }

    /// Whether the cell is a safety violation whatever the fence (unavailability is reported, never a
    /// violation: availability is lost, never safety).
    pub fn unsafe_(&self) -> bool {
        matches!(self, MatrixCell::NotLinearizable | MatrixCell::LostWrite | MatrixCell::TwoPrimaries)
    }

    /// Whether the cell breaks what `strategy` promises: stale reads by a deposed primary break every
    /// fence that stops the old primary (self-demotion, watchdog, STONITH, firewall), not the token
    /// fence, which stops only writes.
    pub fn unsafe_for(&self, strategy: Strategy) -> bool {
        self.unsafe_() || (*self == MatrixCell::StaleReads && strategy.stops_reads())
    }
}

/// One fencing run, summed up.
#[derive(Clone, Debug, Serialize)]
pub struct FencingSummary {
    pub strategy: String,
    pub cell: MatrixCell,
    /// From the first fault's start to the first promotion under a newer token, if one happened.
    pub failover_ms: Option<u64>,
    pub promotions: Vec<(u64, u64, u64)>,
    pub acknowledged: usize,
    /// Acknowledged writes missing from the final primary (asynchronous replication's price).
    pub lost: usize,
    pub deposed_reads: usize,
    /// Writes acknowledged during the last 4 s of the fault window.
    pub acked_late_in_fault: usize,
    #[serde(skip)]
    pub record: DbRecord,
}

/// The verdict names the fencing checks add to a run record.
pub const DB_LINEARIZABLE: &str = "db: linearizable";

/// Judges the world's record after the run; adds one verdict per check to `verdicts`.
pub fn judge(world: &World, windows: &[Window], verdicts: &mut BTreeMap<String, Verdict>) -> FencingSummary {
    let record = world.finish();
    for (name, outcome) in check::check_all(&record) {
        let v = match outcome {
            Outcome::Pass => Verdict::Pass,
            Outcome::Fail(v) => Verdict::Fail(v.to_string()),
            Outcome::NotJudged(why) => Verdict::NotChecked(why),
        };
        verdicts.insert(format!("db: {name}"), v);
    }
    let linearizable = match crate::sim::invariants::linearizable::check(&world.recorder.check()) {
        Ok(()) => Verdict::Pass,
        Err(v) => Verdict::Fail(format!("the database history: {v}")),
    };
    let lin_failed = linearizable.failed();
    verdicts.insert(DB_LINEARIZABLE.into(), linearizable);
    let fault_start = windows.first().map(|w| w.start);
    let fault_end = windows.iter().map(|w| w.end).max();
    let token_at_start = fault_start
        .and_then(|s| record.promotions.iter().filter(|p| p.at <= s).map(|p| p.token.0).max())
        .unwrap_or_default();
    let failover_ms = fault_start.and_then(|s| {
        record.promotions.iter().find(|p| p.at > s && p.token.0 > token_at_start).map(|p| (p.at - s).as_millis() as u64)
    });
    let acked_late_in_fault = match fault_end {
        Some(end) => {
            let from = end.saturating_sub(Duration::from_secs(4)).max(fault_start.unwrap_or_default());
            record.acks.iter().filter(|a| a.at >= from && a.at < end).count()
        }
        None => 0,
    };
    // Stale reads by a deposed primary also make the history non-linearizable; the cell names the cause.
    let cell = match check::classify(&record) {
        Cell::TwoPrimaries => MatrixCell::TwoPrimaries,
        Cell::LostWrite => MatrixCell::LostWrite,
        Cell::StaleReads => MatrixCell::StaleReads,
        Cell::Safe if lin_failed => MatrixCell::NotLinearizable,
        Cell::Safe if acked_late_in_fault == 0 && fault_end.is_some() => MatrixCell::Unavailable,
        Cell::Safe => MatrixCell::Safe,
    };
    FencingSummary {
        strategy: world.options.label(),
        cell,
        failover_ms,
        promotions: record.promotions.iter().map(|p| (p.member.0, p.token.0, p.at.as_millis() as u64)).collect(),
        acknowledged: record.acks.len(),
        lost: check::lost_write::lost(&record).len(),
        deposed_reads: check::stale_reads::deposed_reads(&record),
        acked_late_in_fault,
        record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_reads_break_every_fence_that_stops_the_old_primary_but_not_tokens() {
        for s in Strategy::ALL {
            assert_eq!(MatrixCell::StaleReads.unsafe_for(s), s != Strategy::Credentials, "{s}");
            assert!(MatrixCell::TwoPrimaries.unsafe_for(s) && MatrixCell::LostWrite.unsafe_for(s), "{s}");
            assert!(!MatrixCell::Unavailable.unsafe_for(s) && !MatrixCell::Safe.unsafe_for(s), "{s}");
        }
    }
}
