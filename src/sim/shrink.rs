//! Shrinking a failing schedule: fewer faults, shorter, earlier, for as long as the run still fails.
//!
//! Greedy and deterministic, as a failing seed deserves: the same failing run shrinks to the same
//! schedule on every machine. Each pass tries, in order, to drop a whole fault (the last first), to
//! halve a fault's duration, and to halve its start; a candidate is kept only if `fails` still holds.
//! Passes repeat until one changes nothing or the run budget is spent. Times stay whole multiples of
//! 100 ms, so the replay command stays readable.

use std::time::Duration;

use super::schedule::Schedule;

/// The smallest failing schedule found, and how many runs it took.
#[derive(Clone, Debug)]
pub struct Shrunk {
    pub schedule: Schedule,
    pub runs: usize,
}

/// Times are kept at this grain.
const GRAIN: Duration = Duration::from_millis(100);

fn halve(d: Duration) -> Duration {
    let grains = d.as_millis() / GRAIN.as_millis() / 2;
    GRAIN * grains as u32
}

/// Shrinks `schedule`, which fails, with at most `budget` runs of `fails`.
pub fn shrink(schedule: &Schedule, budget: usize, mut fails: impl FnMut(&Schedule) -> bool) -> Shrunk {
    let mut best = schedule.clone();
    let mut runs = 0;
    let mut attempt = |candidate: Schedule, best: &mut Schedule, runs: &mut usize| -> bool {
        if *runs >= budget || candidate.steps.is_empty() || candidate == *best {
            return false;
        }
        *runs += 1;
        let kept = fails(&candidate);
        if kept {
            *best = candidate;
        }
        kept
    };
    loop {
        let mut changed = false;
        for i in (0..best.steps.len()).rev() {
            if best.steps.len() > 1 && i < best.steps.len() {
                let mut c = best.clone();
                c.steps.remove(i);
                changed |= attempt(c, &mut best, &mut runs);
            }
        }
        for i in 0..best.steps.len() {
            let d = halve(best.steps[i].duration);
            if d >= GRAIN {
                let mut c = best.clone();
                c.steps[i].duration = d;
                changed |= attempt(c, &mut best, &mut runs);
            }
        }
        for i in 0..best.steps.len() {
            if best.steps[i].start > Duration::ZERO {
                let mut c = best.clone();
                c.steps[i].start = halve(best.steps[i].start);
                changed |= attempt(c, &mut best, &mut runs);
            }
        }
        if !changed || runs >= budget {
            return Shrunk { schedule: best, runs };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::schedule::Fault;

    fn schedule(spec: &str) -> Schedule {
        let t = quorumlab_quorum::shipped::load("etcd-2-2-1").expect("shipped");
        Schedule::parse(spec, &t, Duration::from_secs(10)).expect("a schedule")
    }

    fn has_crash(s: &Schedule) -> bool {
        s.steps.iter().any(|st| matches!(st.fault, Fault::Crash { .. }) && st.duration >= Duration::from_secs(2))
    }

    #[test]
    fn drops_the_faults_that_do_not_matter_and_shortens_the_one_that_does() {
        let s = schedule("cut:dc1:dc2@1s+8s;crash:leader@3s+10s;pause:follower@0s+4s");
        let shrunk = shrink(&s, 50, has_crash);
        assert_eq!(shrunk.schedule.steps.len(), 1, "{:?}", shrunk.schedule);
        let step = &shrunk.schedule.steps[0];
        assert!(matches!(step.fault, Fault::Crash { .. }));
        assert!(step.duration >= Duration::from_secs(2) && step.duration < Duration::from_secs(4), "{step:?}");
        assert_eq!(step.start, Duration::ZERO);
        assert!(shrunk.runs <= 50);
    }

    #[test]
    fn a_schedule_that_needs_everything_is_left_alone_and_the_budget_holds() {
        let s = schedule("crash:leader@0s+2s");
        let shrunk = shrink(&s, 50, has_crash);
        assert_eq!(shrunk.schedule, s);
        let mut calls = 0;
        let shrunk = shrink(&schedule("cut:dc1:dc2@1s+8s;crash:leader@3s+10s"), 2, |c| {
            calls += 1;
            has_crash(c)
        });
        assert_eq!((calls, shrunk.runs), (2, 2));
    }

    #[test]
    fn the_same_failure_shrinks_the_same_way() {
        let s = schedule("cut:dc1:dc2@1s+8s;crash:leader@3s+10s;pause:follower@0s+4s");
        assert_eq!(shrink(&s, 50, has_crash).schedule, shrink(&s, 50, has_crash).schedule);
    }
}
