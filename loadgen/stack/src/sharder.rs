//! The sharder as child processes on loopback: one replica, or several that elect a leader.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use anyhow::Context as _;
use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::{Api, Client};
use kube_sharding::api::labels::{SHARDER_LEASE, SHARDER_NAMESPACE};
use testenv::ControlPlane;

use crate::process::{ChildProcess, Launch, delegate_to_child_process, free_port};

/// What the sharder is started with; the rest of its config is fixed for a local stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharderSettings {
    /// `controller.sharder.concurrentMoves` (docs/contract.md#sharder-behaviour; default 100).
    pub concurrent_moves: u32,
    /// `controller.sharder.syncPeriod` (docs/contract.md#sharder-behaviour; default 5 min).
    pub sync_period: Duration,
    /// `leaderElection`: `None` (the default) runs without, as one replica does; replicas
    /// that share the controllers need it.
    pub leader_election: Option<LeaderElection>,
}

impl Default for SharderSettings {
    fn default() -> Self {
        Self {
            concurrent_moves: 100,
            sync_period: Duration::from_secs(5 * 60),
            leader_election: None,
        }
    }
}

/// The timings of the sharder's leader election (`leaderElection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderElection {
    /// `leaseDuration`: how long a standby waits before it takes over from a silent leader.
    pub lease_duration: Duration,
    /// `renewDeadline`: how long the leader may fail to renew before it steps down.
    pub renew_deadline: Duration,
    /// `retryPeriod`: the wait between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl LeaderElection {
    /// Short timings for tests and experiments of failovers (docs/experiments.md#faults): a
    /// standby takes over 8 s after the leader's last renewal, and a leader that has not
    /// renewed for 5 s steps down, renewing every second. The sharder's defaults (15 s,
    /// 10 s, 2 s) would make each failover of a short run last twice as long.
    pub const SHORT: Self = Self {
        lease_duration: Duration::from_secs(8),
        renew_deadline: Duration::from_secs(5),
        retry_period: Duration::from_secs(1),
    };
}

/// The `sharder` binary running against a local control plane: webhook and metrics on
/// 127.0.0.1, leader election as its settings say. Dropping it kills it.
#[derive(Debug)]
pub struct SharderProcess {
    process: ChildProcess,
    webhook_port: u16,
    name: String,
}

impl SharderProcess {
    /// Starts the replica `sharder`: see [`Self::start_replica`].
    pub fn start(
        control_plane: &ControlPlane,
        binary: &Path,
        settings: &SharderSettings,
    ) -> anyhow::Result<Self> {
        Self::start_replica(control_plane, binary, settings, "sharder")
    }

    /// Writes the serving certificate (issued by the control plane's CA, which the API server
    /// trusts) into `<control plane directory>/sharder`, and the replica's config and log as
    /// `<name>.yaml` and `<name>.log` (so they are removed with the control plane), and starts
    /// it with `name` as the start of its leader-election identity.
    ///
    /// The API server reaches the webhook by `clientConfig.url` on loopback with the CA in
    /// `caBundleFile`, as for a sharder outside the cluster. Each replica has its own port and
    /// writes its own URL when it leads, so the webhook is the leader's.
    pub fn start_replica(
        control_plane: &ControlPlane,
        binary: &Path,
        settings: &SharderSettings,
        name: &str,
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
        let (config, log) = replica_files(&dir, name);
        write_file(
            &config,
            &sharder_config(&dir, webhook_port, metrics_port, settings),
        )?;
        let (binary, kubeconfig, identity) = (
            binary.to_owned(),
            control_plane.kubeconfig_path(),
            name.to_owned(),
        );
        let launch: Launch = Arc::new(move || {
            let mut command = tokio::process::Command::new(&binary);
            command
                .arg("--config")
                .arg(&config)
                .arg("--identity")
                .arg(&identity)
                .env("KUBECONFIG", &kubeconfig);
            command
        });
        let process =
            ChildProcess::spawn(format!("the sharder {name}"), launch, log, metrics_port)?;
        Ok(Self {
            process,
            webhook_port,
            name: name.to_owned(),
        })
    }

    /// The loopback port of its HTTPS webhook server, whose certificate the control plane's CA
    /// issued for `127.0.0.1`.
    #[must_use]
    pub fn webhook_port(&self) -> u16 {
        self.webhook_port
    }

    /// The replica's name, which its leader-election identity starts with.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    delegate_to_child_process!();

    pub(crate) fn child(&mut self) -> &mut ChildProcess {
        &mut self.process
    }
}

/// The sharder's replicas on a stack.
#[derive(Debug)]
pub struct Sharders {
    processes: Mutex<Vec<SharderProcess>>,
}

impl Sharders {
    /// These replicas.
    #[must_use]
    pub fn new(processes: Vec<SharderProcess>) -> Self {
        Self {
            processes: Mutex::new(processes),
        }
    }

    /// The replicas, locked; nothing that waits may hold them.
    pub fn lock(&self) -> MutexGuard<'_, Vec<SharderProcess>> {
        self.processes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The replicas, for their owner alone.
    #[must_use]
    pub fn into_inner(self) -> Vec<SharderProcess> {
        self.processes
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The `/metrics` of every replica that answers, by name; a paused replica does not.
    pub async fn scrape(&self) -> Vec<(String, String)> {
        let ports: Vec<(String, u16)> = self
            .lock()
            .iter()
            .filter(|replica| !replica.process.paused())
            .map(|replica| (replica.name.clone(), replica.process.metrics_port()))
            .collect();
        let mut scrapes = Vec::new();
        for (name, port) in ports {
            if let Ok((200, body)) = crate::metrics::get(port, "/metrics").await {
                scrapes.push((name, body));
            }
        }
        scrapes
    }

    /// Fails, quoting the end of its log, when a replica has exited.
    pub fn check_alive(&self) -> anyhow::Result<()> {
        self.lock()
            .iter_mut()
            .try_for_each(SharderProcess::check_alive)
    }

    /// The name of the replica that leads: the holder of the sharder's leader Lease
    /// (`sharding-system/sharder`) while it is valid.
    ///
    /// # Errors
    /// The Lease cannot be read, is not held, or names no replica of these.
    pub async fn leader(&self, client: &Client) -> anyhow::Result<String> {
        let lease = Api::<Lease>::namespaced(client.clone(), SHARDER_NAMESPACE)
            .get(SHARDER_LEASE)
            .await
            .with_context(|| {
                format!(
                    "cannot read the sharder's leader Lease {SHARDER_NAMESPACE}/{SHARDER_LEASE}"
                )
            })?;
        let name = leader_of(&lease, Timestamp::now())
            .context("no sharder replica holds the leader Lease")?;
        anyhow::ensure!(
            self.lock().iter().any(|replica| replica.name() == name),
            "the leader Lease names {name}, which is not a replica of this stack"
        );
        Ok(name)
    }
}

/// The replica name of the holder of the leader Lease `lease` at `now`, if it is held and not
/// expired: its identity is the name, `_` and a UUID new at every start (the sharder's
/// `--identity`).
#[must_use]
pub fn leader_of(lease: &Lease, now: Timestamp) -> Option<String> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty())?;
    let renewed = spec.renew_time.as_ref()?.0;
    let duration = spec.lease_duration_seconds?;
    if renewed + Duration::from_secs(u64::try_from(duration).ok()?) <= now {
        return None;
    }
    let name = holder.rsplit_once('_').map_or(holder, |(name, _)| name);
    Some(name.to_owned())
}

fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// The SharderConfig: webhook and metrics on loopback, no health endpoint, leader election
/// as `settings` say.
fn sharder_config(
    dir: &Path,
    webhook_port: u16,
    metrics_port: u16,
    settings: &SharderSettings,
) -> String {
    let dir = dir.display();
    let moves = settings.concurrent_moves;
    // Go durations; milliseconds keep any setting a test would use exact.
    let sync_period = settings.sync_period.as_millis();
    let election = match settings.leader_election {
        None => "leaderElect: false".to_owned(),
        Some(election) => format!(
            "leaderElect: true\n  leaseDuration: {}ms\n  renewDeadline: {}ms\n  retryPeriod: {}ms",
            election.lease_duration.as_millis(),
            election.renew_deadline.as_millis(),
            election.retry_period.as_millis()
        ),
    };
    format!(
        r"apiVersion: config.sharding.timebertt.dev/v1alpha1
kind: SharderConfig
leaderElection:
  {election}
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

/// A replica's config and log in the sharder's directory `dir`.
fn replica_files(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.yaml")),
        dir.join(format!("{name}.log")),
    )
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::coordination::v1::LeaseSpec, apimachinery::pkg::apis::meta::v1::MicroTime,
    };

    use super::*;

    #[test]
    fn the_sharder_config_is_on_loopback_without_leader_election() {
        let settings = SharderSettings {
            concurrent_moves: 7,
            sync_period: Duration::from_secs(30),
            leader_election: None,
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
    fn replicas_elect_a_leader_with_the_given_timings() {
        let settings = SharderSettings {
            leader_election: Some(LeaderElection::SHORT),
            ..SharderSettings::default()
        };
        let config = sharder_config(Path::new("/tmp/x"), 9443, 8080, &settings);
        assert!(
            config.contains(
                "leaderElection:\n  leaderElect: true\n  leaseDuration: 8000ms\n  \
                 renewDeadline: 5000ms\n  retryPeriod: 1000ms\nhealth:"
            ),
            "{config}"
        );
    }

    #[test]
    fn the_default_settings_are_the_sharders_defaults() {
        let settings = SharderSettings::default();
        assert_eq!(settings.concurrent_moves, 100);
        assert_eq!(settings.sync_period, Duration::from_secs(300));
        assert_eq!(settings.leader_election, None);
    }

    fn lease(holder: Option<&str>, renewed: i64, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(Into::into),
                renew_time: Some(MicroTime(Timestamp::from_second(renewed).unwrap())),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn the_leader_is_the_replica_named_by_a_valid_lease() {
        let now = Timestamp::from_second(1000).unwrap();
        let uuid = "sharder-1_4f1c2d3e-0000-4000-8000-000000000000";
        assert_eq!(
            leader_of(&lease(Some(uuid), 995, 8), now).as_deref(),
            Some("sharder-1")
        );
        assert_eq!(leader_of(&lease(Some(uuid), 992, 8), now), None, "expired");
        assert_eq!(leader_of(&lease(None, 999, 8), now), None, "released");
        assert_eq!(leader_of(&lease(Some(""), 999, 8), now), None, "released");
        assert_eq!(
            leader_of(&lease(Some("plain"), 999, 8), now).as_deref(),
            Some("plain")
        );
        assert_eq!(leader_of(&Lease::default(), now), None);
    }

    #[test]
    fn each_replica_has_its_own_config_and_log() {
        let (config, log) = replica_files(Path::new("/cp/sharder"), "sharder-1");
        assert_eq!(config, Path::new("/cp/sharder/sharder-1.yaml"));
        assert_eq!(log, Path::new("/cp/sharder/sharder-1.log"));
    }
}
