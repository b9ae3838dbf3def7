use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{METRICS_PORT, client, create_objects, eventually, namespace_and_ring, shard};

/// The shared sharder's `/metrics` page.
async fn scrape() -> String {
    page(*METRICS_PORT.get().expect("the shared sharder runs")).await
}

/// The `/metrics` page served on loopback port `port` (plain HTTP/1.0, no client needed).
pub async fn page(port: u16) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.0 200"), "{response}");
    response
}

/// Waits until the sharder's cache holds `shard` as ready: the webhook assigns only to shards
/// that cache has seen, and the state gauge is read from it.
async fn seen_ready(ring: &str, shard: &str) {
    let ready = format!(
        r#"controller_sharding_shard_state{{namespace="{ring}",shard="{shard}",controllerring="{ring}",state="ready"}} 1"#
    );
    eventually("the sharder to see the shard ready", || async {
        scrape().await.lines().any(|l| l == ready).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_sharder_exports_the_contract_metrics_for_a_ring() {
    let client = client().await;
    let ring = namespace_and_ring(&client).await;
    let lease = shard(&client, &ring, "shard-a", 15).await;
    seen_ready(&ring, "shard-a").await;
    create_objects(&client, &ring, 2).await;

    let text = eventually("the ring's series", || async {
        let text = scrape().await;
        text.contains(&format!(
            r#"controller_sharding_controllerring_status_available_shards{{controllerring="{ring}""#
        ))
        .then_some(text)
    })
    .await;
    let has = |line: &str| text.lines().any(|l| l.starts_with(line));
    assert!(
        has(&format!(
            r#"controller_sharding_assignments_total{{controllerring="{ring}",group="",resource="configmaps"}} 2"#
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            r#"controller_sharding_assignments_total{{controllerring="{ring}",group="",resource="secrets"}} 2"#
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            r#"controller_sharding_shard_state{{namespace="{ring}",shard="shard-a",controllerring="{ring}",state="ready"}} 1"#
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            r#"controller_sharding_shard_info{{namespace="{ring}",shard="shard-a",controllerring="{ring}""#
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            r#"controller_sharding_ring_calculations_total{{controllerring="{ring}"}}"#
        )),
        "{text}"
    );
    for name in [
        "controller_sharding_controllerring_metadata_generation",
        "controller_sharding_controllerring_observed_generation",
        "controller_sharding_controllerring_status_shards",
    ] {
        assert!(
            has(&format!(r#"{name}{{controllerring="{ring}""#)),
            "{name} in {text}"
        );
    }
    assert!(
        has(r#"rest_client_requests_total{code="200",method="GET",host="127.0.0.1:"#),
        "{text}"
    );
    for controller in ["controllerring", "shardlease", "sharder"] {
        assert!(
            has(&format!(
                r#"controller_runtime_reconcile_total{{controller="{controller}",result="#
            )),
            "{controller} in {text}"
        );
        assert!(
            has(&format!(
                r#"controller_runtime_reconcile_time_seconds_count{{controller="{controller}"}}"#
            )),
            "{controller} in {text}"
        );
        assert!(
            has(&format!(
                r#"controller_runtime_active_workers{{controller="{controller}"}}"#
            )),
            "{controller} in {text}"
        );
        // Every controller saw its objects arrive through a watch and took them from its queue.
        for series in [
            "workqueue_adds_total",
            "workqueue_queue_duration_seconds_count",
            "workqueue_work_duration_seconds_count",
        ] {
            let prefix = format!(r#"{series}{{name="{controller}"}} "#);
            let count: u64 = text
                .lines()
                .find_map(|line| line.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no {prefix} in {text}"))
                .parse()
                .unwrap();
            assert!(count > 0, "{prefix} is 0");
        }
        assert!(
            has(&format!(r#"workqueue_depth{{name="{controller}"}}"#)),
            "{controller} in {text}"
        );
    }
    lease.release().await.unwrap();
}
