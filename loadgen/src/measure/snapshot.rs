//! What the findings read from `/metrics` (docs/experiments.md#findings): at each sampler tick,
//! a snapshot of the API server's request latency, errors and throttling and of each shard's
//! queue and work durations; between two snapshots, what happened in between.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use stack::exposition::Sample;

use super::prometheus::{self, Bucket};

/// The API server's request latency histogram, labelled `verb` and `resource` (no `code`).
const REQUEST_DURATION: &str = "apiserver_request_duration_seconds";
/// The API server's requests, labelled `verb`, `resource` and `code`.
const REQUESTS: &str = "apiserver_request_total";
/// Requests API Priority and Fairness rejected, labelled `flow_schema`, `priority_level`.
const APF_REJECTED: &str = "apiserver_flowcontrol_rejected_requests_total";
/// The time requests waited in API Priority and Fairness' queues, labelled `execute`.
const APF_WAIT: &str = "apiserver_flowcontrol_request_wait_duration_seconds";

/// Verbs of requests that stay open as long as the client wants: their duration says nothing
/// about the API server's speed (the upstream API call latency SLO leaves them out too).
pub const LONG_RUNNING_VERBS: [&str; 3] = ["WATCH", "WATCHLIST", "CONNECT"];

/// The label that names a work queue, and the histograms read of the controller's queue.
const QUEUE_LABEL: &str = "name";
const QUEUE_DURATION: &str = "workqueue_queue_duration_seconds";
const WORK_DURATION: &str = "workqueue_work_duration_seconds";

/// The API server's counts: its totals at one scrape, or their increase between two.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiServer {
    /// Latency of requests other than [`LONG_RUNNING_VERBS`].
    pub request_duration: Vec<Bucket>,
    /// Requests other than [`LONG_RUNNING_VERBS`].
    pub requests: u64,
    /// Of those, the ones answered with a 5xx code.
    pub server_errors: u64,
    /// Requests of any verb answered 429 Too Many Requests.
    pub too_many_requests: u64,
    /// Requests API Priority and Fairness rejected.
    pub rejected: u64,
    /// The time requests that then executed waited in API Priority and Fairness' queues.
    pub queue_wait: Vec<Bucket>,
}

impl ApiServer {
    /// The counts in a kube-apiserver's `/metrics`; `None` when it has no
    /// `apiserver_request_total`, so the text is not an API server's.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        // An API server exposes thousands of series; these are read six times over.
        let text: String = text
            .lines()
            .filter(|line| {
                [REQUEST_DURATION, REQUESTS, APF_REJECTED, APF_WAIT]
                    .iter()
                    .any(|name| line.starts_with(name))
            })
            .flat_map(|line| [line, "\n"])
            .collect();
        let text = text.as_str();
        let short = |sample: &Sample<'_>| {
            sample
                .label("verb")
                .is_none_or(|verb| !LONG_RUNNING_VERBS.contains(&verb))
        };
        let code = |sample: &Sample<'_>| sample.label("code").unwrap_or_default().to_owned();
        Some(Self {
            requests: prometheus::counter_sum(text, REQUESTS, short)?,
            request_duration: prometheus::histogram_buckets_where(text, REQUEST_DURATION, short)
                .unwrap_or_default(),
            server_errors: prometheus::counter_sum(text, REQUESTS, |s| {
                short(s) && code(s).starts_with('5')
            })
            .unwrap_or(0),
            too_many_requests: prometheus::counter_sum(text, REQUESTS, |s| code(s) == "429")
                .unwrap_or(0),
            rejected: prometheus::counter_sum(text, APF_REJECTED, |_| true).unwrap_or(0),
            queue_wait: prometheus::histogram_buckets(text, APF_WAIT, &[("execute", "true")])
                .unwrap_or_default(),
        })
    }

    /// What happened between `before` and this scrape.
    #[must_use]
    pub fn since(&self, before: &Self) -> Self {
        Self {
            request_duration: prometheus::delta(&before.request_duration, &self.request_duration),
            requests: prometheus::counter_delta(before.requests, self.requests),
            server_errors: prometheus::counter_delta(before.server_errors, self.server_errors),
            too_many_requests: prometheus::counter_delta(
                before.too_many_requests,
                self.too_many_requests,
            ),
            rejected: prometheus::counter_delta(before.rejected, self.rejected),
            queue_wait: prometheus::delta(&before.queue_wait, &self.queue_wait),
        }
    }
}

/// A shard's work queue: its histograms at one scrape, or the observations between two.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardQueue {
    /// `workqueue_queue_duration_seconds{name="<queue>"}`: from an item's add to its
    /// reconcile's start.
    pub queue: Vec<Bucket>,
    /// `workqueue_work_duration_seconds{name="<queue>"}`: the reconcile itself.
    pub work: Vec<Bucket>,
}

impl ShardQueue {
    /// The histograms of work queue `queue` (the scenario's `controller.queue`, `website` for
    /// the webhosting-operator) in a shard's `/metrics`; `None` without its queue histogram.
    #[must_use]
    pub fn parse(text: &str, queue: &str) -> Option<Self> {
        let name = [(QUEUE_LABEL, queue)];
        Some(Self {
            queue: prometheus::histogram_buckets(text, QUEUE_DURATION, &name)?,
            work: prometheus::histogram_buckets(text, WORK_DURATION, &name).unwrap_or_default(),
        })
    }

    /// What happened between `before` and this scrape.
    #[must_use]
    pub fn since(&self, before: &Self) -> Self {
        Self {
            queue: prometheus::delta(&before.queue, &self.queue),
            work: prometheus::delta(&before.work, &self.work),
        }
    }
}

/// The API server's and the shards' `/metrics` at one sampler tick.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// When they were scraped.
    pub at: Timestamp,
    /// The API server's; `None` where it could not be read.
    pub api_server: Option<ApiServer>,
    /// Each shard's that could be read.
    pub shards: BTreeMap<String, ShardQueue>,
}

/// What happened between two snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct Between {
    /// The earlier snapshot's time.
    pub start: Timestamp,
    /// The later snapshot's time.
    pub end: Timestamp,
    /// The API server's; `None` unless both snapshots have it.
    pub api_server: Option<ApiServer>,
    /// Each shard of the later snapshot; one started in between counts from zero, one gone by
    /// then is left out.
    pub shards: BTreeMap<String, ShardQueue>,
}

impl Between {
    /// What happened from `before` to `after`.
    #[must_use]
    pub fn of(before: &Snapshot, after: &Snapshot) -> Self {
        Self {
            start: before.at,
            end: after.at,
            api_server: before
                .api_server
                .as_ref()
                .zip(after.api_server.as_ref())
                .map(|(before, after)| after.since(before)),
            shards: after
                .shards
                .iter()
                .map(|(shard, queue)| {
                    let since = before.shards.get(shard).cloned().unwrap_or_default();
                    (shard.clone(), queue.since(&since))
                })
                .collect(),
        }
    }

    /// What happened over the measurement from `start` to `end`, from the latest snapshot at
    /// or before `start` to the earliest at or after `end` (the last one if none is that late),
    /// so the span covers the measurement; `None` without a snapshot at or before `start`.
    #[must_use]
    pub fn covering(snapshots: &[Snapshot], start: Timestamp, end: Timestamp) -> Option<Self> {
        let before = snapshots
            .iter()
            .filter(|s| s.at <= start)
            .max_by_key(|s| s.at)?;
        let after = snapshots
            .iter()
            .filter(|s| s.at >= end)
            .min_by_key(|s| s.at)
            .or_else(|| snapshots.iter().max_by_key(|s| s.at))
            .filter(|after| after.at > before.at)?;
        Some(Self::of(before, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    /// An excerpt of a kube-apiserver's `/metrics`, as it writes them (labels sorted by name).
    fn apiserver(creates: u64, watches: u64, errors: u64, throttled: u64) -> String {
        format!(
            r#"# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{{component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="resource",subresource="",verb="POST",version="v1alpha1",le="0.005"}} 0
apiserver_request_duration_seconds_bucket{{component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="resource",subresource="",verb="POST",version="v1alpha1",le="0.1"}} {half}
apiserver_request_duration_seconds_bucket{{component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="resource",subresource="",verb="POST",version="v1alpha1",le="1"}} {creates}
apiserver_request_duration_seconds_bucket{{component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="resource",subresource="",verb="POST",version="v1alpha1",le="+Inf"}} {creates}
apiserver_request_duration_seconds_sum{{component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="resource",subresource="",verb="POST",version="v1alpha1"}} 12.5
apiserver_request_duration_seconds_count{{component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="resource",subresource="",verb="POST",version="v1alpha1"}} {creates}
apiserver_request_duration_seconds_bucket{{component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="cluster",subresource="",verb="WATCH",version="v1alpha1",le="0.005"}} 0
apiserver_request_duration_seconds_bucket{{component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="cluster",subresource="",verb="WATCH",version="v1alpha1",le="0.1"}} 0
apiserver_request_duration_seconds_bucket{{component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="cluster",subresource="",verb="WATCH",version="v1alpha1",le="1"}} 0
apiserver_request_duration_seconds_bucket{{component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="cluster",subresource="",verb="WATCH",version="v1alpha1",le="+Inf"}} {watches}
# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.
# TYPE apiserver_request_total counter
apiserver_request_total{{code="201",component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="resource",subresource="",verb="POST",version="v1alpha1"}} {created}
apiserver_request_total{{code="503",component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="resource",subresource="",verb="POST",version="v1alpha1"}} {errors}
apiserver_request_total{{code="429",component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="resource",subresource="",verb="PATCH",version="v1alpha1"}} {throttled}
apiserver_request_total{{code="500",component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="cluster",subresource="",verb="WATCH",version="v1alpha1"}} 7
apiserver_request_total{{code="200",component="apiserver",dry_run="",group="webhosting.timebertt.dev",resource="websites",scope="cluster",subresource="",verb="WATCH",version="v1alpha1"}} {watches}
# HELP apiserver_flowcontrol_rejected_requests_total [BETA] Number of requests rejected by API Priority and Fairness subsystem
# TYPE apiserver_flowcontrol_rejected_requests_total counter
apiserver_flowcontrol_rejected_requests_total{{flow_schema="service-accounts",priority_level="workload-low",reason="queue-full"}} {throttled}
apiserver_flowcontrol_rejected_requests_total{{flow_schema="service-accounts",priority_level="workload-low",reason="time-out"}} 1
# HELP apiserver_flowcontrol_request_wait_duration_seconds [BETA] Length of time a request spent waiting in its queue
# TYPE apiserver_flowcontrol_request_wait_duration_seconds histogram
apiserver_flowcontrol_request_wait_duration_seconds_bucket{{execute="true",flow_schema="service-accounts",priority_level="workload-low",le="0.005"}} {half}
apiserver_flowcontrol_request_wait_duration_seconds_bucket{{execute="true",flow_schema="service-accounts",priority_level="workload-low",le="0.5"}} {creates}
apiserver_flowcontrol_request_wait_duration_seconds_bucket{{execute="true",flow_schema="service-accounts",priority_level="workload-low",le="+Inf"}} {creates}
apiserver_flowcontrol_request_wait_duration_seconds_bucket{{execute="false",flow_schema="service-accounts",priority_level="workload-low",le="0.005"}} 0
apiserver_flowcontrol_request_wait_duration_seconds_bucket{{execute="false",flow_schema="service-accounts",priority_level="workload-low",le="0.5"}} 0
apiserver_flowcontrol_request_wait_duration_seconds_bucket{{execute="false",flow_schema="service-accounts",priority_level="workload-low",le="+Inf"}} 3
"#,
            half = creates / 2,
            created = creates - errors,
        )
    }

    fn buckets(pairs: &[(f64, u64)]) -> Vec<Bucket> {
        pairs
            .iter()
            .map(|&(le, cumulative)| Bucket { le, cumulative })
            .collect()
    }

    #[test]
    fn the_api_servers_counts_leave_long_running_requests_out() {
        let parsed = ApiServer::parse(&apiserver(100, 5, 2, 4)).unwrap();
        assert_eq!(
            parsed,
            ApiServer {
                request_duration: buckets(&[(0.005, 0), (0.1, 50), (1.0, 100), (INF, 100)]),
                // 98 + 2 + 4 POST and PATCH; the WATCHes, 5xx or not, are left out.
                requests: 104,
                server_errors: 2,
                too_many_requests: 4,
                rejected: 5,
                queue_wait: buckets(&[(0.005, 50), (0.5, 100), (INF, 100)]),
            }
        );
    }

    #[test]
    fn text_without_api_server_requests_is_not_an_api_servers() {
        assert_eq!(ApiServer::parse(""), None);
        assert_eq!(
            ApiServer::parse("workqueue_adds_total{name=\"website\"} 3\n"),
            None
        );
    }

    #[test]
    fn the_api_servers_counts_between_two_scrapes() {
        let before = ApiServer::parse(&apiserver(100, 5, 2, 4)).unwrap();
        let after = ApiServer::parse(&apiserver(300, 6, 3, 4)).unwrap();
        let between = after.since(&before);
        assert_eq!(between.requests, 200);
        assert_eq!(between.server_errors, 1);
        assert_eq!(between.too_many_requests, 0);
        assert_eq!(between.rejected, 0);
        assert_eq!(
            between.request_duration,
            buckets(&[(0.005, 0), (0.1, 100), (1.0, 200), (INF, 200)])
        );
        assert_eq!(prometheus::observations(&between.queue_wait), 200);
    }

    fn shard(queue: [u64; 3], work: [u64; 3]) -> String {
        let series = |name: &str, counts: [u64; 3]| {
            format!(
                "{name}_bucket{{name=\"website\",le=\"0.1\"}} {}\n\
                 {name}_bucket{{name=\"website\",le=\"1\"}} {}\n\
                 {name}_bucket{{name=\"website\",le=\"+Inf\"}} {}\n\
                 {name}_bucket{{name=\"theme\",le=\"+Inf\"}} 1000\n",
                counts[0], counts[1], counts[2]
            )
        };
        series(QUEUE_DURATION, queue) + &series(WORK_DURATION, work)
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn snapshot(seconds: i64, api: Option<u64>, shards: &[(&str, u64)]) -> Snapshot {
        Snapshot {
            at: at(seconds),
            api_server: api.map(|creates| ApiServer::parse(&apiserver(creates, 0, 0, 0)).unwrap()),
            shards: shards
                .iter()
                .map(|&(name, n)| {
                    let text = shard([n, n, n], [n / 2, n, n]);
                    (
                        name.to_owned(),
                        ShardQueue::parse(&text, "website").unwrap(),
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_shards_queue_and_work_durations_are_those_of_the_website_queue() {
        let parsed = ShardQueue::parse(&shard([5, 8, 10], [9, 10, 10]), "website").unwrap();
        assert_eq!(parsed.queue, buckets(&[(0.1, 5), (1.0, 8), (INF, 10)]));
        assert_eq!(parsed.work, buckets(&[(0.1, 9), (1.0, 10), (INF, 10)]));
        assert_eq!(ShardQueue::parse("up 1\n", "website"), None);
    }

    #[test]
    fn the_queue_is_the_one_the_controller_names() {
        let text = shard([5, 8, 10], [9, 10, 10]);
        let theme = ShardQueue::parse(&text, "theme").unwrap();
        assert_eq!(theme.queue, buckets(&[(INF, 1000)]));
        assert_eq!(ShardQueue::parse(&text, "secret"), None);
    }

    #[test]
    fn between_two_snapshots_a_new_shard_counts_from_zero_and_a_gone_one_is_left_out() {
        let before = snapshot(0, Some(100), &[("shard-0", 10), ("shard-1", 10)]);
        let after = snapshot(30, Some(150), &[("shard-0", 40), ("shard-2", 5)]);
        let between = Between::of(&before, &after);
        assert_eq!((between.start, between.end), (at(0), at(30)));
        assert_eq!(between.api_server.unwrap().requests, 50);
        let observed: Vec<(&str, u64)> = between
            .shards
            .iter()
            .map(|(s, q)| (s.as_str(), prometheus::observations(&q.queue)))
            .collect();
        assert_eq!(observed, [("shard-0", 30), ("shard-2", 5)]);
        let without_api = snapshot(0, None, &[]);
        assert_eq!(Between::of(&without_api, &after).api_server, None);
    }

    #[test]
    fn a_measurement_is_covered_from_the_snapshot_before_it_to_the_one_after() {
        let snapshots: Vec<Snapshot> = [0, 5, 10, 15, 20]
            .into_iter()
            .map(|s| snapshot(s, Some(100 + 10 * u64::try_from(s).unwrap()), &[]))
            .collect();
        let span = |start, end| {
            Between::covering(&snapshots, at(start), at(end)).map(|b| {
                (
                    b.start.as_second(),
                    b.end.as_second(),
                    b.api_server.unwrap().requests,
                )
            })
        };
        assert_eq!(span(6, 14), Some((5, 15, 100)));
        assert_eq!(span(5, 10), Some((5, 10, 50)));
        // The last snapshot ends a measurement that ran past it; none starts before the first.
        assert_eq!(span(12, 40), Some((10, 20, 100)));
        assert_eq!(span(-1, 10), None);
        assert_eq!(span(20, 40), None);
    }
}
