//! The local stack: a local control plane ([`testenv`]) plus the sharder and the shards of a
//! controller under test (the webhosting-operator, or any other) as real processes, for loadgen
//! experiments and integration tests.
//!
//! - [`environment`] is the control plane to run them on.
//! - [`Binaries`] finds the `sharder` and `webhosting-operator` executables.
//! - [`SharderProcess`], [`ControllerProcess`] (a shard of any controller, from a
//!   [`ShardCommand`]) and [`OperatorProcess`] (a webhosting-operator replica) start them
//!   against a [`ControlPlane`](testenv::ControlPlane) on loopback, read their CPU and memory
//!   ([`Usage`]) and their `/metrics`, and stop them gracefully or kill them.
//! - [`install_sharding`], [`install_webhosting`] (or any controller's [`Manifest`]s with
//!   [`install_manifests`]), [`create_project_namespace`] (or [`create_namespace`], outside the
//!   ring) and [`wait_ring_ready`] put the APIs in place and wait until the sharder's webhook
//!   is called.
//! - [`exposition`] reads the Prometheus text their `/metrics` serve.
//! - [`Stack`] does all of it in one start-up, the one every loadgen subcommand uses, and
//!   keeps the sharder's replicas ([`Sharders`], one or several that elect a leader) and the
//!   controller's replicas ([`Operators`]) started on it; [`Stack::supervise`] restarts those
//!   that exit, with the back-off of a [`RestartPolicy`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//!
//! let binaries = stack::Binaries::next_to_current_exe()?;
//! let control_plane = stack::environment().start().await?;
//! let client = control_plane.client().await?;
//! stack::install_sharding(&client).await?;
//! stack::install_webhosting(&client).await?;
//! let settings = stack::SharderSettings::default();
//! let mut sharder = stack::SharderProcess::start(&control_plane, &binaries.sharder, &settings)?;
//! stack::wait_ring_ready(&client, stack::WEBHOSTING_RING, Duration::from_secs(60)).await?;
//! let shard = stack::OperatorProcess::start(
//!     &control_plane,
//!     &binaries.operator,
//!     &stack::OperatorSettings::sharded("shard-0"),
//! )?;
//! println!("sharder uses {} bytes", sharder.usage()?.rss_bytes);
//! # Ok(())
//! # }
//! ```
//!
//! # Caveats
//! The processes are killed when their handle is dropped, and their files live in the control
//! plane's directory, which is removed with it. A parent killed by `SIGKILL` leaves them
//! running until they fail to reach the (then stopped) API server; the control plane's own
//! watchdog only knows its own components.

#![deny(missing_docs)]

mod binaries;
mod controller;
pub mod exposition;
mod install;
mod manifest;
mod metrics;
mod operator;
mod operators;
mod process;
mod ring;
mod sharder;
mod start;
mod supervisor;
mod usage;
mod wait;

pub use crate::{
    binaries::{Binaries, build_for_tests},
    controller::{ControllerProcess, ShardCommand},
    exposition::metric_sum,
    install::{
        OPERATOR_NAMESPACE, PROJECT_LABEL, create_namespace, create_project_namespace,
        install_sharding, install_webhosting, webhosting_manifests,
    },
    manifest::{Manifest, install_manifests, is_rbac},
    operator::{OperatorProcess, OperatorSettings},
    operators::{Operators, UncleanExit},
    process::free_port,
    ring::{WEBHOSTING_RING, wait_ring_ready},
    sharder::{LeaderElection, SharderProcess, SharderSettings, Sharders, leader_of},
    start::{ControllerSetup, Stack, StackOptions},
    supervisor::{Decision, RestartPolicy, Restarts},
    usage::Usage,
    wait::wait_for,
};

/// A local control plane for the stack: etcd, kube-apiserver and kube-controller-manager
/// (which makes the Websites' Deployments Available and garbage-collects their children).
pub fn environment() -> testenv::Environment {
    testenv::Environment::new().controller_manager(true)
}
