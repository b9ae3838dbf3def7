use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, api::PostParams};
use kube_sharding::api::labels;
use serde_json::json;

use crate::{client, create_objects, eventually, expected_shard, namespace_and_ring, shard};

#[tokio::test]
async fn objects_and_their_controlled_objects_land_on_the_shard_the_ring_picks() {
    let client = client().await;
    let ring = namespace_and_ring(&client).await;
    let shards = ["shard-a", "shard-b", "shard-c"];
    let mut leases = Vec::new();
    for name in shards {
        leases.push(shard(&client, &ring, name, 15).await);
    }
    eventually("three available shards in the ring's status", || async {
        let status = Api::<kube_sharding::api::ControllerRing>::all(client.clone())
            .get(&ring)
            .await
            .ok()?
            .status?;
        (status.available_shards == 3).then_some(())
    })
    .await;

    create_objects(&client, &ring, 30).await;

    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ring);
    let secrets = Api::<Secret>::namespaced(client.clone(), &ring);
    let mut per_shard = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..30 {
        let name = format!("cm-{i}");
        let expected = expected_shard(&shards, &ring, &name);
        let owner = config_maps.get(&name).await.unwrap();
        assert_eq!(
            owner.metadata.labels.unwrap()[&labels::shard(&ring)],
            expected,
            "{name}"
        );
        let secret = secrets.get(&format!("secret-{i}")).await.unwrap();
        assert_eq!(
            secret.metadata.labels.unwrap()[&labels::shard(&ring)],
            expected,
            "secret of {name}"
        );
        *per_shard.entry(expected).or_default() += 1;
    }
    assert!(
        per_shard.len() > 1,
        "the objects spread over shards: {per_shard:?}"
    );
    for lease in leases {
        lease.release().await.unwrap();
    }
}

#[tokio::test]
async fn an_object_with_only_generate_name_is_denied() {
    let client = client().await;
    let ring = namespace_and_ring(&client).await;
    let _lease = shard(&client, &ring, "shard-a", 15).await;
    let object: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "generateName": "cm-" } })).unwrap();

    let error = Api::<ConfigMap>::namespaced(client.clone(), &ring)
        .create(&PostParams::default(), &object)
        .await
        .expect_err("denied by the webhook");

    let kube::Error::Api(status) = error else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(status.code, 400);
    assert!(
        status.message.contains("generateName is not supported on ring resources that are not controlled by another resource"),
        "{}",
        status.message
    );
}
