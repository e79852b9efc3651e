//! The simulation trace: every Raft metrics change and every client operation, stamped with
//! simulated time. Two runs of one seed must produce the identical trace, byte for byte.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An append-only, shareable list of trace lines.
#[derive(Clone, Default)]
pub struct Trace {
    lines: Arc<Mutex<Vec<String>>>,
}

/// Simulated time since the start of the simulation (zero outside one).
pub fn sim_now() -> Duration {
    turmoil::sim_elapsed().or_else(real_elapsed).unwrap_or_default()
}

/// Real mode's origin: outside a simulation, [`sim_now`] counts wall time from it, so a real run's history,
/// trace and fault windows share one time line (see [`crate::real`]). `None` outside a real run.
static REAL_EPOCH: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

/// Starts (or, with `None`, ends) real mode's time line.
pub fn set_real_epoch(epoch: Option<std::time::Instant>) {
    *REAL_EPOCH.lock().unwrap_or_else(|p| p.into_inner()) = epoch;
}

fn real_elapsed() -> Option<Duration> {
    REAL_EPOCH.lock().unwrap_or_else(|p| p.into_inner()).map(|e| e.elapsed())
}

/// Formats a simulated instant as `seconds.millis`.
pub fn stamp(d: Duration) -> String {
    format!("{:>4}.{:03}", d.as_secs(), d.subsec_millis())
}

impl Trace {
    /// Appends `line`, stamped with the current simulated time.
    pub fn record(&self, line: impl AsRef<str>) {
        let line = format!("{} {}", stamp(sim_now()), line.as_ref());
        tracing::debug!(target: "quorumlab::trace", "{line}");
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }

    /// Appends `line` stamped with `at`: for the simulation driver, which runs outside every host, where
    /// [`sim_now`] does not know the time.
    pub fn record_at(&self, at: Duration, line: impl AsRef<str>) {
        let line = format!("{} {}", stamp(at), line.as_ref());
        tracing::debug!(target: "quorumlab::trace", "{line}");
        if let Ok(mut l) = self.lines.lock() {
            l.push(line);
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// A digest of the whole trace, for comparing runs cheaply (FNV-1a, stable across platforms).
    pub fn digest(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for line in self.lines() {
            for b in line.bytes().chain(std::iter::once(b'\n')) {
                h ^= b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    }
}

/// tracing timestamps: simulated time inside a simulation, wall-clock time outside.
pub struct SimOrWallTime;

impl tracing_subscriber::fmt::time::FormatTime for SimOrWallTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        match turmoil::sim_elapsed() {
            Some(d) => write!(w, "sim+{}", stamp(d).trim_start()),
            None => tracing_subscriber::fmt::time::SystemTime.format_time(w),
        }
    }
}

fn filter() -> tracing_subscriber::EnvFilter {
    filter_or("warn,openraft=error")
}

/// `RUST_LOG` if set, otherwise `default`.
fn filter_or(default: &str) -> tracing_subscriber::EnvFilter {
    // Without RUST_LOG, openraft logs only errors: at `warn` it reports benign races of every
    // election (a vote reply that arrives after the vote moved on), which would bury real news.
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
}

/// For tests: a `RUST_LOG`-controlled subscriber that stamps simulated time and writes through
/// the test harness, so output is captured per test (idempotent).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt().with_env_filter(filter()).with_timer(SimOrWallTime).with_test_writer().try_init();
}

/// For the command line: the same, on standard error, so logs never mix with a command's output.
pub fn init_cli_tracing() {
    init_cli_tracing_or(filter());
}

/// For `quorumlab suite`: without `RUST_LOG`, only quorumlab's own errors. The suite cuts links on purpose, and
/// openraft reports every RPC a cut link drops as an error; the run records say what happened instead.
pub fn init_suite_tracing() {
    init_cli_tracing_or(filter_or("error,openraft=off"));
}

fn init_cli_tracing_or(filter: tracing_subscriber::EnvFilter) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(SimOrWallTime)
        .with_writer(std::io::stderr)
        .try_init();
}
