use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::Lease, apimachinery::pkg::apis::meta::v1::MicroTime, jiff::Timestamp,
};
use kube::{
    Api, ResourceExt as _,
    api::{Patch, PatchParams, PostParams},
};
use kube_sharding::{
    api::labels,
    shard::{ShardLease, ShardLeaseConfig},
};
use serde_json::json;

use crate::{PATIENCE, client, eventually, namespace};

fn config(namespace: &str) -> ShardLeaseConfig {
    ShardLeaseConfig::new("ring", "shard-0", namespace)
        .lease_duration(Duration::from_secs(4))
        .renew_deadline(Duration::from_secs(3))
        .retry_period(Duration::from_millis(300))
}

fn renew_time(lease: &Lease) -> Timestamp {
    lease.spec.as_ref().unwrap().renew_time.as_ref().unwrap().0
}

#[tokio::test]
async fn a_shard_creates_renews_and_releases_its_lease_keeping_the_state_label() {
    let client = client().await;
    let namespace = namespace(&client).await;
    let leases = Api::<Lease>::namespaced(client.clone(), &namespace);

    let handle = ShardLease::new(client, config(&namespace))
        .acquire()
        .await
        .unwrap();
    let lease = leases.get("shard-0").await.unwrap();
    assert_eq!(lease.labels()[labels::CONTROLLER_RING], "ring");
    let spec = lease.spec.clone().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("shard-0"));
    assert_eq!(spec.lease_duration_seconds, Some(4));

    // The sharder writes the state label; renewals must keep it.
    let state = json!({ "metadata": { "labels": { labels::STATE: "ready" } } });
    leases
        .patch("shard-0", &PatchParams::default(), &Patch::Merge(&state))
        .await
        .unwrap();
    let first = renew_time(&lease);
    let renewed = eventually("a renewal", || async {
        let lease = leases.get("shard-0").await.unwrap();
        (renew_time(&lease) > first).then_some(lease)
    })
    .await;
    eventually("a renewal after the label", || async {
        let lease = leases.get("shard-0").await.unwrap();
        (renew_time(&lease) > renew_time(&renewed)).then_some(())
    })
    .await;
    assert_eq!(
        leases.get("shard-0").await.unwrap().labels()[labels::STATE],
        "ready"
    );
    assert!(handle.is_held());

    handle.release().await.unwrap();
    let released = leases.get("shard-0").await.unwrap();
    let spec = released.spec.unwrap();
    assert_eq!(spec.holder_identity, None);
    assert_eq!(spec.lease_duration_seconds, Some(1));
    assert_eq!(released.metadata.labels.unwrap()[labels::STATE], "ready");
}

#[tokio::test]
async fn a_competing_writer_that_takes_the_lease_makes_the_shard_lose_it() {
    let client = client().await;
    let namespace = namespace(&client).await;
    let leases = Api::<Lease>::namespaced(client.clone(), &namespace);
    let handle = ShardLease::new(client, config(&namespace))
        .acquire()
        .await
        .unwrap();

    // The sharder's takeover of an uncertain Lease (docs/contract.md#lease-states), written with
    // the resourceVersion it read, as the sharder does; a renewal in between makes it retry.
    let taken = eventually("the takeover write", || async {
        let mut lease = leases.get("shard-0").await.unwrap();
        let spec = lease.spec.as_mut().unwrap();
        spec.holder_identity = Some(labels::SHARD_LEASE_CONTROLLER.to_owned());
        spec.lease_duration_seconds = Some(60);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        leases
            .replace("shard-0", &PostParams::default(), &lease)
            .await
            .ok()
    })
    .await;
    assert_eq!(
        taken.spec.unwrap().holder_identity.as_deref(),
        Some(labels::SHARD_LEASE_CONTROLLER)
    );

    tokio::time::timeout(PATIENCE, handle.lost())
        .await
        .expect("the loss is reported");
    assert!(!handle.is_held());
    // Releasing a Lease that is no longer ours leaves the new holder alone.
    handle.release().await.unwrap();
    let lease = leases.get("shard-0").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(labels::SHARD_LEASE_CONTROLLER)
    );
}

#[tokio::test]
async fn a_shard_waits_for_a_lease_held_by_another_holder_to_expire() {
    let client = client().await;
    let namespace = namespace(&client).await;
    let leases = Api::<Lease>::namespaced(client.clone(), &namespace);
    let held: Lease = serde_json::from_value(json!({
        "metadata": { "name": "shard-0" },
        "spec": {
            "holderIdentity": labels::SHARD_LEASE_CONTROLLER,
            "leaseDurationSeconds": 3,
            "acquireTime": Timestamp::now(),
            "renewTime": Timestamp::now(),
        }
    }))
    .unwrap();
    leases.create(&PostParams::default(), &held).await.unwrap();
    let created = Timestamp::now();

    let handle = ShardLease::new(client, config(&namespace))
        .acquire()
        .await
        .unwrap();

    let lease = leases.get("shard-0").await.unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("shard-0"));
    assert!(
        spec.acquire_time.unwrap().0.duration_since(created)
            >= k8s_openapi::jiff::SignedDuration::from_secs(2),
        "acquired only after the other holder's lease expired"
    );
    assert_eq!(spec.lease_transitions, Some(1));
    handle.release().await.unwrap();
}

#[tokio::test]
async fn acquiring_in_a_missing_namespace_fails_at_once_naming_it() {
    let client = client().await;
    let error = tokio::time::timeout(
        PATIENCE,
        ShardLease::new(client, config("no-such-namespace")).acquire(),
    )
    .await
    .expect("acquire gives up instead of retrying")
    .unwrap_err();
    assert!(
        matches!(error, kube_sharding::shard::lease::Error::Denied { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(r#"namespace "no-such-namespace" does not exist"#),
        "{message}"
    );
}

#[tokio::test]
async fn acquiring_from_an_unreachable_api_server_gives_up_after_the_patience() {
    // A port nobody listens on: every attempt fails to connect.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let lease = ShardLease::new(
        client,
        ShardLeaseConfig::new("ring", "shard-0", "default")
            .retry_period(Duration::from_millis(100))
            .acquire_patience(Duration::from_millis(500)),
    );
    let error = tokio::time::timeout(PATIENCE, lease.acquire())
        .await
        .expect("acquire gives up")
        .unwrap_err();
    assert!(
        matches!(
            error,
            kube_sharding::shard::lease::Error::Unreachable { .. }
        ),
        "{error:?}"
    );
}
