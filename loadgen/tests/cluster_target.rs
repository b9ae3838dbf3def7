//! The cluster target on a real API server with the operator's and the sharder's Deployments
//! but no kube-controller-manager and no kubelet: the target's requests are real, but no
//! rollout ever finishes, so the waits of `prepare` and `rolling_update` are raced against
//! checks that their patches arrived.

use std::time::Duration;

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{EnvVar, Namespace, Node, Pod, ServiceAccount},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use loadgen::{
    environment::cluster::Cluster,
    scenario::{Controller, Operator, Signal},
};
use serde_json::json;

/// How long the API server may take to show a patch.
const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_cluster_target_drives_the_deployed_operator_and_restores_it() {
    let control_plane = testenv::Environment::new().start().await.unwrap();
    let client = control_plane.client().await.unwrap();
    let kubeconfig = control_plane.kubeconfig_path();

    let operator = Controller::webhosting_operator();
    let error = Cluster::connect(Some(&kubeconfig), None, &operator)
        .await
        .unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        "the cluster lacks Deployment webhosting-system/webhosting-operator, Deployment \
         sharding-system/sharder, CustomResourceDefinition websites.webhosting.timebertt.dev, \
         ControllerRing webhosting-operator: deploy the sharder and the webhosting-operator \
         with `make deploy` (see docs/kind.md)"
    );
    let error = Cluster::connect(Some(&kubeconfig), Some("nope"), &operator)
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("nope"), "{error:#}");

    deploy(&client).await;
    let mut cluster = Cluster::connect(Some(&kubeconfig), Some(testenv::CONTEXT), &operator)
        .await
        .unwrap();
    let deployments = Api::<Deployment>::namespaced(client.clone(), "webhosting-system");
    let original = container_env(&deployments.get("webhosting-operator").await.unwrap());

    let settings = Operator {
        workers: 7,
        simulated_work: Duration::from_millis(100),
        lease_duration: Duration::from_secs(10),
    };
    tokio::select! {
        result = cluster.prepare(2, &settings) => {
            panic!("no rollout can finish without a kubelet: {result:?}")
        }
        () = eventually_replicas(&deployments, 2) => {}
    }
    let deployment = deployments.get("webhosting-operator").await.unwrap();
    let env = container_env(&deployment);
    assert_eq!(
        env,
        [
            original[0].clone(),
            value("WEBHOSTING_WORKERS", "7"),
            value("WEBHOSTING_SIMULATED_WORK", "100ms"),
            value("WEBHOSTING_LEASE_DURATION", "10s"),
        ]
    );

    // A shard is a running, ready pod of the Deployment. Without kube-controller-manager,
    // the pods' service account is not created for them.
    let service_account: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": "default" } })).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), "webhosting-system")
        .create(&PostParams::default(), &service_account)
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(client.clone(), "webhosting-system");
    create_running_pod(&pods, "webhosting-operator-a").await;
    create_running_pod(&pods, "webhosting-operator-b").await;
    assert_eq!(
        cluster.shards().await.unwrap(),
        ["webhosting-operator-a", "webhosting-operator-b"]
    );

    // A kill without replacement scales down by one.
    cluster
        .kill("webhosting-operator-a", Signal::Term, false)
        .await
        .unwrap();
    assert_eq!(replicas(&deployments).await, 1);
    assert_eq!(cluster.shards().await.unwrap(), ["webhosting-operator-b"]);
    cluster
        .kill("webhosting-operator-b", Signal::Kill, true)
        .await
        .unwrap();
    assert_eq!(replicas(&deployments).await, 1);
    assert!(cluster.shards().await.unwrap().is_empty());
    let error = cluster.kill("nope", Signal::Kill, true).await.unwrap_err();
    assert_eq!(error.to_string(), "cannot delete pod nope");

    tokio::select! {
        result = cluster.rolling_update() => {
            panic!("no rollout can finish without a kubelet: {result:?}")
        }
        () = eventually_restarted(&deployments) => {}
    }

    let error = cluster.usage().await.unwrap_err();
    assert!(
        format!("{error:#}").contains("is metrics-server installed?"),
        "{error:#}"
    );
    assert!(cluster.operator_metrics().await.is_empty());

    cluster.finish().await.unwrap();
    let deployment = deployments.get("webhosting-operator").await.unwrap();
    assert_eq!(deployment.spec.unwrap().replicas, Some(3));
    assert_eq!(
        container_env(&deployments.get("webhosting-operator").await.unwrap()),
        original
    );
    // Nothing is remembered any more: a second finish changes nothing.
    cluster.finish().await.unwrap();

    create_node(&client).await;
    let machine = cluster.machine().await.unwrap();
    assert_eq!(machine.cores, 2);
    assert_eq!(machine.memory_bytes, 4 * 1024 * 1024 * 1024);
    assert_eq!(machine.os, "Debian GNU/Linux 12 (bookworm) 6.8.0-1-amd64");
}

/// What `make deploy` would leave, as far as the target looks: the CRDs, the ring, and the two
/// Deployments, the operator's with settings of its own and a reference among them.
async fn deploy(client: &Client) {
    stack::install_sharding(client).await.unwrap();
    stack::install_webhosting(client).await.unwrap();
    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": "sharding-system" } })).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let env = json!([
        { "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
        { "name": "WEBHOSTING_WORKERS", "value": "5" },
        { "name": "WEBHOSTING_LEASE_DURATION",
          "valueFrom": { "configMapKeyRef": { "name": "settings", "key": "lease" } } },
    ]);
    create_deployment(client, "webhosting-system", "webhosting-operator", 3, &env).await;
    create_deployment(client, "sharding-system", "sharder", 2, &json!([])).await;
}

async fn create_deployment(
    client: &Client,
    namespace: &str,
    name: &str,
    replicas: i32,
    env: &serde_json::Value,
) {
    let labels = json!({ "app.kubernetes.io/name": name });
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": labels },
            "template": {
                "metadata": { "labels": labels },
                "spec": { "containers": [{
                    "name": name,
                    "image": format!("{name}:test"),
                    "env": env,
                    "ports": [{ "name": "metrics", "containerPort": 8080 }],
                }] },
            },
        },
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
}

/// A pod of the operator's Deployment that claims to run and be ready, as a kubelet would say.
async fn create_running_pod(pods: &Api<Pod>, name: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "app.kubernetes.io/name": "webhosting-operator" } },
        "spec": { "containers": [{ "name": "webhosting-operator", "image": "operator:test" }] },
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({ "status": {
        "phase": "Running",
        "conditions": [{ "type": "Ready", "status": "True" }],
    } });
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

/// A node with 1.5 allocatable CPUs, as a kubelet would register it.
async fn create_node(client: &Client) {
    let nodes = Api::<Node>::all(client.clone());
    let node: Node =
        serde_json::from_value(json!({ "metadata": { "name": "kind-control-plane" } })).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let status = json!({ "status": {
        "allocatable": { "cpu": "1500m", "memory": "4Gi" },
        "capacity": { "cpu": "2", "memory": "4Gi" },
        "nodeInfo": {
            "osImage": "Debian GNU/Linux 12 (bookworm)",
            "kernelVersion": "6.8.0-1-amd64",
            "machineID": "", "systemUUID": "", "bootID": "", "containerRuntimeVersion": "",
            "kubeletVersion": "", "kubeProxyVersion": "", "operatingSystem": "linux",
            "architecture": "amd64",
        },
    } });
    nodes
        .patch_status(
            "kind-control-plane",
            &PatchParams::default(),
            &Patch::Merge(status),
        )
        .await
        .unwrap();
}

fn container_env(deployment: &Deployment) -> Vec<EnvVar> {
    let spec = deployment.spec.as_ref().unwrap().template.spec.as_ref();
    spec.unwrap().containers[0].env.clone().unwrap_or_default()
}

fn value(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

async fn replicas(deployments: &Api<Deployment>) -> i32 {
    let deployment = deployments.get("webhosting-operator").await.unwrap();
    deployment.spec.unwrap().replicas.unwrap()
}

async fn eventually_replicas(deployments: &Api<Deployment>, wanted: i32) {
    testenv::eventually("the replicas patched", PATIENCE, || async {
        (replicas(deployments).await == wanted).then_some(())
    })
    .await;
}

async fn eventually_restarted(deployments: &Api<Deployment>) {
    testenv::eventually("the restartedAt annotation", PATIENCE, || async {
        let deployment = deployments.get("webhosting-operator").await.ok()?;
        let template = deployment.spec?.template.metadata?;
        template
            .annotations?
            .contains_key("kubectl.kubernetes.io/restartedAt")
            .then_some(())
    })
    .await;
}
