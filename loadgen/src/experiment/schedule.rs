//! Open-loop schedules: when each operation of a scenario is due, fixed before the run so that
//! a slow API server delays operations (and shows in their latency) instead of thinning them
//! out (no coordinated omission).

use std::time::Duration;

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
    let target = crate::measure::as_f64(n) + 1.0;
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
}
