//! Leader election for the sharder's controllers (SPEC B): one replica runs the controllers,
//! every replica serves the webhook and metrics.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;

/// How leadership is contended for.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// The Lease's namespace (`sharding-system`).
    pub namespace: String,
    /// The Lease's name (`sharder`).
    pub name: String,
    /// This replica's identity, usually the pod name.
    pub identity: String,
    /// How long a leader's Lease is valid.
    pub lease_duration: Duration,
    /// How long before the end of the Lease it is renewed; a leader that cannot renew
    /// within `lease_duration - renew_deadline` steps down before another can take over.
    pub renew_deadline: Duration,
}

/// Leadership as it changes: `true` while this replica leads. Dropping the receiver (and
/// awaiting the task) releases the Lease.
pub type Leadership = (
    watch::Receiver<bool>,
    tokio::task::JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
);

/// Starts contending for leadership.
pub async fn elect(
    client: Client,
    config: &LeaderElection,
) -> Result<Leadership, LeaseManagerError> {
    let duration = config.lease_duration.as_secs().max(2);
    // The lease manager renews `grace` seconds before the Lease ends.
    let grace = duration
        .saturating_sub(config.renew_deadline.as_secs())
        .clamp(1, duration - 1);
    let manager = LeaseManagerBuilder::new(client, &config.name)
        .with_namespace(&config.namespace)
        .with_identity(&config.identity)
        .with_duration(duration)
        .with_grace(grace)
        .build()
        .await?;
    Ok(manager.watch().await)
}
