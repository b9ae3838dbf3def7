//! What the observer's watches saw, turned into measurements (pure): reconciliation latencies
//! of the driver's writes, objects per shard, membership changes of the ring and the objects
//! they moved, and the observations a failover's recovery is read from.
//!
//! The driver and the watch race: a Website may be seen Ready for a generation before the
//! driver reports the write that produced it. So the tracker remembers, per Website, the
//! highest generation seen Ready and when it was first seen, and an expectation that is
//! already met ends at that time; likewise when the Website was seen deleted.
//!
//! Every write the driver was scheduled to make ends in one class of [`Accounting`]: the
//! driver reports the schedule and the writes that failed or were not made, the tracker sorts
//! the awaited ones into reconciled, abandoned and (at the end) pending.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::ObjectMeta, jiff::Timestamp};
use kube::{Resource as _, core::TypeMeta};
use sharding::{consistent_hash::Ring, key, leases::ShardState};
use webhosting_operator::api::Website;

use crate::{
    measure::{
        accounting::Accounting,
        elapsed,
        failover::{ObjectState, Observation},
        latency::LatencyRecorder,
        movement::{Change, Movement},
    },
    results::MembershipChange,
};

/// A Website as a watch event showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsiteView {
    /// `namespace/name`.
    pub key: String,
    /// Its shard label, if assigned.
    pub shard: Option<String>,
    /// Whether `status.phase` is Ready.
    pub phase_ready: bool,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `metadata.generation`.
    pub generation: i64,
}

/// What the tracker knows of one Website.
#[derive(Debug, Clone, Default)]
struct Seen {
    shard: Option<String>,
    ready_for_generation: bool,
    /// The highest observed generation seen with phase Ready, and when it was first seen.
    ready: Option<(i64, Timestamp)>,
}

/// A write of the driver whose reconciliation is awaited.
#[derive(Debug, Clone, Copy)]
struct Expected {
    generation: i64,
    start: Timestamp,
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
    websites: HashMap<String, Seen>,
    pending: HashMap<String, Vec<Expected>>,
    reconciliation: LatencyRecorder,
    observations: Vec<Observation>,
    leases: BTreeMap<String, ShardState>,
    lease_history: Vec<(Timestamp, String, ShardState)>,
    open_change: Option<OpenChange>,
    changes: Vec<MembershipChange>,
    /// Websites seen deleted, and when: a write reported later is abandoned then.
    deleted: HashMap<String, Timestamp>,
    accounting: Accounting,
    /// The latencies of each step of a capacity search by the step's start, for the writes
    /// intended from then on.
    steps: Vec<(Timestamp, LatencyRecorder)>,
    /// When a watch of the observer broke and started over.
    watch_restarts: Vec<Timestamp>,
}

/// Why a scheduled operation left no write to await.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoWrite {
    /// The API call failed, for this reason.
    Failed(String),
    /// It was due, but not issued by the end of the settle time.
    NotIssued,
    /// Nothing to do: no Website to delete, or the one to mutate was deleted.
    Skipped,
}

impl Tracker {
    /// An empty tracker recording latencies in windows of `window`.
    pub fn new(window: Duration) -> crate::measure::latency::Result<Self> {
        Ok(Self {
            websites: HashMap::new(),
            pending: HashMap::new(),
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
        })
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

    /// The driver wrote `key`, producing `generation`; its latency counts from `start`, the
    /// write's intended time. Returns the latency if the watch already saw it reconciled.
    /// If the watch already saw the Website deleted, the write is abandoned then.
    pub fn expect(&mut self, key: &str, generation: i64, start: Timestamp) -> Option<Duration> {
        let seen = self.websites.get(key).and_then(|seen| seen.ready);
        if let Some((ready_generation, at)) = seen
            && ready_generation >= generation
        {
            let latency = elapsed(start, at);
            self.record(start, latency);
            self.accounting.writes.reconciled += 1;
            return Some(latency);
        }
        if let Some(&deleted_at) = self.deleted.get(key) {
            self.abandon(start, deleted_at);
            return None;
        }
        self.pending
            .entry(key.to_owned())
            .or_default()
            .push(Expected { generation, start });
        None
    }

    /// A watch showed `view` at `at`. Returns the latencies it completed.
    pub fn website(&mut self, at: Timestamp, view: WebsiteView) -> Vec<Duration> {
        let ready_generation = view
            .observed_generation
            .filter(|_| view.phase_ready)
            .unwrap_or(0);
        let ready_for_generation = view.phase_ready && ready_generation >= view.generation;
        self.deleted.remove(&view.key);
        let seen = self.websites.entry(view.key.clone()).or_default();
        if seen.ready.is_none_or(|(g, _)| ready_generation > g) && ready_generation > 0 {
            seen.ready = Some((ready_generation, at));
        }
        if seen.shard != view.shard || seen.ready_for_generation != ready_for_generation {
            seen.shard.clone_from(&view.shard);
            seen.ready_for_generation = ready_for_generation;
            self.observations.push(Observation {
                at,
                object: view.key.clone(),
                state: ObjectState::Present {
                    shard: view.shard,
                    ready: ready_for_generation,
                },
            });
        }
        let mut completed = Vec::new();
        if let Some(pending) = self.pending.get_mut(&view.key) {
            pending.retain(|expected| {
                if expected.generation <= ready_generation {
                    completed.push((expected.start, elapsed(expected.start, at)));
                    false
                } else {
                    true
                }
            });
            if pending.is_empty() {
                self.pending.remove(&view.key);
            }
        }
        // At the write's intended start, so that a stall shows in the windows of the writes
        // it delayed rather than in the one window where they all complete.
        for (start, latency) in &completed {
            self.record(*start, *latency);
        }
        self.accounting.writes.reconciled += completed.len() as u64;
        completed.into_iter().map(|(_, latency)| latency).collect()
    }

    /// A watch showed `key` deleted at `at`; writes still awaited are abandoned: recorded
    /// with their latency until `at`, a lower bound.
    pub fn website_deleted(&mut self, at: Timestamp, key: &str) {
        self.websites.remove(key);
        self.deleted.insert(key.to_owned(), at);
        for expected in self.pending.remove(key).unwrap_or_default() {
            self.abandon(expected.start, at);
        }
        self.observations.push(Observation {
            at,
            object: key.to_owned(),
            state: ObjectState::Deleted,
        });
    }

    /// A write intended at `start` whose Website was deleted at `deleted_at`: censored then,
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
            .map(|expected| expected.start)
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

    /// The Websites seen Ready for their latest generation.
    #[must_use]
    pub fn ready_websites(&self) -> usize {
        self.websites
            .values()
            .filter(|seen| seen.ready_for_generation)
            .count()
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
        for shard in self
            .websites
            .values()
            .filter_map(|seen| seen.shard.as_ref())
        {
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

    /// Object (`namespace/name`) to shard, for the assigned objects.
    #[must_use]
    pub fn assignment(&self) -> BTreeMap<String, String> {
        self.websites
            .iter()
            .filter_map(|(key, seen)| Some((key.clone(), seen.shard.clone()?)))
            .collect()
    }

    /// The objects assigned to `shard` now.
    #[must_use]
    pub fn objects_of(&self, shard: &str) -> BTreeSet<String> {
        self.websites
            .iter()
            .filter(|(_, seen)| seen.shard.as_deref() == Some(shard))
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Websites seen.
    #[must_use]
    pub fn websites(&self) -> usize {
        self.websites.len()
    }

    /// Writes still awaiting their reconciliation.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
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
            .map(|expected| expected.start)
            .collect();
        for start in pending {
            self.record_censored(start, elapsed(start, at));
        }
        Finished {
            reconciliation: self.reconciliation,
            observations: self.observations,
            changes: self.changes,
            accounting: self.accounting,
        }
    }

    fn close_change(&mut self) {
        if let Some(open) = self.open_change.take() {
            // The sharder's ring: its available shards (docs/contract.md#hash-ring).
            let ring = Ring::with_nodes(&open.ring_after);
            let movement = Movement::of(
                &open.before,
                &self.assignment(),
                |object| ring.hash(&hash_key(object)?).map(str::to_owned),
                &open.change,
                open.shards_before,
            );
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

/// The hash key of the Website `namespace/name` (docs/contract.md#hash-keys).
fn hash_key(object: &str) -> Option<String> {
    let (namespace, name) = object.split_once('/')?;
    let types = TypeMeta {
        api_version: Website::api_version(&()).into_owned(),
        kind: Website::kind(&()).into_owned(),
    };
    let meta = ObjectMeta {
        namespace: Some(namespace.to_owned()),
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    };
    key::for_object(Some(&types), &meta).ok()
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

    fn view(key: &str, shard: Option<&str>, generation: i64, ready: Option<i64>) -> WebsiteView {
        WebsiteView {
            key: key.to_owned(),
            shard: shard.map(str::to_owned),
            phase_ready: ready.is_some(),
            observed_generation: ready,
            generation,
        }
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
        assert_eq!(tracker.expect("p/a", 1, at(100)), None);
        assert!(
            tracker
                .website(at(101), view("p/a", Some("s0"), 1, None))
                .is_empty()
        );
        assert_eq!(
            tracker.website(at(103), view("p/a", Some("s0"), 1, Some(1))),
            [Duration::from_secs(3)]
        );
        assert_eq!(tracker.pending(), 0);
        assert_eq!(tracker.finish(at(1000)).reconciliation.summary().count, 1);
    }

    #[test]
    fn latencies_fall_in_the_windows_of_their_writes_intended_starts() {
        let mut tracker = tracker();
        // Two writes 20 s apart, stalled until one moment: two windows, not one.
        tracker.expect("p/a", 1, at(100));
        tracker.expect("p/b", 1, at(120));
        tracker.website(at(135), view("p/a", Some("s0"), 1, Some(1)));
        tracker.website(at(135), view("p/b", Some("s0"), 1, Some(1)));
        tracker.expect("p/c", 1, at(140));
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
        tracker.website(at(102), view("p/a", Some("s0"), 2, Some(2)));
        assert_eq!(
            tracker.expect("p/a", 2, at(100)),
            Some(Duration::from_secs(2))
        );
        assert_eq!(tracker.pending(), 0);
    }

    #[test]
    fn an_older_generation_ready_does_not_complete_a_newer_write() {
        let mut tracker = tracker();
        tracker.website(at(100), view("p/a", Some("s0"), 1, Some(1)));
        assert_eq!(tracker.expect("p/a", 2, at(101)), None);
        assert!(
            tracker
                .website(at(102), view("p/a", Some("s0"), 2, Some(1)))
                .is_empty()
        );
        // Ready in another phase does not count: an Error phase with the new generation.
        let mut error = view("p/a", Some("s0"), 2, None);
        error.observed_generation = Some(2);
        assert!(tracker.website(at(103), error).is_empty());
        assert_eq!(
            tracker.website(at(105), view("p/a", Some("s0"), 2, Some(2))),
            [Duration::from_secs(4)]
        );
    }

    #[test]
    fn one_ready_generation_completes_every_write_up_to_it() {
        let mut tracker = tracker();
        tracker.expect("p/a", 1, at(100));
        tracker.expect("p/a", 2, at(101));
        tracker.expect("p/a", 3, at(102));
        let completed = tracker.website(at(104), view("p/a", Some("s0"), 3, Some(2)));
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
        tracker.expect("p/a", 1, at(100));
        tracker.expect("p/b", 1, at(100));
        tracker.expect("p/c", 1, at(100));
        tracker.website(at(101), view("p/a", Some("s0"), 1, Some(1)));
        tracker.website(at(101), view("p/b", Some("s0"), 1, Some(1)));
        tracker.website_deleted(at(130), "p/c");
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
    fn a_write_reported_after_its_website_was_seen_deleted_is_abandoned_then() {
        let mut tracker = tracker();
        tracker.website(at(101), view("p/a", Some("s0"), 1, None));
        tracker.website_deleted(at(105), "p/a");
        assert_eq!(tracker.expect("p/a", 2, at(100)), None);
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
        tracker.expect("p/a", 1, at(100));
        tracker.expect("p/b", 1, at(100));
        tracker.expect("p/c", 1, at(100));
        tracker.website(at(102), view("p/a", Some("s0"), 1, Some(1)));
        tracker.website_deleted(at(103), "p/b");
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
        tracker.website(at(1), view("p/a", Some("s0"), 1, None));
        tracker.website(at(1), view("p/b", Some("s0"), 1, None));
        tracker.website(at(1), view("p/c", Some("s1"), 1, None));
        tracker.website(at(1), view("p/d", None, 1, None));
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
        tracker.website(at(1), view("p/a", Some("s0"), 1, None));
        tracker.website(at(1), view("p/b", Some("s1"), 1, None));
        // Expiring keeps a shard available: no change.
        tracker.lease(at(2), "s1", Some(ShardState::Expired), false);
        tracker.lease(at(3), "s1", Some(ShardState::Dead), false);
        tracker.website(at(4), view("p/b", Some("s0"), 1, None));
        tracker.lease(at(5), "s2", Some(ShardState::Ready), false);
        tracker.website(at(6), view("p/a", Some("s2"), 1, None));
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
                .hash(&hash_key(object).unwrap())
                .unwrap()
                .to_owned()
        };
        let objects: Vec<String> = (0..40)
            .map(|i| format!("project-0{}/w{i}", i % 3))
            .collect();
        let mut tracker = tracker();
        for shard in ["s0", "s1", "s2"] {
            tracker.lease(at(0), shard, Some(ShardState::Ready), true);
        }
        for object in &objects {
            let shard = owner(&["s0", "s1", "s2"], object);
            tracker.website(at(1), view(object, Some(&shard), 1, None));
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
            tracker.website(at(3), view(object, Some(&shard), 1, None));
        }
        let extra = objects
            .iter()
            .find(|o| owner(&["s0", "s1", "s2"], o) == "s0")
            .unwrap();
        tracker.website(at(3), view(extra, Some("s2"), 1, None));
        let changes = tracker.finish(at(10)).changes;
        let movement = &changes[0].movement;
        assert!(!on_s1.is_empty());
        assert_eq!(movement.required, on_s1.len());
        assert_eq!(movement.moved, on_s1.len() + 1);
        assert_eq!((movement.unnecessary, movement.outstanding), (1, 0));
    }

    #[test]
    fn a_websites_hash_key_is_its_group_kind_namespace_and_name() {
        assert_eq!(
            hash_key("project-01/experiment-abc").unwrap(),
            "webhosting.timebertt.dev/Website/project-01/experiment-abc"
        );
        assert_eq!(hash_key("no-namespace"), None);
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
    fn observations_record_changes_of_shard_and_readiness_only() {
        let mut tracker = tracker();
        tracker.website(at(1), view("p/a", None, 1, None));
        tracker.website(at(2), view("p/a", Some("s0"), 1, None));
        tracker.website(at(3), view("p/a", Some("s0"), 1, None));
        tracker.website(at(4), view("p/a", Some("s0"), 1, Some(1)));
        assert_eq!(tracker.finish(at(1000)).observations.len(), 2);
    }
}
