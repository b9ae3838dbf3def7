//! A shard of any controller under test as a child process on loopback: the program, its
//! arguments and environment are the caller's, the ports are free ones it was given.

use std::{ffi::OsString, path::PathBuf, sync::Arc};

use testenv::ControlPlane;

use crate::{
    metrics,
    process::{ChildProcess, Launch, delegate_to_child_process},
};

/// How one shard is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardCommand {
    /// The shard name (its Lease's name), or a singleton's identity; names its log file.
    pub identity: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Environment variables besides `KUBECONFIG` and `RUST_LOG`, which are set unless given
    /// here.
    pub env: Vec<(OsString, OsString)>,
    /// The loopback port its `/metrics` is served on, as its arguments say.
    pub metrics_port: u16,
    /// The loopback port of its health endpoints, as its arguments say.
    pub health_port: u16,
    /// The path on `health_port` that answers 200 once the shard is ready (`/readyz`); `None`
    /// when it has none, and then it counts as ready while it runs.
    pub ready_path: Option<String>,
}

/// A controller shard running against a local control plane. Dropping it kills it.
#[derive(Debug)]
pub struct ControllerProcess {
    process: ChildProcess,
    identity: String,
    health_port: u16,
    ready_path: Option<String>,
}

impl ControllerProcess {
    /// Starts `command` with the control plane's admin kubeconfig (`KUBECONFIG`), `RUST_LOG`
    /// from the environment or `info`, and its output appended to
    /// `<control plane directory>/operators/<identity>.log`.
    ///
    /// # Errors
    /// The program cannot be started.
    pub fn start(control_plane: &ControlPlane, command: &ShardCommand) -> anyhow::Result<Self> {
        let kubeconfig = control_plane.kubeconfig_path();
        let shard = command.clone();
        let launch: Launch = Arc::new(move || {
            let mut process = tokio::process::Command::new(&shard.program);
            process.args(&shard.args).env("KUBECONFIG", &kubeconfig);
            if std::env::var_os("RUST_LOG").is_none() {
                process.env("RUST_LOG", "info");
            }
            process.envs(shard.env.iter().map(|(name, value)| (name, value)));
            process
        });
        let log = control_plane
            .directory()
            .join("operators")
            .join(format!("{}.log", command.identity));
        let process = ChildProcess::spawn(
            format!("shard {}", command.identity),
            launch,
            log,
            command.metrics_port,
        )?;
        Ok(Self {
            process,
            identity: command.identity.clone(),
            health_port: command.health_port,
            ready_path: command.ready_path.clone(),
        })
    }

    /// Its identity: the shard name, or a singleton's leader-election identity.
    #[must_use]
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The loopback port of its health endpoints.
    #[must_use]
    pub fn health_port(&self) -> u16 {
        self.health_port
    }

    /// Whether its ready path answers 200; always true without one (then the ring's count of
    /// available shards is what tells that it is ready); never while it is paused.
    pub async fn ready(&self) -> bool {
        if self.process.paused() {
            return false;
        }
        match &self.ready_path {
            Some(path) => matches!(metrics::get(self.health_port, path).await, Ok((200, _))),
            None => true,
        }
    }

    delegate_to_child_process!();

    pub(crate) fn child(&mut self) -> &mut ChildProcess {
        &mut self.process
    }
}
