//! The statistics of one range's trials: percentiles and the cumulative distribution, with trials that hit the
//! cap counted as longer than every measured one. Pure functions of the samples; no simulation here.

/// The downtimes of one range's trials, in milliseconds, sorted; trials that hit the cap are kept apart, as
/// longer than any measured time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Distribution {
    /// Measured downtimes, ascending.
    sorted: Vec<u64>,
    /// Trials that elected no new leader within the cap.
    capped: usize,
}

impl Distribution {
    /// From every trial's downtime in milliseconds (`None`: the trial hit the cap), in any order.
    pub fn new(samples: &[Option<u64>]) -> Self {
        let mut sorted: Vec<u64> = samples.iter().flatten().copied().collect();
        sorted.sort_unstable();
        Distribution { capped: samples.len() - sorted.len(), sorted }
    }

    pub fn trials(&self) -> usize {
        self.sorted.len() + self.capped
    }

    /// Trials that hit the cap.
    pub fn capped(&self) -> usize {
        self.capped
    }

    /// The measured (not capped) downtimes, ascending.
    pub fn measured(&self) -> &[u64] {
        &self.sorted
    }

    /// The `p`th percentile (0 < p ≤ 100) by nearest rank: the smallest downtime that at least `p` percent of the
    /// trials did not exceed. `None` when that rank falls among the capped trials ("more than the cap"), or
    /// there are no trials.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        let n = self.trials();
        if n == 0 {
            return None;
        }
        // The rank, 1-based: ceil(p/100 · n), at least 1. Computed in integers from p in hundredths of a
        // percent, so 50 % of 10 trials is rank 5 exactly, not 5.000000001 rounded up to 6.
        let hundredths = (p.clamp(0.0, 100.0) * 100.0).round() as u128;
        let rank = ((hundredths * n as u128).div_ceil(10_000) as usize).max(1);
        self.sorted.get(rank - 1).copied()
    }

    /// The shortest downtime (`None`: every trial hit the cap).
    pub fn min(&self) -> Option<u64> {
        self.sorted.first().copied()
    }

    /// The longest downtime (`None`: at least one trial hit the cap, so the longest is unknown).
    pub fn max(&self) -> Option<u64> {
        if self.capped > 0 {
            None
        } else {
            self.sorted.last().copied()
        }
    }

    /// The mean of the measured downtimes (capped trials left out), `None` if none was measured.
    pub fn mean_measured(&self) -> Option<f64> {
        if self.sorted.is_empty() {
            return None;
        }
        Some(self.sorted.iter().map(|&v| v as f64).sum::<f64>() / self.sorted.len() as f64)
    }

    /// The percentage of all trials (capped ones included) whose new leader was elected within `x_ms`.
    pub fn cdf_at(&self, x_ms: u64) -> f64 {
        let n = self.trials();
        if n == 0 {
            return 0.0;
        }
        let within = self.sorted.partition_point(|&v| v <= x_ms);
        100.0 * within as f64 / n as f64
    }

    /// The cumulative distribution as steps: for each distinct measured downtime, ascending, the percentage of
    /// all trials that took at most that long. Its last percentage is below 100 when some trials hit the cap.
    pub fn steps(&self) -> Vec<(u64, f64)> {
        let n = self.trials() as f64;
        let mut out: Vec<(u64, f64)> = Vec::new();
        for (i, &v) in self.sorted.iter().enumerate() {
            let pct = 100.0 * (i + 1) as f64 / n;
            match out.last_mut() {
                Some(last) if last.0 == v => last.1 = pct,
                _ => out.push((v, pct)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(samples: &[Option<u64>]) -> Distribution {
        Distribution::new(samples)
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let d = dist(&(1..=10).rev().map(|v| Some(v * 10)).collect::<Vec<_>>());
        assert_eq!(d.trials(), 10);
        assert_eq!(d.percentile(50.0), Some(50), "rank ceil(0.5·10) = 5");
        assert_eq!(d.percentile(90.0), Some(90));
        assert_eq!(d.percentile(99.0), Some(100), "rank ceil(9.9) = 10");
        assert_eq!(d.percentile(100.0), Some(100));
        assert_eq!(d.percentile(1.0), Some(10), "the lowest rank is 1");
        assert_eq!((d.min(), d.max()), (Some(10), Some(100)));
        assert_eq!(d.mean_measured(), Some(55.0));
        let one = dist(&[Some(7)]);
        assert_eq!(
            (one.percentile(50.0), one.percentile(99.0), one.min(), one.max()),
            (Some(7), Some(7), Some(7), Some(7))
        );
    }

    #[test]
    fn capped_trials_are_longer_than_every_measured_one() {
        // 8 measured, 2 capped: p50 and p80 are measured, p90 and above are "more than the cap".
        let mut samples: Vec<Option<u64>> = (1..=8).map(|v| Some(v * 100)).collect();
        samples.insert(3, None);
        samples.push(None);
        let d = dist(&samples);
        assert_eq!((d.trials(), d.capped()), (10, 2));
        assert_eq!(d.percentile(50.0), Some(500));
        assert_eq!(d.percentile(80.0), Some(800));
        assert_eq!(d.percentile(90.0), None);
        assert_eq!(d.percentile(99.0), None);
        assert_eq!(d.max(), None, "the longest trial is unknown: it hit the cap");
        assert_eq!(d.min(), Some(100));
        let all_capped = dist(&[None, None]);
        assert_eq!((all_capped.min(), all_capped.max(), all_capped.percentile(50.0)), (None, None, None));
        assert_eq!(all_capped.cdf_at(u64::MAX), 0.0);
        assert_eq!(dist(&[]).percentile(50.0), None);
    }

    #[test]
    fn the_cdf_counts_every_trial_and_steps_at_each_distinct_time() {
        let d = dist(&[Some(200), Some(100), Some(200), None]);
        assert_eq!(d.cdf_at(99), 0.0);
        assert_eq!(d.cdf_at(100), 25.0, "a trial that took exactly x counts as within x");
        assert_eq!(d.cdf_at(150), 25.0);
        assert_eq!(d.cdf_at(200), 75.0);
        assert_eq!(d.cdf_at(1_000_000), 75.0, "the capped trial never counts");
        assert_eq!(d.steps(), vec![(100, 25.0), (200, 75.0)]);
        assert_eq!(d.measured(), &[100, 200, 200]);
    }
}
