//! The ControllerRing controller (docs/contract.md#webhook, docs/contract.md#sharder-behaviour):
//! applies each ring's webhook configuration and reports its shards in the ring's status with a
//! `Ready` condition.

use std::{sync::Arc, time::Duration};

use controller_runtime_metrics::ReconcileMetrics;
use k8s_openapi::{
    api::{admissionregistration::v1::MutatingWebhookConfiguration, coordination::v1::Lease},
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource,
    api::{Patch, PatchParams},
    runtime::{
        WatchStreamExt as _,
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
        watcher::{self, watcher},
    },
};
use serde_json::json;
use sharding::{
    api::{ControllerRing, ControllerRingStatus, controller_ring::CONDITION_READY, labels},
    fence::{Expired, Fence},
    leases::Shards,
};

use crate::webhook::configuration::{WebhookConfigSettings, webhook_configuration};

/// The field manager of the controller's writes and the reporter of its events, as in the Go
/// original (docs/compatibility.md). Its server-side applies are not forced, so a field
/// another manager owns is a conflict, reported in the ring's status, rather than taken over.
const FIELD_MANAGER: &str = "controllerring-controller";

/// Errors of one reconciliation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The webhook configuration could not be applied.
    #[error("cannot apply MutatingWebhookConfiguration {name}")]
    ApplyWebhook {
        /// Its name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The status could not be written.
    #[error("cannot update the status of ControllerRing {ring}")]
    Status {
        /// The ring.
        ring: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Leadership may have passed to another replica: nothing more is written.
    #[error("not writing for ControllerRing {ring}")]
    Fenced {
        /// The ring.
        ring: String,
        /// Why the fence is closed.
        #[source]
        source: Expired,
    },
}

/// The status of `ring` with shard Leases `leases` at `now`; `failure` is why applying the
/// webhook configuration failed, if it did. The condition's transition time is kept while
/// its status stays the same.
#[must_use]
pub fn desired_status(
    ring: &ControllerRing,
    leases: &[Lease],
    now: Timestamp,
    failure: Option<&str>,
) -> ControllerRingStatus {
    let shards = Shards::from_leases(leases, now);
    let (status, reason, message) = match failure {
        None => (
            "True",
            "ReconciliationSucceeded",
            "ControllerRing was successfully reconciled".to_owned(),
        ),
        Some(failure) => (
            "False",
            "ReconciliationFailed",
            shorten(failure, MAX_MESSAGE_BYTES),
        ),
    };
    let previous = ring
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == CONDITION_READY));
    let last_transition_time = previous
        .filter(|c| c.status == status)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    ControllerRingStatus {
        observed_generation: ring.metadata.generation,
        shards: i32::try_from(shards.len()).unwrap_or(i32::MAX),
        available_shards: i32::try_from(shards.available().count()).unwrap_or(i32::MAX),
        conditions: vec![Condition {
            type_: CONDITION_READY.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            observed_generation: ring.metadata.generation,
            last_transition_time,
        }],
    }
}

/// The longest failure message kept in the Ready condition and in an event: the API server
/// rejects an event whose note is longer, so the failure would go unrecorded.
const MAX_MESSAGE_BYTES: usize = 1024;

/// `text` cut to at most `max` bytes at a character boundary, ending in `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let ellipsis = '…';
    let mut end = max - ellipsis.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

struct Context {
    client: Client,
    settings: WebhookConfigSettings,
    recorder: Recorder,
    fence: Fence,
}

impl Context {
    /// [`super::fenced_write`] as this controller's error.
    fn fenced_write(&self, verb: &str, ring: &str) -> Result<(), Error> {
        super::fenced_write(&self.fence, verb, ring).map_err(|source| Error::Fenced {
            ring: ring.to_owned(),
            source,
        })
    }
}

async fn reconcile(ring: Arc<ControllerRing>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = ring.ring_name().to_owned();
    let configuration = webhook_configuration(&ring, &ctx.settings);
    ctx.fenced_write("apply webhook configuration", &name)?;
    let applied = Api::<MutatingWebhookConfiguration>::all(ctx.client.clone())
        .patch(
            &labels::webhook_configuration(&name),
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&configuration),
        )
        .await
        .map_err(|source| Error::ApplyWebhook {
            name: labels::webhook_configuration(&name),
            source,
        });
    let failure = applied.as_ref().err().map(|e| operations::error_chain(e));
    if let Some(failure) = &failure {
        let event = Event {
            type_: EventType::Warning,
            reason: "ReconciliationFailed".to_owned(),
            note: Some(shorten(failure, MAX_MESSAGE_BYTES)),
            action: "Reconcile".to_owned(),
            secondary: None,
        };
        ctx.fenced_write("record event", &name)?;
        if let Err(error) = ctx.recorder.publish(&event, &ring.object_ref(&())).await {
            tracing::warn!(%error, "cannot publish event");
        }
    }

    let leases = super::ring_leases(&ctx.client, &name)
        .await
        .map_err(|source| Error::Status {
            ring: name.clone(),
            source,
        })?;
    let status = desired_status(&ring, &leases, Timestamp::now(), failure.as_deref());
    if ring.status.as_ref() != Some(&status) {
        ctx.fenced_write("update status", &name)?;
        Api::<ControllerRing>::all(ctx.client.clone())
            .patch_status(
                &name,
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PatchParams::default()
                },
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
            .map_err(|source| Error::Status {
                ring: name.clone(),
                source,
            })?;
    }
    applied?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<ControllerRing>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(error = %operations::error_chain(error), "ControllerRing reconciliation failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller until `shutdown` completes. Lease changes requeue their ring, so
/// that the shard counts stay current.
pub async fn run(
    client: Client,
    settings: WebhookConfigSettings,
    fence: Fence,
    metrics: ReconcileMetrics,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let ctx = Arc::new(Context {
        client: client.clone(),
        settings,
        recorder,
        fence,
    });
    let webhook_configurations = watcher(
        Api::<MutatingWebhookConfiguration>::all(client.clone()),
        watcher::Config::default().labels(labels::CONTROLLER_RING),
    )
    .default_backoff()
    .touched_objects();
    let results = super::controller(
        Api::<ControllerRing>::all(client.clone()),
        watcher::Config::default(),
        &metrics,
    )
    .watches_stream(webhook_configurations, metrics.trigger_owners())
    .watches_stream(
        super::lease_state_changes(&client),
        metrics.trigger_with(|lease| super::ring_of(&lease)),
    )
    .graceful_shutdown_on(shutdown)
    .run(
        metrics.instrument(reconcile),
        metrics.instrument_error_policy(error_policy),
        ctx,
    );
    super::drive(results, &metrics).await;
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::SignedDuration;
    use sharding::api::ControllerRingSpec;

    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn lease(name: &str, holder: &str) -> Lease {
        sharding::testing::lease(name)
            .holder(holder)
            .renewed_at(now())
            .build()
    }

    fn ring() -> ControllerRing {
        let mut ring = ControllerRing::new("ring", ControllerRingSpec::default());
        ring.metadata.generation = Some(3);
        ring
    }

    #[test]
    fn the_status_counts_all_and_available_shards() {
        let leases = [lease("a", "a"), lease("b", "b"), lease("c", "")];
        let status = desired_status(&ring(), &leases, now(), None);
        assert_eq!((status.shards, status.available_shards), (3, 2));
        assert_eq!(status.observed_generation, Some(3));
        let ready = &status.conditions[0];
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str()),
            ("Ready", "True")
        );
    }

    #[test]
    fn a_failure_makes_the_ring_not_ready_with_the_reason() {
        let status = desired_status(&ring(), &[], now(), Some("cannot apply"));
        let ready = &status.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "ReconciliationFailed")
        );
        assert_eq!(ready.message, "cannot apply");
    }

    #[test]
    fn a_long_failure_is_cut_to_what_an_event_note_may_hold() {
        let failure = "é".repeat(698);
        let status = desired_status(&ring(), &[], now(), Some(&failure));
        let message = &status.conditions[0].message;
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
        assert!(message.ends_with('…'));
        assert!(message.starts_with("éé"));
        assert_eq!(shorten("short", MAX_MESSAGE_BYTES), "short");
    }

    #[test]
    fn the_transition_time_changes_only_with_the_condition_status() {
        let mut ring = ring();
        ring.status = Some(desired_status(&ring, &[], now(), None));
        let later = now() + SignedDuration::from_secs(60);
        let same = desired_status(&ring, &[], later, None);
        assert_eq!(
            same,
            ring.status.clone().unwrap(),
            "nothing changed, so nothing is written"
        );
        let failed = desired_status(&ring, &[], later, Some("x"));
        assert_eq!(failed.conditions[0].last_transition_time, Time(later));
    }
}
