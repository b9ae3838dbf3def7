//! `controller`: the controller under test (docs/experiments.md#the-controller-under-test). The
//! webhosting-operator is the default ([`Controller::webhosting_operator`]), described as any
//! other: a ring, a Lease namespace, a work queue, a command template per local shard, and the
//! workload a cluster scales.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::{Deserialize, Serialize, Serializer};
use stack::Manifest;

use super::{
    Operator, Result, ScenarioError,
    rules::{self, Verdict},
};
use crate::workload::RenderError;

/// The placeholders of command templates (docs/experiments.md#the-controller-under-test).
pub const PLACEHOLDERS: [&str; 11] = [
    "bin",
    "shard",
    "ring",
    "lease_namespace",
    "kubeconfig",
    "metrics_port",
    "health_port",
    "workers",
    "simulated_work",
    "lease_duration",
    "audit_file",
];

/// `controller`: which controller's shards run, and how to find them.
#[derive(Clone, Debug, PartialEq)]
pub struct Controller {
    /// `name`: `[a-z0-9-]+`, in reports.
    pub name: String,
    /// `ring`: its ControllerRing.
    pub ring: String,
    /// `leaseNamespace`: the namespace of its shard Leases.
    pub lease_namespace: String,
    /// `queue`: the `name` label of its `workqueue_*` series (controller-runtime's metrics).
    pub queue: String,
    /// `local`: how the local target runs it; `None` when it runs only on a cluster.
    pub local: Option<LocalController>,
    /// `cluster`: what the cluster target scales; `None` when it runs only locally.
    pub cluster: Option<ClusterController>,
}

/// `controller.local`: the manifests and one process per shard.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalController {
    /// `manifests`: applied to the local control plane before the shards start (RBAC kinds
    /// skipped); paths as given are relative to the scenario file.
    pub manifests: Vec<Manifest>,
    /// `command`: the program and its arguments, each a template of [`PLACEHOLDERS`].
    pub command: Vec<String>,
    /// `env`: environment variables, each value a template of [`PLACEHOLDERS`].
    pub env: BTreeMap<String, String>,
    /// `readyPath`: polled on `{{ health_port }}` until it answers 200; without it a shard is
    /// ready when the ring counts it.
    pub ready_path: Option<String>,
}

/// `controller.cluster`: the workload whose replicas are the shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterController {
    /// `deployment` or `statefulSet`.
    pub workload: ShardWorkload,
    /// `podSelector`: the shards' pods; `None` for the workload's own selector.
    pub pod_selector: Option<String>,
    /// Whether the scenario's `operator` settings go into the workload's environment
    /// (`WEBHOSTING_*`): only for the webhosting-operator, whose variables are known.
    pub operator_env: bool,
}

/// The kind of workload a cluster scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkloadKind {
    /// `deployment`.
    Deployment,
    /// `statefulSet`.
    StatefulSet,
}

/// `controller.cluster.deployment` or `.statefulSet`: `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardWorkload {
    /// Deployment or StatefulSet.
    pub kind: WorkloadKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for ShardWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
        };
        write!(f, "{kind} {}/{}", self.namespace, self.name)
    }
}

/// The values of one shard's placeholders that the target chooses.
#[derive(Clone, Copy, Debug)]
pub struct ShardValues<'a> {
    /// `bin`: the directory of the workspace's binaries.
    pub bin: &'a Path,
    /// `shard`: the shard's name.
    pub shard: &'a str,
    /// `kubeconfig`: the local control plane's admin kubeconfig.
    pub kubeconfig: &'a Path,
    /// `metrics_port`: a free loopback port for `/metrics`.
    pub metrics_port: u16,
    /// `health_port`: a free loopback port for the health endpoints.
    pub health_port: u16,
    /// `audit_file`: where the shard appends its reconciliation audit log
    /// (docs/experiments.md#ownership).
    pub audit_file: &'a Path,
}

/// A shard's rendered command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedCommand {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment variables.
    pub env: Vec<(String, String)>,
}

/// `{{ bin }}/webhosting-operator` with the flags the operator has always been started with
/// (`stack::OperatorSettings`), and its audit log for the ownership audit.
const WEBHOSTING_COMMAND: [&str; 19] = [
    "{{ bin }}/webhosting-operator",
    "--mode",
    "sharded",
    "--identity",
    "{{ shard }}",
    "--namespace",
    "{{ lease_namespace }}",
    "--workers",
    "{{ workers }}",
    "--simulated-work",
    "{{ simulated_work }}",
    "--lease-duration",
    "{{ lease_duration }}",
    "--metrics-address",
    "127.0.0.1:{{ metrics_port }}",
    "--health-address",
    "127.0.0.1:{{ health_port }}",
    "--audit-file",
    "{{ audit_file }}",
];

impl Controller {
    /// The default: the webhosting-operator, with its built-in manifests (CRDs, namespace,
    /// ring), ready on `/readyz`, and on a cluster the Deployment
    /// `webhosting-system/webhosting-operator` with the scenario's operator settings in its
    /// environment.
    #[must_use]
    pub fn webhosting_operator() -> Self {
        Self {
            name: "webhosting-operator".to_owned(),
            ring: stack::WEBHOSTING_RING.to_owned(),
            lease_namespace: stack::OPERATOR_NAMESPACE.to_owned(),
            queue: "website".to_owned(),
            local: Some(LocalController {
                manifests: stack::webhosting_manifests(),
                command: WEBHOSTING_COMMAND.map(str::to_owned).to_vec(),
                env: BTreeMap::new(),
                ready_path: Some("/readyz".to_owned()),
            }),
            cluster: Some(ClusterController {
                workload: ShardWorkload {
                    kind: WorkloadKind::Deployment,
                    namespace: stack::OPERATOR_NAMESPACE.to_owned(),
                    name: "webhosting-operator".to_owned(),
                },
                pod_selector: None,
                operator_env: true,
            }),
        }
    }

    /// Whether it is the default, which a scenario file need not write.
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Self::webhosting_operator()
    }

    /// Whether its local command or environment uses the placeholder `name`, such as
    /// `workers`: the `operator` settings it does not use are neither allowed nor written
    /// back.
    #[must_use]
    pub fn uses(&self, name: &str) -> bool {
        placeholders_used(
            self.local
                .iter()
                .flat_map(|local| local.command.iter().chain(local.env.values())),
        )
        .contains(name)
    }

    /// The command of shard `values.shard`, with `operator`'s settings.
    ///
    /// # Errors
    /// It has no `local` section, or a template does not render; the error names the field.
    pub fn shard_command(
        &self,
        values: &ShardValues<'_>,
        operator: &Operator,
    ) -> Result<RenderedCommand, RenderError> {
        let local = self.local.as_ref().ok_or_else(|| RenderError {
            field: "controller.local".to_owned(),
            problem: format!(
                "is not set: controller {} runs only on the cluster target",
                self.name
            ),
        })?;
        let context = self.context(values, operator);
        let render = |field: String, template: &str| render(&field, template, &context);
        let mut command = local
            .command
            .iter()
            .enumerate()
            .map(|(i, template)| render(format!("controller.local.command[{i}]"), template))
            .collect::<Result<Vec<_>, _>>()?;
        if command.is_empty() {
            return Err(RenderError {
                field: "controller.local.command".to_owned(),
                problem: "must not be empty".to_owned(),
            });
        }
        let program = command.remove(0);
        let env = local
            .env
            .iter()
            .map(|(name, template)| {
                let value = render(format!("controller.local.env.{name}"), template)?;
                Ok((name.clone(), value))
            })
            .collect::<Result<_, RenderError>>()?;
        Ok(RenderedCommand {
            program,
            args: command,
            env,
        })
    }

    fn context(&self, values: &ShardValues<'_>, operator: &Operator) -> Value {
        let path = |path: &Path| Value::from(path.display().to_string());
        Value::from_pairs([
            ("bin", path(values.bin)),
            ("shard", Value::from(values.shard)),
            ("ring", Value::from(self.ring.as_str())),
            (
                "lease_namespace",
                Value::from(self.lease_namespace.as_str()),
            ),
            ("kubeconfig", path(values.kubeconfig)),
            ("metrics_port", Value::from(values.metrics_port)),
            ("health_port", Value::from(values.health_port)),
            ("workers", Value::from(operator.workers)),
            (
                "simulated_work",
                Value::from(format!("{}ms", operator.simulated_work.as_millis())),
            ),
            (
                "lease_duration",
                Value::from(format!("{}s", operator.lease_duration.as_secs())),
            ),
            ("audit_file", path(values.audit_file)),
        ])
    }
}

/// `template` rendered with `context`; undefined placeholders are errors.
fn render(field: &str, template: &str, context: &Value) -> Result<String, RenderError> {
    let error = |problem: String| RenderError {
        field: field.to_owned(),
        problem,
    };
    let environment = environment();
    let compiled = environment
        .template_from_str(template)
        .map_err(|e| error(format!("cannot parse {template:?}: {e}")))?;
    let unknown: BTreeSet<String> = compiled
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !PLACEHOLDERS.contains(&name.as_str()))
        .collect();
    if let Some(name) = unknown.first() {
        return Err(error(format!(
            "unknown placeholder {name:?} in {template:?}; known are {}",
            PLACEHOLDERS.join(", ")
        )));
    }
    compiled
        .render(context)
        .map_err(|e| error(format!("cannot render {template:?}: {e}")))
}

/// The placeholders used by `templates`.
fn placeholders_used<'a>(templates: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    let environment = environment();
    templates
        .into_iter()
        .filter_map(|template| environment.template_from_str(template).ok())
        .flat_map(|compiled| compiled.undeclared_variables(false))
        .collect()
}

fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment
}

/// The file's shape of a [`Controller`]: manifests by their (absolute) paths.
impl Serialize for Controller {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Local<'a> {
            manifests: Vec<&'a Path>,
            command: &'a [String],
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            env: &'a BTreeMap<String, String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            ready_path: Option<&'a str>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Cluster<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            deployment: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            stateful_set: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pod_selector: Option<&'a str>,
        }
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct File<'a> {
            name: &'a str,
            ring: &'a str,
            lease_namespace: &'a str,
            queue: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            local: Option<Local<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            cluster: Option<Cluster<'a>>,
        }
        let local = self.local.as_ref().map(|local| Local {
            manifests: local.manifests.iter().map(|m| m.source.as_path()).collect(),
            command: &local.command,
            env: &local.env,
            ready_path: local.ready_path.as_deref(),
        });
        let cluster = self.cluster.as_ref().map(|cluster| {
            let workload = &cluster.workload;
            let name = Some(format!("{}/{}", workload.namespace, workload.name));
            let is = |kind| workload.kind == kind;
            Cluster {
                deployment: name.clone().filter(|_| is(WorkloadKind::Deployment)),
                stateful_set: name.filter(|_| is(WorkloadKind::StatefulSet)),
                pod_selector: cluster.pod_selector.as_deref(),
            }
        });
        File {
            name: &self.name,
            ring: &self.ring,
            lease_namespace: &self.lease_namespace,
            queue: &self.queue,
            local,
            cluster,
        }
        .serialize(serializer)
    }
}

/// The value, or an error naming `file` and `field`.
fn check<T>(file: &Path, field: &str, verdict: Verdict<T>) -> Result<T> {
    verdict.map_err(|problem| ScenarioError::Invalid {
        file: file.to_owned(),
        field: field.to_owned(),
        problem,
    })
}

/// `controller` as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawController {
    name: Option<String>,
    ring: Option<String>,
    lease_namespace: Option<String>,
    queue: Option<String>,
    local: Option<RawLocal>,
    cluster: Option<RawCluster>,
}

/// `controller.local`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLocal {
    manifests: Option<Vec<String>>,
    command: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    ready_path: Option<String>,
}

/// `controller.cluster`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCluster {
    deployment: Option<String>,
    stateful_set: Option<String>,
    pod_selector: Option<String>,
}

impl RawController {
    /// Checks every field; manifests are read relative to `file`'s directory. `operator` is
    /// what the shards run with, `operator_set` the `operator` fields the file sets, which the
    /// command must use.
    pub(super) fn validate(
        self,
        file: &Path,
        operator: &Operator,
        operator_set: &[&str],
    ) -> Result<Controller> {
        let name = check(
            file,
            "controller.name",
            rules::required(self.name).and_then(rules::name),
        )?;
        let ring = check(
            file,
            "controller.ring",
            rules::required(self.ring).and_then(|ring| rules::object_name(ring, false)),
        )?;
        let lease_namespace = check(
            file,
            "controller.leaseNamespace",
            rules::required(self.lease_namespace)
                .and_then(|namespace| rules::object_name(namespace, true)),
        )?;
        let queue = check(
            file,
            "controller.queue",
            rules::required(self.queue).and_then(|queue| {
                if queue.is_empty() {
                    Err("must not be empty".to_owned())
                } else {
                    Ok(queue)
                }
            }),
        )?;
        check(
            file,
            "controller",
            if self.local.is_none() && self.cluster.is_none() {
                Err("set local, cluster or both".to_owned())
            } else {
                Ok(())
            },
        )?;
        let local = self
            .local
            .map(|raw| raw.validate(file, &ring))
            .transpose()?;
        let cluster = self.cluster.map(|raw| raw.validate(file)).transpose()?;
        let controller = Controller {
            name,
            ring,
            lease_namespace,
            queue,
            local,
            cluster,
        };
        controller.check_renders(file, operator)?;
        for set in operator_set {
            check(
                file,
                &format!("operator.{set}"),
                operator_placeholder_used(set, &controller),
            )?;
        }
        Ok(controller)
    }
}

impl Controller {
    /// Renders the command with sample values, so that a bad template fails before anything
    /// starts.
    fn check_renders(&self, file: &Path, operator: &Operator) -> Result<()> {
        if self.local.is_none() {
            return Ok(());
        }
        let sample = ShardValues {
            bin: Path::new("/bin"),
            shard: "shard-0",
            kubeconfig: Path::new("/kubeconfig"),
            metrics_port: 8080,
            health_port: 8081,
            audit_file: Path::new("/audit/shard-0.jsonl"),
        };
        let rendered = self.shard_command(&sample, operator);
        rendered
            .map(drop)
            .or_else(|error| check(file, &error.field, Err(error.problem)))
    }
}

/// An `operator` field set in the file reaches a declared controller only through its
/// placeholder: one the command does not use would be silently ignored.
fn operator_placeholder_used(field: &str, controller: &Controller) -> Verdict<()> {
    let placeholder = match field {
        "simulatedWork" => "simulated_work",
        "leaseDuration" => "lease_duration",
        workers => workers,
    };
    if controller.uses(placeholder) {
        Ok(())
    } else {
        Err(format!(
            "is set, but controller {} does not use {{{{ {placeholder} }}}} in \
             controller.local: remove it, or pass it in the command (a cluster's workload keeps \
             its own settings)",
            controller.name
        ))
    }
}

impl RawLocal {
    fn validate(self, file: &Path, ring: &str) -> Result<LocalController> {
        let base = file.parent().unwrap_or(Path::new("."));
        let manifests = self
            .manifests
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let field = format!("controller.local.manifests[{i}]");
                check(file, &field, read_manifest(&base.join(path)))
            })
            .collect::<Result<Vec<_>>>()?;
        check(
            file,
            "controller.local.manifests",
            if manifests.iter().any(|m| m.has_ring(ring)) {
                Ok(())
            } else {
                Err(format!(
                    "must hold the ControllerRing {ring} (controller.ring)"
                ))
            },
        )?;
        let command = check(
            file,
            "controller.local.command",
            Some(self.command.unwrap_or_default())
                .filter(|command| !command.is_empty())
                .ok_or_else(|| "is required: the program and its arguments".to_owned()),
        )?;
        let ready_path = self
            .ready_path
            .map(|path| check(file, "controller.local.readyPath", rules::http_path(path)))
            .transpose()?;
        Ok(LocalController {
            manifests,
            command,
            env: self.env.unwrap_or_default(),
            ready_path,
        })
    }
}

/// The manifest at `path`, by its absolute path so that `run.json` names it wherever it is read.
fn read_manifest(path: &Path) -> Verdict<Manifest> {
    let absolute: PathBuf = std::fs::canonicalize(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    Manifest::read(&absolute).map_err(|error| format!("{error:#}"))
}

impl RawCluster {
    fn validate(self, file: &Path) -> Result<ClusterController> {
        let (kind, text, path) = match (self.deployment, self.stateful_set) {
            (Some(text), None) => (
                WorkloadKind::Deployment,
                text,
                "controller.cluster.deployment",
            ),
            (None, Some(text)) => (
                WorkloadKind::StatefulSet,
                text,
                "controller.cluster.statefulSet",
            ),
            (deployment, _) => {
                let problem = if deployment.is_some() {
                    "set either deployment or statefulSet, not both"
                } else {
                    "set deployment or statefulSet"
                };
                return check(file, "controller.cluster", Err(problem.to_owned()));
            }
        };
        let (namespace, name) = check(file, path, rules::namespaced_name(&text))?;
        let pod_selector = self
            .pod_selector
            .map(|selector| {
                check(
                    file,
                    "controller.cluster.podSelector",
                    rules::label_selector(selector),
                )
            })
            .transpose()?;
        Ok(ClusterController {
            workload: ShardWorkload {
                kind,
                namespace,
                name,
            },
            pod_selector,
            operator_env: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::Scenario;

    /// The fixture: a scenario with the checksum-controller under test.
    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/scenario/testdata/checksum-controller.yaml")
    }

    fn fixture_text() -> String {
        std::fs::read_to_string(fixture()).unwrap()
    }

    /// The fixture's text with `from` replaced, parsed as the fixture file.
    fn parse(from: &str, to: &str) -> Result<Scenario> {
        let text = fixture_text();
        assert!(text.contains(from), "{from}");
        Scenario::from_yaml(&text.replacen(from, to, 1), &fixture())
    }

    /// The error of the fixture with `from` replaced, without the file.
    fn error(from: &str, to: &str) -> String {
        let error = parse(from, to).expect_err("invalid");
        let message = operations::error_chain(&error);
        let prefix = format!("{}: ", fixture().display());
        message.strip_prefix(&prefix).unwrap_or(&message).to_owned()
    }

    fn values() -> ShardValues<'static> {
        ShardValues {
            bin: Path::new("/w/target/release"),
            shard: "shard-2",
            kubeconfig: Path::new("/tmp/cp/kubeconfig"),
            metrics_port: 40001,
            health_port: 40002,
            audit_file: Path::new("/tmp/cp/audit/shard-2.jsonl"),
        }
    }

    fn operator() -> Operator {
        Operator {
            workers: 3,
            simulated_work: Duration::from_millis(250),
            lease_duration: Duration::from_secs(15),
        }
    }

    #[test]
    fn the_default_is_the_webhosting_operator_with_the_flags_it_always_had() {
        let controller = Controller::webhosting_operator();
        assert_eq!(
            (
                controller.ring.as_str(),
                controller.lease_namespace.as_str(),
                controller.queue.as_str()
            ),
            ("webhosting-operator", "webhosting-system", "website")
        );
        let command = controller.shard_command(&values(), &operator()).unwrap();
        assert_eq!(command.program, "/w/target/release/webhosting-operator");
        assert_eq!(
            command.args.join(" "),
            "--mode sharded --identity shard-2 --namespace webhosting-system --workers 3 \
             --simulated-work 250ms --lease-duration 15s --metrics-address 127.0.0.1:40001 \
             --health-address 127.0.0.1:40002 --audit-file /tmp/cp/audit/shard-2.jsonl"
        );
        assert!(controller.uses("audit_file"));
        assert!(command.env.is_empty());
        let cluster = controller.cluster.unwrap();
        assert_eq!(
            cluster.workload.to_string(),
            "Deployment webhosting-system/webhosting-operator"
        );
        assert!(cluster.operator_env);
        assert_eq!(cluster.pod_selector, None);
    }

    #[test]
    fn a_scenario_without_controller_tests_the_webhosting_operator_and_does_not_write_it() {
        let text = fixture_text();
        let without = &text[..text.find("controller:\n").unwrap()]
            .replace("operator:\n  workers: 3\n", "")
            .replace(
                "controllerRing: checksum-controller",
                "controllerRing: webhosting-operator",
            );
        let scenario = Scenario::from_yaml(without, &fixture()).unwrap();
        assert!(scenario.controller.is_default());
        let json = serde_json::to_value(&scenario).unwrap();
        assert_eq!(json.get("controller"), None);
    }

    #[test]
    fn a_declared_controller_renders_its_placeholders() {
        let scenario = Scenario::load(&fixture()).unwrap();
        let controller = &scenario.controller;
        assert_eq!(controller.name, "checksum-controller");
        assert_eq!(controller.queue, "secret");
        let local = controller.local.as_ref().unwrap();
        let manifest = &local.manifests[0];
        assert!(
            manifest.source.is_absolute(),
            "{}",
            manifest.source.display()
        );
        assert!(
            manifest
                .source
                .ends_with("checksum-controller/config/controllerring.yaml")
        );
        assert!(manifest.has_ring("checksum-controller"));
        let command = controller
            .shard_command(&values(), &scenario.operator)
            .unwrap();
        assert_eq!(command.program, "/w/target/release/checksum-controller");
        assert_eq!(
            command.args.join(" "),
            "--identity shard-2 --namespace checksum-system --workers 3 --simulated-work 0ms \
             --lease-duration 15s --metrics-address 127.0.0.1:40001 --health-address \
             127.0.0.1:40002 --kubeconfig /tmp/cp/kubeconfig"
        );
        assert_eq!(
            command.env,
            [(
                "RUST_LOG".to_owned(),
                "info,checksum_controller=debug".to_owned()
            )]
        );
        let cluster = controller.cluster.as_ref().unwrap();
        assert_eq!(
            cluster.workload.to_string(),
            "Deployment checksum-system/checksum-controller"
        );
        assert!(!cluster.operator_env);
    }

    #[test]
    fn env_values_are_templates_too() {
        let scenario = parse(
            "RUST_LOG: info,checksum_controller=debug",
            "POD_NAME: \"{{ shard }}\"",
        )
        .unwrap();
        let command = scenario
            .controller
            .shard_command(&values(), &scenario.operator)
            .unwrap();
        assert_eq!(command.env, [("POD_NAME".to_owned(), "shard-2".to_owned())]);
    }

    #[test]
    fn a_declared_controller_reads_back_from_run_json_the_same() {
        let scenario = Scenario::load(&fixture()).unwrap();
        let json = serde_json::to_string(&scenario).unwrap();
        // run.json lives elsewhere: the manifests are named by absolute paths.
        let elsewhere = Path::new("/tmp/results/run.json");
        assert_eq!(
            Scenario::from_yaml(&json, elsewhere).unwrap(),
            scenario,
            "{json}"
        );
        let stateful = parse(
            "deployment: checksum-system/checksum-controller",
            "statefulSet: checksum-system/checksum-controller",
        )
        .unwrap();
        let json = serde_json::to_value(&stateful).unwrap();
        assert_eq!(
            json["controller"]["cluster"],
            serde_json::json!({
                "statefulSet": "checksum-system/checksum-controller",
                "podSelector": "app.kubernetes.io/name=checksum-controller",
            })
        );
        assert_eq!(
            Scenario::from_yaml(&json.to_string(), elsewhere).unwrap(),
            stateful
        );
    }

    #[test]
    fn a_misspelt_placeholder_is_named_by_its_field() {
        assert_eq!(
            error("\"{{ shard }}\"", "\"{{ shrad }}\""),
            "controller.local.command[2]: unknown placeholder \"shrad\" in \"{{ shrad }}\"; \
             known are bin, shard, ring, lease_namespace, kubeconfig, metrics_port, \
             health_port, workers, simulated_work, lease_duration, audit_file"
        );
        assert!(
            error(
                "\"{{ bin }}/checksum-controller\"",
                "\"{{ bin }/checksum-controller\""
            )
            .starts_with(
                "controller.local.command[0]: cannot parse \"{{ bin }/checksum-controller\":"
            ),
        );
        assert!(
            error("info,checksum_controller=debug", "\"{{ nope }}\"")
                .starts_with("controller.local.env.RUST_LOG: unknown placeholder \"nope\""),
        );
    }

    #[test]
    fn every_invalid_field_is_named() {
        let cases = [
            (
                "  name: checksum-controller\n",
                "  name: Checksum\n",
                "controller.name: must match [a-z0-9-]+, got \"Checksum\"",
            ),
            (
                "  ring: checksum-controller\n",
                "",
                "controller.ring: is required",
            ),
            (
                "  leaseNamespace: checksum-system\n",
                "  leaseNamespace: checksum.system\n",
                "controller.leaseNamespace: must match [a-z0-9]([-a-z0-9]*[a-z0-9])? with at \
                 most 63 characters, got \"checksum.system\"",
            ),
            (
                "  queue: secret\n",
                "  queue: ''\n",
                "controller.queue: must not be empty",
            ),
            (
                "../../../../checksum-controller/config/controllerring.yaml",
                "missing.yaml",
                "controller.local.manifests[0]: cannot read ",
            ),
            (
                "  ring: checksum-controller\n",
                "  ring: other\n",
                "controller.local.manifests: must hold the ControllerRing other (controller.ring)",
            ),
            (
                "    command:\n    - \"{{ bin }}/checksum-controller\"\n",
                "    arguments:\n    - \"{{ bin }}/checksum-controller\"\n",
                "cannot parse scenario: unknown field `arguments`",
            ),
            (
                "    readyPath: /readyz\n",
                "    readyPath: readyz\n",
                "controller.local.readyPath: must be a path starting with /, got \"readyz\"",
            ),
            (
                "    deployment: checksum-system/checksum-controller\n",
                "",
                "controller.cluster: set deployment or statefulSet",
            ),
            (
                "    deployment: checksum-system/checksum-controller\n",
                "    deployment: a/b\n    statefulSet: a/b\n",
                "controller.cluster: set either deployment or statefulSet, not both",
            ),
            (
                "deployment: checksum-system/checksum-controller",
                "deployment: checksum-controller",
                "controller.cluster.deployment: must be namespace/name, got \"checksum-controller\"",
            ),
            (
                "podSelector: app.kubernetes.io/name=checksum-controller",
                "podSelector: \"app=$x\"",
                "controller.cluster.podSelector: must be a label selector such as app=name, got \
                 \"app=$x\"",
            ),
            (
                "    - --workers\n    - \"{{ workers }}\"\n",
                "",
                "operator.workers: is set, but controller checksum-controller does not use \
                 {{ workers }} in controller.local: remove it, or pass it in the command (a \
                 cluster's workload keeps its own settings)",
            ),
        ];
        for (from, to, expected) in cases {
            let error = error(from, to);
            assert!(error.starts_with(expected), "{error}\nexpected: {expected}");
        }
    }

    #[test]
    fn a_missing_command_section_or_unused_setting_is_named() {
        // The fixture without the lines from `from` up to `to` (or the end), plus `insert`.
        let cut = |text: &str, from: &str, to: Option<&str>, insert: &str| {
            let start = text.find(from).unwrap();
            let end = to.map_or(text.len(), |to| text.find(to).unwrap());
            format!("{}{insert}{}", &text[..start], &text[end..])
        };
        let message = |text: &str| {
            let error = Scenario::from_yaml(text, &fixture()).unwrap_err();
            operations::error_chain(&error)
        };
        let text = cut(
            &fixture_text(),
            "    command:\n",
            Some("    env:\n"),
            "    command: []\n",
        );
        assert!(
            message(&text)
                .ends_with("controller.local.command: is required: the program and its arguments"),
            "{text}"
        );
        let text = cut(&fixture_text(), "  local:\n", Some("  cluster:\n"), "");
        assert!(
            message(&text).ends_with(
                "operator.workers: is set, but controller checksum-controller does not use \
                 {{ workers }} in controller.local: remove it, or pass it in the command (a \
                 cluster's workload keeps its own settings)"
            ),
            "{text}"
        );
        let text = cut(
            &text.replace("operator:\n  workers: 3\n", ""),
            "  cluster:\n",
            None,
            "",
        );
        assert!(
            message(&text).ends_with("controller: set local, cluster or both"),
            "{text}"
        );
    }

    #[test]
    fn a_manifest_document_without_a_kind_is_named_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("ring.yaml");
        std::fs::write(&manifest, "apiVersion: v1\nmetadata: {name: x}\n").unwrap();
        let error = error(
            "../../../../checksum-controller/config/controllerring.yaml",
            manifest.to_str().unwrap(),
        );
        assert!(
            error.starts_with("controller.local.manifests[0]: ")
                && error.ends_with("ring.yaml: document 1: has no kind"),
            "{error}"
        );
    }
}
