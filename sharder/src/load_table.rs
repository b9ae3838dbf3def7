//! The load tables of bounded-load rings (docs/sharder.md#assignment-strategies).
//!
//! In every replica (the webhook is served by all of them), each ring annotated `bounded-load`
//! has a table of its main objects: hash key → shard, with per-shard loads
//! ([`Assignment`]). One metadata-only watch per main resource of the ring, selected by the
//! ring's shard label, feeds it; the webhook places objects with it and records each
//! placement at once, so that concurrent admissions see it; the resync rebalances with it.
//! Hash-ring rings keep no table and no watch, so the sharder holds object state only for
//! opted-in rings.

use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use futures::{StreamExt as _, stream};
use kube::{
    Api, Client,
    api::{DynamicObject, PartialObjectMeta},
    core::TypeMeta,
    runtime::{WatchStreamExt as _, watcher},
};
use kube_sharding::{
    api::{ControllerRing, GroupResource, labels},
    key,
    strategy::{Assignment, Strategy},
};

use crate::controller::ring_resources;

/// The wait before discovery of a ring's resources is tried again.
const DISCOVERY_RETRY: Duration = Duration::from_secs(5);

/// How long a placement the webhook recorded waits for the watch to confirm it before it is
/// forgotten: the API server's call of the webhook times out after 5 s, and the watch reports a
/// stored write within moments, so a placement still unconfirmed then belongs to a write that
/// failed after admission (docs/sharder.md#assignment-strategies).
pub const UNCONFIRMED_TTL: Duration = Duration::from_secs(30);

/// The load table of one bounded-load ring.
#[derive(Debug, Default)]
pub struct LoadTable(Mutex<Table>);

impl LoadTable {
    /// The table, locked: an admission decides and records under one lock, so that
    /// concurrent admissions on this replica see each other's placements.
    pub fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a table that is at worst stale; the watch
        // corrects it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A table's contents: the assignment, and how far its watches have come.
#[derive(Debug, Default)]
pub struct Table {
    assignment: Assignment,
    /// Whether the ring's main resources are known (discovery succeeded).
    discovered: bool,
    /// The main resources (by hash key prefix) whose watch has not listed once yet.
    unlisted: HashSet<String>,
    /// The objects listed so far in a relist, by hash key prefix of their resource.
    relisting: HashMap<String, Vec<(String, String)>>,
    /// Why the table is not synced, if discovery or a watch failed since it last listed.
    failure: Option<String>,
    /// When the webhook recorded each placement that no watch event has confirmed yet.
    unconfirmed: HashMap<String, Instant>,
    /// The same placements in the order they were recorded, for [`Table::expire`]; an entry
    /// whose time differs from `unconfirmed`'s was confirmed or recorded again since.
    recorded: VecDeque<(String, Instant)>,
}

impl Table {
    /// The main objects' shards and the shards' loads.
    #[must_use]
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }

    /// Whether every main resource has been listed once: until then the webhook places by
    /// preference only and the resync waits.
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.discovered && self.unlisted.is_empty()
    }

    /// Why the table is not synced yet, if discovery or a watch failed meanwhile (a missing
    /// `watch` permission, for example), rather than only not having listed yet.
    #[must_use]
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Records a failure of discovery or of a watch.
    fn fail(&mut self, failure: String) {
        self.failure = Some(failure);
    }

    /// Records the webhook's placement of main object `key` on `shard` at `now`; the watch
    /// confirms it, or [`Table::expire`] forgets it.
    pub fn record(&mut self, key: &str, shard: &str, now: Instant) {
        self.assignment.set(key, shard);
        self.unconfirmed.insert(key.to_owned(), now);
        self.recorded.push_back((key.to_owned(), now));
    }

    /// Forgets the placements recorded more than [`UNCONFIRMED_TTL`] before `now` that no watch
    /// event has confirmed: their writes failed after admission (another admission plugin
    /// rejected them, say), so their objects do not exist or are elsewhere.
    pub fn expire(&mut self, now: Instant) {
        while let Some((_, at)) = self.recorded.front()
            && now.saturating_duration_since(*at) > UNCONFIRMED_TTL
        {
            let Some((key, at)) = self.recorded.pop_front() else {
                break;
            };
            if self.unconfirmed.get(&key) == Some(&at) {
                self.unconfirmed.remove(&key);
                self.assignment.remove(&key);
            }
        }
    }

    /// Marks the placement of `key`, if recorded, as confirmed by the watch.
    fn confirm(&mut self, key: &str) {
        self.unconfirmed.remove(key);
    }

    /// Expects the watches of `feeds` to list before the table is synced.
    pub(crate) fn expect_feeds(&mut self, feeds: &[Feed]) {
        self.discovered = true;
        self.unlisted = feeds.iter().map(|feed| feed.prefix.clone()).collect();
    }

    /// Applies one event of the watch of `feed`: an object with the shard label is on that
    /// shard, one without it (deleted, or its label removed) is in no shard's load, and a
    /// relist (`Init` … `InitDone`) replaces the resource's part of the table.
    pub fn apply(&mut self, feed: &Feed, event: watcher::Event<PartialObjectMeta<DynamicObject>>) {
        match event {
            watcher::Event::Init => {
                self.relisting.insert(feed.prefix.clone(), Vec::new());
            }
            watcher::Event::InitApply(object) => {
                if let (Some(key), Some(shard)) = (feed.key(&object), feed.shard(&object))
                    && let Some(listed) = self.relisting.get_mut(&feed.prefix)
                {
                    self.unconfirmed.remove(&key);
                    listed.push((key, shard));
                }
            }
            watcher::Event::InitDone => {
                let listed = self.relisting.remove(&feed.prefix).unwrap_or_default();
                let stale: Vec<String> = self
                    .assignment
                    .iter()
                    .filter(|(key, _)| key.starts_with(&feed.prefix))
                    .map(|(key, _)| key.to_owned())
                    .collect();
                for key in stale {
                    self.assignment.remove(&key);
                }
                for (key, shard) in listed {
                    self.assignment.set(key, shard);
                }
                self.unlisted.remove(&feed.prefix);
                self.failure = None;
            }
            watcher::Event::Apply(object) => {
                if let Some(key) = feed.key(&object) {
                    self.confirm(&key);
                    match feed.shard(&object) {
                        Some(shard) => self.assignment.set(key, shard),
                        None => {
                            self.assignment.remove(&key);
                        }
                    }
                }
            }
            watcher::Event::Delete(object) => {
                if let Some(key) = feed.key(&object) {
                    self.confirm(&key);
                    self.assignment.remove(&key);
                }
            }
        }
    }
}

/// One main resource of a ring as its watch feeds the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Feed {
    /// The apiVersion and kind of its objects, which their hash key needs (a metadata watch
    /// reports `PartialObjectMetadata` instead).
    types: TypeMeta,
    /// `<group>/<Kind>/`, the start of every hash key of the resource's objects.
    prefix: String,
    /// The ring's shard label.
    label: String,
}

impl Feed {
    /// The feed of the objects of kind `types` labelled for ring `ring`.
    #[must_use]
    pub fn new(ring: &str, types: TypeMeta) -> Self {
        let prefix = format!("{}/{}/", key::group_of(&types.api_version), types.kind);
        Self {
            types,
            prefix,
            label: labels::shard(ring),
        }
    }

    fn key(&self, object: &PartialObjectMeta<DynamicObject>) -> Option<String> {
        key::for_object(Some(&self.types), &object.metadata).ok()
    }

    fn shard(&self, object: &PartialObjectMeta<DynamicObject>) -> Option<String> {
        object
            .metadata
            .labels
            .as_ref()?
            .get(&self.label)
            .filter(|shard| !shard.is_empty())
            .cloned()
    }
}

/// The running table of one ring: its watches stop when it is dropped.
#[derive(Debug)]
struct Running {
    /// The main resources the watches were started for.
    resources: BTreeSet<GroupResource>,
    table: Arc<LoadTable>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The load tables of all bounded-load rings, by ring name. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct LoadTables(Arc<Mutex<HashMap<String, Running>>>);

impl LoadTables {
    /// The table of ring `ring`, if it is a bounded-load ring whose watches were started.
    #[must_use]
    pub fn get(&self, ring: &str) -> Option<Arc<LoadTable>> {
        self.running()
            .get(ring)
            .map(|running| Arc::clone(&running.table))
    }

    /// Starts the watches of every ring of `rings` annotated `bounded-load` that has none (or
    /// whose main resources changed), and stops those of every other ring. Must be called
    /// within a tokio runtime.
    pub fn update(&self, client: &Client, rings: &[Arc<ControllerRing>]) {
        let mut running = self.running();
        let wanted: HashMap<&str, &Arc<ControllerRing>> = rings
            .iter()
            .filter(|ring| Strategy::of(ring).ok() == Some(Strategy::BoundedLoad))
            .map(|ring| (ring.ring_name(), ring))
            .collect();
        running.retain(|name, table| {
            wanted
                .get(name.as_str())
                .is_some_and(|ring| main_resources(ring) == table.resources)
        });
        for (name, ring) in wanted {
            if running.contains_key(name) {
                continue;
            }
            tracing::info!(
                ring = name,
                "starting the load table of a bounded-load ring"
            );
            let table = Arc::new(LoadTable::default());
            let task = tokio::spawn(watch(client.clone(), Arc::clone(ring), Arc::clone(&table)));
            running.insert(
                name.to_owned(),
                Running {
                    resources: main_resources(ring),
                    table,
                    task,
                },
            );
        }
    }

    /// Stops every watch.
    pub fn clear(&self) {
        self.running().clear();
    }

    fn running(&self) -> MutexGuard<'_, HashMap<String, Running>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The main resources of `ring` (its `resources[]`, not their controlled resources).
fn main_resources(ring: &ControllerRing) -> BTreeSet<GroupResource> {
    ring.spec
        .resources
        .iter()
        .map(kube_sharding::api::RingResource::group_resource)
        .collect()
}

/// Discovers `ring`'s main resources and feeds `table` from one metadata watch of each,
/// selected by the ring's shard label, until aborted.
async fn watch(client: Client, ring: Arc<ControllerRing>, table: Arc<LoadTable>) {
    let name = ring.ring_name();
    let served = loop {
        match ring_resources::discover(&client, &ring).await {
            Ok(served) => break served,
            Err(error) => {
                tracing::warn!(ring = name, %error, retry_in = ?DISCOVERY_RETRY, "cannot discover the resources of a bounded-load ring");
                table
                    .lock()
                    .fail(format!("cannot discover its resources: {error}"));
                tokio::time::sleep(DISCOVERY_RETRY).await;
            }
        }
    };
    // The same resources as the webhook configuration and the resync
    // (docs/contract.md#ring-validation); one that is not served has no objects.
    let omitted = ring_resources::omitted(&ring_resources::validate(&ring, Some(&served)));
    let feeds: Vec<_> = main_resources(&ring)
        .into_iter()
        .filter(|resource| !omitted.contains(resource))
        .filter_map(|resource| served.get(&resource).cloned())
        .map(|found| {
            let types = TypeMeta {
                api_version: found.api_resource.api_version.clone(),
                kind: found.api_resource.kind.clone(),
            };
            (Feed::new(name, types), found.api_resource)
        })
        .collect();
    table.lock().expect_feeds(
        &feeds
            .iter()
            .map(|(feed, _)| feed.clone())
            .collect::<Vec<_>>(),
    );
    // "label exists": only assigned objects count towards a shard's load.
    let config = watcher::Config::default().labels(&labels::shard(name));
    let watches = feeds.into_iter().map(|(feed, resource)| {
        // An Api of PartialObjectMeta sends metadata-only requests.
        watcher(
            Api::<PartialObjectMeta<DynamicObject>>::all_with(client.clone(), &resource),
            config.clone(),
        )
        .default_backoff()
        .map(move |event| (feed.clone(), event))
        .boxed()
    });
    stream::select_all(watches)
        .for_each(|(feed, event)| {
            match event {
                Ok(event) => table.lock().apply(&feed, event),
                Err(error) => {
                    tracing::warn!(ring = name, %error, "load table watch failed, retrying");
                    let failure = format!(
                        "cannot watch {}: {error}",
                        feed.prefix.trim_end_matches('/')
                    );
                    table.lock().fail(failure);
                }
            }
            async {}
        })
        .await;
}

#[cfg(test)]
mod tests {
    use kube::api::ObjectMeta;

    use super::*;

    fn feed() -> Feed {
        Feed::new(
            "ring",
            TypeMeta {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
            },
        )
    }

    fn object(name: &str, shard: Option<&str>) -> PartialObjectMeta<DynamicObject> {
        PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: shard.map(|shard| [(labels::shard("ring"), shard.to_owned())].into()),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        }
    }

    fn entries(table: &Table) -> Vec<(String, String)> {
        table
            .assignment()
            .iter()
            .map(|(key, shard)| (key.to_owned(), shard.to_owned()))
            .collect()
    }

    fn entry(name: &str, shard: &str) -> (String, String) {
        (format!("/ConfigMap/ns/{name}"), shard.to_owned())
    }

    #[test]
    fn a_table_is_synced_once_every_main_resource_was_listed() {
        let mut table = Table::default();
        assert!(!table.is_synced(), "before discovery");
        let other = Feed::new(
            "ring",
            TypeMeta {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
            },
        );
        table.expect_feeds(&[feed(), other.clone()]);
        table.apply(&feed(), watcher::Event::Init);
        table.apply(&feed(), watcher::Event::InitDone);
        assert!(!table.is_synced(), "one resource listed");
        table.fail("cannot watch apps/Deployment: forbidden".into());
        assert_eq!(
            table.failure(),
            Some("cannot watch apps/Deployment: forbidden")
        );
        table.apply(&other, watcher::Event::Init);
        table.apply(&other, watcher::Event::InitDone);
        assert!(table.is_synced());
        assert_eq!(table.failure(), None, "a list clears the failure");
    }

    #[test]
    fn labelled_objects_are_added_moved_and_removed() {
        let mut table = Table::default();
        table.apply(&feed(), watcher::Event::Apply(object("a", Some("shard-0"))));
        table.apply(&feed(), watcher::Event::Apply(object("b", Some("shard-1"))));
        table.apply(&feed(), watcher::Event::Apply(object("a", Some("shard-2"))));
        assert_eq!(
            entries(&table),
            [entry("a", "shard-2"), entry("b", "shard-1")]
        );
        table.apply(&feed(), watcher::Event::Apply(object("a", None)));
        table.apply(
            &feed(),
            watcher::Event::Delete(object("b", Some("shard-1"))),
        );
        assert!(table.assignment().is_empty());
    }

    #[test]
    fn a_relist_replaces_the_resources_part_of_the_table_only_when_done() {
        let mut table = Table::default();
        let now = Instant::now();
        table.record("/ConfigMap/ns/gone", "shard-0", now);
        table.record("apps/Deployment/ns/web", "shard-1", now);
        table.apply(&feed(), watcher::Event::Init);
        table.apply(
            &feed(),
            watcher::Event::InitApply(object("a", Some("shard-1"))),
        );
        table.apply(&feed(), watcher::Event::InitApply(object("b", None)));
        assert_eq!(table.assignment().shard_of("/ConfigMap/ns/a"), None);
        assert_eq!(table.assignment().len(), 2, "unchanged until InitDone");
        table.apply(&feed(), watcher::Event::InitDone);
        assert_eq!(
            entries(&table),
            [
                entry("a", "shard-1"),
                ("apps/Deployment/ns/web".into(), "shard-1".into()),
            ]
        );
    }

    #[test]
    fn placements_the_watch_never_confirms_are_forgotten_after_the_ttl() {
        let mut table = Table::default();
        let start = Instant::now();
        table.record("/ConfigMap/ns/failed", "shard-0", start);
        table.record("/ConfigMap/ns/a", "shard-1", start);
        table.record("/ConfigMap/ns/again", "shard-1", start);
        table.apply(&feed(), watcher::Event::Apply(object("a", Some("shard-1"))));
        // Recorded again later (a move): the first record no longer counts.
        table.record("/ConfigMap/ns/again", "shard-2", start + UNCONFIRMED_TTL);

        table.expire(start + UNCONFIRMED_TTL);
        assert_eq!(table.assignment().len(), 3, "not yet");
        table.expire(start + UNCONFIRMED_TTL + Duration::from_secs(1));
        assert_eq!(
            entries(&table),
            [entry("a", "shard-1"), entry("again", "shard-2")],
            "the unconfirmed placement is forgotten"
        );
        table.expire(start + 2 * UNCONFIRMED_TTL + Duration::from_secs(1));
        assert_eq!(entries(&table), [entry("a", "shard-1")]);
    }

    fn ring(name: &str, strategy: Option<&str>, resource: &str) -> Arc<ControllerRing> {
        let mut ring = ControllerRing::new(
            name,
            kube_sharding::api::ControllerRingSpec {
                resources: vec![kube_sharding::api::RingResource {
                    group: String::new(),
                    resource: resource.into(),
                    controlled_resources: vec![GroupResource::new("", "secrets")],
                }],
                namespace_selector: None,
            },
        );
        ring.metadata.annotations = strategy.map(|strategy| {
            [(
                kube_sharding::strategy::ANNOTATION.to_owned(),
                strategy.to_owned(),
            )]
            .into()
        });
        Arc::new(ring)
    }

    #[tokio::test]
    async fn tables_start_and_stop_with_the_annotation_and_restart_when_main_resources_change() {
        // No API server: the watches only retry their discovery until they are stopped.
        let client =
            Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let tables = LoadTables::default();
        tables.update(
            &client,
            &[
                ring("balanced", Some("bounded-load"), "configmaps"),
                ring("hashed", None, "configmaps"),
                ring("explicit", Some("hash-ring"), "configmaps"),
                ring("bad", Some("least-loaded"), "configmaps"),
            ],
        );
        let first = tables
            .get("balanced")
            .expect("a table for the bounded-load ring");
        for name in ["hashed", "explicit", "bad"] {
            assert!(tables.get(name).is_none(), "{name}");
        }
        assert!(!first.lock().is_synced());

        // A status or label change keeps the table; new main resources replace it.
        tables.update(
            &client,
            &[ring("balanced", Some("bounded-load"), "configmaps")],
        );
        assert!(Arc::ptr_eq(&first, &tables.get("balanced").unwrap()));
        tables.update(
            &client,
            &[ring("balanced", Some("bounded-load"), "services")],
        );
        assert!(!Arc::ptr_eq(&first, &tables.get("balanced").unwrap()));

        tables.update(&client, &[ring("balanced", None, "services")]);
        assert!(tables.get("balanced").is_none(), "annotation removed");
        tables.update(
            &client,
            &[ring("balanced", Some("bounded-load"), "services")],
        );
        tables.update(&client, &[]);
        assert!(tables.get("balanced").is_none(), "ring deleted");
    }
}
