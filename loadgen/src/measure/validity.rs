//! Whether a measurement can be trusted: VALID, or INVALID with its reasons
//! (docs/experiments.md#validity).
//!
//! A measurement is one shard count's load, or one step of a capacity search. It is invalid
//! when the harness, not the system under test, may have shaped its figures: the load it
//! offered did not arrive, loadgen or the machine ran out of CPU, a client held requests back,
//! the API server failed requests, or a watch started over. Each rule is checked only when its
//! signal was measured; those that were not are listed, so a VALID verdict says what it rests on.

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::{as_f64, cost::MACHINE_BOUND, count_within, ratio};

/// The largest share of the offered rate the achieved rate may fall short by.
pub const MAX_SHORTFALL: f64 = 0.05;

/// The relative rounding of a share computed from rates, so a rate exactly at a threshold
/// (7.6 of 8.0 ops/s, 5 % short) is not read as past it.
const ROUNDING: f64 = 1e-9;

/// The most cores loadgen may use. loadgen stamps every watch event on arrival and issues every
/// operation at its due time from one process; past half a core its own runtime queues them, so
/// latencies and rates would include loadgen's delays. On the 2-core reference machine half a
/// core is also a quarter of what the system under test shares.
pub const MAX_LOADGEN_CORES: f64 = 0.5;

/// The most time, summed over requests, a client-side rate limiter may have held requests
/// back: client-go reports any one request it held back longer (`longThrottleLatency`, 50 ms);
/// applied to the sum, the rule is stricter.
pub const MAX_RATE_LIMITER_WAIT_SECONDS: f64 = 0.05;

/// The largest share of the load's API requests that may fail.
pub const MAX_ERROR_SHARE: f64 = 0.01;

/// What a measurement's validity is decided on, measured over the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Signals {
    /// Operations per second the schedule made due.
    pub offered_ops_per_second: f64,
    /// Operations per second the API server accepted.
    pub achieved_ops_per_second: f64,
    /// The cores loadgen used, time-weighted mean; `None` where not measured.
    pub loadgen_cores: Option<f64>,
    /// The machine's busy share of all cores, 0 to 1, time-weighted mean over the sampler's
    /// windows; `None` where not measured.
    pub machine_busy: Option<f64>,
    /// The machine's cores.
    pub machine_cores: u32,
    /// Seconds requests waited in a client-side rate limiter, summed; `None` when the clients
    /// have none (kube-rs clients do not throttle, docs/experiments.md#validity).
    pub rate_limiter_wait_seconds: Option<f64>,
    /// API requests the load issued.
    pub api_requests: u64,
    /// Of those, the ones that failed.
    pub api_errors: u64,
    /// Times a watch of loadgen's observer started over.
    pub watch_restarts: u64,
}

/// One rule of the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The achieved rate fell short of the offered rate by more than [`MAX_SHORTFALL`].
    Shortfall,
    /// loadgen used more than [`MAX_LOADGEN_CORES`].
    LoadgenCpu,
    /// The machine was busy beyond [`MACHINE_BOUND`].
    MachineCpu,
    /// A client-side rate limiter held requests back for more than
    /// [`MAX_RATE_LIMITER_WAIT_SECONDS`].
    RateLimiter,
    /// More than [`MAX_ERROR_SHARE`] of the load's API requests failed.
    ApiErrors,
    /// A watch started over during the load.
    WatchRestarts,
}

impl Rule {
    /// Its name in reports and CSV columns, as in `run.json`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shortfall => "shortfall",
            Self::LoadgenCpu => "loadgen_cpu",
            Self::MachineCpu => "machine_cpu",
            Self::RateLimiter => "rate_limiter",
            Self::ApiErrors => "api_errors",
            Self::WatchRestarts => "watch_restarts",
        }
    }
}

/// Why a measurement is invalid, or why a rule was not checked: a sentence with the figure and
/// the threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// The rule.
    pub rule: Rule,
    /// The sentence.
    pub sentence: String,
}

/// The verdict on a measurement. The default, not valid and without a reason, is what a
/// measurement holds before it is assessed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Validity {
    /// Whether no rule was broken.
    pub valid: bool,
    /// The rules broken.
    pub reasons: Vec<Reason>,
    /// The rules not checked, for want of their signal.
    pub unchecked: Vec<Reason>,
}

impl Validity {
    /// `yes`, or `INVALID: <rules>` naming the rules broken (`not assessed` for the default):
    /// a table cell.
    #[must_use]
    pub fn cell(&self) -> String {
        if self.valid {
            "yes".to_owned()
        } else if self.reasons.is_empty() {
            "INVALID: not assessed".to_owned()
        } else {
            format!("INVALID: {}", self.broken().join(", "))
        }
    }

    /// The names of the rules broken.
    #[must_use]
    pub fn broken(&self) -> Vec<&'static str> {
        self.reasons
            .iter()
            .map(|reason| reason.rule.as_str())
            .collect()
    }

    /// The verdict on `signals`.
    #[must_use]
    pub fn of(signals: &Signals) -> Self {
        let mut reasons = Vec::new();
        let mut unchecked = Vec::new();
        let mut rule = |rule: Rule, outcome: Outcome| match outcome {
            Outcome::Broken(sentence) => reasons.push(Reason { rule, sentence }),
            Outcome::Unchecked(sentence) => unchecked.push(Reason { rule, sentence }),
            Outcome::Held => {}
        };
        rule(Rule::Shortfall, shortfall(signals));
        rule(Rule::LoadgenCpu, loadgen_cpu(signals.loadgen_cores));
        rule(
            Rule::MachineCpu,
            machine_cpu(signals.machine_busy, signals.machine_cores),
        );
        rule(
            Rule::RateLimiter,
            rate_limiter(signals.rate_limiter_wait_seconds),
        );
        rule(
            Rule::ApiErrors,
            api_errors(signals.api_requests, signals.api_errors),
        );
        rule(Rule::WatchRestarts, watch_restarts(signals.watch_restarts));
        Self {
            valid: reasons.is_empty(),
            reasons,
            unchecked,
        }
    }
}

/// The load's API operations from `start` to `end`, both included, as (requests, errors):
/// those that succeeded at `completed` and those that failed at `failed`.
///
/// # Caveats
///
/// An operation is one call of the client, which retries answers 429, 503 and 504 itself
/// (kube-rs' default retry policy): the API server may have seen several requests, and only a
/// call that still failed counts as an error.
#[must_use]
pub fn api_calls(
    completed: &[Timestamp],
    failed: &[Timestamp],
    start: Timestamp,
    end: Timestamp,
) -> (u64, u64) {
    let errors = count_within(failed, start, end);
    (count_within(completed, start, end) + errors, errors)
}

/// What one rule found.
enum Outcome {
    Held,
    Broken(String),
    Unchecked(String),
}

fn shortfall(signals: &Signals) -> Outcome {
    let (offered, achieved) = (
        signals.offered_ops_per_second,
        signals.achieved_ops_per_second,
    );
    let Some(achieved_share) = ratio(achieved, offered) else {
        return Outcome::Unchecked("no load was offered: the achieved rate is not checked".into());
    };
    let short = 1.0 - achieved_share;
    if short > MAX_SHORTFALL + ROUNDING {
        Outcome::Broken(format!(
            "achieved {achieved:.1} ops/s of {offered:.1} offered ({:.0} % short; more than \
             {:.0} % short is invalid)",
            short * 100.0,
            MAX_SHORTFALL * 100.0
        ))
    } else {
        Outcome::Held
    }
}

fn loadgen_cpu(cores: Option<f64>) -> Outcome {
    match cores {
        None => Outcome::Unchecked("loadgen's CPU was not measured".into()),
        Some(cores) if cores > MAX_LOADGEN_CORES => Outcome::Broken(format!(
            "loadgen used {cores:.2} cores (more than {MAX_LOADGEN_CORES} core is invalid: its \
             own delays would enter the figures)"
        )),
        Some(_) => Outcome::Held,
    }
}

fn machine_cpu(busy: Option<f64>, cores: u32) -> Outcome {
    match busy {
        None => Outcome::Unchecked("the machine's CPU was not measured".into()),
        Some(busy) if busy > MACHINE_BOUND => Outcome::Broken(format!(
            "the machine was {:.0} % busy over its {cores} cores (above {:.0} % is invalid: \
             the figures are the machine's limit)",
            busy * 100.0,
            MACHINE_BOUND * 100.0
        )),
        Some(_) => Outcome::Held,
    }
}

fn rate_limiter(wait_seconds: Option<f64>) -> Outcome {
    match wait_seconds {
        None => Outcome::Unchecked(
            "the clients have no client-side rate limiter: no wait to check".into(),
        ),
        Some(wait) if wait > MAX_RATE_LIMITER_WAIT_SECONDS => Outcome::Broken(format!(
            "a client-side rate limiter held requests back for {:.0} ms in all (more than \
             {:.0} ms is invalid)",
            wait * 1000.0,
            MAX_RATE_LIMITER_WAIT_SECONDS * 1000.0
        )),
        Some(_) => Outcome::Held,
    }
}

fn api_errors(requests: u64, errors: u64) -> Outcome {
    let Some(share) = ratio(as_f64(errors), as_f64(requests)) else {
        return Outcome::Unchecked("no API requests: the error rate is not checked".into());
    };
    if share > MAX_ERROR_SHARE + ROUNDING {
        Outcome::Broken(format!(
            "{errors} of {requests} API requests failed ({:.1} %; more than {:.0} % is invalid)",
            share * 100.0,
            MAX_ERROR_SHARE * 100.0
        ))
    } else {
        Outcome::Held
    }
}

fn watch_restarts(restarts: u64) -> Outcome {
    if restarts > 0 {
        Outcome::Broken(format!(
            "the watches of Websites and Leases started over {restarts} time(s) during the load \
             (any is invalid: events in between were seen late, as a relist)"
        ))
    } else {
        Outcome::Held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> Signals {
        Signals {
            offered_ops_per_second: 8.0,
            achieved_ops_per_second: 8.0,
            loadgen_cores: Some(0.2),
            machine_busy: Some(0.6),
            machine_cores: 2,
            rate_limiter_wait_seconds: None,
            api_requests: 1000,
            api_errors: 0,
            watch_restarts: 0,
        }
    }

    fn broken(signals: &Signals) -> Vec<Rule> {
        Validity::of(signals)
            .reasons
            .iter()
            .map(|r| r.rule)
            .collect()
    }

    fn unchecked(signals: &Signals) -> Vec<Rule> {
        Validity::of(signals)
            .unchecked
            .iter()
            .map(|r| r.rule)
            .collect()
    }

    fn first_reason(signals: &Signals) -> String {
        Validity::of(signals).reasons[0].sentence.clone()
    }

    #[test]
    fn a_healthy_measurement_is_valid_and_says_what_was_not_checked() {
        let validity = Validity::of(&healthy());
        assert!(validity.valid);
        assert!(validity.reasons.is_empty());
        assert_eq!(unchecked(&healthy()), [Rule::RateLimiter]);
    }

    #[test]
    fn an_achieved_rate_more_than_5_percent_short_is_invalid() {
        let signals = Signals {
            achieved_ops_per_second: 7.1,
            ..healthy()
        };
        let validity = Validity::of(&signals);
        assert!(!validity.valid);
        assert_eq!(
            validity.reasons[0].sentence,
            "achieved 7.1 ops/s of 8.0 offered (11 % short; more than 5 % short is invalid)"
        );
    }

    #[test]
    fn an_achieved_rate_exactly_5_percent_short_or_above_offered_is_valid() {
        for achieved in [7.6, 8.0, 8.4] {
            let signals = Signals {
                achieved_ops_per_second: achieved,
                ..healthy()
            };
            assert!(broken(&signals).is_empty(), "{achieved}");
        }
        let signals = Signals {
            achieved_ops_per_second: 7.59,
            ..healthy()
        };
        assert_eq!(broken(&signals), [Rule::Shortfall]);
    }

    #[test]
    fn no_offered_load_leaves_the_shortfall_unchecked() {
        let signals = Signals {
            offered_ops_per_second: 0.0,
            achieved_ops_per_second: 0.0,
            ..healthy()
        };
        assert!(Validity::of(&signals).valid);
        assert!(unchecked(&signals).contains(&Rule::Shortfall));
    }

    #[test]
    fn loadgen_above_half_a_core_is_invalid() {
        let at = |cores| Signals {
            loadgen_cores: Some(cores),
            ..healthy()
        };
        assert!(broken(&at(0.5)).is_empty());
        assert_eq!(broken(&at(0.51)), [Rule::LoadgenCpu]);
        assert!(first_reason(&at(0.51)).starts_with("loadgen used 0.51 cores (more than 0.5 core"));
        let unmeasured = Signals {
            loadgen_cores: None,
            ..healthy()
        };
        assert!(broken(&unmeasured).is_empty());
        assert!(unchecked(&unmeasured).contains(&Rule::LoadgenCpu));
    }

    #[test]
    fn a_machine_busy_above_90_percent_is_invalid() {
        let at = |busy| Signals {
            machine_busy: Some(busy),
            ..healthy()
        };
        assert!(broken(&at(0.9)).is_empty());
        assert_eq!(broken(&at(0.93)), [Rule::MachineCpu]);
        assert!(
            first_reason(&at(0.93))
                .starts_with("the machine was 93 % busy over its 2 cores (above 90 %")
        );
        let unmeasured = Signals {
            machine_busy: None,
            ..healthy()
        };
        assert!(broken(&unmeasured).is_empty());
        assert!(unchecked(&unmeasured).contains(&Rule::MachineCpu));
    }

    #[test]
    fn a_rate_limiter_wait_above_50_ms_is_invalid() {
        let at = |wait| Signals {
            rate_limiter_wait_seconds: Some(wait),
            ..healthy()
        };
        assert!(broken(&at(0.0)).is_empty());
        assert!(broken(&at(0.05)).is_empty());
        assert_eq!(broken(&at(0.2)), [Rule::RateLimiter]);
        assert_eq!(
            first_reason(&at(0.2)),
            "a client-side rate limiter held requests back for 200 ms in all (more than 50 ms \
             is invalid)"
        );
        assert!(unchecked(&at(0.0)).is_empty());
    }

    #[test]
    fn api_errors_above_1_percent_are_invalid() {
        let at = |requests, errors| Signals {
            api_requests: requests,
            api_errors: errors,
            ..healthy()
        };
        assert!(broken(&at(1000, 10)).is_empty());
        assert_eq!(broken(&at(1000, 11)), [Rule::ApiErrors]);
        assert_eq!(
            first_reason(&at(1000, 11)),
            "11 of 1000 API requests failed (1.1 %; more than 1 % is invalid)"
        );
    }

    #[test]
    fn no_api_requests_leave_the_error_rate_unchecked() {
        let signals = Signals {
            api_requests: 0,
            api_errors: 0,
            ..healthy()
        };
        assert!(Validity::of(&signals).valid);
        assert!(unchecked(&signals).contains(&Rule::ApiErrors));
    }

    #[test]
    fn any_watch_restart_is_invalid() {
        let at = |restarts| Signals {
            watch_restarts: restarts,
            ..healthy()
        };
        assert!(broken(&at(0)).is_empty());
        assert_eq!(broken(&at(1)), [Rule::WatchRestarts]);
    }

    #[test]
    fn api_calls_are_counted_within_the_measurement() {
        let at = |s| Timestamp::from_second(s).unwrap();
        let completed = [at(1), at(5), at(6), at(10), at(11)];
        let failed = [at(2), at(7), at(12)];
        assert_eq!(api_calls(&completed, &failed, at(5), at(10)), (4, 1));
        assert_eq!(api_calls(&completed, &failed, at(20), at(30)), (0, 0));
    }

    #[test]
    fn every_broken_rule_is_a_reason() {
        let signals = Signals {
            offered_ops_per_second: 10.0,
            achieved_ops_per_second: 5.0,
            loadgen_cores: Some(0.8),
            machine_busy: Some(0.99),
            machine_cores: 2,
            rate_limiter_wait_seconds: Some(3.0),
            api_requests: 100,
            api_errors: 50,
            watch_restarts: 2,
        };
        assert_eq!(
            broken(&signals),
            [
                Rule::Shortfall,
                Rule::LoadgenCpu,
                Rule::MachineCpu,
                Rule::RateLimiter,
                Rule::ApiErrors,
                Rule::WatchRestarts
            ]
        );
    }

    #[test]
    fn rules_are_named_as_in_run_json() {
        for kind in [
            Rule::Shortfall,
            Rule::LoadgenCpu,
            Rule::MachineCpu,
            Rule::RateLimiter,
            Rule::ApiErrors,
            Rule::WatchRestarts,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
