//! Movement: the objects a membership change re-assigned, against the least that had to move
//! (docs/experiments.md).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{as_f64, ratio};

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

/// The objects a membership change re-assigned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Movement {
    /// Objects assigned both before and after the change.
    pub objects: usize,
    /// Of those, the objects on another shard afterwards.
    pub moved: usize,
    /// Moved objects that did not have to move: on a join those that went elsewhere than the
    /// new shard, on a leave those that were not on the departed shard. A consistent hash
    /// moves none.
    pub unnecessary: usize,
    /// `moved / objects`.
    pub moved_share: f64,
    /// The least share that must move: `1 / (N + 1)` on a join to N shards (the new shard's
    /// fair share), the departed shard's share before the change on a leave; 0 when the last
    /// shard leaves, since no shard is left to take its objects until another joins.
    pub ideal_share: f64,
    /// `moved_share / ideal_share`; 1 is ideal, `None` when nothing had to move.
    pub ratio_to_ideal: Option<f64>,
}

impl Movement {
    /// The movement between two assignments (object to shard) taken before and after `change`
    /// of a ring of `shards_before` shards.
    ///
    /// Objects in only one of them were created or deleted meanwhile (or not yet assigned) and
    /// are left out.
    #[must_use]
    pub fn of(
        before: &BTreeMap<String, String>,
        after: &BTreeMap<String, String>,
        change: &Change,
        shards_before: usize,
    ) -> Self {
        let pairs: Vec<(&str, &str)> = before
            .iter()
            .filter_map(|(object, old)| Some((old.as_str(), after.get(object)?.as_str())))
            .collect();
        let objects = pairs.len();
        let moved = pairs.iter().filter(|(old, new)| old != new).count();
        let unnecessary = pairs
            .iter()
            .filter(|(old, new)| old != new && !is_necessary(change, old, new))
            .count();
        let moved_share = share(moved, objects);
        let ideal_share = match change {
            Change::Join { .. } => 1.0 / as_f64(shards_before as u64 + 1),
            Change::Leave { .. } if shards_before <= 1 => 0.0,
            Change::Leave { shard } => share(
                pairs.iter().filter(|(old, _)| old == shard).count(),
                objects,
            ),
        };
        Self {
            objects,
            moved,
            unnecessary,
            moved_share,
            ideal_share,
            ratio_to_ideal: ratio(moved_share, ideal_share),
        }
    }
}

/// Whether moving an object from `old` to `new` is part of `change`.
fn is_necessary(change: &Change, old: &str, new: &str) -> bool {
    match change {
        Change::Join { shard } => new == shard,
        Change::Leave { shard } => old == shard,
    }
}

/// `part / whole`, 0 without a whole.
fn share(part: usize, whole: usize) -> f64 {
    ratio(as_f64(part as u64), as_f64(whole as u64)).unwrap_or(0.0)
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

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-9
    }

    #[test]
    fn a_join_is_measured_against_the_new_shards_fair_share() {
        let before = assignment(&[("a", "s0"), ("b", "s0"), ("c", "s1"), ("d", "s1")]);
        let after = assignment(&[("a", "s2"), ("b", "s0"), ("c", "s1"), ("d", "s1")]);
        let movement = Movement::of(&before, &after, &join("s2"), 2);
        assert_eq!(
            (movement.objects, movement.moved, movement.unnecessary),
            (4, 1, 0)
        );
        assert!(close(movement.moved_share, 0.25));
        assert!(close(movement.ideal_share, 1.0 / 3.0));
        assert!(close(movement.ratio_to_ideal.unwrap(), 0.75));
    }

    #[test]
    fn moves_between_old_shards_on_a_join_are_unnecessary() {
        let before = assignment(&[("a", "s0"), ("b", "s1")]);
        let after = assignment(&[("a", "s1"), ("b", "s2")]);
        let movement = Movement::of(&before, &after, &join("s2"), 2);
        assert_eq!((movement.moved, movement.unnecessary), (2, 1));
    }

    #[test]
    fn a_leave_is_measured_against_the_departed_shards_share() {
        let before = assignment(&[("a", "s0"), ("b", "s1"), ("c", "s1"), ("d", "s2")]);
        let after = assignment(&[("a", "s0"), ("b", "s0"), ("c", "s2"), ("d", "s0")]);
        let movement = Movement::of(&before, &after, &leave("s1"), 3);
        assert_eq!(
            (movement.objects, movement.moved, movement.unnecessary),
            (4, 3, 1)
        );
        assert!(close(movement.moved_share, 0.75));
        assert!(close(movement.ideal_share, 0.5));
        assert!(close(movement.ratio_to_ideal.unwrap(), 1.5));
    }

    #[test]
    fn objects_created_or_deleted_meanwhile_are_ignored() {
        let before = assignment(&[("a", "s0"), ("deleted", "s1"), ("b", "s1")]);
        let after = assignment(&[("a", "s0"), ("b", "s0"), ("created", "s1")]);
        let movement = Movement::of(&before, &after, &leave("s1"), 2);
        assert_eq!((movement.objects, movement.moved), (2, 1));
        assert!(close(movement.ideal_share, 0.5));
        assert!(close(movement.ratio_to_ideal.unwrap(), 1.0));
    }

    #[test]
    fn no_common_objects_move_nothing_and_have_no_ratio_on_a_leave() {
        let movement = Movement::of(&BTreeMap::new(), &BTreeMap::new(), &leave("s1"), 2);
        assert_eq!((movement.objects, movement.moved), (0, 0));
        assert!(close(movement.moved_share, 0.0));
        assert!(close(movement.ideal_share, 0.0));
        assert_eq!(movement.ratio_to_ideal, None);
    }

    #[test]
    fn a_join_to_an_empty_ring_has_the_whole_share_as_ideal() {
        let before = assignment(&[("a", "s0")]);
        let after = assignment(&[("a", "s0")]);
        let movement = Movement::of(&before, &after, &join("s0"), 0);
        assert!(close(movement.ideal_share, 1.0));
        assert_eq!(movement.ratio_to_ideal, Some(0.0));
    }

    #[test]
    fn the_leave_of_the_last_shard_has_nothing_to_move_to_and_no_ratio() {
        let before = assignment(&[("a", "s0"), ("b", "s0")]);
        let movement = Movement::of(&before, &before, &leave("s0"), 1);
        assert_eq!(movement.moved, 0);
        assert!(close(movement.ideal_share, 0.0));
        assert_eq!(movement.ratio_to_ideal, None);
    }

    #[test]
    fn the_leave_of_a_shard_without_objects_has_no_ratio() {
        let before = assignment(&[("a", "s0")]);
        let movement = Movement::of(&before, &before, &leave("s1"), 2);
        assert_eq!(movement.moved, 0);
        assert_eq!(movement.ratio_to_ideal, None);
    }
}
