//! Exactly-once writes (Raft thesis §6.3) and gRPC statuses for malformed requests.

// A simulation replays from its seed only if tokio was built with `--cfg tokio_unstable`
// (.cargo/config.toml sets it; a RUSTFLAGS variable silently replaces that): fail here, clearly.
#[cfg(not(tokio_unstable))]
compile_error!(
    "simulated tests need `--cfg tokio_unstable`; your RUSTFLAGS replaced .cargo/config.toml's. \
     Run with RUSTFLAGS=\"$RUSTFLAGS --cfg tokio_unstable\""
);

use std::time::Duration;

use quorumlab::net::{self, Deadlines, Transport};
use quorumlab::pb;
use quorumlab::pb::kv_service_client::KvServiceClient;
use quorumlab::pb::raft_service_client::RaftServiceClient;
use quorumlab::runtime::for_each_test_seed;
use quorumlab::sim::{Shared, SimCluster, SimOptions};

async fn kv_to_leader(s: &Shared) -> Result<KvServiceClient<tonic::transport::Channel>, String> {
    let leader = s.wait_for_leader_among(&[1, 2, 3], Duration::from_secs(5)).await.ok_or("no leader")?;
    let d = Deadlines { connect: Duration::from_secs(1), request: Duration::from_secs(2) };
    Ok(KvServiceClient::new(net::channel(Transport::Sim, &s.endpoint(leader), d).map_err(|e| e.to_string())?))
}

fn put(key: &str, value: &str, client_id: u64, seq: u64) -> pb::PutRequest {
    pb::PutRequest { key: key.into(), value: value.into(), client_id, seq, lease: 0 }
}

#[test]
fn a_retried_write_with_the_same_client_and_sequence_applies_once() {
    for_each_test_seed(&[3], "sim_exactly_once", "a_retried_write", retried_write);
}

fn retried_write(seed: u64) {
    quorumlab::sim::trace::init_tracing();
    let mut c = SimCluster::new(SimOptions::new(seed, 3));
    let s = c.shared.clone();
    c.client("workload", async move {
        s.initialize(1).await?;
        let mut kv = kv_to_leader(&s).await?;
        let first = kv.put(put("k", "from-a", 7, 1)).await.map_err(|e| e.to_string())?.into_inner();
        // Another client overwrites the key.
        kv.put(put("k", "from-b", 8, 1)).await.map_err(|e| e.to_string())?;
        // Client 7 retries its seq 1 (its first reply was "lost"): the earlier result comes back
        // and the key keeps client 8's value.
        let retry = kv.put(put("k", "from-a", 7, 1)).await.map_err(|e| e.to_string())?.into_inner();
        assert_eq!(retry.result, first.result, "a duplicate must return the original result");
        let got = kv
            .get(pb::GetRequest { key: "k".into(), serializable: false })
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        assert_eq!(got.value, b"from-b", "the duplicate was applied a second time");
        // A new sequence number from client 7 is a new write.
        let next = kv.put(put("k", "from-a", 7, 2)).await.map_err(|e| e.to_string())?.into_inner();
        assert!(next.result.unwrap().revision > first.result.unwrap().revision);
        let got = kv
            .get(pb::GetRequest { key: "k".into(), serializable: false })
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        assert_eq!(got.value, b"from-a");
        Ok(())
    });
    c.run().unwrap();
}

#[test]
fn malformed_requests_get_a_grpc_status_not_a_crash() {
    for_each_test_seed(&[4], "sim_exactly_once", "malformed_requests", malformed_requests);
}

fn malformed_requests(seed: u64) {
    quorumlab::sim::trace::init_tracing();
    let mut c = SimCluster::new(SimOptions::new(seed, 3));
    let s = c.shared.clone();
    c.client("workload", async move {
        s.initialize(1).await?;
        let mut kv = kv_to_leader(&s).await?;
        let e = kv.put(put("", "v", 1, 1)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        let huge = "x".repeat(quorumlab::types::MAX_VALUE_BYTES + 1);
        let e = kv.put(put("k", &huge, 1, 1)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        let cas = pb::CompareAndSwapRequest { key: "k".into(), ..Default::default() };
        let e = kv.compare_and_swap(cas).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        let d = Deadlines { connect: Duration::from_secs(1), request: Duration::from_secs(2) };
        let mut raft =
            RaftServiceClient::new(net::channel(Transport::Sim, &s.endpoint(2), d).map_err(|e| e.to_string())?);
        let e = raft.append_entries(pb::AppendEntriesRequest::default()).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
        assert!(e.message().contains("vote"), "{e}");
        // The cluster is unharmed.
        kv.put(put("k", "v", 1, 1)).await.map_err(|e| e.to_string())?;
        malformed_lease_and_txn_requests(&mut kv).await;
        Ok(())
    });
    c.run().unwrap();
}

/// Every refusal names what is wrong, and nothing is applied: `k` keeps the value the caller wrote before.
async fn malformed_lease_and_txn_requests(kv: &mut KvServiceClient<tonic::transport::Channel>) {
    use tonic::Code::{InvalidArgument, NotFound};
    let refused = |r: Result<tonic::Response<_>, tonic::Status>, code: tonic::Code, says: &str| {
        let e = r.map(|_: tonic::Response<()>| ()).unwrap_err();
        assert_eq!(e.code(), code, "{e}");
        assert!(e.message().contains(says), "{:?} does not say {says:?}", e.message());
    };
    let unit = |r: Result<tonic::Response<pb::LeaseGrantResponse>, tonic::Status>| r.map(|r| r.map(|_| ()));
    let grant = |ttl_ms| pb::LeaseGrantRequest { ttl_ms, client_id: 2, seq: 1 };
    refused(unit(kv.lease_grant(grant(100)).await), InvalidArgument, "below the minimum 3000 ms");
    refused(unit(kv.lease_grant(grant(0)).await), InvalidArgument, "outside 1..=");
    let put_on = |lease| pb::PutRequest { key: "k".into(), value: "leased".into(), client_id: 3, seq: 1, lease };
    refused(kv.put(put_on(999)).await.map(|r| r.map(|_| ())), NotFound, "lease 999 not found");
    let keep = kv.lease_keep_alive(pb::LeaseKeepAliveRequest { id: 999 }).await.map(|r| r.map(|_| ()));
    refused(keep, NotFound, "lease 999 not found");
    let keep = kv.lease_keep_alive(pb::LeaseKeepAliveRequest { id: 0 }).await.map(|r| r.map(|_| ()));
    refused(keep, InvalidArgument, "no lease");

    let put_op = |key: &str| pb::RequestOp {
        op: Some(pb::request_op::Op::Put(pb::PutOp { key: key.into(), value: "t".into(), lease: 0 })),
    };
    let txn = |compares, success| pb::TxnRequest { compares, success, failure: vec![], client_id: 4, seq: 1 };
    let too_many: Vec<pb::RequestOp> = (0..129).map(|i| put_op(&format!("t{i}"))).collect();
    refused(kv.txn(txn(vec![], too_many)).await.map(|r| r.map(|_| ())), InvalidArgument, "at most 128");
    let no_target = pb::Compare { key: "k".into(), op: 0, target: None };
    refused(kv.txn(txn(vec![no_target], vec![put_op("k")])).await.map(|r| r.map(|_| ())), InvalidArgument, "no target");
    let bad_op = pb::Compare { key: "k".into(), op: 42, target: Some(pb::compare::Target::Version(1)) };
    refused(kv.txn(txn(vec![bad_op], vec![put_op("k")])).await.map(|r| r.map(|_| ())), InvalidArgument, "operator 42");
    refused(kv.txn(txn(vec![], vec![put_op("k"), put_op("k")])).await.map(|r| r.map(|_| ())), InvalidArgument, "twice");
    let leased = pb::RequestOp {
        op: Some(pb::request_op::Op::Put(pb::PutOp { key: "k".into(), value: "x".into(), lease: 999 })),
    };
    refused(kv.txn(txn(vec![], vec![put_op("t0"), leased])).await.map(|r| r.map(|_| ())), NotFound, "lease 999");

    let got = kv.get(pb::GetRequest { key: "k".into(), serializable: false }).await.expect("a read").into_inner();
    assert_eq!(got.value, b"v", "a refused request changed k");
    let t0 = kv.get(pb::GetRequest { key: "t0".into(), serializable: false }).await.expect("a read").into_inner();
    assert!(!t0.found, "a txn refused for its lease applied its first put");
}
