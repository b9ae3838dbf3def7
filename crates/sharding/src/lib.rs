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

#![deny(missing_docs)]

pub mod api;
pub mod consistent_hash;
pub mod fence;
pub mod key;
pub mod leases;
pub mod ring;
pub mod shard;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
