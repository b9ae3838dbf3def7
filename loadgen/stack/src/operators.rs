//! The shards of the controller under test on a stack, started, waited for and stopped
//! together.

use std::{
    path::Path,
    process::ExitStatus,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Context as _, bail};
use kube::{Api, Client};
use kube_sharding::api::ControllerRing;
use testenv::ControlPlane;
use tokio::{
    sync::{Mutex, MutexGuard},
    time::Instant,
};

use crate::{ControllerProcess, OperatorSettings, ShardCommand, free_port};

/// How often readiness is polled.
const POLL: Duration = Duration::from_millis(200);

/// A replica that did not exit cleanly when stopped.
#[derive(Debug)]
pub struct UncleanExit {
    /// Its identity.
    pub identity: String,
    /// How it exited, if that could be observed.
    pub status: Option<ExitStatus>,
    /// The end of its log.
    pub log_tail: String,
}

/// Running replicas of the controller under test (shards or a singleton) in the ring
/// [`Operators::ring`]. Shared: a replica can be started, taken out or killed while another
/// task waits for the ring.
#[derive(Debug)]
pub struct Operators {
    ring: String,
    processes: Mutex<Vec<ControllerProcess>>,
    /// Whether a supervisor restarts replicas that exit ([`crate::Stack::supervise`]).
    supervised: AtomicBool,
}

/// Marks [`Operators`] supervised while it lives.
pub(crate) struct Supervised<'a>(&'a AtomicBool);

impl Drop for Supervised<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

impl Operators {
    /// No replicas yet, of the ring `ring`.
    #[must_use]
    pub fn new(ring: impl Into<String>) -> Self {
        Self {
            ring: ring.into(),
            processes: Mutex::default(),
            supervised: AtomicBool::new(false),
        }
    }

    /// Marks the replicas supervised until the returned guard is dropped.
    pub(crate) fn supervised(&self) -> Supervised<'_> {
        self.supervised.store(true, Ordering::Relaxed);
        Supervised(&self.supervised)
    }

    /// The ControllerRing whose available shards [`Self::wait_ready`] counts.
    #[must_use]
    pub fn ring(&self) -> &str {
        &self.ring
    }

    /// Starts a webhosting-operator replica with `settings` and adds it; returns its process
    /// id.
    pub async fn start(
        &self,
        control_plane: &ControlPlane,
        binary: &Path,
        settings: &OperatorSettings,
    ) -> anyhow::Result<u32> {
        let command = settings.command(binary, free_port()?, free_port()?);
        self.start_command(control_plane, &command).await
    }

    /// Starts a replica from `command` and adds it; returns its process id.
    pub async fn start_command(
        &self,
        control_plane: &ControlPlane,
        command: &ShardCommand,
    ) -> anyhow::Result<u32> {
        let process = ControllerProcess::start(control_plane, command)?;
        let pid = process.pid();
        self.processes.lock().await.push(process);
        Ok(pid)
    }

    /// The replicas, locked.
    pub async fn lock(&self) -> MutexGuard<'_, Vec<ControllerProcess>> {
        self.processes.lock().await
    }

    /// The identities of the replicas, in the order they were started.
    pub async fn identities(&self) -> Vec<String> {
        self.lock()
            .await
            .iter()
            .map(|p| p.identity().to_owned())
            .collect()
    }

    /// Removes replica `identity` and hands it over, still running.
    pub async fn take(&self, identity: &str) -> anyhow::Result<ControllerProcess> {
        let mut processes = self.lock().await;
        let index = processes
            .iter()
            .position(|p| p.identity() == identity)
            .with_context(|| format!("no shard {identity} runs"))?;
        Ok(processes.swap_remove(index))
    }

    /// Waits until every replica is ready (its ready path answers 200) and the ring counts
    /// `shards` available shards (so that the first Websites do not all go to the first
    /// shards). Calls `alive` before each poll, as [`wait_for`](crate::wait_for) does. While a
    /// supervisor restarts exited replicas, an exited one is only not ready.
    ///
    /// # Errors
    /// A replica exited unsupervised (with its log), `alive` fails, or `patience` runs out.
    pub async fn wait_ready(
        &self,
        client: &Client,
        shards: usize,
        patience: Duration,
        mut alive: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let rings = Api::<ControllerRing>::all(client.clone());
        let deadline = Instant::now() + patience;
        loop {
            alive()?;
            let mut not_ready = Vec::new();
            // Locked for one poll only, so that a kill or a new shard need not wait.
            let supervised = self.supervised.load(Ordering::Relaxed);
            for process in self.lock().await.iter_mut() {
                if !supervised {
                    process.check_alive()?;
                }
                if process.exit_status().is_some() || !process.ready().await {
                    not_ready.push(process.identity().to_owned());
                }
            }
            let ring = rings
                .get(&self.ring)
                .await
                .with_context(|| format!("cannot read ControllerRing {}", self.ring))?;
            let available = ring.status.map_or(0, |s| s.available_shards);
            if not_ready.is_empty() && usize::try_from(available).ok() == Some(shards) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "the shards were not ready within {patience:?}: not ready: [{}], the \
                     ring {} counts {available} of {shards} shards available",
                    not_ready.join(", "),
                    self.ring
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops every replica gracefully, all at once: stopped one by one, each leaving shard
    /// would hand its Websites to those still running. Returns the replicas that did not exit
    /// cleanly.
    pub async fn stop_all(&self) -> Vec<UncleanExit> {
        let mut processes = std::mem::take(&mut *self.lock().await);
        let statuses =
            futures::future::join_all(processes.iter_mut().map(ControllerProcess::stop)).await;
        processes
            .iter()
            .zip(statuses)
            .filter(|(_, status)| !status.is_some_and(|s| s.success()))
            .map(|(process, status)| UncleanExit {
                identity: process.identity().to_owned(),
                status,
                log_tail: process.log_tail(),
            })
            .collect()
    }
}
