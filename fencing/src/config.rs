//! The supervisor's configuration and the rules that make a configuration possible.
//!
//! Patroni's timing: every `loop_wait` the supervisor renews its lease (and feeds its watchdog);
//! a consensus call may be retried for `retry_timeout`; the leader key lives `ttl` after the last
//! renewal. Patroni requires `loop_wait + 2 × retry_timeout ≤ ttl` so that a primary whose
//! renewal fails for a whole `retry_timeout` after a loop's sleep still has a `retry_timeout` left
//! to demote before its key expires — and when the rule is broken it quietly lowers `loop_wait`
//! and `retry_timeout`. Here [`SupervisorConfig::validate`] refuses and says which rule and which
//! numbers: a testbed that silently runs a different configuration than the one written would
//! report results about a configuration nobody chose.

use std::time::Duration;

use crate::levels::{FencePlan, PlanError};

/// One part per million.
pub const PPM: u64 = 1_000_000;

/// Whether the supervisor arms a watchdog before it promotes (Patroni's `watchdog.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchdogMode {
    /// Never armed.
    Off,
    /// Armed when the host has one; a host that cannot arm it may still lead.
    Automatic,
    /// A host that cannot arm it refuses leadership.
    Required,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupervisorConfig {
    /// Lease TTL of the leader key: how long after the last renewal's send the key may live.
    pub ttl: Duration,
    /// How long the supervisor sleeps between loops (renewal, campaign, reports).
    pub loop_wait: Duration,
    /// How long consensus trouble may last before a primary demotes.
    pub retry_timeout: Duration,
    /// How much of the TTL the watchdog keeps in hand: it fires `ttl - safety_margin` after its
    /// last feed, so the host resets before the key can expire.
    pub safety_margin: Duration,
    /// How much faster than the KV leader's clock this host's clock may run, in parts per
    /// million; the safe deadline gives up `ttl × clock_margin_ppm / 10⁶` for it.
    pub clock_margin_ppm: u64,
    /// A replica further behind than this (in log positions) may not be promoted.
    pub maximum_lag_on_failover: u64,
    pub watchdog: WatchdogMode,
    /// Only a member of the synchronous set may be promoted.
    pub synchronous_mode: bool,
    /// During total consensus loss, a primary keeps serving while every failsafe member answers it.
    pub failsafe_mode: bool,
    /// The fence that must confirm before a new primary is promoted.
    pub fence: FencePlan,
    /// Bugs planted on purpose, for the negative controls that prove the checks can fail. All off in
    /// any configuration meant to be safe.
    pub planted: Planted,
}

/// The supervisor's own planted bugs (the simulator plants the rest in its ports and devices).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Planted {
    /// Count the lease's safe deadline from the moment the renewal's answer is read, not from the
    /// renewal's send: a process stopped while its renewal was in flight then outlives the lease the
    /// store keeps by as long as it was stopped.
    pub deadline_from_reply: bool,
    /// In failsafe mode, count a failsafe member whose status call failed as having answered (a ping
    /// timeout treated as an answer): a primary cut off from everyone keeps serving.
    pub failsafe_counts_timeouts: bool,
}

/// Which rule a configuration breaks, with its numbers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{field} is zero: the supervisor needs a positive {field}")]
    Zero { field: &'static str },
    #[error(
        "loop_wait + 2 × retry_timeout ≤ ttl is broken: {loop_wait:?} + 2 × {retry_timeout:?} = {sum:?} > ttl {ttl:?}; \
         a primary whose renewal fails for a whole retry_timeout after a loop's sleep would have no time left to \
         demote before its key expires (Patroni would lower loop_wait and retry_timeout; quorumlab refuses: \
         raise ttl or lower them yourself)"
    )]
    LoopAndRetriesExceedTtl { loop_wait: Duration, retry_timeout: Duration, sum: Duration, ttl: Duration },
    #[error("clock_margin_ppm {ppm} is not below 1000000: the margin would eat the whole TTL")]
    ClockMarginTooLarge { ppm: u64 },
    #[error(
        "the safe window ttl − clock margin = {ttl:?} − {margin:?} = {window:?} is not longer than \
         loop_wait + retry_timeout = {needed:?}: consensus trouble shorter than retry_timeout could outlast the \
         lease and demote the primary; lower clock_margin_ppm or raise ttl"
    )]
    ClockMarginLeavesNoRetryWindow { ttl: Duration, margin: Duration, window: Duration, needed: Duration },
    #[error(
        "watchdog timeout ttl − safety_margin = {ttl:?} − {safety_margin:?} is not positive: the watchdog would \
         fire at once (lower safety_margin, or turn the watchdog off)"
    )]
    WatchdogTimeoutNotPositive { ttl: Duration, safety_margin: Duration },
    #[error(
        "watchdog timeout ttl − safety_margin = {timeout:?} is not longer than loop_wait {loop_wait:?}: the \
         watchdog is fed once a loop, so it would reset a healthy host (raise ttl or lower safety_margin)"
    )]
    WatchdogFiresBetweenFeeds { timeout: Duration, loop_wait: Duration },
    #[error(
        "safety_margin {safety_margin:?} is not larger than the clock margin {clock_margin:?}: a watchdog fed \
         right after a renewal's send could fire after the key's safe deadline (raise safety_margin)"
    )]
    SafetyMarginBelowClockMargin { safety_margin: Duration, clock_margin: Duration },
    #[error(
        "failsafe mode needs ttl > loop_wait + failsafe freshness = 2.5 × loop_wait = {needed:?}, ttl is {ttl:?}: a \
         replica waits one ttl after it last reached a primary, and the primary serves until its last failsafe answer \
         is 1.5 × loop_wait old, at most a loop after the replica reached it"
    )]
    FailsafeOutlivesTtl { ttl: Duration, needed: Duration },
    #[error("fence plan: {0}")]
    Fence(#[from] PlanError),
}

impl SupervisorConfig {
    /// Patroni's defaults (ttl 30 s, loop_wait 10 s, retry_timeout 10 s, safety_margin 5 s,
    /// maximum_lag_on_failover 1 MiB), a 1 % clock margin, no watchdog, no fence: the strategy
    /// `none`.
    pub fn patroni_defaults() -> Self {
        SupervisorConfig {
            ttl: Duration::from_secs(30),
            loop_wait: Duration::from_secs(10),
            retry_timeout: Duration::from_secs(10),
            safety_margin: Duration::from_secs(5),
            clock_margin_ppm: 10_000,
            maximum_lag_on_failover: 1 << 20,
            watchdog: WatchdogMode::Off,
            synchronous_mode: false,
            failsafe_mode: false,
            fence: FencePlan::none(),
            planted: Planted::default(),
        }
    }

    /// How old a failsafe member's last answer may be: one loop's ping, with half a loop of slack for
    /// the ping's own round trip (answers come once a loop, never exactly `loop_wait` apart).
    pub fn failsafe_freshness(&self) -> Duration {
        self.loop_wait + self.loop_wait / 2
    }

    /// What the host's clock may run ahead of the KV leader's over one TTL.
    pub fn clock_margin(&self) -> Duration {
        clock_margin(self.ttl, self.clock_margin_ppm)
    }

    /// The watchdog's timeout: `ttl − safety_margin`.
    pub fn watchdog_timeout(&self) -> Duration {
        self.ttl.saturating_sub(self.safety_margin)
    }

    /// Refuses impossible configurations, naming the rule and the numbers. Never adjusts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [("ttl", self.ttl), ("loop_wait", self.loop_wait), ("retry_timeout", self.retry_timeout)]
        {
            if value.is_zero() {
                return Err(ConfigError::Zero { field });
            }
        }
        let sum = self.loop_wait.saturating_add(self.retry_timeout.saturating_mul(2));
        if sum > self.ttl {
            return Err(ConfigError::LoopAndRetriesExceedTtl {
                loop_wait: self.loop_wait,
                retry_timeout: self.retry_timeout,
                sum,
                ttl: self.ttl,
            });
        }
        if self.clock_margin_ppm >= PPM {
            return Err(ConfigError::ClockMarginTooLarge { ppm: self.clock_margin_ppm });
        }
        let margin = self.clock_margin();
        let window = self.ttl - margin;
        let needed = self.loop_wait + self.retry_timeout;
        if window <= needed {
            return Err(ConfigError::ClockMarginLeavesNoRetryWindow { ttl: self.ttl, margin, window, needed });
        }
        if self.failsafe_mode {
            let needed = self.loop_wait.saturating_add(self.failsafe_freshness());
            if self.ttl <= needed {
                return Err(ConfigError::FailsafeOutlivesTtl { ttl: self.ttl, needed });
            }
        }
        if self.watchdog != WatchdogMode::Off {
            if self.safety_margin >= self.ttl {
                return Err(ConfigError::WatchdogTimeoutNotPositive {
                    ttl: self.ttl,
                    safety_margin: self.safety_margin,
                });
            }
            let timeout = self.watchdog_timeout();
            if timeout <= self.loop_wait {
                return Err(ConfigError::WatchdogFiresBetweenFeeds { timeout, loop_wait: self.loop_wait });
            }
            if self.safety_margin <= margin {
                return Err(ConfigError::SafetyMarginBelowClockMargin {
                    safety_margin: self.safety_margin,
                    clock_margin: margin,
                });
            }
        }
        self.fence.validate()?;
        Ok(())
    }
}

/// `ttl × ppm / 10⁶`, rounded up: the margin errs on the side of a shorter deadline.
pub fn clock_margin(ttl: Duration, ppm: u64) -> Duration {
    let nanos = ttl.as_nanos() * u128::from(ppm.min(PPM));
    let margin = nanos.div_ceil(u128::from(PPM));
    Duration::from_nanos(u64::try_from(margin).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::levels::{Device, DeviceKind, Level};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn failsafe_mode_needs_a_ttl_longer_than_two_and_a_half_loops() {
        let tight = SupervisorConfig {
            failsafe_mode: true,
            ttl: Duration::from_secs(25),
            retry_timeout: Duration::from_secs(5),
            ..SupervisorConfig::patroni_defaults()
        };
        assert!(matches!(tight.validate(), Err(ConfigError::FailsafeOutlivesTtl { .. })), "{:?}", tight.validate());
        assert!(tight.validate().unwrap_err().to_string().contains("2.5 × loop_wait"));
        assert_eq!(SupervisorConfig { ttl: Duration::from_secs(26), ..tight }.validate(), Ok(()));
    }

    #[test]
    fn patroni_defaults_are_valid() {
        assert_eq!(SupervisorConfig::patroni_defaults().validate(), Ok(()));
    }

    #[test]
    fn the_timing_rule_is_refused_with_its_numbers_not_adjusted() {
        let cfg =
            SupervisorConfig { loop_wait: secs(10), retry_timeout: secs(11), ..SupervisorConfig::patroni_defaults() };
        let err = cfg.validate().expect_err("10 + 2 × 11 > 30");
        assert_eq!(
            err,
            ConfigError::LoopAndRetriesExceedTtl {
                loop_wait: secs(10),
                retry_timeout: secs(11),
                sum: secs(32),
                ttl: secs(30)
            }
        );
        let text = err.to_string();
        assert!(text.contains("loop_wait + 2 × retry_timeout ≤ ttl"), "{text}");
        assert!(text.contains("32s") && text.contains("30s"), "names the numbers: {text}");
        assert_eq!(cfg.loop_wait, secs(10), "nothing was lowered");
    }

    #[test]
    fn the_timing_rule_holds_at_equality() {
        let cfg = SupervisorConfig {
            ttl: secs(30),
            loop_wait: secs(10),
            retry_timeout: secs(10),
            ..SupervisorConfig::patroni_defaults()
        };
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn zero_durations_are_refused() {
        let cfg = SupervisorConfig { loop_wait: Duration::ZERO, ..SupervisorConfig::patroni_defaults() };
        assert_eq!(cfg.validate(), Err(ConfigError::Zero { field: "loop_wait" }));
    }

    #[test]
    fn a_watchdog_that_would_fire_at_once_is_refused() {
        let cfg = SupervisorConfig {
            watchdog: WatchdogMode::Required,
            safety_margin: secs(30),
            ..SupervisorConfig::patroni_defaults()
        };
        let err = cfg.validate().expect_err("ttl − safety_margin = 0");
        assert_eq!(err, ConfigError::WatchdogTimeoutNotPositive { ttl: secs(30), safety_margin: secs(30) });
        assert!(err.to_string().contains("ttl − safety_margin"), "{err}");
        let off = SupervisorConfig { watchdog: WatchdogMode::Off, ..cfg };
        assert_eq!(off.validate(), Ok(()), "no watchdog, no watchdog rule");
    }

    #[test]
    fn a_watchdog_fed_less_often_than_it_fires_is_refused() {
        let cfg = SupervisorConfig {
            watchdog: WatchdogMode::Automatic,
            safety_margin: secs(21),
            ..SupervisorConfig::patroni_defaults()
        };
        assert_eq!(
            cfg.validate(),
            Err(ConfigError::WatchdogFiresBetweenFeeds { timeout: secs(9), loop_wait: secs(10) })
        );
    }

    #[test]
    fn a_safety_margin_inside_the_clock_margin_is_refused() {
        let cfg = SupervisorConfig {
            watchdog: WatchdogMode::Required,
            safety_margin: Duration::from_millis(300),
            clock_margin_ppm: 10_000, // 300 ms of a 30 s TTL
            ..SupervisorConfig::patroni_defaults()
        };
        assert_eq!(
            cfg.validate(),
            Err(ConfigError::SafetyMarginBelowClockMargin {
                safety_margin: Duration::from_millis(300),
                clock_margin: Duration::from_millis(300)
            })
        );
    }

    #[test]
    fn a_clock_margin_that_eats_the_retry_window_is_refused() {
        let cfg = SupervisorConfig { clock_margin_ppm: 400_000, ..SupervisorConfig::patroni_defaults() };
        assert_eq!(
            cfg.validate(),
            Err(ConfigError::ClockMarginLeavesNoRetryWindow {
                ttl: secs(30),
                margin: secs(12),
                window: secs(18),
                needed: secs(20)
            })
        );
        let cfg = SupervisorConfig { clock_margin_ppm: PPM, ..SupervisorConfig::patroni_defaults() };
        assert_eq!(cfg.validate(), Err(ConfigError::ClockMarginTooLarge { ppm: PPM }));
    }

    #[test]
    fn a_fence_plan_with_an_empty_level_is_refused() {
        let fence = FencePlan {
            levels: vec![
                Level { devices: vec![Device::new(DeviceKind::Stonith, secs(2), 1)] },
                Level { devices: vec![] },
            ],
        };
        let cfg = SupervisorConfig { fence, ..SupervisorConfig::patroni_defaults() };
        assert_eq!(cfg.validate(), Err(ConfigError::Fence(PlanError::EmptyLevel { level: 1 })));
    }

    #[test]
    fn the_clock_margin_rounds_towards_a_shorter_deadline() {
        assert_eq!(clock_margin(secs(30), 10_000), Duration::from_millis(300));
        assert_eq!(clock_margin(Duration::from_nanos(3), 1), Duration::from_nanos(1), "rounded up, never to zero");
        assert_eq!(clock_margin(secs(30), 0), Duration::ZERO);
    }
}
