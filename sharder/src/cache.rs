//! The sharder's caches: ControllerRings and shard Leases. Both are small (one object per ring
//! and per shard); the sharded objects themselves are never cached
//! (docs/contract.md#sharder-behaviour), except in the load tables of bounded-load rings, which
//! the ring watch starts and stops ([`LoadTables`], docs/sharder.md#assignment-strategies).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, Client, ResourceExt as _,
    runtime::{
        WatchStreamExt, reflector,
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use kube_sharding::{
    api::{ControllerRing, labels},
    consistent_hash::Ring,
};

use crate::{
    load_table::{LoadTable, LoadTables},
    webhook::handler::RingState,
};

/// The last hash ring of a ring, with the available shards it was built from.
#[derive(Debug)]
struct HashRing {
    members: Vec<String>,
    ring: Arc<Ring>,
    /// How many hash rings have been built for this ring so far.
    builds: u64,
}

/// The last hash ring of each ring, by ring name.
type HashRings = Arc<Mutex<HashMap<String, HashRing>>>;

/// Read access to the cached ControllerRings and shard Leases, and the hash rings built
/// from them for the webhook.
#[derive(Clone)]
pub struct RingCache {
    rings: Store<ControllerRing>,
    leases: Store<Lease>,
    hash_rings: HashRings,
    load_tables: LoadTables,
}

impl std::fmt::Debug for RingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingCache")
            .field("rings", &self.rings.len())
            .field("leases", &self.leases.len())
            .finish_non_exhaustive()
    }
}

impl RingCache {
    /// Starts the reflectors; the returned future drives them and must be polled.
    pub fn start(client: &Client) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (rings, rings_writer) = reflector::store();
        let (leases, leases_writer) = reflector::store();
        let load_tables = LoadTables::default();
        // Every change of the rings may start or stop the load table of a bounded-load ring.
        let (store, tables, table_client) = (rings.clone(), load_tables.clone(), client.clone());
        let ring_watch = reflector(
            rings_writer,
            watcher(
                Api::<ControllerRing>::all(client.clone()),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .for_each(move |event| {
            if event.is_ok() {
                tables.update(&table_client, &store.state());
            }
            async {}
        });
        // Only Leases with the ring label are shard Leases, filtered by the API server
        // (docs/sharder.md#differences-from-the-go-sharder: the Go filter is a no-op).
        let lease_watch = reflector(
            leases_writer,
            watcher(
                Api::<Lease>::all(client.clone()),
                watcher::Config::default().labels(labels::CONTROLLER_RING),
            ),
        )
        .default_backoff()
        .for_each(|_| async {});
        let tables = load_tables.clone();
        let run = async move {
            // The load tables' watches stop with the caches, also when this future is dropped.
            let _stop = StopOnDrop(tables);
            futures::join!(ring_watch, lease_watch);
        };
        let cache = Self {
            rings,
            leases,
            hash_rings: Arc::default(),
            load_tables,
        };
        (cache, run)
    }

    /// Waits until both caches have been filled once.
    pub async fn wait_until_ready(&self) {
        let _ = futures::join!(
            self.rings.wait_until_ready(),
            self.leases.wait_until_ready()
        );
    }

    /// The ControllerRing named `name`.
    #[must_use]
    pub fn ring(&self, name: &str) -> Option<Arc<ControllerRing>> {
        self.rings.get(&ObjectRef::new(name))
    }

    /// All ControllerRings.
    #[must_use]
    pub fn rings(&self) -> Vec<Arc<ControllerRing>> {
        self.rings.state()
    }

    /// The shard Leases of ring `name`.
    #[must_use]
    pub fn leases(&self, name: &str) -> Vec<Arc<Lease>> {
        let mut leases = self.leases.state();
        leases.retain(|lease| {
            lease
                .labels()
                .get(labels::CONTROLLER_RING)
                .map(String::as_str)
                == Some(name)
        });
        leases
    }

    /// All shard Leases.
    #[must_use]
    pub fn all_leases(&self) -> Vec<Arc<Lease>> {
        self.leases.state()
    }

    /// The load tables of the bounded-load rings.
    #[must_use]
    pub fn load_tables(&self) -> &LoadTables {
        &self.load_tables
    }

    /// The names of the available shards of ring `name` now.
    fn available(&self, name: &str) -> Vec<String> {
        let leases = self.leases(name);
        let shards = kube_sharding::leases::Shards::from_leases(
            leases.iter().map(AsRef::as_ref),
            Timestamp::now(),
        );
        shards.available().map(|s| s.name.clone()).collect()
    }

    /// How many hash rings have been built for each ring so far, by ring name (see
    /// [`RingState::hash_ring`]).
    ///
    /// # Panics
    /// Never: building a hash ring under the lock does not panic, so the lock is never
    /// poisoned.
    #[must_use]
    pub fn hash_ring_builds(&self) -> Vec<(String, u64)> {
        let hash_rings = self.hash_rings.lock().expect("not poisoned");
        hash_rings
            .iter()
            .map(|(name, hash_ring)| (name.clone(), hash_ring.builds))
            .collect()
    }
}

impl RingState for RingCache {
    fn controller_ring(&self, name: &str) -> Option<Arc<ControllerRing>> {
        self.ring(name)
    }

    /// The ring of the currently available shards. It is rebuilt only when that set changes,
    /// so most admissions reuse the last one.
    fn hash_ring(&self, name: &str) -> Arc<Ring> {
        let available = self.available(name);
        let mut hash_rings = self.hash_rings.lock().expect("not poisoned");
        let builds = match hash_rings.get(name) {
            Some(last) if last.members == available => return last.ring.clone(),
            Some(last) => last.builds,
            None => 0,
        };
        let ring = Arc::new(Ring::with_nodes(available.iter().cloned()));
        hash_rings.insert(
            name.to_owned(),
            HashRing {
                members: available,
                ring: ring.clone(),
                builds: builds + 1,
            },
        );
        ring
    }

    fn available_shards(&self, name: &str) -> Vec<String> {
        self.available(name)
    }

    fn load_table(&self, name: &str) -> Option<Arc<LoadTable>> {
        self.load_tables.get(name)
    }
}

/// Stops the load tables' watches when dropped.
struct StopOnDrop(LoadTables);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.clear();
    }
}
