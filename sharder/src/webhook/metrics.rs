//! The webhook's metrics (docs/contract.md#metrics): assignments per ring and resource, how
//! long deciding a request takes per ring, and requests the server's bounds turned away.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// Labels of the per-resource series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The ControllerRing's name.
    pub controllerring: String,
    /// The resource's API group (`""` for the core group).
    pub group: String,
    /// The resource.
    pub resource: String,
}

impl ResourceLabels {
    /// Labels for `group`/`resource` in ring `controllerring`.
    #[must_use]
    pub fn new(controllerring: &str, group: &str, resource: &str) -> Self {
        Self {
            controllerring: controllerring.to_owned(),
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }
}

/// Labels of the per-ring series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RingLabels {
    /// The ControllerRing's name.
    pub controllerring: String,
}

/// Labels of the rejection series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabels {
    /// Which bound turned the request away (`Rejection::reason`).
    pub reason: &'static str,
}

/// The constructor of the request duration histograms, as a function pointer so that the
/// family's type can name it.
type NewHistogram = fn() -> Histogram;

/// The webhook's metrics. Clones share the series.
#[derive(Clone, Debug)]
pub struct WebhookMetrics {
    /// `controller_sharding_assignments_total`: objects the webhook assigned to a shard
    /// (dry runs are not counted).
    pub assignments: Family<ResourceLabels, Counter>,
    /// `controller_sharding_webhook_request_duration_seconds`: time to decide a request of a
    /// known ring, from the decoded body to the response.
    pub request_duration: Family<RingLabels, Histogram, NewHistogram>,
    /// `controller_sharding_webhook_rejections_total`: requests answered by the server's bounds
    /// (docs/sharder.md#the-webhook-under-load) instead of the handler.
    pub rejections: Family<RejectionLabels, Counter>,
}

impl WebhookMetrics {
    /// Registers the webhook's series in `registry` (prometheus-client adds the `_total`
    /// suffix to counters).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "controller_sharding_assignments",
            "Total number of shard assignments by the sharder webhook per ControllerRing and GroupResource",
            metrics.assignments.clone(),
        );
        registry.register(
            "controller_sharding_webhook_request_duration_seconds",
            "Time the sharder webhook takes to decide an admission request per ControllerRing",
            metrics.request_duration.clone(),
        );
        registry.register(
            "controller_sharding_webhook_rejections",
            "Total number of requests the sharder webhook's server turned away by the bound they exceeded",
            metrics.rejections.clone(),
        );
        metrics
    }
}

impl Default for WebhookMetrics {
    /// Unregistered series, for tests and for callers that do not export metrics.
    fn default() -> Self {
        Self {
            assignments: Family::default(),
            // 0.1 ms to ~3.3 s: a decision takes well under a millisecond, and the API server
            // gives up after the webhook's 5 s timeout (docs/contract.md#webhook).
            request_duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0001, 2.0, 16))
            }),
            rejections: Family::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[test]
    fn the_series_are_exported_with_the_contract_names() {
        let mut registry = Registry::default();
        let metrics = WebhookMetrics::register(&mut registry);
        metrics
            .assignments
            .get_or_create(&ResourceLabels::new("ring", "apps", "deployments"))
            .inc();
        metrics
            .request_duration
            .get_or_create(&RingLabels {
                controllerring: "ring".into(),
            })
            .observe(0.001);
        metrics
            .rejections
            .get_or_create(&RejectionLabels {
                reason: "body_too_large",
            })
            .inc();

        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"controller_sharding_assignments_total{controllerring="ring",group="apps",resource="deployments"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"controller_sharding_webhook_request_duration_seconds_count{controllerring="ring"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"controller_sharding_webhook_rejections_total{reason="body_too_large"} 1"#
            ),
            "{text}"
        );
    }
}
