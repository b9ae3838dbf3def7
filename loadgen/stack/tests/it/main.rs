//! The stack on a real control plane: the sharder binary as a child process, and the shards of
//! a controller under test other than the webhosting-operator.

mod controller;

use std::time::Duration;

use k8s_openapi::api::{core::v1::Namespace, networking::v1::ServiceCIDR};
use kube::Api;
use stack::{PROJECT_LABEL, SharderProcess, SharderSettings, WEBHOSTING_RING};

const PATIENCE: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sharder_makes_the_webhosting_ring_ready_and_stops_on_sigterm() {
    let binaries = stack::build_for_tests(&["sharder"]).unwrap();
    let control_plane = stack::environment().start().await.unwrap();
    let client = control_plane.client().await.unwrap();
    stack::install_sharding(&client).await.unwrap();
    stack::install_webhosting(&client).await.unwrap();
    // Installing twice is harmless: everything is applied.
    stack::install_webhosting(&client).await.unwrap();
    let mut sharder = SharderProcess::start(
        &control_plane,
        &binaries.join("sharder"),
        &SharderSettings::default(),
    )
    .unwrap();
    assert!(
        sharder
            .log_path()
            .starts_with(control_plane.directory().join("sharder"))
    );

    if let Err(error) = stack::wait_ring_ready(&client, WEBHOSTING_RING, PATIENCE).await {
        panic!(
            "{error:#}\nthe sharder's log ends with:\n{}",
            sharder.log_tail()
        );
    }
    sharder.check_alive().unwrap();
    let shards = sharder
        .metric_sum("controller_sharding_controllerring_status_shards")
        .await;
    assert_eq!(shards, Some(0.0), "the ring has no shards yet");
    let usage = sharder.usage().unwrap();
    assert!(usage.rss_bytes > 0 && usage.peak_rss_bytes >= usage.rss_bytes);
    assert!(usage.cpu_seconds > 0.0, "{usage:?}");

    // Room for a Service per Website.
    let service_cidr = Api::<ServiceCIDR>::all(client.clone())
        .get("kubernetes")
        .await
        .unwrap();
    assert_eq!(service_cidr.spec.unwrap().cidrs.unwrap(), ["10.0.0.0/16"]);

    stack::create_project_namespace(&client, "project-it")
        .await
        .unwrap();
    let namespace = Api::<Namespace>::all(client.clone())
        .get("project-it")
        .await
        .unwrap();
    assert_eq!(
        namespace.metadata.labels.unwrap().get(PROJECT_LABEL),
        Some(&"true".to_owned())
    );

    let status = sharder.stop().await.expect("the sharder's exit status");
    assert!(status.success(), "{status}\n{}", sharder.log_tail());
    assert!(sharder.check_alive().is_err());
    assert!(sharder.scrape().await.is_none());
}
