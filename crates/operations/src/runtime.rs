//! The lifecycle of a controller process, the same for the sharder and the operator: serve
//! health, metrics and other endpoints at once; wait to become a member (leadership, a shard
//! Lease, or nothing to wait for); do the work while a member; stop the work on a shutdown
//! signal or when the membership is lost; then leave and stop the servers within the graceful
//! shutdown timeout.
//!
//! Listeners are bound by the caller before it builds the [`Runtime`], so tests can run a
//! process in-process on port 0.

use std::{net::TcpListener, sync::Arc, time::Duration};

use anyhow::Context as _;
use axum::Router;
use futures::future::Either;
use kube::Client;
use kube_sharding::shard::{ShardLease, ShardLeaseConfig, ShardLeaseHandle};
use prometheus_client::registry::Registry;
use tokio::{sync::watch, task::JoinSet};

use crate::{
    http::{self, MetricsServing},
    stopped,
};

/// What a replica holds while it works, such as leadership or a shard Lease.
pub trait Membership: Send {
    /// Completes once the membership is lost: the work must stop, since another replica may
    /// already do it.
    fn lost(&self) -> impl Future<Output = ()> + Send + 'static;

    /// Leaves after the work stopped, releasing what was held so that another replica can take
    /// over at once.
    ///
    /// # Errors
    /// The membership was lost, or cannot be released.
    fn leave(self) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// No membership to wait for: a replica that always works.
impl<M: Membership> Membership for Option<M> {
    fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        match self {
            Some(membership) => Either::Left(membership.lost()),
            None => Either::Right(std::future::pending()),
        }
    }

    async fn leave(self) -> anyhow::Result<()> {
        match self {
            Some(membership) => membership.leave().await,
            None => Ok(()),
        }
    }
}

/// One of two kinds of membership, chosen at start-up.
impl<A: Membership, B: Membership> Membership for Either<A, B> {
    fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        match self {
            Self::Left(membership) => Either::Left(membership.lost()),
            Self::Right(membership) => Either::Right(membership.lost()),
        }
    }

    async fn leave(self) -> anyhow::Result<()> {
        match self {
            Self::Left(membership) => membership.leave().await,
            Self::Right(membership) => membership.leave().await,
        }
    }
}

/// A shard's Lease (docs/contract.md#shard-leases): released at the end so that the sharder moves
/// the shard's objects at once.
impl Membership for ShardLeaseHandle {
    fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        ShardLeaseHandle::lost(self)
    }

    async fn leave(self) -> anyhow::Result<()> {
        if !self.is_held() {
            anyhow::bail!("lost the shard Lease");
        }
        self.release()
            .await
            .context("cannot release the shard Lease")
    }
}

/// The keeper of shard Lease `identity` (in `namespace`, ring `ring`) valid for
/// `lease_duration`, with leader election's ratios of it (15 s, 10 s, 2 s): renew deadline 2/3,
/// retry period 2/15. Take its fence ([`ShardLease::fence`]) for the shard's writes, then
/// [`acquire_shard_lease`].
#[must_use]
pub fn shard_lease(
    client: &Client,
    ring: &str,
    identity: &str,
    namespace: &str,
    lease_duration: Duration,
) -> ShardLease {
    let config = ShardLeaseConfig::new(ring, identity, namespace)
        .lease_duration(lease_duration)
        .renew_deadline(lease_duration * 2 / 3)
        .retry_period(lease_duration * 2 / 15);
    ShardLease::new(client.clone(), config)
}

/// Acquires `lease` (see [`shard_lease`]).
///
/// # Errors
/// The Lease cannot be acquired; the error names it.
pub async fn acquire_shard_lease(lease: ShardLease) -> anyhow::Result<ShardLeaseHandle> {
    let identity = lease.config().shard().to_owned();
    let lease = lease
        .acquire()
        .await
        .with_context(|| format!("cannot acquire the shard Lease {identity}"))?;
    tracing::info!(shard = identity, "acquired the shard Lease");
    Ok(lease)
}

/// When the work must stop: on a shutdown signal, or when the membership is lost.
#[derive(Clone, Debug)]
pub struct StopSignal {
    stop: watch::Receiver<bool>,
    lost: watch::Receiver<bool>,
}

impl StopSignal {
    /// Completes once the work must stop.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + Sync + use<> {
        let (stop, lost) = (stopped(&self.stop), stopped(&self.lost));
        async move {
            tokio::select! {
                () = stop => {}
                () = lost => {}
            }
        }
    }
}

/// The servers of a process and when it stops; [`Runtime::run`] drives the rest.
#[derive(Debug)]
pub struct Runtime {
    stop_tx: Arc<watch::Sender<bool>>,
    stop: watch::Receiver<bool>,
    servers: JoinSet<anyhow::Result<()>>,
    graceful_shutdown: Option<Duration>,
}

impl Runtime {
    /// A runtime that stops when `shutdown` completes (see [`crate::telemetry::shutdown_signal`]).
    /// At the end its servers get `graceful_shutdown` to finish: `None` waits without a limit,
    /// zero stops them at once.
    pub fn new(
        shutdown: impl Future<Output = ()> + Send + 'static,
        graceful_shutdown: Option<Duration>,
    ) -> Self {
        let (stop_tx, stop) = watch::channel(false);
        let stop_tx = Arc::new(stop_tx);
        let on_shutdown = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = on_shutdown.send(true);
        });
        Self {
            stop_tx,
            stop,
            servers: JoinSet::new(),
            graceful_shutdown,
        }
    }

    /// Completes once the process stops.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + Sync + use<> {
        stopped(&self.stop)
    }

    /// Serves `router` on `listener` until the process stops.
    pub fn serve(&mut self, listener: TcpListener, router: Router) {
        self.servers
            .spawn(http::serve(listener, router, self.stopped()));
    }

    /// Serves `/metrics` of `registry` on `listener` as `serving` says until the process stops.
    pub fn serve_metrics(
        &mut self,
        listener: TcpListener,
        registry: Arc<Registry>,
        serving: MetricsServing,
    ) {
        self.servers.spawn(http::serve_metrics(
            listener,
            registry,
            serving,
            self.stopped(),
        ));
    }

    /// Runs a server that stops by itself once [`Runtime::stopped`] completes.
    pub fn spawn_server(
        &mut self,
        server: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.servers.spawn(server);
    }

    /// Waits for `membership` unless the process stops first, then does `work` until it must
    /// stop, leaves, and stops the servers.
    ///
    /// # Errors
    /// The membership cannot be had or is lost, or a server fails or ends before the process
    /// stops.
    pub async fn run<M, W, F>(
        mut self,
        membership: impl Future<Output = anyhow::Result<M>>,
        work: W,
    ) -> anyhow::Result<()>
    where
        M: Membership,
        W: FnOnce(StopSignal) -> F,
        F: Future<Output = ()>,
    {
        let joined = tokio::select! {
            joined = membership => joined.map(Some),
            () = self.stopped() => Ok(None),
            Some(ended) = self.servers.join_next() => match self.failure(ended) {
                Some(failure) => Err(failure),
                None => Ok(None),
            },
        };
        let result = match joined {
            Ok(Some(membership)) => self.work(membership, work).await,
            Ok(None) => Ok(()),
            Err(error) => Err(error),
        };
        self.shutdown().await;
        result
    }

    /// Does `work` while a member, then leaves. A shutdown lets the work finish what it is
    /// doing; a lost membership cancels it at once, since another replica may already act.
    async fn work<M, W, F>(&mut self, membership: M, work: W) -> anyhow::Result<()>
    where
        M: Membership,
        W: FnOnce(StopSignal) -> F,
        F: Future<Output = ()>,
    {
        let (lost_tx, lost) = watch::channel(false);
        let lost_membership = membership.lost();
        // Holds a handle on the membership, which must be gone for it to be released.
        let watch_membership = tokio::spawn(async move {
            lost_membership.await;
            let _ = lost_tx.send(true);
        });
        let cancel = stopped(&lost);
        let mut work = Box::pin(work(StopSignal {
            stop: self.stop.clone(),
            lost,
        }));
        let server_failed = tokio::select! {
            () = &mut work => None,
            () = cancel => {
                tracing::error!("membership lost, cancelling the work");
                None
            }
            Some(ended) = self.servers.join_next() => {
                let failure = self.failure(ended);
                if failure.is_none() {
                    // Stopping: the servers may end before the work has drained.
                    (&mut work).await;
                }
                failure
            }
        };
        // Cancels whatever is still running: dropping it stops it where it waits.
        drop(work);
        watch_membership.abort();
        let _ = watch_membership.await;
        match server_failed {
            Some(failure) => Err(failure),
            None => membership.leave().await,
        }
    }

    /// Why a server ended, unless it ended because the process stops.
    fn failure(
        &self,
        ended: Result<anyhow::Result<()>, tokio::task::JoinError>,
    ) -> Option<anyhow::Error> {
        match ended.context("server task panicked") {
            Ok(Ok(())) if *self.stop.borrow() => None,
            Ok(Ok(())) => Some(anyhow::anyhow!("a server stopped unexpectedly")),
            Ok(Err(error)) | Err(error) => Some(error),
        }
    }

    /// Stops the servers within the graceful shutdown timeout; those left are aborted.
    async fn shutdown(mut self) {
        let _ = self.stop_tx.send(true);
        let drain = async { while self.servers.join_next().await.is_some() {} };
        match self.graceful_shutdown {
            None => drain.await,
            Some(timeout) if timeout.is_zero() => {}
            Some(timeout) => {
                if tokio::time::timeout(timeout, drain).await.is_err() {
                    tracing::warn!(
                        ?timeout,
                        "servers did not stop within the graceful shutdown timeout"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A membership that is lost once its sender says so.
    struct Fake(watch::Receiver<bool>);

    impl Membership for Fake {
        fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
            stopped(&self.0)
        }

        async fn leave(self) -> anyhow::Result<()> {
            if *self.0.borrow() {
                anyhow::bail!("lost");
            }
            Ok(())
        }
    }

    async fn until_stopped(stop: StopSignal) {
        stop.stopped().await;
    }

    #[tokio::test]
    async fn the_work_runs_until_the_shutdown_signal_and_then_leaves() {
        let (shutdown, on_shutdown) = tokio::sync::oneshot::channel::<()>();
        let runtime = Runtime::new(
            async {
                let _ = on_shutdown.await;
            },
            None,
        );
        let (_lost, membership) = watch::channel(false);
        let run = tokio::spawn(runtime.run(async { Ok(Fake(membership)) }, until_stopped));
        shutdown.send(()).unwrap();
        run.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_lost_membership_stops_the_work_and_fails_the_run() {
        let runtime = Runtime::new(std::future::pending(), None);
        let (lost, membership) = watch::channel(false);
        lost.send(true).unwrap();
        let error = runtime
            .run(async { Ok(Fake(membership)) }, until_stopped)
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "lost");
    }

    #[tokio::test]
    async fn a_lost_membership_cancels_work_that_would_not_stop_by_itself() {
        let runtime = Runtime::new(std::future::pending(), None);
        let (lost, membership) = watch::channel(false);
        let run = tokio::spawn(runtime.run(async { Ok(Fake(membership)) }, |_| {
            std::future::pending::<()>()
        }));
        lost.send(true).unwrap();
        let error = run.await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "lost");
    }

    #[tokio::test]
    async fn a_server_that_ends_before_the_stop_fails_the_run() {
        let mut runtime = Runtime::new(std::future::pending(), Some(Duration::ZERO));
        runtime.spawn_server(async { Ok(()) });
        let error = runtime
            .run(async { Ok(None::<Fake>) }, until_stopped)
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "a server stopped unexpectedly");
    }

    #[tokio::test]
    async fn a_stop_before_the_membership_ends_the_run_without_work() {
        let runtime = Runtime::new(async {}, None);
        let worked = std::sync::atomic::AtomicBool::new(false);
        runtime
            .run(std::future::pending::<anyhow::Result<Fake>>(), |_| async {
                worked.store(true, std::sync::atomic::Ordering::Relaxed);
            })
            .await
            .unwrap();
        assert!(!worked.load(std::sync::atomic::Ordering::Relaxed));
    }
}
