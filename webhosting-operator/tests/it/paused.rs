//! A shard paused past the takeover of its Lease (SIGSTOP) and resumed (SIGCONT) starts no
//! reconciliation: its fence closed by its own clock while it was paused
//! (docs/contract.md#fencing).

use std::collections::BTreeSet;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use webhosting_operator::audit::overlaps;

use super::*;

const SHARDS: [&str; 2] = ["shard-0", "shard-1"];

/// Websites created beyond the two samples, so that both shards get some.
const EXTRA: usize = 18;

/// Sends `signal` (`-STOP`, `-CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[tokio::test]
async fn a_shard_paused_past_the_takeover_starts_no_reconciliation_when_resumed() {
    let (control_plane, client, _sharder) = stack().await;
    let mut operators = shards(&control_plane, &client, &SHARDS).await;
    create_samples(&client, EXTRA).await;
    let websites = all_ready(&client, EXTRA + 2).await;
    let owned: BTreeSet<String> = websites
        .iter()
        .filter(|w| shard_of(w.labels()) == Some("shard-0"))
        .map(key)
        .collect();
    assert!(!owned.is_empty(), "shard-0 owns Websites");

    // Paused while idle: a reconciliation in flight would span the pause.
    testenv::eventually("shard-0 to be idle", PATIENCE, || async {
        let records = audit(&control_plane, &["shard-0"]);
        let started = records.iter().filter(|r| r.event == "start").count();
        let quiet_since = Timestamp::now().as_nanosecond() - 1_000_000_000;
        let idle = started * 2 == records.len() && records.iter().all(|r| r.time < quiet_since);
        idle.then_some(())
    })
    .await;
    let paused_at = Timestamp::now().as_nanosecond();
    let pid = operators[0].pid();
    signal(pid, "-STOP");

    // Its Lease expires (5 s) and is taken over (10 s); shard-1 reconciles its Websites.
    reconciled_elsewhere(
        (&control_plane, &client),
        &owned,
        "shard-0",
        paused_at,
        (&SHARDS, EXTRA + 2),
    )
    .await;
    // A Theme change under the paused shard: its stale caches still map it to the Websites it
    // owned, so it would reconcile them on resume if nothing stopped it.
    Api::<Theme>::all(client.clone())
        .patch(
            "exciting",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "color": "darkorange" } })),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let resumed_at = Timestamp::now().as_nanosecond();
    signal(pid, "-CONT");

    let exit = testenv::eventually("shard-0 to exit", PATIENCE, || {
        std::future::ready(operators[0].check_alive().err())
    })
    .await
    .to_string();
    assert!(
        exit.contains("exit status: 1"),
        "a lost Lease is an error: {exit}"
    );
    let websites = all_ready(&client, EXTRA + 2).await;
    let users: Vec<&Website> = websites
        .iter()
        .filter(|w| w.spec.theme == "exciting")
        .collect();
    testenv::eventually("the new color in every ConfigMap", PATIENCE, || async {
        for website in &users {
            let html = config_map_of(&client, website)
                .await?
                .data?
                .remove("index.html")?;
            if !html.contains("darkorange") {
                return None;
            }
        }
        Some(())
    })
    .await;

    let records = audit(&control_plane, &SHARDS);
    let late: Vec<_> = records
        .iter()
        .filter(|r| r.shard == "shard-0" && r.event == "start" && r.time >= resumed_at)
        .collect();
    assert!(
        late.is_empty(),
        "shard-0 reconciled after resuming: {late:#?}"
    );
    assert_eq!(overlaps(&records), Vec::<String>::new());
}
