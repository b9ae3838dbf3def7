//! A kube-runtime controller for ConfigMaps that runs as one shard of the ControllerRing
//! `configmap-controller`. docs/implement-sharding.md walks through it: every Rust block of the
//! guide is an excerpt of this file, and a test builds this file as a user's own crate would,
//! from the guide's dependency block.
//!
//! ```sh
//! SHARD_NAME=$(hostname) NAMESPACE=default cargo run -p kube-sharding --example sharded_controller
//! ```
//!
//! - `SHARD_NAME`, `NAMESPACE` (required): this shard's name, and the namespace of its Lease;
//! - `METRICS_ADDRESS` (optional): where to serve `/metrics`, e.g. `127.0.0.1:8080`;
//! - `LABEL_SELECTOR` (optional): only ConfigMaps that also have these labels, e.g. `app=web`.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::{http::header::CONTENT_TYPE, response::IntoResponse, routing::get};
use controller_runtime_metrics::{ControllerMetrics, Registry, prometheus_client};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
    runtime::{
        Controller, WatchStreamExt,
        controller::{self, Action},
        reflector, watcher,
    },
};
use kube_sharding::shard::{
    Shard, ShardLease, ShardLeaseConfig, label_selector, reconciler, watcher_config,
};

const RING: &str = "configmap-controller";
/// How many objects are reconciled at once.
const WORKERS: u16 = 4;

/// The reconciler's error. kube-runtime and the shard's wrapper need a `std::error::Error`,
/// which `anyhow::Error` is not; a transparent wrapper keeps its message and sources.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct Error(#[from] anyhow::Error);

struct Context {
    client: Client,
    shard: Shard,
}

/// The controller's own logic; it only ever sees objects of this shard. Here it records
/// which shard reconciled the ConfigMap.
async fn reconcile(config_map: Arc<ConfigMap>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (Some(namespace), Some(name)) = (&config_map.metadata.namespace, &config_map.metadata.name)
    else {
        return Ok(Action::await_change());
    };
    // The resourceVersion read: a write that arrives after the object changed (perhaps moved
    // to another shard) fails with a conflict instead of overwriting.
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": config_map.metadata.resource_version,
            "annotations": { "example.com/reconciled-by": ctx.shard.name() },
        }
    });
    ctx.shard.check().context("before annotating")?;
    Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(|| format!("annotating ConfigMap {namespace}/{name}"))?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn error_policy(_: Arc<ConfigMap>, _: &reconciler::Error<Error>, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(5))
}

/// `/metrics` in the OpenMetrics text format.
fn metrics_router(registry: Arc<Registry>) -> axum::Router {
    let metrics = move || async move {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry)
            .map(|()| {
                let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
                ([(CONTENT_TYPE, content_type)], text)
            })
            .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)
            .into_response()
    };
    axum::Router::new().route("/metrics", get(metrics))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let shard_name = std::env::var("SHARD_NAME")
        .context("set SHARD_NAME to this shard's name, e.g. the pod name")?;
    let namespace = std::env::var("NAMESPACE")
        .context("set NAMESPACE to the namespace of the shard's Lease, e.g. the pod's")?;
    let client = Client::try_default().await?;

    let mut registry = Registry::default();
    let metrics =
        ControllerMetrics::register(&mut registry).controller("configmap", WORKERS.into());
    if let Ok(address) = std::env::var("METRICS_ADDRESS") {
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .with_context(|| format!("cannot listen on METRICS_ADDRESS {address}"))?;
        let router = metrics_router(Arc::new(registry));
        tokio::spawn(async move { axum::serve(listener, router).await });
    }

    let lease = ShardLease::new(
        client.clone(),
        ShardLeaseConfig::new(RING, &shard_name, namespace),
    );
    let fence = lease.fence(); // for step 4
    let lease = lease.acquire().await?;

    let selected = match std::env::var("LABEL_SELECTOR") {
        Ok(own) => {
            let selector = format!("{own},{}", label_selector(RING, &shard_name));
            watcher::Config::default().labels(&selector)
        }
        Err(_) => watcher_config(RING, &shard_name),
    };

    let (store, writer) = reflector::store();
    let config_maps = watcher(Api::<ConfigMap>::all(client.clone()), selected.clone())
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    let secrets = watcher(Api::<Secret>::all(client.clone()), selected)
        .default_backoff()
        .touched_objects();

    let shard = Shard::new(client.clone(), RING, &shard_name, fence);
    let ctx = Arc::new(Context { client, shard });
    let shutdown = lease.shutdown_signal();
    Controller::for_stream(metrics.trigger_self(config_maps), store)
        .watches_stream(secrets, metrics.trigger_owners())
        .with_config(controller::Config::default().concurrency(WORKERS))
        .graceful_shutdown_on(async move {
            shutdown.await;
        })
        .run(
            metrics.instrument(|object, ctx: Arc<Context>| async move {
                let shard = ctx.shard.clone();
                shard
                    .reconcile(object, |object| reconcile(object, ctx))
                    .await
            }),
            metrics.instrument_error_policy(error_policy),
            ctx,
        )
        .for_each(|result| {
            metrics.observe_result(&result);
            async {}
        })
        .await;

    lease.release().await?;
    Ok(())
}
