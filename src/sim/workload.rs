//! The client load of a suite run: one client host in every client datacenter issues get, put, compare-and-swap
//! and delete on a small key set with values no other write uses, recorded as one history.
//!
//! Each client draws its operations from its own random stream, derived from the run's seed and its datacenter,
//! so changing the load of one datacenter does not move another's, and none of it touches openraft's elections.
//!
//! Phases, set by the run driver through [`Control`]: clients wait until the cluster is set up, then loop until
//! told to stop; then each makes one fresh write that must succeed (the liveness phase's "a fresh write succeeds
//! from every client datacenter") and reads every key once, so an acknowledged write that was lost shows in the
//! history.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::history::{Recorder, RecordingClient};
use super::holder::{hold, HolderOptions};
use super::trace::sim_now;
use super::Shared;
use crate::client::{Client, ClientConfig};
use crate::net::Transport;
use crate::runtime;
use crate::types::LeaseId;

/// How the clients load the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadOptions {
    /// Keys `k0`… each client works on.
    pub keys: usize,
    /// Pause between one client's operations (one operation is in flight per client at a time).
    pub think: Duration,
    /// A client's deadline for one operation, retries included: after it, a write is "outcome unknown".
    pub op_timeout: Duration,
    /// Lease holders campaigning for a leader key beside the key-value clients (see
    /// [`super::holder`]); `None` runs the key-value load alone.
    pub holders: Option<HolderOptions>,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            keys: 4,
            think: Duration::from_millis(40),
            op_timeout: Duration::from_millis(1_500),
            holders: Some(HolderOptions::default()),
        }
    }
}

/// Where the run is; the driver moves it forward, clients follow.
#[derive(Default)]
pub struct Control {
    phase: AtomicU8,
    /// Per client datacenter: when (simulated) its fresh write in the liveness phase was acknowledged.
    pub fresh_writes: Mutex<BTreeMap<String, Result<Duration, String>>>,
    /// Set by the setup client: why the cluster could not be set up.
    pub setup_error: Mutex<Option<String>>,
    /// What each lease holder did and when (simulated time), in order.
    pub holder_log: Mutex<Vec<HolderEvent>>,
}

/// One step of a lease holder's life, for tests and the trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderEvent {
    pub at: Duration,
    pub dc: String,
    pub lease: LeaseId,
    pub what: HolderStep,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HolderStep {
    Granted,
    /// Won the leader key at this revision (its create revision: the fencing token).
    Won {
        revision: u64,
    },
    /// A KeepAlive was answered.
    Renewed,
    /// A KeepAlive got no answer; the safe deadline had not passed yet.
    RenewalUnanswered,
    /// The holder's own clock passed its safe deadline without a renewal: it stops holding.
    DeadlinePassed,
    /// The cluster answered that the lease is gone (revoked or expired).
    LeaseGone,
}

/// The phases of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    Setup = 0,
    Load = 1,
    Liveness = 2,
    /// The run ended early (real mode: the cluster never came up, or the driver gave up): clients stop at once,
    /// skipping the liveness phase. The simulator never sets it.
    Abandoned = 3,
}

impl Control {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Setup,
            1 => Phase::Load,
            2 => Phase::Liveness,
            _ => Phase::Abandoned,
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }
}

/// One client datacenter's client host: the key-value client and, if asked, a lease holder.
/// `setup` is true for the one that initializes the cluster.
pub async fn client(
    shared: Shared,
    rec: Recorder,
    control: Arc<Control>,
    dc: String,
    options: WorkloadOptions,
    setup: bool,
) -> Result<(), String> {
    let Some(holder_options) = options.holders.clone() else {
        return kv_client(shared, rec, control, dc, options, setup).await;
    };
    let host = super::layout::client_host(&dc);
    let holder =
        hold(shared.clone(), rec.clone(), control.clone(), dc.clone(), host, holder_options, options.op_timeout);
    let (kv, held) = tokio::join!(kv_client(shared, rec, control, dc, options, setup), holder);
    kv.and(held)
}

/// Where a client's load goes: the cluster's endpoints on one transport, and the run's seed and timing.
#[derive(Clone, Debug)]
pub struct LoadEnv {
    pub seed: u64,
    pub endpoints: Vec<String>,
    pub transport: Transport,
    pub election_timeout_ms_max: u64,
}

impl LoadEnv {
    fn of(shared: &Shared) -> LoadEnv {
        LoadEnv {
            seed: shared.options.seed,
            endpoints: shared.endpoints(),
            transport: Transport::Sim,
            election_timeout_ms_max: shared.options.timing.election_timeout_ms_max,
        }
    }
}

/// The key-value client of one simulated client datacenter.
async fn kv_client(
    shared: Shared,
    rec: Recorder,
    control: Arc<Control>,
    dc: String,
    options: WorkloadOptions,
    setup: bool,
) -> Result<(), String> {
    if setup {
        if let Err(e) = set_up(&shared).await {
            *control.setup_error.lock().map_err(|e| e.to_string())? = Some(e.clone());
            return Err(e);
        }
        control.set_phase(Phase::Load);
    }
    kv_load(LoadEnv::of(&shared), rec, control, dc, options).await
}

/// One client datacenter's key-value load, in simulation or on real processes: it waits for the set-up, loops
/// until the driver ends the load phase, then makes the liveness phase's fresh write and reads every key.
pub async fn kv_load(
    env: LoadEnv,
    rec: Recorder,
    control: Arc<Control>,
    dc: String,
    options: WorkloadOptions,
) -> Result<(), String> {
    while control.phase() == Phase::Setup {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(runtime::stream_seed(env.seed, "workload/", &dc));
    let mut session = new_session(&env, &rec, &options, &dc);
    let keys: Vec<String> = (0..options.keys).map(|k| format!("k{k}")).collect();
    let mut last_seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut counter = 0u64;
    while control.phase() == Phase::Load {
        let key = &keys[rng.gen_range(0..keys.len())];
        counter += 1;
        let value = format!("{dc}-{counter}");
        match rng.gen_range(0..100) {
            0..40 => {
                if let Ok(found) = session.get(key).await {
                    let v = found.map(|f| String::from_utf8_lossy(&f.value).into_owned());
                    last_seen.insert(key.clone(), v);
                }
            }
            40..75 => {
                if session.put(key, &value).await.is_ok() {
                    last_seen.insert(key.clone(), Some(value));
                }
            }
            75..90 => {
                let expected = last_seen.get(key).cloned().flatten();
                if let Ok(r) = session.cas(key, expected.as_deref(), &value).await {
                    if r.succeeded {
                        last_seen.insert(key.clone(), Some(value));
                    }
                }
            }
            _ => {
                if session.delete(key).await.is_ok() {
                    last_seen.insert(key.clone(), None);
                }
            }
        }
        tokio::time::sleep(options.think).await;
    }
    if control.phase() == Phase::Abandoned {
        return Ok(());
    }
    // Liveness: one fresh write must succeed, then every key is read once.
    let fresh = fresh_write(&env, &rec, &dc).await;
    control.fresh_writes.lock().map_err(|e| e.to_string())?.insert(dc.clone(), fresh);
    let mut reader = new_session(&env, &rec, &options, &dc);
    for key in &keys {
        let _ = reader.get(key).await;
    }
    Ok(())
}

/// A recording session with the workload's deadlines.
fn new_session(env: &LoadEnv, rec: &Recorder, options: &WorkloadOptions, dc: &str) -> RecordingClient {
    let mut cfg = ClientConfig::new(env.endpoints.clone(), env.transport);
    cfg.overall_timeout = options.op_timeout;
    cfg.attempt_timeout = options.op_timeout.min(cfg.attempt_timeout);
    let client = Client::new(cfg).unwrap_or_else(|e| unreachable!("a cluster always has endpoints: {e}"));
    rec.tagged_client(client, dc)
}

/// Initializes the cluster, waits for a leader and adds the learners.
async fn set_up(shared: &Shared) -> Result<(), String> {
    let voters = shared.options.voters();
    let timing = shared.options.timing;
    let timeout = Duration::from_millis(10 * timing.election_timeout_ms_max);
    shared.initialize(voters[0]).await?;
    shared.wait_for_leader_among(&voters, timeout).await.ok_or("no leader elected after initialization")?;
    shared.add_learners(timeout).await
}

/// The liveness phase's write: retried for up to 30 election timeouts.
async fn fresh_write(env: &LoadEnv, rec: &Recorder, dc: &str) -> Result<Duration, String> {
    let deadline = Duration::from_millis(30 * env.election_timeout_ms_max);
    let options = WorkloadOptions { op_timeout: deadline, holders: None, ..WorkloadOptions::default() };
    let mut session = new_session(env, rec, &options, dc);
    match session.put(&format!("fresh-{dc}"), &format!("{dc}-fresh")).await {
        Ok(_) => Ok(sim_now()),
        Err(e) => Err(e.to_string()),
    }
}
