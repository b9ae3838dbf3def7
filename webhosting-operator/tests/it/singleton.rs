//! One leader-elected operator that reconciles every Website.

use kube::{
    ResourceExt as _,
    api::{Patch, PatchParams},
};
use serde_json::json;

use super::*;

const RECONCILED: &str =
    r#"controller_runtime_reconcile_total{controller="website",result="success"} "#;

#[tokio::test]
async fn a_singleton_reconciles_every_website_and_exports_its_metrics() {
    let (control_plane, client, _sharder) = stack().await;
    let singleton = operator(&control_plane, "singleton-0", true);
    create_samples(&client, 8).await;
    let websites = all_ready(&client, 10).await;

    // The sharder labels Websites even when no shard is there; the singleton ignores labels.
    for website in &websites {
        assert!(
            config_map_of(&client, website).await.is_some(),
            "{}",
            website.name_any()
        );
    }
    let text = singleton
        .scrape()
        .await
        .expect("the singleton serves /metrics");
    let count = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(count("kube_website_info{"), 10, "{text}");
    assert_eq!(
        count("kube_website_status_phase{"),
        40,
        "four phases per Website"
    );
    assert_eq!(count("kube_theme_info{"), 2, "{text}");
    for series in [
        r#"controller_runtime_reconcile_total{controller="website",result="success"}"#,
        r#"workqueue_adds_total{name="website"}"#,
        "rest_client_requests_total{",
    ] {
        assert!(text.contains(series), "{series} in\n{text}");
    }

    // Nothing is written when nothing changed: reconciling a Website again writes neither a
    // child nor its status.
    let website = &websites[0];
    let name = children::child_name(website);
    let before = (versions(&client, &name).await, website.status.clone());
    let reconciled = counter(&singleton.scrape().await.unwrap(), RECONCILED);
    Api::<Website>::namespaced(client.clone(), PROJECT)
        .patch(
            &website.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "touched": "1" } } })),
        )
        .await
        .unwrap();
    testenv::eventually("another reconciliation", PATIENCE, || async {
        (counter(&singleton.scrape().await?, RECONCILED) > reconciled).then_some(())
    })
    .await;
    let touched = Api::<Website>::namespaced(client.clone(), PROJECT)
        .get(&website.name_any())
        .await
        .unwrap();
    assert_eq!((versions(&client, &name).await, touched.status), before);
}

fn counter(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .map_or(0.0, |value| value.parse().unwrap())
}

/// The resourceVersions of the four children named `name`.
async fn versions(client: &Client, name: &str) -> Vec<Option<String>> {
    children_meta(client, name)
        .await
        .into_iter()
        .map(|meta| meta.resource_version)
        .collect()
}
