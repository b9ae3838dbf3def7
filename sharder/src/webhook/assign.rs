//! The webhook's decision for one admission request (docs/contract.md#webhook), pure: the ring, its
//! placement state (the hash ring, or a bounded-load ring's table) and the request go in, a
//! [`Decision`] comes out. The handler turns it into a response.

use json_patch::{AddOperation, Patch, PatchOperation, jsonptr::PointerBuf};
use kube::core::admission::AdmissionRequest;
use kube_sharding::{
    api::{ControllerRing, GroupResource, ResourceRole, labels},
    consistent_hash::Ring,
    key,
    strategy::{self, Assignment, InvalidStrategy},
};

use super::review::ObjectHead;

/// Why an object that already carries the ring's shard label is admitted unchanged.
pub const ALREADY_ASSIGNED: &str = "object is already assigned";
/// Why a controlled object without a controller reference is admitted unchanged.
pub const NOT_ASSIGNABLE: &str = "object should not be assigned";
/// Why an object is admitted unchanged while the ring has no available shard.
pub const NO_AVAILABLE_SHARD: &str = "there is no available shard";
/// Why a request without an object (only CREATE and UPDATE carry one) is admitted unchanged.
pub const NO_OBJECT: &str = "request carries no object to assign";

/// What the webhook answers to one admission request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Admit the object unchanged.
    Allow {
        /// Why nothing is assigned.
        reason: &'static str,
    },
    /// Reject the request (HTTP 400 in the response's status): the object cannot be assigned
    /// although it belongs to the ring.
    Deny {
        /// The message the API server passes on to the client.
        reason: String,
    },
    /// Admit the object with the shard label added.
    Patch {
        /// The shard the object is assigned to.
        shard: String,
        /// The JSON patch that adds the shard label.
        patch: Patch,
        /// The hash key of a main object placed with a bounded-load ring's table, which the
        /// table records with `shard` at once (docs/sharder.md#assignment-strategies).
        record: Option<String>,
    },
}

/// What the webhook places objects of a ring with, by the ring's assignment strategy
/// (docs/sharder.md#assignment-strategies).
#[derive(Clone, Copy, Debug)]
pub enum Placement<'a> {
    /// The consistent hash ring of the available shards (the default, docs/contract.md#hash-ring).
    HashRing(&'a Ring),
    /// Bounded load.
    BoundedLoad {
        /// The ring's load table, once its watches have listed every main resource; `None`
        /// before, when objects are placed by preference alone.
        table: Option<&'a Assignment>,
        /// The names of the available shards.
        available: &'a [String],
    },
    /// The ring's strategy annotation names no strategy: nothing can be assigned.
    Invalid(&'a InvalidStrategy),
}

/// Decides how to admit `request` to `ring`, whose objects are placed with `placement`.
///
/// For an UPDATE (a move, docs/contract.md#drain-and-move) the request's object is the new object,
/// which no longer carries the shard label.
#[must_use]
pub fn assign(
    ring: &ControllerRing,
    placement: &Placement<'_>,
    request: &AdmissionRequest<ObjectHead>,
) -> Decision {
    let Some(object) = &request.object else {
        return Decision::Allow { reason: NO_OBJECT };
    };
    let label = labels::shard(ring.ring_name());
    let object_labels = object.metadata.labels.as_ref();

    // Never reassign an assigned object: its shard may still be working on it. Moves go through the
    // drain protocol (docs/contract.md#drain-and-move), which removes the label before the UPDATE
    // that reaches this webhook. An empty value counts as unassigned, as in the Go original.
    if object_labels
        .and_then(|labels| labels.get(&label))
        .is_some_and(|shard| !shard.is_empty())
    {
        return Decision::Allow {
            reason: ALREADY_ASSIGNED,
        };
    }

    let resource = GroupResource::new(&request.resource.group, &request.resource.resource);
    let role = ring.role_of(&resource);
    let hash_key = match role {
        None => {
            return Decision::Deny {
                // Worded as the Go original words it, without the ring's name.
                reason: format!(
                    "error determining hash key func for object: object's resource {:?} was not found in ControllerRing",
                    group_resource_string(&resource),
                ),
            };
        }
        // docs/contract.md#hash-keys: main objects are keyed by themselves, which fails for
        // generateName.
        Some(ResourceRole::Main) => {
            match key::for_object(object.types.as_ref(), &object.metadata) {
                Ok(hash_key) => hash_key,
                Err(error) => {
                    return Decision::Deny {
                        reason: format!("error calculating hash key for object: {error}"),
                    };
                }
            }
        }
        // docs/contract.md#hash-keys: controlled objects follow their controller; without one they
        // stay unassigned.
        Some(ResourceRole::Controlled) => match key::for_controller(&object.metadata) {
            Some(hash_key) if !hash_key.is_empty() => hash_key,
            _ => {
                return Decision::Allow {
                    reason: NOT_ASSIGNABLE,
                };
            }
        },
    };

    let main = role == Some(ResourceRole::Main);
    let (shard, record) = match placement {
        // Denied only where a shard must be picked: assigned objects stay writable.
        Placement::Invalid(invalid) => {
            return Decision::Deny {
                reason: invalid.to_string(),
            };
        }
        Placement::HashRing(hash_ring) => (hash_ring.hash(&hash_key), false),
        Placement::BoundedLoad { table, available } => {
            let create = request.operation == kube::core::admission::Operation::Create;
            bounded_load(*table, available, &hash_key, main, create)
        }
    };
    // docs/contract.md#hash-ring: an empty ring assigns nothing; the resync assigns the object once
    // a shard is available.
    let Some(shard) = shard else {
        return Decision::Allow {
            reason: NO_AVAILABLE_SHARD,
        };
    };
    Decision::Patch {
        shard: shard.to_owned(),
        patch: shard_label_patch(&label, shard, object_labels.is_none()),
        record: record.then_some(hash_key),
    }
}

/// The shard of the object with hash key `key` (its own for a `main` object, its controller's
/// otherwise) under bounded load (docs/sharder.md#assignment-strategies), and whether the
/// table records it.
///
/// A main object is placed by the table and recorded; a main object created again while the
/// table still holds its key on an available shard keeps that shard and is not recorded, so
/// that a create that fails because the object exists leaves the table as it was. A controlled
/// object follows its controller's shard in the table, or is placed as its controller would
/// be. Before the table is synced, objects go to their first preference.
fn bounded_load<'a>(
    table: Option<&'a Assignment>,
    available: &'a [String],
    key: &str,
    main: bool,
    create: bool,
) -> (Option<&'a str>, bool) {
    let Some(table) = table else {
        return (strategy::preference(key, available).first().copied(), false);
    };
    let kept = table
        .shard_of(key)
        .and_then(|shard| available.iter().find(|s| *s == shard))
        .map(String::as_str);
    match kept {
        Some(shard) if !main || create => (Some(shard), false),
        _ => (table.place(key, available), main),
    }
}

/// The JSON patch that adds `label: shard`, creating `metadata.labels` first when the object
/// has none (adding below a missing member fails).
fn shard_label_patch(label: &str, shard: &str, create_labels: bool) -> Patch {
    let labels_path = PointerBuf::from_tokens(["metadata", "labels"]);
    let mut operations = Vec::with_capacity(2);
    if create_labels {
        operations.push(PatchOperation::Add(AddOperation {
            path: labels_path.clone(),
            value: serde_json::Value::Object(serde_json::Map::new()),
        }));
    }
    let mut label_path = labels_path;
    // A token built from a plain string is escaped as RFC 6901 requires (`~` → `~0`, `/` →
    // `~1`), and every shard label contains a `/`.
    label_path.push_back(label);
    operations.push(PatchOperation::Add(AddOperation {
        path: label_path,
        value: serde_json::Value::String(shard.to_owned()),
    }));
    Patch(operations)
}

/// A group and resource as Kubernetes prints them: `resource.group`, or `resource` for the
/// core group.
fn group_resource_string(resource: &GroupResource) -> String {
    if resource.group.is_empty() {
        resource.resource.clone()
    } else {
        format!("{}.{}", resource.resource, resource.group)
    }
}

#[cfg(test)]
mod tests {
    use kube_sharding::api::{ControllerRingSpec, RingResource};
    use serde_json::{Value, json};

    use super::*;

    const LABEL: &str = "shard.alpha.sharding.timebertt.dev/ring";

    fn controller_ring(name: &str) -> ControllerRing {
        ControllerRing::new(
            name,
            ControllerRingSpec {
                resources: vec![
                    RingResource {
                        group: "example.com".into(),
                        resource: "things".into(),
                        controlled_resources: vec![
                            GroupResource::new("", "configmaps"),
                            GroupResource::new("apps", "deployments"),
                        ],
                    },
                    // Also listed as controlled above: the main role wins
                    // (docs/contract.md#hash-keys).
                    RingResource {
                        group: "apps".into(),
                        resource: "deployments".into(),
                        controlled_resources: vec![],
                    },
                ],
                namespace_selector: None,
            },
        )
    }

    fn shards() -> Ring {
        Ring::with_nodes(["shard-0", "shard-1", "shard-2"])
    }

    fn request(
        operation: &str,
        (group, resource): (&str, &str),
        object: Option<&Value>,
    ) -> AdmissionRequest<ObjectHead> {
        let review = serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": group, "version": "v1", "kind": "Whatever"},
                "resource": {"group": group, "version": "v1", "resource": resource},
                "name": "foo",
                "namespace": "default",
                "operation": operation,
                "userInfo": {"username": "admin"},
                "object": object,
                "dryRun": false,
            }
        }))
        .unwrap();
        crate::webhook::review::read(&review).expect("a valid review with a request")
    }

    fn thing(metadata: &Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": metadata})
    }

    fn create_thing(metadata: &Value) -> AdmissionRequest<ObjectHead> {
        request("CREATE", ("example.com", "things"), Some(&thing(metadata)))
    }

    fn patch_json(decision: &Decision) -> Value {
        match decision {
            Decision::Patch { patch, .. } => serde_json::to_value(patch).unwrap(),
            other => panic!("expected a patch, got {other:?}"),
        }
    }

    fn expected_shard(hash_key: &str) -> String {
        shards().hash(hash_key).unwrap().to_owned()
    }

    #[test]
    fn a_main_object_without_labels_gets_a_labels_map_and_the_shard_label() {
        let decision = assign(
            &controller_ring("ring"),
            &Placement::HashRing(&shards()),
            &create_thing(&json!({"name": "foo", "namespace": "default"})),
        );
        let shard = expected_shard("example.com/Thing/default/foo");
        assert_eq!(
            patch_json(&decision),
            json!([
                {"op": "add", "path": "/metadata/labels", "value": {}},
                {"op": "add", "path": "/metadata/labels/shard.alpha.sharding.timebertt.dev~1ring", "value": shard},
            ])
        );
        assert!(matches!(decision, Decision::Patch { shard: s, .. } if s == shard));
    }

    #[test]
    fn a_main_object_with_labels_only_gets_the_shard_label_added() {
        let decision = assign(
            &controller_ring("ring"),
            &Placement::HashRing(&shards()),
            &create_thing(&json!({"name": "foo", "namespace": "default", "labels": {"app": "x"}})),
        );
        assert_eq!(
            patch_json(&decision),
            json!([{
                "op": "add",
                "path": "/metadata/labels/shard.alpha.sharding.timebertt.dev~1ring",
                "value": expected_shard("example.com/Thing/default/foo"),
            }])
        );
    }

    #[test]
    fn the_patch_applies_to_the_object_and_keeps_its_other_labels() {
        for labels in [json!(null), json!({}), json!({"app": "x"})] {
            let mut object =
                thing(&json!({"name": "foo", "namespace": "default", "labels": labels}));
            let request = request("CREATE", ("example.com", "things"), Some(&object));
            let Decision::Patch { shard, patch, .. } = assign(
                &controller_ring("ring"),
                &Placement::HashRing(&shards()),
                &request,
            ) else {
                panic!("expected a patch for labels {labels}");
            };
            json_patch::patch(&mut object, &patch).unwrap();
            assert_eq!(object["metadata"]["labels"][LABEL], json!(shard));
            if labels.get("app").is_some() {
                assert_eq!(object["metadata"]["labels"]["app"], "x");
            }
        }
    }

    #[test]
    fn tildes_and_slashes_in_the_label_key_are_escaped_in_the_patch_path() {
        let decision = assign(
            &controller_ring("a~b/c"),
            &Placement::HashRing(&shards()),
            &create_thing(&json!({"name": "foo", "namespace": "default", "labels": {}})),
        );
        assert_eq!(
            patch_json(&decision)[0]["path"],
            "/metadata/labels/shard.alpha.sharding.timebertt.dev~1a~0b~1c"
        );
    }

    #[test]
    fn an_assigned_object_is_allowed_unchanged_even_if_its_resource_is_not_in_the_ring() {
        let labels = json!({LABEL: "shard-9"});
        for request in [
            create_thing(&json!({"name": "foo", "labels": labels})),
            request(
                "CREATE",
                ("", "secrets"),
                Some(&json!({"metadata": {"labels": labels}})),
            ),
        ] {
            assert_eq!(
                assign(
                    &controller_ring("ring"),
                    &Placement::HashRing(&Ring::default()),
                    &request
                ),
                Decision::Allow {
                    reason: ALREADY_ASSIGNED
                }
            );
        }
    }

    #[test]
    fn an_empty_shard_label_counts_as_unassigned() {
        let decision = assign(
            &controller_ring("ring"),
            &Placement::HashRing(&shards()),
            &create_thing(&json!({"name": "foo", "namespace": "default", "labels": {LABEL: ""}})),
        );
        assert_eq!(patch_json(&decision).as_array().unwrap().len(), 1);
    }

    #[test]
    fn another_rings_shard_label_does_not_count() {
        let decision = assign(
            &controller_ring("ring"),
            &Placement::HashRing(&shards()),
            &create_thing(&json!({
                "name": "foo", "namespace": "default",
                "labels": {"shard.alpha.sharding.timebertt.dev/other": "shard-0"},
            })),
        );
        assert!(matches!(decision, Decision::Patch { .. }));
    }

    #[test]
    fn a_resource_that_is_not_in_the_ring_is_denied() {
        for (group_resource, printed) in [
            (("", "secrets"), "secrets"),
            (
                ("networking.k8s.io", "ingresses"),
                "ingresses.networking.k8s.io",
            ),
        ] {
            let object = json!({"apiVersion": "v1", "kind": "Other", "metadata": {"name": "foo"}});
            assert_eq!(
                assign(
                    &controller_ring("ring"),
                    &Placement::HashRing(&shards()),
                    &request("CREATE", group_resource, Some(&object))
                ),
                Decision::Deny {
                    reason: format!(
                        "error determining hash key func for object: object's resource \"{printed}\" was not found in ControllerRing"
                    )
                }
            );
        }
    }

    #[test]
    fn a_main_object_with_only_generate_name_is_denied_with_the_contract_text() {
        let decision = assign(
            &controller_ring("ring"),
            &Placement::HashRing(&shards()),
            &create_thing(&json!({"generateName": "foo-", "namespace": "default"})),
        );
        assert_eq!(
            decision,
            Decision::Deny {
                reason: "error calculating hash key for object: generateName is not supported on ring resources that are not controlled by another resource".into()
            }
        );
    }

    #[test]
    fn a_main_object_without_a_name_is_denied() {
        let decision = assign(
            &controller_ring("ring"),
            &Placement::HashRing(&shards()),
            &create_thing(&json!({"namespace": "default"})),
        );
        assert_eq!(
            decision,
            Decision::Deny {
                reason: "error calculating hash key for object: name must not be empty".into()
            }
        );
    }

    #[test]
    fn a_main_object_without_api_version_and_kind_is_denied() {
        let request = request(
            "CREATE",
            ("example.com", "things"),
            Some(&json!({"metadata": {"name": "foo"}})),
        );
        assert_eq!(
            assign(
                &controller_ring("ring"),
                &Placement::HashRing(&shards()),
                &request
            ),
            Decision::Deny {
                reason:
                    "error calculating hash key for object: apiVersion and kind must not be empty"
                        .into()
            }
        );
    }

    #[test]
    fn a_controlled_object_lands_on_its_controllers_shard() {
        // Three shards and several owners, so that a wrong key would show.
        for owner in ["a", "b", "c", "d", "e", "f"] {
            let configmap = json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "generateName": "child-", "namespace": "project-1",
                    "ownerReferences": [
                        {"apiVersion": "v1", "kind": "Secret", "name": "unrelated", "uid": "1"},
                        {"apiVersion": "example.com/v1", "kind": "Thing", "name": owner, "uid": "2", "controller": true},
                    ],
                },
            });
            let decision = assign(
                &controller_ring("ring"),
                &Placement::HashRing(&shards()),
                &request("CREATE", ("", "configmaps"), Some(&configmap)),
            );
            let owner_decision = assign(
                &controller_ring("ring"),
                &Placement::HashRing(&shards()),
                &create_thing(&json!({"name": owner, "namespace": "project-1"})),
            );
            let Decision::Patch { shard, .. } = decision else {
                panic!("expected a patch, got {decision:?}")
            };
            assert_eq!(
                shard,
                expected_shard(&format!("example.com/Thing/project-1/{owner}"))
            );
            assert!(matches!(owner_decision, Decision::Patch { shard: s, .. } if s == shard));
        }
    }

    #[test]
    fn a_controlled_object_without_a_controller_is_allowed_unchanged() {
        let configmap = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "foo", "namespace": "default",
                "ownerReferences": [{"apiVersion": "example.com/v1", "kind": "Thing", "name": "foo", "uid": "2"}],
            },
        });
        assert_eq!(
            assign(
                &controller_ring("ring"),
                &Placement::HashRing(&shards()),
                &request("CREATE", ("", "configmaps"), Some(&configmap))
            ),
            Decision::Allow {
                reason: NOT_ASSIGNABLE
            }
        );
    }

    #[test]
    fn a_resource_listed_as_main_and_controlled_is_keyed_as_main() {
        // Without a controller reference a controlled object would stay unassigned.
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}});
        let decision = assign(
            &controller_ring("ring"),
            &Placement::HashRing(&shards()),
            &request("CREATE", ("apps", "deployments"), Some(&deployment)),
        );
        let Decision::Patch { shard, .. } = decision else {
            panic!("expected a patch, got {decision:?}")
        };
        assert_eq!(shard, expected_shard("apps/Deployment/default/web"));
    }

    #[test]
    fn nothing_is_assigned_while_the_ring_has_no_available_shard() {
        assert_eq!(
            assign(
                &controller_ring("ring"),
                &Placement::HashRing(&Ring::default()),
                &create_thing(&json!({"name": "foo", "namespace": "default"})),
            ),
            Decision::Allow {
                reason: NO_AVAILABLE_SHARD
            }
        );
    }

    #[test]
    fn an_update_that_removed_the_shard_label_is_assigned_again() {
        // A move (docs/contract.md#drain-and-move): the old object still has the label, the new one
        // does not.
        let mut review = request(
            "UPDATE",
            ("example.com", "things"),
            Some(&thing(
                &json!({"name": "foo", "namespace": "default", "labels": {"app": "x"}}),
            )),
        );
        review.old_object =
            serde_json::from_value(thing(&json!({"name": "foo", "labels": {LABEL: "shard-0"}})))
                .unwrap();
        let decision = assign(
            &controller_ring("ring"),
            &Placement::HashRing(&shards()),
            &review,
        );
        assert!(matches!(decision, Decision::Patch { .. }), "{decision:?}");
    }

    #[test]
    fn a_request_without_an_object_is_allowed_unchanged() {
        assert_eq!(
            assign(
                &controller_ring("ring"),
                &Placement::HashRing(&shards()),
                &request("DELETE", ("example.com", "things"), None)
            ),
            Decision::Allow { reason: NO_OBJECT }
        );
    }

    const AVAILABLE: [&str; 3] = ["shard-0", "shard-1", "shard-2"];

    fn available() -> Vec<String> {
        AVAILABLE.map(str::to_owned).to_vec()
    }

    fn bounded_load_ring(value: &str) -> ControllerRing {
        let mut ring = controller_ring("ring");
        ring.metadata.annotations =
            Some([(strategy::ANNOTATION.to_owned(), value.to_owned())].into());
        ring
    }

    /// A table whose only objects, `count` of them, are on `shard`.
    fn table_with(shard: &str, count: usize) -> Assignment {
        let mut table = Assignment::new();
        for i in 0..count {
            table.set(format!("example.com/Thing/other/{i}"), shard);
        }
        table
    }

    fn decide(table: Option<&Assignment>, request: &AdmissionRequest<ObjectHead>) -> Decision {
        let available = available();
        let placement = Placement::BoundedLoad {
            table,
            available: &available,
        };
        assign(&bounded_load_ring("bounded-load"), &placement, request)
    }

    fn shard_and_record(decision: Decision) -> (String, Option<String>) {
        match decision {
            Decision::Patch { shard, record, .. } => (shard, record),
            other => panic!("expected a patch, got {other:?}"),
        }
    }

    fn controlled_by(owner: &str) -> AdmissionRequest<ObjectHead> {
        let configmap = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "generateName": "child-", "namespace": "default",
                "ownerReferences": [
                    {"apiVersion": "example.com/v1", "kind": "Thing", "name": owner, "uid": "2", "controller": true},
                ],
            },
        });
        request("CREATE", ("", "configmaps"), Some(&configmap))
    }

    #[test]
    fn a_bounded_load_main_object_skips_a_full_first_preference_and_is_recorded() {
        let key = "example.com/Thing/default/foo";
        let preference = strategy::preference(key, &AVAILABLE);
        // 11 objects on 3 shards allow 4 per shard: the first preference is full.
        let table = table_with(preference[0], 10);
        let decision = decide(
            Some(&table),
            &create_thing(&json!({"name": "foo", "namespace": "default"})),
        );
        assert_eq!(
            shard_and_record(decision),
            (preference[1].to_owned(), Some(key.to_owned()))
        );
    }

    #[test]
    fn a_bounded_load_main_object_goes_to_its_first_preference_while_the_table_is_not_synced() {
        let key = "example.com/Thing/default/foo";
        let decision = decide(
            None,
            &create_thing(&json!({"name": "foo", "namespace": "default"})),
        );
        assert_eq!(
            shard_and_record(decision),
            (strategy::preference(key, &AVAILABLE)[0].to_owned(), None)
        );
    }

    #[test]
    fn a_bounded_load_main_object_created_again_keeps_its_shard_and_a_moved_one_is_placed_anew() {
        let key = "example.com/Thing/default/foo";
        let preference = strategy::preference(key, &AVAILABLE);
        let mut table = table_with(preference[0], 10);
        table.set(key, preference[2]);
        let object = thing(&json!({"name": "foo", "namespace": "default"}));
        let created = decide(
            Some(&table),
            &request("CREATE", ("example.com", "things"), Some(&object)),
        );
        assert_eq!(shard_and_record(created), (preference[2].to_owned(), None));
        let moved = decide(
            Some(&table),
            &request("UPDATE", ("example.com", "things"), Some(&object)),
        );
        assert_eq!(
            shard_and_record(moved),
            (preference[1].to_owned(), Some(key.to_owned()))
        );
    }

    #[test]
    fn a_bounded_load_controlled_object_goes_to_its_owners_shard_in_the_table() {
        let owner_key = "example.com/Thing/default/owner";
        let last = *strategy::preference(owner_key, &AVAILABLE).last().unwrap();
        let mut table = Assignment::new();
        table.set(owner_key, last);
        assert_eq!(
            shard_and_record(decide(Some(&table), &controlled_by("owner"))),
            (last.to_owned(), None)
        );
    }

    #[test]
    fn a_bounded_load_controlled_object_whose_owner_is_unknown_is_placed_as_the_owner_would_be() {
        let owner_key = "example.com/Thing/default/owner";
        let preference = strategy::preference(owner_key, &AVAILABLE);
        let mut table = table_with(preference[0], 10);
        // On a shard that is gone, the owner counts as unknown.
        table.set(owner_key, "shard-gone");
        let expected = table.place(owner_key, &AVAILABLE).unwrap();
        assert_eq!(expected, preference[1]);
        assert_eq!(
            shard_and_record(decide(Some(&table), &controlled_by("owner"))),
            (expected.to_owned(), None)
        );
        assert_eq!(
            shard_and_record(decide(None, &controlled_by("owner"))),
            (preference[0].to_owned(), None),
            "unsynced: the owner's first preference"
        );
    }

    #[test]
    fn a_bounded_load_ring_without_available_shards_assigns_nothing() {
        let placement = Placement::BoundedLoad {
            table: Some(&Assignment::new()),
            available: &[],
        };
        assert_eq!(
            assign(
                &bounded_load_ring("bounded-load"),
                &placement,
                &create_thing(&json!({"name": "foo", "namespace": "default"})),
            ),
            Decision::Allow {
                reason: NO_AVAILABLE_SHARD
            }
        );
    }

    #[test]
    fn an_invalid_strategy_denies_assignments_naming_the_annotation_and_value() {
        let ring = bounded_load_ring("least-loaded");
        let invalid = strategy::Strategy::of(&ring).unwrap_err();
        let placement = Placement::Invalid(&invalid);
        let Decision::Deny { reason } = assign(
            &ring,
            &placement,
            &create_thing(&json!({"name": "foo", "namespace": "default"})),
        ) else {
            panic!("expected a denial");
        };
        assert!(reason.contains(strategy::ANNOTATION), "{reason}");
        assert!(reason.contains("least-loaded"), "{reason}");
        assert_eq!(
            assign(
                &ring,
                &placement,
                &create_thing(&json!({"name": "foo", "labels": {LABEL: "shard-0"}})),
            ),
            Decision::Allow {
                reason: ALREADY_ASSIGNED
            },
            "assigned objects stay writable"
        );
    }

    #[test]
    fn the_hash_ring_records_nothing() {
        let decision = assign(
            &controller_ring("ring"),
            &Placement::HashRing(&shards()),
            &create_thing(&json!({"name": "foo", "namespace": "default"})),
        );
        assert_eq!(shard_and_record(decision).1, None);
    }
}
