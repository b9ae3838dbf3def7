use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use serde_json::json;

use crate::{CONVERGE, client, namespace};

const LABEL: &str = "testenv.example.com/shard";

fn config_map(name: &str, shard: Option<&str>) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "labels": shard.map(|shard| json!({ LABEL: shard })).unwrap_or(json!({})),
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn a_label_selector_list_and_watch_see_only_matching_objects() {
    let client = client().await;
    let namespace = namespace(&client, &[]).await;
    let config_maps = Api::<ConfigMap>::namespaced(client, &namespace);
    let selector = format!("{LABEL}=a");

    // Every object the watch delivers, in order, until it delivers `last`.
    let watch = watcher(
        config_maps.clone(),
        watcher::Config::default().labels(&selector),
    )
    .applied_objects()
    .map_ok(|cm| cm.metadata.name.unwrap())
    .take_while(|name| futures::future::ready(name.as_deref().ok() != Some("last")))
    .try_collect::<Vec<_>>();
    let watch = tokio::spawn(tokio::time::timeout(CONVERGE, watch));

    for (name, shard) in [
        ("a-1", Some("a")),
        ("b-1", Some("b")),
        ("none", None),
        ("a-2", Some("a")),
    ] {
        config_maps
            .create(&PostParams::default(), &config_map(name, shard))
            .await
            .unwrap();
    }
    let listed: BTreeSet<_> = config_maps
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect();
    assert_eq!(listed, BTreeSet::from(["a-1".to_owned(), "a-2".to_owned()]));

    // Relabelling an object into the selection makes it appear in the watch.
    let relabel = json!({ "metadata": { "labels": { LABEL: "a" } } });
    config_maps
        .patch("b-1", &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .unwrap();
    // Events arrive in resourceVersion order: once `last` is seen, nothing earlier is missing.
    config_maps
        .create(&PostParams::default(), &config_map("last", Some("a")))
        .await
        .unwrap();

    let seen: BTreeSet<_> = watch
        .await
        .unwrap()
        .expect("watch finished in time")
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        seen,
        BTreeSet::from(["a-1".to_owned(), "a-2".to_owned(), "b-1".to_owned()])
    );
}
