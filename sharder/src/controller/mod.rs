//! The sharder's controllers. They run only on the leader; see [`crate::run`].

pub mod controller_ring;
pub mod resync;
pub mod ring_resources;
pub mod shard_lease;

use std::fmt::Debug;

use controller_runtime_metrics::ReconcileMetrics;
use futures::{Stream, StreamExt as _};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, Client, Resource, ResourceExt as _,
    api::ListParams,
    runtime::{
        Controller, PredicateConfig, WatchStreamExt, controller, predicates,
        reflector::{self, ObjectRef},
        watcher,
    },
};
use kube_sharding::{
    api::{ControllerRing, labels},
    fence::{Expired, Fence},
};
use serde::de::DeserializeOwned;

/// The log target of [`fenced_write`]: each write the leader sends, at debug level.
pub const WRITE_LOG_TARGET: &str = "sharder::write";

/// Checks the leader's fence immediately before a write (docs/sharder.md#leadership), and logs
/// the write it lets through (`verb`, `object`) on [`WRITE_LOG_TARGET`] at debug level, so
/// that when the leader wrote can be read from its log.
pub(crate) fn fenced_write(fence: &Fence, verb: &str, object: &str) -> Result<(), Expired> {
    match fence.check() {
        Ok(()) => {
            tracing::debug!(target: WRITE_LOG_TARGET, verb, object, "writing");
            Ok(())
        }
        Err(expired) => {
            tracing::warn!(
                verb,
                object,
                "not writing: leadership may have passed to another replica"
            );
            Err(expired)
        }
    }
}

/// A controller of the objects of `api` selected by `config`, whose queue `metrics` observe.
pub(crate) fn controller<K>(
    api: Api<K>,
    config: watcher::Config,
    metrics: &ReconcileMetrics,
) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let objects = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(metrics.trigger_self(objects), reader)
}

/// Drives the results of `Controller::run` until the controller stops.
pub(crate) async fn drive<K, E: 'static, Q: 'static>(
    results: impl Stream<Item = Result<(ObjectRef<K>, controller::Action), controller::Error<E, Q>>>,
    metrics: &ReconcileMetrics,
) where
    K: Resource,
{
    results
        .for_each(|result| {
            metrics.observe_result(&result);
            async {}
        })
        .await;
}

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
