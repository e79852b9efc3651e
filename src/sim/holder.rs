//! Lease holders: one per client datacenter, each campaigning for one leader key the way a
//! Patroni-like supervisor does on etcd, recorded in the run's history and reported to the
//! lease invariants.
//!
//! A holder's life, in a loop while the run is loaded:
//! 1. grant a lease (the minimum TTL, so expiries happen within a run);
//! 2. campaign: one transaction that puts the key with the lease if its create revision is 0,
//!    else reads who holds it. A win is reported (`Observed::Won`) with the revision, which is the
//!    key's create revision: the holder's fencing token;
//! 3. keep the lease alive every third of its TTL, whether it won or not (a loser campaigns again
//!    each round). Every answered KeepAlive is reported (`Observed::LeaseAnswered`) with the time
//!    its answered attempt was sent: the leader promised the lease until then plus the TTL;
//! 4. a holder whose own clock says its safe deadline (the last answered send, plus the TTL, minus
//!    a margin for clock rate) has passed without a renewal stops holding and starts over; so does
//!    one told the lease is not found.
//!
//! Each holder keeps time by its host's clock (see [`crate::clock`]); its decisions draw no
//! randomness, so the workload does not move elections or the key-value clients' streams.

use std::sync::Arc;
use std::time::Duration;

use super::history::{Recorder, RecordingClient};
use super::observe::Observed;
use super::trace::sim_now;
use super::workload::{Control, HolderEvent, HolderStep, Phase};
use super::Shared;
use crate::client::{Client, ClientConfig, LeaseError};
use crate::net::Transport;
use crate::node::PlantedBug;
use crate::types::LeaseId;

/// The key every holder campaigns for.
pub const LEADER_KEY: &str = "leader";

/// How holders behave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderOptions {
    /// The lease TTL; `None` = the cluster's minimum (1.5 x the maximum election timeout).
    pub ttl: Option<Duration>,
    /// The share of the TTL a holder gives up for its clock running fast or slow, in millionths.
    pub margin_ppm: u64,
}

impl Default for HolderOptions {
    fn default() -> Self {
        HolderOptions { ttl: None, margin_ppm: 10_000 }
    }
}

/// The tag of a holder's processes in the history: not a datacenter name, so the availability
/// check (which judges the key-value clients of each datacenter) does not count lease traffic.
pub fn holder_tag(dc: &str) -> String {
    format!("{dc}/holder")
}

/// One datacenter's holder, on the host `host`, until the run leaves the load phase.
pub async fn hold(
    shared: Shared,
    rec: Recorder,
    control: Arc<Control>,
    dc: String,
    host: String,
    options: HolderOptions,
    op_timeout: Duration,
) -> Result<(), String> {
    while control.phase() == Phase::Setup {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let timing = shared.options.timing;
    let ttl = options.ttl.unwrap_or(Duration::from_millis(timing.election_timeout_ms_max * 3 / 2));
    let margin = ttl * u32::try_from(options.margin_ppm.min(1_000_000)).unwrap_or(0) / 1_000_000;
    let renew_every = ttl / 3;
    let clock = shared.clock(&host);
    let mut session = {
        let mut cfg = ClientConfig::new(shared.endpoints(), Transport::Sim);
        cfg.overall_timeout = op_timeout.min(renew_every);
        cfg.attempt_timeout = cfg.overall_timeout;
        let client = Client::new(cfg).unwrap_or_else(|e| unreachable!("a simulated cluster has endpoints: {e}"));
        rec.tagged_client(client, &holder_tag(&dc))
    };
    let report = |o: Observed| shared.observed.push(o);
    let log = |lease: LeaseId, what: HolderStep| {
        shared.trace.record(format!("holder {dc}: lease {lease} {what:?}"));
        let event = HolderEvent { at: sim_now(), dc: dc.clone(), lease, what };
        control.holder_log.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    };
    let mut round = 0u64;
    while control.phase() == Phase::Load {
        // 1. A lease.
        let asked_at = sim_now();
        let asked_local = clock.now();
        let lease = match session.lease_grant(ttl).await {
            Ok(resp) => resp.lease,
            Err(_) => {
                tokio::time::sleep(renew_every).await;
                continue;
            }
        };
        report(Observed::LeaseAnswered { lease, sent_at: asked_at, ttl });
        log(lease, HolderStep::Granted);
        let mut safe_until = asked_local + ttl - margin;
        let mut holding = false;
        // 2–4. Campaign, renew, campaign again while losing; stop when the lease is gone.
        while control.phase() == Phase::Load {
            if !holding && clock.now() < safe_until {
                round += 1;
                if let Some(revision) = campaign(&mut session, &shared, &dc, lease, round).await {
                    holding = true;
                    log(lease, HolderStep::Won { revision });
                }
            }
            tokio::time::sleep(renew_every).await;
            if control.phase() != Phase::Load {
                break;
            }
            let sent_local = clock.now();
            match session.lease_keep_alive(lease).await {
                Ok(answer) => {
                    let waited = tokio::time::Instant::now().saturating_duration_since(answer.sent_at);
                    report(Observed::LeaseAnswered {
                        lease,
                        sent_at: sim_now().saturating_sub(waited),
                        ttl: answer.ttl,
                    });
                    // The local clock's reading when the answered attempt left, at the latest.
                    safe_until = sent_local.max(clock.now().saturating_sub(waited)) + answer.ttl - margin;
                    log(lease, HolderStep::Renewed);
                }
                Err(LeaseError::NotFound(_)) => {
                    log(lease, HolderStep::LeaseGone);
                    break;
                }
                Err(LeaseError::NoAnswer(_)) if clock.now() >= safe_until => {
                    log(lease, HolderStep::DeadlinePassed);
                    break;
                }
                Err(LeaseError::NoAnswer(_)) => log(lease, HolderStep::RenewalUnanswered),
            }
        }
    }
    Ok(())
}

/// One campaign round; the revision it won the key at, if it did.
async fn campaign(session: &mut RecordingClient, shared: &Shared, dc: &str, lease: LeaseId, round: u64) -> Option<u64> {
    let value = format!("{dc}-{round}");
    let won = if shared.options.planted_bug == Some(PlantedBug::CampaignWithPlainPut) {
        session.put_with_lease(LEADER_KEY, &value, lease).await.ok()
    } else {
        session.campaign(LEADER_KEY, &value, lease).await.ok().filter(|r| r.succeeded)
    };
    let revision = won?.revision;
    shared.observed.push(Observed::Won { key: LEADER_KEY.into(), holder: dc.to_string(), revision, lease });
    Some(revision)
}
