//! What protects the database in one run: a fence strategy (a row of the matrix), the supervisor's
//! timing, and — for negative controls only — the deliberate bugs that break a fence.

use std::fmt;
use std::time::Duration;

use quorumlab_fencing::{Device, DeviceKind, FencePlan, Level, Planted, SupervisorConfig, WatchdogMode};
use quorumlab_quorum::FencePath;
use serde::Serialize;

/// A host's watchdog: a software one stops counting while its whole host is paused (Linux's
/// softdog), a hardware one does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatchdogKind {
    Softdog,
    Hardware,
}

/// A row of the fencing matrix: how the old primary is kept from writing once a new one is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Lease plus self-demotion only (Patroni's default).
    None,
    /// Self-demotion plus a required watchdog that resets a primary whose supervisor stops feeding it.
    Watchdog,
    /// Power the old primary off (out of band unless the topology says otherwise).
    Stonith,
    /// Firewall the old primary's database, established connections included.
    Firewall,
    /// Install the new fencing token on enough replicas that the old primary cannot commit.
    Credentials,
    /// One level: STONITH AND firewall.
    StonithAndFirewall,
    /// Two levels: STONITH, else firewall.
    StonithOrFirewall,
}

impl Strategy {
    pub const ALL: [Strategy; 7] = [
        Strategy::None,
        Strategy::Watchdog,
        Strategy::Stonith,
        Strategy::Firewall,
        Strategy::Credentials,
        Strategy::StonithAndFirewall,
        Strategy::StonithOrFirewall,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Strategy::None => "none",
            Strategy::Watchdog => "watchdog",
            Strategy::Stonith => "stonith",
            Strategy::Firewall => "firewall",
            Strategy::Credentials => "credentials",
            Strategy::StonithAndFirewall => "stonith&firewall",
            Strategy::StonithOrFirewall => "stonith|firewall",
        }
    }

    pub fn parse(name: &str) -> Result<Strategy, String> {
        Strategy::ALL.iter().copied().find(|s| s.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Strategy::ALL.iter().map(Strategy::name).collect();
            format!("unknown strategy {name:?}; the strategies are {}", names.join(", "))
        })
    }

    /// Whether replicas enforce fencing tokens (the credentials fence is the token check).
    pub fn enforces_tokens(&self) -> bool {
        matches!(self, Strategy::Credentials)
    }

    /// Whether the strategy promises that a deposed primary serves no reads: self-demotion, the
    /// watchdog, STONITH and the firewall all stop the old primary; tokens and revoked credentials
    /// stop only its writes, so stale reads are the credentials fence's documented price.
    pub fn stops_reads(&self) -> bool {
        !matches!(self, Strategy::Credentials)
    }

    /// The fence plan: devices with a timeout of one second and one retry each.
    pub fn plan(&self) -> FencePlan {
        let dev = |kind| Device::new(kind, Duration::from_millis(1_000), 1);
        let level = |kinds: &[DeviceKind]| Level { devices: kinds.iter().map(|&k| dev(k)).collect() };
        match self {
            Strategy::None | Strategy::Watchdog => FencePlan::none(),
            Strategy::Stonith => FencePlan::single(dev(DeviceKind::Stonith)),
            Strategy::Firewall => FencePlan::single(dev(DeviceKind::Firewall)),
            Strategy::Credentials => FencePlan::single(dev(DeviceKind::FencingToken)),
            Strategy::StonithAndFirewall => {
                FencePlan { levels: vec![level(&[DeviceKind::Stonith, DeviceKind::Firewall])] }
            }
            Strategy::StonithOrFirewall => {
                FencePlan { levels: vec![level(&[DeviceKind::Stonith]), level(&[DeviceKind::Firewall])] }
            }
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Deliberate bugs, each breaking one fence or one rule, for negative controls. All off in every
/// correct configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bugs {
    /// The agent ignores the core's demotion: the database keeps serving after the lease is gone.
    pub no_self_demotion: bool,
    /// The STONITH device reports the host off and leaves it running.
    pub lying_stonith: bool,
    /// A device attempt that timed out or failed is reported as confirmed.
    pub timeout_as_success: bool,
    /// The firewall keeps established connections (`ct state established accept`).
    pub firewall_keeps_established: bool,
    /// The firewall confirms before the rule is in force (the rule lands a second later).
    pub firewall_confirms_early: bool,
    /// The token is installed on one replica only, then confirmed.
    pub token_on_too_few: bool,
    /// A replica checks the token, yields, then appends without checking again.
    pub check_yield_append: bool,
    /// The supervisor counts its lease deadline from the moment it reads the KeepAlive's answer instead
    /// of the renewal's send (planted in the pure core: `quorumlab_fencing::Planted`).
    pub deadline_from_reply: bool,
    /// The agent renews by a serializable read of the leader key (any member's local view).
    pub serializable_renewal: bool,
    /// A primary with no replica degrades to asynchronous replication on its own, without recording
    /// it in the consensus store first.
    pub silent_degrade: bool,
    /// In failsafe mode, a failsafe ping that timed out counts as an answer.
    pub failsafe_counts_timeouts: bool,
}

impl Bugs {
    pub fn any(&self) -> bool {
        *self != Bugs::default()
    }

    /// Every bug by name, with its switch.
    fn slots(&mut self) -> [(&'static str, &mut bool); 11] {
        [
            ("no-self-demotion", &mut self.no_self_demotion),
            ("lying-stonith", &mut self.lying_stonith),
            ("timeout-as-success", &mut self.timeout_as_success),
            ("firewall-keeps-established", &mut self.firewall_keeps_established),
            ("firewall-confirms-early", &mut self.firewall_confirms_early),
            ("token-on-too-few", &mut self.token_on_too_few),
            ("check-yield-append", &mut self.check_yield_append),
            ("deadline-from-reply", &mut self.deadline_from_reply),
            ("serializable-renewal", &mut self.serializable_renewal),
            ("silent-degrade", &mut self.silent_degrade),
            ("failsafe-counts-timeouts", &mut self.failsafe_counts_timeouts),
        ]
    }

    /// The bugs set, by name.
    pub fn names(&self) -> Vec<&'static str> {
        let mut copy = *self;
        copy.slots().into_iter().filter(|(_, on)| **on).map(|(name, _)| name).collect()
    }

    /// Every bug set in either.
    pub fn union(self, other: Bugs) -> Bugs {
        let mut all = self.names();
        all.extend(other.names());
        Bugs::parse(&all.join(",")).unwrap_or(self)
    }

    pub fn parse(names: &str) -> Result<Bugs, String> {
        let mut b = Bugs::default();
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match b.slots().into_iter().find(|(n, _)| *n == name) {
                Some((_, on)) => *on = true,
                None => {
                    let all: Vec<&str> = Bugs::default().slots().into_iter().map(|(n, _)| n).collect();
                    return Err(format!("unknown bug {name:?}; the bugs are {}", all.join(", ")));
                }
            }
        }
        Ok(b)
    }
}

/// Everything about the database and its supervisors in one run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FencingOptions {
    pub strategy: Strategy,
    /// Acknowledge a write only once the synchronous standby has it.
    pub synchronous: bool,
    /// With `synchronous`: a primary left with no replica may degrade to asynchronous replication,
    /// after recording that in the consensus store (Patroni's `synchronous_mode` without `_strict`);
    /// no replica is promoted while it is recorded. Off: writes wait (`synchronous_mode_strict`).
    pub degradable: bool,
    /// Patroni's `failsafe_mode`: while the consensus store is lost, the primary keeps serving as long as
    /// every member of the failsafe list (the primary records it in the store) answers it directly.
    pub failsafe: bool,
    pub watchdog_kind: WatchdogKind,
    /// Whether hosts have a watchdog at all.
    pub watchdog_available: bool,
    /// Overrides the topology's fence path for every datacenter (fault 2: devices only across the cut).
    #[serde(skip)]
    pub fence_path: Option<FencePath>,
    /// How long a powered-off host stays off before the operator powers it on.
    #[serde(skip)]
    pub power_off_for: Duration,
    pub bugs: Bugs,
    /// The supervisor's timing (Patroni's ttl, loop_wait, retry_timeout, scaled to simulated runs).
    #[serde(skip)]
    pub ttl: Duration,
    #[serde(skip)]
    pub loop_wait: Duration,
    #[serde(skip)]
    pub retry_timeout: Duration,
    #[serde(skip)]
    pub safety_margin: Duration,
}

impl FencingOptions {
    /// A strategy with synchronous replication and Patroni's timing ratios scaled down to a 6 s
    /// ttl (loop_wait 1 s, retry_timeout 2 s: `1 + 2 × 2 ≤ 6`), so a fault longer than ttl fits a
    /// short simulated run.
    pub fn new(strategy: Strategy) -> FencingOptions {
        FencingOptions {
            strategy,
            synchronous: true,
            degradable: false,
            failsafe: false,
            watchdog_kind: WatchdogKind::Softdog,
            watchdog_available: true,
            fence_path: None,
            power_off_for: Duration::from_secs(8),
            bugs: Bugs::default(),
            ttl: Duration::from_secs(6),
            loop_wait: Duration::from_secs(1),
            retry_timeout: Duration::from_secs(2),
            safety_margin: Duration::from_millis(1_500),
        }
    }

    /// The supervisor configuration every agent runs.
    pub fn supervisor(&self) -> SupervisorConfig {
        SupervisorConfig {
            ttl: self.ttl,
            loop_wait: self.loop_wait,
            retry_timeout: self.retry_timeout,
            safety_margin: self.safety_margin,
            clock_margin_ppm: 10_000,
            maximum_lag_on_failover: 1 << 20,
            watchdog: if self.strategy == Strategy::Watchdog { WatchdogMode::Required } else { WatchdogMode::Off },
            synchronous_mode: self.synchronous,
            failsafe_mode: self.failsafe,
            fence: self.strategy.plan(),
            planted: Planted {
                deadline_from_reply: self.bugs.deadline_from_reply,
                failsafe_counts_timeouts: self.bugs.failsafe_counts_timeouts,
            },
        }
    }

    /// `stonith`, `none [async]`, `firewall +firewall-keeps-established`.
    pub fn label(&self) -> String {
        let mut s = self.strategy.name().to_string();
        if !self.synchronous {
            s.push_str(" [async]");
        } else if self.degradable {
            s.push_str(" [degradable]");
        }
        if self.failsafe {
            s.push_str(" [failsafe]");
        }
        if self.strategy == Strategy::Watchdog && self.watchdog_kind == WatchdogKind::Hardware {
            s.push_str(" [hardware]");
        }
        for b in self.bugs.names() {
            s.push_str(" +");
            s.push_str(b);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_strategy_makes_a_configuration_the_core_accepts() {
        for s in Strategy::ALL {
            let o = FencingOptions::new(s);
            o.supervisor().validate().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(Strategy::parse(s.name()), Ok(s));
        }
        assert!(Strategy::parse("sideways").unwrap_err().contains("stonith|firewall"));
        assert!(Bugs::parse("nope").is_err());
        assert_eq!(Bugs::parse("lying-stonith").map(|b| b.names()), Ok(vec!["lying-stonith"]));
        let both =
            Bugs { lying_stonith: true, ..Bugs::default() }.union(Bugs { timeout_as_success: true, ..Bugs::default() });
        assert_eq!(both.names(), ["lying-stonith", "timeout-as-success"]);
    }
}
