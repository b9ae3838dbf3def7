//! Leader election (docs/contract.md#sharder-behaviour): one replica runs the controllers, every
//! replica serves its webhook and metrics.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder, LeaseManagerError};
use tokio::{sync::watch, task::JoinHandle};

use crate::runtime::Membership;

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

/// A leader-election identity unique to this process: `base`, then `_` and a random UUID, as
/// controller-runtime builds it (`docs/compatibility.md#leader-election`). Two replicas on one
/// host, or a restarted one whose old Lease still names it, never share an identity.
#[must_use]
pub fn unique_identity(base: &str, random: [u8; 16]) -> String {
    let mut uuid = random;
    // A version 4 (random) UUID of the RFC 9562 variant.
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    let hex = uuid
        .iter()
        .fold(String::with_capacity(32), |mut hex, byte| {
            use std::fmt::Write as _;
            let _ = write!(hex, "{byte:02x}");
            hex
        });
    format!(
        "{base}_{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Why leadership could not be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lease manager could not start.
    #[error("cannot start leader election")]
    Start(#[source] LeaseManagerError),
    /// The lease manager ended before this replica led.
    #[error("leader election stopped")]
    Stopped,
}

/// Leadership held by this replica, as a [`Membership`]: lost when the Lease is, released by
/// [`Membership::leave`].
#[derive(Debug)]
pub struct Leadership {
    /// `true` while this replica leads.
    leading: watch::Receiver<bool>,
    /// The lease manager, which releases the Lease once `leading` is dropped.
    manager: JoinHandle<Result<LeaseManager, LeaseManagerError>>,
}

/// Contends for leadership and completes once this replica leads.
pub async fn acquire(client: Client, config: &LeaderElection) -> Result<Leadership, Error> {
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
        .await
        .map_err(Error::Start)?;
    let (mut leading, manager) = manager.watch().await;
    leading
        .wait_for(|leading| *leading)
        .await
        .map_err(|_| Error::Stopped)?;
    tracing::info!(lease = config.name, "became leader");
    Ok(Leadership { leading, manager })
}

impl Membership for Leadership {
    fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut leading = self.leading.clone();
        async move {
            let _ = leading.wait_for(|leading| !*leading).await;
        }
    }

    async fn leave(self) -> anyhow::Result<()> {
        let lost = !*self.leading.borrow();
        drop(self.leading);
        let _ = self.manager.await;
        if lost {
            anyhow::bail!("lost leadership");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_identity_is_the_base_and_a_version_4_uuid() {
        let identity = unique_identity("sharder-7d9f", [0xff; 16]);
        assert_eq!(
            identity,
            "sharder-7d9f_ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        let zero = unique_identity("host", [0; 16]);
        assert_eq!(zero, "host_00000000-0000-4000-8000-000000000000");
    }
}
