//! The local target with a declared controller under test: the checksum-controller of
//! `src/scenario/testdata/checksum-controller.yaml`, its ring applied from its manifest and its
//! shards started from its command template, then killed, replaced and rolled as the
//! webhosting-operator's are.

use std::{path::Path, time::Duration};

use loadgen::{
    environment::local::Local,
    measure::snapshot::ShardQueue,
    scenario::{Scenario, Signal},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_controller_is_started_killed_and_rolled_from_its_template() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/scenario/testdata/checksum-controller.yaml");
    let mut scenario = Scenario::load(&fixture).unwrap();
    scenario.operator.lease_duration = Duration::from_secs(5);
    let bin = stack::build_for_tests(&["sharder", "checksum-controller"]).unwrap();
    let mut local =
        Local::new(bin.join("sharder"), bin, false, scenario.controller.clone()).unwrap();
    // The shards are children of the target: dropping it on a failed assertion kills them.
    local
        .prepare(2, &scenario.operator, scenario.sharder)
        .await
        .unwrap();
    assert_eq!(local.shards().await, ["shard-0", "shard-1"]);
    let scrapes = local.operator_metrics().await;
    assert_eq!(scrapes.len(), 2);
    // The measurements read the queue the scenario names.
    for (shard, text) in &scrapes {
        let queue = ShardQueue::parse(text, &scenario.controller.queue);
        assert!(queue.is_some(), "{shard} has no queue `secret`:\n{text}");
    }

    local.kill("shard-0", Signal::Term, true).await.unwrap();
    assert_eq!(local.shards().await, ["shard-1", "shard-2"]);
    local.rolling_update().await.unwrap();
    assert_eq!(local.shards().await, ["shard-3", "shard-4"]);
    let slots = local.slots().unwrap();
    assert_eq!(slots.get("shard-2"), Some(&0));
    assert_eq!(slots.get("shard-4"), Some(&0));
    let usage = local.usage().await.unwrap();
    assert!(usage.iter().any(|sample| sample.component == "shard-4"));

    local.finish().await.unwrap();
    assert!(local.shards().await.is_empty());
}
