//! Rings whose resources the sharder cannot shard (docs/contract.md#ring-validation), and rings
//! over cluster-scoped resources (docs/contract.md#cluster-scoped-resources).

use k8s_openapi::{
    api::{
        admissionregistration::v1::MutatingWebhookConfiguration, core::v1::ConfigMap,
        events::v1::Event, rbac::v1::ClusterRole,
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client,
    api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams},
};
use kube_sharding::api::{RingResource, labels};
use serde_json::json;

use crate::{
    apply_crd, await_webhook, client, eventually, namespace_and_ring_of, ready_condition, shard,
};

fn ring_resource(group: &str, resource: &str) -> RingResource {
    RingResource {
        group: group.into(),
        resource: resource.into(),
        controlled_resources: vec![],
    }
}

/// Waits for ring `ring` to be not ready with `reason`, and returns the message.
async fn not_ready(client: &Client, ring: &str, reason: &str) -> String {
    eventually(&format!("{ring} to be not ready with {reason}"), || async {
        let ready = ready_condition(client, ring).await?;
        (ready.status == "False" && ready.reason == reason).then_some(ready.message)
    })
    .await
}

#[tokio::test]
async fn a_ring_with_wildcards_is_not_ready_records_an_event_and_blocks_no_writes() {
    let client = client().await;
    let ring = namespace_and_ring_of(
        &client,
        vec![ring_resource("", "configmaps"), ring_resource("*", "*")],
    )
    .await;

    let message = not_ready(&client, &ring, "InvalidResources").await;
    assert_eq!(
        message,
        r#"spec.resources[1]: group "*" is a wildcard; name one API group"#
    );
    let events = Api::<Event>::namespaced(client.clone(), "default");
    eventually("a Warning event on the ring", || async {
        let events = events.list(&ListParams::default()).await.ok()?;
        events
            .items
            .into_iter()
            .find(|event| {
                event.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(ring.as_str())
                    && event.reason.as_deref() == Some("InvalidResources")
            })
            .filter(|event| {
                event.type_.as_deref() == Some("Warning")
                    && event.note.as_deref() == Some(message.as_str())
            })
    })
    .await;

    // The valid entry keeps its rule, and the API server calls the webhook for it.
    let configuration = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .get(&labels::webhook_configuration(&ring))
        .await
        .unwrap();
    let rules = configuration.webhooks.unwrap()[0].rules.clone().unwrap();
    let named: Vec<_> = rules
        .iter()
        .map(|rule| (rule.api_groups.clone(), rule.resources.clone()))
        .collect();
    assert_eq!(
        named,
        [(
            Some(vec![String::new()]),
            Some(vec!["configmaps".to_owned()])
        )]
    );
    let probe: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "generateName": "probe-" } })).unwrap();
    await_webhook(&Api::<ConfigMap>::namespaced(client.clone(), &ring), &probe).await;

    // A write the wildcard would have sent to the webhook, which would have denied it.
    let cluster_roles = Api::<ClusterRole>::all(client.clone());
    let role: ClusterRole =
        serde_json::from_value(json!({ "metadata": { "generateName": "it-wildcard-" } })).unwrap();
    let created = cluster_roles
        .create(&PostParams::default(), &role)
        .await
        .expect("a ClusterRole is created despite the wildcard ring");
    let name = created.metadata.name.unwrap();
    assert!(
        !created
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(&labels::shard(&ring))
    );
    cluster_roles
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}

/// Installs a cluster-scoped CRD `<plural>.it.sharding.example.com` of kind `kind`, and returns
/// its resource.
async fn install_cluster_scoped_crd(client: &Client, plural: &str, kind: &str) -> ApiResource {
    let group = "it.sharding.example.com";
    let name = format!("{plural}.{group}");
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "group": group,
            "names": { "plural": plural, "kind": kind, "singular": kind.to_lowercase() },
            "scope": "Cluster",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": { "openAPIV3Schema": { "type": "object" } },
            }],
        },
    }))
    .unwrap();
    apply_crd(client, &crd).await;
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

#[tokio::test]
async fn a_ring_naming_a_resource_that_is_not_served_says_so_until_it_is_served() {
    let client = client().await;
    let ring = namespace_and_ring_of(
        &client,
        vec![ring_resource("it.sharding.example.com", "gadgets")],
    )
    .await;

    let message = not_ready(&client, &ring, "InvalidResources").await;
    assert_eq!(
        message,
        r#"spec.resources[0]: "it.sharding.example.com/gadgets" is not served by the API server"#
    );

    // Once it is served, the resync's next retry succeeds and the ring becomes ready.
    install_cluster_scoped_crd(&client, "gadgets", "Gadget").await;
    eventually("the ring to become ready", || async {
        (ready_condition(&client, &ring).await?.status == "True").then_some(())
    })
    .await;
}

#[tokio::test]
async fn cluster_scoped_objects_that_predate_the_ring_are_assigned_and_moved_off_a_dead_shard() {
    let client = client().await;
    let resource = install_cluster_scoped_crd(&client, "widgets", "Widget").await;
    let widgets = Api::<DynamicObject>::all_with(client.clone(), &resource);
    let names: Vec<String> = (0..10).map(|i| format!("widget-{i}")).collect();
    for name in &names {
        widgets
            .create(&PostParams::default(), &DynamicObject::new(name, &resource))
            .await
            .unwrap();
    }
    let ring = namespace_and_ring_of(
        &client,
        vec![ring_resource("it.sharding.example.com", "widgets")],
    )
    .await;
    eventually("the ring to be ready", || async {
        (ready_condition(&client, &ring).await?.status == "True").then_some(())
    })
    .await;
    let mut probe = DynamicObject::new("", &resource);
    probe.metadata.name = None;
    probe.metadata.generate_name = Some("probe-".into());
    await_webhook(&widgets, &probe).await;

    let shard_of = |name: String| {
        let (widgets, ring) = (widgets.clone(), ring.clone());
        async move {
            let widget = widgets.get(&name).await.ok()?;
            widget.metadata.labels?.get(&labels::shard(&ring)).cloned()
        }
    };
    // The new shard's Lease triggers a resync, which assigns the objects it lists cluster-wide.
    let a = shard(&client, &ring, "shard-a", 15).await;
    for name in &names {
        eventually(&format!("{name} to be assigned to shard-a"), || async {
            (shard_of(name.clone()).await? == "shard-a").then_some(())
        })
        .await;
    }

    let _b = shard(&client, &ring, "shard-b", 15).await;
    a.release().await.unwrap();
    for name in &names {
        eventually(&format!("{name} to move to shard-b"), || async {
            (shard_of(name.clone()).await? == "shard-b").then_some(())
        })
        .await;
    }
    let left = Api::<DynamicObject>::all_with(client.clone(), &resource)
        .list(&ListParams::default())
        .await
        .unwrap();
    for widget in left.items {
        let labels = widget.metadata.labels.unwrap_or_default();
        assert!(
            !labels.contains_key(&labels::drain(&ring)),
            "{:?} keeps a drain label",
            widget.metadata.name
        );
    }
}
