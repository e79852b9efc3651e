//! Hand-written histories at the edges of the semantics, each named by what it pins down.

use quorumlab_check::{check_history, Budget, CasRegister, History, Kv, ModelKind, Outcome, Value};

fn register() -> ModelKind {
    ModelKind::CasRegister(CasRegister::default())
}

fn kv() -> ModelKind {
    ModelKind::Kv(Kv::default())
}

fn outcome(history: &History, model: &ModelKind) -> Outcome {
    check_history(history, model, &Budget::unlimited()).expect("well-formed history").outcome
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

/// p0 writes 1 and times out; later p1 reads 1. The write must be assumed to have happened.
#[test]
fn an_unknown_write_that_was_observed_must_have_happened() {
    let mut h = History::new();
    h.invoke(0, "write", None, int(1)).info(0);
    h.invoke(1, "read", None, Value::Nil).ok(1, int(1));
    assert_eq!(outcome(&h, &register()), Outcome::Linearizable);
}

/// p0 writes 1 and times out; p1 then reads 0 twice and writes 2; a final read sees 2. The write of 1 must be
/// assumed never to have happened (or to land where nobody saw it): forcing it in would break a read.
#[test]
fn an_unknown_write_that_nobody_saw_may_never_have_happened() {
    let mut h = History::new();
    h.invoke(0, "write", None, int(1)).info(0);
    h.invoke(1, "read", None, Value::Nil).ok(1, int(0));
    h.invoke(1, "write", None, int(2)).ok(1, Value::Nil);
    h.invoke(1, "read", None, Value::Nil).ok(1, int(2));
    assert_eq!(outcome(&h, &register()), Outcome::Linearizable);
}

/// An invocation that never completes is just as unknown as an `info`.
#[test]
fn an_invocation_that_never_completed_is_an_unknown_outcome() {
    let mut h = History::new();
    h.invoke(0, "write", None, int(1));
    h.invoke(1, "read", None, Value::Nil).ok(1, int(1));
    h.invoke(1, "read", None, Value::Nil).ok(1, int(1));
    assert_eq!(outcome(&h, &register()), Outcome::Linearizable);
}

/// A `fail`ed write certainly did not happen, so reading its value is a violation (Knossos's
/// `immediate-failure`).
#[test]
fn a_failed_write_did_not_happen() {
    let mut h = History::new();
    h.invoke(1, "read", None, Value::Nil);
    h.invoke(0, "write", None, int(3)).fail(0);
    h.ok(1, int(3));
    assert_eq!(outcome(&h, &register()), Outcome::NotLinearizable);
}

/// A CAS whose compare failed happened and changed nothing: it needs the value to differ from expected.
#[test]
fn a_cas_whose_compare_failed_needs_a_different_value() {
    let mut h = History::new();
    h.invoke(0, "put", Some("k"), int(1)).ok(0, Value::Nil);
    h.invoke(0, "cas", Some("k"), Value::List(vec![int(2), int(3)])).ok(0, Value::Bool(false));
    h.invoke(0, "get", Some("k"), Value::Nil).ok(0, int(1));
    assert_eq!(outcome(&h, &kv()), Outcome::Linearizable);

    let mut h = History::new();
    h.invoke(0, "put", Some("k"), int(1)).ok(0, Value::Nil);
    h.invoke(0, "cas", Some("k"), Value::List(vec![int(1), int(3)])).ok(0, Value::Bool(false));
    assert_eq!(outcome(&h, &kv()), Outcome::NotLinearizable, "the value was 1, so the compare could not fail");
}

/// Two concurrent writes of the same value are two operations: the memo must not merge them. With both,
/// `cas 1→2` and `cas 1→3` can both succeed (w1, cas, w1, cas); with only one write they cannot.
#[test]
fn concurrent_operations_with_identical_values_stay_distinct() {
    let build = |writes: u64| {
        let mut h = History::new();
        for p in 0..writes {
            h.invoke(p, "write", None, int(1));
        }
        h.invoke(10, "cas", None, Value::List(vec![int(1), int(2)]));
        h.invoke(11, "cas", None, Value::List(vec![int(1), int(3)]));
        for p in 0..writes {
            h.ok(p, int(1));
        }
        h.ok(10, Value::List(vec![int(1), int(2)])).ok(11, Value::List(vec![int(1), int(3)]));
        h.invoke(12, "read", None, Value::Nil).ok(12, int(3));
        h
    };
    assert_eq!(outcome(&build(2), &register()), Outcome::Linearizable);
    assert_eq!(outcome(&build(1), &register()), Outcome::NotLinearizable);
}

#[test]
fn an_empty_history_is_linearizable() {
    for model in [register(), kv()] {
        let verdict = check_history(&History::new(), &model, &Budget::unlimited()).expect("empty is well-formed");
        assert_eq!(verdict.outcome, Outcome::Linearizable);
        assert_eq!(verdict.stats.operations, 0);
    }
}

/// Keys are independent: a stale read on one key is reported against that key, and only that key.
#[test]
fn a_violation_is_reported_against_its_own_key() {
    let mut h = History::new();
    h.invoke(0, "put", Some("a"), int(1)).ok(0, Value::Nil);
    h.invoke(1, "put", Some("b"), int(1)).ok(1, Value::Nil);
    h.invoke(0, "get", Some("a"), Value::Nil).ok(0, int(1));
    h.invoke(1, "get", Some("b"), Value::Nil).ok(1, Value::Nil);
    let verdict = check_history(&h, &kv(), &Budget::unlimited()).expect("well-formed");
    assert_eq!(verdict.outcome, Outcome::NotLinearizable);
    let (partition, violation) = verdict.violation().expect("a violation");
    assert_eq!(partition.key.as_deref(), Some("b"));
    assert_eq!(violation.culprit.description, "get → nil (absent)");
    assert_eq!(violation.observed_states, vec!["1".to_string()]);
    assert_eq!(verdict.partitions[0].outcome, Outcome::Linearizable);
}

/// The explanation names the longest prefix and the states the stuck read could have seen
/// (Knossos's `rethink-fail-minimal`: value 0, concurrent write 4 and read 3).
#[test]
fn the_explanation_lists_the_states_the_stuck_operation_could_observe() {
    let mut h = History::new();
    h.invoke(0, "write", None, int(0)).ok(0, int(0));
    h.invoke(1, "read", None, Value::Nil);
    h.invoke(2, "write", None, int(4));
    h.ok(1, int(3)).ok(2, int(4));
    let verdict = check_history(&h, &register(), &Budget::unlimited()).expect("well-formed");
    let (_, violation) = verdict.violation().expect("a violation");
    assert_eq!(violation.culprit.description, "read → 3");
    assert_eq!(violation.requirement, "the value to be 3");
    let mut states = violation.observed_states.clone();
    states.sort();
    assert_eq!(states, vec!["0".to_string(), "4".to_string()]);
    assert!(!violation.prefix.is_empty());
}

/// A process with an operation in flight cannot start another: that is a broken history, not a verdict.
#[test]
fn a_second_invoke_while_one_is_pending_is_an_error() {
    let mut h = History::new();
    h.invoke(0, "write", None, int(1));
    h.invoke(0, "write", None, int(2));
    let err = check_history(&h, &register(), &Budget::unlimited()).expect_err("malformed");
    assert!(err.to_string().contains("had not completed"), "{err}");
}

/// A memo budget of zero bytes cannot hold even one state: the verdict is unknown, never a guess.
#[test]
fn an_exhausted_budget_gives_unknown() {
    let mut h = History::new();
    h.invoke(0, "write", None, int(1)).ok(0, Value::Nil);
    let budget = Budget { max_memo_bytes: 0, ..Budget::unlimited() };
    let verdict = check_history(&h, &register(), &budget).expect("well-formed");
    assert_eq!(verdict.outcome, Outcome::Unknown);
    assert!(verdict.partitions[0].unknown_reason.as_deref().is_some_and(|r| r.contains("memory")));
}

/// A step budget is deterministic: the same history runs out at the same step, with the same verdict, every
/// time; a budget the search does not need changes nothing.
#[test]
fn a_step_budget_gives_unknown_at_the_same_step_every_time() {
    use quorumlab_check::synth::{kv_history, SplitMix, SynthConfig};
    let config = SynthConfig { operations: 300, keys: 1, clients: 8, unknown_per_mille: 0 };
    let history = kv_history(&config, &mut SplitMix(7));
    let full = check_history(&history, &kv(), &Budget::unlimited()).expect("well-formed");
    assert_eq!(full.outcome, Outcome::Linearizable);
    assert!(full.stats.steps > 100, "the history needs some search: {} steps", full.stats.steps);

    let tight = Budget::with_max_steps(full.stats.steps / 2);
    let first = check_history(&history, &kv(), &tight).expect("well-formed");
    assert_eq!(first.outcome, Outcome::Unknown);
    let reason = first.partitions[0].unknown_reason.as_deref().unwrap_or_default();
    assert!(reason.contains(&format!("{} steps", full.stats.steps / 2)), "{reason}");
    assert_eq!(check_history(&history, &kv(), &tight).expect("well-formed"), first);

    let roomy = check_history(&history, &kv(), &Budget::with_max_steps(full.stats.steps)).expect("well-formed");
    assert_eq!(roomy, full);
}

/// A Knossos multi-register transaction reads what the previous transaction wrote.
#[test]
fn multi_register_transactions_are_atomic() {
    let model = ModelKind::MultiRegister(Default::default());
    let kw = |s: &str| Value::Keyword(s.to_string());
    let txn = |ops: Vec<(&str, &str, Value)>| {
        Value::List(ops.into_iter().map(|(f, k, v)| Value::List(vec![kw(f), kw(k), v])).collect())
    };
    let mut h = History::new();
    let write = txn(vec![("write", "x", int(1)), ("write", "y", int(1))]);
    h.invoke(0, "txn", None, write.clone()).ok(0, write);
    h.invoke(1, "txn", None, txn(vec![("read", "x", Value::Nil), ("read", "y", Value::Nil)]));
    h.ok(1, txn(vec![("read", "x", int(1)), ("read", "y", int(0))]));
    assert_eq!(outcome(&h, &model), Outcome::NotLinearizable, "x and y were written together");
}
