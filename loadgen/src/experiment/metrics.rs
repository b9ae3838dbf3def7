//! loadgen's own Prometheus series, served on `--metrics-address` while an experiment runs
//! and read by the status line.

use std::time::Duration;

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// An operation of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types, reason = "label values are lowercase")]
pub enum Operation {
    /// A Website create.
    create,
    /// A Website delete.
    delete,
    /// A theme change of a Website.
    mutate,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Self; 3] = [Self::create, Self::delete, Self::mutate];
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
#[allow(non_camel_case_types, reason = "label values are lowercase")]
pub enum Outcome {
    /// The API server accepted it.
    success,
    /// The API server or the connection failed it.
    error,
    /// Nothing to do: no Website to delete, or the mutated Website was deleted meanwhile.
    skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    operation: Operation,
    result: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabel {
    operation: Operation,
}

type HistogramFamily = Family<OperationLabel, Histogram, fn() -> Histogram>;

/// The series of one loadgen process, across the shard counts of a sweep.
#[derive(Debug, Clone)]
pub struct Metrics {
    operations: Family<OperationLabels, Counter>,
    operation_duration: HistogramFamily,
    reconciliation: Histogram,
    websites: Gauge,
    shards: Gauge,
    pending: Gauge,
}

impl Metrics {
    /// The series, registered with `loadgen_` names in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            operations: Family::default(),
            operation_duration: HistogramFamily::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            reconciliation: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
            websites: Gauge::default(),
            shards: Gauge::default(),
            pending: Gauge::default(),
        };
        let registry = registry.sub_registry_with_prefix("loadgen");
        registry.register(
            "operations",
            "Operations issued on Websites, by operation and result",
            metrics.operations.clone(),
        );
        registry.register(
            "operation_duration_seconds",
            "From an operation's scheduled time to the API server's answer",
            metrics.operation_duration.clone(),
        );
        registry.register(
            "reconciliation_latency_seconds",
            "From a write's scheduled time until a watch sees its generation Ready",
            metrics.reconciliation.clone(),
        );
        registry.register(
            "websites",
            "Websites the observer's watch sees",
            metrics.websites.clone(),
        );
        registry.register(
            "shards",
            "Available shards of the ring",
            metrics.shards.clone(),
        );
        registry.register(
            "pending_reconciliations",
            "Writes whose reconciliation the observer still waits for",
            metrics.pending.clone(),
        );
        metrics
    }

    /// Counts an operation and, unless skipped, how long it took from its scheduled time.
    pub fn operation(&self, operation: Operation, result: Outcome, since_scheduled: Duration) {
        self.operations
            .get_or_create(&OperationLabels { operation, result })
            .inc();
        if result != Outcome::skipped {
            self.operation_duration
                .get_or_create(&OperationLabel { operation })
                .observe(since_scheduled.as_secs_f64());
        }
    }

    /// Operations of `operation` that ended with `result` so far.
    #[must_use]
    pub fn operations(&self, operation: Operation, result: Outcome) -> u64 {
        self.operations
            .get_or_create(&OperationLabels { operation, result })
            .get()
    }

    /// Observes reconciliation latencies.
    pub fn reconciled(&self, latencies: &[Duration]) {
        for latency in latencies {
            self.reconciliation.observe(latency.as_secs_f64());
        }
    }

    /// Sets the gauges of what the observer sees.
    pub fn observed(&self, websites: usize, shards: usize, pending: usize) {
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.websites.set(gauge(websites));
        self.shards.set(gauge(shards));
        self.pending.set(gauge(pending));
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[test]
    fn operations_are_counted_and_exported_with_their_labels() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.operation(
            Operation::create,
            Outcome::success,
            Duration::from_millis(20),
        );
        metrics.operation(
            Operation::create,
            Outcome::success,
            Duration::from_millis(30),
        );
        metrics.operation(Operation::delete, Outcome::skipped, Duration::ZERO);
        metrics.reconciled(&[Duration::from_secs(1)]);
        metrics.observed(12, 3, 1);
        assert_eq!(metrics.operations(Operation::create, Outcome::success), 2);
        assert_eq!(metrics.operations(Operation::mutate, Outcome::error), 0);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            "loadgen_operations_total{operation=\"create\",result=\"success\"} 2",
            "loadgen_operations_total{operation=\"delete\",result=\"skipped\"} 1",
            "loadgen_operation_duration_seconds_count{operation=\"create\"} 2",
            "loadgen_reconciliation_latency_seconds_count 1",
            "loadgen_websites 12",
            "loadgen_shards 3",
            "loadgen_pending_reconciliations 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("operation_duration_seconds_count{operation=\"delete\"}"));
    }
}
