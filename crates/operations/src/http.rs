//! The endpoints every replica serves: `/healthz` and `/readyz` over plain HTTP (for the
//! kubelet's probes), and `/metrics` over HTTPS with authorization
//! (docs/metrics-security.md#how-a-scrape-is-authorized) or over plain HTTP for local runs.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Context as _;

use axum::{
    Router, extract::State, http::StatusCode, middleware, response::IntoResponse, routing::get,
};
use axum_server::{Handle, tls_rustls::RustlsConfig};
use kube::Client;
use prometheus_client::{encoding::text::encode, registry::Registry};

use crate::metrics_access::{MetricsAccess, require_access};

/// How long in-flight scrapes may take once the process stops.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A listen address as Go programs and their manifests write it: `host:port`, or `:port` for
/// every interface (`0.0.0.0:port`); `None` when it is neither.
#[must_use]
pub fn parse_listen_address(text: &str) -> Option<SocketAddr> {
    match text.strip_prefix(':') {
        Some(port) => port
            .parse()
            .ok()
            .map(|port| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))),
        None => text.parse().ok(),
    }
}

/// [`parse_listen_address`] as a flag's value parser: `ip:port`, or `:port` for every
/// interface as in the Go original's manifests.
pub fn listen_address(text: &str) -> Result<SocketAddr, String> {
    parse_listen_address(text).ok_or_else(|| format!("must be ip:port or :port, got `{text}`"))
}

/// Whether this replica can serve admissions: its caches are filled.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the replica ready.
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether the replica is ready.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The sockets of a controller's `/metrics` and `/healthz`/`/readyz`, bound before it starts so
/// that callers (tests) can use port 0.
#[derive(Debug)]
pub struct Listeners {
    /// `/metrics`.
    pub metrics: TcpListener,
    /// `/healthz` and `/readyz`.
    pub health: TcpListener,
}

impl Listeners {
    /// Binds both addresses; the error names the one that cannot be bound.
    pub fn bind(metrics: SocketAddr, health: SocketAddr) -> anyhow::Result<Self> {
        let bind = |address| {
            TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))
        };
        Ok(Self {
            metrics: bind(metrics)?,
            health: bind(health)?,
        })
    }
}

/// `/healthz` (the process serves) and `/readyz` (the caches are filled).
pub fn health_router(readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(readiness): State<Readiness>| async move {
                if readiness.is_ready() {
                    (StatusCode::OK, "ok")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "caches are not synced yet")
                }
            }),
        )
        .with_state(readiness)
}

/// `/metrics` in the Prometheus text format.
pub fn metrics_router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(registry): State<Arc<Registry>>| async move {
                let mut body = String::new();
                match encode(&mut body, &registry) {
                    Ok(()) => (
                        [(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                        .into_response(),
                    Err(error) => {
                        (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
                    }
                }
            }),
        )
        .with_state(registry)
}

/// How `/metrics` is served (docs/metrics-security.md#defaults).
#[derive(Clone, Debug)]
pub enum MetricsServing {
    /// Plain HTTP to anyone who connects: for local runs, on loopback.
    Plain,
    /// HTTPS with a self-signed certificate made at start-up; a scraper needs a bearer token
    /// whose user may `get` the path, as the API server says.
    Secure(MetricsAccess),
}

impl MetricsServing {
    /// [`Self::Secure`] with `client` if `secure`, else [`Self::Plain`].
    #[must_use]
    pub fn new(secure: bool, client: &Client) -> Self {
        if secure {
            Self::Secure(MetricsAccess::new(client.clone()))
        } else {
            Self::Plain
        }
    }
}

/// Serves [`metrics_router`] of `registry` on `listener` as `serving` says, until `stop`
/// completes.
///
/// # Errors
/// The self-signed certificate cannot be made, or serving fails.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    serving: MetricsServing,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    match serving {
        MetricsServing::Plain => serve(listener, metrics_router(registry), stop).await,
        MetricsServing::Secure(access) => {
            serve_tls(listener, secure_metrics_router(registry, access), stop).await
        }
    }
}

/// [`metrics_router`] for the requests that `access` allows.
fn secure_metrics_router(registry: Arc<Registry>, access: MetricsAccess) -> Router {
    metrics_router(registry).layer(middleware::from_fn_with_state(access, require_access))
}

/// A self-signed certificate for `localhost` and its key, both PEM: scrapers skip its
/// verification, as with controller-runtime's when no certificate is given
/// (docs/metrics-security.md#prometheus).
fn self_signed_certificate() -> Result<(String, String), rcgen::Error> {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
}

/// Serves `router` over HTTPS with a [`self_signed_certificate`] on `listener` until `stop`
/// completes, then gives in-flight requests a few seconds.
async fn serve_tls(
    listener: TcpListener,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (cert, key) =
        self_signed_certificate().context("cannot make a self-signed certificate for /metrics")?;
    let config = RustlsConfig::from_pem(cert.into_bytes(), key.into_bytes())
        .await
        .context("cannot use the self-signed certificate for /metrics")?;
    let handle = Handle::new();
    let serving = axum_server::from_tcp_rustls(listener, config)?
        .handle(handle.clone())
        .serve(router.into_make_service());
    let mut serving = std::pin::pin!(serving);
    tokio::select! {
        // The server only stops by itself on an error.
        result = &mut serving => return result.context("HTTPS server failed"),
        () = stop => handle.graceful_shutdown(Some(SHUTDOWN_GRACE)),
    }
    serving.await.context("HTTPS server failed")
}

/// Serves `router` on `listener` until `stop` completes.
pub async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
        .context("HTTP server failed")
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Request};
    use tower::ServiceExt as _;

    use super::*;

    /// The secure metrics router with an API server that refuses connections.
    fn unreachable_api_server() -> Router {
        let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        let access = MetricsAccess::new(Client::try_from(config).unwrap());
        secure_metrics_router(Arc::new(Registry::default()), access)
    }

    async fn status(router: Router, authorization: Option<&str>) -> StatusCode {
        let mut request = Request::get("/metrics");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let request = request.body(Body::empty()).unwrap();
        router.oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn a_scrape_without_a_bearer_token_is_refused_without_asking_the_api_server() {
        assert_eq!(
            status(unreachable_api_server(), None).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(unreachable_api_server(), Some("Basic dXNlcjpwYXNz")).await,
            StatusCode::UNAUTHORIZED
        );
    }

    #[tokio::test]
    async fn a_scrape_that_cannot_be_reviewed_is_a_server_error() {
        assert_eq!(
            status(unreachable_api_server(), Some("Bearer token")).await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn a_listen_address_may_omit_its_host_as_in_go() {
        assert_eq!(
            parse_listen_address(":8080"),
            Some("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            parse_listen_address("127.0.0.1:9"),
            Some("127.0.0.1:9".parse().unwrap())
        );
        for bad in ["", ":", ":http", "8080", "localhost:8080", ":70000"] {
            assert_eq!(parse_listen_address(bad), None, "{bad}");
        }
    }
}
