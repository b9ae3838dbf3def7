use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
use kube::{
    Api, Resource,
    api::{DeleteParams, PostParams},
    runtime::wait::conditions,
};
use serde_json::json;

use crate::{client, converge, namespace};

fn deployment_available_and_observed(deployment: Option<&Deployment>) -> bool {
    let Some(deployment) = deployment else {
        return false;
    };
    let generation = deployment.metadata.generation.unwrap_or_default();
    let Some(status) = &deployment.status else {
        return false;
    };
    status.observed_generation.unwrap_or_default() >= generation
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Available" && c.status == "True")
}

#[tokio::test]
async fn a_deployment_gets_its_status_from_the_controller_manager() {
    let client = client().await;
    let namespace = namespace(&client, &[]).await;
    let deployments = Api::<Deployment>::namespaced(client, &namespace);
    // No kubelet runs pods here: zero replicas are available as soon as the controller acts.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "web" },
        "spec": {
            "replicas": 0,
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx:alpine" }] }
            }
        }
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let observed = converge(&deployments, "web", deployment_available_and_observed)
        .await
        .unwrap();
    assert_eq!(observed.status.unwrap().observed_generation, Some(1));
}

#[tokio::test]
async fn dependents_are_garbage_collected_when_their_owner_is_deleted() {
    let client = client().await;
    let namespace = namespace(&client, &[]).await;
    let config_maps = Api::<ConfigMap>::namespaced(client, &namespace);
    let owner = config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": "owner" } })).unwrap(),
        )
        .await
        .unwrap();
    let owner_reference = owner.controller_owner_ref(&()).unwrap();
    let dependent: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "dependent", "ownerReferences": [owner_reference] }
    }))
    .unwrap();
    let dependent = config_maps
        .create(&PostParams::default(), &dependent)
        .await
        .unwrap();

    config_maps
        .delete("owner", &DeleteParams::background())
        .await
        .unwrap();

    let uid = dependent.metadata.uid.unwrap();
    converge(&config_maps, "dependent", conditions::is_deleted(&uid)).await;
}
