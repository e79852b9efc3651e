//! The database's clients: one per client datacenter, on its own host beside that datacenter's
//! nodes (`<dc>-dbclient`). Each finds the primary the way an application behind Patroni does —
//! by reading the leader key from the consensus store — and writes and reads a few keys with one
//! operation in flight. A write with no answer is *unknown* (the process retires, as in Jepsen);
//! a refusal is a certain failure. Every read the primary served is also reported with its token
//! and the entry it was read at, for the stale-read check. After the heal each client reads every
//! key once, so a lost acknowledged write shows in the history.
//!
//! Connections to a member are kept across operations (as a connection pool does), so a firewall
//! that keeps established connections lets these sessions through. A client cut off from the
//! consensus store keeps going to the primary it last found, as an application behind a proxy that
//! routes to whichever host says it is primary does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use quorumlab_check::{EventKind, Value};
use quorumlab_fencing::check::ServedRead;
use quorumlab_fencing::{MemberId, Token};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tonic::Code;

use super::{World, LEADER_KEY};
use crate::client::{Client, ClientConfig};
use crate::net::{self, Deadlines, Transport};
use crate::pb;
use crate::pb::database_service_client::DatabaseServiceClient;
use crate::runtime;
use crate::sim::trace::sim_now;
use crate::sim::workload::{Control, Phase};

const KEYS: u64 = 3;
const THINK: Duration = Duration::from_millis(50);
const DEADLINE: Duration = Duration::from_millis(1_500);

/// The tag of a datacenter's database client processes in the database history.
pub fn db_tag(dc: &str) -> String {
    format!("{dc}/db")
}

struct Session {
    world: Arc<World>,
    kv: Client,
    channels: BTreeMap<u64, DatabaseServiceClient<tonic::transport::Channel>>,
    primary: Option<u64>,
    /// The holder the last successful read of the leader key named.
    last_named: Option<u64>,
    process: u64,
    tag: String,
}

impl Session {
    fn channel(&mut self, member: u64) -> Option<DatabaseServiceClient<tonic::transport::Channel>> {
        if let Some(c) = self.channels.get(&member) {
            return Some(c.clone());
        }
        let deadlines = Deadlines { connect: DEADLINE, request: DEADLINE };
        let channel = net::channel(Transport::Sim, &self.world.address(member), deadlines).ok()?;
        let client = DatabaseServiceClient::new(channel);
        self.channels.insert(member, client.clone());
        Some(client)
    }

    /// The primary to send to: the leader key's holder, read again after a failure. When the consensus
    /// store cannot be read at all, the last primary it named (an application behind a health-checking
    /// proxy keeps going to the host that still says it is primary).
    async fn find_primary(&mut self) -> Option<u64> {
        if self.primary.is_none() {
            self.primary = match self.kv.get(LEADER_KEY.as_bytes()).await {
                Ok(found) => found.and_then(|f| String::from_utf8_lossy(&f.value).parse().ok()),
                Err(_) => self.last_named,
            };
            self.last_named = self.primary;
        }
        self.primary
    }

    fn retire(&mut self) {
        self.process = self.world.recorder.process(&self.tag);
    }

    async fn write(&mut self, key: &str, value: &str) {
        let Some(member) = self.find_primary().await else { return };
        let Some(mut db) = self.channel(member) else { return };
        let rec = &self.world.recorder;
        rec.event(self.process, EventKind::Invoke, "put", key, Value::Str(value.into()));
        let r = db.write(pb::DbWriteRequest { key: key.into(), value: value.into() }).await;
        match r {
            Ok(_) => rec.event(self.process, EventKind::Ok, "put", key, Value::Str(value.into())),
            Err(s) if matches!(s.code(), Code::FailedPrecondition | Code::InvalidArgument) => {
                rec.event(self.process, EventKind::Fail, "put", key, Value::Nil);
                self.primary = None;
            }
            Err(_) => {
                rec.event(self.process, EventKind::Info, "put", key, Value::Nil);
                self.retire();
                self.primary = None;
                // A connection that failed is dropped, as a pool would.
                self.channels.remove(&member);
            }
        }
    }

    async fn read(&mut self, key: &str) -> bool {
        let Some(member) = self.find_primary().await else { return false };
        let Some(mut db) = self.channel(member) else { return false };
        let rec = &self.world.recorder;
        rec.event(self.process, EventKind::Invoke, "get", key, Value::Nil);
        let sent = sim_now();
        match db.read(pb::DbReadRequest { key: key.into() }).await {
            Ok(r) => {
                let r = r.into_inner();
                let v = r.value.clone().map(Value::Str).unwrap_or(Value::Nil);
                rec.event(self.process, EventKind::Ok, "get", key, v);
                self.world.served_read(ServedRead {
                    member: MemberId(member),
                    token: Token(r.token),
                    sent,
                    served: sim_now(),
                    key: key.into(),
                    value: r.value,
                    head: r.head.as_ref().map(crate::db::id_from_pb),
                });
                true
            }
            Err(s) => {
                rec.event(self.process, EventKind::Fail, "get", key, Value::Nil);
                self.primary = None;
                if !matches!(s.code(), Code::FailedPrecondition) {
                    self.channels.remove(&member);
                }
                false
            }
        }
    }
}

/// Datacenter `dc`'s database client, until it has read every key after the heal.
pub async fn run(world: Arc<World>, control: Arc<Control>, dc: String) -> Result<(), String> {
    while control.phase() == Phase::Setup {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut cfg = ClientConfig::new(world.shared.endpoints(), Transport::Sim);
    cfg.overall_timeout = Duration::from_millis(1_000);
    cfg.attempt_timeout = cfg.overall_timeout;
    let kv = Client::new(cfg)?;
    let tag = db_tag(&dc);
    let process = world.recorder.process(&tag);
    let mut s =
        Session { world: world.clone(), kv, channels: BTreeMap::new(), primary: None, last_named: None, process, tag };
    let mut rng = ChaCha8Rng::seed_from_u64(runtime::stream_seed(world.shared.options.seed, "dbclient/", &dc));
    let mut n = 0u64;
    while control.phase() == Phase::Load {
        let key = format!("d{}", rng.gen_range(0..KEYS));
        if rng.gen_bool(0.6) {
            n += 1;
            s.write(&key, &format!("{dc}-{n}")).await;
        } else {
            s.read(&key).await;
        }
        tokio::time::sleep(THINK).await;
    }
    // After the heal: read every key once from whoever is primary by then.
    let deadline = sim_now() + Duration::from_secs(40);
    for k in 0..KEYS {
        let key = format!("d{k}");
        while !s.read(&key).await && sim_now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}
