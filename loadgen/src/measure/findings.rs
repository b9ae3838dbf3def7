//! Findings: plain sentences on what bound a measurement, each citing the figures it rests on
//! (docs/experiments.md#findings).
//!
//! - a shard's queue time against its reconcile time: queue-bound, more workers or shards help;
//! - the API server's request latency, throttling and errors, from its own metrics:
//!   control-plane-bound, more shards will not help;
//! - the machine's CPU: harness-bound, the figures are the machine's limit;
//! - skew: the hottest shard, by objects or by queue time, decided the breach.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    as_f64,
    cost::MACHINE_BOUND,
    prometheus::{self, Bucket, Quantile},
    ratio,
    slo::Metric,
    snapshot::{ApiServer, Between, ShardQueue},
    validity::MAX_ERROR_SHARE,
};
use crate::units::format_quantile;

/// The fewest observations a p99 is read from: below 100, the p99 is the largest observation.
pub const MIN_OBSERVATIONS: u64 = 100;

/// How many times its reconcile time a shard's queue time must be to call the shard
/// queue-bound: both histograms have buckets of a factor 1.25, so twice is beyond their error.
pub const QUEUE_BOUND_RATIO: f64 = 2.0;

/// The queue time below which waiting does not matter against SLOs of a second and more.
pub const QUEUE_FLOOR_SECONDS: f64 = 0.1;

/// The upstream API call latency SLO of Kubernetes: p99 of non-long-running calls on single
/// objects within 1 s.
pub const API_LATENCY_SLO_SECONDS: f64 = 1.0;

/// The p99 wait in API Priority and Fairness' queues above which requests are held back: a
/// tenth of [`API_LATENCY_SLO_SECONDS`].
pub const APF_WAIT_SECONDS: f64 = 0.1;

/// How many times the mean of the shards the hottest shard's objects must be for skew to have
/// decided a breach: a fifth above the mean.
pub const SKEW_OBJECTS_RATIO: f64 = 1.2;

/// How many times the mean of the shards' queue p99s the hottest shard's must be for skew to
/// have decided a breach (twice, beyond the buckets' error as in [`QUEUE_BOUND_RATIO`]).
pub const SKEW_QUEUE_RATIO: f64 = 2.0;

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A shard's items waited in its queue much longer than they were reconciled.
    QueueBound,
    /// The API server answered slowly.
    ApiServerLatency,
    /// The API server throttled requests.
    ApiServerThrottling,
    /// The API server failed requests.
    ApiServerErrors,
    /// The machine's CPU was saturated.
    MachineSaturated,
    /// The hottest shard decided the breach.
    Skew,
}

impl FindingKind {
    /// Its name in CSV columns, as in `run.json`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QueueBound => "queue_bound",
            Self::ApiServerLatency => "api_server_latency",
            Self::ApiServerThrottling => "api_server_throttling",
            Self::ApiServerErrors => "api_server_errors",
            Self::MachineSaturated => "machine_saturated",
            Self::Skew => "skew",
        }
    }
}

/// A finding: what it is about and its sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What it is about.
    pub kind: FindingKind,
    /// The sentence, with its figures.
    pub sentence: String,
}

/// One shard's signals over a measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardSignals {
    /// The shard.
    pub shard: String,
    /// The objects it held at the end of the measurement; `None` where not known.
    pub objects: Option<u64>,
    /// Its queue and work durations over the measurement.
    pub queue: ShardQueue,
}

/// What the findings are derived from, over one measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingSignals {
    /// Each shard's.
    pub shards: Vec<ShardSignals>,
    /// The API server's counts over the measurement; `None` where its metrics were not read.
    pub api_server: Option<ApiServer>,
    /// The machine's busy share of all cores, time-weighted mean; `None` where not measured.
    pub machine_busy: Option<f64>,
    /// The machine's cores.
    pub machine_cores: u32,
    /// The SLO the measurement breached, if any.
    pub breach: Option<Metric>,
}

impl FindingSignals {
    /// The signals from what the snapshots saw over a measurement, the objects per shard at
    /// its end, the machine's busy share and the SLO breached.
    #[must_use]
    pub fn new(
        between: Between,
        objects: &BTreeMap<String, u64>,
        machine_busy: Option<f64>,
        machine_cores: u32,
        breach: Option<Metric>,
    ) -> Self {
        Self {
            shards: between
                .shards
                .into_iter()
                .map(|(shard, queue)| ShardSignals {
                    objects: objects.get(&shard).copied(),
                    shard,
                    queue,
                })
                .collect(),
            api_server: between.api_server,
            machine_busy,
            machine_cores,
            breach,
        }
    }
}

/// The findings on `signals`, in the order of this module's list.
#[must_use]
pub fn findings(signals: &FindingSignals) -> Vec<Finding> {
    let mut found: Vec<Finding> = signals.shards.iter().filter_map(queue_bound).collect();
    if let Some(api) = &signals.api_server {
        found.extend(api_latency(api));
        found.extend(api_throttling(api));
        found.extend(api_errors(api));
    }
    found.extend(machine_saturated(
        signals.machine_busy,
        signals.machine_cores,
    ));
    if let Some(breach) = signals.breach {
        found.extend(skew_by_objects(&signals.shards, breach));
        found.extend(skew_by_queue(&signals.shards, breach));
    }
    found
}

/// The p99 of `buckets` when it rests on at least [`MIN_OBSERVATIONS`].
fn p99(buckets: &[Bucket]) -> Option<Quantile> {
    (prometheus::observations(buckets) >= MIN_OBSERVATIONS)
        .then(|| prometheus::histogram_quantile(0.99, buckets))
        .flatten()
}

fn queue_bound(shard: &ShardSignals) -> Option<Finding> {
    let queue = p99(&shard.queue.queue)?;
    let work = p99(&shard.queue.work)?;
    let times = ratio(queue.value, work.value).unwrap_or(f64::INFINITY);
    (queue.value >= QUEUE_FLOOR_SECONDS && times >= QUEUE_BOUND_RATIO).then(|| Finding {
        kind: FindingKind::QueueBound,
        sentence: format!(
            "{}: items waited {} in the queue (p99 of {}) against {} of reconcile (p99 of {}), \
             {} times as long (from {QUEUE_BOUND_RATIO} on): queue-bound, more workers or more \
             shards would shorten the wait",
            shard.shard,
            format_quantile(&queue),
            prometheus::observations(&shard.queue.queue),
            format_quantile(&work),
            prometheus::observations(&shard.queue.work),
            times_as(times),
        ),
    })
}

/// A ratio for a sentence: one decimal, or "many" for one without a denominator.
fn times_as(times: f64) -> String {
    if times.is_finite() {
        format!("{times:.1}")
    } else {
        "many".to_owned()
    }
}

const NOT_SHARDS: &str = "control-plane-bound, adding shards will not help";

fn api_latency(api: &ApiServer) -> Option<Finding> {
    let p99 = p99(&api.request_duration)?;
    (p99.value > API_LATENCY_SLO_SECONDS).then(|| Finding {
        kind: FindingKind::ApiServerLatency,
        sentence: format!(
            "the API server answered in {} (p99 of {} requests, watches left out), above the \
             {API_LATENCY_SLO_SECONDS} s of the Kubernetes API call latency SLO: {NOT_SHARDS}",
            format_quantile(&p99),
            prometheus::observations(&api.request_duration),
        ),
    })
}

fn api_throttling(api: &ApiServer) -> Option<Finding> {
    let wait = p99(&api.queue_wait);
    let waited = wait.is_some_and(|wait| wait.value > APF_WAIT_SECONDS);
    if api.too_many_requests == 0 && api.rejected == 0 && !waited {
        return None;
    }
    let wait = wait.map_or_else(
        || "not measured".to_owned(),
        |wait| {
            format!(
                "{} (p99 of {}, above {} ms held back)",
                format_quantile(&wait),
                prometheus::observations(&api.queue_wait),
                APF_WAIT_SECONDS * 1000.0
            )
        },
    );
    Some(Finding {
        kind: FindingKind::ApiServerThrottling,
        sentence: format!(
            "the API server throttled: {} requests answered 429, {} rejected by API Priority and \
             Fairness, queue wait {wait}: {NOT_SHARDS}",
            api.too_many_requests, api.rejected,
        ),
    })
}

fn api_errors(api: &ApiServer) -> Option<Finding> {
    let share = ratio(as_f64(api.server_errors), as_f64(api.requests))?;
    (share > MAX_ERROR_SHARE).then(|| Finding {
        kind: FindingKind::ApiServerErrors,
        sentence: format!(
            "the API server failed {} of {} requests with a 5xx code ({:.1} %, more than {:.0} %): \
             {NOT_SHARDS}",
            api.server_errors,
            api.requests,
            share * 100.0,
            MAX_ERROR_SHARE * 100.0
        ),
    })
}

fn machine_saturated(busy: Option<f64>, cores: u32) -> Option<Finding> {
    let busy = busy?;
    (busy > MACHINE_BOUND).then(|| Finding {
        kind: FindingKind::MachineSaturated,
        sentence: format!(
            "the machine was {:.0} % busy over its {cores} cores (above {:.0} %): harness-bound, \
             the figures are this machine's limit, not the shards'",
            busy * 100.0,
            MACHINE_BOUND * 100.0
        ),
    })
}

/// The mean of `values`; `None` for none.
fn mean(values: &[f64]) -> Option<f64> {
    ratio(values.iter().sum(), as_f64(values.len() as u64))
}

/// The entry with the largest value, and the mean of all values; `None` with fewer than two.
fn hottest<'a>(values: &[(&'a str, f64)]) -> Option<(&'a str, f64, f64)> {
    if values.len() < 2 {
        return None;
    }
    let &(shard, max) = values.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let mean = mean(&values.iter().map(|&(_, v)| v).collect::<Vec<_>>())?;
    Some((shard, max, mean))
}

fn skew_by_objects(shards: &[ShardSignals], breach: Metric) -> Option<Finding> {
    let objects: Vec<(&str, f64)> = shards
        .iter()
        .map(|s| Some((s.shard.as_str(), as_f64(s.objects?))))
        .collect::<Option<_>>()?;
    let (shard, max, mean) = hottest(&objects)?;
    let times = ratio(max, mean)?;
    (times >= SKEW_OBJECTS_RATIO).then(|| Finding {
        kind: FindingKind::Skew,
        sentence: format!(
            "{shard} held {max:.0} objects, {times:.2} times the mean of {mean:.0} over {} shards \
             (from {SKEW_OBJECTS_RATIO} on): the hottest shard decided the breach of the {}",
            shards.len(),
            breach.name()
        ),
    })
}

fn skew_by_queue(shards: &[ShardSignals], breach: Metric) -> Option<Finding> {
    let queues: Vec<(&str, Quantile)> = shards
        .iter()
        .filter_map(|s| Some((s.shard.as_str(), p99(&s.queue.queue)?)))
        .collect();
    let values: Vec<(&str, f64)> = queues.iter().map(|&(s, q)| (s, q.value)).collect();
    let (shard, max, mean) = hottest(&values)?;
    let times = ratio(max, mean)?;
    let (_, quantile) = queues.iter().find(|(s, _)| *s == shard)?;
    (times >= SKEW_QUEUE_RATIO).then(|| Finding {
        kind: FindingKind::Skew,
        sentence: format!(
            "{shard}'s queue p99 was {}, {times:.1} times the mean of the {} shards' p99s \
             (from {SKEW_QUEUE_RATIO} on): the hottest shard decided the breach of the {}",
            format_quantile(quantile),
            queues.len(),
            breach.name()
        ),
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    const INF: f64 = f64::INFINITY;

    /// `n` observations, all in the bucket (`lower`, `upper`] of bounds 0.001 × 1.25ⁱ.
    fn histogram(n: u64, seconds: f64) -> Vec<Bucket> {
        let bounds: Vec<f64> = (0..61).map(|i| 0.001 * 1.25_f64.powi(i)).collect();
        bounds
            .iter()
            .map(|&le| Bucket {
                le,
                cumulative: if le >= seconds { n } else { 0 },
            })
            .chain(std::iter::once(Bucket {
                le: INF,
                cumulative: n,
            }))
            .collect()
    }

    fn shard(name: &str, objects: u64, queue_seconds: f64, work_seconds: f64) -> ShardSignals {
        ShardSignals {
            shard: name.to_owned(),
            objects: Some(objects),
            queue: ShardQueue {
                queue: histogram(1000, queue_seconds),
                work: histogram(1000, work_seconds),
            },
        }
    }

    fn calm_api() -> ApiServer {
        ApiServer {
            request_duration: histogram(5000, 0.05),
            requests: 5000,
            server_errors: 0,
            too_many_requests: 0,
            rejected: 0,
            queue_wait: histogram(5000, 0.001),
        }
    }

    fn calm() -> FindingSignals {
        FindingSignals {
            shards: vec![
                shard("shard-0", 100, 0.01, 0.05),
                shard("shard-1", 100, 0.01, 0.05),
            ],
            api_server: Some(calm_api()),
            machine_busy: Some(0.5),
            machine_cores: 2,
            breach: None,
        }
    }

    fn kinds(signals: &FindingSignals) -> Vec<FindingKind> {
        findings(signals).iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_calm_measurement_has_no_findings() {
        assert!(findings(&calm()).is_empty());
        let breached = FindingSignals {
            breach: Some(Metric::QueueLatency),
            ..calm()
        };
        assert!(findings(&breached).is_empty());
    }

    #[test]
    fn a_shard_whose_items_wait_twice_their_reconcile_is_queue_bound() {
        let mut signals = calm();
        signals.shards[1] = shard("shard-1", 100, 0.5, 0.05);
        let found = findings(&signals);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, FindingKind::QueueBound);
        assert!(
            found[0].sentence.starts_with("shard-1: items waited "),
            "{}",
            found[0].sentence
        );
        assert!(found[0].sentence.contains("(p99 of 1000)"));
        assert!(found[0].sentence.contains("more workers or more shards"));
    }

    #[test]
    fn a_short_or_comparable_queue_time_is_not_queue_bound() {
        let mut signals = calm();
        // Waiting is below 100 ms, however long against the reconcile.
        signals.shards[0] = shard("shard-0", 100, 0.08, 0.002);
        // Waiting is as long as the reconcile.
        signals.shards[1] = shard("shard-1", 100, 0.5, 0.4);
        assert!(kinds(&signals).is_empty());
    }

    #[test]
    fn a_queue_time_from_too_few_observations_is_no_finding() {
        let mut signals = calm();
        signals.shards[0].queue = ShardQueue {
            queue: histogram(99, 5.0),
            work: histogram(99, 0.01),
        };
        assert!(kinds(&signals).is_empty());
        signals.shards[0].queue = ShardQueue::default();
        assert!(kinds(&signals).is_empty());
    }

    #[test]
    fn an_api_server_p99_above_1_s_is_control_plane_bound() {
        let signals = FindingSignals {
            api_server: Some(ApiServer {
                request_duration: histogram(5000, 1.5),
                ..calm_api()
            }),
            ..calm()
        };
        let found = findings(&signals);
        assert_eq!(kinds(&signals), [FindingKind::ApiServerLatency]);
        assert!(found[0].sentence.contains("(p99 of 5000 requests"));
        assert!(found[0].sentence.ends_with("adding shards will not help"));
        let at_slo = FindingSignals {
            api_server: Some(ApiServer {
                request_duration: histogram(5000, 0.7),
                ..calm_api()
            }),
            ..calm()
        };
        assert!(kinds(&at_slo).is_empty());
    }

    #[test]
    fn any_429_rejection_or_long_wait_is_throttling() {
        let with = |api: ApiServer| FindingSignals {
            api_server: Some(api),
            ..calm()
        };
        let throttled = with(ApiServer {
            too_many_requests: 3,
            ..calm_api()
        });
        assert_eq!(kinds(&throttled), [FindingKind::ApiServerThrottling]);
        assert!(
            findings(&throttled)[0]
                .sentence
                .starts_with("the API server throttled: 3 requests answered 429, 0 rejected")
        );
        let rejected = with(ApiServer {
            rejected: 1,
            ..calm_api()
        });
        assert_eq!(kinds(&rejected), [FindingKind::ApiServerThrottling]);
        let queued = with(ApiServer {
            queue_wait: histogram(5000, 0.3),
            ..calm_api()
        });
        assert_eq!(kinds(&queued), [FindingKind::ApiServerThrottling]);
        let short_wait = with(ApiServer {
            queue_wait: histogram(5000, 0.05),
            ..calm_api()
        });
        assert!(kinds(&short_wait).is_empty());
    }

    #[test]
    fn api_server_errors_above_1_percent_are_a_finding() {
        let with = |errors| FindingSignals {
            api_server: Some(ApiServer {
                server_errors: errors,
                ..calm_api()
            }),
            ..calm()
        };
        assert!(kinds(&with(50)).is_empty());
        assert_eq!(kinds(&with(51)), [FindingKind::ApiServerErrors]);
        assert_eq!(
            findings(&with(51))[0].sentence,
            "the API server failed 51 of 5000 requests with a 5xx code (1.0 %, more than 1 %): \
             control-plane-bound, adding shards will not help"
        );
        let no_requests = FindingSignals {
            api_server: Some(ApiServer::default()),
            ..calm()
        };
        assert!(kinds(&no_requests).is_empty());
    }

    #[test]
    fn a_machine_busy_above_90_percent_is_harness_bound() {
        let at = |busy| FindingSignals {
            machine_busy: busy,
            ..calm()
        };
        assert_eq!(kinds(&at(Some(0.95))), [FindingKind::MachineSaturated]);
        assert!(
            findings(&at(Some(0.95)))[0]
                .sentence
                .starts_with("the machine was 95 % busy over its 2 cores (above 90 %)")
        );
        assert!(kinds(&at(Some(0.9))).is_empty());
        assert!(kinds(&at(None)).is_empty());
    }

    #[test]
    fn the_hottest_shard_by_objects_decided_a_breach() {
        let mut signals = FindingSignals {
            breach: Some(Metric::ReconciliationLatency),
            ..calm()
        };
        signals.shards[0].objects = Some(140);
        signals.shards[1].objects = Some(60);
        // 140 against a mean of 100.
        let found = findings(&signals);
        assert_eq!(kinds(&signals), [FindingKind::Skew]);
        assert_eq!(
            found[0].sentence,
            "shard-0 held 140 objects, 1.40 times the mean of 100 over 2 shards (from 1.2 on): \
             the hottest shard decided the breach of the reconciliation latency"
        );
        // No breach, nothing decided.
        signals.breach = None;
        assert!(kinds(&signals).is_empty());
        // A spread within a fifth of the mean.
        signals.breach = Some(Metric::ReconciliationLatency);
        signals.shards[0].objects = Some(115);
        signals.shards[1].objects = Some(85);
        assert!(kinds(&signals).is_empty());
    }

    #[test]
    fn the_hottest_shard_by_queue_time_decided_a_breach() {
        let signals = FindingSignals {
            shards: vec![
                shard("shard-0", 100, 0.01, 0.05),
                shard("shard-1", 100, 0.01, 0.05),
                shard("shard-2", 100, 0.1, 0.1),
            ],
            breach: Some(Metric::QueueLatency),
            ..calm()
        };
        let found = findings(&signals);
        assert_eq!(kinds(&signals), [FindingKind::Skew]);
        assert!(
            found[0].sentence.starts_with("shard-2's queue p99 was "),
            "{}",
            found[0].sentence
        );
        assert!(found[0].sentence.contains("the mean of the 3 shards' p99s"));
    }

    #[test]
    fn skew_needs_two_shards_with_their_figures() {
        let one = FindingSignals {
            shards: vec![shard("shard-0", 100, 0.01, 0.05)],
            breach: Some(Metric::QueueLatency),
            ..calm()
        };
        assert!(kinds(&one).is_empty());
        let mut unknown = FindingSignals {
            breach: Some(Metric::QueueLatency),
            ..calm()
        };
        unknown.shards[0].objects = None;
        unknown.shards[1].objects = Some(1000);
        assert!(kinds(&unknown).is_empty());
    }

    #[test]
    fn signals_are_taken_from_the_snapshots_with_the_objects_per_shard() {
        let at = Timestamp::from_second(0).unwrap();
        let between = Between {
            start: at,
            end: at,
            api_server: Some(calm_api()),
            shards: BTreeMap::from([
                ("shard-0".to_owned(), ShardQueue::default()),
                ("shard-1".to_owned(), ShardQueue::default()),
            ]),
        };
        let objects = BTreeMap::from([("shard-0".to_owned(), 7)]);
        let signals = FindingSignals::new(between, &objects, Some(0.5), 2, None);
        let per_shard: Vec<(&str, Option<u64>)> = signals
            .shards
            .iter()
            .map(|s| (s.shard.as_str(), s.objects))
            .collect();
        assert_eq!(per_shard, [("shard-0", Some(7)), ("shard-1", None)]);
        assert_eq!(signals.api_server, Some(calm_api()));
    }

    #[test]
    fn finding_kinds_are_named_as_in_run_json() {
        for kind in [
            FindingKind::QueueBound,
            FindingKind::ApiServerLatency,
            FindingKind::ApiServerThrottling,
            FindingKind::ApiServerErrors,
            FindingKind::MachineSaturated,
            FindingKind::Skew,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
