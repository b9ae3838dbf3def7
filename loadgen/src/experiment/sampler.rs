//! The sampler: every interval, the cost of every component, the objects per shard and the
//! operators' queue-latency histograms.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;

use super::tracker::Tracker;
use crate::{
    measure::{
        cost::UsageSample,
        prometheus::{self, Bucket},
        skew::Skew,
    },
    target::Target,
};

/// The operator's queue-latency histogram and its work queue (SPEC D).
const QUEUE_HISTOGRAM: &str = "workqueue_queue_duration_seconds";
const QUEUE_NAME: (&str, &str) = ("name", "website");

/// What the sampler collected during one shard count's load.
#[derive(Debug, Default)]
pub struct Samples {
    /// CPU and memory of every component at each tick.
    pub usage: Vec<UsageSample>,
    /// Objects per shard at each tick.
    pub objects_per_shard: Vec<(Timestamp, BTreeMap<String, u64>)>,
    /// The skew over the available shards at each tick.
    pub skew: Vec<(Timestamp, Skew)>,
    /// Each shard's queue-latency buckets when the load started (or it was first seen).
    queue_first: BTreeMap<String, Vec<Bucket>>,
    /// Each shard's queue-latency buckets at its last scrape.
    queue_last: BTreeMap<String, Vec<Bucket>>,
    /// Why the target's usage could not be read, once.
    pub usage_error: Option<String>,
}

impl Samples {
    /// Takes the baseline of the shards' queue histograms, so the load's latencies exclude
    /// those of the set-up.
    pub async fn baseline(&mut self, target: &Target) {
        for (shard, buckets) in queue_buckets(target).await {
            self.queue_first.insert(shard.clone(), buckets.clone());
            self.queue_last.insert(shard, buckets);
        }
    }

    /// One tick.
    pub async fn sample(&mut self, target: &Target, tracker: &Arc<Mutex<Tracker>>) {
        let at = Timestamp::now();
        let (counts, available) = {
            let tracker = super::lock(tracker);
            (tracker.objects_per_shard(), tracker.available_counts())
        };
        self.objects_per_shard.push((at, counts));
        if !available.is_empty() {
            self.skew.push((at, Skew::of(&available)));
        }
        match target.usage().await {
            Ok(samples) => self.usage.extend(samples),
            Err(error) => {
                self.usage_error.get_or_insert_with(|| format!("{error:#}"));
            }
        }
        for (shard, buckets) in queue_buckets(target).await {
            // A shard started during the load counts from zero.
            self.queue_first.entry(shard.clone()).or_default();
            self.queue_last.insert(shard, buckets);
        }
    }

    /// The p99 of the queue latency during the load over every shard, in ms.
    #[must_use]
    pub fn queue_p99_ms(&self) -> Option<f64> {
        let deltas: Vec<Vec<Bucket>> = self
            .queue_last
            .iter()
            .map(|(shard, last)| {
                let first = self.queue_first.get(shard).map_or(&[][..], Vec::as_slice);
                prometheus::delta(first, last)
            })
            .collect();
        prometheus::histogram_quantile(0.99, &prometheus::sum(&deltas)).map(|s| s * 1000.0)
    }
}

async fn queue_buckets(target: &Target) -> Vec<(String, Vec<Bucket>)> {
    target
        .operator_metrics()
        .await
        .into_iter()
        .filter_map(|(shard, text)| {
            Some((
                shard,
                prometheus::histogram_buckets(&text, QUEUE_HISTOGRAM, &[QUEUE_NAME])?,
            ))
        })
        .collect()
}

/// The interval between ticks.
pub const INTERVAL: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(counts: [u64; 3]) -> Vec<Bucket> {
        [0.1, 1.0, f64::INFINITY]
            .into_iter()
            .zip(counts)
            .map(|(le, cumulative)| Bucket { le, cumulative })
            .collect()
    }

    #[test]
    fn the_queue_p99_covers_the_load_of_every_shard_including_new_ones() {
        let mut samples = Samples::default();
        // shard-0: 100 fast observations before the load, 100 slow ones during it.
        samples
            .queue_first
            .insert("shard-0".into(), buckets([100, 100, 100]));
        samples
            .queue_last
            .insert("shard-0".into(), buckets([100, 200, 200]));
        assert!(samples.queue_p99_ms().unwrap() > 100.0);
        // shard-1 started during the load with 1000 fast observations.
        samples.queue_first.insert("shard-1".into(), Vec::new());
        samples
            .queue_last
            .insert("shard-1".into(), buckets([1000, 1000, 1000]));
        let p99 = samples.queue_p99_ms().unwrap();
        assert!(p99 > 100.0, "{p99}");
        assert!(Samples::default().queue_p99_ms().is_none());
    }
}
