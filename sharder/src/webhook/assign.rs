//! The webhook's decision for one admission request (docs/contract.md#webhook), pure: the ring, its
//! hash ring and the request go in, a [`Decision`] comes out. The handler turns it into a response.

use json_patch::{AddOperation, Patch, PatchOperation, jsonptr::PointerBuf};
use kube::core::admission::AdmissionRequest;
use kube_sharding::{
    api::{ControllerRing, GroupResource, ResourceRole, labels},
    consistent_hash::Ring,
    key,
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
    },
}

/// Decides how to admit `request` to `ring`, whose available shards are on `hash_ring`.
///
/// For an UPDATE (a move, docs/contract.md#drain-and-move) the request's object is the new object,
/// which no longer carries the shard label.
#[must_use]
pub fn assign(
    ring: &ControllerRing,
    hash_ring: &Ring,
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
    let hash_key = match ring.role_of(&resource) {
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

    // docs/contract.md#hash-ring: an empty ring assigns nothing; the resync assigns the object once
    // a shard is available.
    let Some(shard) = hash_ring.hash(&hash_key) else {
        return Decision::Allow {
            reason: NO_AVAILABLE_SHARD,
        };
    };
    Decision::Patch {
        shard: shard.to_owned(),
        patch: shard_label_patch(&label, shard, object_labels.is_none()),
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
            &shards(),
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
            &shards(),
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
            let Decision::Patch { shard, patch } =
                assign(&controller_ring("ring"), &shards(), &request)
            else {
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
            &shards(),
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
                assign(&controller_ring("ring"), &Ring::default(), &request),
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
            &shards(),
            &create_thing(&json!({"name": "foo", "namespace": "default", "labels": {LABEL: ""}})),
        );
        assert_eq!(patch_json(&decision).as_array().unwrap().len(), 1);
    }

    #[test]
    fn another_rings_shard_label_does_not_count() {
        let decision = assign(
            &controller_ring("ring"),
            &shards(),
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
                    &shards(),
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
            &shards(),
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
            &shards(),
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
            assign(&controller_ring("ring"), &shards(), &request),
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
                &shards(),
                &request("CREATE", ("", "configmaps"), Some(&configmap)),
            );
            let owner_decision = assign(
                &controller_ring("ring"),
                &shards(),
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
                &shards(),
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
            &shards(),
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
                &Ring::default(),
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
        let decision = assign(&controller_ring("ring"), &shards(), &review);
        assert!(matches!(decision, Decision::Patch { .. }), "{decision:?}");
    }

    #[test]
    fn a_request_without_an_object_is_allowed_unchanged() {
        assert_eq!(
            assign(
                &controller_ring("ring"),
                &shards(),
                &request("DELETE", ("example.com", "things"), None)
            ),
            Decision::Allow { reason: NO_OBJECT }
        );
    }
}
