//! The sharder's controllers. They run only on the leader; see [`crate::run`].

pub mod controller_ring;
pub mod resync;
pub mod shard_lease;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client, ResourceExt as _,
    api::ListParams,
    runtime::{PredicateConfig, WatchStreamExt, predicates, reflector::ObjectRef, watcher},
};
use sharding::api::{ControllerRing, labels};

/// The ring a shard Lease belongs to.
pub(crate) fn ring_of(lease: &Lease) -> Option<ObjectRef<ControllerRing>> {
    lease
        .labels()
        .get(labels::CONTROLLER_RING)
        .map(|ring| ObjectRef::new(ring))
}

/// Shard Leases whose labels changed: a new Lease or a new state label. Renewals change a
/// Lease every few seconds but cannot change a ring; only a state change (which the shard Lease
/// controller writes as a label) can.
pub(crate) fn lease_state_changes(
    client: &Client,
) -> impl futures::Stream<Item = Result<Lease, watcher::Error>> + Send + 'static {
    watcher(
        Api::<Lease>::all(client.clone()),
        watcher::Config::default().labels(labels::CONTROLLER_RING),
    )
    .default_backoff()
    .touched_objects()
    .predicate_filter(predicates::labels, PredicateConfig::default())
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
