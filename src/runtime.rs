//! The clock and randomness seam.
//!
//! openraft draws its election timeouts from `AsyncRuntime::thread_rng()`; the client library
//! draws client ids and retry backoff. Under turmoil every host runs on one thread, so
//! thread-local RNGs seeded from the simulation seed make the whole cluster's randomness a
//! function of that seed. Each consumer has its own [`Stream`]: one ChaCha8 stream per consumer,
//! all keyed by the seed, so opening one more client session or retrying once more does not move
//! any node's election timeout (and the other way round). Time needs nothing extra: turmoil
//! drives tokio's paused clock, which openraft reads through `tokio::time::Instant`.
//!
//! Outside simulation the RNGs are seeded from the operating system on first use.
//!
//! Simulated tests pick their seeds with [`test_seeds`] (`QUORUMLAB_SEED` replays one) and name
//! the replay command with [`replay_command`].

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use openraft::{AsyncRuntime, OptionalSend, TokioInstant, TokioRuntime};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Who draws from a random stream. Each variant is its own ChaCha8 stream of the same seed; the
/// discriminant is the stream id and, minus one, the index in [`STREAMS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// openraft's election timeouts (drawn once per node start).
    Elections = 1,
    /// Client ids and retry backoff in the client library.
    Clients = 2,
}

const STREAMS: [Stream; 2] = [Stream::Elections, Stream::Clients];

/// The RNG of `stream` for `seed`: the same key for every stream, a different ChaCha stream id.
pub fn stream(seed: u64, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream as u64);
    rng
}

thread_local! {
    static RNGS: RefCell<Option<[ChaCha8Rng; 2]>> = const { RefCell::new(None) };
}

/// The message a simulation stops with when it was built without `--cfg tokio_unstable`.
pub const NEEDS_TOKIO_UNSTABLE: &str = "quorumlab simulations need `--cfg tokio_unstable`: without it tokio seeds \
     its scheduler from process randomness and a seed no longer replays. .cargo/config.toml sets it, but a RUSTFLAGS \
     environment variable replaces that setting: add it there, e.g. RUSTFLAGS=\"$RUSTFLAGS --cfg tokio_unstable\"";

/// Seeds this thread's RNGs. A simulation calls this once, before building any node.
///
/// # Panics
/// When the build lacks `--cfg tokio_unstable`: the run could not be replayed from its seed, and
/// a simulation whose failure cannot be replayed is worse than none. Real mode does not call this.
pub fn seed_thread_rng(seed: u64) {
    if !cfg!(tokio_unstable) {
        panic!("{NEEDS_TOKIO_UNSTABLE}");
    }
    RNGS.with(|r| *r.borrow_mut() = Some(STREAMS.map(|s| stream(seed, s))));
}

/// How many lists tokio's current-thread scheduler spreads its tasks over: task id modulo this.
const TOKIO_TASK_SHARDS: u64 = 4;

/// Moves tokio's process-global task-id counter to the same residue modulo
/// [`TOKIO_TASK_SHARDS`] that a fresh process starts with (the next id is 1 modulo 4). A
/// simulation calls this once, before building any host.
///
/// Why: a current-thread runtime files each task in one of four lists by `task id % 4`, and
/// dropping the runtime (turmoil's crash of a host) drops the tasks list by list. Dropping a
/// host's tasks drops its turmoil TCP streams, and each drop sends a FIN or RST that draws its
/// latency from the simulation's RNG. Task ids come from one counter for the whole process,
/// so without this the order of those sends, and so every random draw after the first crash,
/// depended on how many tasks earlier simulations of the process had spawned: a seed replayed
/// bit for bit only as the first simulation of a process. After this, what the simulation
/// does depends only on its seed, as long as no other thread spawns tokio tasks while it runs
/// (simulations running side by side on several threads still share the counter, which is why
/// the nemesis also crashes hosts silently: see `sim::nemesis::crash_silently`).
pub(crate) fn align_tokio_task_ids() {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a throwaway tokio runtime");
    // At most TOKIO_TASK_SHARDS spawns; the tasks never run and drop with the runtime. Ids
    // start at 1, so after a multiple of 4 the next id is 1 modulo 4, as in a fresh process.
    for _ in 0..TOKIO_TASK_SHARDS {
        let id: u64 = rt.spawn(async {}).id().to_string().parse().expect("tokio task ids are numbers");
        if id.is_multiple_of(TOKIO_TASK_SHARDS) {
            return;
        }
    }
}

/// Runs `f` with this thread's RNG for `which`, seeding every stream from the OS if no
/// simulation seeded them.
#[allow(clippy::disallowed_methods, reason = "outside a simulation, OS entropy is the right seed")]
pub fn with_rng<T>(which: Stream, f: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
    RNGS.with(|r| {
        let mut slot = r.borrow_mut();
        let rngs = slot.get_or_insert_with(|| {
            let seed: u64 = rand::random();
            STREAMS.map(|s| stream(seed, s))
        });
        f(&mut rngs[which as usize - 1])
    })
}

/// The environment variable that makes a simulated test run one seed instead of its defaults.
pub const SEED_ENV: &str = "QUORUMLAB_SEED";

/// The seeds a simulated test runs: the one in `QUORUMLAB_SEED` if set, else `defaults`.
///
/// # Panics
/// When `QUORUMLAB_SEED` is set but is not a number: a typo must not silently run the defaults.
pub fn test_seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var(SEED_ENV) {
        Ok(s) => match s.trim().parse() {
            Ok(seed) => vec![seed],
            Err(e) => panic!("{SEED_ENV}={s:?} is not a seed (a u64): {e}"),
        },
        Err(_) => defaults.to_vec(),
    }
}

/// The command that replays one seed of one test: `QUORUMLAB_SEED=N cargo test --test T name`.
pub fn replay_command(seed: u64, test_target: &str, test_name: &str) -> String {
    format!("{SEED_ENV}={seed} cargo test --test {test_target} {test_name}")
}

/// Runs `f` once per seed of [`test_seeds`]; if a seed panics, says which one and how to replay
/// it, then lets the panic continue. For simulated tests whose checks are `assert!`s and
/// `unwrap()`s spread through the body.
pub fn for_each_test_seed(defaults: &[u64], test_target: &str, test_name: &str, mut f: impl FnMut(u64)) {
    for seed in test_seeds(defaults) {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(seed)));
        if let Err(panic) = run {
            eprintln!("seed {seed} failed; replay: {}", replay_command(seed, test_target, test_name));
            std::panic::resume_unwind(panic);
        }
    }
}

/// A handle to the thread-local seeded RNG of [`Stream::Elections`], the only stream openraft
/// draws from.
#[derive(Debug, Clone, Copy, Default)]
pub struct SeededRng;

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        with_rng(Stream::Elections, |r| r.next_u32())
    }
    fn next_u64(&mut self) -> u64 {
        with_rng(Stream::Elections, |r| r.next_u64())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        with_rng(Stream::Elections, |r| r.fill_bytes(dest))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        with_rng(Stream::Elections, |r| r.try_fill_bytes(dest))
    }
}

/// tokio, with the seeded RNG.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct QuorumRuntime;

impl AsyncRuntime for QuorumRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = SeededRng;
    type OneshotSender<T: OptionalSend> = <TokioRuntime as AsyncRuntime>::OneshotSender<T>;
    type OneshotReceiverError = <TokioRuntime as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> = <TokioRuntime as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        SeededRng
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        TokioRuntime::oneshot()
    }
}

/// The seed of one named stream of a run (a datacenter's client, a host's clock): the run's seed
/// mixed with `domain` and `name` (FNV-1a), so streams are independent of each other and of the
/// order in which they are first used.
pub fn stream_seed(seed: u64, domain: &str, name: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for b in domain.as_bytes().iter().chain(name.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
