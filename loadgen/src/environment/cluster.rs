//! The cluster target: any kubeconfig (e.g. kind) where the sharder and the controller under
//! test are deployed (for the webhosting-operator, `make deploy`, see docs/kind.md).
//!
//! A shard count is the replicas of the controller's Deployment or StatefulSet
//! (`controller.cluster`); for the webhosting-operator, the scenario's operator settings are
//! also its environment. Chaos deletes pods, a rolling update patches the pod template as
//! `kubectl rollout restart` does, and cost comes from the metrics API (metrics-server). What
//! [`Cluster::prepare`] changes on the workload, [`Cluster::finish`] puts back.
//!
//! The decisions are pure functions, each tested where it lives: the workload's patches
//! ([`deployment`]), when a rollout is finished and which Leases count as ready shards
//! ([`rollout`]), the metrics API's usage ([`metrics_api`]), quantities ([`quantity`]) and the
//! CPU integral ([`CpuIntegrals`]). The methods here only read and write the API.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::{Mutex, PoisonError},
};

use anyhow::{Context as _, bail};
use futures::future::join_all;
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        coordination::v1::Lease,
        core::v1::{Node, Pod},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::LabelSelector,
    jiff::Timestamp,
};
use kube::{
    Api, Client, Config, CustomResourceExt as _, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    config::{AuthInfo, KubeConfigOptions, Kubeconfig},
    core::{Expression, Selector},
};
use kube_sharding::api::{ControllerRing, labels};
use serde_json::json;
use webhosting_operator::api::Website;

use crate::{
    measure::cost::{CpuIntegrals, MachineCpu, Usage, UsageSample},
    results::Machine,
    scenario::{ClusterController, Controller, Operator, Signal, WorkloadKind},
};

mod deployment;
mod metrics_api;
mod quantity;
mod rollout;
mod workload;

use deployment::{Original, configure_patch, restore_patch};
use metrics_api::{PodMetrics, pod_metrics};
use quantity::{parse_quantity, saturating_u64};
use rollout::{poll, shards_pending};
use workload::WorkloadApi;

/// The sharder's Deployment in [`labels::SHARDER_NAMESPACE`].
const SHARDER_DEPLOYMENT: &str = "sharder";

/// How long a shard pod's secure `/metrics` may take to answer.
const SCRAPE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The controller's metrics port when its pod names none `metrics`.
const METRICS_PORT: i32 = 8080;

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

/// What to do when the cluster lacks something the target needs, for the webhosting-operator.
const DEPLOY_HINT: &str = "deploy the sharder and the webhosting-operator with `make deploy` \
                           (see docs/kind.md)";

/// A cluster with the sharder and the controller under test deployed.
pub struct Cluster {
    client: Client,
    /// The client's configuration, for scraping secure `/metrics` from the pods themselves.
    config: Config,
    controller: Controller,
    /// `controller.cluster`.
    deployed: ClusterController,
    /// The shards' pods: `podSelector`, or the workload's own selector, read once (a
    /// Deployment's or StatefulSet's selector is immutable), as `kubectl get -l` takes it.
    shard_pods: String,
    /// The sharder Deployment's pod selector.
    sharder_pods: String,
    /// The workload as it was before the first [`Cluster::prepare`], until
    /// [`Cluster::finish`] puts it back.
    original: Option<Original>,
    /// The CPU seconds integrated so far, per component. Behind a lock so that sampling
    /// needs only `&self`, like the other targets' sampling.
    cpu: Mutex<CpuIntegrals>,
    /// The nodes' busy and allocatable core-seconds integrated so far.
    machine_cpu: Mutex<CpuIntegrals>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("controller", &self.controller.name)
            .field("workload", &self.deployed.workload.to_string())
            .field("shard_pods", &self.shard_pods)
            .field("sharder_pods", &self.sharder_pods)
            .field("original", &self.original)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Connects with the kubeconfig (`None`: `KUBECONFIG`, `~/.kube/config` or in-cluster;
    /// `context`: `None` for the current one) and checks that the controller's workload
    /// (`controller.cluster`), the sharder Deployment and the controller's ControllerRing
    /// exist, and for the webhosting-operator the Website CRD. The error names everything
    /// missing and how to deploy it.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        context: Option<&str>,
        controller: &Controller,
    ) -> anyhow::Result<Self> {
        let cluster = controller.cluster.clone().with_context(|| {
            format!(
                "controller {} has no `cluster` section: it runs only on the local target",
                controller.name
            )
        })?;
        let config = config(kubeconfig, context).await?;
        let client =
            Client::try_from(config.clone()).context("cannot create a Kubernetes client")?;
        client
            .apiserver_version()
            .await
            .context("cannot reach the cluster's API server")?;
        let workload = WorkloadApi::new(&client, &cluster.workload)
            .get_opt()
            .await?;
        let sharder = found(
            Api::<Deployment>::namespaced(client.clone(), labels::SHARDER_NAMESPACE)
                .get(SHARDER_DEPLOYMENT)
                .await,
        )?;
        let website_crd = if cluster.operator_env {
            found(
                Api::<CustomResourceDefinition>::all(client.clone())
                    .get(Website::crd_name())
                    .await,
            )?
            .map(drop)
        } else {
            Some(())
        };
        let ring = found(
            Api::<ControllerRing>::all(client.clone())
                .get(&controller.ring)
                .await,
        )?;
        let mut missing = Vec::new();
        if workload.is_none() {
            missing.push(cluster.workload.to_string());
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
            missing.push(format!("ControllerRing {}", controller.ring));
        }
        let (Some(workload), Some(sharder), true) = (workload, sharder, missing.is_empty()) else {
            let hint = if cluster.operator_env {
                DEPLOY_HINT.to_owned()
            } else {
                format!(
                    "deploy the sharder (`make deploy`, see docs/kind.md) and controller {}",
                    controller.name
                )
            };
            bail!("the cluster lacks {}: {hint}", missing.join(", "));
        };
        let shard_pods = match &cluster.pod_selector {
            Some(selector) => selector.clone(),
            None => selector(&cluster.workload.to_string(), workload.selector())?.to_string(),
        };
        Ok(Self {
            client,
            config,
            controller: controller.clone(),
            deployed: cluster,
            shard_pods,
            sharder_pods: pod_selector(&sharder)?.to_string(),
            original: None,
            cpu: Mutex::new(CpuIntegrals::default()),
            machine_cpu: Mutex::new(CpuIntegrals::default()),
        })
    }

    /// The controller under test.
    #[must_use]
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// A client of the cluster's API server.
    #[must_use]
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Makes `shards` pods of the controller run: sets the workload's replicas and, for the
    /// webhosting-operator, `operator`'s settings in its environment (remembering them for
    /// [`Self::finish`]), then waits until the rollout has finished and exactly `shards` shard
    /// Leases are ready, held by current pods, with no other shard available in the ring.
    pub async fn prepare(&mut self, shards: u32, operator: &Operator) -> anyhow::Result<()> {
        self.configure(shards, operator).await?;
        self.wait_for_shards(shards).await
    }

    /// The first half of [`Self::prepare`]: remembers the workload as it is (unless it is
    /// remembered already) and patches it.
    async fn configure(&mut self, shards: u32, operator: &Operator) -> anyhow::Result<()> {
        let workload = self.workload();
        let operator_env = self.deployed.operator_env;
        let original = match self.original.take() {
            Some(original) => original,
            None => Original::of(
                &self.deployed.workload.to_string(),
                &workload.get().await?,
                operator_env,
            )?,
        };
        let container = original.container.clone();
        self.original = Some(original);
        let replicas = i32::try_from(shards).with_context(|| format!("{shards} shards"))?;
        let patch = configure_patch(&container, replicas, operator_env.then_some(operator));
        workload.patch(&patch_params(), patch).await
    }

    /// The second half of [`Self::prepare`].
    async fn wait_for_shards(&self, shards: u32) -> anyhow::Result<()> {
        let workload = self.workload();
        let leases =
            Api::<Lease>::namespaced(self.client.clone(), &self.controller.lease_namespace);
        let ring_leases = ListParams::default().labels(&format!(
            "{}={}",
            labels::CONTROLLER_RING,
            self.controller.ring
        ));
        let shards = usize::try_from(shards)?;
        poll(&format!("{shards} shards ready"), || async {
            if let Some(pending) = workload.get().await?.rollout_pending() {
                return Ok(Some(format!(
                    "the rollout of {} is not finished: {pending}",
                    self.deployed.workload
                )));
            }
            let pods: BTreeSet<String> = self.shards().await?.into_iter().collect();
            let leases = leases.list(&ring_leases).await?.items;
            Ok(shards_pending(&leases, &pods, shards))
        })
        .await
    }

    /// The names of the controller's pods that are running and ready, which are the shard
    /// names.
    pub async fn shards(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .shard_pods()
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
    /// # Errors
    /// Besides API errors: a kill without `replace` of a StatefulSet's pod, since a
    /// StatefulSet that scales down removes its highest ordinal, not the pod of our choice.
    ///
    /// # Caveats
    /// Scaling down makes the ReplicaSet delete a pod itself, gracefully. `shard` is marked as
    /// the cheapest to delete so that it is the one, and the delete here follows at once, but
    /// for [`Signal::Kill`] the ReplicaSet may be a few milliseconds faster.
    pub async fn kill(&self, shard: &str, signal: Signal, replace: bool) -> anyhow::Result<()> {
        let pods = self.pods();
        if !replace {
            if self.deployed.workload.kind == WorkloadKind::StatefulSet {
                bail!(
                    "cannot remove pod {shard} of {} for good: a StatefulSet scales down by its \
                     highest ordinal (set chaos.restart: true)",
                    self.deployed.workload
                );
            }
            let cheapest = json!({ "metadata": { "annotations": {
                POD_DELETION_COST: i32::MIN.to_string()
            } } });
            pods.patch(shard, &patch_params(), &Patch::Merge(cheapest))
                .await
                .with_context(|| format!("cannot mark pod {shard} for deletion"))?;
            let workload = self.workload();
            let replicas = workload.get().await?.replicas();
            let fewer = json!({ "spec": { "replicas": (replicas - 1).max(0) } });
            workload
                .patch(&patch_params(), fewer)
                .await
                .with_context(|| format!("cannot scale {} down", self.deployed.workload))?;
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

    /// Fails unless the sharder Deployment has `replicas` replicas: a scenario's
    /// `sharder.replicas` is deployed, not changed by loadgen.
    pub async fn check_sharder_replicas(&self, replicas: u32) -> anyhow::Result<()> {
        let deployment =
            Api::<Deployment>::namespaced(self.client.clone(), labels::SHARDER_NAMESPACE)
                .get(SHARDER_DEPLOYMENT)
                .await
                .with_context(|| {
                    format!(
                        "cannot read Deployment {}/{SHARDER_DEPLOYMENT}",
                        labels::SHARDER_NAMESPACE
                    )
                })?;
        let deployed = deployment.spec.and_then(|spec| spec.replicas).unwrap_or(1);
        anyhow::ensure!(
            i64::from(deployed) == i64::from(replicas),
            "sharder.replicas is {replicas}, but Deployment {namespace}/{SHARDER_DEPLOYMENT} \
             has {deployed}: scale it with `kubectl -n {namespace} scale deployment \
             {SHARDER_DEPLOYMENT} --replicas={replicas}`",
            namespace = labels::SHARDER_NAMESPACE
        );
        Ok(())
    }

    /// Deletes the pod of the sharder's leader (the holder of its leader Lease, whose identity
    /// starts with the pod's name) with no grace period, as SIGKILL would end it; returns its
    /// name. The Deployment starts a new pod.
    pub async fn kill_sharder_leader(&self) -> anyhow::Result<String> {
        let lease = Api::<Lease>::namespaced(self.client.clone(), labels::SHARDER_NAMESPACE)
            .get(labels::SHARDER_LEASE)
            .await
            .context("cannot read the sharder's leader Lease")?;
        let pod = stack::leader_of(&lease, Timestamp::now())
            .context("no sharder pod holds the leader Lease")?;
        Api::<Pod>::namespaced(self.client.clone(), labels::SHARDER_NAMESPACE)
            .delete(&pod, &DeleteParams::default().grace_period(0))
            .await
            .with_context(|| format!("cannot delete the sharder's leader pod {pod}"))?;
        Ok(pod)
    }

    /// A rolling restart, as `kubectl rollout restart`: sets the pod template annotation
    /// `kubectl.kubernetes.io/restartedAt` to now and returns when the rollout has finished.
    pub async fn rolling_update(&self) -> anyhow::Result<()> {
        let workload = self.workload();
        let patch = json!({ "spec": { "template": { "metadata": { "annotations": {
            RESTARTED_AT: Timestamp::now().to_string()
        } } } } });
        workload
            .patch(&patch_params(), patch)
            .await
            .with_context(|| format!("cannot restart {}", self.deployed.workload))?;
        poll(
            &format!("the rolling update of {}", self.deployed.workload),
            || async { Ok(workload.get().await?.rollout_pending()) },
        )
        .await
    }

    /// CPU and memory from the metrics API (metrics-server): `sharder` (all its pods
    /// together), each of the controller's pods by name, and the control plane's pods in kube-system by
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
        for metrics in
            pod_metrics(&self.client, labels::SHARDER_NAMESPACE, &self.sharder_pods).await?
        {
            add("sharder".to_owned(), &metrics)?;
        }
        for metrics in pod_metrics(&self.client, self.namespace(), &self.shard_pods).await? {
            add(metrics.metadata.name.clone().unwrap_or_default(), &metrics)?;
        }
        for metrics in pod_metrics(&self.client, "kube-system", &control_plane.to_string()).await? {
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
        Ok(cpu.sample(at, usage))
    }

    /// The CPU of all nodes so far: the CPU rate the metrics API reports for them and their
    /// allocatable CPUs, each integrated over the calls of this method from 0.
    pub async fn machine_cpu(&self) -> anyhow::Result<MachineCpu> {
        let at = Timestamp::now();
        let busy = metrics_api::node_cores(&self.client).await?;
        let nodes = Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .context("cannot list the cluster's nodes")?
            .items;
        let total = allocatable(&nodes, "cpu")?;
        let usage = |cores| Usage { cores, bytes: 0 };
        let mut integrals = self
            .machine_cpu
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let samples = integrals.sample(
            at,
            BTreeMap::from([
                ("busy".to_owned(), usage(busy)),
                ("total".to_owned(), usage(total)),
            ]),
        );
        let seconds = |component: &str| {
            samples
                .iter()
                .find(|s| s.component == component)
                .map_or(0.0, |s| s.cpu_seconds)
        };
        Ok(MachineCpu {
            busy: seconds("busy"),
            total: seconds("total"),
        })
    }

    /// Each running pod's `/metrics` of the controller, through the API server's pod proxy, as
    /// (pod name, exposition text); pods that do not answer are left out. Metrics served
    /// securely are read from the pod itself, since the proxy does not pass the token on
    /// (docs/metrics-security.md#loadgen).
    pub async fn operator_metrics(&self) -> Vec<(String, String)> {
        let namespace = self.namespace();
        let Ok(pods) = self.shard_pods().await else {
            return Vec::new();
        };
        let scrapes = pods
            .iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none())
            .map(|pod| async move {
                let name = pod.name_any();
                let path = format!(
                    "/api/v1/namespaces/{namespace}/pods/{name}:{}/proxy/metrics",
                    metrics_port(pod)
                );
                let request = http::Request::get(path).body(Vec::new()).ok()?;
                let text = match self.client.request_text(request).await {
                    Ok(text) => text,
                    Err(_) => self.scrape_pod(pod).await?,
                };
                Some((name, text))
            });
        join_all(scrapes).await.into_iter().flatten().collect()
    }

    /// `/metrics` of `pod` over HTTPS at its IP with this client's credentials, without
    /// verifying the pod's self-signed certificate: reachable where pod IPs are, such as from
    /// loadgen's Job in the cluster, and answered if the credentials are a token allowed to get
    /// `/metrics`. Without a token it is not tried, and it gives up after [`SCRAPE_TIMEOUT`] so
    /// that an unreachable pod IP does not hold up the sampling.
    async fn scrape_pod(&self, pod: &Pod) -> Option<String> {
        if !bears_token(&self.config.auth_info) {
            return None;
        }
        let ip = pod.status.as_ref()?.pod_ip.as_deref()?;
        let mut config = self.config.clone();
        config.cluster_url = pod_url(ip, metrics_port(pod)).parse().ok()?;
        config.accept_invalid_certs = true;
        config.root_cert = None;
        config.tls_server_name = None;
        config.proxy_url = None;
        let client = Client::try_from(config).ok()?;
        let request = http::Request::get("/metrics").body(Vec::new()).ok()?;
        tokio::time::timeout(SCRAPE_TIMEOUT, client.request_text(request))
            .await
            .ok()?
            .ok()
    }

    /// Puts back the replicas and environment that the first [`Self::prepare`] found.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        let Some(original) = &self.original else {
            return Ok(());
        };
        self.workload()
            .patch(&patch_params(), restore_patch(original))
            .await
            .with_context(|| format!("cannot restore {}", self.deployed.workload))?;
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

    fn workload(&self) -> WorkloadApi {
        WorkloadApi::new(&self.client, &self.deployed.workload)
    }

    /// The namespace of the workload and its pods.
    fn namespace(&self) -> &str {
        &self.deployed.workload.namespace
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), self.namespace())
    }

    async fn shard_pods(&self) -> anyhow::Result<Vec<Pod>> {
        let pods = self
            .pods()
            .list(&ListParams::default().labels(&self.shard_pods))
            .await
            .with_context(|| format!("cannot list the pods of {}", self.deployed.workload))?;
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
    let selector_of = deployment
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    selector(
        &format!("Deployment {}", deployment.name_any()),
        selector_of,
    )
}

/// `selector` of `owner` (named in errors) as a [`Selector`].
fn selector(owner: &str, selector: LabelSelector) -> anyhow::Result<Selector> {
    Selector::try_from(selector).with_context(|| format!("{owner} has an invalid selector"))
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
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

/// The port of the controller's metrics: the container port named `metrics`.
fn metrics_port(pod: &Pod) -> i32 {
    pod.spec
        .iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some("metrics"))
        .map_or(METRICS_PORT, |p| p.container_port)
}

/// Whether `auth` sends a bearer token, which a pod's TokenReview can authenticate (client
/// certificates it cannot).
fn bears_token(auth: &AuthInfo) -> bool {
    auth.token.is_some()
        || auth.token_file.is_some()
        || auth.exec.is_some()
        || auth.auth_provider.is_some()
}

/// `https://` and the pod's `ip` (an IPv6 one in brackets) and `port`.
fn pod_url(ip: &str, port: i32) -> String {
    if ip.contains(':') {
        format!("https://[{ip}]:{port}")
    } else {
        format!("https://{ip}:{port}")
    }
}

/// The sum of the nodes' allocatable `resource`, as a number (cores, bytes).
fn allocatable(nodes: &[Node], resource: &str) -> anyhow::Result<f64> {
    nodes
        .iter()
        .filter_map(|node| node.status.as_ref()?.allocatable.as_ref()?.get(resource))
        .map(|quantity| parse_quantity(&quantity.0))
        .sum()
}

/// The nodes' allocatable CPUs (rounded) and memory, and the first node's OS.
fn machine(nodes: &[Node]) -> anyhow::Result<Machine> {
    let cores = allocatable(nodes, "cpu")?;
    let memory = allocatable(nodes, "memory")?;
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

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::core::v1::{
            Container, ContainerPort, NodeStatus, NodeSystemInfo, PodCondition, PodSpec, PodStatus,
        },
        apimachinery::pkg::{
            api::resource::Quantity,
            apis::meta::v1::{ObjectMeta, Time},
        },
    };

    use super::*;

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
    fn pods_are_scraped_directly_only_with_a_token() {
        let in_cluster = AuthInfo {
            token_file: Some("/var/run/secrets/kubernetes.io/serviceaccount/token".to_owned()),
            ..AuthInfo::default()
        };
        assert!(bears_token(&in_cluster));
        let kind_admin = AuthInfo {
            client_certificate_data: Some("cert".to_owned()),
            ..AuthInfo::default()
        };
        assert!(!bears_token(&kind_admin));
    }

    #[test]
    fn a_pod_is_scraped_at_its_ip_in_brackets_if_ipv6() {
        assert_eq!(pod_url("10.244.1.7", 8080), "https://10.244.1.7:8080");
        assert_eq!(pod_url("fd00::7", 8080), "https://[fd00::7]:8080");
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
