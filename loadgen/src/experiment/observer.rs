//! The observer: a watch of the run's objects of each workload, one of each workload's related
//! objects when its readiness rule reads one (docs/workloads.md#reconciled), and one of the
//! ring's shard Leases, stamped on arrival and fed to the [`Tracker`]. A watch that breaks
//! after it has listed is started over by kube-runtime's watcher (relisting when its resource
//! version is too old) and counted as a watch restart (docs/experiments.md#validity).

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use futures::{StreamExt as _, TryStreamExt as _, stream::BoxStream};
use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt as _,
    api::DynamicObject,
    runtime::{WatchStreamExt as _, watcher},
};
use kube_sharding::{api::labels, leases::ShardState};
use serde_json::Value;
use tokio::sync::watch;

use super::{
    driver::{RUN_LABEL, key},
    metrics::Metrics,
    tracker::{ObjectView, Progress, Tracker},
};
use crate::{
    workload::{Locate, Reconciled, Workload},
    world::WorkloadApi,
};

/// The ring whose shards reconcile the workloads, and where their Leases are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    /// The ControllerRing's name.
    pub name: String,
    /// The namespace of its shard Leases.
    pub lease_namespace: String,
}

/// Which watch an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The objects of workload `n`.
    Objects(usize),
    /// The related objects of workload `n`.
    Related(usize),
}

/// Which of the object watches have listed.
#[derive(Debug)]
struct Listed {
    /// Per watch, by workload and whether it is of related objects: whether it has listed.
    listed: std::collections::HashMap<(usize, bool), bool>,
}

impl Listed {
    /// None of the watches of `apis` has listed.
    fn new(apis: &[WorkloadApi]) -> Self {
        let listed = apis
            .iter()
            .enumerate()
            .flat_map(|(i, api)| {
                std::iter::once(((i, false), false))
                    .chain(api.related.is_some().then_some(((i, true), false)))
            })
            .collect();
        Self { listed }
    }

    /// The workload of `source` and whether it is a watch of related objects.
    fn slot(source: Source) -> (usize, bool) {
        match source {
            Source::Objects(i) => (i, false),
            Source::Related(i) => (i, true),
        }
    }

    /// Whether the watch of `source` has listed.
    fn has(&self, source: Source) -> bool {
        self.listed
            .get(&Self::slot(source))
            .copied()
            .unwrap_or(false)
    }

    /// The watch of `source` has listed; returns whether all have.
    fn done(&mut self, source: Source) -> bool {
        self.listed.insert(Self::slot(source), true);
        self.listed.values().all(|listed| *listed)
    }
}

type Events = BoxStream<
    'static,
    (
        Source,
        Result<watcher::Event<DynamicObject>, watcher::Error>,
    ),
>;

/// Watches until the future is dropped; `synced` turns true once every watch has listed.
/// An error of a watch that has listed does not end it: it is a watch restart in the tracker.
pub async fn observe(
    client: Client,
    (run_id, ring): (&str, &Ring),
    (workloads, apis): (&[Workload], &[WorkloadApi]),
    tracker: Arc<Mutex<Tracker>>,
    metrics: Metrics,
    synced: watch::Sender<bool>,
) -> anyhow::Result<()> {
    let streams = object_watches(&client, run_id, apis);
    let watches = streams.len();
    let leases = watcher(
        Api::<Lease>::namespaced(client, &ring.lease_namespace),
        watcher::Config::default().labels(&format!("{}={}", labels::CONTROLLER_RING, ring.name)),
    )
    .default_backoff();
    let shard_label = labels::shard(&ring.name);
    let (objects_synced, leases_synced) = (watch::channel(false), watch::channel(false));
    let mut listed = Listed::new(apis);
    let mut relisting: Vec<Relisting> = apis.iter().map(|_| Relisting::default()).collect();
    let objects_done =
        futures::stream::select_all(streams)
            .map(Ok)
            .try_for_each(|(source, event)| {
                let now = Timestamp::now();
                let mut tracker = super::lock(&tracker);
                let event = match event {
                    Ok(event) => event,
                    Err(error) => {
                        let listed = listed.has(source);
                        return std::future::ready(broke(&mut tracker, now, listed, error));
                    }
                };
                let (i, related) = Listed::slot(source);
                let completed = object_event(
                    (&mut tracker, &mut relisting[i]),
                    now,
                    (&workloads[i], related),
                    event,
                    &shard_label,
                );
                match completed {
                    Some(completed) => metrics.reconciled(&completed),
                    None => {
                        if listed.done(source) {
                            objects_synced.0.send_replace(true);
                        }
                    }
                }
                metrics.observed(
                    tracker.objects(),
                    tracker.available_shards().len(),
                    tracker.pending(),
                );
                std::future::ready(Ok(()))
            });
    let mut listing = false;
    let mut first_listing = true;
    let leases_done = leases.map(Ok).try_for_each(|event| {
        let now = Timestamp::now();
        let mut tracker = super::lock(&tracker);
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                let listed = *leases_synced.0.borrow();
                return std::future::ready(broke(&mut tracker, now, listed, error));
            }
        };
        match event {
            watcher::Event::Init => listing = true,
            watcher::Event::InitApply(lease) => {
                tracker.lease_held(now, &lease.name_any(), held(&lease, now));
                tracker.lease(now, &lease.name_any(), state(&lease), first_listing);
            }
            watcher::Event::InitDone => {
                listing = false;
                first_listing = false;
                leases_synced.0.send_replace(true);
            }
            watcher::Event::Apply(lease) => {
                tracker.lease_held(now, &lease.name_any(), held(&lease, now));
                tracker.lease(
                    now,
                    &lease.name_any(),
                    state(&lease),
                    listing && first_listing,
                );
            }
            watcher::Event::Delete(lease) => {
                tracker.lease_held(now, &lease.name_any(), false);
                tracker.lease(now, &lease.name_any(), None, false);
            }
        }
        std::future::ready(Ok(()))
    });
    let all_synced = async {
        let (mut a, mut b) = (objects_synced.1, leases_synced.1);
        if watches > 0 && a.wait_for(|s| *s).await.is_ok() && b.wait_for(|s| *s).await.is_ok() {
            synced.send_replace(true);
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        result = objects_done => result,
        result = leases_done => result,
        () = all_synced => Ok(()),
    }
}

/// The watches of the run's objects of each workload, and of the related objects of those whose
/// readiness rule reads one.
fn object_watches(client: &Client, run_id: &str, apis: &[WorkloadApi]) -> Vec<Events> {
    let mut streams: Vec<Events> = Vec::new();
    for (i, api) in apis.iter().enumerate() {
        let objects = watcher(
            Api::<DynamicObject>::all_with(client.clone(), &api.resource),
            watcher::Config::default().labels(&format!("{RUN_LABEL}={run_id}")),
        )
        .default_backoff()
        .map(move |event| (Source::Objects(i), event));
        streams.push(objects.boxed());
        if let Some(related) = &api.related {
            let related = watcher(
                Api::<DynamicObject>::all_with(client.clone(), related),
                watcher::Config::default(),
            )
            .default_backoff()
            .map(move |event| (Source::Related(i), event));
            streams.push(related.boxed());
        }
    }
    streams
}

/// Feeds an event of a watch of `workload`'s objects (or, with `related`, of its related
/// objects) to the tracker, following the listings of the objects' watch in `relisting`;
/// returns the latencies it completed, or `None` when the event ends the watch's listing.
fn object_event(
    (tracker, relisting): (&mut Tracker, &mut Relisting),
    now: Timestamp,
    (workload, related): (&Workload, bool),
    event: watcher::Event<DynamicObject>,
    shard_label: &str,
) -> Option<Vec<std::time::Duration>> {
    if !related {
        relisting.see(tracker, now, workload, &event);
    }
    Some(match event {
        watcher::Event::Apply(object) | watcher::Event::InitApply(object) => {
            let object = json(&object);
            if related {
                watched_value(workload, &object).map_or_else(Vec::new, |(watched, value)| {
                    tracker.value(now, &watched, value)
                })
            } else {
                tracker.object(now, view(workload, &object, shard_label))
            }
        }
        watcher::Event::Delete(object) if !related => {
            tracker.object_deleted(now, &object_key(workload, &json(&object)));
            Vec::new()
        }
        watcher::Event::Delete(_) | watcher::Event::Init => Vec::new(),
        watcher::Event::InitDone => return None,
    })
}

/// A listing of a watch of a workload's objects: what the tracker knew when it began and what
/// it showed. kube-runtime's watcher starts over with a new listing after an error, and an
/// object deleted in between shows no event: only its absence from the listing tells.
#[derive(Debug, Default)]
struct Relisting {
    known: BTreeSet<String>,
    listed: BTreeSet<String>,
}

impl Relisting {
    /// Follows `event` of the watch of `workload`'s objects; at the end of a listing, tells
    /// the tracker which known objects it did not show.
    fn see(
        &mut self,
        tracker: &mut Tracker,
        now: Timestamp,
        workload: &Workload,
        event: &watcher::Event<DynamicObject>,
    ) {
        match event {
            watcher::Event::Init => {
                self.known = tracker.known(&object_key_prefix(workload));
                self.listed.clear();
            }
            watcher::Event::InitApply(object) => {
                self.listed.insert(object_key(workload, &json(object)));
            }
            watcher::Event::InitDone => {
                tracker.relisted(now, &self.known, &self.listed);
                self.known.clear();
                self.listed.clear();
            }
            watcher::Event::Apply(_) | watcher::Event::Delete(_) => {}
        }
    }
}

/// The start of the key of every object of `workload`.
fn object_key_prefix(workload: &Workload) -> String {
    key(&workload.resource.kind, "", "")
        .trim_end_matches('/')
        .to_owned()
        + "/"
}

/// A watch's error: before the watch has first listed, it ends the observer (the set-up is
/// wrong, say the CRD is missing); after, kube-runtime's watcher starts the watch over, and it
/// counts as a watch restart.
fn broke(
    tracker: &mut Tracker,
    now: Timestamp,
    listed: bool,
    error: watcher::Error,
) -> anyhow::Result<()> {
    if !listed {
        return Err(error.into());
    }
    tracker.watch_restarted(now);
    Ok(())
}

/// The shard state a Lease's label names; `None` without a label or with an unknown one.
fn state(lease: &Lease) -> Option<ShardState> {
    lease
        .labels()
        .get(labels::STATE)
        .and_then(|state| state.parse().ok())
}

/// Whether a Lease makes its shard available at `now` by the Lease itself
/// (`docs/contract.md#lease-states`): by time alone a Lease held by its shard never leaves the
/// available states, so this holds until the next write of the Lease.
fn held(lease: &Lease, now: Timestamp) -> bool {
    kube_sharding::leases::state(lease, now).is_available()
}

/// An object of a watch as JSON, what the readiness rules read.
fn json(object: &DynamicObject) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// The key of an object of `workload`.
fn object_key(workload: &Workload, object: &Value) -> String {
    let metadata = &object["metadata"];
    key(
        &workload.resource.kind,
        metadata["namespace"].as_str().unwrap_or_default(),
        metadata["name"].as_str().unwrap_or_default(),
    )
}

/// What the tracker needs of an object of `workload`.
fn view(workload: &Workload, object: &Value, shard_label: &str) -> ObjectView {
    let metadata = &object["metadata"];
    let progress = match &workload.reconciled {
        Reconciled::ObservedGeneration { .. } => Progress::Generation {
            reconciled: workload
                .reconciled
                .reconciled_generation(object)
                .unwrap_or(0),
            generation: metadata["generation"].as_i64().unwrap_or(0),
        },
        Reconciled::Own(_) => Progress::Value(workload.reconciled.observed_value(object)),
        Reconciled::Related(_) => Progress::Related,
    };
    ObjectView {
        key: object_key(workload, object),
        shard: metadata["labels"][shard_label].as_str().map(str::to_owned),
        progress,
    }
}

/// A related object's value, keyed by what the tracker awaits it under: the related object's
/// own key when found by name, its owner's when found by owner reference.
fn watched_value(workload: &Workload, object: &Value) -> Option<(String, String)> {
    let related = workload.reconciled.related()?;
    let value = workload.reconciled.observed_value(object)?;
    let metadata = &object["metadata"];
    let watched = match related.locate {
        Locate::Name(_) => key(
            &related.kind,
            metadata["namespace"].as_str().unwrap_or_default(),
            metadata["name"].as_str()?,
        ),
        Locate::OwnerReference => {
            let owner = related.owner_key(object, &workload.resource.kind)?;
            let (namespace, name) = owner.split_once('/').unwrap_or(("", &owner));
            key(&workload.resource.kind, namespace, name)
        }
    };
    Some((watched, value))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_website_is_viewed_with_its_shard_and_reconciled_generation() {
        let shard_label = labels::shard("webhosting-operator");
        let website = |phase: &str| {
            serde_json::json!({
                "apiVersion": "webhosting.timebertt.dev/v1alpha1",
                "kind": "Website",
                "metadata": {
                    "name": "a", "namespace": "p", "generation": 3,
                    "labels": {shard_label.clone(): "s1"},
                },
                "spec": {"theme": "t"},
                "status": {"observedGeneration": 2, "phase": phase},
            })
        };
        let workload = Workload::websites(1);
        let viewed = view(&workload, &website("Ready"), &shard_label);
        assert_eq!(
            viewed,
            ObjectView {
                key: "webhosting.timebertt.dev/Website/p/a".into(),
                shard: Some("s1".into()),
                progress: Progress::Generation {
                    reconciled: 2,
                    generation: 3
                },
            }
        );
        let error = view(&workload, &website("Error"), &shard_label);
        assert_eq!(
            error.progress,
            Progress::Generation {
                reconciled: 0,
                generation: 3
            }
        );
    }

    #[test]
    fn a_watch_error_ends_the_observer_before_the_first_listing_and_is_a_restart_after() {
        let mut tracker = Tracker::new(std::time::Duration::from_secs(10)).unwrap();
        let now = Timestamp::from_second(100).unwrap();
        let error = || watcher::Error::NoResourceVersion;
        assert!(broke(&mut tracker, now, false, error()).is_err());
        assert_eq!(tracker.watch_restarts(now, now), 0);
        assert!(broke(&mut tracker, now, true, error()).is_ok());
        assert_eq!(tracker.watch_restarts(now, now), 1);
    }

    #[test]
    fn a_lease_makes_its_shard_available_while_the_shard_holds_it() {
        use k8s_openapi::api::coordination::v1::LeaseSpec;
        let now = Timestamp::from_second(1000).unwrap();
        let lease = |holder: &str| Lease {
            metadata: kube::api::ObjectMeta {
                name: Some("s0".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                ..Default::default()
            }),
        };
        assert!(held(&lease("s0"), now));
        // Taken over by the sharder, or released: dead whatever the label says.
        assert!(!held(&lease("shardlease-controller"), now));
        assert!(!held(&lease(""), now));
    }

    #[test]
    fn a_lease_state_comes_from_its_label() {
        let mut lease = Lease::default();
        assert_eq!(state(&lease), None);
        lease.metadata.labels = Some(BTreeMap::from([(labels::STATE.into(), "dead".into())]));
        assert_eq!(state(&lease), Some(ShardState::Dead));
        lease.metadata.labels = Some(BTreeMap::from([(labels::STATE.into(), "odd".into())]));
        assert_eq!(state(&lease), None);
    }
}
