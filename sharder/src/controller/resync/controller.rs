//! The resync controller: resyncs a ring when it changes, when one of its shards changes
//! state, and every `syncPeriod`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use controller_runtime_metrics::ReconcileMetrics;
use kube::{
    Api, Client,
    runtime::{controller::Action, watcher},
};
use sharding::api::ControllerRing;

use super::{Errors, Resync};

/// The first retry of a failed resync; it doubles up to the sync period
/// (docs/contract.md#sharder-behaviour).
const INITIAL_BACKOFF: Duration = Duration::from_secs(5);

/// An error of one reconciliation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing the ring's shard Leases failed.
    #[error("cannot list the shard Leases of ControllerRing {ring}")]
    Leases {
        /// The ring.
        ring: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Some objects or resources could not be resynced.
    #[error(transparent)]
    Resync(#[from] Errors),
}

struct Context {
    client: Client,
    resync: Resync,
    sync_period: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

/// The wait before retry number `failures` (1-based): 5 s, 10 s, 20 s, … up to `cap`.
#[must_use]
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1));
    INITIAL_BACKOFF.saturating_mul(factor).min(cap)
}

async fn reconcile(ring: Arc<ControllerRing>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = ring.ring_name().to_owned();
    let leases = super::super::ring_leases(&ctx.client, &name)
        .await
        .map_err(|source| Error::Leases {
            ring: name.clone(),
            source,
        })?;
    let summary = ctx.resync.ring(&ring, &leases).await?;
    if summary.moved + summary.drained > 0 {
        tracing::info!(
            ring = name,
            moved = summary.moved,
            drained = summary.drained,
            "resynced ring"
        );
    }
    ctx.failures.lock().expect("not poisoned").remove(&name);
    Ok(Action::requeue(ctx.sync_period))
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "the signature Controller::run expects"
)]
fn error_policy(ring: Arc<ControllerRing>, error: &Error, ctx: Arc<Context>) -> Action {
    let mut failures = ctx.failures.lock().expect("not poisoned");
    let count = failures.entry(ring.ring_name().to_owned()).or_default();
    *count += 1;
    let wait = backoff(*count, ctx.sync_period);
    tracing::warn!(error = %operations::error_chain(error), retry_in = ?wait, "resync failed");
    Action::requeue(wait)
}

/// Runs the resync controller until `shutdown` completes.
pub async fn run(
    client: Client,
    resync: Resync,
    sync_period: Duration,
    metrics: ReconcileMetrics,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let state_changes = super::super::lease_state_changes(&client);
    let ctx = Arc::new(Context {
        client: client.clone(),
        resync,
        sync_period,
        failures: Mutex::default(),
    });
    let results = super::super::controller(
        Api::<ControllerRing>::all(client),
        watcher::Config::default(),
        &metrics,
    )
    .watches_stream(
        state_changes,
        metrics.trigger_with(|lease| super::super::ring_of(&lease)),
    )
    .graceful_shutdown_on(shutdown)
    .run(
        metrics.instrument(reconcile),
        metrics.instrument_error_policy(error_policy),
        ctx,
    );
    super::super::drive(results, &metrics).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_five_seconds_up_to_the_sync_period() {
        let cap = Duration::from_secs(300);
        let waits: Vec<_> = (1..=8).map(|n| backoff(n, cap).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(u32::MAX, cap), cap);
    }
}
