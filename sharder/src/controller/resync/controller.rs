//! The resync controller: resyncs a ring when it changes, when one of its shards changes
//! state, and every `syncPeriod`; it shares each ring's latest failure with the ControllerRing
//! controller, which reports it in the ring's status.

use std::{
    collections::HashMap,
    fmt::Write as _,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use controller_runtime_metrics::ReconcileMetrics;
use futures::channel::mpsc;
use kube::{
    Api, Client,
    runtime::{controller::Action, reflector::ObjectRef, watcher},
};
use kube_sharding::{api::ControllerRing, strategy::Strategy};

use super::{Error as ResyncError, Errors, Resync};

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

impl Error {
    /// What the ring's status reports of this failure (docs/contract.md#resync), if anything:
    /// conflicts are left out, as they are expected when objects change during a resync and
    /// the retry in 5 s settles them, and so is a resync stopped by the leader's fence, since
    /// the leader may no longer write.
    #[must_use]
    pub fn reported(&self) -> Option<String> {
        let errors = match self {
            Self::Leases { .. } => return Some(operations::error_chain(self)),
            Self::Resync(errors) => &errors.errors,
        };
        let mut reported = errors.iter().filter(|error| !error.expected());
        let first = reported.next()?;
        let more = reported.count();
        let mut message = format!("resync failed: {}", operations::error_chain(first));
        if more > 0 {
            let _ = write!(message, " (and {more} more)");
        }
        Some(message)
    }
}

impl ResyncError {
    /// Whether this failure is part of normal operation: a conflict, a stop at the fence, or a
    /// load table that is not synced yet.
    fn expected(&self) -> bool {
        match self {
            // The table of a bounded-load ring syncs within moments of its creation, unless its
            // watch fails, which is reported.
            Self::Fenced { .. } | Self::NotSynced { failure: None, .. } => true,
            Self::Patch {
                source: kube::Error::Api(status),
                ..
            } => status.is_conflict(),
            _ => false,
        }
    }
}

/// The latest reported resync failure of each ring, shared with the ControllerRing controller
/// (docs/contract.md#controllerring). A change is sent as the ring's reference, so that the
/// ring's status is written when, and only when, what it reports changes.
#[derive(Clone, Debug)]
pub struct Failures {
    latest: Arc<Mutex<HashMap<String, String>>>,
    changes: mpsc::UnboundedSender<ObjectRef<ControllerRing>>,
}

impl Failures {
    /// An empty record, and the stream of rings whose failure changed.
    #[must_use]
    pub fn new() -> (Self, mpsc::UnboundedReceiver<ObjectRef<ControllerRing>>) {
        let (changes, receiver) = mpsc::unbounded();
        let failures = Self {
            latest: Arc::default(),
            changes,
        };
        (failures, receiver)
    }

    /// The latest reported failure of `ring`; `None` once a resync succeeded.
    #[must_use]
    pub fn get(&self, ring: &str) -> Option<String> {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(ring)
            .cloned()
    }

    /// Records `failure` of `ring`, announcing it if it differs from the one before.
    fn set(&self, ring: &str, failure: Option<String>) {
        let changed = {
            let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
            match failure {
                Some(failure) => latest.insert(ring.to_owned(), failure.clone()) != Some(failure),
                None => latest.remove(ring).is_some(),
            }
        };
        if changed {
            // The receiver is gone only when the ControllerRing controller stopped.
            let _ = self.changes.unbounded_send(ObjectRef::new(ring));
        }
    }
}

struct Context {
    client: Client,
    resync: Resync,
    sync_period: Duration,
    retries: Mutex<HashMap<String, u32>>,
    failures: Failures,
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
    ctx.retries.lock().expect("not poisoned").remove(&name);
    ctx.failures.set(&name, None);
    // Under bounded load the webhook puts a controlled object on its controller's shard in the
    // table, so the controlled objects of a drained controller follow once the drain is
    // acknowledged, at the next resync; it comes soon while objects move
    // (docs/sharder.md#assignment-strategies).
    if summary.strategy == Strategy::BoundedLoad && summary.moved + summary.drained > 0 {
        return Ok(Action::requeue(INITIAL_BACKOFF.min(ctx.sync_period)));
    }
    Ok(Action::requeue(ctx.sync_period))
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "the signature Controller::run expects"
)]
fn error_policy(ring: Arc<ControllerRing>, error: &Error, ctx: Arc<Context>) -> Action {
    let reported = error.reported();
    let expected = reported.is_none();
    ctx.failures.set(ring.ring_name(), reported);
    let mut retries = ctx.retries.lock().expect("not poisoned");
    let count = retries.entry(ring.ring_name().to_owned()).or_default();
    *count += 1;
    let wait = backoff(*count, ctx.sync_period);
    let error = operations::error_chain(error);
    if expected {
        // Objects that changed while a move patched them, or a leader stepping down: normal
        // during moves and settled by the retry, so not a warning.
        tracing::info!(ring = ring.ring_name(), retry_in = ?wait, %error, "resync incomplete, retrying");
    } else {
        tracing::warn!(ring = ring.ring_name(), retry_in = ?wait, %error, "resync failed");
    }
    Action::requeue(wait)
}

/// Runs the resync controller until `shutdown` completes, recording failures in `failures`.
pub async fn run(
    client: Client,
    resync: Resync,
    sync_period: Duration,
    failures: Failures,
    metrics: ReconcileMetrics,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let state_changes = super::super::lease_state_changes(&client);
    let ctx = Arc::new(Context {
        client: client.clone(),
        resync,
        sync_period,
        retries: Mutex::default(),
        failures,
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
    use futures::StreamExt as _;
    use kube::core::Status;

    use super::*;

    fn patch_error(reason: &str, code: u16) -> ResyncError {
        ResyncError::Patch {
            action: "move",
            resource: "/configmaps".into(),
            object: "ns/cm".into(),
            source: kube::Error::Api(Status::failure("nope", reason).with_code(code).boxed()),
        }
    }

    fn resync_errors(errors: Vec<ResyncError>) -> Error {
        Error::Resync(Errors {
            ring: "ring".into(),
            errors,
        })
    }

    #[test]
    fn conflicts_alone_are_not_reported() {
        let error = resync_errors(vec![
            patch_error("Conflict", 409),
            patch_error("Conflict", 409),
        ]);
        assert_eq!(error.reported(), None);
    }

    #[test]
    fn other_failures_are_reported_with_the_first_and_a_count_of_the_rest() {
        let error = resync_errors(vec![
            patch_error("Conflict", 409),
            ResyncError::UnknownResource("example.com/things".into()),
            patch_error("Forbidden", 403),
            patch_error("Forbidden", 403),
        ]);
        assert_eq!(
            error.reported().as_deref(),
            Some(
                "resync failed: resource example.com/things is not served by the API server \
                 (and 2 more)"
            )
        );
    }

    #[test]
    fn a_load_table_that_is_not_synced_yet_is_reported_only_when_its_watch_failed() {
        let not_synced = |failure: Option<&str>| {
            resync_errors(vec![ResyncError::NotSynced {
                ring: "ring".into(),
                failure: failure.map(str::to_owned),
            }])
        };
        assert_eq!(not_synced(None).reported(), None);
        assert_eq!(
            not_synced(Some("cannot watch /ConfigMap: forbidden"))
                .reported()
                .as_deref(),
            Some(
                "resync failed: the load table of bounded-load ControllerRing ring is not synced \
                 yet: cannot watch /ConfigMap: forbidden"
            )
        );
    }

    #[tokio::test]
    async fn a_ring_is_announced_only_when_its_failure_changes() {
        let (failures, mut changes) = Failures::new();
        failures.set("ring", Some("a".into()));
        failures.set("ring", Some("a".into()));
        failures.set("ring", Some("b".into()));
        failures.set("ring", None);
        failures.set("ring", None);
        assert_eq!(failures.get("ring"), None);
        drop(failures);
        let announced: Vec<_> = changes.by_ref().collect().await;
        assert_eq!(announced, vec![ObjectRef::new("ring"); 3]);
    }

    #[test]
    fn backoff_doubles_from_five_seconds_up_to_the_sync_period() {
        let cap = Duration::from_secs(300);
        let waits: Vec<_> = (1..=8).map(|n| backoff(n, cap).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(backoff(u32::MAX, cap), cap);
    }
}
