//! What the observer's watches saw, turned into measurements (pure): reconciliation latencies
//! of the driver's writes, objects per shard, membership changes of the ring and the objects
//! they moved, and the observations a failover's recovery is read from.
//!
//! Objects are keyed by their hash key, `<group>/<Kind>/<namespace>/<name>`
//! (docs/contract.md#hash-keys), so that the objects of every workload share one map and a move
//! is judged against the ring by the key itself.
//!
//! The driver and the watch race: an object may be seen reconciled before the driver reports
//! the write that produced it. So the tracker remembers, per object, the highest generation
//! seen reconciled (or the latest value its readiness rule reads) and when it was first seen,
//! and an expectation that is already met ends at that time; likewise when the object was seen
//! deleted (docs/workloads.md#reconciled).
//!
//! Every write the driver was scheduled to make ends in one class of [`Accounting`]: the
//! driver reports the schedule and the writes that failed or were not made, the tracker sorts
//! the awaited ones into reconciled, abandoned and (at the end) pending.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;
use kube_sharding::{consistent_hash::Ring, leases::ShardState, strategy::Strategy};

use crate::{
    measure::{
        accounting::Accounting,
        elapsed,
        failover::{ObjectState, Observation},
        latency::LatencyRecorder,
        movement::{Change, Movement},
        unowned,
    },
    results::MembershipChange,
    workload::Awaited,
};

/// What a watch event showed of an object of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectView {
    /// Its hash key.
    pub key: String,
    /// Its shard label, if assigned.
    pub shard: Option<String>,
    /// What its readiness rule reads on the object itself.
    pub progress: Progress,
}

/// What an object shows of its reconciliation, by its workload's readiness rule
/// (docs/workloads.md#reconciled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The generation rule: the generation it is reconciled at (0: none) and its
    /// `metadata.generation`.
    Generation {
        /// `status.observedGeneration` when the rule's checks hold, else 0.
        reconciled: i64,
        /// `metadata.generation`.
        generation: i64,
    },
    /// A rule that reads a value on the object itself: the value now.
    Value(Option<String>),
    /// A rule that reads a related object: the object itself shows nothing.
    Related,
}

/// What the tracker knows of one object.
#[derive(Debug, Clone, Default)]
struct Seen {
    shard: Option<String>,
    /// Whether it is reconciled at its latest write: at its generation, or with no write
    /// outstanding (value rules).
    reconciled: bool,
    /// Whether its rule reads values rather than generations.
    by_value: bool,
    /// Whether a write of it was seen reconciled (value rules).
    completed_once: bool,
    /// The highest generation seen reconciled, and when it was first seen.
    ready: Option<(i64, Timestamp)>,
}

/// What a write awaits, as the tracker keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Awaiting {
    Generation(i64),
    /// The value `expected` on the object keyed `watched` (the object itself or a related one).
    Value {
        watched: String,
        expected: String,
    },
}

/// A write of the driver whose reconciliation is awaited.
#[derive(Debug, Clone)]
struct Expected {
    awaiting: Awaiting,
    /// The write's intended time; `None` for an initial object's create, awaited only to know
    /// when the object is reconciled, not measured.
    start: Option<Timestamp>,
}

/// An open membership change: the assignment before it and the ring after it, until the next
/// change or the end.
#[derive(Debug, Clone)]
struct OpenChange {
    at: Timestamp,
    change: Change,
    shards_before: usize,
    ring_after: BTreeSet<String>,
    before: BTreeMap<String, String>,
}

/// The measurements of one shard count's run, fed by the observer and the driver.
#[derive(Debug, Clone)]
pub struct Tracker {
    objects: HashMap<String, Seen>,
    pending: HashMap<String, Vec<Expected>>,
    /// The latest value each watched object showed, and since when.
    values: HashMap<String, (String, Timestamp)>,
    /// The object each related object (by its key) belongs to.
    owners: HashMap<String, String>,
    reconciliation: LatencyRecorder,
    observations: Vec<Observation>,
    leases: BTreeMap<String, ShardState>,
    lease_history: Vec<(Timestamp, String, ShardState)>,
    open_change: Option<OpenChange>,
    changes: Vec<MembershipChange>,
    /// Objects seen deleted, and when: a write reported later is abandoned then.
    deleted: HashMap<String, Timestamp>,
    accounting: Accounting,
    /// The latencies of each step of a capacity search by the step's start, for the writes
    /// intended from then on.
    steps: Vec<(Timestamp, LatencyRecorder)>,
    /// When a watch of the observer broke and started over.
    watch_restarts: Vec<Timestamp>,
    /// Every object's first label and its changes, deletes, and changes of a shard's
    /// availability by its Lease, for the ownership audit (docs/experiments.md#ownership).
    ownership: Vec<(Timestamp, unowned::Event)>,
    /// Each shard's availability by its Lease as last fed to `ownership`.
    held: BTreeMap<String, bool>,
    /// The ring's assignment strategy: what movement counts as unnecessary.
    strategy: Strategy,
}

/// Why a scheduled operation left no write to await.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoWrite {
    /// The API call failed, for this reason.
    Failed(String),
    /// It was due, but not issued by the end of the settle time.
    NotIssued,
    /// Nothing to do: no object to delete, the one to mutate was deleted, or the change left
    /// the object as it was.
    Skipped,
}

impl Tracker {
    /// An empty tracker recording latencies in windows of `window`.
    pub fn new(window: Duration) -> crate::measure::latency::Result<Self> {
        Ok(Self {
            objects: HashMap::new(),
            pending: HashMap::new(),
            values: HashMap::new(),
            owners: HashMap::new(),
            reconciliation: LatencyRecorder::new(window)?,
            observations: Vec::new(),
            leases: BTreeMap::new(),
            lease_history: Vec::new(),
            open_change: None,
            changes: Vec::new(),
            deleted: HashMap::new(),
            accounting: Accounting::default(),
            steps: Vec::new(),
            watch_restarts: Vec::new(),
            ownership: Vec::new(),
            held: BTreeMap::new(),
            strategy: Strategy::default(),
        })
    }

    /// The tracker of a ring under `strategy`, which decides what movement counts as
    /// unnecessary ([`Movement`]); hash-ring when not set.
    #[must_use]
    pub fn with_strategy(self, strategy: Strategy) -> Self {
        Self { strategy, ..self }
    }

    /// The schedule made `writes` creates and mutations and `deletes` deletes due.
    pub fn scheduled(&mut self, writes: u64, deletes: u64) {
        self.accounting.writes.scheduled += writes;
        self.accounting.deletes.scheduled += deletes;
    }

    /// A scheduled create or mutation left nothing to await.
    pub fn write_missed(&mut self, why: NoWrite) {
        let writes = &mut self.accounting.writes;
        match why {
            NoWrite::Failed(reason) => *writes.failed.entry(reason).or_default() += 1,
            NoWrite::NotIssued => writes.not_issued += 1,
            NoWrite::Skipped => writes.skipped += 1,
        }
    }

    /// A scheduled delete ended: `Ok` when the API server accepted it.
    pub fn delete_ended(&mut self, ended: Result<(), NoWrite>) {
        let deletes = &mut self.accounting.deletes;
        match ended {
            Ok(()) => deletes.deleted += 1,
            Err(NoWrite::Failed(reason)) => *deletes.failed.entry(reason).or_default() += 1,
            Err(NoWrite::NotIssued) => deletes.not_issued += 1,
            Err(NoWrite::Skipped) => deletes.skipped += 1,
        }
    }

    /// The driver wrote `key`, which awaits `awaited`; its latency counts from `start`, the
    /// write's intended time. Returns the latency if the watch already saw it reconciled.
    /// If the watch already saw the object deleted, the write is abandoned then.
    pub fn expect(&mut self, key: &str, awaited: Awaited, start: Timestamp) -> Option<Duration> {
        self.await_write(key, awaited, Some(start), start)
    }

    /// The driver created `key` before the load, reported at `at`: awaited only so that the
    /// object counts as reconciled once it is ([`Self::reconciled_objects`]), not measured nor
    /// accounted.
    pub fn expect_initial(&mut self, key: &str, awaited: Awaited, at: Timestamp) {
        self.await_write(key, awaited, None, at);
    }

    fn await_write(
        &mut self,
        key: &str,
        awaited: Awaited,
        start: Option<Timestamp>,
        reported: Timestamp,
    ) -> Option<Duration> {
        let before = self.state(key);
        let awaiting = match awaited {
            Awaited::Generation(generation) => Awaiting::Generation(generation),
            Awaited::Value { related, expected } => {
                let watched = related.unwrap_or_else(|| key.to_owned());
                if watched != key {
                    self.owners.insert(watched.clone(), key.to_owned());
                }
                Awaiting::Value { watched, expected }
            }
        };
        let met_at = match &awaiting {
            Awaiting::Generation(generation) => self
                .objects
                .get(key)
                .and_then(|seen| seen.ready)
                .filter(|(ready, _)| ready >= generation)
                .map(|(_, at)| at),
            Awaiting::Value { watched, expected } => self
                .values
                .get(watched)
                .filter(|(value, _)| value == expected)
                .map(|(_, at)| *at),
        };
        if let Some(at) = met_at {
            // Writes of the object awaited before this one are superseded by it.
            self.complete_pending(at, key, |_| true);
            let latency = start.map(|start| self.complete(start, at));
            if let Some(seen) = self.objects.get_mut(key) {
                seen.completed_once = true;
            }
            self.settle(at, key, before);
            latency
        } else if let Some(&deleted_at) = self.deleted.get(key) {
            if let Some(start) = start {
                self.abandon(start, deleted_at);
            }
            None
        } else {
            self.pending
                .entry(key.to_owned())
                .or_default()
                .push(Expected { awaiting, start });
            self.settle(reported, key, before);
            None
        }
    }

    /// Records a write intended at `start` reconciled at `at`; returns its latency.
    fn complete(&mut self, start: Timestamp, at: Timestamp) -> Duration {
        let latency = elapsed(start, at);
        self.record(start, latency);
        self.accounting.writes.reconciled += 1;
        latency
    }

    /// A watch showed `view` at `at`. Returns the latencies it completed.
    pub fn object(&mut self, at: Timestamp, view: ObjectView) -> Vec<Duration> {
        self.deleted.remove(&view.key);
        let before = self.state(&view.key);
        if before
            .as_ref()
            .is_none_or(|(shard, _)| *shard != view.shard)
        {
            self.ownership.push((
                at,
                unowned::Event::Label {
                    object: view.key.clone(),
                    shard: view.shard.clone(),
                },
            ));
        }
        let seen = self.objects.entry(view.key.clone()).or_default();
        seen.shard.clone_from(&view.shard);
        let completed = match view.progress {
            Progress::Generation {
                reconciled,
                generation,
            } => {
                seen.by_value = false;
                if seen.ready.is_none_or(|(g, _)| reconciled > g) && reconciled > 0 {
                    seen.ready = Some((reconciled, at));
                }
                seen.reconciled = reconciled > 0 && reconciled >= generation;
                self.complete_pending(
                    at,
                    &view.key,
                    |awaiting| matches!(awaiting, Awaiting::Generation(g) if *g <= reconciled),
                )
            }
            Progress::Value(value) => {
                seen.by_value = true;
                value.map_or_else(Vec::new, |value| self.new_value(at, &view.key, value))
            }
            Progress::Related => {
                seen.by_value = true;
                Vec::new()
            }
        };
        self.settle(at, &view.key, before);
        completed
    }

    /// A watch showed `value` on the object keyed `watched` at `at`: an object related to one
    /// of a workload (docs/workloads.md#reconciled), or the object itself. Returns the
    /// latencies it completed: of the latest write awaiting the value and of every write of
    /// the same object awaited before it, which it supersedes.
    pub fn value(&mut self, at: Timestamp, watched: &str, value: String) -> Vec<Duration> {
        let owner = self.owner_of(watched);
        let before = self.state(&owner);
        let completed = self.new_value(at, watched, value);
        self.settle(at, &owner, before);
        completed
    }

    /// The object of a workload that `watched` belongs to: itself unless it is a related
    /// object found by name.
    fn owner_of(&self, watched: &str) -> String {
        self.owners
            .get(watched)
            .cloned()
            .unwrap_or_else(|| watched.to_owned())
    }

    fn new_value(&mut self, at: Timestamp, watched: &str, value: String) -> Vec<Duration> {
        if self
            .values
            .get(watched)
            .is_some_and(|(seen, _)| *seen == value)
        {
            return Vec::new();
        }
        let owner = self.owner_of(watched);
        let latest = self.pending.get(&owner).and_then(|pending| {
            pending.iter().rposition(|expected| {
                matches!(&expected.awaiting,
                    Awaiting::Value { watched: w, expected } if w == watched && *expected == value)
            })
        });
        self.values.insert(watched.to_owned(), (value, at));
        let Some(latest) = latest else {
            return Vec::new();
        };
        let mut index = 0;
        self.complete_pending(at, &owner, |_| {
            index += 1;
            index <= latest + 1
        })
    }

    /// Completes at `at` the writes of `key` that `done` picks, in the order they were
    /// awaited; returns their latencies.
    fn complete_pending(
        &mut self,
        at: Timestamp,
        key: &str,
        mut done: impl FnMut(&Awaiting) -> bool,
    ) -> Vec<Duration> {
        let Some(pending) = self.pending.get_mut(key) else {
            return Vec::new();
        };
        let mut starts = Vec::new();
        let mut any = false;
        pending.retain(|expected| {
            if done(&expected.awaiting) {
                starts.extend(expected.start);
                any = true;
                false
            } else {
                true
            }
        });
        if pending.is_empty() {
            self.pending.remove(key);
        }
        if any && let Some(seen) = self.objects.get_mut(key) {
            seen.completed_once = true;
        }
        // At the write's intended start, so that a stall shows in the windows of the writes
        // it delayed rather than in the one window where they all complete.
        starts
            .into_iter()
            .map(|start| self.complete(start, at))
            .collect()
    }

    /// The shard and readiness of `key` as an observation records them.
    fn state(&self, key: &str) -> Option<(Option<String>, bool)> {
        self.objects
            .get(key)
            .map(|seen| (seen.shard.clone(), seen.reconciled))
    }

    /// Brings the readiness of a value-rule object up to date (reconciled when a write of it
    /// was and none is outstanding) and records an observation when its shard or readiness
    /// changed since `before`.
    fn settle(&mut self, at: Timestamp, key: &str, before: Option<(Option<String>, bool)>) {
        let outstanding = self.pending.contains_key(key);
        let Some(seen) = self.objects.get_mut(key) else {
            return;
        };
        if seen.by_value {
            seen.reconciled = seen.completed_once && !outstanding;
        }
        let now = (seen.shard.clone(), seen.reconciled);
        if before.unwrap_or_default() != now {
            self.observations.push(Observation {
                at,
                object: key.to_owned(),
                state: ObjectState::Present {
                    shard: now.0,
                    ready: now.1,
                },
            });
        }
    }

    /// A watch showed `key` deleted at `at`; writes still awaited are abandoned: recorded
    /// with their latency until `at`, a lower bound.
    pub fn object_deleted(&mut self, at: Timestamp, key: &str) {
        self.objects.remove(key);
        self.values.remove(key);
        self.owners.retain(|related, owner| {
            let keep = owner != key;
            if !keep {
                self.values.remove(related);
            }
            keep
        });
        self.deleted.insert(key.to_owned(), at);
        self.ownership.push((
            at,
            unowned::Event::Deleted {
                object: key.to_owned(),
            },
        ));
        for start in self
            .pending
            .remove(key)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|expected| expected.start)
        {
            self.abandon(start, at);
        }
        self.observations.push(Observation {
            at,
            object: key.to_owned(),
            state: ObjectState::Deleted,
        });
    }

    /// A write intended at `start` whose object was deleted at `deleted_at`: censored then,
    /// so that overload hidden behind deletes still weighs in the percentiles.
    fn abandon(&mut self, start: Timestamp, deleted_at: Timestamp) {
        self.record_censored(start, elapsed(start, deleted_at));
        self.accounting.writes.abandoned += 1;
    }

    /// Records the latency of a write intended at `start`, also in its step's.
    fn record(&mut self, start: Timestamp, latency: Duration) {
        self.reconciliation.record(start, latency);
        if let Some(step) = self.step_of(start) {
            step.record(start, latency);
        }
    }

    /// Records the lower bound of the latency of a write intended at `start`, also in its
    /// step's.
    fn record_censored(&mut self, start: Timestamp, latency: Duration) {
        self.reconciliation.record_censored(start, latency);
        if let Some(step) = self.step_of(start) {
            step.record_censored(start, latency);
        }
    }

    /// The recorder of the step under way at `start`.
    fn step_of(&mut self, start: Timestamp) -> Option<&mut LatencyRecorder> {
        self.steps
            .iter_mut()
            .rev()
            .find(|(begin, _)| *begin <= start)
            .map(|(_, recorder)| recorder)
    }

    /// A step of a capacity search begins at `at`: the latencies of writes intended from then
    /// on are also its own. Returns the step's index.
    pub fn begin_step(&mut self, at: Timestamp) -> crate::measure::latency::Result<usize> {
        let recorder = LatencyRecorder::new(self.reconciliation.window())?;
        self.steps.push((at, recorder));
        Ok(self.steps.len() - 1)
    }

    /// The writes of step `step` still awaiting their reconciliation: those intended from its
    /// start to the next step's.
    fn step_pending_starts(&self, step: usize) -> impl Iterator<Item = Timestamp> + '_ {
        let begin = self.steps.get(step).map(|(begin, _)| *begin);
        let end = self.steps.get(step + 1).map(|(next, _)| *next);
        self.pending
            .values()
            .flatten()
            .filter_map(|expected| expected.start)
            .filter(move |start| {
                begin.is_some_and(|begin| *start >= begin) && end.is_none_or(|end| *start < end)
            })
    }

    /// How many writes of step `step` still await their reconciliation.
    #[must_use]
    pub fn step_pending(&self, step: usize) -> usize {
        self.step_pending_starts(step).count()
    }

    /// The latencies of step `step` so far, with each of its writes still pending at `now`
    /// counted by its latency so far, a lower bound, so that what did not finish weighs in.
    #[must_use]
    pub fn step_latencies(&self, step: usize, now: Timestamp) -> Option<LatencyRecorder> {
        let mut latencies = self.steps.get(step)?.1.clone();
        for start in self.step_pending_starts(step) {
            latencies.record_censored(start, elapsed(start, now));
        }
        Some(latencies)
    }

    /// The objects seen reconciled at their latest write.
    #[must_use]
    pub fn reconciled_objects(&self) -> usize {
        self.objects.values().filter(|seen| seen.reconciled).count()
    }

    /// How the scheduled operations ended so far.
    #[must_use]
    pub fn accounting(&self) -> &Accounting {
        &self.accounting
    }

    /// A shard Lease's state label at `at` (`None`: deleted). With `initial` (the watch's
    /// first listing) it sets the state without counting a membership change.
    pub fn lease(&mut self, at: Timestamp, shard: &str, state: Option<ShardState>, initial: bool) {
        let state = state.unwrap_or(ShardState::Unknown);
        let before = self.leases.get(shard).copied().unwrap_or_default();
        if before == state {
            return;
        }
        let shards_before = self.available_shards().len();
        if state == ShardState::Unknown {
            self.leases.remove(shard);
        } else {
            self.leases.insert(shard.to_owned(), state);
        }
        self.lease_history.push((at, shard.to_owned(), state));
        if initial || before.is_available() == state.is_available() {
            return;
        }
        let change = if state.is_available() {
            Change::Join {
                shard: shard.to_owned(),
            }
        } else {
            Change::Leave {
                shard: shard.to_owned(),
            }
        };
        self.close_change();
        self.open_change = Some(OpenChange {
            at,
            change,
            shards_before,
            ring_after: self.available_shards(),
            before: self.assignment(),
        });
    }

    /// Whether `shard`'s Lease makes it available at `at` by the Lease itself
    /// (`docs/contract.md#lease-states`: held by the shard), whatever the sharder's state label
    /// says yet; a deleted Lease is not.
    pub fn lease_held(&mut self, at: Timestamp, shard: &str, available: bool) {
        if self.held.insert(shard.to_owned(), available) != Some(available) {
            self.ownership.push((
                at,
                unowned::Event::Lease {
                    shard: shard.to_owned(),
                    available,
                },
            ));
        }
    }

    /// The shards whose Lease is available now.
    #[must_use]
    pub fn available_shards(&self) -> BTreeSet<String> {
        self.leases
            .iter()
            .filter(|(_, state)| state.is_available())
            .map(|(shard, _)| shard.clone())
            .collect()
    }

    /// Objects per shard now: every available shard (0 if it has none) and every shard that
    /// a label names.
    #[must_use]
    pub fn objects_per_shard(&self) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<String, u64> = self
            .available_shards()
            .into_iter()
            .map(|shard| (shard, 0))
            .collect();
        for shard in self.objects.values().filter_map(|seen| seen.shard.as_ref()) {
            *counts.entry(shard.clone()).or_default() += 1;
        }
        counts
    }

    /// The objects per available shard now, for the skew.
    #[must_use]
    pub fn available_counts(&self) -> Vec<u64> {
        let counts = self.objects_per_shard();
        self.available_shards()
            .iter()
            .map(|shard| counts.get(shard).copied().unwrap_or(0))
            .collect()
    }

    /// Object (hash key) to shard, for the assigned objects.
    #[must_use]
    pub fn assignment(&self) -> BTreeMap<String, String> {
        self.objects
            .iter()
            .filter_map(|(key, seen)| Some((key.clone(), seen.shard.clone()?)))
            .collect()
    }

    /// Every object seen (hash key) with its shard, if assigned.
    #[must_use]
    pub fn shards(&self) -> BTreeMap<String, Option<String>> {
        self.objects
            .iter()
            .map(|(key, seen)| (key.clone(), seen.shard.clone()))
            .collect()
    }

    /// The objects assigned to `shard` now.
    #[must_use]
    pub fn objects_of(&self, shard: &str) -> BTreeSet<String> {
        self.objects
            .iter()
            .filter(|(_, seen)| seen.shard.as_deref() == Some(shard))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The keys starting with `prefix` of the objects seen or awaited and not seen deleted.
    #[must_use]
    pub fn known(&self, prefix: &str) -> BTreeSet<String> {
        self.objects
            .keys()
            .chain(self.pending.keys())
            .filter(|key| key.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// A watch listed its objects again at `at` after it broke: of the objects it knew
    /// (`known` when the listing began), those the listing did not show (`listed`) were
    /// deleted while the watch was down, when no event could tell.
    pub fn relisted(&mut self, at: Timestamp, known: &BTreeSet<String>, listed: &BTreeSet<String>) {
        for key in known.difference(listed) {
            self.object_deleted(at, key);
        }
    }

    /// Objects seen.
    #[must_use]
    pub fn objects(&self) -> usize {
        self.objects.len()
    }

    /// Writes still awaiting their reconciliation.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending
            .values()
            .flatten()
            .filter(|expected| expected.start.is_some())
            .count()
    }

    /// The first time at or after `after` that `shard`'s Lease was seen dead, orphaned or
    /// deleted.
    #[must_use]
    pub fn lease_dead_at(&self, shard: &str, after: Timestamp) -> Option<Timestamp> {
        self.lease_history
            .iter()
            .find(|(at, name, state)| {
                *at >= after && name == shard && !state.is_available() && *state <= ShardState::Dead
            })
            .map(|(at, _, _)| *at)
    }

    /// A watch of the observer broke at `at` and starts over: events until it has caught up are
    /// seen late (docs/experiments.md#validity).
    pub fn watch_restarted(&mut self, at: Timestamp) {
        self.watch_restarts.push(at);
    }

    /// The times a watch broke from `start` to `end`, both included.
    #[must_use]
    pub fn watch_restarts(&self, start: Timestamp, end: Timestamp) -> u64 {
        crate::measure::count_within(&self.watch_restarts, start, end)
    }

    /// Ends the run at `at`: closes the open membership change with the assignment now and
    /// returns the measurements. A write still not reconciled is pending: recorded with its
    /// latency so far, a lower bound, so that what never finished is not left out of the
    /// percentiles.
    #[must_use]
    pub fn finish(mut self, at: Timestamp) -> Finished {
        self.close_change();
        self.accounting.writes.pending = self.pending() as u64;
        let pending: Vec<Timestamp> = self
            .pending
            .values()
            .flatten()
            .filter_map(|expected| expected.start)
            .collect();
        for start in pending {
            self.record_censored(start, elapsed(start, at));
        }
        let mut pending: Vec<String> = self.pending.keys().cloned().collect();
        pending.sort();
        Finished {
            pending,
            reconciliation: self.reconciliation,
            observations: self.observations,
            changes: self.changes,
            accounting: self.accounting,
            ownership: self.ownership,
        }
    }

    fn close_change(&mut self) {
        if let Some(open) = self.open_change.take() {
            let after = self.assignment();
            let movement = if self.strategy == Strategy::HashRing {
                // The sharder's ring: its available shards (docs/contract.md#hash-ring).
                let ring = Ring::with_nodes(&open.ring_after);
                Movement::of(
                    &open.before,
                    &after,
                    |object| ring.hash(object).map(str::to_owned),
                    &open.change,
                    open.shards_before,
                )
            } else {
                Movement::among_available(
                    &open.before,
                    &after,
                    &open.ring_after,
                    &open.change,
                    open.shards_before,
                )
            };
            self.changes.push(MembershipChange {
                at: open.at,
                change: open.change,
                movement,
                killed: None,
                during_failover: None,
            });
        }
    }
}

/// The measurements of a tracker at the end of a run.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Reconciliation latencies.
    pub reconciliation: LatencyRecorder,
    /// Every change of an object's shard or readiness, and its deletion.
    pub observations: Vec<Observation>,
    /// Every membership change and the objects it moved by the next change or the end.
    pub changes: Vec<MembershipChange>,
    /// How every scheduled operation ended.
    pub accounting: Accounting,
    /// What the ownership audit reads: label changes, deletes and Lease availability.
    pub ownership: Vec<(Timestamp, unowned::Event)>,
    /// The objects with writes still awaiting their reconciliation at the end, sorted.
    pub pending: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn tracker() -> Tracker {
        Tracker::new(Duration::from_secs(10)).unwrap()
    }

    fn view(key: &str, shard: Option<&str>, generation: i64, ready: Option<i64>) -> ObjectView {
        ObjectView {
            key: key.to_owned(),
            shard: shard.map(str::to_owned),
            progress: Progress::Generation {
                reconciled: ready.unwrap_or(0),
                generation,
            },
        }
    }

    fn generation(generation: i64) -> Awaited {
        Awaited::Generation(generation)
    }

    #[test]
    fn watch_restarts_are_counted_within_a_measurement() {
        let mut tracker = tracker();
        for seconds in [5, 10, 20, 31] {
            tracker.watch_restarted(at(seconds));
        }
        assert_eq!(tracker.watch_restarts(at(10), at(30)), 2);
        assert_eq!(tracker.watch_restarts(at(0), at(100)), 4);
        assert_eq!(tracker.watch_restarts(at(32), at(100)), 0);
    }

    #[test]
    fn a_write_is_reconciled_when_the_watch_sees_its_generation_ready() {
        let mut tracker = tracker();
        assert_eq!(tracker.expect("p/a", generation(1), at(100)), None);
        assert!(
            tracker
                .object(at(101), view("p/a", Some("s0"), 1, None))
                .is_empty()
        );
        assert_eq!(
            tracker.object(at(103), view("p/a", Some("s0"), 1, Some(1))),
            [Duration::from_secs(3)]
        );
        assert_eq!(tracker.pending(), 0);
        assert_eq!(tracker.finish(at(1000)).reconciliation.summary().count, 1);
    }

    #[test]
    fn latencies_fall_in_the_windows_of_their_writes_intended_starts() {
        let mut tracker = tracker();
        // Two writes 20 s apart, stalled until one moment: two windows, not one.
        tracker.expect("p/a", generation(1), at(100));
        tracker.expect("p/b", generation(1), at(120));
        tracker.object(at(135), view("p/a", Some("s0"), 1, Some(1)));
        tracker.object(at(135), view("p/b", Some("s0"), 1, Some(1)));
        tracker.expect("p/c", generation(1), at(140));
        let finished = tracker.finish(at(150));
        let windows: Vec<_> = finished
            .reconciliation
            .windows()
            .iter()
            .map(|w| (w.start, w.count))
            .collect();
        assert_eq!(windows, [(at(100), 1), (at(120), 1), (at(140), 1)]);
    }

    #[test]
    fn a_write_seen_ready_before_the_driver_reported_it_ends_when_it_was_seen() {
        let mut tracker = tracker();
        tracker.object(at(102), view("p/a", Some("s0"), 2, Some(2)));
        assert_eq!(
            tracker.expect("p/a", generation(2), at(100)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(tracker.pending(), 0);
    }

    #[test]
    fn an_older_generation_ready_does_not_complete_a_newer_write() {
        let mut tracker = tracker();
        tracker.object(at(100), view("p/a", Some("s0"), 1, Some(1)));
        assert_eq!(tracker.expect("p/a", generation(2), at(101)), None);
        assert!(
            tracker
                .object(at(102), view("p/a", Some("s0"), 2, Some(1)))
                .is_empty()
        );
        // A generation whose checks fail (an Error phase) does not count.
        assert!(
            tracker
                .object(at(103), view("p/a", Some("s0"), 2, None))
                .is_empty()
        );
        assert_eq!(
            tracker.object(at(105), view("p/a", Some("s0"), 2, Some(2))),
            [Duration::from_secs(4)]
        );
    }

    #[test]
    fn one_ready_generation_completes_every_write_up_to_it() {
        let mut tracker = tracker();
        tracker.expect("p/a", generation(1), at(100));
        tracker.expect("p/a", generation(2), at(101));
        tracker.expect("p/a", generation(3), at(102));
        let completed = tracker.object(at(104), view("p/a", Some("s0"), 3, Some(2)));
        assert_eq!(completed, [Duration::from_secs(4), Duration::from_secs(3)]);
        assert_eq!(tracker.pending(), 1);
        let finished = tracker.finish(at(110));
        assert_eq!(finished.accounting.writes.pending, 1);
        let summary = finished.reconciliation.summary();
        assert_eq!((summary.count, summary.censored), (3, 1));
        assert!(summary.max_ms >= 8000.0 && summary.max_lower_bound);
    }

    #[test]
    fn a_write_abandoned_by_a_delete_is_counted_and_censored_at_the_delete() {
        // Two writes reconciled in 1 s, one whose Website is deleted 30 s after its intended
        // time. The old tracker dropped it: 2 latencies, p99 1 s. It is one of 3 latencies,
        // 30 s so far, and the p99 is "≥ 30 s".
        let mut tracker = tracker();
        tracker.expect("p/a", generation(1), at(100));
        tracker.expect("p/b", generation(1), at(100));
        tracker.expect("p/c", generation(1), at(100));
        tracker.object(at(101), view("p/a", Some("s0"), 1, Some(1)));
        tracker.object(at(101), view("p/b", Some("s0"), 1, Some(1)));
        tracker.object_deleted(at(130), "p/c");
        let finished = tracker.finish(at(1000));
        let writes = &finished.accounting.writes;
        assert_eq!(
            (writes.reconciled, writes.abandoned, writes.pending),
            (2, 1, 0)
        );
        let summary = finished.reconciliation.summary();
        assert_eq!((summary.count, summary.censored), (3, 1));
        assert!((summary.p99_ms - 30_000.0).abs() < 30.0, "{summary:?}");
        assert!(summary.p99_lower_bound);
        assert!(!summary.p50_lower_bound);
        assert_eq!(
            finished.observations.last().unwrap().state,
            ObjectState::Deleted
        );
    }

    #[test]
    fn objects_a_listing_after_a_broken_watch_no_longer_shows_were_deleted() {
        // p/a was seen and p/b awaited when the watch broke; both were deleted meanwhile, and
        // the listing shows only p/c. p/d, created after the listing began, is left alone.
        let mut tracker = tracker();
        tracker.expect("p/a", generation(1), at(100));
        tracker.object(at(101), view("p/a", Some("s0"), 1, Some(1)));
        tracker.expect("p/a", generation(2), at(110));
        tracker.expect("p/b", generation(1), at(110));
        tracker.expect("p/c", generation(1), at(110));
        tracker.object(at(111), view("p/c", Some("s0"), 1, Some(1)));
        let known = tracker.known("p/");
        assert_eq!(known, ["p/a", "p/b", "p/c"].map(String::from).into());
        assert!(tracker.known("q/").is_empty());
        tracker.expect("p/d", generation(1), at(120));
        tracker.relisted(at(125), &known, &["p/c".to_owned()].into());
        let finished = tracker.finish(at(1000));
        let writes = &finished.accounting.writes;
        assert_eq!(
            (writes.reconciled, writes.abandoned, writes.pending),
            (2, 2, 1)
        );
        assert_eq!(finished.pending, ["p/d"]);
    }

    #[test]
    fn a_write_reported_after_its_website_was_seen_deleted_is_abandoned_then() {
        let mut tracker = tracker();
        tracker.object(at(101), view("p/a", Some("s0"), 1, None));
        tracker.object_deleted(at(105), "p/a");
        assert_eq!(tracker.expect("p/a", generation(2), at(100)), None);
        assert_eq!(tracker.pending(), 0);
        let finished = tracker.finish(at(1000));
        assert_eq!(finished.accounting.writes.abandoned, 1);
        let summary = finished.reconciliation.summary();
        assert!((summary.max_ms - 5000.0).abs() < 5.0, "{summary:?}");
    }

    #[test]
    fn every_scheduled_operation_ends_in_one_class() {
        let mut tracker = tracker();
        tracker.scheduled(7, 3);
        tracker.expect("p/a", generation(1), at(100));
        tracker.expect("p/b", generation(1), at(100));
        tracker.expect("p/c", generation(1), at(100));
        tracker.object(at(102), view("p/a", Some("s0"), 1, Some(1)));
        tracker.object_deleted(at(103), "p/b");
        tracker.write_missed(NoWrite::Failed("409 AlreadyExists".to_owned()));
        tracker.write_missed(NoWrite::Failed("409 AlreadyExists".to_owned()));
        tracker.write_missed(NoWrite::NotIssued);
        tracker.write_missed(NoWrite::Skipped);
        tracker.delete_ended(Ok(()));
        tracker.delete_ended(Err(NoWrite::Failed("timeout".to_owned())));
        tracker.delete_ended(Err(NoWrite::Skipped));
        let finished = tracker.finish(at(200));
        let accounting = &finished.accounting;
        assert_eq!(accounting.check(), Ok(()));
        let writes = &accounting.writes;
        assert_eq!(
            (writes.reconciled, writes.pending, writes.abandoned),
            (1, 1, 1)
        );
        assert_eq!(writes.failed["409 AlreadyExists"], 2);
        assert_eq!((writes.not_issued, writes.skipped), (1, 1));
        assert_eq!(accounting.deletes.failed["timeout"], 1);
        // Every awaited write is in the histogram, censored or not.
        assert_eq!(finished.reconciliation.summary().count, 3);
        assert_eq!(finished.reconciliation.censored(), writes.censored());
    }

    #[test]
    fn objects_are_counted_per_shard_with_empty_available_shards() {
        let mut tracker = tracker();
        for shard in ["s0", "s1", "s2"] {
            tracker.lease(at(0), shard, Some(ShardState::Ready), true);
        }
        tracker.object(at(1), view("p/a", Some("s0"), 1, None));
        tracker.object(at(1), view("p/b", Some("s0"), 1, None));
        tracker.object(at(1), view("p/c", Some("s1"), 1, None));
        tracker.object(at(1), view("p/d", None, 1, None));
        assert_eq!(
            tracker.objects_per_shard(),
            BTreeMap::from([("s0".into(), 2), ("s1".into(), 1), ("s2".into(), 0)])
        );
        assert_eq!(tracker.available_counts(), [2, 1, 0]);
        assert_eq!(tracker.assignment().len(), 3);
        assert_eq!(tracker.objects_of("s0").len(), 2);
    }

    #[test]
    fn a_membership_change_measures_the_objects_moved_until_the_next_change() {
        let mut tracker = tracker();
        tracker.lease(at(0), "s0", Some(ShardState::Ready), true);
        tracker.lease(at(0), "s1", Some(ShardState::Ready), true);
        tracker.object(at(1), view("p/a", Some("s0"), 1, None));
        tracker.object(at(1), view("p/b", Some("s1"), 1, None));
        // Expiring keeps a shard available: no change.
        tracker.lease(at(2), "s1", Some(ShardState::Expired), false);
        tracker.lease(at(3), "s1", Some(ShardState::Dead), false);
        tracker.object(at(4), view("p/b", Some("s0"), 1, None));
        tracker.lease(at(5), "s2", Some(ShardState::Ready), false);
        tracker.object(at(6), view("p/a", Some("s2"), 1, None));
        let changes = tracker.finish(at(1000)).changes;
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].at, at(3));
        assert_eq!(changes[0].change, Change::Leave { shard: "s1".into() });
        assert_eq!(changes[0].movement.moved, 1);
        assert_eq!(changes[0].movement.unnecessary, 0);
        assert_eq!(changes[1].change, Change::Join { shard: "s2".into() });
        assert_eq!(changes[1].movement.moved, 1);
    }

    #[test]
    fn moves_are_judged_against_the_sharders_ring_after_the_change() {
        let owner = |shards: &[&str], object: &str| {
            Ring::with_nodes(shards.iter().copied())
                .hash(object)
                .unwrap()
                .to_owned()
        };
        let objects: Vec<String> = (0..40)
            .map(|i| format!("g/Website/project-0{}/w{i}", i % 3))
            .collect();
        let mut tracker = tracker();
        for shard in ["s0", "s1", "s2"] {
            tracker.lease(at(0), shard, Some(ShardState::Ready), true);
        }
        for object in &objects {
            let shard = owner(&["s0", "s1", "s2"], object);
            tracker.object(at(1), view(object, Some(&shard), 1, None));
        }
        // s1 leaves gracefully; the sharder moves its objects to their owners on {s0, s2}, and
        // one object of s0 to s2 besides.
        tracker.lease(at(2), "s1", Some(ShardState::Dead), false);
        let on_s1: Vec<&String> = objects
            .iter()
            .filter(|o| owner(&["s0", "s1", "s2"], o) == "s1")
            .collect();
        for object in &on_s1 {
            let shard = owner(&["s0", "s2"], object);
            tracker.object(at(3), view(object, Some(&shard), 1, None));
        }
        let extra = objects
            .iter()
            .find(|o| owner(&["s0", "s1", "s2"], o) == "s0")
            .unwrap();
        tracker.object(at(3), view(extra, Some("s2"), 1, None));
        let changes = tracker.finish(at(10)).changes;
        let movement = &changes[0].movement;
        assert!(!on_s1.is_empty());
        assert_eq!(movement.required, on_s1.len());
        assert_eq!(movement.moved, on_s1.len() + 1);
        assert_eq!((movement.unnecessary, movement.outstanding), (1, 0));
    }

    #[test]
    fn the_lease_is_dead_when_first_seen_dead_orphaned_or_deleted_after_the_kill() {
        let mut tracker = tracker();
        tracker.lease(at(0), "s0", Some(ShardState::Ready), true);
        tracker.lease(at(5), "s0", Some(ShardState::Expired), false);
        tracker.lease(at(9), "s0", Some(ShardState::Dead), false);
        assert_eq!(tracker.lease_dead_at("s0", at(1)), Some(at(9)));
        assert_eq!(tracker.lease_dead_at("s0", at(10)), None);
        tracker.lease(at(70), "s0", None, false);
        assert_eq!(tracker.lease_dead_at("s0", at(10)), Some(at(70)));
    }

    #[test]
    fn the_ownership_events_are_first_labels_label_changes_deletes_and_lease_changes() {
        let mut tracker = tracker();
        tracker.lease_held(at(0), "s0", true);
        tracker.lease_held(at(1), "s0", true);
        tracker.object(at(2), view("p/a", None, 1, None));
        tracker.object(at(3), view("p/a", Some("s0"), 1, None));
        tracker.object(at(4), view("p/a", Some("s0"), 1, Some(1)));
        tracker.lease_held(at(5), "s0", false);
        tracker.object_deleted(at(6), "p/a");
        let events = tracker.finish(at(10)).ownership;
        let lease = |available| unowned::Event::Lease {
            shard: "s0".into(),
            available,
        };
        let label = |shard: Option<&str>| unowned::Event::Label {
            object: "p/a".into(),
            shard: shard.map(str::to_owned),
        };
        assert_eq!(
            events,
            [
                (at(0), lease(true)),
                (at(2), label(None)),
                (at(3), label(Some("s0"))),
                (at(5), lease(false)),
                (
                    at(6),
                    unowned::Event::Deleted {
                        object: "p/a".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn observations_record_changes_of_shard_and_readiness_only() {
        let mut tracker = tracker();
        tracker.object(at(1), view("p/a", None, 1, None));
        tracker.object(at(2), view("p/a", Some("s0"), 1, None));
        tracker.object(at(3), view("p/a", Some("s0"), 1, None));
        tracker.object(at(4), view("p/a", Some("s0"), 1, Some(1)));
        assert_eq!(tracker.finish(at(1000)).observations.len(), 2);
    }

    fn value(expected: &str, related: Option<&str>) -> Awaited {
        Awaited::Value {
            related: related.map(str::to_owned),
            expected: expected.to_owned(),
        }
    }

    fn related(key: &str, shard: Option<&str>) -> ObjectView {
        ObjectView {
            key: key.to_owned(),
            shard: shard.map(str::to_owned),
            progress: Progress::Related,
        }
    }

    #[test]
    fn a_write_is_reconciled_when_its_related_object_shows_the_expected_value() {
        let mut tracker = tracker();
        tracker.object(at(100), related("/Secret/p/a", Some("s0")));
        assert_eq!(
            tracker.expect(
                "/Secret/p/a",
                value("h1", Some("/ConfigMap/p/a-c")),
                at(100)
            ),
            None
        );
        // Another value (say, of an earlier write) completes nothing.
        assert!(
            tracker
                .value(at(101), "/ConfigMap/p/a-c", "h0".into())
                .is_empty()
        );
        assert_eq!(tracker.reconciled_objects(), 0);
        assert_eq!(
            tracker.value(at(103), "/ConfigMap/p/a-c", "h1".into()),
            [Duration::from_secs(3)]
        );
        assert_eq!((tracker.pending(), tracker.reconciled_objects()), (0, 1));
    }

    #[test]
    fn a_related_value_seen_before_the_driver_reported_the_write_ends_when_it_was_seen() {
        let mut tracker = tracker();
        tracker.object(at(100), related("/Secret/p/a", Some("s0")));
        tracker.value(at(102), "/ConfigMap/p/a-c", "h1".into());
        assert_eq!(
            tracker.expect(
                "/Secret/p/a",
                value("h1", Some("/ConfigMap/p/a-c")),
                at(100)
            ),
            Some(Duration::from_secs(2))
        );
        assert_eq!((tracker.pending(), tracker.reconciled_objects()), (0, 1));
    }

    #[test]
    fn a_later_writes_value_supersedes_the_writes_before_it() {
        // Three writes of one object; the controller catches up with the third at once: the
        // first two are reconciled then too, a level-triggered controller's reading.
        let mut tracker = tracker();
        tracker.object(
            at(100),
            ObjectView {
                key: "/Secret/p/a".into(),
                shard: Some("s0".into()),
                progress: Progress::Value(None),
            },
        );
        for (i, expected) in ["h1", "h2", "h3"].into_iter().enumerate() {
            tracker.expect(
                "/Secret/p/a",
                value(expected, None),
                at(100 + i64::try_from(i).unwrap()),
            );
        }
        let completed = tracker.object(
            at(110),
            ObjectView {
                key: "/Secret/p/a".into(),
                shard: Some("s0".into()),
                progress: Progress::Value(Some("h2".into())),
            },
        );
        assert_eq!(completed, [Duration::from_secs(10), Duration::from_secs(9)]);
        assert_eq!(tracker.pending(), 1);
        assert_eq!(tracker.reconciled_objects(), 0);
    }

    #[test]
    fn a_value_rule_object_is_observed_ready_only_once_a_write_of_it_was_reconciled() {
        let mut tracker = tracker();
        tracker.object(at(100), related("/Secret/p/a", None));
        tracker.object(at(101), related("/Secret/p/a", Some("s0")));
        tracker.expect(
            "/Secret/p/a",
            value("h1", Some("/ConfigMap/p/a-c")),
            at(100),
        );
        tracker.value(at(102), "/ConfigMap/p/a-c", "h1".into());
        tracker.expect(
            "/Secret/p/a",
            value("h2", Some("/ConfigMap/p/a-c")),
            at(103),
        );
        tracker.value(at(104), "/ConfigMap/p/a-c", "h2".into());
        tracker.object_deleted(at(105), "/Secret/p/a");
        let states: Vec<_> = tracker
            .finish(at(200))
            .observations
            .into_iter()
            .map(|o| (o.at, o.state))
            .collect();
        let present = |shard: &str, ready| ObjectState::Present {
            shard: Some(shard.to_owned()),
            ready,
        };
        assert_eq!(
            states,
            [
                (at(101), present("s0", false)),
                (at(102), present("s0", true)),
                (at(103), present("s0", false)),
                (at(104), present("s0", true)),
                (at(105), ObjectState::Deleted),
            ]
        );
    }

    #[test]
    fn an_initial_object_is_awaited_for_its_readiness_but_not_measured() {
        let mut tracker = tracker();
        tracker.object(at(100), related("/Secret/p/a", Some("s0")));
        tracker.expect_initial(
            "/Secret/p/a",
            value("h1", Some("/ConfigMap/p/a-c")),
            at(100),
        );
        assert_eq!((tracker.pending(), tracker.reconciled_objects()), (0, 0));
        assert!(
            tracker
                .value(at(103), "/ConfigMap/p/a-c", "h1".into())
                .is_empty()
        );
        assert_eq!(tracker.reconciled_objects(), 1);
        // One never reconciled is neither pending nor censored at the end.
        tracker.object(at(104), related("/Secret/p/b", Some("s0")));
        tracker.expect_initial(
            "/Secret/p/b",
            value("h2", Some("/ConfigMap/p/b-c")),
            at(104),
        );
        let finished = tracker.finish(at(200));
        assert_eq!(finished.accounting.writes.pending, 0);
        assert_eq!(finished.reconciliation.summary().count, 0);
    }
}
