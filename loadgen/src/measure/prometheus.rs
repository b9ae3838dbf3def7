//! Histograms and counters read from the Prometheus text exposition of a `/metrics` scrape.
//!
//! This is how the queue latency (`workqueue_queue_duration_seconds{name="<controller.queue>"}`,
//! docs/experiments.md) is read over a window: scrape every shard before and after, take each
//! shard's [`delta`], [`sum`] them and ask [`histogram_quantile`], as PromQL's
//! `histogram_quantile(0.99, sum by (le) (increase(..._bucket[window])))` would.
//!
//! The exposition is parsed by [`stack::exposition`], which reads the Prometheus text format
//! and OpenMetrics.

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use stack::exposition::{Sample, samples};

use super::as_f64;

/// One cumulative bucket of a histogram: the observations less than or equal to `le`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// The upper bound; the last bucket's is `+Inf`.
    pub le: f64,
    /// Observations up to and including `le`.
    pub cumulative: u64,
}

/// The buckets of histogram `name` (its `<name>_bucket` series) whose labels include all of
/// `label_filter`, summed over the matching series by `le` and sorted by `le`; `None` when no
/// series matches.
#[must_use]
pub fn histogram_buckets(
    text: &str,
    name: &str,
    label_filter: &[(&str, &str)],
) -> Option<Vec<Bucket>> {
    histogram_buckets_where(text, name, |sample| sample.matches(label_filter))
}

/// The buckets of histogram `name` summed by `le` over the series `keep` accepts, sorted by
/// `le`; `None` when no series is kept. For selections an equality filter cannot make, such
/// as every verb but `WATCH`.
#[must_use]
pub fn histogram_buckets_where(
    text: &str,
    name: &str,
    keep: impl Fn(&Sample<'_>) -> bool,
) -> Option<Vec<Bucket>> {
    let series = format!("{name}_bucket");
    let buckets: Vec<Bucket> = samples(text)
        .filter(|sample| sample.name == series && keep(sample))
        .filter_map(|sample| {
            Some(Bucket {
                // Go's float syntax, `+Inf` included.
                le: sample.label("le")?.parse().ok()?,
                cumulative: as_count(sample.value)?,
            })
        })
        .collect();
    (!buckets.is_empty()).then(|| coalesce(buckets))
}

/// The sum of counter `name` over the series `keep` accepts; `None` when no series is kept
/// or a kept value is not a count.
#[must_use]
pub fn counter_sum(text: &str, name: &str, keep: impl Fn(&Sample<'_>) -> bool) -> Option<u64> {
    samples(text)
        .filter(|sample| sample.name == name && keep(sample))
        .map(|sample| as_count(sample.value))
        .reduce(|sum, value| Some(sum?.saturating_add(value?)))?
}

/// The increase of a counter between two scrapes; everything in `after` when it went down,
/// as PromQL's `increase` treats a reset (see [`delta`]).
#[must_use]
pub fn counter_delta(before: u64, after: u64) -> u64 {
    after.checked_sub(before).unwrap_or(after)
}

/// The observations between two scrapes of one histogram.
///
/// If any count went down, the process restarted between them, and everything in `after` is
/// new (as PromQL's `increase` treats a counter reset). A bucket missing `before` counts from 0.
///
/// # Caveats
///
/// A restart after which the counts have already climbed back above those of `before` cannot
/// be told from two scrapes; it reads as fewer observations than there were.
#[must_use]
pub fn delta(before: &[Bucket], after: &[Bucket]) -> Vec<Bucket> {
    let before = coalesce(before.to_vec());
    let after = coalesce(after.to_vec());
    let earlier = |le: f64| {
        before
            .iter()
            .find(|b| b.le.total_cmp(&le).is_eq())
            .map_or(0, |b| b.cumulative)
    };
    let reset = after.iter().any(|b| b.cumulative < earlier(b.le));
    if reset {
        return after;
    }
    after
        .iter()
        .map(|b| Bucket {
            le: b.le,
            cumulative: b.cumulative - earlier(b.le),
        })
        .collect()
}

/// The buckets of several histograms added by `le`, as PromQL's `sum by (le)`.
#[must_use]
pub fn sum(histograms: &[Vec<Bucket>]) -> Vec<Bucket> {
    coalesce(histograms.iter().flatten().copied().collect())
}

/// The widest bucket, upper over lower bound, whose interpolated quantile is taken as a point:
/// any value interpolated inside it is within 25 % of any true value in it
/// (docs/experiments.md#queue-latency).
pub const RESOLUTION: f64 = 1.25;

/// The relative rounding of bucket bounds computed as powers (`1e-3 × 1.25ⁱ`) and written as
/// text, so a bucket of exactly [`RESOLUTION`] is not read as wider.
const BOUND_ROUNDING: f64 = 1e-9;

/// A quantile of a histogram: PromQL's interpolated value and the bounds of the bucket it fell
/// into, which are all the histogram knows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantile {
    /// What PromQL's `histogram_quantile` gives.
    pub value: f64,
    /// The bucket's lower bound (0 for the lowest bucket).
    pub lower: f64,
    /// The bucket's upper bound; `+Inf` for the `+Inf` bucket.
    pub upper: f64,
}

impl Quantile {
    /// A quantile known exactly.
    #[must_use]
    pub fn exact(value: f64) -> Self {
        Self {
            value,
            lower: value,
            upper: value,
        }
    }

    /// Whether the bucket is narrow enough ([`RESOLUTION`]) for the value to stand as a point.
    #[must_use]
    pub fn is_resolved(&self) -> bool {
        self.lower.total_cmp(&self.upper).is_eq()
            || (self.lower > 0.0
                && self.upper.is_finite()
                && self.upper / self.lower <= RESOLUTION * (1.0 + BOUND_ROUNDING))
    }
}

/// A quantile of the observations between two scrapes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileWindow {
    /// The earlier scrape.
    pub start: Timestamp,
    /// The later scrape.
    pub end: Timestamp,
    /// The quantile of the observations in between.
    pub quantile: Quantile,
    /// How many observations there were.
    pub observations: u64,
}

/// The observations of a histogram: its `+Inf` bucket's count (0 without one).
#[must_use]
pub fn observations(buckets: &[Bucket]) -> u64 {
    buckets
        .iter()
        .find(|b| b.le == f64::INFINITY)
        .map_or(0, |b| b.cumulative)
}

/// The `q`-quantile of `buckets` with PromQL's `histogram_quantile` semantics (classic
/// histograms): linear interpolation within the bucket the quantile falls into, from 0 in the
/// lowest bucket if its bound is positive; the second-highest bound if it falls into the
/// `+Inf` bucket. The result carries that bucket's bounds.
///
/// `None` where PromQL gives NaN: `q` is NaN, there is no `+Inf` bucket, fewer than two
/// buckets, or no observations. `q < 0` gives `-Inf` and `q > 1` gives `+Inf`, as there.
#[must_use]
pub fn histogram_quantile(q: f64, buckets: &[Bucket]) -> Option<Quantile> {
    if q.is_nan() {
        return None;
    }
    if q < 0.0 {
        return Some(Quantile::exact(f64::NEG_INFINITY));
    }
    if q > 1.0 {
        return Some(Quantile::exact(f64::INFINITY));
    }
    let mut buckets = coalesce(buckets.to_vec());
    if buckets.last().is_none_or(|b| b.le != f64::INFINITY) || buckets.len() < 2 {
        return None;
    }
    // Counts scraped from several processes at slightly different times can dip; PromQL
    // forces them monotonic the same way.
    let mut highest = 0;
    for bucket in &mut buckets {
        highest = highest.max(bucket.cumulative);
        bucket.cumulative = highest;
    }
    let observations = as_f64(highest);
    if highest == 0 {
        return None;
    }
    let rank = q * observations;
    let last = buckets.len() - 1;
    let b = buckets[..last]
        .iter()
        .position(|bucket| as_f64(bucket.cumulative) >= rank)
        .unwrap_or(last);
    if b == last {
        return Some(Quantile {
            value: buckets[last - 1].le,
            lower: buckets[last - 1].le,
            upper: f64::INFINITY,
        });
    }
    if b == 0 && buckets[0].le <= 0.0 {
        return Some(Quantile {
            value: buckets[0].le,
            lower: f64::NEG_INFINITY,
            upper: buckets[0].le,
        });
    }
    let (start, below) = if b == 0 {
        (0.0, 0)
    } else {
        (buckets[b - 1].le, buckets[b - 1].cumulative)
    };
    let end = buckets[b].le;
    let count = as_f64(buckets[b].cumulative - below);
    let value = start + (end - start) * ((rank - as_f64(below)) / count);
    // Only an empty lowest bucket at q = 0 divides 0 by 0; PromQL gives NaN there too.
    (!value.is_nan()).then_some(Quantile {
        value,
        lower: start,
        upper: end,
    })
}

/// Sorts buckets by `le` and adds those with the same `le` (PromQL's `coalesceBuckets`).
fn coalesce(mut buckets: Vec<Bucket>) -> Vec<Bucket> {
    buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
    let mut merged: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for bucket in buckets {
        match merged.last_mut() {
            Some(last) if last.le.total_cmp(&bucket.le).is_eq() => {
                last.cumulative = last.cumulative.saturating_add(bucket.cumulative);
            }
            _ => merged.push(bucket),
        }
    }
    merged
}

/// A count written as a float (`3`, `3.0`, `1e+06`); `None` if it is not a count.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "checked finite and non-negative; counts stay far below 2^53"
)]
fn as_count(value: f64) -> Option<u64> {
    (value.is_finite() && value >= 0.0).then(|| value.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP workqueue_queue_duration_seconds How long in seconds an item stays in workqueue before being requested
# TYPE workqueue_queue_duration_seconds histogram
workqueue_queue_duration_seconds_bucket{name="website",le="0.001"} 5
workqueue_queue_duration_seconds_bucket{name="website",le="0.01"} 8
workqueue_queue_duration_seconds_bucket{le="0.1",name="website"} 10
workqueue_queue_duration_seconds_bucket{name="website",le="+Inf"} 12
workqueue_queue_duration_seconds_sum{name="website"} 0.7
workqueue_queue_duration_seconds_count{name="website"} 12
workqueue_queue_duration_seconds_bucket{name="theme",le="0.001"} 1
workqueue_queue_duration_seconds_bucket{name="theme",le="0.01"} 1
workqueue_queue_duration_seconds_bucket{name="theme",le="0.1"} 1
workqueue_queue_duration_seconds_bucket{name="theme",le="+Inf"} 1
# TYPE workqueue_adds_total counter
workqueue_adds_total{name="website"} 12
workqueue_adds_total{name="theme"} 1
"#;

    fn buckets(pairs: &[(f64, u64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(le, cumulative)| Bucket { le, cumulative })
            .collect()
    }

    const INF: f64 = f64::INFINITY;

    fn website() -> [(&'static str, &'static str); 1] {
        [("name", "website")]
    }

    #[test]
    fn a_histograms_buckets_are_read_whatever_the_label_order() {
        assert_eq!(
            histogram_buckets(SCRAPE, "workqueue_queue_duration_seconds", &website()),
            Some(buckets(&[(0.001, 5), (0.01, 8), (0.1, 10), (INF, 12)]))
        );
    }

    #[test]
    fn matching_series_are_summed_by_le() {
        assert_eq!(
            histogram_buckets(SCRAPE, "workqueue_queue_duration_seconds", &[]),
            Some(buckets(&[(0.001, 6), (0.01, 9), (0.1, 11), (INF, 13)]))
        );
    }

    #[test]
    fn a_histogram_without_matching_series_is_none() {
        let name = "workqueue_queue_duration_seconds";
        assert_eq!(histogram_buckets(SCRAPE, name, &[("name", "nope")]), None);
        assert_eq!(histogram_buckets(SCRAPE, "workqueue_depth", &[]), None);
        assert_eq!(histogram_buckets("", name, &[]), None);
        // The _sum and _count series are not buckets.
        assert_eq!(
            histogram_buckets(SCRAPE, "workqueue_queue_duration", &[]),
            None
        );
    }

    #[test]
    fn openmetrics_timestamps_exemplars_and_eof_are_read_past() {
        let text = r#"# TYPE latency_seconds histogram
latency_seconds_bucket{le="1.0"} 2 # {trace_id="abc"} 0.5 1700000000.0
latency_seconds_bucket{le="+Inf"} 3 1700000000
events_total 1e+06 1700000000
# EOF
"#;
        assert_eq!(
            histogram_buckets(text, "latency_seconds", &[]),
            Some(buckets(&[(1.0, 2), (INF, 3)]))
        );
    }

    #[test]
    fn a_histogram_can_leave_series_out_by_any_rule() {
        let other_than_theme = |sample: &Sample<'_>| sample.label("name") != Some("theme");
        assert_eq!(
            histogram_buckets_where(SCRAPE, "workqueue_queue_duration_seconds", other_than_theme),
            histogram_buckets(SCRAPE, "workqueue_queue_duration_seconds", &website())
        );
        assert_eq!(
            histogram_buckets_where(SCRAPE, "workqueue_queue_duration_seconds", |_| false),
            None
        );
    }

    #[test]
    fn a_counter_is_summed_over_the_kept_series() {
        let name = "workqueue_adds_total";
        assert_eq!(counter_sum(SCRAPE, name, |_| true), Some(13));
        assert_eq!(
            counter_sum(SCRAPE, name, |s| s.matches(&website())),
            Some(12)
        );
        assert_eq!(counter_sum(SCRAPE, name, |_| false), None);
        assert_eq!(counter_sum(SCRAPE, "nope_total", |_| true), None);
        assert_eq!(counter_sum("x_total -1\n", "x_total", |_| true), None);
    }

    #[test]
    fn a_counters_delta_after_a_reset_is_its_later_value() {
        assert_eq!(counter_delta(5, 9), 4);
        assert_eq!(counter_delta(9, 9), 0);
        assert_eq!(counter_delta(9, 2), 2);
    }

    #[test]
    fn counts_must_be_finite_and_not_negative() {
        assert_eq!(as_count(3.0), Some(3));
        assert_eq!(as_count(1e6), Some(1_000_000));
        assert_eq!(as_count(-1.0), None);
        assert_eq!(as_count(f64::NAN), None);
        assert_eq!(as_count(f64::INFINITY), None);
    }

    #[test]
    fn a_delta_is_the_observations_between_two_scrapes() {
        let before = buckets(&[(0.1, 5), (1.0, 8), (INF, 9)]);
        let after = buckets(&[(0.1, 7), (1.0, 12), (INF, 15)]);
        assert_eq!(
            delta(&before, &after),
            buckets(&[(0.1, 2), (1.0, 4), (INF, 6)])
        );
    }

    #[test]
    fn a_delta_after_a_restart_is_everything_after_it() {
        let before = buckets(&[(0.1, 5), (INF, 9)]);
        let after = buckets(&[(0.1, 1), (INF, 2)]);
        assert_eq!(delta(&before, &after), after);
    }

    #[test]
    fn a_delta_from_nothing_is_the_later_scrape() {
        let after = buckets(&[(0.1, 1), (INF, 2)]);
        assert_eq!(delta(&[], &after), after);
        assert_eq!(delta(&after, &after), buckets(&[(0.1, 0), (INF, 0)]));
        assert!(delta(&after, &[]).is_empty());
    }

    #[test]
    fn histograms_of_several_shards_add_by_le() {
        let one = buckets(&[(0.1, 1), (INF, 2)]);
        let two = buckets(&[(INF, 5), (0.1, 3), (1.0, 4)]);
        assert_eq!(sum(&[one, two]), buckets(&[(0.1, 4), (1.0, 4), (INF, 7)]));
        assert!(sum(&[]).is_empty());
    }

    /// `testhistogram_bucket` of Prometheus' `promql/testdata/histograms.test` at 50m.
    fn positive() -> Vec<Bucket> {
        buckets(&[(0.1, 50), (0.2, 70), (1.0, 110), (INF, 120)])
    }

    fn negative() -> Vec<Bucket> {
        buckets(&[(-0.2, 10), (-0.1, 20), (0.3, 20), (INF, 30)])
    }

    fn assert_quantile(q: f64, buckets: &[Bucket], expected: f64) {
        let actual = histogram_quantile(q, buckets).unwrap().value;
        assert!(
            (actual - expected).abs() < 1e-12,
            "q {q}: {actual} != {expected}"
        );
    }

    #[test]
    fn quantiles_match_promqls_test_results() {
        for (q, positive_expected, negative_expected) in [
            (0.0, 0.0, -0.2),
            (0.2, 0.048, -0.2),
            (0.5, 0.15, -0.15),
            (0.8, 0.72, 0.3),
            (1.0, 1.0, 0.3),
        ] {
            assert_quantile(q, &positive(), positive_expected);
            assert_quantile(q, &negative(), negative_expected);
        }
    }

    #[test]
    fn quantiles_out_of_range_are_infinite_and_nan_is_none() {
        assert_eq!(
            histogram_quantile(-0.1, &positive()),
            Some(Quantile::exact(f64::NEG_INFINITY))
        );
        assert_eq!(
            histogram_quantile(1.01, &positive()),
            Some(Quantile::exact(f64::INFINITY))
        );
        assert_eq!(histogram_quantile(f64::NAN, &positive()), None);
    }

    #[test]
    fn a_quantile_needs_an_inf_bucket_two_buckets_and_observations() {
        assert_eq!(histogram_quantile(0.5, &[]), None);
        assert_eq!(
            histogram_quantile(0.5, &buckets(&[(0.1, 5), (1.0, 8)])),
            None
        );
        assert_eq!(histogram_quantile(0.5, &buckets(&[(INF, 8)])), None);
        assert_eq!(
            histogram_quantile(0.5, &buckets(&[(0.1, 0), (INF, 0)])),
            None
        );
    }

    #[test]
    fn a_quantile_at_zero_of_an_empty_lowest_bucket_is_none() {
        assert_eq!(
            histogram_quantile(0.0, &buckets(&[(0.1, 0), (1.0, 4), (INF, 4)])),
            None
        );
    }

    #[test]
    fn buckets_are_sorted_coalesced_and_forced_monotonic() {
        let unsorted = buckets(&[(INF, 120), (1.0, 110), (0.1, 50), (0.2, 70)]);
        assert_quantile(0.5, &unsorted, 0.15);
        let duplicated = buckets(&[(0.1, 25), (0.1, 25), (0.2, 70), (1.0, 110), (INF, 120)]);
        assert_quantile(0.5, &duplicated, 0.15);
        // 0.2's count dips below 0.1's: it is raised to 50, so the median lies in (0.2, 1].
        let dipping = buckets(&[(0.1, 50), (0.2, 40), (1.0, 110), (INF, 120)]);
        assert_quantile(0.5, &dipping, 0.2 + 0.8 * (10.0 / 60.0));
    }

    #[test]
    fn the_queue_latency_of_several_shards_over_a_window() {
        let name = "workqueue_queue_duration_seconds";
        let scrape = |counts: [u64; 3]| {
            format!(
                "{name}_bucket{{name=\"website\",le=\"0.5\"}} {}\n\
                 {name}_bucket{{name=\"website\",le=\"1\"}} {}\n\
                 {name}_bucket{{name=\"website\",le=\"+Inf\"}} {}\n",
                counts[0], counts[1], counts[2]
            )
        };
        let read = |text: &str| histogram_buckets(text, name, &website()).unwrap();
        let shard_0 = delta(&read(&scrape([10, 10, 10])), &read(&scrape([60, 90, 100])));
        let shard_1 = delta(&read(&scrape([0, 0, 0])), &read(&scrape([50, 100, 100])));
        let window = sum(&[shard_0, shard_1]);
        assert_eq!(window, buckets(&[(0.5, 100), (1.0, 180), (INF, 190)]));
        assert_quantile(0.5, &window, 0.475);
        assert_quantile(0.99, &window, 1.0);
    }

    #[test]
    fn a_quantile_carries_the_bounds_of_its_bucket() {
        // controller-runtime's decade buckets: 99 of 100 observations at most 1 s, rank 99
        // in (0.1, 1]. PromQL gives 0.9; the truth is anywhere in 0.1–1 s.
        let decades = buckets(&[(0.01, 0), (0.1, 90), (1.0, 100), (INF, 100)]);
        let p99 = histogram_quantile(0.99, &decades).unwrap();
        assert!((p99.value - 0.91).abs() < 1e-12, "{p99:?}");
        assert_eq!((p99.lower, p99.upper), (0.1, 1.0));
        assert!(!p99.is_resolved());
        // A bucket of a factor 1.25 resolves it.
        let fine = buckets(&[(0.8, 90), (1.0, 100), (INF, 100)]);
        let p99 = histogram_quantile(0.99, &fine).unwrap();
        assert_eq!((p99.lower, p99.upper), (0.8, 1.0));
        assert!(p99.is_resolved());
        // The +Inf bucket is only a lower bound; the lowest bucket starts at 0.
        let over = histogram_quantile(0.99, &buckets(&[(1.0, 1), (INF, 100)])).unwrap();
        assert_eq!((over.value, over.lower, over.upper), (1.0, 1.0, INF));
        assert!(!over.is_resolved());
        let under = histogram_quantile(0.5, &buckets(&[(0.001, 10), (INF, 10)])).unwrap();
        assert_eq!((under.lower, under.upper), (0.0, 0.001));
        assert!(!under.is_resolved());
        assert!(Quantile::exact(3.0).is_resolved());
        // A bound computed as a power may be off by a rounding: still a bucket of 1.25.
        let rounded = Quantile {
            value: 0.9,
            lower: 0.8,
            upper: 1.000_000_000_000_000_2,
        };
        assert!(rounded.upper / rounded.lower > RESOLUTION);
        assert!(rounded.is_resolved());
    }
}
