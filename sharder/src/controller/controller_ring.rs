//! The ControllerRing controller (docs/contract.md#webhook, docs/contract.md#sharder-behaviour):
//! validates each ring's resources (docs/contract.md#ring-validation), applies its webhook
//! configuration and reports its shards, its problems and its resync's failures in the ring's
//! status with a `Ready` condition.

use std::{sync::Arc, time::Duration};

use controller_runtime_metrics::ReconcileMetrics;
use futures::{Stream, StreamExt as _, stream};
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
        reflector::ObjectRef,
        watcher::{self, watcher},
    },
};
use kube_sharding::{
    api::{ControllerRing, ControllerRingStatus, controller_ring::CONDITION_READY, labels},
    fence::{Expired, Fence},
    leases::Shards,
};
use serde_json::json;

use super::{
    resync::controller::Failures,
    ring_resources::{self, Problem},
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
    /// The API server's resources could not be discovered.
    #[error("cannot discover the resources of ControllerRing {ring}")]
    Discover {
        /// The ring.
        ring: String,
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

/// What a reconciliation found wrong with a ring; the default is nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Findings<'a> {
    /// Why applying the webhook configuration or discovering the ring's resources failed.
    pub failure: Option<&'a str>,
    /// The problems of the ring's resources.
    pub problems: &'a [Problem],
    /// Why the ring's latest resync failed, as the resync controller reports it.
    pub resync_failure: Option<&'a str>,
}

impl Findings<'_> {
    /// The `Ready` condition's status, reason and message: the first of a failure, problems
    /// and a resync failure, else ready (docs/contract.md#controllerring).
    fn ready(&self) -> (&'static str, &'static str, String) {
        if let Some(failure) = self.failure {
            ("False", "ReconciliationFailed", failure.to_owned())
        } else if !self.problems.is_empty() {
            (
                "False",
                "InvalidResources",
                ring_resources::summary(self.problems),
            )
        } else if let Some(failure) = self.resync_failure {
            ("False", "ResyncFailed", failure.to_owned())
        } else {
            (
                "True",
                "ReconciliationSucceeded",
                "ControllerRing was successfully reconciled".to_owned(),
            )
        }
    }
}

/// The status of `ring` with shard Leases `leases` at `now`, given what the reconciliation
/// `found`. The condition's transition time is kept while its status stays the same.
#[must_use]
pub fn desired_status(
    ring: &ControllerRing,
    leases: &[Lease],
    now: Timestamp,
    found: &Findings<'_>,
) -> ControllerRingStatus {
    let shards = Shards::from_leases(leases, now);
    let (status, reason, message) = found.ready();
    let previous = ready_condition(ring);
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
            message: shorten(&message, MAX_MESSAGE_BYTES),
            observed_generation: ring.metadata.generation,
            last_transition_time,
        }],
    }
}

/// The `Ready` condition of `ring`'s status, if it has one.
fn ready_condition(ring: &ControllerRing) -> Option<&Condition> {
    ring.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == CONDITION_READY))
}

/// The Warning event that announces `ready` on `ring`: one when the ring turns not ready or
/// why it is not ready changes, none while it stays the same, so that a ring that stays
/// broken does not record an event per reconciliation.
#[must_use]
pub fn event(ring: &ControllerRing, ready: &Condition) -> Option<Event> {
    let unchanged = ready_condition(ring).is_some_and(|previous| {
        (&previous.status, &previous.reason, &previous.message)
            == (&ready.status, &ready.reason, &ready.message)
    });
    (ready.status == "False" && !unchanged).then(|| Event {
        type_: EventType::Warning,
        reason: ready.reason.clone(),
        note: Some(shorten(&ready.message, MAX_MESSAGE_BYTES)),
        action: "Reconcile".to_owned(),
        secondary: None,
    })
}

/// The longest message kept in the Ready condition and in an event note: short enough to read
/// at a glance, and well under the 1,024 bytes the API server allows an event's note.
const MAX_MESSAGE_BYTES: usize = 512;
const _: () = assert!(MAX_MESSAGE_BYTES < 1024);

/// `text` cut to at most `max` bytes at a character boundary, ending in `…` when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
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
    resync_failures: Failures,
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
    // Without discovery, only the names are checked, and every rule that names one resource
    // is written: the webhook keeps assigning while discovery is down.
    let served = ring_resources::discover(&ctx.client, &ring)
        .await
        .map_err(|source| Error::Discover {
            ring: name.clone(),
            source,
        });
    let problems = ring_resources::validate(&ring, served.as_ref().ok());
    let configuration =
        webhook_configuration(&ring, &ctx.settings, &ring_resources::omitted(&problems));
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
    let failure = match (&applied, &served) {
        (Err(error), _) => Some(operations::error_chain(error)),
        (Ok(_), served) => served.as_ref().err().map(|e| operations::error_chain(e)),
    };
    let resync_failure = ctx.resync_failures.get(&name);

    let leases = super::ring_leases(&ctx.client, &name)
        .await
        .map_err(|source| Error::Status {
            ring: name.clone(),
            source,
        })?;
    let found = Findings {
        failure: failure.as_deref(),
        problems: &problems,
        resync_failure: resync_failure.as_deref(),
    };
    let status = desired_status(&ring, &leases, Timestamp::now(), &found);
    if ring.status.as_ref() != Some(&status) {
        if let Some(event) = event(&ring, &status.conditions[0]) {
            ctx.fenced_write("record event", &name)?;
            if let Err(error) = ctx.recorder.publish(&event, &ring.object_ref(&())).await {
                tracing::warn!(%error, "cannot publish event");
            }
        }
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
    served?;
    Ok(Action::await_change())
}

fn error_policy(_: Arc<ControllerRing>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(error = %operations::error_chain(error), "ControllerRing reconciliation failed");
    Action::requeue(Duration::from_secs(5))
}

/// Runs the controller until `shutdown` completes. Lease changes requeue their ring, so
/// that the shard counts stay current, and so do changes of its resync's failures
/// (`resync_failures`, announced on `failure_changes`).
pub async fn run(
    client: Client,
    settings: WebhookConfigSettings,
    fence: Fence,
    (resync_failures, failure_changes): (
        Failures,
        impl Stream<Item = ObjectRef<ControllerRing>> + Send + 'static,
    ),
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
        resync_failures,
    });
    let trigger = metrics.trigger_with(|ring| [ring]);
    let failure_changes = failure_changes.flat_map(move |ring| stream::iter(trigger(ring)));
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
    .reconcile_on(failure_changes)
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
    use kube_sharding::api::ControllerRingSpec;

    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn lease(name: &str, holder: &str) -> Lease {
        kube_sharding::testing::lease(name)
            .holder(holder)
            .renewed_at(now())
            .build()
    }

    fn ring() -> ControllerRing {
        let mut ring = ControllerRing::new("ring", ControllerRingSpec::default());
        ring.metadata.generation = Some(3);
        ring
    }

    fn failed(failure: &str) -> Findings<'_> {
        Findings {
            failure: Some(failure),
            ..Findings::default()
        }
    }

    fn problems() -> Vec<Problem> {
        let mut ring = ring();
        ring.spec.resources.push(kube_sharding::api::RingResource {
            group: "*".into(),
            resource: "*".into(),
            controlled_resources: vec![],
        });
        ring_resources::validate(&ring, None)
    }

    #[test]
    fn the_status_counts_all_and_available_shards() {
        let leases = [lease("a", "a"), lease("b", "b"), lease("c", "")];
        let status = desired_status(&ring(), &leases, now(), &Findings::default());
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
        let status = desired_status(&ring(), &[], now(), &failed("cannot apply"));
        let ready = &status.conditions[0];
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "ReconciliationFailed")
        );
        assert_eq!(ready.message, "cannot apply");
    }

    #[test]
    fn invalid_resources_and_resync_failures_make_the_ring_not_ready_in_that_order() {
        let problems = problems();
        let reason = |found: &Findings<'_>| {
            let status = desired_status(&ring(), &[], now(), found);
            let ready = status.conditions[0].clone();
            (ready.status, ready.reason, ready.message)
        };
        let resync_failed = Findings {
            resync_failure: Some("resync failed: x"),
            ..Findings::default()
        };
        assert_eq!(
            reason(&resync_failed),
            (
                "False".into(),
                "ResyncFailed".into(),
                "resync failed: x".into()
            )
        );
        let invalid = Findings {
            problems: &problems,
            ..resync_failed
        };
        assert_eq!(
            reason(&invalid),
            (
                "False".into(),
                "InvalidResources".into(),
                r#"spec.resources[0]: group "*" is a wildcard; name one API group"#.into()
            )
        );
        let all = Findings {
            failure: Some("cannot apply"),
            ..invalid
        };
        assert_eq!(reason(&all).1, "ReconciliationFailed");
    }

    #[test]
    fn a_long_failure_is_cut_well_below_what_an_event_note_may_hold() {
        let failure = "é".repeat(698);
        let status = desired_status(&ring(), &[], now(), &failed(&failure));
        let message = &status.conditions[0].message;
        assert!(message.len() <= MAX_MESSAGE_BYTES, "{}", message.len());
        assert!(message.ends_with('…'));
        assert!(message.starts_with("éé"));
        assert_eq!(shorten("short", MAX_MESSAGE_BYTES), "short");
    }

    #[test]
    fn the_transition_time_changes_only_with_the_condition_status() {
        let mut ring = ring();
        ring.status = Some(desired_status(&ring, &[], now(), &Findings::default()));
        let later = now() + SignedDuration::from_secs(60);
        let same = desired_status(&ring, &[], later, &Findings::default());
        assert_eq!(
            same,
            ring.status.clone().unwrap(),
            "nothing changed, so nothing is written"
        );
        let failed = desired_status(&ring, &[], later, &failed("x"));
        assert_eq!(failed.conditions[0].last_transition_time, Time(later));
    }

    #[test]
    fn an_event_is_recorded_when_the_ring_turns_or_stays_not_ready_for_a_new_reason() {
        let problems = problems();
        let invalid = Findings {
            problems: &problems,
            ..Findings::default()
        };
        let mut ring = ring();
        let ready = desired_status(&ring, &[], now(), &Findings::default());
        assert!(event(&ring, &ready.conditions[0]).is_none(), "ready");

        ring.status = Some(ready);
        let broken = desired_status(&ring, &[], now(), &invalid);
        let recorded = event(&ring, &broken.conditions[0]).expect("turned not ready");
        assert_eq!(recorded.type_, EventType::Warning);
        assert_eq!(recorded.reason, "InvalidResources");
        assert_eq!(
            recorded.note.as_deref(),
            Some(broken.conditions[0].message.as_str())
        );

        ring.status = Some(broken);
        let still = desired_status(&ring, &[], now(), &invalid);
        assert!(event(&ring, &still.conditions[0]).is_none(), "unchanged");
        let other = desired_status(&ring, &[], now(), &failed("cannot apply"));
        assert_eq!(
            event(&ring, &other.conditions[0]).map(|e| e.reason),
            Some("ReconciliationFailed".into())
        );
    }
}
