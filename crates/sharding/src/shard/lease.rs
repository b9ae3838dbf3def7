//! The shard Lease keeper (docs/contract.md#shard-leases): a shard announces itself by holding a
//! Lease named after itself, renews it like a leader-election client, reports when it loses it, and
//! releases it on graceful shutdown.
//!
//! The sharder's leader election keeps its Lease the same way ([`ShardLeaseConfig::leader`]).
//!
//! The decisions are pure ([`decide`], [`released`], [`step`]); [`ShardLease::acquire`] runs
//! them and keeps the Lease's [`Fence`] (docs/contract.md#fencing).

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client,
    api::{PostParams, ResourceExt as _},
};
use tokio::{sync::watch, task::JoinHandle, time::Instant};

use crate::{api::labels, fence::Fence, shard::Shutdown};

/// An error talking to the API server about the shard Lease.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, creating or updating the Lease failed.
    #[error("cannot {action} Lease {lease}")]
    Api {
        /// What was attempted.
        action: &'static str,
        /// `namespace/name` of the Lease.
        lease: String,
        /// The API error (boxed: it is large, and errors travel through every call).
        #[source]
        source: Box<kube::Error>,
    },
    /// The configuration cannot work.
    #[error("invalid Lease configuration: {0}")]
    Config(String),
    /// Acquiring cannot succeed until something outside the process changes: the Lease's
    /// namespace is missing, or the controller may not write Leases there.
    #[error("cannot acquire Lease {lease}: {hint}")]
    Denied {
        /// `namespace/name` of the Lease.
        lease: String,
        /// What is wrong and what to do about it.
        hint: String,
        /// The API error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Every attempt to acquire failed for the acquire patience (the API server is
    /// unreachable or failing).
    #[error("gave up acquiring Lease {lease} after {waited:?} of failed attempts")]
    Unreachable {
        /// `namespace/name` of the Lease.
        lease: String,
        /// How long attempts kept failing.
        waited: Duration,
        /// The last attempt's error.
        #[source]
        source: Box<Error>,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a shard keeps its Lease. Defaults follow leader election (docs/contract.md#shard-leases).
#[derive(Clone, Debug)]
#[must_use]
pub struct ShardLeaseConfig {
    /// The ring label's value; `None` for a leader-election Lease.
    ring: Option<String>,
    /// The Lease's name.
    name: String,
    /// The holder identity written to the Lease.
    identity: String,
    namespace: String,
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
    acquire_patience: Duration,
}

impl ShardLeaseConfig {
    /// The Lease of shard `shard` (also the holder identity, usually the pod name) of the
    /// ControllerRing `ring`, in `namespace`.
    pub fn new(
        ring: impl Into<String>,
        shard: impl Into<String>,
        namespace: impl Into<String>,
    ) -> Self {
        let shard = shard.into();
        Self {
            ring: Some(ring.into()),
            name: shard.clone(),
            identity: shard,
            namespace: namespace.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            acquire_patience: Duration::from_secs(60),
        }
    }

    /// A leader-election Lease `name` in `namespace`, held as `identity`: kept like a shard
    /// Lease, but without the ring label, so the sharder never counts it as a shard
    /// (docs/contract.md#shard-leases).
    pub fn leader(
        name: impl Into<String>,
        identity: impl Into<String>,
        namespace: impl Into<String>,
    ) -> Self {
        Self {
            ring: None,
            name: name.into(),
            identity: identity.into(),
            ..Self::new("", "", namespace)
        }
    }

    /// How long the Lease is valid after a renewal (default 15 s).
    pub fn lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// How long renewals may keep failing before the shard counts the Lease as lost and its
    /// [`Fence`] closes (default 10 s), counted from the last successful renewal's request
    /// start; must be shorter than the lease duration in whole seconds. The difference is the
    /// fence's safety margin (docs/contract.md#fencing).
    pub fn renew_deadline(mut self, deadline: Duration) -> Self {
        self.renew_deadline = deadline;
        self
    }

    /// How often the Lease is renewed or its acquisition retried (default 2 s).
    pub fn retry_period(mut self, period: Duration) -> Self {
        self.retry_period = period;
        self
    }

    /// How long [`ShardLease::acquire`] keeps retrying while every attempt fails (default
    /// 60 s): then it gives up with [`Error::Unreachable`], and the process can exit for its
    /// supervisor to restart it. Waiting for another holder's Lease is not failing.
    pub fn acquire_patience(mut self, patience: Duration) -> Self {
        self.acquire_patience = patience;
        self
    }

    /// The ring this shard belongs to; empty for a leader-election Lease.
    #[must_use]
    pub fn ring(&self) -> &str {
        self.ring.as_deref().unwrap_or_default()
    }

    /// The shard's name: the Lease's name (and, for a shard, its holder identity).
    #[must_use]
    pub fn shard(&self) -> &str {
        &self.name
    }

    fn validate(&self) -> Result<()> {
        let ring_ok = self.ring.as_ref().is_none_or(|ring| !ring.is_empty());
        if self.name.is_empty() || self.identity.is_empty() || !ring_ok || self.namespace.is_empty()
        {
            return Err(Error::Config(
                "ring, shard name and namespace must not be empty".to_owned(),
            ));
        }
        // Others see the duration in whole seconds; the fence must end before that.
        let written = Duration::from_secs(self.lease_duration.as_secs());
        if self.renew_deadline >= written {
            return Err(Error::Config(format!(
                "renew deadline {:?} must be shorter than lease duration {:?} (in whole seconds)",
                self.renew_deadline, written
            )));
        }
        if self.retry_period >= self.renew_deadline {
            return Err(Error::Config(format!(
                "retry period {:?} must be shorter than renew deadline {:?}",
                self.retry_period, self.renew_deadline
            )));
        }
        Ok(())
    }

    fn lease_duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// `namespace/name` of the Lease.
    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// What the keeper does next, given the Lease as last read.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// There is no Lease: create this one.
    Create(Lease),
    /// Write this Lease (guarded by the resourceVersion it carries): a renewal of our own
    /// Lease, or an acquisition of a released or expired one.
    Update(Lease),
    /// Another holder has a valid Lease: wait.
    Wait {
        /// The current holder.
        holder: String,
        /// When its Lease runs out unless renewed.
        until: Timestamp,
    },
}

/// Decides how to acquire or renew the shard's Lease at `now` (pure).
///
/// The Lease is ours to take when we hold it, when nobody does, or when the holder let it
/// expire (for example the sharder, after taking over an uncertain Lease, for twice the
/// lease duration). Labels other than the ring label, such as the sharder's state label,
/// are kept as they are.
#[must_use]
pub fn decide(current: Option<&Lease>, config: &ShardLeaseConfig, now: Timestamp) -> Decision {
    let Some(current) = current else {
        let mut lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec::default()),
        };
        hold(&mut lease, config, now, true);
        return Decision::Create(lease);
    };
    let spec = current.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let ours = holder == config.identity;
    if !ours
        && !holder.is_empty()
        && let Some(until) = expiry(&spec).filter(|until| now < *until)
    {
        return Decision::Wait { holder, until };
    }
    let mut lease = current.clone();
    hold(&mut lease, config, now, !ours);
    Decision::Update(lease)
}

/// The released form of our Lease at `now` (docs/contract.md#shard-leases): no holder,
/// leaseDurationSeconds 1, renewTime now, so that the sharder sees the shard `dead` at once.
#[must_use]
pub fn released(current: &Lease, now: Timestamp) -> Lease {
    let mut lease = current.clone();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(MicroTime(now));
    lease
}

fn hold(lease: &mut Lease, config: &ShardLeaseConfig, now: Timestamp, acquire: bool) {
    if let Some(ring) = &config.ring {
        lease
            .labels_mut()
            .insert(labels::CONTROLLER_RING.to_owned(), ring.clone());
    }
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if acquire {
        spec.acquire_time = Some(MicroTime(now));
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.lease_duration_seconds = Some(config.lease_duration_seconds());
    spec.renew_time = Some(MicroTime(now));
}

/// Whether a Lease held by someone else has run out (renewTime + leaseDuration ≤ now).
/// A Lease without those fields counts as expired, as in leader election.
/// When a Lease runs out unless renewed; `None` when it names no renewal or duration.
fn expiry(spec: &LeaseSpec) -> Option<Timestamp> {
    let MicroTime(renewed) = spec.renew_time.as_ref()?;
    renewed
        .checked_add(SignedDuration::from_secs(i64::from(
            spec.lease_duration_seconds?,
        )))
        .ok()
}

/// What an API error while acquiring means (pure): a hint on what to change when retrying
/// cannot help, `None` when it can (the API server unreachable, overloaded or failing).
#[must_use]
pub fn denied(action: &str, namespace: &str, error: &kube::Error) -> Option<String> {
    let kube::Error::Api(status) = error else {
        return None;
    };
    match status.code {
        404 if action == "create" => Some(format!(
            "namespace \"{namespace}\" does not exist: create it, or keep the Lease in the \
             namespace the controller runs in"
        )),
        403 => Some(format!(
            "the controller may not {action} Leases in namespace \"{namespace}\": grant it get, \
             create and update on leases.coordination.k8s.io there"
        )),
        401 => Some("the API server does not accept the controller's credentials".to_owned()),
        _ => None,
    }
}

/// What the keeper does at `now` (see [`step`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Sleep until this instant: the next attempt, or the renew deadline if that comes first.
    Wait(Instant),
    /// Renew now; give up on the attempt at this instant, the renew deadline.
    Renew(Instant),
    /// The renew deadline has passed: the Lease counts as lost, and nothing more is written.
    Lost,
}

/// The keeper's next step at `now` (pure): the Lease is lost once the renew deadline has
/// passed since `last_renewed` (the request start of the last successful renewal), whatever
/// the reason, a failing API server as much as a process paused and resumed; otherwise the
/// next renewal is one retry period after `last_attempt` started.
#[must_use]
pub fn step(
    last_renewed: Instant,
    last_attempt: Instant,
    now: Instant,
    config: &ShardLeaseConfig,
) -> Step {
    let deadline = last_renewed + config.renew_deadline;
    if now >= deadline {
        return Step::Lost;
    }
    let next = last_attempt + config.retry_period;
    if now < next {
        Step::Wait(next.min(deadline))
    } else {
        Step::Renew(deadline)
    }
}

/// Whether the shard holds its Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    /// The Lease is held and renewed.
    Held,
    /// The renew deadline passed without a successful renewal, or another holder took the
    /// Lease: the shard must stop reconciling, and its [`Fence`] is closed.
    Lost,
}

/// Keeps a shard Lease.
#[derive(Clone, Debug)]
pub struct ShardLease {
    api: Api<Lease>,
    config: ShardLeaseConfig,
    fence: Fence,
}

impl ShardLease {
    /// A keeper for the Lease described by `config`.
    #[must_use]
    pub fn new(client: Client, config: ShardLeaseConfig) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        let fence = Fence::new(config.lease());
        Self { api, config, fence }
    }

    /// The Lease's fence: closed until the Lease is acquired, open while it is renewed in
    /// time, closed for good once it is lost or released. Give it to [`crate::shard::Shard`]
    /// and check it before every write (docs/contract.md#fencing).
    #[must_use]
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// The Lease's configuration.
    pub fn config(&self) -> &ShardLeaseConfig {
        &self.config
    }

    /// Waits until the Lease is ours, then renews it in the background. While another holder
    /// has it, says so at info level once per holder, with when its Lease runs out.
    ///
    /// # Errors
    /// An invalid configuration; [`Error::Denied`] at once when the Lease's namespace does not
    /// exist or the controller may not write Leases there; [`Error::Unreachable`] when every
    /// attempt failed for the acquire patience. Other API errors are retried every retry period.
    pub async fn acquire(self) -> Result<ShardLeaseHandle> {
        self.config.validate()?;
        let mut failing_since = None;
        let mut waiting_for = None;
        let acquired = loop {
            let started = Instant::now();
            match self.try_hold().await {
                Ok(Held::Ours) => break started,
                Ok(Held::By { holder, until }) => {
                    failing_since = None;
                    if waiting_for.as_ref() != Some(&holder) {
                        self.log_wait(&holder, until);
                        waiting_for = Some(holder);
                    }
                }
                Err(error) => {
                    let error = self.denied(error)?;
                    let since = *failing_since.get_or_insert(started);
                    if started.duration_since(since) >= self.config.acquire_patience {
                        return Err(Error::Unreachable {
                            lease: self.config.lease(),
                            waited: started.duration_since(since),
                            source: Box::new(error),
                        });
                    }
                    tracing::warn!(
                        error = %error_chain(&error),
                        retry_in = ?self.config.retry_period,
                        gives_up_after = ?self.config.acquire_patience,
                        "cannot acquire Lease, retrying"
                    );
                }
            }
            tokio::time::sleep_until(started + self.config.retry_period).await;
        };
        self.fence.extend(acquired + self.config.renew_deadline);
        tracing::info!(
            lease = self.config.lease(),
            identity = self.config.identity,
            "acquired Lease"
        );
        let (status_tx, status) = watch::channel(LeaseStatus::Held);
        let (stop_tx, stop) = watch::channel(false);
        let keeper = self.clone();
        let task = tokio::spawn(async move { keeper.renew(acquired, status_tx, stop).await });
        Ok(ShardLeaseHandle {
            keeper: self,
            status,
            stop: stop_tx,
            task,
        })
    }

    /// `error` as [`Error::Denied`] when retrying cannot help (see [`denied`]), else as it is.
    fn denied(&self, error: Error) -> Result<Error> {
        match error {
            Error::Api {
                action,
                lease,
                source,
            } => match denied(action, &self.config.namespace, &source) {
                Some(hint) => Err(Error::Denied {
                    lease,
                    hint,
                    source,
                }),
                None => Ok(Error::Api {
                    action,
                    lease,
                    source,
                }),
            },
            error => Ok(error),
        }
    }

    fn log_wait(&self, holder: &str, until: Timestamp) {
        let why = if holder == labels::SHARD_LEASE_CONTROLLER {
            "the sharder took this shard's expired Lease over, and holds it for twice the lease \
             duration unless the shard acquires it again"
        } else {
            "another process holds it"
        };
        tracing::info!(
            lease = self.config.lease(),
            holder,
            %until,
            why,
            "waiting for the Lease to be released or to run out"
        );
    }

    /// One acquire-or-renew round: whether the Lease is ours afterwards, or who holds it.
    async fn try_hold(&self) -> Result<Held> {
        let name = &self.config.name;
        let current = self
            .api
            .get_opt(name)
            .await
            .map_err(|e| self.error("get", e))?;
        match decide(current.as_ref(), &self.config, Timestamp::now()) {
            Decision::Create(lease) => {
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .map_err(|e| self.error("create", e))?;
            }
            Decision::Update(lease) => {
                self.api
                    .replace(name, &PostParams::default(), &lease)
                    .await
                    .map_err(|e| self.error("update", e))?;
            }
            Decision::Wait { holder, until } => return Ok(Held::By { holder, until }),
        }
        Ok(Held::Ours)
    }

    /// Renews every retry period until stopped or lost (see [`step`]); `acquired` is the
    /// request start of the acquisition.
    async fn renew(
        &self,
        acquired: Instant,
        status: watch::Sender<LeaseStatus>,
        mut stop: watch::Receiver<bool>,
    ) {
        let (mut last_renewed, mut last_attempt) = (acquired, acquired);
        loop {
            let now = Instant::now();
            match step(last_renewed, last_attempt, now, &self.config) {
                Step::Wait(until) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        _ = stop.changed() => return,
                    }
                }
                Step::Renew(deadline) => {
                    last_attempt = now;
                    match tokio::time::timeout_at(deadline, self.try_hold()).await {
                        Ok(Ok(Held::Ours)) => {
                            last_renewed = now;
                            self.fence.extend(now + self.config.renew_deadline);
                        }
                        Ok(Ok(Held::By { holder, .. })) => {
                            self.fence.revoke();
                            tracing::error!(
                                lease = self.config.lease(),
                                holder,
                                "Lease was taken by another holder"
                            );
                            let _ = status.send(LeaseStatus::Lost);
                            return;
                        }
                        Ok(Err(error)) => {
                            tracing::warn!(error = %error_chain(&error), "cannot renew Lease");
                        }
                        Err(_) => {
                            tracing::warn!(
                                lease = self.config.lease(),
                                "renewing the Lease did not finish within the renew deadline"
                            );
                        }
                    }
                }
                Step::Lost => {
                    self.fence.revoke();
                    tracing::error!(
                        lease = self.config.lease(),
                        deadline = ?self.config.renew_deadline,
                        "Lease not renewed within the renew deadline"
                    );
                    let _ = status.send(LeaseStatus::Lost);
                    return;
                }
            }
        }
    }

    async fn release(&self) -> Result<()> {
        self.fence.revoke();
        let name = &self.config.name;
        let Some(current) = self
            .api
            .get_opt(name)
            .await
            .map_err(|e| self.error("get", e))?
        else {
            return Ok(());
        };
        let holder = current
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref());
        if holder != Some(self.config.identity.as_str()) {
            // Not ours any more: releasing would steal it back from the new holder.
            return Ok(());
        }
        self.api
            .replace(
                name,
                &PostParams::default(),
                &released(&current, Timestamp::now()),
            )
            .await
            .map_err(|e| self.error("release", e))?;
        tracing::info!(lease = self.config.lease(), "released Lease");
        Ok(())
    }

    fn error(&self, action: &'static str, source: kube::Error) -> Error {
        Error::Api {
            action,
            lease: self.config.lease(),
            source: Box::new(source),
        }
    }
}

/// Who holds the Lease after an acquire-or-renew round.
enum Held {
    Ours,
    By { holder: String, until: Timestamp },
}

/// A held shard Lease, renewed in the background until [`ShardLeaseHandle::release`].
#[derive(Debug)]
pub struct ShardLeaseHandle {
    keeper: ShardLease,
    status: watch::Receiver<LeaseStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ShardLeaseHandle {
    /// Whether the Lease is still held.
    #[must_use]
    pub fn is_held(&self) -> bool {
        *self.status.borrow() == LeaseStatus::Held
    }

    /// The Lease's fence (see [`ShardLease::fence`]).
    #[must_use]
    pub fn fence(&self) -> Fence {
        self.keeper.fence()
    }

    /// A future that completes when the Lease is lost: pass it to
    /// `Controller::graceful_shutdown_on` so that the shard stops reconciling.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut status = self.status.clone();
        async move {
            let _ = status.wait_for(|s| *s == LeaseStatus::Lost).await;
        }
    }

    /// A future that completes on SIGTERM (how Kubernetes stops a pod), SIGINT or the loss
    /// of the Lease, with which: pass it to `Controller::graceful_shutdown_on`, then call
    /// [`ShardLeaseHandle::release`] once the controller has stopped.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn shutdown_signal(&self) -> impl Future<Output = Shutdown> + Send + 'static {
        let signal = crate::shard::shutdown::signal();
        let lost = self.lost();
        async move {
            let shutdown = tokio::select! {
                shutdown = signal => shutdown,
                () = lost => Shutdown::LeaseLost,
            };
            tracing::info!(?shutdown, "shard stopping");
            shutdown
        }
    }

    /// Stops renewing, closes the fence and releases the Lease (docs/contract.md#shard-leases),
    /// so that the sharder moves this shard's objects at once instead of waiting for the Lease
    /// to expire.
    ///
    /// # Errors
    /// The release could not be written; the Lease then expires on its own.
    pub async fn release(self) -> Result<()> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.keeper.release().await
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ShardLeaseConfig {
        ShardLeaseConfig::new("ring", "shard-0", "default")
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + seconds).unwrap()
    }

    fn lease(holder: Option<&str>, renewed: i64, duration: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("shard-0".into()),
                namespace: Some("default".into()),
                resource_version: Some("7".into()),
                labels: Some([(labels::STATE.to_owned(), "ready".to_owned())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(Into::into),
                lease_duration_seconds: Some(duration),
                acquire_time: Some(MicroTime(at(0))),
                renew_time: Some(MicroTime(at(renewed))),
                lease_transitions: Some(3),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn a_missing_lease_is_created_held_and_labelled_with_the_ring() {
        let Decision::Create(lease) = decide(None, &config(), at(5)) else {
            panic!("expected a create");
        };
        assert_eq!(lease.metadata.name.as_deref(), Some("shard-0"));
        assert_eq!(lease.labels()[labels::CONTROLLER_RING], "ring");
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("shard-0"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.renew_time, Some(MicroTime(at(5))));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(5))));
    }

    #[test]
    fn renewing_our_lease_keeps_the_state_label_acquire_time_and_resource_version() {
        let Decision::Update(renewed) =
            decide(Some(&lease(Some("shard-0"), 0, 15)), &config(), at(2))
        else {
            panic!("expected an update");
        };
        assert_eq!(renewed.labels()[labels::STATE], "ready");
        assert_eq!(renewed.labels()[labels::CONTROLLER_RING], "ring");
        assert_eq!(renewed.metadata.resource_version.as_deref(), Some("7"));
        let spec = renewed.spec.unwrap();
        assert_eq!(spec.renew_time, Some(MicroTime(at(2))));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(spec.lease_transitions, Some(3));
    }

    #[test]
    fn a_valid_lease_of_another_holder_is_left_alone_until_it_expires() {
        // The sharder's takeover: holder shardlease-controller for twice the duration.
        let taken = lease(Some(labels::SHARD_LEASE_CONTROLLER), 0, 30);
        assert_eq!(
            decide(Some(&taken), &config(), at(29)),
            Decision::Wait {
                holder: labels::SHARD_LEASE_CONTROLLER.to_owned(),
                until: at(30),
            }
        );
        let Decision::Update(acquired) = decide(Some(&taken), &config(), at(30)) else {
            panic!("an expired lease is acquired");
        };
        let spec = acquired.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("shard-0"));
        assert_eq!(spec.acquire_time, Some(MicroTime(at(30))));
        assert_eq!(spec.lease_transitions, Some(4));
    }

    #[test]
    fn a_released_lease_is_acquired_at_once() {
        let released = released(&lease(Some("shard-0"), 0, 15), at(1));
        assert!(matches!(
            decide(Some(&released), &config(), at(1)),
            Decision::Update(_)
        ));
    }

    #[test]
    fn releasing_clears_the_holder_and_shortens_the_lease_to_one_second() {
        let released = released(&lease(Some("shard-0"), 0, 15), at(9));
        assert_eq!(released.labels()[labels::STATE], "ready");
        let spec = released.spec.unwrap();
        assert_eq!(spec.holder_identity, None);
        assert_eq!(spec.lease_duration_seconds, Some(1));
        assert_eq!(spec.renew_time, Some(MicroTime(at(9))));
    }

    #[test]
    fn configurations_that_cannot_work_are_rejected() {
        assert!(config().validate().is_ok());
        let error = config()
            .renew_deadline(Duration::from_secs(20))
            .validate()
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("renew deadline 20s must be shorter than lease duration 15s")
        );
        // 4.5 s is written as 4 s: a 4.2 s deadline would outlive the Lease others see.
        let error = config()
            .lease_duration(Duration::from_millis(4_500))
            .renew_deadline(Duration::from_millis(4_200))
            .retry_period(Duration::from_secs(1))
            .validate()
            .unwrap_err();
        assert!(error.to_string().contains("lease duration 4s"), "{error}");
        assert!(ShardLeaseConfig::new("ring", "", "ns").validate().is_err());
        assert!(
            config()
                .retry_period(Duration::from_secs(10))
                .validate()
                .is_err()
        );
    }

    fn after(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    #[test]
    fn a_renewed_lease_waits_one_retry_period_after_the_last_attempt() {
        let t0 = Instant::now();
        assert_eq!(
            step(t0, t0, after(t0, 500), &config()),
            Step::Wait(after(t0, 2_000))
        );
        assert_eq!(
            step(t0, t0, after(t0, 2_000), &config()),
            Step::Renew(after(t0, 10_000))
        );
    }

    #[test]
    fn failed_renewals_are_retried_until_the_renew_deadline_and_no_later() {
        let t0 = Instant::now();
        // Renewed at 0; attempts at 2, 4, 6 and 8 s failed.
        assert_eq!(
            step(t0, after(t0, 8_000), after(t0, 9_000), &config()),
            Step::Wait(after(t0, 10_000))
        );
        // An attempt that started at 9.5 s wakes the keeper at the deadline, not at 11.5 s.
        assert_eq!(
            step(t0, after(t0, 9_500), after(t0, 9_600), &config()),
            Step::Wait(after(t0, 10_000))
        );
        assert_eq!(
            step(t0, after(t0, 8_000), after(t0, 10_000), &config()),
            Step::Lost
        );
    }

    #[test]
    fn a_process_resumed_after_a_pause_past_the_deadline_is_lost_without_renewing() {
        let t0 = Instant::now();
        // Paused 39 s right after a successful renewal at 0.
        assert_eq!(step(t0, t0, after(t0, 39_000), &config()), Step::Lost);
    }

    #[test]
    fn a_leader_lease_has_no_ring_label_and_its_own_holder_identity() {
        let config = ShardLeaseConfig::leader("sharder", "host_1234", "sharding-system");
        assert!(config.validate().is_ok());
        let Decision::Create(lease) = decide(None, &config, at(5)) else {
            panic!("expected a create");
        };
        assert_eq!(lease.metadata.name.as_deref(), Some("sharder"));
        assert!(lease.metadata.labels.is_none());
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("host_1234"));
        let held = Lease {
            spec: Some(spec),
            ..lease
        };
        assert!(matches!(
            decide(Some(&held), &config, at(6)),
            Decision::Update(_)
        ));
        let other = ShardLeaseConfig::leader("sharder", "host_5678", "sharding-system");
        assert_eq!(
            decide(Some(&held), &other, at(6)),
            Decision::Wait {
                holder: "host_1234".to_owned(),
                until: at(20),
            }
        );
    }

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("denied", "Reason")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn a_missing_namespace_or_a_denial_is_reported_with_what_to_change() {
        let missing = denied("create", "shards", &api_error(404)).unwrap();
        assert!(
            missing.contains(r#"namespace "shards" does not exist"#),
            "{missing}"
        );
        let forbidden = denied("update", "shards", &api_error(403)).unwrap();
        assert!(
            forbidden.contains("may not update Leases in namespace \"shards\""),
            "{forbidden}"
        );
        assert!(denied("get", "shards", &api_error(401)).is_some());
    }

    #[test]
    fn an_unavailable_api_server_or_a_conflict_is_retried() {
        for code in [409, 429, 500, 503] {
            assert_eq!(denied("create", "shards", &api_error(code)), None, "{code}");
        }
        // A missing Lease on get is no error at all; 404 means a missing namespace only on create.
        assert_eq!(denied("update", "shards", &api_error(404)), None);
    }
}
