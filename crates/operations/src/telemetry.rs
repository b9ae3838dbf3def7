//! Logging and process signals.

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Completes on Ctrl-C or SIGTERM (see [`kube_sharding::shard::shutdown::signal`]).
pub async fn shutdown_signal() {
    let signal = kube_sharding::shard::shutdown::signal().await;
    tracing::info!(?signal, "shutting down");
}
