//! The sharder's webhook admission latency over a run (docs/experiments.md#webhook-latency):
//! `controller_sharding_webhook_request_duration_seconds{controllerring="<ring>"}`, the time the
//! sharder takes to decide a request of the ring, read from its `/metrics` at the start and the
//! end of the load as PromQL's `histogram_quantile(q, sum by (le) (increase(..._bucket)))`
//! would.

use std::collections::BTreeMap;

use serde::Serialize;

use super::prometheus::{self, Bucket, Quantile};

/// The sharder's request duration histogram, by the name the sharder exports it under.
pub const REQUEST_DURATION: &str = "controller_sharding_webhook_request_duration_seconds";

/// The webhook's admission latency over a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WebhookLatency {
    /// The median, in seconds, with its bucket.
    pub p50: Quantile,
    /// The 99th percentile, in seconds, with its bucket.
    pub p99: Quantile,
    /// The requests decided: the observations the percentiles rest on.
    pub requests: u64,
}

/// Each sharder replica's request duration buckets of `ring` in a scrape of its `/metrics`,
/// by replica; replicas without the series (no request of the ring yet) are left out.
#[must_use]
pub fn scrape(sharders: &[(String, String)], ring: &str) -> BTreeMap<String, Vec<Bucket>> {
    sharders
        .iter()
        .filter_map(|(replica, text)| {
            let buckets =
                prometheus::histogram_buckets(text, REQUEST_DURATION, &[("controllerring", ring)])?;
            Some((replica.clone(), buckets))
        })
        .collect()
}

impl WebhookLatency {
    /// The latency of the requests between the scrapes `first` and `last` of each replica,
    /// summed over the replicas (a replica first seen in `last` counts from zero); `None`
    /// without requests in between.
    #[must_use]
    pub fn between(
        first: &BTreeMap<String, Vec<Bucket>>,
        last: &BTreeMap<String, Vec<Bucket>>,
    ) -> Option<Self> {
        let deltas: Vec<Vec<Bucket>> = last
            .iter()
            .map(|(replica, buckets)| {
                prometheus::delta(first.get(replica).map_or(&[][..], Vec::as_slice), buckets)
            })
            .collect();
        let window = prometheus::sum(&deltas);
        let requests = prometheus::observations(&window);
        (requests > 0).then_some(())?;
        Some(Self {
            p50: prometheus::histogram_quantile(0.5, &window)?,
            p99: prometheus::histogram_quantile(0.99, &window)?,
            requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scrape of one replica whose requests of `ring` took 0.1 ms or less (`fast`), up to
    /// 0.2 ms (`medium`) and up to 0.4 ms (`slow`), cumulatively.
    fn text(ring: &str, fast: u64, medium: u64, slow: u64) -> String {
        let name = REQUEST_DURATION;
        let total = fast + medium + slow;
        format!(
            "# TYPE {name} histogram\n\
             {name}_bucket{{controllerring=\"{ring}\",le=\"0.0001\"}} {fast}\n\
             {name}_bucket{{controllerring=\"{ring}\",le=\"0.0002\"}} {}\n\
             {name}_bucket{{controllerring=\"{ring}\",le=\"0.0004\"}} {total}\n\
             {name}_bucket{{controllerring=\"{ring}\",le=\"+Inf\"}} {total}\n\
             {name}_count{{controllerring=\"{ring}\"}} {total}\n\
             {name}_bucket{{controllerring=\"other\",le=\"0.0001\"}} 1000\n\
             {name}_bucket{{controllerring=\"other\",le=\"+Inf\"}} 1000\n",
            fast + medium
        )
    }

    #[test]
    fn the_latency_counts_the_requests_of_the_ring_between_the_scrapes_over_every_replica() {
        let ring = "webhosting-operator";
        let first = scrape(&[("sharder".to_owned(), text(ring, 10, 0, 0))], ring);
        let last = scrape(
            &[
                ("sharder".to_owned(), text(ring, 60, 49, 1)),
                ("sharder-1".to_owned(), text(ring, 0, 0, 0)),
            ],
            ring,
        );
        let latency = WebhookLatency::between(&first, &last).unwrap();
        // 50 fast, 49 medium and 1 slow requests since the first scrape; the other ring's
        // thousand are not counted.
        assert_eq!(latency.requests, 100);
        assert_eq!((latency.p50.lower, latency.p50.upper), (0.0, 0.0001));
        assert_eq!((latency.p99.lower, latency.p99.upper), (0.0001, 0.0002));
    }

    #[test]
    fn without_requests_there_is_no_latency() {
        let ring = "r";
        let scraped = scrape(&[("sharder".to_owned(), text(ring, 5, 0, 0))], ring);
        assert_eq!(WebhookLatency::between(&scraped, &scraped), None);
        assert!(scrape(&[("sharder".to_owned(), String::new())], ring).is_empty());
    }
}
