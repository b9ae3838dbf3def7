//! The sharder's own metrics (SPEC A.9), registered once per process.

use prometheus_client::{
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

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

/// `controller_sharding_ring_calculations_total`: hash rings built from shard Leases.
pub fn register_ring_calculations(registry: &mut Registry) -> Family<RingLabels, Counter> {
    let family = Family::default();
    registry.register(
        "controller_sharding_ring_calculations",
        "Total number of hash ring calculations",
        family.clone(),
    );
    family
}
