//! The webhook's HTTPS server (docs/contract.md#sharder-behaviour): serves the webhook router with
//! rustls and reloads the serving certificate when its files change, so that rotated certificates
//! (cert-manager, mounted Secrets) take effect without a restart.
//!
//! It holds under abuse (docs/sharder.md#the-webhook-under-load): it speaks HTTP/1.1 only, as the
//! API server does to webhooks, bounds the TLS handshake, each request's headers and each idle
//! connection by the header read timeout, and applies the [`limits`](super::limits) in front of
//! the handler.

use std::{
    convert::Infallible,
    io,
    net::TcpListener,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::{Router, extract::DefaultBodyLimit, middleware, routing::post};
use axum_server::{
    Handle,
    tls_rustls::{RustlsAcceptor, RustlsConfig},
};
use operations::http::Readiness;

use super::{
    handler::{Webhook, admit},
    limits::{Gate, Limits, enforce},
};

/// The route of every ring's webhook (docs/contract.md#names-and-labels:
/// `/webhooks/sharder/controllerring/<ring>`).
pub const ROUTE: &str = "/webhooks/sharder/controllerring/{ring}";

/// How often the certificate files are checked for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// How long in-flight requests may take after shutdown starts: the API server gives up on
/// the webhook after its 5 s timeout anyway (docs/contract.md#webhook).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The only protocol offered in the TLS handshake. kube-apiserver calls webhooks over
/// HTTP/1.1 (it spreads concurrent calls over connections that way), and HTTP/2 would need
/// bounds of its own: streams per connection, flow-control windows, idle connections.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The largest read buffer of a connection, which also bounds a request's headers. hyper's
/// default of about 400 KiB per connection adds up when many connections stream bodies at
/// once; 64 KiB holds any headers the API server sends.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Errors of the webhook server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The serving certificate or key could not be loaded at startup.
    #[error("cannot load the serving certificate {cert} and key {key}", cert = cert.display(), key = key.display())]
    LoadCertificate {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why loading failed.
        #[source]
        source: io::Error,
    },
    /// Serving failed (for example, the listener could not be used).
    #[error("cannot serve the webhook")]
    Serve(#[source] io::Error),
}

/// The webhook's router, without TLS: `POST` on [`ROUTE`], answered once `ready` (the caches
/// are filled), behind the limits of `limits` except the header read timeout, which [`serve`]
/// applies.
pub fn router(webhook: Webhook, limits: Limits, ready: Readiness) -> Router {
    let gate = Gate::new(limits, webhook.metrics().rejections.clone(), ready);
    Router::new()
        .route(ROUTE, post(admit))
        .route_layer(middleware::from_fn_with_state(gate, enforce))
        // `enforce` has read the body within the limits already.
        .layer(DefaultBodyLimit::disable())
        .with_state(webhook)
}

/// Serves `router` over HTTPS on `listener` with the PEM certificate and key at `cert_path`
/// and `key_path`, reloading them when the files change, until `shutdown` completes; then
/// finishes in-flight requests (up to a few seconds) and returns.
///
/// `header_read_timeout` bounds the TLS handshake, the headers of each request, and the wait
/// for the next request on a keep-alive connection: hyper's header timer runs from the moment
/// the connection waits for a request.
///
/// A certificate that fails to load at startup is an error; one that fails to load later is
/// logged and the previous one stays in use.
pub async fn serve(
    listener: TcpListener,
    (cert_path, key_path): (PathBuf, PathBuf),
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let mut files = CertificateFiles::new(cert_path, key_path);
    files.loaded = files.modified();
    let config = files
        .load()
        .await
        .map_err(|source| Error::LoadCertificate {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;

    let handle = Handle::new();
    let acceptor = RustlsAcceptor::new(config.clone()).handshake_timeout(header_read_timeout);
    let mut server = axum_server::from_tcp(listener)
        .map_err(Error::Serve)?
        .acceptor(acceptor)
        .handle(handle.clone())
        .http1_only();
    server
        .http_builder()
        .http1()
        .header_read_timeout(header_read_timeout)
        .max_buf_size(READ_BUFFER_BYTES);
    let serving = server.serve(router.into_make_service());
    let mut serving = std::pin::pin!(serving);
    tokio::select! {
        // The server only stops by itself on an error.
        result = &mut serving => return result.map_err(Error::Serve),
        () = shutdown => handle.graceful_shutdown(Some(SHUTDOWN_GRACE)),
        never = reload_on_change(files, &config) => match never {},
    }
    serving.await.map_err(Error::Serve)
}

/// Checks the certificate files every [`RELOAD_INTERVAL`] and reloads `config` when they
/// change; runs until dropped.
async fn reload_on_change(mut files: CertificateFiles, config: &RustlsConfig) -> Infallible {
    let mut interval = tokio::time::interval(RELOAD_INTERVAL);
    loop {
        interval.tick().await;
        files.reload_if_changed(config).await;
    }
}

/// The serving certificate's files and the modification times last loaded from them.
#[derive(Debug)]
struct CertificateFiles {
    cert: PathBuf,
    key: PathBuf,
    /// The modification times of the last load attempt; `None` if they could not be read.
    loaded: Option<(SystemTime, SystemTime)>,
}

/// What [`CertificateFiles::reload_if_changed`] did.
#[derive(Debug, PartialEq, Eq)]
enum Reload {
    /// The files are as last loaded (or cannot be read right now).
    Unchanged,
    /// The new certificate and key are in use.
    Reloaded,
    /// The files changed but do not load; the previous certificate stays in use.
    Failed,
}

impl CertificateFiles {
    fn new(cert: PathBuf, key: PathBuf) -> Self {
        Self {
            cert,
            key,
            loaded: None,
        }
    }

    /// The modification times of the certificate and key files. Metadata follows symlinks,
    /// so a mounted Secret's atomic swap of its data directory counts as a change.
    fn modified(&self) -> Option<(SystemTime, SystemTime)> {
        let modified = |path: &Path| {
            std::fs::metadata(path)
                .and_then(|metadata| metadata.modified())
                .ok()
        };
        Some((modified(&self.cert)?, modified(&self.key)?))
    }

    /// The TLS configuration of the files, offering HTTP/1.1 only.
    async fn load(&self) -> io::Result<RustlsConfig> {
        let loaded = RustlsConfig::from_pem_file(&self.cert, &self.key).await?;
        let mut config = (*loaded.get_inner()).clone();
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        loaded.reload_from_config(Arc::new(config));
        Ok(loaded)
    }

    /// Reloads `config` from the files if they changed since the last attempt.
    ///
    /// A failed attempt is not retried until the files change again: a half-written pair
    /// fails once and loads when the second file is written.
    async fn reload_if_changed(&mut self, config: &RustlsConfig) -> Reload {
        let Some(modified) = self.modified() else {
            return Reload::Unchanged;
        };
        if self.loaded == Some(modified) {
            return Reload::Unchanged;
        }
        self.loaded = Some(modified);
        match self.load().await {
            Ok(loaded) => {
                config.reload_from_config(loaded.get_inner());
                tracing::info!(cert = %self.cert.display(), "reloaded the webhook serving certificate");
                Reload::Reloaded
            }
            Err(error) => {
                tracing::warn!(
                    cert = %self.cert.display(),
                    key = %self.key.display(),
                    %error,
                    "cannot reload the webhook serving certificate, keeping the previous one"
                );
                Reload::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        fs::File,
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        time::UNIX_EPOCH,
    };

    use kube::config::{KubeConfigOptions, Kubeconfig};
    use kube_sharding::{api::ControllerRing, consistent_hash::Ring};
    use serde_json::{Value, json};
    use testenv::certs::{CertificateAuthority, CertifiedKey};

    use super::*;

    fn ready() -> Readiness {
        let ready = Readiness::default();
        ready.set_ready();
        ready
    }
    use crate::webhook::{
        handler::{RingState, Webhook},
        metrics::WebhookMetrics,
        review::config_map_review,
    };

    /// No rings: every review is answered "not found", which is enough to see it answered.
    struct NoRings;

    impl RingState for NoRings {
        fn controller_ring(&self, _: &str) -> Option<Arc<ControllerRing>> {
            None
        }

        fn hash_ring(&self, _: &str) -> Arc<Ring> {
            Arc::default()
        }
    }

    /// A fresh directory for one test's files.
    fn test_dir(name: &str) -> PathBuf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sharder-webhook-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes `contents` to `path` with modification time `seconds` after the epoch, so that
    /// changes show even on file systems with coarse timestamps.
    fn write(path: &Path, contents: &str, seconds: u64) {
        std::fs::write(path, contents).unwrap();
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_secs(seconds))
            .unwrap();
    }

    fn write_pair(dir: &Path, serving: &CertifiedKey, seconds: u64) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        write(&cert, &serving.cert_pem, seconds);
        write(&key, &serving.key_pem, seconds);
        (cert, key)
    }

    /// A client of `url` that trusts only the CA in `ca_path`.
    async fn client(url: &str, ca_path: &Path) -> kube::Client {
        let kubeconfig = Kubeconfig::from_yaml(&format!(
            "apiVersion: v1
kind: Config
clusters:
- name: webhook
  cluster: {{server: '{url}', certificate-authority: '{}'}}
users:
- name: nobody
  user: {{}}
contexts:
- name: webhook
  context: {{cluster: webhook, user: nobody}}
current-context: webhook
",
            ca_path.display()
        ))
        .unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// Sends a review for ring `ring` and returns the answer.
    async fn send_review(client: &kube::Client, ring: &str) -> Result<Value, kube::Error> {
        let review = config_map_review(
            "CREATE",
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "foo"}}),
        );
        let request = axum::http::Request::post(format!("/webhooks/sharder/controllerring/{ring}"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&review).unwrap())
            .unwrap();
        let text = client.request_text(request).await?;
        Ok(serde_json::from_str(&text).unwrap())
    }

    /// Limits that tests run into quickly.
    fn test_limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(2),
            body_read_timeout: Duration::from_secs(2),
            max_concurrent_requests: 2,
            max_request_body_bytes: 1024 * 1024,
            max_in_flight_body_bytes: 2 * 1024 * 1024,
        }
    }

    /// A webhook server on a port of 127.0.0.1 with a certificate of a fresh CA.
    struct TestServer {
        dir: PathBuf,
        address: std::net::SocketAddr,
        ca: CertificateAuthority,
        ca_path: PathBuf,
        stop: tokio::sync::oneshot::Sender<()>,
        server: tokio::task::JoinHandle<Result<(), Error>>,
    }

    impl TestServer {
        fn start(name: &str, limits: Limits) -> Self {
            let dir = test_dir(name);
            let ca = CertificateAuthority::new("old").unwrap();
            let ca_path = dir.join("ca.crt");
            write(&ca_path, ca.cert_pem(), 1);
            let files = write_pair(&dir, &ca.issue_serving(&["127.0.0.1"]).unwrap(), 1);
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let webhook = Webhook::new(Arc::new(NoRings), WebhookMetrics::default());
            let server = tokio::spawn(serve(
                listener,
                files,
                router(webhook, limits, ready()),
                limits.header_read_timeout,
                async {
                    let _ = stopped.await;
                },
            ));
            Self {
                dir,
                address,
                ca,
                ca_path,
                stop,
                server,
            }
        }

        fn url(&self) -> String {
            format!("https://{}", self.address)
        }

        /// A TLS connection that offers HTTP/1.1 and HTTP/2 and trusts the server's CA.
        async fn connect(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
            use tokio_rustls::rustls::{
                self,
                pki_types::{CertificateDer, ServerName, pem::PemObject as _},
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(self.ca.cert_pem().as_bytes()) {
                roots.add(cert.unwrap()).unwrap();
            }
            let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let tcp = tokio::net::TcpStream::connect(self.address).await.unwrap();
            tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
                .await
                .unwrap()
        }

        async fn stop(self) {
            self.stop.send(()).unwrap();
            tokio::time::timeout(Duration::from_secs(10), self.server)
                .await
                .expect("the server stops after shutdown")
                .unwrap()
                .unwrap();
            std::fs::remove_dir_all(self.dir).unwrap();
        }
    }

    /// A generous bound on anything the tests wait for: they check that it happens, not when.
    const EVENTUALLY: Duration = Duration::from_secs(30);

    /// The headers of a review's request with `extra` header lines, up to the empty line.
    fn headers(extra: &str) -> String {
        format!(
            "POST /webhooks/sharder/controllerring/ring HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\n{extra}\r\n"
        )
    }

    /// Everything the server sends until it closes the connection, as text.
    async fn read_until_closed(
        stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    ) -> String {
        use tokio::io::AsyncReadExt as _;
        let mut received = Vec::new();
        tokio::time::timeout(EVENTUALLY, async {
            // A reset after the answer ends the connection as well as a close does.
            let _ = stream.read_to_end(&mut received).await;
        })
        .await
        .expect("the server closes the connection");
        String::from_utf8_lossy(&received).into_owned()
    }

    async fn send(stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>, text: &str) {
        use tokio::io::AsyncWriteExt as _;
        stream.write_all(text.as_bytes()).await.unwrap();
        stream.flush().await.unwrap();
    }

    #[tokio::test]
    async fn the_server_answers_over_https_and_picks_up_a_renewed_certificate() {
        let server = TestServer::start("serve", test_limits());
        let new_ca = CertificateAuthority::new("new").unwrap();
        let new_ca_path = server.dir.join("new-ca.crt");
        write(&new_ca_path, new_ca.cert_pem(), 1);
        let url = server.url();

        let old_client = client(&url, &server.ca_path).await;
        let answer = send_review(&old_client, "ring").await.unwrap();
        assert_eq!(answer["response"]["uid"], "uid-1");
        assert_eq!(
            answer["response"]["status"]["message"],
            r#"ControllerRing "ring" not found"#
        );
        // Only the webhook's route is served.
        let not_found = old_client
            .request_text(
                axum::http::Request::post("/webhooks/other")
                    .body(Vec::new())
                    .unwrap(),
            )
            .await;
        assert!(matches!(not_found, Err(kube::Error::Api(status)) if status.code == 404));
        drop(old_client);

        // The new CA is not trusted until the server serves a certificate it signed.
        assert!(
            send_review(&client(&url, &new_ca_path).await, "ring")
                .await
                .is_err()
        );
        write_pair(
            &server.dir,
            &new_ca.issue_serving(&["127.0.0.1"]).unwrap(),
            2,
        );
        let mut renewed = false;
        for _ in 0..40 {
            // A new client each time: a pooled connection keeps the certificate it started with.
            if send_review(&client(&url, &new_ca_path).await, "ring")
                .await
                .is_ok()
            {
                renewed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(renewed, "the renewed certificate was not picked up");
        server.stop().await;
    }

    #[tokio::test]
    async fn only_http1_is_offered_and_an_idle_connection_is_closed() {
        let server = TestServer::start("http1", test_limits());
        let mut stream = server.connect().await;
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        send(&mut stream, &headers("Content-Length: 2\r\n")).await;
        send(&mut stream, "{}").await;
        // Kept alive after the answer, then closed for idling.
        let received = read_until_closed(&mut stream).await;
        assert!(received.starts_with("HTTP/1.1 200 OK\r\n"), "{received}");
        server.stop().await;
    }

    #[tokio::test]
    async fn stalled_headers_and_a_stalled_body_are_closed() {
        let server = TestServer::start("stalled", test_limits());
        // Half the headers, then nothing: hyper closes the connection.
        let mut headers_only = server.connect().await;
        send(
            &mut headers_only,
            "POST /webhooks/sharder/controllerring/ring HTTP/1.1\r\nHost: 127",
        )
        .await;
        // All headers and half the body, then nothing: answered 408 and closed.
        let mut half_body = server.connect().await;
        send(&mut half_body, &headers("Content-Length: 100\r\n")).await;
        send(&mut half_body, r#"{"apiVersion": "#).await;

        let received = read_until_closed(&mut headers_only).await;
        assert!(!received.contains(" 200 "), "{received}");
        let received = read_until_closed(&mut half_body).await;
        assert!(
            received.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{received}"
        );
        assert!(
            received.contains("the request body did not arrive within the webhook's timeout of 2s"),
            "{received}"
        );
        server.stop().await;
    }

    #[tokio::test]
    async fn a_body_announced_over_the_limit_is_rejected_with_413_without_being_read() {
        let server = TestServer::start("too-large", test_limits());
        let mut stream = server.connect().await;
        // 15 MB announced, none sent: the answer cannot wait for the body.
        send(
            &mut stream,
            &headers("Content-Length: 15000000\r\nConnection: close\r\n"),
        )
        .await;
        let received = read_until_closed(&mut stream).await;
        assert!(
            received.starts_with("HTTP/1.1 413 Payload Too Large\r\n"),
            "{received}"
        );
        assert!(
            received
                .contains("the request body is larger than the webhook's limit of 1048576 bytes"),
            "{received}"
        );
        server.stop().await;
    }

    #[tokio::test]
    async fn requests_beyond_the_concurrency_limit_are_answered_429_at_once() {
        let server = TestServer::start("busy", test_limits());
        // Two requests whose bodies never come hold both slots until their body timeout.
        let mut holders = Vec::new();
        for _ in 0..2 {
            let mut stream = server.connect().await;
            send(&mut stream, &headers("Content-Length: 100\r\n")).await;
            holders.push(stream);
        }
        // The holders' headers may still be on their way: the third request is repeated until
        // it finds both slots taken.
        let busy = tokio::time::timeout(EVENTUALLY, async {
            loop {
                let mut stream = server.connect().await;
                send(
                    &mut stream,
                    &headers("Content-Length: 2\r\nConnection: close\r\n"),
                )
                .await;
                send(&mut stream, "{}").await;
                let received = read_until_closed(&mut stream).await;
                if received.starts_with("HTTP/1.1 429 Too Many Requests\r\n") {
                    break received;
                }
            }
        })
        .await
        .expect("a request beyond the limit is answered 429");
        assert!(busy.contains("retry-after: 1\r\n"), "{busy}");
        assert!(
            busy.contains("the webhook is handling its limit of 2 requests"),
            "{busy}"
        );
        // Once the holders time out, their slots are free again.
        for mut holder in holders {
            let received = read_until_closed(&mut holder).await;
            assert!(received.starts_with("HTTP/1.1 408"), "{received}");
        }
        let answer = send_review(&client(&server.url(), &server.ca_path).await, "ring")
            .await
            .unwrap();
        assert_eq!(answer["response"]["uid"], "uid-1");
        server.stop().await;
    }

    #[tokio::test]
    async fn a_certificate_that_does_not_load_at_startup_is_an_error() {
        let dir = test_dir("startup");
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        write(&cert, "not a certificate", 1);
        write(&key, "not a key", 1);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let webhook = Webhook::new(Arc::new(NoRings), WebhookMetrics::default());
        let result = serve(
            listener,
            (cert, key),
            router(webhook, test_limits(), ready()),
            Duration::from_secs(1),
            std::future::pending(),
        )
        .await;
        assert!(
            matches!(result, Err(Error::LoadCertificate { .. })),
            "{result:?}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_changed_certificate_is_reloaded_once_and_a_broken_one_keeps_the_previous() {
        let dir = test_dir("reload");
        let ca = CertificateAuthority::new("ca").unwrap();
        let (cert, key) = write_pair(&dir, &ca.issue_serving(&["127.0.0.1"]).unwrap(), 1);
        let mut files = CertificateFiles::new(cert.clone(), key.clone());
        files.loaded = files.modified();
        let config = RustlsConfig::from_pem_file(&cert, &key).await.unwrap();
        let initial = config.get_inner();

        assert_eq!(files.reload_if_changed(&config).await, Reload::Unchanged);

        write(&cert, "not a certificate", 2);
        assert_eq!(files.reload_if_changed(&config).await, Reload::Failed);
        assert!(
            Arc::ptr_eq(&initial, &config.get_inner()),
            "the previous certificate stays in use"
        );
        // Not retried (nor logged again) until the files change.
        assert_eq!(files.reload_if_changed(&config).await, Reload::Unchanged);

        write_pair(&dir, &ca.issue_serving(&["127.0.0.1"]).unwrap(), 3);
        assert_eq!(files.reload_if_changed(&config).await, Reload::Reloaded);
        assert!(!Arc::ptr_eq(&initial, &config.get_inner()));
        assert_eq!(files.reload_if_changed(&config).await, Reload::Unchanged);

        // A missing file is no change: the previous certificate stays in use.
        std::fs::remove_file(&key).unwrap();
        assert_eq!(files.reload_if_changed(&config).await, Reload::Unchanged);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
