//! What every binary of the project shares: logging and signals ([`telemetry`]), the
//! `/healthz`, `/readyz` and `/metrics` endpoints ([`http`]) and who may read `/metrics`
//! ([`metrics_access`]), leader election ([`leader`]), the
//! process lifecycle of servers, membership and shutdown ([`runtime`]), an API client that
//! counts its requests ([`client`]), stopping ([`stopped`]), and the one duration type, in Go's
//! syntax ([`Duration`]).

#![deny(missing_docs)]

pub mod client;
pub mod duration;
pub mod http;
pub mod leader;
pub mod metrics_access;
pub mod runtime;
pub mod telemetry;

pub use duration::Duration;

use tokio::sync::watch;

/// Completes once `stop` turns true (or its sender is gone).
pub fn stopped(stop: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + Sync + use<> {
    let mut stop = stop.clone();
    async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    }
}

/// An error and its causes on one line, for logs.
#[must_use]
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
