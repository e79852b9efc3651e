//! One database host's supervisor agent: the pure [`Supervisor`] of `quorumlab-fencing`, fed the
//! host clock's readings and the outcomes of its ports, with its decisions executed against the
//! world: the Raft KV through the client library (the consensus-store port), the database, the
//! watchdog and the fence devices.
//!
//! The agent is the simulated process Patroni is: pausing it (a SIGSTOP) stops its loop while the
//! database keeps serving; outcomes that arrive meanwhile wait in its queue.
//!
//! Port rules it keeps (the core's caller's duties): every consensus call ends within
//! `retry_timeout` (the client's overall deadline is half of it); a renewal reports the send time
//! of its answered attempt on this host's clock, never the arrival of the answer; the leader key
//! is read linearizably.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quorumlab_fencing::ports::{ConsensusStore, Watchdog};
use quorumlab_fencing::supervisor::eligibility::LocalStatus;
use quorumlab_fencing::{Decision, Event, MemberId, Role, Supervisor, Token};
use tokio::sync::mpsc;

use super::ports::SimPorts;
use super::{devices, World, FAILSAFE_KEY, LEADER_KEY, SYNC_KEY};
use crate::client::{Client, ClientConfig};
use crate::clock::HostClock;
use crate::db::{Db, Serving};
use crate::net::{self, Deadlines, Transport};
use crate::pb;
use crate::sim::trace::sim_now;
use crate::types::{Compare, CompareOp, CompareTarget, Txn, TxnOp};

/// How often the agent's loop looks at its deadlines (finer than `loop_wait`, so deadlines are sharp).
const TICK: Duration = Duration::from_millis(50);

type Session = Arc<tokio::sync::Mutex<Client>>;

/// What the agent's tasks share.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) world: Arc<World>,
    pub(super) member: u64,
    pub(super) db: Db,
    pub(super) clock: HostClock,
    pub(super) tx: mpsc::UnboundedSender<Event>,
    /// Campaigns and reads.
    pub(super) main: Session,
    /// Lease grants, renewals and revokes.
    pub(super) leases: Session,
    /// The log length of every member as last reported (this one's included).
    pub(super) lens: Arc<Mutex<BTreeMap<u64, u64>>>,
    /// Whether the last refresh found this member promotable under the quorum rule.
    pub(super) in_sync_set: Arc<Mutex<bool>>,
    /// The leader key's holder as last read.
    pub(super) last_holder: Arc<Mutex<Option<u64>>>,
    /// The token this member promoted with, while primary.
    pub(super) token: Arc<Mutex<Option<u64>>>,
    /// The token of the last campaign this member won (what its fence installs).
    pub(super) won: Arc<Mutex<u64>>,
    /// The lease the last won campaign attached the key to.
    pub(super) lease: Arc<Mutex<Option<u64>>>,
    /// The sync key's modification revision as the last refresh read it (0: absent). A campaign
    /// succeeds only if it is unchanged, so no replica takes over from a primary that degraded after
    /// the replica judged itself eligible.
    pub(super) sync_seen: Arc<Mutex<u64>>,
    /// Who the sync key said acknowledges alone, as last read.
    pub(super) sync_async_by: Arc<Mutex<Option<u64>>>,
}

/// Runs member `member`'s agent until its host dies.
pub async fn run(world: Arc<World>, member: u64, db: Db) -> Result<(), String> {
    let host = world.host(member).to_string();
    let clock = world.shared.clock(&host);
    let cfg = world.options.supervisor();
    let mut sup = Supervisor::new(cfg.clone(), MemberId(member), clock.now()).map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let session = |timeout: Duration| {
        let mut c = ClientConfig::new(world.shared.endpoints(), Transport::Sim);
        c.overall_timeout = timeout;
        c.attempt_timeout = timeout;
        let client = Client::new(c).unwrap_or_else(|e| unreachable!("a simulated cluster has endpoints: {e}"));
        Arc::new(tokio::sync::Mutex::new(client))
    };
    let ctx = Ctx {
        world: world.clone(),
        member,
        db: db.clone(),
        clock: clock.clone(),
        tx,
        main: session(cfg.retry_timeout / 2),
        leases: session(cfg.retry_timeout / 2),
        lens: Arc::default(),
        in_sync_set: Arc::new(Mutex::new(false)),
        last_holder: Arc::default(),
        token: Arc::default(),
        won: Arc::default(),
        lease: Arc::default(),
        sync_seen: Arc::default(),
        sync_async_by: Arc::default(),
    };
    let mut ports = SimPorts::new(ctx.clone());
    let mut next_status = sim_now();
    let mut last_role = None;
    loop {
        let event = tokio::select! {
            e = rx.recv() => e.unwrap_or(Event::Tick),
            _ = tokio::time::sleep(TICK) => Event::Tick,
        };
        // A paused supervisor does nothing; what arrived meanwhile waits for it, and on waking it reads
        // those answers before it looks at its clock (a stopped process's blocked call returns first).
        let mut batch = vec![event];
        if world.agent_paused(member) {
            world.until_agent_runs(member).await;
            while let Ok(e) = rx.try_recv() {
                batch.push(e);
            }
            // Calls' answers first, then what it learned of its peers, then the clock.
            batch.sort_by_key(|e| match e {
                Event::Tick => 2,
                Event::PeerReport { .. } | Event::LocalStatus(_) | Event::FailsafeMembers(_) => 1,
                _ => 0,
            });
        }
        for event in batch {
            for d in sup.step(clock.now(), event) {
                execute(&ctx, &mut ports, d);
            }
        }
        let role = sup.role();
        world.set_role(member, role);
        if last_role != Some(role) {
            world.shared.trace.record(format!("supervisor {host}: {role:?}"));
            last_role = Some(role);
        }
        if sim_now() >= next_status {
            next_status = sim_now() + cfg.loop_wait;
            tokio::spawn(refresh(ctx.clone(), role));
        }
    }
}

pub(super) fn send(ctx: &Ctx, e: Event) {
    let _ = ctx.tx.send(e);
}

/// Executes one decision through the ports ([`SimPorts`]); outcomes come back as events.
fn execute(ctx: &Ctx, ports: &mut SimPorts, d: Decision) {
    let bugs = ctx.world.options.bugs;
    match d {
        Decision::GrantLease { ttl } => {
            ports.grant_lease(ttl);
        }
        Decision::Campaign { lease } => {
            ports.campaign(lease, MemberId(ctx.member));
        }
        Decision::Renew { lease } => {
            ports.keep_alive(lease);
        }
        Decision::ReleaseKey { lease } => {
            ports.revoke_lease(lease);
        }
        Decision::ArmWatchdog { timeout } => {
            Watchdog::arm(ports, timeout);
        }
        Decision::FeedWatchdog { not_after } => {
            if ctx.clock.now() <= not_after {
                ports.feed();
            }
        }
        Decision::DisarmWatchdog => ports.disarm(),
        Decision::StartFencing { old_primary } => {
            let target =
                old_primary.map(|m| ctx.world.host(m.0).to_string()).unwrap_or_else(|| "every other member".into());
            ctx.world.shared.trace.record(format!("supervisor {}: fencing {target}", ctx.world.host(ctx.member)));
        }
        Decision::FenceTry { target, at, kind, deadline } => {
            let ctx = ctx.clone();
            let mut ports = ports.clone();
            tokio::spawn(async move {
                let budget = deadline.saturating_sub(ctx.clock.now());
                let token = *ctx.won.lock().unwrap_or_else(|e| e.into_inner());
                let outcome = devices::attempt(&mut ports, target.map(|m| m.0), kind, budget, Token(token), at).await;
                send(&ctx, Event::FenceOutcome { at, outcome });
            });
        }
        Decision::Promote { token } => {
            // The member stops following anyone before it serves.
            ctx.db.follow(Some(ctx.member));
            tokio::spawn(promote(ctx.clone(), token.0));
        }
        Decision::StopAcceptingWrites if !bugs.no_self_demotion => ctx.db.stop_accepting(),
        Decision::DropSessions if !bugs.no_self_demotion => ctx.db.drop_sessions(),
        Decision::Demote { reason } => {
            ctx.world.shared.trace.record(format!("supervisor {}: demoted ({reason:?})", ctx.world.host(ctx.member)));
            *ctx.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
            if !bugs.no_self_demotion {
                ctx.db.demote();
            }
            let ctx = ctx.clone();
            tokio::spawn(async move {
                // Rejoining as a replica (pg_rewind and a restart, in PostgreSQL's terms).
                tokio::time::sleep(Duration::from_millis(500)).await;
                send(&ctx, Event::Rejoined);
            });
        }
        Decision::StopAcceptingWrites | Decision::DropSessions => {}
    }
}

/// The last step before the database serves (Patroni's `pre_promote` and its WAL-position check): the fence
/// has confirmed, so the old primary commits no more and every other replica's log is final. A replica
/// that holds more than this member (writes the old primary committed through it alone) is caught up
/// from; one that does not answer, or whose log diverged, may hold an acknowledged write this member
/// lacks: then it does not serve, and gives the key back (its lease is revoked, so the supervisor learns
/// it lost the lease and demotes): unavailable, never unsafe. In asynchronous mode acknowledged writes
/// may be lost by design and the step is skipped.
async fn promote(ctx: Ctx, token: u64) {
    let host = ctx.world.host(ctx.member).to_string();
    if ctx.world.options.synchronous {
        if let Err(why) = catch_up(&ctx).await {
            ctx.world.shared.trace.record(format!("supervisor {host}: will not serve under token {token}: {why}"));
            let lease = *ctx.lease.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(lease) = lease {
                let _ = ctx.leases.lock().await.lease_revoke(lease).await;
            }
            return;
        }
    }
    if ctx.db.promote(token) {
        *ctx.token.lock().unwrap_or_else(|e| e.into_inner()) = Some(token);
    } else {
        ctx.world.shared.trace.record(format!(
            "supervisor {host}: refused to serve under token {token} (a higher one was installed here)"
        ));
    }
}

/// Brings this member up to every other replica (all but the key's last holder) before it serves.
async fn catch_up(ctx: &Ctx) -> Result<(), String> {
    let old = *ctx.last_holder.lock().unwrap_or_else(|e| e.into_inner());
    let others: Vec<u64> = ctx.world.members.keys().copied().filter(|&m| m != ctx.member && Some(m) != old).collect();
    for m in others {
        let name = ctx.world.host(m).to_string();
        let status = peer_status(ctx, m).await.ok_or_else(|| format!("{name} did not answer"))?;
        let mine = ctx.db.len();
        if status.len <= mine {
            continue;
        }
        let mut client = db_client(ctx, m).ok_or_else(|| format!("{name}: no channel"))?;
        let fetched = client
            .fetch(pb::DbFetchRequest { from_pos: mine + 1 })
            .await
            .map_err(|e| format!("{name} did not send its entries: {}", e.message()))?
            .into_inner();
        if !ctx.db.catch_up(&fetched.entries)? {
            return Err(format!("{name}'s log diverged from this member's at position {mine}"));
        }
        ctx.world.shared.trace.record(format!(
            "supervisor {}: caught up {} entries from {name} before serving",
            ctx.world.host(ctx.member),
            fetched.entries.len()
        ));
    }
    Ok(())
}

fn db_client(
    ctx: &Ctx,
    peer: u64,
) -> Option<pb::database_service_client::DatabaseServiceClient<tonic::transport::Channel>> {
    let deadline = Duration::from_millis(300);
    let gate = ctx.db.gate.clone();
    let channel = net::channel_through(
        Transport::Sim,
        &ctx.world.address(peer),
        Deadlines { connect: deadline, request: deadline },
        move |c| gate.wrap(c),
    )
    .ok()?;
    Some(pb::database_service_client::DatabaseServiceClient::new(channel))
}

pub(super) fn lag(ctx: &Ctx) -> u64 {
    let lens = ctx.lens.lock().unwrap_or_else(|e| e.into_inner());
    let mine = ctx.db.len();
    lens.values().copied().max().unwrap_or(mine).saturating_sub(mine)
}

/// Once a loop: who holds the key (a replica follows it), every peer's status, and whether this
/// member may be promoted without losing an acknowledged write.
///
/// The quorum rule (synchronous mode, `ANY 1` commit): an acknowledged write is on the primary and
/// on at least one replica, so a candidate must have heard, in this very refresh, from every other
/// replica (every member but itself and the key's last holder). A replica it cannot hear from may hold
/// a write it lacks: then it is not eligible, and the cluster stays unavailable rather than lose the
/// write. One that is further along is caught up from before it serves ([`promote`]).
async fn refresh(ctx: Ctx, role: Role) {
    let options = &ctx.world.options;
    if role == Role::Primary && options.synchronous && options.degradable {
        // First, before any call that may wait on an unreachable store (the sync key as last read).
        let async_by = *ctx.sync_async_by.lock().unwrap_or_else(|e| e.into_inner());
        manage_sync(&ctx, async_by).await;
    }
    // The leader key and every peer's status at once: a failsafe primary's pings must stay fresh while the
    // store does not answer.
    let peers: Vec<u64> = ctx.world.members.keys().copied().filter(|&m| m != ctx.member).collect();
    let (holder, statuses) = tokio::join!(async { ctx.main.lock().await.get(LEADER_KEY.as_bytes()).await }, async {
        let statuses = futures::future::join_all(peers.iter().map(|&p| peer_status(&ctx, p))).await;
        report_peers(&ctx, &peers, &statuses);
        statuses
    });
    let holder = match &holder {
        Ok(found) => {
            let holder = found.as_ref().and_then(|f| String::from_utf8_lossy(&f.value).parse::<u64>().ok());
            // A replica switches to a new holder when one appears; with no holder it keeps streaming from
            // the one it has (as a PostgreSQL standby does until it is pointed elsewhere).
            let follows =
                matches!(role, Role::Replica | Role::Demoted) && matches!(ctx.db.serving(), Serving::Replica { .. });
            if let (true, Some(h)) = (follows, holder.filter(|&h| h != ctx.member)) {
                ctx.db.follow(Some(h));
            }
            let mut last = ctx.last_holder.lock().unwrap_or_else(|e| e.into_inner());
            if holder.is_some() {
                *last = holder;
            }
            // No holder now: the last one is the member whose writes may be missing here.
            *last
        }
        Err(_) => *ctx.last_holder.lock().unwrap_or_else(|e| e.into_inner()),
    };
    let mine = ctx.db.len();
    let quorum = peers.iter().zip(&statuses).filter(|(p, _)| Some(**p) != holder).all(|(_, s)| s.is_some());
    {
        let mut lens = ctx.lens.lock().unwrap_or_else(|e| e.into_inner());
        lens.insert(ctx.member, mine);
        for (p, s) in peers.iter().zip(&statuses) {
            if let Some(s) = s {
                lens.insert(*p, s.len);
            }
        }
    }
    if ctx.world.options.failsafe {
        failsafe_list(&ctx, role).await;
    }
    let sync = sync_state(&ctx).await;
    let eligible = match sync {
        SyncState::Strict | SyncState::Synchronous => quorum,
        SyncState::Unknown => false,
        // While a primary acknowledges alone, only it has every acknowledged write.
        SyncState::AsyncBy(by) => by == ctx.member,
    };
    *ctx.in_sync_set.lock().unwrap_or_else(|e| e.into_inner()) = eligible;
    send(&ctx, Event::LocalStatus(LocalStatus { lag: lag(&ctx), in_sync_set: eligible }));
}

/// Hands the supervisor what each peer's status call said, as soon as they are in.
fn report_peers(ctx: &Ctx, peers: &[u64], statuses: &[Option<pb::DbStatusResponse>]) {
    let mine = ctx.db.len();
    for (p, s) in peers.iter().zip(statuses) {
        let event = match s {
            Some(s) => Event::PeerReport {
                member: MemberId(*p),
                claims_primary: s.primary,
                reachable: true,
                lag: mine.saturating_sub(s.len),
            },
            None => Event::PeerReport { member: MemberId(*p), claims_primary: false, reachable: false, lag: 0 },
        };
        send(ctx, event);
    }
}

/// Failsafe mode: the primary records the failsafe list (every member) in the store; every member reads it
/// and hands it to its supervisor, which keeps it through a loss of the store.
async fn failsafe_list(ctx: &Ctx, role: Role) {
    let all: Vec<String> = ctx.world.members.keys().map(u64::to_string).collect();
    let all = all.join(",");
    let read = ctx.main.lock().await.get(FAILSAFE_KEY.as_bytes()).await;
    let Ok(found) = read else { return };
    let recorded = found.map(|f| String::from_utf8_lossy(&f.value).to_string());
    if role == Role::Primary && recorded.as_deref() != Some(all.as_str()) {
        let _ = ctx.main.lock().await.put(FAILSAFE_KEY.as_bytes(), all.as_bytes()).await;
    }
    if let Some(list) = recorded {
        let members = list.split(',').filter_map(|m| m.parse().ok()).map(MemberId).collect();
        send(ctx, Event::FailsafeMembers(members));
    }
}

/// What the consensus store says of synchronous replication.
enum SyncState {
    /// Not degradable: the sync key is not used.
    Strict,
    /// The key could not be read.
    Unknown,
    Synchronous,
    /// `async:<member>`: that primary acknowledges without a replica.
    AsyncBy(u64),
}

async fn sync_state(ctx: &Ctx) -> SyncState {
    let options = &ctx.world.options;
    if !(options.synchronous && options.degradable) {
        return SyncState::Strict;
    }
    match ctx.main.lock().await.get(SYNC_KEY.as_bytes()).await {
        Ok(found) => {
            *ctx.sync_seen.lock().unwrap_or_else(|e| e.into_inner()) = found.as_ref().map_or(0, |f| f.mod_revision);
            let by = found.as_ref().and_then(|f| {
                String::from_utf8_lossy(&f.value).strip_prefix("async:").and_then(|m| m.parse::<u64>().ok())
            });
            *ctx.sync_async_by.lock().unwrap_or_else(|e| e.into_inner()) = by;
            by.map_or(SyncState::Synchronous, SyncState::AsyncBy)
        }
        Err(_) => SyncState::Unknown,
    }
}

/// A degradable primary's duty each loop (Patroni's order):
/// - a write has waited a whole `loop_wait` for a replica: degrade to asynchronous replication only after
///   the consensus store took `async:<me>` (a primary cut off from the store cannot, so its writes wait);
/// - degraded and a replica streams again: acknowledge through it first, and record `sync` only once a
///   replica holds every write acknowledged alone (before that, only this member may be promoted).
async fn manage_sync(ctx: &Ctx, async_by: Option<u64>) {
    let Some(token) = *ctx.token.lock().unwrap_or_else(|e| e.into_inner()) else { return };
    let host = ctx.world.host(ctx.member).to_string();
    let trace = |what: &str| ctx.world.shared.trace.record(format!("supervisor {host}: {what}"));
    let loop_wait = ctx.world.options.loop_wait;
    if ctx.db.degraded() {
        if ctx.db.replica_streaming(loop_wait) {
            ctx.db.set_degraded(false);
            trace("a replica streams again: acknowledging through it");
        }
    } else if ctx.db.behind_for().is_some_and(|d| d >= loop_wait) {
        if ctx.world.options.bugs.silent_degrade {
            ctx.db.set_degraded(true);
            trace("no replica: degraded to asynchronous replication on its own");
        } else if record_sync(ctx, token, Some(ctx.member)).await {
            ctx.db.set_degraded(true);
            trace("no replica: degraded to asynchronous replication, recorded in the consensus store");
        } else {
            trace("no replica, and the consensus store did not take the degrade: writes keep waiting");
        }
    } else if async_by == Some(ctx.member) && ctx.db.synchronous_again() && record_sync(ctx, token, None).await {
        trace("a replica holds every write acknowledged alone: synchronous again, recorded in the consensus store");
    }
}

/// Writes the sync key (`async:<me>`, or `sync`) only while this member holds the leader key under `token`.
async fn record_sync(ctx: &Ctx, token: u64, async_by: Option<u64>) -> bool {
    let leader = LEADER_KEY.as_bytes().to_vec();
    let value = async_by.map_or_else(|| "sync".to_string(), |m| format!("async:{m}"));
    let txn = Txn {
        compares: vec![
            Compare {
                key: leader.clone(),
                op: CompareOp::Equal,
                target: CompareTarget::Value(ctx.member.to_string().into_bytes()),
            },
            Compare { key: leader, op: CompareOp::Equal, target: CompareTarget::CreateRevision(token) },
        ],
        success: vec![TxnOp::Put { key: SYNC_KEY.as_bytes().to_vec(), value: value.into_bytes(), lease: 0 }],
        failure: vec![],
    };
    matches!(ctx.main.lock().await.txn(txn).await, Ok(r) if r.succeeded)
}

/// A peer's status through its database's status call (the agent's REST API in Patroni's terms:
/// a paused agent does not answer it).
pub(super) async fn peer_status(ctx: &Ctx, peer: u64) -> Option<pb::DbStatusResponse> {
    let mut client = db_client(ctx, peer)?;
    if ctx.world.agent_paused(peer) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        return None;
    }
    client.status(pb::DbStatusRequest {}).await.ok().map(|r| r.into_inner())
}
