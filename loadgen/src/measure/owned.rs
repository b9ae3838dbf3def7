//! Whether the objects a controller makes for the run's objects carry their owner's shard label
//! (docs/workloads.md#owned-objects): the sharder assigns an owned object to its controller owner's
//! shard, so that the shard's filtered cache sees both. Checked once a shard count has settled;
//! pure over what a listing showed.

use std::collections::BTreeMap;

use serde::Serialize;

/// Owned objects against their owners' shards.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OwnedCheck {
    /// Owned objects of the declared kinds whose controller owner is an object of the run.
    pub checked: u64,
    /// Of those, labelled with their owner's shard.
    pub on_owner_shard: u64,
    /// Labelled with another shard than their owner's.
    pub elsewhere: u64,
    /// Without a shard label while their owner has one.
    pub unlabelled: u64,
    /// Whose owner has no shard label itself: not judged.
    pub owner_unassigned: u64,
}

impl OwnedCheck {
    /// The check of `owned`, each object's controller owner by hash key with the object's
    /// shard label, against `assignment`, the shard of each object of the run by hash key
    /// (`None`: the object is of the run but not assigned). An owned object whose owner is not
    /// an object of the run is left out.
    #[must_use]
    pub fn of<'a>(
        owned: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
        assignment: &BTreeMap<String, Option<String>>,
    ) -> Self {
        let mut check = Self::default();
        for (owner, shard) in owned {
            let Some(owner_shard) = assignment.get(owner) else {
                continue;
            };
            check.checked += 1;
            match (owner_shard.as_deref(), shard) {
                (None, _) => check.owner_unassigned += 1,
                (Some(_), None) => check.unlabelled += 1,
                (Some(expected), Some(shard)) if expected == shard => check.on_owner_shard += 1,
                (Some(_), Some(_)) => check.elsewhere += 1,
            }
        }
        check
    }

    /// Owned objects whose owner is assigned but which are not on its shard.
    #[must_use]
    pub fn off_owner_shard(&self) -> u64 {
        self.elsewhere + self.unlabelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_owned_object_is_judged_against_its_owners_shard() {
        let assignment = BTreeMap::from([
            ("/Secret/p/a".to_owned(), Some("s0".to_owned())),
            ("/Secret/p/b".to_owned(), Some("s1".to_owned())),
            ("/Secret/p/c".to_owned(), None),
        ]);
        let owned = [
            ("/Secret/p/a", Some("s0")),
            ("/Secret/p/a", Some("s1")),
            ("/Secret/p/b", None),
            ("/Secret/p/c", Some("s0")),
            // Owned by an object of another run: not checked.
            ("/Secret/p/other", Some("s0")),
        ];
        let check = OwnedCheck::of(owned, &assignment);
        assert_eq!(
            check,
            OwnedCheck {
                checked: 4,
                on_owner_shard: 1,
                elsewhere: 1,
                unlabelled: 1,
                owner_unassigned: 1,
            }
        );
        assert_eq!(check.off_owner_shard(), 2);
    }
}
