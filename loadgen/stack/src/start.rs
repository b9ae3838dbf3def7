//! One start-up for every local stack: the control plane, the APIs and the sharder, ready for
//! the shards of the controller under test.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use anyhow::{Context as _, bail};
use kube::Client;
use testenv::ControlPlane;
use tokio::time::Instant;

use crate::{
    Manifest, OPERATOR_NAMESPACE, Operators, RestartPolicy, SharderProcess, SharderSettings,
    Sharders, WEBHOSTING_RING, supervisor::Supervision,
};

/// How often the supervisor looks at the processes.
const SUPERVISOR_POLL: Duration = Duration::from_millis(250);

/// What the controller under test needs on the control plane before its shards start.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerSetup {
    /// Its ControllerRing, which [`Stack::start`] waits for and [`Operators`] count shards of.
    pub ring: String,
    /// The namespace of its shard Leases, created unless a manifest does.
    pub lease_namespace: String,
    /// Its CRDs, ring and whatever else it needs ([`install_manifests`](crate::install_manifests)).
    pub manifests: Vec<Manifest>,
}

impl ControllerSetup {
    /// The webhosting-operator's: [`webhosting_manifests`](crate::webhosting_manifests), the
    /// ring `webhosting-operator` and the namespace `webhosting-system`.
    #[must_use]
    pub fn webhosting() -> Self {
        Self {
            ring: WEBHOSTING_RING.to_owned(),
            lease_namespace: OPERATOR_NAMESPACE.to_owned(),
            manifests: crate::webhosting_manifests(),
        }
    }
}

/// What [`Stack::start`] starts.
#[derive(Debug, Clone)]
#[must_use]
pub struct StackOptions {
    webhosting: bool,
    controller: Option<ControllerSetup>,
    keep_directory: bool,
    sharder: SharderSettings,
    sharder_replicas: u32,
    patience: Duration,
}

impl Default for StackOptions {
    /// The webhosting stack with one sharder with its defaults, its directory removed at the
    /// end, two minutes to become ready.
    fn default() -> Self {
        Self {
            webhosting: true,
            controller: None,
            keep_directory: false,
            sharder: SharderSettings::default(),
            sharder_replicas: 1,
            patience: Duration::from_secs(120),
        }
    }
}

impl StackOptions {
    /// With the webhosting APIs (the default): the control plane of [`environment`](crate::environment)
    /// with kube-controller-manager, the Website and Theme CRDs and the ring
    /// `webhosting-operator`, and a wait until the sharder's webhook is called. Without, a
    /// bare etcd and kube-apiserver with only the ControllerRing CRD, for rings of the
    /// caller's own.
    pub fn webhosting(self, webhosting: bool) -> Self {
        Self { webhosting, ..self }
    }

    /// Another controller under test instead of the webhosting-operator: the control plane of
    /// [`environment`](crate::environment), its manifests applied and its Lease namespace
    /// created, and a wait until its ring is ready.
    pub fn controller(self, controller: ControllerSetup) -> Self {
        Self {
            controller: Some(controller),
            ..self
        }
    }

    /// Keep the control plane's directory (every process's log) when it stops.
    pub fn keep_directory(self, keep_directory: bool) -> Self {
        Self {
            keep_directory,
            ..self
        }
    }

    /// The sharder's settings.
    pub fn sharder(self, sharder: SharderSettings) -> Self {
        Self { sharder, ..self }
    }

    /// How many sharder replicas run: one (the default) is named `sharder`, more are named
    /// `sharder-0`, `sharder-1`, … and need [`SharderSettings::leader_election`].
    pub fn sharder_replicas(self, sharder_replicas: u32) -> Self {
        Self {
            sharder_replicas,
            ..self
        }
    }

    /// How long the sharder's ring and the shards may take to become ready.
    pub fn patience(self, patience: Duration) -> Self {
        Self { patience, ..self }
    }
}

/// A running local stack: a control plane, the sharder, and the shards of the controller
/// under test started on it. Dropping it kills every process and removes the control plane.
pub struct Stack {
    /// The control plane.
    pub control_plane: ControlPlane,
    /// A client of its API server.
    pub client: Client,
    /// The sharder's replicas.
    pub sharders: Sharders,
    /// The shards of the controller under test, none at first.
    pub operators: Operators,
    patience: Duration,
    /// The restarts of each process by [`Self::supervise`], by name.
    restarts: Mutex<BTreeMap<String, usize>>,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("control_plane", &self.control_plane)
            .field("sharders", &self.sharders)
            .field("operators", &self.operators)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts the control plane, installs the APIs, starts the sharder's replicas from
    /// `sharder` and, with a controller under test (the webhosting-operator by default), waits
    /// until its ring is ready.
    ///
    /// # Errors
    /// Something does not start, several replicas lack leader election, or the ring is not
    /// ready in time: then the error quotes the end of the first sharder's log.
    pub async fn start(sharder: &Path, options: &StackOptions) -> anyhow::Result<Self> {
        let replicas = options.sharder_replicas;
        if replicas > 1 && options.sharder.leader_election.is_none() {
            bail!("{replicas} sharder replicas need leader election");
        }
        let setup = match (&options.controller, options.webhosting) {
            (Some(setup), _) => Some(setup.clone()),
            (None, true) => Some(ControllerSetup::webhosting()),
            (None, false) => None,
        };
        let environment = if setup.is_some() {
            crate::environment()
        } else {
            testenv::Environment::new()
        };
        let control_plane = environment
            .keep_directory(options.keep_directory)
            .start()
            .await
            .context("cannot start the local control plane")?;
        let client = control_plane.client().await?;
        crate::install_sharding(&client).await?;
        if let Some(setup) = &setup {
            crate::install_manifests(&client, &setup.manifests, &setup.lease_namespace).await?;
        }
        if options.sharder.leader_election.is_some() {
            // The leader Lease's namespace, which the cluster's manifests create.
            crate::create_namespace(&client, kube_sharding::api::labels::SHARDER_NAMESPACE).await?;
        }
        let names: Vec<String> = if replicas > 1 {
            (0..replicas).map(|i| format!("sharder-{i}")).collect()
        } else {
            vec!["sharder".to_owned()]
        };
        let sharders = names
            .iter()
            .map(|name| {
                SharderProcess::start_replica(&control_plane, sharder, &options.sharder, name)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let sharders = Sharders::new(sharders);
        if let Some(setup) = &setup
            && let Err(error) = crate::wait_ring_ready(&client, &setup.ring, options.patience).await
        {
            sharders.check_alive()?;
            bail!(
                "{error:#}; the sharder's log ends with:\n{}",
                sharders.lock()[0].log_tail()
            );
        }
        Ok(Self {
            control_plane,
            client,
            sharders,
            operators: Operators::new(setup.map_or(WEBHOSTING_RING.to_owned(), |s| s.ring)),
            patience: options.patience,
            restarts: Mutex::default(),
        })
    }

    /// Starts a webhosting-operator replica from `binary` with `settings`; returns its process
    /// id.
    pub async fn start_operator(
        &self,
        binary: &Path,
        settings: &crate::OperatorSettings,
    ) -> anyhow::Result<u32> {
        self.operators
            .start(&self.control_plane, binary, settings)
            .await
    }

    /// Waits until every replica is ready and the ring counts `shards` available shards,
    /// failing early when the sharder or a replica exits.
    pub async fn wait_operators_ready(&self, shards: usize) -> anyhow::Result<()> {
        self.operators
            .wait_ready(&self.client, shards, self.patience, || {
                self.sharders.check_alive()
            })
            .await
    }

    /// Fails with the log of the first process of the stack that has exited.
    pub async fn check_alive(&self) -> anyhow::Result<()> {
        self.sharders.check_alive()?;
        self.operators
            .lock()
            .await
            .iter_mut()
            .try_for_each(crate::ControllerProcess::check_alive)
    }

    /// Restarts every process of the stack (the sharder's replicas and the shards) that exits,
    /// as `policy` says, until it is dropped; a process that the caller stops or takes out of
    /// [`Self::operators`] is not restarted. While it runs, [`Operators::wait_ready`] counts
    /// an exited shard as not ready rather than failing. Returns only with the error of a
    /// crash loop or of a restart that failed (docs/experiments.md#the-supervisor).
    pub async fn supervise(&self, policy: RestartPolicy) -> anyhow::Error {
        let _supervised = self.operators.supervised();
        let mut supervision = Supervision::default();
        let mut ticks = tokio::time::interval(SUPERVISOR_POLL);
        loop {
            ticks.tick().await;
            let now = Instant::now();
            let mut restarted = Vec::new();
            let sharders = self.sharders.lock().iter_mut().try_for_each(|replica| {
                let name = replica.name().to_owned();
                let count = supervision.poll(&policy, (&name, replica.child()), now)?;
                restarted.extend(count.map(|count| (name, count)));
                Ok(())
            });
            let operators = self
                .operators
                .lock()
                .await
                .iter_mut()
                .try_for_each(|shard| {
                    let name = shard.identity().to_owned();
                    let count = supervision.poll(&policy, (&name, shard.child()), now)?;
                    restarted.extend(count.map(|count| (name, count)));
                    Ok(())
                });
            self.restarts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(restarted);
            if let Err(error) = sharders.and(operators) {
                return error;
            }
        }
    }

    /// How often [`Self::supervise`] restarted each process, by name (`sharder-1`,
    /// `shard-2`); processes it never restarted are left out.
    #[must_use]
    pub fn restarts(&self) -> BTreeMap<String, usize> {
        self.restarts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the shards (together), then the sharder's replicas, gracefully, and then the
    /// control plane.
    pub async fn stop(self) {
        self.operators.stop_all().await;
        for mut replica in self.sharders.into_inner() {
            replica.stop().await;
        }
    }
}
