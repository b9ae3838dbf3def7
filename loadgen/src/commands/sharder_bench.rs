//! `loadgen sharder-bench`: the sharder binary measured on a local control plane
//! (docs/experiments.md).
//!
//! 1. Starts a [`stack::Stack`] without the webhosting APIs: etcd and kube-apiserver, the
//!    ControllerRing CRD, and the `sharder` binary found next to this executable, on loopback.
//! 2. Creates the ring `bench` (main resource: ConfigMaps in namespace `bench-sharded`), holds
//!    one shard Lease per shard, and a namespace `bench-plain` that no ring selects.
//! 3. Webhook latency: creates ConfigMaps on an open-loop schedule, alternating between the two
//!    namespaces, and measures each from its intended start (no coordinated omission).
//! 4. Memory: the sharder's RSS after a forced resync with about 1,000 and with `--objects`
//!    sharded ConfigMaps; it should stay flat, since the sharder never caches them
//!    (docs/contract.md#sharder-behaviour).
//! 5. Move time: releases `bench-0`'s Lease and waits until none of its objects is left on it;
//!    then the sharder's RSS again, since a resync that patches thousands of objects is where
//!    memory could pile up.
//! 6. Abuse ([`abuse`]): clients that stall or send too much, straight to the webhook port,
//!    and the sharder's peak RSS against 2 × its idle RSS + 64 MiB.
//!
//! `--phases` picks phases 3 to 6 (all by default); `--phases abuse` measures the abuse phase
//! against a fresh sharder's idle RSS.
//!
//! Everything it starts is stopped on exit, on error and on Ctrl-C: the control plane removes
//! its directory (which holds the sharder's files) and the sharder child is killed on drop
//! ([`stack::SharderProcess`]).

use std::{fmt::Write as _, io::Write, path::Path, sync::Arc, time::Duration};

use anyhow::{Context as _, anyhow};
use clap::{Args, ValueEnum};
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use k8s_openapi::api::{coordination::v1::Lease, core::v1::ConfigMap};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams},
};
use kube_sharding::{
    api::{ControllerRing, ControllerRingSpec, RingResource, labels},
    shard::{ShardLease, ShardLeaseConfig, ShardLeaseHandle},
};
use operations::duration::parse as parse_duration;
use serde::Serialize;
use stack::{Binaries, SharderProcess, SharderSettings, Stack, StackOptions};
use tokio::time::Instant;

use crate::{
    experiment::schedule::{intended_offset, schedule_len},
    listing,
    measure::{latency::LatencySummary, ratio},
    report::{Progress, ReportFormat, TextTable},
    units::{format_optional, format_ratio, mib, per_second},
};

mod abuse;

/// A phase of the benchmark after the set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Webhook latency under open-loop creates.
    Latency,
    /// RSS with about 1,000 and with `--objects` objects.
    Memory,
    /// The move of a released shard's objects.
    Move,
    /// Clients that stall or send too much, straight to the webhook.
    Abuse,
}

/// Arguments of `loadgen sharder-bench`.
#[derive(Debug, Args)]
pub struct SharderBenchArgs {
    /// Shards of the ring `bench`, each holding a Lease: bench-0, bench-1, ...
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: u32,

    /// Creates per second in the webhook latency phase (alternating sharded and plain).
    #[arg(allow_negative_numbers = true, long, value_name = "PER_SECOND", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,

    /// How long the webhook latency phase runs, e.g. 20s, 500ms, 2m.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Sharded ConfigMaps that exist at the second memory reading.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "N",
        default_value_t = 20_000
    )]
    pub objects: usize,

    /// Creates in flight while creating the objects of the memory phase.
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,

    /// The sharder's `controller.sharder.concurrentMoves`.
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrent_moves: u32,

    /// How long a forced resync is given before the sharder's memory is read.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,

    /// How long the move of a departed shard's objects may take before the run fails.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub move_timeout: Duration,

    /// The phases to run, in this order: latency, memory, move, abuse.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Phase::Latency, Phase::Memory, Phase::Move, Phase::Abuse])]
    pub phases: Vec<Phase>,

    /// Connections of each kind in the abuse phase: stalled headers, stalled bodies, large
    /// bodies and reviews at the body limit.
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub abuse_connections: u32,

    /// Bytes of each large body in the abuse phase.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "BYTES",
        default_value_t = 15_000_000
    )]
    pub abuse_body_bytes: usize,

    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

/// The ControllerRing under test.
pub const RING: &str = "bench";
/// The namespace the ring selects: creates there pass the sharder's webhook.
pub const SHARDED_NAMESPACE: &str = "bench-sharded";
/// A namespace no ring selects: creates there do not call any webhook.
pub const PLAIN_NAMESPACE: &str = "bench-plain";

/// The number of objects at the first memory reading.
const SMALL_OBJECT_COUNT: usize = 1_000;
/// How long the control plane and the sharder may take to become ready.
const PATIENCE: Duration = Duration::from_secs(120);
/// Creates in flight at most in the latency phase; beyond it creates queue, and the queueing
/// counts into their latency (it is measured from the intended start).
const MAX_IN_FLIGHT: usize = 1_000;
/// The sharder's count of requests its webhook server turned away.
const REJECTIONS: &str = "controller_sharding_webhook_rejections_total";
/// The annotation patched onto the ring to force a resync.
const RESYNC_ANNOTATION: &str = "loadgen.sharding.timebertt.dev/resync";

/// Runs the benchmark and writes its report to `out`.
pub fn run(args: &SharderBenchArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let sharder = Binaries::sharder_next_to_current_exe()?;
    crate::report::run(args.format, out, bench(args, &sharder))
}

/// The whole run: set-up, the three phases, and an orderly stop.
async fn bench(args: &SharderBenchArgs, sharder: &Path) -> anyhow::Result<Report> {
    progress("starting a local control plane (etcd, kube-apiserver)");
    let options = StackOptions::default()
        .webhosting(false)
        .sharder(SharderSettings {
            concurrent_moves: args.concurrent_moves,
            ..SharderSettings::default()
        });
    let stack = Stack::start(sharder, &options).await?;
    let Stack {
        control_plane,
        client,
        sharders,
        ..
    } = stack;
    let mut sharder = sharders
        .into_inner()
        .pop()
        .context("the stack started no sharder")?;
    progress(&format!("sharder started (pid {})", sharder.pid()));

    for namespace in [SHARDED_NAMESPACE, PLAIN_NAMESPACE] {
        stack::create_namespace(&client, namespace).await?;
    }
    let mut leases = Vec::new();
    for i in 0..args.shards {
        let config = ShardLeaseConfig::new(RING, format!("{RING}-{i}"), SHARDED_NAMESPACE)
            .lease_duration(Duration::from_secs(15));
        let lease = ShardLease::new(client.clone(), config)
            .acquire()
            .await
            .with_context(|| format!("cannot acquire the Lease of shard {RING}-{i}"))?;
        leases.push(lease);
    }
    create_ring(&client).await?;
    wait_until_ready(&client, &mut sharder, args.shards).await?;
    let baseline_rss = sharder.usage()?.rss_bytes;

    let runs = |phase| args.phases.contains(&phase);
    let webhook = if runs(Phase::Latency) {
        progress(&format!(
            "webhook latency: {} creates/s for {:?}",
            args.rate, args.duration
        ));
        Some(webhook_latency(&client, args.rate, args.duration).await?)
    } else {
        None
    };
    let memory = if runs(Phase::Memory) {
        Some(memory(&client, &mut sharder, args, baseline_rss).await?)
    } else {
        None
    };
    let movement = if runs(Phase::Move) {
        Some(move_time(&client, &mut sharder, leases.remove(0), args.move_timeout).await?)
    } else {
        None
    };
    let abuse = if runs(Phase::Abuse) {
        let ca = control_plane.certificate_authority().cert_pem().to_owned();
        let abuse = abuse::Abuse {
            connections: usize::try_from(args.abuse_connections)?,
            body_bytes: args.abuse_body_bytes,
        };
        Some(abuse::run(&client, &mut sharder, &ca, abuse).await?)
    } else {
        None
    };

    progress("stopping the sharder and the control plane");
    sharder.kill().await;
    for lease in leases {
        // Best effort: the control plane goes away next anyway.
        let _ = lease.release().await;
    }
    drop(control_plane);
    Ok(Report {
        parameters: Parameters {
            shards: args.shards,
            rate_per_second: args.rate,
            duration_seconds: args.duration.as_secs_f64(),
            objects: args.objects,
            concurrency: args.concurrency,
            concurrent_moves: args.concurrent_moves,
            settle_seconds: args.settle.as_secs_f64(),
            phases: args.phases.clone(),
        },
        webhook,
        memory,
        movement,
        abuse,
    })
}

fn progress(message: &str) {
    Progress::new("sharder-bench").note(message);
}

/// The ring `bench`: ConfigMaps in [`SHARDED_NAMESPACE`] only.
async fn create_ring(client: &Client) -> anyhow::Result<()> {
    let selector = serde_json::from_value(serde_json::json!({
        "matchLabels": { "kubernetes.io/metadata.name": SHARDED_NAMESPACE }
    }))?;
    let ring = ControllerRing::new(
        RING,
        ControllerRingSpec {
            resources: vec![RingResource {
                group: String::new(),
                resource: "configmaps".into(),
                controlled_resources: Vec::new(),
            }],
            namespace_selector: Some(selector),
        },
    );
    Api::<ControllerRing>::all(client.clone())
        .create(&PostParams::default(), &ring)
        .await
        .context("cannot create ControllerRing bench")?;
    Ok(())
}

/// Polls `check` until it returns `Some`, failing after `patience` or when the sharder exits;
/// a timeout quotes the end of the sharder's log.
async fn wait_for<T, F, Fut>(
    what: &str,
    patience: Duration,
    sharder: &mut SharderProcess,
    check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let result = stack::wait_for(what, patience, || sharder.check_alive(), check).await;
    result.map_err(|error| {
        if sharder.check_alive().is_err() {
            // The error is the sharder's exit, with its log.
            error
        } else {
            anyhow!(
                "{error:#}; the sharder's log ends with:\n{}",
                sharder.log_tail()
            )
        }
    })
}

/// Waits until the ring is Ready, every shard Lease is `ready`, and a ConfigMap created in
/// [`SHARDED_NAMESPACE`] gets a shard label (the API server sees the webhook).
async fn wait_until_ready(
    client: &Client,
    sharder: &mut SharderProcess,
    shards: u32,
) -> anyhow::Result<()> {
    let rings = Api::<ControllerRing>::all(client.clone());
    wait_for("the ring's Ready condition", PATIENCE, sharder, || async {
        let ring = rings.get(RING).await?;
        Ok(ring
            .status
            .is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            })
            .then_some(()))
    })
    .await?;
    let leases = Api::<Lease>::namespaced(client.clone(), SHARDED_NAMESPACE);
    let selector = format!("{}={RING}", labels::CONTROLLER_RING);
    wait_for(
        "every shard Lease to be ready",
        PATIENCE,
        sharder,
        || async {
            let list = leases
                .list(&ListParams::default().labels(&selector))
                .await?;
            let ready = list
                .items
                .iter()
                .filter(|l| {
                    l.metadata
                        .labels
                        .as_ref()
                        .and_then(|labels| labels.get(labels::STATE))
                        .is_some_and(|state| state == "ready")
                })
                .count();
            Ok((ready == usize::try_from(shards)?).then_some(()))
        },
    )
    .await?;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), SHARDED_NAMESPACE);
    wait_for(
        "the webhook to label a ConfigMap",
        PATIENCE,
        sharder,
        || async {
            let created = config_maps
                .create(&PostParams::default(), &config_map("probe"))
                .await?;
            config_maps
                .delete("probe", &DeleteParams::default())
                .await?;
            Ok(has_shard_label(&created.metadata).then_some(()))
        },
    )
    .await
}

/// A small ConfigMap.
fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        data: Some([("key".to_owned(), "value".to_owned())].into()),
        ..ConfigMap::default()
    }
}

fn has_shard_label(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .is_some_and(|labels| labels.contains_key(&labels::shard(RING)))
}

/// Phase 3: open-loop creates, even ones sharded and odd ones plain.
async fn webhook_latency(
    client: &Client,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<WebhookReport> {
    let sharded = Api::<ConfigMap>::namespaced(client.clone(), SHARDED_NAMESPACE);
    let plain = Api::<ConfigMap>::namespaced(client.clone(), PLAIN_NAMESPACE);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for i in 0..schedule_len(rate, duration) {
        let intended = start + intended_offset(i, rate);
        tokio::time::sleep_until(intended).await;
        let is_sharded = i % 2 == 0;
        let api = if is_sharded { &sharded } else { &plain }.clone();
        let in_flight = in_flight.clone();
        tasks.spawn(async move {
            // Waiting here, not in the loop, keeps the schedule open-loop.
            let _permit = in_flight.acquire_owned().await;
            let result = api
                .create(&PostParams::default(), &config_map(&format!("latency-{i}")))
                .await;
            let latency = intended.elapsed();
            (
                is_sharded,
                latency,
                result.map(|cm| has_shard_label(&cm.metadata)),
            )
        });
    }
    let mut sharded_latency = latency_histogram()?;
    let mut plain_latency = latency_histogram()?;
    let (mut errors, mut unlabelled, mut wrongly_labelled) = (0, 0, 0);
    while let Some(joined) = tasks.join_next().await {
        let (is_sharded, latency, result) = joined?;
        let histogram = if is_sharded {
            &mut sharded_latency
        } else {
            &mut plain_latency
        };
        histogram.saturating_record(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
        match result {
            Err(err) => {
                if errors == 0 {
                    progress(&format!("a create failed: {err}"));
                }
                errors += 1;
            }
            Ok(labelled) if labelled != is_sharded => {
                if is_sharded {
                    unlabelled += 1;
                } else {
                    wrongly_labelled += 1;
                }
            }
            Ok(_) => {}
        }
    }
    let sharded = LatencySummary::of(&sharded_latency);
    let plain = LatencySummary::of(&plain_latency);
    Ok(WebhookReport {
        p50_ratio: ratio(sharded.p50_ms, plain.p50_ms),
        p99_ratio: ratio(sharded.p99_ms, plain.p99_ms),
        sharded,
        plain,
        errors,
        sharded_without_shard_label: unlabelled,
        plain_with_shard_label: wrongly_labelled,
    })
}

/// Latencies in microseconds, 1 µs to 10 min, 3 significant digits.
fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

/// Phase 4: RSS after a resync with about 1,000 and with `--objects` sharded ConfigMaps.
async fn memory(
    client: &Client,
    sharder: &mut SharderProcess,
    args: &SharderBenchArgs,
    baseline_rss: u64,
) -> anyhow::Result<MemoryReport> {
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), SHARDED_NAMESPACE);
    let concurrency = usize::try_from(args.concurrency)?;
    let mut next = 0;
    let mut samples = Vec::new();
    let mut created = 0;
    let mut create_errors = 0;
    let mut create_time = Duration::ZERO;
    for target in [SMALL_OBJECT_COUNT.min(args.objects), args.objects] {
        let existing = listing::count(&config_maps, None).await?;
        let missing = target.saturating_sub(existing);
        progress(&format!(
            "memory: creating {missing} ConfigMaps ({existing} exist, {concurrency} in flight)"
        ));
        let started = Instant::now();
        let errors = create_bulk(&config_maps, next..next + missing, concurrency).await;
        create_time += started.elapsed();
        next += missing;
        created += missing - errors;
        create_errors += errors;
        let objects = listing::count(&config_maps, None).await?;
        progress(&format!(
            "memory: {objects} ConfigMaps; forcing a resync, then waiting {:?}",
            args.settle
        ));
        let max_during_resync = resync(client, sharder, samples.len(), args.settle).await?;
        let usage = sharder.usage()?;
        samples.push(MemorySample {
            objects,
            rss_mib: mib(usage.rss_bytes),
            max_rss_during_resync_mib: mib(max_during_resync),
        });
    }
    let peak = sharder.usage()?.peak_rss_bytes;
    let (small, large) = (samples[0].clone(), samples[1].clone());
    Ok(MemoryReport {
        baseline_rss_mib: mib(baseline_rss),
        rss_ratio: ratio(large.rss_mib, small.rss_mib),
        small,
        large,
        peak_rss_mib: mib(peak),
        created,
        create_errors,
        creates_per_second: per_second(created, create_time),
    })
}

/// Creates `obj-<i>` for each i with `concurrency` in flight; returns the number of failures.
async fn create_bulk(
    api: &Api<ConfigMap>,
    names: std::ops::Range<usize>,
    concurrency: usize,
) -> usize {
    futures::stream::iter(names)
        .map(|i| async move {
            api.create(&PostParams::default(), &config_map(&format!("obj-{i}")))
                .await
        })
        .buffer_unordered(concurrency)
        .fold(0, |errors, result| async move {
            match result {
                Ok(_) => errors,
                Err(err) => {
                    if errors == 0 {
                        progress(&format!("a create failed: {err}"));
                    }
                    errors + 1
                }
            }
        })
        .await
}

/// Touches the ring (any change makes the sharder resync it), then samples the sharder's RSS
/// every 100 ms for `settle`, and returns the largest sample.
async fn resync(
    client: &Client,
    sharder: &mut SharderProcess,
    round: usize,
    settle: Duration,
) -> anyhow::Result<u64> {
    let patch = serde_json::json!({
        "metadata": { "annotations": { RESYNC_ANNOTATION: round.to_string() } }
    });
    Api::<ControllerRing>::all(client.clone())
        .patch(RING, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .context("cannot touch ControllerRing bench")?;
    let deadline = Instant::now() + settle;
    let mut max = 0;
    while Instant::now() < deadline {
        max = max.max(sharder.usage()?.rss_bytes);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(max)
}

/// Phase 5: releases the first shard's Lease and times the move of its objects.
async fn move_time(
    client: &Client,
    sharder: &mut SharderProcess,
    lease: ShardLeaseHandle,
    patience: Duration,
) -> anyhow::Result<MoveReport> {
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), SHARDED_NAMESPACE);
    let shard_label = labels::shard(RING);
    let on_departed = format!("{shard_label}={RING}-0");
    let unassigned = format!("!{shard_label}");
    let objects = listing::count(&config_maps, Some(&on_departed)).await?;
    let movements = "controller_sharding_movements_total";
    let movements_before = sharder.metric_sum(movements).await;
    let rejections_before = sharder.metric_sum(REJECTIONS).await;
    progress(&format!(
        "move: releasing the Lease of {RING}-0, which has {objects} objects"
    ));
    let started = Instant::now();
    lease
        .release()
        .await
        .with_context(|| format!("cannot release the Lease of {RING}-0"))?;
    wait_for(
        "the move of bench-0's objects",
        patience,
        sharder,
        || async {
            let done = !listing::any(&config_maps, &on_departed).await?
                && !listing::any(&config_maps, &unassigned).await?;
            Ok(done.then_some(()))
        },
    )
    .await?;
    let elapsed = started.elapsed();
    let movements_after = sharder.metric_sum(movements).await;
    let rejections_after = sharder.metric_sum(REJECTIONS).await;
    // A resync that patches thousands of objects is where buffers could pile up, so memory is
    // read again once it is done.
    let usage = sharder.usage()?;
    Ok(MoveReport {
        moved_objects: objects,
        seconds: elapsed.as_secs_f64(),
        rss_after_mib: mib(usage.rss_bytes),
        peak_rss_mib: mib(usage.peak_rss_bytes),
        objects_per_second: per_second(objects, elapsed),
        movements_counted: movements_before
            .zip(movements_after)
            .map(|(before, after)| after - before),
        webhook_rejections: rejections_before
            .zip(rejections_after)
            .map(|(before, after)| after - before),
    })
}

/// The benchmark's results and parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run's parameters.
    pub parameters: Parameters,
    /// Phase 3, if run.
    pub webhook: Option<WebhookReport>,
    /// Phase 4, if run.
    pub memory: Option<MemoryReport>,
    /// Phase 5, if run.
    pub movement: Option<MoveReport>,
    /// Phase 6, if run.
    pub abuse: Option<abuse::AbuseReport>,
}

/// The run's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Parameters {
    /// Shards (and shard Leases) of the ring.
    pub shards: u32,
    /// Creates per second in the latency phase, both namespaces together.
    pub rate_per_second: u32,
    /// Length of the latency phase.
    pub duration_seconds: f64,
    /// Sharded ConfigMaps at the second memory reading.
    pub objects: usize,
    /// Creates in flight in the memory phase.
    pub concurrency: u32,
    /// The sharder's concurrentMoves.
    pub concurrent_moves: u32,
    /// Time given to each forced resync.
    pub settle_seconds: f64,
    /// The phases run.
    pub phases: Vec<Phase>,
}

/// Create latencies through the webhook and without it.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookReport {
    /// Creates in [`SHARDED_NAMESPACE`], through the webhook.
    pub sharded: LatencySummary,
    /// Creates in [`PLAIN_NAMESPACE`], without a webhook.
    pub plain: LatencySummary,
    /// Sharded p50 / plain p50.
    pub p50_ratio: Option<f64>,
    /// Sharded p99 / plain p99.
    pub p99_ratio: Option<f64>,
    /// Failed creates (both kinds).
    pub errors: usize,
    /// Sharded creates the webhook did not label.
    pub sharded_without_shard_label: usize,
    /// Plain creates that carry a shard label (should be none).
    pub plain_with_shard_label: usize,
}

/// The sharder's memory against the number of sharded objects.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// RSS once the ring was ready, before the latency phase.
    pub baseline_rss_mib: f64,
    /// With about 1,000 objects.
    pub small: MemorySample,
    /// With `--objects` objects.
    pub large: MemorySample,
    /// large RSS / small RSS.
    pub rss_ratio: Option<f64>,
    /// The sharder's peak RSS up to the end of this phase (VmHWM); the move's report has the
    /// peak of the whole run.
    pub peak_rss_mib: f64,
    /// ConfigMaps created in this phase.
    pub created: usize,
    /// Failed creates in this phase.
    pub create_errors: usize,
    /// Creates per second in this phase (through the webhook).
    pub creates_per_second: f64,
}

/// One memory reading.
#[derive(Debug, Clone, Serialize)]
pub struct MemorySample {
    /// Sharded ConfigMaps that existed.
    pub objects: usize,
    /// VmRSS after the forced resync.
    pub rss_mib: f64,
    /// The largest VmRSS sampled while the resync ran.
    pub max_rss_during_resync_mib: f64,
}

/// The move of a released shard's objects.
#[derive(Debug, Clone, Serialize)]
pub struct MoveReport {
    /// Objects the released shard had.
    pub moved_objects: usize,
    /// From the release until none is on it and all carry a shard label.
    pub seconds: f64,
    /// The sharder's VmRSS once the move is done.
    pub rss_after_mib: f64,
    /// The sharder's VmHWM once the move is done: the peak of the whole run.
    pub peak_rss_mib: f64,
    /// moved_objects / seconds.
    pub objects_per_second: f64,
    /// The increase of the sharder's `controller_sharding_movements_total`, if scraped.
    pub movements_counted: Option<f64>,
    /// The increase of the sharder's `controller_sharding_webhook_rejections_total`, if
    /// scraped: the moves' UPDATEs the webhook server turned away.
    pub webhook_rejections: Option<f64>,
}

impl crate::report::Report for Report {
    fn table(&self) -> String {
        let p = &self.parameters;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "sharder-bench: {} shards, {} creates/s for {} s, {} objects ({} in flight), concurrentMoves {}, settle {} s\n",
            p.shards,
            p.rate_per_second,
            p.duration_seconds,
            p.objects,
            p.concurrency,
            p.concurrent_moves,
            p.settle_seconds
        );
        if let Some(webhook) = &self.webhook {
            text.push_str(&webhook.table());
        }
        if let Some(memory) = &self.memory {
            text.push_str(&memory.table());
        }
        if let Some(movement) = &self.movement {
            text.push_str(&movement.table(self.memory.as_ref()));
        }
        if let Some(abuse) = &self.abuse {
            text.push_str(&abuse.table());
        }
        text
    }
}

impl WebhookReport {
    fn table(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "webhook latency (ConfigMap create, open loop, from the intended start)"
        );
        let mut latency = TextTable::new(&["", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"]);
        for (name, s) in [("sharded", &self.sharded), ("plain", &self.plain)] {
            latency.row([
                name.to_owned(),
                s.count.to_string(),
                format!("{:.1}", s.p50_ms),
                format!("{:.1}", s.p90_ms),
                format!("{:.1}", s.p99_ms),
                format!("{:.1}", s.max_ms),
            ]);
        }
        text.push_str(&latency.render());
        let _ = writeln!(
            text,
            "  sharded/plain: p50 {}, p99 {}\n  errors {}, sharded without shard label {}, plain with shard label {}\n",
            format_ratio(self.p50_ratio),
            format_ratio(self.p99_ratio),
            self.errors,
            self.sharded_without_shard_label,
            self.plain_with_shard_label
        );
        text
    }
}

impl MemoryReport {
    fn table(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "sharder memory (VmRSS after a forced resync)");
        let mut memory = TextTable::new(&[]);
        memory.row([
            "ring ready, no objects".to_owned(),
            format!("{:.1} MiB", self.baseline_rss_mib),
        ]);
        for s in [&self.small, &self.large] {
            memory.row([
                format!("{} objects", s.objects),
                format!("{:.1} MiB", s.rss_mib),
                format!(
                    "(max {:.1} MiB during the resync)",
                    s.max_rss_during_resync_mib
                ),
            ]);
        }
        text.push_str(&memory.render());
        let _ = writeln!(
            text,
            "  ratio {}, peak so far (VmHWM) {:.1} MiB\n  created {} ConfigMaps at {:.0}/s, {} errors\n",
            format_ratio(self.rss_ratio),
            self.peak_rss_mib,
            self.created,
            self.creates_per_second,
            self.create_errors
        );
        text
    }
}

impl MoveReport {
    /// The move's section; compared with the small reading of `memory` if it ran.
    fn table(&self, memory: Option<&MemoryReport>) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "move after releasing the Lease of bench-0");
        let _ = writeln!(
            text,
            "  {} objects in {:.1} s ({:.0} objects/s); controller_sharding_movements_total +{}, {REJECTIONS} +{}",
            self.moved_objects,
            self.seconds,
            self.objects_per_second,
            format_optional(self.movements_counted, 0),
            format_optional(self.webhook_rejections, 0)
        );
        let compared = memory.map_or_else(String::new, |m| {
            format!(
                " ({} the {}-object reading)",
                format_ratio(ratio(self.rss_after_mib, m.small.rss_mib)),
                m.small.objects
            )
        });
        let _ = writeln!(
            text,
            "  sharder VmRSS after the move {:.1} MiB{compared}, peak of the run (VmHWM) {:.1} MiB\n",
            self.rss_after_mib, self.peak_rss_mib
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reports_percentiles_in_milliseconds() {
        let mut histogram = latency_histogram().unwrap();
        for ms in 1..=100 {
            histogram.record(ms * 1000).unwrap();
        }
        let summary = LatencySummary::of(&histogram);
        assert_eq!(summary.count, 100);
        let close = |actual: f64, expected: f64| (actual - expected).abs() <= expected / 500.0;
        assert!(close(summary.p50_ms, 50.0), "{summary:?}");
        assert!(close(summary.p90_ms, 90.0), "{summary:?}");
        assert!(close(summary.p99_ms, 99.0), "{summary:?}");
        assert!(close(summary.max_ms, 100.0), "{summary:?}");
    }

    #[test]
    fn an_empty_histogram_summarizes_to_zeros() {
        let summary = LatencySummary::of(&latency_histogram().unwrap());
        assert_eq!(summary.count, 0);
        assert!(summary.p99_ms.abs() < f64::EPSILON);
    }
}
