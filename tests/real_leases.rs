//! Leases and transactions on real `quorumlab node` processes, driven only through the
//! `quorumlab` binary: the commands a Patroni-like holder would run against `cluster up`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use quorumlab::local::{free_addrs, poll, LocalCluster};

const EXE: &str = env!("CARGO_BIN_EXE_quorumlab");
const SEC: Duration = Duration::from_secs(1);
/// Fast timing so a short lease is allowed: the minimum TTL is 1.5 x the maximum election
/// timeout (2 x 300 ms), i.e. 900 ms.
const NODE_ARGS: [&str; 4] = ["--heartbeat-ms", "50", "--election-timeout-ms", "300"];

async fn cluster() -> (LocalCluster, String) {
    let cluster = LocalCluster::start(Path::new(EXE), free_addrs(3).unwrap(), None, &NODE_ARGS, true).unwrap();
    cluster.wait_listening(20 * SEC).await.unwrap();
    let endpoints = cluster.endpoints().join(",");
    let init = ql(&["cluster", "init", "--endpoints", &endpoints]);
    assert!(init.status.success(), "cluster init failed: {}", err(&init));
    cluster.wait_for_leader(&[1, 2, 3], 10 * SEC).await.unwrap();
    (cluster, endpoints)
}

fn ql(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().expect("run quorumlab")
}

/// Runs `quorumlab ARGS --endpoints E` and returns (exit code, stdout, stderr).
fn run(endpoints: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(EXE).args(args).args(["--endpoints", endpoints]).output().expect("run quorumlab");
    assert!(!err(&o).contains("panicked"), "{args:?} panicked: {}", err(&o));
    (o.status.code(), out(&o), err(&o))
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed and returns its stdout.
fn ok(endpoints: &str, args: &[&str]) -> String {
    let (code, out, err) = run(endpoints, args);
    assert_eq!(code, Some(0), "{args:?}\nstdout: {out}\nstderr: {err}");
    out
}

fn grant(endpoints: &str, ttl: &str) -> String {
    let out = ok(endpoints, &["lease", "grant", ttl]);
    // "lease ID granted with TTL N ms"
    let id = out.split_whitespace().nth(1).unwrap_or_default().to_string();
    assert!(id.parse::<u64>().is_ok_and(|id| id > 0), "no lease id in {out:?}");
    id
}

/// The field `name=N` of `kv get --meta`'s second line.
fn meta_field(out: &str, name: &str) -> u64 {
    let line = out.lines().nth(1).unwrap_or_default();
    let field = line.split_whitespace().find_map(|f| f.strip_prefix(&format!("{name}=")));
    field.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {name}= in {out:?}"))
}

/// Grant, campaign twice, renew, list, read serializably, revoke; then a lease left alone expires
/// and takes its key with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_campaigns_with_a_lease_renews_it_and_its_key_dies_with_the_lease() {
    let (mut cluster, eps) = cluster().await;
    let eps = eps.as_str();

    let id = grant(eps, "3s");
    ok(eps, &["kv", "put", "holder-data", "x", "--lease", &id]);

    // Campaign: take the leader key only if nobody holds it.
    let campaign = |who: &str| {
        run(
            eps,
            &[
                "kv",
                "txn",
                "--if",
                "create(leader) = 0",
                "--then",
                &format!("put leader {who} --lease {id}"),
                "--else",
                "get leader",
            ],
        )
    };
    let (code, won, e) = campaign("n1");
    assert_eq!(code, Some(0), "the first campaign must win: {won}\n{e}");
    assert!(won.starts_with("SUCCESS") && won.contains("created"), "{won}");
    let token: u64 = won.split_whitespace().find_map(|w| w.parse().ok()).expect("a revision in the verdict");
    let (code, lost, e) = campaign("n2");
    assert_eq!(code, Some(1), "the second campaign must lose: {lost}\n{e}");
    assert!(lost.starts_with("FAILURE"), "{lost}");
    assert!(lost.contains(r#"get "leader": "n1""#), "the loser sees the holder: {lost}");

    // The holder's fencing token is the key's create revision, stable across its renewals.
    let got = ok(eps, &["kv", "get", "leader", "--meta"]);
    assert_eq!(got.lines().next(), Some("n1"), "{got}");
    assert_eq!(meta_field(&got, "create_revision"), token, "{got}");
    assert_eq!(meta_field(&got, "lease").to_string(), id, "{got}");

    let renewed = ok(eps, &["lease", "keep-alive", &id, "--every", "300ms", "--for", "900ms"]);
    // How many renewals fit in 900 ms depends on the machine's load: count none, require one.
    assert!(renewed.contains(&format!("lease {id} renewed: TTL 3000 ms")), "{renewed}");
    assert!(renewed.contains("counted from the send"), "{renewed}");
    let once = ok(eps, &["lease", "keep-alive", &id, "--once"]);
    assert!(once.contains(&format!("lease {id} renewed")), "{once}");

    let ttl = ok(eps, &["lease", "ttl", &id, "--keys"]);
    assert!(ttl.contains("of 3000 ms left"), "{ttl}");
    assert!(ttl.contains(r#"key "leader""#) && ttl.contains(r#"key "holder-data""#), "{ttl}");

    // A serializable read from one member: it says it may be stale and who answered. The member
    // may not have applied the campaign yet, so wait for it (with a deadline).
    let member3 = cluster.addrs[&3].clone();
    let seen = poll(10 * SEC, async || {
        let (code, out, err) = run(&member3, &["kv", "get", "leader", "--serializable"]);
        (code == Some(0) && out.trim() == "n1").then_some(err)
    })
    .await;
    let note = seen.expect("member 3 never served leader = n1 serializably");
    assert!(note.contains("possibly stale") && note.contains("member 3"), "{note}");

    let revoked = ok(eps, &["lease", "revoke", &id]);
    assert!(revoked.contains("keys deleted: 2"), "{revoked}");
    let (code, _, e) = run(eps, &["kv", "get", "leader"]);
    assert_eq!(code, Some(1), "the leader key must be gone with its lease: {e}");
    assert!(e.contains("not found"), "{e}");
    let (code, _, e) = run(eps, &["lease", "keep-alive", &id]);
    assert_eq!(code, Some(1), "{e}");
    assert!(e.contains("not found") && e.contains("certainly not live"), "{e}");

    // A lease nobody renews expires by the leader's clock: TTL, plus up to an election timeout
    // if the leader changes, plus the keeper's tick; the deadline below leaves a wide margin.
    let short = grant(eps, "1s");
    ok(eps, &["kv", "put", "ephemeral", "e", "--lease", &short]);
    let gone = poll(15 * SEC, async || (run(eps, &["kv", "get", "ephemeral"]).0 == Some(1)).then_some(())).await;
    assert!(gone.is_some(), "the key of an unrenewed 1s lease is still there");
    let (code, _, e) = run(eps, &["lease", "ttl", &short]);
    assert_eq!(code, Some(1), "{e}");
    assert!(e.contains("not found"), "{e}");

    cluster.stop(5 * SEC).await;
}

/// Bad input that only a running cluster can judge: a TTL below its minimum and an unknown lease
/// get a clear error and exit 1, and nothing is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_ttl_or_an_unknown_lease_is_refused_and_nothing_is_applied() {
    let (mut cluster, eps) = cluster().await;
    let eps = eps.as_str();

    let (code, _, e) = run(eps, &["lease", "grant", "500ms"]);
    assert_eq!(code, Some(1), "{e}");
    assert!(e.contains("below the minimum 900 ms") && e.contains("not applied"), "{e}");

    let unknown = "999999";
    let (code, _, e) = run(eps, &["kv", "put", "k", "v", "--lease", unknown]);
    assert_eq!(code, Some(1), "{e}");
    assert!(e.contains("lease 999999 not found") && e.contains("not applied"), "{e}");
    let (code, _, e) = run(eps, &["kv", "txn", "--then", "put k v --lease 999999", "--then", "put j v"]);
    assert_eq!(code, Some(1), "{e}");
    assert!(e.contains("lease 999999 not found") && e.contains("not applied"), "{e}");
    for key in ["k", "j"] {
        let (code, _, e) = run(eps, &["kv", "get", key]);
        assert_eq!(code, Some(1), "{key} must not have been written: {e}");
    }
    for args in [["lease", "keep-alive", unknown], ["lease", "ttl", unknown], ["lease", "revoke", unknown]] {
        let (code, _, e) = run(eps, &args);
        assert_eq!(code, Some(1), "{args:?}: {e}");
        assert!(e.contains("lease 999999 not found"), "{args:?}: {e}");
    }
    cluster.stop(5 * SEC).await;
}
