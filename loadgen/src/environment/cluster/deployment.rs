//! The patches of the workload whose replicas are the shards (a Deployment or a StatefulSet):
//! the scenario's replicas and, for the webhosting-operator, its operator settings, and putting
//! back what the workload had before.

use anyhow::Context as _;
use k8s_openapi::api::core::v1::EnvVar;
use serde_json::{Value, json};

use super::workload::Workload;
use crate::scenario::{Operator, format_duration};

// The environment variables of the operator's settings that a scenario sets
// (webhosting-operator `options.rs`).
const ENV_WORKERS: &str = "WEBHOSTING_WORKERS";
const ENV_SIMULATED_WORK: &str = "WEBHOSTING_SIMULATED_WORK";
const ENV_LEASE_DURATION: &str = "WEBHOSTING_LEASE_DURATION";
const ENV_NAMES: [&str; 3] = [ENV_WORKERS, ENV_SIMULATED_WORK, ENV_LEASE_DURATION];

/// The workload's replicas and, for the webhosting-operator, its container's settings as
/// [`super::Cluster::prepare`] found them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Original {
    /// The controller's container: the pod template's first one.
    pub(super) container: String,
    replicas: i32,
    /// The entries of [`ENV_NAMES`], `None` for those the container did not set; empty when
    /// the settings are not the target's to change.
    env: Vec<(String, Option<EnvVar>)>,
}

impl Original {
    /// What `workload` (named `name` in errors) has now; with `operator_env`, also the
    /// operator's settings in its environment.
    pub(super) fn of(name: &str, workload: &Workload, operator_env: bool) -> anyhow::Result<Self> {
        let container = workload
            .template()
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.containers.first())
            .with_context(|| format!("{name} has no container"))?;
        let env = container.env.as_deref().unwrap_or_default();
        let names = if operator_env { &ENV_NAMES[..] } else { &[] };
        Ok(Self {
            container: container.name.clone(),
            replicas: workload.replicas(),
            env: names
                .iter()
                .map(|&name| {
                    let entry = env.iter().find(|e| e.name == name).cloned();
                    (name.to_owned(), entry)
                })
                .collect(),
        })
    }
}

/// A strategic merge patch of the workload: `replicas` and these env entries of `container`
/// (env lists merge by name, so other entries stay); without entries, only the replicas.
fn workload_patch(container: &str, replicas: i32, env: &[Value]) -> Value {
    if env.is_empty() {
        return json!({ "spec": { "replicas": replicas } });
    }
    json!({ "spec": {
        "replicas": replicas,
        "template": { "spec": { "containers": [{ "name": container, "env": env }] } },
    } })
}

/// Sets the replicas and, given `operator`, the webhosting-operator's settings.
pub(super) fn configure_patch(
    container: &str,
    replicas: i32,
    operator: Option<&Operator>,
) -> Value {
    let values = operator.map_or_else(Vec::new, |operator| {
        vec![
            (ENV_WORKERS, operator.workers.to_string()),
            (ENV_SIMULATED_WORK, format_duration(operator.simulated_work)),
            (ENV_LEASE_DURATION, format_duration(operator.lease_duration)),
        ]
    });
    let env: Vec<Value> = values
        .into_iter()
        // `valueFrom: null` removes a reference the deployment may have set instead.
        .map(|(name, value)| json!({ "name": name, "value": value, "valueFrom": null }))
        .collect();
    workload_patch(container, replicas, &env)
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
    workload_patch(&original.container, original.replicas, &env)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::{
        api::{
            apps::v1::DeploymentSpec,
            apps::v1::{Deployment, StatefulSet, StatefulSetSpec},
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

    fn of(deployment: Deployment, operator_env: bool) -> anyhow::Result<Original> {
        Original::of(
            "Deployment system/controller",
            &Workload::Deployment(deployment),
            operator_env,
        )
    }

    #[test]
    fn the_original_holds_the_settings_the_container_had() {
        let original = of(
            deployment(
                None,
                vec![
                    field_ref("POD_NAME", "metadata.name"),
                    env(ENV_WORKERS, "5"),
                    field_ref(ENV_LEASE_DURATION, "metadata.annotations['lease']"),
                ],
            ),
            true,
        )
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
        let error = of(empty, true).unwrap_err().to_string();
        assert_eq!(error, "Deployment system/controller has no container");
    }

    #[test]
    fn another_controller_gets_only_its_replicas_changed_and_restored() {
        let settings = vec![env(ENV_WORKERS, "5")];
        let original = of(deployment(Some(2), settings.clone()), false).unwrap();
        assert_eq!(original.env, []);
        assert_eq!(
            configure_patch(&original.container, 4, None),
            json!({ "spec": { "replicas": 4 } })
        );
        assert_eq!(
            restore_patch(&original),
            json!({ "spec": { "replicas": 2 } })
        );
        let template = deployment(Some(3), settings).spec.unwrap().template;
        let stateful = StatefulSet {
            spec: Some(StatefulSetSpec {
                replicas: None,
                template,
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        };
        let original = Original::of("StatefulSet a/b", &Workload::StatefulSet(stateful), false);
        assert_eq!(original.unwrap().replicas, 1);
    }

    #[test]
    fn configuring_sets_replicas_and_the_operator_settings() {
        let operator = Operator {
            workers: 7,
            simulated_work: Duration::from_millis(100),
            lease_duration: Duration::from_secs(15),
        };
        assert_eq!(
            configure_patch("operator", 3, Some(&operator)),
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
