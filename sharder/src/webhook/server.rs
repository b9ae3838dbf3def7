//! The webhook's HTTPS server (docs/contract.md#sharder-behaviour): serves the webhook router with
//! rustls and reloads the serving certificate when its files change, so that rotated certificates
//! (cert-manager, mounted Secrets) take effect without a restart.

use std::{
    convert::Infallible,
    io,
    net::TcpListener,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use axum::{Router, extract::DefaultBodyLimit, routing::post};
use axum_server::{Handle, tls_rustls::RustlsConfig};

use super::handler::{Webhook, admit};

/// The route of every ring's webhook (docs/contract.md#names-and-labels:
/// `/webhooks/sharder/controllerring/<ring>`).
pub const ROUTE: &str = "/webhooks/sharder/controllerring/{ring}";

/// How often the certificate files are checked for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// How long in-flight requests may take after shutdown starts: the API server gives up on
/// the webhook after its 5 s timeout anyway (docs/contract.md#webhook).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The largest request body accepted: a review carries the object and, for updates, the old
/// object, each up to etcd's 1.5 MiB limit, so axum's 2 MiB default is too small.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

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

/// The webhook's router, without TLS: `POST` on [`ROUTE`].
pub fn router(webhook: Webhook) -> Router {
    Router::new()
        .route(ROUTE, post(admit))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(webhook)
}

/// Serves `router` over HTTPS on `listener` with the PEM certificate and key at `cert_path`
/// and `key_path`, reloading them when the files change, until `shutdown` completes; then
/// finishes in-flight requests (up to a few seconds) and returns.
///
/// A certificate that fails to load at startup is an error; one that fails to load later is
/// logged and the previous one stays in use.
pub async fn serve(
    listener: TcpListener,
    cert_path: PathBuf,
    key_path: PathBuf,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let mut files = CertificateFiles::new(cert_path, key_path);
    files.loaded = files.modified();
    let config = RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|source| Error::LoadCertificate {
            cert: files.cert.clone(),
            key: files.key.clone(),
            source,
        })?;

    let handle = Handle::new();
    let serving = axum_server::from_tcp_rustls(listener, config.clone())
        .map_err(Error::Serve)?
        .handle(handle.clone())
        .serve(router.into_make_service());
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
        match config.reload_from_pem_file(&self.cert, &self.key).await {
            Ok(()) => {
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
    use serde_json::{Value, json};
    use sharding::{api::ControllerRing, consistent_hash::Ring};
    use testenv::certs::{CertificateAuthority, CertifiedKey};

    use super::*;
    use crate::webhook::{
        handler::{RingState, Webhook},
        metrics::WebhookMetrics,
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
        let review = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "uid-1",
                "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                "resource": {"group": "", "version": "v1", "resource": "configmaps"},
                "operation": "CREATE",
                "userInfo": {},
                "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "foo"}},
            }
        });
        let request = axum::http::Request::post(format!("/webhooks/sharder/controllerring/{ring}"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&review).unwrap())
            .unwrap();
        let text = client.request_text(request).await?;
        Ok(serde_json::from_str(&text).unwrap())
    }

    #[tokio::test]
    async fn the_server_answers_over_https_and_picks_up_a_renewed_certificate() {
        let dir = test_dir("serve");
        let (old_ca, new_ca) = (
            CertificateAuthority::new("old").unwrap(),
            CertificateAuthority::new("new").unwrap(),
        );
        let (old_ca_path, new_ca_path) = (dir.join("old-ca.crt"), dir.join("new-ca.crt"));
        write(&old_ca_path, old_ca.cert_pem(), 1);
        write(&new_ca_path, new_ca.cert_pem(), 1);
        let (cert, key) = write_pair(&dir, &old_ca.issue_serving(&["127.0.0.1"]).unwrap(), 1);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let webhook = Webhook::new(Arc::new(NoRings), WebhookMetrics::default());
        let server = tokio::spawn(serve(listener, cert, key, router(webhook), async {
            let _ = stopped.await;
        }));

        let old_client = client(&url, &old_ca_path).await;
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
        write_pair(&dir, &new_ca.issue_serving(&["127.0.0.1"]).unwrap(), 2);
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

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server stops after shutdown")
            .unwrap()
            .unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_certificate_that_does_not_load_at_startup_is_an_error() {
        let dir = test_dir("startup");
        let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
        write(&cert, "not a certificate", 1);
        write(&key, "not a key", 1);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let webhook = Webhook::new(Arc::new(NoRings), WebhookMetrics::default());
        let result = serve(listener, cert, key, router(webhook), std::future::pending()).await;
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
