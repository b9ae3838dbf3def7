//! The subcommands of `loadgen`, each with its arguments and its `run`.
//!
//! - [`ring`]: `loadgen ring`, the assignment of objects to shards computed offline with
//!   [`kube_sharding::consistent_hash`], its skew, and the movement when a shard joins or leaves.
//! - [`sharder_bench`]: `loadgen sharder-bench`, the sharder measured on a local control plane:
//!   webhook latency, memory against the number of sharded objects, and move time.
//! - [`operator_cost`]: `loadgen operator-cost`, the webhosting-operator's CPU and memory, N
//!   shards against one singleton, measured in one run on a local control plane.
//! - [`experiment`]: `loadgen experiment`, a scenario run at each shard count of its sweep on
//!   a target (an [`environment`](crate::environment)), written to `results/<run-id>/`.
//! - [`compare`]: `loadgen compare`, runs or the shard counts of one run side by side.
//! - [`plan`]: `loadgen plan`, the shard count a target of objects and churn needs, from a
//!   capacity search at several shard counts.

pub mod compare;
pub mod experiment;
pub mod operator_cost;
pub mod plan;
pub mod ring;
pub mod sharder_bench;
