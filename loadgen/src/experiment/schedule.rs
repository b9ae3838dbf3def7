//! Open-loop schedules: when each operation of a scenario is due, fixed before the run so that
//! a slow API server delays operations (and shows in their latency) instead of thinning them
//! out (no coordinated omission).

use std::time::Duration;

use crate::{measure::as_f64, scenario::Scenario};

/// Precision of due times found by bisection.
const PRECISION: Duration = Duration::from_micros(1);

/// When operation `n` (0-based) is due: the first time at which `count_by`, the number of
/// operations due by a time (non-decreasing), exceeds `n`; `None` if it never does within
/// `horizon`.
///
/// Bisection rather than a closed form, so that any rate curve of a scenario (constant, ramp)
/// uses the same code.
#[must_use]
pub fn due(n: u64, count_by: impl Fn(Duration) -> f64, horizon: Duration) -> Option<Duration> {
    let target = as_f64(n) + 1.0;
    if count_by(horizon) < target - 1e-9 {
        return None;
    }
    let (mut low, mut high) = (Duration::ZERO, horizon);
    while high.saturating_sub(low) > PRECISION {
        let middle = low + high.saturating_sub(low) / 2;
        if count_by(middle) >= target - 1e-9 {
            high = middle;
        } else {
            low = middle;
        }
    }
    Some(high)
}

/// The due times of every operation within `horizon`, in order.
#[must_use]
pub fn all_due(count_by: impl Fn(Duration) -> f64, horizon: Duration) -> Vec<Duration> {
    (0..).map_while(|n| due(n, &count_by, horizon)).collect()
}

/// When a Website created at `created` is mutated: every `interval` after its creation, until
/// `end`.
#[must_use]
pub fn mutations(created: Duration, interval: Duration, end: Duration) -> Vec<Duration> {
    if interval.is_zero() {
        return Vec::new();
    }
    std::iter::successors(Some(created + interval), |at| Some(*at + interval))
        .take_while(|at| *at <= end)
        .collect()
}

/// The operations a scenario's schedule makes due, for the load it offers in a window
/// (docs/experiments.md#capacity): creates and deletes at their due times, and each Website's
/// mutations from its first due mutation on, so a Website created less than a mutation
/// interval ago adds none.
#[derive(Debug, Clone)]
pub struct Offered {
    creates: Vec<Duration>,
    deletes: Vec<Duration>,
    initial_websites: f64,
    mutate_interval: Option<Duration>,
    duration: Duration,
}

impl Offered {
    /// The schedule of `scenario`, as the driver computes it.
    #[must_use]
    pub fn of(scenario: &Scenario) -> Self {
        let duration = scenario.duration;
        let load = scenario.load.as_ref();
        Self {
            creates: all_due(|t| scenario.creates_by(t), duration),
            deletes: load
                .and_then(|load| load.delete)
                .map_or_else(Vec::new, |delete| {
                    all_due(|t| delete.rate * t.as_secs_f64(), duration)
                }),
            initial_websites: f64::from(scenario.world.initial_websites),
            mutate_interval: load.and_then(|load| load.mutate).map(|m| m.interval),
            duration,
        }
    }

    /// The operations due in `[from, to)` of the load, in expectation: the initial Websites
    /// start mutating at a random phase, so each adds `length / interval` mutations to a
    /// window; a delete takes a random Website, whose mutations after it are removed the same
    /// way.
    #[must_use]
    pub fn operations_between(&self, from: Duration, to: Duration) -> f64 {
        let within = |at: &&Duration| **at >= from && **at < to;
        let count = |times: &[Duration]| {
            as_f64(u64::try_from(times.iter().filter(within).count()).unwrap_or(u64::MAX))
        };
        let mutations = self.mutate_interval.map_or(0.0, |interval| {
            let end = to.min(self.duration);
            let per_website = |since: Duration| {
                end.saturating_sub(from.max(since)).as_secs_f64() / interval.as_secs_f64()
            };
            let created: f64 = self
                .creates
                .iter()
                .map(|&created| count(&mutations(created, interval, self.duration)))
                .sum();
            let deleted: f64 = self.deletes.iter().map(|&at| per_website(at)).sum();
            (self.initial_websites * per_website(Duration::ZERO) + created - deleted).max(0.0)
        });
        count(&self.creates) + count(&self.deletes) + mutations
    }

    /// The Websites the schedule has made exist by `at`: the initial ones plus the creates
    /// minus the deletes due by then.
    #[must_use]
    pub fn websites_at(&self, at: Duration) -> f64 {
        let by = |times: &[Duration]| {
            as_f64(
                u64::try_from(times.iter().filter(|due| **due <= at).count()).unwrap_or(u64::MAX),
            )
        };
        (self.initial_websites + by(&self.creates) - by(&self.deletes)).max(0.0)
    }

    /// The operations per second due in `[from, to)`; 0 for an empty window.
    #[must_use]
    pub fn rate_between(&self, from: Duration, to: Duration) -> f64 {
        let length = to.saturating_sub(from).as_secs_f64();
        if length > 0.0 {
            self.operations_between(from, to) / length
        } else {
            0.0
        }
    }
}

/// The number of requests in an open-loop schedule of `rate` per second for `duration`.
#[must_use]
pub fn schedule_len(rate: u32, duration: Duration) -> u64 {
    let total = u128::from(rate) * duration.as_millis() / 1000;
    u64::try_from(total).unwrap_or(u64::MAX)
}

/// When request `i` of a schedule of `rate` per second should start, from the schedule's start.
#[must_use]
pub fn intended_offset(i: u64, rate: u32) -> Duration {
    let nanos = u128::from(i) * 1_000_000_000 / u128::from(rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(seconds: f64) -> Duration {
        Duration::from_secs_f64(seconds)
    }

    fn close(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) <= Duration::from_micros(2)
    }

    #[test]
    fn a_constant_rate_spaces_operations_evenly() {
        let times = all_due(|t| 4.0 * t.as_secs_f64(), secs(1.0));
        assert_eq!(times.len(), 4);
        for (at, expected) in times.iter().zip([0.25, 0.5, 0.75, 1.0]) {
            assert!(close(*at, secs(expected)), "{at:?} vs {expected}");
        }
    }

    #[test]
    fn a_ramp_brings_operations_closer_together() {
        // Rate rising from 0 to 2/s over 10 s: count_by(t) = t² / 10.
        let times = all_due(|t| t.as_secs_f64().powi(2) / 10.0, secs(10.0));
        assert_eq!(times.len(), 10);
        assert!(close(times[0], secs(10f64.sqrt())));
        assert!(close(times[9], secs(10.0)));
        let gaps: Vec<_> = times
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .collect();
        assert!(gaps.windows(2).all(|g| g[1] < g[0]), "{gaps:?}");
    }

    #[test]
    fn nothing_is_due_beyond_the_horizon() {
        assert_eq!(due(5, |t| t.as_secs_f64(), secs(3.0)), None);
        assert!(all_due(|_| 0.0, secs(60.0)).is_empty());
    }

    #[test]
    fn a_website_is_mutated_every_interval_after_its_creation_until_the_end() {
        let times = mutations(secs(5.0), secs(30.0), secs(100.0));
        assert_eq!(times, [secs(35.0), secs(65.0), secs(95.0)]);
        assert!(mutations(secs(90.0), secs(30.0), secs(100.0)).is_empty());
        assert!(mutations(secs(0.0), Duration::ZERO, secs(100.0)).is_empty());
    }

    #[test]
    fn the_schedule_has_rate_times_duration_requests() {
        assert_eq!(schedule_len(50, Duration::from_secs(20)), 1000);
        assert_eq!(schedule_len(3, Duration::from_millis(1500)), 4);
        assert_eq!(schedule_len(1, Duration::ZERO), 0);
    }

    #[test]
    fn intended_starts_are_evenly_spaced_and_do_not_drift() {
        assert_eq!(intended_offset(0, 50), Duration::ZERO);
        assert_eq!(intended_offset(1, 50), Duration::from_millis(20));
        assert_eq!(intended_offset(999, 50), Duration::from_millis(19_980));
        // 1/3 s is not a whole number of nanoseconds; the error does not accumulate.
        assert_eq!(
            intended_offset(3_000_000, 3),
            Duration::from_secs(1_000_000)
        );
    }

    fn scenario(text: &str) -> Scenario {
        Scenario::from_yaml(text, std::path::Path::new("test.yaml")).unwrap()
    }

    #[test]
    fn websites_created_mid_run_are_not_mutated_before_their_first_interval() {
        // 1 create/s for 100 s, each Website mutated every 30 s from its creation. In
        // [50 s, 60 s): the creates due at 50 … 59 s (10) and the first mutations of the
        // Websites created at 20 … 29 s (10): 2.0/s. The old figure counted all 50 Websites
        // existing at 50 s as mutated every 30 s: 1 + 50/30 = 2.67/s.
        let scenario = scenario(
            "name: t\nduration: 100s\nshards: [1]\nworld: {namespaces: 1, themes: 2}\n\
             load:\n  create: {rate: 1, workers: 1}\n  mutate: {interval: 30s, workers: 1}\n",
        );
        let offered = Offered::of(&scenario);
        let window = (secs(50.0), secs(60.0));
        assert!((offered.operations_between(window.0, window.1) - 20.0).abs() < 1e-9);
        assert!((offered.rate_between(window.0, window.1) - 2.0).abs() < 1e-9);
        // Nothing is mutated in the first 30 s: only the creates due at 1 … 29 s.
        assert!((offered.operations_between(secs(0.0), secs(30.0)) - 29.0).abs() < 1e-9);
        assert!(offered.rate_between(secs(5.0), secs(5.0)).abs() < 1e-9);
        assert!((offered.websites_at(secs(50.0)) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn initial_websites_mutate_from_the_start_and_deleted_ones_stop() {
        // 60 initial Websites mutated every 30 s: 2/s from the start; 1 delete/s from 0 s,
        // each taking one Website's 1/30 mutations per second from its due time on.
        let scenario = scenario(
            "name: t\nduration: 100s\nshards: [1]\nworld: {namespaces: 1, themes: 2, initialWebsites: 60}\n\
             load:\n  create: {rate: 0.5, workers: 1}\n  delete: {rate: 1, workers: 1}\n  mutate: {interval: 30s, workers: 1}\n",
        );
        let offered = Offered::of(&scenario);
        // [0, 10): 5 creates (due 2, 4, … 10 s: 2 … 8 inside), 10 deletes (1 … 9 s inside: 9),
        // 60 × 10/30 = 20 initial mutations, minus deleted ones: Σ (10 − d)/30 for d = 1 … 9
        // = 45/30 = 1.5.
        let expected = 4.0 + 9.0 + 20.0 - 1.5;
        let actual = offered.operations_between(secs(0.0), secs(10.0));
        assert!((actual - expected).abs() < 1e-3, "{actual} vs {expected}");
    }
}
