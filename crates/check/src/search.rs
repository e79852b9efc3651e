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
//!
//! Two sound refinements over plain WGL:
//! - **read-only ops first, without alternatives.** At each point, a candidate that never changes the state
//!   (a read) and fits the current state is placed at once, and if that fails the whole point fails: any
//!   linearization from here can move that read to the front without changing any other op's state. This
//!   keeps highly concurrent read-heavy histories from exploring every order of the reads.
//! - **unknown ops are optional.** A configuration (known ops placed K, unknown ops placed U, state s)
//!   subsumes (K, U ∪ {u}, s): anything that works after also placing u works without it (u may never
//!   happen). So the memo maps (K, s) to the sets U already visited and prunes supersets of them.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::time::Instant;

use crate::model::Model;

/// Limits on one check. Running out of any of them gives the verdict *unknown*, never a guess.
///
/// Two of the limits are deterministic: `max_steps` and `max_memo_bytes` count the search's own work, so the
/// same history under the same budget gets the same verdict on every machine, at any load, whichever thread
/// runs it. The simulator must use only those ([`Budget::with_max_steps`]): a replayed seed has to reach the
/// same verdict. `deadline` is wall-clock time, for a person waiting at the command line.
///
/// Every limit applies to each partition (key) alone, so that splitting the work over threads cannot change
/// which partition runs out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    /// When to give up. Taken as a parameter so the search itself never reads the clock to decide anything else.
    pub deadline: Option<Instant>,
    /// Upper bound on the estimated size of one partition's memo, in bytes.
    pub max_memo_bytes: usize,
    /// Upper bound on the search steps of one partition (one step: one entry visited or one model step tried).
    /// `None`: unbounded.
    pub max_steps: Option<u64>,
}

impl Budget {
    pub const DEFAULT_MAX_MEMO_BYTES: usize = 1 << 30;

    /// No deadline, no step limit, and the default memory bound (1 GiB of memo per partition).
    pub fn unlimited() -> Budget {
        Budget { deadline: None, max_memo_bytes: Self::DEFAULT_MAX_MEMO_BYTES, max_steps: None }
    }

    /// A deterministic budget: gives up after `max_steps` search steps in one partition (or when its memo
    /// passes the default memory bound). An exhausted budget gives [`Outcome::Unknown`], which the caller
    /// decides how to treat (the simulator reports it as a violation). A few million steps take a second on one
    /// core (fewer as the memo grows).
    ///
    /// [`Outcome::Unknown`]: crate::Outcome::Unknown
    pub fn with_max_steps(max_steps: u64) -> Budget {
        Budget { max_steps: Some(max_steps), ..Budget::unlimited() }
    }

    /// Gives up `timeout` from now. Not deterministic: for the command line, never for simulation.
    #[allow(
        clippy::disallowed_methods,
        reason = "the budget is wall-clock time by design: it bounds how long a user waits"
    )]
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
    Steps,
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
    /// The caller asked the search to stop (another partition already decided the verdict).
    Cancelled,
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
    fn is_subset_of(&self, other: &BitSet) -> bool {
        self.0.iter().zip(other.0.iter()).all(|(a, b)| a & !b == 0)
    }
}

/// Visited configurations: (known ops placed, state) → the sets of unknown ops placed alongside.
struct Memo<S> {
    map: HashMap<(BitSet, S), Vec<BitSet>>,
    /// Invariant: the total length of all the vectors in `map`.
    entries: usize,
}

impl<S: Eq + std::hash::Hash + Clone> Memo<S> {
    /// Records the configuration; `false` if it (or one that subsumes it) was already visited.
    fn visit(&mut self, known: &BitSet, unknown: &BitSet, state: &S) -> bool {
        match self.map.entry((known.clone(), state.clone())) {
            Entry::Occupied(mut seen) => {
                if seen.get().iter().any(|u| u.is_subset_of(unknown)) {
                    return false;
                }
                seen.get_mut().push(unknown.clone());
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![unknown.clone()]);
            }
        }
        self.entries += 1;
        true
    }
}

/// How many steps pass between two looks at the clock and at the cancel flag.
const POLL_EVERY_STEPS: u64 = 256;

/// Searches for a linearization of `ops` (one partition) under `model`. `cancelled` is polled every few
/// hundred steps; once it returns `true` the search gives up with [`SearchResult::Cancelled`].
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[SearchOp<'_, M::Op>],
    budget: &Budget,
    cancelled: &dyn Fn() -> bool,
) -> (SearchResult<M::State>, SearchStats) {
    let mut search = Search::new(model, ops);
    let result = search.run(budget, cancelled);
    let stats = SearchStats {
        steps: search.steps,
        memo_entries: search.memo.entries,
        memo_bytes_estimate: search.memo.entries * search.entry_bytes,
    };
    (result, stats)
}

struct Search<'m, 'o, M: Model> {
    model: &'m M,
    ops: &'o [SearchOp<'o, M::Op>],
    list: EntryList,
    /// Each op's bit: known and unknown ops are numbered separately, so the memo can tell them apart.
    slot: Vec<usize>,
    read_only: Vec<bool>,
    entry_bytes: usize,
    memo: Memo<M::State>,
    known: BitSet,
    unknown: BitSet,
    state: M::State,
    /// Invariant: `stack[i]` is (call node placed i-th, placed as a read without alternatives, state before
    /// it); exactly those ops are set in `known`/`unknown` and lifted out of `list`.
    stack: Vec<(usize, bool, M::State)>,
    rejected_in: Vec<Vec<M::State>>,
    rejected_truncated: Vec<bool>,
    fits_somewhere: Vec<bool>,
    /// The longest prefix seen at a dead end, and the op whose return ended it.
    best: Option<(Vec<usize>, usize)>,
    steps: u64,
}

enum Placed {
    Yes,
    AlreadyVisited,
    OverBudget,
}

impl<'m, 'o, M: Model> Search<'m, 'o, M> {
    fn new(model: &'m M, ops: &'o [SearchOp<'o, M::Op>]) -> Self {
        let mut slot = Vec::with_capacity(ops.len());
        let (mut known_n, mut unknown_n) = (0usize, 0usize);
        for op in ops {
            let counter = if op.return_index.is_some() { &mut known_n } else { &mut unknown_n };
            slot.push(*counter);
            *counter += 1;
        }
        Search {
            model,
            ops,
            list: EntryList::new(ops),
            slot,
            read_only: ops.iter().map(|o| model.is_read_only(o.op)).collect(),
            entry_bytes: std::mem::size_of::<((BitSet, M::State), Vec<BitSet>)>()
                + (known_n.div_ceil(64) + unknown_n.div_ceil(64)) * 8
                + 16,
            memo: Memo { map: HashMap::new(), entries: 0 },
            known: BitSet::new(known_n),
            unknown: BitSet::new(unknown_n),
            state: model.init(),
            stack: Vec::new(),
            rejected_in: vec![Vec::new(); ops.len()],
            rejected_truncated: vec![false; ops.len()],
            fits_somewhere: vec![false; ops.len()],
            best: None,
            steps: 0,
        }
    }

    fn is_unknown(&self, op: usize) -> bool {
        self.ops[op].return_index.is_none()
    }

    fn flip(&mut self, op: usize, on: bool) {
        let bits = if self.is_unknown(op) { &mut self.unknown } else { &mut self.known };
        if on {
            bits.set(self.slot[op]);
        } else {
            bits.clear(self.slot[op]);
        }
    }

    fn remember_rejection(&mut self, op: usize) {
        let seen = &mut self.rejected_in[op];
        if !seen.contains(&self.state) {
            if seen.len() < REMEMBERED_STATES {
                seen.push(self.state.clone());
            } else {
                self.rejected_truncated[op] = true;
            }
        }
    }

    /// Places the op of `call` (which fits, giving `next`) unless that configuration was already explored.
    fn place(&mut self, call: usize, next: M::State, forced: bool, budget: &Budget) -> Placed {
        let op = self.list.nodes[call].op;
        self.fits_somewhere[op] = true;
        self.flip(op, true);
        if !self.memo.visit(&self.known, &self.unknown, &next) {
            self.flip(op, false);
            return Placed::AlreadyVisited;
        }
        if self.memo.entries.saturating_mul(self.entry_bytes) > budget.max_memo_bytes {
            return Placed::OverBudget;
        }
        let before = std::mem::replace(&mut self.state, next);
        self.stack.push((call, forced, before));
        self.list.lift(call);
        Placed::Yes
    }

    /// A read-only candidate that fits the current state, with the state after it.
    fn fitting_read(&mut self) -> Option<(usize, M::State)> {
        let mut node = self.list.first();
        while node != NONE && self.list.nodes[node].return_node != NONE {
            let op = self.list.nodes[node].op;
            if self.read_only[op] {
                self.steps += 1;
                match self.model.step(&self.state, self.ops[op].op) {
                    Some(next) => return Some((node, next)),
                    None => self.remember_rejection(op),
                }
            }
            node = self.list.nodes[node].next;
        }
        None
    }

    /// Undoes placements until one that has alternatives; returns where to resume scanning, or `None` if
    /// the stack ran out.
    fn backtrack(&mut self) -> Option<usize> {
        loop {
            let (call, forced, before) = self.stack.pop()?;
            self.state = before;
            let op = self.list.nodes[call].op;
            self.flip(op, false);
            self.list.unlift(call);
            if !forced {
                return Some(self.list.nodes[call].next);
            }
        }
    }

    fn not_linearizable(&mut self, last: usize) -> SearchResult<M::State> {
        let (prefix, culprit) = self.best.take().unwrap_or((Vec::new(), last));
        SearchResult::NotLinearizable {
            prefix,
            culprit,
            rejected_in: std::mem::take(&mut self.rejected_in[culprit]),
            rejected_in_truncated: self.rejected_truncated[culprit],
            fits_somewhere: self.fits_somewhere[culprit],
        }
    }

    fn run(&mut self, budget: &Budget, cancelled: &dyn Fn() -> bool) -> SearchResult<M::State> {
        let mut node = self.list.first();
        // `true` when `node` is the start of a new point in the search, where reads go first.
        let mut fresh = true;
        let mut next_poll = POLL_EVERY_STEPS;
        loop {
            self.steps += 1;
            if budget.max_steps.is_some_and(|max| self.steps > max) {
                return SearchResult::OutOfBudget(Exhausted::Steps);
            }
            if self.steps >= next_poll {
                next_poll = self.steps + POLL_EVERY_STEPS;
                if cancelled() {
                    return SearchResult::Cancelled;
                }
                #[allow(clippy::disallowed_methods, reason = "the budget is wall-clock time by design")]
                if budget.deadline.is_some_and(|d| Instant::now() >= d) {
                    return SearchResult::OutOfBudget(Exhausted::Time);
                }
            }
            let mut dead_end = None;
            if fresh {
                fresh = false;
                if let Some((call, next)) = self.fitting_read() {
                    match self.place(call, next, true, budget) {
                        Placed::Yes => {
                            node = self.list.first();
                            fresh = true;
                            continue;
                        }
                        Placed::OverBudget => return SearchResult::OutOfBudget(Exhausted::Memory),
                        // Placing the read loses nothing, so if that was explored, this whole point was.
                        Placed::AlreadyVisited => dead_end = Some(self.list.nodes[call].op),
                    }
                }
            }
            if dead_end.is_none() {
                if node == NONE {
                    debug_assert_eq!(self.stack.len(), self.ops.len(), "an empty list means every op was placed");
                    return SearchResult::Linearizable;
                }
                let op = self.list.nodes[node].op;
                if self.list.nodes[node].return_node != NONE {
                    // A call: try to place `op` now. Reads were tried when this point was fresh.
                    if !self.read_only[op] {
                        match self.model.step(&self.state, self.ops[op].op) {
                            Some(next) => match self.place(node, next, false, budget) {
                                Placed::Yes => {
                                    node = self.list.first();
                                    fresh = true;
                                    continue;
                                }
                                Placed::OverBudget => return SearchResult::OutOfBudget(Exhausted::Memory),
                                Placed::AlreadyVisited => {}
                            },
                            None => self.remember_rejection(op),
                        }
                    }
                    node = self.list.nodes[node].next;
                    continue;
                }
                // A return: `op` had to be placed before this point.
                if self.is_unknown(op) {
                    // Returns at +∞ come after every other entry: every op that returned has been placed,
                    // and the unknown ops left over never took effect.
                    return SearchResult::Linearizable;
                }
                if self.best.as_ref().is_none_or(|(prefix, _)| self.stack.len() > prefix.len()) {
                    let prefix = self.stack.iter().map(|&(call, _, _)| self.list.nodes[call].op).collect();
                    self.best = Some((prefix, op));
                }
                dead_end = Some(op);
            }
            match self.backtrack() {
                Some(resume) => node = resume,
                None => return self.not_linearizable(dead_end.unwrap_or(0)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Operation;

    /// Counts the ops placed; every op fits every state.
    struct Counter;

    impl Model for Counter {
        type Op = ();
        type State = u32;
        fn name(&self) -> &'static str {
            "counter"
        }
        fn init(&self) -> u32 {
            0
        }
        fn parse(&self, _: &Operation) -> Result<(), String> {
            Ok(())
        }
        fn partition_by_key(&self) -> bool {
            false
        }
        fn step(&self, state: &u32, _: &()) -> Option<u32> {
            Some(state + 1)
        }
        fn describe_op(&self, _: &()) -> String {
            "count".to_string()
        }
        fn describe_state(&self, state: &u32) -> String {
            state.to_string()
        }
        fn requirement(&self, _: &()) -> String {
            "nothing".to_string()
        }
    }

    /// A search asked to stop gives up at its next poll, whatever it was doing: that is what lets the check
    /// drop a key's search once an earlier key has failed.
    #[test]
    fn a_cancelled_search_stops_at_its_next_poll() {
        // 1,000 concurrent ops: a search that is not stopped takes a few thousand steps.
        let ops: Vec<SearchOp<'_, ()>> =
            (0..1_000).map(|i| SearchOp { op: &(), invoke_index: i, return_index: Some(1_000 + i) }).collect();
        let (result, stats) = search(&Counter, &ops, &Budget::unlimited(), &|| false);
        assert!(matches!(result, SearchResult::Linearizable));
        assert!(stats.steps > 2 * POLL_EVERY_STEPS, "{} steps", stats.steps);

        let (result, stats) = search(&Counter, &ops, &Budget::unlimited(), &|| true);
        assert!(matches!(result, SearchResult::Cancelled));
        assert_eq!(stats.steps, POLL_EVERY_STEPS);
    }
}
