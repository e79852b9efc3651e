//! The fence devices, as the simulator plays them: a power switch, a host firewall and a
//! credential authority that installs fencing tokens on the replicas.
//!
//! Every attempt ends by its budget (the core's deadline on the fencer's clock): a device that
//! cannot be reached — in band, across a cut — times out, and a timeout is never success (unless
//! the planted bug `timeout_as_success` says so). A device is confirmed only when its effect holds:
//! the host is off, the rule is in force, or the token is on every replica the old primary could
//! commit through.

use std::sync::Arc;
use std::time::Duration;

use quorumlab_fencing::levels::Attempt;
use quorumlab_fencing::{DeviceKind, DeviceOutcome};

use super::{Command, World};
use crate::net::{self, Deadlines, Transport};
use crate::pb;

/// A management network's round trip.
const DEVICE_LATENCY: Duration = Duration::from_millis(20);

/// One attempt of device `kind` by member `fencer` (holding `token`) against `target` (`None`:
/// every other member), within `budget`.
pub async fn attempt(
    world: &Arc<World>,
    fencer: u64,
    target: Option<u64>,
    kind: DeviceKind,
    budget: Duration,
    token: u64,
    at: Attempt,
) -> DeviceOutcome {
    let outcome = match tokio::time::timeout(budget, act(world, fencer, target, kind, token)).await {
        Ok(outcome) => outcome,
        Err(_) => DeviceOutcome::TimedOut,
    };
    let who = target.map(|t| world.host(t).to_string()).unwrap_or_else(|| "every other member".into());
    world.shared.trace.record(format!(
        "fence: {} {kind:?} on {who} (run {} level {} device {} attempt {}): {outcome:?}",
        world.host(fencer),
        at.run,
        at.level,
        at.device,
        at.attempt
    ));
    outcome
}

async fn act(world: &Arc<World>, fencer: u64, target: Option<u64>, kind: DeviceKind, token: u64) -> DeviceOutcome {
    // No known old primary: the devices check each outlet or port first and fence only members that
    // cannot be shown to be harmless (unreachable, or serving as primary), as Pacemaker fences nodes in an
    // unknown state. At the first election every member answers as a replica and nothing is fenced.
    let targets: Vec<u64> = match target {
        Some(t) => vec![t],
        None => world
            .members
            .keys()
            .copied()
            .filter(|&m| m != fencer)
            .filter(|&m| {
                !world.reachable(world.host(fencer), world.host(m)) || world.db(m).is_none_or(|db| db.is_primary())
            })
            .collect(),
    };
    let bugs = world.options.bugs;
    match kind {
        DeviceKind::Stonith => {
            for &t in &targets {
                if !reach(world, fencer, t).await {
                    return never(world).await;
                }
                if !bugs.lying_stonith {
                    world.push(Command::PowerOff { member: t });
                    while !world.is_powered_off(t) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            DeviceOutcome::Confirmed
        }
        DeviceKind::Firewall => {
            for &t in &targets {
                if !reach(world, fencer, t).await {
                    return never(world).await;
                }
                let gate = world.gate(t);
                if bugs.firewall_confirms_early {
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        gate.block(bugs.firewall_keeps_established);
                    });
                } else {
                    gate.block(bugs.firewall_keeps_established);
                }
            }
            DeviceOutcome::Confirmed
        }
        DeviceKind::Credentials | DeviceKind::FencingToken => {
            // With no known old primary, every other member must take the token.
            let old: Vec<u64> = target.into_iter().collect();
            install_token(world, fencer, &old, token).await
        }
        DeviceKind::WatchdogWait => {
            // SBD-style: wait out the old primary's watchdog, which fires by then if it is alive and unfed.
            tokio::time::sleep(world.options.supervisor().watchdog_timeout() + DEVICE_LATENCY).await;
            DeviceOutcome::Confirmed
        }
    }
}

/// The device for `target` answers `fencer`: after a round trip, if its path is up.
async fn reach(world: &Arc<World>, fencer: u64, target: u64) -> bool {
    tokio::time::sleep(DEVICE_LATENCY).await;
    world.device_reachable(fencer, target)
}

/// An unreachable device: no answer, ever (the caller's budget turns it into a timeout). The planted bug
/// `timeout_as_success` is a driver that reports success when it cannot reach its device.
async fn never(world: &World) -> DeviceOutcome {
    if world.options.bugs.timeout_as_success {
        return DeviceOutcome::Confirmed;
    }
    std::future::pending::<()>().await;
    DeviceOutcome::TimedOut
}

/// Installs `token` on every member but the old primaries (`targets`) and the fencer itself, over the
/// database network: confirmed once every one of them holds it, so no replica is left that would
/// still take the old primary's synchronous commit. The fencer installs it on itself too.
async fn install_token(world: &Arc<World>, fencer: u64, targets: &[u64], token: u64) -> DeviceOutcome {
    if token == 0 {
        return DeviceOutcome::Failed;
    }
    if let Some(db) = world.db(fencer) {
        let _ = install_one(world, fencer, &db.gate, fencer, token).await;
    }
    if world.options.bugs.token_on_too_few {
        // The planted bug: the fencer's own copy counts as "enough".
        return DeviceOutcome::Confirmed;
    }
    let replicas: Vec<u64> = world.members.keys().copied().filter(|m| *m != fencer && !targets.contains(m)).collect();
    let gate = world.gate(fencer);
    let mut installed = 0;
    for &r in &replicas {
        if install_one(world, fencer, &gate, r, token).await {
            installed += 1;
        }
    }
    // The old primary itself learns the token too when it can be reached (it then refuses its own writes).
    for &t in targets {
        let _ = install_one(world, fencer, &gate, t, token).await;
    }
    if installed == replicas.len() {
        DeviceOutcome::Confirmed
    } else {
        DeviceOutcome::Failed
    }
}

async fn install_one(world: &Arc<World>, fencer: u64, gate: &crate::db::Gate, member: u64, token: u64) -> bool {
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
