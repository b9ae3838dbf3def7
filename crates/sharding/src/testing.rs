//! Fixture builders for tests of code that works with shard Leases (feature `testing`).
//!
//! ```
//! use k8s_openapi::jiff::Timestamp;
//! let now = Timestamp::now();
//! let lease = kube_sharding::testing::lease("shard-0").renewed_at(now).ring("web").build();
//! assert_eq!(kube_sharding::leases::state(&lease, now), kube_sharding::leases::ShardState::Ready);
//! ```

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};

use crate::api::labels;

/// Builds a shard Lease.
#[derive(Clone, Debug)]
#[must_use]
pub struct LeaseBuilder(Lease);

/// A Lease named `name`, held by `name` (a ready shard once [`LeaseBuilder::renewed_at`] is
/// set), with the default 15 s duration and no times.
pub fn lease(name: &str) -> LeaseBuilder {
    LeaseBuilder(Lease {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(name.to_owned()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }),
    })
}

impl LeaseBuilder {
    /// Held by `holder` (`""` for a released Lease).
    pub fn holder(mut self, holder: &str) -> Self {
        self.spec().holder_identity = Some(holder.to_owned());
        self
    }

    /// Valid for `seconds` after each renewal.
    pub fn duration(mut self, seconds: i32) -> Self {
        self.spec().lease_duration_seconds = Some(seconds);
        self
    }

    /// Acquired and last renewed at `time`.
    pub fn renewed_at(mut self, time: Timestamp) -> Self {
        let spec = self.spec();
        spec.acquire_time = Some(MicroTime(time));
        spec.renew_time = Some(MicroTime(time));
        self
    }

    /// Labelled as a shard of ControllerRing `ring`.
    pub fn ring(mut self, ring: &str) -> Self {
        self.label(labels::CONTROLLER_RING, ring);
        self
    }

    /// Labelled with the sharder's state label.
    pub fn state_label(mut self, state: &str) -> Self {
        self.label(labels::STATE, state);
        self
    }

    /// In namespace `namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.0.metadata.namespace = Some(namespace.to_owned());
        self
    }

    /// With uid `uid`.
    pub fn uid(mut self, uid: &str) -> Self {
        self.0.metadata.uid = Some(uid.to_owned());
        self
    }

    /// The Lease.
    #[must_use]
    pub fn build(self) -> Lease {
        self.0
    }

    fn spec(&mut self) -> &mut LeaseSpec {
        self.0.spec.get_or_insert_with(LeaseSpec::default)
    }

    fn label(&mut self, key: &str, value: &str) {
        self.0
            .metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value.to_owned());
    }
}
