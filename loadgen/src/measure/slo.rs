//! SLO verdicts, the first breach under a ramp of load, and capacity scaling (docs/experiments.md).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::ratio;

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
    /// The verdicts on the observed p99s; the queue latency has none when it was not scraped.
    #[must_use]
    pub fn verdicts(
        &self,
        reconciliation_p99: Duration,
        queue_p99: Option<Duration>,
    ) -> Vec<Verdict> {
        let reconciliation = Verdict::new(
            Metric::ReconciliationLatency,
            self.reconciliation_p99,
            reconciliation_p99,
        );
        let queue =
            queue_p99.map(|observed| Verdict::new(Metric::QueueLatency, self.queue_p99, observed));
        std::iter::once(reconciliation).chain(queue).collect()
    }
}

/// The latency an SLO is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// From a create or spec change to the watch seeing it Ready for its generation.
    ReconciliationLatency,
    /// The operator's `workqueue_queue_duration_seconds{name="website"}`.
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
}

/// Whether an observed p99 met its objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The latency.
    pub metric: Metric,
    /// The highest acceptable p99.
    pub threshold: Duration,
    /// The observed p99.
    pub observed: Duration,
    /// `observed <= threshold`.
    pub met: bool,
}

impl Verdict {
    /// The verdict on `observed` against `threshold`.
    #[must_use]
    pub fn new(metric: Metric, threshold: Duration, observed: Duration) -> Self {
        Self {
            metric,
            threshold,
            observed,
            met: observed <= threshold,
        }
    }
}

/// The load offered at some time of a run: how many objects there are and how fast they churn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Load {
    /// The Websites that exist.
    pub websites: f64,
    /// Creates, deletes and mutations per second.
    pub operations_per_second: f64,
}

/// One window of a run under a ramp of load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadWindow {
    /// The start of the window.
    pub at: Timestamp,
    /// The load then.
    pub load: Load,
    /// The p99 latency in the window.
    pub p99: Duration,
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
/// `windows` are taken in time order, whatever their order in the slice; a window without
/// latencies should be left out rather than given a p99 of zero.
#[must_use]
pub fn first_breach(
    metric: Metric,
    windows: &[LoadWindow],
    threshold: Duration,
    consecutive: usize,
) -> Option<Breach> {
    let mut ordered: Vec<&LoadWindow> = windows.iter().collect();
    ordered.sort_by_key(|w| w.at);
    ordered
        .windows(consecutive.max(1))
        .find(|run| run.iter().all(|w| w.p99 > threshold))
        .map(|run| Breach {
            metric,
            at: run[0].at,
            load: run[0].load,
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
            load: load(websites),
            p99: Duration::from_millis(p99_ms),
        }
    }

    fn breach(seconds: i64, websites: f64) -> Breach {
        Breach {
            metric: Metric::ReconciliationLatency,
            at: at(seconds),
            load: load(websites),
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
        assert!(Verdict::new(Metric::QueueLatency, THRESHOLD, THRESHOLD).met);
        assert!(
            !Verdict::new(
                Metric::QueueLatency,
                THRESHOLD,
                THRESHOLD + Duration::from_nanos(1)
            )
            .met
        );
    }

    #[test]
    fn verdicts_cover_the_queue_only_when_it_was_observed() {
        let slo = Slo::default();
        let verdicts = slo.verdicts(Duration::from_secs(6), Some(Duration::from_millis(200)));
        assert_eq!(
            verdicts,
            [
                Verdict {
                    metric: Metric::ReconciliationLatency,
                    threshold: Duration::from_secs(5),
                    observed: Duration::from_secs(6),
                    met: false,
                },
                Verdict {
                    metric: Metric::QueueLatency,
                    threshold: Duration::from_secs(1),
                    observed: Duration::from_millis(200),
                    met: true,
                },
            ]
        );
        let verdicts = slo.verdicts(Duration::from_secs(1), None);
        assert_eq!(verdicts.len(), 1);
        assert!(verdicts[0].met);
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
