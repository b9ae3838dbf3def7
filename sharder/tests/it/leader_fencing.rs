//! A leader paused past its Lease (SIGSTOP) and resumed (SIGCONT) writes nothing: the other
//! replica has taken over, and the old one steps down (docs/sharder.md#leadership).

use std::{
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::{Api, ResourceExt as _, api::ListParams};
use sharder::controller::WRITE_LOG_TARGET;
use sharding::api::labels;
use testenv::ControlPlane;

use crate::{eventually, leader_election_control_plane, namespace_and_ring, shard, sharder_yaml};

/// The leader Lease: 4 s, given up 2 s after the last renewal's start, renewed every 500 ms.
const LEADER_ELECTION: &str =
    "leaderElect: true, leaseDuration: 4s, renewDeadline: 2s, retryPeriod: 500ms";

/// Long enough for the other replica to take over and for the paused one's cached shard
/// Leases (4 s) to look uncertain, so that it would take them over if it wrote.
const PAUSE: Duration = Duration::from_secs(12);

/// Shards that leave while the leader is paused: each gives it something to write on resume.
const LEAVING: [&str; 4] = ["shard-1", "shard-2", "shard-3", "shard-4"];

/// A sharder binary with leader election, logging its writes; killed when dropped, also when
/// stopped (SIGKILL ends a stopped process).
struct Replica {
    child: tokio::process::Child,
    log: PathBuf,
}

impl Replica {
    fn start(control_plane: &ControlPlane, name: &str) -> Self {
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

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("not reaped yet").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// How it exited, once it has.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }
}

/// The times of the writes a sharder's log shows it sending (`writing` on
/// [`WRITE_LOG_TARGET`]), with their lines.
fn writes(log: &Path) -> Vec<(Timestamp, String)> {
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

#[tokio::test]
async fn a_leader_paused_past_its_lease_writes_nothing_after_the_takeover_and_steps_down() {
    let (control_plane, client) = leader_election_control_plane().await;
    let leader_leases = Api::<Lease>::namespaced(client.clone(), labels::SHARDER_NAMESPACE);
    let leader = || async {
        let spec = leader_leases
            .get_opt(labels::SHARDER_LEASE)
            .await
            .ok()??
            .spec?;
        Some((spec.holder_identity?, spec.acquire_time?.0))
    };

    let mut first = Replica::start(&control_plane, "first");
    eventually("the first replica to lead", || async {
        leader().await?.0.starts_with("first_").then_some(())
    })
    .await;
    let mut second = Replica::start(&control_plane, "second");
    let ring = namespace_and_ring(&client).await;
    let _live = shard(&client, &ring, "shard-0", 4).await;
    let mut leaving = Vec::new();
    for name in LEAVING {
        leaving.push(shard(&client, &ring, name, 4).await);
    }
    let shard_leases = Api::<Lease>::namespaced(client.clone(), &ring);
    eventually("the leader to label the shards ready", || async {
        let leases = shard_leases.list(&ListParams::default()).await.ok()?.items;
        let ready = leases
            .iter()
            .filter(|l| l.labels().get(labels::STATE).map(String::as_str) == Some("ready"))
            .count();
        (ready == 1 + LEAVING.len()).then_some(())
    })
    .await;
    assert!(
        !writes(&first.log).is_empty(),
        "the leader's log shows its writes"
    );

    first.signal("-STOP");
    let (holder, taken_over) = eventually("the second replica to take over", || async {
        let (holder, acquired) = leader().await?;
        holder.starts_with("second_").then_some((holder, acquired))
    })
    .await;
    // Shards leave meanwhile: the ring's status and the Leases' states change under the paused
    // leader, whose caches and timers still hold the old state when it resumes.
    for lease in leaving {
        lease.release().await.unwrap();
    }
    tokio::time::sleep(PAUSE).await;
    first.signal("-CONT");

    let status = eventually("the old leader to step down and exit", || {
        std::future::ready(first.exited())
    })
    .await;
    assert!(!status.success(), "losing leadership is an error: {status}");
    let late: Vec<_> = writes(&first.log)
        .into_iter()
        .filter(|(time, _)| *time >= taken_over)
        .map(|(_, line)| line)
        .collect();
    assert!(
        late.is_empty(),
        "the old leader wrote after {holder} took over at {taken_over}: {late:#?}"
    );
    let log = std::fs::read_to_string(&first.log).unwrap();
    assert!(
        log.contains("Lease not renewed within the renew deadline"),
        "{log}"
    );
    // No takeover of the renewed shard Lease landed, and the new leader still leads.
    let lease = shard_leases.get("shard-0").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("shard-0")
    );
    assert_eq!(leader().await.unwrap().0, holder);
    assert!(second.exited().is_none(), "the new leader keeps running");
}
