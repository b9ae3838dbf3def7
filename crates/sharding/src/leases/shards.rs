//! The shards of a ring, from their Leases.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;

use super::state::{ShardState, state};

/// One shard: the name of its Lease and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The shard's name, which is its Lease's name.
    pub name: String,
    /// The state computed from the Lease.
    pub state: ShardState,
}

/// The shards of a ring, sorted by name so that every listing is deterministic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shards(Vec<Shard>);

impl Shards {
    /// The shards whose Leases these are, with their states at `now`. The caller passes only
    /// the Leases of one ring.
    #[must_use]
    pub fn from_leases<'a>(leases: impl IntoIterator<Item = &'a Lease>, now: Timestamp) -> Self {
        leases
            .into_iter()
            .map(|lease| Shard {
                name: lease.metadata.name.clone().unwrap_or_default(),
                state: state(lease, now),
            })
            .collect()
    }

    /// The shards objects may be assigned to (uncertain, expired or ready), by name.
    pub fn available(&self) -> impl Iterator<Item = &Shard> {
        self.0.iter().filter(|shard| shard.state.is_available())
    }

    /// The shard with the given name.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&Shard> {
        let index = self
            .0
            .binary_search_by(|shard| shard.name.as_str().cmp(name))
            .ok()?;
        self.0.get(index)
    }

    /// Whether the named shard exists and is available.
    #[must_use]
    pub fn is_available(&self, name: &str) -> bool {
        self.by_name(name)
            .is_some_and(|shard| shard.state.is_available())
    }

    /// The number of shards, available or not.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no shards at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// All shards, by name.
    pub fn iter(&self) -> std::slice::Iter<'_, Shard> {
        self.0.iter()
    }
}

impl FromIterator<Shard> for Shards {
    /// Collects shards, sorting them by name.
    fn from_iter<I: IntoIterator<Item = Shard>>(iter: I) -> Self {
        let mut shards: Vec<Shard> = iter.into_iter().collect();
        shards.sort_by(|a, b| a.name.cmp(&b.name));
        Self(shards)
    }
}

impl<'a> IntoIterator for &'a Shards {
    type Item = &'a Shard;
    type IntoIter = std::slice::Iter<'a, Shard>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_lease::{held_by, lease, now};
    use super::*;
    use k8s_openapi::jiff::SignedDuration;

    fn shards() -> Shards {
        let leases = [
            lease("shard-c", now(), 10),
            held_by(lease("shard-a", now(), 10), Some("")),
            lease("shard-b", now() - SignedDuration::from_secs(12), 10),
            lease("shard-d", now() - SignedDuration::from_mins(5), 10),
        ];
        Shards::from_leases(&leases, now())
    }

    #[test]
    fn shards_are_sorted_by_name_with_their_states() {
        let got: Vec<_> = shards().iter().map(|s| (s.name.clone(), s.state)).collect();
        assert_eq!(
            got,
            [
                ("shard-a".to_owned(), ShardState::Dead),
                ("shard-b".to_owned(), ShardState::Expired),
                ("shard-c".to_owned(), ShardState::Ready),
                ("shard-d".to_owned(), ShardState::Uncertain),
            ]
        );
    }

    #[test]
    fn available_shards_are_uncertain_expired_or_ready() {
        let shards = shards();
        let available: Vec<_> = shards.available().map(|s| s.name.as_str()).collect();
        assert_eq!(available, ["shard-b", "shard-c", "shard-d"]);
        assert!(shards.is_available("shard-d"));
        assert!(!shards.is_available("shard-a"));
        assert!(!shards.is_available("shard-x"));
    }

    #[test]
    fn shards_are_found_by_name() {
        let shards = shards();
        assert_eq!(
            shards.by_name("shard-b").map(|s| s.state),
            Some(ShardState::Expired)
        );
        assert_eq!(shards.by_name("shard-x"), None);
        assert_eq!(shards.len(), 4);
        assert!(!shards.is_empty());
        assert!(Shards::from_leases([], now()).is_empty());
    }
}
