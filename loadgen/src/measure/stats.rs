//! How sure a figure is over repetitions: the median with an interval, and the ratio of two
//! figures with its interval (docs/experiments.md#repetitions-and-intervals).
//!
//! A figure repeated on fresh control planes varies by tens of percent on a shared machine, so
//! one value says little. Over its repetitions a figure becomes an [`Interval`]: the median and
//! a range that says how far the median may be off; two figures become a [`RatioInterval`].
//!
//! - With 5 or more repetitions the range is a 95 % percentile bootstrap of the median:
//!   [`RESAMPLES`] resamples drawn with a fixed seed, so the same samples always give the same
//!   interval and a report regenerated from a run reads the same.
//! - With 2 to 4 repetitions a 95 % interval of the median cannot be estimated (a bootstrap of
//!   so few values only reshuffles them), so the range is the minimum to the maximum instead.
//! - With 1 repetition there is no range.
//!
//! Non-finite samples (NaN, ±∞) are left out: they are not measurements, and `n` counts only
//! the samples used.

use rand::{RngExt as _, SeedableRng as _, rngs::StdRng};
use serde::Serialize;

/// The resamples of a bootstrap: enough that the 2.5 % point, estimated from its 250 lowest
/// resample medians, varies little from one seed to the next.
pub const RESAMPLES: usize = 10_000;

/// The bootstrap's seed, fixed so that reruns of a report give the same intervals.
const SEED: u64 = 0x5eed_0013;

/// The repetitions from which the interval is a bootstrap rather than min–max.
pub const BOOTSTRAP_FROM: usize = 5;

/// The coverage of a bootstrap interval.
const CONFIDENCE: f64 = 0.95;

/// How the range of an [`Interval`] or a [`RatioInterval`] was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalMethod {
    /// One sample (on either side of a ratio): no range, `low == high`.
    Single,
    /// Fewer than [`BOOTSTRAP_FROM`] samples: a 95 % interval of the median cannot be
    /// estimated, so the range is the smallest to the largest sample (for a ratio, the
    /// widest ratio the two ranges allow).
    MinMax,
    /// A 95 % percentile bootstrap of the median (of both sides' medians, for a ratio).
    Bootstrap,
}

impl IntervalMethod {
    /// A short name for reports: `min–max`, `95 % bootstrap`; empty for a single sample.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Single => "",
            Self::MinMax => "min–max",
            Self::Bootstrap => "95 % bootstrap",
        }
    }
}

/// A figure over its repetitions: the median and the range it may be off by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// The median of the samples (the mean of the two middle ones for an even count).
    pub median: f64,
    /// The lower end of the range.
    pub low: f64,
    /// The upper end of the range.
    pub high: f64,
    /// The samples used.
    pub n: usize,
    /// How `low` and `high` were obtained.
    pub method: IntervalMethod,
}

/// The interval of a figure over `samples` (see the module documentation); `None` when no
/// sample is finite. The order of the samples does not matter.
#[must_use]
pub fn interval(samples: &[f64]) -> Option<Interval> {
    let sorted = finite_sorted(samples);
    let (&min, &max) = (sorted.first()?, sorted.last()?);
    let n = sorted.len();
    let median = median_of_sorted(&sorted);
    let (low, high, method) = match n {
        1 => (median, median, IntervalMethod::Single),
        n if n < BOOTSTRAP_FROM => (min, max, IntervalMethod::MinMax),
        _ => {
            let (low, high) = bootstrap(|rng, scratch| resampled_median(&sorted, rng, scratch));
            (low, high, IntervalMethod::Bootstrap)
        }
    };
    Some(Interval {
        median,
        low,
        high,
        n,
        method,
    })
}

impl Interval {
    /// `12.3 [10.1, 14.0] (n=3, min–max)`, or `12.3 (n=1)` for one sample, each number
    /// written by `number` (which gives it its unit and resolution).
    #[must_use]
    pub fn render(&self, number: impl Fn(f64) -> String) -> String {
        match self.method {
            IntervalMethod::Single => format!("{} (n=1)", number(self.median)),
            method => format!(
                "{} [{}, {}] (n={}, {})",
                number(self.median),
                number(self.low),
                number(self.high),
                self.n,
                method.label()
            ),
        }
    }
}

/// The ratio of a candidate's figure to a baseline's, over the repetitions of each.
///
/// `ratio` is the candidate's median over the baseline's. `[low, high]` is where the ratio of
/// the two true medians lies, as far as the repetitions tell:
/// - both sides with [`BOOTSTRAP_FROM`] or more samples: a 95 % percentile bootstrap, each side
///   resampled on its own (the repetitions of the two are independent runs);
/// - otherwise, both with 2 or more: `[min(candidate) / max(baseline), max(candidate) /
///   min(baseline)]`, every ratio the two min–max ranges allow. Its coverage is not 95 %: when
///   nothing changed, two ranges of 3 repetitions each still fail to overlap 1 time in 10
///   (`2 / C(6, 3)`), of 2 each 1 time in 3, of 4 each 1 time in 35;
/// - one side with a single sample: no range (`low == high == ratio`) and never significant.
///
/// An upper end that no finite number bounds (a baseline sample of zero) is `+∞`, written as
/// `null` in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioInterval {
    /// The candidate's median over the baseline's.
    pub ratio: f64,
    /// The lower end of the range.
    pub low: f64,
    /// The upper end of the range.
    pub high: f64,
    /// How `low` and `high` were obtained; `Single` when either side has one sample.
    pub method: IntervalMethod,
    /// The baseline's samples.
    pub baseline_n: usize,
    /// The candidate's samples.
    pub candidate_n: usize,
    /// Whether the range excludes 1: the repetitions tell the two figures apart.
    pub significant: bool,
}

/// The ratio of the `candidate`'s figure to the `baseline`'s with its interval (see
/// [`RatioInterval`]); `None` when either side has no finite sample or the baseline's median
/// is not positive (no ratio to it has a meaning).
#[must_use]
pub fn ratio(baseline: &[f64], candidate: &[f64]) -> Option<RatioInterval> {
    let (baseline, candidate) = (finite_sorted(baseline), finite_sorted(candidate));
    if baseline.is_empty() || candidate.is_empty() {
        return None;
    }
    let (baseline_median, candidate_median) =
        (median_of_sorted(&baseline), median_of_sorted(&candidate));
    if baseline_median <= 0.0 {
        return None;
    }
    let ratio = candidate_median / baseline_median;
    let (low, high, method) = match baseline.len().min(candidate.len()) {
        1 => (ratio, ratio, IntervalMethod::Single),
        n if n < BOOTSTRAP_FROM => (
            quotient(candidate[0], baseline[baseline.len() - 1]),
            quotient(candidate[candidate.len() - 1], baseline[0]),
            IntervalMethod::MinMax,
        ),
        _ => {
            let mut candidate_scratch = Vec::with_capacity(candidate.len());
            let (low, high) = bootstrap(|rng, scratch| {
                let b = resampled_median(&baseline, rng, scratch);
                let c = resampled_median(&candidate, rng, &mut candidate_scratch);
                quotient(c, b)
            });
            (low, high, IntervalMethod::Bootstrap)
        }
    };
    Some(RatioInterval {
        ratio,
        low,
        high,
        method,
        baseline_n: baseline.len(),
        candidate_n: candidate.len(),
        significant: method != IntervalMethod::Single && (low > 1.0 || high < 1.0),
    })
}

impl RatioInterval {
    /// `1.35× [1.20, 1.52] (min–max)`, or `1.35×` without a range, to two decimals.
    #[must_use]
    pub fn render(&self) -> String {
        let bound = |value: f64| {
            if value.is_finite() {
                format!("{value:.2}")
            } else {
                "∞".to_owned()
            }
        };
        match self.method {
            IntervalMethod::Single => format!("{:.2}×", self.ratio),
            method => format!(
                "{:.2}× [{}, {}] ({})",
                self.ratio,
                bound(self.low),
                bound(self.high),
                method.label()
            ),
        }
    }
}

/// `numerator / denominator` for non-negative figures, `+∞` for a denominator of zero or
/// less: the ratio has no upper bound then. `0 / 0` is `+∞` too, so a resample never yields
/// NaN and the high end stays unbounded rather than arbitrary.
fn quotient(numerator: f64, denominator: f64) -> f64 {
    if denominator > 0.0 {
        numerator / denominator
    } else {
        f64::INFINITY
    }
}

/// The finite samples, ascending: bootstrapping sorted samples makes the interval depend on
/// the values only, not on the order they were read in.
fn finite_sorted(samples: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    sorted
}

/// The median of non-empty ascending samples.
fn median_of_sorted(sorted: &[f64]) -> f64 {
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        f64::midpoint(sorted[middle - 1], sorted[middle])
    }
}

/// The median of `sorted.len()` draws with replacement from `sorted`, drawn into `scratch`.
fn resampled_median(sorted: &[f64], rng: &mut StdRng, scratch: &mut Vec<f64>) -> f64 {
    scratch.clear();
    scratch.extend((0..sorted.len()).map(|_| sorted[rng.random_range(0..sorted.len())]));
    scratch.sort_unstable_by(f64::total_cmp);
    median_of_sorted(scratch)
}

/// The 2.5 % and 97.5 % points (nearest rank) of [`RESAMPLES`] values of `statistic`, each
/// computed on a fresh resample from the seeded generator.
fn bootstrap(mut statistic: impl FnMut(&mut StdRng, &mut Vec<f64>) -> f64) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut scratch = Vec::new();
    let mut values: Vec<f64> = (0..RESAMPLES)
        .map(|_| statistic(&mut rng, &mut scratch))
        .collect();
    values.sort_unstable_by(f64::total_cmp);
    let tail = (1.0 - CONFIDENCE) / 2.0;
    (
        nearest_rank(&values, tail),
        nearest_rank(&values, 1.0 - tail),
    )
}

/// The value at rank ⌈p·n⌉ (1-based) of non-empty ascending `values`: the smallest value with
/// at least a share `p` of the values at or below it.
pub(crate) fn nearest_rank<T: Copy>(values: &[T], p: f64) -> T {
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "p is in [0, 1] and the resamples are far below 2^52"
    )]
    let rank = (p * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_median_of_an_odd_count_is_the_middle_sample() {
        let interval = interval(&[3.0, 1.0, 2.0]).unwrap();
        assert!(close(interval.median, 2.0));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let interval = interval(&[4.0, 1.0, 3.0, 10.0]).unwrap();
        assert!(close(interval.median, 3.5));
    }

    #[test]
    fn one_sample_has_no_range() {
        let interval = interval(&[12.5]).unwrap();
        assert_eq!(
            interval,
            Interval {
                median: 12.5,
                low: 12.5,
                high: 12.5,
                n: 1,
                method: IntervalMethod::Single
            }
        );
        assert_eq!(interval.render(|v| format!("{v:.1}")), "12.5 (n=1)");
    }

    #[test]
    fn fewer_than_five_samples_show_their_minimum_and_maximum() {
        let interval = interval(&[12.3, 14.0, 10.1]).unwrap();
        assert_eq!(interval.method, IntervalMethod::MinMax);
        assert_eq!((interval.low, interval.high, interval.n), (10.1, 14.0, 3));
        assert_eq!(
            interval.render(|v| format!("{v:.1}")),
            "12.3 [10.1, 14.0] (n=3, min–max)"
        );
    }

    #[test]
    fn the_bootstrap_interval_of_a_known_sample_is_its_exact_percentiles() {
        // A resample's median of 1..=5 is 1 with probability 5.8 % (three or more of five
        // draws are 1), so the 2.5 % point is 1, and 5 by symmetry.
        let five = interval(&[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap();
        assert_eq!(five.method, IntervalMethod::Bootstrap);
        assert_eq!((five.median, five.low, five.high), (3.0, 1.0, 5.0));
        // Of 1..=7, a resample's median is at most 1 with probability 1.0 % and at most 2
        // with 10.8 %: the interval is [2, 6].
        let seven: Vec<f64> = (1..=7).map(f64::from).collect();
        let seven = interval(&seven).unwrap();
        assert_eq!((seven.median, seven.low, seven.high), (4.0, 2.0, 6.0));
        assert_eq!(
            seven.render(|v| format!("{v}")),
            "4 [2, 6] (n=7, 95 % bootstrap)"
        );
    }

    #[test]
    fn the_bootstrap_interval_contains_the_median_and_is_reproducible() {
        let samples = [812.0, 790.0, 1030.0, 845.0, 799.0, 905.0, 870.0, 820.0];
        let first = interval(&samples).unwrap();
        assert!(first.low <= first.median && first.median <= first.high);
        assert!(first.low > 790.0 && first.high < 1030.0, "{first:?}");
        assert_eq!(interval(&samples), Some(first));
        let mut reversed = samples;
        reversed.reverse();
        assert_eq!(interval(&reversed), Some(first));
    }

    #[test]
    fn non_finite_samples_are_left_out_and_none_leaves_no_interval() {
        let interval_ = interval(&[f64::NAN, 2.0, f64::INFINITY, 4.0]).unwrap();
        assert_eq!((interval_.median, interval_.n), (3.0, 2));
        assert_eq!(interval(&[]), None);
        assert_eq!(interval(&[f64::NAN]), None);
    }

    #[test]
    fn a_ratio_whose_interval_excludes_one_is_significant() {
        let baseline = [98.0, 100.0, 101.0, 99.0, 102.0];
        let candidate = [150.0, 148.0, 155.0, 152.0, 149.0];
        let ratio = ratio(&baseline, &candidate).unwrap();
        assert_eq!(ratio.method, IntervalMethod::Bootstrap);
        assert!(close(ratio.ratio, 1.5));
        assert!(ratio.low > 1.4 && ratio.high < 1.6, "{ratio:?}");
        assert!(ratio.significant);
        assert_eq!(super::ratio(&baseline, &candidate), Some(ratio));
    }

    #[test]
    fn a_ratio_whose_interval_holds_one_is_not_significant() {
        let baseline = [90.0, 110.0, 100.0, 95.0, 105.0];
        let candidate = [104.0, 96.0, 112.0, 91.0, 101.0];
        let ratio = ratio(&baseline, &candidate).unwrap();
        assert!(ratio.low < 1.0 && ratio.high > 1.0, "{ratio:?}");
        assert!(!ratio.significant);
    }

    #[test]
    fn a_ratio_of_few_samples_spans_what_both_ranges_allow() {
        let baseline = [90.0, 100.0, 110.0];
        let overlapping = ratio(&baseline, &[95.0, 105.0, 117.0]).unwrap();
        assert_eq!(overlapping.method, IntervalMethod::MinMax);
        assert!(close(overlapping.ratio, 1.05));
        assert!(close(overlapping.low, 95.0 / 110.0));
        assert!(close(overlapping.high, 1.3));
        assert!(!overlapping.significant);
        assert_eq!(overlapping.render(), "1.05× [0.86, 1.30] (min–max)");
        let higher = ratio(&baseline, &[132.0, 140.0, 150.0]).unwrap();
        assert!(close(higher.low, 1.2));
        assert!(higher.significant);
        let lower = ratio(&baseline, &[45.0, 50.0, 60.0]).unwrap();
        assert!(close(lower.high, 60.0 / 90.0));
        assert!(lower.significant);
    }

    #[test]
    fn a_ratio_with_one_sample_on_a_side_has_no_range_and_no_significance() {
        let ratio = ratio(&[100.0], &[200.0, 210.0, 190.0]).unwrap();
        assert_eq!(ratio.method, IntervalMethod::Single);
        assert_eq!((ratio.ratio, ratio.low, ratio.high), (2.0, 2.0, 2.0));
        assert_eq!((ratio.baseline_n, ratio.candidate_n), (1, 3));
        assert!(!ratio.significant);
        assert_eq!(ratio.render(), "2.00×");
    }

    #[test]
    fn a_ratio_needs_a_positive_baseline_median() {
        assert_eq!(ratio(&[0.0, 0.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(ratio(&[-2.0, -1.0], &[1.0, 2.0]), None);
        assert_eq!(ratio(&[], &[1.0]), None);
        assert_eq!(ratio(&[1.0], &[f64::NAN]), None);
    }

    #[test]
    fn a_baseline_sample_of_zero_leaves_the_ratio_unbounded_above() {
        let ratio = ratio(&[0.0, 2.0, 4.0], &[3.0, 4.0, 5.0]).unwrap();
        assert!(close(ratio.ratio, 2.0));
        assert!(ratio.high.is_infinite());
        assert!(!ratio.significant);
        assert_eq!(ratio.render(), "2.00× [0.75, ∞] (min–max)");
    }
}
