//! Running a scenario on a target (see `docs/experiments.md`): for each shard count of its
//! sweep, the world is set up, the [`driver`] puts the load on it while the [`observer`]
//! watches, [`chaos`] kills shards and the [`sampler`] reads the cost; the measurements become
//! [`ShardCountResults`] and, for the whole sweep, `results/<run-id>/`.
//!
//! - [`schedule`]: when each operation is due (pure).
//! - [`tracker`]: what the watches saw, turned into measurements (pure).
//! - [`metrics`]: loadgen's own Prometheus series.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use anyhow::Context as _;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams},
};
use prometheus_client::registry::Registry;
use tokio::{sync::watch, time::Instant};
use webhosting_operator::api::Website;

use crate::{
    environment::{Choice, Target},
    measure::{
        cost, elapsed,
        failover::{self, FailoverEvents},
        latency::LatencyRecorder,
        movement,
        skew::{SkewSummary, Unsettled},
        slo::{self, Breach, Load, LoadWindow, Metric},
    },
    results::{RunResults, SKEW_MIN_OBJECTS_PER_SHARD, ShardCountResults, Versions, writer},
    scenario::Scenario,
    world::World,
};

pub mod chaos;
pub mod driver;
pub mod metrics;
pub mod observer;
mod progress;
pub mod sampler;
pub mod schedule;
pub mod tracker;

/// How long the world's Websites get to be gone after a shard count.
const CLEANUP_PATIENCE: Duration = Duration::from_secs(300);

/// How to run an experiment.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to run.
    pub target: Choice,
    /// The parent of the run's directory.
    pub results: PathBuf,
    /// The run's id; by default `<UTC time>-<scenario>`.
    pub run_id: Option<String>,
    /// The window of latency percentiles over time.
    pub window: Duration,
    /// Where loadgen serves its own `/metrics` while it runs.
    pub metrics_address: Option<SocketAddr>,
}

/// Runs `scenario` at each of its shard counts and writes its results; returns their
/// directory.
pub async fn run(scenario: &Scenario, options: &Options) -> anyhow::Result<PathBuf> {
    let started = Timestamp::now();
    let run_id = options
        .run_id
        .clone()
        .unwrap_or_else(|| default_run_id(started, &scenario.name));
    let dir = options.results.join(&run_id);
    if dir.exists() {
        anyhow::bail!(
            "{} exists already: choose another --run-id or move it away",
            dir.display()
        );
    }
    let mut registry = Registry::default();
    let metrics = metrics::Metrics::register(&mut registry);
    let (stop_server, server_stopped) = watch::channel(false);
    let server = match options.metrics_address {
        Some(address) => {
            let listener = std::net::TcpListener::bind(address)
                .with_context(|| format!("cannot listen on --metrics-address {address}"))?;
            progress::NOTES.note(&format!(
                "serving loadgen's metrics on http://{}/metrics",
                listener.local_addr()?
            ));
            Some(tokio::spawn(operations::http::serve(
                listener,
                operations::http::metrics_router(Arc::new(registry)),
                operations::stopped(&server_stopped),
            )))
        }
        None => None,
    };

    let mut target = Target::connect(&options.target).await?;
    let mut shard_counts = Vec::new();
    let mut kubernetes = String::new();
    for &shards in &scenario.shards {
        // Boxed: the future of a whole shard count is large.
        let result = Box::pin(shard_count(
            &mut target,
            scenario,
            shards,
            &run_id,
            options.window,
            &metrics,
        ))
        .await;
        // Whatever happened, a shard count leaves nothing running behind it.
        let finished = target.finish().await;
        let (results, version) =
            result.with_context(|| format!("the run with {shards} shard(s) failed"))?;
        finished.with_context(|| format!("cleaning up after {shards} shard(s)"))?;
        kubernetes = version;
        shard_counts.push(results);
    }
    stop_server.send_replace(true);
    if let Some(server) = server {
        server.await??;
    }
    let results = RunResults {
        run_id,
        scenario: scenario.clone(),
        started,
        ended: Timestamp::now(),
        machine: target.machine().await?,
        versions: Versions {
            loadgen: env!("CARGO_PKG_VERSION").to_owned(),
            kubernetes,
        },
        shard_counts,
    };
    writer::write(&dir, &results)?;
    Ok(dir)
}

/// `<UTC time>-<scenario>`, sortable by time.
fn default_run_id(at: Timestamp, scenario: &str) -> String {
    format!("{}-{scenario}", at.strftime("%Y%m%d-%H%M%S"))
}

/// Locks `mutex`. A task that panicked while holding it panicked in loadgen's own short
/// bookkeeping, whose data stays usable for the report.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The time since `at`, zero if it is in the future.
fn since(at: Timestamp) -> Duration {
    crate::measure::elapsed(at, Timestamp::now())
}

/// One shard count: set-up, load, settle, measurements; also the API server's version.
async fn shard_count(
    target: &mut Target,
    scenario: &Scenario,
    shards: u32,
    run_id: &str,
    window: Duration,
    metrics: &metrics::Metrics,
) -> anyhow::Result<(ShardCountResults, String)> {
    let progress = progress::Progress::new(shards, scenario);
    let Prepared {
        client,
        version,
        world,
    } = set_up(target, scenario, shards, &progress).await?;
    let target = &*target;
    let tracker = Arc::new(Mutex::new(tracker::Tracker::new(window)?));
    let driver = driver::Driver {
        client: client.clone(),
        run_id: run_id.to_owned(),
        scenario: scenario.clone(),
        world,
        tracker: tracker.clone(),
        metrics: metrics.clone(),
        population: Mutex::default(),
        errors: Mutex::default(),
    };
    let (synced_tx, synced) = watch::channel(false);
    let observer = observer::observe(
        client.clone(),
        run_id,
        tracker.clone(),
        metrics.clone(),
        synced_tx,
    );
    let load = load(
        target, scenario, &driver, &tracker, &progress, metrics, synced,
    );
    let Loaded {
        samples,
        started_at,
        kills,
        rolling_updates,
        disruption_errors,
    } = tokio::select! {
        result = observer => {
            result.context("the watch of Websites and Leases failed")?;
            anyhow::bail!("the watch of Websites and Leases ended");
        }
        result = load => result?,
    };
    let errors = std::mem::take(&mut *lock(&driver.errors));
    drop(driver);
    let tracker = Arc::try_unwrap(tracker)
        .ok()
        .context("the tracker is still shared")?
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let lease_dead: Vec<_> = kills
        .iter()
        .map(|kill| tracker.lease_dead_at(&kill.shard, kill.at))
        .collect();
    let finished = tracker.finish(Timestamp::now());
    let results = ShardCountResults {
        rolling_updates,
        ..measure(
            scenario,
            shards,
            started_at,
            &kills,
            lease_dead,
            finished.clone(),
            samples,
        )
    };
    progress.done(
        &results.reconciliation.summary(),
        results.queue_p99_ms,
        &errors,
        &disruption_errors,
        &finished.accounting,
    );
    if cleanup_needed(target) {
        delete_websites(&client, run_id).await?;
    }
    Ok((results, version))
}

/// The measurements of one shard count from what the tracker, the chaos and the sampler saw;
/// the rolling updates are the caller's to add.
fn measure(
    scenario: &Scenario,
    shards: u32,
    started_at: Timestamp,
    kills: &[chaos::Kill],
    lease_dead: Vec<Option<Timestamp>>,
    finished: tracker::Finished,
    samples: sampler::Samples,
) -> ShardCountResults {
    let failovers: Vec<FailoverEvents> = kills
        .iter()
        .zip(lease_dead)
        .map(|(kill, lease_dead_at)| FailoverEvents {
            shard: kill.shard.clone(),
            kind: kill.kind,
            killed_at: kill.at,
            lease_dead_at,
            recovery: failover::recovery(
                &kill.shard,
                kill.at,
                &kill.objects,
                &finished.observations,
            ),
        })
        .collect();
    let mut movements = finished.changes;
    for change in &mut movements {
        change.killed = movement::killed(&change.change, change.at, &failovers);
        change.during_failover = movement::during_failover(change.at, &failovers);
    }
    let unsettled = Unsettled::spans(
        movements.iter().map(|change| change.at),
        failovers.iter().map(|f| (f.killed_at, f.lease_dead_at)),
        scenario.operator.lease_duration,
    );
    let skew_summary = SkewSummary::of(&samples.skew, &unsettled, SKEW_MIN_OBJECTS_PER_SHARD);
    let summary = finished.reconciliation.summary();
    let queue_p99_ms = samples.queue_p99_ms();
    let capacity = capacity(
        scenario,
        started_at,
        &finished.reconciliation,
        &samples.queue_windows,
    );
    let verdicts = scenario.slo.verdicts(
        Duration::from_secs_f64(summary.p99_ms / 1000.0),
        queue_p99_ms.map(|ms| Duration::from_secs_f64(ms / 1000.0)),
    );
    if let Some(error) = &samples.usage_error {
        progress::NOTES.note(&format!("no cost measured with {shards} shard(s): {error}"));
    }
    if let Err(unaccounted) = finished.accounting.check() {
        progress::NOTES.note(&format!(
            "BUG: with {shards} shard(s) the classes of the operations do not add up to the \
             schedule: {unaccounted}"
        ));
    }
    if let Some(error) = &samples.machine_error {
        progress::NOTES.note(&format!(
            "no machine CPU measured with {shards} shard(s): {error}"
        ));
    }
    ShardCountResults {
        shards,
        accounting: finished.accounting,
        load_started: started_at,
        reconciliation: finished.reconciliation,
        queue_p99_ms,
        objects_per_shard: samples.objects_per_shard,
        skew: samples.skew,
        skew_summary,
        movements,
        failovers,
        rolling_updates: Vec::new(),
        capacity,
        cost: cost::summarize(&samples.usage),
        usage: samples.usage,
        slots: samples.slots,
        machine_windows: cost::machine_windows(&samples.machine),
        verdicts,
    }
}

/// The load at the first sustained breach of either SLO in the windows that start during the
/// load; `None` without a ramp of creates ([`Scenario::measures_capacity`]) or without a breach.
fn capacity(
    scenario: &Scenario,
    started_at: Timestamp,
    reconciliation: &LatencyRecorder,
    queue_windows: &[(Timestamp, Duration)],
) -> Option<Breach> {
    if !scenario.measures_capacity() {
        return None;
    }
    let under_load = |at: Timestamp, p99: Duration| {
        let into_load = elapsed(started_at, at);
        (at >= started_at && into_load < scenario.duration).then(|| LoadWindow {
            at,
            load: offered(scenario, into_load),
            p99,
        })
    };
    let reconciliation_windows: Vec<LoadWindow> = reconciliation
        .windows()
        .into_iter()
        .filter_map(|w| under_load(w.start, Duration::from_secs_f64(w.p99_ms / 1000.0)))
        .collect();
    let queue_windows: Vec<LoadWindow> = queue_windows
        .iter()
        .filter_map(|&(at, p99)| under_load(at, p99))
        .collect();
    slo::earliest([
        slo::first_breach(
            Metric::ReconciliationLatency,
            &reconciliation_windows,
            scenario.slo.reconciliation_p99,
            slo::consecutive_windows(reconciliation.window()),
        ),
        slo::first_breach(
            Metric::QueueLatency,
            &queue_windows,
            scenario.slo.queue_p99,
            slo::consecutive_windows(sampler::INTERVAL),
        ),
    ])
}

/// What the load of a shard count left to measure.
struct Loaded {
    samples: sampler::Samples,
    started_at: Timestamp,
    kills: Vec<chaos::Kill>,
    /// When each rolling update began.
    rolling_updates: Vec<Timestamp>,
    disruption_errors: Vec<String>,
}

/// Once the observer has synced: the initial Websites, then the load with chaos, rolling
/// updates, sampling and progress, and the settle time.
async fn load(
    target: &Target,
    scenario: &Scenario,
    driver: &driver::Driver,
    tracker: &Arc<Mutex<tracker::Tracker>>,
    progress: &progress::Progress,
    metrics: &metrics::Metrics,
    mut synced: watch::Receiver<bool>,
) -> anyhow::Result<Loaded> {
    synced
        .wait_for(|synced| *synced)
        .await
        .context("the observer stopped")?;
    let initial = scenario.world.initial_websites;
    if initial > 0 {
        progress.phase(&format!("creating {initial} initial Websites"));
        let failed = driver.create_initial(initial, 20).await;
        anyhow::ensure!(failed == 0, "{failed} of {initial} initial Websites failed");
    }
    let mut samples = sampler::Samples::default();
    samples.baseline(target).await;
    let start = Instant::now();
    let started_at = Timestamp::now();
    progress.load_started();
    let load_end = start + scenario.duration;
    let end = load_end + scenario.settle;
    let sampling = async {
        let mut ticks = tokio::time::interval(sampler::INTERVAL);
        while Instant::now() < end {
            ticks.tick().await;
            samples.sample(target, tracker).await;
        }
    };
    let chaos = async {
        match scenario.chaos {
            Some(chaos) => {
                chaos::kill_shards(target, chaos, start, scenario.duration, tracker).await
            }
            None => (Vec::new(), Vec::new()),
        }
    };
    let rolling = async {
        match scenario.rolling_update {
            Some(update) => chaos::rolling_updates(target, update, start, scenario.duration).await,
            None => (Vec::new(), Vec::new()),
        }
    };
    let ticker = progress.run(start, end, metrics, tracker, &driver.population);
    // The driver issues nothing after `end` (docs/experiments.md#reconciliation-latency), so
    // the settle time is the same whether or not it fell behind.
    let driving = async {
        driver.run(start, started_at).await;
        tokio::time::sleep_until(end).await;
    };
    let ((), (), (kills, chaos_errors), (rolling_updates, rolling_errors), ()) =
        tokio::join!(driving, sampling, chaos, rolling, ticker);
    samples.sample(target, tracker).await;
    samples.slots = target.slots()?;
    Ok(Loaded {
        samples,
        started_at,
        kills,
        rolling_updates,
        disruption_errors: [chaos_errors, rolling_errors].concat(),
    })
}

/// A prepared target of a shard count.
struct Prepared {
    client: Client,
    version: String,
    world: World,
}

/// Prepares the target with `shards` shards and creates the namespaces and Themes.
async fn set_up(
    target: &mut Target,
    scenario: &Scenario,
    shards: u32,
    progress: &progress::Progress,
) -> anyhow::Result<Prepared> {
    progress.phase(&format!(
        "starting {} with {shards} shard(s)",
        target.kind()
    ));
    target.prepare(shards, &scenario.operator).await?;
    let client = target.client()?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot read the API server's version")?
        .git_version;
    progress.phase("creating namespaces and Themes");
    let world = World::create(&client, scenario.world.namespaces, scenario.world.themes).await?;
    Ok(Prepared {
        client,
        version,
        world,
    })
}

/// The load the schedule offers `elapsed` into the load: the Websites that exist by then, and
/// the creates, deletes and mutations of those Websites per second.
#[must_use]
pub fn offered(scenario: &Scenario, elapsed: Duration) -> Load {
    let elapsed = elapsed.min(scenario.duration);
    let delete_rate = scenario.load.delete.map_or(0.0, |d| d.rate);
    let websites = (f64::from(scenario.world.initial_websites) + scenario.creates_by(elapsed)
        - delete_rate * elapsed.as_secs_f64())
    .max(0.0);
    let mutate_rate = scenario
        .load
        .mutate
        .map_or(0.0, |m| websites / m.interval.as_secs_f64());
    Load {
        websites,
        operations_per_second: scenario.create_rate_at(elapsed) + delete_rate + mutate_rate,
    }
}

/// A local target's control plane goes away with the shard count; a cluster keeps what was
/// created, so the run's Websites are deleted.
fn cleanup_needed(target: &Target) -> bool {
    matches!(target, Target::Cluster(_))
}

/// Deletes the run's Websites and waits until they are gone.
async fn delete_websites(client: &Client, run_id: &str) -> anyhow::Result<()> {
    let selector = format!("{}={run_id}", driver::RUN_LABEL);
    let all = Api::<Website>::all(client.clone());
    let deadline = Instant::now() + CLEANUP_PATIENCE;
    loop {
        let left = all
            .list_metadata(&ListParams::default().labels(&selector))
            .await?;
        if left.items.is_empty() {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} Websites of run {run_id} are still there after {CLEANUP_PATIENCE:?}",
            left.items.len()
        );
        let namespaces: std::collections::BTreeSet<String> = left
            .items
            .iter()
            .filter_map(|w| w.metadata.namespace.clone())
            .collect();
        for namespace in namespaces {
            Api::<Website>::namespaced(client.clone(), &namespace)
                .delete_collection(
                    &DeleteParams::default(),
                    &ListParams::default().labels(&selector),
                )
                .await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The results directory `dir` relative to the working directory when it is below it.
#[must_use]
pub fn display_path(dir: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| dir.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| dir.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(text: &str) -> Scenario {
        Scenario::from_yaml(text, Path::new("test.yaml")).unwrap()
    }

    #[test]
    fn the_offered_load_adds_creates_deletes_and_mutations_of_the_websites_by_then() {
        let scenario = scenario(
            "name: t\nduration: 100s\nshards: [1]\nworld: {namespaces: 1, themes: 2, initialWebsites: 10}\n\
             load:\n  create: {rate: 2, workers: 1}\n  delete: {rate: 1, workers: 1}\n  mutate: {interval: 10s, workers: 1}\n",
        );
        // At 0 s: 2 + 1 creates and deletes, 10 Websites mutated every 10 s.
        let at_start = offered(&scenario, Duration::ZERO);
        assert!((at_start.websites - 10.0).abs() < 1e-9);
        assert!((at_start.operations_per_second - 4.0).abs() < 1e-9);
        // At 50 s: 10 + 100 - 50 = 60 Websites.
        let at_50s = offered(&scenario, Duration::from_secs(50));
        assert!((at_50s.websites - 60.0).abs() < 1e-9);
        assert!((at_50s.operations_per_second - 9.0).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_offers_a_rising_load() {
        let scenario = scenario(
            "name: t\nduration: 100s\nshards: [1]\nworld: {namespaces: 1, themes: 2}\n\
             load:\n  create: {ramp: {from: 1, to: 5}, workers: 1}\n",
        );
        let rate = |seconds| offered(&scenario, Duration::from_secs(seconds)).operations_per_second;
        assert!((rate(0) - 1.0).abs() < 1e-9);
        assert!((rate(100) - 5.0).abs() < 1e-9);
        assert!((rate(500) - 5.0).abs() < 1e-9);
        // 1/s rising to 5/s over 100 s: 300 Websites.
        assert!((offered(&scenario, Duration::from_secs(100)).websites - 300.0).abs() < 1e-9);
    }

    #[test]
    fn run_ids_sort_by_time_and_name_the_scenario() {
        let at: Timestamp = "2026-11-24T20:05:09Z".parse().unwrap();
        assert_eq!(default_run_id(at, "smoke"), "20261124-200509-smoke");
    }
}
