//! What a resync does with one object (docs/contract.md#drain-and-move): nothing, drain it, or move
//! it.

use std::collections::HashSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::TypeMeta;
use kube_sharding::{
    api::{GroupResource, labels},
    consistent_hash::Ring,
    key,
    leases::Shards,
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
    if !resource.scope.covers(target.namespaces, object) {
        return Action::Nothing;
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
    plan(
        key.as_deref(),
        current.map(String::as_str),
        resource.controlled,
        target.hash_ring,
        target.shards,
    )
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
        let config_maps = Resource {
            types: TypeMeta {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
            },
            scope: Scope::Namespaced,
            controlled: false,
        };
        let outside = object(Some("other"), "cm", Some("shard-dead"));
        assert_eq!(
            plan_object(&target, &config_maps, &outside),
            Action::Nothing
        );
        let inside = object(Some("project-1"), "cm", Some("shard-dead"));
        assert_eq!(plan_object(&target, &config_maps, &inside), Action::Move);
    }
}
