//! Assignment strategies (docs/strategies.md): the hash ring of the contract, and bounded-load, an
//! opt-in that keeps every shard within 5 % of the mean number of objects.
//!
//! The hash ring lives in [`crate::consistent_hash`] and needs no state. Bounded-load places an
//! object on the first shard of its rendezvous order ([`preference`]) whose load is below
//! [`capacity`], so it needs the ring's current assignment: an [`Assignment`].

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    str::FromStr,
};

use serde::{Deserialize, Serialize};

use crate::api::ControllerRing;

/// The ControllerRing annotation that opts a ring into a strategy (docs/strategies.md#choosing).
/// Only this project's sharder reads it; without it a ring uses the hash ring.
pub const ANNOTATION: &str = "alpha.sharding.timebertt.dev/assignment-strategy";

/// How the sharder picks the shard of an object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Strategy {
    /// The consistent hash ring of the contract (docs/contract.md#hash-ring): a Go sharder assigns
    /// every object identically.
    #[default]
    HashRing,
    /// Rendezvous hashing with a load bound (docs/strategies.md#bounded-load).
    BoundedLoad,
}

impl Strategy {
    /// Every strategy, the default first.
    pub const ALL: [Self; 2] = [Self::HashRing, Self::BoundedLoad];

    /// The name in the annotation, scenarios and reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::HashRing => "hash-ring",
            Self::BoundedLoad => "bounded-load",
        }
    }

    /// The strategy `ring` asks for with [`ANNOTATION`]; the hash ring without the annotation.
    ///
    /// # Errors
    /// The annotation names no strategy.
    pub fn of(ring: &ControllerRing) -> Result<Self, InvalidStrategy> {
        match ring
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(ANNOTATION))
        {
            None => Ok(Self::default()),
            Some(value) => value
                .parse()
                .map_err(|error: InvalidStrategy| InvalidStrategy {
                    annotation: true,
                    ..error
                }),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Strategy {
    type Err = InvalidStrategy;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|strategy| strategy.name() == value)
            .ok_or_else(|| InvalidStrategy {
                value: value.to_owned(),
                annotation: false,
            })
    }
}

impl Serialize for Strategy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Strategy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        value.parse().map_err(serde::de::Error::custom)
    }
}

/// A name that is no strategy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{}unknown assignment strategy {value:?}, expected one of: hash-ring, bounded-load",
    if *annotation { format!("annotation {ANNOTATION}: ") } else { String::new() }
)]
pub struct InvalidStrategy {
    /// The name given.
    pub value: String,
    /// Whether it was read from a ControllerRing's [`ANNOTATION`].
    pub annotation: bool,
}

/// How much more than the mean one shard may hold under bounded-load, in percent.
pub const LOAD_BOUND_PERCENT: usize = 105;

/// The most objects one of `shards` shards may hold when the ring has `objects` objects:
/// `max(ceil(n/k), floor(1.05·n/k))`. Rounding down keeps the hottest shard within 5 % of the
/// mean; the ceiling leaves room for every object. 0 without shards.
#[must_use]
pub fn capacity(objects: usize, shards: usize) -> usize {
    if shards == 0 {
        return 0;
    }
    objects
        .div_ceil(shards)
        .max(objects * LOAD_BOUND_PERCENT / (100 * shards))
}

/// The rendezvous weight of `key` on a shard whose name hashes to `seed`.
fn weight(key: &str, seed: u64) -> u64 {
    xxhash_rust::xxh64::xxh64(key.as_bytes(), seed)
}

fn seed(shard: &str) -> u64 {
    crate::consistent_hash::xxhash64(shard.as_bytes())
}

/// The rendezvous (highest random weight) order of `shards` for `key`, most preferred first:
/// by `xxHash64(key, seed = xxHash64(shard))` descending, ties by name. A shard that joins takes
/// the first place of about one key in k+1, from every other shard alike.
#[must_use]
pub fn preference<'a, S: AsRef<str>>(key: &str, shards: &'a [S]) -> Vec<&'a str> {
    let mut weighted: Vec<(u64, &str)> = shards
        .iter()
        .map(|shard| {
            let shard = shard.as_ref();
            (weight(key, seed(shard)), shard)
        })
        .collect();
    weighted.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    weighted.into_iter().map(|(_, shard)| shard).collect()
}

/// One object that a rebalance moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    /// The object's hash key.
    pub key: String,
    /// Its shard now (maybe no longer available).
    pub from: String,
    /// The shard it goes to.
    pub to: String,
}

/// The bounded-load assignment of one ring: the shard of each main object, by hash key, and the
/// load of each shard. Controlled objects are not in it: they follow their owner
/// (docs/strategies.md#controlled-objects).
///
/// Equal tables give equal answers, whatever the order they were built in: sharder replicas that
/// have seen the same objects place alike.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    shards: BTreeMap<String, String>,
    /// Objects per shard; shards without objects are absent.
    loads: HashMap<String, usize>,
}

impl Assignment {
    /// An empty table.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `key` is on `shard`, moving it if it was elsewhere.
    pub fn set(&mut self, key: impl Into<String>, shard: impl Into<String>) {
        let shard = shard.into();
        *self.loads.entry(shard.clone()).or_default() += 1;
        if let Some(previous) = self.shards.insert(key.into(), shard) {
            self.unload(&previous);
        }
    }

    /// Forgets `key`; its shard, if it had one.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let previous = self.shards.remove(key)?;
        self.unload(&previous);
        Some(previous)
    }

    fn unload(&mut self, shard: &str) {
        if let Some(load) = self.loads.get_mut(shard) {
            *load -= 1;
            if *load == 0 {
                self.loads.remove(shard);
            }
        }
    }

    /// The shard of `key`.
    #[must_use]
    pub fn shard_of(&self, key: &str) -> Option<&str> {
        self.shards.get(key).map(String::as_str)
    }

    /// The objects on `shard`.
    #[must_use]
    pub fn load(&self, shard: &str) -> usize {
        self.loads.get(shard).copied().unwrap_or_default()
    }

    /// The number of objects.
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether there are no objects.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Every object as `(key, shard)`, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.shards
            .iter()
            .map(|(key, shard)| (key.as_str(), shard.as_str()))
    }

    /// Where `key` goes, new or released by its shard: the first shard of its [`preference`] among
    /// `available` whose load, without `key` itself, is below the [`capacity`] of the table with
    /// `key` in it. `None` without available shards.
    #[must_use]
    pub fn place<'a, S: AsRef<str>>(&self, key: &str, available: &'a [S]) -> Option<&'a str> {
        let own = self.shard_of(key);
        let objects = self.len() - usize::from(own.is_some()) + 1;
        let cap = capacity(objects, available.len());
        let order = preference(key, available);
        order
            .iter()
            .copied()
            .find(|&shard| self.load(shard) - usize::from(own == Some(shard)) < cap)
            // Unreachable: k shards hold at most n-1 other objects, below k·cap ≥ n.
            .or_else(|| order.first().copied())
    }

    /// The moves that bring the table within bounds on `available` (docs/strategies.md#rebalance):
    /// every object on a shard that is not available, and the excess of every shard above the
    /// [`capacity`], those whose best alternative is least loaded first. Each goes where
    /// [`place`](Self::place) would put it, one after the other, in a deterministic order.
    /// Objects that stay are not listed.
    #[must_use]
    pub fn rebalance<S: AsRef<str>>(&self, available: &[S]) -> Vec<Move> {
        if available.is_empty() {
            return Vec::new();
        }
        let mut loads: BTreeMap<&str, usize> = available
            .iter()
            .map(|shard| (shard.as_ref(), self.load(shard.as_ref())))
            .collect();
        let cap = capacity(self.len(), loads.len());
        let mut released: Vec<(&str, &str)> = self
            .iter()
            .filter(|(_, shard)| !loads.contains_key(shard))
            .collect();

        let over: Vec<(&str, usize)> = loads
            .iter()
            .filter(|&(_, &load)| load > cap)
            .map(|(&shard, &load)| (shard, load))
            .collect();
        for (shard, load) in over {
            let mut candidates: Vec<(usize, usize, &str)> = self
                .iter()
                .filter(|&(_, on)| on == shard)
                .map(|(key, _)| {
                    let order = preference(key, available);
                    let rank = order.iter().position(|&s| s == shard).unwrap_or_default();
                    let alternative = order
                        .iter()
                        .find(|&&s| s != shard)
                        .map_or(usize::MAX, |s| loads[s]);
                    // Shed first the objects whose best alternative has the most room, then
                    // those that like this shard least.
                    (alternative, usize::MAX - rank, key)
                })
                .collect();
            candidates.sort_unstable();
            released.extend(
                candidates
                    .into_iter()
                    .take(load - cap)
                    .map(|(_, _, key)| (key, shard)),
            );
            loads.insert(shard, cap);
        }

        let mut moves = Vec::with_capacity(released.len());
        for (key, from) in released {
            let order = preference(key, available);
            let Some(&to) = order
                .iter()
                .find(|&&shard| loads[shard] < cap)
                .or_else(|| order.first())
            else {
                continue;
            };
            *loads.entry(to).or_default() += 1;
            moves.push(Move {
                key: key.to_owned(),
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        moves
    }

    /// Applies `moves`.
    pub fn apply(&mut self, moves: &[Move]) {
        for Move { key, to, .. } in moves {
            self.set(key.clone(), to.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn shards(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("shard-{i}")).collect()
    }

    fn keys(count: usize) -> Vec<String> {
        (0..count)
            .map(|i| {
                format!(
                    "webhosting.timebertt.dev/Website/project-{}/website-{i}",
                    i % 20
                )
            })
            .collect()
    }

    /// Places `keys` one by one, as the webhook does.
    fn placed(keys: &[String], available: &[String]) -> Assignment {
        let mut table = Assignment::new();
        for key in keys {
            let shard = table.place(key, available).expect("shards available");
            table.set(key.clone(), shard);
        }
        table
    }

    /// The most loaded shard's objects, and whether they are within 5 % of the mean.
    fn hottest(table: &Assignment, available: &[String]) -> (usize, bool) {
        let max = available.iter().map(|s| table.load(s)).max().unwrap_or(0);
        (max, max * available.len() * 100 <= table.len() * 105)
    }

    #[test]
    fn names_parse_and_print() {
        for strategy in Strategy::ALL {
            assert_eq!(strategy.name().parse::<Strategy>(), Ok(strategy));
            assert_eq!(strategy.to_string(), strategy.name());
        }
        let error = "balanced".parse::<Strategy>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown assignment strategy \"balanced\", expected one of: hash-ring, bounded-load"
        );
        let parsed: Vec<Strategy> =
            serde_json::from_str(r#"["bounded-load","hash-ring"]"#).unwrap();
        assert_eq!(parsed, [Strategy::BoundedLoad, Strategy::HashRing]);
        assert!(serde_json::from_str::<Strategy>(r#""ring""#).is_err());
    }

    #[test]
    fn the_annotation_picks_the_strategy_and_its_absence_the_hash_ring() {
        let mut ring = ControllerRing::new("ring", crate::api::ControllerRingSpec::default());
        assert_eq!(Strategy::of(&ring), Ok(Strategy::HashRing));
        ring.metadata.annotations =
            Some([(ANNOTATION.to_owned(), "bounded-load".to_owned())].into());
        assert_eq!(Strategy::of(&ring), Ok(Strategy::BoundedLoad));
        ring.metadata.annotations = Some([(ANNOTATION.to_owned(), String::new())].into());
        let error = Strategy::of(&ring).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(&format!("annotation {ANNOTATION}: unknown")),
            "{error}"
        );
    }

    #[test]
    fn capacity_rounds_down_the_bound_but_leaves_room_for_every_object() {
        assert_eq!(capacity(1000, 10), 105);
        assert_eq!(capacity(1000, 3), 350);
        assert_eq!(capacity(10, 3), 4);
        assert_eq!(capacity(1, 2), 1);
        assert_eq!(capacity(0, 2), 0);
        assert_eq!(capacity(7, 0), 0);
        for n in 0..200 {
            for k in 1..12 {
                assert!(k * capacity(n, k) >= n, "n={n} k={k}");
            }
        }
    }

    #[test]
    fn preference_is_an_order_of_every_shard_and_a_join_takes_one_key_in_k_plus_one() {
        let before = shards(4);
        let mut after = before.clone();
        after.push("shard-new".to_owned());
        let keys = keys(10_000);
        let mut taken = 0;
        for key in &keys {
            let order = preference(key, &before);
            assert_eq!(order.iter().collect::<BTreeSet<_>>().len(), 4);
            let order_after = preference(key, &after);
            // Adding a shard only inserts it: the others keep their order.
            let without: Vec<&str> = order_after
                .iter()
                .copied()
                .filter(|s| *s != "shard-new")
                .collect();
            assert_eq!(without, order);
            taken += usize::from(order_after[0] == "shard-new");
        }
        assert!(
            (1_800..2_200).contains(&taken),
            "{taken} of 10000 keys prefer the new shard"
        );
    }

    #[test]
    fn placing_one_by_one_keeps_every_shard_within_five_percent_of_the_mean() {
        for objects in [1_000, 2_500, 10_000] {
            let keys = keys(objects);
            for count in 2..=10 {
                let available = shards(count);
                let table = placed(&keys, &available);
                assert_eq!(table.len(), objects);
                let (max, within) = hottest(&table, &available);
                assert!(
                    within,
                    "{objects} objects on {count} shards: {max} on the hottest"
                );
            }
        }
    }

    /// Counts the moves of `moves`: all of them, and those between two shards that are in both
    /// `before` and `after` (unnecessary: a join or leave did not require them).
    fn counted(moves: &[Move], before: &[String], after: &[String]) -> (usize, usize) {
        let stays =
            |shard: &str| before.iter().any(|s| s == shard) && after.iter().any(|s| s == shard);
        let unnecessary = moves
            .iter()
            .filter(|m| stays(&m.from) && stays(&m.to))
            .count();
        (moves.len(), unnecessary)
    }

    #[test]
    fn a_join_or_a_leave_moves_at_most_the_ideal_number_and_nothing_unnecessary() {
        for objects in [1_000, 10_000] {
            let keys = keys(objects);
            for count in 2..=10 {
                let before = shards(count);
                let table = placed(&keys, &before);

                let mut joined = before.clone();
                joined.push("shard-new".to_owned());
                let plan = table.rebalance(&joined);
                let (moved, unnecessary) = counted(&plan, &before, &joined);
                // At most 1.1 times the ideal n/(k+1).
                assert!(
                    moved * 10 * joined.len() <= 11 * objects,
                    "join {count}→{}: {moved} moves",
                    count + 1
                );
                assert_eq!(unnecessary, 0, "join {count}→{}", count + 1);
                let mut after = table.clone();
                after.apply(&plan);
                assert!(hottest(&after, &joined).1, "join {count}→{}", count + 1);
                assert!(
                    after.rebalance(&joined).is_empty(),
                    "a balanced table stays"
                );

                let left: Vec<String> = before[1..].to_vec();
                let plan = table.rebalance(&left);
                let (moved, unnecessary) = counted(&plan, &before, &left);
                let ideal = table.load("shard-0");
                assert_eq!(moved, ideal, "leave {count}→{}", count - 1);
                assert_eq!(unnecessary, 0, "leave {count}→{}", count - 1);
                let mut after = table.clone();
                after.apply(&plan);
                assert!(hottest(&after, &left).1, "leave {count}→{}", count - 1);
            }
        }
    }

    #[test]
    fn a_shed_object_goes_where_the_webhook_would_place_it() {
        let keys = keys(1_000);
        let before = shards(3);
        let mut table = placed(&keys, &before);
        let mut joined = before.clone();
        joined.push("shard-new".to_owned());
        // The webhook places each object when its shard releases it, after the moves before it.
        for planned in table.rebalance(&joined) {
            assert_eq!(
                table.place(&planned.key, &joined),
                Some(planned.to.as_str())
            );
            table.set(planned.key, planned.to);
        }
    }

    #[test]
    fn the_same_objects_in_any_order_give_the_same_answers() {
        let keys = keys(2_000);
        let available = shards(5);
        let table = placed(&keys, &available);
        let mut reversed = Assignment::new();
        for (key, shard) in table.iter().collect::<Vec<_>>().into_iter().rev() {
            reversed.set(key, shard);
        }
        assert_eq!(reversed, table);
        let mut joined = available.clone();
        joined.push("shard-new".to_owned());
        assert_eq!(reversed.rebalance(&joined), table.rebalance(&joined));
        for key in ["a/B/c/d", &keys[17]] {
            assert_eq!(reversed.place(key, &joined), table.place(key, &joined));
        }
    }

    #[test]
    fn set_and_remove_keep_the_loads() {
        let mut table = Assignment::new();
        table.set("k1", "a");
        table.set("k2", "a");
        table.set("k1", "b");
        assert_eq!((table.load("a"), table.load("b"), table.len()), (1, 1, 2));
        assert_eq!(table.remove("k2"), Some("a".to_owned()));
        assert_eq!(table.remove("k2"), None);
        let mut only_b = Assignment::new();
        only_b.set("k1", "b");
        assert_eq!(table, only_b);
    }

    #[test]
    fn without_shards_nothing_is_placed_or_moved() {
        let table = placed(&keys(10), &shards(2));
        assert_eq!(table.place("x", &[] as &[String]), None);
        assert!(table.rebalance(&[] as &[String]).is_empty());
    }

    #[test]
    fn an_object_released_by_its_shard_is_placed_without_counting_itself() {
        let available = shards(2);
        let mut table = Assignment::new();
        table.set("only", "shard-0");
        assert!(table.place("only", &available).is_some());
        assert_eq!(capacity(1, 2), 1);
        // With itself counted, shard-0 would be full and the object would never go back there.
        let first = preference("only", &available)[0];
        assert_eq!(table.place("only", &available), Some(first));
    }
}
