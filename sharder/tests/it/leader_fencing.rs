//! A leader paused past its Lease (SIGSTOP) and resumed (SIGCONT) writes nothing: the other
//! replica has taken over, and the old one steps down (docs/sharder.md#leadership).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, ResourceExt as _, api::ListParams};
use sharding::api::labels;

use crate::{
    eventually, leader_election_control_plane, namespace_and_ring,
    replica::{Replica, writes},
    shard,
};

/// Long enough for the other replica to take over and for the paused one's cached shard
/// Leases (4 s) to look uncertain, so that it would take them over if it wrote.
const PAUSE: Duration = Duration::from_secs(12);

/// Shards that leave while the leader is paused: each gives it something to write on resume.
const LEAVING: [&str; 4] = ["shard-1", "shard-2", "shard-3", "shard-4"];

#[tokio::test]
async fn a_leader_paused_past_its_lease_writes_nothing_after_the_takeover_and_steps_down() {
    let (control_plane, client) = leader_election_control_plane(testenv::Environment::new()).await;
    let leader_leases = Api::<Lease>::namespaced(client.clone(), labels::SHARDER_NAMESPACE);
    let leader = || async {
        let spec = leader_leases
            .get_opt(labels::SHARDER_LEASE)
            .await
            .ok()??
            .spec?;
        Some((spec.holder_identity?, spec.acquire_time?.0))
    };

    let mut first = Replica::start(&control_plane, "first", &control_plane.kubeconfig_path());
    eventually("the first replica to lead", || async {
        leader().await?.0.starts_with("first_").then_some(())
    })
    .await;
    let mut second = Replica::start(&control_plane, "second", &control_plane.kubeconfig_path());
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
