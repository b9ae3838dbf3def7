//! The Website controller: watches this shard's Websites and their children, and all Themes.

pub mod apply;
pub mod website;

use std::{fmt::Debug, pin::Pin, sync::Arc};

use controller_runtime_metrics::ReconcileMetrics;
use futures::{Stream, StreamExt as _};
use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        apps::v1::Deployment,
        core::v1::{ConfigMap, Service},
        networking::v1::Ingress,
    },
};
use kube::{
    Api, Client, Resource, ResourceExt as _,
    runtime::{
        Config, Controller, WatchStreamExt as _,
        reflector::{self, ObjectRef, Store},
        watcher::{self, watcher},
    },
};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::api::{Theme, Website};

type Objects<K> = Pin<Box<dyn Stream<Item = Result<K, watcher::Error>> + Send>>;

/// The watches of the controller: caches that the reconciler and the metrics read, and the
/// streams that fill them and trigger reconciliations.
pub struct Watches {
    /// This shard's Websites.
    pub websites: Store<Website>,
    /// All Themes.
    pub themes: Store<Theme>,
    /// This shard's Deployments.
    pub deployments: Store<Deployment>,
    /// This shard's ConfigMaps.
    pub config_maps: Store<ConfigMap>,
    /// This shard's Services.
    pub services: Store<Service>,
    /// This shard's Ingresses.
    pub ingresses: Store<Ingress>,
    /// How many caches hold their first list.
    listed: watch::Receiver<usize>,
    streams: Streams,
}

impl Debug for Watches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watches").finish_non_exhaustive()
    }
}

struct Streams {
    websites: Objects<Website>,
    themes: Objects<Theme>,
    deployments: Objects<Deployment>,
    config_maps: Objects<ConfigMap>,
    services: Objects<Service>,
    ingresses: Objects<Ingress>,
}

impl Watches {
    /// Watches the Websites and children that `selected` selects (this shard's, or all for a
    /// singleton), and all Themes. Nothing is listed before the controller runs.
    #[must_use]
    pub fn new(client: &Client, selected: &watcher::Config) -> Self {
        let (listed_tx, listed) = watch::channel(0);
        let listed_tx = Arc::new(listed_tx);
        let (websites, website_objects) = reflect(
            Api::<Website>::all(client.clone()),
            selected.clone(),
            true,
            &listed_tx,
        );
        let (themes, theme_objects) = reflect(
            Api::<Theme>::all(client.clone()),
            watcher::Config::default(),
            false,
            &listed_tx,
        );
        let (deployments, deployment_objects) = owned(client, selected, &listed_tx);
        let (config_maps, config_map_objects) = owned(client, selected, &listed_tx);
        let (services, service_objects) = owned(client, selected, &listed_tx);
        let (ingresses, ingress_objects) = owned(client, selected, &listed_tx);
        Self {
            websites,
            themes,
            deployments,
            config_maps,
            services,
            ingresses,
            listed,
            streams: Streams {
                websites: website_objects,
                themes: theme_objects,
                deployments: deployment_objects,
                config_maps: config_map_objects,
                services: service_objects,
                ingresses: ingress_objects,
            },
        }
    }

    /// Completes when every cache holds its first list.
    ///
    /// Counted from the watch events rather than with `Store::wait_until_ready`: that wakes
    /// only one of its waiters, and the Controller already waits on the Website store.
    pub fn synced(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut listed = self.listed.clone();
        async move {
            let _ = listed.wait_for(|listed| *listed == CACHES).await;
        }
    }
}

/// The caches of [`Watches`].
const CACHES: usize = 6;

/// A cache of `api` and its stream: the applied objects (for the controlled kind) or every
/// touched object, deletions included (for kinds whose deletion must trigger).
fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    applied_only: bool,
    listed: &Arc<watch::Sender<usize>>,
) -> (Store<K>, Objects<K>)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let (listed, mut first) = (listed.clone(), true);
    let events = watcher(api, config)
        .default_backoff()
        .reflect(writer)
        .inspect(move |event| {
            if first && matches!(event, Ok(watcher::Event::InitDone)) {
                first = false;
                listed.send_modify(|listed| *listed += 1);
            }
        });
    let objects: Objects<K> = if applied_only {
        events.applied_objects().boxed()
    } else {
        events.touched_objects().boxed()
    };
    (reader, objects)
}

fn owned<K>(
    client: &Client,
    selected: &watcher::Config,
    listed: &Arc<watch::Sender<usize>>,
) -> (Store<K>, Objects<K>)
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    reflect(
        Api::<K>::all(client.clone()),
        selected.clone(),
        false,
        listed,
    )
}

/// Runs the controller with `workers` concurrent reconciliations until `shutdown` completes.
pub async fn run(
    watches: Watches,
    ctx: Arc<website::Context>,
    metrics: ReconcileMetrics,
    workers: u16,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Streams {
        websites,
        themes,
        deployments,
        config_maps,
        services,
        ingresses,
    } = watches.streams;
    let users = watches.websites.clone();
    let results = Controller::for_stream(metrics.trigger_self(websites), watches.websites)
        .with_config(Config::default().concurrency(workers))
        .watches_stream(deployments, metrics.trigger_owners())
        .watches_stream(config_maps, metrics.trigger_owners())
        .watches_stream(services, metrics.trigger_owners())
        .watches_stream(ingresses, metrics.trigger_owners())
        .watches_stream(
            themes,
            metrics.trigger_with(move |theme: Theme| users_of(&users, &theme.name_any())),
        )
        .graceful_shutdown_on(shutdown)
        .run(
            metrics.instrument(website::reconcile),
            metrics.instrument_error_policy(website::error_policy),
            ctx,
        );
    results
        .for_each(|result| {
            metrics.observe_result(&result);
            async {}
        })
        .await;
}

/// The Websites in `websites` that use Theme `theme`: a Theme change re-reconciles them.
fn users_of(websites: &Store<Website>, theme: &str) -> Vec<ObjectRef<Website>> {
    websites
        .state()
        .iter()
        .filter(|website| website.spec.theme == theme)
        .map(|website| ObjectRef::from_obj(website.as_ref()))
        .collect()
}
