//! Where an experiment runs: the API server, the sharder and the shards of the controller under
//! test (the scenario's `controller`, docs/experiments.md#the-controller-under-test), and the
//! handles an experiment needs on them (kill a shard, restart them all, read their cost and
//! their `/metrics`, and the API server's).
//!
//! - [`local::Local`] (the default): a fresh local control plane with kube-controller-manager,
//!   the sharder and N shards as processes, for each shard count of the sweep.
//! - [`cluster::Cluster`]: any kubeconfig where the sharder and the controller are deployed.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use kube_sharding::{
    api::ControllerRing,
    strategy::{ANNOTATION, Strategy},
};

use crate::{
    measure::cost::{MachineCpu, UsageSample},
    results::Machine,
    scenario::{Controller, Fault, FaultKind, Operator, Sharder, Signal},
};

pub mod cluster;
pub mod local;

/// Where to run, as chosen on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Processes on a local control plane.
    Local {
        /// Keep the control plane's directory (logs of every process) after the run.
        keep_directory: bool,
        /// The sharder and operator executables, whose directory is `{{ bin }}` of the
        /// controller's command; `None` for those next to loadgen's own.
        binaries: Option<stack::Binaries>,
    },
    /// A cluster with the sharder and the operator deployed.
    Cluster {
        /// The kubeconfig; `None` for `KUBECONFIG`, `~/.kube/config` or in-cluster.
        kubeconfig: Option<PathBuf>,
        /// The kubeconfig context; `None` for the current one.
        context: Option<String>,
    },
}

/// The first fault of `faults` that the target of `choice` cannot inject, as the field and
/// why: a cluster kills the sharder's leader (by deleting its pod) but neither pauses a pod's
/// processes nor stops its API server.
#[must_use]
pub fn unsupported(choice: &Choice, faults: &[Fault]) -> Option<(String, String)> {
    if matches!(choice, Choice::Local { .. }) {
        return None;
    }
    faults.iter().enumerate().find_map(|(i, fault)| {
        let why = match fault.kind {
            FaultKind::KillSharderLeader { .. } => return None,
            FaultKind::Pause { .. } => {
                "loadgen cannot stop a pod's processes (SIGSTOP) on a cluster"
            }
            FaultKind::StopApiServer { .. } => "loadgen does not stop a cluster's API server",
        };
        Some((
            format!("faults[{i}]"),
            format!(
                "{} is not possible on the cluster target: {why}; run the scenario on the \
                 local target",
                fault.kind.name()
            ),
        ))
    })
}

/// Puts the ControllerRing `ring` under `strategy` (docs/experiments.md#assignment-strategies):
/// the sharder's annotation set to its name, or removed for hash-ring, the default, so that a
/// ring under hash-ring looks exactly as without the axis. A ring already so is not patched, so
/// that a run without the axis needs no right to patch rings.
///
/// # Errors
/// The ring cannot be read or patched: it does not exist, or the client may not.
pub async fn annotate_strategy(
    client: &Client,
    ring: &str,
    strategy: Strategy,
) -> anyhow::Result<()> {
    let context = || format!("cannot put ControllerRing {ring} under {strategy}");
    let rings = Api::<ControllerRing>::all(client.clone());
    let current = rings.get(ring).await.with_context(context)?;
    let annotated = current
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(ANNOTATION))
        .map(String::as_str);
    let value = (strategy != Strategy::default()).then(|| strategy.name());
    if annotated == value {
        return Ok(());
    }
    let patch = serde_json::json!({ "metadata": { "annotations": { ANNOTATION: value } } });
    rings
        .patch(ring, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .with_context(context)?;
    Ok(())
}

/// A target, connected.
pub enum Target {
    /// See [`local::Local`].
    Local(Box<local::Local>),
    /// See [`cluster::Cluster`].
    Cluster(Box<cluster::Cluster>),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Target").field(&self.kind()).finish()
    }
}

/// The directory of an executable.
fn parent(executable: &Path) -> anyhow::Result<PathBuf> {
    executable
        .parent()
        .map(Path::to_owned)
        .with_context(|| format!("{} has no directory", executable.display()))
}

impl Target {
    /// Connects to the target of `choice` with `controller` under test. A local target finds
    /// the sharder, and the binaries of the controller's command (`{{ bin }}`), next to
    /// loadgen's own.
    pub async fn connect(choice: &Choice, controller: &Controller) -> anyhow::Result<Self> {
        Ok(match choice {
            Choice::Local {
                keep_directory,
                binaries,
            } => {
                let (sharder, bin) = if let Some(binaries) = binaries {
                    (binaries.sharder.clone(), parent(&binaries.operator)?)
                } else {
                    let sharder = stack::Binaries::sharder_next_to_current_exe()?;
                    let bin = parent(&sharder)?;
                    (sharder, bin)
                };
                Self::Local(Box::new(local::Local::new(
                    sharder,
                    bin,
                    *keep_directory,
                    controller.clone(),
                )?))
            }
            Choice::Cluster {
                kubeconfig,
                context,
            } => Self::Cluster(Box::new(
                cluster::Cluster::connect(kubeconfig.as_deref(), context.as_deref(), controller)
                    .await?,
            )),
        })
    }

    /// The controller under test.
    #[must_use]
    pub fn controller(&self) -> &Controller {
        match self {
            Self::Local(local) => local.controller(),
            Self::Cluster(cluster) => cluster.controller(),
        }
    }

    /// A short name for logs and `run.json`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Cluster(_) => "cluster",
        }
    }

    /// Makes `shards` shards with `operator`'s settings run and be ready, on `sharder`'s
    /// replicas and an API server with nothing of an earlier shard count left over. A cluster
    /// must have as many sharder replicas deployed.
    pub async fn prepare(
        &mut self,
        shards: u32,
        operator: &Operator,
        sharder: Sharder,
    ) -> anyhow::Result<()> {
        match self {
            Self::Local(local) => local.prepare(shards, operator, sharder).await,
            Self::Cluster(cluster) => {
                anyhow::ensure!(
                    sharder.sync_period == crate::scenario::DEFAULT_SYNC_PERIOD,
                    "sharder.syncPeriod is for the local target: a cluster's sharder has the \
                     syncPeriod of its deployed config"
                );
                cluster.check_sharder_replicas(sharder.replicas).await?;
                cluster.prepare(shards, operator).await
            }
        }
    }

    /// Restarts the processes that exit until dropped, as a kubelet would
    /// (docs/experiments.md#the-supervisor); returns only with the error of a crash loop. On a
    /// cluster, the kubelet does it and this never returns.
    pub async fn supervise(&self) -> anyhow::Error {
        match self {
            Self::Local(local) => local.supervise().await,
            Self::Cluster(_) => std::future::pending().await,
        }
    }

    /// How often the supervisor restarted each process since [`Self::prepare`] (only those it
    /// restarted); `None` on a cluster, whose restarts are the kubelet's.
    pub fn restarts(&self) -> anyhow::Result<Option<BTreeMap<String, usize>>> {
        match self {
            Self::Local(local) => local.restarts().map(Some),
            Self::Cluster(_) => Ok(None),
        }
    }

    /// Kills the sharder replica that holds the leader Lease with SIGKILL (a cluster deletes
    /// its pod with no grace period); returns its name.
    pub async fn kill_sharder_leader(&self) -> anyhow::Result<String> {
        match self {
            Self::Local(local) => {
                let leader = local.sharder_leader().await?;
                local.crash_sharder(&leader)?;
                Ok(leader)
            }
            Self::Cluster(cluster) => cluster.kill_sharder_leader().await,
        }
    }

    /// The local target, for the faults only it can inject ([`unsupported`]).
    fn local(&self, fault: &str) -> anyhow::Result<&local::Local> {
        match self {
            Self::Local(local) => Ok(local),
            Self::Cluster(_) => anyhow::bail!("{fault} is not possible on the cluster target"),
        }
    }

    /// The name of the sharder replica that leads (local target).
    pub async fn sharder_leader(&self) -> anyhow::Result<String> {
        self.local("finding the sharder's leader")?
            .sharder_leader()
            .await
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) the sharder replica or shard `name` (local
    /// target).
    pub async fn pause(&self, name: &str, pause: bool) -> anyhow::Result<()> {
        self.local("pause")?.pause(name, pause).await
    }

    /// Stops kube-apiserver; returns whether it ran (local target).
    pub fn stop_api_server(&self) -> anyhow::Result<bool> {
        self.local("stopApiServer")?.stop_api_server()
    }

    /// Starts kube-apiserver again and waits until it is ready (local target).
    pub async fn start_api_server(&self) -> anyhow::Result<()> {
        self.local("stopApiServer")?.start_api_server().await
    }

    /// A client of the target's API server; only valid after [`Self::prepare`].
    pub fn client(&self) -> anyhow::Result<Client> {
        match self {
            Self::Local(local) => local.client(),
            Self::Cluster(cluster) => Ok(cluster.client()),
        }
    }

    /// The shards that run now.
    pub async fn shards(&self) -> anyhow::Result<Vec<String>> {
        match self {
            Self::Local(local) => Ok(local.shards().await),
            Self::Cluster(cluster) => cluster.shards().await,
        }
    }

    /// Kills `shard` with `signal`; with `replace`, a new shard takes its place, as a
    /// Deployment would start a new pod.
    pub async fn kill(&self, shard: &str, signal: Signal, replace: bool) -> anyhow::Result<()> {
        match self {
            Self::Local(local) => local.kill(shard, signal, replace).await,
            Self::Cluster(cluster) => cluster.kill(shard, signal, replace).await,
        }
    }

    /// Replaces every shard by a new one, one at a time, as a Deployment's rolling update
    /// does; returns when the last old shard is gone.
    pub async fn rolling_update(&self) -> anyhow::Result<()> {
        match self {
            Self::Local(local) => local.rolling_update().await,
            Self::Cluster(cluster) => cluster.rolling_update().await,
        }
    }

    /// The CPU and memory of every component now.
    pub async fn usage(&self) -> anyhow::Result<Vec<UsageSample>> {
        match self {
            Self::Local(local) => local.usage().await,
            Self::Cluster(cluster) => cluster.usage().await,
        }
    }

    /// The slot of every shard started since [`Self::prepare`]: a shard started to replace
    /// another takes its slot (docs/experiments.md#cost). `None` on a cluster, where a
    /// Deployment's new pod replaces no pod in particular.
    pub fn slots(&self) -> anyhow::Result<Option<BTreeMap<String, u32>>> {
        match self {
            Self::Local(local) => local.slots().map(Some),
            Self::Cluster(_) => Ok(None),
        }
    }

    /// The CPU time of all cores of the machine so far: this machine's, or a cluster's
    /// nodes' together (docs/experiments.md#cost).
    pub async fn machine_cpu(&self) -> anyhow::Result<MachineCpu> {
        match self {
            Self::Local(_) => local::machine_cpu(),
            Self::Cluster(cluster) => cluster.machine_cpu().await,
        }
    }

    /// Each running shard's `/metrics`, as (shard, exposition text).
    pub async fn operator_metrics(&self) -> Vec<(String, String)> {
        match self {
            Self::Local(local) => local.operator_metrics().await,
            Self::Cluster(cluster) => cluster.operator_metrics().await,
        }
    }

    /// The `/metrics` of each sharder replica that answers, by name; none on a cluster (not
    /// read there).
    pub async fn sharder_metrics(&self) -> Vec<(String, String)> {
        match self {
            Self::Local(local) => local.sharder_metrics().await,
            Self::Cluster(_) => Vec::new(),
        }
    }

    /// Every shard's reconciliation audit log so far, as (file name, text), or why there are
    /// none: a cluster's shards keep theirs in their pods, and a controller whose command does
    /// not pass `{{ audit_file }}` writes none (docs/experiments.md#ownership).
    ///
    /// # Errors
    /// A log cannot be read.
    pub fn audit_logs(&self) -> anyhow::Result<Result<Vec<(String, String)>, String>> {
        match self {
            Self::Local(local) => Ok(local.audit_logs()?.ok_or_else(|| {
                format!(
                    "controller {}'s command does not pass {{{{ audit_file }}}}",
                    self.controller().name
                )
            })),
            Self::Cluster(_) => Ok(Err(
                "the cluster target does not read the shards' audit logs".to_owned(),
            )),
        }
    }

    /// The API server's own `/metrics` (docs/experiments.md#findings), read with the
    /// target's client: the admin credentials both targets use may read it.
    pub async fn api_server_metrics(&self) -> anyhow::Result<String> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        Ok(self.client()?.request_text(request).await?)
    }

    /// Ends a shard count: a local target stops everything, a cluster is restored.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        match self {
            Self::Local(local) => local.finish().await,
            Self::Cluster(cluster) => cluster.finish().await,
        }
    }

    /// The machine the target runs on.
    pub async fn machine(&self) -> anyhow::Result<Machine> {
        match self {
            Self::Local(_) => local::machine(),
            Self::Cluster(cluster) => cluster.machine().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{path::Path, time::Duration};

    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn a_cluster_kills_the_sharders_leader_but_neither_pauses_nor_stops_its_api_server() {
        let scenario = Scenario::from_yaml(
            "name: t\nduration: 3m\nshards: [2]\nworld: {namespaces: 1, themes: 1}\n\
             load: {create: {rate: 1, workers: 1}}\nsharder: {replicas: 2}\nfaults:\n\
             - {at: 10s, kind: killSharderLeader, during: move}\n\
             - {at: 20s, kind: pause, target: shard, duration: 10s}\n\
             - {at: 40s, kind: stopApiServer, duration: 10s}\n",
            Path::new("test.yaml"),
        )
        .unwrap();
        let local = Choice::Local {
            keep_directory: false,
            binaries: None,
        };
        let cluster = Choice::Cluster {
            kubeconfig: None,
            context: None,
        };
        assert_eq!(unsupported(&local, &scenario.faults), None);
        assert_eq!(
            unsupported(&cluster, &scenario.faults),
            Some((
                "faults[1]".to_owned(),
                "pause is not possible on the cluster target: loadgen cannot stop a pod's \
                 processes (SIGSTOP) on a cluster; run the scenario on the local target"
                    .to_owned()
            ))
        );
        assert_eq!(
            unsupported(&cluster, &scenario.faults[2..]).map(|(_, why)| why),
            Some(
                "stopApiServer is not possible on the cluster target: loadgen does not stop a \
                 cluster's API server; run the scenario on the local target"
                    .to_owned()
            )
        );
        assert_eq!(unsupported(&cluster, &scenario.faults[..1]), None);
        assert_eq!(scenario.faults[1].kind.duration(), Duration::from_secs(10));
    }
}
