//! The checksum-controller: a ConfigMap `<secret>-checksum` with the SHA-256 of the data of
//! every Secret labelled `checksum.sharding.timebertt.dev/managed=true`. It runs as one shard of
//! the ControllerRing `checksum-controller` and is the harness's second workload
//! (docs/checksum-controller.md).
//!
//! [`run`] wires everything; `main` only parses flags, so that tests can run the controller
//! in-process on listeners bound to port 0.

pub mod checksum;
pub mod controller;
pub mod options;

use std::{sync::Arc, time::Duration};

use controller_runtime_metrics::{ControllerMetrics, RestClientMetrics};
use kube::Client;
use operations::{
    http::{self, MetricsServing, Readiness},
    runtime::{Runtime, acquire_shard_lease, shard_lease},
};

use kube_sharding::shard::{Shard, watcher_config};
pub use operations::http::Listeners;
use prometheus_client::registry::Registry;

use crate::{
    controller::{Context, Watches},
    options::Options,
};

/// The ControllerRing the controller is a shard of (`config/controllerring.yaml`).
pub const RING: &str = "checksum-controller";

/// The name of the Secret controller, and of its work queue in the `workqueue_*` metrics.
pub const CONTROLLER: &str = "secret";

/// Runs the controller as a shard until `shutdown` completes: it holds its shard Lease, watches
/// only its own Secrets and ConfigMaps, and releases the Lease at the end so that the sharder
/// moves its Secrets at once.
///
/// # Errors
/// The Lease cannot be acquired or is lost, or a server fails. A shard that lost its Lease
/// must stop, since the sharder may already have given its Secrets to other shards.
pub async fn run(
    options: Options,
    (client, rest_metrics): (Client, RestClientMetrics),
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // The servers stop at once when the controller has stopped and the Lease is released.
    let mut runtime = Runtime::new(shutdown, Some(Duration::ZERO));
    let watches = Watches::new(&client, &watcher_config(RING, &options.identity));
    let mut registry = Registry::default();
    let controller_metrics = ControllerMetrics::register(&mut registry);
    rest_metrics.register(&mut registry);
    let readiness = Readiness::default();
    let serving = MetricsServing::new(options.metrics_secure, &client);
    runtime.serve_metrics(listeners.metrics, Arc::new(registry), serving);
    runtime.serve(listeners.health, http::health_router(readiness.clone()));

    let lease = shard_lease(
        &client,
        RING,
        &options.identity,
        &options.namespace,
        options.lease_duration,
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        // Its fence guards every write (docs/contract.md#fencing).
        shard: Shard::new(client.clone(), RING, &options.identity, lease.fence()),
        config_maps: watches.config_maps.clone(),
        simulated_work: options.simulated_work,
    });
    let metrics = controller_metrics.controller(CONTROLLER, u32::from(options.workers));
    // The Lease before any watch: a shard must not watch or reconcile before it is a member.
    let lease = acquire_shard_lease(lease);
    runtime
        .run(lease, |stop| {
            let synced = watches.synced();
            tokio::spawn(async move {
                synced.await;
                readiness.set_ready();
                tracing::info!("caches synced");
            });
            Box::pin(controller::run(
                watches,
                ctx,
                metrics,
                options.workers,
                stop.stopped(),
            ))
        })
        .await
}
