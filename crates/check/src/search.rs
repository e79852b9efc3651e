//! The search for a linearization of one partition: Wing & Gong's backtracking with Lowe's just-in-time
//! linearization and a memo of (set of linearized ops, model state), the algorithm Porcupine uses.
//!
//! The history is a doubly linked list of call and return entries in real-time order. Walking from the head:
//! - at a **call**, try to let that op take effect now: if the model accepts it and the resulting
//!   (linearized set, state) was never seen, remove the op's call and return from the list, push it on the
//!   stack and restart from the head;
//! - at a **return**, that op should already have taken effect but has not: undo the last choice (pop the
//!   stack, put its entries back) and try the next candidate after it.
//!
//! An op with an unknown outcome has its return at +∞, after every other entry. Reaching such a return means
//! every op that did return has been placed; the unknown ops left over simply never took effect, so the
//! partition is linearizable. An empty stack at a return means no order works: not linearizable.

use std::collections::HashSet;
use std::time::Instant;

use crate::model::Model;

/// Limits on one check. Running out of either gives the verdict *unknown*, never a guess.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// When to give up. Taken as a parameter so the search itself never reads the clock to decide anything else.
    pub deadline: Option<Instant>,
    /// Upper bound on the estimated size of one partition's memo, in bytes.
    pub max_memo_bytes: usize,
}

impl Budget {
    pub const DEFAULT_MAX_MEMO_BYTES: usize = 1 << 30;

    /// No deadline, and the default memory bound (1 GiB of memo per partition).
    pub fn unlimited() -> Budget {
        Budget { deadline: None, max_memo_bytes: Self::DEFAULT_MAX_MEMO_BYTES }
    }

    /// Gives up `timeout` from now.
    pub fn with_timeout(timeout: std::time::Duration) -> Budget {
        Budget { deadline: Instant::now().checked_add(timeout), ..Budget::unlimited() }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::unlimited()
    }
}

/// Which limit ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhausted {
    Time,
    Memory,
}

/// One op as the search sees it: the model's op and its place in real time.
pub(crate) struct SearchOp<'a, O> {
    pub op: &'a O,
    pub invoke_index: usize,
    /// `None`: unknown outcome, may take effect until +∞ or never.
    pub return_index: Option<usize>,
}

/// How many distinct states to remember per op for the explanation of a violation.
const REMEMBERED_STATES: usize = 8;

pub(crate) enum SearchResult<S> {
    Linearizable,
    NotLinearizable {
        /// Ops (indices into the input) of the longest linearizable prefix found, in linearization order.
        prefix: Vec<usize>,
        /// The op whose return was reached, at the end of that prefix, without it having taken effect.
        culprit: usize,
        /// States in which the culprit was tried and rejected (at most `REMEMBERED_STATES`).
        rejected_in: Vec<S>,
        rejected_in_truncated: bool,
        /// `true` if the culprit did fit somewhere, but every such placement led to a dead end later.
        fits_somewhere: bool,
    },
    OutOfBudget(Exhausted),
}

pub(crate) struct SearchStats {
    pub steps: u64,
    pub memo_entries: usize,
    pub memo_bytes_estimate: usize,
}

const NONE: usize = usize::MAX;

struct Node {
    prev: usize,
    next: usize,
    op: usize,
    /// For a call entry, the index of its return entry; `NONE` for a return entry.
    return_node: usize,
}

/// The entry list with O(1) removal and LIFO re-insertion (dancing links). Node 0 is the head sentinel.
struct EntryList {
    nodes: Vec<Node>,
}

impl EntryList {
    fn new<O>(ops: &[SearchOp<'_, O>]) -> EntryList {
        // (time, is_return, op): unknown returns sort after everything, in op order.
        let mut entries: Vec<(usize, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            entries.push((op.invoke_index, false, i));
            entries.push((op.return_index.unwrap_or(NONE), true, i));
        }
        entries.sort_unstable();
        let mut nodes = Vec::with_capacity(entries.len() + 1);
        nodes.push(Node { prev: NONE, next: NONE, op: NONE, return_node: NONE });
        let mut call_node = vec![NONE; ops.len()];
        for (position, &(_, is_return, op)) in entries.iter().enumerate() {
            let index = position + 1;
            nodes[index - 1].next = index;
            nodes.push(Node { prev: index - 1, next: NONE, op, return_node: NONE });
            if is_return {
                nodes[call_node[op]].return_node = index;
            } else {
                call_node[op] = index;
            }
        }
        EntryList { nodes }
    }

    fn first(&self) -> usize {
        self.nodes[0].next
    }

    fn unlink(&mut self, index: usize) {
        let (prev, next) = (self.nodes[index].prev, self.nodes[index].next);
        self.nodes[prev].next = next;
        if next != NONE {
            self.nodes[next].prev = prev;
        }
    }

    fn relink(&mut self, index: usize) {
        let (prev, next) = (self.nodes[index].prev, self.nodes[index].next);
        self.nodes[prev].next = index;
        if next != NONE {
            self.nodes[next].prev = index;
        }
    }

    /// Removes a call and its return. Must be undone by `unlift` in reverse order of lifting.
    fn lift(&mut self, call: usize) {
        let ret = self.nodes[call].return_node;
        self.unlink(call);
        self.unlink(ret);
    }

    fn unlift(&mut self, call: usize) {
        let ret = self.nodes[call].return_node;
        self.relink(ret);
        self.relink(call);
    }
}

/// The set of linearized ops, one bit per op.
#[derive(Clone, PartialEq, Eq, Hash)]
struct BitSet(Box<[u64]>);

impl BitSet {
    fn new(len: usize) -> BitSet {
        BitSet(vec![0; len.div_ceil(64)].into_boxed_slice())
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// Searches for a linearization of `ops` (one partition) under `model`.
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[SearchOp<'_, M::Op>],
    budget: &Budget,
) -> (SearchResult<M::State>, SearchStats) {
    let mut list = EntryList::new(ops);
    let entry_bytes = std::mem::size_of::<(BitSet, M::State)>() + ops.len().div_ceil(64) * 8 + 16;
    let mut memo: HashSet<(BitSet, M::State)> = HashSet::new();
    let mut linearized = BitSet::new(ops.len());
    let mut state = model.init();
    // Invariant: `stack[i]` is the call node placed i-th and the state before it; exactly those ops are set
    // in `linearized` and lifted out of `list`.
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    let mut rejected_in: Vec<Vec<M::State>> = vec![Vec::new(); ops.len()];
    let mut rejected_truncated = vec![false; ops.len()];
    let mut fits_somewhere = vec![false; ops.len()];
    let mut best: Option<(Vec<usize>, usize)> = None;
    let mut steps: u64 = 0;
    let mut node = list.first();
    let stats = |steps, memo: &HashSet<_>| SearchStats {
        steps,
        memo_entries: memo.len(),
        memo_bytes_estimate: memo.len() * entry_bytes,
    };

    loop {
        steps += 1;
        if steps.is_multiple_of(1024) && budget.deadline.is_some_and(|d| Instant::now() >= d) {
            return (SearchResult::OutOfBudget(Exhausted::Time), stats(steps, &memo));
        }
        if node == NONE {
            debug_assert_eq!(stack.len(), ops.len(), "an empty list means every op was placed");
            return (SearchResult::Linearizable, stats(steps, &memo));
        }
        let op = list.nodes[node].op;
        if list.nodes[node].return_node != NONE {
            // A call: try to place `op` now.
            match model.step(&state, ops[op].op) {
                Some(next) => {
                    fits_somewhere[op] = true;
                    linearized.set(op);
                    if memo.insert((linearized.clone(), next.clone())) {
                        if memo.len().saturating_mul(entry_bytes) > budget.max_memo_bytes {
                            return (SearchResult::OutOfBudget(Exhausted::Memory), stats(steps, &memo));
                        }
                        stack.push((node, std::mem::replace(&mut state, next)));
                        list.lift(node);
                        node = list.first();
                        continue;
                    }
                    linearized.clear(op);
                }
                None => {
                    let seen = &mut rejected_in[op];
                    if !seen.contains(&state) {
                        if seen.len() < REMEMBERED_STATES {
                            seen.push(state.clone());
                        } else {
                            rejected_truncated[op] = true;
                        }
                    }
                }
            }
            node = list.nodes[node].next;
            continue;
        }
        // A return: `op` had to be placed before this point.
        if ops[op].return_index.is_none() {
            // Only unknown ops remain: they never took effect.
            return (SearchResult::Linearizable, stats(steps, &memo));
        }
        if best.as_ref().is_none_or(|(prefix, _)| stack.len() > prefix.len()) {
            let prefix = stack.iter().map(|&(call, _)| list.nodes[call].op).collect();
            best = Some((prefix, op));
        }
        let Some((call, previous)) = stack.pop() else {
            let (prefix, culprit) = best.unwrap_or((Vec::new(), op));
            let result = SearchResult::NotLinearizable {
                prefix,
                culprit,
                rejected_in: std::mem::take(&mut rejected_in[culprit]),
                rejected_in_truncated: rejected_truncated[culprit],
                fits_somewhere: fits_somewhere[culprit],
            };
            return (result, stats(steps, &memo));
        };
        state = previous;
        linearized.clear(list.nodes[call].op);
        list.unlift(call);
        node = list.nodes[call].next;
    }
}
