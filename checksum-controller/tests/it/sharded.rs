//! Two shards of the controller behind the sharder.

use std::collections::BTreeMap;

use checksum_controller::checksum::{CHECKSUM_KEY, MANAGED_LABEL, checksum, config_map_name};
use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
};
use kube::{
    Resource as _,
    api::{ListParams, ObjectMeta, PostParams, TypeMeta},
};
use kube_sharding::consistent_hash::Ring;

use super::*;

const SHARDS: [&str; 2] = ["shard-0", "shard-1"];

/// Managed Secrets created, enough that both shards get some.
const SECRETS: usize = 20;

const NAMESPACE: &str = "checksum-it";

#[tokio::test(flavor = "multi_thread")]
async fn every_labelled_secret_gets_its_checksum_on_its_shard_and_a_data_change_updates_it() {
    let (control_plane, client, _sharder) = stack(NAMESPACE).await;
    let mut shards = Vec::new();
    for identity in SHARDS {
        shards.push(Shard::start(&control_plane, identity).await);
    }
    available_shards(&client, 2).await;
    testenv::eventually("both shards ready", PATIENCE, || async {
        for shard in &shards {
            if !shard.ready().await {
                return None;
            }
        }
        Some(())
    })
    .await;

    let secrets = Api::<Secret>::namespaced(client.clone(), NAMESPACE);
    for index in 0..SECRETS {
        secrets
            .create(
                &PostParams::default(),
                &secret(&format!("secret-{index}"), true, &index.to_string()),
            )
            .await
            .unwrap();
    }
    secrets
        .create(&PostParams::default(), &secret("unmanaged", false, "x"))
        .await
        .unwrap();

    let expected: BTreeMap<String, String> = (0..SECRETS)
        .map(|index| (format!("secret-{index}"), index.to_string()))
        .collect();
    let assigned = wait_for_checksums(&client, &expected).await;
    for shard in SHARDS {
        assert!(
            assigned.values().any(|assigned| assigned == shard),
            "{shard} got Secrets: {assigned:?}"
        );
    }
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE);
    assert!(
        config_maps
            .get_opt(&config_map_name("unmanaged"))
            .await
            .unwrap()
            .is_none(),
        "an unlabelled Secret gets no ConfigMap"
    );
    for shard in &shards {
        let text = shard.scrape().await;
        assert!(
            text.contains(r#"workqueue_queue_duration_seconds_count{name="secret"}"#),
            "{text}"
        );
    }

    // A data change reaches the ConfigMap.
    let mut changed = expected.clone();
    changed.insert("secret-3".to_owned(), "changed".to_owned());
    secrets
        .patch(
            "secret-3",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({ "stringData": { "value": "changed" } })),
        )
        .await
        .unwrap();
    wait_for_checksums(&client, &changed).await;

    // A third shard: Secrets, unlabelled ones too, are drained to it, and each ConfigMap follows
    // its Secret with the right checksum.
    shards.push(Shard::start(&control_plane, "shard-2").await);
    let ring = Ring::with_nodes(["shard-0", "shard-1", "shard-2"]);
    testenv::eventually(
        "every Secret on the 3-shard ring's shard",
        PATIENCE,
        || async {
            let all = secrets.list(&ListParams::default()).await.ok()?.items;
            all.iter()
                .all(|secret| shard_of(&secret.metadata).as_deref() == ring.hash(&hash_key(secret)))
                .then_some(())
        },
    )
    .await;
    let assigned = wait_for_checksums(&client, &changed).await;
    assert!(
        assigned.values().any(|shard| shard == "shard-2"),
        "Secrets moved to shard-2: {assigned:?}"
    );

    // The shards stop as on SIGTERM, releasing their Leases.
    for shard in shards {
        shard.stop().await.unwrap();
    }
}

fn secret(name: &str, managed: bool, value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                MANAGED_LABEL.to_owned(),
                managed.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "value".to_owned(),
            ByteString(value.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    }
}

/// Waits until every Secret named in `expected` has its ConfigMap with the checksum of
/// `{value: <expected value>}`, on the Secret's shard; returns each Secret's shard.
async fn wait_for_checksums(
    client: &Client,
    expected: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let secrets = Api::<Secret>::namespaced(client.clone(), NAMESPACE);
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), NAMESPACE);
    testenv::eventually(
        "every ConfigMap with its Secret's checksum",
        PATIENCE,
        || async {
            let mut assigned = BTreeMap::new();
            for (name, value) in expected {
                let secret = secrets.get(name).await.ok()?;
                let config_map = config_maps.get_opt(&config_map_name(name)).await.ok()??;
                let data =
                    BTreeMap::from([("value".to_owned(), ByteString(value.as_bytes().to_vec()))]);
                if config_map.data?.get(CHECKSUM_KEY)? != &checksum(&data) {
                    return None;
                }
                let shard = shard_of(&secret.metadata)?;
                // A ConfigMap follows its Secret by a move of its own, so they may differ
                // for a moment.
                if shard_of(&config_map.metadata).as_ref() != Some(&shard) {
                    return None;
                }
                assigned.insert(name.clone(), shard);
            }
            Some(assigned)
        },
    )
    .await
}

/// The sharder's hash key of `secret`.
fn hash_key(secret: &Secret) -> String {
    let types = TypeMeta {
        api_version: Secret::api_version(&()).into_owned(),
        kind: Secret::kind(&()).into_owned(),
    };
    kube_sharding::key::for_object(Some(&types), &secret.metadata).unwrap()
}

fn shard_of(meta: &ObjectMeta) -> Option<String> {
    meta.labels
        .as_ref()?
        .get(&kube_sharding::api::labels::shard(RING))
        .cloned()
}

/// Waits until the ring counts `shards` available shards, so that Secrets created next are
/// spread over all of them.
async fn available_shards(client: &Client, shards: i32) {
    let rings = Api::<ControllerRing>::all(client.clone());
    testenv::eventually("the shards to be available", PATIENCE, || async {
        let status = rings.get(RING).await.ok()?.status?;
        (status.available_shards == shards).then_some(())
    })
    .await;
}
