//! A controller under test described by its manifests and a command per shard: the
//! checksum-controller, as loadgen's local target starts any controller.

use std::{ffi::OsString, path::Path, time::Duration};

use kube::Api;
use kube_sharding::api::ControllerRing;
use stack::{ControllerSetup, Manifest, ShardCommand, Stack, StackOptions};

const PATIENCE: Duration = Duration::from_secs(120);

/// The command loadgen renders from the checksum-controller's template
/// (`loadgen/src/scenario/testdata/checksum-controller.yaml`).
fn shard(bin: &Path, identity: &str, kubeconfig: &Path) -> ShardCommand {
    let metrics_port = stack::free_port().unwrap();
    let health_port = stack::free_port().unwrap();
    let args = [
        "--identity".to_owned(),
        identity.to_owned(),
        "--namespace".to_owned(),
        "checksum-system".to_owned(),
        "--lease-duration".to_owned(),
        "5s".to_owned(),
        "--metrics-address".to_owned(),
        format!("127.0.0.1:{metrics_port}"),
        "--health-address".to_owned(),
        format!("127.0.0.1:{health_port}"),
        "--kubeconfig".to_owned(),
        kubeconfig.display().to_string(),
    ];
    ShardCommand {
        identity: identity.to_owned(),
        program: bin.join("checksum-controller"),
        args: args.into_iter().map(OsString::from).collect(),
        env: vec![("CHECKSUM_WORKERS".into(), "2".into())],
        metrics_port,
        health_port,
        ready_path: Some("/readyz".to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_controller_runs_from_its_manifests_and_shard_commands() {
    let bin = stack::build_for_tests(&["sharder", "checksum-controller"]).unwrap();
    let ring = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../checksum-controller/config/controllerring.yaml");
    let setup = ControllerSetup {
        ring: "checksum-controller".to_owned(),
        lease_namespace: "checksum-system".to_owned(),
        manifests: vec![Manifest::read(&ring).unwrap()],
    };
    let options = StackOptions::default().controller(setup).patience(PATIENCE);
    // Dropped on a failed assertion, the stack kills its processes and removes its files.
    let stack = Stack::start(&bin.join("sharder"), &options).await.unwrap();
    assert_eq!(stack.operators.ring(), "checksum-controller");
    let kubeconfig = stack.control_plane.kubeconfig_path();
    for identity in ["shard-0", "shard-1"] {
        let command = shard(&bin, identity, &kubeconfig);
        stack
            .operators
            .start_command(&stack.control_plane, &command)
            .await
            .unwrap();
    }
    if let Err(error) = stack.wait_operators_ready(2).await {
        let logs: Vec<String> = stack
            .operators
            .lock()
            .await
            .iter()
            .map(|shard| format!("{}:\n{}", shard.identity(), shard.log_tail()))
            .collect();
        panic!("{error:#}\n{}", logs.join("\n"));
    }
    let ring = Api::<ControllerRing>::all(stack.client.clone())
        .get("checksum-controller")
        .await
        .unwrap();
    assert_eq!(ring.status.unwrap().available_shards, 2);
    for shard in stack.operators.lock().await.iter() {
        assert!(
            shard
                .log_path()
                .starts_with(stack.control_plane.directory().join("operators"))
        );
        let queue = shard.metric_sum("workqueue_depth").await;
        assert!(queue.is_some(), "{} serves no /metrics", shard.identity());
    }

    let unclean = stack.operators.stop_all().await;
    assert!(unclean.is_empty(), "{unclean:?}");
    stack.stop().await;
}
