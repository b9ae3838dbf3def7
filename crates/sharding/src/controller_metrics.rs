//! Reconcile metrics for kube-runtime controllers under controller-runtime's names and labels
//! (SPEC A.9), so that existing controller dashboards work for Rust controllers.

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
