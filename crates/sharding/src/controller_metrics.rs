//! Reconcile and REST-client metrics for kube-runtime controllers under controller-runtime's
//! names and labels (SPEC A.9), so that existing controller dashboards work for Rust controllers.

use std::{future::Future, time::Instant};

use kube::runtime::controller::Action;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

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

/// The `controller_runtime_*` reconcile series of a process, one registration for all its
/// controllers.
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    durations: HistogramFamily,
    active_workers: Family<ControllerLabels, Gauge>,
    max_concurrent: Family<ControllerLabels, Gauge>,
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
            labels,
        }
    }
}

/// Measures the reconciliations of one controller.
#[derive(Clone, Debug)]
pub struct ReconcileMetrics {
    metrics: ControllerMetrics,
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
        self.metrics
            .durations
            .get_or_create(&self.labels)
            .observe(started.elapsed().as_secs_f64());
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
    /// Wraps a reconcile function for `Controller::run` so that each call is measured as by
    /// [`ReconcileMetrics::measure`].
    pub fn instrument<K, C, E, F, Fut>(
        &self,
        reconcile: F,
    ) -> impl FnMut(K, C) -> futures::future::BoxFuture<'static, Result<Action, E>>
    where
        F: FnMut(K, C) -> Fut,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let metrics = self.clone();
        let mut reconcile = reconcile;
        move |object, ctx| {
            let metrics = metrics.clone();
            let reconciliation = reconcile(object, ctx);
            Box::pin(async move { metrics.measure(reconciliation).await })
        }
    }
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
    async fn requests_are_counted_by_code_method_and_host() {
        use tower::{Layer as _, ServiceExt as _};
        let mut registry = Registry::default();
        let metrics = RestClientMetrics::default();
        metrics.register(&mut registry);
        let api = tower::service_fn(|request: http::Request<()>| async move {
            let status = if request.uri().path() == "/missing" {
                404
            } else {
                200
            };
            Ok::<_, std::convert::Infallible>(
                http::Response::builder().status(status).body(()).unwrap(),
            )
        });
        let service = metrics.layer("127.0.0.1:6443").layer(api);
        for (method, path) in [("GET", "/ok"), ("GET", "/missing"), ("PATCH", "/ok")] {
            let request = http::Request::builder()
                .method(method)
                .uri(path)
                .body(())
                .unwrap();
            service.clone().oneshot(request).await.unwrap();
        }
        let text = scrape(&registry);
        for line in [
            r#"rest_client_requests_total{code="200",method="GET",host="127.0.0.1:6443"} 1"#,
            r#"rest_client_requests_total{code="404",method="GET",host="127.0.0.1:6443"} 1"#,
            r#"rest_client_requests_total{code="200",method="PATCH",host="127.0.0.1:6443"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestLabels {
    code: String,
    method: String,
    host: String,
}

/// `rest_client_requests_total{code, method, host}`: the API requests a process makes, counted
/// by a layer on its kube client (see [`RestClientMetrics::layer`]).
#[derive(Clone, Debug, Default)]
pub struct RestClientMetrics {
    requests: Family<RestLabels, Counter>,
}

impl RestClientMetrics {
    /// Registers the counter in `registry`; create the metrics before the client, register
    /// them with the rest of the process's metrics.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host",
            self.requests.clone(),
        );
    }

    /// A layer for `kube::client::ClientBuilder::with_layer` that counts every request to the
    /// API server at `host` (kube sets the request's authority below this layer).
    #[must_use]
    pub fn layer(&self, host: &str) -> RestClientLayer {
        RestClientLayer {
            requests: self.requests.clone(),
            host: host.to_owned(),
        }
    }
}

/// See [`RestClientMetrics::layer`].
#[derive(Clone, Debug)]
pub struct RestClientLayer {
    requests: Family<RestLabels, Counter>,
    host: String,
}

impl<S> tower::Layer<S> for RestClientLayer {
    type Service = RestClientService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RestClientService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`RestClientLayer`].
#[derive(Clone, Debug)]
pub struct RestClientService<S> {
    inner: S,
    layer: RestClientLayer,
}

impl<S, B, R> tower::Service<http::Request<B>> for RestClientService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.method().as_str().to_owned();
        let (requests, host) = (self.layer.requests.clone(), self.layer.host.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            // controller-runtime counts requests that got no response under "<error>".
            let code = response.as_ref().map_or_else(
                |_| "<error>".to_owned(),
                |response| response.status().as_u16().to_string(),
            );
            requests
                .get_or_create(&RestLabels { code, method, host })
                .inc();
            response
        })
    }
}
