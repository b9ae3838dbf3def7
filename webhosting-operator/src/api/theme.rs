//! The `Theme` resource (docs/contract.md#the-webhosting-operator-api): a cluster-wide style that
//! Websites refer to by name.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// ThemeSpec defines the desired state of a Theme.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "webhosting.timebertt.dev",
    version = "v1alpha1",
    kind = "Theme",
    plural = "themes",
    status = "ThemeStatus",
    doc = "Theme is the Schema for the themes API.",
    printcolumn = r#"{"name":"Color","type":"string","jsonPath":".spec.color"}"#,
    printcolumn = r#"{"name":"Font Family","type":"string","jsonPath":".spec.fontFamily"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ThemeSpec {
    /// Color is a CSS color for a Website.
    pub color: String,
    /// FontFamily is a font family for a Website.
    pub font_family: String,
}

/// ThemeStatus defines the observed state of a Theme.
// Empty: it exists because the original's Theme CRD has a status subresource.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub struct ThemeStatus {}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_theme_serializes_with_the_go_field_names() {
        let theme = Theme::new(
            "exciting",
            ThemeSpec {
                color: "darkcyan".into(),
                font_family: "Menlo".into(),
            },
        );
        let value = serde_json::to_value(&theme).unwrap();
        assert_eq!(value["apiVersion"], "webhosting.timebertt.dev/v1alpha1");
        assert_eq!(value["kind"], "Theme");
        assert_eq!(
            value["spec"],
            json!({"color": "darkcyan", "fontFamily": "Menlo"})
        );
    }
}
