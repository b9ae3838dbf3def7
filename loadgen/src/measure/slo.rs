//! SLO verdicts, the first breach under a ramp of load, and capacity scaling (docs/experiments.md).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::{prometheus::Quantile, ratio};

/// The service level objectives of the experiments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slo {
    /// The highest acceptable p99 of the reconciliation latency.
    pub reconciliation_p99: Duration,
    /// The highest acceptable p99 of the operator's queue latency.
    pub queue_p99: Duration,
}

impl Default for Slo {
    /// The objectives of docs/experiments.md#reconciliation-latency and
    /// docs/experiments.md#queue-latency: reconciliation p99 ≤ 5 s, queue p99 ≤ 1 s.
    fn default() -> Self {
        Self {
            reconciliation_p99: Duration::from_secs(5),
            queue_p99: Duration::from_secs(1),
        }
    }
}

impl Slo {
    /// The verdicts on the observed p99s; the queue latency has none when it was not scraped,
    /// and is only as sure as the bucket it fell into.
    #[must_use]
    pub fn verdicts(
        &self,
        reconciliation_p99: Duration,
        queue_p99: Option<Quantile>,
    ) -> Vec<Verdict> {
        let reconciliation = Verdict::new(
            Metric::ReconciliationLatency,
            self.reconciliation_p99,
            reconciliation_p99,
        );
        let queue = queue_p99
            .map(|observed| Verdict::of_quantile(Metric::QueueLatency, self.queue_p99, observed));
        std::iter::once(reconciliation).chain(queue).collect()
    }
}

/// The latency an SLO is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// From a create or spec change to the watch seeing it Ready for its generation.
    ReconciliationLatency,
    /// The controller's `workqueue_queue_duration_seconds{name="<controller.queue>"}`
    /// (`website` for the webhosting-operator).
    QueueLatency,
}

impl Metric {
    /// A stable name for reports and CSV columns.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReconciliationLatency => "reconciliation_latency",
            Self::QueueLatency => "queue_latency",
        }
    }

    /// The name a reader knows it by.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ReconciliationLatency => "reconciliation latency",
            Self::QueueLatency => "queue latency",
        }
    }
}

/// Whether an observed p99 met its objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The latency.
    pub metric: Metric,
    /// The highest acceptable p99.
    pub threshold: Duration,
    /// The observed p99 (interpolated when it comes from a histogram's bucket).
    pub observed: Duration,
    /// The bucket the p99 lies in, lower and upper bound (`None`: unbounded), when it is wider
    /// than the resolution of a point ([`Quantile::is_resolved`]).
    pub range: Option<(Duration, Option<Duration>)>,
    /// `Some(true)` if the p99 is within the threshold, `Some(false)` if it is over it,
    /// `None` if its range holds the threshold, so the measurement cannot tell.
    pub met: Option<bool>,
    /// The observed p99 is a lower bound: censored latencies reach it
    /// (docs/experiments.md#reconciliation-latency).
    pub lower_bound: bool,
}

impl Verdict {
    /// The verdict on `observed`, known exactly, against `threshold`.
    #[must_use]
    pub fn new(metric: Metric, threshold: Duration, observed: Duration) -> Self {
        Self {
            metric,
            threshold,
            observed,
            range: None,
            met: Some(observed <= threshold),
            lower_bound: false,
        }
    }

    /// This verdict on an observed p99 that is only a lower bound: over the threshold it is
    /// breached for sure, within it the true p99 may still be over, so the verdict is open.
    #[must_use]
    pub fn at_least(self) -> Self {
        Self {
            met: self.met.filter(|met| !met),
            lower_bound: true,
            ..self
        }
    }

    /// The verdict on a histogram's quantile (seconds): a point if its bucket is narrow enough;
    /// otherwise met only if the bucket's upper bound is within `threshold`, and breached
    /// only if its lower bound is over it (docs/experiments.md#queue-latency).
    #[must_use]
    pub fn of_quantile(metric: Metric, threshold: Duration, observed: Quantile) -> Self {
        let point = seconds(observed.value);
        if observed.is_resolved() {
            return Self::new(metric, threshold, point);
        }
        let (lower, upper) = bucket(observed);
        let met = if upper.is_some_and(|upper| upper <= threshold) {
            Some(true)
        } else if lower > threshold {
            Some(false)
        } else {
            None
        };
        Self {
            metric,
            threshold,
            observed: point,
            range: Some((lower, upper)),
            met,
            lower_bound: false,
        }
    }
}

/// A quantile's bucket as durations: lower bound (0 if below it) and upper bound (`None`:
/// unbounded).
#[must_use]
pub fn bucket(quantile: Quantile) -> (Duration, Option<Duration>) {
    (
        seconds(quantile.lower),
        Duration::try_from_secs_f64(quantile.upper).ok(),
    )
}

/// Seconds as a duration; 0 for what is not a non-negative finite number.
fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or_default()
}

/// The load the schedule offered in a window of a run: how many objects there are and how fast
/// they churn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Load {
    /// The Websites the schedule made exist by the window's start.
    pub websites: f64,
    /// The creates, deletes and mutations the schedule made due in the window, per second
    /// (docs/experiments.md#capacity).
    pub operations_per_second: f64,
}

/// One window of a run under a ramp of load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadWindow {
    /// The start of the window.
    pub at: Timestamp,
    /// The window's length: the next window starts at `at + length` at the latest.
    pub length: Duration,
    /// The load the schedule offered in it.
    pub load: Load,
    /// The operations per second the driver completed in it.
    pub achieved_operations_per_second: f64,
    /// The least the window's p99 latency can be: the p99 itself if measured exactly, the
    /// lower bound of its bucket if read from a histogram, so a breach is never declared on
    /// an interpolation.
    pub p99_at_least: Duration,
}

/// Where an SLO was first breached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Breach {
    /// The SLO breached.
    pub metric: Metric,
    /// The start of the first window of the breach.
    pub at: Timestamp,
    /// The load in that window: the capacity at this shard count.
    #[serde(flatten)]
    pub load: Load,
    /// The operations per second the driver completed in that window, beside the offered ones.
    pub achieved_operations_per_second: f64,
}

/// The capacity of a shard count under each SLO on its own (docs/experiments.md#capacity).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Capacity {
    /// The first sustained breach of the reconciliation-latency SLO.
    pub reconciliation: Option<Breach>,
    /// The first sustained breach of the queue-latency SLO.
    pub queue: Option<Breach>,
    /// Queue windows whose p99 bucket holds the threshold, so they may or may not have
    /// breached it: with any, a missing queue breach is "undetermined", not "held".
    pub queue_undetermined_windows: usize,
}

impl Capacity {
    /// The breach of `metric`'s SLO.
    #[must_use]
    pub fn of(&self, metric: Metric) -> Option<Breach> {
        match metric {
            Metric::ReconciliationLatency => self.reconciliation,
            Metric::QueueLatency => self.queue,
        }
    }

    /// The breach of whichever SLO broke first: the load this shard count carries within all.
    #[must_use]
    pub fn earliest(&self) -> Option<Breach> {
        earliest([self.reconciliation, self.queue])
    }
}

/// The events per second among `times` in `[from, from + length)`; 0 for an empty window.
#[must_use]
pub fn rate(times: &[Timestamp], from: Timestamp, length: Duration) -> f64 {
    let Ok(span) = k8s_openapi::jiff::SignedDuration::try_from(length) else {
        return 0.0;
    };
    let to = from.saturating_add(span).unwrap_or(from);
    let count = times.iter().filter(|at| **at >= from && **at < to).count();
    crate::units::per_second(count, length)
}

/// How long a p99 must stay over its threshold to be a breach, so one noisy window is not.
pub const SUSTAINED: Duration = Duration::from_secs(20);

/// The windows of `window` in a row that cover [`SUSTAINED`], at least one.
#[must_use]
pub fn consecutive_windows(window: Duration) -> usize {
    if window.is_zero() {
        return 1;
    }
    usize::try_from(SUSTAINED.as_nanos().div_ceil(window.as_nanos())).unwrap_or(usize::MAX)
}

/// The first window whose p99 of `metric` exceeds `threshold` in `consecutive` windows in a row
/// (at least one); `None` if the SLO held throughout.
///
/// In a row means contiguous in time: each window starts no later than the end of the one
/// before ([`LoadWindow::length`]), so windows on both sides of a gap (a window without
/// latencies, left out) are no sustained breach. `windows` are taken in time order, whatever
/// their order in the slice.
#[must_use]
pub fn first_breach(
    metric: Metric,
    windows: &[LoadWindow],
    threshold: Duration,
    consecutive: usize,
) -> Option<Breach> {
    let mut ordered: Vec<&LoadWindow> = windows.iter().collect();
    ordered.sort_by_key(|w| w.at);
    let contiguous =
        |pair: &[&LoadWindow]| super::elapsed(pair[0].at, pair[1].at) <= pair[0].length;
    ordered
        .windows(consecutive.max(1))
        .find(|run| {
            run.iter().all(|w| w.p99_at_least > threshold) && run.windows(2).all(contiguous)
        })
        .map(|run| Breach {
            metric,
            at: run[0].at,
            load: run[0].load,
            achieved_operations_per_second: run[0].achieved_operations_per_second,
        })
}

/// The earlier of the breaches of several SLOs: the capacity is where the first one breaks.
#[must_use]
pub fn earliest(breaches: impl IntoIterator<Item = Option<Breach>>) -> Option<Breach> {
    breaches.into_iter().flatten().min_by_key(|b| b.at)
}

/// Capacity relative to one shard, `capacity(N) / capacity(1)`, per shard count in ascending
/// order; empty without a positive capacity for one shard.
#[must_use]
pub fn capacity_scaling(capacity_by_shards: &[(u32, f64)]) -> Vec<(u32, f64)> {
    let Some(&(_, single)) = capacity_by_shards.iter().find(|(shards, _)| *shards == 1) else {
        return Vec::new();
    };
    let mut scaling: Vec<(u32, f64)> = capacity_by_shards
        .iter()
        .filter_map(|&(shards, capacity)| Some((shards, ratio(capacity, single)?)))
        .collect();
    scaling.sort_by_key(|&(shards, _)| shards);
    scaling
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn load(websites: f64) -> Load {
        Load {
            websites,
            operations_per_second: websites / 60.0,
        }
    }

    fn window(seconds: i64, websites: f64, p99_ms: u64) -> LoadWindow {
        LoadWindow {
            at: at(seconds),
            length: Duration::from_secs(10),
            load: load(websites),
            achieved_operations_per_second: websites / 120.0,
            p99_at_least: Duration::from_millis(p99_ms),
        }
    }

    fn breach(seconds: i64, websites: f64) -> Breach {
        Breach {
            metric: Metric::ReconciliationLatency,
            at: at(seconds),
            load: load(websites),
            achieved_operations_per_second: websites / 120.0,
        }
    }

    const RECONCILIATION: Metric = Metric::ReconciliationLatency;

    const THRESHOLD: Duration = Duration::from_secs(5);

    #[test]
    fn the_default_slo_is_the_one_of_spec_d() {
        let slo = Slo::default();
        assert_eq!(slo.reconciliation_p99, Duration::from_secs(5));
        assert_eq!(slo.queue_p99, Duration::from_secs(1));
    }

    #[test]
    fn a_p99_at_the_threshold_meets_it() {
        assert_eq!(
            Verdict::new(Metric::QueueLatency, THRESHOLD, THRESHOLD).met,
            Some(true)
        );
        assert_eq!(
            Verdict::new(
                Metric::QueueLatency,
                THRESHOLD,
                THRESHOLD + Duration::from_nanos(1)
            )
            .met,
            Some(false)
        );
    }

    fn quantile(value: f64, lower: f64, upper: f64) -> Quantile {
        Quantile {
            value,
            lower,
            upper,
        }
    }

    #[test]
    fn a_p99_in_a_wide_bucket_decides_only_when_the_whole_bucket_is_on_one_side() {
        let one_second = Duration::from_secs(1);
        // PromQL interpolates 0.91 s in 0.1–1 s: the old verdict "met" on 0.91 was right only
        // because the bucket ends at the threshold.
        let met = Verdict::of_quantile(Metric::QueueLatency, one_second, quantile(0.91, 0.1, 1.0));
        assert_eq!(met.met, Some(true));
        assert_eq!(
            met.range,
            Some((Duration::from_millis(100), Some(one_second)))
        );
        // 5.5 s interpolated in 1–10 s: the old verdict said breached; the p99 may be 1 s.
        let unsure =
            Verdict::of_quantile(Metric::QueueLatency, one_second, quantile(5.5, 1.0, 10.0));
        assert_eq!(unsure.met, None);
        // Read 0.5 s in 0.1–1 s against 0.3 s: the old verdict said breached; it may be 0.2 s.
        let unsure = Verdict::of_quantile(
            Metric::QueueLatency,
            Duration::from_millis(300),
            quantile(0.5, 0.1, 1.0),
        );
        assert_eq!(unsure.met, None);
        // The +Inf bucket over the threshold is a breach, whatever its upper end.
        let over = Verdict::of_quantile(
            Metric::QueueLatency,
            one_second,
            quantile(10.0, 10.0, f64::INFINITY),
        );
        assert_eq!(
            (over.met, over.range),
            (Some(false), Some((Duration::from_secs(10), None)))
        );
        // A narrow bucket is a point.
        let point =
            Verdict::of_quantile(Metric::QueueLatency, one_second, quantile(1.1, 1.0, 1.25));
        assert_eq!((point.met, point.range), (Some(false), None));
    }

    #[test]
    fn a_lower_bound_within_the_threshold_decides_nothing_and_over_it_is_a_breach() {
        let within = Verdict::new(Metric::ReconciliationLatency, THRESHOLD, THRESHOLD / 2);
        assert_eq!(within.at_least().met, None);
        assert!(within.at_least().lower_bound);
        let over = Verdict::new(Metric::ReconciliationLatency, THRESHOLD, THRESHOLD * 2);
        assert_eq!(over.at_least().met, Some(false));
    }

    #[test]
    fn verdicts_cover_the_queue_only_when_it_was_observed() {
        let slo = Slo::default();
        let verdicts = slo.verdicts(Duration::from_secs(6), Some(Quantile::exact(0.2)));
        assert_eq!(
            verdicts,
            [
                Verdict {
                    metric: Metric::ReconciliationLatency,
                    threshold: Duration::from_secs(5),
                    observed: Duration::from_secs(6),
                    range: None,
                    met: Some(false),
                    lower_bound: false,
                },
                Verdict {
                    metric: Metric::QueueLatency,
                    threshold: Duration::from_secs(1),
                    observed: Duration::from_millis(200),
                    range: None,
                    met: Some(true),
                    lower_bound: false,
                },
            ]
        );
        let verdicts = slo.verdicts(Duration::from_secs(1), None);
        assert_eq!(verdicts.len(), 1);
        assert_eq!(verdicts[0].met, Some(true));
    }

    #[test]
    fn metrics_have_stable_names() {
        assert_eq!(
            Metric::ReconciliationLatency.as_str(),
            "reconciliation_latency"
        );
        assert_eq!(Metric::QueueLatency.as_str(), "queue_latency");
    }

    #[test]
    fn one_noisy_window_is_not_a_breach() {
        let windows = [
            window(0, 100.0, 1000),
            window(10, 200.0, 9000),
            window(20, 300.0, 1000),
            window(30, 400.0, 6000),
            window(40, 500.0, 7000),
        ];
        assert_eq!(
            first_breach(RECONCILIATION, &windows, THRESHOLD, 2),
            Some(breach(30, 400.0))
        );
    }

    #[test]
    fn windows_over_the_threshold_across_a_gap_are_no_sustained_breach() {
        // 10-s windows; none from 20 s to 40 s (no latencies), so 10 s and 40 s are adjacent
        // in the list but 30 s apart. The old code took them as a breach at 10 s.
        let windows = [
            window(0, 100.0, 1000),
            window(10, 200.0, 9000),
            window(40, 500.0, 9000),
            window(50, 600.0, 9000),
        ];
        assert_eq!(
            first_breach(RECONCILIATION, &windows, THRESHOLD, 2),
            Some(breach(40, 500.0))
        );
        assert_eq!(
            first_breach(RECONCILIATION, &windows[..3], THRESHOLD, 2),
            None
        );
    }

    #[test]
    fn a_window_breaches_only_when_its_least_possible_p99_is_over_the_threshold() {
        // A queue window read from the 1–10 s bucket: at least 1 s, not over 5 s.
        let windows = [window(0, 100.0, 1000), window(10, 200.0, 1000)];
        assert_eq!(first_breach(RECONCILIATION, &windows, THRESHOLD, 1), None);
    }

    #[test]
    fn capacity_is_per_slo_and_the_earliest_is_where_the_first_breaks() {
        let queue = Breach {
            metric: Metric::QueueLatency,
            ..breach(20, 300.0)
        };
        let capacity = Capacity {
            reconciliation: Some(breach(30, 400.0)),
            queue: Some(queue),
            queue_undetermined_windows: 0,
        };
        assert_eq!(capacity.of(Metric::QueueLatency), Some(queue));
        assert_eq!(
            capacity.of(Metric::ReconciliationLatency),
            Some(breach(30, 400.0))
        );
        assert_eq!(capacity.earliest(), Some(queue));
        assert_eq!(Capacity::default().earliest(), None);
    }

    #[test]
    fn the_achieved_rate_counts_completions_in_the_window() {
        let times = [at(9), at(10), at(12), at(19), at(20)];
        assert!((rate(&times, at(10), Duration::from_secs(10)) - 0.3).abs() < 1e-9);
        assert!(rate(&times, at(10), Duration::ZERO).abs() < 1e-9);
    }

    #[test]
    fn a_single_window_breaches_when_one_is_enough() {
        let windows = [window(0, 100.0, 1000), window(10, 200.0, 9000)];
        let breach = first_breach(RECONCILIATION, &windows, THRESHOLD, 1).unwrap();
        assert_eq!(breach.at, at(10));
        assert_eq!(
            first_breach(RECONCILIATION, &windows, THRESHOLD, 0),
            Some(breach)
        );
    }

    #[test]
    fn a_p99_at_the_threshold_is_no_breach() {
        let windows = [window(0, 100.0, 5000), window(10, 200.0, 5000)];
        assert_eq!(first_breach(RECONCILIATION, &windows, THRESHOLD, 2), None);
    }

    #[test]
    fn fewer_windows_than_needed_are_no_breach() {
        assert_eq!(first_breach(RECONCILIATION, &[], THRESHOLD, 2), None);
        assert_eq!(
            first_breach(RECONCILIATION, &[window(0, 1.0, 9000)], THRESHOLD, 2),
            None
        );
    }

    #[test]
    fn windows_are_taken_in_time_order() {
        let windows = [
            window(20, 300.0, 9000),
            window(0, 100.0, 9000),
            window(10, 200.0, 1000),
            window(30, 400.0, 9000),
        ];
        assert_eq!(
            first_breach(RECONCILIATION, &windows, THRESHOLD, 2),
            Some(breach(20, 300.0))
        );
    }

    #[test]
    fn a_breach_must_last_twenty_seconds_whatever_the_window() {
        assert_eq!(consecutive_windows(Duration::from_secs(10)), 2);
        assert_eq!(consecutive_windows(Duration::from_secs(5)), 4);
        assert_eq!(consecutive_windows(Duration::from_secs(7)), 3);
        assert_eq!(consecutive_windows(Duration::from_secs(60)), 1);
        assert_eq!(consecutive_windows(Duration::ZERO), 1);
    }

    #[test]
    fn capacity_ends_at_the_first_slo_to_break() {
        let queue = Breach {
            metric: Metric::QueueLatency,
            ..breach(20, 300.0)
        };
        assert_eq!(
            earliest([Some(breach(30, 400.0)), Some(queue), None]),
            Some(queue)
        );
        assert_eq!(earliest([None, None]), None);
    }

    #[test]
    fn a_breach_is_written_with_its_slo_and_load() {
        let json = serde_json::to_value(breach(30, 120.0)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "metric": "reconciliation_latency",
                "at": "1970-01-01T00:00:30Z",
                "websites": 120.0,
                "operations_per_second": 2.0,
                "achieved_operations_per_second": 1.0,
            })
        );
    }

    #[test]
    fn scaling_is_capacity_over_the_capacity_of_one_shard() {
        let scaling = capacity_scaling(&[(3, 5400.0), (1, 2500.0), (5, 7500.0)]);
        assert_eq!(scaling.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 3, 5]);
        let expected = [1.0, 2.16, 3.0];
        for ((_, actual), expected) in scaling.iter().zip(expected) {
            assert!((actual - expected).abs() < 1e-9, "{scaling:?}");
        }
    }

    #[test]
    fn scaling_needs_a_positive_capacity_of_one_shard() {
        assert!(capacity_scaling(&[]).is_empty());
        assert!(capacity_scaling(&[(2, 10.0)]).is_empty());
        assert!(capacity_scaling(&[(1, 0.0), (2, 10.0)]).is_empty());
    }
}
