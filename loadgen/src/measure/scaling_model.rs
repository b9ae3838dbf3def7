//! Capacity against the shard count: the linear, Amdahl and Universal Scalability Law (USL)
//! models fitted to measured capacities, and the one the data support chosen by AICc
//! (docs/experiments.md#planning).
//!
//! - Linear: C(N) = λN.
//! - Amdahl: C(N) = λN / (1 + σ(N−1)): a serial share σ of the work does not spread.
//! - USL: C(N) = λN / (1 + σ(N−1) + κN(N−1)): and the shards pay κ to keep one another
//!   coherent, so that capacity peaks and then falls (retrograde scaling).
//!
//! # Fitting
//!
//! Each model minimises the squared error in capacity (operations per second), so that the
//! three residual sums compare and the criterion ranks them. For given σ and κ the best λ is
//! closed-form (C is proportional to λ), so only σ ∈ [0, 1] and κ ∈ [0, 1] are searched: a
//! grid, then a golden-section search around its best cell, over σ for Amdahl, and over κ
//! (as √κ, since useful κ are small) with σ searched inside for the USL. The search stays
//! inside the bounds, which is the same as refitting a parameter at 0 when the unconstrained
//! optimum is negative: a curve that scales better than linearly gets σ = κ = 0. USL's
//! usual linearisation (N/C as a quadratic in N) is not used: it weighs the points by 1/C²
//! and its unconstrained coefficients go negative on noisy data, while a bounded search of two
//! parameters over a few dozen points costs microseconds.
//!
//! # Choosing
//!
//! A model gets at most k−1 parameters from k distinct shard counts (2 shard counts: linear
//! only; 3: up to Amdahl; 4 or more: up to the USL), since with as many parameters as shard
//! counts any curve passes through the medians. Among those, the lowest AICc wins (the small
//! sample Akaike criterion of a least-squares fit, the error variance counting as a parameter);
//! on a tie, the one with fewer parameters. A model without an AICc (too few points for its
//! parameters) is not chosen; when no model has one, the linear model is.

use serde::Serialize;

/// A measured capacity at a shard count: one per valid repetition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// The shard count.
    pub shards: u32,
    /// The highest sustainable churn, in operations per second.
    pub capacity: f64,
}

/// A scaling model of capacity against the shard count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// C(N) = λN.
    Linear,
    /// C(N) = λN / (1 + σ(N−1)).
    Amdahl,
    /// C(N) = λN / (1 + σ(N−1) + κN(N−1)).
    Usl,
}

impl Model {
    /// Every model, fewest parameters first.
    pub const ALL: [Self; 3] = [Self::Linear, Self::Amdahl, Self::Usl];

    /// The model's name in reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Amdahl => "Amdahl",
            Self::Usl => "USL",
        }
    }

    /// The parameters it fits: λ, then σ, then κ.
    #[must_use]
    pub const fn parameters(self) -> usize {
        match self {
            Self::Linear => 1,
            Self::Amdahl => 2,
            Self::Usl => 3,
        }
    }
}

/// The parameters of a model; those it does not fit are 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Parameters {
    /// λ: the capacity of one shard, in operations per second.
    pub lambda: f64,
    /// σ: contention, the share of the work that does not spread over shards.
    pub sigma: f64,
    /// κ: coherency, the cost each pair of shards adds.
    pub kappa: f64,
}

impl Parameters {
    /// The capacity these parameters give `shards`.
    #[must_use]
    pub fn predict(&self, shards: f64) -> f64 {
        self.lambda * shape(shards, self.sigma, self.kappa)
    }

    /// The shard count where the capacity peaks, N* = √((1−σ)/κ), when κ > 0.
    #[must_use]
    pub fn peak(&self) -> Option<f64> {
        (self.kappa > 0.0).then(|| ((1.0 - self.sigma) / self.kappa).sqrt())
    }

    /// The highest capacity any shard count reaches or approaches: at the peak (at least 1
    /// shard) with κ > 0, λ/σ with σ > 0 alone; `None` when it grows without bound.
    #[must_use]
    pub fn ceiling(&self) -> Option<f64> {
        match self.peak() {
            Some(peak) => Some(self.predict(peak.max(1.0))),
            None => (self.sigma > 0.0).then(|| self.lambda / self.sigma),
        }
    }
}

/// One model fitted to the points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The model.
    pub model: Model,
    /// Its fitted parameters.
    pub parameters: Parameters,
    /// The residual sum of squares, in (operations per second)².
    pub rss: f64,
    /// Its AICc; `None` with too few points for its parameters.
    pub aicc: Option<f64>,
}

/// The models fitted to the measured capacities and the one chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    /// The models the shard counts can carry, fewest parameters first.
    pub candidates: Vec<Candidate>,
    /// The chosen model, one of `candidates`.
    pub chosen: Model,
    /// 1 − RSS/TSS of the chosen model; `None` when every capacity is the same.
    pub r_squared: Option<f64>,
    /// The points fitted.
    pub points: usize,
    /// The distinct shard counts among them.
    pub shard_counts: usize,
}

impl Fit {
    /// The chosen model's candidate.
    #[must_use]
    pub fn chosen(&self) -> &Candidate {
        self.candidates
            .iter()
            .find(|candidate| candidate.model == self.chosen)
            .unwrap_or(&self.candidates[0])
    }

    /// The chosen model's capacity at `shards`.
    #[must_use]
    pub fn predict(&self, shards: f64) -> f64 {
        self.chosen().parameters.predict(shards)
    }
}

/// Why the models cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// No points at all.
    #[error("a scaling fit needs measured capacities, got none")]
    Empty,
    /// A point at 0 shards.
    #[error("a capacity was measured at 0 shards (capacity {capacity}); shard counts start at 1")]
    ZeroShards {
        /// Its capacity.
        capacity: f64,
    },
    /// A capacity that is negative, infinite or NaN.
    #[error(
        "the capacity at {shards} shards must be a finite number of operations/s ≥ 0, got {capacity}"
    )]
    Capacity {
        /// Its shard count.
        shards: u32,
        /// The capacity.
        capacity: f64,
    },
    /// Fewer than two shard counts: nothing tells how capacity changes with them.
    #[error(
        "a scaling fit needs capacities at 2 or more shard counts, got them only at {shards} shard(s)"
    )]
    OneShardCount {
        /// The only shard count.
        shards: u32,
    },
    /// Every capacity is 0.
    #[error("every capacity is 0 operations/s: there is no scaling to fit")]
    AllZero,
}

/// The result of this module's fallible functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Fits every model the points' shard counts can carry and chooses one by AICc.
pub fn fit(points: &[Point]) -> Result<Fit> {
    let Some(first) = points.first() else {
        return Err(Error::Empty);
    };
    for point in points {
        if point.shards == 0 {
            return Err(Error::ZeroShards {
                capacity: point.capacity,
            });
        }
        if !point.capacity.is_finite() || point.capacity < 0.0 {
            return Err(Error::Capacity {
                shards: point.shards,
                capacity: point.capacity,
            });
        }
    }
    let mut shards: Vec<u32> = points.iter().map(|point| point.shards).collect();
    shards.sort_unstable();
    shards.dedup();
    if shards.len() < 2 {
        return Err(Error::OneShardCount {
            shards: first.shards,
        });
    }
    if points.iter().all(|point| point.capacity == 0.0) {
        return Err(Error::AllZero);
    }

    let candidates: Vec<Candidate> = Model::ALL
        .into_iter()
        .filter(|model| model.parameters() < shards.len())
        .map(|model| candidate(points, model))
        .collect();
    let chosen = candidates
        .iter()
        .filter_map(|candidate| Some((candidate.aicc?, candidate.model)))
        // Strictly lower only: on a tie the earlier, simpler model stays.
        .reduce(|best, next| if next.0 < best.0 { next } else { best })
        .map_or(Model::Linear, |(_, model)| model);

    let n = as_f64(points.len());
    let mean = points.iter().map(|point| point.capacity).sum::<f64>() / n;
    let tss: f64 = points
        .iter()
        .map(|point| (point.capacity - mean).powi(2))
        .sum();
    let rss = candidates
        .iter()
        .find(|candidate| candidate.model == chosen)
        .map_or(f64::NAN, |candidate| candidate.rss);
    Ok(Fit {
        candidates,
        chosen,
        r_squared: (tss > 0.0).then(|| 1.0 - rss / tss),
        points: points.len(),
        shard_counts: shards.len(),
    })
}

/// `model` fitted to `points`, with its AICc.
fn candidate(points: &[Point], model: Model) -> Candidate {
    let profile = |sigma: f64, kappa: f64| best_lambda(points, sigma, kappa);
    let (sigma, kappa) = match model {
        Model::Linear => (0.0, 0.0),
        Model::Amdahl => (minimise(|sigma| profile(sigma, 0.0).1, 0.0, 1.0).0, 0.0),
        Model::Usl => {
            let best_sigma = |kappa: f64| minimise(|sigma| profile(sigma, kappa).1, 0.0, 1.0);
            let (root, _) = minimise(|root| best_sigma(root * root).1, 0.0, 1.0);
            let kappa = root * root;
            (best_sigma(kappa).0, kappa)
        }
    };
    let (lambda, rss) = profile(sigma, kappa);
    Candidate {
        model,
        parameters: Parameters {
            lambda,
            sigma,
            kappa,
        },
        rss,
        aicc: aicc(points, rss, model.parameters()),
    }
}

/// N / (1 + σ(N−1) + κN(N−1)): the capacity at N shards over λ.
fn shape(shards: f64, sigma: f64, kappa: f64) -> f64 {
    shards / (1.0 + sigma * (shards - 1.0) + kappa * shards * (shards - 1.0))
}

/// The λ that minimises the squared error for `sigma` and `kappa`, and that error:
/// λ = Σ C·g / Σ g² for g the model's shape.
fn best_lambda(points: &[Point], sigma: f64, kappa: f64) -> (f64, f64) {
    let shapes = || {
        points
            .iter()
            .map(move |point| (point.capacity, shape(f64::from(point.shards), sigma, kappa)))
    };
    let (cross, square) = shapes().fold((0.0, 0.0), |(cross, square), (c, g)| {
        (cross + c * g, square + g * g)
    });
    let lambda = cross / square;
    let rss = shapes().map(|(c, g)| (c - lambda * g).powi(2)).sum();
    (lambda, rss)
}

/// Cells of the grid searched before the golden-section search.
const GRID_CELLS: u32 = 64;
/// Golden-section steps: each narrows the interval to 0.618 of its width, so 60 narrow a cell
/// by 10⁻¹².
const GOLDEN_STEPS: u32 = 60;

/// The x in [`low`, `high`] where `function` is least, and its value there: the best point of a grid, then a
/// golden-section search of the cells either side of it.
fn minimise(function: impl Fn(f64) -> f64, low: f64, high: f64) -> (f64, f64) {
    let step = (high - low) / f64::from(GRID_CELLS);
    let (best, best_value) = (0..=GRID_CELLS)
        .map(|i| {
            let x = low + step * f64::from(i);
            (x, function(x))
        })
        .fold((low, f64::INFINITY), |best, next| {
            if next.1 < best.1 { next } else { best }
        });
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    // The bracket [left, right] and its two inner points, nearer each end.
    let (mut left, mut right) = ((best - step).max(low), (best + step).min(high));
    let mut near_left = right - ratio * (right - left);
    let mut near_right = left + ratio * (right - left);
    let (mut at_near_left, mut at_near_right) = (function(near_left), function(near_right));
    for _ in 0..GOLDEN_STEPS {
        if at_near_left < at_near_right {
            (right, near_right, at_near_right) = (near_right, near_left, at_near_left);
            near_left = right - ratio * (right - left);
            at_near_left = function(near_left);
        } else {
            (left, near_left, at_near_left) = (near_left, near_right, at_near_right);
            near_right = left + ratio * (right - left);
            at_near_right = function(near_right);
        }
    }
    // The grid's point stays when the search found nothing lower: a bound is exactly a bound.
    [(near_left, at_near_left), (near_right, at_near_right)]
        .into_iter()
        .fold((best, best_value), |best, next| {
            if next.1 < best.1 { next } else { best }
        })
}

/// The relative resolution of a residual: below it, fits are exact and tie.
const EXACT: f64 = 1e-9;

/// AICc of a least-squares fit with `parameters` over `points`, the error variance counting as
/// one more; `None` unless there are more points than parameters + 2. An RSS below [`EXACT`]
/// of the mean capacity per point counts as that, so exact fits tie and the penalty decides.
fn aicc(points: &[Point], rss: f64, parameters: usize) -> Option<f64> {
    let n = as_f64(points.len());
    let k = as_f64(parameters + 1);
    if n - k - 1.0 <= 0.0 {
        return None;
    }
    let mean = points.iter().map(|point| point.capacity).sum::<f64>() / n;
    let floor = n * (EXACT * mean).powi(2);
    Some(n * (rss.max(floor) / n).ln() + 2.0 * k + 2.0 * k * (k + 1.0) / (n - k - 1.0))
}

/// A count as a float.
fn as_f64(count: usize) -> f64 {
    super::as_f64(count as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usl(lambda: f64, sigma: f64, kappa: f64) -> Parameters {
        Parameters {
            lambda,
            sigma,
            kappa,
        }
    }

    fn points(shards: impl IntoIterator<Item = u32>, curve: impl Fn(f64) -> f64) -> Vec<Point> {
        shards
            .into_iter()
            .map(|shards| Point {
                shards,
                capacity: curve(f64::from(shards)),
            })
            .collect()
    }

    fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= tolerance
    }

    #[test]
    fn exact_usl_points_give_back_their_parameters_and_the_usl() {
        let truth = usl(100.0, 0.05, 0.002);
        let fit = fit(&points(1..=8, |n| truth.predict(n))).unwrap();
        assert_eq!(fit.chosen, Model::Usl, "{fit:#?}");
        let found = fit.chosen().parameters;
        assert!(close(found.lambda, 100.0, 1e-3), "{found:?}");
        assert!(close(found.sigma, 0.05, 1e-5), "{found:?}");
        assert!(close(found.kappa, 0.002, 1e-6), "{found:?}");
        assert!(close(fit.r_squared.unwrap(), 1.0, 1e-9));
        assert_eq!((fit.points, fit.shard_counts), (8, 8));
        // N* = √(0.95 / 0.002) ≈ 21.8 shards.
        assert!(close(found.peak().unwrap(), 21.794, 1e-2));
        assert!(close(fit.predict(4.0), truth.predict(4.0), 1e-3));
    }

    #[test]
    fn repetitions_scattered_about_a_usl_curve_still_give_the_usl_near_its_parameters() {
        let truth = usl(100.0, 0.05, 0.01);
        // Three repetitions per shard count, 2 % apart, their median 1 % above the curve at
        // even shard counts and 1 % below at odd ones.
        let scattered: Vec<Point> = (1..=8)
            .flat_map(|n| {
                let bias = if n % 2 == 0 { 1.01 } else { 0.99 };
                let capacity = truth.predict(f64::from(n)) * bias;
                [0.98, 1.0, 1.02].map(|factor| Point {
                    shards: n,
                    capacity: capacity * factor,
                })
            })
            .collect();
        let fit = fit(&scattered).unwrap();
        assert_eq!(fit.chosen, Model::Usl, "{fit:#?}");
        let found = fit.chosen().parameters;
        assert!(close(found.lambda, 100.0, 1.0), "{found:?}");
        assert!(close(found.sigma, 0.05, 0.01), "{found:?}");
        assert!(close(found.kappa, 0.01, 0.001), "{found:?}");
        assert!(fit.r_squared.unwrap() > 0.98, "{fit:#?}");
    }

    #[test]
    fn exactly_linear_points_choose_the_linear_model() {
        let repeated = [1, 2, 3, 4, 1, 2, 3, 4];
        let fit = fit(&points(repeated, |n| 50.0 * n)).unwrap();
        assert_eq!(fit.chosen, Model::Linear, "{fit:#?}");
        assert_eq!(fit.candidates.len(), 3);
        assert!(close(fit.chosen().parameters.lambda, 50.0, 1e-9));
        assert!(close(fit.predict(10.0), 500.0, 1e-6));
        assert_eq!(fit.chosen().parameters.peak(), None);
        assert_eq!(fit.chosen().parameters.ceiling(), None);
    }

    #[test]
    fn two_shard_counts_carry_only_the_linear_model() {
        // Plenty of points, but a curve through 2 shard counts has 1 degree of freedom.
        let fit = fit(&points([1, 1, 1, 2, 2, 2], |n| {
            100.0 * n / (1.0 + 0.3 * (n - 1.0))
        }))
        .unwrap();
        let models: Vec<Model> = fit.candidates.iter().map(|c| c.model).collect();
        assert_eq!(models, [Model::Linear]);
        assert_eq!(fit.chosen, Model::Linear);
    }

    #[test]
    fn three_shard_counts_carry_up_to_amdahl() {
        let amdahl = usl(100.0, 0.3, 0.0);
        let fit = fit(&points([1, 2, 3, 1, 2, 3], |n| amdahl.predict(n))).unwrap();
        let models: Vec<Model> = fit.candidates.iter().map(|c| c.model).collect();
        assert_eq!(models, [Model::Linear, Model::Amdahl]);
        assert_eq!(fit.chosen, Model::Amdahl);
        assert!(close(fit.chosen().parameters.sigma, 0.3, 1e-6));
        // Amdahl approaches λ/σ.
        assert!(close(
            fit.chosen().parameters.ceiling().unwrap(),
            333.333,
            1e-2
        ));
    }

    #[test]
    fn better_than_linear_scaling_clamps_sigma_and_kappa_at_zero() {
        // Superlinear: unconstrained, σ and κ would be negative.
        let fit = fit(&points(1..=6, |n| 100.0 * n.powf(1.2))).unwrap();
        for candidate in &fit.candidates {
            assert!(candidate.parameters.sigma.abs() < 1e-9, "{candidate:?}");
            assert!(candidate.parameters.kappa.abs() < 1e-9, "{candidate:?}");
        }
        // The same curve with more parameters is no better: the penalty chooses linear.
        assert_eq!(fit.chosen, Model::Linear);
    }

    #[test]
    fn aicc_needs_more_points_than_parameters_plus_two() {
        let four = points(1..=4, |n| usl(100.0, 0.1, 0.01).predict(n));
        // 4 points: linear (k = 2) has an AICc, Amdahl (k = 3) and USL (k = 4) have none.
        let fit = fit(&four).unwrap();
        let aiccs: Vec<bool> = fit.candidates.iter().map(|c| c.aicc.is_some()).collect();
        assert_eq!(aiccs, [true, false, false]);
        assert_eq!(fit.chosen, Model::Linear);
        // 3 points: no model has one, and the linear model is taken.
        let three = &four[..3];
        let fit = super::fit(three).unwrap();
        assert!(fit.candidates.iter().all(|c| c.aicc.is_none()));
        assert_eq!(fit.chosen, Model::Linear);
    }

    #[test]
    fn aicc_is_the_small_sample_criterion_of_a_least_squares_fit() {
        // n = 6, RSS = 6, 1 parameter + variance: 6 ln 1 + 4 + 2·2·3/3 = 8.
        let six: Vec<Point> = points(1..=6, |n| n);
        assert!(close(aicc(&six, 6.0, 1).unwrap(), 8.0, 1e-12));
    }

    #[test]
    fn bad_input_is_an_error_naming_the_value_not_a_panic() {
        assert_eq!(fit(&[]), Err(Error::Empty));
        let one = points([2, 2, 2], |_| 10.0);
        assert_eq!(fit(&one), Err(Error::OneShardCount { shards: 2 }));
        let zero = points([0, 1], |_| 10.0);
        assert_eq!(fit(&zero), Err(Error::ZeroShards { capacity: 10.0 }));
        let nan = [
            Point {
                shards: 1,
                capacity: 10.0,
            },
            Point {
                shards: 3,
                capacity: f64::NAN,
            },
        ];
        let error = fit(&nan).unwrap_err();
        assert!(error.to_string().contains("at 3 shards"), "{error}");
        let negative = points([1, 2], |n| -n);
        assert!(matches!(
            fit(&negative),
            Err(Error::Capacity { shards: 1, .. })
        ));
        assert_eq!(fit(&points([1, 2, 3], |_| 0.0)), Err(Error::AllZero));
    }

    #[test]
    fn flat_capacities_have_no_r_squared() {
        let fit = fit(&points([1, 2, 3, 4, 5], |_| 10.0)).unwrap();
        assert_eq!(fit.r_squared, None);
        assert_eq!(fit.chosen, Model::Amdahl, "{fit:#?}");
        assert!(close(fit.chosen().parameters.sigma, 1.0, 1e-9));
    }
}
