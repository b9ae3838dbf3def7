//! AdmissionReviews as the webhook reads them: only what the decision needs is kept
//! (docs/sharder.md#the-webhook-under-load).
//!
//! kube's `AdmissionReview` and `DynamicObject` use serde's `flatten`, which buffers every
//! field it does not name into an intermediate tree: a review was copied twice over while
//! it was decoded, so a 7 MiB review held about three times that. Here the envelope names
//! its fields, and each object is read as its [`ObjectHead`]: its type and metadata, while
//! the rest (spec, data, status) is skipped without being stored.

use std::borrow::Cow;

use kube::core::{
    ApiResource, DynamicResourceScope, ObjectMeta, Resource, TypeMeta, admission::AdmissionRequest,
};
use serde::Deserialize;

/// An object of a review without its content: the decision reads only its type and metadata
/// (docs/contract.md#hash-keys).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(from = "RawHead")]
pub struct ObjectHead {
    /// `apiVersion` and `kind`, when the object has both.
    pub types: Option<TypeMeta>,
    /// `metadata`.
    pub metadata: ObjectMeta,
}

/// The fields of an object that [`ObjectHead`] keeps; serde skips the others.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHead {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: ObjectMeta,
}

impl From<RawHead> for ObjectHead {
    fn from(raw: RawHead) -> Self {
        let types = raw
            .api_version
            .zip(raw.kind)
            .map(|(api_version, kind)| TypeMeta { api_version, kind });
        Self {
            types,
            metadata: raw.metadata,
        }
    }
}

/// Typed like `DynamicObject`, so that an `AdmissionRequest` can hold it.
impl Resource for ObjectHead {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn group(dt: &ApiResource) -> Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn kind(dt: &ApiResource) -> Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// An `admission.k8s.io` AdmissionReview request, its type fields named rather than flattened.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incoming {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    request: Option<AdmissionRequest<ObjectHead>>,
}

/// Why a body is not a review the webhook can answer.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// The body does not decode; the message names the field at fault.
    #[error("cannot decode AdmissionReview: {0}")]
    Decode(String),
    /// The review has no `request`.
    #[error("AdmissionReview carries no request")]
    NoRequest,
}

/// Reads the request of the AdmissionReview in `body`.
pub fn read(body: &[u8]) -> Result<AdmissionRequest<ObjectHead>, Unreadable> {
    // The path names the field at fault (`request.operation`), which serde_json's own
    // error, a line and column, does not.
    let incoming: Incoming = serde_path_to_error::deserialize(
        &mut serde_json::Deserializer::from_slice(body),
    )
    .map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." {
            String::new()
        } else {
            format!("{path}: ")
        };
        Unreadable::Decode(format!("{field}{}", error.inner()))
    })?;
    incoming.request.ok_or(Unreadable::NoRequest)
}

/// A review of a ConfigMap request with `operation`, whose object and (for an UPDATE) old
/// object are `object`: a fixture of the webhook's tests.
#[cfg(test)]
pub(crate) fn config_map_review(operation: &str, object: &serde_json::Value) -> serde_json::Value {
    let old_object = (operation == "UPDATE").then_some(object);
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-1",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "operation": operation,
            "userInfo": {},
            "object": object,
            "oldObject": old_object,
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn review(object: &serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&config_map_review("UPDATE", object)).unwrap()
    }

    #[test]
    fn an_object_is_read_as_its_type_and_metadata_only() {
        let request = read(&review(&json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "foo", "labels": {"a": "b"}},
            "data": {"big": "x".repeat(1000)},
        })))
        .unwrap();
        let expected = ObjectHead {
            types: Some(TypeMeta {
                api_version: "v1".to_owned(),
                kind: "ConfigMap".to_owned(),
            }),
            metadata: ObjectMeta {
                name: Some("foo".to_owned()),
                labels: Some([("a".to_owned(), "b".to_owned())].into()),
                ..ObjectMeta::default()
            },
        };
        assert_eq!(request.uid, "uid-1");
        assert_eq!(request.object, Some(expected.clone()));
        assert_eq!(request.old_object, Some(expected));
    }

    #[test]
    fn an_object_without_both_type_fields_has_no_types() {
        let request = read(&review(&json!({"apiVersion": "v1"}))).unwrap();
        assert_eq!(request.object, Some(ObjectHead::default()));
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named_by_its_path() {
        let mut body: serde_json::Value = serde_json::from_slice(&review(&json!({}))).unwrap();
        body["request"]["operation"] = json!(7);
        let Err(Unreadable::Decode(message)) = read(&serde_json::to_vec(&body).unwrap()) else {
            panic!("the review must not decode");
        };
        assert!(message.starts_with("request.operation: "), "{message}");
        body["request"]["operation"] = json!("CREATE");
        body["request"]["object"]["metadata"] = json!({"labels": "a=b"});
        let Err(Unreadable::Decode(message)) = read(&serde_json::to_vec(&body).unwrap()) else {
            panic!("the review must not decode");
        };
        assert!(
            message.starts_with("request.object.metadata.labels: invalid type: string"),
            "{message}"
        );
    }

    #[test]
    fn a_review_needs_its_type_fields_and_a_request() {
        assert!(matches!(
            read(br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#),
            Err(Unreadable::NoRequest)
        ));
        assert!(matches!(
            read(br#"{"kind": "AdmissionReview", "request": null}"#),
            Err(Unreadable::Decode(message)) if message.contains("missing field `apiVersion`")
        ));
    }
}
