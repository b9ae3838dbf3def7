//! The sharder: watches ControllerRings and shard Leases, assigns new objects to shards with
//! a mutating webhook, and moves or drains objects when shards join, leave or die.
//!
//! [`run`] wires everything; `main` only parses flags and the config file, so that tests can
//! run a sharder in-process on listeners bound to port 0.

pub mod cache;
pub mod config;
pub mod controller;
pub mod metrics;
pub mod webhook;

use std::{net::TcpListener, sync::Arc, time::Duration};

use anyhow::Context as _;
use controller_runtime_metrics::{ControllerMetrics, RestClientMetrics};
use k8s_openapi::api::admissionregistration::v1::WebhookClientConfig;
use kube::Client;
use operations::{
    http,
    http::Readiness,
    leader::{self, LeaderElection},
    stopped,
};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::{
    cache::RingCache,
    config::SharderConfig,
    controller::resync::Resync,
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
            webhook: bind(config.webhook_server.bind_address)?,
            health: config.health_bind_address.map(bind).transpose()?,
            metrics: config.metrics_bind_address.map(bind).transpose()?,
        })
    }
}

/// Runs the sharder until `shutdown` completes: the webhook and metrics on this replica,
/// the controllers while this replica leads (`identity` is its name in the leader Lease).
/// `client`'s requests are counted in `rest_metrics` (see [`client`]).
///
/// # Errors
/// A server fails, or leadership is lost (the controllers cannot safely go on, so the
/// process should exit and restart, as a controller-runtime manager does).
pub async fn run(
    config: SharderConfig,
    (client, rest_metrics): (Client, RestClientMetrics),
    listeners: Listeners,
    identity: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    let on_shutdown = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = on_shutdown.send(true);
    });

    let mut registry = Registry::default();
    let webhook_metrics = WebhookMetrics::register(&mut registry);
    let resync_metrics = ResyncMetrics::register(&mut registry);
    let controller_metrics = ControllerMetrics::register(&mut registry);
    rest_metrics.register(&mut registry);
    let (cache, reflectors) = RingCache::start(&client);
    registry.register_collector(Box::new(metrics::RingCollector(cache.clone())));
    let registry = Arc::new(registry);
    let reflectors = tokio::spawn(reflectors);
    let readiness = Readiness::default();
    let mut servers = tokio::task::JoinSet::new();
    if let Some(listener) = listeners.health {
        servers.spawn(http::serve(
            listener,
            http::health_router(readiness.clone()),
            stopped(&stop),
        ));
    }
    if let Some(listener) = listeners.metrics {
        servers.spawn(http::serve(
            listener,
            http::metrics_router(registry.clone()),
            stopped(&stop),
        ));
    }
    let router = webhook::server::router(Webhook::new(Arc::new(cache.clone()), webhook_metrics));
    let (cert, key) = (
        config.webhook_server.cert_file(),
        config.webhook_server.key_file(),
    );
    let webhook_stop = stopped(&stop);
    servers.spawn(async move {
        webhook::server::serve(listeners.webhook, cert, key, router, webhook_stop)
            .await
            .context("webhook server failed")
    });

    cache.wait_until_ready().await;
    readiness.set_ready();
    tracing::info!("caches synced, serving admissions");

    let controllers = run_controllers(
        &config,
        client,
        identity,
        (resync_metrics, controller_metrics),
        stop.clone(),
    );
    tokio::pin!(controllers);
    let result = tokio::select! {
        result = &mut controllers => result,
        Some(joined) = servers.join_next() => {
            let served = joined.context("server task panicked")?;
            if *stop.borrow() {
                // Stopping: servers may finish before the controllers do.
                served.and(controllers.await)
            } else {
                served.and(Err(anyhow::anyhow!("a server stopped unexpectedly")))
            }
        }
    };
    // Whatever ended the run, stop the rest within the graceful shutdown period.
    let _ = stop_tx.send(true);
    reflectors.abort();
    let drain = async { while servers.join_next().await.is_some() {} };
    let timeout = config.graceful_shutdown_timeout.unwrap_or(Duration::MAX);
    if tokio::time::timeout(timeout, drain).await.is_err() {
        tracing::warn!(
            ?timeout,
            "servers did not stop within the graceful shutdown timeout"
        );
    }
    result
}

/// A client from `clientConnection.kubeconfig`, or else from the environment (in-cluster or
/// `KUBECONFIG`), counting its requests in the returned metrics.
pub async fn client(config: &SharderConfig) -> anyhow::Result<(Client, RestClientMetrics)> {
    operations::client::build(config.client_connection.kubeconfig.as_deref()).await
}

/// Runs the controllers, behind leader election when it is enabled, until `stop`.
async fn run_controllers(
    config: &SharderConfig,
    client: Client,
    identity: String,
    (resync_metrics, controller_metrics): (ResyncMetrics, ControllerMetrics),
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let election = &config.leader_election;
    let leadership = if election.leader_elect {
        let election = LeaderElection {
            namespace: election.resource_namespace.clone(),
            name: election.resource_name.clone(),
            identity,
            lease_duration: election.lease_duration,
            renew_deadline: election.renew_deadline,
        };
        let (mut leading, task) = leader::elect(client.clone(), &election)
            .await
            .context("cannot start leader election")?;
        tokio::select! {
            result = leading.wait_for(|leading| *leading) => { result.context("leader election stopped")?; }
            () = stopped(&stop) => return Ok(()),
        }
        tracing::info!(lease = election.name, "became leader, starting controllers");
        Some((leading, task))
    } else {
        None
    };

    let (lost_tx, lost) = watch::channel(false);
    let controllers_stop = {
        let (stop, lost) = (stop.clone(), lost.clone());
        move || {
            let (stop, lost) = (stop.clone(), lost.clone());
            async move {
                tokio::select! {
                    () = stopped(&stop) => {}
                    () = stopped(&lost) => {}
                }
            }
        }
    };
    let sharder = &config.sharder_controller;
    let resync = Resync::new(
        client.clone(),
        sharder.concurrent_moves,
        config.webhook_config.namespace_selector.clone(),
        resync_metrics,
    );
    let controllers = async {
        futures::join!(
            controller::controller_ring::run(
                client.clone(),
                webhook_settings(config),
                controller_metrics.controller("controllerring", 0),
                controllers_stop(),
            ),
            controller::shard_lease::run(
                client.clone(),
                controller_metrics.controller("shardlease", 0),
                controllers_stop(),
            ),
            controller::resync::controller::run(
                client.clone(),
                resync,
                sharder.sync_period,
                controller_metrics.controller("sharder", 0),
                controllers_stop(),
            ),
        );
    };

    match leadership {
        None => {
            controllers.await;
            Ok(())
        }
        Some((mut leading, task)) => {
            let lost_leadership = async {
                let _ = leading.wait_for(|leading| !*leading).await;
                let _ = lost_tx.send(true);
            };
            tokio::select! {
                () = controllers => {
                    drop(leading);
                    let _ = task.await;
                    Ok(())
                }
                () = lost_leadership => Err(anyhow::anyhow!("lost leadership")),
            }
        }
    }
}

/// The webhook configuration settings of the config file.
fn webhook_settings(config: &SharderConfig) -> WebhookConfigSettings {
    let WebhookClientConfig {
        service,
        url,
        ca_bundle,
    } = config.webhook_config.client_config.clone();
    let client_config = match (service, url) {
        (Some(service), _) => ClientConfigSettings::Service {
            namespace: service.namespace,
            name: service.name,
            port: service.port,
        },
        (None, url) => ClientConfigSettings::Url(url.unwrap_or_default()),
    };
    WebhookConfigSettings {
        annotations: config.webhook_config.annotations.clone(),
        client_config,
        ca_bundle: ca_bundle.map(|bytes| bytes.0),
        namespace_selector: Some(config.webhook_config.namespace_selector.clone()),
    }
}
