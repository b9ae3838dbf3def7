//! One start-up for every local stack: the control plane, the APIs and the sharder, ready for
//! operator replicas.

use std::{path::Path, time::Duration};

use anyhow::{Context as _, bail};
use kube::Client;
use testenv::ControlPlane;

use crate::{Operators, SharderProcess, SharderSettings, WEBHOSTING_RING};

/// What [`Stack::start`] starts.
#[derive(Debug, Clone)]
#[must_use]
pub struct StackOptions {
    webhosting: bool,
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

    /// How long the sharder's ring and the operators may take to become ready.
    pub fn patience(self, patience: Duration) -> Self {
        Self { patience, ..self }
    }
}

/// A running local stack: a control plane, the sharder, and the operator replicas started
/// on it. Dropping it kills every process and removes the control plane.
pub struct Stack {
    /// The control plane.
    pub control_plane: ControlPlane,
    /// A client of its API server.
    pub client: Client,
    /// The sharder.
    pub sharder: SharderProcess,
    /// The operator replicas, none at first.
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
    /// with the webhosting APIs, waits until the ring `webhosting-operator` is ready.
    ///
    /// # Errors
    /// Something does not start, or the ring is not ready in time: then the error quotes the
    /// end of the sharder's log.
    pub async fn start(sharder: &Path, options: &StackOptions) -> anyhow::Result<Self> {
        let environment = if options.webhosting {
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
        if options.webhosting {
            crate::install_webhosting(&client).await?;
        }
        let mut sharder = SharderProcess::start(&control_plane, sharder, &options.sharder)?;
        if options.webhosting
            && let Err(error) =
                crate::wait_ring_ready(&client, WEBHOSTING_RING, options.patience).await
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
            operators: Operators::default(),
            patience: options.patience,
        })
    }

    /// Starts an operator replica from `binary` with `settings`; returns its process id.
    pub async fn start_operator(
        &self,
        binary: &Path,
        settings: &crate::OperatorSettings,
    ) -> anyhow::Result<u32> {
        self.operators
            .start(&self.control_plane, binary, settings)
            .await
    }

    /// Waits until every operator replica is ready and the ring counts `shards` available
    /// shards, failing early when the sharder or a replica exits.
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
            .try_for_each(crate::OperatorProcess::check_alive)
    }

    /// Stops the operators (together), then the sharder, gracefully, and then the control
    /// plane.
    pub async fn stop(mut self) {
        self.operators.stop_all().await;
        self.sharder.stop().await;
    }
}
