//! When a shard stops: on SIGTERM (how Kubernetes stops a pod), on SIGINT (Ctrl-C), or when
//! its Lease is lost (see [`ShardLeaseHandle::shutdown_signal`]).
//!
//! Stopping on SIGTERM matters: a shard that exits on it without releasing its Lease leaves
//! its objects unreconciled until the Lease expires, while a released Lease makes the sharder
//! move them at once (docs/implement-sharding.md#5-release-the-lease-on-shutdown).
//!
//! [`ShardLeaseHandle::shutdown_signal`]: crate::shard::ShardLeaseHandle::shutdown_signal

use std::future::Future;

/// What a shard's shutdown future completed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// SIGTERM: Kubernetes (or another supervisor) stops the process.
    Terminate,
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// The shard's Lease was lost: it must stop reconciling.
    LeaseLost,
}

/// Completes on SIGTERM or SIGINT, with which. The handlers are installed when this is
/// called, so a signal that arrives before the future is first polled is not lost. Where
/// SIGTERM cannot be watched, it says so and completes on Ctrl-C only.
///
/// # Panics
/// Outside a Tokio runtime.
pub fn signal() -> impl Future<Output = Shutdown> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = signal(SignalKind::terminate())
        .inspect_err(|error| {
            tracing::warn!(%error, "cannot watch SIGTERM, stopping on Ctrl-C only");
        })
        .ok();
    let interrupt = signal(SignalKind::interrupt())
        .inspect_err(|error| tracing::warn!(%error, "cannot watch SIGINT"))
        .ok();
    async move {
        let terminated = async {
            match terminate {
                Some(mut terminate) => terminate.recv().await,
                None => std::future::pending().await,
            }
        };
        let interrupted = async {
            match interrupt {
                Some(mut interrupt) => interrupt.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = terminated => Shutdown::Terminate,
            _ = interrupted => Shutdown::Interrupt,
        }
    }
}
