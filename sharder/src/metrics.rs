//! The sharder's own metrics (docs/contract.md#metrics), registered once per process.

use std::sync::Arc;

use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::ResourceExt as _;
use kube_sharding::{
    api::{ControllerRing, labels},
    leases::{self, ShardState},
};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{MetricType, counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use crate::cache::RingCache;

pub use crate::webhook::metrics::{ResourceLabels, RingLabels};

/// Counters of the resync (moves and drains).
#[derive(Clone, Debug, Default)]
pub struct ResyncMetrics {
    /// `controller_sharding_movements_total`: objects sent to the webhook for reassignment.
    pub movements: Family<ResourceLabels, Counter>,
    /// `controller_sharding_drains_total`: objects asked to leave a live shard.
    pub drains: Family<ResourceLabels, Counter>,
}

impl ResyncMetrics {
    /// Registers the counters (prometheus-client adds the `_total` suffix).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "controller_sharding_movements",
            "Total number of objects moved to another shard by the sharder",
            metrics.movements.clone(),
        );
        registry.register(
            "controller_sharding_drains",
            "Total number of objects drained from a shard by the sharder",
            metrics.drains.clone(),
        );
        metrics
    }
}

/// Where [`RingCollector`] reads ControllerRings, shard Leases and hash ring builds from at
/// each scrape.
pub trait RingSource: std::fmt::Debug + Send + Sync + 'static {
    /// The current ControllerRings and shard Leases.
    fn snapshot(&self) -> (Vec<Arc<ControllerRing>>, Vec<Arc<Lease>>);

    /// How many hash rings have been built for each ring so far, by ring name.
    fn hash_ring_builds(&self) -> Vec<(String, u64)>;
}

impl RingSource for RingCache {
    fn snapshot(&self) -> (Vec<Arc<ControllerRing>>, Vec<Arc<Lease>>) {
        (self.rings(), self.all_leases())
    }

    fn hash_ring_builds(&self) -> Vec<(String, u64)> {
        RingCache::hash_ring_builds(self)
    }
}

/// The ring and shard gauges of docs/contract.md#metrics and
/// `controller_sharding_ring_calculations_total`, computed from the caches at each scrape, so every
/// replica exports them and nothing has to keep them up to date.
#[derive(Debug)]
pub struct RingCollector<S>(pub S);

/// A per-ring gauge: its name, help, and how to read its value from the ring.
type RingGauge = (&'static str, &'static str, fn(&ControllerRing) -> i64);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RingUidLabels {
    controllerring: String,
    uid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardInfoLabels {
    namespace: String,
    shard: String,
    controllerring: String,
    uid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardStateLabels {
    namespace: String,
    shard: String,
    controllerring: String,
    state: String,
}

impl<S: RingSource> Collector for RingCollector<S> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (rings, leases) = self.0.snapshot();
        let now = Timestamp::now();
        let ring_gauges: [RingGauge; 4] = [
            (
                "controller_sharding_controllerring_metadata_generation",
                "The metadata.generation of the ControllerRing",
                |r| r.metadata.generation.unwrap_or_default(),
            ),
            (
                "controller_sharding_controllerring_observed_generation",
                "The status.observedGeneration of the ControllerRing",
                |r| {
                    r.status
                        .as_ref()
                        .and_then(|s| s.observed_generation)
                        .unwrap_or_default()
                },
            ),
            (
                "controller_sharding_controllerring_status_shards",
                "The ControllerRing's number of shards",
                |r| r.status.as_ref().map_or(0, |s| i64::from(s.shards)),
            ),
            (
                "controller_sharding_controllerring_status_available_shards",
                "The ControllerRing's number of available shards",
                |r| {
                    r.status
                        .as_ref()
                        .map_or(0, |s| i64::from(s.available_shards))
                },
            ),
        ];
        for (name, help, value) in ring_gauges {
            let family = Family::<RingUidLabels, Gauge>::default();
            for ring in &rings {
                let labels = RingUidLabels {
                    controllerring: ring.ring_name().to_owned(),
                    uid: ring.metadata.uid.clone().unwrap_or_default(),
                };
                family.get_or_create(&labels).set(value(ring));
            }
            family.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }

        let info = Family::<ShardInfoLabels, Gauge>::default();
        let states = Family::<ShardStateLabels, Gauge>::default();
        for lease in &leases {
            let Some(ring) = lease.labels().get(labels::CONTROLLER_RING) else {
                continue;
            };
            let (namespace, shard) = (lease.namespace().unwrap_or_default(), lease.name_any());
            let info_labels = ShardInfoLabels {
                namespace: namespace.clone(),
                shard: shard.clone(),
                controllerring: ring.clone(),
                uid: lease.uid().unwrap_or_default(),
            };
            info.get_or_create(&info_labels).set(1);
            // A state set: one series per state, 1 for the current one.
            let current = leases::state(lease, now);
            for state in ShardState::ALL {
                let labels = ShardStateLabels {
                    namespace: namespace.clone(),
                    shard: shard.clone(),
                    controllerring: ring.clone(),
                    state: state.as_str().to_owned(),
                };
                states
                    .get_or_create(&labels)
                    .set(i64::from(state == current));
            }
        }
        info.encode(encoder.encode_descriptor(
            "controller_sharding_shard_info",
            "Information about a shard of a ControllerRing",
            None,
            MetricType::Gauge,
        )?)?;
        states.encode(encoder.encode_descriptor(
            "controller_sharding_shard_state",
            "The state of a shard, one series per state",
            None,
            MetricType::Gauge,
        )?)?;

        let calculations = Family::<RingLabels, Counter>::default();
        for (ring, builds) in self.0.hash_ring_builds() {
            calculations
                .get_or_create(&RingLabels {
                    controllerring: ring,
                })
                .inc_by(builds);
        }
        // The help ends with a period as prometheus-client's registry writes it for the
        // registered series.
        calculations.encode(encoder.encode_descriptor(
            "controller_sharding_ring_calculations",
            "Total number of hash ring calculations.",
            None,
            MetricType::Counter,
        )?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use kube_sharding::api::{ControllerRingSpec, ControllerRingStatus};
    use prometheus_client::encoding::text::encode;

    use super::*;

    #[derive(Debug)]
    struct Fixed(
        Vec<Arc<ControllerRing>>,
        Vec<Arc<Lease>>,
        Vec<(String, u64)>,
    );

    impl RingSource for Fixed {
        fn snapshot(&self) -> (Vec<Arc<ControllerRing>>, Vec<Arc<Lease>>) {
            (self.0.clone(), self.1.clone())
        }

        fn hash_ring_builds(&self) -> Vec<(String, u64)> {
            self.2.clone()
        }
    }

    #[test]
    fn ring_and_shard_series_follow_the_caches() {
        let mut ring = ControllerRing::new("web", ControllerRingSpec::default());
        ring.metadata.uid = Some("u1".into());
        ring.metadata.generation = Some(4);
        ring.status = Some(ControllerRingStatus {
            observed_generation: Some(3),
            shards: 2,
            available_shards: 1,
            conditions: vec![],
        });
        let now = Timestamp::now();
        let lease = kube_sharding::testing::lease("web-0")
            .namespace("ops")
            .uid("l1")
            .ring("web")
            .renewed_at(now)
            .build();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RingCollector(Fixed(
            vec![Arc::new(ring)],
            vec![Arc::new(lease)],
            vec![("web".to_owned(), 2)],
        ))));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            r#"controller_sharding_controllerring_metadata_generation{controllerring="web",uid="u1"} 4"#,
            r#"controller_sharding_controllerring_observed_generation{controllerring="web",uid="u1"} 3"#,
            r#"controller_sharding_controllerring_status_shards{controllerring="web",uid="u1"} 2"#,
            r#"controller_sharding_controllerring_status_available_shards{controllerring="web",uid="u1"} 1"#,
            r#"controller_sharding_shard_info{namespace="ops",shard="web-0",controllerring="web",uid="l1"} 1"#,
            r#"controller_sharding_shard_state{namespace="ops",shard="web-0",controllerring="web",state="ready"} 1"#,
            r#"controller_sharding_shard_state{namespace="ops",shard="web-0",controllerring="web",state="dead"} 0"#,
            "# HELP controller_sharding_ring_calculations Total number of hash ring calculations.",
            "# TYPE controller_sharding_ring_calculations counter",
            r#"controller_sharding_ring_calculations_total{controllerring="web"} 2"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
