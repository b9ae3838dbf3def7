//! The sharder's controllers. They run only on the leader; see [`crate::run`].

pub mod controller_ring;
pub mod resync;
pub mod shard_lease;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client, ResourceExt as _, api::ListParams, runtime::reflector::ObjectRef};
use sharding::api::{ControllerRing, labels};

/// The ring a shard Lease belongs to.
pub(crate) fn ring_of(lease: &Lease) -> Option<ObjectRef<ControllerRing>> {
    lease
        .labels()
        .get(labels::CONTROLLER_RING)
        .map(|ring| ObjectRef::new(ring))
}

/// The shard Leases of `ring`, read from the API server rather than a cache: they are few,
/// and a decision taken on the Lease change that triggered it must see that change.
pub(crate) async fn ring_leases(client: &Client, ring: &str) -> kube::Result<Vec<Lease>> {
    let selector = format!("{}={ring}", labels::CONTROLLER_RING);
    Ok(Api::<Lease>::all(client.clone())
        .list(&ListParams::default().labels(&selector))
        .await?
        .items)
}
