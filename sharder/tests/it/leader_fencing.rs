//! A leader paused past its Lease (SIGSTOP) and resumed (SIGCONT) writes nothing: the other
//! replica has taken over, and the old one steps down (docs/sharder.md#leadership).

use std::time::Duration;

use crate::{
    eventually, leader_election_control_plane,
    replica::{Replica, leader, leads, ring_with_shards, writes},
};

/// Long enough for the other replica to take over and for the paused one's cached shard
/// Leases (4 s) to look uncertain, so that it would take them over if it wrote.
const PAUSE: Duration = Duration::from_secs(12);

#[tokio::test]
async fn a_leader_paused_past_its_lease_writes_nothing_after_the_takeover_and_steps_down() {
    let (control_plane, client) = leader_election_control_plane(testenv::Environment::new()).await;
    let mut first = Replica::start(&control_plane, "first", &control_plane.kubeconfig_path());
    leads(&client, "first").await;
    let mut second = Replica::start(&control_plane, "second", &control_plane.kubeconfig_path());
    let (_, _live, leaving, shard_leases) = ring_with_shards(&client).await;
    assert!(
        !writes(&first.log).is_empty(),
        "the leader's log shows its writes"
    );

    first.signal("-STOP");
    let (holder, taken_over) = eventually("the second replica to take over", || async {
        let (holder, acquired) = leader(&client).await?;
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
    assert_eq!(leader(&client).await.unwrap().0, holder);
    assert!(second.exited().is_none(), "the new leader keeps running");
}
