//! The Secret controller: reconciles this shard's Secrets into their checksum ConfigMaps.

use std::{fmt::Debug, pin::Pin, sync::Arc, time::Duration};

use controller_runtime_metrics::ReconcileMetrics;
use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api, Client, Resource,
    api::{Patch, PatchParams},
    runtime::{
        Config, Controller, WatchStreamExt as _,
        controller::Action,
        reflector::{self, ObjectRef, Store},
        watcher::{self, watcher},
    },
};
use kube_sharding::{
    fence::Expired,
    shard::{Shard, reconciler},
};
use tokio::sync::watch;

use crate::checksum::{desired_config_map, is_managed};

/// The field manager of the controller's applies.
pub const FIELD_MANAGER: &str = "checksum-controller";

/// Why a reconciliation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ConfigMap could not be applied; a conflict means the cache was stale.
    #[error("cannot apply the ConfigMap {name}")]
    Apply {
        /// `<namespace>/<name>` of the ConfigMap.
        name: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// The shard's Lease may have passed to another shard: the ConfigMap is not written.
    #[error("not writing the ConfigMap {name}")]
    Fenced {
        /// `<namespace>/<name>` of the ConfigMap.
        name: String,
        /// Why the fence is closed.
        #[source]
        source: Expired,
    },
}

/// What the reconciler needs.
pub struct Context {
    /// Writes the ConfigMaps.
    pub client: Client,
    /// This shard: only its Secrets are reconciled, and drains are acknowledged.
    pub shard: Shard,
    /// This shard's ConfigMaps, to skip writes that change nothing and to read the
    /// resourceVersion that a write carries.
    pub config_maps: Store<ConfigMap>,
    /// A wait in every reconciliation that models a controller bound by external calls.
    pub simulated_work: Duration,
}

impl Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("shard", &self.shard)
            .field("simulated_work", &self.simulated_work)
            .finish_non_exhaustive()
    }
}

/// Reconciles `secret` if it is assigned to this shard, and acknowledges its drain without
/// reconciling it. Drains of unmanaged Secrets are acknowledged too: the ring shards every
/// Secret (docs/checksum-controller.md#the-ring).
pub async fn reconcile(
    secret: Arc<Secret>,
    ctx: Arc<Context>,
) -> Result<Action, reconciler::Error<Error>> {
    let shard = ctx.shard.clone();
    shard
        .reconcile(secret, |secret| reconcile_assigned(secret, ctx))
        .await
}

/// Retries failed reconciliations after a while; their cause is logged.
#[allow(
    clippy::needless_pass_by_value,
    reason = "the signature Controller::run expects"
)]
pub fn error_policy(
    secret: Arc<Secret>,
    error: &reconciler::Error<Error>,
    _: Arc<Context>,
) -> Action {
    tracing::warn!(
        secret = %ObjectRef::from_obj(secret.as_ref()),
        error = %operations::error_chain(error),
        "reconciliation failed"
    );
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile_assigned(secret: Arc<Secret>, ctx: Arc<Context>) -> Result<Action, Error> {
    if !is_managed(&secret) {
        return Ok(Action::await_change());
    }
    let Some(mut desired) = desired_config_map(&secret) else {
        return Ok(Action::await_change());
    };
    if !ctx.simulated_work.is_zero() {
        tokio::time::sleep(ctx.simulated_work).await;
    }
    let cached = ctx.config_maps.get(&ObjectRef::from_obj(&desired));
    if let Some(cached) = &cached {
        if cached.data == desired.data
            && cached.metadata.owner_references == desired.metadata.owner_references
        {
            return Ok(Action::await_change());
        }
        // The write applies only to the version this shard read; a conflict retries.
        desired
            .metadata
            .resource_version
            .clone_from(&cached.metadata.resource_version);
    }
    apply(&ctx, &desired).await?;
    Ok(Action::await_change())
}

/// Applies `desired` while the shard's fence holds (docs/contract.md#fencing).
async fn apply(ctx: &Context, desired: &ConfigMap) -> Result<(), Error> {
    let (namespace, name) = (
        desired.metadata.namespace.as_deref().unwrap_or_default(),
        desired.metadata.name.as_deref().unwrap_or_default(),
    );
    ctx.shard.check().map_err(|source| Error::Fenced {
        name: format!("{namespace}/{name}"),
        source,
    })?;
    Api::<ConfigMap>::namespaced(ctx.client.clone(), namespace)
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(desired),
        )
        .await
        .map_err(|source| Error::Apply {
            name: format!("{namespace}/{name}"),
            source,
        })?;
    Ok(())
}

type Objects<K> = Pin<Box<dyn Stream<Item = Result<K, watcher::Error>> + Send>>;

/// The watches of the controller: this shard's Secrets and ConfigMaps, cached, and the streams
/// that fill the caches and trigger reconciliations. Nothing is listed before the controller
/// runs.
pub struct Watches {
    /// This shard's Secrets.
    pub secrets: Store<Secret>,
    /// This shard's ConfigMaps.
    pub config_maps: Store<ConfigMap>,
    secret_objects: Objects<Secret>,
    config_map_objects: Objects<ConfigMap>,
    listed: watch::Receiver<usize>,
}

impl Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches").finish_non_exhaustive()
    }
}

impl Watches {
    /// Watches the Secrets and ConfigMaps that `selected` selects (this shard's).
    #[must_use]
    pub fn new(client: &Client, selected: &watcher::Config) -> Self {
        let (listed_tx, listed) = watch::channel(0);
        let listed_tx = Arc::new(listed_tx);
        let (secrets, secret_objects) = reflect(client, selected, &listed_tx);
        let (config_maps, config_map_objects) = reflect(client, selected, &listed_tx);
        Self {
            secrets,
            config_maps,
            secret_objects: secret_objects.applied_objects().boxed(),
            // Deleted ConfigMaps trigger their Secret too, which recreates them.
            config_map_objects: config_map_objects.touched_objects().boxed(),
            listed,
        }
    }

    /// Completes when both caches hold their first list.
    ///
    /// Counted from the watch events rather than with `Store::wait_until_ready`: that wakes
    /// only one of its waiters, and the Controller already waits on the Secret store.
    pub fn synced(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut listed = self.listed.clone();
        async move {
            let _ = listed.wait_for(|listed| *listed == 2).await;
        }
    }
}

fn reflect<K>(
    client: &Client,
    selected: &watcher::Config,
    listed: &Arc<watch::Sender<usize>>,
) -> (
    Store<K>,
    impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + use<K>,
)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let (listed, mut first) = (listed.clone(), true);
    let events = watcher(Api::<K>::all(client.clone()), selected.clone())
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| {
            if first && matches!(event, Ok(watcher::Event::InitDone)) {
                first = false;
                listed.send_modify(|listed| *listed += 1);
            }
        });
    (reader, events)
}

/// Runs the controller with `workers` concurrent reconciliations until `shutdown` completes.
pub async fn run(
    watches: Watches,
    ctx: Arc<Context>,
    metrics: ReconcileMetrics,
    workers: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let results = Controller::for_stream(
        metrics.trigger_self(watches.secret_objects),
        watches.secrets,
    )
    .with_config(Config::default().concurrency(workers))
    .watches_stream(watches.config_map_objects, metrics.trigger_owners())
    .graceful_shutdown_on(shutdown)
    .run(
        metrics.instrument(reconcile),
        metrics.instrument_error_policy(error_policy),
        ctx,
    );
    results
        .for_each(|result| {
            metrics.observe_result(&result);
            async {}
        })
        .await;
}
