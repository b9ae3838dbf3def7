//! What a resync does with one object (docs/contract.md#drain-and-move): nothing, drain it, or move
//! it, towards the ring's hash ring or, for a bounded-load ring, towards its rebalanced load
//! table (docs/sharder.md#assignment-strategies).

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::TypeMeta;
use kube_sharding::{
    api::{GroupResource, labels},
    consistent_hash::Ring,
    key,
    leases::Shards,
    strategy::Assignment,
};

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

/// Decides the action for an object of a bounded-load ring with hash `key` (`None`: the object
/// is not assigned) that is on `current_shard` now, towards `rebalance`.
///
/// A main object is drained or moved when the rebalance moves it (drained only from an
/// available shard), and moved when it is unassigned or on a shard that is not available. A
/// controlled object is moved when it is not where the webhook would put it now: on its
/// controller's shard in the table if that shard is available, else on the controller's
/// target. While its controller drains, it stays with it and follows once the drain is
/// acknowledged, at a later resync.
#[must_use]
pub fn plan_bounded_load(
    key: Option<&str>,
    current_shard: Option<&str>,
    controlled: bool,
    rebalance: &Rebalance,
    shards: &Shards,
) -> Action {
    let Some(key) = key else {
        return Action::Nothing;
    };
    if shards.available().next().is_none() {
        return Action::Nothing;
    }
    let current = current_shard
        .filter(|shard| !shard.is_empty())
        .filter(|shard| shards.is_available(shard));
    let Some(current) = current else {
        // Unassigned, or on a shard that is gone: the webhook places it anew.
        return Action::Move;
    };
    if controlled {
        let desired = rebalance
            .table
            .shard_of(key)
            .filter(|owner| shards.is_available(owner))
            .or_else(|| rebalance.moves.get(key).map(String::as_str));
        return match desired {
            Some(desired) if desired != current => Action::Move,
            _ => Action::Nothing,
        };
    }
    match rebalance.moves.get(key) {
        Some(target) if target != current => Action::Drain,
        _ => Action::Nothing,
    }
}

/// A bounded-load ring's table as a resync found it, and the moves that bring it within
/// bounds on the available shards, computed once per resync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rebalance {
    /// The table: main-object hash key → shard.
    table: Assignment,
    /// The target shard of each main object that moves, by hash key.
    moves: HashMap<String, String>,
}

impl Rebalance {
    /// The moves of `table` onto the shards named `available`.
    #[must_use]
    pub fn new(table: Assignment, available: &[String]) -> Self {
        let moves = table
            .rebalance(available)
            .into_iter()
            .map(|moved| (moved.key, moved.to))
            .collect();
        Self { table, moves }
    }

    /// How many main objects move.
    #[must_use]
    pub fn moves(&self) -> usize {
        self.moves.len()
    }
}

/// Which objects of a resource a ring covers (docs/contract.md#cluster-scoped-resources): the
/// same ones its webhook sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Objects in the ring's namespaces.
    Namespaced,
    /// Every object: the webhook's namespaceSelector does not filter cluster-scoped objects.
    Cluster,
    /// The core `namespaces` resource: the namespaces the ring selects, as the webhook's
    /// namespaceSelector matches a Namespace by its own labels.
    Namespaces,
}

impl Scope {
    /// The scope of `group_resource`, which is `namespaced` or cluster-scoped.
    #[must_use]
    pub fn of(group_resource: &GroupResource, namespaced: bool) -> Self {
        if namespaced {
            Self::Namespaced
        } else if group_resource.group.is_empty() && group_resource.resource == "namespaces" {
            Self::Namespaces
        } else {
            Self::Cluster
        }
    }

    /// Whether the ring, whose namespaces are `namespaces`, covers `object`.
    #[must_use]
    pub fn covers(self, namespaces: &HashSet<String>, object: &ObjectMeta) -> bool {
        let field = match self {
            Self::Cluster => return true,
            Self::Namespaced => &object.namespace,
            Self::Namespaces => &object.name,
        };
        namespaces.contains(field.as_deref().unwrap_or_default())
    }
}

/// The ring a resync works towards.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// The ring's name.
    pub ring: &'a str,
    /// The hash ring of its available shards.
    pub hash_ring: &'a Ring,
    /// Its shards.
    pub shards: &'a Shards,
    /// The names of its namespaces.
    pub namespaces: &'a HashSet<String>,
}

/// One resource of a ring as a resync sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// The apiVersion and kind of its objects, which their hash key needs.
    pub types: TypeMeta,
    /// Which of its objects the ring covers.
    pub scope: Scope,
    /// Whether it is a controlled resource (keyed by the controller) rather than a main one.
    pub controlled: bool,
}

/// The action for `object` of `resource` towards `target`: [`plan`] for the objects the ring
/// covers, nothing for the others.
#[must_use]
pub fn plan_object(target: &Target<'_>, resource: &Resource, object: &ObjectMeta) -> Action {
    let Some((key, current)) = covered(target, resource, object) else {
        return Action::Nothing;
    };
    plan(
        key.as_deref(),
        current,
        resource.controlled,
        target.hash_ring,
        target.shards,
    )
}

/// The action for `object` of `resource` of a bounded-load ring towards `target` and
/// `rebalance`: [`plan_bounded_load`] for the objects the ring covers, nothing for the others.
#[must_use]
pub fn plan_object_bounded_load(
    target: &Target<'_>,
    rebalance: &Rebalance,
    resource: &Resource,
    object: &ObjectMeta,
) -> Action {
    let Some((key, current)) = covered(target, resource, object) else {
        return Action::Nothing;
    };
    plan_bounded_load(
        key.as_deref(),
        current,
        resource.controlled,
        rebalance,
        target.shards,
    )
}

/// The hash key and current shard of `object` of `resource`, if the ring of `target` covers it.
fn covered<'o>(
    target: &Target<'_>,
    resource: &Resource,
    object: &'o ObjectMeta,
) -> Option<(Option<String>, Option<&'o str>)> {
    if !resource.scope.covers(target.namespaces, object) {
        return None;
    }
    let key = if resource.controlled {
        key::for_controller(object)
    } else {
        key::for_object(Some(&resource.types), object).ok()
    };
    let current = object
        .labels
        .as_ref()
        .and_then(|labels| labels.get(&labels::shard(target.ring)));
    Some((key, current.map(String::as_str)))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
    use kube_sharding::ring::from_leases;

    use super::*;

    fn lease(name: &str, holder: &str) -> Lease {
        kube_sharding::testing::lease(name)
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

    fn namespaces(names: &[&str]) -> HashSet<String> {
        names.iter().map(|&name| name.to_owned()).collect()
    }

    fn object(namespace: Option<&str>, name: &str, shard: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            namespace: namespace.map(str::to_owned),
            name: Some(name.to_owned()),
            labels: shard.map(|shard| [(labels::shard("ring"), shard.to_owned())].into()),
            ..ObjectMeta::default()
        }
    }

    /// ConfigMaps as a main resource.
    fn config_maps() -> Resource {
        Resource {
            types: TypeMeta {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
            },
            scope: Scope::Namespaced,
            controlled: false,
        }
    }

    fn theme() -> Resource {
        Resource {
            types: TypeMeta {
                api_version: "webhosting.timebertt.dev/v1alpha1".into(),
                kind: "Theme".into(),
            },
            scope: Scope::of(
                &GroupResource::new("webhosting.timebertt.dev", "themes"),
                false,
            ),
            controlled: false,
        }
    }

    #[test]
    fn the_scope_comes_from_discovery_and_namespaces_are_their_own() {
        let of = |group: &str, resource: &str, namespaced| {
            Scope::of(&GroupResource::new(group, resource), namespaced)
        };
        assert_eq!(of("", "configmaps", true), Scope::Namespaced);
        assert_eq!(
            of("rbac.authorization.k8s.io", "clusterroles", false),
            Scope::Cluster
        );
        assert_eq!(of("", "namespaces", false), Scope::Namespaces);
    }

    #[test]
    fn cluster_scoped_objects_are_covered_whatever_the_namespaces() {
        let none = namespaces(&[]);
        assert!(Scope::Cluster.covers(&none, &object(None, "exciting", None)));
        let selected = namespaces(&["project-1"]);
        assert!(Scope::Namespaced.covers(&selected, &object(Some("project-1"), "a", None)));
        assert!(!Scope::Namespaced.covers(&selected, &object(Some("other"), "a", None)));
        assert!(Scope::Namespaces.covers(&selected, &object(None, "project-1", None)));
        assert!(!Scope::Namespaces.covers(&selected, &object(None, "other", None)));
    }

    #[test]
    fn a_cluster_scoped_object_is_keyed_with_an_empty_namespace_and_assigned() {
        let leases = [lease("shard-a", "shard-a"), lease("shard-b", "shard-b")];
        let (ring, shards) = from_leases(&leases, Timestamp::now());
        let none = namespaces(&[]);
        let target = Target {
            ring: "ring",
            hash_ring: &ring,
            shards: &shards,
            namespaces: &none,
        };
        let desired = ring
            .hash("webhosting.timebertt.dev/Theme//exciting")
            .unwrap();
        let other = if desired == "shard-a" {
            "shard-b"
        } else {
            "shard-a"
        };
        let plan = |shard| plan_object(&target, &theme(), &object(None, "exciting", shard));
        assert_eq!(plan(None), Action::Move, "unassigned");
        assert_eq!(plan(Some(desired)), Action::Nothing, "on its shard");
        assert_eq!(
            plan(Some(other)),
            Action::Drain,
            "on another available shard"
        );
        assert_eq!(plan(Some("shard-dead")), Action::Move, "on a dead shard");
    }

    #[test]
    fn a_namespaced_object_outside_the_rings_namespaces_is_left_alone() {
        let (ring, shards, _) = fixture();
        let selected = namespaces(&["project-1"]);
        let target = Target {
            ring: "ring",
            hash_ring: &ring,
            shards: &shards,
            namespaces: &selected,
        };
        let config_maps = config_maps();
        let outside = object(Some("other"), "cm", Some("shard-dead"));
        assert_eq!(
            plan_object(&target, &config_maps, &outside),
            Action::Nothing
        );
        let inside = object(Some("project-1"), "cm", Some("shard-dead"));
        assert_eq!(plan_object(&target, &config_maps, &inside), Action::Move);
    }

    /// shard-a and shard-b available, shard-dead released.
    fn bounded_shards() -> Shards {
        let leases = [
            lease("shard-a", "shard-a"),
            lease("shard-b", "shard-b"),
            lease("shard-dead", ""),
        ];
        Shards::from_leases(&leases, Timestamp::now())
    }

    /// Ten main objects on shard-a and one on shard-dead: the one on shard-dead moves, and so
    /// does shard-a's excess over its capacity.
    fn rebalance() -> Rebalance {
        let mut table = Assignment::new();
        for i in 0..10 {
            table.set(format!("/ConfigMap/ns/cm-{i}"), "shard-a");
        }
        table.set("/ConfigMap/ns/on-dead", "shard-dead");
        Rebalance::new(table, &["shard-a".to_owned(), "shard-b".to_owned()])
    }

    /// A key of `rebalance` that moves from shard-a, and one that stays there.
    fn moving_and_staying(rebalance: &Rebalance) -> (String, String) {
        let (mut moving, mut staying) = (None, None);
        for (key, shard) in rebalance.table.iter() {
            if shard != "shard-a" {
                continue;
            }
            match rebalance.moves.get(key) {
                Some(_) => moving = Some(key.to_owned()),
                None => staying = Some(key.to_owned()),
            }
        }
        (moving.unwrap(), staying.unwrap())
    }

    #[test]
    fn bounded_load_drains_the_main_objects_the_rebalance_moves_off_available_shards() {
        let (rebalance, shards) = (rebalance(), bounded_shards());
        let (moving, staying) = moving_and_staying(&rebalance);
        assert_eq!(
            rebalance.moves.get(&moving).map(String::as_str),
            Some("shard-b")
        );
        let plan =
            |key: &str, shard| plan_bounded_load(Some(key), shard, false, &rebalance, &shards);
        assert_eq!(plan(&moving, Some("shard-a")), Action::Drain);
        assert_eq!(plan(&staying, Some("shard-a")), Action::Nothing);
        assert_eq!(
            plan(&moving, Some("shard-b")),
            Action::Nothing,
            "already there"
        );
    }

    #[test]
    fn bounded_load_moves_main_objects_off_unavailable_shards_and_unassigned_ones() {
        let (rebalance, shards) = (rebalance(), bounded_shards());
        assert!(rebalance.moves.contains_key("/ConfigMap/ns/on-dead"));
        let plan =
            |key: &str, shard| plan_bounded_load(Some(key), shard, false, &rebalance, &shards);
        assert_eq!(
            plan("/ConfigMap/ns/on-dead", Some("shard-dead")),
            Action::Move
        );
        assert_eq!(plan("/ConfigMap/ns/new", None), Action::Move);
        assert_eq!(plan("/ConfigMap/ns/new", Some("")), Action::Move);
        assert_eq!(plan("/ConfigMap/ns/new", Some("shard-gone")), Action::Move);
        assert_eq!(
            plan_bounded_load(None, Some("shard-dead"), false, &rebalance, &shards),
            Action::Nothing,
            "unkeyable"
        );
    }

    #[test]
    fn bounded_load_moves_controlled_objects_to_where_the_webhook_puts_them() {
        let (rebalance, shards) = (rebalance(), bounded_shards());
        let (moving, staying) = moving_and_staying(&rebalance);
        let plan =
            |owner: &str, shard| plan_bounded_load(Some(owner), shard, true, &rebalance, &shards);
        assert_eq!(plan(&staying, Some("shard-a")), Action::Nothing);
        assert_eq!(
            plan(&staying, Some("shard-b")),
            Action::Move,
            "off its owner's shard"
        );
        assert_eq!(plan(&staying, Some("shard-dead")), Action::Move);
        assert_eq!(plan(&staying, None), Action::Move);
        // A draining owner is still on shard-a, where the webhook would put the object.
        assert_eq!(
            plan(&moving, Some("shard-a")),
            Action::Nothing,
            "stays with its draining owner"
        );
        // The owner on shard-dead is moved first in the same resync, to its target.
        let on_dead = "/ConfigMap/ns/on-dead";
        let target = rebalance.moves[on_dead].as_str();
        let other = if target == "shard-a" {
            "shard-b"
        } else {
            "shard-a"
        };
        assert_eq!(plan(on_dead, Some(other)), Action::Move);
        assert_eq!(plan(on_dead, Some(target)), Action::Nothing);
        // An owner the table does not know: the object stays where it is while that is available.
        assert_eq!(
            plan("/ConfigMap/ns/unknown", Some("shard-a")),
            Action::Nothing
        );
        assert_eq!(
            plan("/ConfigMap/ns/unknown", Some("shard-dead")),
            Action::Move
        );
    }

    #[test]
    fn bounded_load_leaves_everything_while_no_shard_is_available() {
        let rebalance = rebalance();
        let none = Shards::from_leases(&[lease("shard-dead", "")], Timestamp::now());
        for controlled in [false, true] {
            assert_eq!(
                plan_bounded_load(
                    Some("/ConfigMap/ns/on-dead"),
                    Some("shard-dead"),
                    controlled,
                    &rebalance,
                    &none
                ),
                Action::Nothing
            );
        }
    }

    #[test]
    fn bounded_load_plans_only_the_objects_the_ring_covers() {
        let (rebalance, shards) = (rebalance(), bounded_shards());
        let (ring, _) = from_leases(&[], Timestamp::now());
        let selected = namespaces(&["ns"]);
        let target = Target {
            ring: "ring",
            hash_ring: &ring,
            shards: &shards,
            namespaces: &selected,
        };
        let config_maps = config_maps();
        let plan = |namespace| {
            plan_object_bounded_load(
                &target,
                &rebalance,
                &config_maps,
                &object(Some(namespace), "on-dead", Some("shard-dead")),
            )
        };
        assert_eq!(plan("ns"), Action::Move);
        assert_eq!(plan("other"), Action::Nothing);
    }
}
