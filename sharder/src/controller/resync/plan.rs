//! What a resync does with one object (docs/contract.md#drain-and-move): nothing, drain it, or move
//! it.

use sharding::{consistent_hash::Ring, leases::Shards};

/// The action a resync takes on one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Correctly assigned, unkeyable, or no shard is available: leave it.
    Nothing,
    /// Ask the current, still available shard to let go of the object first.
    Drain,
    /// Remove the labels so that the webhook assigns the object anew.
    Move,
}

/// Decides the action for an object with hash `key` (`None`: the object is not assigned,
/// e.g. a controlled object without controller) that is on `current_shard` now.
///
/// Only main objects are drained: the main object is the point where the old and the new
/// shard synchronize, so controlled objects simply follow it.
#[must_use]
pub fn plan(
    key: Option<&str>,
    current_shard: Option<&str>,
    controlled: bool,
    ring: &Ring,
    shards: &Shards,
) -> Action {
    let Some(desired) = key.and_then(|key| ring.hash(key)) else {
        return Action::Nothing;
    };
    let current = current_shard.filter(|shard| !shard.is_empty());
    match current {
        Some(current) if current == desired => Action::Nothing,
        Some(current) if !controlled && shards.is_available(current) => Action::Drain,
        _ => Action::Move,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
    use sharding::ring::from_leases;

    use super::*;

    fn lease(name: &str, holder: &str) -> Lease {
        sharding::testing::lease(name)
            .holder(holder)
            .renewed_at(Timestamp::now())
            .build()
    }

    /// A ring of shard-a (available) and shard-dead (released), and a key on shard-a.
    fn fixture() -> (Ring, Shards, String) {
        let leases = [lease("shard-a", "shard-a"), lease("shard-dead", "")];
        let (ring, shards) = from_leases(&leases, Timestamp::now());
        (ring, shards, "group/Kind/ns/name".to_owned())
    }

    #[test]
    fn a_correctly_assigned_object_is_left_alone() {
        let (ring, shards, key) = fixture();
        assert_eq!(
            plan(Some(&key), Some("shard-a"), false, &ring, &shards),
            Action::Nothing
        );
    }

    #[test]
    fn an_unassigned_object_is_moved() {
        let (ring, shards, key) = fixture();
        assert_eq!(plan(Some(&key), None, false, &ring, &shards), Action::Move);
        assert_eq!(
            plan(Some(&key), Some(""), false, &ring, &shards),
            Action::Move
        );
    }

    #[test]
    fn an_object_on_an_unavailable_or_unknown_shard_is_moved() {
        let (ring, shards, key) = fixture();
        assert_eq!(
            plan(Some(&key), Some("shard-dead"), false, &ring, &shards),
            Action::Move
        );
        assert_eq!(
            plan(Some(&key), Some("shard-gone"), false, &ring, &shards),
            Action::Move
        );
    }

    #[test]
    fn a_main_object_on_another_available_shard_is_drained_but_a_controlled_one_is_moved() {
        let leases = [lease("shard-a", "shard-a"), lease("shard-b", "shard-b")];
        let (ring, shards) = from_leases(&leases, Timestamp::now());
        let key = "group/Kind/ns/name";
        let desired = ring.hash(key).unwrap().to_owned();
        let other = if desired == "shard-a" {
            "shard-b"
        } else {
            "shard-a"
        };
        assert_eq!(
            plan(Some(key), Some(other), false, &ring, &shards),
            Action::Drain
        );
        assert_eq!(
            plan(Some(key), Some(other), true, &ring, &shards),
            Action::Move
        );
    }

    #[test]
    fn nothing_happens_without_a_key_or_without_available_shards() {
        let (ring, shards, key) = fixture();
        assert_eq!(
            plan(None, Some("shard-dead"), true, &ring, &shards),
            Action::Nothing
        );
        let (empty, no_shards) = from_leases(&[], Timestamp::now());
        assert_eq!(
            plan(Some(&key), Some("shard-dead"), false, &empty, &no_shards),
            Action::Nothing
        );
    }
}
