//! Checking a whole history: pair events, let the model read each op, split per key, search each key alone.
//!
//! Splitting is sound because keys of a `kv` store are independent objects: a history is linearizable iff
//! its restriction to every key is (Herlihy & Wing's locality; Horn & Kroening's P-compositionality). A model
//! whose ops span several keys (`lease-kv`'s transactions and leases) names the objects each op touches
//! instead, and the history splits into the connected components of those ([`components`]).

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// How to run a check: its budget, whether to explain every key, and on how many threads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Limits on each partition's search; an exhausted budget gives that partition the verdict unknown.
    pub budget: Budget,
    /// `false` (the default): stop at the first key proven not linearizable, like Porcupine's kill switch,
    /// and cancel the searches of the keys ordered after it. `true`: search every key to the end, to explain
    /// each one. The overall outcome is the same either way; only how much is explained differs.
    pub all_keys: bool,
    /// How many partitions to search at once, each on its own thread. `None`: as many as the machine has
    /// cores ([`std::thread::available_parallelism`]). The verdict does not depend on it; peak memory does:
    /// up to this many memos, each within the budget, are alive at once. A caller that already runs one
    /// check per core (the simulator's `--jobs`) should say 1.
    pub threads: Option<NonZeroUsize>,
}

impl CheckOptions {
    /// The defaults (stop at the first failing key, one thread per core) with this budget.
    pub fn with_budget(budget: Budget) -> CheckOptions {
        CheckOptions { budget, ..CheckOptions::default() }
    }
}

/// Checks `history` against `model` within `budget`, with the other [`CheckOptions`] at their defaults:
/// it stops at the first key proven not linearizable.
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
    check_history_with_options(history, model, &CheckOptions::with_budget(budget.clone()))
}

/// Checks `history` against `model` as `options` say.
pub fn check_history_with_options(
    history: &History,
    model: &ModelKind,
    options: &CheckOptions,
) -> Result<Verdict, CheckError> {
    match model {
        ModelKind::Kv(m) => check_with_options(history, m, options),
        ModelKind::CasRegister(m) => check_with_options(history, m, options),
        ModelKind::MultiRegister(m) => check_with_options(history, m, options),
        ModelKind::LeaseKv(m) => check_with_options(history, m, options),
    }
}

/// A partition's ops, with the model's reading of each.
pub(crate) type Partition<M> = Vec<(Operation, <M as Model>::Op)>;

/// One partition: the history's ops, and the model's spontaneous steps that are searched with them.
pub(crate) struct Part<M: Model> {
    pub ops: Partition<M>,
    pub spontaneous: Partition<M>,
}

impl<M: Model> Default for Part<M> {
    fn default() -> Self {
        Part { ops: Vec::new(), spontaneous: Vec::new() }
    }
}

/// Pairs the history and splits it into partitions in key order (`None` first): per key, per connected
/// component of the objects ops touch (when the model names them), or not at all.
pub(crate) fn partitions<M: Model>(
    history: &History,
    model: &M,
) -> Result<BTreeMap<Option<String>, Part<M>>, CheckError> {
    let mut parsed: Partition<M> = Vec::new();
    for op in history.operations()? {
        let op_model = model.parse(&op).map_err(|message| HistoryError::BadOperation {
            at: format!("{} (process {}, {})", op.interval.invoke_place(), op.process, op.f),
            message,
        })?;
        parsed.push((op, op_model));
    }
    let spontaneous = model.spontaneous(&parsed);
    let all = || parsed.iter().chain(&spontaneous);
    let names: Vec<Option<String>> = if model.partition_by_key() {
        all().map(|(op, _)| op.key.clone()).collect()
    } else if let Some(touched) = all().map(|(_, op)| model.objects(op)).collect::<Option<Vec<_>>>() {
        components::component_names(&touched)
    } else {
        vec![None; parsed.len() + spontaneous.len()]
    };
    let mut parts: BTreeMap<Option<String>, Part<M>> = BTreeMap::new();
    let (real, extra) = names.split_at(parsed.len());
    for (name, op) in real.iter().zip(parsed) {
        parts.entry(name.clone()).or_default().ops.push(op);
    }
    for (name, op) in extra.iter().zip(spontaneous) {
        parts.entry(name.clone()).or_default().spontaneous.push(op);
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
            .map(|(key, part)| (key, part.ops.iter().map(|(op, parsed)| summary(model, op, parsed)).collect()))
            .collect())
    }
    match model {
        ModelKind::Kv(m) => with(history, m),
        ModelKind::CasRegister(m) => with(history, m),
        ModelKind::MultiRegister(m) => with(history, m),
        ModelKind::LeaseKv(m) => with(history, m),
    }
}

/// [`check_history`] for any [`Model`], including ones defined outside this crate.
pub fn check_with<M: Model>(history: &History, model: &M, budget: &Budget) -> Result<Verdict, CheckError> {
    check_with_options(history, model, &CheckOptions::with_budget(budget.clone()))
}

/// [`check_history_with_options`] for any [`Model`].
///
/// Partitions are handed out in key order to a small pool of workers. Unless `options.all_keys`, a worker
/// that proves partition `i` not linearizable lowers a shared mark to `i`; every search of a partition
/// after the mark polls it and gives up, and no partition after it is started. Partitions before the mark
/// always run to the end, because one of them may fail too, and the verdict must name the first failing
/// key in key order whichever thread got there first. So the verdict is the same on any number of threads:
/// every partition up to the first failing one, searched to the end, and the keys after it listed as not
/// checked.
pub fn check_with_options<M: Model>(
    history: &History,
    model: &M,
    options: &CheckOptions,
) -> Result<Verdict, CheckError> {
    check_partitions(history, model, options, StopRule::OnFailure)
}

/// Which finished partitions lower the mark that stops the others. Only `OnFailure` is right; the planted
/// bug exists to show that the tests catch a wrong early stop, and compiles only into this crate's unit tests.
#[derive(Clone, Copy, Debug)]
enum StopRule {
    OnFailure,
    /// Stops as soon as any key is decided, so a history whose first key is linearizable passes whatever
    /// the keys after it hold.
    #[cfg(test)]
    PlantedBugOnAnyVerdict,
}

impl StopRule {
    fn stops_at(self, outcome: Outcome) -> bool {
        match self {
            StopRule::OnFailure => outcome == Outcome::NotLinearizable,
            #[cfg(test)]
            StopRule::PlantedBugOnAnyVerdict => true,
        }
    }
}

fn check_partitions<M: Model>(
    history: &History,
    model: &M,
    options: &CheckOptions,
    rule: StopRule,
) -> Result<Verdict, CheckError> {
    let parts: Vec<(Option<String>, Part<M>)> = partitions(history, model)?.into_iter().collect();
    let mut stats = Stats::default();
    for (_, part) in &parts {
        stats.operations += part.ops.len();
        stats.unknown_outcomes += part.ops.iter().filter(|(op, _)| op.is_unknown()).count();
    }
    // Invariant: no partition at or before `first_failure` is ever cancelled or skipped.
    let first_failure = AtomicUsize::new(usize::MAX);
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= parts.len() || (!options.all_keys && first_failure.load(Ordering::Relaxed) < i) {
                // Partitions are handed out in order, so every later one is past the mark too.
                return done;
            }
            let cancelled = || !options.all_keys && first_failure.load(Ordering::Relaxed) < i;
            let (key, part) = &parts[i];
            if let Some(verdict) = check_partition(model, key.clone(), part, &options.budget, &cancelled) {
                if rule.stops_at(verdict.outcome) {
                    first_failure.fetch_min(i, Ordering::Relaxed);
                }
                done.push((i, verdict));
            }
        }
    };
    let threads = options
        .threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get)
        .min(parts.len());
    let mut done: Vec<(usize, PartitionVerdict)> = if threads <= 1 {
        worker()
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    };
    done.sort_unstable_by_key(|(i, _)| *i);
    // Keys after the first failing one are dropped even if a thread happened to finish them: what a verdict
    // says must not depend on which thread was faster.
    let cut = if options.all_keys { usize::MAX } else { first_failure.into_inner() };
    let verdicts: Vec<PartitionVerdict> = done.into_iter().filter(|(i, _)| *i <= cut).map(|(_, v)| v).collect();
    debug_assert_eq!(verdicts.len(), parts.len().min(cut.saturating_add(1)), "every partition up to the cut ran");
    let unchecked_keys = parts.iter().skip(verdicts.len()).map(|(key, _)| key.clone()).collect();
    for verdict in &verdicts {
        stats.steps += verdict.steps;
        stats.peak_memo_entries = stats.peak_memo_entries.max(verdict.memo_entries);
    }
    stats.peak_memo_bytes_estimate = memo_bytes_estimate::<M>(stats.peak_memo_entries, &verdicts);
    let outcome = verdicts.iter().map(|v| v.outcome).max().unwrap_or(Outcome::Linearizable);
    Ok(Verdict { outcome, model: model.name().to_string(), partitions: verdicts, unchecked_keys, stats })
}

fn memo_bytes_estimate<M: Model>(peak_entries: usize, verdicts: &[PartitionVerdict]) -> usize {
    let largest_partition = verdicts.iter().map(|v| v.operations).max().unwrap_or(0);
    peak_entries * (std::mem::size_of::<(Box<[u64]>, M::State)>() + largest_partition.div_ceil(64) * 8 + 16)
}

fn check_partition<M: Model>(
    model: &M,
    key: Option<String>,
    part: &Part<M>,
    budget: &Budget,
    cancelled: &dyn Fn() -> bool,
) -> Option<PartitionVerdict> {
    // Spontaneous steps are searched after the history's own ops, as ops whose outcome is unknown.
    let ops: Vec<&(Operation, M::Op)> = part.ops.iter().chain(&part.spontaneous).collect();
    // Unconstrained ops (unknown reads) fit anywhere and change nothing: searching them only costs time.
    let searched: Vec<usize> = (0..ops.len()).filter(|&i| !model.is_unconstrained(&ops[i].1)).collect();
    let search_ops: Vec<SearchOp<'_, M::Op>> = searched
        .iter()
        .map(|&i| SearchOp {
            op: &ops[i].1,
            invoke_index: ops[i].0.interval.invoke_index,
            // A spontaneous step's `Operation` has no return: it may happen until +∞, or never.
            return_index: ops[i].0.interval.return_index,
        })
        .collect();
    let (result, stats) = search(model, &search_ops, budget, cancelled);
    let mut verdict = PartitionVerdict {
        key,
        outcome: Outcome::Linearizable,
        operations: part.ops.len(),
        unknown_reason: None,
        violation: None,
        steps: stats.steps,
        memo_entries: stats.memo_entries,
    };
    match result {
        SearchResult::Cancelled => return None,
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
    Some(verdict)
}

mod components;
#[cfg(test)]
mod early_stop_tests;
