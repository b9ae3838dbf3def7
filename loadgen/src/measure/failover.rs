//! Failover: from a shard's death to its Lease dead, its objects assigned to live shards, and
//! all of them reconciled again (docs/experiments.md).

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::elapsed;

/// How the shard died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverKind {
    /// Stopped gracefully (SIGTERM): it releases its Lease on the way out.
    Voluntary,
    /// Killed (SIGKILL): its Lease expires; the sharder cannot act before about 2 × the lease
    /// duration after the last renewal (docs/contract.md#lease-states).
    Involuntary,
}

/// What was observed of one failover; `None` for what did not happen before the run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailoverEvents {
    /// The shard that died.
    pub shard: String,
    /// How it died.
    pub kind: FailoverKind,
    /// When it was signalled.
    pub killed_at: Timestamp,
    /// When its Lease was first seen in state dead.
    pub lease_dead_at: Option<Timestamp>,
    /// Its objects and when they recovered ([`recovery`]).
    pub recovery: Recovery,
}

/// The phases of a failover, each measured from the kill; `None` if it did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverPhases {
    /// Until the Lease was dead.
    pub to_lease_dead: Option<Duration>,
    /// Until all objects were assigned to live shards.
    pub to_all_assigned: Option<Duration>,
    /// Until all objects that needed a reconcile were reconciled again.
    pub to_all_reconciled: Option<Duration>,
}

impl FailoverEvents {
    /// The phases, each from [`Self::killed_at`]. An event stamped before the kill (the
    /// observers stamp their own events) counts as at once.
    #[must_use]
    pub fn phases(&self) -> FailoverPhases {
        let since_kill = |at: Option<Timestamp>| at.map(|at| elapsed(self.killed_at, at));
        FailoverPhases {
            to_lease_dead: since_kill(self.lease_dead_at),
            to_all_assigned: since_kill(self.recovery.all_assigned_at),
            to_all_reconciled: since_kill(self.recovery.all_reconciled_at),
        }
    }
}

/// One object as a watch saw it at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// When it was seen.
    pub at: Timestamp,
    /// The object (for example `namespace/name`).
    pub object: String,
    /// What was seen.
    pub state: ObjectState,
}

/// The state of an object in an [`Observation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectState {
    /// The object exists.
    Present {
        /// Its shard label; `None` while it is unassigned (between drain and re-assignment).
        shard: Option<String>,
        /// Whether it is Ready for its current generation (observedGeneration ≥ generation and
        /// phase Ready).
        ready: bool,
    },
    /// The object was deleted; it no longer needs a shard.
    Deleted,
}

/// The killed shard's objects and when they recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// Objects followed: those on the killed shard at the kill, and those seen assigned to it
    /// after the kill (while its Lease is not dead it is still in the ring).
    pub objects: usize,
    /// Of them, those assigned to it after the kill.
    pub assigned_after_kill: usize,
    /// Of them, those that needed a reconcile by their new shard: not Ready for their
    /// generation at some time from the kill while still on the killed shard (or unassigned).
    pub to_reconcile: usize,
    /// The first time all of them carried a live shard's label.
    pub all_assigned_at: Option<Timestamp>,
    /// The first time, with all of them assigned, all that needed a reconcile were Ready on a
    /// live shard; `None` also when none needed one ([`Self::to_reconcile`] is 0).
    pub all_reconciled_at: Option<Timestamp>,
}

/// When `objects`, those of `killed` at `killed_at`, and those assigned to it later, were all
/// assigned to live shards and reconciled again, from `observations` (in any order;
/// observations of the same time count together, and those of other objects are ignored).
///
/// An object is assigned while its label names another shard than the killed one. It needed a
/// reconcile if it was not Ready for its generation at the kill (its last observation before)
/// or later while still on the killed shard or unassigned: a spec change the dead shard left
/// undone, or a new object. It is reconciled when it is Ready on a live shard. A deleted
/// object drops out. Without objects, everything is assigned at the kill.
///
/// # Caveats
///
/// Moving an object changes its labels, not its generation or status: that the new shard
/// reconciled an object that was already Ready cannot be seen, so such objects count for the
/// assigned phase only.
#[must_use]
pub fn recovery(
    killed: &str,
    killed_at: Timestamp,
    objects: &BTreeSet<String>,
    observations: &[Observation],
) -> Recovery {
    let mut followed: BTreeMap<&str, Progress> = objects
        .iter()
        .map(|o| (o.as_str(), Progress::new()))
        .collect();
    let mut assigned_after_kill = BTreeSet::new();
    let mut sorted: Vec<&Observation> = observations.iter().collect();
    sorted.sort_by_key(|o| o.at);
    let (before, after) = sorted.split_at(sorted.partition_point(|o| o.at < killed_at));
    for observation in before {
        if let (Some(progress), ObjectState::Present { ready, .. }) = (
            followed.get_mut(observation.object.as_str()),
            &observation.state,
        ) {
            progress.ready = *ready;
        }
    }
    let mut recovery = Recovery {
        objects: 0,
        assigned_after_kill: 0,
        to_reconcile: 0,
        all_assigned_at: None,
        all_reconciled_at: None,
    };
    let mut deleted = BTreeSet::new();
    note(&mut recovery, killed_at, &mut followed);
    for moment in after.chunk_by(|a, b| a.at == b.at) {
        for observation in moment {
            let object = observation.object.as_str();
            match &observation.state {
                ObjectState::Deleted => {
                    if followed.remove(object).is_some() {
                        deleted.insert(object);
                    }
                }
                ObjectState::Present { shard, ready } => {
                    let on_killed = shard.as_deref() == Some(killed);
                    if on_killed && !followed.contains_key(object) && !deleted.contains(object) {
                        assigned_after_kill.insert(object);
                        followed.insert(object, Progress::new());
                        // A newcomer: what was noted before did not include it.
                        recovery.all_assigned_at = None;
                        recovery.all_reconciled_at = None;
                    }
                    if let Some(progress) = followed.get_mut(object) {
                        progress.live = shard.as_deref().is_some_and(|shard| shard != killed);
                        progress.ready = *ready;
                    }
                }
            }
        }
        note(&mut recovery, moment[0].at, &mut followed);
    }
    recovery.objects = objects.len() + assigned_after_kill.len();
    recovery.assigned_after_kill = assigned_after_kill.len();
    recovery
}

/// Where an object of the killed shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Progress {
    /// Labelled with a live shard.
    live: bool,
    /// Ready for its generation.
    ready: bool,
    /// Not Ready for its generation while on the killed shard or unassigned.
    needs_reconcile: bool,
}

impl Progress {
    /// On the killed shard, and not Ready until an observation says it is: an object never
    /// seen Ready needs a reconcile.
    fn new() -> Self {
        Self {
            live: false,
            ready: false,
            needs_reconcile: false,
        }
    }
}

/// Marks what needs a reconcile now and sets the recovery times first reached at `now`; the
/// count of objects to reconcile includes those deleted since.
fn note(recovery: &mut Recovery, now: Timestamp, followed: &mut BTreeMap<&str, Progress>) {
    for progress in followed.values_mut() {
        if !progress.live && !progress.ready && !progress.needs_reconcile {
            progress.needs_reconcile = true;
            recovery.to_reconcile += 1;
        }
    }
    let all_assigned = followed.values().all(|p| p.live);
    if all_assigned && recovery.all_assigned_at.is_none() {
        recovery.all_assigned_at = Some(now);
    }
    let needing = || followed.values().filter(|p| p.needs_reconcile);
    if all_assigned
        && recovery.to_reconcile > 0
        && needing().all(|p| p.ready)
        && recovery.all_reconciled_at.is_none()
    {
        recovery.all_reconciled_at = Some(now);
    }
}

/// The times of one phase over the failovers of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PhaseStats {
    /// Failovers the phase applies to (for the reconciled phase: those with objects to
    /// reconcile).
    pub n: usize,
    /// Of them, those in which it happened before the run ended.
    pub finished: usize,
    /// The shortest of the finished.
    #[serde(rename = "min_s", serialize_with = "seconds")]
    pub min: Option<Duration>,
    /// The median of the finished (the mean of the middle two for an even count).
    #[serde(rename = "median_s", serialize_with = "seconds")]
    pub median: Option<Duration>,
    /// The longest of the finished.
    #[serde(rename = "max_s", serialize_with = "seconds")]
    pub max: Option<Duration>,
}

impl PhaseStats {
    /// The statistics of `phases`, one per failover the phase applies to (`None`: not
    /// finished).
    #[must_use]
    pub fn of(phases: &[Option<Duration>]) -> Self {
        let mut finished: Vec<Duration> = phases.iter().flatten().copied().collect();
        finished.sort_unstable();
        Self {
            n: phases.len(),
            finished: finished.len(),
            min: finished.first().copied(),
            median: median(&finished),
            max: finished.last().copied(),
        }
    }
}

/// The median of `sorted`. A handful of failovers needs no statistics crate; HdrHistogram,
/// which the workspace has, would round the values and take one of the middle two.
fn median(sorted: &[Duration]) -> Option<Duration> {
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some((sorted[middle - 1] + sorted[middle]) / 2),
    }
}

/// A phase time in seconds in `run.json`.
#[allow(
    clippy::ref_option,
    reason = "serde's serialize_with passes a reference to the field"
)]
fn seconds<S: serde::Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    value.map(|d| d.as_secs_f64()).serialize(s)
}

/// The failovers of one kind, phase by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KindStats {
    /// The kind.
    pub kind: FailoverKind,
    /// Failovers of this kind.
    pub failovers: usize,
    /// Until the Lease was dead.
    pub lease_dead: PhaseStats,
    /// Until all objects were assigned to live shards.
    pub all_assigned: PhaseStats,
    /// Until all objects that needed a reconcile were reconciled again.
    pub all_reconciled: PhaseStats,
}

impl KindStats {
    /// The statistics of the failovers of `kind` among `failovers`.
    #[must_use]
    pub fn of(failovers: &[FailoverEvents], kind: FailoverKind) -> Self {
        let of_kind: Vec<&FailoverEvents> = failovers.iter().filter(|f| f.kind == kind).collect();
        let phase = |phase: fn(&FailoverEvents) -> Option<Option<Duration>>| {
            let phases: Vec<Option<Duration>> = of_kind.iter().filter_map(|f| phase(f)).collect();
            PhaseStats::of(&phases)
        };
        Self {
            kind,
            failovers: of_kind.len(),
            lease_dead: phase(|f| Some(f.phases().to_lease_dead)),
            all_assigned: phase(|f| Some(f.phases().to_all_assigned)),
            all_reconciled: phase(|f| {
                (f.recovery.to_reconcile > 0).then(|| f.phases().to_all_reconciled)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KILLED: &str = "shard-0";

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    fn objects(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|&name| name.to_owned()).collect()
    }

    fn seen(seconds: i64, object: &str, shard: Option<&str>, ready: bool) -> Observation {
        Observation {
            at: at(seconds),
            object: object.to_owned(),
            state: ObjectState::Present {
                shard: shard.map(str::to_owned),
                ready,
            },
        }
    }

    fn deleted(seconds: i64, object: &str) -> Observation {
        Observation {
            at: at(seconds),
            object: object.to_owned(),
            state: ObjectState::Deleted,
        }
    }

    /// When all were assigned and all reconciled, in seconds.
    fn times(recovery: Recovery) -> (Option<i64>, Option<i64>) {
        let seconds = |at: Option<Timestamp>| at.map(Timestamp::as_second);
        (
            seconds(recovery.all_assigned_at),
            seconds(recovery.all_reconciled_at),
        )
    }

    fn recover(names: &[&str], observations: &[Observation]) -> Recovery {
        recovery(KILLED, at(100), &objects(names), observations)
    }

    fn events(kind: FailoverKind, lease_dead: Option<i64>, recovery: Recovery) -> FailoverEvents {
        FailoverEvents {
            shard: KILLED.to_owned(),
            kind,
            killed_at: at(100),
            lease_dead_at: lease_dead.map(at),
            recovery,
        }
    }

    fn recovered(assigned: Option<i64>, reconciled: Option<i64>, to_reconcile: usize) -> Recovery {
        Recovery {
            objects: 1,
            assigned_after_kill: 0,
            to_reconcile,
            all_assigned_at: assigned.map(at),
            all_reconciled_at: reconciled.map(at),
        }
    }

    #[test]
    fn phases_are_measured_from_the_kill() {
        let events = events(
            FailoverKind::Involuntary,
            Some(130),
            recovered(Some(131), None, 1),
        );
        assert_eq!(
            events.phases(),
            FailoverPhases {
                to_lease_dead: Some(secs(30)),
                to_all_assigned: Some(secs(31)),
                to_all_reconciled: None,
            }
        );
    }

    #[test]
    fn an_event_stamped_before_the_kill_counts_as_at_once() {
        let events = events(FailoverKind::Voluntary, Some(99), recovered(None, None, 0));
        assert_eq!(events.phases().to_lease_dead, Some(Duration::ZERO));
        assert_eq!(events.phases().to_all_assigned, None);
    }

    #[test]
    fn objects_recover_when_the_last_one_is_assigned_and_the_last_one_is_ready() {
        // Neither was seen Ready before the kill: both need a reconcile.
        let observations = [
            seen(101, "a", None, true),
            seen(102, "a", Some("shard-1"), true),
            seen(103, "b", Some("shard-2"), false),
            seen(105, "b", Some("shard-2"), true),
        ];
        let recovery = recover(&["a", "b"], &observations);
        assert_eq!(times(recovery), (Some(103), Some(105)));
        assert_eq!((recovery.objects, recovery.to_reconcile), (2, 2));
    }

    #[test]
    fn objects_that_were_ready_need_no_reconcile_and_do_not_repeat_the_assigned_phase() {
        // "a" and "b" were Ready at the kill; "b" is then mutated while still on the killed
        // shard and needs its new shard's reconcile. The old measure: reconciled at 104 with
        // "a" only, and at 104 too here, although "b" was Ready only at 110.
        let observations = [
            seen(90, "a", Some(KILLED), true),
            seen(90, "b", Some(KILLED), true),
            seen(101, "b", Some(KILLED), false),
            seen(103, "a", Some("shard-1"), true),
            seen(104, "b", Some("shard-2"), false),
            seen(110, "b", Some("shard-2"), true),
        ];
        let recovery = recover(&["a", "b"], &observations);
        assert_eq!(times(recovery), (Some(104), Some(110)));
        assert_eq!(recovery.to_reconcile, 1);

        let untouched = [
            seen(90, "a", Some(KILLED), true),
            seen(103, "a", Some("shard-1"), true),
            // A mutation after the move is the new shard's ordinary load.
            seen(105, "a", Some("shard-1"), false),
        ];
        let recovery = recover(&["a"], &untouched);
        assert_eq!(times(recovery), (Some(103), None));
        assert_eq!(recovery.to_reconcile, 0);
    }

    #[test]
    fn an_object_assigned_to_the_killed_shard_after_the_kill_is_followed() {
        // "new" is created after a SIGKILL and assigned to the dead shard, still in the ring.
        // The old measure followed "a" only: assigned and reconciled at 101.
        let observations = [
            seen(90, "a", Some(KILLED), true),
            seen(101, "a", Some("shard-1"), true),
            seen(102, "new", Some(KILLED), false),
            seen(130, "new", Some("shard-1"), false),
            seen(131, "new", Some("shard-1"), true),
        ];
        let recovery = recover(&["a"], &observations);
        assert_eq!(times(recovery), (Some(130), Some(131)));
        assert_eq!(
            (
                recovery.objects,
                recovery.assigned_after_kill,
                recovery.to_reconcile
            ),
            (2, 1, 1)
        );
    }

    #[test]
    fn the_killed_shards_label_or_none_is_not_an_assignment() {
        let observations = [
            seen(101, "a", Some(KILLED), true),
            seen(102, "a", None, false),
        ];
        assert_eq!(times(recover(&["a"], &observations)), (None, None));
    }

    #[test]
    fn an_object_that_is_assigned_but_never_ready_is_not_reconciled() {
        let observations = [seen(101, "a", Some("shard-1"), false)];
        assert_eq!(times(recover(&["a"], &observations)), (Some(101), None));
    }

    #[test]
    fn all_objects_must_be_assigned_at_the_same_time() {
        // "a" is drained again (label removed) before "b" is assigned.
        let observations = [
            seen(101, "a", Some("shard-1"), false),
            seen(102, "a", None, false),
            seen(103, "b", Some("shard-1"), false),
            seen(104, "a", Some("shard-2"), false),
        ];
        assert_eq!(
            times(recover(&["a", "b"], &observations)),
            (Some(104), None)
        );
    }

    #[test]
    fn a_deleted_object_no_longer_needs_a_shard() {
        let observations = [seen(101, "a", Some("shard-1"), true), deleted(104, "b")];
        assert_eq!(
            times(recover(&["a", "b"], &observations)),
            (Some(104), Some(104))
        );
    }

    #[test]
    fn an_object_deleted_after_its_assignment_does_not_block_reconciliation() {
        let observations = [
            seen(101, "a", Some("shard-1"), false),
            seen(102, "b", Some("shard-1"), false),
            deleted(103, "a"),
            seen(106, "b", Some("shard-1"), true),
        ];
        assert_eq!(
            times(recover(&["a", "b"], &observations)),
            (Some(102), Some(106))
        );
    }

    #[test]
    fn without_objects_all_are_assigned_at_the_kill_and_none_needs_a_reconcile() {
        let recovery = recover(&[], &[]);
        assert_eq!(times(recovery), (Some(100), None));
        assert_eq!(recovery.to_reconcile, 0);
    }

    #[test]
    fn without_observations_nothing_recovers() {
        assert_eq!(times(recover(&["a"], &[])), (None, None));
    }

    #[test]
    fn before_the_kill_only_readiness_counts_and_other_objects_are_ignored() {
        let observations = [
            seen(90, "a", Some("shard-1"), true),
            seen(101, "other", Some("shard-1"), true),
        ];
        assert_eq!(times(recover(&["a"], &observations)), (None, None));
    }

    #[test]
    fn observations_of_the_same_time_count_together() {
        // At 102, "a" is seen assigned and then unassigned again: never all assigned at 102.
        let observations = [
            seen(102, "a", Some("shard-1"), true),
            seen(102, "a", None, false),
            seen(103, "a", Some("shard-1"), true),
        ];
        assert_eq!(
            times(recover(&["a"], &observations)),
            (Some(103), Some(103))
        );
    }

    #[test]
    fn observations_out_of_order_are_put_in_time_order() {
        let observations = [
            seen(105, "b", Some("shard-2"), true),
            seen(102, "a", Some("shard-1"), true),
            seen(103, "b", Some("shard-2"), false),
        ];
        assert_eq!(
            times(recover(&["a", "b"], &observations)),
            (Some(103), Some(105))
        );
    }

    #[test]
    fn an_unfinished_failover_counts_in_n_but_not_in_the_times() {
        // The old mean over the finished: 20 s, with no word of the third.
        let stats = PhaseStats::of(&[Some(secs(30)), None, Some(secs(10))]);
        assert_eq!((stats.n, stats.finished), (3, 2));
        assert_eq!(
            (stats.min, stats.median, stats.max),
            (Some(secs(10)), Some(secs(20)), Some(secs(30)))
        );
        let odd = PhaseStats::of(&[Some(secs(40)), Some(secs(10)), Some(secs(11))]);
        assert_eq!(odd.median, Some(secs(11)));
        let none = PhaseStats::of(&[None]);
        assert_eq!((none.n, none.finished, none.median), (1, 0, None));
    }

    #[test]
    fn kinds_are_apart_and_the_reconciled_phase_counts_failovers_with_objects_to_reconcile() {
        let failovers = [
            events(
                FailoverKind::Involuntary,
                Some(130),
                recovered(Some(131), Some(140), 2),
            ),
            events(FailoverKind::Involuntary, None, recovered(None, None, 1)),
            events(
                FailoverKind::Involuntary,
                Some(128),
                recovered(Some(129), None, 0),
            ),
            events(
                FailoverKind::Voluntary,
                Some(100),
                recovered(Some(101), None, 0),
            ),
        ];
        let involuntary = KindStats::of(&failovers, FailoverKind::Involuntary);
        assert_eq!(involuntary.failovers, 3);
        assert_eq!(
            (involuntary.lease_dead.n, involuntary.lease_dead.finished),
            (3, 2)
        );
        assert_eq!(involuntary.lease_dead.median, Some(secs(29)));
        assert_eq!(
            (
                involuntary.all_reconciled.n,
                involuntary.all_reconciled.finished
            ),
            (2, 1)
        );
        assert_eq!(involuntary.all_reconciled.max, Some(secs(40)));
        let voluntary = KindStats::of(&failovers, FailoverKind::Voluntary);
        assert_eq!((voluntary.failovers, voluntary.all_reconciled.n), (1, 0));
        assert_eq!(voluntary.all_assigned.min, Some(secs(1)));
    }
}
