//! Histories of an etcd-style store with leases and transactions, checked with the `lease-kv` model. Every
//! violation has a control beside it that differs in one step and passes, so each test can fail.

use quorumlab_check::format::{default_model, read_history, InputFormat};
use quorumlab_check::{check_history, Budget, History, LeaseKv, ModelKind, Outcome, Value, Verdict};

fn verdict(h: &History) -> Verdict {
    check_history(h, &ModelKind::LeaseKv(LeaseKv), &Budget::with_max_steps(1_000_000)).expect("well-formed")
}

fn outcome(h: &History) -> Outcome {
    verdict(h).outcome
}

fn s(x: &str) -> Value {
    Value::Str(x.to_string())
}

fn int(i: i64) -> Value {
    Value::Int(i)
}

fn l(items: Vec<Value>) -> Value {
    Value::List(items)
}

fn txn_ok(succeeded: bool, gets: Vec<Value>) -> Value {
    l(vec![Value::Bool(succeeded), l(gets)])
}

/// Patroni's campaign: put `key` = `holder` with `lease` if nobody holds it, else read who does.
fn campaign(key: &str, holder: &str, lease: i64) -> Value {
    l(vec![
        l(vec![l(vec![s("create"), s(key), s("="), int(0)])]),
        l(vec![l(vec![s("put-lease"), s(key), s(holder), int(lease)])]),
        l(vec![l(vec![s("get"), s(key)])]),
    ])
}

fn grant(h: &mut History, process: u64, lease: i64) {
    h.invoke(process, "lease-grant", None, int(10)).ok(process, int(lease));
}

fn put_lease(h: &mut History, process: u64, key: &str, v: &str, lease: i64) {
    h.invoke(process, "put-lease", Some(key), l(vec![s(v), int(lease)])).ok(process, Value::Nil);
}

fn get(h: &mut History, process: u64, key: &str, seen: Value) {
    h.invoke(process, "get", Some(key), Value::Nil).ok(process, seen);
}

/// Lease 7 holds `k`; its revoke completes; a later read still sees `k`. Control: the read before the revoke.
#[test]
fn a_leased_key_read_after_its_lease_was_revoked_is_a_violation() {
    let history = |read_first: bool| {
        let mut h = History::new();
        grant(&mut h, 0, 7);
        put_lease(&mut h, 0, "k", "v", 7);
        if read_first {
            get(&mut h, 1, "k", s("v"));
        }
        h.invoke(0, "lease-revoke", None, int(7)).ok(0, Value::Nil);
        get(&mut h, 1, "k", if read_first { Value::Nil } else { s("v") });
        h
    };
    assert_eq!(outcome(&history(false)), Outcome::NotLinearizable);
    assert_eq!(outcome(&history(true)), Outcome::Linearizable);
}

/// Nobody revokes lease 7, yet a read sees its key gone: the server's clock expired it at some unknown moment.
/// A later read that sees the key again is a resurrection.
#[test]
fn expiry_explains_a_leased_key_vanishing_but_not_coming_back() {
    let mut h = History::new();
    grant(&mut h, 0, 7);
    put_lease(&mut h, 0, "k", "v", 7);
    get(&mut h, 1, "k", Value::Nil);
    assert_eq!(outcome(&h), Outcome::Linearizable);
    get(&mut h, 2, "k", s("v"));
    let v = verdict(&h);
    assert_eq!(v.outcome, Outcome::NotLinearizable);
    let (_, violation) = v.violation().expect("explained");
    assert!(violation.prefix.iter().any(|p| p.op.description.contains("lease 7 expires")), "{violation:?}");
}

/// A txn puts `a` and `b` at once; while it runs, a client reads `a` = 1 and then `b` absent.
/// Control: the client reads `b` first, then `a`, which one instant between the reads explains.
#[test]
fn a_txn_observed_half_applied_is_a_violation() {
    let history = |first: &str, first_seen: Value, second: &str, second_seen: Value| {
        let mut h = History::new();
        let both = l(vec![
            l(vec![]),
            l(vec![l(vec![s("put"), s("a"), int(1)]), l(vec![s("put"), s("b"), int(1)])]),
            l(vec![]),
        ]);
        h.invoke(0, "txn", None, both);
        get(&mut h, 1, first, first_seen);
        get(&mut h, 1, second, second_seen);
        h.ok(0, txn_ok(true, vec![]));
        h
    };
    assert_eq!(outcome(&history("a", int(1), "b", Value::Nil)), Outcome::NotLinearizable);
    assert_eq!(outcome(&history("b", Value::Nil, "a", int(1))), Outcome::Linearizable);
}

/// Two clients both win the campaign for `leader`, and the first one's lease is shown alive afterwards by a
/// keepalive: no revoke, delete or expiry came between. Controls: without that keepalive an expiry explains
/// the second win; with a revoke between the wins it is fine too.
#[test]
fn two_campaign_winners_with_the_first_lease_alive_throughout_is_a_violation() {
    let history = |between: Option<&str>, keepalive_after: bool| {
        let mut h = History::new();
        grant(&mut h, 1, 1);
        grant(&mut h, 2, 2);
        h.invoke(1, "txn", None, campaign("leader", "p1", 1)).ok(1, txn_ok(true, vec![]));
        match between {
            Some("revoke") => {
                h.invoke(1, "lease-revoke", None, int(1)).ok(1, Value::Nil);
            }
            Some(_) => {
                h.invoke(3, "delete", Some("leader"), Value::Nil).ok(3, Value::Nil);
            }
            None => {}
        }
        h.invoke(2, "txn", None, campaign("leader", "p2", 2)).ok(2, txn_ok(true, vec![]));
        if keepalive_after {
            h.invoke(1, "lease-keepalive", None, int(1)).ok(1, int(10));
        }
        h
    };
    assert_eq!(outcome(&history(None, true)), Outcome::NotLinearizable);
    assert_eq!(outcome(&history(None, false)), Outcome::Linearizable, "lease 1 expired between the wins");
    assert_eq!(outcome(&history(Some("delete"), true)), Outcome::Linearizable);
    assert_eq!(outcome(&history(Some("revoke"), false)), Outcome::Linearizable);
}

/// A keepalive answered with a TTL after the lease's revoke completed. Control: it answers 0 (not found).
#[test]
fn a_keepalive_answered_after_the_revoke_completed_is_a_violation() {
    let history = |ttl: i64| {
        let mut h = History::new();
        grant(&mut h, 0, 3);
        h.invoke(0, "lease-revoke", None, int(3)).ok(0, Value::Nil);
        h.invoke(1, "lease-keepalive", None, int(3)).ok(1, int(ttl));
        h
    };
    assert_eq!(outcome(&history(10)), Outcome::NotLinearizable);
    assert_eq!(outcome(&history(0)), Outcome::Linearizable);
}

/// The case a lazy kill gets wrong (module doc, counterexample 1): p1 holds `leader`; p2's campaign times out;
/// a later read sees p2 holding it. Only "p1's lease expired, then p2's unknown campaign took effect" explains
/// it, and no op observed the expiry before the unknown txn. Control: p1's keepalive after the read shows its
/// lease alive, so it cannot have expired.
#[test]
fn an_unknown_campaign_may_win_after_an_expiry_nobody_saw() {
    let history = |keepalive_after: bool| {
        let mut h = History::new();
        grant(&mut h, 1, 1);
        grant(&mut h, 2, 2);
        h.invoke(1, "txn", None, campaign("leader", "p1", 1)).ok(1, txn_ok(true, vec![]));
        h.invoke(2, "txn", None, campaign("leader", "p2", 2)).info(2);
        get(&mut h, 3, "leader", s("p2"));
        if keepalive_after {
            h.invoke(1, "lease-keepalive", None, int(1)).ok(1, int(10));
        }
        h
    };
    assert_eq!(outcome(&history(false)), Outcome::Linearizable);
    assert_eq!(outcome(&history(true)), Outcome::NotLinearizable);
}

/// Counterexample 2: a plain put on a leased key, then a txn finds the key's version 1. Only an expiry before
/// the put explains it (the put created the key afresh). Control: a keepalive after the put shows the lease
/// alive, so the put bumped the version to 2.
#[test]
fn a_version_compare_can_reveal_an_expiry_before_a_put() {
    let history = |keepalive_after_put: bool| {
        let mut h = History::new();
        grant(&mut h, 0, 5);
        put_lease(&mut h, 0, "k", "a", 5);
        h.invoke(1, "put", Some("k"), s("b")).ok(1, Value::Nil);
        if keepalive_after_put {
            h.invoke(0, "lease-keepalive", None, int(5)).ok(0, int(10));
        }
        let is_v1 = l(vec![l(vec![l(vec![s("version"), s("k"), s("="), int(1)])]), l(vec![]), l(vec![])]);
        h.invoke(2, "txn", None, is_v1).ok(2, txn_ok(true, vec![]));
        h
    };
    assert_eq!(outcome(&history(false)), Outcome::Linearizable);
    assert_eq!(outcome(&history(true)), Outcome::NotLinearizable);
}

/// A grant timed out, so its id is unknown; a later put with lease 9 succeeded. The unknown grant may have
/// returned 9. Control: without any unknown grant, nobody could have granted 9.
#[test]
fn an_id_nobody_was_told_may_come_from_a_grant_with_unknown_outcome() {
    let history = |unknown_grant: bool| {
        let mut h = History::new();
        if unknown_grant {
            h.invoke(0, "lease-grant", None, int(10)).info(0);
        }
        put_lease(&mut h, 1, "k", "v", 9);
        get(&mut h, 2, "k", s("v"));
        h
    };
    assert_eq!(outcome(&history(true)), Outcome::Linearizable);
    assert_eq!(outcome(&history(false)), Outcome::NotLinearizable);
}

/// Serializable reads may be stale and are accepted whatever they saw; unknown txns may or may not happen.
#[test]
fn stale_serializable_reads_and_unknown_txns_are_accepted() {
    let mut h = History::new();
    h.invoke(0, "put", Some("k"), s("new")).ok(0, Value::Nil);
    h.invoke(1, "sget", Some("k"), Value::Nil).ok(1, s("old"));
    let swap = l(vec![
        l(vec![l(vec![s("value"), s("k"), s("="), s("new")])]),
        l(vec![l(vec![s("put"), s("k"), s("newer")])]),
        l(vec![]),
    ]);
    h.invoke(2, "txn", None, swap).info(2);
    get(&mut h, 3, "k", s("newer"));
    get(&mut h, 3, "k", s("newer"));
    assert_eq!(outcome(&h), Outcome::Linearizable);
    get(&mut h, 3, "k", s("new"));
    assert_eq!(outcome(&h), Outcome::NotLinearizable, "the unknown txn cannot be undone");
}

/// Keys and leases no op connects are searched apart; a txn or a lease joins them.
#[test]
fn the_history_splits_into_components_of_keys_and_leases() {
    let mut h = History::new();
    grant(&mut h, 0, 1);
    put_lease(&mut h, 0, "a", "x", 1);
    put_lease(&mut h, 0, "b", "x", 1);
    h.invoke(1, "put", Some("c"), s("y")).ok(1, Value::Nil);
    h.invoke(2, "put", Some("d"), s("z")).ok(2, Value::Nil);
    let keys: Vec<Option<String>> = verdict(&h).partitions.iter().map(|p| p.key.clone()).collect();
    assert_eq!(keys, [Some("a (+ b, lease 1)".to_string()), Some("c".to_string()), Some("d".to_string())]);
    let joined =
        l(vec![l(vec![l(vec![s("value"), s("c"), s("="), s("y")])]), l(vec![l(vec![s("get"), s("d")])]), l(vec![])]);
    h.invoke(3, "txn", None, joined).ok(3, txn_ok(true, vec![s("z")]));
    let keys: Vec<Option<String>> = verdict(&h).partitions.iter().map(|p| p.key.clone()).collect();
    assert_eq!(keys, [Some("a (+ b, lease 1)".to_string()), Some("c (+ d)".to_string())]);
    assert_eq!(verdict(&h).stats.operations, 6, "expiry steps are not counted as operations");
}

/// The example file in `tests/histories/` reads as JSON lines, picks lease-kv by itself, and fails exactly
/// where its comment in docs/history-format.md says.
#[test]
fn the_example_campaign_history_is_checked_with_lease_kv_by_default() {
    let text = include_str!("histories/lease-kv-campaign.jsonl");
    let (history, format) = read_history(text, InputFormat::Auto).expect("readable");
    assert_eq!(format, InputFormat::Json);
    let model = default_model(format, &history);
    assert_eq!(model, ModelKind::LeaseKv(LeaseKv));
    let v = check_history(&history, &model, &Budget::unlimited()).expect("well-formed");
    assert_eq!(v.outcome, Outcome::NotLinearizable);
    let (_, violation) = v.violation().expect("explained");
    assert_eq!(violation.culprit.description, "lease-keepalive 1 → 10");
    let fixed = text.replace(r#""f":"lease-keepalive","value":10"#, r#""f":"lease-keepalive","value":0"#);
    let (history, _) = read_history(&fixed, InputFormat::Auto).expect("readable");
    assert_eq!(
        check_history(&history, &model, &Budget::unlimited()).expect("well-formed").outcome,
        Outcome::Linearizable
    );
}
