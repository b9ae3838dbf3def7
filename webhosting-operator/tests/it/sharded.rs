//! Three operator shards behind the sharder.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, Resource as _, ResourceExt as _,
    api::{Patch, PatchParams, TypeMeta},
};
use kube_sharding::consistent_hash::Ring;
use serde_json::json;
use webhosting_operator::{
    api::{Theme, Website},
    audit::overlaps,
    children,
};

use super::*;

const SHARDS: [&str; 3] = ["shard-0", "shard-1", "shard-2"];

/// Websites created beyond the two samples, so that every shard gets some.
const EXTRA: usize = 28;

#[tokio::test]
async fn each_shard_reconciles_its_own_websites_and_a_theme_change_reaches_all() {
    let (control_plane, client, _sharder) = stack().await;
    let operators = shards(&control_plane, &client, &SHARDS).await;
    create_samples(&client, EXTRA).await;
    let websites = all_ready(&client, EXTRA + 2).await;

    // Each Website's children sit on its shard.
    for website in &websites {
        let shard = shard_of(website.labels()).expect("every Website is assigned");
        let name = children::child_name(website);
        for child in children_meta(&client, &name).await {
            assert_eq!(
                shard_of(child.labels.as_ref().unwrap()),
                Some(shard),
                "a child of {name}"
            );
        }
    }
    // Each shard reconciled only its own Websites, and exports only those.
    let assigned: BTreeMap<String, String> = websites
        .iter()
        .map(|w| (key(w), shard_of(w.labels()).unwrap().to_owned()))
        .collect();
    for record in audit(&control_plane, &SHARDS) {
        assert_eq!(assigned[&record.website], record.shard, "{record:?}");
    }
    for operator in &operators {
        let text = operator.scrape().await.expect("the shard serves /metrics");
        let exported = text
            .lines()
            .filter(|line| line.starts_with("kube_website_info{"))
            .count();
        let owned = assigned
            .values()
            .filter(|s| *s == operator.identity())
            .count();
        assert_eq!(exported, owned, "{}", operator.identity());
        assert!(text.contains(r#"workqueue_queue_duration_seconds_count{name="website"}"#));
    }
    assert!(
        SHARDS.iter().all(|s| assigned.values().any(|a| a == s)),
        "every shard got Websites: {assigned:?}"
    );

    // A Theme change reaches every Website that uses it.
    Api::<Theme>::all(client.clone())
        .patch(
            "exciting",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "color": "rebeccapurple" } })),
        )
        .await
        .unwrap();
    let users: Vec<&Website> = websites
        .iter()
        .filter(|w| w.spec.theme == "exciting")
        .collect();
    assert!(!users.is_empty());
    testenv::eventually("the new color in every ConfigMap", PATIENCE, || async {
        for website in &users {
            let config_map = config_map_of(&client, website).await?;
            let html = config_map.data?.remove("index.html")?;
            if !html.contains("rebeccapurple") {
                return None;
            }
        }
        Some(())
    })
    .await;
}

#[tokio::test]
async fn a_new_shard_takes_websites_over_by_drains_and_a_killed_shards_websites_recover() {
    let (control_plane, client, _sharder) = stack().await;
    let mut operators = shards(&control_plane, &client, &SHARDS).await;
    create_samples(&client, EXTRA).await;
    let before = all_ready(&client, EXTRA + 2).await;

    // Scale 3 → 4: drained Websites move to shard-3, and no two shards reconcile one at once.
    operators.push(operator(&control_plane, "shard-3", false));
    let ring = Ring::with_nodes(["shard-0", "shard-1", "shard-2", "shard-3"]);
    let after = testenv::eventually(
        "every Website Ready on the 4-shard ring's shard",
        PATIENCE,
        || async {
            let websites = all_ready(&client, EXTRA + 2).await;
            websites
                .iter()
                .all(|w| shard_of(w.labels()) == ring.hash(&hash_key(w)))
                .then_some(websites)
        },
    )
    .await;
    let before: BTreeMap<String, Option<String>> = before
        .iter()
        .map(|w| (key(w), shard_of(w.labels()).map(str::to_owned)))
        .collect();
    let mut moved = 0;
    for website in &after {
        let now = shard_of(website.labels());
        if now != before[&key(website)].as_deref() {
            assert_eq!(now, Some("shard-3"), "only moves to the new shard");
            moved += 1;
        }
    }
    assert!(moved > 0, "Websites moved to shard-3");
    let identities = ["shard-0", "shard-1", "shard-2", "shard-3"];
    let records = audit(&control_plane, &identities);
    assert!(records.iter().any(|r| r.shard == "shard-3"));
    assert_eq!(overlaps(&records), Vec::<String>::new());

    // SIGKILL shard-1: its Websites are reconciled again by the others once its Lease is dead.
    let mut victim = operators.remove(1);
    let websites = all_ready(&client, EXTRA + 2).await;
    let orphans: BTreeSet<String> = websites
        .iter()
        .filter(|w| shard_of(w.labels()) == Some(victim.identity()))
        .map(key)
        .collect();
    assert!(!orphans.is_empty(), "shard-1 owns Websites");
    let killed_at = Timestamp::now().as_nanosecond();
    victim.kill().await;
    reconciled_elsewhere(
        (&control_plane, &client),
        &orphans,
        "shard-1",
        killed_at,
        (&identities, EXTRA + 2),
    )
    .await;
}

/// The sharder's hash key of `website`.
fn hash_key(website: &Website) -> String {
    let types = TypeMeta {
        api_version: Website::api_version(&()).into_owned(),
        kind: Website::kind(&()).into_owned(),
    };
    kube_sharding::key::for_object(Some(&types), &website.metadata).unwrap()
}
