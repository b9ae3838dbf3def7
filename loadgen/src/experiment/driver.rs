//! The driver: creates, deletes and mutates the objects of the scenario's workloads
//! (docs/workloads.md) on their open-loop schedules.
//!
//! A scheduler hands each operation to its kind's queue at its due time, whatever the state of
//! earlier ones; a bounded number of workers per kind takes operations from the queue. When
//! the API server is slow the queues grow, and since every latency counts from the
//! operation's scheduled time, the stall shows in the latencies of everything due meanwhile
//! (no coordinated omission).
//!
//! Every operation handed out reaches the tracker: a write it awaits, or why there is none
//! ([`NoWrite`]), so that the classes of the run add up to its schedule
//! (docs/experiments.md#reconciliation-latency). An operation still queued when the settle
//! time ends is not issued.

use std::{
    cmp::Reverse,
    collections::{BTreeMap, BinaryHeap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt as _;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Client,
    api::{DeleteParams, DynamicObject, PatchParams, PostParams},
};
use rand::{RngExt as _, seq::IndexedRandom as _};
use serde_json::Value;
use tokio::{sync::mpsc, time::Instant};

use super::{
    metrics::{Metrics, Operation, Outcome},
    schedule,
    tracker::{NoWrite, Tracker},
};
use crate::{
    scenario::{Load, Scenario},
    workload::{Awaited, Kind as ApiKind, RenderError, Workload},
    world::{WorkloadApi, World},
};

/// The label that marks the objects of a run, so that runs and other objects stay apart.
pub const RUN_LABEL: &str = "loadgen.sharding.timebertt.dev/run";

/// An object the driver created and has not deleted.
#[derive(Debug, Clone, PartialEq)]
struct Live {
    /// Its hash key.
    key: String,
    /// The index of its workload.
    workload: usize,
    namespace: String,
    name: String,
    /// As the API server last returned it, without its managed fields: what a mutation's
    /// template sees as `object`.
    object: Value,
}

/// The objects the driver may delete or mutate, with random choice in O(1).
#[derive(Debug, Default)]
pub struct Population {
    live: Vec<Live>,
    index: HashMap<String, usize>,
}

impl Population {
    /// Adds an object.
    fn insert(&mut self, live: Live) {
        if self.index.contains_key(&live.key) {
            return;
        }
        self.index.insert(live.key.clone(), self.live.len());
        self.live.push(live);
    }

    /// Removes and returns a random object.
    fn remove_random(&mut self, rng: &mut impl rand::Rng) -> Option<Live> {
        if self.live.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.live.len());
        let removed = self.live.swap_remove(i);
        self.index.remove(&removed.key);
        if let Some(moved) = self.live.get(i) {
            self.index.insert(moved.key.clone(), i);
        }
        Some(removed)
    }

    /// The key of a random live object.
    fn random_key(&self, rng: &mut impl rand::Rng) -> Option<String> {
        let live = self.live.get(rng.random_range(0..self.live.len().max(1)))?;
        Some(live.key.clone())
    }

    /// The object `key`, if live.
    fn get(&self, key: &str) -> Option<&Live> {
        self.index.get(key).map(|&i| &self.live[i])
    }

    /// Keeps `object` as the last written state of `key`, if live.
    fn written(&mut self, key: &str, object: Value) {
        if let Some(&i) = self.index.get(key) {
            self.live[i].object = object;
        }
    }

    /// Live objects.
    #[must_use]
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

/// The hash key of the object `namespace/name` of `kind`, `<group>/<Kind>/<namespace>/<name>`
/// (docs/contract.md#hash-keys): the key of every object in the tracker.
#[must_use]
pub fn key(kind: &ApiKind, namespace: &str, name: &str) -> String {
    format!(
        "{}/{}/{namespace}/{name}",
        kube_sharding::key::group_of(&kind.api_version),
        kind.kind
    )
}

/// An operation due at `offset` from the start of the load.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Due {
    offset: Duration,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Create,
    Delete,
    Mutate(String),
}

/// The world the driver works in and what it reports to.
pub struct Driver {
    /// The API server.
    pub client: Client,
    /// The run's id, the value of [`RUN_LABEL`].
    pub run_id: String,
    /// The scenario.
    pub scenario: Scenario,
    /// The namespaces and fixtures of the objects.
    pub world: World,
    /// The APIs of each of the scenario's workloads.
    pub apis: Vec<WorkloadApi>,
    /// Where writes are reported for their reconciliation latency.
    pub tracker: Arc<Mutex<Tracker>>,
    /// loadgen's series.
    pub metrics: Metrics,
    /// The objects created and not deleted.
    pub population: Mutex<Population>,
    /// Objects created so far, the next one's `index` (docs/workloads.md#templates).
    pub created: AtomicU64,
    /// Why operations failed: `<operation>: <error>` and how often.
    pub errors: Mutex<BTreeMap<String, u64>>,
    /// When each operation of the load succeeded, for the achieved rate
    /// (docs/experiments.md#capacity).
    pub completed: Mutex<Vec<Timestamp>>,
    /// When each operation failed, for the error share of the validity verdict
    /// (docs/experiments.md#validity).
    pub failed_at: Mutex<Vec<Timestamp>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("run_id", &self.run_id)
            .field("namespaces", &self.world.namespaces.len())
            .field("workloads", &self.apis.len())
            .finish_non_exhaustive()
    }
}

/// Why a write failed before or at the API server.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    /// The API server refused it or did not answer.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// A template did not render for this object (docs/workloads.md#templates).
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The API server's answer is not an object of the workload.
    #[error("the answer is not an object: {0}")]
    Answer(serde_json::Error),
}

impl Driver {
    /// A driver of `scenario` in `world` for the run `run_id`, writing through `apis` (one per
    /// workload) and reporting to the tracker and loadgen's series.
    #[must_use]
    pub fn new(
        client: Client,
        run_id: &str,
        scenario: &Scenario,
        (world, apis): (World, Vec<WorkloadApi>),
        (tracker, metrics): (Arc<Mutex<Tracker>>, Metrics),
    ) -> Self {
        Self {
            client,
            run_id: run_id.to_owned(),
            scenario: scenario.clone(),
            world,
            apis,
            tracker,
            metrics,
            population: Mutex::default(),
            created: AtomicU64::new(0),
            errors: Mutex::default(),
            completed: Mutex::default(),
            failed_at: Mutex::default(),
        }
    }

    /// Creates `count` objects before the load, `workers` at a time, without measuring them
    /// (the tracker awaits them only to know when they are reconciled); returns the number
    /// that failed.
    pub async fn create_initial(&self, count: u32, workers: usize) -> usize {
        futures::stream::iter(0..count)
            .map(|_| async {
                match self.create_object().await {
                    Ok((key, awaited)) => {
                        super::lock(&self.tracker).expect_initial(&key, awaited, Timestamp::now());
                        false
                    }
                    Err(error) => {
                        self.failed("create", &error);
                        true
                    }
                }
            })
            .buffer_unordered(workers.max(1))
            .filter(|failed| std::future::ready(*failed))
            .count()
            .await
    }

    /// Runs `load`, the scenario's, from `start` (now) for its duration, then waits until
    /// every operation that was due has ended; those not begun by the end of the settle time
    /// are not issued.
    pub async fn run(&self, load: &Load, start: Instant, started_at: Timestamp) {
        let duration = self.scenario.duration;
        let issue_by = start + duration + self.scenario.settle;
        let creates = schedule::all_due(|t| self.scenario.creates_by(t), duration);
        let deletes = load.delete.map_or_else(Vec::new, |delete| {
            schedule::all_due(|t| delete.rate * t.as_secs_f64(), duration)
        });
        let mut mutations = BinaryHeap::new();
        if let Some(mutate) = load.mutate {
            let mut rng = rand::rng();
            let population = super::lock(&self.population);
            for live in &population.live {
                // Initial objects start at a random phase, so they are not all mutated at once.
                let phase = mutate.interval.mul_f64(rng.random_range(0.0..1.0));
                mutations.push(Reverse((phase, live.key.clone())));
            }
        }
        let (new_websites_tx, new_websites_rx) = mpsc::unbounded_channel();
        let (create_tx, create_rx) = mpsc::unbounded_channel();
        let (delete_tx, delete_rx) = mpsc::unbounded_channel();
        let (mutate_tx, mutate_rx) = mpsc::unbounded_channel();
        let dispatch = schedule_loop(
            start,
            duration,
            load.mutate.map(|m| m.interval),
            (creates, deletes, mutations),
            new_websites_rx,
            (create_tx, delete_tx, mutate_tx),
        );
        let workers = |rx: mpsc::UnboundedReceiver<Due>, workers: u32| {
            let new_websites = new_websites_tx.clone();
            tokio_stream_of(rx).for_each_concurrent(
                usize::try_from(workers).unwrap_or(1).max(1),
                move |due| {
                    let new_websites = new_websites.clone();
                    async move {
                        let at = started_at + due.offset;
                        if Instant::now() < issue_by {
                            self.execute(due, at, &new_websites).await;
                        } else {
                            self.not_issued(&due.kind);
                        }
                    }
                },
            )
        };
        let create_workers = workers(create_rx, load.create.workers);
        let delete_workers = workers(delete_rx, load.delete.map_or(1, |d| d.workers));
        let mutate_workers = workers(mutate_rx, load.mutate.map_or(1, |m| m.workers));
        drop(new_websites_tx);
        let (scheduled, (), (), ()) =
            futures::join!(dispatch, create_workers, delete_workers, mutate_workers);
        super::lock(&self.tracker).scheduled(scheduled.writes, scheduled.deletes);
    }

    /// Offers `churn` changes per second of random live objects from `start` (now, also
    /// `started_at`) for `hold`, `workers` at a time, a step of a capacity search
    /// (docs/experiments.md#capacity-search); waits until every change has ended, and those not
    /// begun by `issue_by` are not issued. Returns the changes the schedule made due.
    pub async fn churn(
        &self,
        churn: f64,
        hold: Duration,
        workers: u32,
        (start, started_at): (Instant, Timestamp),
        issue_by: Instant,
    ) -> u64 {
        let due = schedule::all_due(|t| churn * t.as_secs_f64(), hold);
        let scheduled = due.len() as u64;
        // A step creates nothing, so nothing goes to the schedule of new objects' mutations.
        let (new_websites, _) = mpsc::unbounded_channel();
        futures::stream::iter(due)
            .for_each_concurrent(usize::try_from(workers).unwrap_or(1).max(1), |offset| {
                let new_websites = new_websites.clone();
                async move {
                    tokio::time::sleep_until(start + offset).await;
                    let picked = super::lock(&self.population).random_key(&mut rand::rng());
                    let Some(key) = picked else {
                        super::lock(&self.tracker).write_missed(NoWrite::Skipped);
                        return;
                    };
                    let due = Due {
                        offset,
                        kind: Kind::Mutate(key),
                    };
                    if Instant::now() < issue_by {
                        self.execute(due, started_at + offset, &new_websites).await;
                    } else {
                        self.not_issued(&due.kind);
                    }
                }
            })
            .await;
        super::lock(&self.tracker).scheduled(scheduled, 0);
        scheduled
    }

    fn not_issued(&self, kind: &Kind) {
        let mut tracker = super::lock(&self.tracker);
        match kind {
            Kind::Delete => tracker.delete_ended(Err(NoWrite::NotIssued)),
            Kind::Create | Kind::Mutate(_) => tracker.write_missed(NoWrite::NotIssued),
        }
    }

    async fn execute(
        &self,
        due: Due,
        scheduled: Timestamp,
        new_websites: &mpsc::UnboundedSender<(Duration, String)>,
    ) {
        let (operation, outcome) = match &due.kind {
            Kind::Create => match self.create_object().await {
                Ok((key, awaited)) => {
                    self.expect(&key, awaited, scheduled);
                    // Sending fails only once the scheduler is done: no more mutations then.
                    let _ = new_websites.send((due.offset, key));
                    (Operation::create, Outcome::success)
                }
                Err(error) => {
                    let reason = self.failed("create", &error);
                    super::lock(&self.tracker).write_missed(NoWrite::Failed(reason));
                    (Operation::create, Outcome::error)
                }
            },
            Kind::Delete => (Operation::delete, self.delete_random().await),
            Kind::Mutate(key) => (Operation::mutate, self.mutate(key, scheduled).await),
        };
        if matches!(outcome, Outcome::success) {
            super::lock(&self.completed).push(Timestamp::now());
        }
        let since_scheduled = super::since(scheduled);
        self.metrics.operation(operation, outcome, since_scheduled);
    }

    /// Counts a failed operation by its error, for the summary of the run; returns the
    /// reason it is accounted under.
    fn failed(&self, operation: &str, error: &WriteError) -> String {
        super::lock(&self.failed_at).push(Timestamp::now());
        *super::lock(&self.errors)
            .entry(format!("{operation}: {error}"))
            .or_default() += 1;
        match error {
            WriteError::Api(error) => failure_reason(error),
            WriteError::Render(_) => "template".to_owned(),
            WriteError::Answer(_) => "undecodable response".to_owned(),
        }
    }

    fn expect(&self, key: &str, awaited: Awaited, scheduled: Timestamp) {
        let latency = super::lock(&self.tracker).expect(key, awaited, scheduled);
        if let Some(latency) = latency {
            self.metrics.reconciled(&[latency]);
        }
    }

    /// The workload of the next create, at random by weight.
    fn pick_workload(&self, rng: &mut impl rand::Rng) -> usize {
        let weights: Vec<u64> = self
            .scenario
            .workloads
            .iter()
            .map(|w| u64::from(w.weight))
            .collect();
        pick_by_weight(&weights, rng)
    }

    /// Creates an object of a random workload; returns its key and what it awaits.
    async fn create_object(&self) -> Result<(String, Awaited), WriteError> {
        let index = self.created.fetch_add(1, Ordering::Relaxed);
        let (w, namespace, object) = {
            let mut rng = rand::rng();
            let w = self.pick_workload(&mut rng);
            let workload = &self.scenario.workloads[w];
            let namespace = if workload.resource.namespaced {
                self.world
                    .namespaces
                    .choose(&mut rng)
                    .cloned()
                    .unwrap_or_default()
            } else {
                String::new()
            };
            let context = self.world.context((index, &namespace), &self.run_id, None);
            let mut object = workload.object(&context, &mut rng)?;
            label(&mut object, &self.run_id);
            (w, namespace, object)
        };
        let workload = &self.scenario.workloads[w];
        let dynamic: DynamicObject = serde_json::from_value(object).map_err(WriteError::Answer)?;
        let api = self.apis[w].objects(&self.client, &namespace);
        let created = api.create(&PostParams::default(), &dynamic).await?;
        let name = created.metadata.name.clone().unwrap_or_default();
        let written = written(&created)?;
        let context = self
            .world
            .context((index, &namespace), &self.run_id, Some(&written));
        let awaited = tracked(workload, workload.reconciled.awaited(&written, &context)?);
        let key = key(&workload.resource.kind, &namespace, &name);
        super::lock(&self.population).insert(Live {
            key: key.clone(),
            workload: w,
            namespace,
            name,
            object: written,
        });
        Ok((key, awaited))
    }

    async fn delete_random(&self) -> Outcome {
        let ended = self.try_delete_random().await;
        let outcome = outcome(&ended);
        super::lock(&self.tracker).delete_ended(ended);
        outcome
    }

    async fn try_delete_random(&self) -> Result<(), NoWrite> {
        let live = super::lock(&self.population)
            .remove_random(&mut rand::rng())
            .ok_or(NoWrite::Skipped)?;
        self.apis[live.workload]
            .objects(&self.client, &live.namespace)
            .delete(&live.name, &DeleteParams::default())
            .await
            .map_err(|error| NoWrite::Failed(self.failed("delete", &error.into())))?;
        Ok(())
    }

    /// Changes `key` by one of its workload's mutations.
    async fn mutate(&self, key: &str, scheduled: Timestamp) -> Outcome {
        let written = self.try_mutate(key, scheduled).await;
        let outcome = outcome(&written);
        if let Err(why) = written {
            super::lock(&self.tracker).write_missed(why);
        }
        outcome
    }

    /// Changes `key` and awaits its reconciliation. A change the API server made nothing of
    /// (the same resourceVersion) is skipped: there is nothing to reconcile.
    async fn try_mutate(&self, key: &str, scheduled: Timestamp) -> Result<(), NoWrite> {
        let live = super::lock(&self.population)
            .get(key)
            .cloned()
            .ok_or(NoWrite::Skipped)?;
        let workload = &self.scenario.workloads[live.workload];
        let index = self.created.load(Ordering::Relaxed);
        let patch = {
            let context =
                self.world
                    .context((index, &live.namespace), &self.run_id, Some(&live.object));
            workload
                .mutation(&context, &mut rand::rng())
                .map_err(|error| NoWrite::Failed(self.failed("mutate", &error.into())))?
        };
        let api = self.apis[live.workload].objects(&self.client, &live.namespace);
        let patched = match api.patch(&live.name, &PatchParams::default(), &patch).await {
            Ok(patched) => patched,
            // Deleted after it was chosen.
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                return Err(NoWrite::Skipped);
            }
            Err(error) => return Err(NoWrite::Failed(self.failed("mutate", &error.into()))),
        };
        let unchanged = patched.metadata.resource_version.as_deref()
            == live.object["metadata"]["resourceVersion"].as_str();
        if unchanged {
            return Err(NoWrite::Skipped);
        }
        let awaited = written(&patched).and_then(|written| {
            let context =
                self.world
                    .context((index, &live.namespace), &self.run_id, Some(&written));
            let awaited = tracked(workload, workload.reconciled.awaited(&written, &context)?);
            super::lock(&self.population).written(key, written);
            Ok(awaited)
        });
        match awaited {
            Ok(awaited) => {
                self.expect(key, awaited, scheduled);
                Ok(())
            }
            Err(error) => Err(NoWrite::Failed(self.failed("mutate", &error))),
        }
    }
}

/// What a write awaits as the tracker keys it: a related object found by name by its hash key.
fn tracked(workload: &Workload, awaited: Awaited) -> Awaited {
    match (awaited, workload.reconciled.related()) {
        (
            Awaited::Value {
                related: Some(related),
                expected,
            },
            Some(rule),
        ) => {
            let (namespace, name) = related.split_once('/').unwrap_or(("", &related));
            Awaited::Value {
                related: Some(key(&rule.kind, namespace, name)),
                expected,
            }
        }
        (awaited, _) => awaited,
    }
}

/// Adds the run label to a rendered object.
fn label(object: &mut Value, run_id: &str) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let labels = metadata
            .entry("labels")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(RUN_LABEL.to_owned(), Value::String(run_id.to_owned()));
        }
    }
}

/// An object the API server returned, as JSON without its managed fields (kept per live
/// object, and not needed by any template).
fn written(object: &DynamicObject) -> Result<Value, WriteError> {
    let mut value = serde_json::to_value(object).map_err(WriteError::Answer)?;
    if let Some(metadata) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("managedFields");
    }
    Ok(value)
}

/// An index into `weights`, at random in proportion to them; 0 when they are all 0.
fn pick_by_weight(weights: &[u64], rng: &mut impl rand::Rng) -> usize {
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return 0;
    }
    let mut point = rng.random_range(0..total);
    for (i, weight) in weights.iter().enumerate() {
        if point < *weight {
            return i;
        }
        point -= weight;
    }
    weights.len() - 1
}

/// loadgen's series' outcome of an issued operation (so never [`NoWrite::NotIssued`]).
fn outcome(ended: &Result<(), NoWrite>) -> Outcome {
    match ended {
        Ok(()) => Outcome::success,
        Err(NoWrite::Skipped) => Outcome::skipped,
        Err(NoWrite::Failed(_) | NoWrite::NotIssued) => Outcome::error,
    }
}

/// A failed API call's reason, stable across calls so that failures can be counted by it:
/// the HTTP status and the API server's reason (`409 AlreadyExists`), `timeout`, or
/// `connection` when no answer came.
fn failure_reason(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} {}", status.code, status.reason)
            .trim_end()
            .to_owned(),
        kube::Error::HyperError(_) | kube::Error::Service(_) => {
            let timed_out =
                std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |error| {
                    error.source()
                })
                .any(|error| {
                    let text = error.to_string().to_lowercase();
                    text.contains("timed out") || text.contains("timeout")
                });
            if timed_out { "timeout" } else { "connection" }.to_owned()
        }
        kube::Error::SerdeError(_) => "undecodable response".to_owned(),
        _ => "client".to_owned(),
    }
}

/// The due times of creates and deletes, and of the next mutation of each object.
type Schedules = (
    Vec<Duration>,
    Vec<Duration>,
    BinaryHeap<Reverse<(Duration, String)>>,
);

/// The queues of creates, deletes and mutations.
type Queues = (
    mpsc::UnboundedSender<Due>,
    mpsc::UnboundedSender<Due>,
    mpsc::UnboundedSender<Due>,
);

/// The operations a schedule handed out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Scheduled {
    /// Creates and mutations.
    writes: u64,
    /// Deletes.
    deletes: u64,
}

/// Hands every operation to its queue at its due time until `duration`; mutations of created
/// objects join as their creates succeed. Returns how many it handed out.
async fn schedule_loop(
    start: Instant,
    duration: Duration,
    mutate_interval: Option<Duration>,
    (creates, deletes, mut mutations): Schedules,
    mut new_websites: mpsc::UnboundedReceiver<(Duration, String)>,
    (create, delete, mutate): Queues,
) -> Scheduled {
    let mut scheduled = Scheduled::default();
    let (mut creates, mut deletes) = (
        creates.into_iter().peekable(),
        deletes.into_iter().peekable(),
    );
    let mut created_open = true;
    loop {
        let next = [
            creates.peek().copied(),
            deletes.peek().copied(),
            mutations.peek().map(|Reverse((at, _))| *at),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next.filter(|at| *at <= duration) else {
            // Nothing more is due; creates still running may add mutations within the load.
            if created_open && Instant::now() < start + duration {
                tokio::select! {
                    entry = new_websites.recv() => match entry {
                        Some(entry) => push_mutation(&mut mutations, entry, mutate_interval, duration),
                        None => created_open = false,
                    },
                    () = tokio::time::sleep_until(start + duration) => return scheduled,
                }
                continue;
            }
            return scheduled;
        };
        tokio::select! {
            () = tokio::time::sleep_until(start + next) => {}
            entry = new_websites.recv(), if created_open => {
                match entry {
                    Some(entry) => push_mutation(&mut mutations, entry, mutate_interval, duration),
                    None => created_open = false,
                }
                continue;
            }
        }
        let due = if creates.peek() == Some(&next) {
            creates.next();
            Due {
                offset: next,
                kind: Kind::Create,
            }
        } else if deletes.peek() == Some(&next) {
            deletes.next();
            Due {
                offset: next,
                kind: Kind::Delete,
            }
        } else {
            let Some(Reverse((offset, key))) = mutations.pop() else {
                continue;
            };
            if let Some(interval) = mutate_interval {
                push_mutation(
                    &mut mutations,
                    (offset, key.clone()),
                    Some(interval),
                    duration,
                );
            }
            Due {
                offset,
                kind: Kind::Mutate(key),
            }
        };
        let queue = match due.kind {
            Kind::Create => &create,
            Kind::Delete => &delete,
            Kind::Mutate(_) => &mutate,
        };
        match due.kind {
            Kind::Delete => scheduled.deletes += 1,
            Kind::Create | Kind::Mutate(_) => scheduled.writes += 1,
        }
        // The workers outlive the scheduler; a send fails only if they are gone.
        let _ = queue.send(due);
    }
}

/// Schedules the next mutation of an object created or mutated at `at`, if within the load.
fn push_mutation(
    mutations: &mut BinaryHeap<Reverse<(Duration, String)>>,
    (at, key): (Duration, String),
    interval: Option<Duration>,
    duration: Duration,
) {
    if let Some(next) =
        interval.and_then(|interval| schedule::mutations(at, interval, duration).first().copied())
    {
        mutations.push(Reverse((next, key)));
    }
}

/// The operations of a queue as a stream.
fn tokio_stream_of<T>(mut rx: mpsc::UnboundedReceiver<T>) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    fn live(name: &str) -> Live {
        Live {
            key: format!("/Secret/p/{name}"),
            workload: 0,
            namespace: "p".to_owned(),
            name: name.to_owned(),
            object: serde_json::json!({"metadata": {"name": name}}),
        }
    }

    #[test]
    fn the_population_removes_random_websites_and_keeps_its_index() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut population = Population::default();
        for name in ["a", "b", "c", "d"] {
            population.insert(live(name));
        }
        population.insert(live("a"));
        assert_eq!(population.len(), 4);
        let mut removed = Vec::new();
        while let Some(website) = population.remove_random(&mut rng) {
            removed.push(website.name);
            for left in &population.live {
                assert_eq!(population.get(&left.key), Some(left));
            }
        }
        removed.sort();
        assert_eq!(removed, ["a", "b", "c", "d"]);
        assert!(population.is_empty());
    }

    #[test]
    fn a_written_object_replaces_the_one_mutations_see() {
        let mut population = Population::default();
        population.insert(live("a"));
        let object = serde_json::json!({"metadata": {"name": "a", "resourceVersion": "7"}});
        population.written("/Secret/p/a", object.clone());
        assert_eq!(population.get("/Secret/p/a").unwrap().object, object);
    }

    #[test]
    fn an_objects_key_is_its_hash_key() {
        let kind = ApiKind {
            api_version: "webhosting.timebertt.dev/v1alpha1".to_owned(),
            kind: "Website".to_owned(),
        };
        let meta = kube::api::ObjectMeta {
            namespace: Some("project-01".to_owned()),
            name: Some("experiment-abc".to_owned()),
            ..kube::api::ObjectMeta::default()
        };
        let types = kube::core::TypeMeta {
            api_version: kind.api_version.clone(),
            kind: kind.kind.clone(),
        };
        assert_eq!(
            key(&kind, "project-01", "experiment-abc"),
            kube_sharding::key::for_object(Some(&types), &meta).unwrap()
        );
        let secret = ApiKind {
            api_version: "v1".to_owned(),
            kind: "Secret".to_owned(),
        };
        assert_eq!(key(&secret, "p", "s"), "/Secret/p/s");
    }

    #[test]
    fn creates_pick_workloads_in_proportion_to_their_weights() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut counts = [0_u32; 3];
        for _ in 0..4000 {
            counts[pick_by_weight(&[1, 0, 3], &mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((900..1100).contains(&counts[0]), "{counts:?}");
        assert_eq!(pick_by_weight(&[0, 0], &mut rng), 0);
    }

    #[test]
    fn a_rendered_object_gets_the_run_label() {
        let mut object = serde_json::json!({"metadata": {"name": "a"}});
        label(&mut object, "r1");
        assert_eq!(object["metadata"]["labels"][RUN_LABEL], "r1");
        let mut labelled = serde_json::json!({"metadata": {"labels": {"x": "y"}}});
        label(&mut labelled, "r1");
        assert_eq!(labelled["metadata"]["labels"]["x"], "y");
    }

    #[test]
    fn failures_are_counted_by_status_and_reason_or_by_how_the_connection_failed() {
        let status = kube::core::Status::failure("exists", "AlreadyExists").with_code(409);
        assert_eq!(
            failure_reason(&kube::Error::Api(status.boxed())),
            "409 AlreadyExists"
        );
        let io = |kind, text| kube::Error::Service(Box::new(std::io::Error::new(kind, text)));
        assert_eq!(
            failure_reason(&io(std::io::ErrorKind::TimedOut, "request timed out")),
            "timeout"
        );
        assert_eq!(
            failure_reason(&io(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused"
            )),
            "connection"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn operations_are_handed_out_at_their_due_times_without_waiting_for_workers() {
        let start = Instant::now();
        let secs = Duration::from_secs;
        let (new_websites_tx, new_websites_rx) = mpsc::unbounded_channel();
        let (create_tx, mut create_rx) = mpsc::unbounded_channel();
        let (delete_tx, mut delete_rx) = mpsc::unbounded_channel();
        let (mutate_tx, mut mutate_rx) = mpsc::unbounded_channel();
        let creates = vec![secs(1), secs(2), secs(3)];
        let deletes = vec![secs(5)];
        // An object created at 1 s is mutated every 4 s: at 5 s and 9 s, within 10 s.
        new_websites_tx.send((secs(1), "p/a".to_owned())).unwrap();
        drop(new_websites_tx);
        let scheduled = schedule_loop(
            start,
            secs(10),
            Some(secs(4)),
            (creates, deletes, BinaryHeap::new()),
            new_websites_rx,
            (create_tx, delete_tx, mutate_tx),
        )
        .await;
        assert_eq!(Instant::now() - start, secs(9));
        assert_eq!(
            scheduled,
            Scheduled {
                writes: 5,
                deletes: 1
            }
        );
        let offsets = |rx: &mut mpsc::UnboundedReceiver<Due>| {
            let mut offsets = Vec::new();
            while let Ok(due) = rx.try_recv() {
                offsets.push(due.offset);
            }
            offsets
        };
        assert_eq!(offsets(&mut create_rx), [secs(1), secs(2), secs(3)]);
        assert_eq!(offsets(&mut delete_rx), [secs(5)]);
        assert_eq!(offsets(&mut mutate_rx), [secs(5), secs(9)]);
    }
}
