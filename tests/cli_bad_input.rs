//! Bad input gets a clear error and a non-zero exit, never a panic.

use std::process::{Command, Output};

const EXE: &str = env!("CARGO_BIN_EXE_quorumlab");

fn run(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().expect("run quorumlab")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_no_panic(o: &Output) {
    let e = stderr(o);
    assert!(!e.contains("panicked"), "quorumlab panicked: {e}");
}

#[test]
fn a_malformed_peer_is_a_usage_error_that_says_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = run(&["node", "--id", "1", "--listen", "127.0.0.1:7001", "--data-dir", d, "--peer", "127.0.0.1:7002"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("ID=HOST:PORT"), "{}", stderr(&o));
    let o = run(&["node", "--id", "0", "--listen", "127.0.0.1:7001", "--data-dir", d]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_no_panic(&o);
    // The largest id is reserved: a restarted leader's vote names it for the term it gave up.
    let o = run(&["node", "--id", &u64::MAX.to_string(), "--listen", "127.0.0.1:7001", "--data-dir", d]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("18446744073709551614"), "the error names the largest id allowed: {}", stderr(&o));
    assert_no_panic(&o);
}

#[test]
fn an_unreachable_endpoint_fails_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ep = format!("127.0.0.1:{port}");
    let o = run(&["kv", "get", "k", "--endpoints", &ep, "--timeout", "1s"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&ep), "the error names the endpoint: {}", stderr(&o));
    assert_no_panic(&o);
    let o = run(&["cluster", "status", "--endpoints", &ep]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("unreachable"), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn a_directory_that_is_not_a_quorumlab_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("important.txt"), "not raft data").unwrap();
    let d = dir.path().to_str().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = run(&["node", "--id", "1", "--listen", &format!("127.0.0.1:{port}"), "--data-dir", d]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a quorumlab data directory"), "{}", stderr(&o));
    assert!(stderr(&o).contains(d), "the error names the directory: {}", stderr(&o));
    assert_no_panic(&o);
    assert_eq!(std::fs::read_to_string(dir.path().join("important.txt")).unwrap(), "not raft data");
}

#[test]
fn an_oversized_key_or_value_is_refused_before_it_is_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ep = format!("127.0.0.1:{port}");
    let key = "k".repeat(quorumlab::types::MAX_KEY_BYTES + 1);
    let o = run(&["kv", "put", &key, "v", "--endpoints", &ep]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("the limit is"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not applied"), "{}", stderr(&o));
    assert_no_panic(&o);
}

#[test]
fn bad_arguments_say_what_is_allowed() {
    let o = run(&["cluster", "status", "--endpoints", "nohost", "--format", "table"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("HOST:PORT"), "{}", stderr(&o));
    let o = run(&["cluster", "status", "--endpoints", "127.0.0.1:1", "--format", "yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("table") && stderr(&o).contains("json"), "{}", stderr(&o));
    let o = run(&["kv", "get", "k", "--timeout", "5 parsecs"]);
    assert_eq!(o.status.code(), Some(2));
    assert_no_panic(&o);
}

#[test]
fn suite_refuses_a_bad_fault_topology_shard_or_schedule_and_says_what_is_allowed() {
    for (args, says) in [
        (vec!["suite", "etcd-2-2-1", "--faults", "cut:dc1:dc9"], "faults are"),
        (vec!["suite", "etcd-2-2-1", "--faults", "loss:dc1:dc2:0"], "percentage"),
        (vec!["suite", "no-such-topology"], "not a shipped topology"),
        (vec!["suite", "--shard", "3/2"], "1 ≤ K ≤ N"),
        (vec!["suite", "etcd-3", "--schedule", "isolate:leader@1s"], "FAULT@START+DURATION"),
        (vec!["suite", "etcd-3", "--seeds", "0"], "at least 1"),
        // Real mode refuses what it cannot do before it needs root, and says where to run it instead.
        (vec!["suite", "etcd-2-2-1", "--real", "--faults", "latency:dc1:dc2:50"], "no sch_netem"),
        (vec!["suite", "etcd-2-2-1", "--compare-sim", "--faults", "clock:dc1:50"], "run clock faults in the simulator"),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?} should say {says:?}: {}", stderr(&o));
        assert_no_panic(&o);
    }
}

#[test]
fn suite_replays_one_run_from_its_command_and_exits_zero_when_it_passes() {
    let o = run(&["suite", "etcd-3", "--schedule", "isolate:leader@0ms+8s", "--seed", "3", "--jobs", "1"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    assert!(out.contains("ok   etcd-3: isolate the leader @0.0s for 8.0s [seed 3]"), "{out}");
    assert!(out.contains("1 runs, 1 passed, 0 failed"), "{out}");
}

#[test]
fn a_malformed_txn_names_the_flag_the_text_and_what_is_allowed() {
    for (flag, text, says) in [
        ("--if", "create(leader) ~ 0", "use =, !=, < or >"),
        ("--if", "owner(k) = 1", "use value, version, create, mod or lease"),
        ("--if", "version(k) > many", "whole number"),
        ("--if", "leader = 0", "TARGET(KEY) OP OPERAND"),
        ("--then", "set k v", "'put KEY VALUE [--lease ID]', 'del KEY' or 'get KEY'"),
        ("--else", "put k v --lease x", "whole number ≥ 1"),
    ] {
        let o = run(&["kv", "txn", flag, text, "--endpoints", "127.0.0.1:1"]);
        assert_eq!(o.status.code(), Some(2), "{flag} {text:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(flag) && e.contains(text) && e.contains(says), "{flag} {text:?} should say {says:?}: {e}");
        assert_no_panic(&o);
    }
}

#[test]
fn a_txn_with_too_many_operations_is_refused_before_it_is_sent() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ep = format!("127.0.0.1:{port}");
    let ops: Vec<String> = (0..=quorumlab::types::MAX_TXN_OPS).map(|i| format!("put k{i} v")).collect();
    let mut args = vec!["kv", "txn", "--endpoints", &ep];
    for op in &ops {
        args.extend(["--then", op.as_str()]);
    }
    let o = run(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("at most 128") && stderr(&o).contains("129"), "{}", stderr(&o));
    assert!(stderr(&o).contains("not applied"), "{}", stderr(&o));
    assert_no_panic(&o);
}

#[test]
fn bad_lease_arguments_say_what_is_allowed() {
    for (args, says) in [
        (vec!["lease", "grant", "5 parsecs"], "use ms, s or m"),
        (vec!["lease", "grant", "soon"], "like 5s, 1500ms or 2m"),
        (vec!["lease", "revoke", "0"], "whole number ≥ 1"),
        (vec!["lease", "ttl", "abc"], "whole number ≥ 1"),
        (vec!["lease", "keep-alive", "7", "--every", "1x"], "use ms, s or m"),
        (vec!["lease", "keep-alive", "7", "--for", "1s"], "--every"),
        (vec!["lease", "keep-alive", "7", "--once", "--every", "1s"], "cannot be used with"),
        (vec!["kv", "put", "k", "v", "--lease", "0"], "--lease"),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?} should say {says:?}: {}", stderr(&o));
        assert_no_panic(&o);
    }
}

#[test]
fn a_keep_alive_nobody_answers_is_unknown_not_failed() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ep = format!("127.0.0.1:{port}");
    let o = run(&["lease", "keep-alive", "7", "--endpoints", &ep, "--timeout", "500ms"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("outcome unknown") && e.contains("may still be live until its TTL from the last answered send"),
        "{e}"
    );
    assert!(e.contains(&ep), "the error names the endpoint: {e}");
    assert_no_panic(&o);
}

/// Every command that talks to a cluster has the same default endpoints (the local cluster `cluster up` starts) and
/// the same `QUORUMLAB_ENDPOINTS` override: with nothing listening, `cluster status` reports the nodes unreachable
/// (exit 1) instead of refusing its arguments (exit 2).
#[test]
fn cluster_status_without_endpoints_uses_the_local_default_like_kv() {
    let out = Command::new(EXE)
        .args(["cluster", "status", "--timeout", "300ms"])
        .env("QUORUMLAB_ENDPOINTS", "127.0.0.1:1,127.0.0.1:2")
        .output()
        .expect("run quorumlab");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(2), "usage error: {stderr}");
    assert!(format!("{stdout}{stderr}").contains("127.0.0.1:1"), "the override was not used: {stdout}{stderr}");
    let help = run(&["cluster", "status", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("127.0.0.1:7001"), "the default is documented in --help");
}

#[test]
fn fencing_commands_refuse_bad_input_and_say_what_is_allowed() {
    let cases: [(&[&str], &str); 5] = [
        (&["fencing", "run", "etcd-2-2", "--fault", "3"], "places no database hosts"),
        (&["fencing", "run", "etcd-2-2-1", "--strategy", "sideways", "--fault", "3"], "stonith|firewall"),
        (&["fencing", "run", "etcd-2-2-1", "--fault", "nope"], "pause-supervisor (3)"),
        (&["fencing", "run", "etcd-2-2-1", "--schedule", "db-clock:primary:0"], "1 to 1000 percent"),
        (&["fencing", "matrix", "--rows", "stonith,unknown-row"], "the rows are"),
    ];
    for (args, expected) in cases {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{args:?} should say {expected:?}: {}", stderr(&o));
        assert_no_panic(&o);
    }
    let o = run(&["fencing", "run", "etcd-2-2-1", "--fault", "3", "--bugs", "made-up"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("lying-stonith"), "{}", stderr(&o));
}

#[test]
fn whatif_names_what_is_allowed() {
    let o = run(&["whatif", "etcd-2-2-1", "--scenario", "cut:dc1:dc9"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cut:dc1:dc2") && stderr(&o).contains("all"), "lists the scenarios: {}", stderr(&o));
    let o = run(&["whatif", "no-such-topology"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("etcd-2-2-1"), "lists the shipped topologies: {}", stderr(&o));
    let o = run(&["whatif", "etcd-2-2-1", "--seeds", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["whatif", "etcd-2-2-1", "--format", "pdf"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("html"), "{}", stderr(&o));
    let o = run(&["whatif", "--compare", "etcd-3-2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_no_panic(&o);
}

#[test]
fn experiment_refuses_bad_ranges_and_says_what_is_allowed() {
    for (args, says) in [
        (vec!["experiment", "election-timeouts", "--ranges", "200-100"], "the minimum must be ≤ the maximum"),
        (vec!["experiment", "election-timeouts", "--ranges", "0-10"], "at least 2 ms"),
        (vec!["experiment", "election-timeouts", "--ranges", "150-300,fast"], "MIN-MAX"),
        (vec!["experiment", "election-timeouts", "--trials", "0"], "from 1 to"),
        (vec!["experiment", "election-timeouts", "--cap", "0s"], "from 1ms to 10m"),
        (vec!["experiment", "election-timeouts", "--format", "csv"], "html"),
    ] {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?} should say {says:?}: {}", stderr(&o));
        assert_no_panic(&o);
    }
}

#[test]
fn whatif_refuses_what_it_cannot_run_before_running_anything() {
    let o = run(&["whatif", "etcd-2-2-1", "--seeds", "18446744073709551615"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("at most 10000"), "{}", stderr(&o));
    assert_no_panic(&o);
    let o = run(&["whatif", "etcd-2-2-1", "--scenario", "all,isolate:leadr"]);
    assert_eq!(o.status.code(), Some(2), "a typo beside `all` is not ignored: {}", stderr(&o));
    let o = run(&["whatif", "--compare", "etcd-3-2", "etcd-2-2-1", "--scenario", "cut:dc1:dc3,isolate:leadr"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["whatif", "etcd-3", "--scenario", "isolate:leader", "--out", "/nonexistent-dir/report.html"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent-dir/report.html"), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-clients.toml");
    std::fs::write(
        &file,
        "name = \"no-clients\"\ndescription = \"voters, no clients\"\n\n[[datacenter]]\nname = \"dc1\"\nvoters = 3\n",
    )
    .unwrap();
    let o = run(&["whatif", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("clients = true"), "{}", stderr(&o));
    assert_no_panic(&o);
}
