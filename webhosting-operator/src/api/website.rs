//! The `Website` resource (docs/contract.md#the-webhosting-operator-api): a hosted website styled
//! by a Theme.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Label on a Website that makes the operator skip the actual workload (load tests): its Deployment
/// runs no replicas and its Ingress uses the class `fake`
/// (docs/contract.md#the-webhosting-operator-api). Any value counts.
pub const LABEL_SKIP_WORKLOAD: &str = "skip-workload";

/// WebsiteSpec defines the desired state of a Website.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "webhosting.timebertt.dev",
    version = "v1alpha1",
    kind = "Website",
    plural = "websites",
    namespaced,
    status = "WebsiteStatus",
    doc = "Website enables declarative management of hosted websites.",
    printcolumn = r#"{"name":"Theme","type":"string","jsonPath":".spec.theme"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Since","type":"date","jsonPath":".status.lastTransitionTime"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
pub struct WebsiteSpec {
    /// Theme references a Theme object to be used for this Website.
    pub theme: String,
}

/// WebsiteStatus defines the observed state of a Website.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebsiteStatus {
    /// The generation observed by the Website controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Phase is the current phase of this Website.
    // A plain string in the schema, as in the Go original: the API server accepts any phase,
    // so one this operator does not know reads as none rather than failing the whole list.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "known_phase"
    )]
    #[schemars(with = "Option<String>")]
    pub phase: Option<WebsitePhase>,
    /// LastTransitionTime is the last time the phase transitioned from one value to another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<MicroTime>,
}

/// The phase named by a `status.phase`, or `None` for an absent or unknown one.
fn known_phase<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<WebsitePhase>, D::Error> {
    let phase = Option::<String>::deserialize(deserializer)?;
    Ok(phase.and_then(|phase| {
        WebsitePhase::ALL
            .into_iter()
            .find(|known| known.as_str() == phase)
    }))
}

/// WebsitePhase describes the phase of a Website.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
pub enum WebsitePhase {
    /// The Website is not ready yet.
    Pending,
    /// The Website is ready and available.
    Ready,
    /// There is a problem running the Website.
    Error,
    /// The Website is shutting down.
    Terminating,
}

impl WebsitePhase {
    /// All phases, e.g. to export a zero for each phase in metrics.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Ready, Self::Error, Self::Terminating];

    /// The phase as written to `status.phase`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Ready => "Ready",
            Self::Error => "Error",
            Self::Terminating => "Terminating",
        }
    }
}

impl fmt::Display for WebsitePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_ready_status_serializes_with_the_go_field_names() {
        let status = WebsiteStatus {
            observed_generation: Some(3),
            phase: Some(WebsitePhase::Ready),
            last_transition_time: Some(MicroTime(
                "2024-05-06T07:08:09.123456Z".parse::<Timestamp>().unwrap(),
            )),
        };
        let value = serde_json::to_value(&status).unwrap();
        assert_eq!(
            value,
            json!({
                "observedGeneration": 3,
                "phase": "Ready",
                "lastTransitionTime": "2024-05-06T07:08:09.123456Z",
            })
        );
        assert_eq!(
            serde_json::from_value::<WebsiteStatus>(value).unwrap(),
            status
        );
    }

    #[test]
    fn an_unknown_phase_reads_as_none() {
        let status: WebsiteStatus =
            serde_json::from_value(json!({"phase": "Sleeping", "observedGeneration": 2})).unwrap();
        assert_eq!(status.phase, None);
        assert_eq!(status.observed_generation, Some(2));
    }

    #[test]
    fn an_empty_status_serializes_to_an_empty_object() {
        assert_eq!(
            serde_json::to_value(WebsiteStatus::default()).unwrap(),
            json!({})
        );
    }

    #[test]
    fn phases_read_and_print_as_their_names() {
        for phase in WebsitePhase::ALL {
            assert_eq!(phase.to_string(), phase.as_str());
            assert_eq!(serde_json::to_value(phase).unwrap(), json!(phase.as_str()));
            assert_eq!(
                serde_json::from_value::<WebsitePhase>(json!(phase.as_str())).unwrap(),
                phase
            );
        }
    }

    #[test]
    fn a_website_serializes_with_api_version_and_kind() {
        let website = Website::new(
            "homepage",
            WebsiteSpec {
                theme: "exciting".into(),
            },
        );
        let value = serde_json::to_value(&website).unwrap();
        assert_eq!(value["apiVersion"], "webhosting.timebertt.dev/v1alpha1");
        assert_eq!(value["kind"], "Website");
        assert_eq!(value["spec"], json!({"theme": "exciting"}));
    }
}
