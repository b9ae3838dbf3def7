//! Leader election (docs/contract.md#sharder-behaviour, docs/sharder.md#leadership): one replica
//! runs the controllers, every replica serves its webhook and metrics.
//!
//! The leader Lease is kept by the shard library's keeper ([`ShardLeaseConfig::leader`]): it
//! renews every retry period, and once the renew deadline has passed since the request start
//! of its last successful renewal (by this process's monotonic clock) leadership is lost, the
//! controllers are cancelled, and the fence that guards every write of the leader
//! ([`ShardLease::fence`]) is closed, `leaseDuration − renewDeadline` before another replica
//! can take over.

use std::time::Duration;

use kube::Client;
use kube_sharding::shard::{ShardLease, ShardLeaseConfig, ShardLeaseHandle, lease};

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
    /// How long after the request start of its last successful renewal the leader gives up:
    /// it stops its controllers and closes its fence, `lease_duration - renew_deadline` before
    /// another replica can take over.
    pub renew_deadline: Duration,
    /// The wait between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl LeaderElection {
    /// The keeper of the leader Lease; take its [`ShardLease::fence`] for the leader's writes
    /// before [`acquire`] consumes it.
    #[must_use]
    pub fn lease(&self, client: Client) -> ShardLease {
        let config = ShardLeaseConfig::leader(&self.name, &self.identity, &self.namespace)
            .lease_duration(self.lease_duration)
            .renew_deadline(self.renew_deadline)
            .retry_period(self.retry_period);
        ShardLease::new(client, config)
    }
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
    /// The election's settings cannot work.
    #[error("cannot contend for leadership")]
    Acquire(#[source] lease::Error),
}

/// Leadership held by this replica, as a [`Membership`]: lost when the renew deadline passes
/// without a renewal or another replica holds the Lease, released by [`Membership::leave`].
#[derive(Debug)]
pub struct Leadership(ShardLeaseHandle);

/// Contends for leadership with `lease` (from [`LeaderElection::lease`]) and completes once
/// this replica leads.
///
/// # Errors
/// The election's settings cannot work; API errors are retried.
pub async fn acquire(lease: ShardLease) -> Result<Leadership, Error> {
    let handle = lease.acquire().await.map_err(Error::Acquire)?;
    tracing::info!("became leader");
    Ok(Leadership(handle))
}

impl Membership for Leadership {
    fn lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.0.lost()
    }

    async fn leave(self) -> anyhow::Result<()> {
        if !self.0.is_held() {
            anyhow::bail!("lost leadership");
        }
        self.0.release().await?;
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
