//! The bounded-load assignment strategy (docs/sharder.md#assignment-strategies) on the real
//! control plane: placement within 5 % of the mean, a joining shard that takes its share by
//! drains, a released shard whose objects move to the others, and controlled objects that
//! follow their owner.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
};
use kube_sharding::{
    api::{ControllerRing, GroupResource, RingResource, labels},
    strategy::ANNOTATION,
};
use serde_json::json;

use crate::{
    await_config_map_ring, client, create_objects, eventually, expected_shard, new_namespace,
    ring_over_namespace, shard,
};

const OBJECTS: usize = 300;
/// The most a shard may hold over the mean under bounded load.
const MAX_SKEW: f64 = 1.05;

/// A namespace and a ring of the same name over its ConfigMaps (main) and their controlled
/// Secrets, annotated with assignment strategy `strategy`, once the API server calls its
/// webhook.
async fn annotated_ring(client: &Client, strategy: &str) -> String {
    let name = new_namespace(client).await;
    let resources = vec![RingResource {
        group: String::new(),
        resource: "configmaps".into(),
        controlled_resources: vec![GroupResource::new("", "secrets")],
    }];
    ring_over_namespace(client, &name, &name, resources).await;
    annotate(client, &name, strategy).await;
    await_config_map_ring(client, &name, &name).await;
    name
}

async fn annotate(client: &Client, ring: &str, strategy: &str) {
    Api::<ControllerRing>::all(client.clone())
        .patch(
            ring,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { ANNOTATION: strategy } } })),
        )
        .await
        .unwrap();
}

/// The shard label of every object of `api` in ring `ring`, by name (`None`: unassigned or
/// draining).
async fn assignments<K>(api: &Api<K>, ring: &str) -> BTreeMap<String, Option<String>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let list = api.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .map(|object| {
            let meta = object.meta();
            let object_labels = meta.labels.clone().unwrap_or_default();
            let shard = (!object_labels.contains_key(&labels::drain(ring)))
                .then(|| object_labels.get(&labels::shard(ring)).cloned())
                .flatten();
            (meta.name.clone().unwrap(), shard)
        })
        .collect()
}

/// Objects per shard.
fn loads(assignments: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut loads = BTreeMap::new();
    for shard in assignments.values() {
        *loads.entry(shard.clone()).or_default() += 1;
    }
    loads
}

/// The largest load over the mean load of `shards`.
#[expect(clippy::cast_precision_loss, reason = "a few hundred objects")]
fn skew(loads: &BTreeMap<String, usize>, shards: usize) -> f64 {
    let total: usize = loads.values().sum();
    let max = loads.values().copied().max().unwrap_or_default();
    max as f64 / (total as f64 / shards as f64)
}

/// Waits until every ConfigMap is assigned to one of `shards`, none is draining, every Secret
/// is on its owner's shard, and the ConfigMaps' loads are within [`MAX_SKEW`] of the mean;
/// returns the ConfigMaps' shards. Drains are acknowledged as a shard would: by removing both
/// labels, so that the webhook assigns the object again.
async fn settled(
    client: &Client,
    ring: &str,
    shards: &[&str],
    what: &str,
) -> BTreeMap<String, String> {
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ring);
    let secrets = Api::<Secret>::namespaced(client.clone(), ring);
    eventually(what, || async {
        acknowledge_drains(&config_maps, ring).await;
        let owners = assignments(&config_maps, ring).await;
        let placed: BTreeMap<String, String> = owners
            .iter()
            .filter_map(|(name, shard)| Some((name.clone(), shard.clone()?)))
            .filter(|(_, shard)| shards.contains(&shard.as_str()))
            .collect();
        if owners.len() != OBJECTS || placed.len() != OBJECTS {
            return None;
        }
        let children = assignments(&secrets, ring).await;
        let followed = children.iter().all(|(name, shard)| {
            let owner = name.replace("secret-", "cm-");
            shard.as_ref() == placed.get(&owner)
        });
        let balanced = skew(&loads(&placed), shards.len()) <= MAX_SKEW;
        (children.len() == OBJECTS && followed && balanced).then_some(placed)
    })
    .await
}

/// Removes the shard and drain labels of every draining ConfigMap, as its shard does once it
/// stopped working on it (docs/contract.md#drain-and-move).
async fn acknowledge_drains(config_maps: &Api<ConfigMap>, ring: &str) {
    let draining = ListParams::default().labels(&labels::drain(ring));
    for config_map in config_maps.list(&draining).await.unwrap() {
        let patch = json!({ "metadata": {
            "resourceVersion": config_map.metadata.resource_version,
            "labels": { labels::shard(ring): null, labels::drain(ring): null },
        }});
        // A conflict means the object changed meanwhile; the next round sees it again.
        let _ = config_maps
            .patch(
                config_map.metadata.name.as_deref().unwrap(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await;
    }
}

/// Waits until ring `ring` reports `count` available shards.
async fn available_shards(client: &Client, ring: &str, count: i32) {
    eventually(&format!("{count} available shards"), || async {
        let status = Api::<ControllerRing>::all(client.clone())
            .get(ring)
            .await
            .ok()?
            .status?;
        (status.available_shards == count).then_some(())
    })
    .await;
}

#[tokio::test]
async fn bounded_load_keeps_every_shard_within_five_percent_through_a_join_and_a_failover() {
    let client = client().await;
    let ring = annotated_ring(&client, "bounded-load").await;
    let mut leases = BTreeMap::new();
    for name in ["shard-a", "shard-b", "shard-c"] {
        leases.insert(name, shard(&client, &ring, name, 15).await);
    }
    available_shards(&client, &ring, 3).await;

    create_objects(&client, &ring, OBJECTS).await;
    let three = ["shard-a", "shard-b", "shard-c"];
    let placed = settled(
        &client,
        &ring,
        &three,
        "every object on one of three shards",
    )
    .await;
    let hash_ring: BTreeMap<String, String> = placed
        .keys()
        .map(|name| (name.clone(), expected_shard(&three, &ring, name)))
        .collect();
    eprintln!(
        "3 shards: bounded load {:?} (max/mean {:.3}); the hash ring would give {:?} ({:.3})",
        loads(&placed),
        skew(&loads(&placed), 3),
        loads(&hash_ring),
        skew(&loads(&hash_ring), 3),
    );

    // A joining shard takes its share by drains, and only it receives objects.
    leases.insert("shard-d", shard(&client, &ring, "shard-d", 15).await);
    let four = ["shard-a", "shard-b", "shard-c", "shard-d"];
    let joined = settled(&client, &ring, &four, "the join to rebalance within 5 %").await;
    let moved: Vec<&String> = joined
        .iter()
        .filter(|(name, shard)| placed[*name] != **shard)
        .map(|(name, _)| name)
        .collect();
    eprintln!(
        "4 shards: {:?} (max/mean {:.3}), {} objects moved",
        loads(&joined),
        skew(&loads(&joined), 4),
        moved.len()
    );
    assert!(!moved.is_empty());
    for name in &moved {
        assert_eq!(
            joined[*name], "shard-d",
            "{name} moved, but not to the joiner"
        );
    }

    // A released shard is dead at once: its objects move to the others, and only they move.
    leases.remove("shard-b").unwrap().release().await.unwrap();
    let rest = ["shard-a", "shard-c", "shard-d"];
    let failed_over = settled(
        &client,
        &ring,
        &rest,
        "shard-b's objects to move within 5 %",
    )
    .await;
    eprintln!(
        "after shard-b left: {:?} (max/mean {:.3})",
        loads(&failed_over),
        skew(&loads(&failed_over), 3)
    );
    let stayed: BTreeSet<&String> = joined
        .iter()
        .filter(|(_, shard)| *shard != "shard-b")
        .map(|(name, _)| name)
        .collect();
    for name in stayed {
        assert_eq!(failed_over[name], joined[name], "{name} moved needlessly");
    }
}

#[tokio::test]
async fn an_invalid_strategy_denies_new_objects_and_names_the_annotation() {
    let client = client().await;
    let ring = annotated_ring(&client, "hash-ring").await;
    let _lease = shard(&client, &ring, "shard-a", 15).await;
    annotate(&client, &ring, "least-loaded").await;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ring);
    let object: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "name": "cm" } })).unwrap();
    let status = eventually("the webhook to deny with the annotation", || async {
        match config_maps
            .create(&kube::api::PostParams::default(), &object)
            .await
        {
            Err(kube::Error::Api(status)) => Some(status),
            Ok(_) => {
                // Created before the cache saw the annotation: try again.
                config_maps
                    .delete("cm", &kube::api::DeleteParams::default())
                    .await
                    .unwrap();
                None
            }
            Err(error) => panic!("{error}"),
        }
    })
    .await;
    assert_eq!(status.code, 400);
    assert!(
        status.message.contains(ANNOTATION) && status.message.contains("least-loaded"),
        "{}",
        status.message
    );
}
