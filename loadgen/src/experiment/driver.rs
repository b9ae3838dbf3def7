//! The driver: creates, deletes and mutates Websites on their open-loop schedules.
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
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt as _;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};
use rand::{RngExt as _, seq::IndexedRandom as _};
use tokio::{sync::mpsc, time::Instant};
use webhosting_operator::api::Website;

use super::{
    metrics::{Metrics, Operation, Outcome},
    schedule,
    tracker::{NoWrite, Tracker},
};
use crate::{
    scenario::{Load, Scenario},
    world::World,
};

/// The label that marks the Websites of a run, so that runs and other Websites stay apart.
pub const RUN_LABEL: &str = "loadgen.sharding.timebertt.dev/run";

/// A Website the driver created and has not deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Live {
    namespace: String,
    name: String,
    theme: String,
}

/// The Websites the driver may delete or mutate, with random choice in O(1).
#[derive(Debug, Default)]
pub struct Population {
    live: Vec<Live>,
    index: HashMap<String, usize>,
}

impl Population {
    /// Adds a Website.
    fn insert(&mut self, website: Live) {
        let key = key(&website.namespace, &website.name);
        if self.index.contains_key(&key) {
            return;
        }
        self.index.insert(key, self.live.len());
        self.live.push(website);
    }

    /// Removes and returns a random Website.
    fn remove_random(&mut self, rng: &mut impl rand::Rng) -> Option<Live> {
        if self.live.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.live.len());
        let removed = self.live.swap_remove(i);
        self.index.remove(&key(&removed.namespace, &removed.name));
        if let Some(moved) = self.live.get(i) {
            self.index.insert(key(&moved.namespace, &moved.name), i);
        }
        Some(removed)
    }

    /// The key of a random live Website.
    fn random_key(&self, rng: &mut impl rand::Rng) -> Option<String> {
        let live = self.live.get(rng.random_range(0..self.live.len().max(1)))?;
        Some(key(&live.namespace, &live.name))
    }

    /// The Website `key`, if live.
    fn get(&self, key: &str) -> Option<&Live> {
        self.index.get(key).map(|&i| &self.live[i])
    }

    /// Sets the theme of `key`, if live.
    fn set_theme(&mut self, key: &str, theme: &str) {
        if let Some(&i) = self.index.get(key) {
            theme.clone_into(&mut self.live[i].theme);
        }
    }

    /// Live Websites.
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

/// `namespace/name`, the key of a Website in the tracker.
#[must_use]
pub fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
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
    /// The namespaces and Themes of the Websites.
    pub world: World,
    /// Where writes are reported for their reconciliation latency.
    pub tracker: Arc<Mutex<Tracker>>,
    /// loadgen's series.
    pub metrics: Metrics,
    /// The Websites created and not deleted.
    pub population: Mutex<Population>,
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
            .field("themes", &self.world.themes.len())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver of `scenario` in `world` for the run `run_id`, reporting to the tracker and
    /// loadgen's series.
    #[must_use]
    pub fn new(
        client: Client,
        run_id: &str,
        scenario: &Scenario,
        world: World,
        (tracker, metrics): (Arc<Mutex<Tracker>>, Metrics),
    ) -> Self {
        Self {
            client,
            run_id: run_id.to_owned(),
            scenario: scenario.clone(),
            world,
            tracker,
            metrics,
            population: Mutex::default(),
            errors: Mutex::default(),
            completed: Mutex::default(),
            failed_at: Mutex::default(),
        }
    }

    /// Creates `count` Websites before the load, `workers` at a time, without measuring them;
    /// returns the number that failed.
    pub async fn create_initial(&self, count: u32, workers: usize) -> usize {
        futures::stream::iter(0..count)
            .map(|_| async {
                self.create_website()
                    .await
                    .map_err(|error| self.failed("create", &error))
                    .is_err()
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
                // Initial Websites start at a random phase, so they are not all mutated at once.
                let phase = mutate.interval.mul_f64(rng.random_range(0.0..1.0));
                mutations.push(Reverse((phase, key(&live.namespace, &live.name))));
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

    /// Offers `churn` changes per second of random live Websites from `start` (now, also
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
        // A step creates nothing, so nothing goes to the schedule of new Websites' mutations.
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
            Kind::Create => match self.create_website().await {
                Ok((key, generation)) => {
                    self.expect(&key, generation, scheduled);
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
    fn failed(&self, operation: &str, error: &kube::Error) -> String {
        super::lock(&self.failed_at).push(Timestamp::now());
        *super::lock(&self.errors)
            .entry(format!("{operation}: {error}"))
            .or_default() += 1;
        failure_reason(error)
    }

    fn expect(&self, key: &str, generation: i64, scheduled: Timestamp) {
        let latency = super::lock(&self.tracker).expect(key, generation, scheduled);
        if let Some(latency) = latency {
            self.metrics.reconciled(&[latency]);
        }
    }

    /// Creates a random Website; returns its key and generation.
    async fn create_website(&self) -> Result<(String, i64), kube::Error> {
        let website = self
            .world
            .random_website(&mut rand::rng(), (RUN_LABEL, &self.run_id));
        let namespace = website.metadata.namespace.clone().unwrap_or_default();
        let name = website.metadata.name.clone().unwrap_or_default();
        let theme = website.spec.theme.clone();
        let api = Api::<Website>::namespaced(self.client.clone(), &namespace);
        let created = api.create(&PostParams::default(), &website).await?;
        let generation = created.metadata.generation.unwrap_or(1);
        super::lock(&self.population).insert(Live {
            namespace: namespace.clone(),
            name: name.clone(),
            theme,
        });
        Ok((key(&namespace, &name), generation))
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
        let api = Api::<Website>::namespaced(self.client.clone(), &live.namespace);
        api.delete(&live.name, &DeleteParams::default())
            .await
            .map_err(|error| NoWrite::Failed(self.failed("delete", &error)))?;
        Ok(())
    }

    /// Sets another theme on `key`.
    async fn mutate(&self, key: &str, scheduled: Timestamp) -> Outcome {
        let written = self.try_mutate(key, scheduled).await;
        let outcome = outcome(&written);
        if let Err(why) = written {
            super::lock(&self.tracker).write_missed(why);
        }
        outcome
    }

    /// Sets another theme on `key` and awaits its reconciliation.
    async fn try_mutate(&self, key: &str, scheduled: Timestamp) -> Result<(), NoWrite> {
        let live = super::lock(&self.population)
            .get(key)
            .cloned()
            .ok_or(NoWrite::Skipped)?;
        let theme = other_theme(&self.world.themes, &live.theme, &mut rand::rng());
        let api = Api::<Website>::namespaced(self.client.clone(), &live.namespace);
        let patch = serde_json::json!({"spec": {"theme": theme}});
        match api
            .patch(&live.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(website) => {
                super::lock(&self.population).set_theme(key, &theme);
                self.expect(key, website.metadata.generation.unwrap_or(0), scheduled);
                Ok(())
            }
            // Deleted after it was chosen.
            Err(kube::Error::Api(status)) if status.is_not_found() => Err(NoWrite::Skipped),
            Err(error) => Err(NoWrite::Failed(self.failed("mutate", &error))),
        }
    }
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

/// A theme other than `current` (the same only if there is no other), so that every mutation
/// changes the spec and its generation.
fn other_theme(themes: &[String], current: &str, rng: &mut impl rand::Rng) -> String {
    let others: Vec<&String> = themes.iter().filter(|t| *t != current).collect();
    others
        .choose(rng)
        .map_or_else(|| current.to_owned(), |t| (*t).clone())
}

/// The due times of creates and deletes, and of the next mutation of each Website.
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
/// Websites join as their creates succeed. Returns how many it handed out.
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

/// Schedules the next mutation of a Website created or mutated at `at`, if within the load.
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
            namespace: "p".to_owned(),
            name: name.to_owned(),
            theme: "t0".to_owned(),
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
                assert_eq!(population.get(&key("p", &left.name)), Some(left));
            }
        }
        removed.sort();
        assert_eq!(removed, ["a", "b", "c", "d"]);
        assert!(population.is_empty());
    }

    #[test]
    fn a_mutation_sets_another_theme() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let themes: Vec<String> = ["t0", "t1"].map(str::to_owned).to_vec();
        for _ in 0..10 {
            assert_eq!(other_theme(&themes, "t0", &mut rng), "t1");
        }
        assert_eq!(other_theme(&themes[..1], "t0", &mut rng), "t0");
        let mut population = Population::default();
        population.insert(live("a"));
        population.set_theme("p/a", "t1");
        assert_eq!(population.get("p/a").unwrap().theme, "t1");
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
        // A Website created at 1 s is mutated every 4 s: at 5 s and 9 s, within 10 s.
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
