use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api,
    api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams},
    runtime::wait::conditions,
};
use serde_json::json;

use crate::{client, converge, namespace};

fn widget_crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "widgets.testenv.example.com" },
        "spec": {
            "group": "testenv.example.com",
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": { "spec": {
                        "type": "object",
                        "required": ["size"],
                        "properties": { "size": { "type": "integer", "minimum": 1 } }
                    }}
                }}
            }]
        }
    }))
    .unwrap()
}

fn widget(name: &str, size: i64) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "testenv.example.com/v1",
        "kind": "Widget",
        "metadata": { "name": name },
        "spec": { "size": size }
    }))
    .unwrap()
}

#[tokio::test]
async fn a_crd_installs_and_its_custom_objects_are_created_and_validated() {
    let client = client().await;
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.create(&PostParams::default(), &widget_crd())
        .await
        .expect("create CRD");
    converge(
        &crds,
        "widgets.testenv.example.com",
        conditions::is_crd_established(),
    )
    .await;

    let namespace = namespace(&client, &[]).await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("testenv.example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets = Api::<DynamicObject>::namespaced_with(client, &namespace, &resource);
    for (name, size) in [("small", 1), ("large", 42)] {
        widgets
            .create(&PostParams::default(), &widget(name, size))
            .await
            .unwrap_or_else(|error| panic!("create {name}: {error}"));
    }

    let listed = widgets.list(&ListParams::default()).await.unwrap();
    let mut names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|w| w.metadata.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["large", "small"]);
    let large = widgets.get("large").await.unwrap();
    assert_eq!(large.data["spec"]["size"], json!(42));

    let rejected = widgets
        .create(&PostParams::default(), &widget("invalid", 0))
        .await
        .expect_err("the schema's minimum is enforced");
    assert!(
        matches!(&rejected, kube::Error::Api(status) if status.code == 422 && status.message.contains("spec.size")),
        "{rejected:?}"
    );
}
