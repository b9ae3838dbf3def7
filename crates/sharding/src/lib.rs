//! Controller sharding for kube-runtime controllers.
//!
//! This crate is the wire contract shared by the sharder and its shards, and the library a
//! controller author adds to a kube-runtime controller to run it as one of many shards:
//!
//! - [`api`]: the `ControllerRing` resource and the names and labels of the contract;
//! - [`key`]: the hash key of an object, [`consistent_hash`]: the ring that maps keys to
//!   shards, [`leases`]: shard states computed from Leases, [`ring`]: the ring of a
//!   ControllerRing's available shards;
//! - [`shard`]: the shard side: keep the shard Lease, watch only this shard's objects, and
//!   acknowledge drains without reconciling;
//! - [`fence`]: whether a held Lease may still be acted on, by this process's monotonic clock.
//!
//! # Quick start
//!
//! A controller of ConfigMaps becomes a shard of the ControllerRing `configmap-controller` in
//! five steps; its own reconcile function does not change. The sharder (of this project or of
//! the Go project kubernetes-controller-sharding) assigns the objects.
//!
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//!
//! use futures::StreamExt as _;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube::{
//!     Api, Client,
//!     runtime::{Controller, controller::Action},
//! };
//! use kube_sharding::shard::{Shard, ShardLease, ShardLeaseConfig, reconciler, watcher_config};
//!
//! const RING: &str = "configmap-controller";
//!
//! # #[derive(Debug, thiserror::Error)] #[error("failed")] struct Error;
//! async fn reconcile(object: Arc<ConfigMap>, shard: Arc<Shard>) -> Result<Action, Error> {
//!     Ok(Action::await_change())
//! }
//!
//! fn error_policy(_: Arc<ConfigMap>, _: &reconciler::Error<Error>, _: Arc<Shard>) -> Action {
//!     Action::requeue(Duration::from_secs(5))
//! }
//!
//! # async fn run(shard_name: String, namespace: String) -> anyhow::Result<()> {
//! let client = Client::try_default().await?;
//!
//! // 1. Hold the shard Lease instead of a leader-election Lease; name the shard after the pod.
//! let config = ShardLeaseConfig::new(RING, &shard_name, namespace);
//! let lease = ShardLease::new(client.clone(), config);
//! let fence = lease.fence();
//! let lease = lease.acquire().await?;
//!
//! // 2. Watch only this shard's objects.
//! let config = watcher_config(RING, &shard_name);
//!
//! // 3. Stop on SIGTERM, Ctrl-C or the loss of the Lease.
//! let shutdown = lease.shutdown_signal();
//!
//! // 4. Reconcile only assigned objects, while the Lease's fence holds; acknowledge drains.
//! let shard = Arc::new(Shard::new(client.clone(), RING, &shard_name, fence));
//! Controller::new(Api::<ConfigMap>::all(client), config)
//!     .graceful_shutdown_on(async move {
//!         shutdown.await;
//!     })
//!     .run(
//!         |object, shard| async move {
//!             let inner = shard.clone();
//!             shard.reconcile(object, |object| reconcile(object, inner)).await
//!         },
//!         error_policy,
//!         shard,
//!     )
//!     .for_each(|_| async {})
//!     .await;
//!
//! // 5. Release the Lease, so that the sharder moves this shard's objects at once.
//! lease.release().await?;
//! # Ok(())
//! # }
//! ```
//!
//! The complete program, with owned objects, is `examples/sharded_controller.rs`. The
//! repository's guide `docs/implement-sharding.md` walks through the same steps with the
//! ControllerRing to create and the RBAC a shard needs; `docs/contract.md` states the protocol.
//!
//! # Kubernetes version
//!
//! Like every library on k8s-openapi, this crate enables no Kubernetes version feature of
//! k8s-openapi: the application does, in its own dependency on k8s-openapi (for example
//! `features = ["v1_36"]` or `["latest"]`). Nor does it pick kube's TLS stack.
//!
//! # Features
//!
//! - `testing`: the module `testing`, fixture builders for tests of code that works with shard
//!   Leases.

#![deny(missing_docs)]

/// The k8s-openapi this crate is built on, whose types appear in its API (`Lease`,
/// `ObjectMeta`, `jiff::Timestamp`).
pub use k8s_openapi;
/// The kube this crate is built on, whose types appear in its API (`Client`, `kube::Error`,
/// `watcher::Config`, `Action`).
pub use kube;

pub mod api;
pub mod consistent_hash;
pub mod fence;
pub mod key;
pub mod leases;
pub mod ring;
pub mod shard;
pub mod strategy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
