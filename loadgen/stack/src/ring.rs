//! Waiting until a ControllerRing's webhook is in the API server's path.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context as _, bail};
use k8s_openapi::{api::core::v1::Namespace, apimachinery::pkg::apis::meta::v1::LabelSelector};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, ObjectMeta, PostParams},
    discovery::{self, Scope},
};
use kube_sharding::api::ControllerRing;
use tokio::time::Instant;

use crate::{install::apply, wait::wait_for};

/// The ControllerRing of the webhosting-operator (docs/contract.md#the-webhosting-operator-api).
pub const WEBHOSTING_RING: &str = webhosting_operator::metrics::RING;

/// The label every namespace carries with its own name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Waits until ControllerRing `ring` is Ready for its current generation and the API server
/// calls its webhook: a server-side dry-run create of the ring's first main resource with
/// only `generateName` (a Website for `webhosting-operator`) is denied, which only the
/// sharder's webhook does (docs/contract.md#hash-keys). The API server loads webhook configurations
/// asynchronously, so a Ready ring alone does not mean that the next create is assigned.
///
/// The probe runs in a namespace the ring selects: the one its selector names by
/// `kubernetes.io/metadata.name` (which must exist), else `probe-<ring>` with the selector's
/// labels (created and left in place), or `default` when the ring has no selector.
///
/// # Errors
/// `patience` runs out (for both steps together), an API request fails, or the ring selects
/// namespaces only by expressions.
pub async fn wait_ring_ready(
    client: &Client,
    ring: &str,
    patience: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + patience;
    let rings = Api::<ControllerRing>::all(client.clone());
    let object = wait_for(
        &format!("ControllerRing {ring} to be Ready"),
        patience,
        || Ok(()),
        || async {
            let object = rings.get_opt(ring).await?;
            Ok(object.filter(is_ready))
        },
    )
    .await?;
    let probe = Probe::new(client, &object).await?;
    wait_for(
        &format!("the API server to call the webhook of ControllerRing {ring}"),
        deadline.saturating_duration_since(Instant::now()),
        || Ok(()),
        || probe.denied(),
    )
    .await
}

/// Ready=True for the ring's current generation.
fn is_ready(ring: &ControllerRing) -> bool {
    let Some(status) = &ring.status else {
        return false;
    };
    let current = status.observed_generation >= ring.metadata.generation;
    current
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// A dry-run create that the ring's webhook must deny.
struct Probe {
    api: Api<DynamicObject>,
    object: DynamicObject,
}

impl Probe {
    async fn new(client: &Client, ring: &ControllerRing) -> anyhow::Result<Self> {
        let name = ring.ring_name();
        let main = ring
            .spec
            .resources
            .first()
            .with_context(|| format!("ControllerRing {name} has no resources"))?;
        let (resource, scope) = discover(client, &main.group, &main.resource).await?;
        let api = match scope {
            Scope::Cluster => Api::all_with(client.clone(), &resource),
            Scope::Namespaced => {
                let namespace = probe_namespace(name, ring.spec.namespace_selector.as_ref())?;
                if let ProbeNamespace::Labelled { name, labels } = &namespace {
                    let object = Namespace {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            labels: Some(labels.clone()),
                            ..ObjectMeta::default()
                        },
                        ..Namespace::default()
                    };
                    apply(&Api::<Namespace>::all(client.clone()), &object).await?;
                }
                Api::namespaced_with(client.clone(), namespace.name(), &resource)
            }
        };
        let object = serde_json::from_value(serde_json::json!({
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": { "generateName": "probe-" },
        }))?;
        Ok(Self { api, object })
    }

    /// `Some` once the webhook denied the probe (400); a create that passes means that the
    /// API server has not called the webhook (its failure policy is Ignore).
    async fn denied(&self) -> anyhow::Result<Option<()>> {
        let dry_run = PostParams {
            dry_run: true,
            ..PostParams::default()
        };
        match self.api.create(&dry_run, &self.object).await {
            Err(kube::Error::Api(status)) if status.code == 400 => Ok(Some(())),
            _ => Ok(None),
        }
    }
}

/// The API resource (preferred version) and scope of `group`/`resource`.
async fn discover(
    client: &Client,
    group: &str,
    resource: &str,
) -> anyhow::Result<(ApiResource, Scope)> {
    let api_group = discovery::group(client, group)
        .await
        .with_context(|| format!("cannot discover API group {group:?}"))?;
    api_group
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.plural == resource)
        .map(|(r, capabilities)| (r, capabilities.scope))
        .with_context(|| format!("API group {group:?} has no resource {resource}"))
}

/// Where the probe is created.
#[derive(Debug, PartialEq, Eq)]
enum ProbeNamespace {
    /// A namespace that must exist.
    Existing(String),
    /// A namespace to create with these labels.
    Labelled {
        name: String,
        labels: BTreeMap<String, String>,
    },
}

impl ProbeNamespace {
    fn name(&self) -> &str {
        match self {
            Self::Existing(name) | Self::Labelled { name, .. } => name,
        }
    }
}

/// A namespace that ring `ring`'s namespace selector selects.
fn probe_namespace(ring: &str, selector: Option<&LabelSelector>) -> anyhow::Result<ProbeNamespace> {
    let Some(selector) = selector else {
        // The sharder's default selector takes every namespace but kube-system and its own.
        return Ok(ProbeNamespace::Existing("default".to_owned()));
    };
    if selector
        .match_expressions
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        bail!("cannot probe ControllerRing {ring}: its namespaceSelector has matchExpressions");
    }
    let labels = selector.match_labels.clone().unwrap_or_default();
    if let Some(name) = labels.get(NAMESPACE_NAME_LABEL) {
        return Ok(ProbeNamespace::Existing(name.clone()));
    }
    // Ring names may hold dots; namespace names are DNS labels of at most 63 characters.
    let mut name: String = format!("probe-{ring}")
        .replace('.', "-")
        .chars()
        .take(63)
        .collect();
    while name.ends_with('-') {
        name.pop();
    }
    Ok(ProbeNamespace::Labelled { name, labels })
}

#[cfg(test)]
mod tests {
    use kube_sharding::api::{ControllerRingSpec, ControllerRingStatus};
    use serde_json::json;

    use super::*;

    fn selector(value: serde_json::Value) -> LabelSelector {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_ring_without_selector_is_probed_in_default() {
        assert_eq!(
            probe_namespace("r", None).unwrap(),
            ProbeNamespace::Existing("default".into())
        );
    }

    #[test]
    fn a_selector_by_name_names_the_namespace() {
        let selector =
            selector(json!({ "matchLabels": { "kubernetes.io/metadata.name": "bench-sharded" } }));
        assert_eq!(
            probe_namespace("bench", Some(&selector)).unwrap(),
            ProbeNamespace::Existing("bench-sharded".into())
        );
    }

    #[test]
    fn a_selector_by_labels_gets_a_labelled_namespace() {
        let selector =
            selector(json!({ "matchLabels": { "webhosting.timebertt.dev/project": "true" } }));
        assert_eq!(
            probe_namespace("webhosting-operator", Some(&selector)).unwrap(),
            ProbeNamespace::Labelled {
                name: "probe-webhosting-operator".into(),
                labels: [("webhosting.timebertt.dev/project".into(), "true".into())].into(),
            }
        );
        let long = format!("a.{}", "b".repeat(70));
        let ProbeNamespace::Labelled { name, .. } =
            probe_namespace(&long, Some(&selector)).unwrap()
        else {
            panic!("not labelled");
        };
        assert_eq!(name.len(), 63);
        assert!(name.starts_with("probe-a-bbb"), "{name}");
    }

    #[test]
    fn a_selector_by_expressions_cannot_be_probed() {
        let selector = selector(json!({ "matchExpressions": [
            { "key": "a", "operator": "Exists" }
        ] }));
        let error = probe_namespace("r", Some(&selector))
            .unwrap_err()
            .to_string();
        assert!(error.contains("matchExpressions"), "{error}");
    }

    fn ring(generation: i64, observed: i64, ready: &str) -> ControllerRing {
        let mut ring = ControllerRing::new("r", ControllerRingSpec::default());
        ring.metadata.generation = Some(generation);
        ring.status = Some(ControllerRingStatus {
            observed_generation: Some(observed),
            shards: 0,
            available_shards: 0,
            conditions: vec![
                serde_json::from_value(json!({
                    "type": "Ready", "status": ready, "reason": "Test", "message": "",
                    "lastTransitionTime": "2024-01-01T00:00:00Z"
                }))
                .unwrap(),
            ],
        });
        ring
    }

    #[test]
    fn a_ring_is_ready_with_the_condition_for_its_generation() {
        assert!(is_ready(&ring(2, 2, "True")));
        assert!(!is_ready(&ring(2, 1, "True")));
        assert!(!is_ready(&ring(2, 2, "False")));
        assert!(!is_ready(&ControllerRing::new(
            "r",
            ControllerRingSpec::default()
        )));
    }
}
