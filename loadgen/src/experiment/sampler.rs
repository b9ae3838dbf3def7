//! The sampler: every interval, the cost of every component, the machine's CPU and loadgen's
//! own, the objects per shard, the operators' queue-latency histograms, and snapshots of the
//! API server's and the operators' `/metrics` for the findings.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;

use super::tracker::Tracker;
use crate::{
    environment::Target,
    measure::{
        conflicts,
        cost::{MachineSample, UsageSample},
        prometheus::{self, Bucket, Quantile, QuantileWindow},
        skew::Skew,
        snapshot::{ApiServer, ShardQueue, Snapshot},
        webhook::{self, WebhookLatency},
    },
};

/// What the sampler collected during one shard count's load.
#[derive(Debug, Default)]
pub struct Samples {
    /// CPU and memory of every component at each tick.
    pub usage: Vec<UsageSample>,
    /// The machine's CPU and loadgen's own at the baseline and each tick.
    pub machine: Vec<MachineSample>,
    /// Objects per shard at each tick.
    pub objects_per_shard: Vec<(Timestamp, BTreeMap<String, u64>)>,
    /// The skew over the available shards at each tick.
    pub skew: Vec<(Timestamp, Skew)>,
    /// Each shard's queue-latency buckets when the load started (or it was first seen).
    queue_first: BTreeMap<String, Vec<Bucket>>,
    /// Each shard's queue-latency buckets at its last scrape.
    queue_last: BTreeMap<String, Vec<Bucket>>,
    /// When the queue histograms were last scraped.
    queue_last_at: Option<Timestamp>,
    /// The p99 of the queue latency over every shard between two ticks with observations.
    pub queue_windows: Vec<QuantileWindow>,
    /// Why the target's usage could not be read, once.
    pub usage_error: Option<String>,
    /// The slot of every shard the target started, read after the load
    /// ([`Target::slots`]).
    pub slots: Option<BTreeMap<String, u32>>,
    /// Why the machine's CPU or loadgen's own could not be read, once (the first error).
    pub machine_error: Option<String>,
    /// The API server's and the shards' `/metrics` at the baseline and each tick, for the
    /// findings over any measurement ([`crate::measure::snapshot::Between::covering`]).
    pub snapshots: Vec<Snapshot>,
    /// Why the API server's `/metrics` could not be read, once (the first error).
    pub api_server_error: Option<String>,
    /// The 409 Conflict answers of the sharder and each shard at the baseline and each tick
    /// (docs/experiments.md#ownership).
    pub conflicts: Vec<conflicts::Scrape>,
    /// Each sharder replica's webhook request durations of the ring at the baseline, so that
    /// the set-up's requests are left out (a replica started later counts from zero), and at
    /// its last scrape (docs/experiments.md#webhook-latency).
    webhook_first: BTreeMap<String, Vec<Bucket>>,
    webhook_last: BTreeMap<String, Vec<Bucket>>,
}

impl Samples {
    /// Takes the baseline of the shards' queue histograms, so the load's latencies exclude
    /// those of the set-up, and the first machine sample, so its windows start with the load.
    pub async fn baseline(&mut self, target: &Target) {
        let at = Timestamp::now();
        self.sample_machine(target, at).await;
        self.queue_last_at = Some(at);
        for (shard, buckets) in self.snapshot(target, at).await {
            self.queue_first.insert(shard.clone(), buckets.clone());
            self.queue_last.insert(shard, buckets);
        }
        self.webhook_first.clone_from(&self.webhook_last);
    }

    /// One tick.
    pub async fn sample(&mut self, target: &Target, tracker: &Arc<Mutex<Tracker>>) {
        let at = Timestamp::now();
        self.sample_machine(target, at).await;
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
        let scraped = self.snapshot(target, at).await;
        self.queue_tick(at, scraped);
    }

    /// Keeps the API server's `/metrics` and the shards' queue histograms as at `at`; returns
    /// each shard's queue-latency buckets (`workqueue_queue_duration_seconds{name="<queue>"}`
    /// of the controller's queue, docs/experiments.md#queue-latency).
    async fn snapshot(&mut self, target: &Target, at: Timestamp) -> Vec<(String, Vec<Bucket>)> {
        let (api_server, operators, sharder) = tokio::join!(
            target.api_server_metrics(),
            target.operator_metrics(),
            target.sharder_metrics()
        );
        self.conflicts
            .push(conflicts::Scrape::of(&sharder, &operators));
        self.webhook_last
            .extend(webhook::scrape(&sharder, &target.controller().ring));
        let api_server = match api_server {
            Ok(text) => ApiServer::parse(&text),
            Err(error) => {
                self.api_server_error
                    .get_or_insert_with(|| format!("{error:#}"));
                None
            }
        };
        let queue = &target.controller().queue;
        let shards: BTreeMap<String, ShardQueue> = operators
            .into_iter()
            .filter_map(|(shard, text)| Some((shard, ShardQueue::parse(&text, queue)?)))
            .collect();
        let queues = shards
            .iter()
            .map(|(shard, queue)| (shard.clone(), queue.queue.clone()))
            .collect();
        self.snapshots.push(Snapshot {
            at,
            api_server,
            shards,
        });
        queues
    }

    /// Reads the machine's CPU and loadgen's own, as at `at`, keeping the first error.
    async fn sample_machine(&mut self, target: &Target, at: Timestamp) {
        let (sample, errors) = machine_sample(target, at).await;
        if let Some(error) = errors.first() {
            self.machine_error
                .get_or_insert_with(|| format!("{error:#}"));
        }
        self.machine.extend(sample);
    }

    /// Takes the queue histograms scraped at `at`: the p99 since the last tick joins the
    /// windows, and they become the last buckets.
    fn queue_tick(&mut self, at: Timestamp, scraped: Vec<(String, Vec<Bucket>)>) {
        let deltas: Vec<Vec<Bucket>> = scraped
            .iter()
            .map(|(shard, buckets)| {
                let before = self.queue_last.get(shard).map_or(&[][..], Vec::as_slice);
                prometheus::delta(before, buckets)
            })
            .collect();
        let window = prometheus::sum(&deltas);
        if let Some(since) = self.queue_last_at.replace(at)
            && let Some(p99) = prometheus::histogram_quantile(0.99, &window)
        {
            self.queue_windows.push(QuantileWindow {
                start: since,
                end: at,
                quantile: p99,
                observations: prometheus::observations(&window),
            });
        }
        for (shard, buckets) in scraped {
            // A shard started during the load counts from zero.
            self.queue_first.entry(shard.clone()).or_default();
            self.queue_last.insert(shard, buckets);
        }
    }

    /// The sharder's webhook latency of the ring during the load; `None` without requests or
    /// without the sharder's `/metrics` (a cluster's are not read).
    #[must_use]
    pub fn webhook(&self) -> Option<WebhookLatency> {
        WebhookLatency::between(&self.webhook_first, &self.webhook_last)
    }

    /// The p99 of the queue latency during the load over every shard, in seconds.
    #[must_use]
    pub fn queue_p99(&self) -> Option<Quantile> {
        let deltas: Vec<Vec<Bucket>> = self
            .queue_last
            .iter()
            .map(|(shard, last)| {
                let first = self.queue_first.get(shard).map_or(&[][..], Vec::as_slice);
                prometheus::delta(first, last)
            })
            .collect();
        prometheus::histogram_quantile(0.99, &prometheus::sum(&deltas))
    }
}

/// The machine's CPU and loadgen's own, as at `at`, with why either could not be read.
/// Without the machine's, loadgen's own is still sampled.
pub async fn machine_sample(
    target: &Target,
    at: Timestamp,
) -> (Option<MachineSample>, Vec<anyhow::Error>) {
    let mut errors = Vec::new();
    let cpu = target
        .machine_cpu()
        .await
        .map_err(|error| errors.push(error))
        .ok();
    let sample = stack::Usage::of_pid(std::process::id())
        .map_err(|error| errors.push(error))
        .ok()
        .map(|loadgen| MachineSample {
            at,
            cpu,
            loadgen_cpu_seconds: loadgen.cpu_seconds,
        });
    (sample, errors)
}

/// The p99 of the queue latency over every shard between two scrapes of their histograms; a
/// shard missing from `before` counts from zero.
#[must_use]
pub fn queue_p99_between(
    before: &[(String, Vec<Bucket>)],
    after: &[(String, Vec<Bucket>)],
) -> Option<Quantile> {
    let deltas: Vec<Vec<Bucket>> = after
        .iter()
        .map(|(shard, buckets)| {
            let earlier = before
                .iter()
                .find(|(name, _)| name == shard)
                .map_or(&[][..], |(_, buckets)| buckets.as_slice());
            prometheus::delta(earlier, buckets)
        })
        .collect();
    prometheus::histogram_quantile(0.99, &prometheus::sum(&deltas))
}

/// Every shard's queue-latency histogram, by shard.
pub async fn queue_buckets(target: &Target) -> Vec<(String, Vec<Bucket>)> {
    let queue = &target.controller().queue;
    target
        .operator_metrics()
        .await
        .into_iter()
        .filter_map(|(shard, text)| Some((shard, ShardQueue::parse(&text, queue)?.queue)))
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
        assert!(samples.queue_p99().unwrap().value > 0.1);
        // shard-1 started during the load with 1000 fast observations.
        samples.queue_first.insert("shard-1".into(), Vec::new());
        samples
            .queue_last
            .insert("shard-1".into(), buckets([1000, 1000, 1000]));
        let p99 = samples.queue_p99().unwrap();
        assert!(p99.value > 0.1, "{p99:?}");
        assert_eq!((p99.lower, p99.upper), (0.1, 1.0));
        assert!(Samples::default().queue_p99().is_none());
    }

    #[test]
    fn each_tick_adds_the_queue_p99_since_the_last_one() {
        let at = |s| Timestamp::from_second(s).unwrap();
        let mut samples = Samples {
            queue_last_at: Some(at(0)),
            ..Samples::default()
        };
        samples
            .queue_first
            .insert("shard-0".into(), buckets([0, 0, 0]));
        samples
            .queue_last
            .insert("shard-0".into(), buckets([0, 0, 0]));
        // Fast observations, then slow ones, then none, then a new shard's slow ones.
        samples.queue_tick(at(5), vec![("shard-0".into(), buckets([100, 100, 100]))]);
        samples.queue_tick(at(10), vec![("shard-0".into(), buckets([100, 200, 200]))]);
        samples.queue_tick(at(15), vec![("shard-0".into(), buckets([100, 200, 200]))]);
        samples.queue_tick(
            at(20),
            vec![
                ("shard-0".into(), buckets([100, 200, 200])),
                ("shard-1".into(), buckets([0, 0, 50])),
            ],
        );
        let windows: Vec<_> = samples
            .queue_windows
            .iter()
            .map(|w| {
                (
                    w.start.as_second(),
                    w.end.as_second(),
                    w.quantile.lower,
                    w.quantile.upper,
                    w.observations,
                )
            })
            .collect();
        // No observations from 10 s to 15 s: no window. shard-1's fall in `+Inf`: over 1 s.
        assert_eq!(
            windows,
            [
                (0, 5, 0.0, 0.1, 100),
                (5, 10, 0.1, 1.0, 100),
                (15, 20, 1.0, f64::INFINITY, 50)
            ]
        );
        // A restarted shard's counts went down: everything after is new.
        samples.queue_tick(at(25), vec![("shard-0".into(), buckets([10, 10, 10]))]);
        assert_eq!(samples.queue_windows.len(), 4);
    }
}
