//! Resync of a ring's objects (docs/contract.md#drain-and-move, docs/contract.md#resync): list the
//! metadata of every main and controlled object in the ring's namespaces (and of every
//! cluster-scoped one, docs/contract.md#cluster-scoped-resources), page by page, and drain or move
//! those that are not on the shard the ring wants, with at most `concurrentMoves` patches in
//! flight.
//!
//! The resync itself never watches or caches the sharded objects: it holds one page at a
//! time, so its memory does not grow with their number. A bounded-load ring is planned with
//! its load table, which every replica keeps anyway (docs/sharder.md#assignment-strategies):
//! the resync copies it once and rebalances the copy.

pub mod controller;
pub mod plan;

use std::{collections::HashSet, sync::Mutex};

use futures::{TryStreamExt, stream};
use k8s_openapi::{
    api::{coordination::v1::Lease, core::v1::Namespace},
    apimachinery::pkg::apis::meta::v1::LabelSelector,
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, ListParams, PartialObjectMeta, Patch, PatchParams},
    core::{Selector, TypeMeta},
};
use kube_sharding::{
    api::{ControllerRing, GroupResource, labels},
    fence::{Expired, Fence},
    strategy::{InvalidStrategy, Strategy},
};
use serde_json::json;

use self::plan::{Action, Rebalance, Scope, Target, plan_object, plan_object_bounded_load};
use super::ring_resources;
use crate::{
    load_table::LoadTables,
    metrics::{ResourceLabels, ResyncMetrics},
};

/// Objects listed per page.
const PAGE_SIZE: u32 = 500;

/// One failure of a resync; a resync reports all of them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ring's assignment strategy annotation names no strategy: nothing is moved.
    #[error(transparent)]
    Strategy(#[from] InvalidStrategy),
    /// The load table of a bounded-load ring has not listed every main resource yet: the
    /// resync waits for it (docs/sharder.md#assignment-strategies).
    #[error(
        "the load table of bounded-load ControllerRing {ring} is not synced yet{}",
        failure.as_ref().map(|failure| format!(": {failure}")).unwrap_or_default()
    )]
    NotSynced {
        /// The ring.
        ring: String,
        /// Why, if its discovery or a watch failed since it last listed.
        failure: Option<String>,
    },
    /// The namespace selector cannot be turned into a label selector.
    #[error("invalid namespaceSelector of ControllerRing {ring}")]
    NamespaceSelector {
        /// The ring.
        ring: String,
        /// Why.
        #[source]
        source: kube::core::ParseExpressionError,
    },
    /// Listing namespaces, or discovering or listing a resource failed.
    #[error("cannot {action} {what}")]
    List {
        /// What was attempted.
        action: &'static str,
        /// The namespaces or the resource.
        what: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The resource is not served by the API server.
    #[error("resource {0} is not served by the API server")]
    UnknownResource(String),
    /// Draining or moving one object failed.
    #[error("cannot {action} {resource} {object}")]
    Patch {
        /// `drain` or `move`.
        action: &'static str,
        /// `group/resource`.
        resource: String,
        /// `namespace/name`.
        object: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Leadership may have passed to another replica: the resync stopped before this write.
    #[error("not writing {object}")]
    Fenced {
        /// `namespace/name` of the object.
        object: String,
        /// Why the fence is closed.
        #[source]
        source: Expired,
    },
}

/// All failures of one resync.
#[derive(Debug, thiserror::Error)]
#[error(
    "resync of ControllerRing {ring} failed for {} object(s) or resource(s){}",
    errors.len(),
    errors.first().map(|first| format!("; first: {}", operations::error_chain(first))).unwrap_or_default()
)]
pub struct Errors {
    /// The ring.
    pub ring: String,
    /// Every failure (never empty).
    pub errors: Vec<Error>,
}

/// What a resync needs besides the ring.
#[derive(Clone)]
pub struct Resync {
    client: Client,
    concurrent_moves: usize,
    default_namespace_selector: LabelSelector,
    metrics: ResyncMetrics,
    fence: Fence,
    load_tables: LoadTables,
}

impl std::fmt::Debug for Resync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resync")
            .field("concurrent_moves", &self.concurrent_moves)
            .finish_non_exhaustive()
    }
}

/// Counts of what one resync did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Objects looked at.
    pub objects: usize,
    /// Objects moved.
    pub moved: usize,
    /// Objects drained.
    pub drained: usize,
    /// The ring's assignment strategy.
    pub strategy: Strategy,
}

impl Resync {
    /// A resync with at most `concurrent_moves` patches in flight, each sent only while
    /// `fence` holds; rings without a namespaceSelector use `default_namespace_selector`, and
    /// bounded-load rings are planned with their table in `load_tables`.
    #[must_use]
    pub fn new(
        client: Client,
        concurrent_moves: usize,
        default_namespace_selector: LabelSelector,
        metrics: ResyncMetrics,
        fence: Fence,
        load_tables: LoadTables,
    ) -> Self {
        Self {
            client,
            concurrent_moves: concurrent_moves.max(1),
            default_namespace_selector,
            metrics,
            fence,
            load_tables,
        }
    }

    /// The rebalance of bounded-load ring `ring` onto the available `shards`, or, while its
    /// load table is not synced, why if known.
    fn rebalance(
        &self,
        ring: &str,
        shards: &kube_sharding::leases::Shards,
    ) -> Result<Rebalance, Option<String>> {
        let table = self.load_tables.get(ring).ok_or(None)?;
        let mut table = table.lock();
        table.expire(std::time::Instant::now());
        if !table.is_synced() {
            return Err(table.failure().map(str::to_owned));
        }
        let available: Vec<String> = shards.available().map(|shard| shard.name.clone()).collect();
        Ok(Rebalance::new(table.assignment().clone(), &available))
    }

    /// Resyncs every main and controlled resource of `ring`, whose shard Leases are `leases`,
    /// except those that validation leaves out (docs/contract.md#ring-validation): the ring's
    /// status reports them, and retrying cannot help.
    pub async fn ring(&self, ring: &ControllerRing, leases: &[Lease]) -> Result<Summary, Errors> {
        let name = ring.ring_name().to_owned();
        let (hash_ring, shards) = kube_sharding::ring::from_leases(leases, Timestamp::now());
        let failed = |error| Errors {
            ring: name.clone(),
            errors: vec![error],
        };
        let strategy = Strategy::of(ring).map_err(|invalid| failed(invalid.into()))?;
        let rebalance = match strategy {
            Strategy::HashRing => None,
            Strategy::BoundedLoad => {
                let rebalance = self.rebalance(&name, &shards).map_err(|failure| {
                    failed(Error::NotSynced {
                        ring: name.clone(),
                        failure,
                    })
                })?;
                Some(rebalance)
            }
        };
        if let Some(rebalance) = &rebalance {
            tracing::debug!(
                ring = name,
                moves = rebalance.moves(),
                "rebalanced load table"
            );
        }
        let namespaces = self.namespaces(ring).await.map_err(failed)?;
        let served = ring_resources::discover(&self.client, ring)
            .await
            .map_err(|source| Error::List {
                action: "discover",
                what: format!("the resources of ControllerRing {name}"),
                source,
            })
            .map_err(failed)?;
        let omitted = ring_resources::omitted(&ring_resources::validate(ring, Some(&served)));
        let target = Target {
            ring: &name,
            hash_ring: &hash_ring,
            shards: &shards,
            namespaces: &namespaces,
        };
        let mut summary = Summary {
            strategy,
            ..Summary::default()
        };
        let mut errors = Vec::new();
        for resource in &ring.spec.resources {
            let controlled = resource.controlled_resources.iter().map(|gr| (gr, true));
            for (group_resource, controlled) in
                std::iter::once((&resource.group_resource(), false)).chain(controlled)
            {
                if omitted.contains(group_resource) {
                    continue;
                }
                let Some(found) = served.get(group_resource) else {
                    errors.push(Error::UnknownResource(format!(
                        "{}/{}",
                        group_resource.group, group_resource.resource
                    )));
                    continue;
                };
                let resource = plan::Resource {
                    types: TypeMeta {
                        api_version: found.api_resource.api_version.clone(),
                        kind: found.api_resource.kind.clone(),
                    },
                    scope: Scope::of(group_resource, found.namespaced),
                    controlled,
                };
                let (done, failed) = self
                    .resource(
                        (&target, rebalance.as_ref()),
                        group_resource,
                        &found.api_resource,
                        &resource,
                    )
                    .await;
                summary.objects += done.objects;
                summary.moved += done.moved;
                summary.drained += done.drained;
                errors.extend(failed);
            }
        }
        tracing::debug!(
            ring = name,
            ?summary,
            errors = errors.len(),
            "resynced ring"
        );
        if errors.is_empty() {
            Ok(summary)
        } else {
            Err(Errors { ring: name, errors })
        }
    }

    async fn namespaces(&self, ring: &ControllerRing) -> Result<HashSet<String>, Error> {
        let selector = ring
            .spec
            .namespace_selector
            .clone()
            .unwrap_or_else(|| self.default_namespace_selector.clone());
        let selector = Selector::try_from(selector).map_err(|source| Error::NamespaceSelector {
            ring: ring.ring_name().to_owned(),
            source,
        })?;
        let list = Api::<Namespace>::all(self.client.clone())
            .list_metadata(&ListParams::default().labels_from(&selector))
            .await
            .map_err(|source| Error::List {
                action: "list",
                what: "namespaces".to_owned(),
                source,
            })?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|ns| ns.metadata.name)
            .collect())
    }

    /// Resyncs the objects of `group_resource`, served as `resource`, towards `target` and, for a
    /// bounded-load ring, its rebalance.
    async fn resource(
        &self,
        (target, rebalance): (&Target<'_>, Option<&Rebalance>),
        group_resource: &GroupResource,
        resource: &ApiResource,
        plan_resource: &plan::Resource,
    ) -> (Summary, Vec<Error>) {
        let what = format!("{}/{}", group_resource.group, group_resource.resource);
        let api = Api::<DynamicObject>::all_with(self.client.clone(), resource);
        let counters =
            ResourceLabels::new(target.ring, &group_resource.group, &group_resource.resource);
        let summary = Mutex::new(Summary::default());
        let errors = Mutex::new(Vec::new());

        // Pages are fetched only as fast as the patches of earlier pages complete.
        let objects = pages(api.clone(), what.clone())
            .map_ok(|page| stream::iter(page.into_iter().map(Ok)))
            .try_flatten();
        let result = objects
            .try_for_each_concurrent(self.concurrent_moves, |object| {
                let (what, counters) = (&what, &counters);
                let (summary, errors) = (&summary, &errors);
                async move {
                    let action = match rebalance {
                        None => plan_object(target, plan_resource, &object.metadata),
                        Some(rebalance) => plan_object_bounded_load(
                            target,
                            rebalance,
                            plan_resource,
                            &object.metadata,
                        ),
                    };
                    let outcome = self
                        .apply((resource, what), target.ring, &object, action)
                        .await;
                    let mut summary = summary.lock().expect("not poisoned");
                    summary.objects += 1;
                    match outcome {
                        Ok(Action::Move) => {
                            summary.moved += 1;
                            self.metrics.movements.get_or_create(counters).inc();
                        }
                        Ok(Action::Drain) => {
                            summary.drained += 1;
                            self.metrics.drains.get_or_create(counters).inc();
                        }
                        Ok(Action::Nothing) => {}
                        // No write may follow: the resync stops.
                        Err(error @ Error::Fenced { .. }) => return Err(error),
                        Err(error) => errors.lock().expect("not poisoned").push(error),
                    }
                    Ok(())
                }
            })
            .await;
        let mut errors = errors.into_inner().expect("not poisoned");
        if let Err(error) = result {
            errors.push(error);
        }
        (summary.into_inner().expect("not poisoned"), errors)
    }
}

impl Resync {
    /// Drains or moves one object with a merge patch guarded by its resourceVersion
    /// (docs/contract.md#drain-and-move), if the leader's fence holds; `what` names the
    /// resource in errors.
    async fn apply(
        &self,
        (resource, what): (&ApiResource, &str),
        ring: &str,
        object: &PartialObjectMeta<DynamicObject>,
        action: Action,
    ) -> Result<Action, Error> {
        let (verb, labels) = match action {
            Action::Nothing => return Ok(action),
            Action::Drain => ("drain", json!({ labels::drain(ring): "true" })),
            // Removing a drain label too: the drain may have been meant for a shard that died.
            Action::Move => (
                "move",
                json!({ labels::shard(ring): null, labels::drain(ring): null }),
            ),
        };
        let patch = json!({
            "metadata": { "resourceVersion": object.metadata.resource_version, "labels": labels }
        });
        let name = object.metadata.name.as_deref().unwrap_or_default();
        let api: Api<DynamicObject> = match &object.metadata.namespace {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, resource),
            None => Api::all_with(self.client.clone(), resource),
        };
        let object_name = format!(
            "{}/{name}",
            object.metadata.namespace.as_deref().unwrap_or_default()
        );
        crate::controller::fenced_write(&self.fence, verb, &object_name).map_err(|source| {
            Error::Fenced {
                object: object_name.clone(),
                source,
            }
        })?;
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| action)
            .map_err(|source| Error::Patch {
                action: verb,
                resource: what.to_owned(),
                object: object_name,
                source,
            })
    }
}

/// The metadata of all objects of a resource, a page at a time. The first page is served
/// from the API server's watch cache (`resourceVersion=0`) to spare etcd; a patch based on a
/// stale version fails with a conflict and is retried by the next resync.
fn pages(
    api: Api<DynamicObject>,
    what: String,
) -> impl futures::Stream<Item = Result<Vec<PartialObjectMeta<DynamicObject>>, Error>> {
    stream::try_unfold(Some(None::<String>), move |token| {
        let (api, what) = (api.clone(), what.clone());
        async move {
            let Some(token) = token else {
                return Ok(None);
            };
            let mut params = ListParams::default().limit(PAGE_SIZE);
            match &token {
                Some(token) => params = params.continue_token(token),
                None => params = params.match_any(),
            }
            let page = api
                .list_metadata(&params)
                .await
                .map_err(|source| Error::List {
                    action: "list",
                    what,
                    source,
                })?;
            let next = page
                .metadata
                .continue_
                .filter(|token| !token.is_empty())
                .map(Some);
            Ok(Some((page.items, next)))
        }
    })
}

#[cfg(test)]
mod tests {
    use kube_sharding::{api::ControllerRingSpec, strategy::ANNOTATION};

    use super::*;

    /// A resync against a server that does not exist: any request would fail with an error
    /// of its own.
    fn offline() -> Resync {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        Resync::new(
            Client::try_from(config).unwrap(),
            1,
            LabelSelector::default(),
            ResyncMetrics::default(),
            Fence::unfenced(),
            LoadTables::default(),
        )
    }

    /// A ring whose strategy annotation is `value`.
    fn annotated(value: &str) -> ControllerRing {
        let mut ring = ControllerRing::new("ring", ControllerRingSpec::default());
        ring.metadata.annotations = Some([(ANNOTATION.to_owned(), value.to_owned())].into());
        ring
    }

    #[tokio::test]
    async fn a_ring_with_an_invalid_strategy_fails_before_it_reads_or_moves_anything() {
        let errors = offline()
            .ring(&annotated("least-loaded"), &[])
            .await
            .unwrap_err();
        assert!(
            matches!(errors.errors.as_slice(), [Error::Strategy(invalid)] if invalid.value == "least-loaded"),
            "{errors:?}"
        );
        let message = operations::error_chain(&errors);
        assert!(message.contains(ANNOTATION), "{message}");
    }

    #[tokio::test]
    async fn a_bounded_load_ring_waits_for_its_table() {
        let errors = offline()
            .ring(&annotated("bounded-load"), &[])
            .await
            .unwrap_err();
        assert!(
            matches!(errors.errors.as_slice(), [Error::NotSynced { .. }]),
            "{errors:?}"
        );
    }
}
