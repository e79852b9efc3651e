//! Every file in `tests/bad-topologies/` must be refused with exactly the error in its `.err` sidecar.
//! `QUORUMLAB_BLESS=1 cargo test -p quorumlab-quorum --test bad_topologies` rewrites the sidecars; review the diff.

use std::fs;
use std::path::Path;

use quorumlab_quorum::Topology;

#[test]
fn every_bad_topology_is_refused_with_its_exact_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-topologies");
    let bless = std::env::var_os("QUORUMLAB_BLESS").is_some();
    let mut files: Vec<_> = fs::read_dir(&dir)
        .expect("tests/bad-topologies exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "the folder of bad topologies went missing");
    let mut mismatches = Vec::new();
    for path in files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("utf-8 name").to_string();
        let label = format!("tests/bad-topologies/{name}");
        let text = fs::read_to_string(&path).expect("readable");
        let actual = match Topology::parse(&label, &text) {
            Ok(_) => format!("(accepted: expected an error for {label})"),
            Err(error) => error.to_string(),
        };
        let expected_path = path.with_extension("err");
        if bless {
            fs::write(&expected_path, format!("{actual}\n")).expect("writable");
            continue;
        }
        let expected = fs::read_to_string(&expected_path).unwrap_or_default();
        if expected.trim_end() != actual {
            mismatches.push(format!("{name}\n  expected: {}\n  actual:   {actual}", expected.trim_end()));
        }
    }
    assert!(mismatches.is_empty(), "wrong errors:\n{}", mismatches.join("\n"));
}

#[test]
fn every_shipped_topology_parses_and_says_what_it_teaches() {
    for name in quorumlab_quorum::shipped::NAMES {
        let topology = quorumlab_quorum::shipped::load(name).expect("shipped topologies are valid");
        assert_eq!(topology.name(), name);
        assert!(topology.description().len() > 40, "{name}: the description should teach something");
        let on_disk = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../topologies/{name}.toml"));
        let text = fs::read_to_string(on_disk).expect("shipped file on disk");
        assert_eq!(Topology::parse(&format!("topologies/{name}.toml"), &text).as_ref(), Ok(&topology));
    }
}

#[test]
fn learners_get_host_names_after_the_voters_of_their_datacenter_and_never_count_as_voters() {
    let text = r#"
name = "with-learner"
description = "two voters and a learner"

[[datacenter]]
name = "east"
voters = 2
learners = 1
clients = true

[[datacenter]]
name = "west"
voters = 1

[[link]]
between = ["west", "east"]
latency_ms = 30
jitter_ms = 5
"#;
    let topology = Topology::parse("inline.toml", text).expect("valid");
    let hosts: Vec<_> = topology.nodes().iter().map(|n| (n.id, n.host.as_str(), n.role)).collect();
    use quorumlab_quorum::Role::{Learner, Voter};
    assert_eq!(
        hosts,
        vec![(1, "east-n1", Voter), (2, "east-n2", Voter), (3, "east-n3", Learner), (4, "west-n1", Voter)]
    );
    assert_eq!((topology.voter_count(), topology.majority()), (3, 2));
    let link = topology.latency_between(3, 4).expect("known nodes");
    assert_eq!((link.latency_ms, link.jitter_ms), (30, 5));
    assert_eq!(topology.raft_timing(), quorumlab_quorum::RaftTiming::default());
    assert_eq!(topology.client_dcs(), vec!["east"]);
}

#[test]
fn shipped_topologies_place_their_database_hosts() {
    let hosts = |name: &str| -> Vec<(u64, String)> {
        let topology = quorumlab_quorum::shipped::load(name).expect("shipped topologies are valid");
        assert!(topology.datacenters().iter().all(|dc| dc.fence_path == quorumlab_quorum::FencePath::OutOfBand));
        topology.db_hosts().iter().map(|db| (db.member, db.host.clone())).collect()
    };
    let owned = |list: &[(u64, &str)]| list.iter().map(|&(m, h)| (m, h.to_string())).collect::<Vec<_>>();
    assert_eq!(hosts("etcd-2-2-1"), owned(&[(1, "dc1-db1"), (2, "dc1-db2"), (3, "dc2-db1")]));
    assert_eq!(hosts("etcd-3-2"), owned(&[(1, "dc1-db1"), (2, "dc1-db2"), (3, "dc2-db1")]));
    assert_eq!(hosts("etcd-3"), owned(&[(1, "dc1-db1"), (2, "dc1-db2"), (3, "dc1-db3")]));
    assert!(hosts("etcd-5").is_empty());
}
