//! Movement: the objects a membership change re-assigned, against the moves the ring's
//! assignment strategy required (docs/experiments.md#movement).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use k8s_openapi::jiff::Timestamp;

use super::{
    as_f64,
    failover::{FailoverEvents, FailoverKind},
    ratio,
};

/// A change of the ring's membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A shard became available.
    Join {
        /// The shard that joined.
        shard: String,
    },
    /// A shard became unavailable.
    Leave {
        /// The shard that left.
        shard: String,
    },
}

/// The objects a membership change re-assigned, against the moves the ring required.
///
/// Under hash-ring ([`Self::of`]), an object *must move* when its shard before the change is
/// not its owner on the ring of the shards available after it; when the assignment matched the
/// ring before, these are exactly the objects whose ring owner differs between the shard sets
/// before and after. A move is *unnecessary* when it does not end on the object's owner: it did
/// not have to move at all, or it went to another shard than the ring's. A consistent hash
/// ring makes none.
///
/// Under another strategy ([`Self::among_available`]), whose owners depend on the loads rather
/// than on the shard set alone, an object must move when its shard is not available after the
/// change, and a move is unnecessary when it goes between two shards that are available both
/// before and after the change; moves onto a joining shard are neither (compare them with
/// [`Self::ideal`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Movement {
    /// Objects assigned both before and after the change.
    pub objects: usize,
    /// Of those, the objects on another shard afterwards.
    pub moved: usize,
    /// Of those, the objects the ring required to move.
    pub required: usize,
    /// Moves that did not end on the object's ring owner: the headline, 0 for a correct sharder.
    pub unnecessary: usize,
    /// Required moves not made by the next change (or the end): still on their shard before,
    /// for example on a dead shard that cannot hand its objects over until its Lease is dead.
    pub outstanding: usize,
    /// On a join to a ring of N shards, the fewest moves any balanced assignment makes: the
    /// new shard's fair share, `objects / (N + 1)`. `None` on a leave, where it would be the
    /// departed shard's objects, the same as [`Self::required`] by construction.
    pub ideal: Option<f64>,
    /// `moved / ideal`, where the ideal is defined and positive.
    pub moved_vs_ideal: Option<f64>,
}

impl Movement {
    /// The movement between two assignments (object to shard) taken before and after `change`
    /// of a ring of `shards_before` shards; `owner` is each object's shard on the ring after
    /// the change (`None` for an empty ring, where nothing can move).
    ///
    /// Objects in only one of them were created or deleted meanwhile (or not yet assigned) and
    /// are left out.
    #[must_use]
    pub fn of(
        before: &BTreeMap<String, String>,
        after: &BTreeMap<String, String>,
        owner: impl Fn(&str) -> Option<String>,
        change: &Change,
        shards_before: usize,
    ) -> Self {
        Self::count(
            (before, after),
            |object, old, new| {
                let owner = owner(object);
                let must_move = owner.as_ref().is_some_and(|owner| owner != old);
                (must_move, new != old && owner.as_deref() != Some(new))
            },
            change,
            shards_before,
        )
    }

    /// The movement between two assignments taken before and after `change` of a ring of
    /// `shards_before` shards under a strategy other than hash-ring, of which `available` are
    /// available after the change: an object must move off a shard not in `available`, and a
    /// move between two shards available both before and after the change is unnecessary.
    #[must_use]
    pub fn among_available(
        before: &BTreeMap<String, String>,
        after: &BTreeMap<String, String>,
        available: &BTreeSet<String>,
        change: &Change,
        shards_before: usize,
    ) -> Self {
        let stayed = |shard: &str| {
            available.contains(shard)
                && !matches!(change, Change::Join { shard: joined } if joined == shard)
        };
        Self::count(
            (before, after),
            |_, old, new| {
                (
                    !available.contains(old),
                    new != old && stayed(old) && stayed(new),
                )
            },
            change,
            shards_before,
        )
    }

    /// The movement whose rule says for each object (its name, its shard before and after)
    /// whether it must move and whether its move, if any, was unnecessary.
    fn count(
        (before, after): (&BTreeMap<String, String>, &BTreeMap<String, String>),
        rule: impl Fn(&str, &str, &str) -> (bool, bool),
        change: &Change,
        shards_before: usize,
    ) -> Self {
        let (mut objects, mut moved, mut required, mut unnecessary, mut outstanding) =
            (0, 0, 0, 0, 0);
        for (object, old) in before {
            let Some(new) = after.get(object) else {
                continue;
            };
            let (must_move, needless) = rule(object, old, new);
            objects += 1;
            if new != old {
                moved += 1;
                if needless {
                    unnecessary += 1;
                }
            } else if must_move {
                outstanding += 1;
            }
            if must_move {
                required += 1;
            }
        }
        let ideal = match change {
            Change::Join { .. } => Some(as_f64(objects as u64) / as_f64(shards_before as u64 + 1)),
            Change::Leave { .. } => None,
        };
        Self {
            objects,
            moved,
            required,
            unnecessary,
            outstanding,
            ideal,
            moved_vs_ideal: ideal.and_then(|ideal| ratio(as_f64(moved as u64), ideal)),
        }
    }
}

/// The movements of several membership changes added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Totals {
    /// Membership changes.
    pub changes: usize,
    /// Objects moved.
    pub moved: usize,
    /// Moves the ring required.
    pub required: usize,
    /// Moves that did not end on the object's ring owner.
    pub unnecessary: usize,
    /// Required moves not made by the next change.
    pub outstanding: usize,
}

impl<'a> FromIterator<&'a Movement> for Totals {
    fn from_iter<I: IntoIterator<Item = &'a Movement>>(movements: I) -> Self {
        movements.into_iter().fold(Self::default(), |sum, m| Self {
            changes: sum.changes + 1,
            moved: sum.moved + m.moved,
            required: sum.required + m.required,
            unnecessary: sum.unnecessary + m.unnecessary,
            outstanding: sum.outstanding + m.outstanding,
        })
    }
}

/// How chaos killed the shard that `change` at `at` removed; `None` for a join or the leave of
/// a shard not killed before it.
#[must_use]
pub fn killed(
    change: &Change,
    at: Timestamp,
    failovers: &[FailoverEvents],
) -> Option<FailoverKind> {
    let Change::Leave { shard } = change else {
        return None;
    };
    failovers
        .iter()
        .filter(|f| f.shard == *shard && f.killed_at <= at)
        .max_by_key(|f| f.killed_at)
        .map(|f| f.kind)
}

/// The shard killed before `at` whose Lease was not yet dead then: it was still in the ring,
/// and the moves the ring required off it wait until its Lease is dead.
#[must_use]
pub fn during_failover(at: Timestamp, failovers: &[FailoverEvents]) -> Option<String> {
    failovers
        .iter()
        .find(|f| f.killed_at <= at && f.lease_dead_at.is_none_or(|dead| at < dead))
        .map(|f| f.shard.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(object, shard)| ((*object).to_owned(), (*shard).to_owned()))
            .collect()
    }

    /// The ring after the change, as a table.
    fn ring(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owners = assignment(pairs);
        move |object| owners.get(object).cloned()
    }

    fn join(shard: &str) -> Change {
        Change::Join {
            shard: shard.to_owned(),
        }
    }

    fn leave(shard: &str) -> Change {
        Change::Leave {
            shard: shard.to_owned(),
        }
    }

    fn counts(movement: &Movement) -> (usize, usize, usize, usize, usize) {
        (
            movement.objects,
            movement.moved,
            movement.required,
            movement.unnecessary,
            movement.outstanding,
        )
    }

    #[test]
    fn a_graceful_leave_has_no_unnecessary_moves_and_no_ratio() {
        let before = assignment(&[("a", "s0"), ("b", "s1"), ("c", "s1"), ("d", "s2")]);
        let after = assignment(&[("a", "s0"), ("b", "s0"), ("c", "s2"), ("d", "s2")]);
        let owners = ring(&[("a", "s0"), ("b", "s0"), ("c", "s2"), ("d", "s2")]);
        let movement = Movement::of(&before, &after, owners, &leave("s1"), 3);
        assert_eq!(counts(&movement), (4, 2, 2, 0, 0));
        // The old figure, moved over the departed shard's share, was 1.00 by construction.
        assert_eq!((movement.ideal, movement.moved_vs_ideal), (None, None));
    }

    #[test]
    fn a_move_the_ring_did_not_require_is_unnecessary() {
        // "d" stays on s2 on the ring after s1 left, but moved to s0.
        let before = assignment(&[("a", "s0"), ("b", "s1"), ("d", "s2")]);
        let after = assignment(&[("a", "s0"), ("b", "s0"), ("d", "s0")]);
        let owners = ring(&[("a", "s0"), ("b", "s0"), ("d", "s2")]);
        let movement = Movement::of(&before, &after, owners, &leave("s1"), 3);
        assert_eq!(counts(&movement), (3, 2, 1, 1, 0));
    }

    #[test]
    fn a_required_move_to_another_shard_than_the_owner_is_unnecessary() {
        let before = assignment(&[("b", "s1")]);
        let after = assignment(&[("b", "s2")]);
        let movement = Movement::of(&before, &after, ring(&[("b", "s0")]), &leave("s1"), 3);
        assert_eq!(counts(&movement), (1, 1, 1, 1, 0));
    }

    #[test]
    fn a_join_is_measured_against_the_ring_and_the_new_shards_fair_share() {
        // The ring gives the new shard s2 two of six objects; one of them has not moved yet
        // (its shard s0 is dead and cannot hand it over).
        let before = assignment(&[
            ("a", "s0"),
            ("b", "s0"),
            ("c", "s0"),
            ("d", "s1"),
            ("e", "s1"),
            ("f", "s1"),
        ]);
        let mut after = before.clone();
        after.insert("d".to_owned(), "s2".to_owned());
        let owners = ring(&[
            ("a", "s2"),
            ("b", "s0"),
            ("c", "s0"),
            ("d", "s2"),
            ("e", "s1"),
            ("f", "s1"),
        ]);
        let movement = Movement::of(&before, &after, owners, &join("s2"), 2);
        assert_eq!(counts(&movement), (6, 1, 2, 0, 1));
        // Fair share: 6 objects / 3 shards = 2; 1 moved.
        assert_eq!(movement.ideal, Some(2.0));
        assert_eq!(movement.moved_vs_ideal, Some(0.5));
    }

    #[test]
    fn objects_created_or_deleted_meanwhile_are_ignored() {
        let before = assignment(&[("a", "s0"), ("deleted", "s1"), ("b", "s1")]);
        let after = assignment(&[("a", "s0"), ("b", "s0"), ("created", "s1")]);
        let owners = ring(&[("a", "s0"), ("b", "s0"), ("created", "s0")]);
        let movement = Movement::of(&before, &after, owners, &leave("s1"), 2);
        assert_eq!(counts(&movement), (2, 1, 1, 0, 0));
    }

    #[test]
    fn nothing_must_move_to_an_empty_ring() {
        let before = assignment(&[("a", "s0"), ("b", "s0")]);
        let movement = Movement::of(&before, &before, |_| None, &leave("s0"), 1);
        assert_eq!(counts(&movement), (2, 0, 0, 0, 0));
    }

    #[test]
    fn a_join_without_common_objects_has_no_ratio() {
        let empty = BTreeMap::new();
        let movement = Movement::of(&empty, &empty, |_| None, &join("s0"), 0);
        assert_eq!(movement.ideal, Some(0.0));
        assert_eq!(movement.moved_vs_ideal, None);
    }

    fn shards(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|&name| name.to_owned()).collect()
    }

    #[test]
    fn off_hash_ring_a_move_between_two_shards_that_stay_is_unnecessary() {
        // s1 leaves: b and c must move off it; d moves from s2 to s0, both there before and
        // after, which bounded-load must not do; e stays on s1, outstanding.
        let before = assignment(&[
            ("a", "s0"),
            ("b", "s1"),
            ("c", "s1"),
            ("d", "s2"),
            ("e", "s1"),
        ]);
        let after = assignment(&[
            ("a", "s0"),
            ("b", "s0"),
            ("c", "s2"),
            ("d", "s0"),
            ("e", "s1"),
        ]);
        let available = shards(&["s0", "s2"]);
        let movement = Movement::among_available(&before, &after, &available, &leave("s1"), 3);
        assert_eq!(counts(&movement), (5, 3, 3, 1, 1));
        assert_eq!(movement.ideal, None);
    }

    #[test]
    fn off_hash_ring_moves_onto_a_joining_shard_are_neither_required_nor_unnecessary() {
        let before = assignment(&[("a", "s0"), ("b", "s0"), ("c", "s1"), ("d", "s1")]);
        let after = assignment(&[("a", "s2"), ("b", "s0"), ("c", "s1"), ("d", "s0")]);
        let available = shards(&["s0", "s1", "s2"]);
        let movement = Movement::among_available(&before, &after, &available, &join("s2"), 2);
        // a onto the new shard is fine; d from s1 to s0 went between two shards that stay.
        assert_eq!(counts(&movement), (4, 2, 0, 1, 0));
        assert_eq!(movement.ideal, Some(4.0 / 3.0));
        // The same moves judged by a hash ring that gives d to s0 count none unnecessary.
        let owners = ring(&[("a", "s2"), ("b", "s0"), ("c", "s1"), ("d", "s0")]);
        let ring_movement = Movement::of(&before, &after, owners, &join("s2"), 2);
        assert_eq!(ring_movement.unnecessary, 0);
    }

    fn failover(shard: &str, kind: FailoverKind, killed: i64, dead: Option<i64>) -> FailoverEvents {
        let at = |seconds| Timestamp::from_second(seconds).unwrap();
        FailoverEvents {
            shard: shard.to_owned(),
            kind,
            killed_at: at(killed),
            lease_dead_at: dead.map(at),
            recovery: crate::measure::failover::Recovery {
                objects: 0,
                assigned_after_kill: 0,
                to_reconcile: 0,
                all_assigned_at: None,
                all_reconciled_at: None,
            },
        }
    }

    #[test]
    fn a_join_while_a_killed_shard_is_still_in_the_ring_is_during_its_failover() {
        let at = |seconds| Timestamp::from_second(seconds).unwrap();
        let failovers = [
            failover("s0", FailoverKind::Involuntary, 100, Some(130)),
            failover("s1", FailoverKind::Voluntary, 200, Some(200)),
        ];
        // The replacement joins 2 s after the SIGKILL; s0 leaves when its Lease is dead.
        assert_eq!(during_failover(at(102), &failovers), Some("s0".to_owned()));
        assert_eq!(during_failover(at(130), &failovers), None);
        assert_eq!(during_failover(at(202), &failovers), None);
        assert_eq!(
            killed(&leave("s0"), at(130), &failovers),
            Some(FailoverKind::Involuntary)
        );
        assert_eq!(
            killed(&leave("s1"), at(200), &failovers),
            Some(FailoverKind::Voluntary)
        );
        assert_eq!(killed(&leave("s2"), at(300), &failovers), None);
        assert_eq!(killed(&join("s0"), at(300), &failovers), None);
    }
}
