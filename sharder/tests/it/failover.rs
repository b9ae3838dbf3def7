use std::{collections::BTreeSet, sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::{
    api::{coordination::v1::Lease, core::v1::ConfigMap},
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt as _,
    api::PostParams,
    runtime::{Controller, controller::Action},
};
use kube_sharding::{api::labels, shard as shard_lib};
use serde_json::json;

use crate::{
    client, create_objects, eventually, expected_shard, namespace_and_ring, shard, shard_of,
};

#[tokio::test]
async fn a_released_shard_is_dead_at_once_and_its_objects_move() {
    let client = client().await;
    let ring = namespace_and_ring(&client).await;
    let a = shard(&client, &ring, "shard-a", 15).await;
    let _b = shard(&client, &ring, "shard-b", 15).await;
    create_objects(&client, &ring, 20).await;
    let on_a: Vec<String> = (0..20)
        .map(|i| format!("cm-{i}"))
        .filter(|name| expected_shard(&["shard-a", "shard-b"], &ring, name) == "shard-a")
        .collect();
    assert!(!on_a.is_empty());

    a.release().await.unwrap();

    let leases = Api::<Lease>::namespaced(client.clone(), &ring);
    eventually("shard-a to be dead", || async {
        (leases
            .get("shard-a")
            .await
            .ok()?
            .labels()
            .get(labels::STATE)?
            == "dead")
            .then_some(())
    })
    .await;
    for name in &on_a {
        eventually(&format!("{name} to move to shard-b"), || async {
            (shard_of(&client, &ring, name).await? == "shard-b").then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_lease_that_stops_renewing_goes_expired_uncertain_dead_and_its_objects_move() {
    let client = client().await;
    let ring = namespace_and_ring(&client).await;
    let _a = shard(&client, &ring, "shard-a", 15).await;
    // shard-b renews once with a 2 s lease and then never again, like a killed process.
    let now = Timestamp::now();
    let lease: Lease = serde_json::from_value(json!({
        "metadata": { "name": "shard-b", "labels": { labels::CONTROLLER_RING: ring } },
        "spec": { "holderIdentity": "shard-b", "leaseDurationSeconds": 2, "acquireTime": now, "renewTime": now }
    }))
    .unwrap();
    let leases = Api::<Lease>::namespaced(client.clone(), &ring);
    leases.create(&PostParams::default(), &lease).await.unwrap();
    create_objects(&client, &ring, 20).await;
    let on_b: Vec<String> = (0..20)
        .map(|i| format!("cm-{i}"))
        .filter(|name| expected_shard(&["shard-a", "shard-b"], &ring, name) == "shard-b")
        .collect();
    assert!(!on_b.is_empty());

    // The state labels the sharder writes, in the order they are seen.
    let states = std::sync::Mutex::new(Vec::<String>::new());
    eventually("shard-b to be taken over", || async {
        let lease = leases.get("shard-b").await.ok()?;
        let mut states = states.lock().unwrap();
        if let Some(state) = lease.labels().get(labels::STATE)
            && states.last() != Some(state)
        {
            states.push(state.clone());
        }
        let holder = lease.spec?.holder_identity?;
        (holder == labels::SHARD_LEASE_CONTROLLER
            && states.last().map(String::as_str) == Some("dead"))
        .then_some(())
    })
    .await;
    let states = states.into_inner().unwrap();
    assert!(states.contains(&"expired".to_owned()), "{states:?}");
    assert_eq!(
        states.last().map(String::as_str),
        Some("dead"),
        "{states:?}"
    );
    for name in &on_b {
        eventually(&format!("{name} to move to shard-a"), || async {
            (shard_of(&client, &ring, name).await? == "shard-a").then_some(())
        })
        .await;
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[tokio::test]
async fn a_new_shard_drains_objects_that_move_to_it_after_acknowledgement() {
    let client = client().await;
    let ring = namespace_and_ring(&client).await;
    let a = shard(&client, &ring, "shard-a", 15).await;
    create_objects(&client, &ring, 20).await;
    for i in 0..20 {
        assert_eq!(
            shard_of(&client, &ring, &format!("cm-{i}"))
                .await
                .as_deref(),
            Some("shard-a")
        );
    }

    // shard-a runs a controller that acknowledges drains (and records what it reconciles).
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ring);
    let acknowledger = shard_lib::Shard::new(client.clone(), ring.clone(), "shard-a", a.fence());
    let drained = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let seen = drained.clone();
    let controller = Controller::new(
        config_maps.clone(),
        shard_lib::watcher_config(&ring, "shard-a"),
    )
    .run(
        move |object: Arc<ConfigMap>, _: Arc<()>| {
            let (shard, seen) = (acknowledger.clone(), seen.clone());
            async move {
                if object.labels().contains_key(&labels::drain(shard.ring())) {
                    seen.lock().unwrap().insert(object.name_any());
                }
                shard
                    .reconcile(object, |_| async { Ok::<_, Never>(Action::await_change()) })
                    .await
            }
        },
        |_, _, _| Action::requeue(Duration::from_millis(500)),
        Arc::new(()),
    )
    .for_each(|_| async {});
    let controller = tokio::spawn(controller);

    let _b = shard(&client, &ring, "shard-b", 15).await;

    let moving: Vec<String> = (0..20)
        .map(|i| format!("cm-{i}"))
        .filter(|name| expected_shard(&["shard-a", "shard-b"], &ring, name) == "shard-b")
        .collect();
    assert!(!moving.is_empty());
    for name in &moving {
        eventually(&format!("{name} to be reassigned to shard-b"), || async {
            (shard_of(&client, &ring, name).await? == "shard-b").then_some(())
        })
        .await;
    }
    controller.abort();
    let drained = drained.lock().unwrap().clone();
    assert_eq!(
        drained,
        moving.iter().cloned().collect(),
        "exactly the moving objects were drained"
    );
    for i in 0..20 {
        let name = format!("cm-{i}");
        if !moving.contains(&name) {
            assert_eq!(
                shard_of(&client, &ring, &name).await.as_deref(),
                Some("shard-a"),
                "{name} stays"
            );
        }
    }
}
