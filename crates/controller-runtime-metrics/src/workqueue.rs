//! The `workqueue_*` series of controller-runtime for a kube-runtime controller.
//!
//! kube-runtime keeps its queue private, so the queue is observed at its edges: a trigger (a
//! watch event mapped to an object) adds the object unless it is already waiting, and the start
//! of its reconciliation takes it out, observing how long it waited. As in client-go, an object
//! triggered again while it waits is one add, and one triggered while it is being reconciled is
//! a new add. Requeues that kube-runtime schedules itself (`Action::requeue`, error-policy
//! retries) count as adds when their reconciliation starts, but add no queue duration: `Action`
//! does not expose its delay, so their wait after the timer fired is unknown.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// The lowest bucket bound of the queue and work durations: 1 ms.
const DURATION_BUCKET_START: f64 = 1e-3;
/// The ratio of each bucket's upper to its lower bound.
const DURATION_BUCKET_FACTOR: f64 = 1.25;
/// Bounds 1 ms to 651 s (1 ms × 1.25⁶⁰).
const DURATION_BUCKET_COUNT: u16 = 61;

/// Buckets for the queue and work durations, finer than client-go's powers of ten: each bucket
/// between 1 ms and 651 s spans a factor of 1.25, so a quantile interpolated inside one is within
/// 25 % of the true value (`docs/implement-sharding.md#6-export-controller-runtimes-metrics`).
/// The names, labels and help texts stay client-go's, so every query works unchanged.
fn duration_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        DURATION_BUCKET_START,
        DURATION_BUCKET_FACTOR,
        DURATION_BUCKET_COUNT,
    ))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabels {
    name: String,
}

type HistogramFamily = Family<NameLabels, Histogram, fn() -> Histogram>;

/// The `workqueue_*` families of a process.
#[derive(Clone, Debug)]
pub(super) struct WorkQueueFamilies {
    adds: Family<NameLabels, Counter>,
    depth: Family<NameLabels, Gauge>,
    queue_duration: HistogramFamily,
    work_duration: HistogramFamily,
    retries: Family<NameLabels, Counter>,
}

impl WorkQueueFamilies {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let families = Self {
            adds: Family::default(),
            depth: Family::default(),
            queue_duration: Family::new_with_constructor(duration_histogram),
            work_duration: Family::new_with_constructor(duration_histogram),
            retries: Family::default(),
        };
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            families.adds.clone(),
        );
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue",
            families.depth.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            families.queue_duration.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            families.work_duration.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of retries handled by workqueue",
            families.retries.clone(),
        );
        families
    }

    /// The queue of controller `name` (controller-runtime names a controller's queue after it).
    pub(super) fn queue(&self, name: &str) -> WorkQueue {
        let labels = NameLabels {
            name: name.to_owned(),
        };
        WorkQueue {
            adds: self.adds.get_or_create(&labels).clone(),
            depth: self.depth.get_or_create(&labels).clone(),
            queue_duration: self.queue_duration.get_or_create(&labels).clone(),
            work_duration: self.work_duration.get_or_create(&labels).clone(),
            retries: self.retries.get_or_create(&labels).clone(),
            waiting: Arc::default(),
        }
    }
}

/// An object in a queue: namespace and name (a controller queues one kind).
pub(super) type Key = (Option<String>, String);

/// The observed queue of one controller.
#[derive(Clone, Debug)]
pub(super) struct WorkQueue {
    adds: Counter,
    depth: Gauge,
    queue_duration: Histogram,
    work_duration: Histogram,
    retries: Counter,
    /// When each waiting object was added.
    waiting: Arc<Mutex<HashMap<Key, Instant>>>,
}

impl WorkQueue {
    /// A trigger for `key` at `now`.
    pub(super) fn add(&self, key: Key, now: Instant) {
        let mut waiting = self.waiting.lock().expect("not poisoned");
        if let std::collections::hash_map::Entry::Vacant(entry) = waiting.entry(key) {
            entry.insert(now);
            self.adds.inc();
            self.depth.set(gauge_value(waiting.len()));
        }
    }

    /// The reconciliation of `key` starts at `now`.
    pub(super) fn start(&self, key: &Key, now: Instant) {
        let mut waiting = self.waiting.lock().expect("not poisoned");
        if let Some(added) = waiting.remove(key) {
            self.queue_duration
                .observe(now.saturating_duration_since(added).as_secs_f64());
            self.depth.set(gauge_value(waiting.len()));
        } else {
            // A requeue that kube-runtime's own timer fired.
            self.adds.inc();
        }
    }

    /// `key` left the queue without a reconciliation (the object no longer exists).
    pub(super) fn forget(&self, key: &Key) {
        let mut waiting = self.waiting.lock().expect("not poisoned");
        if waiting.remove(key).is_some() {
            self.depth.set(gauge_value(waiting.len()));
        }
    }

    /// A failed reconciliation is retried.
    pub(super) fn retry(&self) {
        self.retries.inc();
    }

    /// A reconciliation took `seconds`.
    pub(super) fn worked(&self, seconds: f64) {
        self.work_duration.observe(seconds);
    }
}

fn gauge_value(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus_client::encoding::text::encode;

    use super::*;

    fn key(name: &str) -> Key {
        (Some("default".to_owned()), name.to_owned())
    }

    fn queue() -> (Registry, WorkQueue) {
        let mut registry = Registry::default();
        let queue = WorkQueueFamilies::register(&mut registry).queue("website");
        (registry, queue)
    }

    fn value(registry: &Registry, series: &str) -> String {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        let prefix = format!("{series}{{name=\"website\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
            .to_owned()
    }

    #[test]
    fn a_trigger_while_waiting_is_one_add_and_the_wait_counts_from_the_first() {
        let (registry, queue) = queue();
        let t0 = Instant::now();
        queue.add(key("a"), t0);
        queue.add(key("a"), t0 + Duration::from_secs(1));
        queue.add(key("b"), t0);
        assert_eq!(value(&registry, "workqueue_adds_total"), "2");
        assert_eq!(value(&registry, "workqueue_depth"), "2");

        queue.start(&key("a"), t0 + Duration::from_secs(3));
        assert_eq!(value(&registry, "workqueue_depth"), "1");
        assert_eq!(
            value(&registry, "workqueue_queue_duration_seconds_sum"),
            "3.0"
        );
        assert_eq!(
            value(&registry, "workqueue_queue_duration_seconds_count"),
            "1"
        );
    }

    #[test]
    fn a_trigger_during_a_reconciliation_is_a_new_add() {
        let (registry, queue) = queue();
        let t0 = Instant::now();
        queue.add(key("a"), t0);
        queue.start(&key("a"), t0);
        queue.add(key("a"), t0 + Duration::from_millis(500));
        assert_eq!(value(&registry, "workqueue_adds_total"), "2");
        assert_eq!(value(&registry, "workqueue_depth"), "1");
    }

    #[test]
    fn a_timer_requeue_is_an_add_without_a_known_wait() {
        let (registry, queue) = queue();
        queue.start(&key("a"), Instant::now());
        assert_eq!(value(&registry, "workqueue_adds_total"), "1");
        assert_eq!(
            value(&registry, "workqueue_queue_duration_seconds_count"),
            "0"
        );
        assert_eq!(value(&registry, "workqueue_depth"), "0");
    }

    #[test]
    fn a_forgotten_object_leaves_the_queue() {
        let (registry, queue) = queue();
        queue.add(key("gone"), Instant::now());
        queue.forget(&key("gone"));
        assert_eq!(value(&registry, "workqueue_depth"), "0");
        assert_eq!(
            value(&registry, "workqueue_queue_duration_seconds_count"),
            "0"
        );
    }

    #[test]
    fn retries_and_work_durations_are_recorded() {
        let (registry, queue) = queue();
        queue.retry();
        queue.worked(0.25);
        assert_eq!(value(&registry, "workqueue_retries_total"), "1");
        assert_eq!(
            value(&registry, "workqueue_work_duration_seconds_sum"),
            "0.25"
        );
    }

    #[test]
    fn every_duration_bucket_from_1_ms_to_10_min_spans_at_most_a_factor_of_1_25() {
        let bounds: Vec<f64> = prometheus_client::metrics::histogram::exponential_buckets(
            DURATION_BUCKET_START,
            DURATION_BUCKET_FACTOR,
            DURATION_BUCKET_COUNT,
        )
        .collect();
        assert!((bounds[0] - 1e-3).abs() < 1e-12);
        assert!(*bounds.last().unwrap() >= 600.0);
        for pair in bounds.windows(2) {
            assert!(pair[1] / pair[0] <= 1.25 + 1e-9, "{pair:?}");
        }
    }
}
