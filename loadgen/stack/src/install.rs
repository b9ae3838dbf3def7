//! The APIs and objects a stack needs before its processes start.

use std::{collections::BTreeMap, fmt::Debug, path::Path, time::Duration};

use anyhow::Context as _;
use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
    runtime::wait::{await_condition, conditions},
};
use kube_sharding::api::controller_ring;
use serde::{Serialize, de::DeserializeOwned};

use crate::Manifest;

/// The namespace of the operator's shard Leases and leader Lease
/// (docs/contract.md#the-webhosting-operator-api).
pub const OPERATOR_NAMESPACE: &str = "webhosting-system";

/// The label that puts a namespace into the ring `webhosting-operator`
/// (docs/contract.md#the-webhosting-operator-api).
pub const PROJECT_LABEL: &str = "webhosting.timebertt.dev/project";

/// The field manager of everything the stack applies.
pub(crate) const FIELD_MANAGER: &str = "stack";

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
/// `webhosting-system` and the ControllerRing `webhosting-operator`: [`webhosting_manifests`]
/// through [`install_manifests`](crate::install_manifests), as for any controller under test.
///
/// # Errors
/// Besides API errors: the ControllerRing CRD is not installed ([`install_sharding`] first).
pub async fn install_webhosting(client: &Client) -> anyhow::Result<()> {
    crate::install_manifests(client, &webhosting_manifests(), OPERATOR_NAMESPACE).await
}

/// The webhosting-operator's manifests, as shipped with it: its CRDs
/// (`config/crds/`), its namespace and its ControllerRing.
///
/// # Panics
/// Never: the manifests are built in, and a unit test parses them.
#[must_use]
pub fn webhosting_manifests() -> Vec<Manifest> {
    let crds = webhosting_operator::api::crds_yaml()
        .into_iter()
        .map(|(file, yaml)| (format!("webhosting-operator/config/crds/{file}"), yaml));
    let shipped = [
        ("webhosting-operator/config/namespace.yaml", NAMESPACE_YAML),
        (
            "webhosting-operator/config/controllerring.yaml",
            CONTROLLER_RING_YAML,
        ),
    ]
    .map(|(file, yaml)| (file.to_owned(), yaml.to_owned()));
    crds.chain(shipped)
        .map(|(file, yaml)| {
            Manifest::parse(Path::new(&file), &yaml)
                .unwrap_or_else(|error| panic!("a built-in manifest does not parse: {error:#}"))
        })
        .collect()
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
    wait_crd_established(&crds, &name).await
}

/// Waits until CRD `name` is established, for at most a minute.
pub(crate) async fn wait_crd_established(
    crds: &Api<CustomResourceDefinition>,
    name: &str,
) -> anyhow::Result<()> {
    tokio::time::timeout(
        CRD_PATIENCE,
        await_condition(crds.clone(), name, conditions::is_crd_established()),
    )
    .await
    .with_context(|| format!("CRD {name} was not established within {CRD_PATIENCE:?}"))?
    .with_context(|| format!("cannot watch CRD {name}"))?;
    Ok(())
}

/// Creates namespace `name` without labels unless it exists; an existing one is left as it is.
pub(crate) async fn create_namespace_if_missing(client: &Client, name: &str) -> anyhow::Result<()> {
    let namespaces = Api::<Namespace>::all(client.clone());
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    match namespaces.create(&PostParams::default(), &namespace).await {
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        result => result
            .map(drop)
            .with_context(|| format!("cannot create namespace {name}")),
    }
}

#[cfg(test)]
mod tests {
    use kube_sharding::api::ControllerRing;

    use super::*;

    #[test]
    fn the_webhosting_manifests_hold_its_crds_namespace_and_ring() {
        let manifests = webhosting_manifests();
        let objects: Vec<String> = manifests
            .iter()
            .flat_map(|m| &m.objects)
            .map(|o| {
                format!(
                    "{} {}",
                    o.types.as_ref().unwrap().kind,
                    o.metadata.name.as_deref().unwrap()
                )
            })
            .collect();
        assert_eq!(
            objects,
            [
                "CustomResourceDefinition websites.webhosting.timebertt.dev",
                "CustomResourceDefinition themes.webhosting.timebertt.dev",
                "Namespace webhosting-system",
                "ControllerRing webhosting-operator",
            ]
        );
        assert!(manifests.iter().any(|m| m.has_ring(crate::WEBHOSTING_RING)));
    }

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
