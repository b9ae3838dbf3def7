//! The cluster target: any kubeconfig (e.g. kind) where the sharder and the webhosting-operator
//! are deployed (`make deploy`, see docs/kind.md).
//!
//! A shard count is the operator Deployment's replicas; the scenario's operator settings are
//! its environment. Chaos deletes pods, a rolling update patches the pod template as `kubectl
//! rollout restart` does, and cost comes from the metrics API (metrics-server). What
//! [`Cluster::prepare`] changes on the Deployment, [`Cluster::finish`] puts back.
//!
//! The decisions are pure functions (the patches, when a rollout is finished, which Leases
//! count as ready shards, quantities, the CPU integral), tested at the end of this file; the
//! methods only read and write the API.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context as _, bail};
use futures::future::join_all;
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        coordination::v1::Lease,
        core::v1::{EnvVar, Node, Pod},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
    jiff::Timestamp,
};
use kube::{
    Api, Client, Config, CustomResourceExt as _, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
    core::{Expression, Selector},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sharding::{
    api::{ControllerRing, labels},
    leases::ShardState,
};
use tokio::time::Instant;
use webhosting_operator::api::Website;

use crate::{
    measure::cost::UsageSample,
    results::Machine,
    scenario::{Operator, Signal, format_duration},
};

/// The operator's namespace (SPEC A.10), which also holds the shard Leases.
const OPERATOR_NAMESPACE: &str = stack::OPERATOR_NAMESPACE;

/// The operator's Deployment in [`OPERATOR_NAMESPACE`].
const OPERATOR_DEPLOYMENT: &str = "webhosting-operator";

/// The sharder's Deployment in [`labels::SHARDER_NAMESPACE`].
const SHARDER_DEPLOYMENT: &str = "sharder";

/// The operator's ControllerRing.
const RING: &str = stack::WEBHOSTING_RING;

// The environment variables of the operator's settings that a scenario sets
// (webhosting-operator `options.rs`).
const ENV_WORKERS: &str = "WEBHOSTING_WORKERS";
const ENV_SIMULATED_WORK: &str = "WEBHOSTING_SIMULATED_WORK";
const ENV_LEASE_DURATION: &str = "WEBHOSTING_LEASE_DURATION";
const ENV_NAMES: [&str; 3] = [ENV_WORKERS, ENV_SIMULATED_WORK, ENV_LEASE_DURATION];

/// The operator's metrics port when its pod names none `metrics`.
const METRICS_PORT: i32 = 8080;

/// How long a rollout, and shards becoming ready, may take.
const PATIENCE: Duration = Duration::from_secs(300);

/// How often a wait looks again; each look lists pods and Leases, so not too often.
const POLL: Duration = Duration::from_secs(1);

/// Who changed the Deployment, in its managedFields.
const FIELD_MANAGER: &str = "loadgen";

/// The annotation `kubectl rollout restart` sets on the pod template.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Pods with the lowest cost are the first a ReplicaSet deletes when it scales down.
const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

// The label of kind's (kubeadm's) static control-plane pods, and the components to measure.
const CONTROL_PLANE_LABEL: &str = "component";
const CONTROL_PLANE: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// What to do when the cluster lacks something the target needs.
const DEPLOY_HINT: &str = "deploy the sharder and the webhosting-operator with `make deploy` \
                           (see docs/kind.md)";

/// A cluster with the sharder and the webhosting-operator deployed.
pub struct Cluster {
    client: Client,
    /// The operator Deployment's pod selector, read once: a Deployment's selector is immutable.
    operator_pods: Selector,
    /// The sharder Deployment's pod selector.
    sharder_pods: Selector,
    /// The Deployment as it was before the first [`Cluster::prepare`], until
    /// [`Cluster::finish`] puts it back.
    original: Option<Original>,
    /// The CPU seconds integrated so far, per component. Behind a lock so that sampling
    /// needs only `&self`, like the other targets' sampling.
    cpu: Mutex<BTreeMap<String, CpuIntegral>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("operator_pods", &self.operator_pods.to_string())
            .field("sharder_pods", &self.sharder_pods.to_string())
            .field("original", &self.original)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects with the kubeconfig (`None`: `KUBECONFIG`, `~/.kube/config` or in-cluster;
    /// `context`: `None` for the current one) and checks that the operator Deployment, the
    /// sharder Deployment, the Website CRD and the ControllerRing `webhosting-operator` exist.
    /// The error names everything missing and how to deploy it.
    pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> anyhow::Result<Self> {
        let client = Client::try_from(config(kubeconfig, context).await?)
            .context("cannot create a Kubernetes client")?;
        client
            .apiserver_version()
            .await
            .context("cannot reach the cluster's API server")?;
        let operator = found(
            Api::<Deployment>::namespaced(client.clone(), OPERATOR_NAMESPACE)
                .get(OPERATOR_DEPLOYMENT)
                .await,
        )?;
        let sharder = found(
            Api::<Deployment>::namespaced(client.clone(), labels::SHARDER_NAMESPACE)
                .get(SHARDER_DEPLOYMENT)
                .await,
        )?;
        let website_crd = found(
            Api::<CustomResourceDefinition>::all(client.clone())
                .get(Website::crd_name())
                .await,
        )?;
        let ring = found(Api::<ControllerRing>::all(client.clone()).get(RING).await)?;
        let mut missing = Vec::new();
        if operator.is_none() {
            missing.push(format!(
                "Deployment {OPERATOR_NAMESPACE}/{OPERATOR_DEPLOYMENT}"
            ));
        }
        if sharder.is_none() {
            missing.push(format!(
                "Deployment {}/{SHARDER_DEPLOYMENT}",
                labels::SHARDER_NAMESPACE
            ));
        }
        if website_crd.is_none() {
            missing.push(format!("CustomResourceDefinition {}", Website::crd_name()));
        }
        if ring.is_none() {
            missing.push(format!("ControllerRing {RING}"));
        }
        let (Some(operator), Some(sharder), true) = (operator, sharder, missing.is_empty()) else {
            bail!("the cluster lacks {}: {DEPLOY_HINT}", missing.join(", "));
        };
        Ok(Self {
            client,
            operator_pods: pod_selector(&operator)?,
            sharder_pods: pod_selector(&sharder)?,
            original: None,
            cpu: Mutex::new(BTreeMap::new()),
        })
    }

    /// A client of the cluster's API server.
    #[must_use]
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Makes `shards` operator pods run with `operator`'s settings: sets the Deployment's
    /// replicas and environment (remembering them for [`Self::finish`]), then waits until the
    /// rollout has finished and exactly `shards` shard Leases are ready, held by current pods,
    /// with no other shard available in the ring.
    pub async fn prepare(&mut self, shards: u32, operator: &Operator) -> anyhow::Result<()> {
        self.configure(shards, operator).await?;
        self.wait_for_shards(shards).await
    }

    /// The first half of [`Self::prepare`]: remembers the Deployment as it is (unless it is
    /// remembered already) and patches it.
    async fn configure(&mut self, shards: u32, operator: &Operator) -> anyhow::Result<()> {
        let deployments = self.operator_deployments();
        let original = match self.original.take() {
            Some(original) => original,
            None => Original::of(&deployments.get(OPERATOR_DEPLOYMENT).await?)?,
        };
        let container = original.container.clone();
        self.original = Some(original);
        let replicas = i32::try_from(shards).with_context(|| format!("{shards} shards"))?;
        let patch = configure_patch(&container, replicas, operator);
        deployments
            .patch(
                OPERATOR_DEPLOYMENT,
                &patch_params(),
                &Patch::Strategic(patch),
            )
            .await
            .with_context(|| {
                format!("cannot configure Deployment {OPERATOR_NAMESPACE}/{OPERATOR_DEPLOYMENT}")
            })?;
        Ok(())
    }

    /// The second half of [`Self::prepare`].
    async fn wait_for_shards(&self, shards: u32) -> anyhow::Result<()> {
        let deployments = self.operator_deployments();
        let leases = Api::<Lease>::namespaced(self.client.clone(), OPERATOR_NAMESPACE);
        let ring_leases =
            ListParams::default().labels(&format!("{}={RING}", labels::CONTROLLER_RING));
        let shards = usize::try_from(shards)?;
        poll(&format!("{shards} operator shards ready"), || async {
            let deployment = deployments.get(OPERATOR_DEPLOYMENT).await?;
            if let Some(pending) = rollout_pending(&deployment) {
                return Ok(Some(format!(
                    "the rollout of Deployment {OPERATOR_NAMESPACE}/{OPERATOR_DEPLOYMENT} is not \
                     finished: {pending}"
                )));
            }
            let pods: BTreeSet<String> = self.shards().await?.into_iter().collect();
            let leases = leases.list(&ring_leases).await?.items;
            Ok(shards_pending(&leases, &pods, shards))
        })
        .await
    }

    /// The names of the operator pods that are running and ready, which are the shard names.
    pub async fn shards(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .operator_pods()
            .await?
            .iter()
            .filter(|pod| is_serving(pod))
            .map(ResourceExt::name_any)
            .collect())
    }

    /// Deletes the pod `shard`: [`Signal::Term`] with its grace period (the shard shuts down
    /// and releases its Lease), [`Signal::Kill`] with none (as `kubectl delete --force
    /// --grace-period=0`). Without `replace`, first scales the Deployment down by one so that
    /// no new pod takes its place. Returns when the delete is accepted.
    ///
    /// # Caveats
    /// Scaling down makes the ReplicaSet delete a pod itself, gracefully. `shard` is marked as
    /// the cheapest to delete so that it is the one, and the delete here follows at once, but
    /// for [`Signal::Kill`] the ReplicaSet may be a few milliseconds faster.
    pub async fn kill(&self, shard: &str, signal: Signal, replace: bool) -> anyhow::Result<()> {
        let pods = Api::<Pod>::namespaced(self.client.clone(), OPERATOR_NAMESPACE);
        if !replace {
            let cheapest = json!({ "metadata": { "annotations": {
                POD_DELETION_COST: i32::MIN.to_string()
            } } });
            pods.patch(shard, &patch_params(), &Patch::Merge(cheapest))
                .await
                .with_context(|| format!("cannot mark pod {shard} for deletion"))?;
            let deployments = self.operator_deployments();
            let deployment = deployments.get(OPERATOR_DEPLOYMENT).await?;
            let replicas = deployment.spec.and_then(|s| s.replicas).unwrap_or(1);
            let fewer = json!({ "spec": { "replicas": (replicas - 1).max(0) } });
            deployments
                .patch(OPERATOR_DEPLOYMENT, &patch_params(), &Patch::Merge(fewer))
                .await
                .context("cannot scale the operator down")?;
        }
        let params = match signal {
            Signal::Term => DeleteParams::default(),
            Signal::Kill => DeleteParams::default().grace_period(0),
        };
        match pods.delete(shard, &params).await {
            Ok(_) => Ok(()),
            // The ReplicaSet deleted it first (see Caveats).
            Err(kube::Error::Api(status)) if status.code == 404 && !replace => Ok(()),
            Err(error) => Err(error).with_context(|| format!("cannot delete pod {shard}")),
        }
    }

    /// A rolling restart, as `kubectl rollout restart`: sets the pod template annotation
    /// `kubectl.kubernetes.io/restartedAt` to now and returns when the rollout has finished.
    pub async fn rolling_update(&self) -> anyhow::Result<()> {
        let deployments = self.operator_deployments();
        let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
            RESTARTED_AT: Timestamp::now().to_string()
        } } } } });
        deployments
            .patch(OPERATOR_DEPLOYMENT, &patch_params(), &Patch::Merge(patch))
            .await
            .context("cannot restart the operator")?;
        poll("the operator's rolling update", || async {
            Ok(rollout_pending(
                &deployments.get(OPERATOR_DEPLOYMENT).await?,
            ))
        })
        .await
    }

    /// CPU and memory from the metrics API (metrics-server): `sharder` (all its pods
    /// together), each operator pod by name, and the control plane's pods in kube-system by
    /// their `component` label (`etcd`, `kube-apiserver`, ...).
    ///
    /// The metrics API reports CPU as a rate over a recent window; the cumulative CPU seconds
    /// are its integral over the calls of this method, starting at 0 for each component.
    /// Memory is the working set.
    pub async fn usage(&self) -> anyhow::Result<Vec<UsageSample>> {
        let at = Timestamp::now();
        let control_plane = Selector::from(Expression::In(
            CONTROL_PLANE_LABEL.to_owned(),
            CONTROL_PLANE.iter().map(|&c| c.to_owned()).collect(),
        ));
        let mut usage: BTreeMap<String, Usage> = BTreeMap::new();
        let mut add = |component: String, metrics: &PodMetrics| -> anyhow::Result<()> {
            usage.entry(component).or_default().add(metrics.usage()?);
            Ok(())
        };
        for metrics in self
            .pod_metrics(labels::SHARDER_NAMESPACE, &self.sharder_pods)
            .await?
        {
            add("sharder".to_owned(), &metrics)?;
        }
        for metrics in self
            .pod_metrics(OPERATOR_NAMESPACE, &self.operator_pods)
            .await?
        {
            add(metrics.metadata.name.clone().unwrap_or_default(), &metrics)?;
        }
        for metrics in self.pod_metrics("kube-system", &control_plane).await? {
            let component = metrics
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(CONTROL_PLANE_LABEL))
                .cloned()
                .unwrap_or_default();
            add(component, &metrics)?;
        }
        // Integrating cannot panic half-way, so a poisoned lock still holds whole integrals.
        let mut cpu = self.cpu.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(integrate(&mut cpu, at, usage))
    }

    /// The PodMetrics of the pods in `namespace` that `selector` selects.
    async fn pod_metrics(
        &self,
        namespace: &str,
        selector: &Selector,
    ) -> anyhow::Result<Vec<PodMetrics>> {
        let request = kube::core::Request::new(format!(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"
        ))
        .list(&ListParams::default().labels_from(selector))?;
        let list: PodMetricsList = self.client.request(request).await.context(
            "cannot read the metrics API (metrics.k8s.io/v1beta1): is metrics-server installed? \
             (the kind deployment installs it, see docs/kind.md)",
        )?;
        Ok(list.items)
    }

    /// Each running operator pod's `/metrics`, through the API server's pod proxy, as (pod
    /// name, exposition text); pods that do not answer are left out.
    pub async fn operator_metrics(&self) -> Vec<(String, String)> {
        let Ok(pods) = self.operator_pods().await else {
            return Vec::new();
        };
        let scrapes = pods
            .iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .map(|pod| async move {
                let name = pod.name_any();
                let path = format!(
                    "/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods/{name}:{}/proxy/metrics",
                    metrics_port(pod)
                );
                let request = http::Request::get(path).body(Vec::new()).ok()?;
                let text = self.client.request_text(request).await.ok()?;
                Some((name, text))
            });
        join_all(scrapes).await.into_iter().flatten().collect()
    }

    /// Puts back the replicas and environment that the first [`Self::prepare`] found.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        let Some(original) = &self.original else {
            return Ok(());
        };
        self.operator_deployments()
            .patch(
                OPERATOR_DEPLOYMENT,
                &patch_params(),
                &Patch::Strategic(restore_patch(original)),
            )
            .await
            .with_context(|| {
                format!("cannot restore Deployment {OPERATOR_NAMESPACE}/{OPERATOR_DEPLOYMENT}")
            })?;
        self.original = None;
        Ok(())
    }

    /// The cluster's nodes together: allocatable CPUs (rounded) and memory; `os` is the first
    /// node's OS image and kernel.
    pub async fn machine(&self) -> anyhow::Result<Machine> {
        let nodes = Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .context("cannot list the cluster's nodes")?
            .items;
        machine(&nodes)
    }

    fn operator_deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), OPERATOR_NAMESPACE)
    }

    async fn operator_pods(&self) -> anyhow::Result<Vec<Pod>> {
        let pods = Api::<Pod>::namespaced(self.client.clone(), OPERATOR_NAMESPACE)
            .list(&ListParams::default().labels_from(&self.operator_pods))
            .await
            .context("cannot list the operator's pods")?;
        Ok(pods.items)
    }
}

/// The client configuration of `kubeconfig` (or the default one) and `context`.
async fn config(kubeconfig: Option<&Path>, context: Option<&str>) -> anyhow::Result<Config> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    match (kubeconfig, context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            Config::from_custom_kubeconfig(file, &options)
                .await
                .with_context(|| format!("cannot use kubeconfig {}", path.display()))
        }
        (None, Some(context)) => Config::from_kubeconfig(&options).await.with_context(|| {
            format!("cannot use context {context} of KUBECONFIG or ~/.kube/config")
        }),
        (None, None) => Config::infer()
            .await
            .context("found no kubeconfig (KUBECONFIG, ~/.kube/config) and no in-cluster config"),
    }
}

/// The object, `None` when the API server answers 404: an object that does not exist, or a
/// resource that does not (a ControllerRing without its CRD), which `get_opt` does not
/// recognise as not found.
fn found<K>(result: kube::Result<K>) -> kube::Result<Option<K>> {
    match result {
        Ok(object) => Ok(Some(object)),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(error),
    }
}

/// The pods a Deployment manages, as a label selector.
fn pod_selector(deployment: &Deployment) -> anyhow::Result<Selector> {
    let selector = deployment
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    Selector::try_from(selector).with_context(|| {
        format!(
            "Deployment {} has an invalid selector",
            deployment.name_any()
        )
    })
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

/// Polls `check` until it reports nothing pending. API errors count as pending, so that a
/// wait of minutes survives a hiccup; when `PATIENCE` runs out, the error says what was
/// still pending.
async fn poll<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<String>>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let pending = match check().await {
            Ok(None) => return Ok(()),
            Ok(Some(pending)) => pending,
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            bail!(
                "{what}: not done within {}: {pending}",
                format_duration(PATIENCE)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The operator container's replicas and scenario settings as [`Cluster::prepare`] found them.
#[derive(Debug, Clone, PartialEq)]
struct Original {
    /// The operator's container: the pod template's first (and only) one.
    container: String,
    replicas: i32,
    /// The entries of [`ENV_NAMES`], `None` for those the container did not set.
    env: Vec<(String, Option<EnvVar>)>,
}

impl Original {
    fn of(deployment: &Deployment) -> anyhow::Result<Self> {
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
fn configure_patch(container: &str, replicas: i32, operator: &Operator) -> Value {
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
fn restore_patch(original: &Original) -> Value {
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

/// Why the Deployment's rollout is not finished, or `None` when it is: the controller has
/// seen the current generation, and every replica is updated and ready with no old one left
/// (as `kubectl rollout status`, with ready for available).
fn rollout_pending(deployment: &Deployment) -> Option<String> {
    let generation = deployment.metadata.generation.unwrap_or_default();
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or_default();
    let updated = status.updated_replicas.unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or_default();
    let total = status.replicas.unwrap_or_default();
    if observed < generation {
        Some(format!(
            "the Deployment controller has not seen generation {generation} yet"
        ))
    } else if updated != wanted {
        Some(format!("{updated} of {wanted} replicas updated"))
    } else if total > updated {
        Some(format!("{} old replicas are still there", total - updated))
    } else if ready != wanted {
        Some(format!("{ready} of {wanted} replicas ready"))
    } else {
        None
    }
}

/// Whether a pod runs, is ready and is not being deleted: a shard that counts.
fn is_serving(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    pod.metadata.deletion_timestamp.is_none()
        && status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Why the ring does not have exactly `shards` shards, all ready and current, or `None` when
/// it does. A Lease counts when the sharder labelled it ready (SPEC A.2), its holder is its
/// name (SPEC A.3) and that is a current pod. Leases of old pods may linger dead or orphaned
/// until the sharder deletes them, but one still available (SPEC A.4) would be in the ring.
fn shards_pending(leases: &[Lease], pods: &BTreeSet<String>, shards: usize) -> Option<String> {
    let mut ready = Vec::new();
    let mut others = Vec::new();
    for lease in leases {
        let name = lease.name_any();
        let state: ShardState = lease
            .labels()
            .get(labels::STATE)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref());
        if state == ShardState::Ready && holder == Some(name.as_str()) && pods.contains(&name) {
            ready.push(name);
        } else if state.is_available() {
            others.push(format!("{name} ({state})"));
        }
    }
    if ready.len() == shards && others.is_empty() {
        return None;
    }
    let counted = format!(
        "{} of {shards} shard Leases ready and held by a running pod",
        ready.len()
    );
    if others.is_empty() {
        Some(counted)
    } else {
        Some(format!("{counted}; also available: {}", others.join(", ")))
    }
}

/// The port of the operator's metrics: the container port named `metrics`.
fn metrics_port(pod: &Pod) -> i32 {
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some("metrics"))
        .map_or(METRICS_PORT, |p| p.container_port)
}

/// The nodes' allocatable CPUs (rounded) and memory, and the first node's OS.
fn machine(nodes: &[Node]) -> anyhow::Result<Machine> {
    let mut cores = 0.0;
    let mut memory = 0.0;
    for node in nodes {
        let allocatable = node.status.as_ref().and_then(|s| s.allocatable.as_ref());
        if let Some(cpu) = allocatable.and_then(|a| a.get("cpu")) {
            cores += parse_quantity(&cpu.0)?;
        }
        if let Some(bytes) = allocatable.and_then(|a| a.get("memory")) {
            memory += parse_quantity(&bytes.0)?;
        }
    }
    let info = nodes
        .first()
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.node_info.as_ref());
    Ok(Machine {
        cores: u32::try_from(saturating_u64(cores.round())).unwrap_or(u32::MAX),
        memory_bytes: saturating_u64(memory),
        os: info
            .map(|i| format!("{} {}", i.os_image, i.kernel_version))
            .unwrap_or_default(),
    })
}

/// A PodMetricsList of `metrics.k8s.io/v1beta1`, which k8s-openapi does not have.
#[derive(Debug, Deserialize)]
struct PodMetricsList {
    items: Vec<PodMetrics>,
}

/// A pod's usage as the metrics API reports it.
#[derive(Debug, Deserialize)]
struct PodMetrics {
    metadata: ObjectMeta,
    containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Deserialize)]
struct ContainerMetrics {
    usage: BTreeMap<String, Quantity>,
}

impl PodMetrics {
    /// The pod's containers together.
    fn usage(&self) -> anyhow::Result<Usage> {
        let mut usage = Usage::default();
        for container in &self.containers {
            let read = |resource: &str| {
                container
                    .usage
                    .get(resource)
                    .map_or(Ok(0.0), |q| parse_quantity(&q.0))
            };
            usage.add(Usage {
                cores: read("cpu")?,
                bytes: saturating_u64(read("memory")?),
            });
        }
        Ok(usage)
    }
}

/// A component's CPU rate and working set at one time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Usage {
    cores: f64,
    bytes: u64,
}

impl Usage {
    fn add(&mut self, other: Usage) {
        self.cores += other.cores;
        self.bytes += other.bytes;
    }
}

/// A component's CPU seconds so far, integrated from the rates of its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuIntegral {
    at: Timestamp,
    cores: f64,
    seconds: f64,
}

impl CpuIntegral {
    /// The first sample: nothing used yet, as far as the samples tell.
    fn start(at: Timestamp, cores: f64) -> Self {
        Self {
            at,
            cores,
            seconds: 0.0,
        }
    }

    /// The integral up to `at`, where the rate is `cores`: the trapezoid since the last
    /// sample, as the rate moved between the two.
    fn advance(self, at: Timestamp, cores: f64) -> Self {
        let elapsed = at.duration_since(self.at).as_secs_f64().max(0.0);
        Self {
            at,
            cores,
            seconds: self.seconds + f64::midpoint(self.cores, cores) * elapsed,
        }
    }
}

/// The samples of `usage` at `at`, advancing each component's integral in `cpu`.
fn integrate(
    cpu: &mut BTreeMap<String, CpuIntegral>,
    at: Timestamp,
    usage: BTreeMap<String, Usage>,
) -> Vec<UsageSample> {
    usage
        .into_iter()
        .map(|(component, usage)| {
            let integral = match cpu.get(&component) {
                Some(previous) => previous.advance(at, usage.cores),
                None => CpuIntegral::start(at, usage.cores),
            };
            cpu.insert(component.clone(), integral);
            UsageSample {
                at,
                component,
                cpu_seconds: integral.seconds,
                rss_bytes: usage.bytes,
            }
        })
        .collect()
}

/// A Kubernetes quantity as a number of its unit: `250m` is 0.25 (cores), `1Ki` 1024
/// (bytes), `12345n` 0.000012345, `1e3` 1000.
fn parse_quantity(text: &str) -> anyhow::Result<f64> {
    let invalid = || format!("invalid quantity {text:?}");
    let split = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().with_context(invalid)?;
    let factor = match suffix {
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        // A decimal exponent; a lone `E` is exa, above.
        _ => {
            let exponent = suffix
                .strip_prefix(['e', 'E'])
                .and_then(|e| e.parse::<i32>().ok())
                .with_context(invalid)?;
            10.0_f64.powi(exponent)
        }
    };
    Ok(number * factor)
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the cast saturates: negative and NaN give 0; byte counts are integers far below \
              2^53, so nothing is lost"
)]
fn saturating_u64(value: f64) -> u64 {
    value.round() as u64
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::{
            apps::v1::{DeploymentSpec, DeploymentStatus},
            coordination::v1::LeaseSpec,
            core::v1::{
                Container, ContainerPort, EnvVarSource, NodeStatus, NodeSystemInfo,
                ObjectFieldSelector, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
            },
        },
        apimachinery::pkg::apis::meta::v1::Time,
    };

    use super::*;

    #[test]
    fn quantities_are_read_in_their_unit() {
        let cases = [
            ("250m", 0.25),
            ("2", 2.0),
            ("1.5", 1.5),
            ("12345n", 0.000_012_345),
            ("7u", 0.000_007),
            ("1k", 1000.0),
            ("1Ki", 1024.0),
            ("100Mi", 100.0 * 1024.0 * 1024.0),
            ("1Gi", 1024.0 * 1024.0 * 1024.0),
            ("12345Ki", 12345.0 * 1024.0),
            ("2G", 2e9),
            ("1E", 1e18),
            ("1e3", 1000.0),
            ("5E-1", 0.5),
            ("+3", 3.0),
            ("-2m", -0.002),
        ];
        for (text, expected) in cases {
            assert_close(parse_quantity(text).unwrap(), expected);
        }
    }

    /// Equal up to rounding: quantities and integrals are computed in floating point.
    #[track_caller]
    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= expected.abs() * 1e-12,
            "{actual} != {expected}"
        );
    }

    #[test]
    fn invalid_quantities_are_named() {
        for text in ["", "m", "1x", "1Zi", "1e", "1ex", "1.2.3", "1-"] {
            let error = parse_quantity(text).unwrap_err().to_string();
            assert_eq!(error, format!("invalid quantity {text:?}"));
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    #[test]
    fn cpu_seconds_integrate_the_rate_between_samples() {
        let integral = CpuIntegral::start(at(0), 1.0);
        assert_close(integral.seconds, 0.0);
        // From 1 core to 3 cores over 10 s: 20 CPU seconds, then 3 cores for 5 s.
        let integral = integral.advance(at(10), 3.0);
        assert_close(integral.seconds, 20.0);
        let integral = integral.advance(at(15), 3.0);
        assert_close(integral.seconds, 35.0);
        // A clock that went back adds nothing.
        assert_close(integral.advance(at(14), 3.0).seconds, 35.0);
    }

    #[test]
    fn each_component_integrates_on_its_own() {
        let mut cpu = BTreeMap::new();
        let usage = |pairs: &[(&str, f64, u64)]| -> BTreeMap<String, Usage> {
            pairs
                .iter()
                .map(|&(c, cores, bytes)| (c.to_owned(), Usage { cores, bytes }))
                .collect()
        };
        let first = integrate(&mut cpu, at(0), usage(&[("sharder", 0.5, 100)]));
        assert_eq!(
            first,
            vec![UsageSample {
                at: at(0),
                component: "sharder".into(),
                cpu_seconds: 0.0,
                rss_bytes: 100,
            }]
        );
        let second = integrate(
            &mut cpu,
            at(4),
            usage(&[("sharder", 0.5, 200), ("shard-a", 2.0, 300)]),
        );
        let components: Vec<(&str, u64)> = second
            .iter()
            .map(|s| (s.component.as_str(), s.rss_bytes))
            .collect();
        assert_eq!(components, [("shard-a", 300), ("sharder", 200)]);
        assert_close(second[0].cpu_seconds, 0.0);
        assert_close(second[1].cpu_seconds, 2.0);
        // A component missing from a sample keeps its integral.
        let third = integrate(&mut cpu, at(8), usage(&[("shard-a", 2.0, 300)]));
        assert_close(third[0].cpu_seconds, 8.0);
        assert_close(cpu["sharder"].seconds, 2.0);
    }

    #[test]
    fn pod_metrics_add_up_their_containers() {
        let metrics: PodMetricsList = serde_json::from_value(json!({
            "kind": "PodMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [{
                "metadata": { "name": "etcd-kind", "labels": { "component": "etcd" } },
                "timestamp": "2025-01-01T00:00:00Z",
                "window": "15s",
                "containers": [
                    { "name": "a", "usage": { "cpu": "250m", "memory": "1Mi" } },
                    { "name": "b", "usage": { "cpu": "500000000n", "memory": "1024Ki" } },
                ],
            }],
        }))
        .unwrap();
        assert_eq!(
            metrics.items[0].usage().unwrap(),
            Usage {
                cores: 0.75,
                bytes: 2 * 1024 * 1024
            }
        );
    }

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
                name: Some(OPERATOR_DEPLOYMENT.into()),
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

    fn rolled_out(replicas: i32) -> Deployment {
        let mut deployment = deployment(Some(replicas), Vec::new());
        deployment.metadata.generation = Some(4);
        deployment.status = Some(DeploymentStatus {
            observed_generation: Some(4),
            replicas: Some(replicas),
            updated_replicas: Some(replicas),
            ready_replicas: Some(replicas),
            ..DeploymentStatus::default()
        });
        deployment
    }

    #[test]
    fn a_rollout_is_finished_when_every_replica_is_updated_and_ready() {
        assert_eq!(rollout_pending(&rolled_out(3)), None);
        let mut scaled_to_zero = rolled_out(0);
        scaled_to_zero.status.as_mut().unwrap().replicas = None;
        assert_eq!(rollout_pending(&scaled_to_zero), None);

        let with = |change: fn(&mut DeploymentStatus)| {
            let mut deployment = rolled_out(3);
            change(deployment.status.as_mut().unwrap());
            rollout_pending(&deployment).unwrap()
        };
        assert_eq!(
            with(|s| s.observed_generation = Some(3)),
            "the Deployment controller has not seen generation 4 yet"
        );
        assert_eq!(
            with(|s| s.updated_replicas = Some(1)),
            "1 of 3 replicas updated"
        );
        assert_eq!(
            with(|s| s.replicas = Some(4)),
            "1 old replicas are still there"
        );
        assert_eq!(
            with(|s| s.ready_replicas = Some(2)),
            "2 of 3 replicas ready"
        );
        let mut new = rolled_out(3);
        new.status = None;
        assert_eq!(
            rollout_pending(&new).unwrap(),
            "the Deployment controller has not seen generation 4 yet"
        );
    }

    fn lease(name: &str, holder: &str, state: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(labels::STATE.to_owned(), state.to_owned())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                ..LeaseSpec::default()
            }),
        }
    }

    fn pods(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn ready_leases_of_current_pods_are_the_shards() {
        let leases = [
            lease("new-a", "new-a", "ready"),
            lease("new-b", "new-b", "ready"),
            // Old pods' Leases, released or taken over: not in the ring.
            lease("old-a", "", "dead"),
            lease("old-b", labels::SHARD_LEASE_CONTROLLER, "orphaned"),
        ];
        assert_eq!(shards_pending(&leases, &pods(&["new-a", "new-b"]), 2), None);
        assert_eq!(
            shards_pending(&leases, &pods(&["new-a", "new-b"]), 3).unwrap(),
            "2 of 3 shard Leases ready and held by a running pod"
        );
        assert_eq!(
            shards_pending(&leases, &pods(&["new-a"]), 2).unwrap(),
            "1 of 2 shard Leases ready and held by a running pod; also available: new-b (ready)"
        );
    }

    #[test]
    fn an_old_shard_still_available_is_waited_for() {
        let leases = [
            lease("new-a", "new-a", "ready"),
            lease("old-a", "old-a", "expired"),
            lease("old-b", "old-b", "uncertain"),
        ];
        assert_eq!(
            shards_pending(&leases, &pods(&["new-a"]), 1).unwrap(),
            "1 of 1 shard Leases ready and held by a running pod; also available: old-a \
             (expired), old-b (uncertain)"
        );
        // Not labelled by the sharder yet, or held by someone else: not ready.
        let mut unlabelled = lease("new-b", "new-b", "ready");
        unlabelled.metadata.labels = None;
        let leases = [
            lease("new-a", "new-a", "ready"),
            unlabelled,
            lease("new-c", "other", "ready"),
        ];
        assert_eq!(
            shards_pending(&leases, &pods(&["new-a", "new-b", "new-c"]), 3).unwrap(),
            "1 of 3 shard Leases ready and held by a running pod; also available: new-c (ready)"
        );
    }

    fn pod(phase: &str, ready: &str, ports: Vec<ContainerPort>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("webhosting-operator-abc".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "operator".into(),
                    ports: Some(ports),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn a_shard_is_a_running_ready_pod_not_being_deleted() {
        assert!(is_serving(&pod("Running", "True", Vec::new())));
        assert!(!is_serving(&pod("Running", "False", Vec::new())));
        assert!(!is_serving(&pod("Pending", "True", Vec::new())));
        let mut deleted = pod("Running", "True", Vec::new());
        deleted.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(!is_serving(&deleted));
        let mut no_status = deleted;
        no_status.status = None;
        assert!(!is_serving(&no_status));
    }

    #[test]
    fn metrics_are_read_from_the_port_named_metrics() {
        let port = |name: &str, number: i32| ContainerPort {
            name: Some(name.into()),
            container_port: number,
            ..ContainerPort::default()
        };
        let named = pod(
            "Running",
            "True",
            vec![port("health", 8081), port("metrics", 9090)],
        );
        assert_eq!(metrics_port(&named), 9090);
        assert_eq!(metrics_port(&pod("Running", "True", Vec::new())), 8080);
    }

    fn node(cpu: &str, memory: &str) -> Node {
        Node {
            status: Some(NodeStatus {
                allocatable: Some(
                    [
                        ("cpu".to_owned(), Quantity(cpu.into())),
                        ("memory".to_owned(), Quantity(memory.into())),
                    ]
                    .into(),
                ),
                node_info: Some(NodeSystemInfo {
                    os_image: "Debian GNU/Linux 12 (bookworm)".into(),
                    kernel_version: "6.8.0".into(),
                    ..NodeSystemInfo::default()
                }),
                ..NodeStatus::default()
            }),
            ..Node::default()
        }
    }

    #[test]
    fn the_machine_is_the_nodes_together() {
        let machine = machine(&[node("1500m", "1Gi"), node("2", "1048576Ki")]).unwrap();
        assert_eq!(
            machine,
            Machine {
                cores: 4,
                memory_bytes: 2 * 1024 * 1024 * 1024,
                os: "Debian GNU/Linux 12 (bookworm) 6.8.0".into(),
            }
        );
        let error = super::machine(&[node("lots", "1Gi")]).unwrap_err();
        assert_eq!(error.to_string(), "invalid quantity \"lots\"");
        assert_eq!(
            super::machine(&[]).unwrap(),
            Machine {
                cores: 0,
                memory_bytes: 0,
                os: String::new()
            }
        );
    }
}
