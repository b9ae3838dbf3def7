//! A Website's phase and status, decided from what one reconciliation observed
//! (docs/contract.md#the-webhosting-operator-api). Pure: the caller passes the time in and writes
//! the status only when it differs.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

use crate::api::{Website, WebsitePhase, WebsiteStatus};

/// What a reconciliation of a Website found, in the order it checks.
#[derive(Clone, Copy, Debug)]
pub enum Observation<'a> {
    /// The Website has a deletion timestamp.
    Deleting,
    /// The Theme the Website refers to does not exist.
    ThemeMissing,
    /// Reconciling the Website failed.
    Failed,
    /// The owned objects were applied; this is the Deployment as the API server returned it.
    Deployment(Option<&'a Deployment>),
}

/// The phase for an observation: `Terminating` when deleting, `Error` when the Theme is
/// missing or reconciliation failed, `Ready` iff the Deployment is ready, else `Pending`.
#[must_use]
pub fn phase(observation: Observation<'_>) -> WebsitePhase {
    match observation {
        Observation::Deleting => WebsitePhase::Terminating,
        Observation::ThemeMissing | Observation::Failed => WebsitePhase::Error,
        Observation::Deployment(Some(deployment)) if deployment_ready(deployment) => {
            WebsitePhase::Ready
        }
        Observation::Deployment(_) => WebsitePhase::Pending,
    }
}

/// Whether the Deployment controller has observed the current spec and rolled it out
/// completely: observedGeneration ≥ generation, `Available=True`, and `Progressing=True` with
/// reason `NewReplicaSetAvailable`.
#[must_use]
pub fn deployment_ready(deployment: &Deployment) -> bool {
    let Some(status) = &deployment.status else {
        return false;
    };
    // Missing generations count as 0, as in Go, where both are plain integers.
    if status.observed_generation.unwrap_or(0) < deployment.metadata.generation.unwrap_or(0) {
        return false;
    }
    let conditions = status.conditions.as_deref().unwrap_or_default();
    let available = conditions
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "True");
    let rolled_out = conditions.iter().any(|c| {
        c.type_ == "Progressing"
            && c.status == "True"
            && c.reason.as_deref() == Some("NewReplicaSetAvailable")
    });
    available && rolled_out
}

/// The status the Website should have in `phase` at `now`. `lastTransitionTime` moves to
/// `now` only when the phase changes (or no time was recorded), so a result equal to the
/// current status means there is nothing to write.
#[must_use]
pub fn desired_status(website: &Website, phase: WebsitePhase, now: Timestamp) -> WebsiteStatus {
    let kept = website
        .status
        .as_ref()
        .filter(|current| current.phase == Some(phase))
        .and_then(|current| current.last_transition_time.clone());
    WebsiteStatus {
        observed_generation: website.metadata.generation,
        phase: Some(phase),
        last_transition_time: Some(kept.unwrap_or(MicroTime(now))),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentStatus};

    use super::*;
    use crate::api::WebsiteSpec;

    fn condition(type_: &str, status: &str, reason: &str) -> DeploymentCondition {
        DeploymentCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            ..DeploymentCondition::default()
        }
    }

    fn deployment(
        generation: i64,
        observed: i64,
        conditions: Vec<DeploymentCondition>,
    ) -> Deployment {
        let mut deployment = Deployment::default();
        deployment.metadata.generation = Some(generation);
        deployment.status = Some(DeploymentStatus {
            observed_generation: Some(observed),
            conditions: Some(conditions),
            ..DeploymentStatus::default()
        });
        deployment
    }

    fn rolled_out() -> Vec<DeploymentCondition> {
        vec![
            condition("Available", "True", "MinimumReplicasAvailable"),
            condition("Progressing", "True", "NewReplicaSetAvailable"),
        ]
    }

    fn time(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn website(generation: i64, status: Option<WebsiteStatus>) -> Website {
        let mut website = Website::new(
            "homepage",
            WebsiteSpec {
                theme: "exciting".into(),
            },
        );
        website.metadata.generation = Some(generation);
        website.status = status;
        website
    }

    #[test]
    fn a_rolled_out_deployment_is_ready() {
        assert!(deployment_ready(&deployment(2, 2, rolled_out())));
        assert!(deployment_ready(&deployment(2, 3, rolled_out())));
    }

    #[test]
    fn a_deployment_whose_observed_generation_lags_is_not_ready() {
        assert!(!deployment_ready(&deployment(3, 2, rolled_out())));
    }

    #[test]
    fn a_deployment_without_status_is_not_ready() {
        let mut deployment = deployment(1, 1, rolled_out());
        deployment.status = None;
        assert!(!deployment_ready(&deployment));
    }

    #[test]
    fn a_deployment_needs_both_conditions_true() {
        let unavailable = vec![
            condition("Available", "False", "MinimumReplicasUnavailable"),
            condition("Progressing", "True", "NewReplicaSetAvailable"),
        ];
        assert!(!deployment_ready(&deployment(1, 1, unavailable)));
        let progressing = vec![condition("Available", "True", "MinimumReplicasAvailable")];
        assert!(!deployment_ready(&deployment(1, 1, progressing)));
    }

    #[test]
    fn a_deployment_still_rolling_out_is_not_ready() {
        let rolling = vec![
            condition("Available", "True", "MinimumReplicasAvailable"),
            condition("Progressing", "True", "ReplicaSetUpdated"),
        ];
        assert!(!deployment_ready(&deployment(1, 1, rolling)));
    }

    #[test]
    fn deletion_wins_over_everything() {
        assert_eq!(phase(Observation::Deleting), WebsitePhase::Terminating);
    }

    #[test]
    fn a_missing_theme_or_a_failure_is_an_error() {
        assert_eq!(phase(Observation::ThemeMissing), WebsitePhase::Error);
        assert_eq!(phase(Observation::Failed), WebsitePhase::Error);
    }

    #[test]
    fn the_phase_follows_the_deployment() {
        let ready = deployment(1, 1, rolled_out());
        let lagging = deployment(2, 1, rolled_out());
        assert_eq!(
            phase(Observation::Deployment(Some(&ready))),
            WebsitePhase::Ready
        );
        assert_eq!(
            phase(Observation::Deployment(Some(&lagging))),
            WebsitePhase::Pending
        );
        assert_eq!(phase(Observation::Deployment(None)), WebsitePhase::Pending);
    }

    #[test]
    fn the_first_status_records_the_transition_time() {
        let now = time("2024-05-06T07:08:09Z");
        let status = desired_status(&website(1, None), WebsitePhase::Pending, now);
        assert_eq!(
            status,
            WebsiteStatus {
                observed_generation: Some(1),
                phase: Some(WebsitePhase::Pending),
                last_transition_time: Some(MicroTime(now)),
            }
        );
    }

    #[test]
    fn the_transition_time_is_kept_while_the_phase_stays() {
        let then = MicroTime(time("2024-05-06T07:08:09Z"));
        let current = WebsiteStatus {
            observed_generation: Some(1),
            phase: Some(WebsitePhase::Ready),
            last_transition_time: Some(then.clone()),
        };
        let later = time("2024-05-06T08:00:00Z");

        let unchanged = website(1, Some(current.clone()));
        assert_eq!(
            desired_status(&unchanged, WebsitePhase::Ready, later),
            current,
            "an unchanged Website needs no status write"
        );

        let new_generation = desired_status(&website(2, Some(current)), WebsitePhase::Ready, later);
        assert_eq!(new_generation.observed_generation, Some(2));
        assert_eq!(new_generation.last_transition_time, Some(then));
    }

    #[test]
    fn the_transition_time_moves_when_the_phase_changes() {
        let current = WebsiteStatus {
            observed_generation: Some(1),
            phase: Some(WebsitePhase::Ready),
            last_transition_time: Some(MicroTime(time("2024-05-06T07:08:09Z"))),
        };
        let later = time("2024-05-06T08:00:00Z");
        let status = desired_status(&website(1, Some(current)), WebsitePhase::Error, later);
        assert_eq!(status.phase, Some(WebsitePhase::Error));
        assert_eq!(status.last_transition_time, Some(MicroTime(later)));
    }

    #[test]
    fn a_missing_transition_time_is_filled_in() {
        let current = WebsiteStatus {
            observed_generation: Some(1),
            phase: Some(WebsitePhase::Ready),
            last_transition_time: None,
        };
        let now = time("2024-05-06T08:00:00Z");
        let status = desired_status(&website(1, Some(current)), WebsitePhase::Ready, now);
        assert_eq!(status.last_transition_time, Some(MicroTime(now)));
    }
}
