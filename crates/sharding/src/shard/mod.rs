//! The shard side of controller sharding, for kube-runtime controllers:
//!
//! - [`ShardLease`]: hold the shard's Lease instead of a leader-election Lease, learn when it
//!   is lost, release it on shutdown;
//! - [`watcher_config`]: list and watch only this shard's objects, for the main kind and the
//!   kinds it owns;
//! - [`Shard::reconcile`]: reconcile only assigned objects and acknowledge drains;
//! - [`ShardLeaseHandle::shutdown_signal`]: stop on SIGTERM, Ctrl-C or the loss of the Lease,
//!   then release it.
//!
//! `docs/implement-sharding.md` walks through adding these to a controller.

pub mod lease;
pub mod reconciler;
pub mod selector;
pub mod shutdown;

pub use lease::{LeaseStatus, ShardLease, ShardLeaseConfig, ShardLeaseHandle};
pub use reconciler::{Assignment, Shard};
pub use selector::{label_selector, watcher_config};
pub use shutdown::Shutdown;
