//! A kube-runtime controller for ConfigMaps that runs as one shard of the ControllerRing
//! `configmap-controller` (see docs/implement-sharding.md).
//!
//! ```sh
//! SHARD_NAME=$(hostname) NAMESPACE=default cargo run -p kube-sharding --example sharded_controller
//! ```

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
    runtime::{Controller, controller::Action},
};
use kube_sharding::shard::{Shard, ShardLease, ShardLeaseConfig, reconciler, watcher_config};

const RING: &str = "configmap-controller";

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("cannot update {0}")]
    Update(#[source] kube::Error),
}

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
    let patch = serde_json::json!({
        "metadata": { "annotations": { "example.com/reconciled-by": ctx.shard.name() } }
    });
    Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::Update)?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

fn error_policy(_: Arc<ConfigMap>, _: &reconciler::Error<Error>, _: Arc<Context>) -> Action {
    Action::requeue(Duration::from_secs(5))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The library reports waits, retries and losses of the Lease through tracing.
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

    // 1. Hold the shard Lease instead of a leader-election Lease.
    let lease = ShardLease::new(
        client.clone(),
        ShardLeaseConfig::new(RING, &shard_name, namespace),
    );
    let fence = lease.fence();
    let lease = lease.acquire().await?;

    // 2. Watch only this shard's objects, for the main kind and the owned kinds.
    let selected = watcher_config(RING, &shard_name);
    let ctx = Arc::new(Context {
        client: client.clone(),
        // 4. Reconcile only while the Lease's fence holds; check it before every write too.
        shard: Shard::new(client.clone(), RING, &shard_name, fence),
    });
    // 3. Stop reconciling on SIGTERM (how Kubernetes stops a pod), Ctrl-C, or when the Lease
    //    is lost.
    let shutdown = lease.shutdown_signal();
    Controller::new(Api::<ConfigMap>::all(client.clone()), selected.clone())
        .owns(Api::<Secret>::all(client), selected)
        .graceful_shutdown_on(async move {
            shutdown.await;
        })
        .run(
            // 4. Reconcile only assigned objects; acknowledge drains without reconciling.
            |object, ctx| async move {
                let shard = ctx.shard.clone();
                shard
                    .reconcile(object, |object| reconcile(object, ctx))
                    .await
            },
            error_policy,
            ctx,
        )
        .for_each(|_| async {})
        .await;

    // 5. Release the Lease so that the sharder moves this shard's objects at once.
    lease.release().await?;
    Ok(())
}
