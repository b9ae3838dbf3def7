use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, api::PostParams};
use serde_json::json;
use testenv::Environment;

use crate::{
    eventually, expected_shard, install_crd, namespace_and_ring, shard, shard_of, sharder_config,
};

/// With its own control plane, because it stops and starts a sharder of its own.
#[tokio::test]
async fn objects_created_while_the_webhook_is_down_are_assigned_by_the_next_resync() {
    let control_plane = Environment::new().start().await.unwrap();
    let client = control_plane.client().await.unwrap();
    install_crd(&client).await;

    let start = |name: &str| {
        let (config, listeners) = sharder_config(&control_plane, name, Duration::from_secs(300));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let client = sharder::client(&config).await.unwrap();
            sharder::run(config, client, listeners, "it".into(), async {
                let _ = stopped.await;
            })
            .await
        });
        (stop, task)
    };

    let (stop, task) = start("first");
    let ring = namespace_and_ring(&client).await;
    let _a = shard(&client, &ring, "shard-a", 15).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    // failurePolicy Ignore: the API server admits objects unassigned while nobody answers.
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &ring);
    for i in 0..5 {
        let object: ConfigMap =
            serde_json::from_value(json!({ "metadata": { "name": format!("cm-{i}") } })).unwrap();
        config_maps
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
        assert_eq!(shard_of(&client, &ring, &format!("cm-{i}")).await, None);
    }

    // A new sharder resyncs the ring when it starts; its webhook assigns the moved objects.
    let (stop, task) = start("second");
    for i in 0..5 {
        let name = format!("cm-{i}");
        let expected = expected_shard(&["shard-a"], &ring, &name);
        eventually(&format!("{name} to be assigned"), || async {
            (shard_of(&client, &ring, &name).await? == expected).then_some(())
        })
        .await;
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
