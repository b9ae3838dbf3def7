//! `loadgen plan`'s decision: from the capacity measured per shard count and a target, the
//! smallest shard count that carries the target with headroom, the scaling model behind any
//! extrapolation, the cost there and the caveats (docs/experiments.md#planning).
//!
//! Pure: the measurements come in as [`CapacityPoint`]s and [`ShardCost`]s, the [`Plan`] goes
//! out, as a text report ([`crate::report::Report`]), as JSON (`plan.json`) and as a plot
//! ([`plot`]).

use std::fmt::Write as _;

use serde::Serialize;

use crate::{
    measure::{
        scaling_model::{self, Fit, Model, Parameters, Point},
        stats,
    },
    report::{Report, TextTable},
    units::BYTES_PER_MIB,
};

pub mod plot;

/// The headroom a plan keeps when none is asked for: capacity for 30 % more churn than the
/// target.
pub const DEFAULT_HEADROOM: f64 = 0.30;
/// Valid repetitions from which a shard count's interval is a 95 % confidence interval; below
/// it the interval is the min–max of the repetitions.
pub const CONFIDENCE_REPETITIONS: usize = 5;
/// The most shards an extrapolation considers.
pub const MAX_SHARDS: u32 = 10_000;
/// Below this R² the fit's predictions are called rough.
const POOR_FIT: f64 = 0.9;

/// What the plan must carry.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Target {
    /// The objects (Websites) of the world.
    pub objects: u64,
    /// The churn to sustain, in operations per second.
    pub churn: f64,
    /// The spare capacity to keep, as a fraction of `churn` (0.3 for 30 %).
    pub headroom: f64,
}

impl Target {
    /// The capacity needed: churn × (1 + headroom).
    #[must_use]
    pub fn needed(&self) -> f64 {
        self.churn * (1.0 + self.headroom)
    }
}

/// The capacity measured at one shard count over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityPoint {
    /// The shard count.
    pub shards: u32,
    /// The median capacity of the valid repetitions, in operations per second.
    pub median: f64,
    /// The interval's lower bound: of the 95 % confidence interval with
    /// [`CONFIDENCE_REPETITIONS`] or more valid repetitions, else the lowest.
    pub low: f64,
    /// The interval's upper bound, likewise.
    pub high: f64,
    /// The capacity of each valid repetition (the points of the fit); empty when every
    /// repetition was invalid, and then `median`, `low` and `high` are not read.
    pub samples: Vec<f64>,
    /// The repetitions found invalid and left out.
    pub invalid: u32,
}

impl CapacityPoint {
    /// The point of `shards` from the capacity of each valid repetition and the number of
    /// the others: the median and its interval (docs/experiments.md#repetitions-and-intervals).
    #[must_use]
    pub fn of(shards: u32, samples: Vec<f64>, invalid: usize) -> Self {
        let interval = stats::interval(&samples);
        Self {
            shards,
            median: interval.map_or(0.0, |i| i.median),
            low: interval.map_or(0.0, |i| i.low),
            high: interval.map_or(0.0, |i| i.high),
            samples,
            invalid: u32::try_from(invalid).unwrap_or(u32::MAX),
        }
    }

    /// Whether a valid repetition measured it.
    #[must_use]
    pub fn is_measured(&self) -> bool {
        !self.samples.is_empty()
    }
}

/// What one shard count costs, each figure when it was measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ShardCost {
    /// The shard count.
    pub shards: u32,
    /// The CPU cores each operator shard used.
    pub operator_cpu_cores_per_shard: Option<f64>,
    /// The peak memory of each operator shard, in bytes.
    pub operator_memory_bytes_per_shard: Option<f64>,
    /// The CPU cores the sharder used.
    pub sharder_cpu_cores: Option<f64>,
    /// The sharder's peak memory, in bytes.
    pub sharder_memory_bytes: Option<f64>,
}

impl ShardCost {
    /// The cost of `shards` from each valid repetition's figures, in the order of the fields
    /// (operator cores and bytes per shard, sharder cores and bytes): their medians.
    #[must_use]
    pub fn of(
        shards: u32,
        [operator_cores, operator_bytes, sharder_cores, sharder_bytes]: [Vec<f64>; 4],
    ) -> Self {
        let median = |values: Vec<f64>| stats::interval(&values).map(|interval| interval.median);
        Self {
            shards,
            operator_cpu_cores_per_shard: median(operator_cores),
            operator_memory_bytes_per_shard: median(operator_bytes),
            sharder_cpu_cores: median(sharder_cores),
            sharder_memory_bytes: median(sharder_bytes),
        }
    }
}

/// The cost at the recommended shard count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cost {
    /// As measured there.
    pub measured: ShardCost,
    /// The CPU cores of all operator shards.
    pub operator_cpu_cores: Option<f64>,
    /// The peak memory of all operator shards, in bytes.
    pub operator_memory_bytes: Option<f64>,
}

impl Cost {
    /// `measured` with the operator's totals over its shards.
    fn of(measured: ShardCost) -> Self {
        let shards = f64::from(measured.shards);
        Self {
            measured,
            operator_cpu_cores: measured.operator_cpu_cores_per_shard.map(|c| c * shards),
            operator_memory_bytes: measured.operator_memory_bytes_per_shard.map(|m| m * shards),
        }
    }
}

/// The answer: whether and how the target is reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// A measured shard count's lower bound covers the capacity needed.
    Reachable {
        /// The smallest such shard count.
        shards: u32,
        /// Its capacity's lower bound, in operations per second.
        low: f64,
    },
    /// No measured shard count covers it; the fitted model says this one would.
    ReachableByExtrapolation {
        /// The smallest shard count whose predicted lower bound covers the need.
        shards: u32,
        /// The fitted capacity there, in operations per second.
        predicted: f64,
        /// `predicted` scaled by the narrowest measured low/median ratio.
        predicted_low: f64,
    },
    /// Neither a measured shard count nor the fit reaches it.
    Unreachable {
        /// Why, in a sentence.
        why: String,
    },
}

impl Verdict {
    /// Whether a measured shard count carries the target: what the exit status says.
    #[must_use]
    pub fn within_measured_range(&self) -> bool {
        matches!(self, Self::Reachable { .. })
    }

    /// The recommended shard count, measured or extrapolated.
    #[must_use]
    pub fn shards(&self) -> Option<u32> {
        match self {
            Self::Reachable { shards, .. } | Self::ReachableByExtrapolation { shards, .. } => {
                Some(*shards)
            }
            Self::Unreachable { .. } => None,
        }
    }
}

/// A row of the capacity curve: a measured shard count, or one the plan extrapolated to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CurveRow {
    /// The shard count.
    pub shards: u32,
    /// Its measurement; `None` for an extrapolated row.
    pub measured: Option<CapacityPoint>,
    /// The fitted model's capacity there, when there is a fit.
    pub fitted: Option<f64>,
}

/// The plan for a target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The target.
    pub target: Target,
    /// The capacity needed, [`Target::needed`].
    pub needed: f64,
    /// The measured shard counts in order, then those extrapolated to up to the recommendation.
    pub curve: Vec<CurveRow>,
    /// The scaling models fitted to every valid repetition; `None` when they cannot be.
    pub fit: Option<Fit>,
    /// The answer.
    pub verdict: Verdict,
    /// The cost at the recommendation, when it was measured there.
    pub cost: Option<Cost>,
    /// What limits the answer, in sentences.
    pub caveats: Vec<String>,
}

/// Why a plan cannot be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The target has no objects.
    #[error("the target objects must be at least 1, got 0")]
    Objects,
    /// The churn is not a positive finite rate.
    #[error("the target churn must be a positive number of operations/s, got {churn}")]
    Churn {
        /// The churn asked for.
        churn: f64,
    },
    /// The headroom is negative or not finite.
    #[error("the headroom must be a fraction ≥ 0 (0.3 for 30 %), got {headroom}")]
    Headroom {
        /// The headroom asked for.
        headroom: f64,
    },
    /// No shard count was given.
    #[error("a plan needs the capacity of at least one shard count, got none")]
    NoPoints,
    /// A shard count given twice.
    #[error("the capacity at {shards} shards is given twice")]
    DuplicateShards {
        /// The shard count.
        shards: u32,
    },
    /// A figure of a capacity point that is negative, infinite or NaN, or out of order.
    #[error(
        "the capacity {field} at {shards} shards must be a finite number of operations/s ≥ 0{order}, got {value}"
    )]
    Capacity {
        /// The shard count.
        shards: u32,
        /// `median`, `low`, `high` or `samples`.
        field: &'static str,
        /// The value.
        value: f64,
        /// What it must also satisfy, e.g. " and ≤ the median".
        order: &'static str,
    },
    /// Every repetition of every shard count was invalid.
    #[error(
        "every repetition at every shard count was invalid ({invalid} in all): nothing to plan from"
    )]
    NoValidRepetition {
        /// The invalid repetitions.
        invalid: u32,
    },
}

/// The result of this module's fallible functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The plan for `target` from the capacity measured at each shard count (`points`, in any
/// order), the cost measured at each (`costs`) and the objects of the world the capacity was
/// measured over, when known.
///
/// The recommendation is the smallest measured shard count whose lower bound covers
/// [`Target::needed`]; failing that, the smallest larger shard count whose fitted capacity,
/// scaled by the narrowest measured low/median ratio, covers it.
pub fn plan(
    target: Target,
    mut points: Vec<CapacityPoint>,
    costs: &[ShardCost],
    measured_objects: Option<u64>,
) -> Result<Plan> {
    validate(&target, &mut points)?;
    let needed = target.needed();
    let valid: Vec<&CapacityPoint> = points.iter().filter(|p| p.is_measured()).collect();
    let Some(largest) = valid.last().map(|point| point.shards) else {
        return Err(Error::NoValidRepetition {
            invalid: points.iter().map(|point| point.invalid).sum(),
        });
    };
    let fit_points: Vec<Point> = valid
        .iter()
        .flat_map(|point| {
            point.samples.iter().map(|&capacity| Point {
                shards: point.shards,
                capacity,
            })
        })
        .collect();
    let fit = scaling_model::fit(&fit_points);
    // The lower bound's relative distance below the median, at its widest: an extrapolated
    // prediction is a median and is held to a lower bound like the measured ones.
    let margin = valid
        .iter()
        .filter(|point| point.median > 0.0)
        .map(|point| point.low / point.median)
        .fold(1.0, f64::min);

    let verdict = if let Some(point) = valid.iter().find(|point| point.low >= needed) {
        Verdict::Reachable {
            shards: point.shards,
            low: point.low,
        }
    } else {
        match &fit {
            Err(error) => Verdict::Unreachable {
                why: format!(
                    "no measured shard count (up to {largest}) has a lower bound of {} or more, \
                     and nothing extrapolates beyond them: {error}",
                    ops(needed)
                ),
            },
            Ok(fit) => extrapolate(fit, needed, margin, largest + 1),
        }
    };

    let mut caveats = measurement_caveats(&points);
    if let Some(objects) = measured_objects.filter(|&objects| objects != target.objects) {
        caveats.push(format!(
            "The capacity was measured over {objects} objects and the target has {}: capacity \
             depends on the objects too, so measure over the target's.",
            target.objects
        ));
    }
    match &fit {
        Ok(fit) => caveats.extend(fit_caveats(fit, largest)),
        Err(error) => caveats.push(format!("No scaling model: {error}.")),
    }
    let fit = fit.ok();
    let cost = match verdict {
        Verdict::Reachable { shards, .. } => {
            let cost = costs.iter().find(|cost| cost.shards == shards).copied();
            if cost.is_none() {
                caveats.push(format!("No cost was measured at {shards} shards."));
            }
            cost.map(Cost::of)
        }
        Verdict::ReachableByExtrapolation { shards, .. } => {
            caveats.push(format!(
                "{shards} shards are beyond the measured {largest}, found by the {} fit with \
                 its prediction scaled by the widest measured lower bound (low/median = {margin:.2}): \
                 measure {shards} shards before relying on it; its cost is not measured.",
                fit.as_ref().map_or("", |fit| fit.chosen.name()),
            ));
            None
        }
        Verdict::Unreachable { .. } => None,
    };
    if let (Some(fit), Some(recommended)) = (&fit, verdict.shards()) {
        caveats.extend(unmeasured_below(fit, &valid, recommended, needed, margin));
    }

    let curve = curve(&points, fit.as_ref(), &verdict, largest);
    Ok(Plan {
        target,
        needed,
        curve,
        fit,
        verdict,
        cost,
        caveats,
    })
}

/// The rows of the capacity curve: every shard count of `points`, then those past `largest`
/// up to an extrapolated recommendation; in order, each with the fit's capacity.
fn curve(
    points: &[CapacityPoint],
    fit: Option<&Fit>,
    verdict: &Verdict,
    largest: u32,
) -> Vec<CurveRow> {
    let mut curve: Vec<CurveRow> = points
        .iter()
        .map(|point| CurveRow {
            shards: point.shards,
            measured: Some(point.clone()),
            fitted: fit.map(|fit| fit.predict(f64::from(point.shards))),
        })
        .collect();
    if let Verdict::ReachableByExtrapolation { shards, .. } = *verdict {
        // A shard count past the largest valid one may be in `points` with only invalid
        // repetitions: its row is there already.
        let listed = |shards: &u32| points.iter().any(|point| point.shards == *shards);
        curve.extend(
            (largest + 1..=shards)
                .filter(|shards| !listed(shards))
                .map(|shards| CurveRow {
                    shards,
                    measured: None,
                    fitted: fit.map(|fit| fit.predict(f64::from(shards))),
                }),
        );
        curve.sort_by_key(|row| row.shards);
    }
    curve
}

/// Checks the target and every point, naming the bad figure, and sorts the points by shard
/// count.
fn validate(target: &Target, points: &mut [CapacityPoint]) -> Result<()> {
    if target.objects == 0 {
        return Err(Error::Objects);
    }
    if !(target.churn.is_finite() && target.churn > 0.0) {
        return Err(Error::Churn {
            churn: target.churn,
        });
    }
    if !(target.headroom.is_finite() && target.headroom >= 0.0) {
        return Err(Error::Headroom {
            headroom: target.headroom,
        });
    }
    if points.is_empty() {
        return Err(Error::NoPoints);
    }
    points.sort_by_key(|point| point.shards);
    for pair in points.windows(2) {
        if pair[0].shards == pair[1].shards {
            return Err(Error::DuplicateShards {
                shards: pair[0].shards,
            });
        }
    }
    for point in points.iter().filter(|point| point.is_measured()) {
        let bad = |field, value, order| Error::Capacity {
            shards: point.shards,
            field,
            value,
            order,
        };
        let figures = [
            ("median", point.median),
            ("low", point.low),
            ("high", point.high),
        ];
        for (field, value) in figures
            .into_iter()
            .chain(point.samples.iter().map(|&s| ("samples", s)))
        {
            if !(value.is_finite() && value >= 0.0) {
                return Err(bad(field, value, ""));
            }
        }
        if point.low > point.median {
            return Err(bad("low", point.low, " and ≤ the median"));
        }
        if point.high < point.median {
            return Err(bad("high", point.high, " and ≥ the median"));
        }
    }
    Ok(())
}

/// The verdict beyond the measured range: the smallest shard count from `from` on whose fitted
/// capacity × `margin` covers `needed`, or why there is none.
fn extrapolate(fit: &Fit, needed: f64, margin: f64, from: u32) -> Verdict {
    let parameters = fit.chosen().parameters;
    let model = fit.chosen.name();
    if margin <= 0.0 {
        return Verdict::Unreachable {
            why: "a measured lower bound is 0 ops/s, so no prediction held to the measured \
                  lower bounds covers anything"
                .to_owned(),
        };
    }
    if let Some(shards) = smallest_shards(&parameters, needed / margin, from) {
        let predicted = parameters.predict(f64::from(shards));
        return Verdict::ReachableByExtrapolation {
            shards,
            predicted,
            predicted_low: predicted * margin,
        };
    }
    let why = match (parameters.peak(), parameters.ceiling()) {
        (Some(peak), Some(ceiling)) => format!(
            "the fitted {model} curve peaks at {peak:.1} shards with {} ({} at the measured \
             lower bound's margin), below the {} needed: adding shards does not reach the target",
            ops(ceiling),
            ops(ceiling * margin),
            ops(needed)
        ),
        (None, Some(ceiling)) => format!(
            "the fitted {model} curve approaches {} (λ/σ) however many shards ({} at the measured \
             lower bound's margin), below the {} needed",
            ops(ceiling),
            ops(ceiling * margin),
            ops(needed)
        ),
        (_, None) => format!(
            "the fitted {model} curve needs more than {MAX_SHARDS} shards for {}",
            ops(needed)
        ),
    };
    Verdict::Unreachable { why }
}

/// The smallest shard count from `from` to [`MAX_SHARDS`] whose capacity under `parameters`
/// is at least `needed`. Every model rises to its peak (if any) and falls after it, so the
/// search is a bisection between `from` and the best shard count around the peak.
fn smallest_shards(parameters: &Parameters, needed: f64, from: u32) -> Option<u32> {
    let capacity = |shards: u32| parameters.predict(f64::from(shards));
    if capacity(from) >= needed {
        return Some(from);
    }
    let top = match parameters.peak() {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "the peak is clamped to 1..=MAX_SHARDS first"
        )]
        Some(peak) => {
            let peak = peak.clamp(1.0, f64::from(MAX_SHARDS));
            let (below, above) = (peak.floor() as u32, peak.ceil() as u32);
            if capacity(above) >= capacity(below) {
                above
            } else {
                below
            }
        }
        None => MAX_SHARDS,
    };
    if top <= from || capacity(top) < needed {
        return None;
    }
    // capacity(low) < needed ≤ capacity(high), rising in between.
    let (mut low, mut high) = (from, top);
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if capacity(middle) >= needed {
            high = middle;
        } else {
            low = middle;
        }
    }
    Some(high)
}

/// The caveats of the measurements: intervals from few repetitions, invalid repetitions.
fn measurement_caveats(points: &[CapacityPoint]) -> Vec<String> {
    let mut caveats = Vec::new();
    let shards_where = |keep: &dyn Fn(&CapacityPoint) -> bool| {
        let shards: Vec<String> = points
            .iter()
            .filter(|point| keep(point))
            .map(|point| point.shards.to_string())
            .collect();
        let noun = if shards == ["1"] { "shard" } else { "shards" };
        (!shards.is_empty()).then(|| format!("{} {noun}", shards.join(", ")))
    };
    if let Some(shards) = shards_where(&|p| p.samples.len() == 1) {
        caveats.push(format!(
            "At {shards} a single valid repetition: no interval, its lower bound is the one \
             measurement."
        ));
    }
    if let Some(shards) = shards_where(&|p| (2..CONFIDENCE_REPETITIONS).contains(&p.samples.len()))
    {
        caveats.push(format!(
            "At {shards} fewer than {CONFIDENCE_REPETITIONS} valid repetitions: the \
             interval is their min–max, not a 95 % confidence interval."
        ));
    }
    let excluded: Vec<String> = points
        .iter()
        .filter(|point| point.invalid > 0)
        .map(|point| format!("{} at {} shards", point.invalid, point.shards))
        .collect();
    if !excluded.is_empty() {
        caveats.push(format!(
            "Invalid repetitions are excluded from the capacity and the fit: {}.",
            excluded.join(", ")
        ));
    }
    if let Some(shards) = shards_where(&|p| !p.is_measured()) {
        caveats.push(format!("At {shards} no repetition was valid: left out."));
    }
    caveats
}

/// The caveats of the fit: its R², models the data could not carry or compare, a peak inside
/// the measured range.
fn fit_caveats(fit: &Fit, largest: u32) -> Vec<String> {
    let mut caveats = Vec::new();
    if let Some(r_squared) = fit.r_squared.filter(|&r| r < POOR_FIT) {
        caveats.push(format!(
            "The {} fit is poor (R² = {r_squared:.2}): its predictions are rough.",
            fit.chosen.name()
        ));
    }
    if fit.candidates.len() < Model::ALL.len() {
        caveats.push(format!(
            "{} shard counts carry at most {} parameters: {} not fitted; measure more shard \
             counts to see contention and a peak.",
            fit.shard_counts,
            fit.shard_counts - 1,
            Model::ALL[fit.candidates.len()..]
                .iter()
                .map(|model| model.name())
                .collect::<Vec<_>>()
                .join(" and ")
        ));
    }
    let uncompared: Vec<&str> = fit
        .candidates
        .iter()
        .filter(|candidate| candidate.aicc.is_none())
        .map(|candidate| candidate.model.name())
        .collect();
    // A lone candidate is chosen without comparing.
    if !uncompared.is_empty() && fit.candidates.len() > 1 {
        caveats.push(format!(
            "{} points are too few to compare {} by AICc (it needs more points than parameters \
             + 2): more repetitions would.",
            fit.points,
            uncompared.join(" and ")
        ));
    }
    if let Some(peak) = fit
        .chosen()
        .parameters
        .peak()
        .filter(|&peak| peak < f64::from(largest))
    {
        caveats.push(format!(
            "The fitted {} curve peaks at {peak:.1} shards, inside the measured range: past it \
             more shards lower the capacity.",
            fit.chosen.name()
        ));
    }
    caveats
}

/// A caveat when a shard count below the recommendation was not measured but the fit says it
/// would cover the need.
fn unmeasured_below(
    fit: &Fit,
    valid: &[&CapacityPoint],
    recommended: u32,
    needed: f64,
    margin: f64,
) -> Option<String> {
    let smallest = smallest_shards(&fit.chosen().parameters, needed / margin, 1)?;
    let measured = valid.iter().any(|point| point.shards == smallest);
    (smallest < recommended && !measured).then(|| {
        format!(
            "{smallest} shards were not measured; the {} fit says they would carry the target \
             too: measure them.",
            fit.chosen.name()
        )
    })
}

/// A rate in operations per second.
/// A rate in ops/s ([`rate`]).
fn ops(value: f64) -> String {
    format!("{} ops/s", rate(value))
}

/// A rate with the digits that tell close figures apart: two decimals below 10, where a lower
/// bound of 5.19 must not read as the 5.2 it falls short of.
fn rate(value: f64) -> String {
    if value.abs() < 10.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.1}")
    }
}

impl Plan {
    /// The answer in one sentence.
    #[must_use]
    pub fn answer(&self) -> String {
        let target = format!(
            "{} with {:.0} % headroom ({} needed) over {} objects",
            ops(self.target.churn),
            self.target.headroom * 100.0,
            ops(self.needed),
            self.target.objects
        );
        match &self.verdict {
            Verdict::Reachable { shards, low } => format!(
                "{shards} {} {target}: measured, the capacity's lower bound is {}.",
                if *shards == 1 {
                    "shard carries"
                } else {
                    "shards carry"
                },
                ops(*low)
            ),
            Verdict::ReachableByExtrapolation {
                shards,
                predicted,
                predicted_low,
            } => format!(
                "About {shards} {} would carry {target}, by extrapolation: the {} fit predicts {} \
                 (lower bound {}); no measured shard count does.",
                plural(*shards),
                self.fit.as_ref().map_or("", |fit| fit.chosen.name()),
                ops(*predicted),
                ops(*predicted_low)
            ),
            Verdict::Unreachable { why } => format!("{target} is not reachable: {why}."),
        }
    }

    /// The fitted model in one line: its parameters, R² and every candidate's AICc.
    #[must_use]
    pub fn model_line(&self) -> Option<String> {
        let fit = self.fit.as_ref()?;
        let chosen = fit.chosen();
        let parameters = chosen.parameters;
        let mut line = format!(
            "{} fit: λ = {}",
            chosen.model.name(),
            ops(parameters.lambda)
        );
        if chosen.model >= Model::Amdahl {
            let _ = write!(line, ", σ = {:.4}", parameters.sigma);
        }
        if chosen.model == Model::Usl {
            let _ = write!(line, ", κ = {:.5}", parameters.kappa);
        }
        if let Some(peak) = parameters.peak() {
            let _ = write!(line, ", peak at {peak:.1} shards");
        }
        let _ = write!(
            line,
            "; R² = {}, over {} points at {} shard counts; AICc: {}",
            fit.r_squared
                .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}")),
            fit.points,
            fit.shard_counts,
            fit.candidates
                .iter()
                .map(|candidate| format!(
                    "{} {}",
                    candidate.model.name(),
                    candidate
                        .aicc
                        .map_or_else(|| "n/a".to_owned(), |aicc| format!("{aicc:.1}"))
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Some(line)
    }

    /// The capacity curve as a table: per shard count the median [low, high], n, invalid
    /// repetitions and the fitted value; extrapolated and recommended rows marked.
    #[must_use]
    pub fn curve_table(&self) -> String {
        let recommended = self.verdict.shards();
        let mut table = TextTable::new(&[
            "shards",
            "capacity (ops/s)",
            "[low, high]",
            "n",
            "invalid",
            "fitted",
            "",
        ]);
        for row in &self.curve {
            let mut notes = Vec::new();
            let measured = match &row.measured {
                Some(point) if point.is_measured() => [
                    rate(point.median),
                    format!("[{}, {}]", rate(point.low), rate(point.high)),
                    point.samples.len().to_string(),
                    point.invalid.to_string(),
                ],
                Some(point) => {
                    notes.push("no valid repetition");
                    [
                        "–".to_owned(),
                        "–".to_owned(),
                        "0".to_owned(),
                        point.invalid.to_string(),
                    ]
                }
                None => {
                    notes.push("extrapolated");
                    [
                        "–".to_owned(),
                        "–".to_owned(),
                        "–".to_owned(),
                        "–".to_owned(),
                    ]
                }
            };
            if recommended == Some(row.shards) {
                notes.push("recommended");
            }
            table.row([row.shards.to_string()].into_iter().chain(measured).chain([
                row.fitted.map_or_else(|| "–".to_owned(), rate),
                notes.join(", "),
            ]));
        }
        table.render()
    }

    /// The cost at the recommendation in one line, when it was measured.
    #[must_use]
    pub fn cost_line(&self) -> Option<String> {
        let cost = self.cost?;
        let cores = |value: Option<f64>| {
            value.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2} cores"))
        };
        let mib = |value: Option<f64>| {
            value.map_or_else(
                || "n/a".to_owned(),
                |b| format!("{:.0} MiB", b / BYTES_PER_MIB),
            )
        };
        Some(format!(
            "Cost at {} {}: each operator shard {} and {}, all {} and {}; the sharder {} and {}.",
            cost.measured.shards,
            plural(cost.measured.shards),
            cores(cost.measured.operator_cpu_cores_per_shard),
            mib(cost.measured.operator_memory_bytes_per_shard),
            cores(cost.operator_cpu_cores),
            mib(cost.operator_memory_bytes),
            cores(cost.measured.sharder_cpu_cores),
            mib(cost.measured.sharder_memory_bytes),
        ))
    }
}

/// "shard" or "shards".
fn plural(shards: u32) -> &'static str {
    if shards == 1 { "shard" } else { "shards" }
}

impl Report for Plan {
    fn table(&self) -> String {
        let mut text = format!("Capacity against shards, need {}:\n", ops(self.needed));
        text.push_str(&self.curve_table());
        for line in [self.model_line(), Some(self.answer()), self.cost_line()]
            .into_iter()
            .flatten()
        {
            text.push('\n');
            text.push_str(&line);
            text.push('\n');
        }
        if !self.caveats.is_empty() {
            text.push_str("\nCaveats:\n");
            for caveat in &self.caveats {
                let _ = writeln!(text, "- {caveat}");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard count measured `samples`, its interval their min–max (fewer than 5).
    pub(super) fn measured(shards: u32, samples: &[f64]) -> CapacityPoint {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        CapacityPoint {
            shards,
            median: sorted[sorted.len() / 2],
            low: sorted[0],
            high: sorted[sorted.len() - 1],
            samples: samples.to_vec(),
            invalid: 0,
        }
    }

    pub(super) fn target(churn: f64, headroom: f64) -> Target {
        Target {
            objects: 1000,
            churn,
            headroom,
        }
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-6
    }

    /// Why `plan` says its target is unreachable; panics when it says otherwise.
    fn unreachable_why(plan: &Plan) -> &str {
        match &plan.verdict {
            Verdict::Unreachable { why } => why,
            verdict => panic!("{verdict:?}"),
        }
    }

    /// 1 shard 60–80, 2 shards 120–150 (median 135), 3 shards 140–170.
    fn three_shard_counts() -> Vec<CapacityPoint> {
        vec![
            measured(2, &[120.0, 135.0, 150.0]),
            measured(1, &[60.0, 70.0, 80.0]),
            measured(3, &[140.0, 160.0, 170.0]),
        ]
    }

    /// Linear at 100 ops/s per shard, each shard count's repetitions ±10 %: 1 to 3 shards.
    pub(super) fn linear_to_three() -> Vec<CapacityPoint> {
        (1..=3)
            .map(|n| {
                let n = f64::from(n);
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "1 to 3"
                )]
                measured(n as u32, &[90.0 * n, 100.0 * n, 110.0 * n])
            })
            .collect()
    }

    #[test]
    fn the_smallest_shard_count_whose_lower_bound_covers_the_need_is_recommended() {
        // Needed: 100 × 1.3 = 130. 2 shards' median (135) covers it, their lower bound (120)
        // does not; 3 shards' lower bound (140) does.
        let plan = plan(target(100.0, 0.3), three_shard_counts(), &[], None).unwrap();
        assert!(close(plan.needed, 130.0));
        assert_eq!(
            plan.verdict,
            Verdict::Reachable {
                shards: 3,
                low: 140.0
            }
        );
        assert!(plan.verdict.within_measured_range());
        let shards: Vec<u32> = plan.curve.iter().map(|row| row.shards).collect();
        assert_eq!(shards, [1, 2, 3]);
        assert!(plan.answer().starts_with("3 shards carry 100.0 ops/s with 30 % headroom (130.0 ops/s needed) over 1000 objects"), "{}", plan.answer());
    }

    #[test]
    fn the_headroom_raises_the_capacity_needed() {
        // Without headroom 100 is needed, and 2 shards' lower bound (120) covers it.
        let plan = plan(target(100.0, 0.0), three_shard_counts(), &[], None).unwrap();
        assert!(close(plan.needed, 100.0));
        assert_eq!(plan.verdict.shards(), Some(2));
        assert!(close(target(100.0, DEFAULT_HEADROOM).needed(), 130.0));
    }

    #[test]
    fn the_cost_at_the_recommendation_is_per_shard_and_for_all_shards() {
        let costs = [
            ShardCost {
                shards: 2,
                operator_cpu_cores_per_shard: Some(9.0),
                operator_memory_bytes_per_shard: None,
                sharder_cpu_cores: None,
                sharder_memory_bytes: None,
            },
            ShardCost {
                shards: 3,
                operator_cpu_cores_per_shard: Some(0.5),
                operator_memory_bytes_per_shard: Some(100.0 * BYTES_PER_MIB),
                sharder_cpu_cores: Some(0.05),
                sharder_memory_bytes: None,
            },
        ];
        let plan = plan(target(100.0, 0.3), three_shard_counts(), &costs, None).unwrap();
        let cost = plan.cost.unwrap();
        assert_eq!(cost.measured, costs[1]);
        assert!(close(cost.operator_cpu_cores.unwrap(), 1.5));
        assert!(close(
            cost.operator_memory_bytes.unwrap(),
            300.0 * BYTES_PER_MIB
        ));
        assert_eq!(
            plan.cost_line().unwrap(),
            "Cost at 3 shards: each operator shard 0.50 cores and 100 MiB, all 1.50 cores and \
             300 MiB; the sharder 0.05 cores and n/a."
        );
    }

    #[test]
    fn beyond_the_measured_range_the_fit_extrapolates_to_a_lower_bound() {
        // λ = 100, and the lower bounds are 0.9 of the medians: 500 / 0.9 = 555.6 needed from
        // the fit, so 6 shards (600), not 5 (500).
        let plan = plan(target(400.0, 0.25), linear_to_three(), &[], None).unwrap();
        assert_eq!(plan.fit.as_ref().unwrap().chosen, Model::Linear);
        let Verdict::ReachableByExtrapolation {
            shards,
            predicted,
            predicted_low,
        } = plan.verdict
        else {
            panic!("{:?}", plan.verdict);
        };
        assert_eq!(shards, 6);
        assert!(close(predicted, 600.0) && close(predicted_low, 540.0));
        assert!(!plan.verdict.within_measured_range());
        assert_eq!(plan.cost, None);
        // 4 to 6 shards are extrapolated rows, marked so in the table.
        let extrapolated: Vec<u32> = plan
            .curve
            .iter()
            .filter(|row| row.measured.is_none())
            .map(|row| row.shards)
            .collect();
        assert_eq!(extrapolated, [4, 5, 6]);
        // 5 shards measured, every repetition invalid: one row, not extrapolated.
        let mut points = linear_to_three();
        points.push(CapacityPoint {
            samples: Vec::new(),
            invalid: 2,
            ..measured(5, &[0.0])
        });
        let with_invalid = super::plan(target(400.0, 0.25), points, &[], None).unwrap();
        let rows: Vec<(u32, bool)> = with_invalid
            .curve
            .iter()
            .map(|row| (row.shards, row.measured.is_none()))
            .collect();
        assert_eq!(
            rows,
            [
                (1, false),
                (2, false),
                (3, false),
                (4, true),
                (5, false),
                (6, true)
            ]
        );
        let table = plan.curve_table();
        let last = table.lines().last().unwrap();
        assert!(last.contains("extrapolated, recommended"), "{table}");
        assert!(last.contains("600.0"), "{table}");
        assert!(
            table.lines().nth(1).unwrap().contains("[90.0, 110.0]"),
            "{table}"
        );
        assert!(
            plan.caveats
                .iter()
                .any(|c| c.contains("beyond the measured 3")),
            "{:?}",
            plan.caveats
        );
        let report = plan.table();
        assert!(report.contains("About 6 shards would carry"), "{report}");
        assert!(report.contains("linear fit: λ = 100.0 ops/s"), "{report}");
    }

    #[test]
    fn a_retrograde_curve_that_peaks_below_the_need_is_unreachable() {
        // USL λ = 100, σ = 0.1, κ = 0.05 peaks at √18 ≈ 4.24 shards with about 210.9 ops/s.
        let usl = Parameters {
            lambda: 100.0,
            sigma: 0.1,
            kappa: 0.05,
        };
        let points = (1..=4)
            .map(|n| {
                let capacity = usl.predict(f64::from(n));
                measured(n, &[capacity, capacity])
            })
            .collect();
        let plan = plan(target(200.0, 0.3), points, &[], None).unwrap();
        assert_eq!(plan.fit.as_ref().unwrap().chosen, Model::Usl);
        let why = unreachable_why(&plan);
        assert!(
            why.contains("peaks at 4.2 shards with 210.9 ops/s"),
            "{why}"
        );
        assert!(why.contains("below the 260.0 ops/s needed"), "{why}");
        assert_eq!(plan.verdict.shards(), None);
    }

    #[test]
    fn one_shard_count_that_falls_short_cannot_be_extrapolated() {
        let plan = plan(
            target(100.0, 0.3),
            vec![measured(2, &[90.0, 100.0])],
            &[],
            None,
        )
        .unwrap();
        let why = unreachable_why(&plan);
        assert!(why.contains("2 or more shard counts"), "{why}");
        assert_eq!(plan.fit, None);
    }

    #[test]
    fn a_lower_bound_of_zero_leaves_nothing_to_extrapolate() {
        let points = vec![
            measured(1, &[0.0, 50.0, 60.0]),
            measured(2, &[100.0, 110.0]),
        ];
        let plan = plan(target(500.0, 0.3), points, &[], None).unwrap();
        let why = unreachable_why(&plan);
        assert!(why.contains("a measured lower bound is 0 ops/s"), "{why}");
    }

    #[test]
    fn the_smallest_shard_count_is_found_on_the_rise_to_the_peak() {
        let linear = Parameters {
            lambda: 100.0,
            sigma: 0.0,
            kappa: 0.0,
        };
        assert_eq!(smallest_shards(&linear, 250.0, 1), Some(3));
        assert_eq!(smallest_shards(&linear, 250.0, 5), Some(5));
        assert_eq!(smallest_shards(&linear, 1e9, 1), None);
        let usl = Parameters {
            lambda: 100.0,
            sigma: 0.1,
            kappa: 0.05,
        };
        // C(3) = 300 / 1.5 = 200, C(4) = 400 / 1.9 ≈ 210.5, C(5) = 500 / 2.4 ≈ 208.3.
        assert_eq!(smallest_shards(&usl, 205.0, 1), Some(4));
        assert_eq!(smallest_shards(&usl, 205.0, 5), Some(5));
        assert_eq!(smallest_shards(&usl, 210.0, 5), None);
    }

    #[test]
    fn caveats_name_few_repetitions_invalid_ones_and_another_world() {
        let mut points = three_shard_counts();
        points[0].invalid = 2;
        points.push(measured(1, &[70.0]));
        points.remove(1);
        points.push(CapacityPoint {
            samples: Vec::new(),
            invalid: 3,
            ..measured(4, &[0.0])
        });
        let plan = plan(target(100.0, 0.3), points, &[], Some(500)).unwrap();
        let caveats = plan.caveats.join("\n");
        for expected in [
            "At 1 shard a single valid repetition",
            "At 2, 3 shards fewer than 5 valid repetitions: the interval is their min–max",
            "Invalid repetitions are excluded from the capacity and the fit: 2 at 2 shards, 3 at 4 shards.",
            "At 4 shards no repetition was valid",
            "measured over 500 objects and the target has 1000",
            "No cost was measured at 3 shards.",
        ] {
            assert!(
                caveats.contains(expected),
                "{expected} is missing from\n{caveats}"
            );
        }
        assert!(plan.curve_table().contains("no valid repetition"));
    }

    #[test]
    fn bad_input_names_the_field_and_value() {
        let plan = |target, points| plan(target, points, &[], None);
        assert_eq!(
            plan(target(0.0, 0.3), three_shard_counts()),
            Err(Error::Churn { churn: 0.0 })
        );
        assert_eq!(
            plan(target(100.0, -0.1), three_shard_counts()),
            Err(Error::Headroom { headroom: -0.1 })
        );
        assert_eq!(plan(target(100.0, 0.3), Vec::new()), Err(Error::NoPoints));
        let nothing = Target {
            objects: 0,
            ..target(100.0, 0.3)
        };
        assert_eq!(plan(nothing, three_shard_counts()), Err(Error::Objects));
        let twice = vec![measured(2, &[1.0]), measured(2, &[2.0])];
        assert_eq!(
            plan(target(100.0, 0.3), twice),
            Err(Error::DuplicateShards { shards: 2 })
        );
        let mut inverted = three_shard_counts();
        inverted[0].low = 200.0;
        let error = plan(target(100.0, 0.3), inverted).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the capacity low at 2 shards must be a finite number of operations/s ≥ 0 and ≤ the \
             median, got 200"
        );
        let mut nan = three_shard_counts();
        nan[2].samples[1] = f64::NAN;
        assert!(matches!(
            plan(target(100.0, 0.3), nan),
            Err(Error::Capacity {
                shards: 3,
                field: "samples",
                ..
            })
        ));
        let none_valid = vec![CapacityPoint {
            samples: Vec::new(),
            invalid: 4,
            ..measured(1, &[0.0])
        }];
        assert_eq!(
            plan(target(100.0, 0.3), none_valid),
            Err(Error::NoValidRepetition { invalid: 4 })
        );
    }
}
