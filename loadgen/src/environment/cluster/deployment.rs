//! The operator Deployment's patches: the scenario's replicas and operator settings, and
//! putting back what the Deployment had before.

use anyhow::Context as _;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::EnvVar};
use kube::ResourceExt as _;
use serde_json::{Value, json};

use crate::scenario::{Operator, format_duration};

// The environment variables of the operator's settings that a scenario sets
// (webhosting-operator `options.rs`).
const ENV_WORKERS: &str = "WEBHOSTING_WORKERS";
const ENV_SIMULATED_WORK: &str = "WEBHOSTING_SIMULATED_WORK";
const ENV_LEASE_DURATION: &str = "WEBHOSTING_LEASE_DURATION";
const ENV_NAMES: [&str; 3] = [ENV_WORKERS, ENV_SIMULATED_WORK, ENV_LEASE_DURATION];

/// The operator container's replicas and scenario settings as [`super::Cluster::prepare`] found
/// them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Original {
    /// The operator's container: the pod template's first (and only) one.
    pub(super) container: String,
    replicas: i32,
    /// The entries of [`ENV_NAMES`], `None` for those the container did not set.
    env: Vec<(String, Option<EnvVar>)>,
}

impl Original {
    pub(super) fn of(deployment: &Deployment) -> anyhow::Result<Self> {
        let spec = deployment.spec.as_ref();
        let container = spec
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .with_context(|| format!("Deployment {} has no container", deployment.name_any()))?;
        let env = container.env.as_deref().unwrap_or_default();
        Ok(Self {
            container: container.name.clone(),
            // The API server defaults a missing replicas to 1.
            replicas: spec.and_then(|s| s.replicas).unwrap_or(1),
            env: ENV_NAMES
                .iter()
                .map(|&name| {
                    let entry = env.iter().find(|e| e.name == name).cloned();
                    (name.to_owned(), entry)
                })
                .collect(),
        })
    }
}

/// A strategic merge patch of the operator Deployment: `replicas` and these env entries of
/// `container` (env lists merge by name, so other entries stay).
fn deployment_patch(container: &str, replicas: i32, env: &[Value]) -> Value {
    json!({ "spec": {
        "replicas": replicas,
        "template": { "spec": { "containers": [{ "name": container, "env": env }] } },
    } })
}

/// Sets the replicas and the scenario's operator settings.
pub(super) fn configure_patch(container: &str, replicas: i32, operator: &Operator) -> Value {
    let values = [
        (ENV_WORKERS, operator.workers.to_string()),
        (ENV_SIMULATED_WORK, format_duration(operator.simulated_work)),
        (ENV_LEASE_DURATION, format_duration(operator.lease_duration)),
    ];
    let env: Vec<Value> = values
        .into_iter()
        // `valueFrom: null` removes a reference the deployment may have set instead.
        .map(|(name, value)| json!({ "name": name, "value": value, "valueFrom": null }))
        .collect();
    deployment_patch(container, replicas, &env)
}

/// Puts back what [`configure_patch`] changed: entries that were not there are deleted, the
/// others get their value or reference back.
pub(super) fn restore_patch(original: &Original) -> Value {
    let env: Vec<Value> = original
        .env
        .iter()
        .map(|(name, entry)| match entry {
            None => json!({ "name": name, "$patch": "delete" }),
            Some(entry) => json!({
                "name": name,
                "value": entry.value,
                "valueFrom": entry.value_from,
            }),
        })
        .collect();
    deployment_patch(&original.container, original.replicas, &env)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::{
        api::{
            apps::v1::DeploymentSpec,
            core::v1::{Container, EnvVarSource, ObjectFieldSelector, PodSpec, PodTemplateSpec},
        },
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
    };

    use super::*;

    fn env(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn field_ref(name: &str, path: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: path.into(),
                    ..ObjectFieldSelector::default()
                }),
                ..EnvVarSource::default()
            }),
        }
    }

    fn deployment(replicas: Option<i32>, env: Vec<EnvVar>) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("webhosting-operator".into()),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas,
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "operator".into(),
                            env: Some(env),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    }),
                },
                ..DeploymentSpec::default()
            }),
            status: None,
        }
    }

    #[test]
    fn the_original_holds_the_settings_the_container_had() {
        let original = Original::of(&deployment(
            None,
            vec![
                field_ref("POD_NAME", "metadata.name"),
                env(ENV_WORKERS, "5"),
                field_ref(ENV_LEASE_DURATION, "metadata.annotations['lease']"),
            ],
        ))
        .unwrap();
        assert_eq!(
            original,
            Original {
                container: "operator".into(),
                replicas: 1,
                env: vec![
                    (ENV_WORKERS.into(), Some(env(ENV_WORKERS, "5"))),
                    (ENV_SIMULATED_WORK.into(), None),
                    (
                        ENV_LEASE_DURATION.into(),
                        Some(field_ref(
                            ENV_LEASE_DURATION,
                            "metadata.annotations['lease']"
                        ))
                    ),
                ],
            }
        );
        let mut empty = deployment(Some(2), Vec::new());
        empty.spec.as_mut().unwrap().template.spec = None;
        let error = Original::of(&empty).unwrap_err().to_string();
        assert_eq!(error, "Deployment webhosting-operator has no container");
    }

    #[test]
    fn configuring_sets_replicas_and_the_operator_settings() {
        let operator = Operator {
            workers: 7,
            simulated_work: Duration::from_millis(100),
            lease_duration: Duration::from_secs(15),
        };
        assert_eq!(
            configure_patch("operator", 3, &operator),
            json!({ "spec": {
                "replicas": 3,
                "template": { "spec": { "containers": [{ "name": "operator", "env": [
                    { "name": ENV_WORKERS, "value": "7", "valueFrom": null },
                    { "name": ENV_SIMULATED_WORK, "value": "100ms", "valueFrom": null },
                    { "name": ENV_LEASE_DURATION, "value": "15s", "valueFrom": null },
                ] }] } },
            } })
        );
    }

    #[test]
    fn restoring_deletes_added_entries_and_puts_back_the_others() {
        let original = Original {
            container: "operator".into(),
            replicas: 2,
            env: vec![
                (ENV_WORKERS.into(), Some(env(ENV_WORKERS, "5"))),
                (ENV_SIMULATED_WORK.into(), None),
                (
                    ENV_LEASE_DURATION.into(),
                    Some(field_ref(ENV_LEASE_DURATION, "metadata.name")),
                ),
            ],
        };
        assert_eq!(
            restore_patch(&original),
            json!({ "spec": {
                "replicas": 2,
                "template": { "spec": { "containers": [{ "name": "operator", "env": [
                    { "name": ENV_WORKERS, "value": "5", "valueFrom": null },
                    { "name": ENV_SIMULATED_WORK, "$patch": "delete" },
                    { "name": ENV_LEASE_DURATION, "value": null,
                      "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
                ] }] } },
            } })
        );
    }
}
