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
use kube::Client;

use crate::{
    measure::cost::{MachineCpu, UsageSample},
    results::Machine,
    scenario::{Controller, Operator, Signal},
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

    /// Makes `shards` shards with `operator`'s settings run and be ready, on a
    /// sharder and API server with nothing of an earlier shard count left over.
    pub async fn prepare(&mut self, shards: u32, operator: &Operator) -> anyhow::Result<()> {
        match self {
            Self::Local(local) => local.prepare(shards, operator).await,
            Self::Cluster(cluster) => cluster.prepare(shards, operator).await,
        }
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

    /// The sharder's `/metrics`; `None` on a cluster (not read there) or when it cannot be
    /// read.
    pub async fn sharder_metrics(&self) -> Option<String> {
        match self {
            Self::Local(local) => local.sharder_metrics().await,
            Self::Cluster(_) => None,
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
