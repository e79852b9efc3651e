//! The clock seam for code above the KV: lease holders and, next, the failover supervisor keep
//! time by their host's clock, which in a real datacenter is neither exact nor shared.
//!
//! [`HostClock::System`] is the machine's monotonic clock (real mode). [`HostClock::Sim`] is a
//! simulated host's clock: tokio's simulated time read through an offset and a rate, both drawn
//! from the run's seed per host and changeable by a schedule (a clock that starts running slow
//! is a fault), so "the holder's clock ran slow" can be replayed bit for bit. Rates are integers
//! (parts per million) so every platform computes the same readings.
//!
//! Raft's own timers stay on tokio's clock: this seam is only for code that reasons about
//! leases from outside the cluster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One part per million of a clock's rate.
pub const PPM: i64 = 1_000_000;

/// A host's clock. Cheap to clone; clones of a simulated clock share its rate.
#[derive(Clone, Debug)]
pub enum HostClock {
    System { origin: std::time::Instant },
    Sim(Arc<Mutex<Piecewise>>),
}

/// A simulated clock: linear in simulated time, with a rate that can change (continuously: the
/// reading never jumps when the rate does).
#[derive(Clone, Debug)]
pub struct Piecewise {
    /// Simulated time at which the current rate took effect.
    since: Duration,
    /// The clock's reading at `since`.
    reading: Duration,
    /// Clock seconds per true second, in millionths (`PPM` = exact; below runs slow).
    rate_ppm: i64,
}

impl HostClock {
    #[allow(clippy::disallowed_methods, reason = "the real-mode clock is the system's")]
    pub fn system() -> Self {
        HostClock::System { origin: std::time::Instant::now() }
    }

    /// A simulated clock reading `offset` at simulated time 0 and running at `rate_ppm`
    /// millionths of true time.
    pub fn sim(offset: Duration, rate_ppm: i64) -> Self {
        let piecewise = Piecewise { since: Duration::ZERO, reading: offset, rate_ppm: rate_ppm.max(0) };
        HostClock::Sim(Arc::new(Mutex::new(piecewise)))
    }

    /// The clock's reading: time since its origin, as this host sees it.
    pub fn now(&self) -> Duration {
        match self {
            #[allow(clippy::disallowed_methods, reason = "the real-mode clock is the system's")]
            HostClock::System { origin } => origin.elapsed(),
            HostClock::Sim(p) => {
                p.lock().unwrap_or_else(|e| e.into_inner()).at(turmoil::sim_elapsed().unwrap_or_default())
            }
        }
    }

    /// From simulated time `now` on, the clock runs at `rate_ppm` millionths of true time
    /// (simulated clocks only; `now` is passed in because a schedule changes rates from outside
    /// any host).
    pub fn set_rate(&self, now: Duration, rate_ppm: i64) {
        if let HostClock::Sim(p) = self {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            p.reading = p.at(now);
            p.since = now;
            p.rate_ppm = rate_ppm.max(0);
        }
    }

    /// The clock's current rate in millionths of true time.
    pub fn rate_ppm(&self) -> i64 {
        match self {
            HostClock::System { .. } => PPM,
            HostClock::Sim(p) => p.lock().unwrap_or_else(|e| e.into_inner()).rate_ppm,
        }
    }
}

impl Piecewise {
    fn at(&self, now: Duration) -> Duration {
        let elapsed = now.saturating_sub(self.since).as_nanos();
        let scaled = elapsed * self.rate_ppm as u128 / PPM as u128;
        self.reading + Duration::from_nanos(u64::try_from(scaled).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(clock: &HostClock, at: Duration) -> Duration {
        match clock {
            HostClock::Sim(p) => p.lock().expect("clock").at(at),
            HostClock::System { .. } => unreachable!("a simulated clock"),
        }
    }

    #[test]
    fn a_slow_clock_reads_less_and_never_jumps_when_its_rate_changes() {
        let clock = HostClock::sim(Duration::from_millis(500), PPM / 2);
        assert_eq!(reading(&clock, Duration::from_secs(2)), Duration::from_millis(1500), "half speed from 0.5 s");
        clock.set_rate(Duration::from_secs(2), PPM);
        assert_eq!(reading(&clock, Duration::from_secs(2)), Duration::from_millis(1500), "no jump at the change");
        assert_eq!(reading(&clock, Duration::from_secs(3)), Duration::from_millis(2500), "then at full speed");
        assert_eq!(clock.rate_ppm(), PPM);
    }
}
