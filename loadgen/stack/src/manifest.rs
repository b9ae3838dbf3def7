//! Manifests of a controller under test: YAML files of Kubernetes objects (CRDs, its
//! ControllerRing, namespaces, config), applied to the local control plane before its shards
//! start.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client, ResourceExt as _,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams},
    discovery::{self, Scope},
};
use kube_sharding::api::ControllerRing;
use serde_json::Value;

use crate::install::{FIELD_MANAGER, create_namespace_if_missing, wait_crd_established};

/// The kinds a local control plane has no use for: every request there is made with admin
/// credentials, and a controller running as a process is no ServiceAccount.
const RBAC_KINDS: [&str; 5] = [
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ServiceAccount",
];

/// The objects of one manifest file, in the order they are written.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Where the objects come from: the file, or a name for built-in manifests.
    pub source: PathBuf,
    /// Its documents; empty documents are left out.
    pub objects: Vec<DynamicObject>,
}

impl Manifest {
    /// Reads and parses the file at `path`.
    ///
    /// # Errors
    /// The file cannot be read, or [`Manifest::parse`] fails.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        Self::parse(path, &text)
    }

    /// Parses `text`, one object per YAML document; `source` names it in errors.
    ///
    /// # Errors
    /// The text is not YAML, or a document is not an object with `apiVersion`, `kind` and
    /// `metadata.name`: the error names the document, counting from 1.
    pub fn parse(source: &Path, text: &str) -> anyhow::Result<Self> {
        let documents: Vec<Value> = serde_saphyr::from_multiple(text)
            .with_context(|| format!("{}: not YAML", source.display()))?;
        let objects = documents
            .into_iter()
            .enumerate()
            .filter(|(_, document)| !document.is_null())
            .map(|(index, document)| {
                object(document)
                    .with_context(|| format!("{}: document {}", source.display(), index + 1))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            source: source.to_owned(),
            objects,
        })
    }

    /// Whether it holds the ControllerRing `ring`.
    #[must_use]
    pub fn has_ring(&self, ring: &str) -> bool {
        self.objects.iter().any(|object| {
            kind_of(object) == Some(ring_kind()) && object.metadata.name.as_deref() == Some(ring)
        })
    }
}

/// A document as an object with `apiVersion`, `kind` and a name.
fn object(document: Value) -> anyhow::Result<DynamicObject> {
    for field in ["apiVersion", "kind"] {
        if !document.get(field).is_some_and(Value::is_string) {
            bail!("has no {field}");
        }
    }
    let object: DynamicObject =
        serde_json::from_value(document).context("is not a Kubernetes object")?;
    if object.metadata.name.as_deref().is_none_or(str::is_empty) {
        bail!("has no metadata.name");
    }
    Ok(object)
}

/// The group, version and kind of an object parsed by [`Manifest::parse`].
fn kind_of(object: &DynamicObject) -> Option<GroupVersionKind> {
    let types = object.types.as_ref()?;
    let (group, version) = types
        .api_version
        .split_once('/')
        .unwrap_or(("", &types.api_version));
    Some(GroupVersionKind::gvk(group, version, &types.kind))
}

fn ring_kind() -> GroupVersionKind {
    use kube::Resource as _;
    GroupVersionKind::gvk(
        &ControllerRing::group(&()),
        &ControllerRing::version(&()),
        &ControllerRing::kind(&()),
    )
}

/// Whether a local control plane skips the object: Roles, ClusterRoles, their bindings and
/// ServiceAccounts.
#[must_use]
pub fn is_rbac(object: &DynamicObject) -> bool {
    kind_of(object).is_some_and(|gvk| {
        let rbac_group = gvk.group == "rbac.authorization.k8s.io";
        let core = gvk.group.is_empty();
        RBAC_KINDS.contains(&gvk.kind.as_str()) && (rbac_group || core)
    })
}

/// The order objects are applied in, each with its manifest's source: CRDs first (each waited
/// for until Established, so that objects of its kind can follow), then namespaces, then the
/// rest as written. RBAC objects are left out ([`is_rbac`]).
fn install_order(manifests: &[Manifest]) -> Vec<(&Path, &DynamicObject)> {
    let objects = || {
        manifests
            .iter()
            .flat_map(|m| m.objects.iter().map(|o| (m.source.as_path(), o)))
            .filter(|(_, o)| !is_rbac(o))
    };
    let kind = |object: &DynamicObject| kind_of(object).map(|gvk| (gvk.group, gvk.kind));
    let is_crd = |(_, object): &(&Path, &DynamicObject)| {
        kind(object)
            == Some((
                "apiextensions.k8s.io".to_owned(),
                "CustomResourceDefinition".into(),
            ))
    };
    let is_namespace = |(_, object): &(&Path, &DynamicObject)| {
        kind(object) == Some((String::new(), "Namespace".to_owned()))
    };
    objects()
        .filter(is_crd)
        .chain(objects().filter(is_namespace))
        .chain(objects().filter(|o| !is_crd(o) && !is_namespace(o)))
        .collect()
}

/// Applies the manifests (server-side, field manager `stack`) in [`install_order`], after
/// creating namespace `lease_namespace` unless it exists.
///
/// # Errors
/// An object's kind is unknown to the API server, an apply fails, or a CRD is not Established
/// within a minute. The error names the object and its manifest.
pub async fn install_manifests(
    client: &Client,
    manifests: &[Manifest],
    lease_namespace: &str,
) -> anyhow::Result<()> {
    create_namespace_if_missing(client, lease_namespace).await?;
    for (source, object) in install_order(manifests) {
        apply_object(client, object).await.with_context(|| {
            format!("cannot apply {} of {}", describe(object), source.display())
        })?;
    }
    Ok(())
}

/// `ControllerRing checksum-controller`, with the namespace when it has one.
fn describe(object: &DynamicObject) -> String {
    let kind = object.types.as_ref().map_or("object", |t| t.kind.as_str());
    let mut text = format!("{kind} ");
    if let Some(namespace) = &object.metadata.namespace {
        let _ = write!(text, "{namespace}/");
    }
    text.push_str(&object.name_any());
    text
}

async fn apply_object(client: &Client, object: &DynamicObject) -> anyhow::Result<()> {
    let gvk = kind_of(object).context("has no apiVersion or kind")?;
    let (resource, capabilities) = discovery::pinned_kind(client, &gvk)
        .await
        .with_context(|| format!("the API server does not serve {}", gvk.kind))?;
    let api: Api<DynamicObject> = match capabilities.scope {
        Scope::Cluster => Api::all_with(client.clone(), &resource),
        Scope::Namespaced => Api::namespaced_with(
            client.clone(),
            object.metadata.namespace.as_deref().unwrap_or("default"),
            &resource,
        ),
    };
    let name = object.name_any();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await?;
    if is_crd_resource(&resource) {
        let crds = Api::<CustomResourceDefinition>::all(client.clone());
        wait_crd_established(&crds, &name).await?;
    }
    Ok(())
}

fn is_crd_resource(resource: &ApiResource) -> bool {
    resource.group == "apiextensions.k8s.io" && resource.kind == "CustomResourceDefinition"
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "\
apiVersion: v1
kind: ServiceAccount
metadata: {name: controller, namespace: system}
---
apiVersion: sharding.timebertt.dev/v1alpha1
kind: ControllerRing
metadata: {name: checksum-controller}
spec: {resources: [{group: '', resource: secrets}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: controller}
---
apiVersion: v1
kind: Namespace
metadata: {name: system}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
---
";

    fn parse(text: &str) -> anyhow::Result<Manifest> {
        Manifest::parse(Path::new("config/all.yaml"), text)
    }

    fn names(objects: &[(&Path, &DynamicObject)]) -> Vec<String> {
        objects.iter().map(|(_, o)| describe(o)).collect()
    }

    #[test]
    fn documents_become_objects_and_empty_ones_are_left_out() {
        let manifest = parse(MANIFEST).unwrap();
        assert_eq!(manifest.objects.len(), 5);
        assert!(manifest.has_ring("checksum-controller"));
        assert!(!manifest.has_ring("webhosting-operator"));
    }

    #[test]
    fn rbac_is_skipped_and_crds_and_namespaces_go_first() {
        let manifests = [parse(MANIFEST).unwrap()];
        assert_eq!(
            names(&install_order(&manifests)),
            [
                "CustomResourceDefinition things.example.com",
                "Namespace system",
                "ControllerRing checksum-controller",
            ]
        );
    }

    #[test]
    fn only_the_rbac_kinds_count_as_rbac() {
        let manifest = parse(MANIFEST).unwrap();
        let rbac: Vec<bool> = manifest.objects.iter().map(is_rbac).collect();
        assert_eq!(rbac, [true, false, true, false, false]);
        // A kind of the same name in another group is the controller's own.
        let own = parse("apiVersion: example.com/v1\nkind: Role\nmetadata: {name: r}\n").unwrap();
        assert!(!is_rbac(&own.objects[0]));
    }

    #[test]
    fn a_document_without_api_version_kind_or_name_is_named() {
        let cases = [
            (
                "kind: Namespace\nmetadata: {name: a}\n",
                "document 1: has no apiVersion",
            ),
            (
                "apiVersion: v1\nmetadata: {name: a}\n",
                "document 1: has no kind",
            ),
            (
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Namespace\n",
                "document 2: has no metadata.name",
            ),
            ("- a\n- b\n", "document 1: has no apiVersion"),
        ];
        for (text, expected) in cases {
            let error = format!("{:#}", parse(text).unwrap_err());
            assert!(
                error.starts_with(&format!("config/all.yaml: {expected}")),
                "{error}"
            );
        }
        let error = format!("{:#}", parse("a: [\n").unwrap_err());
        assert!(error.starts_with("config/all.yaml: not YAML"), "{error}");
    }
}
