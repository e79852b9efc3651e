//! One attempt of a fence device, as the supervisor's fence run asks for it: the device kind becomes
//! calls to the ports ([`SimPorts`]), one per member to fence, and the attempt confirms only if every one of
//! them does, within the attempt's budget (the core's deadline on the fencer's clock). A timeout is never
//! success: a device that cannot be reached does not answer, and the budget runs out.

use std::time::Duration;

use quorumlab_fencing::levels::Attempt;
use quorumlab_fencing::ports::{CredentialAuthority, Firewall, PowerSwitch};
use quorumlab_fencing::{DeviceKind, DeviceOutcome, MemberId, Token};

use super::ports::SimPorts;

/// One attempt of device `kind` against `target` (`None`: no known old primary), within `budget`; the new
/// primary's `token` is what a credentials fence installs.
pub async fn attempt(
    ports: &mut SimPorts,
    target: Option<u64>,
    kind: DeviceKind,
    budget: Duration,
    token: Token,
    at: Attempt,
) -> DeviceOutcome {
    let world = ports.world().clone();
    let fencer = ports.member();
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
    if kind == DeviceKind::WatchdogWait {
        // SBD-style: wait out the old primary's watchdog, which has fired by then if it is alive and unfed.
        let wait = world.options.supervisor().watchdog_timeout();
        return if wait < budget {
            tokio::time::sleep(wait).await;
            DeviceOutcome::Confirmed
        } else {
            DeviceOutcome::TimedOut
        };
    }
    let ids: Vec<_> = targets
        .iter()
        .map(|&t| match kind {
            DeviceKind::Stonith => ports.power_off(MemberId(t)),
            DeviceKind::Firewall => ports.block(MemberId(t)),
            _ => ports.revoke(MemberId(t), token),
        })
        .collect();
    let all = async {
        for id in ids {
            let outcome = ports.outcome(id).await;
            if outcome != DeviceOutcome::Confirmed {
                return outcome;
            }
        }
        DeviceOutcome::Confirmed
    };
    let outcome = tokio::time::timeout(budget, all).await.unwrap_or(DeviceOutcome::TimedOut);
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
