//! The sharder as a child process on loopback.

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use testenv::ControlPlane;

use crate::process::{ChildProcess, delegate_to_child_process, free_port};

/// What the sharder is started with; the rest of its config is fixed for a local stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharderSettings {
    /// `controller.sharder.concurrentMoves` (docs/contract.md#sharder-behaviour; default 100).
    pub concurrent_moves: u32,
    /// `controller.sharder.syncPeriod` (docs/contract.md#sharder-behaviour; default 5 min).
    pub sync_period: Duration,
}

impl Default for SharderSettings {
    fn default() -> Self {
        Self {
            concurrent_moves: 100,
            sync_period: Duration::from_secs(5 * 60),
        }
    }
}

/// The `sharder` binary running against a local control plane: webhook and metrics on
/// 127.0.0.1, no leader election. Dropping it kills it.
#[derive(Debug)]
pub struct SharderProcess {
    process: ChildProcess,
    webhook_port: u16,
}

impl SharderProcess {
    /// Writes its serving certificate (issued by the control plane's CA, which the API server
    /// trusts), its config and its log into `<control plane directory>/sharder` (so they are
    /// removed with the control plane), and starts it.
    ///
    /// The API server reaches the webhook by `clientConfig.url` on loopback with the CA in
    /// `caBundleFile`, as for a sharder outside the cluster.
    pub fn start(
        control_plane: &ControlPlane,
        binary: &Path,
        settings: &SharderSettings,
    ) -> anyhow::Result<Self> {
        let dir = control_plane.directory().join("sharder");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let ca = control_plane.certificate_authority();
        let serving = ca.issue_serving(&["127.0.0.1"])?;
        write_file(&dir.join("tls.crt"), &serving.cert_pem)?;
        write_file(&dir.join("tls.key"), &serving.key_pem)?;
        write_file(&dir.join("ca.crt"), ca.cert_pem())?;
        let webhook_port = free_port()?;
        let metrics_port = free_port()?;
        let config = dir.join("sharder.yaml");
        write_file(
            &config,
            &sharder_config(&dir, webhook_port, metrics_port, settings),
        )?;
        let mut command = tokio::process::Command::new(binary);
        command
            .arg("--config")
            .arg(&config)
            .env("KUBECONFIG", control_plane.kubeconfig_path());
        let process = ChildProcess::spawn(
            "the sharder".to_owned(),
            command,
            dir.join("sharder.log"),
            metrics_port,
        )?;
        Ok(Self {
            process,
            webhook_port,
        })
    }

    /// The loopback port of its HTTPS webhook server, whose certificate the control plane's CA
    /// issued for `127.0.0.1`.
    #[must_use]
    pub fn webhook_port(&self) -> u16 {
        self.webhook_port
    }

    delegate_to_child_process!();
}

fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// The SharderConfig: webhook and metrics on loopback, no health endpoint, no leader
/// election (there is one replica).
fn sharder_config(
    dir: &Path,
    webhook_port: u16,
    metrics_port: u16,
    settings: &SharderSettings,
) -> String {
    let dir = dir.display();
    let moves = settings.concurrent_moves;
    // A Go duration; milliseconds keep any setting a test would use exact.
    let sync_period = settings.sync_period.as_millis();
    format!(
        r"apiVersion: config.sharding.timebertt.dev/v1alpha1
kind: SharderConfig
leaderElection:
  leaderElect: false
health:
  bindAddress: '0'
metrics:
  bindAddress: 127.0.0.1:{metrics_port}
  # Scraped over plain HTTP on loopback (docs/metrics-security.md#defaults).
  secureServing: false
controller:
  sharder:
    concurrentMoves: {moves}
    syncPeriod: {sync_period}ms
webhook:
  server:
    bindAddress: 127.0.0.1:{webhook_port}
    certDir: {dir}
  config:
    clientConfig:
      url: https://127.0.0.1:{webhook_port}/
    caBundleFile: {dir}/ca.crt
gracefulShutDown: 5s
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sharder_config_is_on_loopback_without_leader_election() {
        let settings = SharderSettings {
            concurrent_moves: 7,
            sync_period: Duration::from_secs(30),
        };
        let config = sharder_config(Path::new("/tmp/x"), 9443, 8080, &settings);
        assert!(config.contains("leaderElect: false"));
        assert!(config.contains("url: https://127.0.0.1:9443/"));
        assert!(config.contains("bindAddress: 127.0.0.1:8080"));
        assert!(config.contains("secureServing: false"));
        assert!(config.contains("concurrentMoves: 7"));
        assert!(config.contains("syncPeriod: 30000ms"));
        assert!(config.contains("caBundleFile: /tmp/x/ca.crt"));
    }

    #[test]
    fn the_default_settings_are_the_sharders_defaults() {
        let settings = SharderSettings::default();
        assert_eq!(settings.concurrent_moves, 100);
        assert_eq!(settings.sync_period, Duration::from_secs(300));
    }
}
