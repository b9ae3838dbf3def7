//! The `ControllerRing` resource (docs/contract.md#controllerring): a virtual ring of shards over
//! which the objects of some resources are distributed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The `Ready` condition type, the one condition of a ControllerRing.
pub const CONDITION_READY: &str = "Ready";

/// Spec contains the specification of the desired behavior of the ControllerRing.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "sharding.timebertt.dev",
    version = "v1alpha1",
    kind = "ControllerRing",
    plural = "controllerrings",
    status = "ControllerRingStatus",
    doc = "ControllerRing declares a virtual ring of sharded controller instances. Objects of the \
           specified resources are distributed across shards of this ring. Objects in all \
           namespaces are considered unless a namespaceSelector is specified.",
    // The ring name becomes part of label keys, whose name part is limited to 63 characters.
    validation = kube::core::Rule::new("size(self.metadata.name) <= 63")
        .message("ControllerRing name must not be longer than 63 characters"),
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type == \"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Available","type":"string","jsonPath":".status.availableShards"}"#,
    printcolumn = r#"{"name":"Shards","type":"string","jsonPath":".status.shards"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ControllerRingSpec {
    /// Resources specifies the list of resources that are distributed across shards in this
    /// ControllerRing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["group", "resource"]))]
    pub resources: Vec<RingResource>,

    /// NamespaceSelector overwrites the webhook configs' namespaceSelector. If set, this
    /// selector should exclude the kube-system and sharding-system namespaces. If omitted,
    /// the default namespaceSelector from the SharderConfig is used. Note: changing/unsetting
    /// this selector will not remove labels from objects in namespaces that were previously
    /// included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::crd::atomic_label_selector")]
    pub namespace_selector: Option<LabelSelector>,
}

/// RingResource specifies a resource along with controlled resources that is distributed
/// across shards in a ring.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RingResource {
    /// The API group of the main resource (`""` for the core group).
    pub group: String,
    /// The resource (plural name) of the main resource.
    pub resource: String,
    /// ControlledResources are additional resources that are distributed across shards in
    /// the ControllerRing. These resources are controlled by the controller's main resource,
    /// i.e., they have an owner reference with controller=true back to the GroupResource of
    /// this RingResource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["group", "resource"]))]
    pub controlled_resources: Vec<GroupResource>,
}

/// A group and a resource, without a version.
#[derive(
    KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub struct GroupResource {
    /// The API group (`""` for the core group).
    pub group: String,
    /// The resource (plural name).
    pub resource: String,
}

impl GroupResource {
    /// A group and resource.
    #[must_use]
    pub fn new(group: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            resource: resource.into(),
        }
    }
}

impl RingResource {
    /// This entry's main resource.
    #[must_use]
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.resource)
    }
}

/// The most recently observed status of a ControllerRing.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ControllerRingStatus {
    /// The generation observed by the ControllerRing controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Shards is the total number of shards of this ring.
    pub shards: i32,
    /// AvailableShards is the total number of available shards of this ring.
    pub available_shards: i32,
    /// Conditions of the ring; the one type is `Ready`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::crd::conditions")]
    pub conditions: Vec<Condition>,
}

impl ControllerRing {
    /// The ring's name (ControllerRings are cluster-scoped).
    #[must_use]
    pub fn ring_name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// The kind of relation `group_resource` has to this ring: a main resource wins over the
    /// same resource listed as controlled (docs/contract.md#hash-keys).
    #[must_use]
    pub fn role_of(&self, group_resource: &GroupResource) -> Option<ResourceRole> {
        let main = self
            .spec
            .resources
            .iter()
            .any(|r| r.group == group_resource.group && r.resource == group_resource.resource);
        if main {
            return Some(ResourceRole::Main);
        }
        self.spec
            .resources
            .iter()
            .any(|r| r.controlled_resources.contains(group_resource))
            .then_some(ResourceRole::Controlled)
    }
}

/// How a resource takes part in a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceRole {
    /// Objects are keyed by themselves.
    Main,
    /// Objects are keyed by their controller owner, so they land on its shard.
    Controlled,
}

/// The CustomResourceDefinition YAML as checked in under `config/crds/` (the sharder's
/// `crdgen` writes it).
#[must_use]
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt as _;
    super::crd::to_yaml(&ControllerRing::crd())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(resources: Vec<RingResource>) -> ControllerRing {
        ControllerRing::new(
            "ring",
            ControllerRingSpec {
                resources,
                namespace_selector: None,
            },
        )
    }

    #[test]
    fn a_main_resource_wins_over_the_same_resource_listed_as_controlled() {
        let ring = ring(vec![
            RingResource {
                group: "apps".into(),
                resource: "deployments".into(),
                controlled_resources: vec![],
            },
            RingResource {
                group: "example.com".into(),
                resource: "things".into(),
                controlled_resources: vec![
                    GroupResource::new("apps", "deployments"),
                    GroupResource::new("", "configmaps"),
                ],
            },
        ]);
        let role = |group: &str, resource: &str| ring.role_of(&GroupResource::new(group, resource));
        assert_eq!(role("apps", "deployments"), Some(ResourceRole::Main));
        assert_eq!(role("", "configmaps"), Some(ResourceRole::Controlled));
        assert_eq!(role("", "secrets"), None);
    }

    #[test]
    fn the_crd_carries_the_contract() {
        let yaml = crd_yaml();
        for needle in [
            "name: controllerrings.sharding.timebertt.dev",
            "scope: Cluster",
            "rule: size(self.metadata.name) <= 63",
            "message: ControllerRing name must not be longer than 63 characters",
            "x-kubernetes-list-type: map",
            "status: {}",
        ] {
            assert!(yaml.contains(needle), "missing {needle:?} in\n{yaml}");
        }
    }
}
