//! Waiting on the cluster: until a Deployment's rollout has finished, and until the ring has
//! exactly the wanted shards.

use std::{collections::BTreeSet, time::Duration};

use anyhow::bail;
use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    coordination::v1::Lease,
};
use kube::ResourceExt as _;
use kube_sharding::{api::labels, leases::ShardState};
use tokio::time::Instant;

use crate::scenario::format_duration;

/// How long a rollout, and shards becoming ready, may take.
const PATIENCE: Duration = Duration::from_secs(300);

/// How often a wait looks again; each look lists pods and Leases, so not too often.
const POLL: Duration = Duration::from_secs(1);

/// Polls `check` until it reports nothing pending. API errors count as pending, so that a
/// wait of minutes survives a hiccup; when `PATIENCE` runs out, the error says what was
/// still pending.
pub(super) async fn poll<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<String>>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        let pending = match check().await {
            Ok(None) => return Ok(()),
            Ok(Some(pending)) => pending,
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            bail!(
                "{what}: not done within {}: {pending}",
                format_duration(PATIENCE)
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Why the Deployment's rollout is not finished, or `None` when it is: the controller has
/// seen the current generation, and every replica is updated and ready with no old one left
/// (as `kubectl rollout status`, with ready for available).
pub(super) fn rollout_pending(deployment: &Deployment) -> Option<String> {
    let generation = deployment.metadata.generation.unwrap_or_default();
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or_default();
    let updated = status.updated_replicas.unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or_default();
    let total = status.replicas.unwrap_or_default();
    if observed < generation {
        Some(format!(
            "the Deployment controller has not seen generation {generation} yet"
        ))
    } else if updated != wanted {
        Some(format!("{updated} of {wanted} replicas updated"))
    } else if total > updated {
        Some(format!("{} old replicas are still there", total - updated))
    } else if ready != wanted {
        Some(format!("{ready} of {wanted} replicas ready"))
    } else {
        None
    }
}

/// Why the StatefulSet's rollout is not finished, or `None` when it is: the controller has seen
/// the current generation, every replica runs the update revision and is ready, and none is
/// left over (as `kubectl rollout status` for a rolling update).
pub(super) fn stateful_rollout_pending(stateful_set: &StatefulSet) -> Option<String> {
    let generation = stateful_set.metadata.generation.unwrap_or_default();
    let wanted = stateful_set
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let status = stateful_set.status.clone().unwrap_or_default();
    let observed = status.observed_generation.unwrap_or_default();
    let updated = status.updated_replicas.unwrap_or_default();
    let ready = status.ready_replicas.unwrap_or_default();
    if observed < generation {
        Some(format!(
            "the StatefulSet controller has not seen generation {generation} yet"
        ))
    } else if status.replicas > wanted {
        Some(format!(
            "{} replicas are still there, {wanted} wanted",
            status.replicas
        ))
    } else if updated != wanted || status.current_revision != status.update_revision {
        Some(format!("{updated} of {wanted} replicas updated"))
    } else if ready != wanted {
        Some(format!("{ready} of {wanted} replicas ready"))
    } else {
        None
    }
}

/// Why the ring does not have exactly `shards` shards, all ready and current, or `None` when it
/// does. A Lease counts when the sharder labelled it ready (docs/contract.md#names-and-labels), its
/// holder is its name (docs/contract.md#shard-leases) and that is a current pod. Leases of old pods
/// may linger dead or orphaned until the sharder deletes them, but one still available
/// (docs/contract.md#lease-states) would be in the ring.
pub(super) fn shards_pending(
    leases: &[Lease],
    pods: &BTreeSet<String>,
    shards: usize,
) -> Option<String> {
    let mut ready = Vec::new();
    let mut others = Vec::new();
    for lease in leases {
        let name = lease.name_any();
        let state: ShardState = lease
            .labels()
            .get(labels::STATE)
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref());
        if state == ShardState::Ready && holder == Some(name.as_str()) && pods.contains(&name) {
            ready.push(name);
        } else if state.is_available() {
            others.push(format!("{name} ({state})"));
        }
    }
    if ready.len() == shards && others.is_empty() {
        return None;
    }
    let counted = format!(
        "{} of {shards} shard Leases ready and held by a running pod",
        ready.len()
    );
    if others.is_empty() {
        Some(counted)
    } else {
        Some(format!("{counted}; also available: {}", others.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::{
            apps::v1::{DeploymentSpec, DeploymentStatus, StatefulSetSpec, StatefulSetStatus},
            coordination::v1::LeaseSpec,
        },
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
    };

    use super::*;

    fn rolled_out(replicas: i32) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(4),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                ..DeploymentSpec::default()
            }),
            status: Some(DeploymentStatus {
                observed_generation: Some(4),
                replicas: Some(replicas),
                updated_replicas: Some(replicas),
                ready_replicas: Some(replicas),
                ..DeploymentStatus::default()
            }),
        }
    }

    #[test]
    fn a_rollout_is_finished_when_every_replica_is_updated_and_ready() {
        assert_eq!(rollout_pending(&rolled_out(3)), None);
        let mut scaled_to_zero = rolled_out(0);
        scaled_to_zero.status.as_mut().unwrap().replicas = None;
        assert_eq!(rollout_pending(&scaled_to_zero), None);

        let with = |change: fn(&mut DeploymentStatus)| {
            let mut deployment = rolled_out(3);
            change(deployment.status.as_mut().unwrap());
            rollout_pending(&deployment).unwrap()
        };
        assert_eq!(
            with(|s| s.observed_generation = Some(3)),
            "the Deployment controller has not seen generation 4 yet"
        );
        assert_eq!(
            with(|s| s.updated_replicas = Some(1)),
            "1 of 3 replicas updated"
        );
        assert_eq!(
            with(|s| s.replicas = Some(4)),
            "1 old replicas are still there"
        );
        assert_eq!(
            with(|s| s.ready_replicas = Some(2)),
            "2 of 3 replicas ready"
        );
        let mut new = rolled_out(3);
        new.status = None;
        assert_eq!(
            rollout_pending(&new).unwrap(),
            "the Deployment controller has not seen generation 4 yet"
        );
    }

    fn stateful(replicas: i32) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                generation: Some(2),
                ..ObjectMeta::default()
            },
            spec: Some(StatefulSetSpec {
                replicas: Some(replicas),
                ..StatefulSetSpec::default()
            }),
            status: Some(StatefulSetStatus {
                observed_generation: Some(2),
                replicas,
                updated_replicas: Some(replicas),
                ready_replicas: Some(replicas),
                current_revision: Some("r2".into()),
                update_revision: Some("r2".into()),
                ..StatefulSetStatus::default()
            }),
        }
    }

    #[test]
    fn a_stateful_rollout_is_finished_when_every_replica_runs_the_update_revision() {
        assert_eq!(stateful_rollout_pending(&stateful(2)), None);
        let with = |change: fn(&mut StatefulSetStatus)| {
            let mut stateful_set = stateful(2);
            change(stateful_set.status.as_mut().unwrap());
            stateful_rollout_pending(&stateful_set).unwrap()
        };
        assert_eq!(
            with(|s| s.observed_generation = Some(1)),
            "the StatefulSet controller has not seen generation 2 yet"
        );
        assert_eq!(
            with(|s| s.replicas = 3),
            "3 replicas are still there, 2 wanted"
        );
        assert_eq!(
            with(|s| s.current_revision = Some("r1".into())),
            "2 of 2 replicas updated"
        );
        assert_eq!(with(|s| s.ready_replicas = None), "0 of 2 replicas ready");
    }

    fn lease(name: &str, holder: &str, state: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([(labels::STATE.to_owned(), state.to_owned())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                ..LeaseSpec::default()
            }),
        }
    }

    fn pods(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn ready_leases_of_current_pods_are_the_shards() {
        let leases = [
            lease("new-a", "new-a", "ready"),
            lease("new-b", "new-b", "ready"),
            // Old pods' Leases, released or taken over: not in the ring.
            lease("old-a", "", "dead"),
            lease("old-b", labels::SHARD_LEASE_CONTROLLER, "orphaned"),
        ];
        assert_eq!(shards_pending(&leases, &pods(&["new-a", "new-b"]), 2), None);
        assert_eq!(
            shards_pending(&leases, &pods(&["new-a", "new-b"]), 3).unwrap(),
            "2 of 3 shard Leases ready and held by a running pod"
        );
        assert_eq!(
            shards_pending(&leases, &pods(&["new-a"]), 2).unwrap(),
            "1 of 2 shard Leases ready and held by a running pod; also available: new-b (ready)"
        );
    }

    #[test]
    fn an_old_shard_still_available_is_waited_for() {
        let leases = [
            lease("new-a", "new-a", "ready"),
            lease("old-a", "old-a", "expired"),
            lease("old-b", "old-b", "uncertain"),
        ];
        assert_eq!(
            shards_pending(&leases, &pods(&["new-a"]), 1).unwrap(),
            "1 of 1 shard Leases ready and held by a running pod; also available: old-a \
             (expired), old-b (uncertain)"
        );
        // Not labelled by the sharder yet, or held by someone else: not ready.
        let mut unlabelled = lease("new-b", "new-b", "ready");
        unlabelled.metadata.labels = None;
        let leases = [
            lease("new-a", "new-a", "ready"),
            unlabelled,
            lease("new-c", "other", "ready"),
        ];
        assert_eq!(
            shards_pending(&leases, &pods(&["new-a", "new-b", "new-c"]), 3).unwrap(),
            "1 of 3 shard Leases ready and held by a running pod; also available: new-c (ready)"
        );
    }
}
