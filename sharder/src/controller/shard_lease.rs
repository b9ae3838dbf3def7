//! The shard Lease controller (docs/contract.md#lease-states): labels every shard Lease with its
//! state, takes over `uncertain` Leases so that their shards count as dead, and deletes `orphaned`
//! ones.

use std::{sync::Arc, time::Duration};

use controller_runtime_metrics::ReconcileMetrics;
use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt as _,
    api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    runtime::{controller::Action, watcher},
};
use kube_sharding::{
    api::labels,
    fence::{Expired, Fence},
    leases::{self, ShardState},
};
use serde_json::json;

/// What to do with a shard Lease now.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// The state label is up to date.
    Nothing,
    /// Write this state label.
    Label(ShardState),
    /// Write this taken-over Lease (holder `shardlease-controller`, labelled `dead`).
    TakeOver(Box<Lease>),
    /// Delete the Lease.
    Delete,
}

/// Decides the step for `lease` at `now` and when to look again (pure).
#[must_use]
pub fn decide(lease: &Lease, now: Timestamp) -> (Step, Option<Duration>) {
    let state = leases::state(lease, now);
    let step = match state {
        ShardState::Orphaned => return (Step::Delete, None),
        ShardState::Uncertain => {
            let mut taken = leases::take_over(lease, now);
            let dead = leases::state(&taken, now);
            taken
                .labels_mut()
                .insert(labels::STATE.to_owned(), dead.as_str().to_owned());
            Step::TakeOver(Box::new(taken))
        }
        state if lease.labels().get(labels::STATE).map(String::as_str) != Some(state.as_str()) => {
            Step::Label(state)
        }
        _ => Step::Nothing,
    };
    // Look again just after the next boundary, where the state changes.
    let next = leases::next_transition(lease, now).map(|d| d + Duration::from_millis(100));
    (step, next)
}

/// Errors of one reconciliation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the Lease failed (a conflict means it changed meanwhile; the change requeues it).
    #[error("cannot {action} shard Lease {namespace}/{name}")]
    Write {
        /// What was attempted.
        action: &'static str,
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Leadership may have passed to another replica: nothing is written.
    #[error("not writing shard Lease {namespace}/{name}")]
    Fenced {
        /// The Lease's namespace.
        namespace: String,
        /// The Lease's name.
        name: String,
        /// Why the fence is closed.
        #[source]
        source: Expired,
    },
}

struct Context {
    client: Client,
    fence: Fence,
}

async fn reconcile(lease: Arc<Lease>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = lease.namespace().unwrap_or_default();
    let name = lease.name_any();
    let api = Api::<Lease>::namespaced(ctx.client.clone(), &namespace);
    let (step, next) = decide(&lease, Timestamp::now());
    let error = |action| {
        let (namespace, name) = (namespace.clone(), name.clone());
        move |source| Error::Write {
            action,
            namespace,
            name,
            source,
        }
    };
    let object = format!("{namespace}/{name}");
    let fenced_write = |verb: &str| super::fenced_write(&ctx.fence, verb, &object);
    let fenced = |source| Error::Fenced {
        namespace: namespace.clone(),
        name: name.clone(),
        source,
    };
    match step {
        Step::Nothing => {}
        Step::Label(state) => {
            tracing::info!(lease = name, %state, "shard state changed");
            fenced_write("label").map_err(fenced)?;
            let patch = json!({
                "metadata": {
                    "resourceVersion": lease.resource_version(),
                    "labels": { labels::STATE: state.as_str() },
                }
            });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(error("label"))?;
        }
        Step::TakeOver(taken) => {
            tracing::info!(lease = name, "taking over uncertain shard Lease");
            fenced_write("take over").map_err(fenced)?;
            api.replace(&name, &PostParams::default(), &taken)
                .await
                .map_err(error("take over"))?;
        }
        Step::Delete => {
            tracing::info!(lease = name, "deleting orphaned shard Lease");
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    resource_version: lease.resource_version(),
                    uid: lease.uid(),
                }),
                ..DeleteParams::default()
            };
            fenced_write("delete").map_err(fenced)?;
            match api.delete(&name, &params).await {
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => return Err(error("delete")(source)),
                Ok(_) => {}
            }
            return Ok(Action::await_change());
        }
    }
    Ok(next.map_or_else(Action::await_change, Action::requeue))
}

fn error_policy(_: Arc<Lease>, error: &Error, _: Arc<Context>) -> Action {
    tracing::warn!(error = %operations::error_chain(error), "shard Lease reconciliation failed");
    Action::requeue(Duration::from_secs(1))
}

/// Runs the controller until `shutdown` completes. It watches only Leases with the ring label,
/// filtered by the API server, so other Leases never enter the cache
/// (docs/sharder.md#differences-from-the-go-sharder).
pub async fn run(
    client: Client,
    fence: Fence,
    metrics: ReconcileMetrics,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let leases = Api::<Lease>::all(client.clone());
    let results = super::controller(
        leases,
        watcher::Config::default().labels(labels::CONTROLLER_RING),
        &metrics,
    )
    .graceful_shutdown_on(shutdown)
    .run(
        metrics.instrument(reconcile),
        metrics.instrument_error_policy(error_policy),
        Arc::new(Context { client, fence }),
    );
    super::drive(results, &metrics).await;
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::SignedDuration;

    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    /// A Lease of shard-0 last renewed `ago` before [`now`], with label `state`.
    fn lease(holder: &str, ago: i64, state: Option<&str>) -> Lease {
        let lease = kube_sharding::testing::lease("shard-0")
            .holder(holder)
            .renewed_at(now() - SignedDuration::from_secs(ago));
        match state {
            Some(state) => lease.state_label(state),
            None => lease,
        }
        .build()
    }

    #[test]
    fn a_fresh_lease_is_labelled_ready_and_looked_at_again_when_it_would_expire() {
        let (step, next) = decide(&lease("shard-0", 5, None), now());
        assert_eq!(step, Step::Label(ShardState::Ready));
        assert_eq!(next, Some(Duration::from_millis(10_100)));
    }

    #[test]
    fn an_up_to_date_label_is_not_written_again() {
        let (step, _) = decide(&lease("shard-0", 5, Some("ready")), now());
        assert_eq!(step, Step::Nothing);
    }

    #[test]
    fn an_uncertain_lease_is_taken_over_and_labelled_dead() {
        let (step, _) = decide(&lease("shard-0", 31, Some("expired")), now());
        let Step::TakeOver(taken) = step else {
            panic!("expected a takeover, got {step:?}");
        };
        assert_eq!(taken.labels()[labels::STATE], "dead");
        let spec = taken.spec.unwrap();
        assert_eq!(
            spec.holder_identity.as_deref(),
            Some(labels::SHARD_LEASE_CONTROLLER)
        );
        assert_eq!(spec.lease_duration_seconds, Some(30));
    }

    #[test]
    fn an_orphaned_lease_is_deleted() {
        let (step, next) = decide(&lease("", 120, Some("dead")), now());
        assert_eq!((step, next), (Step::Delete, None));
    }
}
