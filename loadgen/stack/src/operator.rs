//! A webhosting-operator replica (a shard or the singleton) as a child process on loopback.

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration,
};

use testenv::ControlPlane;

use crate::{
    ControllerProcess, ShardCommand,
    install::OPERATOR_NAMESPACE,
    process::{delegate_to_child_process, free_port},
};

/// Where the operator answers 200 once it holds its Lease and its caches are synced.
const READY_PATH: &str = "/readyz";

/// How one operator replica runs (its flags, see `webhosting-operator --help`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorSettings {
    /// The shard name (and shard Lease name), or the singleton's leader-election identity.
    pub identity: String,
    /// `--mode singleton`: one leader-elected replica reconciles every Website. Otherwise a
    /// shard of the ring `webhosting-operator`.
    pub singleton: bool,
    /// Concurrent reconciliations (`--workers`).
    pub workers: u16,
    /// A wait in every reconciliation (`--simulated-work`).
    pub simulated_work: Duration,
    /// Validity of the shard or leader Lease (`--lease-duration`; whole seconds, at least 2).
    pub lease_duration: Duration,
    /// Where it appends a JSON line per reconciliation start and end (`--audit-file`).
    pub audit_file: Option<PathBuf>,
}

impl Default for OperatorSettings {
    /// The operator's own defaults, as shard `shard-0`.
    fn default() -> Self {
        Self {
            identity: "shard-0".to_owned(),
            singleton: false,
            workers: 5,
            simulated_work: Duration::ZERO,
            lease_duration: Duration::from_secs(15),
            audit_file: None,
        }
    }
}

impl OperatorSettings {
    /// A shard named `identity`, otherwise with the operator's defaults.
    #[must_use]
    pub fn sharded(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            ..Self::default()
        }
    }

    /// The singleton with identity `identity`, otherwise with the operator's defaults.
    #[must_use]
    pub fn singleton(identity: impl Into<String>) -> Self {
        Self {
            singleton: true,
            ..Self::sharded(identity)
        }
    }

    /// How `binary` runs with these settings on the given loopback ports, ready on `/readyz`.
    #[must_use]
    pub fn command(&self, binary: &Path, metrics_port: u16, health_port: u16) -> ShardCommand {
        ShardCommand {
            identity: self.identity.clone(),
            program: binary.to_owned(),
            args: self.args(metrics_port, health_port),
            env: Vec::new(),
            metrics_port,
            health_port,
            ready_path: Some(READY_PATH.to_owned()),
        }
    }

    /// The flags for these settings and the given loopback ports.
    fn args(&self, metrics_port: u16, health_port: u16) -> Vec<OsString> {
        let mode = if self.singleton {
            "singleton"
        } else {
            "sharded"
        };
        let mut args: Vec<OsString> = [
            "--mode".to_owned(),
            mode.to_owned(),
            "--identity".to_owned(),
            self.identity.clone(),
            "--namespace".to_owned(),
            OPERATOR_NAMESPACE.to_owned(),
            "--workers".to_owned(),
            self.workers.to_string(),
            "--simulated-work".to_owned(),
            format!("{}ms", self.simulated_work.as_millis()),
            "--lease-duration".to_owned(),
            format!("{}s", self.lease_duration.as_secs()),
            "--metrics-address".to_owned(),
            format!("127.0.0.1:{metrics_port}"),
            "--health-address".to_owned(),
            format!("127.0.0.1:{health_port}"),
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        if let Some(audit_file) = &self.audit_file {
            args.push("--audit-file".into());
            args.push(audit_file.into());
        }
        args
    }
}

/// A `webhosting-operator` replica running against a local control plane, with `/metrics`
/// and `/healthz`, `/readyz` on free loopback ports: a [`ControllerProcess`] started from
/// [`OperatorSettings::command`]. Dropping it kills it.
#[derive(Debug)]
pub struct OperatorProcess {
    process: ControllerProcess,
}

impl OperatorProcess {
    /// Starts a replica with the control plane's admin kubeconfig (`KUBECONFIG`), `RUST_LOG`
    /// from the environment or `info`, and its output appended to
    /// `<control plane directory>/operators/<identity>.log`.
    ///
    /// It needs [`install_webhosting`](crate::install_webhosting) first: without the
    /// namespace of its Lease it fails at once.
    pub fn start(
        control_plane: &ControlPlane,
        binary: &Path,
        settings: &OperatorSettings,
    ) -> anyhow::Result<Self> {
        let command = settings.command(binary, free_port()?, free_port()?);
        Ok(Self {
            process: ControllerProcess::start(control_plane, &command)?,
        })
    }

    /// Its identity: the shard name, or the singleton's leader-election identity.
    #[must_use]
    pub fn identity(&self) -> &str {
        self.process.identity()
    }

    /// The loopback port of its `/healthz` and `/readyz`.
    #[must_use]
    pub fn health_port(&self) -> u16 {
        self.process.health_port()
    }

    /// Whether `/readyz` answers 200: it holds its Lease (or leads) and its caches are synced.
    pub async fn ready(&self) -> bool {
        self.process.ready().await
    }

    delegate_to_child_process!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(settings: &OperatorSettings) -> Vec<String> {
        settings
            .args(8080, 8081)
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect()
    }

    #[test]
    fn a_shard_gets_its_identity_and_loopback_addresses() {
        let args = flags(&OperatorSettings::sharded("shard-1"));
        assert_eq!(
            args,
            [
                "--mode",
                "sharded",
                "--identity",
                "shard-1",
                "--namespace",
                "webhosting-system",
                "--workers",
                "5",
                "--simulated-work",
                "0ms",
                "--lease-duration",
                "15s",
                "--metrics-address",
                "127.0.0.1:8080",
                "--health-address",
                "127.0.0.1:8081",
            ]
        );
    }

    #[test]
    fn a_singleton_passes_its_mode_work_and_audit_file() {
        let settings = OperatorSettings {
            workers: 2,
            simulated_work: Duration::from_millis(250),
            lease_duration: Duration::from_secs(4),
            audit_file: Some(PathBuf::from("/tmp/audit.jsonl")),
            ..OperatorSettings::singleton("single")
        };
        let args = flags(&settings).join(" ");
        for expected in [
            "--mode singleton",
            "--identity single",
            "--workers 2",
            "--simulated-work 250ms",
            "--lease-duration 4s",
            "--audit-file /tmp/audit.jsonl",
        ] {
            assert!(args.contains(expected), "{expected:?} not in {args}");
        }
    }
}
