//! The webhosting-operator: Websites styled by Themes, each served by a Deployment, ConfigMap,
//! Service and Ingress. It runs as one shard of the ControllerRing `webhosting-operator` or as
//! a leader-elected singleton.
//!
//! [`run`] wires everything; `main` only parses flags, so that tests can run the operator
//! in-process on listeners bound to port 0.

pub mod api;
pub mod audit;
pub mod children;
pub mod controller;
pub mod metrics;
pub mod options;
pub mod phase;
pub mod samples;

use std::{net::TcpListener, sync::Arc};

use anyhow::Context as _;
use controller_runtime_metrics::{ControllerMetrics, RestClientMetrics};
use kube::{
    Client,
    runtime::{
        events::{Recorder, Reporter},
        watcher,
    },
};
use operations::{
    http::{self, Readiness},
    leader::{self, LeaderElection},
    stopped,
};
use prometheus_client::registry::Registry;
use sharding::shard::{Shard, ShardLease, ShardLeaseConfig, ShardLeaseHandle, watcher_config};
use tokio::sync::watch;

use crate::{
    audit::Audit,
    controller::{Watches, website::Context},
    metrics::{RING, WebhostingCollector},
    options::{Mode, Options},
};

/// The name of the Website controller, and of its work queue.
pub const CONTROLLER: &str = "website";

/// The sockets the operator serves on, bound before it starts so that callers can use port 0.
#[derive(Debug)]
pub struct Listeners {
    /// `/metrics`.
    pub metrics: TcpListener,
    /// `/healthz` and `/readyz`.
    pub health: TcpListener,
}

impl Listeners {
    /// Binds the addresses of `options`.
    pub fn bind(options: &Options) -> anyhow::Result<Self> {
        let bind = |address| {
            TcpListener::bind(address).with_context(|| format!("cannot listen on {address}"))
        };
        Ok(Self {
            metrics: bind(options.metrics_address)?,
            health: bind(options.health_address)?,
        })
    }
}

/// Runs the operator until `shutdown` completes: as a shard, it holds its shard Lease and
/// releases it at the end; as a singleton, it reconciles while it leads.
///
/// # Errors
/// The Lease cannot be acquired or is lost, or a server fails. A shard that lost its Lease
/// must stop, since the sharder may already have given its Websites to other shards.
pub async fn run(
    options: Options,
    (client, rest_metrics): (Client, RestClientMetrics),
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let selected = match options.mode {
        Mode::Sharded => watcher_config(RING, &options.identity),
        Mode::Singleton => watcher::Config::default(),
    };
    let watches = Watches::new(&client, &selected);
    let mut registry = Registry::default();
    let controller_metrics = ControllerMetrics::register(&mut registry);
    rest_metrics.register(&mut registry);
    registry.register_collector(Box::new(WebhostingCollector {
        websites: watches.websites.clone(),
        themes: watches.themes.clone(),
    }));
    let readiness = Readiness::default();
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(http::serve(
        listeners.metrics,
        http::metrics_router(Arc::new(registry)),
        stopped(&stop),
    ));
    servers.spawn(http::serve(
        listeners.health,
        http::health_router(readiness.clone()),
        stopped(&stop),
    ));

    // Servers first, so that a standby singleton answers health checks; it counts as ready, or
    // a rolling update would wait for a replica that cannot lead before the old one leaves.
    if options.mode == Mode::Singleton {
        readiness.set_ready();
    }
    // The Lease before any watch: a shard must not watch or reconcile before it is a member.
    let membership = match options.mode {
        Mode::Sharded => Membership::Shard(Box::new(acquire_shard_lease(&client, &options).await?)),
        Mode::Singleton => Membership::Leader(lead(&client, &options, &stop).await?),
    };
    let Some(membership) = membership.started() else {
        return Ok(());
    };
    let ctx = context(&options, &client, &watches)?;
    let synced = watches.synced();
    let ready = readiness.clone();
    tokio::spawn(async move {
        synced.await;
        ready.set_ready();
        tracing::info!("caches synced");
    });

    // Losing the Lease or leadership stops the controller as a shutdown does.
    let (lost_tx, lost) = watch::channel(false);
    let lost_membership = membership.lost();
    let watch_membership = tokio::spawn(async move {
        lost_membership.await;
        let _ = lost_tx.send(true);
    });
    let controller_stop = {
        let (stop, lost) = (stopped(&stop), stopped(&lost));
        async move {
            tokio::select! {
                () = stop => {}
                () = lost => {}
            }
        }
    };
    let controller = controller::run(
        watches,
        ctx,
        controller_metrics.controller(CONTROLLER, u32::from(options.workers)),
        options.workers,
        controller_stop,
    );
    tokio::pin!(controller);
    let server_ended = tokio::select! {
        () = &mut controller => None,
        Some(joined) = servers.join_next() => {
            Some(joined.context("server task panicked").and_then(|served| served))
        }
    };
    let server_failed = match server_ended {
        None => None,
        // Stopping: the servers may end before the controller has drained.
        Some(Ok(())) if *stop.borrow() => {
            controller.await;
            None
        }
        Some(ended) => Some(ended.and(Err(anyhow::anyhow!("a server stopped unexpectedly")))),
    };
    // The watcher holds a handle on leadership, which must be gone for the Lease to be released.
    watch_membership.abort();
    let _ = watch_membership.await;
    let result = match server_failed {
        Some(failure) => failure,
        None => membership.end().await,
    };
    servers.abort_all();
    result
}

/// The reconciler's context: the caches of `watches` and the settings of `options`.
fn context(options: &Options, client: &Client, watches: &Watches) -> anyhow::Result<Arc<Context>> {
    Ok(Arc::new(Context {
        client: client.clone(),
        themes: watches.themes.clone(),
        deployments: watches.deployments.clone(),
        config_maps: watches.config_maps.clone(),
        services: watches.services.clone(),
        ingresses: watches.ingresses.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "webhosting-operator".to_owned(),
                instance: Some(options.identity.clone()),
            },
        ),
        shard: (options.mode == Mode::Sharded)
            .then(|| Shard::new(client.clone(), RING, &options.identity)),
        simulated_work: options.simulated_work,
        audit: options
            .audit_file
            .as_deref()
            .map(|path| {
                Audit::open(path, &options.identity)
                    .with_context(|| format!("cannot open the audit file {}", path.display()))
            })
            .transpose()?,
    }))
}

/// How this replica takes part: a shard's Lease, or leadership of the singleton.
enum Membership {
    Shard(Box<ShardLeaseHandle>),
    Leader(Option<leader::Leadership>),
}

impl Membership {
    /// `None` if the process was stopped before it became a member.
    fn started(self) -> Option<Self> {
        match self {
            Self::Leader(None) => None,
            membership => Some(membership),
        }
    }

    /// Completes when this replica must stop reconciling.
    fn lost(&self) -> futures::future::BoxFuture<'static, ()> {
        match self {
            Self::Shard(lease) => Box::pin(lease.lost()),
            Self::Leader(Some((leading, _))) => {
                let mut leading = leading.clone();
                Box::pin(async move {
                    let _ = leading.wait_for(|leading| !*leading).await;
                })
            }
            Self::Leader(None) => Box::pin(std::future::pending()),
        }
    }

    /// Leaves after the controller stopped: releases the shard Lease (so the sharder moves
    /// the Websites at once) or the leader Lease. Fails if it was lost.
    async fn end(self) -> anyhow::Result<()> {
        match self {
            Self::Shard(lease) => {
                if !lease.is_held() {
                    anyhow::bail!("lost the shard Lease");
                }
                lease
                    .release()
                    .await
                    .context("cannot release the shard Lease")
            }
            Self::Leader(Some((leading, task))) => {
                let lost = !*leading.borrow();
                drop(leading);
                let _ = task.await;
                if lost {
                    anyhow::bail!("lost leadership");
                }
                Ok(())
            }
            Self::Leader(None) => Ok(()),
        }
    }
}

async fn acquire_shard_lease(
    client: &Client,
    options: &Options,
) -> anyhow::Result<ShardLeaseHandle> {
    let duration = options.lease_duration;
    let config = ShardLeaseConfig::new(RING, &options.identity, &options.namespace)
        .lease_duration(duration)
        // The ratios of leader election's defaults (15 s, 10 s, 2 s).
        .renew_deadline(duration * 2 / 3)
        .retry_period(duration * 2 / 15);
    let lease = ShardLease::new(client.clone(), config)
        .acquire()
        .await
        .with_context(|| format!("cannot acquire the shard Lease {}", options.identity))?;
    tracing::info!(shard = options.identity, "acquired the shard Lease");
    Ok(lease)
}

/// Waits for leadership; `None` if `stop` came first.
async fn lead(
    client: &Client,
    options: &Options,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Option<leader::Leadership>> {
    let election = LeaderElection {
        namespace: options.namespace.clone(),
        name: RING.to_owned(),
        identity: options.identity.clone(),
        lease_duration: options.lease_duration,
        renew_deadline: options.lease_duration * 2 / 3,
    };
    let (mut leading, task) = leader::elect(client.clone(), &election)
        .await
        .context("cannot start leader election")?;
    tokio::select! {
        result = leading.wait_for(|leading| *leading) => {
            result.context("leader election stopped")?;
        }
        () = stopped(stop) => return Ok(None),
    }
    tracing::info!(lease = RING, "became leader");
    Ok(Some((leading, task)))
}
