use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::PostParams,
    runtime::{Controller, controller::Action},
};
use kube_sharding::{api::labels, fence::Fence, shard};
use serde_json::json;

use crate::{client, eventually, namespace};

const RING: &str = "test-ring";

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

fn config_map(name: &str, shard: Option<&str>, drain: bool) -> ConfigMap {
    let mut labels = serde_json::Map::new();
    if let Some(shard) = shard {
        labels.insert(labels::shard(RING), json!(shard));
    }
    if drain {
        labels.insert(labels::drain(RING), json!("true"));
    }
    serde_json::from_value(json!({ "metadata": { "name": name, "labels": labels } })).unwrap()
}

#[tokio::test]
async fn a_shard_reconciles_only_its_objects_and_acknowledges_drains_without_reconciling() {
    let client = client().await;
    let namespace = namespace(&client).await;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &namespace);
    for object in [
        config_map("mine", Some("shard-a"), false),
        config_map("drained", Some("shard-a"), true),
        config_map("theirs", Some("shard-b"), false),
        config_map("theirs-drained", Some("shard-b"), true),
        config_map("unassigned", None, false),
    ] {
        config_maps
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }

    let reconciled = Arc::new(Mutex::new(BTreeSet::new()));
    // No Lease is held here: the test checks the labels, not the fence.
    let shard = shard::Shard::new(client.clone(), RING, "shard-a", Fence::unfenced());
    let seen = reconciled.clone();
    let controller = Controller::new(config_maps.clone(), shard::watcher_config(RING, "shard-a"))
        .run(
            move |object: Arc<ConfigMap>, _: Arc<()>| {
                let (shard, seen) = (shard.clone(), seen.clone());
                async move {
                    shard
                        .reconcile(object, |object| async move {
                            seen.lock()
                                .unwrap()
                                .insert(object.metadata.name.clone().unwrap());
                            Ok::<_, Never>(Action::await_change())
                        })
                        .await
                }
            },
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            Arc::new(()),
        )
        .for_each(|_| async {});
    let controller = tokio::spawn(controller);

    let drained = eventually("the drain acknowledgement", || async {
        let object = config_maps.get("drained").await.unwrap();
        let labels = object.metadata.labels.clone().unwrap_or_default();
        (!labels.contains_key(&labels::shard(RING))).then_some(labels)
    })
    .await;
    assert!(
        !drained.contains_key(&labels::drain(RING)),
        "both labels are removed"
    );

    // An object created last is reconciled after all earlier events were handled.
    config_maps
        .create(
            &PostParams::default(),
            &config_map("last", Some("shard-a"), false),
        )
        .await
        .unwrap();
    eventually("the last object's reconciliation", || async {
        reconciled.lock().unwrap().contains("last").then_some(())
    })
    .await;
    controller.abort();

    assert_eq!(
        *reconciled.lock().unwrap(),
        BTreeSet::from(["last".to_owned(), "mine".to_owned()])
    );
    let theirs = config_maps.get("theirs-drained").await.unwrap();
    assert_eq!(
        theirs
            .metadata
            .labels
            .unwrap()
            .get(&labels::drain(RING))
            .map(String::as_str),
        Some("true"),
        "another shard's drain is not ours to acknowledge"
    );
}
