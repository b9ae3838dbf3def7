//! Objects on no live shard (docs/experiments.md#ownership): at every moment, an object of the
//! run is *unowned* when it has no shard label or its label names a shard that is not available
//! (`docs/contract.md#lease-states`). Pure: the observer's timestamped label changes, deletes and
//! Lease changes in, the intervals each object spent unowned out.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::{elapsed, stats::nearest_rank};

/// What the observer saw change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An object (hash key) was seen with this shard label (`None`: without one), first or
    /// changed.
    Label {
        /// The object's hash key.
        object: String,
        /// Its shard label.
        shard: Option<String>,
    },
    /// An object was seen deleted.
    Deleted {
        /// The object's hash key.
        object: String,
    },
    /// A shard's Lease was seen available or not (deleted: not).
    Lease {
        /// The shard, its Lease's name.
        shard: String,
        /// Whether its state is `ready`, `expired` or `uncertain`.
        available: bool,
    },
}

/// One stretch of time an object was unowned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interval {
    /// The object's hash key.
    pub object: String,
    /// When it became unowned.
    pub start: Timestamp,
    /// When it was owned again or deleted, or the end of the run.
    pub end: Timestamp,
    /// Still unowned at the end of the run: its length is a lower bound.
    pub censored: bool,
}

impl Interval {
    /// How long it lasted (so far, when censored).
    #[must_use]
    pub fn length(&self) -> Duration {
        elapsed(self.start, self.end)
    }
}

/// The intervals during which objects were unowned, from `events` in the order they were seen
/// (stamped times may tie) until `end`, when the intervals still open are closed and censored.
/// An object's first event opens an interval if it is unowned then; an object is not known
/// before its first event, so the time from its create to the watch's first sight of it is left
/// out (the webhook labels on create, so it is normally owned from its first sight).
#[must_use]
pub fn intervals(events: &[(Timestamp, Event)], end: Timestamp) -> Vec<Interval> {
    let mut state = State::default();
    for (at, event) in events {
        state.apply(*at, event);
    }
    let mut intervals = state.closed;
    intervals.extend(state.open.into_iter().map(|(object, start)| Interval {
        object,
        start,
        end,
        censored: true,
    }));
    intervals.sort_by(|a, b| (a.start, &a.object).cmp(&(b.start, &b.object)));
    intervals
}

/// The sweep over the events.
#[derive(Debug, Default)]
struct State {
    labels: HashMap<String, Option<String>>,
    available: BTreeSet<String>,
    by_shard: HashMap<String, BTreeSet<String>>,
    open: BTreeMap<String, Timestamp>,
    closed: Vec<Interval>,
}

impl State {
    fn apply(&mut self, at: Timestamp, event: &Event) {
        match event {
            Event::Label { object, shard } => {
                self.unlabel(object);
                if let Some(shard) = shard {
                    self.by_shard
                        .entry(shard.clone())
                        .or_default()
                        .insert(object.clone());
                }
                self.labels.insert(object.clone(), shard.clone());
                self.judge(at, object);
            }
            Event::Deleted { object } => {
                self.unlabel(object);
                self.labels.remove(object);
                self.close(at, object);
            }
            Event::Lease { shard, available } => {
                if *available {
                    self.available.insert(shard.clone());
                } else {
                    self.available.remove(shard);
                }
                let objects: Vec<String> = self
                    .by_shard
                    .get(shard)
                    .map(|objects| objects.iter().cloned().collect())
                    .unwrap_or_default();
                for object in objects {
                    self.judge(at, &object);
                }
            }
        }
    }

    fn unlabel(&mut self, object: &str) {
        if let Some(Some(shard)) = self.labels.get(object)
            && let Some(objects) = self.by_shard.get_mut(shard)
        {
            objects.remove(object);
        }
    }

    /// Opens or closes `object`'s interval at `at` as its label and the Leases now say.
    fn judge(&mut self, at: Timestamp, object: &str) {
        let owned = self
            .labels
            .get(object)
            .and_then(Option::as_ref)
            .is_some_and(|shard| self.available.contains(shard));
        if owned {
            self.close(at, object);
        } else {
            self.open.entry(object.to_owned()).or_insert(at);
        }
    }

    fn close(&mut self, at: Timestamp, object: &str) {
        if let Some(start) = self.open.remove(object) {
            self.closed.push(Interval {
                object: object.to_owned(),
                start,
                end: at,
                censored: false,
            });
        }
    }
}

/// The intervals summed up for the report (docs/experiments.md#ownership).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UnownedSummary {
    /// Objects that were unowned at some time.
    pub objects: usize,
    /// Intervals, one object may have several.
    pub intervals: usize,
    /// Of those, still open at the end of the run: their lengths are lower bounds.
    pub censored: usize,
    /// The intervals' lengths together.
    pub total: Duration,
    /// The median length (nearest rank), `None` without intervals.
    pub p50: Option<Duration>,
    /// The 99th percentile length (nearest rank).
    pub p99: Option<Duration>,
    /// The longest interval.
    pub longest: Option<Interval>,
    /// The objects still unowned at the end that had been for at least `grace`, with their
    /// intervals: the invariant's violations.
    pub left_unowned: Vec<Interval>,
}

impl UnownedSummary {
    /// The summary of `intervals`; a censored interval at least `grace` long is left unowned.
    #[must_use]
    pub fn of(intervals: &[Interval], grace: Duration) -> Self {
        let mut lengths: Vec<Duration> = intervals.iter().map(Interval::length).collect();
        lengths.sort_unstable();
        let objects: BTreeSet<&str> = intervals.iter().map(|i| i.object.as_str()).collect();
        Self {
            objects: objects.len(),
            intervals: intervals.len(),
            censored: intervals.iter().filter(|i| i.censored).count(),
            total: lengths.iter().sum(),
            p50: (!lengths.is_empty()).then(|| nearest_rank(&lengths, 0.5)),
            p99: (!lengths.is_empty()).then(|| nearest_rank(&lengths, 0.99)),
            longest: intervals.iter().max_by_key(|i| i.length()).cloned(),
            left_unowned: intervals
                .iter()
                .filter(|i| i.censored && i.length() >= grace)
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn label(object: &str, shard: Option<&str>) -> Event {
        Event::Label {
            object: object.to_owned(),
            shard: shard.map(str::to_owned),
        }
    }

    fn lease(shard: &str, available: bool) -> Event {
        Event::Lease {
            shard: shard.to_owned(),
            available,
        }
    }

    fn deleted(object: &str) -> Event {
        Event::Deleted {
            object: object.to_owned(),
        }
    }

    fn spans(intervals: &[Interval]) -> Vec<(&str, i64, i64, bool)> {
        intervals
            .iter()
            .map(|i| {
                (
                    i.object.as_str(),
                    i.start.as_second(),
                    i.end.as_second(),
                    i.censored,
                )
            })
            .collect()
    }

    #[test]
    fn an_object_labelled_on_create_with_a_live_shard_is_never_unowned() {
        let events = [(at(0), lease("s0", true)), (at(1), label("a", Some("s0")))];
        assert!(intervals(&events, at(100)).is_empty());
    }

    #[test]
    fn an_object_first_seen_without_a_label_is_unowned_until_labelled() {
        let events = [
            (at(0), lease("s0", true)),
            (at(1), label("a", None)),
            (at(4), label("a", Some("s0"))),
        ];
        assert_eq!(spans(&intervals(&events, at(100))), [("a", 1, 4, false)]);
    }

    #[test]
    fn a_dead_shards_objects_are_unowned_until_moved_each_on_its_own() {
        // s1 dies at 10; the sharder moves a at 12 and b at 15; c stays on s0.
        let events = [
            (at(0), lease("s0", true)),
            (at(0), lease("s1", true)),
            (at(1), label("a", Some("s1"))),
            (at(1), label("b", Some("s1"))),
            (at(1), label("c", Some("s0"))),
            (at(10), lease("s1", false)),
            (at(12), label("a", Some("s0"))),
            (at(15), label("b", Some("s0"))),
        ];
        let found = intervals(&events, at(100));
        assert_eq!(spans(&found), [("a", 10, 12, false), ("b", 10, 15, false)]);
        let summary = UnownedSummary::of(&found, Duration::from_secs(30));
        assert_eq!((summary.objects, summary.intervals), (2, 2));
        assert_eq!(summary.total, Duration::from_secs(7));
        assert_eq!(summary.p50, Some(Duration::from_secs(2)));
        assert_eq!(summary.p99, Some(Duration::from_secs(5)));
        assert_eq!(summary.longest.unwrap().object, "b");
        assert!(summary.left_unowned.is_empty());
    }

    #[test]
    fn a_shard_that_comes_back_owns_its_objects_again() {
        let events = [
            (at(0), lease("s0", true)),
            (at(1), label("a", Some("s0"))),
            (at(5), lease("s0", false)),
            (at(8), lease("s0", true)),
            (at(20), lease("s0", false)),
        ];
        assert_eq!(
            spans(&intervals(&events, at(50))),
            [("a", 5, 8, false), ("a", 20, 50, true)]
        );
    }

    #[test]
    fn a_deleted_object_ends_its_interval_and_a_relabel_to_another_dead_shard_does_not() {
        let events = [
            (at(0), lease("s0", true)),
            (at(1), label("a", Some("s1"))),
            (at(3), label("a", Some("s2"))),
            (at(6), deleted("a")),
            // Moving a deleted object's shard's Lease changes nothing.
            (at(7), lease("s2", true)),
        ];
        assert_eq!(spans(&intervals(&events, at(50))), [("a", 1, 6, false)]);
    }

    #[test]
    fn intervals_open_at_the_end_are_censored_and_left_unowned_after_the_grace() {
        let events = [
            (at(0), lease("s0", true)),
            (at(1), label("a", Some("s0"))),
            (at(1), label("b", Some("s0"))),
            (at(2), label("c", None)),
            (at(10), label("b", Some("gone"))),
            (at(45), label("a", None)),
        ];
        let found = intervals(&events, at(50));
        assert_eq!(
            spans(&found),
            [("c", 2, 50, true), ("b", 10, 50, true), ("a", 45, 50, true)]
        );
        let summary = UnownedSummary::of(&found, Duration::from_secs(30));
        assert_eq!(summary.censored, 3);
        // a has been unowned for only 5 s at the end: a move under way, not a violation.
        let left: Vec<&str> = summary
            .left_unowned
            .iter()
            .map(|i| i.object.as_str())
            .collect();
        assert_eq!(left, ["c", "b"]);
        assert_eq!(summary.longest.unwrap().object, "c");
    }

    #[test]
    fn percentiles_are_nearest_ranks() {
        let seconds = |s: &[u64]| {
            s.iter()
                .copied()
                .map(Duration::from_secs)
                .collect::<Vec<_>>()
        };
        let values = seconds(&[1, 2, 3, 4]);
        assert_eq!(nearest_rank(&values, 0.5), Duration::from_secs(2));
        assert_eq!(nearest_rank(&values, 0.99), Duration::from_secs(4));
        assert_eq!(nearest_rank(&seconds(&[7]), 0.5), Duration::from_secs(7));
        assert_eq!(
            UnownedSummary::of(&[], Duration::ZERO),
            UnownedSummary::default()
        );
    }
}
