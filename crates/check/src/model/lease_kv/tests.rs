//! `step` one op at a time, and what `parse` refuses.

use super::*;
use crate::history::Interval;

fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}

fn l(items: Vec<Value>) -> Value {
    Value::List(items)
}

fn operation(f: &str, key: Option<&str>, input: Value, output: Option<Value>) -> Operation {
    let interval = Interval {
        invoke_index: 0,
        return_index: output.as_ref().map(|_| 1),
        invoke_line: None,
        return_line: None,
        invoke_time_ns: None,
        return_time_ns: None,
    };
    Operation { id: 0, process: 0, f: f.to_string(), key: key.map(str::to_string), input, output, interval }
}

fn op(f: &str, key: Option<&str>, input: Value, output: Option<Value>) -> LeaseKvOp {
    LeaseKv.parse(&operation(f, key, input, output)).expect("parses")
}

fn run(ops: &[LeaseKvOp]) -> Option<LeaseKvState> {
    ops.iter().try_fold(LeaseKv.init(), |state, o| LeaseKv.step(&state, o))
}

fn grant(id: i64) -> LeaseKvOp {
    op("lease-grant", None, Value::Int(10), Some(Value::Int(id)))
}

fn put_lease(key: &str, v: &str, lease: i64) -> LeaseKvOp {
    op("put-lease", Some(key), l(vec![s(v), Value::Int(lease)]), Some(Value::Nil))
}

fn put(key: &str, v: &str) -> LeaseKvOp {
    op("put", Some(key), s(v), Some(Value::Nil))
}

fn txn(compares: Vec<Value>, then_ops: Vec<Value>, else_ops: Vec<Value>, output: Option<Value>) -> LeaseKvOp {
    op("txn", None, l(vec![l(compares), l(then_ops), l(else_ops)]), output)
}

#[test]
fn versions_count_puts_since_creation_and_delete_resets_them() {
    let state = run(&[put("k", "a"), put("k", "b")]).expect("fits");
    assert_eq!(state.keys["k"].version, 2);
    let state = run(&[put("k", "a"), op("delete", Some("k"), Value::Nil, Some(Value::Nil)), put("k", "b")]);
    assert_eq!(state.expect("fits").keys["k"].version, 1);
}

#[test]
fn ending_a_lease_deletes_exactly_its_keys() {
    let state = run(&[grant(1), grant(2), put_lease("a", "x", 1), put_lease("b", "y", 2), put("c", "z")]);
    let state = state.expect("fits");
    for end in [op("lease-revoke", None, Value::Int(1), Some(Value::Nil)), LeaseKvOp::Expire { lease: 1 }] {
        let next = LeaseKv.step(&state, &end).expect("lease 1 is live");
        assert_eq!(next.keys.keys().collect::<Vec<_>>(), ["b", "c"]);
        assert!(next.ended.contains(&1) && !next.live.contains(&1));
        assert_eq!(LeaseKv.step(&next, &end), None, "a lease ends once");
        assert_eq!(LeaseKv.step(&next, &grant(1)), None, "an ended lease's id is never granted again");
    }
}

#[test]
fn a_plain_put_detaches_the_key_from_its_lease() {
    let state = run(&[grant(1), put_lease("k", "a", 1), put("k", "b"), LeaseKvOp::Expire { lease: 1 }]);
    let state = state.expect("fits");
    assert_eq!((state.keys["k"].value.clone(), state.keys["k"].version), (s("b"), 2));
}

#[test]
fn a_put_with_a_lease_needs_it_live_unless_its_outcome_is_unknown() {
    assert_eq!(run(&[put_lease("k", "a", 1)]), None, "never granted");
    assert_eq!(run(&[grant(1), LeaseKvOp::Expire { lease: 1 }, put_lease("k", "a", 1)]), None);
    let unknown = op("put-lease", Some("k"), l(vec![s("a"), Value::Int(1)]), None);
    let state = run(&[grant(1), LeaseKvOp::Expire { lease: 1 }, unknown]).expect("an unknown put may have failed");
    assert!(state.keys.is_empty());
}

#[test]
fn keepalive_and_ttl_answers_say_whether_the_lease_lives() {
    let alive = |f: &str, ttl: i64| op(f, None, Value::Int(1), Some(Value::Int(ttl)));
    let live = run(&[grant(1)]).expect("fits");
    let ended = run(&[grant(1), LeaseKvOp::Expire { lease: 1 }]).expect("fits");
    for (answer, fits_live) in [
        (alive("lease-keepalive", 5), true),
        (alive("lease-keepalive", 0), false),
        (alive("lease-ttl", 5), true),
        (alive("lease-ttl", 0), true),
        (alive("lease-ttl", -1), false),
    ] {
        assert_eq!(LeaseKv.step(&live, &answer).is_some(), fits_live, "{answer:?} on a live lease");
        assert_eq!(LeaseKv.step(&ended, &answer).is_some(), !fits_live, "{answer:?} on an ended lease");
    }
}

#[test]
fn a_value_compare_on_an_absent_key_is_false_whatever_the_operator() {
    let ne = txn(vec![l(vec![s("value"), s("k"), s("!="), s("x")])], vec![], vec![], None);
    let LeaseKvOp::Txn(t) = &ne else { panic!("a txn") };
    assert!(!t.compares[0].holds(&LeaseKv.init()));
    let state = run(&[put("k", "y")]).expect("fits");
    assert!(t.compares[0].holds(&state));
}

#[test]
fn an_ok_txn_must_take_the_branch_the_state_selects_and_return_what_its_gets_see() {
    let absent = || vec![l(vec![s("create"), s("k"), s("="), Value::Int(0)])];
    let campaign = |out| txn(absent(), vec![l(vec![s("put"), s("k"), s("me")])], vec![l(vec![s("get"), s("k")])], out);
    let won = run(&[campaign(Some(l(vec![Value::Bool(true), l(vec![])])))]).expect("the key was absent");
    assert_eq!(won.keys["k"].value, s("me"));
    assert_eq!(run(&[campaign(Some(l(vec![Value::Bool(false), l(vec![s("me")])])))]), None);
    let lost = campaign(Some(l(vec![Value::Bool(false), l(vec![s("me")])])));
    assert!(LeaseKv.step(&won, &lost).is_some());
    assert!(LeaseKv.is_read_only(&lost) && !LeaseKv.is_read_only(&campaign(None)));
    let wrong_get = campaign(Some(l(vec![Value::Bool(false), l(vec![s("you")])])));
    assert_eq!(LeaseKv.step(&won, &wrong_get), None);
}

#[test]
fn an_unknown_txn_takes_the_branch_the_state_selects() {
    let version_is = |n| vec![l(vec![s("version"), s("k"), s("="), Value::Int(n)])];
    let t = |n| {
        txn(version_is(n), vec![l(vec![s("put"), s("k"), s("then")])], vec![l(vec![s("put"), s("k"), s("else")])], None)
    };
    let start = run(&[put("k", "a")]).expect("fits");
    assert_eq!(LeaseKv.step(&start, &t(1)).expect("fits").keys["k"].value, s("then"));
    assert_eq!(LeaseKv.step(&start, &t(2)).expect("fits").keys["k"].value, s("else"));
}

#[test]
fn a_txn_putting_with_an_ended_lease_did_nothing() {
    let t = |out| txn(vec![], vec![l(vec![s("put-lease"), s("k"), s("v"), Value::Int(1)])], vec![], out);
    let ended = run(&[grant(1), LeaseKvOp::Expire { lease: 1 }]).expect("fits");
    assert_eq!(LeaseKv.step(&ended, &t(Some(l(vec![Value::Bool(true), l(vec![])])))), None);
    assert_eq!(LeaseKv.step(&ended, &t(None)), Some(ended.clone()));
}

#[test]
fn a_revoke_answered_not_found_needs_the_lease_not_live() {
    let not_found = op("lease-revoke", None, Value::Int(1), Some(Value::Bool(false)));
    assert!(run(std::slice::from_ref(&not_found)).is_some());
    assert_eq!(run(&[grant(1), not_found]), None);
}

#[test]
fn parse_refuses_what_the_model_cannot_check_and_says_why() {
    let bad = |f: &str, key: Option<&str>, input: Value, output: Option<Value>| {
        LeaseKv.parse(&operation(f, key, input, output)).expect_err("refused")
    };
    let cmp = |c: Vec<Value>| l(vec![l(vec![l(c)]), l(vec![]), l(vec![])]);
    let e = bad("txn", None, cmp(vec![s("create"), s("k"), s("="), Value::Int(12)]), None);
    assert!(e.contains("cannot know raft indexes"), "{e}");
    let e = bad("txn", None, cmp(vec![s("mod"), s("k"), s(">"), Value::Int(0)]), None);
    assert!(e.contains("cannot know raft indexes"), "{e}");
    let e = bad("txn", None, cmp(vec![s("value"), s("k"), s("<"), s("x")]), None);
    assert!(e.contains("= and != only"), "{e}");
    let gets = l(vec![l(vec![]), l(vec![l(vec![s("get"), s("k")])]), l(vec![])]);
    let e = bad("txn", None, gets, Some(l(vec![Value::Bool(true), l(vec![])])));
    assert!(e.contains("1 gets but 0 results"), "{e}");
    let e = bad("put-lease", Some("k"), s("v"), Some(Value::Nil));
    assert!(e.contains("[value lease]"), "{e}");
    let e = bad("put", None, s("v"), Some(Value::Nil));
    assert!(e.contains("needs the event's key"), "{e}");
    let e = bad("lease-keepalive", None, Value::Int(1), Some(s("ten")));
    assert!(e.contains("remaining TTL"), "{e}");
    let e = bad("read", Some("k"), Value::Nil, None);
    assert!(e.contains("has no operation `read`"), "{e}");
}

#[test]
fn every_lease_that_can_live_gets_an_expiry_and_ids_nobody_returned_may_come_from_an_unknown_grant() {
    let ops: Vec<(Operation, LeaseKvOp)> = [
        operation("lease-grant", None, Value::Int(10), Some(Value::Int(1))),
        operation("lease-grant", None, Value::Int(10), None),
        operation("put-lease", Some("k"), l(vec![s("v"), Value::Int(9)]), Some(Value::Nil)),
    ]
    .into_iter()
    .map(|o| {
        let parsed = LeaseKv.parse(&o).expect("parses");
        (o, parsed)
    })
    .collect();
    let steps: Vec<LeaseKvOp> = LeaseKv.spontaneous(&ops).into_iter().map(|(_, op)| op).collect();
    assert_eq!(
        steps,
        [LeaseKvOp::Expire { lease: 1 }, LeaseKvOp::UnknownGrant { lease: 9 }, LeaseKvOp::Expire { lease: 9 }]
    );
    assert!(LeaseKv.spontaneous(&ops[2..]).is_empty(), "without an unknown grant, lease 9 can never live");
}
