//! The sharder: watches ControllerRings and shard Leases, assigns new objects to shards with
//! a mutating webhook, and moves or drains objects when shards join, leave or die.
//!
//! [`run`] wires everything; `main` only parses flags and the config file, so that tests can
//! run a sharder in-process on listeners bound to port 0.

pub mod cache;
pub mod cli;
pub mod config;
pub mod controller;
pub mod leader_election;
pub mod load_table;
pub mod metrics;
pub mod webhook;

use std::{net::TcpListener, sync::Arc};

use anyhow::Context as _;
use controller_runtime_metrics::{ControllerMetrics, RestClientMetrics};
use k8s_openapi::api::admissionregistration::v1::WebhookClientConfig;
use kube::Client;
use kube_sharding::{fence::Fence, shard::ShardLease};
use operations::{
    http::{self, MetricsServing, Readiness},
    leader::{self, LeaderElection},
    runtime::{Runtime, StopSignal},
};
use prometheus_client::registry::Registry;

use crate::{
    cache::RingCache,
    config::SharderConfig,
    controller::resync::Resync,
    load_table::LoadTables,
    metrics::ResyncMetrics,
    webhook::{
        configuration::{ClientConfigSettings, WebhookConfigSettings},
        handler::Webhook,
        metrics::WebhookMetrics,
    },
};

/// The sockets a sharder serves on, bound before it starts so that callers can use port 0.
#[derive(Debug)]
pub struct Listeners {
    /// The HTTPS webhook server.
    pub webhook: TcpListener,
    /// `/healthz` and `/readyz`, unless disabled.
    pub health: Option<TcpListener>,
    /// `/metrics`, unless disabled.
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// Binds the addresses of `config`.
    pub fn bind(config: &SharderConfig) -> anyhow::Result<Self> {
        let bind = |address| {
            TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))
        };
        Ok(Self {
            webhook: bind(config.webhook.server.bind_address.get())?,
            health: config.health.bind_address.get().map(bind).transpose()?,
            metrics: config.metrics.bind_address.get().map(bind).transpose()?,
        })
    }
}

/// Runs the sharder until `shutdown` completes: the webhook and metrics on this replica,
/// the controllers while this replica leads (`identity` is its name in the leader Lease).
/// `client`'s requests are counted in `rest_metrics` (see [`client`]).
///
/// # Errors
/// A server fails, or leadership is lost: the renew deadline passed without a renewal, so the
/// controllers were cancelled and can no longer write (the process should exit and restart,
/// as a controller-runtime manager does).
pub async fn run(
    config: SharderConfig,
    (client, rest_metrics): (Client, RestClientMetrics),
    listeners: Listeners,
    identity: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut runtime = Runtime::new(shutdown, config.graceful_shutdown_timeout.get());
    let mut registry = Registry::default();
    let webhook_metrics = WebhookMetrics::register(&mut registry);
    let resync_metrics = ResyncMetrics::register(&mut registry);
    let controller_metrics = ControllerMetrics::register(&mut registry);
    rest_metrics.register(&mut registry);
    let (cache, reflectors) = RingCache::start(&client);
    registry.register_collector(Box::new(metrics::RingCollector(cache.clone())));
    let reflectors = tokio::spawn(reflectors);
    let readiness = Readiness::default();
    if let Some(listener) = listeners.health {
        runtime.serve(listener, http::health_router(readiness.clone()));
    }
    if let Some(listener) = listeners.metrics {
        let serving = MetricsServing::new(config.metrics.secure_serving, &client);
        runtime.serve_metrics(listener, Arc::new(registry), serving);
    }
    let server = &config.webhook.server;
    let limits = server.limits();
    let router = webhook::server::router(
        Webhook::new(Arc::new(cache.clone()), webhook_metrics),
        limits,
        readiness.clone(),
    );
    let files = (server.cert_file(), server.key_file());
    let webhook_stop = runtime.stopped();
    runtime.spawn_server(async move {
        webhook::server::serve(
            listeners.webhook,
            files,
            router,
            limits.header_read_timeout,
            webhook_stop,
        )
        .await
        .context("webhook server failed")
    });

    // Every write of the controllers checks the leader's fence (docs/sharder.md#leadership).
    let election = &config.leader_election;
    let lease = election.leader_elect.then(|| {
        LeaderElection {
            namespace: election.resource_namespace.clone(),
            name: election.resource_name.clone(),
            identity,
            lease_duration: election.lease_duration.get(),
            renew_deadline: election.renew_deadline.get(),
            retry_period: election.retry_period.get(),
        }
        .lease(client.clone())
    });
    let fence = lease
        .as_ref()
        .map_or_else(Fence::unfenced, ShardLease::fence);
    // Admissions first, on every replica; then the controllers, on the leader only.
    let leadership = async {
        cache.wait_until_ready().await;
        readiness.set_ready();
        tracing::info!("caches synced, serving admissions");
        match lease {
            Some(lease) => Ok(Some(leader::acquire(lease).await.map_err(|error| {
                leader_election::explain(error, &election.resource_namespace)
            })?)),
            None => Ok(None),
        }
    };
    let result = runtime
        .run(leadership, |stop| {
            Box::pin(run_controllers(
                &config,
                (&client, cache.load_tables().clone()),
                fence,
                (resync_metrics, controller_metrics),
                stop,
            ))
        })
        .await;
    reflectors.abort();
    result
}

/// A client from `clientConnection.kubeconfig`, or else from the environment (in-cluster or
/// `KUBECONFIG`), counting its requests in the returned metrics.
pub async fn client(config: &SharderConfig) -> anyhow::Result<(Client, RestClientMetrics)> {
    operations::client::build(config.client_connection.kubeconfig.as_deref()).await
}

/// Runs the controllers until `stop`; they write only while `fence` holds.
async fn run_controllers(
    config: &SharderConfig,
    (client, load_tables): (&Client, LoadTables),
    fence: Fence,
    (resync_metrics, controller_metrics): (ResyncMetrics, ControllerMetrics),
    stop: StopSignal,
) {
    let sharder = &config.controller.sharder;
    let resync = Resync::new(
        client.clone(),
        sharder.concurrent_moves.get(),
        config.webhook.config.namespace_selector.clone(),
        resync_metrics,
        fence.clone(),
        load_tables,
    );
    let (resync_failures, failure_changes) = controller::resync::controller::Failures::new();
    futures::join!(
        controller::controller_ring::run(
            client.clone(),
            webhook_settings(config),
            fence.clone(),
            (resync_failures.clone(), failure_changes),
            controller_metrics.controller("controllerring", 0),
            stop.stopped(),
        ),
        controller::shard_lease::run(
            client.clone(),
            fence,
            controller_metrics.controller("shardlease", 0),
            stop.stopped(),
        ),
        controller::resync::controller::run(
            client.clone(),
            resync,
            sharder.sync_period.get(),
            resync_failures,
            controller_metrics.controller("sharder", 0),
            stop.stopped(),
        ),
    );
}

/// The webhook configuration settings of the config file.
fn webhook_settings(config: &SharderConfig) -> WebhookConfigSettings {
    let WebhookClientConfig {
        service,
        url,
        ca_bundle,
    } = config.webhook.config.client_config.clone();
    let client_config = match (service, url) {
        (Some(service), _) => ClientConfigSettings::Service {
            namespace: service.namespace,
            name: service.name,
            port: service.port,
        },
        (None, url) => ClientConfigSettings::Url(url.unwrap_or_default()),
    };
    WebhookConfigSettings {
        annotations: config.webhook.config.annotations.clone(),
        client_config,
        ca_bundle: ca_bundle.map(|bytes| bytes.0),
        namespace_selector: Some(config.webhook.config.namespace_selector.clone()),
    }
}
