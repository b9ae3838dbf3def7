//! The capacity search's decisions (docs/experiments.md#capacity-search), pure: which churn the
//! next step offers, and the bracket the steps so far leave.
//!
//! From `churn.from`, the offered churn doubles while steps pass (capped at `churn.to`); after
//! the first failure it bisects, geometrically since the precision is relative, between the
//! highest passing and the lowest failing step until the failing one is within `precision`
//! above the passing one. A first step that fails leaves nothing passing: the capacity is below
//! the range. A step at `churn.to` that passes ends the search: the capacity is at least that.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::{
    measure::{
        findings::Finding,
        latency::LatencySummary,
        prometheus::Quantile,
        slo::{Metric, Slo, Verdict},
        validity::Validity,
    },
    scenario::Search,
};

/// How the churn grows while steps pass.
const GROWTH: f64 = 2.0;

/// The highest passing and the lowest failing churn so far, in changes per second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Bracket {
    /// The highest churn of a passing step; `None` if none passed.
    pub highest_passing: Option<f64>,
    /// The lowest churn of a failing step; `None` if none failed.
    pub lowest_failing: Option<f64>,
}

impl Bracket {
    /// Adds a step's outcome.
    fn record(&mut self, churn: f64, passed: bool) {
        if passed {
            self.highest_passing = Some(self.highest_passing.map_or(churn, |old| old.max(churn)));
        } else {
            self.lowest_failing = Some(self.lowest_failing.map_or(churn, |old| old.min(churn)));
        }
    }

    /// The lowest failing churn over the highest passing one, minus 1: the bracket's relative
    /// width; `None` while either end is open.
    #[must_use]
    pub fn width(&self) -> Option<f64> {
        Some(self.lowest_failing? / self.highest_passing? - 1.0)
    }
}

/// The search of one shard count: the steps taken so far and the bracket they leave.
#[derive(Debug, Clone)]
pub struct Bisection {
    search: Search,
    bracket: Bracket,
    steps: u32,
}

impl Bisection {
    /// A search that has taken no step.
    #[must_use]
    pub fn new(search: Search) -> Self {
        Self {
            search,
            bracket: Bracket::default(),
            steps: 0,
        }
    }

    /// The churn the next step offers, or `None` when the search is over: the bracket is
    /// within the precision, the first step failed, a step at the top of the range passed, or
    /// the steps ran out.
    #[must_use]
    pub fn next(&self) -> Option<f64> {
        let Search {
            churn,
            precision,
            max_steps,
            ..
        } = self.search;
        if self.steps >= max_steps {
            return None;
        }
        match (self.bracket.highest_passing, self.bracket.lowest_failing) {
            (None, None) => Some(churn.from),
            (None, Some(_)) => None,
            (Some(passing), None) => (passing < churn.to).then(|| (passing * GROWTH).min(churn.to)),
            (Some(passing), Some(failing)) => {
                (failing / passing - 1.0 > precision).then(|| (passing * failing).sqrt())
            }
        }
    }

    /// Records the outcome of a step at `churn`.
    pub fn record(&mut self, churn: f64, passed: bool) {
        self.steps += 1;
        self.bracket.record(churn, passed);
    }

    /// The bracket so far.
    #[must_use]
    pub fn bracket(&self) -> Bracket {
        self.bracket
    }
}

/// The rate at which the API server accepted a step's changes: those accepted from `started`
/// on (`completed`, in any order), over the hold or, if the last was accepted later, up to
/// it. A change due at the very end of the hold thus still counts, and a backlog of writes
/// shows as a lower rate.
#[must_use]
pub fn achieved_rate(completed: &[Timestamp], started: Timestamp, hold: Duration) -> f64 {
    let accepted: Vec<Timestamp> = completed
        .iter()
        .copied()
        .filter(|at| *at >= started)
        .collect();
    let last = accepted.iter().max().map_or(hold, |last| {
        crate::measure::elapsed(started, *last).max(hold)
    });
    crate::measure::as_f64(accepted.len() as u64) / last.as_secs_f64()
}

/// One step of a search: the churn it offered and what it measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The churn offered, in changes per second.
    pub churn: f64,
    /// When the step began offering it.
    pub started: Timestamp,
    /// How long it offered it.
    pub hold: Duration,
    /// The changes its schedule made due.
    pub scheduled: u64,
    /// The changes the API server accepted during the hold, per second.
    pub achieved_per_second: f64,
    /// The changes whose API call failed.
    pub failed: u64,
    /// The reconciliation latencies of its changes, those still outstanding after the drain
    /// censored at their time so far.
    pub reconciliation: LatencySummary,
    /// The p99 of the operators' queue latency from the step's start to the end of its drain.
    pub queue_p99: Option<Quantile>,
    /// The time after the hold until its changes were reconciled or the drain ran out.
    pub drained: Duration,
    /// Its changes not reconciled when the drain ended.
    pub outstanding: u64,
    /// The share of the machine's cores that were busy during the hold.
    pub machine_busy: Option<f64>,
    /// The cores loadgen used during the hold.
    pub loadgen_cores: Option<f64>,
    /// The SLO verdicts on its latencies.
    pub verdicts: Vec<Verdict>,
    /// Whether the search counted it as passing: it met every SLO and was valid.
    pub passed: bool,
    /// Whether the harness, not the operator, may have shaped its figures.
    pub validity: Validity,
    /// What bound it, from the API server's and the shards' metrics.
    pub findings: Vec<Finding>,
}

impl Step {
    /// The verdicts on a step's p99s: a reconciliation p99 reached by a censored latency is a
    /// lower bound ([`Verdict::at_least`]).
    #[must_use]
    pub fn verdicts(
        slo: &Slo,
        reconciliation: &LatencySummary,
        queue: Option<Quantile>,
    ) -> Vec<Verdict> {
        slo.verdicts(
            Duration::from_secs_f64(reconciliation.p99_ms / 1000.0),
            queue,
        )
        .into_iter()
        .map(|verdict| {
            if verdict.metric == Metric::ReconciliationLatency && reconciliation.p99_lower_bound {
                verdict.at_least()
            } else {
                verdict
            }
        })
        .collect()
    }

    /// The span its figures cover: the hold and the drain.
    #[must_use]
    pub fn span(&self) -> (Timestamp, Duration) {
        (self.started, self.hold + self.drained)
    }

    /// The first SLO it surely breached.
    #[must_use]
    pub fn breach(&self) -> Option<Metric> {
        self.verdicts
            .iter()
            .find(|verdict| verdict.met == Some(false))
            .map(|verdict| verdict.metric)
    }

    /// Whether every SLO was surely met: a verdict the measurement cannot decide (a bucket or
    /// a lower bound that holds the threshold) does not pass, so a capacity is never
    /// overstated. A step that measured nothing does not pass either.
    #[must_use]
    pub fn met_slos(&self) -> bool {
        self.reconciliation.count > 0 && self.verdicts.iter().all(|v| v.met == Some(true))
    }
}

/// The search of one shard count: its steps and the brackets they leave.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResults {
    /// The steps, in the order they ran.
    pub steps: Vec<Step>,
    /// The bracket of the search, on every SLO together.
    pub bracket: Bracket,
}

impl SearchResults {
    /// The bracket on one SLO over the steps whose verdict on it was decided: the highest step
    /// that met it and the lowest that breached it.
    #[must_use]
    pub fn bracket_of(&self, metric: Metric) -> Bracket {
        let mut bracket = Bracket::default();
        for step in &self.steps {
            if let Some(met) = step
                .verdicts
                .iter()
                .find(|verdict| verdict.metric == metric)
                .and_then(|verdict| verdict.met)
            {
                bracket.record(step.churn, met);
            }
        }
        bracket
    }

    /// The step at the failing end of the bracket: the lowest that did not pass.
    #[must_use]
    pub fn deciding_step(&self) -> Option<&Step> {
        self.steps
            .iter()
            .filter(|step| !step.passed)
            .min_by(|a, b| a.churn.total_cmp(&b.churn))
    }

    /// The SLOs the step at the failing end did not surely meet: those that decided the
    /// capacity.
    #[must_use]
    pub fn deciding_slos(&self) -> Vec<Metric> {
        self.deciding_step().map_or_else(Vec::new, |step| {
            step.verdicts
                .iter()
                .filter(|verdict| verdict.met != Some(true))
                .map(|verdict| verdict.metric)
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::Ramp;

    fn search(from: f64, to: f64) -> Search {
        Search {
            churn: Ramp { from, to },
            hold: Duration::from_secs(30),
            drain: Duration::from_secs(30),
            precision: 0.1,
            max_steps: 12,
            workers: 20,
        }
    }

    /// Runs the search against a controller that sustains `capacity`; returns the churn of
    /// every step and the bracket.
    fn run(search: Search, capacity: f64) -> (Vec<f64>, Bracket) {
        let mut bisection = Bisection::new(search);
        let mut steps = Vec::new();
        while let Some(churn) = bisection.next() {
            steps.push(churn);
            bisection.record(churn, churn <= capacity);
        }
        (steps, bisection.bracket())
    }

    #[test]
    fn the_search_doubles_then_bisects_to_a_bracket_within_the_precision() {
        let (steps, bracket) = run(search(2.0, 64.0), 11.0);
        // 2, 4, 8 pass, 16 fails; then √(8·16) = 11.31 fails, √(8·11.31) = 9.51 passes,
        // √(9.51·11.31) = 10.37 passes: 11.31 / 10.37 = 1.09, within 10 %.
        assert_eq!(steps.len(), 7, "{steps:?}");
        assert_eq!(&steps[..4], [2.0, 4.0, 8.0, 16.0]);
        let (passing, failing) = (
            bracket.highest_passing.unwrap(),
            bracket.lowest_failing.unwrap(),
        );
        assert!(passing <= 11.0 && 11.0 < failing, "{bracket:?}");
        assert!(bracket.width().unwrap() <= 0.1, "{bracket:?}");
        assert!((passing - 10.37).abs() < 0.01, "{bracket:?}");
    }

    #[test]
    fn a_first_step_that_fails_ends_the_search_below_the_range() {
        let (steps, bracket) = run(search(2.0, 64.0), 1.0);
        assert_eq!(steps, [2.0]);
        assert_eq!(
            bracket,
            Bracket {
                highest_passing: None,
                lowest_failing: Some(2.0)
            }
        );
        assert_eq!(bracket.width(), None);
    }

    #[test]
    fn a_step_at_the_top_that_passes_ends_the_search_above_the_range() {
        let (steps, bracket) = run(search(2.0, 12.0), 100.0);
        // Doubling is capped at the top of the range.
        assert_eq!(steps, [2.0, 4.0, 8.0, 12.0]);
        assert_eq!(
            bracket,
            Bracket {
                highest_passing: Some(12.0),
                lowest_failing: None
            }
        );
    }

    #[test]
    fn the_steps_run_out_before_the_precision_is_reached() {
        let mut tight = search(1.0, 1024.0);
        tight.max_steps = 5;
        let (steps, bracket) = run(tight, 100.0);
        assert_eq!(steps, [1.0, 2.0, 4.0, 8.0, 16.0]);
        assert_eq!(bracket.lowest_failing, None);
    }

    #[test]
    fn the_achieved_rate_counts_every_accepted_change_over_the_hold_or_the_backlog() {
        let at = |millis| Timestamp::from_millisecond(millis).unwrap();
        let hold = Duration::from_secs(10);
        // 20 changes accepted, the last 5 ms after the hold: 2/s, not 1.9/s.
        let on_time: Vec<Timestamp> = (0..20).map(|i| at(500 * i + 505)).collect();
        assert!((achieved_rate(&on_time, at(0), hold) - 20.0 / 10.005).abs() < 1e-9);
        // A backlog: the last of 20 accepted at 20 s.
        let late: Vec<Timestamp> = (1..=20).map(|i| at(1000 * i)).collect();
        assert!((achieved_rate(&late, at(0), hold) - 1.0).abs() < 1e-9);
        // Changes of an earlier step do not count.
        assert!((achieved_rate(&late, at(15_000), hold) - 0.6).abs() < 1e-9);
    }

    #[test]
    fn a_noisy_step_never_widens_the_bracket() {
        let mut bisection = Bisection::new(search(2.0, 64.0));
        bisection.record(8.0, true);
        bisection.record(16.0, false);
        // A pass above a fail (noise) raises the passing end; the bracket is then inverted
        // and the search ends rather than bisecting an empty range.
        bisection.record(20.0, true);
        assert_eq!(bisection.bracket().highest_passing, Some(20.0));
        assert_eq!(bisection.next(), None);
    }
}
