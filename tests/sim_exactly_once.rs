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
        Ok(())
    });
    c.run().unwrap();
}
