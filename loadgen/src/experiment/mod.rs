//! Running a scenario on a target (see `docs/experiments.md`): for each shard count of its
//! sweep, the world is set up, the [`driver`] puts the load on it while the [`observer`]
//! watches, [`chaos`] kills shards and the [`sampler`] reads the cost; the measurements become
//! [`ShardCountResults`] and, for the whole sweep, `results/<run-id>/`.
//!
//! - [`schedule`]: when each operation is due (pure).
//! - [`tracker`]: what the watches saw, turned into measurements (pure).
//! - [`metrics`]: loadgen's own Prometheus series.
//! - [`ownership`]: the ownership audit once a shard count has settled.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use anyhow::Context as _;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Client,
    api::{DeleteParams, ListParams},
};
use kube_sharding::strategy::Strategy;
use prometheus_client::registry::Registry;
use tokio::{sync::watch, time::Instant};

use crate::{
    environment::{Choice, Target},
    measure::{
        as_f64,
        cost::MachineWindow,
        findings::{self, Finding, FindingSignals},
        snapshot::{Between, Snapshot},
        validity::{self, Validity},
    },
    measure::{
        cost, elapsed,
        failover::{self, FailoverEvents},
        latency::LatencyRecorder,
        movement,
        prometheus::QuantileWindow,
        skew::{SkewSummary, Unsettled},
        slo::{self, Capacity, Load, LoadWindow, Metric, Verdict},
    },
    results::{RunResults, SKEW_MIN_OBJECTS_PER_SHARD, ShardCountResults, Versions, writer},
    scenario::{self, Scenario, Search},
    world::{WorkloadApi, World, workload_apis},
};

use self::search::SearchResults;

pub mod chaos;
pub mod driver;
pub mod faults;
pub mod metrics;
pub mod observer;
pub mod owned;
pub mod ownership;
mod progress;
pub mod sampler;
pub mod schedule;
pub mod search;
pub mod tracker;

/// How long the run's objects get to be gone after a shard count.
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
    /// How often each shard count runs, each time on a fresh target.
    pub repeat: u32,
}

/// Runs `scenario` at each of its shard counts and writes its results; returns their
/// directory and the results.
pub async fn run(scenario: &Scenario, options: &Options) -> anyhow::Result<(PathBuf, RunResults)> {
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

    if let Some((field, problem)) =
        crate::environment::unsupported(&options.target, &scenario.faults)
    {
        anyhow::bail!("{field}: {problem}");
    }
    let mut target = Target::connect(&options.target, &scenario.controller).await?;
    let mut shard_counts = Vec::new();
    let mut kubernetes = String::new();
    // Ctrl-C or SIGTERM ends the shard count under way, and the target still cleans up: the
    // default action would end loadgen at once and leave the sharder and the shards running.
    let interrupted = operations::telemetry::shutdown_signal();
    tokio::pin!(interrupted);
    // Repetitions go round the sweep rather than repeating each shard count in a row, so that
    // a drift of the machine over the run spreads over every shard count.
    for (strategy, shards, repetition) in scenario.runs(options.repeat) {
        // Boxed: the future of a whole shard count is large.
        let measured = Box::pin(shard_count(
            &mut target,
            scenario,
            (strategy, shards, repetition),
            &run_id,
            options.window,
            &metrics,
        ));
        let result = tokio::select! {
            result = measured => result,
            () = &mut interrupted => Err(anyhow::anyhow!("interrupted; nothing was written")),
        };
        // Whatever happened, a shard count leaves nothing running behind it.
        let finished = target.finish().await;
        let under = if scenario.default_strategies() {
            String::new()
        } else {
            format!(" under {strategy}")
        };
        let (results, version) =
            result.with_context(|| format!("the run with {shards} shard(s){under} failed"))?;
        finished.with_context(|| format!("cleaning up after {shards} shard(s){under}"))?;
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
    Ok((dir, results))
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

/// One repetition of one shard count under one strategy: set-up, load or search, settle,
/// measurements; also the API server's version.
async fn shard_count(
    target: &mut Target,
    scenario: &Scenario,
    (strategy, shards, repetition): (Strategy, u32, u32),
    run_id: &str,
    window: Duration,
    metrics: &metrics::Metrics,
) -> anyhow::Result<(ShardCountResults, String)> {
    let progress = progress::Progress::new(strategy, shards, repetition, scenario);
    let Prepared {
        client,
        version,
        world,
        apis,
    } = set_up(target, scenario, (strategy, shards), &progress).await?;
    let target = &*target;
    let tracker = tracker::Tracker::new(window)?.with_strategy(strategy);
    let tracker = Arc::new(Mutex::new(tracker));
    let driver = driver::Driver::new(
        client.clone(),
        run_id,
        scenario,
        (world, apis.clone()),
        (tracker.clone(), metrics.clone()),
    );
    let (synced_tx, synced) = watch::channel(false);
    let ring = ring(scenario);
    let observer = observer::observe(
        client.clone(),
        (run_id, &ring),
        (&scenario.workloads, &apis),
        tracker.clone(),
        metrics.clone(),
        synced_tx,
    );
    let load = load_or_search(
        target, scenario, &driver, &tracker, &progress, metrics, synced,
    );
    let Loaded {
        mut samples,
        started_at,
        kills,
        rolling_updates,
        faults,
        disruption_errors,
        search,
    } = tokio::select! {
        result = observer => {
            result.context("the watch of the run's objects and Leases failed")?;
            anyhow::bail!("the watch of the run's objects and Leases ended");
        }
        result = load => result?,
    };
    let errors = std::mem::take(&mut *lock(&driver.errors));
    let completed = std::mem::take(&mut *lock(&driver.completed));
    let failed_at = std::mem::take(&mut *lock(&driver.failed_at));
    drop(driver);
    let settled = settled(
        &client,
        (scenario, target),
        (tracker, started_at),
        (&kills, &faults),
        &samples,
    )
    .await?;
    let snapshots = std::mem::take(&mut samples.snapshots);
    let mut results = ShardCountResults {
        strategy,
        repetition,
        rolling_updates,
        faults,
        restarts: target.restarts()?,
        owned: settled.owned,
        ownership: Some(settled.ownership),
        ..measure(
            scenario,
            shards,
            started_at,
            &kills,
            settled.lease_dead,
            settled.finished.clone(),
            samples,
            &completed,
        )
    };
    let evidence = Evidence {
        machine_windows: &results.machine_windows,
        snapshots: &snapshots,
        objects: &results.objects_per_shard,
        completed: &completed,
        failed: &failed_at,
        cores: target.machine().await?.cores,
    };
    let load = Assessed {
        span: (started_at, scenario.duration),
        scheduled: settled.finished.accounting.writes.scheduled
            + settled.finished.accounting.deletes.scheduled,
        watch_restarts: settled.watch_restarts,
    };
    let (validity, findings, search) = assess(search, &results.verdicts, &evidence, &load);
    (results.validity, results.findings, results.search) = (validity, findings, search);
    progress.done(&results, &errors, &disruption_errors);
    if cleanup_needed(target) {
        delete_objects(&client, run_id, &apis).await?;
    }
    Ok((results, version))
}

/// What the tracker measured once a shard count has settled, and what the checks that read
/// the target then found.
struct Settled {
    finished: tracker::Finished,
    /// The owned objects (docs/workloads.md#owned-objects).
    owned: Option<crate::measure::owned::OwnedCheck>,
    /// The ownership audit (docs/experiments.md#ownership).
    ownership: crate::measure::ownership::Ownership,
    /// When each killed shard's Lease was seen dead.
    lease_dead: Vec<Option<Timestamp>>,
    /// The watch restarts during the load that began at `started_at`.
    watch_restarts: u64,
}

/// The tracker's measurements once a shard count whose load began at `started_at` has
/// settled, and the checks that read the target then.
async fn settled(
    client: &Client,
    (scenario, target): (&Scenario, &Target),
    (tracker, started_at): (Arc<Mutex<tracker::Tracker>>, Timestamp),
    (kills, faults): (&[chaos::Kill], &[faults::FaultRecord]),
    samples: &sampler::Samples,
) -> anyhow::Result<Settled> {
    let tracker = Arc::try_unwrap(tracker)
        .ok()
        .context("the tracker is still shared")?
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let lease_dead = kills
        .iter()
        .map(|kill| tracker.lease_dead_at(&kill.shard, kill.at))
        .collect();
    let watch_restarts = tracker.watch_restarts(started_at, started_at + scenario.duration);
    let ring = &scenario.controller.ring;
    let owned = owned::check(client, &scenario.workloads, ring, &tracker).await?;
    let ended = Timestamp::now();
    let finished = tracker.finish(ended);
    if !finished.pending.is_empty() {
        progress::NOTES.note(&format!(
            "{} object(s) still awaited a reconciliation at the end: {}",
            finished.pending.len(),
            finished
                .pending
                .iter()
                .take(10)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let ownership = ownership::audit(
        target,
        &finished.ownership,
        (kills, faults),
        &samples.conflicts,
        ended,
    );
    Ok(Settled {
        finished,
        owned,
        ownership,
        lease_dead,
        watch_restarts,
    })
}

/// The measurements of one shard count from what the tracker, the chaos, the sampler and the
/// driver (when each operation completed) saw; the rolling updates are the caller's to add.
#[allow(
    clippy::too_many_arguments,
    reason = "each is one source of measurements; a struct would only rename them"
)]
fn measure(
    scenario: &Scenario,
    shards: u32,
    started_at: Timestamp,
    kills: &[chaos::Kill],
    lease_dead: Vec<Option<Timestamp>>,
    finished: tracker::Finished,
    samples: sampler::Samples,
    completed: &[Timestamp],
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
    let webhook = samples.webhook();
    let summary = finished.reconciliation.summary();
    let queue_p99 = samples.queue_p99();
    let capacity = capacity(
        scenario,
        started_at,
        &finished.reconciliation,
        &samples.queue_windows,
        completed,
    );
    let verdicts = scenario
        .slo
        .verdicts(Duration::from_secs_f64(summary.p99_ms / 1000.0), queue_p99)
        .into_iter()
        .map(|verdict| {
            if verdict.metric == Metric::ReconciliationLatency && summary.p99_lower_bound {
                verdict.at_least()
            } else {
                verdict
            }
        })
        .collect();
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
        strategy: Strategy::default(),
        shards,
        repetition: 1,
        search: None,
        validity: Validity::default(),
        findings: Vec::new(),
        accounting: finished.accounting,
        load_started: started_at,
        reconciliation: finished.reconciliation,
        queue_p99,
        queue_windows: samples.queue_windows,
        objects_per_shard: samples.objects_per_shard,
        skew: samples.skew,
        skew_summary,
        movements,
        failovers,
        rolling_updates: Vec::new(),
        faults: Vec::new(),
        restarts: None,
        owned: None,
        ownership: None,
        capacity,
        cost: cost::summarize(&samples.usage),
        usage: samples.usage,
        slots: samples.slots,
        machine_windows: cost::machine_windows(&samples.machine),
        verdicts,
        webhook,
    }
}

/// The load at the first sustained breach of each SLO in the windows that start during the
/// load (docs/experiments.md#capacity); none without a ramp of creates
/// ([`Scenario::measures_capacity`]).
fn capacity(
    scenario: &Scenario,
    started_at: Timestamp,
    reconciliation: &LatencyRecorder,
    queue_windows: &[QuantileWindow],
    completed: &[Timestamp],
) -> Capacity {
    if !scenario.measures_capacity() {
        return Capacity::default();
    }
    let offered = schedule::Offered::of(scenario);
    let under_load = |at: Timestamp, length: Duration, p99_at_least: Duration| {
        let into_load = elapsed(started_at, at);
        let end = (into_load + length).min(scenario.duration);
        (at >= started_at && into_load < scenario.duration).then(|| LoadWindow {
            at,
            length,
            load: Load {
                websites: offered.websites_at(into_load),
                operations_per_second: offered.rate_between(into_load, end),
            },
            achieved_operations_per_second: slo::rate(completed, at, end.saturating_sub(into_load)),
            p99_at_least,
        })
    };
    let reconciliation_windows: Vec<LoadWindow> = reconciliation
        .windows()
        .into_iter()
        .filter_map(|w| {
            under_load(
                w.start,
                reconciliation.window(),
                Duration::from_secs_f64(w.p99_ms / 1000.0),
            )
        })
        .collect();
    let threshold = scenario.slo.queue_p99;
    let mut queue_undetermined_windows = 0;
    let queue_windows: Vec<LoadWindow> = queue_windows
        .iter()
        .filter_map(|w| {
            let (lower, upper) = slo::bucket(w.quantile);
            let p99_at_least = if w.quantile.is_resolved() {
                Duration::try_from_secs_f64(w.quantile.value).unwrap_or_default()
            } else {
                lower
            };
            let window = under_load(w.start, elapsed(w.start, w.end), p99_at_least)?;
            if !w.quantile.is_resolved()
                && lower <= threshold
                && upper.is_none_or(|upper| upper > threshold)
            {
                queue_undetermined_windows += 1;
            }
            Some(window)
        })
        .collect();
    Capacity {
        reconciliation: slo::first_breach(
            Metric::ReconciliationLatency,
            &reconciliation_windows,
            scenario.slo.reconciliation_p99,
            slo::consecutive_windows(reconciliation.window()),
        ),
        queue: slo::first_breach(
            Metric::QueueLatency,
            &queue_windows,
            threshold,
            slo::consecutive_windows(sampler::INTERVAL),
        ),
        queue_undetermined_windows,
    }
}

/// The load of a shard count as its validity is assessed: its span, the operations its
/// schedule made due, and the restarts of loadgen's watches during it.
struct Assessed {
    span: (Timestamp, Duration),
    scheduled: u64,
    watch_restarts: u64,
}

/// The validity and findings of a shard count: a search's are its deciding step's (each step
/// gets its findings, and the search is returned with them), a load's its own, `verdicts` its
/// SLO verdicts.
fn assess(
    search: Option<SearchResults>,
    verdicts: &[Verdict],
    evidence: &Evidence<'_>,
    load: &Assessed,
) -> (Validity, Vec<Finding>, Option<SearchResults>) {
    if let Some(mut search) = search {
        for step in &mut search.steps {
            step.findings = evidence.findings(step.span(), step.breach());
        }
        // Without a failing step, the highest passing one bounds the capacity.
        let deciding = search
            .deciding_step()
            .or_else(|| search.steps.last())
            .map(|step| (step.validity.clone(), step.findings.clone()));
        let (validity, findings) = deciding.unwrap_or_default();
        (validity, findings, Some(search))
    } else {
        let breach = verdicts
            .iter()
            .find(|verdict| verdict.met == Some(false))
            .map(|verdict| verdict.metric);
        let (start, length) = load.span;
        let offered = as_f64(load.scheduled) / length.as_secs_f64();
        let achieved = search::achieved_rate(evidence.completed, start, length);
        (
            evidence.validity(load.span, (offered, achieved), load.watch_restarts),
            evidence.findings(load.span, breach),
            None,
        )
    }
}

/// What the validity and the findings of a measurement rest on (docs/experiments.md#validity,
/// docs/experiments.md#findings).
struct Evidence<'a> {
    /// The machine's CPU and loadgen's own.
    machine_windows: &'a [MachineWindow],
    /// The API server's and the shards' `/metrics`.
    snapshots: &'a [Snapshot],
    /// Objects per shard over time.
    objects: &'a [(Timestamp, BTreeMap<String, u64>)],
    /// When the load's operations succeeded and failed.
    completed: &'a [Timestamp],
    failed: &'a [Timestamp],
    /// The machine's cores.
    cores: u32,
}

impl Evidence<'_> {
    /// The validity of a measurement over `(start, length)` that offered and achieved `rates`
    /// (operations per second) while loadgen's watches restarted `watch_restarts` times.
    fn validity(
        &self,
        (start, length): (Timestamp, Duration),
        (offered, achieved): (f64, f64),
        watch_restarts: u64,
    ) -> Validity {
        let (api_requests, api_errors) =
            validity::api_calls(self.completed, self.failed, start, start + length);
        Validity::of(&validity::Signals {
            offered_ops_per_second: offered,
            achieved_ops_per_second: achieved,
            loadgen_cores: cost::loadgen_cores(start, length, self.machine_windows),
            machine_busy: cost::machine_load(start, length, self.machine_windows)
                .map(|load| load.mean_busy),
            machine_cores: self.cores,
            // kube-rs clients do not throttle (docs/experiments.md#validity).
            rate_limiter_wait_seconds: None,
            api_requests,
            api_errors,
            watch_restarts,
        })
    }

    /// The findings on a measurement over `(start, length)` whose SLO `breach` (if any) it
    /// explains.
    fn findings(
        &self,
        (start, length): (Timestamp, Duration),
        breach: Option<Metric>,
    ) -> Vec<Finding> {
        let end = start + length;
        let Some(between) = Between::covering(self.snapshots, start, end) else {
            return Vec::new();
        };
        let objects = self
            .objects
            .iter()
            .rfind(|(at, _)| *at <= end)
            .map(|(_, counts)| counts.clone())
            .unwrap_or_default();
        let machine_busy =
            cost::machine_load(start, length, self.machine_windows).map(|load| load.mean_busy);
        findings::findings(&FindingSignals::new(
            between,
            &objects,
            machine_busy,
            self.cores,
            breach,
        ))
    }
}

/// What the load of a shard count left to measure.
struct Loaded {
    samples: sampler::Samples,
    started_at: Timestamp,
    kills: Vec<chaos::Kill>,
    /// When each rolling update began.
    rolling_updates: Vec<Timestamp>,
    /// The scenario's faults as they were injected.
    faults: Vec<faults::FaultRecord>,
    disruption_errors: Vec<String>,
    /// The steps of a capacity search.
    search: Option<SearchResults>,
}

/// `work` while the target restarts the processes that exit, as a kubelet would; only a
/// crash loop ends it (docs/experiments.md#the-supervisor).
async fn supervised<T>(
    target: &Target,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        error = target.supervise() => Err(error),
        result = work => result,
    }
}

/// Once the observer has synced: the initial objects, then the scenario's load or its
/// search, while the
/// target restarts the processes that exit.
async fn load_or_search(
    target: &Target,
    scenario: &Scenario,
    driver: &driver::Driver,
    tracker: &Arc<Mutex<tracker::Tracker>>,
    progress: &progress::Progress,
    metrics: &metrics::Metrics,
    mut synced: watch::Receiver<bool>,
) -> anyhow::Result<Loaded> {
    supervised(
        target,
        Box::pin(async {
            synced
                .wait_for(|synced| *synced)
                .await
                .context("the observer stopped")?;
            let initial = scenario.world.initial_websites;
            if initial > 0 {
                progress.phase(&format!("creating {initial} initial objects"));
                let failed = driver.create_initial(initial, 20).await;
                anyhow::ensure!(failed == 0, "{failed} of {initial} initial objects failed");
            }
            match (&scenario.load, scenario.search) {
                (Some(spec), _) => {
                    load(target, scenario, spec, driver, tracker, progress, metrics).await
                }
                (None, Some(spec)) => {
                    search(target, scenario, spec, driver, tracker, progress).await
                }
                (None, None) => anyhow::bail!("the scenario has neither a load nor a search"),
            }
        }),
    )
    .await
}

/// `load`, the scenario's, with chaos, rolling updates, sampling and progress, and the settle
/// time.
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of a shard count that the load runs with"
)]
async fn load(
    target: &Target,
    scenario: &Scenario,
    load: &scenario::Load,
    driver: &driver::Driver,
    tracker: &Arc<Mutex<tracker::Tracker>>,
    progress: &progress::Progress,
    metrics: &metrics::Metrics,
) -> anyhow::Result<Loaded> {
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
    let faults = faults::inject(target, &scenario.faults, start);
    let ticker = progress.run(start, end, metrics, tracker, &driver.population);
    // The driver issues nothing after `end` (docs/experiments.md#reconciliation-latency), so
    // the settle time is the same whether or not it fell behind.
    let driving = async {
        driver.run(load, start, started_at).await;
        tokio::time::sleep_until(end).await;
    };
    let (
        (),
        (),
        (kills, chaos_errors),
        (rolling_updates, rolling_errors),
        (faults, fault_errors),
        (),
    ) = tokio::join!(driving, sampling, chaos, rolling, faults, ticker);
    samples.sample(target, tracker).await;
    samples.slots = target.slots()?;
    Ok(Loaded {
        samples,
        started_at,
        kills,
        rolling_updates,
        faults,
        disruption_errors: [chaos_errors, rolling_errors, fault_errors].concat(),
        search: None,
    })
}

/// How long the initial objects of a search get to be reconciled before the first step.
const INITIAL_READY_PATIENCE: Duration = Duration::from_secs(600);

/// How often a search checks whether its initial objects are reconciled or a step has
/// drained.
const POLL: Duration = Duration::from_millis(250);

/// The initial objects reconciled, then the steps of the capacity search with sampling
/// (docs/experiments.md#capacity-search).
async fn search(
    target: &Target,
    scenario: &Scenario,
    search: Search,
    driver: &driver::Driver,
    tracker: &Arc<Mutex<tracker::Tracker>>,
    progress: &progress::Progress,
) -> anyhow::Result<Loaded> {
    let initial = scenario.world.initial_websites;
    progress.phase(&format!(
        "waiting for the {initial} objects to be reconciled"
    ));
    let ready = wait_until(INITIAL_READY_PATIENCE, || {
        lock(tracker).reconciled_objects() >= initial as usize
    })
    .await;
    anyhow::ensure!(
        ready,
        "only {} of the {initial} initial objects were reconciled after {INITIAL_READY_PATIENCE:?}",
        lock(tracker).reconciled_objects()
    );
    let mut samples = sampler::Samples::default();
    samples.baseline(target).await;
    let started_at = Timestamp::now();
    progress.load_started();
    let (done, mut stopped) = watch::channel(false);
    let sampling = async {
        let mut ticks = tokio::time::interval(sampler::INTERVAL);
        loop {
            tokio::select! {
                _ = ticks.tick() => samples.sample(target, tracker).await,
                _ = stopped.wait_for(|done| *done) => break,
            }
        }
    };
    let stepping = async {
        let steps = steps(target, scenario, search, driver, tracker, progress).await;
        done.send_replace(true);
        steps
    };
    let ((), steps) = tokio::join!(sampling, stepping);
    samples.sample(target, tracker).await;
    samples.slots = target.slots()?;
    Ok(Loaded {
        samples,
        started_at,
        kills: Vec::new(),
        rolling_updates: Vec::new(),
        faults: Vec::new(),
        disruption_errors: Vec::new(),
        search: Some(steps?),
    })
}

/// The steps of a search until its bisection ends.
async fn steps(
    target: &Target,
    scenario: &Scenario,
    search: Search,
    driver: &driver::Driver,
    tracker: &Arc<Mutex<tracker::Tracker>>,
    progress: &progress::Progress,
) -> anyhow::Result<SearchResults> {
    let cores = target.machine().await?.cores;
    let mut bisection = search::Bisection::new(search);
    let mut steps = Vec::new();
    while let Some(churn) = bisection.next() {
        let step = step(target, scenario, (search, churn), cores, driver, tracker).await?;
        progress.phase(&step_line(steps.len() + 1, &step));
        bisection.record(churn, step.passed);
        steps.push(step);
    }
    Ok(SearchResults {
        steps,
        bracket: bisection.bracket(),
    })
}

/// `step 3: 8.0 changes/s offered, 8.0 achieved: p99 1.2 s, queue p99 0.3 s → passed`.
fn step_line(number: usize, step: &search::Step) -> String {
    let queue = step
        .queue_p99
        .as_ref()
        .map_or_else(|| "not scraped".to_owned(), crate::units::format_quantile);
    format!(
        "step {number}: {:.2} changes/s offered, {:.2} achieved, {} failed: reconciliation p99 \
         {}{:.0} ms ({} outstanding after {:.1} s), queue p99 {queue} → {}",
        step.churn,
        step.achieved_per_second,
        step.failed,
        if step.reconciliation.p99_lower_bound {
            "≥ "
        } else {
            ""
        },
        step.reconciliation.p99_ms,
        step.outstanding,
        step.drained.as_secs_f64(),
        if step.passed { "passed" } else { "failed" },
    )
}

/// One step: `churn` changes per second for the hold, then the drain, and its measurements.
async fn step(
    target: &Target,
    scenario: &Scenario,
    (search, churn): (Search, f64),
    cores: u32,
    driver: &driver::Driver,
    tracker: &Arc<Mutex<tracker::Tracker>>,
) -> anyhow::Result<search::Step> {
    let queue_before = sampler::queue_buckets(target).await;
    let (machine_before, _) = sampler::machine_sample(target, Timestamp::now()).await;
    let failed_before = lock(tracker).accounting().writes.failed_total();
    let start = Instant::now();
    let started = Timestamp::now();
    let index = lock(tracker).begin_step(started)?;
    let hold_end = start + search.hold;
    let scheduled = driver
        .churn(
            churn,
            search.hold,
            search.workers,
            (start, started),
            hold_end + search.drain,
        )
        .await;
    tokio::time::sleep_until(hold_end).await;
    let (machine_after, _) = sampler::machine_sample(target, Timestamp::now()).await;
    let drain_end = Instant::now().max(hold_end) + search.drain;
    wait_until(drain_end.saturating_duration_since(Instant::now()), || {
        lock(tracker).step_pending(index) == 0
    })
    .await;
    let drained = Instant::now().saturating_duration_since(hold_end);
    let queue_after = sampler::queue_buckets(target).await;
    let (latencies, outstanding, failed) = {
        let tracker = lock(tracker);
        (
            tracker
                .step_latencies(index, Timestamp::now())
                .context("the step's latencies are missing")?,
            tracker.step_pending(index),
            tracker.accounting().writes.failed_total() - failed_before,
        )
    };
    let achieved = search::achieved_rate(&lock(&driver.completed), started, search.hold);
    let machine = machine_before
        .zip(machine_after)
        .and_then(|(before, after)| cost::machine_windows(&[before, after]).first().copied());
    let reconciliation = latencies.summary();
    let queue_p99 = sampler::queue_p99_between(&queue_before, &queue_after);
    let verdicts = search::Step::verdicts(&scenario.slo, &reconciliation, queue_p99);
    let span = (started, search.hold);
    let validity = {
        let completed = lock(&driver.completed);
        let failed = lock(&driver.failed_at);
        let machine_windows: Vec<MachineWindow> = machine.into_iter().collect();
        Evidence {
            machine_windows: &machine_windows,
            snapshots: &[],
            objects: &[],
            completed: &completed,
            failed: &failed,
            cores,
        }
        .validity(
            span,
            (as_f64(scheduled) / search.hold.as_secs_f64(), achieved),
            lock(tracker).watch_restarts(started, started + search.hold + drained),
        )
    };
    let mut step = search::Step {
        churn,
        started,
        hold: search.hold,
        scheduled,
        achieved_per_second: achieved,
        failed,
        reconciliation,
        queue_p99,
        drained,
        outstanding: outstanding as u64,
        machine_busy: machine.and_then(|window| window.busy),
        loadgen_cores: machine.map(|window| window.loadgen_cores),
        verdicts,
        passed: false,
        validity,
        findings: Vec::new(),
    };
    step.passed = step.validity.valid && step.met_slos();
    Ok(step)
}

/// Waits until `done` holds, checking every [`POLL`], for at most `patience`; returns whether
/// it held.
async fn wait_until(patience: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL.min(deadline - Instant::now())).await;
    }
}

/// A prepared target of a shard count.
struct Prepared {
    client: Client,
    version: String,
    world: World,
    apis: Vec<WorkloadApi>,
}

/// The ring of the scenario's controller, which every workload belongs to.
fn ring(scenario: &Scenario) -> observer::Ring {
    observer::Ring {
        name: scenario.controller.ring.clone(),
        lease_namespace: scenario.controller.lease_namespace.clone(),
    }
}

/// Prepares the target with `shards` shards, puts the ring under `strategy` and creates the
/// namespaces and Themes.
async fn set_up(
    target: &mut Target,
    scenario: &Scenario,
    (strategy, shards): (Strategy, u32),
    progress: &progress::Progress,
) -> anyhow::Result<Prepared> {
    progress.phase(&format!(
        "starting {} with {shards} shard(s)",
        target.kind()
    ));
    target
        .prepare(shards, &scenario.operator, scenario.sharder)
        .await?;
    let client = target.client()?;
    // Before any object of the run exists, so that the webhook assigns each of them under
    // the strategy; always, since a cluster keeps the annotation of the run before.
    crate::environment::annotate_strategy(&client, &scenario.controller.ring, strategy).await?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot read the API server's version")?
        .git_version;
    progress.phase("creating namespaces and fixtures");
    let apis = workload_apis(&client, &scenario.workloads).await?;
    let world = World::create(&client, scenario.world.namespaces, &scenario.workloads).await?;
    Ok(Prepared {
        client,
        version,
        world,
        apis,
    })
}

/// A local target's control plane goes away with the shard count; a cluster keeps what was
/// created, so the run's objects are deleted.
fn cleanup_needed(target: &Target) -> bool {
    matches!(target, Target::Cluster(_))
}

/// Deletes the run's objects of every workload and waits until they are gone.
async fn delete_objects(client: &Client, run_id: &str, apis: &[WorkloadApi]) -> anyhow::Result<()> {
    let selector = format!("{}={run_id}", driver::RUN_LABEL);
    let params = ListParams::default().labels(&selector);
    let deadline = Instant::now() + CLEANUP_PATIENCE;
    loop {
        let mut left = 0;
        for api in apis {
            let objects = api.objects(client, "").list_metadata(&params).await?;
            left += objects.items.len();
            let namespaces: std::collections::BTreeSet<String> = objects
                .items
                .iter()
                .map(|o| o.metadata.namespace.clone().unwrap_or_default())
                .collect();
            for namespace in namespaces {
                api.objects(client, &namespace)
                    .delete_collection(&DeleteParams::default(), &params)
                    .await?;
            }
        }
        if left == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{left} objects of run {run_id} are still there after {CLEANUP_PATIENCE:?}"
        );
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

    fn quantile_window(from: i64, lower: f64, upper: f64) -> QuantileWindow {
        let at = |s| Timestamp::from_second(s).unwrap();
        QuantileWindow {
            start: at(from),
            end: at(from + 5),
            quantile: crate::measure::prometheus::Quantile {
                value: f64::midpoint(lower, upper.min(lower * 10.0)),
                lower,
                upper,
            },
            observations: 100,
        }
    }

    #[test]
    fn the_queue_capacity_comes_only_from_windows_surely_over_the_objective() {
        let scenario = Scenario::from_yaml(
            "name: t\nduration: 100s\nshards: [1]\nworld: {namespaces: 1, themes: 2}\n\
             load:\n  create: {ramp: {from: 0.3, to: 0.9}, workers: 1}\n",
            Path::new("test.yaml"),
        )
        .unwrap();
        let start = Timestamp::from_second(1000).unwrap();
        // Decade buckets: 1–10 s from 20 s to 40 s (PromQL reads 5.5 s, the old code a
        // breach at 20 s), then over 10 s (the +Inf bucket) from 60 s on.
        let windows: Vec<QuantileWindow> = (0..20)
            .map(|i| 1000 + 5 * i)
            .map(|from| match from - 1000 {
                20..40 => quantile_window(from, 1.0, 10.0),
                60.. => quantile_window(from, 10.0, f64::INFINITY),
                _ => quantile_window(from, 0.1, 1.0),
            })
            .collect();
        // The driver completed one operation every 2 s.
        let completed: Vec<Timestamp> = (0..50)
            .map(|i| Timestamp::from_second(1000 + 2 * i).unwrap())
            .collect();
        let recorder = LatencyRecorder::new(Duration::from_secs(10)).unwrap();
        let capacity = capacity(&scenario, start, &recorder, &windows, &completed);
        assert_eq!(capacity.reconciliation, None);
        let queue = capacity.queue.unwrap();
        assert_eq!(queue.at, Timestamp::from_second(1060).unwrap());
        // 0.3t + 0.003t² creates by t: 28.8 by 60 s, 32.175 by 65 s, so 28 Websites and 4
        // creates due in [60 s, 65 s), 0.8/s offered; 0.6/s achieved (completions at 60, 62
        // and 64 s).
        assert!((queue.load.websites - 28.0).abs() < 1e-9, "{queue:?}");
        assert!(
            (queue.load.operations_per_second - 0.8).abs() < 1e-9,
            "{queue:?}"
        );
        assert!(
            (queue.achieved_operations_per_second - 0.6).abs() < 1e-9,
            "{queue:?}"
        );
        assert_eq!(capacity.queue_undetermined_windows, 4);
    }

    #[test]
    fn run_ids_sort_by_time_and_name_the_scenario() {
        let at: Timestamp = "2026-11-24T20:05:09Z".parse().unwrap();
        assert_eq!(default_run_id(at, "smoke"), "20261124-200509-smoke");
    }
}
