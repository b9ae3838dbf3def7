//! Sharder replicas as processes of the sharder binary, for tests of leadership.

use std::{
    path::{Path, PathBuf},
    process::ExitStatus,
    time::Duration,
};

use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::{Api, Client, ResourceExt as _, api::ListParams};
use kube_sharding::{api::labels, shard::ShardLeaseHandle};
use sharder::controller::WRITE_LOG_TARGET;
use testenv::ControlPlane;

use crate::{eventually, namespace_and_ring, shard, sharder_yaml, spawn_logged};

/// Shards that leave around a disturbance of the leader: each gives it something to write.
pub const LEAVING: [&str; 4] = ["shard-1", "shard-2", "shard-3", "shard-4"];

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
        let child = spawn_logged(
            tokio::process::Command::new(env!("CARGO_BIN_EXE_sharder"))
                .arg("--config")
                .arg(&config)
                .arg("--identity")
                .arg(name)
                .env("RUST_LOG", format!("info,{WRITE_LOG_TARGET}=debug"))
                .env("NO_COLOR", "1"),
            &log,
        );
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

/// The holder of the sharder's leader Lease and its acquireTime, if it has both.
pub async fn leader(client: &Client) -> Option<(String, Timestamp)> {
    let spec = Api::<Lease>::namespaced(client.clone(), labels::SHARDER_NAMESPACE)
        .get_opt(labels::SHARDER_LEASE)
        .await
        .ok()??
        .spec?;
    Some((spec.holder_identity?, spec.acquire_time?.0))
}

/// Waits until the replica whose identity starts with `name` leads.
pub async fn leads(client: &Client, name: &str) {
    let prefix = format!("{name}_");
    eventually(&format!("{name} to lead"), || async {
        leader(client).await?.0.starts_with(&prefix).then_some(())
    })
    .await;
}

/// A ring with a live shard `shard-0` and the [`LEAVING`] shards, all labelled ready by the
/// leader: the ring's name, the Leases of the live shard and of the leaving ones, and an API
/// of the ring's Leases.
pub async fn ring_with_shards(
    client: &Client,
) -> (String, ShardLeaseHandle, Vec<ShardLeaseHandle>, Api<Lease>) {
    let ring = namespace_and_ring(client).await;
    let live = shard(client, &ring, "shard-0", 4).await;
    let mut leaving = Vec::new();
    for name in LEAVING {
        leaving.push(shard(client, &ring, name, 4).await);
    }
    let shard_leases = Api::<Lease>::namespaced(client.clone(), &ring);
    eventually("the leader to label the shards ready", || async {
        (ready_shards(&shard_leases).await? == 1 + LEAVING.len()).then_some(())
    })
    .await;
    (ring, live, leaving, shard_leases)
}

/// How many of the shard Leases in `leases` the sharder labels ready.
pub async fn ready_shards(leases: &Api<Lease>) -> Option<usize> {
    let leases = leases.list(&ListParams::default()).await.ok()?.items;
    Some(
        leases
            .iter()
            .filter(|l| l.labels().get(labels::STATE).map(String::as_str) == Some("ready"))
            .count(),
    )
}
