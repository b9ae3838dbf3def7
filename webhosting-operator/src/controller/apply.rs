//! Server-side apply that writes nothing when the object already is as desired.

use std::{fmt::Debug, sync::Arc};

use kube::{
    Api, Client, Resource,
    api::{Patch, PatchParams},
    runtime::reflector::{ObjectRef, Store},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// The field manager of the operator's applies.
pub const FIELD_MANAGER: &str = "webhosting-operator";

/// Whether `actual` already holds every field of `desired` with the same value. Fields that
/// only `actual` has (defaults, status, fields of other managers) do not matter; lists must
/// have the same length, and their items are compared in order.
#[must_use]
pub fn is_subset(desired: &Value, actual: &Value) -> bool {
    match (desired, actual) {
        (Value::Object(desired), Value::Object(actual)) => desired.iter().all(|(key, value)| {
            actual
                .get(key)
                .map_or(value.is_null(), |actual| is_subset(value, actual))
        }),
        (Value::Array(desired), Value::Array(actual)) => {
            desired.len() == actual.len()
                && desired.iter().zip(actual).all(|(d, a)| is_subset(d, a))
        }
        (desired, actual) => desired == actual,
    }
}

/// Applies `desired` unless the cached object in `store` already is as desired, and returns
/// the object as it now is.
pub async fn apply<K>(client: &Client, store: &Store<K>, desired: &K) -> kube::Result<Arc<K>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    if let Some(cached) = store.get(&ObjectRef::from_obj(desired)) {
        let current = serde_json::to_value(cached.as_ref()).map_err(kube::Error::SerdeError)?;
        let wanted = serde_json::to_value(desired).map_err(kube::Error::SerdeError)?;
        if is_subset(&wanted, &current) {
            return Ok(cached);
        }
    }
    let meta = desired.meta();
    tracing::debug!(kind = %K::kind(&()), name = meta.name, "applying");
    let api = Api::<K>::namespaced(
        client.clone(),
        meta.namespace.as_deref().unwrap_or_default(),
    );
    let applied = api
        .patch(
            meta.name.as_deref().unwrap_or_default(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(desired),
        )
        .await?;
    Ok(Arc::new(applied))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_set_by_others_do_not_matter() {
        let desired = json!({"spec": {"ports": [{"name": "http", "port": 8080}]}});
        let actual = json!({
            "spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}], "type": "ClusterIP"},
            "status": {}
        });
        assert!(is_subset(&desired, &actual));
    }

    #[test]
    fn a_changed_or_missing_value_differs() {
        let actual = json!({"metadata": {"labels": {"a": "1"}}});
        assert!(!is_subset(
            &json!({"metadata": {"labels": {"a": "2"}}}),
            &actual
        ));
        assert!(!is_subset(
            &json!({"metadata": {"labels": {"b": "1"}}}),
            &actual
        ));
    }

    #[test]
    fn lists_must_have_the_same_items() {
        let actual = json!({"items": [{"a": 1}, {"a": 2}]});
        assert!(!is_subset(&json!({"items": [{"a": 1}]}), &actual));
        assert!(!is_subset(&json!({"items": [{"a": 2}, {"a": 1}]}), &actual));
        assert!(is_subset(&json!({"items": [{}, {"a": 2}]}), &actual));
    }

    #[test]
    fn a_null_matches_a_missing_field() {
        assert!(is_subset(&json!({"a": null}), &json!({})));
    }
}
