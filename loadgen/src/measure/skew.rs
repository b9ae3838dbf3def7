//! Assignment skew: how unevenly objects are spread over shards (docs/experiments.md).

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
            max_over_mean,
            coefficient_of_variation,
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
        assert_eq!((skew.shards, skew.total, skew.max), (3, 6, 3));
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
}
