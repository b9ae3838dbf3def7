//! controller-runtime's metrics for kube-runtime controllers: the reconcile series
//! (`controller_runtime_reconcile_*`, `controller_runtime_active_workers`,
//! `controller_runtime_max_concurrent_reconciles`), the work-queue series (`workqueue_*`) and the
//! API requests (`rest_client_requests_total`), under controller-runtime's names and labels
//! (docs/contract.md#metrics), so that dashboards built for Go controllers work for Rust
//! controllers.
//!
//! - [`ControllerMetrics`]: one registration per process, then
//!   [`ControllerMetrics::controller`] for each controller, whose [`ReconcileMetrics`] wraps
//!   its triggers, reconcile function and error policy;
//! - [`RestClientMetrics`]: a layer on the kube client that counts its requests.
//!
//! kube-runtime keeps its queue private, so the queue is observed at its edges: every trigger
//! stream of a controller must pass through its [`ReconcileMetrics`], as below.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
//! # use kube::{Api, Client, runtime::{Controller, WatchStreamExt, controller::Action, reflector,
//! watcher}};
//! # use futures::StreamExt;
//! # use controller_runtime_metrics::ControllerMetrics;
//! # async fn reconcile(_: Arc<ConfigMap>, _: Arc<()>) -> Result<Action, kube::Error> { todo!() }
//! # fn error_policy(_: Arc<ConfigMap>, _: &kube::Error, _: Arc<()>) -> Action { todo!() }
//! # async fn wire(client: Client) {
//! let mut registry = controller_runtime_metrics::Registry::default();
//! let metrics = ControllerMetrics::register(&mut registry).controller("configmap", 1);
//! let (reader, writer) = reflector::store();
//! let configmaps = watcher(Api::<ConfigMap>::all(client.clone()), watcher::Config::default())
//!     .default_backoff()
//!     .reflect(writer)
//!     .applied_objects();
//! let deployments = watcher(Api::<Deployment>::all(client), watcher::Config::default())
//!     .default_backoff()
//!     .touched_objects();
//! Controller::for_stream(metrics.trigger_self(configmaps), reader)
//!     .watches_stream(deployments, metrics.trigger_owners())
//!     .run(
//!         metrics.instrument(reconcile),
//!         metrics.instrument_error_policy(error_policy),
//!         Arc::new(()),
//!     )
//!     .for_each(|result| {
//!         metrics.observe_result(&result);
//!         async {}
//!     })
//!     .await;
//! # }
//! ```
//!
//! # kube features and Kubernetes version
//!
//! The triggers are passed to `Controller::for_stream` and `watches_stream`, which kube offers
//! only with its `unstable-runtime` feature: this crate enables it, for the application too
//! (features add up), and kube does not promise that unstable API across its releases. The
//! crate enables no TLS stack of kube and no Kubernetes version feature of k8s-openapi: the
//! application picks both. [`Registry`] is prometheus-client's, re-exported with the whole
//! crate ([`prometheus_client`]) so that the application encodes the series with the same
//! version.

#![deny(missing_docs)]

mod rest_client;
mod workqueue;

use std::{future::Future, sync::Arc, time::Instant};

use futures::{Stream, StreamExt as _};
use kube::{
    Resource,
    runtime::{controller, controller::Action, reflector::ObjectRef},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};

/// The prometheus-client this crate registers its series with, so that a process needs no
/// direct dependency of the matching version to encode them.
pub use prometheus_client;
/// The registry that [`ControllerMetrics::register`] and [`RestClientMetrics::register`] take.
pub use prometheus_client::registry::Registry;
pub use rest_client::{RestClientLayer, RestClientMetrics, RestClientService};
use workqueue::{Key, WorkQueue, WorkQueueFamilies};

/// controller-runtime's buckets for `controller_runtime_reconcile_time_seconds`.
const RECONCILE_TIME_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    controller: String,
    result: &'static str,
}

type HistogramFamily = Family<ControllerLabels, Histogram, fn() -> Histogram>;

/// The `controller_runtime_*` reconcile series and the `workqueue_*` series of a process, one
/// registration for all its controllers.
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    durations: HistogramFamily,
    active_workers: Family<ControllerLabels, Gauge>,
    max_concurrent: Family<ControllerLabels, Gauge>,
    queues: WorkQueueFamilies,
}

impl ControllerMetrics {
    /// Registers the series in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            durations: Family::new_with_constructor(|| {
                Histogram::new(RECONCILE_TIME_BUCKETS.iter().copied())
            }),
            active_workers: Family::default(),
            max_concurrent: Family::default(),
            queues: WorkQueueFamilies::register(registry),
        };
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            metrics.reconciles.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            metrics.errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            metrics.durations.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            metrics.active_workers.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            metrics.max_concurrent.clone(),
        );
        metrics
    }

    /// The metrics of controller `name`, which runs at most `max_concurrent` reconciliations
    /// at once (0: unbounded).
    #[must_use]
    pub fn controller(&self, name: &str, max_concurrent: u32) -> ReconcileMetrics {
        let labels = ControllerLabels {
            controller: name.to_owned(),
        };
        self.max_concurrent
            .get_or_create(&labels)
            .set(i64::from(max_concurrent));
        ReconcileMetrics {
            metrics: self.clone(),
            queue: self.queues.queue(name),
            labels,
        }
    }
}

/// Measures the reconciliations and the queue of one controller.
///
/// The queue is observed through the controller's triggers, so every trigger stream must pass
/// through [`trigger_self`](Self::trigger_self), [`trigger_owners`](Self::trigger_owners) or
/// [`trigger_with`](Self::trigger_with) (see the crate example).
#[derive(Clone, Debug)]
pub struct ReconcileMetrics {
    metrics: ControllerMetrics,
    queue: WorkQueue,
    labels: ControllerLabels,
}

impl ReconcileMetrics {
    /// Runs one reconciliation, counting it as an active worker while it runs, and records
    /// its duration and result: `error`, `success` (wait for the next change) or
    /// `requeue_after` (a requeue was asked for).
    pub async fn measure<F, E>(&self, reconcile: F) -> Result<Action, E>
    where
        F: Future<Output = Result<Action, E>>,
    {
        let active = self
            .metrics
            .active_workers
            .get_or_create(&self.labels)
            .clone();
        active.inc();
        // Decremented even when the reconciliation is cancelled (controller shutdown).
        let _active = scopeguard(move || {
            active.dec();
        });
        let started = Instant::now();
        let result = reconcile.await;
        let seconds = started.elapsed().as_secs_f64();
        self.metrics
            .durations
            .get_or_create(&self.labels)
            .observe(seconds);
        self.queue.worked(seconds);
        let outcome = match &result {
            Err(_) => {
                self.metrics.errors.get_or_create(&self.labels).inc();
                "error"
            }
            Ok(action) if *action == Action::await_change() => "success",
            Ok(_) => "requeue_after",
        };
        self.metrics
            .reconciles
            .get_or_create(&ResultLabels {
                controller: self.labels.controller.clone(),
                result: outcome,
            })
            .inc();
        result
    }
}

impl ReconcileMetrics {
    /// Wraps a reconcile function for `Controller::run`: the object leaves the queue when its
    /// reconciliation starts, and each call is measured as by [`ReconcileMetrics::measure`].
    pub fn instrument<K, C, E, F, Fut>(
        &self,
        reconcile: F,
    ) -> impl FnMut(Arc<K>, C) -> futures::future::BoxFuture<'static, Result<Action, E>>
    where
        K: Resource,
        F: FnMut(Arc<K>, C) -> Fut,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let metrics = self.clone();
        let mut reconcile = reconcile;
        move |object, ctx| {
            metrics.queue.start(&key_of(object.meta()), Instant::now());
            let metrics = metrics.clone();
            let reconciliation = reconcile(object, ctx);
            Box::pin(async move { metrics.measure(reconciliation).await })
        }
    }

    /// Wraps an error policy for `Controller::run` so that each retry it schedules is counted.
    pub fn instrument_error_policy<K, C, E, F>(
        &self,
        error_policy: F,
    ) -> impl Fn(Arc<K>, &E, Arc<C>) -> Action
    where
        F: Fn(Arc<K>, &E, Arc<C>) -> Action,
    {
        let queue = self.queue.clone();
        move |object, error, ctx| {
            queue.retry();
            error_policy(object, error, ctx)
        }
    }

    /// The controlled objects' trigger stream for `Controller::for_stream`: each object it
    /// yields is added to the queue.
    pub fn trigger_self<K, E, S>(
        &self,
        objects: S,
    ) -> impl Stream<Item = Result<K, E>> + use<K, E, S>
    where
        K: Resource,
        S: Stream<Item = Result<K, E>>,
    {
        let queue = self.queue.clone();
        objects.inspect(move |object| {
            if let Ok(object) = object {
                queue.add(key_of(object.meta()), Instant::now());
            }
        })
    }

    /// A mapper for `Controller::watches_stream` that triggers a watched object's owners of
    /// kind `K`, as `Controller::owns` does, and adds them to the queue.
    pub fn trigger_owners<K, Child>(
        &self,
    ) -> impl Fn(Child) -> Vec<ObjectRef<K>> + Send + Sync + 'static + use<K, Child>
    where
        K: Resource<DynamicType = ()>,
        Child: Resource,
    {
        self.trigger_with(|child: Child| {
            let meta = child.meta();
            meta.owner_references
                .iter()
                .flatten()
                .filter_map(|owner| ObjectRef::from_owner_ref(meta.namespace.as_deref(), owner, ()))
                .collect::<Vec<_>>()
        })
    }

    /// Wraps a mapper for `Controller::watches_stream` so that the objects it triggers are
    /// added to the queue.
    pub fn trigger_with<O, K, I, F>(
        &self,
        mapper: F,
    ) -> impl Fn(O) -> Vec<ObjectRef<K>> + Send + Sync + 'static + use<O, K, I, F>
    where
        K: Resource,
        F: Fn(O) -> I + Send + Sync + 'static,
        I: IntoIterator<Item = ObjectRef<K>>,
    {
        let queue = self.queue.clone();
        move |object| {
            let now = Instant::now();
            let triggered: Vec<_> = mapper(object).into_iter().collect();
            for object in &triggered {
                queue.add((object.namespace.clone(), object.name.clone()), now);
            }
            triggered
        }
    }

    /// Observes a result of `Controller::run`: an object that was triggered but no longer
    /// exists leaves the queue without a reconciliation.
    pub fn observe_result<K, E, Q>(
        &self,
        result: &Result<(ObjectRef<K>, Action), controller::Error<E, Q>>,
    ) where
        K: Resource,
    {
        if let Err(controller::Error::ObjectNotFound(object)) = result {
            self.queue
                .forget(&(object.namespace.clone(), object.name.clone()));
        }
    }
}

fn key_of(meta: &kube::api::ObjectMeta) -> Key {
    (
        meta.namespace.clone(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Runs `f` when dropped.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus_client::encoding::text::encode;

    use super::*;

    fn scrape(registry: &Registry) -> String {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        text
    }

    #[tokio::test]
    async fn reconciliations_are_counted_by_result_and_timed() {
        let mut registry = Registry::default();
        let metrics = ControllerMetrics::register(&mut registry).controller("website", 5);
        let _ = metrics
            .measure(async { Ok::<_, ()>(Action::await_change()) })
            .await;
        let _ = metrics
            .measure(async { Ok::<_, ()>(Action::requeue(Duration::from_secs(1))) })
            .await;
        let _ = metrics.measure(async { Err::<Action, _>(()) }).await;

        let text = scrape(&registry);
        for line in [
            r#"controller_runtime_reconcile_total{controller="website",result="success"} 1"#,
            r#"controller_runtime_reconcile_total{controller="website",result="requeue_after"} 1"#,
            r#"controller_runtime_reconcile_total{controller="website",result="error"} 1"#,
            r#"controller_runtime_reconcile_errors_total{controller="website"} 1"#,
            r#"controller_runtime_reconcile_time_seconds_count{controller="website"} 3"#,
            r#"controller_runtime_active_workers{controller="website"} 0"#,
            r#"controller_runtime_max_concurrent_reconciles{controller="website"} 5"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }

    #[tokio::test]
    async fn the_queue_is_observed_from_the_triggers_to_the_reconciliation() {
        use k8s_openapi::{
            api::core::v1::{ConfigMap, Secret},
            apimachinery::pkg::apis::meta::v1::OwnerReference,
        };
        use kube::api::ObjectMeta;

        let mut registry = Registry::default();
        let metrics = ControllerMetrics::register(&mut registry).controller("configmap", 1);
        let meta = |name: &str| ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some("default".to_owned()),
            ..ObjectMeta::default()
        };
        let configmap = ConfigMap {
            metadata: meta("a"),
            ..ConfigMap::default()
        };
        let owned = Secret {
            metadata: ObjectMeta {
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".to_owned(),
                    kind: "ConfigMap".to_owned(),
                    name: "a".to_owned(),
                    uid: "1".to_owned(),
                    ..OwnerReference::default()
                }]),
                ..meta("a-secret")
            },
            ..Secret::default()
        };

        let triggered: Vec<_> = metrics
            .trigger_self(futures::stream::iter([Ok::<_, ()>(configmap.clone())]))
            .collect()
            .await;
        assert_eq!(triggered.len(), 1);
        let owners = metrics.trigger_owners::<ConfigMap, Secret>()(owned);
        assert_eq!(owners, [ObjectRef::<ConfigMap>::new("a").within("default")]);
        let gone = metrics.trigger_with(|(): ()| [ObjectRef::<ConfigMap>::new("gone")])(());
        assert_eq!(gone.len(), 1);
        let line = |series: &str, value: &str| format!("{series}{{name=\"configmap\"}} {value}");
        let text = scrape(&registry);
        for expected in [
            line("workqueue_adds_total", "2"),
            line("workqueue_depth", "2"),
        ] {
            assert!(
                text.lines().any(|l| l == expected),
                "missing {expected} in\n{text}"
            );
        }

        let mut reconcile =
            metrics.instrument(|_: Arc<ConfigMap>, ()| async { Err::<Action, _>(std::fmt::Error) });
        let error = reconcile(Arc::new(configmap.clone()), ())
            .await
            .unwrap_err();
        let error_policy = metrics.instrument_error_policy(
            |_: Arc<ConfigMap>, _: &std::fmt::Error, _: Arc<()>| Action::await_change(),
        );
        error_policy(Arc::new(configmap), &error, Arc::new(()));
        metrics.observe_result::<ConfigMap, std::fmt::Error, ()>(&Err(
            controller::Error::ObjectNotFound(Box::new(
                ObjectRef::<ConfigMap>::new("gone").erase(),
            )),
        ));

        let text = scrape(&registry);
        for expected in [
            line("workqueue_depth", "0"),
            line("workqueue_queue_duration_seconds_count", "1"),
            line("workqueue_work_duration_seconds_count", "1"),
            line("workqueue_retries_total", "1"),
        ] {
            assert!(
                text.lines().any(|l| l == expected),
                "missing {expected} in\n{text}"
            );
        }
    }

    #[tokio::test]
    async fn a_running_reconciliation_is_an_active_worker() {
        let mut registry = Registry::default();
        let metrics = ControllerMetrics::register(&mut registry).controller("theme", 1);
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn({
            let metrics = metrics.clone();
            async move {
                metrics
                    .measure(async {
                        let _ = released.await;
                        Ok::<_, ()>(Action::await_change())
                    })
                    .await
            }
        });
        tokio::task::yield_now().await;
        let active = r#"controller_runtime_active_workers{controller="theme"} 1"#;
        for _ in 0..100 {
            if scrape(&registry).lines().any(|l| l == active) {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(scrape(&registry).lines().any(|l| l == active));
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert!(
            scrape(&registry)
                .lines()
                .any(|l| l == r#"controller_runtime_active_workers{controller="theme"} 0"#)
        );
    }
}
