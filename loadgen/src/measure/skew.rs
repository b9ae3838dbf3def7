//! Assignment skew: how unevenly objects are spread over shards, apart for a settled ring and
//! during membership changes (docs/experiments.md#assignment-skew).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::as_f64;

/// How unevenly objects are spread over shards at one moment.
///
/// Without objects (no shards, or all empty) every ratio is 0, never NaN, so a series of skews
/// can be written and plotted as it is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Skew {
    /// Shards counted, including those without objects.
    pub shards: usize,
    /// Objects over all shards.
    pub total: u64,
    /// Mean objects per shard.
    pub mean: f64,
    /// Objects of the fullest shard.
    pub max: u64,
    /// Objects of the emptiest shard.
    pub min: u64,
    /// The fullest shard over the mean: 1 is perfectly even.
    pub max_over_mean: f64,
    /// Population standard deviation over the mean: 0 is perfectly even.
    pub coefficient_of_variation: f64,
}

impl Skew {
    /// The skew of `counts`, one count of objects per shard.
    #[must_use]
    pub fn of(counts: &[u64]) -> Self {
        let total = counts.iter().sum();
        let max = counts.iter().copied().max().unwrap_or(0);
        let min = counts.iter().copied().min().unwrap_or(0);
        let (mean, max_over_mean, coefficient_of_variation) = if total == 0 {
            (0.0, 0.0, 0.0)
        } else {
            // `total > 0` implies at least one shard, so neither division is by zero.
            let n = as_f64(counts.len() as u64);
            let mean = as_f64(total) / n;
            let variance = counts
                .iter()
                .map(|&count| (as_f64(count) - mean).powi(2))
                .sum::<f64>()
                / n;
            (mean, as_f64(max) / mean, variance.sqrt() / mean)
        };
        Self {
            shards: counts.len(),
            total,
            mean,
            max,
            min,
            max_over_mean,
            coefficient_of_variation,
        }
    }
}

/// A time span in which the ring's membership was changing: from a membership change for one
/// lease duration, and from a kill until the killed shard's Lease is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Unsettled {
    /// The start, included.
    pub from: Timestamp,
    /// The end, excluded; `None`: until the end of the run.
    pub to: Option<Timestamp>,
}

impl Unsettled {
    /// The spans of `changes` (their times) and of `kills` (the kill and, if seen, when the
    /// killed shard's Lease was dead), given the shards' `lease_duration`.
    ///
    /// A change is followed by a lease duration in which the sharder still moves objects (it
    /// acts on drains and on Leases that expire within it). A kill is unsettled until its
    /// Lease is dead, since the dead shard stays in the ring and keeps its objects until then;
    /// its leave then starts a span of its own.
    #[must_use]
    pub fn spans(
        changes: impl IntoIterator<Item = Timestamp>,
        kills: impl IntoIterator<Item = (Timestamp, Option<Timestamp>)>,
        lease_duration: Duration,
    ) -> Vec<Self> {
        let after_change = changes.into_iter().map(|at| Self {
            from: at,
            to: at.checked_add(lease_duration).ok(),
        });
        let during_kill = kills.into_iter().map(|(killed_at, lease_dead_at)| Self {
            from: killed_at,
            to: lease_dead_at,
        });
        after_change.chain(during_kill).collect()
    }

    /// Whether `at` falls in the span.
    #[must_use]
    pub fn contains(&self, at: Timestamp) -> bool {
        self.from <= at && self.to.is_none_or(|to| at < to)
    }
}

/// The worst of some skew samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Worst {
    /// The samples counted.
    pub samples: usize,
    /// The largest max/mean among them; `None` without samples.
    pub max_over_mean: Option<f64>,
    /// When it was sampled.
    pub at: Option<Timestamp>,
}

impl Worst {
    fn of<'a>(samples: impl Iterator<Item = &'a (Timestamp, Skew)>) -> Self {
        let mut worst = Self {
            samples: 0,
            max_over_mean: None,
            at: None,
        };
        for (at, skew) in samples {
            worst.samples += 1;
            if worst
                .max_over_mean
                .is_none_or(|max| skew.max_over_mean > max)
            {
                worst.max_over_mean = Some(skew.max_over_mean);
                worst.at = Some(*at);
            }
        }
        worst
    }
}

/// The skew samples of a run split into a settled ring and membership changes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SkewSummary {
    /// Samples taken.
    pub samples: usize,
    /// The steady-state skew: samples outside every [`Unsettled`] span in which every shard
    /// held at least the minimum of objects.
    pub steady: Worst,
    /// The transient skew: samples inside an [`Unsettled`] span with at least the minimum of
    /// objects per shard on average. Not every shard: a shard that just joined is empty by
    /// design, and that is what this figure shows.
    pub transient: Worst,
    /// Samples in neither, for too few objects: with a handful of objects (the first seconds
    /// of a run: 1 object on 2 shards is max/mean 2) the skew is chance, not the ring's.
    pub too_few_objects: usize,
}

impl SkewSummary {
    /// Splits `samples` by `unsettled` and `min_objects` per shard.
    #[must_use]
    pub fn of(samples: &[(Timestamp, Skew)], unsettled: &[Unsettled], min_objects: u64) -> Self {
        let in_change = |at: Timestamp| unsettled.iter().any(|span| span.contains(at));
        let steady = Worst::of(
            samples
                .iter()
                .filter(|(at, skew)| !in_change(*at) && skew.min >= min_objects),
        );
        let transient = Worst::of(samples.iter().filter(|(at, skew)| {
            in_change(*at) && skew.total >= min_objects.saturating_mul(skew.shards as u64)
        }));
        Self {
            samples: samples.len(),
            steady,
            transient,
            too_few_objects: samples.len() - steady.samples - transient.samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-9
    }

    #[test]
    fn skew_is_max_over_mean_and_population_stddev_over_mean() {
        let skew = Skew::of(&[1, 2, 3]);
        assert_eq!((skew.shards, skew.total, skew.max, skew.min), (3, 6, 3, 1));
        assert!(close(skew.mean, 2.0));
        assert!(close(skew.max_over_mean, 1.5));
        // Population variance of 1, 2, 3 is 2/3.
        assert!(close(
            skew.coefficient_of_variation,
            (2.0_f64 / 3.0).sqrt() / 2.0
        ));
    }

    #[test]
    fn an_even_spread_has_no_skew() {
        let skew = Skew::of(&[5, 5, 5, 5]);
        assert!(close(skew.max_over_mean, 1.0));
        assert!(close(skew.coefficient_of_variation, 0.0));
    }

    #[test]
    fn an_empty_shard_counts_towards_the_mean() {
        let skew = Skew::of(&[4, 0]);
        assert!(close(skew.mean, 2.0));
        assert!(close(skew.max_over_mean, 2.0));
        assert!(close(skew.coefficient_of_variation, 1.0));
    }

    #[test]
    fn a_single_shard_has_no_skew() {
        let skew = Skew::of(&[7]);
        assert_eq!((skew.shards, skew.total, skew.max), (1, 7, 7));
        assert!(close(skew.max_over_mean, 1.0));
        assert!(close(skew.coefficient_of_variation, 0.0));
    }

    #[test]
    fn no_shards_give_zeros_not_nan() {
        assert_eq!(
            Skew::of(&[]),
            Skew {
                shards: 0,
                total: 0,
                mean: 0.0,
                max: 0,
                min: 0,
                max_over_mean: 0.0,
                coefficient_of_variation: 0.0
            }
        );
    }

    #[test]
    fn shards_without_objects_give_zeros_not_nan() {
        let skew = Skew::of(&[0, 0, 0]);
        assert_eq!(skew.shards, 3);
        assert_eq!(skew.total, 0);
        assert!(skew.max_over_mean == 0.0 && skew.coefficient_of_variation == 0.0);
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn samples(counts: &[(i64, &[u64])]) -> Vec<(Timestamp, Skew)> {
        counts
            .iter()
            .map(|(seconds, counts)| (at(*seconds), Skew::of(counts)))
            .collect()
    }

    #[test]
    fn a_near_empty_shard_leaves_the_sample_out_of_the_steady_skew() {
        // [75, 60, 3]: a mean of 46 objects per shard, but one shard has 3. The old filter
        // (a mean of at least 20) took it, with max/mean 1.63.
        let summary = SkewSummary::of(
            &samples(&[(10, &[75, 60, 3]), (20, &[44, 40, 36])]),
            &[],
            20,
        );
        assert_eq!(summary.steady.samples, 1);
        assert!(close(summary.steady.max_over_mean.unwrap(), 1.1));
        assert_eq!(summary.steady.at, Some(at(20)));
        assert_eq!((summary.samples, summary.too_few_objects), (2, 1));
    }

    #[test]
    fn samples_within_a_lease_duration_of_a_change_are_transient() {
        let spans = Unsettled::spans([at(100)], [], Duration::from_secs(15));
        let summary = SkewSummary::of(
            &samples(&[
                (99, &[30, 30]),
                (100, &[60, 0]),
                (114, &[40, 20]),
                (115, &[25, 35]),
            ]),
            &spans,
            20,
        );
        assert_eq!(summary.steady.samples, 2);
        assert!(close(summary.steady.max_over_mean.unwrap(), 35.0 / 30.0));
        // The just-joined empty shard counts in the transient skew.
        assert_eq!(summary.transient.samples, 2);
        assert!(close(summary.transient.max_over_mean.unwrap(), 2.0));
        assert_eq!(summary.transient.at, Some(at(100)));
        assert_eq!(summary.too_few_objects, 0);
    }

    #[test]
    fn a_kill_is_unsettled_until_its_lease_is_dead_or_the_end() {
        let spans = Unsettled::spans(
            [],
            [(at(50), Some(at(80))), (at(200), None)],
            Duration::from_secs(15),
        );
        assert!(!spans.iter().any(|s| s.contains(at(49))));
        assert!(spans.iter().any(|s| s.contains(at(79))));
        assert!(!spans.iter().any(|s| s.contains(at(80))));
        assert!(spans.iter().any(|s| s.contains(at(10_000))));
    }

    #[test]
    fn without_samples_nothing_is_worst() {
        let summary = SkewSummary::of(&[], &[], 20);
        assert_eq!(summary.steady.max_over_mean, None);
        assert_eq!(summary.transient.samples, 0);
    }
}
