//! The drain-aware reconciler wrapper (docs/contract.md#drain-and-move, docs/contract.md#resync): a
//! shard reconciles only objects assigned to it, and hands drained objects back without reconciling
//! them; and only while its Lease's fence holds (docs/contract.md#fencing).

use std::{fmt::Debug, future::Future, sync::Arc};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{
    Api, Client, Resource,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
    runtime::controller::Action,
};
use serde_json::json;

use crate::{
    api::labels,
    fence::{Expired, Fence},
};

/// What a shard may do with an object, from its labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// Assigned to this shard: reconcile it.
    Assigned,
    /// Assigned to this shard and being drained: acknowledge, do not reconcile.
    Draining,
    /// Assigned elsewhere or not at all: leave it alone.
    NotAssigned,
}

impl Assignment {
    /// The assignment of an object with `meta` to `shard` of `ring`.
    #[must_use]
    pub fn for_object(meta: &ObjectMeta, ring: &str, shard: &str) -> Self {
        let labels = meta.labels.as_ref();
        let assigned = labels
            .and_then(|l| l.get(&labels::shard(ring)))
            .is_some_and(|value| value == shard);
        if !assigned {
            Self::NotAssigned
        } else if labels.is_some_and(|l| l.contains_key(&labels::drain(ring))) {
            Self::Draining
        } else {
            Self::Assigned
        }
    }
}

/// An error of a wrapped reconciler.
#[derive(Debug, thiserror::Error)]
pub enum Error<E: std::error::Error + 'static> {
    /// The inner reconciler failed.
    #[error(transparent)]
    Inner(E),
    /// The shard's Lease may have passed to another holder: the reconciliation did not start,
    /// or stopped before its next write. The shard is about to stop (its Lease is lost).
    #[error("not reconciling {object}")]
    Fenced {
        /// `namespace/name` of the object.
        object: String,
        /// Why the fence is closed.
        #[source]
        source: Expired,
    },
    /// The drain could not be acknowledged (for example the object changed meanwhile); the
    /// next event of the object retries it.
    #[error("cannot acknowledge the drain of {object}")]
    AcknowledgeDrain {
        /// `namespace/name` of the object.
        object: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Wraps reconcilers of one shard: see [`Shard::reconcile`].
#[derive(Clone)]
pub struct Shard {
    client: Client,
    ring: String,
    name: String,
    fence: Fence,
}

impl Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("ring", &self.ring)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// Shard `name` of ControllerRing `ring`, acting while `fence` holds: pass
    /// [`ShardLease::fence`](crate::shard::ShardLease::fence) of the shard's Lease.
    #[must_use]
    pub fn new(
        client: Client,
        ring: impl Into<String>,
        name: impl Into<String>,
        fence: Fence,
    ) -> Self {
        Self {
            client,
            ring: ring.into(),
            name: name.into(),
            fence,
        }
    }

    /// Passes while the shard's Lease is held by this process's clock: call it immediately
    /// before every write of a reconciliation (docs/contract.md#fencing).
    ///
    /// # Errors
    /// [`Expired`] once the Lease may have passed to another holder.
    pub fn check(&self) -> Result<(), Expired> {
        self.fence.check()
    }

    /// The ring's name.
    #[must_use]
    pub fn ring(&self) -> &str {
        &self.ring
    }

    /// This shard's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `inner` for objects assigned to this shard; skips other objects; acknowledges
    /// the drain of drained objects by removing both labels, without running `inner`. Nothing
    /// of this starts unless the fence holds ([`Shard::check`]); otherwise the result is
    /// [`Error::Fenced`], and `inner` should check again before each of its writes.
    ///
    /// The acknowledgement is a merge patch carrying the object's resourceVersion, so it
    /// applies only to the version this shard saw; the sharder's webhook then assigns the
    /// object to its new shard. Together with the watch on this shard's label, this means two
    /// shards never act on one object at the same time (docs/contract.md#drain-and-move).
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # use k8s_openapi::api::core::v1::ConfigMap;
    /// # use kube::runtime::controller::Action;
    /// # #[derive(Debug, thiserror::Error)] #[error("failed")] struct MyError;
    /// async fn reconcile(object: Arc<ConfigMap>) -> Result<Action, MyError> {
    ///     Ok(Action::await_change())
    /// }
    /// # async fn demo(shard: kube_sharding::shard::Shard, object: Arc<ConfigMap>) {
    /// let action = shard.reconcile(object, reconcile).await;
    /// # }
    /// ```
    pub async fn reconcile<K, E, F, Fut>(
        &self,
        object: Arc<K>,
        inner: F,
    ) -> Result<Action, Error<E>>
    where
        K: Resource<DynamicType = ()> + Debug,
        E: std::error::Error + 'static,
        F: FnOnce(Arc<K>) -> Fut,
        Fut: Future<Output = Result<Action, E>>,
    {
        self.fenced(object.meta())?;
        match Assignment::for_object(object.meta(), &self.ring, &self.name) {
            Assignment::Assigned => inner(object).await.map_err(Error::Inner),
            Assignment::NotAssigned => Ok(Action::await_change()),
            Assignment::Draining => {
                self.acknowledge_drain(object.as_ref()).await?;
                Ok(Action::await_change())
            }
        }
    }

    /// [`Shard::check`] as this wrapper's error, naming the object.
    fn fenced<E: std::error::Error + 'static>(&self, meta: &ObjectMeta) -> Result<(), Error<E>> {
        self.check().map_err(|source| Error::Fenced {
            object: format!(
                "{}/{}",
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default()
            ),
            source,
        })
    }

    async fn acknowledge_drain<K, E>(&self, object: &K) -> Result<(), Error<E>>
    where
        K: Resource<DynamicType = ()>,
        E: std::error::Error + 'static,
    {
        let meta = object.meta();
        let name = meta.name.clone().unwrap_or_default();
        let resource = ApiResource::erase::<K>(&());
        let api: Api<DynamicObject> = match &meta.namespace {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        let patch = json!({
            "metadata": {
                "resourceVersion": meta.resource_version,
                "labels": { labels::shard(&self.ring): null, labels::drain(&self.ring): null },
            }
        });
        self.fenced(meta)?;
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| Error::AcknowledgeDrain {
                object: format!("{}/{name}", meta.namespace.as_deref().unwrap_or_default()),
                source,
            })?;
        tracing::debug!(object = name, shard = self.name, "acknowledged drain");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ObjectMeta::default()
        }
    }

    /// A shard whose client is never contacted: the fence stops a reconciliation before any
    /// request.
    fn shard(fence: Fence) -> Shard {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        Shard::new(Client::try_from(config).unwrap(), "ring", "shard-0", fence)
    }

    fn assigned() -> Arc<k8s_openapi::api::core::v1::ConfigMap> {
        Arc::new(k8s_openapi::api::core::v1::ConfigMap {
            metadata: ObjectMeta {
                namespace: Some("ns".to_owned()),
                name: Some("web".to_owned()),
                ..meta(&[(&labels::shard("ring"), "shard-0")])
            },
            ..Default::default()
        })
    }

    /// Reconciles [`assigned`] with `shard`: whether the inner reconciler ran.
    async fn inner_runs(shard: &Shard) -> Result<bool, Error<std::io::Error>> {
        let ran = std::sync::atomic::AtomicBool::new(false);
        shard
            .reconcile(assigned(), |_| async {
                ran.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(Action::await_change())
            })
            .await?;
        Ok(ran.load(std::sync::atomic::Ordering::Relaxed))
    }

    #[tokio::test]
    async fn a_closed_fence_starts_nothing() {
        let result = inner_runs(&shard(Fence::new("ns/shard-0".to_owned()))).await;
        let Err(Error::Fenced { object, source }) = result else {
            panic!("expected Fenced, got {result:?}");
        };
        assert_eq!(object, "ns/web");
        assert_eq!(source.lease, "ns/shard-0");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fence_that_ran_out_during_a_pause_starts_nothing_on_resume() {
        let fence = Fence::new("ns/shard-0".to_owned());
        let shard = shard(fence.clone());
        // Renewed just now, valid for the default 10 s renew deadline.
        fence.extend(tokio::time::Instant::now() + std::time::Duration::from_secs(10));
        assert!(inner_runs(&shard).await.unwrap());
        // Stopped for 39 s; the keeper has not run since, but the clock has.
        tokio::time::advance(std::time::Duration::from_secs(39)).await;
        assert!(matches!(
            inner_runs(&shard).await,
            Err(Error::Fenced { .. })
        ));
    }

    #[test]
    fn an_object_labelled_for_this_shard_is_assigned() {
        let meta = meta(&[(&labels::shard("ring"), "shard-0")]);
        assert_eq!(
            Assignment::for_object(&meta, "ring", "shard-0"),
            Assignment::Assigned
        );
    }

    #[test]
    fn a_drain_label_of_any_value_means_draining() {
        let meta = meta(&[
            (&labels::shard("ring"), "shard-0"),
            (&labels::drain("ring"), ""),
        ]);
        assert_eq!(
            Assignment::for_object(&meta, "ring", "shard-0"),
            Assignment::Draining
        );
    }

    #[test]
    fn objects_of_other_shards_rings_or_none_are_not_assigned() {
        for labels in [
            meta(&[(&labels::shard("ring"), "shard-1")]),
            meta(&[(&labels::shard("other"), "shard-0")]),
            meta(&[
                (&labels::shard("other"), "shard-0"),
                (&labels::drain("ring"), "true"),
            ]),
            ObjectMeta::default(),
        ] {
            assert_eq!(
                Assignment::for_object(&labels, "ring", "shard-0"),
                Assignment::NotAssigned
            );
        }
    }
}
