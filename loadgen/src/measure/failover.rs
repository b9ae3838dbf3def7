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
    /// When all its objects first carried a live shard's label ([`recovery`]).
    pub all_assigned_at: Option<Timestamp>,
    /// When all its objects were first Ready on their new shard ([`recovery`]).
    pub all_reconciled_at: Option<Timestamp>,
}

/// The phases of a failover, each measured from the kill; `None` if it did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverPhases {
    /// Until the Lease was dead.
    pub to_lease_dead: Option<Duration>,
    /// Until all objects were assigned to live shards.
    pub to_all_assigned: Option<Duration>,
    /// Until all objects were reconciled again.
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
            to_all_assigned: since_kill(self.all_assigned_at),
            to_all_reconciled: since_kill(self.all_reconciled_at),
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

/// When the killed shard's objects recovered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// The first time all of them carried a live shard's label.
    pub all_assigned_at: Option<Timestamp>,
    /// The first time all of them were Ready on a live shard.
    pub all_reconciled_at: Option<Timestamp>,
}

/// When `objects`, those of `killed` at `killed_at`, were all assigned to live shards and all
/// reconciled again, from `observations` (in any order; observations of the same time count
/// together, and those before the kill or of other objects are ignored).
///
/// Every object starts on the killed shard, not reconciled. An object is assigned while its
/// label names another shard, and reconciled while it is, in addition, Ready. A deleted object
/// drops out, so once the last outstanding object is deleted the rest count as recovered.
/// Without objects, both happen at the kill.
///
/// # Caveats
///
/// Moving an object changes its labels, not its generation: an object whose status was
/// already Ready for its generation looks reconciled as soon as it is re-assigned. Only objects
/// whose spec changed during the failover (as under the chaos scenario's mutations) show how
/// long the new shard took to reconcile them.
#[must_use]
pub fn recovery(
    killed: &str,
    killed_at: Timestamp,
    objects: &BTreeSet<String>,
    observations: &[Observation],
) -> Recovery {
    let mut outstanding: BTreeMap<&str, Progress> = objects
        .iter()
        .map(|o| (o.as_str(), Progress::OnKilled))
        .collect();
    let mut recovery = Recovery {
        all_assigned_at: None,
        all_reconciled_at: None,
    };
    let mut seen: Vec<&Observation> = observations
        .iter()
        .filter(|o| o.at >= killed_at && objects.contains(&o.object))
        .collect();
    seen.sort_by_key(|o| o.at);
    let mut moments = seen.chunk_by(|a, b| a.at == b.at).peekable();
    let mut now = killed_at;
    loop {
        note(&mut recovery, now, &outstanding);
        if recovery.all_reconciled_at.is_some() {
            return recovery;
        }
        let Some(moment) = moments.next() else {
            return recovery;
        };
        for observation in moment {
            match &observation.state {
                ObjectState::Deleted => {
                    outstanding.remove(observation.object.as_str());
                }
                ObjectState::Present { shard, ready } => {
                    let progress = Progress::of(killed, shard.as_deref(), *ready);
                    outstanding.insert(observation.object.as_str(), progress);
                }
            }
        }
        now = moment[0].at;
    }
}

/// Where an object of the killed shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Progress {
    /// Unassigned or still labelled with the killed shard.
    OnKilled,
    /// Labelled with a live shard, not yet Ready there.
    Assigned,
    /// Labelled with a live shard and Ready.
    Reconciled,
}

impl Progress {
    fn of(killed: &str, shard: Option<&str>, ready: bool) -> Self {
        match shard {
            Some(shard) if shard != killed => {
                if ready {
                    Self::Reconciled
                } else {
                    Self::Assigned
                }
            }
            _ => Self::OnKilled,
        }
    }
}

/// Sets the recovery times first reached at `now`.
fn note(recovery: &mut Recovery, now: Timestamp, outstanding: &BTreeMap<&str, Progress>) {
    let least = outstanding
        .values()
        .copied()
        .min()
        .unwrap_or(Progress::Reconciled);
    if least >= Progress::Assigned && recovery.all_assigned_at.is_none() {
        recovery.all_assigned_at = Some(now);
    }
    if least == Progress::Reconciled {
        recovery.all_reconciled_at = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KILLED: &str = "shard-0";

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
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

    fn recovered(assigned: Option<i64>, reconciled: Option<i64>) -> Recovery {
        Recovery {
            all_assigned_at: assigned.map(at),
            all_reconciled_at: reconciled.map(at),
        }
    }

    #[test]
    fn phases_are_measured_from_the_kill() {
        let events = FailoverEvents {
            shard: KILLED.to_owned(),
            kind: FailoverKind::Involuntary,
            killed_at: at(100),
            lease_dead_at: Some(at(130)),
            all_assigned_at: Some(at(131)),
            all_reconciled_at: None,
        };
        assert_eq!(
            events.phases(),
            FailoverPhases {
                to_lease_dead: Some(Duration::from_secs(30)),
                to_all_assigned: Some(Duration::from_secs(31)),
                to_all_reconciled: None,
            }
        );
    }

    #[test]
    fn an_event_stamped_before_the_kill_counts_as_at_once() {
        let events = FailoverEvents {
            shard: KILLED.to_owned(),
            kind: FailoverKind::Voluntary,
            killed_at: at(100),
            lease_dead_at: Some(at(99)),
            all_assigned_at: None,
            all_reconciled_at: None,
        };
        assert_eq!(events.phases().to_lease_dead, Some(Duration::ZERO));
        assert_eq!(events.phases().to_all_assigned, None);
    }

    #[test]
    fn objects_recover_when_the_last_one_is_assigned_and_the_last_one_is_ready() {
        let observations = [
            seen(101, "a", None, true),
            seen(102, "a", Some("shard-1"), true),
            seen(103, "b", Some("shard-2"), false),
            seen(105, "b", Some("shard-2"), true),
        ];
        assert_eq!(
            recovery(KILLED, at(100), &objects(&["a", "b"]), &observations),
            recovered(Some(103), Some(105))
        );
    }

    #[test]
    fn the_killed_shards_label_or_none_is_not_an_assignment() {
        let observations = [
            seen(101, "a", Some(KILLED), true),
            seen(102, "a", None, false),
        ];
        assert_eq!(
            recovery(KILLED, at(100), &objects(&["a"]), &observations),
            recovered(None, None)
        );
    }

    #[test]
    fn an_object_that_is_assigned_but_never_ready_is_not_reconciled() {
        let observations = [seen(101, "a", Some("shard-1"), false)];
        assert_eq!(
            recovery(KILLED, at(100), &objects(&["a"]), &observations),
            recovered(Some(101), None)
        );
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
            recovery(KILLED, at(100), &objects(&["a", "b"]), &observations),
            recovered(Some(104), None)
        );
    }

    #[test]
    fn a_deleted_object_no_longer_needs_a_shard() {
        let observations = [seen(101, "a", Some("shard-1"), true), deleted(104, "b")];
        assert_eq!(
            recovery(KILLED, at(100), &objects(&["a", "b"]), &observations),
            recovered(Some(104), Some(104))
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
            recovery(KILLED, at(100), &objects(&["a", "b"]), &observations),
            recovered(Some(102), Some(106))
        );
    }

    #[test]
    fn without_objects_recovery_is_at_the_kill() {
        assert_eq!(
            recovery(KILLED, at(100), &BTreeSet::new(), &[]),
            recovered(Some(100), Some(100))
        );
    }

    #[test]
    fn without_observations_nothing_recovers() {
        assert_eq!(
            recovery(KILLED, at(100), &objects(&["a"]), &[]),
            recovered(None, None)
        );
    }

    #[test]
    fn observations_before_the_kill_and_of_other_objects_are_ignored() {
        let observations = [
            seen(90, "a", Some("shard-1"), true),
            seen(101, "other", Some("shard-1"), true),
        ];
        assert_eq!(
            recovery(KILLED, at(100), &objects(&["a"]), &observations),
            recovered(None, None)
        );
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
            recovery(KILLED, at(100), &objects(&["a"]), &observations),
            recovered(Some(103), Some(103))
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
            recovery(KILLED, at(100), &objects(&["a", "b"]), &observations),
            recovered(Some(103), Some(105))
        );
    }
}
