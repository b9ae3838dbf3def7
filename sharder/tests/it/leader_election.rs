use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_sharding::api::{ControllerRing, labels};
use sharder::config::PositiveDuration;

use crate::{eventually, leader_election_control_plane, namespace_and_ring, sharder_config};

/// With its own control plane: two sharders contend for leadership there.
#[tokio::test]
async fn only_the_leader_runs_the_controllers_and_another_replica_takes_over() {
    let (control_plane, client) = leader_election_control_plane(testenv::Environment::new()).await;

    let start = |name: &'static str| {
        let (mut config, listeners) =
            sharder_config(&control_plane, name, Duration::from_secs(300));
        config.leader_election.leader_elect = true;
        let positive = |secs| PositiveDuration::new(Duration::from_secs(secs)).unwrap();
        config.leader_election.lease_duration = positive(4);
        config.leader_election.renew_deadline = positive(2);
        config.leader_election.retry_period = positive(1);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let client = sharder::client(&config).await.unwrap();
            sharder::run(config, client, listeners, name.into(), async {
                let _ = stopped.await;
            })
            .await
        });
        (stop, task)
    };
    let leases = Api::<Lease>::namespaced(client.clone(), labels::SHARDER_NAMESPACE);
    let holder = || async {
        leases
            .get_opt(labels::SHARDER_LEASE)
            .await
            .ok()??
            .spec?
            .holder_identity
            .filter(|h| !h.is_empty())
    };

    let (stop_first, first) = start("first");
    eventually("the first replica to lead", || async {
        (holder().await? == "first").then_some(())
    })
    .await;
    let (stop_second, second) = start("second");
    // The leader's controllers make a new ring ready; the other replica only serves.
    namespace_and_ring(&client).await;
    assert_eq!(holder().await.as_deref(), Some("first"));

    stop_first.send(()).unwrap();
    first.await.unwrap().unwrap();
    eventually("the second replica to take over", || async {
        (holder().await? == "second").then_some(())
    })
    .await;
    let ring = namespace_and_ring(&client).await;
    let status = Api::<ControllerRing>::all(client.clone())
        .get(&ring)
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.conditions[0].status, "True");

    stop_second.send(()).unwrap();
    second.await.unwrap().unwrap();
}
