//! The webhosting-operator: Websites styled by Themes, each served by a Deployment, ConfigMap,
//! Service and Ingress. It runs as one shard of the ControllerRing `webhosting-operator` or as
//! a leader-elected singleton.
//!
//! [`run`] wires everything; `main` only parses flags, so that tests can run the operator
//! in-process on listeners bound to port 0.

pub mod api;
pub mod audit;
pub mod children;
pub mod controller;
pub mod metrics;
pub mod options;
pub mod phase;
pub mod samples;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use controller_runtime_metrics::{ControllerMetrics, RestClientMetrics};
use futures::future::Either;
use kube::{
    Client,
    runtime::{
        events::{Recorder, Reporter},
        watcher,
    },
};
use operations::{
    http::{self, MetricsServing, Readiness},
    leader::{self, LeaderElection},
    runtime::{Runtime, acquire_shard_lease, shard_lease},
};

use kube_sharding::{
    fence::Fence,
    shard::{Shard, watcher_config},
};
pub use operations::http::Listeners;
use prometheus_client::registry::Registry;

use crate::{
    audit::Audit,
    controller::{Watches, website::Context},
    metrics::{RING, WebhostingCollector},
    options::{Mode, Options},
};

/// The name of the Website controller, and of its work queue.
pub const CONTROLLER: &str = "website";

/// Runs the operator until `shutdown` completes: as a shard, it holds its shard Lease and
/// releases it at the end; as a singleton, it reconciles while it leads.
///
/// # Errors
/// The Lease cannot be acquired or is lost, or a server fails. A shard that lost its Lease
/// must stop, since the sharder may already have given its Websites to other shards.
pub async fn run(
    options: Options,
    (client, rest_metrics): (Client, RestClientMetrics),
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // The servers stop at once when the controller has stopped and the Lease is released.
    let mut runtime = Runtime::new(shutdown, Some(Duration::ZERO));
    let selected = match options.mode {
        Mode::Sharded => watcher_config(RING, &options.identity),
        Mode::Singleton => watcher::Config::default(),
    };
    let watches = Watches::new(&client, &selected);
    let mut registry = Registry::default();
    let controller_metrics = ControllerMetrics::register(&mut registry);
    rest_metrics.register(&mut registry);
    registry.register_collector(Box::new(WebhostingCollector {
        websites: watches.websites.clone(),
        themes: watches.themes.clone(),
    }));
    let readiness = Readiness::default();
    let serving = MetricsServing::new(options.metrics_secure, &client);
    runtime.serve_metrics(listeners.metrics, Arc::new(registry), serving);
    runtime.serve(listeners.health, http::health_router(readiness.clone()));

    // Servers first, so that a standby singleton answers health checks; it counts as ready, or
    // a rolling update would wait for a replica that cannot lead before the old one leaves.
    if options.mode == Mode::Singleton {
        readiness.set_ready();
    }
    // Every write checks the fence of the Lease this replica holds (docs/contract.md#fencing).
    let lease = match options.mode {
        Mode::Sharded => shard_lease(
            &client,
            RING,
            &options.identity,
            &options.namespace,
            options.lease_duration,
        ),
        Mode::Singleton => election(&options).lease(client.clone()),
    };
    let ctx = context(&options, &client, &watches, lease.fence())?;
    // The Lease before any watch: a shard must not watch or reconcile before it is a member.
    let membership = async {
        Ok(match options.mode {
            Mode::Sharded => Either::Left(acquire_shard_lease(lease).await?),
            Mode::Singleton => Either::Right(leader::acquire(lease).await?),
        })
    };
    let metrics = controller_metrics.controller(CONTROLLER, u32::from(options.workers));
    runtime
        .run(membership, |stop| {
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

/// The reconciler's context: the caches of `watches`, the settings of `options`, and the
/// fence of the Lease that the replica holds.
fn context(
    options: &Options,
    client: &Client,
    watches: &Watches,
    fence: Fence,
) -> anyhow::Result<Arc<Context>> {
    Ok(Arc::new(Context {
        client: client.clone(),
        themes: watches.themes.clone(),
        deployments: watches.deployments.clone(),
        config_maps: watches.config_maps.clone(),
        services: watches.services.clone(),
        ingresses: watches.ingresses.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "webhosting-operator".to_owned(),
                instance: Some(options.identity.clone()),
            },
        ),
        shard: (options.mode == Mode::Sharded)
            .then(|| Shard::new(client.clone(), RING, &options.identity, fence.clone())),
        fence,
        simulated_work: options.simulated_work,
        audit: options
            .audit_file
            .as_deref()
            .map(|path| {
                Audit::open(path, &options.identity)
                    .with_context(|| format!("cannot open the audit file {}", path.display()))
            })
            .transpose()?,
    }))
}

/// The singleton's leader election, with leader election's ratios of the lease duration.
fn election(options: &Options) -> LeaderElection {
    LeaderElection {
        namespace: options.namespace.clone(),
        name: RING.to_owned(),
        identity: options.identity.clone(),
        lease_duration: options.lease_duration,
        renew_deadline: options.lease_duration * 2 / 3,
        retry_period: options.lease_duration * 2 / 15,
    }
}
