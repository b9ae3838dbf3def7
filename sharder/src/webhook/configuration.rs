//! The MutatingWebhookConfiguration of a ControllerRing (docs/contract.md#webhook), built purely
//! from the ring and the sharder's settings; the ControllerRing controller applies it.

use std::collections::BTreeMap;

use k8s_openapi::{
    ByteString,
    api::admissionregistration::v1::{
        MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
        WebhookClientConfig,
    },
    apimachinery::pkg::apis::meta::v1::{
        LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
    },
};
use kube::Resource as _;
use kube_sharding::api::{ControllerRing, GroupResource, labels};

/// How the API server reaches the sharder's webhook server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientConfigSettings {
    /// Through a Service in the cluster; the ring's webhook path is the path.
    Service {
        /// The Service's namespace.
        namespace: String,
        /// The Service's name.
        name: String,
        /// The Service port (the API server defaults to 443).
        port: Option<i32>,
    },
    /// At a URL (`https://host:port` with an optional base path); the ring's webhook path is
    /// appended.
    Url(String),
}

/// The sharder's settings for the webhook configurations it writes
/// (docs/contract.md#sharder-behaviour: the config file's webhook config section).
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookConfigSettings {
    /// Annotations copied onto every webhook configuration (for example, a CA-injection
    /// annotation).
    pub annotations: BTreeMap<String, String>,
    /// How the API server reaches the webhook server.
    pub client_config: ClientConfigSettings,
    /// PEM-encoded CA certificates that sign the webhook server's certificate; `None` leaves
    /// the `caBundle` to the API server's trust roots or to a CA injector.
    pub ca_bundle: Option<Vec<u8>>,
    /// The namespace selector of rings that have none; `None` means
    /// [`default_namespace_selector`].
    pub namespace_selector: Option<LabelSelector>,
}

/// The operations the webhook sees: CREATE assigns new objects, UPDATE assigns moved ones
/// (docs/contract.md#drain-and-move).
const OPERATIONS: [&str; 2] = ["CREATE", "UPDATE"];

/// The built-in namespace selector: every namespace but the control plane's and the
/// sharder's own, so that the webhook cannot block them.
#[must_use]
pub fn default_namespace_selector() -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "kubernetes.io/metadata.name".into(),
            operator: "NotIn".into(),
            values: Some(vec!["kube-system".into(), labels::SHARDER_NAMESPACE.into()]),
        }]),
        match_labels: None,
    }
}

/// The MutatingWebhookConfiguration `controllerring-<ring>` of `ring` (docs/contract.md#webhook),
/// without rules for the resources in `omitted` (docs/contract.md#ring-validation).
#[must_use]
pub fn webhook_configuration(
    ring: &ControllerRing,
    settings: &WebhookConfigSettings,
    omitted: &[GroupResource],
) -> MutatingWebhookConfiguration {
    let name = ring.ring_name();
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(labels::webhook_configuration(name)),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/name".to_owned(),
                    labels::APP_NAME.to_owned(),
                ),
                (labels::CONTROLLER_RING.to_owned(), name.to_owned()),
            ])),
            annotations: (!settings.annotations.is_empty()).then(|| settings.annotations.clone()),
            // Deleting the ring deletes its webhook.
            owner_references: Some(vec![OwnerReference {
                api_version: ControllerRing::api_version(&()).into_owned(),
                kind: ControllerRing::kind(&()).into_owned(),
                name: name.to_owned(),
                uid: ring.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![webhook(ring, settings, omitted)]),
    }
}

/// The ring's one webhook.
fn webhook(
    ring: &ControllerRing,
    settings: &WebhookConfigSettings,
    omitted: &[GroupResource],
) -> MutatingWebhook {
    let path = labels::webhook_path(ring.ring_name());
    let (service, url) = match &settings.client_config {
        ClientConfigSettings::Service {
            namespace,
            name,
            port,
        } => (
            Some(ServiceReference {
                namespace: namespace.clone(),
                name: name.clone(),
                path: Some(path),
                port: *port,
            }),
            None,
        ),
        // One trailing slash is accepted and dropped, as in the Go original, so that the
        // path starts with the only separator.
        ClientConfigSettings::Url(url) => (
            None,
            Some(format!("{}{path}", url.strip_suffix('/').unwrap_or(url))),
        ),
    };
    let rules = ring
        .spec
        .resources
        .iter()
        .flat_map(|resource| {
            std::iter::once(resource.group_resource())
                .chain(resource.controlled_resources.iter().cloned())
        })
        // A wildcard would send the writes of every resource it matches to the webhook, which
        // denies those that are not its ring's.
        .filter(|resource| !omitted.contains(resource))
        .map(|resource| rule(&resource))
        .collect();
    MutatingWebhook {
        name: labels::WEBHOOK_NAME.to_owned(),
        client_config: WebhookClientConfig {
            ca_bundle: settings.ca_bundle.clone().map(ByteString),
            service,
            url,
        },
        namespace_selector: Some(
            ring.spec
                .namespace_selector
                .clone()
                .or_else(|| settings.namespace_selector.clone())
                .unwrap_or_else(default_namespace_selector),
        ),
        // Only unassigned objects: an assigned object keeps its shard (docs/contract.md#webhook),
        // and skipping them keeps the webhook off the path of most updates.
        object_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: labels::shard(ring.ring_name()),
                operator: "DoesNotExist".into(),
                values: None,
            }]),
            match_labels: None,
        }),
        // A missed assignment is repaired by the resync, a blocked write is not: trade
        // immediate assignment for availability.
        failure_policy: Some("Ignore".into()),
        timeout_seconds: Some(5),
        side_effects: "None".into(),
        admission_review_versions: vec!["v1".into()],
        rules: Some(rules),
        ..MutatingWebhook::default()
    }
}

/// The rule that sends CREATEs and UPDATEs of `resource` in every version and scope.
fn rule(resource: &GroupResource) -> RuleWithOperations {
    RuleWithOperations {
        operations: Some(
            OPERATIONS
                .iter()
                .map(|&operation| operation.to_owned())
                .collect(),
        ),
        api_groups: Some(vec![resource.group.clone()]),
        api_versions: Some(vec!["*".into()]),
        resources: Some(vec![resource.resource.clone()]),
        scope: Some("*".into()),
    }
}

#[cfg(test)]
mod tests {
    use kube_sharding::api::{ControllerRingSpec, RingResource};
    use serde_json::json;

    use super::*;

    fn ring() -> ControllerRing {
        let mut ring = ControllerRing::new(
            "webhosting-operator",
            ControllerRingSpec {
                resources: vec![
                    RingResource {
                        group: "webhosting.timebertt.dev".into(),
                        resource: "websites".into(),
                        controlled_resources: vec![
                            GroupResource::new("apps", "deployments"),
                            GroupResource::new("", "configmaps"),
                        ],
                    },
                    RingResource {
                        group: String::new(),
                        resource: "secrets".into(),
                        controlled_resources: vec![],
                    },
                ],
                namespace_selector: None,
            },
        );
        ring.metadata.uid = Some("ring-uid".into());
        ring
    }

    fn settings() -> WebhookConfigSettings {
        WebhookConfigSettings {
            annotations: BTreeMap::new(),
            client_config: ClientConfigSettings::Service {
                namespace: "sharding-system".into(),
                name: "sharder".into(),
                port: None,
            },
            ca_bundle: None,
            namespace_selector: None,
        }
    }

    fn the_webhook(configuration: &MutatingWebhookConfiguration) -> &MutatingWebhook {
        let webhooks = configuration.webhooks.as_deref().unwrap();
        assert_eq!(webhooks.len(), 1);
        &webhooks[0]
    }

    fn selector(key: &str, value: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some(BTreeMap::from([(key.to_owned(), value.to_owned())])),
            match_expressions: None,
        }
    }

    #[test]
    fn the_configuration_is_named_labelled_and_owned_by_its_ring() {
        let configuration = webhook_configuration(&ring(), &settings(), &[]);
        assert_eq!(
            serde_json::to_value(&configuration.metadata).unwrap(),
            json!({
                "name": "controllerring-webhosting-operator",
                "labels": {
                    "app.kubernetes.io/name": "controller-sharding",
                    "alpha.sharding.timebertt.dev/controllerring": "webhosting-operator",
                },
                "ownerReferences": [{
                    "apiVersion": "sharding.timebertt.dev/v1alpha1",
                    "kind": "ControllerRing",
                    "name": "webhosting-operator",
                    "uid": "ring-uid",
                    "controller": true,
                    "blockOwnerDeletion": true,
                }],
            })
        );
    }

    #[test]
    fn it_serializes_with_its_type_for_server_side_apply() {
        let value = serde_json::to_value(webhook_configuration(&ring(), &settings(), &[])).unwrap();
        assert_eq!(value["apiVersion"], "admissionregistration.k8s.io/v1");
        assert_eq!(value["kind"], "MutatingWebhookConfiguration");
    }

    #[test]
    fn configured_annotations_are_copied() {
        let settings = WebhookConfigSettings {
            annotations: BTreeMap::from([(
                "cert-manager.io/inject-ca-from".to_owned(),
                "sharding-system/webhook".to_owned(),
            )]),
            ..settings()
        };
        let configuration = webhook_configuration(&ring(), &settings, &[]);
        assert_eq!(
            configuration.metadata.annotations,
            Some(settings.annotations)
        );
    }

    #[test]
    fn the_webhook_has_the_fixed_contract_fields() {
        let configuration = webhook_configuration(&ring(), &settings(), &[]);
        let webhook = serde_json::to_value(the_webhook(&configuration)).unwrap();
        assert_eq!(webhook["name"], "sharder.sharding.timebertt.dev");
        assert_eq!(
            webhook["objectSelector"],
            json!({"matchExpressions": [{"key": "shard.alpha.sharding.timebertt.dev/webhosting-operator", "operator": "DoesNotExist"}]})
        );
        assert_eq!(webhook["failurePolicy"], "Ignore");
        assert_eq!(webhook["timeoutSeconds"], 5);
        assert_eq!(webhook["sideEffects"], "None");
        assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
    }

    #[test]
    fn a_service_client_config_gets_the_ring_path() {
        let settings = WebhookConfigSettings {
            client_config: ClientConfigSettings::Service {
                namespace: "sharding-system".into(),
                name: "sharder".into(),
                port: Some(9443),
            },
            ..settings()
        };
        let configuration = webhook_configuration(&ring(), &settings, &[]);
        assert_eq!(
            serde_json::to_value(&the_webhook(&configuration).client_config).unwrap(),
            json!({"service": {
                "namespace": "sharding-system",
                "name": "sharder",
                "path": "/webhooks/sharder/controllerring/webhosting-operator",
                "port": 9443,
            }})
        );
    }

    #[test]
    fn a_url_client_config_gets_the_ring_path_after_one_trailing_slash_is_trimmed() {
        for (url, expected) in [
            (
                "https://host:9443",
                "https://host:9443/webhooks/sharder/controllerring/webhosting-operator",
            ),
            (
                "https://host:9443/",
                "https://host:9443/webhooks/sharder/controllerring/webhosting-operator",
            ),
            (
                "https://host/base/",
                "https://host/base/webhooks/sharder/controllerring/webhosting-operator",
            ),
        ] {
            let settings = WebhookConfigSettings {
                client_config: ClientConfigSettings::Url(url.into()),
                ..settings()
            };
            let configuration = webhook_configuration(&ring(), &settings, &[]);
            let client_config = &the_webhook(&configuration).client_config;
            assert_eq!(client_config.url.as_deref(), Some(expected));
            assert_eq!(client_config.service, None);
        }
    }

    #[test]
    fn a_configured_ca_bundle_is_set() {
        let settings = WebhookConfigSettings {
            ca_bundle: Some(b"-----BEGIN CERTIFICATE-----\n".to_vec()),
            ..settings()
        };
        let configuration = webhook_configuration(&ring(), &settings, &[]);
        assert_eq!(
            the_webhook(&configuration).client_config.ca_bundle,
            Some(ByteString(b"-----BEGIN CERTIFICATE-----\n".to_vec()))
        );
        let configuration = webhook_configuration(&ring(), &self::settings(), &[]);
        assert_eq!(the_webhook(&configuration).client_config.ca_bundle, None);
    }

    #[test]
    fn the_namespace_selector_is_the_rings_then_the_configured_then_the_built_in_one() {
        let configured = WebhookConfigSettings {
            namespace_selector: Some(selector("configured", "true")),
            ..settings()
        };
        let mut with_selector = ring();
        with_selector.spec.namespace_selector =
            Some(selector("webhosting.timebertt.dev/project", "true"));

        let selector_of = |ring: &ControllerRing, settings: &WebhookConfigSettings| {
            the_webhook(&webhook_configuration(ring, settings, &[]))
                .namespace_selector
                .clone()
        };
        assert_eq!(
            selector_of(&with_selector, &configured),
            Some(selector("webhosting.timebertt.dev/project", "true"))
        );
        assert_eq!(
            selector_of(&ring(), &configured),
            Some(selector("configured", "true"))
        );
        assert_eq!(
            serde_json::to_value(selector_of(&ring(), &settings())).unwrap(),
            json!({"matchExpressions": [{
                "key": "kubernetes.io/metadata.name",
                "operator": "NotIn",
                "values": ["kube-system", "sharding-system"],
            }]})
        );
    }

    #[test]
    fn there_is_one_rule_per_main_and_per_controlled_resource() {
        let configuration = webhook_configuration(&ring(), &settings(), &[]);
        let rule = |group: &str, resource: &str| {
            json!({
                "operations": ["CREATE", "UPDATE"],
                "apiGroups": [group],
                "apiVersions": ["*"],
                "resources": [resource],
                "scope": "*",
            })
        };
        assert_eq!(
            serde_json::to_value(&the_webhook(&configuration).rules).unwrap(),
            json!([
                rule("webhosting.timebertt.dev", "websites"),
                rule("apps", "deployments"),
                rule("", "configmaps"),
                rule("", "secrets"),
            ])
        );
    }

    #[test]
    fn a_ring_without_resources_has_no_rules() {
        let mut ring = ring();
        ring.spec.resources.clear();
        let configuration = webhook_configuration(&ring, &settings(), &[]);
        assert_eq!(the_webhook(&configuration).rules, Some(vec![]));
    }

    #[test]
    fn omitted_resources_get_no_rule() {
        let mut ring = ring();
        ring.spec.resources[0]
            .controlled_resources
            .push(GroupResource::new("*", "*"));
        let omitted = [
            GroupResource::new("*", "*"),
            GroupResource::new("", "configmaps"),
        ];
        let configuration = webhook_configuration(&ring, &settings(), &omitted);
        let resources: Vec<_> = the_webhook(&configuration)
            .rules
            .iter()
            .flatten()
            .map(|rule| {
                (
                    rule.api_groups.clone().unwrap(),
                    rule.resources.clone().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            resources,
            [
                (
                    vec!["webhosting.timebertt.dev".to_owned()],
                    vec!["websites".to_owned()]
                ),
                (vec!["apps".to_owned()], vec!["deployments".to_owned()]),
                (vec![String::new()], vec!["secrets".to_owned()]),
            ]
        );
    }
}
