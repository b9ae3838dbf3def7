//! The example shard stops on SIGTERM, as Kubernetes stops a pod, and releases its Lease on the
//! way out (docs/implement-sharding.md#3-stop-on-sigterm-ctrl-c-or-when-the-lease-is-lost).

use std::{path::PathBuf, process::Stdio};

use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::Api;

use crate::{CONTROL_PLANE, client, eventually, namespace};

/// The example's binary, which `cargo test` builds next to the test binaries.
fn example() -> PathBuf {
    let deps = std::env::current_exe().unwrap();
    let path = deps
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .join("examples/sharded_controller");
    assert!(
        path.exists(),
        "{} is missing: `cargo test -p kube-sharding` builds it, or run \
         `cargo build -p kube-sharding --example sharded_controller`",
        path.display()
    );
    path
}

#[tokio::test]
async fn the_example_shard_releases_its_lease_on_sigterm() {
    let client = client().await;
    let namespace = namespace(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("shard.log")).unwrap();
    let mut shard = tokio::process::Command::new(example())
        .env("SHARD_NAME", "shard-a")
        .env("NAMESPACE", &namespace)
        .env("KUBECONFIG", CONTROL_PLANE.get().kubeconfig_path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let leases = Api::<Lease>::namespaced(client.clone(), &namespace);
    eventually("the shard to hold its Lease", || async {
        let spec = leases.get_opt("shard-a").await.ok()??.spec?;
        (spec.holder_identity.as_deref() == Some("shard-a")).then_some(())
    })
    .await;

    let signalled = Timestamp::now();
    let pid = shard.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = shard.wait().await.unwrap();
    let output = std::fs::read_to_string(dir.path().join("shard.log")).unwrap();
    assert!(status.success(), "{status}: {output}");

    let spec = leases.get("shard-a").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity, None, "released: {spec:?}");
    assert_eq!(spec.lease_duration_seconds, Some(1));
    assert!(
        spec.renew_time.unwrap().0 >= signalled,
        "released after the signal"
    );
}
