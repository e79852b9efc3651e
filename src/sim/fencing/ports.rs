//! The simulator's side of `quorumlab-fencing`'s ports: the consensus store is the Raft KV through
//! the ordinary client library; the power switch, firewall, credential authority and watchdog are
//! devices the simulator plays. A real deployment would implement the same traits against etcd, a
//! PDU, nftables and `/dev/watchdog`.
//!
//! Every call only starts an operation and returns its [`RequestId`]. Consensus and watchdog
//! outcomes go to the supervisor as [`Event`]s; a fence device's outcome waits under its id until
//! [`SimPorts::outcome`] collects it. Every operation ends: client calls within their overall
//! deadline, devices by answering or by never answering (the fence run's deadline then times the
//! attempt out).
//!
//! A device is reached by its declared path ([`World::device_reachable`]): an unreachable device never
//! answers, except under the planted bug `timeout_as_success` (a driver that reports success when it
//! cannot reach its device).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quorumlab_fencing::ports::{ConsensusStore, CredentialAuthority, Firewall, PowerSwitch, RequestId, Watchdog};
use quorumlab_fencing::{DeviceOutcome, Event, LeaseId, MemberId, Token};
use tokio::sync::oneshot;

use super::agent::{lag, send, Ctx};
use super::{Command, World, LEADER_KEY};
use crate::client::LeaseError;
use crate::net::{self, Deadlines, Transport};
use crate::pb;
use crate::sim::trace::sim_now;
use crate::types::{Compare, CompareOp, CompareTarget, Txn, TxnOp, TxnOpResult};

/// A management network's round trip.
const DEVICE_LATENCY: Duration = Duration::from_millis(20);

/// One agent's ports. Clones share the request counter and the waiting outcomes.
#[derive(Clone)]
pub struct SimPorts {
    ctx: Ctx,
    next: Arc<AtomicU64>,
    waiting: Arc<Mutex<BTreeMap<RequestId, oneshot::Receiver<DeviceOutcome>>>>,
}

impl SimPorts {
    pub(super) fn new(ctx: Ctx) -> SimPorts {
        SimPorts { ctx, next: Arc::default(), waiting: Arc::default() }
    }

    fn id(&self) -> RequestId {
        RequestId(self.next.fetch_add(1, Ordering::Relaxed))
    }

    pub fn world(&self) -> &Arc<World> {
        &self.ctx.world
    }

    pub fn member(&self) -> u64 {
        self.ctx.member
    }

    /// Starts `work` as a consensus operation whose outcome is an event for the supervisor.
    fn consensus(&self, work: impl std::future::Future<Output = Option<Event>> + Send + 'static) -> RequestId {
        let ctx = self.ctx.clone();
        tokio::spawn(async move {
            if let Some(event) = work.await {
                send(&ctx, event);
            }
        });
        self.id()
    }

    /// Starts a device operation; its outcome waits for [`SimPorts::outcome`].
    fn device(&self, work: impl std::future::Future<Output = DeviceOutcome> + Send + 'static) -> RequestId {
        let id = self.id();
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id, rx);
        tokio::spawn(async move {
            let _ = tx.send(work.await);
        });
        id
    }

    /// The outcome of device operation `id`, once it has one (`Failed` for an unknown id).
    pub async fn outcome(&self, id: RequestId) -> DeviceOutcome {
        let rx = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        match rx {
            Some(rx) => rx.await.unwrap_or(DeviceOutcome::Failed),
            None => DeviceOutcome::Failed,
        }
    }
}

impl ConsensusStore for SimPorts {
    fn grant_lease(&mut self, ttl: Duration) -> RequestId {
        let ctx = self.ctx.clone();
        self.consensus(async move {
            let sent_at = ctx.clock.now();
            let r = ctx.leases.lock().await.lease_grant(ttl).await;
            Some(match r {
                Ok(resp) => Event::LeaseGranted { id: LeaseId(resp.lease), sent_at, ttl },
                Err(_) => Event::LeaseGrantFailed,
            })
        })
    }

    fn campaign(&mut self, lease: LeaseId, member: MemberId) -> RequestId {
        let ctx = self.ctx.clone();
        self.consensus(async move { Some(campaign(&ctx, lease, member).await) })
    }

    fn keep_alive(&mut self, lease: LeaseId) -> RequestId {
        let ctx = self.ctx.clone();
        self.consensus(async move { Some(keep_alive(&ctx, lease).await) })
    }

    fn revoke_lease(&mut self, lease: LeaseId) -> RequestId {
        let ctx = self.ctx.clone();
        self.consensus(async move {
            let _ = ctx.leases.lock().await.lease_revoke(lease.0).await;
            None
        })
    }

    /// The holder goes where the host needs it (the replica follows it); the core learns nothing from it.
    fn read_leader(&mut self) -> RequestId {
        let ctx = self.ctx.clone();
        self.consensus(async move {
            let _ = ctx.main.lock().await.get(LEADER_KEY.as_bytes()).await;
            None
        })
    }
}

/// Takes the leader key by a transaction on create revision 0; the else branch reads the holder.
async fn campaign(ctx: &Ctx, lease: LeaseId, member: MemberId) -> Event {
    let key = LEADER_KEY.as_bytes().to_vec();
    let mut compares =
        vec![Compare { key: key.clone(), op: CompareOp::Equal, target: CompareTarget::CreateRevision(0) }];
    let options = &ctx.world.options;
    if options.synchronous && options.degradable {
        // The sync key as this member's eligibility was judged: a degrade since then makes the campaign fail.
        let seen = *ctx.sync_seen.lock().unwrap_or_else(|e| e.into_inner());
        compares.push(Compare {
            key: super::SYNC_KEY.as_bytes().to_vec(),
            op: CompareOp::Equal,
            target: CompareTarget::ModRevision(seen),
        });
    }
    let txn = Txn {
        compares,
        success: vec![TxnOp::Put { key: key.clone(), value: member.0.to_string().into_bytes(), lease: lease.0 }],
        failure: vec![TxnOp::Get { key }],
    };
    let r = ctx.main.lock().await.txn(txn).await;
    match r {
        Ok(resp) if resp.succeeded => {
            ctx.db.follow(Some(ctx.member));
            *ctx.won.lock().unwrap_or_else(|e| e.into_inner()) = resp.revision;
            *ctx.lease.lock().unwrap_or_else(|e| e.into_inner()) = Some(lease.0);
            let in_set = *ctx.in_sync_set.lock().unwrap_or_else(|e| e.into_inner());
            send(
                ctx,
                Event::LocalStatus(quorumlab_fencing::supervisor::eligibility::LocalStatus {
                    lag: lag(ctx),
                    in_sync_set: in_set,
                }),
            );
            Event::CampaignWon { token: Token(resp.revision) }
        }
        Ok(resp) => {
            let holder = resp.results.iter().find_map(|r| match r {
                TxnOpResult::Get { found: Some(kv) } => String::from_utf8_lossy(&kv.value).parse::<u64>().ok(),
                _ => None,
            });
            Event::CampaignLost { holder: holder.map(MemberId) }
        }
        Err(_) => Event::CampaignFailed,
    }
}

/// Renews through the leader; the deadline counts from the send of the answered attempt on this host's clock.
async fn keep_alive(ctx: &Ctx, lease: LeaseId) -> Event {
    let bugs = ctx.world.options.bugs;
    if bugs.serializable_renewal {
        // The planted bug: "renews" by reading the leader key from whichever member the session talks to.
        let sent_at = ctx.clock.now();
        return match ctx.leases.lock().await.get_serializable(LEADER_KEY.as_bytes()).await {
            Ok(read) if read.found.as_ref().is_some_and(|f| f.value == ctx.member.to_string().into_bytes()) => {
                Event::KeepAliveAnswered { sent_at, ttl: ctx.world.options.ttl }
            }
            _ => Event::KeepAliveFailed,
        };
    }
    let sent_local = ctx.clock.now();
    ctx.world.renewal_sent(ctx.member);
    match ctx.leases.lock().await.lease_keep_alive(lease.0).await {
        Ok(answer) => {
            let waited = tokio::time::Instant::now().saturating_duration_since(answer.sent_at);
            let sent_at = sent_local.max(ctx.clock.now().saturating_sub(waited));
            Event::KeepAliveAnswered { sent_at, ttl: answer.ttl }
        }
        Err(LeaseError::NotFound(_)) => Event::LeaseGone,
        Err(LeaseError::NoAnswer(_)) => Event::KeepAliveFailed,
    }
}

impl Watchdog for SimPorts {
    fn arm(&mut self, timeout: Duration) -> RequestId {
        let armed = self.ctx.world.watchdog_arm(self.ctx.member, timeout, sim_now());
        send(&self.ctx, if armed { Event::WatchdogArmed } else { Event::WatchdogArmFailed });
        self.id()
    }

    fn feed(&mut self) {
        self.ctx.world.watchdog_feed(self.ctx.member, sim_now());
    }

    fn disarm(&mut self) {
        self.ctx.world.watchdog_disarm(self.ctx.member);
    }
}

impl PowerSwitch for SimPorts {
    /// Confirmed once the host is off (the driver crashes it between steps); a lying switch confirms and
    /// leaves it on.
    fn power_off(&mut self, member: MemberId) -> RequestId {
        let (world, fencer) = (self.ctx.world.clone(), self.ctx.member);
        self.device(async move {
            if !reach(&world, fencer, member.0).await {
                return never(&world).await;
            }
            if !world.options.bugs.lying_stonith {
                world.push(Command::PowerOff { member: member.0 });
                while !world.is_powered_off(member.0) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            DeviceOutcome::Confirmed
        })
    }

    fn power_on(&mut self, member: MemberId) -> RequestId {
        let world = self.ctx.world.clone();
        self.device(async move {
            world.push(Command::PowerOn { member: member.0 });
            DeviceOutcome::Confirmed
        })
    }

    /// Confirmed when the outlet is off.
    fn status(&mut self, member: MemberId) -> RequestId {
        let world = self.ctx.world.clone();
        self.device(async move {
            if world.is_powered_off(member.0) {
                DeviceOutcome::Confirmed
            } else {
                DeviceOutcome::Failed
            }
        })
    }
}

impl Firewall for SimPorts {
    /// Confirmed once the rule is in force. The planted bugs: a rule set that keeps established connections,
    /// and a firewall that confirms a second before its rule lands.
    fn block(&mut self, member: MemberId) -> RequestId {
        let (world, fencer) = (self.ctx.world.clone(), self.ctx.member);
        self.device(async move {
            if !reach(&world, fencer, member.0).await {
                return never(&world).await;
            }
            let bugs = world.options.bugs;
            let gate = world.gate(member.0);
            if bugs.firewall_confirms_early {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    gate.block(bugs.firewall_keeps_established);
                });
            } else {
                gate.block(bugs.firewall_keeps_established);
            }
            DeviceOutcome::Confirmed
        })
    }

    fn unblock(&mut self, member: MemberId) -> RequestId {
        let world = self.ctx.world.clone();
        self.device(async move {
            world.gate(member.0).unblock();
            DeviceOutcome::Confirmed
        })
    }
}

impl CredentialAuthority for SimPorts {
    /// Installs `token` on every member but the old primary and the fencer, over the database network:
    /// confirmed once every one of them holds it, so no replica is left that would still take the old
    /// primary's synchronous commit. The fencer and the old primary (when reachable) learn it too.
    fn revoke(&mut self, member: MemberId, token: Token) -> RequestId {
        let (world, fencer) = (self.ctx.world.clone(), self.ctx.member);
        self.device(async move {
            if token.0 == 0 {
                return DeviceOutcome::Failed;
            }
            let gate = world.gate(fencer);
            let _ = install_one(&world, fencer, &gate, fencer, token.0).await;
            if world.options.bugs.token_on_too_few {
                // The planted bug: the fencer's own copy counts as "enough".
                return DeviceOutcome::Confirmed;
            }
            let replicas: Vec<u64> = world.members.keys().copied().filter(|&m| m != fencer && m != member.0).collect();
            let mut installed = 0;
            for &r in &replicas {
                if install_one(&world, fencer, &gate, r, token.0).await {
                    installed += 1;
                }
            }
            let _ = install_one(&world, fencer, &gate, member.0, token.0).await;
            if installed == replicas.len() {
                DeviceOutcome::Confirmed
            } else {
                DeviceOutcome::Failed
            }
        })
    }
}

/// The device for `target` answers `fencer`: after a round trip, if its path is up.
async fn reach(world: &World, fencer: u64, target: u64) -> bool {
    tokio::time::sleep(DEVICE_LATENCY).await;
    world.device_reachable(fencer, target)
}

/// An unreachable device: no answer, ever (the fence run's deadline turns it into a timeout). The planted bug
/// `timeout_as_success` is a driver that reports success when it cannot reach its device.
async fn never(world: &World) -> DeviceOutcome {
    if world.options.bugs.timeout_as_success {
        return DeviceOutcome::Confirmed;
    }
    std::future::pending::<()>().await;
    DeviceOutcome::TimedOut
}

async fn install_one(world: &World, fencer: u64, gate: &crate::db::Gate, member: u64, token: u64) -> bool {
    let deadline = Duration::from_millis(300);
    let gate = gate.clone();
    let Ok(channel) = net::channel_through(
        Transport::Sim,
        &world.address(member),
        Deadlines { connect: deadline, request: deadline },
        move |c| gate.wrap(c),
    ) else {
        return false;
    };
    let mut client = pb::database_service_client::DatabaseServiceClient::new(channel);
    let r = client.install_token(pb::DbInstallTokenRequest { token, member: fencer }).await;
    r.is_ok_and(|r| r.into_inner().seen_token >= token)
}
