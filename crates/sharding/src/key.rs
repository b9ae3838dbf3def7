//! Hash keys: the string an object is placed on the ring by (docs/contract.md#hash-keys).
//!
//! A main object is keyed by itself, `<group>/<Kind>/<namespace>/<name>`; a controlled object by
//! its controller owner, `<owner group>/<owner Kind>/<object namespace>/<owner name>`, so that it
//! lands on its owner's shard. There is no version in a key: moving an API version does not
//! move objects.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::TypeMeta;

/// Why a main object has no hash key. The texts are part of the contract: the webhook denies
/// the request with them (docs/contract.md#hash-keys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The object carries no apiVersion or kind (or its apiVersion has no version).
    #[error("apiVersion and kind must not be empty")]
    MissingTypeMeta,
    /// The object has only a generateName: its name, and so its key, is not known yet.
    #[error(
        "generateName is not supported on ring resources that are not controlled by another resource"
    )]
    GenerateName,
    /// The object has neither a name nor a generateName.
    #[error("name must not be empty")]
    MissingName,
}

/// The hash key of a main object: `<group>/<Kind>/<namespace>/<name>`.
///
/// The core group and the namespace of cluster-scoped objects are empty, e.g.
/// `/Secret/default/foo` and `rbac.authorization.k8s.io/ClusterRole//admin`.
pub fn for_object(types: Option<&TypeMeta>, meta: &ObjectMeta) -> Result<String, KeyError> {
    let types = types.ok_or(KeyError::MissingTypeMeta)?;
    if types.kind.is_empty() || version_of(&types.api_version).is_empty() {
        return Err(KeyError::MissingTypeMeta);
    }
    let name = meta.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        return Err(
            if meta.generate_name.as_deref().is_some_and(|g| !g.is_empty()) {
                KeyError::GenerateName
            } else {
                KeyError::MissingName
            },
        );
    }
    Ok(join(
        group_of(&types.api_version),
        &types.kind,
        meta.namespace.as_deref(),
        name,
    ))
}

/// The hash key of a controlled object, from its `controller: true` ownerReference:
/// `<owner group>/<owner Kind>/<object namespace>/<owner name>`. `None` if there is no
/// controller reference: the object is then not assigned.
#[must_use]
pub fn for_controller(meta: &ObjectMeta) -> Option<String> {
    let owner = meta
        .owner_references
        .as_ref()?
        .iter()
        .find(|owner| owner.controller == Some(true))?;
    Some(join(
        group_of(&owner.api_version),
        &owner.kind,
        meta.namespace.as_deref(),
        &owner.name,
    ))
}

/// The group of an apiVersion: `apps/v1` → `apps`, and `v1` (the core group) → `""`.
#[must_use]
pub fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// The version of an apiVersion: `apps/v1` → `v1`, `v1` → `v1`.
fn version_of(api_version: &str) -> &str {
    api_version
        .split_once('/')
        .map_or(api_version, |(_, version)| version)
}

fn join(group: &str, kind: &str, namespace: Option<&str>, name: &str) -> String {
    let namespace = namespace.unwrap_or_default();
    let mut key =
        String::with_capacity(group.len() + kind.len() + namespace.len() + name.len() + 3);
    for part in [group, "/", kind, "/", namespace, "/", name] {
        key.push_str(part);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn types(api_version: &str, kind: &str) -> TypeMeta {
        TypeMeta {
            api_version: api_version.into(),
            kind: kind.into(),
        }
    }

    fn meta(namespace: Option<&str>, name: &str) -> ObjectMeta {
        ObjectMeta {
            namespace: namespace.map(Into::into),
            name: Some(name.into()),
            ..ObjectMeta::default()
        }
    }

    fn owner(
        api_version: &str,
        kind: &str,
        name: &str,
        controller: Option<bool>,
    ) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: "uid".into(),
            controller,
            ..OwnerReference::default()
        }
    }

    #[test]
    fn a_core_object_has_an_empty_group() {
        let key = for_object(Some(&types("v1", "Secret")), &meta(Some("default"), "foo"));
        assert_eq!(key.as_deref(), Ok("/Secret/default/foo"));
    }

    #[test]
    fn a_grouped_object_has_its_group_and_no_version() {
        let key = for_object(
            Some(&types("apps/v1", "Deployment")),
            &meta(Some("default"), "nginx"),
        );
        assert_eq!(key.as_deref(), Ok("apps/Deployment/default/nginx"));
        let key = for_object(
            Some(&types("webhosting.timebertt.dev/v1alpha1", "Website")),
            &meta(Some("project-foo"), "homepage"),
        );
        assert_eq!(
            key.as_deref(),
            Ok("webhosting.timebertt.dev/Website/project-foo/homepage")
        );
    }

    #[test]
    fn a_cluster_scoped_object_has_an_empty_namespace() {
        let key = for_object(
            Some(&types("webhosting.timebertt.dev/v1alpha1", "Theme")),
            &meta(None, "exciting"),
        );
        assert_eq!(
            key.as_deref(),
            Ok("webhosting.timebertt.dev/Theme//exciting")
        );
        let key = for_object(
            Some(&types("webhosting.timebertt.dev/v1alpha1", "Theme")),
            &meta(Some(""), "exciting"),
        );
        assert_eq!(
            key.as_deref(),
            Ok("webhosting.timebertt.dev/Theme//exciting")
        );
    }

    #[test]
    fn missing_api_version_or_kind_is_an_error() {
        let m = meta(Some("default"), "foo");
        for t in [
            None,
            Some(types("", "Secret")),
            Some(types("v1", "")),
            Some(types("apps/", "Deployment")),
        ] {
            let err = for_object(t.as_ref(), &m).unwrap_err();
            assert_eq!(err, KeyError::MissingTypeMeta);
            assert_eq!(err.to_string(), "apiVersion and kind must not be empty");
        }
    }

    #[test]
    fn only_a_generate_name_is_an_error() {
        let m = ObjectMeta {
            generate_name: Some("site-".into()),
            ..meta(Some("default"), "")
        };
        let err = for_object(Some(&types("v1", "ConfigMap")), &m).unwrap_err();
        assert_eq!(err, KeyError::GenerateName);
        assert_eq!(
            err.to_string(),
            "generateName is not supported on ring resources that are not controlled by another resource"
        );
    }

    #[test]
    fn a_missing_name_is_an_error() {
        let t = types("v1", "ConfigMap");
        for m in [
            meta(Some("default"), ""),
            ObjectMeta {
                name: None,
                ..meta(Some("default"), "")
            },
            ObjectMeta {
                generate_name: Some(String::new()),
                ..meta(Some("default"), "")
            },
        ] {
            let err = for_object(Some(&t), &m).unwrap_err();
            assert_eq!(err, KeyError::MissingName);
            assert_eq!(err.to_string(), "name must not be empty");
        }
    }

    #[test]
    fn a_controlled_object_is_keyed_by_its_controller_in_its_own_namespace() {
        let m = ObjectMeta {
            owner_references: Some(vec![
                owner("v1", "ConfigMap", "not-the-controller", None),
                owner("v1", "Secret", "also-not", Some(false)),
                owner(
                    "webhosting.timebertt.dev/v1alpha1",
                    "Website",
                    "homepage",
                    Some(true),
                ),
            ]),
            ..meta(Some("project-foo"), "homepage-abcde")
        };
        assert_eq!(
            for_controller(&m).as_deref(),
            Some("webhosting.timebertt.dev/Website/project-foo/homepage")
        );
    }

    #[test]
    fn a_core_controller_has_an_empty_group() {
        let m = ObjectMeta {
            owner_references: Some(vec![owner("v1", "ConfigMap", "foo", Some(true))]),
            ..meta(Some("default"), "bar")
        };
        assert_eq!(
            for_controller(&m).as_deref(),
            Some("/ConfigMap/default/foo")
        );
    }

    #[test]
    fn an_object_without_a_controller_has_no_key() {
        assert_eq!(for_controller(&meta(Some("default"), "foo")), None);
        let m = ObjectMeta {
            owner_references: Some(vec![owner("v1", "ConfigMap", "foo", Some(false))]),
            ..meta(Some("default"), "bar")
        };
        assert_eq!(for_controller(&m), None);
    }

    #[test]
    fn the_group_is_the_part_before_the_slash() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(
            group_of("webhosting.timebertt.dev/v1alpha1"),
            "webhosting.timebertt.dev"
        );
        assert_eq!(group_of(""), "");
    }
}
