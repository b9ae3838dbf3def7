//! Sharder replicas as processes of the sharder binary, for tests of leadership.

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;
use sharder::controller::WRITE_LOG_TARGET;
use testenv::ControlPlane;

use crate::sharder_yaml;

/// The leader Lease: 4 s, given up 2 s after the last renewal's start, renewed every 500 ms.
const LEADER_ELECTION: &str =
    "leaderElect: true, leaseDuration: 4s, renewDeadline: 2s, retryPeriod: 500ms";

/// A sharder binary with leader election, logging its writes; killed when dropped, also when
/// stopped (SIGKILL ends a stopped process).
pub struct Replica {
    child: tokio::process::Child,
    pub log: PathBuf,
}

impl Replica {
    /// Starts replica `name`, reaching the API server through `kubeconfig`.
    pub fn start(control_plane: &ControlPlane, name: &str, kubeconfig: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let yaml = sharder_yaml(
            control_plane,
            name,
            Duration::from_secs(300),
            port,
            kubeconfig,
            LEADER_ELECTION,
        );
        let dir = control_plane.directory().join(format!("sharder-{name}"));
        let config = dir.join("sharder.yaml");
        std::fs::write(&config, yaml).unwrap();
        let log = dir.join("sharder.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sharder"))
            .arg("--config")
            .arg(&config)
            .arg("--identity")
            .arg(name)
            .env("RUST_LOG", format!("info,{WRITE_LOG_TARGET}=debug"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("not reaped yet").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// How it exited, once it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

/// The times of the writes a sharder's log shows it sending (`writing` on
/// [`WRITE_LOG_TARGET`]), with their lines.
pub fn writes(log: &Path) -> Vec<(Timestamp, String)> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter(|line| line.contains(WRITE_LOG_TARGET) && line.contains(" writing "))
        .map(|line| {
            let time = line.split_whitespace().next().unwrap();
            (
                time.parse()
                    .unwrap_or_else(|e| panic!("time of {line:?}: {e}")),
                line.to_owned(),
            )
        })
        .collect()
}
