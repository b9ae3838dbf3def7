//! The shard Lease keeper (docs/contract.md#shard-leases): a shard announces itself by holding a
//! Lease named after itself, renews it like a leader-election client, reports when it loses it, and
//! releases it on graceful shutdown.
//!
//! The decisions are pure ([`decide`], [`released`]); [`ShardLease::acquire`] runs them.

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
use tokio::{sync::watch, task::JoinHandle};

use crate::api::labels;

/// An error talking to the API server about the shard Lease.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading, creating or updating the Lease failed.
    #[error("cannot {action} shard Lease {lease}")]
    Api {
        /// What was attempted.
        action: &'static str,
        /// `namespace/name` of the Lease.
        lease: String,
        /// The API error (boxed: it is large, and errors travel through every call).
        #[source]
        source: Box<kube::Error>,
    },
    /// A renewal did not finish within the renew deadline.
    #[error("renewing shard Lease {name} took longer than {deadline:?}")]
    Timeout {
        /// The Lease's name.
        name: String,
        /// The renew deadline.
        deadline: Duration,
    },
    /// The configuration cannot work.
    #[error("invalid shard Lease configuration: {0}")]
    Config(String),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a shard keeps its Lease. Defaults follow leader election (docs/contract.md#shard-leases).
#[derive(Clone, Debug)]
#[must_use]
pub struct ShardLeaseConfig {
    ring: String,
    shard: String,
    namespace: String,
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
}

impl ShardLeaseConfig {
    /// The Lease of shard `shard` (also the holder identity, usually the pod name) of the
    /// ControllerRing `ring`, in `namespace`.
    pub fn new(
        ring: impl Into<String>,
        shard: impl Into<String>,
        namespace: impl Into<String>,
    ) -> Self {
        Self {
            ring: ring.into(),
            shard: shard.into(),
            namespace: namespace.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// How long the Lease is valid after a renewal (default 15 s).
    pub fn lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration;
        self
    }

    /// How long renewals may keep failing before the shard counts the Lease as lost
    /// (default 10 s); must be shorter than the lease duration.
    pub fn renew_deadline(mut self, deadline: Duration) -> Self {
        self.renew_deadline = deadline;
        self
    }

    /// How often the Lease is renewed or its acquisition retried (default 2 s).
    pub fn retry_period(mut self, period: Duration) -> Self {
        self.retry_period = period;
        self
    }

    /// The ring this shard belongs to.
    #[must_use]
    pub fn ring(&self) -> &str {
        &self.ring
    }

    /// The shard's name: the Lease's name and holder identity.
    #[must_use]
    pub fn shard(&self) -> &str {
        &self.shard
    }

    fn validate(&self) -> Result<()> {
        if self.shard.is_empty() || self.ring.is_empty() || self.namespace.is_empty() {
            return Err(Error::Config(
                "ring, shard name and namespace must not be empty".to_owned(),
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(Error::Config(format!(
                "renew deadline {:?} must be shorter than lease duration {:?}",
                self.renew_deadline, self.lease_duration
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
                name: Some(config.shard.clone()),
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
    let ours = holder == config.shard;
    if !ours && !holder.is_empty() && !expired(&spec, now) {
        return Decision::Wait { holder };
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
    lease
        .labels_mut()
        .insert(labels::CONTROLLER_RING.to_owned(), config.ring.clone());
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if acquire {
        spec.acquire_time = Some(MicroTime(now));
        if spec.holder_identity.as_deref() != Some(config.shard.as_str()) {
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
    }
    spec.holder_identity = Some(config.shard.clone());
    spec.lease_duration_seconds = Some(config.lease_duration_seconds());
    spec.renew_time = Some(MicroTime(now));
}

/// Whether a Lease held by someone else has run out (renewTime + leaseDuration ≤ now).
/// A Lease without those fields counts as expired, as in leader election.
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    match (&spec.renew_time, spec.lease_duration_seconds) {
        (Some(MicroTime(renewed)), Some(seconds)) => {
            now.duration_since(*renewed) >= SignedDuration::from_secs(i64::from(seconds))
        }
        _ => true,
    }
}

/// Whether the shard holds its Lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStatus {
    /// The Lease is held and renewed.
    Held,
    /// Renewal failed for longer than the renew deadline, or another holder took the Lease:
    /// the shard must stop reconciling.
    Lost,
}

/// Keeps a shard Lease.
#[derive(Clone, Debug)]
pub struct ShardLease {
    api: Api<Lease>,
    config: ShardLeaseConfig,
}

impl ShardLease {
    /// A keeper for the Lease described by `config`.
    #[must_use]
    pub fn new(client: Client, config: ShardLeaseConfig) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        Self { api, config }
    }

    /// Waits until the Lease is ours, then renews it in the background.
    ///
    /// # Errors
    /// An invalid configuration. API errors while acquiring are retried every retry period.
    pub async fn acquire(self) -> Result<ShardLeaseHandle> {
        self.config.validate()?;
        loop {
            match self.try_hold().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "cannot acquire shard Lease, retrying");
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
        tracing::info!(
            shard = self.config.shard,
            ring = self.config.ring,
            "acquired shard Lease"
        );
        let (status_tx, status) = watch::channel(LeaseStatus::Held);
        let (stop_tx, stop) = watch::channel(false);
        let keeper = self.clone();
        let task = tokio::spawn(async move { keeper.renew(status_tx, stop).await });
        Ok(ShardLeaseHandle {
            keeper: self,
            status,
            stop: stop_tx,
            task,
        })
    }

    /// One acquire-or-renew round: whether the Lease is ours afterwards.
    async fn try_hold(&self) -> Result<bool> {
        let name = &self.config.shard;
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
            Decision::Wait { holder } => {
                tracing::debug!(holder, "shard Lease is held by another holder");
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn renew(&self, status: watch::Sender<LeaseStatus>, mut stop: watch::Receiver<bool>) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.retry_period) => {}
                _ = stop.changed() => return,
            }
            let deadline = self.config.renew_deadline;
            let attempt = tokio::time::timeout(deadline, self.try_hold())
                .await
                .unwrap_or_else(|_| {
                    Err(Error::Timeout {
                        name: self.config.shard.clone(),
                        deadline,
                    })
                });
            match attempt {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(
                        shard = self.config.shard,
                        "shard Lease was taken by another holder"
                    );
                    let _ = status.send(LeaseStatus::Lost);
                    return;
                }
                Err(error) => {
                    tracing::warn!(error = %error_chain(&error), "cannot renew shard Lease");
                    if last_renewal.elapsed() >= self.config.renew_deadline {
                        tracing::error!(
                            shard = self.config.shard,
                            "shard Lease not renewed within the renew deadline"
                        );
                        let _ = status.send(LeaseStatus::Lost);
                        return;
                    }
                }
            }
        }
    }

    async fn release(&self) -> Result<()> {
        let name = &self.config.shard;
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
        if holder != Some(name.as_str()) {
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
        tracing::info!(shard = name, "released shard Lease");
        Ok(())
    }

    fn error(&self, action: &'static str, source: kube::Error) -> Error {
        Error::Api {
            action,
            lease: format!("{}/{}", self.config.namespace, self.config.shard),
            source: Box::new(source),
        }
    }
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

    /// A future that completes when the Lease is lost: pass it to
    /// `Controller::graceful_shutdown_on` so that the shard stops reconciling.
    pub fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut status = self.status.clone();
        async move {
            let _ = status.wait_for(|s| *s == LeaseStatus::Lost).await;
        }
    }

    /// Stops renewing and releases the Lease (docs/contract.md#shard-leases), so that the sharder
    /// moves this shard's objects at once instead of waiting for the Lease to expire.
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
                holder: labels::SHARD_LEASE_CONTROLLER.to_owned()
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
        assert!(ShardLeaseConfig::new("ring", "", "ns").validate().is_err());
        assert!(
            config()
                .retry_period(Duration::from_secs(10))
                .validate()
                .is_err()
        );
    }
}
