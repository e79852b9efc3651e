//! Checking a whole history: pair events, let the model read each op, split per key, search each key alone.
//!
//! Splitting is sound because keys of a `kv` store are independent objects: a history is linearizable iff
//! its restriction to every key is (Herlihy & Wing's locality; Horn & Kroening's P-compositionality).

use std::collections::BTreeMap;

use crate::history::{History, HistoryError, Operation};
use crate::model::{Model, ModelKind};
use crate::search::{search, Budget, Exhausted, SearchOp, SearchResult};
use crate::verdict::{OpSummary, Outcome, PartitionVerdict, PlacedOp, Stats, Verdict, Violation};

/// Why a history could not be checked at all (as opposed to a verdict of "not linearizable").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Checks `history` against `model` within `budget`.
///
/// ```
/// use quorumlab_check::{check_history, Budget, History, ModelKind, Outcome, Value};
/// let mut h = History::new();
/// h.invoke(0, "put", Some("x"), Value::Int(1)).ok(0, Value::Nil);
/// h.invoke(1, "get", Some("x"), Value::Nil).ok(1, Value::Int(2));
/// let verdict = check_history(&h, &ModelKind::Kv(Default::default()), &Budget::unlimited()).unwrap();
/// assert_eq!(verdict.outcome, Outcome::NotLinearizable);
/// ```
pub fn check_history(history: &History, model: &ModelKind, budget: &Budget) -> Result<Verdict, CheckError> {
    match model {
        ModelKind::Kv(m) => check_with(history, m, budget),
        ModelKind::CasRegister(m) => check_with(history, m, budget),
        ModelKind::MultiRegister(m) => check_with(history, m, budget),
    }
}

/// A partition's ops, with the model's reading of each.
pub(crate) type Partition<M> = Vec<(Operation, <M as Model>::Op)>;

/// Pairs the history and splits it into partitions in key order (`None` first).
pub(crate) fn partitions<M: Model>(
    history: &History,
    model: &M,
) -> Result<BTreeMap<Option<String>, Partition<M>>, CheckError> {
    let mut parts: BTreeMap<Option<String>, Partition<M>> = BTreeMap::new();
    for op in history.operations()? {
        let parsed = model.parse(&op).map_err(|message| HistoryError::BadOperation {
            at: format!("{} (process {}, {})", op.interval.invoke_place(), op.process, op.f),
            message,
        })?;
        let key = if model.partition_by_key() { op.key.clone() } else { None };
        parts.entry(key).or_default().push((op, parsed));
    }
    Ok(parts)
}

pub(crate) fn summary<M: Model>(model: &M, op: &Operation, parsed: &M::Op) -> OpSummary {
    OpSummary {
        process: op.process,
        description: model.describe_op(parsed),
        unknown: op.is_unknown(),
        interval: op.interval,
    }
}

/// One partition's key and its ops as a report shows them.
pub type PartitionOps = (Option<String>, Vec<OpSummary>);

/// Every partition's ops as a report shows them, for drawing the history.
pub fn describe_partitions(history: &History, model: &ModelKind) -> Result<Vec<PartitionOps>, CheckError> {
    fn with<M: Model>(history: &History, model: &M) -> Result<Vec<PartitionOps>, CheckError> {
        let parts = partitions(history, model)?;
        Ok(parts
            .into_iter()
            .map(|(key, ops)| (key, ops.iter().map(|(op, parsed)| summary(model, op, parsed)).collect()))
            .collect())
    }
    match model {
        ModelKind::Kv(m) => with(history, m),
        ModelKind::CasRegister(m) => with(history, m),
        ModelKind::MultiRegister(m) => with(history, m),
    }
}

/// [`check_history`] for any [`Model`], including ones defined outside this crate.
pub fn check_with<M: Model>(history: &History, model: &M, budget: &Budget) -> Result<Verdict, CheckError> {
    let parts = partitions(history, model)?;
    let mut stats = Stats::default();
    let mut verdicts = Vec::with_capacity(parts.len());
    for (key, ops) in parts {
        stats.operations += ops.len();
        stats.unknown_outcomes += ops.iter().filter(|(op, _)| op.is_unknown()).count();
        let verdict = check_partition(model, key, &ops, budget);
        stats.steps += verdict.steps;
        stats.peak_memo_entries = stats.peak_memo_entries.max(verdict.memo_entries);
        verdicts.push(verdict);
    }
    stats.peak_memo_bytes_estimate = memo_bytes_estimate::<M>(stats.peak_memo_entries, &verdicts);
    let outcome = verdicts.iter().map(|v| v.outcome).max().unwrap_or(Outcome::Linearizable);
    Ok(Verdict { outcome, model: model.name().to_string(), partitions: verdicts, stats })
}

fn memo_bytes_estimate<M: Model>(peak_entries: usize, verdicts: &[PartitionVerdict]) -> usize {
    let largest_partition = verdicts.iter().map(|v| v.operations).max().unwrap_or(0);
    peak_entries * (std::mem::size_of::<(Box<[u64]>, M::State)>() + largest_partition.div_ceil(64) * 8 + 16)
}

fn check_partition<M: Model>(
    model: &M,
    key: Option<String>,
    ops: &[(Operation, M::Op)],
    budget: &Budget,
) -> PartitionVerdict {
    // Unconstrained ops (unknown reads) fit anywhere and change nothing: searching them only costs time.
    let searched: Vec<usize> = (0..ops.len()).filter(|&i| !model.is_unconstrained(&ops[i].1)).collect();
    let search_ops: Vec<SearchOp<'_, M::Op>> = searched
        .iter()
        .map(|&i| SearchOp {
            op: &ops[i].1,
            invoke_index: ops[i].0.interval.invoke_index,
            return_index: ops[i].0.interval.return_index,
        })
        .collect();
    let (result, stats) = search(model, &search_ops, budget);
    let mut verdict = PartitionVerdict {
        key,
        outcome: Outcome::Linearizable,
        operations: ops.len(),
        unknown_reason: None,
        violation: None,
        steps: stats.steps,
        memo_entries: stats.memo_entries,
    };
    match result {
        SearchResult::Linearizable => {}
        SearchResult::OutOfBudget(exhausted) => {
            verdict.outcome = Outcome::Unknown;
            verdict.unknown_reason = Some(match exhausted {
                Exhausted::Time => "the time budget ran out before the search finished".to_string(),
                Exhausted::Steps => {
                    format!("the search used up its budget of {} steps", budget.max_steps.unwrap_or(stats.steps))
                }
                Exhausted::Memory => format!(
                    "the memo grew past its memory budget ({} entries, about {} MiB)",
                    stats.memo_entries,
                    stats.memo_bytes_estimate >> 20
                ),
            });
        }
        SearchResult::NotLinearizable { prefix, culprit, rejected_in, rejected_in_truncated, fits_somewhere } => {
            verdict.outcome = Outcome::NotLinearizable;
            let mut state = model.init();
            let mut placed = Vec::with_capacity(prefix.len());
            for &i in &prefix {
                let (op, parsed) = &ops[searched[i]];
                // The prefix was found by the search, so replaying it succeeds.
                if let Some(next) = model.step(&state, parsed) {
                    state = next;
                }
                placed.push(PlacedOp { op: summary(model, op, parsed), state_after: model.describe_state(&state) });
            }
            let (op, parsed) = &ops[searched[culprit]];
            verdict.violation = Some(Violation {
                initial_state: model.describe_state(&model.init()),
                prefix: placed,
                culprit: summary(model, op, parsed),
                requirement: model.requirement(parsed),
                observed_states: rejected_in.iter().map(|s| model.describe_state(s)).collect(),
                observed_states_truncated: rejected_in_truncated,
                culprit_fits_somewhere: fits_somewhere,
            });
        }
    }
    verdict
}
