//! The APIs and objects a stack needs before its processes start.

use std::{collections::BTreeMap, fmt::Debug, time::Duration};

use anyhow::Context as _;
use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams},
    runtime::wait::{await_condition, conditions},
};
use serde::{Serialize, de::DeserializeOwned};
use sharding::api::{ControllerRing, controller_ring};

/// The namespace of the operator's shard Leases and leader Lease
/// (docs/contract.md#the-webhosting-operator-api).
pub const OPERATOR_NAMESPACE: &str = "webhosting-system";

/// The label that puts a namespace into the ring `webhosting-operator`
/// (docs/contract.md#the-webhosting-operator-api).
pub const PROJECT_LABEL: &str = "webhosting.timebertt.dev/project";

/// The field manager of everything the stack applies.
const FIELD_MANAGER: &str = "stack";

/// How long a new CRD may take to be established.
const CRD_PATIENCE: Duration = Duration::from_secs(60);

/// The operator's ControllerRing, as shipped with it.
const CONTROLLER_RING_YAML: &str =
    include_str!("../../../webhosting-operator/config/controllerring.yaml");

/// The operator's namespace, as shipped with it.
const NAMESPACE_YAML: &str = include_str!("../../../webhosting-operator/config/namespace.yaml");

/// Applies the ControllerRing CRD and waits until it is established.
pub async fn install_sharding(client: &Client) -> anyhow::Result<()> {
    install_crd(client, &controller_ring::crd_yaml()).await
}

/// Applies the Website and Theme CRDs (and waits until they are established), the namespace
/// `webhosting-system` and the ControllerRing `webhosting-operator`.
///
/// # Errors
/// Besides API errors: the ControllerRing CRD is not installed ([`install_sharding`] first).
pub async fn install_webhosting(client: &Client) -> anyhow::Result<()> {
    for (file, yaml) in webhosting_operator::api::crds_yaml() {
        install_crd(client, &yaml)
            .await
            .with_context(|| format!("cannot install the CRD of {file}"))?;
    }
    let namespace: Namespace =
        serde_saphyr::from_str(NAMESPACE_YAML).context("cannot parse config/namespace.yaml")?;
    apply(&Api::<Namespace>::all(client.clone()), &namespace).await?;
    let ring: ControllerRing = serde_saphyr::from_str(CONTROLLER_RING_YAML)
        .context("cannot parse config/controllerring.yaml")?;
    apply(&Api::<ControllerRing>::all(client.clone()), &ring)
        .await
        .context("is the ControllerRing CRD installed (stack::install_sharding)?")?;
    Ok(())
}

/// Creates (or updates) namespace `name` with the label `webhosting.timebertt.dev/project:
/// "true"`, which puts it into the ring `webhosting-operator`.
pub async fn create_project_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    apply_namespace(
        client,
        name,
        [(PROJECT_LABEL.to_owned(), "true".to_owned())].into(),
    )
    .await
}

/// Creates (or updates) namespace `name` without labels of ours: outside the ring
/// `webhosting-operator`.
pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    apply_namespace(client, name, BTreeMap::new()).await
}

async fn apply_namespace(
    client: &Client,
    name: &str,
    labels: BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    apply(&Api::<Namespace>::all(client.clone()), &namespace).await
}

/// Server-side applies a cluster-scoped object.
pub(crate) async fn apply<K>(api: &Api<K>, object: &K) -> anyhow::Result<()>
where
    K: kube::Resource<DynamicType = ()> + Serialize + Clone + Debug + DeserializeOwned,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let kind = K::kind(&()).into_owned();
    // Typed objects from Rust structs carry no apiVersion and kind; apply needs both.
    let mut value = serde_json::to_value(object)?;
    value["apiVersion"] = K::api_version(&()).into();
    value["kind"] = kind.clone().into();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&value),
    )
    .await
    .with_context(|| format!("cannot apply {kind} {name}"))?;
    Ok(())
}

/// Applies a CRD from its YAML and waits until it is established.
async fn install_crd(client: &Client, yaml: &str) -> anyhow::Result<()> {
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(yaml).context("cannot parse the CRD")?;
    let name = crd.metadata.name.clone().context("the CRD has no name")?;
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    apply(&crds, &crd).await?;
    tokio::time::timeout(
        CRD_PATIENCE,
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .with_context(|| format!("CRD {name} was not established within {CRD_PATIENCE:?}"))?
    .with_context(|| format!("cannot watch CRD {name}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_ring_selects_project_namespaces() {
        let ring: ControllerRing = serde_saphyr::from_str(CONTROLLER_RING_YAML).unwrap();
        assert_eq!(ring.ring_name(), crate::WEBHOSTING_RING);
        let labels = ring
            .spec
            .namespace_selector
            .and_then(|s| s.match_labels)
            .unwrap();
        assert_eq!(labels.get(PROJECT_LABEL).map(String::as_str), Some("true"));
    }

    #[test]
    fn the_shipped_namespace_is_the_operators() {
        let namespace: Namespace = serde_saphyr::from_str(NAMESPACE_YAML).unwrap();
        assert_eq!(namespace.metadata.name.as_deref(), Some(OPERATOR_NAMESPACE));
    }
}
