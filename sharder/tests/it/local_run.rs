//! The README's sequence for a sharder outside a cluster
//! (docs/sharder.md#running-outside-a-cluster): `sharder webhook-certs --local DIR`, the
//! namespace of the leader Lease, then the sharder binary with `sharder/config/local.yaml`, on
//! a control plane of the test's own. Only the ports (free ones) and the certificate directory
//! (the test's) differ from the file.

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
};

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, api::PostParams};
use kube_sharding::api::labels::SHARDER_NAMESPACE;
use serde_json::json;
use sharder::config::SharderConfig;
use testenv::Environment;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::rustls::{
    self,
    pki_types::{CertificateDer, ServerName, pem::PemObject as _},
};

use crate::{PATIENCE, eventually, install_crd, namespace_and_ring};

const SHARDER: &str = env!("CARGO_BIN_EXE_sharder");

/// The addresses of `sharder/config/local.yaml`, replaced in the test by free ports.
const WEBHOOK: &str = "127.0.0.1:19443";
const METRICS: &str = "127.0.0.1:18080";
const HEALTH: &str = "127.0.0.1:18081";
/// The certificate directory of `sharder/config/local.yaml`.
const CERT_DIR: &str = "/tmp/sharder-local";

#[tokio::test]
async fn the_documented_local_run_asks_for_the_namespace_then_serves_with_its_certificate() {
    let control_plane = Environment::new().start().await.unwrap();
    let client = control_plane.client().await.unwrap();
    install_crd(&client).await;
    let dir = control_plane.directory().join("sharder-local");

    let certs = std::process::Command::new(SHARDER)
        .args(["webhook-certs", "--local"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(certs.status.success(), "{certs:?}");

    let webhook = free_port();
    let config = dir.join("local.yaml");
    std::fs::write(&config, local_yaml(&dir, webhook)).unwrap();
    let kubeconfig = control_plane.kubeconfig_path();

    let missing = tokio::time::timeout(
        PATIENCE,
        sharder(&config, &kubeconfig)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output(),
    )
    .await
    .expect("the sharder exits without its namespace")
    .unwrap();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success(), "{stderr}");
    assert!(
        stderr.contains("`kubectl create namespace sharding-system`"),
        "{stderr}"
    );

    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": SHARDER_NAMESPACE } })).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    let log = std::fs::File::create(dir.join("sharder.log")).unwrap();
    let _sharder = sharder(&config, &kubeconfig)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();

    let ca = std::fs::read(dir.join("ca.crt")).unwrap();
    for host in ["127.0.0.1", "localhost"] {
        eventually(&format!("the webhook to answer over TLS as {host}"), || {
            https_status(webhook, host, &ca)
        })
        .await;
    }
    // The API server calls a ring's webhook at the config's URL and verifies it with the CA.
    namespace_and_ring(&client).await;
}

#[test]
fn the_local_config_listens_on_loopback_on_ports_apart_from_the_usual_ones() {
    let certs = tempfile::tempdir().unwrap();
    sharder::webhook::certs::ensure(certs.path(), &["127.0.0.1".to_owned()]).unwrap();
    let text = std::fs::read_to_string(local_yaml_path())
        .unwrap()
        .replace(CERT_DIR, &certs.path().display().to_string());
    let config = SharderConfig::from_yaml(&text, Path::new("local.yaml")).unwrap();
    let addresses = [
        Some(config.webhook.server.bind_address.get()),
        config.health.bind_address.get(),
        config.metrics.bind_address.get(),
    ];
    for address in addresses {
        let address = address.expect("every server is on");
        assert!(address.ip().is_loopback(), "{address}");
        assert!(
            ![8080, 8081, 8090, 8091, 9443].contains(&address.port()),
            "{address}"
        );
    }
    assert!(!config.metrics.secure_serving);
    assert_eq!(
        config.webhook.config.client_config.url.as_deref(),
        Some(format!("https://{WEBHOOK}/").as_str())
    );
}

fn local_yaml_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/local.yaml")
}

/// `sharder/config/local.yaml` with the certificates in `dir`, the webhook on port `webhook`
/// and the other servers on free ports.
fn local_yaml(dir: &Path, webhook: u16) -> String {
    let mut text = std::fs::read_to_string(local_yaml_path()).unwrap();
    for (from, to) in [
        (WEBHOOK, format!("127.0.0.1:{webhook}")),
        (METRICS, format!("127.0.0.1:{}", free_port())),
        (HEALTH, format!("127.0.0.1:{}", free_port())),
        (CERT_DIR, dir.display().to_string()),
    ] {
        assert!(text.contains(from), "local.yaml no longer has {from}");
        text = text.replace(from, &to);
    }
    text
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The sharder binary as the README runs it: `--config` and `KUBECONFIG`; killed when dropped.
fn sharder(config: &Path, kubeconfig: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(SHARDER);
    command
        .arg("--config")
        .arg(config)
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// The status line of an HTTPS request to the webhook on 127.0.0.1:`port`, over TLS that
/// verifies the server as `host` against `ca` alone; `None` while it does not answer.
async fn https_status(port: u16, host: &str, ca: &[u8]) -> Option<String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .ok()?;
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(host.to_owned()).unwrap(), tcp)
        .await
        .ok()?;
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .starts_with("HTTP/1.1 ")
        .then(|| answer.lines().next().unwrap_or_default().to_owned())
}
