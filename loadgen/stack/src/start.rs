//! One start-up for every local stack: the control plane, the APIs and the sharder, ready for
//! the shards of the controller under test.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, bail};
use kube::Client;
use testenv::ControlPlane;

use crate::{
    Manifest, OPERATOR_NAMESPACE, Operators, SharderProcess, SharderSettings, WEBHOSTING_RING,
};

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
    patience: Duration,
}

impl Default for StackOptions {
    /// The webhosting stack with the sharder's defaults, its directory removed at the end,
    /// two minutes to become ready.
    fn default() -> Self {
        Self {
            webhosting: true,
            controller: None,
            keep_directory: false,
            sharder: SharderSettings::default(),
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
    /// The sharder.
    pub sharder: SharderProcess,
    /// The shards of the controller under test, none at first.
    pub operators: Operators,
    patience: Duration,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("control_plane", &self.control_plane)
            .field("sharder", &self.sharder)
            .field("operators", &self.operators)
            .finish_non_exhaustive()
    }
}

impl Stack {
    /// Starts the control plane, installs the APIs, starts the sharder from `sharder` and,
    /// with a controller under test (the webhosting-operator by default), waits until its ring
    /// is ready.
    ///
    /// # Errors
    /// Something does not start, or the ring is not ready in time: then the error quotes the
    /// end of the sharder's log.
    pub async fn start(sharder: &Path, options: &StackOptions) -> anyhow::Result<Self> {
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
        let mut sharder = SharderProcess::start(&control_plane, sharder, &options.sharder)?;
        if let Some(setup) = &setup
            && let Err(error) = crate::wait_ring_ready(&client, &setup.ring, options.patience).await
        {
            sharder.check_alive()?;
            bail!(
                "{error:#}; the sharder's log ends with:\n{}",
                sharder.log_tail()
            );
        }
        Ok(Self {
            control_plane,
            client,
            sharder,
            operators: Operators::new(setup.map_or(WEBHOSTING_RING.to_owned(), |s| s.ring)),
            patience: options.patience,
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
    pub async fn wait_operators_ready(&mut self, shards: usize) -> anyhow::Result<()> {
        let sharder = &mut self.sharder;
        self.operators
            .wait_ready(&self.client, shards, self.patience, || {
                sharder.check_alive()
            })
            .await
    }

    /// Fails with the log of the first process of the stack that has exited.
    pub async fn check_alive(&mut self) -> anyhow::Result<()> {
        self.sharder.check_alive()?;
        self.operators
            .lock()
            .await
            .iter_mut()
            .try_for_each(crate::ControllerProcess::check_alive)
    }

    /// Stops the shards (together), then the sharder, gracefully, and then the control plane.
    pub async fn stop(mut self) {
        self.operators.stop_all().await;
        self.sharder.stop().await;
    }
}
