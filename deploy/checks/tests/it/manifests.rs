//! The kustomizations of `deploy/`: they render, the API server accepts every object (server-side
//! dry run, CRDs and namespaces created for real first), the RBAC grants what the binaries do,
//! and the sharder's config agrees with its Deployment.

use std::path::Path;

use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::{Api, api::PostParams};
use serde_json::{Value, json};
use sharder::config::SharderConfig;
use testenv::{Environment, SharedControlPlane};

use crate::support::{Kustomization, find, repo, run_kubectl};

static CONTROL_PLANE: SharedControlPlane = SharedControlPlane::new(Environment::new);

/// API groups whose CRDs are not ours: objects of them are rendered but not sent to the API
/// server (cert-manager is installed separately for the optional overlay).
const EXTERNAL_GROUPS: [&str; 1] = ["cert-manager.io/"];

fn kubeconfig() -> String {
    CONTROL_PLANE.get().kubeconfig_path().display().to_string()
}

/// `objects` as one List for `kubectl apply -f -`.
fn list(objects: impl IntoIterator<Item = Value>) -> String {
    let items: Vec<Value> = objects.into_iter().collect();
    json!({ "apiVersion": "v1", "kind": "List", "items": items }).to_string()
}

/// Applies `objects` for real.
fn apply(objects: impl IntoIterator<Item = Value>) {
    run_kubectl(
        &[
            "--kubeconfig",
            &kubeconfig(),
            "apply",
            "--server-side",
            "--field-manager",
            "deploy-check",
            "-f",
            "-",
        ],
        &list(objects),
    );
}

/// The CRDs of `deploy/crds`, established, and every namespace of every kustomization.
fn install_crds_and_namespaces(kustomizations: &[(Kustomization, Vec<Value>)]) {
    apply(Kustomization("deploy/crds".to_owned()).objects());
    run_kubectl(
        &[
            "--kubeconfig",
            &kubeconfig(),
            "wait",
            "--for",
            "condition=Established",
            "--timeout",
            "60s",
            "crd",
            "--all",
        ],
        "",
    );
    let namespaces = kustomizations
        .iter()
        .flat_map(|(_, objects)| objects)
        .filter(|object| object["kind"] == "Namespace")
        .cloned();
    apply(namespaces);
}

#[test]
fn every_kustomization_renders_and_passes_a_server_side_dry_run() {
    let kustomizations: Vec<_> = Kustomization::all()
        .into_iter()
        .map(|k| {
            let objects = k.objects();
            (k, objects)
        })
        .collect();
    let names: Vec<&str> = kustomizations.iter().map(|(k, _)| k.0.as_str()).collect();
    for expected in [
        "dashboards",
        "deploy/crds",
        "deploy/default",
        "deploy/loadgen",
        "deploy/monitoring",
        "deploy/sharder/cert-manager",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    install_crds_and_namespaces(&kustomizations);
    for (kustomization, objects) in &kustomizations {
        assert!(!objects.is_empty(), "{} renders nothing", kustomization.0);
        let ours = objects.iter().filter(|object| {
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            !EXTERNAL_GROUPS
                .iter()
                .any(|group| api_version.starts_with(group))
        });
        let output = run_kubectl(
            &[
                "--kubeconfig",
                &kubeconfig(),
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager",
                "deploy-check",
                "-f",
                "-",
            ],
            &list(ours.cloned()),
        );
        assert!(
            output.contains("(server dry run)"),
            "{}: {output}",
            kustomization.0
        );
    }
}

/// One access check: `allowed` is what the RBAC must answer.
struct Access {
    verb: &'static str,
    group: &'static str,
    /// A resource, `resource/subresource`, or a non-resource URL such as `/metrics`.
    resource: &'static str,
    namespace: Option<&'static str>,
    /// The object's name, for a request on one object; `None` for any.
    name: Option<&'static str>,
    allowed: bool,
}

const fn may(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    namespace: Option<&'static str>,
) -> Access {
    Access {
        verb,
        group,
        resource,
        namespace,
        name: None,
        allowed: true,
    }
}

impl Access {
    /// The same check on the object `name` only.
    const fn named(self, name: &'static str) -> Self {
        Self {
            name: Some(name),
            ..self
        }
    }
}

const fn may_not(
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    namespace: Option<&'static str>,
) -> Access {
    Access {
        allowed: false,
        ..may(verb, group, resource, namespace)
    }
}

const PROJECT: Option<&str> = Some("project-a");
const SHARDING_SYSTEM: Option<&str> = Some("sharding-system");
const WEBHOSTING_SYSTEM: Option<&str> = Some("webhosting-system");

/// What the sharder's code does (sharder/src: the caches, the three controllers, the leader
/// election and the ring of the operator), and a few things it must not do.
const SHARDER: &[Access] = &[
    may("watch", "sharding.timebertt.dev", "controllerrings", None),
    may(
        "patch",
        "sharding.timebertt.dev",
        "controllerrings/status",
        None,
    ),
    may(
        "update",
        "sharding.timebertt.dev",
        "controllerrings/finalizers",
        None,
    ),
    may(
        "watch",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        None,
    ),
    may(
        "patch",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        None,
    ),
    may(
        "create",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        None,
    ),
    may("watch", "coordination.k8s.io", "leases", None),
    may("update", "coordination.k8s.io", "leases", WEBHOSTING_SYSTEM),
    may("delete", "coordination.k8s.io", "leases", WEBHOSTING_SYSTEM),
    may("create", "coordination.k8s.io", "leases", SHARDING_SYSTEM),
    may("list", "", "namespaces", None),
    may("create", "events.k8s.io", "events", Some("default")),
    may("list", "webhosting.timebertt.dev", "websites", PROJECT),
    may("patch", "webhosting.timebertt.dev", "websites", PROJECT),
    // The bounded-load strategy's table of the ring's main objects (docs/strategies.md).
    may("watch", "webhosting.timebertt.dev", "websites", PROJECT),
    may("patch", "apps", "deployments", PROJECT),
    may("list", "", "configmaps", PROJECT),
    may("patch", "", "services", PROJECT),
    may("patch", "networking.k8s.io", "ingresses", PROJECT),
    may_not("get", "", "/metrics", None),
    may_not("create", "coordination.k8s.io", "leases", WEBHOSTING_SYSTEM),
    may_not("get", "", "secrets", SHARDING_SYSTEM),
    may_not("watch", "apps", "deployments", PROJECT),
    may_not("delete", "webhosting.timebertt.dev", "websites", PROJECT),
    may_not("list", "", "pods", PROJECT),
    may_not("patch", "", "secrets", PROJECT),
];

/// What a binary that serves `/metrics` securely does to review its scrapers
/// (docs/metrics-security.md#rbac): the sharder and the operator.
const REVIEWS_SCRAPERS: &[Access] = &[
    may("create", "authentication.k8s.io", "tokenreviews", None),
    may(
        "create",
        "authorization.k8s.io",
        "subjectaccessreviews",
        None,
    ),
];

/// What a webhosting-operator shard does (its watches, children, status, drain
/// acknowledgement, Lease and events), and a few things it must not do.
const OPERATOR: &[Access] = &[
    may("watch", "webhosting.timebertt.dev", "websites", None),
    may("patch", "webhosting.timebertt.dev", "websites", PROJECT),
    may(
        "patch",
        "webhosting.timebertt.dev",
        "websites/status",
        PROJECT,
    ),
    may("watch", "webhosting.timebertt.dev", "themes", None),
    may("watch", "apps", "deployments", None),
    may("patch", "apps", "deployments", PROJECT),
    may("create", "", "configmaps", PROJECT),
    may("patch", "", "services", PROJECT),
    may("patch", "networking.k8s.io", "ingresses", PROJECT),
    may("create", "coordination.k8s.io", "leases", WEBHOSTING_SYSTEM),
    may("update", "coordination.k8s.io", "leases", WEBHOSTING_SYSTEM),
    may("create", "events.k8s.io", "events", PROJECT),
    may_not("create", "coordination.k8s.io", "leases", SHARDING_SYSTEM),
    may_not(
        "patch",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        None,
    ),
    may_not("delete", "webhosting.timebertt.dev", "themes", None),
    may_not("get", "", "secrets", PROJECT),
];

const KUBE_SYSTEM: Option<&str> = Some("kube-system");

/// What `loadgen experiment --target cluster` does (loadgen/src/experiment, the cluster
/// target in loadgen/src/environment/cluster.rs), which is all its RBAC grants (see
/// [`loadgen_is_granted_nothing_it_does_not_use`]), and a few things it must not do.
const LOADGEN: &[Access] = &[
    // Cluster::connect: the operator's and the sharder's Deployments, the Website CRD, the ring.
    may("get", "apps", "deployments", WEBHOSTING_SYSTEM).named("webhosting-operator"),
    may("get", "apps", "deployments", SHARDING_SYSTEM).named("sharder"),
    may(
        "get",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        None,
    )
    .named("websites.webhosting.timebertt.dev"),
    may("get", "sharding.timebertt.dev", "controllerrings", None).named("webhosting-operator"),
    // A strategy axis annotates the ring (docs/experiments.md).
    may("patch", "sharding.timebertt.dev", "controllerrings", None).named("webhosting-operator"),
    // The world of a run, applied server-side.
    may("create", "", "namespaces", None),
    may("patch", "", "namespaces", None),
    may("create", "webhosting.timebertt.dev", "themes", None),
    may("patch", "webhosting.timebertt.dev", "themes", None),
    // The load, its observer and the clean-up.
    may("list", "webhosting.timebertt.dev", "websites", None),
    may("watch", "webhosting.timebertt.dev", "websites", None),
    may("create", "webhosting.timebertt.dev", "websites", PROJECT),
    may("patch", "webhosting.timebertt.dev", "websites", PROJECT),
    may("delete", "webhosting.timebertt.dev", "websites", PROJECT),
    may(
        "deletecollection",
        "webhosting.timebertt.dev",
        "websites",
        PROJECT,
    ),
    may("list", "coordination.k8s.io", "leases", WEBHOSTING_SYSTEM),
    may("watch", "coordination.k8s.io", "leases", WEBHOSTING_SYSTEM),
    // Shard counts, kills and rolling updates.
    may("patch", "apps", "deployments", WEBHOSTING_SYSTEM).named("webhosting-operator"),
    may("list", "", "pods", WEBHOSTING_SYSTEM),
    may("patch", "", "pods", WEBHOSTING_SYSTEM),
    may("delete", "", "pods", WEBHOSTING_SYSTEM),
    // The shards' /metrics (plain through the pod proxy, secure from the pods), and cost from
    // the metrics API.
    may("get", "", "pods/proxy", WEBHOSTING_SYSTEM),
    may("get", "", "/metrics", None),
    may("list", "metrics.k8s.io", "pods", WEBHOSTING_SYSTEM),
    may("list", "metrics.k8s.io", "pods", SHARDING_SYSTEM),
    may("list", "metrics.k8s.io", "pods", KUBE_SYSTEM),
    // The machine record.
    may("list", "", "nodes", None),
    may_not("patch", "apps", "deployments", SHARDING_SYSTEM),
    may_not("patch", "apps", "deployments", PROJECT),
    may_not("delete", "", "pods", SHARDING_SYSTEM),
    may_not("delete", "", "pods", KUBE_SYSTEM),
    may_not("delete", "", "namespaces", None),
    may_not("delete", "webhosting.timebertt.dev", "themes", None),
    may_not("update", "coordination.k8s.io", "leases", WEBHOSTING_SYSTEM),
    may_not(
        "get",
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        None,
    ),
    may_not("get", "", "secrets", Some("loadgen")),
];

/// Prometheus discovers pods and nodes, scrapes the kubelets' cAdvisor and our pods' `/metrics`.
const PROMETHEUS: &[Access] = &[
    may("watch", "", "pods", None),
    may("list", "", "nodes", None),
    may("get", "", "nodes/metrics", None),
    may("get", "", "/metrics", None),
    may_not("get", "", "/debug/pprof", None),
    may_not("create", "authentication.k8s.io", "tokenreviews", None),
    may_not("get", "", "secrets", None),
];

async fn check_access(reviews: &Api<SubjectAccessReview>, account: &str, checks: &[Access]) {
    let (namespace, name) = account.split_once('/').expect("namespace/name");
    let mut wrong = Vec::new();
    for check in checks {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(format!("system:serviceaccount:{namespace}:{name}")),
                groups: Some(vec![
                    "system:serviceaccounts".to_owned(),
                    format!("system:serviceaccounts:{namespace}"),
                    "system:authenticated".to_owned(),
                ]),
                non_resource_attributes: check.resource.starts_with('/').then(|| {
                    NonResourceAttributes {
                        path: Some(check.resource.to_owned()),
                        verb: Some(check.verb.to_owned()),
                    }
                }),
                resource_attributes: (!check.resource.starts_with('/')).then(|| {
                    ResourceAttributes {
                        verb: Some(check.verb.to_owned()),
                        group: Some(check.group.to_owned()),
                        resource: Some(
                            check
                                .resource
                                .split('/')
                                .next()
                                .unwrap_or_default()
                                .to_owned(),
                        ),
                        subresource: check.resource.split_once('/').map(|(_, s)| s.to_owned()),
                        namespace: check.namespace.map(str::to_owned),
                        name: check.name.map(str::to_owned),
                        ..ResourceAttributes::default()
                    }
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = reviews
            .create(&PostParams::default(), &review)
            .await
            .expect("a SubjectAccessReview");
        let allowed = answer.status.is_some_and(|status| status.allowed);
        if allowed != check.allowed {
            wrong.push(format!(
                "{} {}.{} {} in {:?}: allowed={allowed}, expected {}",
                check.verb,
                check.resource,
                check.group,
                check.name.unwrap_or("*"),
                check.namespace.unwrap_or("all namespaces"),
                check.allowed
            ));
        }
    }
    assert!(wrong.is_empty(), "{account}:\n{}", wrong.join("\n"));
}

/// The kinds that make up a service account's access.
const RBAC_KINDS: [&str; 6] = [
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

#[tokio::test]
async fn the_service_accounts_may_do_what_the_binaries_do_and_no_more() {
    let objects: Vec<Value> = ["deploy/default", "deploy/monitoring", "deploy/loadgen"]
        .into_iter()
        .flat_map(|dir| Kustomization(dir.to_owned()).objects())
        .filter(|object| RBAC_KINDS.iter().any(|kind| object["kind"] == *kind))
        .collect();
    // Namespaces first: the Roles live in them.
    let (namespaces, rest): (Vec<Value>, Vec<Value>) = objects
        .into_iter()
        .partition(|object| object["kind"] == "Namespace");
    apply(namespaces);
    apply(rest);

    let client = CONTROL_PLANE.get().client().await.unwrap();
    let reviews = Api::<SubjectAccessReview>::all(client);
    for (account, checks) in [
        ("sharding-system/sharder", SHARDER),
        ("webhosting-system/webhosting-operator", OPERATOR),
    ] {
        check_access(&reviews, account, checks).await;
        check_access(&reviews, account, REVIEWS_SCRAPERS).await;
    }
    check_access(&reviews, "monitoring/prometheus", PROMETHEUS).await;
    check_access(&reviews, "loadgen/loadgen", LOADGEN).await;
}

/// Every (verb, group, resource, namespace, name) that loadgen's Roles and ClusterRoles grant
/// is one that [`LOADGEN`] says it uses: no rule grants more than the experiment does.
#[test]
fn loadgen_is_granted_nothing_it_does_not_use() {
    let objects = Kustomization("deploy/loadgen".to_owned()).objects();
    let mut granted = Vec::new();
    for role in objects
        .iter()
        .filter(|object| object["kind"] == "Role" || object["kind"] == "ClusterRole")
    {
        let namespace = role["metadata"]["namespace"].as_str();
        for rule in role["rules"].as_array().expect("rules") {
            let strings = |field: &str| -> Vec<String> {
                rule[field].as_array().map_or_else(Vec::new, |values| {
                    values
                        .iter()
                        .map(|v| v.as_str().expect("a string").to_owned())
                        .collect()
                })
            };
            let names = strings("resourceNames");
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for verb in strings("verbs") {
                        let names: Vec<Option<String>> = if names.is_empty() {
                            vec![None]
                        } else {
                            names.iter().cloned().map(Some).collect()
                        };
                        for name in names {
                            granted.push((
                                verb.clone(),
                                group.clone(),
                                resource.clone(),
                                namespace.map(str::to_owned),
                                name,
                            ));
                        }
                    }
                }
            }
        }
    }
    // A grant in a Role is used when a check in its namespace asks for it; a ClusterRole's
    // when a check anywhere does (every used cluster-wide verb is asked of a namespace or of
    // all namespaces, as the code does).
    let unused: Vec<String> = granted
        .iter()
        .filter(|(verb, group, resource, namespace, name)| {
            !LOADGEN.iter().any(|check| {
                check.allowed
                    && check.verb == verb
                    && check.group == group
                    && check.resource == resource
                    && (namespace.is_none() || check.namespace == namespace.as_deref())
                    && check.name == name.as_deref()
            })
        })
        .map(|grant| format!("{grant:?}"))
        .collect();
    assert!(
        unused.is_empty(),
        "deploy/loadgen grants what loadgen does not do:\n{}",
        unused.join("\n")
    );
}

/// The container `name` of a Deployment's pod template.
fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|containers| containers.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The container port named `name`.
fn port(container: &Value, name: &str) -> i64 {
    container["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["name"] == name))
        .and_then(|p| p["containerPort"].as_i64())
        .unwrap_or_else(|| panic!("no port {name} in {container}"))
}

/// Where volume `name` is mounted in `container`.
fn mount_path<'a>(container: &'a Value, name: &str) -> &'a str {
    container["volumeMounts"]
        .as_array()
        .and_then(|mounts| mounts.iter().find(|m| m["name"] == name))
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or_else(|| panic!("no mount of {name}"))
}

/// The sharder's config from its generated ConfigMap, validated by the sharder's own parser;
/// `ca_file` replaces the in-pod path of the CA bundle.
fn sharder_config(objects: &[Value], ca_file: Option<&Path>) -> SharderConfig {
    let config_map = find(objects, "ConfigMap", "sharder-config");
    let mut text = config_map["data"]["config.yaml"]
        .as_str()
        .expect("config.yaml")
        .to_owned();
    if let Some(ca_file) = ca_file {
        text = text.replace(
            "/etc/sharder/webhook-certs/ca.crt",
            &ca_file.display().to_string(),
        );
    }
    SharderConfig::from_yaml(&text, Path::new("sharder-config/config.yaml"))
        .unwrap_or_else(|error| panic!("the deployed sharder config is invalid: {error:#}"))
}

#[test]
fn the_sharder_config_is_valid_and_agrees_with_the_deployment_and_service() {
    let objects = Kustomization("deploy/sharder/default".to_owned()).objects();
    let deployment = find(&objects, "Deployment", "sharder");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let sharder = container(deployment, "sharder");
    let secret = find(&objects, "Secret", "sharder-webhook-certs");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(secret["data"][key].is_string(), "the Secret has no {key}");
    }
    // The CA file the pod reads is the Secret's ca.crt, from the same certs/ directory.
    let ca_file = repo().join("deploy/sharder/default/certs/ca.crt");
    let config = sharder_config(&objects, Some(&ca_file));

    assert!(config.leader_election.leader_elect);
    assert_eq!(config.leader_election.resource_namespace, "sharding-system");
    assert_eq!(
        config.webhook.server.cert_dir,
        Path::new(mount_path(sharder, "webhook-certs"))
    );
    assert_eq!(
        config.webhook.server.bind_address.get().port(),
        u16::try_from(port(sharder, "webhook")).unwrap()
    );
    let metrics = config
        .metrics
        .bind_address
        .get()
        .expect("metrics are served");
    assert_eq!(i64::from(metrics.port()), port(sharder, "metrics"));
    assert!(config.metrics.secure_serving);
    let health = config.health.bind_address.get().expect("health is served");
    assert_eq!(i64::from(health.port()), port(sharder, "health"));
    assert_eq!(sharder["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(sharder["livenessProbe"]["httpGet"]["path"], "/healthz");
    let config_mount = mount_path(sharder, "config");
    assert!(
        sharder["args"][0]
            .as_str()
            .is_some_and(|arg| arg == format!("--config={config_mount}/config.yaml")),
        "{}",
        sharder["args"]
    );

    // The webhook's clientConfig is the Service, whose port 443 reaches the webhook port, and
    // its caBundle is the generated CA.
    let client_config = &config.webhook.config.client_config;
    let service_ref = client_config.service.as_ref().expect("a service");
    assert_eq!(
        (service_ref.namespace.as_str(), service_ref.name.as_str()),
        ("sharding-system", "sharder")
    );
    let service = find(&objects, "Service", "sharder");
    let service_port = service["spec"]["ports"]
        .as_array()
        .and_then(|ports| {
            ports
                .iter()
                .find(|p| Some(p["port"].as_i64().unwrap_or(0)) == service_ref.port.map(i64::from))
        })
        .expect("the Service has the webhook's port");
    assert_eq!(service_port["targetPort"], "webhook");
    let ca_bundle = client_config.ca_bundle.as_ref().expect("a caBundle");
    assert!(
        String::from_utf8_lossy(&ca_bundle.0)
            .contains(std::fs::read_to_string(&ca_file).unwrap().trim()),
        "the caBundle is not certs/ca.crt"
    );
}

#[test]
fn the_sharders_disruption_budget_selects_exactly_the_sharder_pods() {
    let objects = Kustomization("deploy/default".to_owned()).objects();
    let budget = find(&objects, "PodDisruptionBudget", "sharder");
    let deployment = find(&objects, "Deployment", "sharder");
    assert_eq!(
        budget["metadata"]["namespace"],
        deployment["metadata"]["namespace"]
    );
    let selector = &budget["spec"]["selector"]["matchLabels"];
    assert!(
        selector
            .as_object()
            .is_some_and(|labels| !labels.is_empty()),
        "the PodDisruptionBudget selects no pods: {}",
        budget["spec"]
    );
    assert_eq!(
        selector, &deployment["spec"]["selector"]["matchLabels"],
        "the PodDisruptionBudget and the Deployment select different pods"
    );
}

#[test]
fn the_cert_manager_overlay_configures_ca_injection_instead_of_a_bundle() {
    let objects = Kustomization("deploy/sharder/cert-manager".to_owned()).objects();
    let config = sharder_config(&objects, None);
    assert_eq!(
        config
            .webhook
            .config
            .annotations
            .get("cert-manager.io/inject-ca-from")
            .map(String::as_str),
        Some("sharding-system/sharder-webhook")
    );
    assert!(config.webhook.config.client_config.ca_bundle.is_none());
    let certificate = find(&objects, "Certificate", "sharder-webhook");
    let deployment = find(&objects, "Deployment", "sharder");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(
        volumes.contains(&format!(
            "\"secretName\":{}",
            certificate["spec"]["secretName"]
        )),
        "the Deployment does not mount the Certificate's Secret: {volumes}"
    );
}

#[test]
fn the_operator_runs_three_shards_named_after_their_pods() {
    let objects = Kustomization("deploy/webhosting-operator".to_owned()).objects();
    let deployment = find(&objects, "Deployment", "webhosting-operator");
    assert_eq!(deployment["metadata"]["namespace"], "webhosting-system");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let operator = container(deployment, "webhosting-operator");
    let env = operator["env"].as_array().expect("env");
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(var("WEBHOSTING_MODE")["value"], "sharded");
    assert_eq!(var("WEBHOSTING_METRICS_SECURE")["value"], "true");
    assert_eq!(
        var("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(
        var("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    // The operator's defaults (webhosting-operator/src/options.rs).
    assert_eq!(port(operator, "metrics"), 8080);
    assert_eq!(port(operator, "health"), 8081);
    assert_eq!(operator["readinessProbe"]["httpGet"]["port"], "health");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
    // The ring is cluster-scoped: no namespace may have been added to it.
    let ring = find(&objects, "ControllerRing", "webhosting-operator");
    assert!(ring["metadata"].get("namespace").is_none(), "{ring}");
}

#[test]
fn prometheus_scrapes_our_pods_under_the_jobs_that_the_dashboards_select() {
    let objects = Kustomization("deploy/monitoring/prometheus".to_owned()).objects();
    let config_map = find(&objects, "ConfigMap", "prometheus-config");
    let config: Value =
        serde_saphyr::from_str(config_map["data"]["prometheus.yml"].as_str().unwrap())
            .expect("prometheus.yml is YAML");
    let pods = config["scrape_configs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|job| job["job_name"] == "pods"))
        .expect("a scrape job of pods");
    let relabel = pods["relabel_configs"].to_string();
    // Over HTTPS with its ServiceAccount token (docs/metrics-security.md#prometheus).
    assert_eq!(pods["scheme"], "https");
    assert_eq!(
        pods["authorization"]["credentials_file"],
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    );
    assert_eq!(pods["tls_config"]["insecure_skip_verify"], true);
    for needle in [
        r#""regex":"true","source_labels":["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]"#,
        r#""regex":"metrics","source_labels":["__meta_kubernetes_pod_container_port_name"]"#,
        r#""source_labels":["__meta_kubernetes_pod_label_app_kubernetes_io_component"],"target_label":"job""#,
    ] {
        assert!(relabel.contains(needle), "{needle} not in {relabel}");
    }

    // Every Deployment of ours is scraped, and its job is its component label.
    let mut jobs = Vec::new();
    for deployment in Kustomization("deploy/default".to_owned())
        .objects()
        .iter()
        .filter(|object| object["kind"] == "Deployment")
    {
        let template = &deployment["spec"]["template"];
        assert_eq!(
            template["metadata"]["annotations"]["prometheus.io/scrape"], "true",
            "{}",
            deployment["metadata"]["name"]
        );
        let containers = template["spec"]["containers"].as_array().unwrap();
        assert!(containers.iter().any(|c| port(c, "metrics") > 0));
        let job = template["metadata"]["labels"]["app.kubernetes.io/component"]
            .as_str()
            .expect("a component label")
            .to_owned();
        jobs.push(job);
    }
    jobs.sort();
    assert_eq!(jobs, ["sharder", "webhosting-operator"]);

    // The jobs that the dashboards name are those.
    for file in std::fs::read_dir(repo().join("dashboards")).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        for selected in text.split(r#"job=\""#).skip(1) {
            let job = selected.split('\\').next().unwrap_or_default();
            assert!(
                jobs.iter().any(|j| j == job),
                "a dashboard selects job {job:?}"
            );
        }
    }
}
