use std::time::Duration;

use testenv::Environment;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{install_crd, sharder_config};

/// The status line of a plain HTTP/1.0 GET on loopback.
async fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.lines().next().map(str::to_owned)
}

/// With its own control plane, because it stops its sharder.
#[tokio::test]
async fn health_endpoints_answer_and_a_stop_ends_the_sharder_within_the_grace_period() {
    let control_plane = Environment::new().start().await.unwrap();
    install_crd(&control_plane.client().await.unwrap()).await;
    let (config, listeners) = sharder_config(&control_plane, "lifecycle", Duration::from_secs(300));
    let grace = config.graceful_shutdown_timeout.get().unwrap();
    let health = listeners
        .health
        .as_ref()
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let webhook = listeners.webhook.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sharder = tokio::spawn(async move {
        let client = sharder::client(&config).await.unwrap();
        sharder::run(config, client, listeners, "it".into(), async {
            let _ = stopped.await;
        })
        .await
    });

    crate::eventually("/readyz to answer 200", || async {
        get(health, "/readyz")
            .await
            .filter(|status| status.contains(" 200"))
            .map(|_| ())
    })
    .await;
    assert!(get(health, "/healthz").await.unwrap().contains(" 200"));

    stop.send(()).unwrap();
    let result = tokio::time::timeout(grace + Duration::from_secs(5), sharder)
        .await
        .expect("the sharder stops within its graceful shutdown period");
    result.unwrap().unwrap();
    assert!(
        get(health, "/healthz").await.is_none(),
        "the health server is closed"
    );
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", webhook))
            .await
            .is_err(),
        "the webhook server is closed"
    );
}
