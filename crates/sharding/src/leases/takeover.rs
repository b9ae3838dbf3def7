//! The sharder's takeover of an `uncertain` shard Lease (docs/contract.md#lease-states).

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

use super::times::lease_duration_seconds;
use crate::api::labels::SHARD_LEASE_CONTROLLER;

/// The Lease as the sharder writes it to take an `uncertain` shard over: holder
/// `shardlease-controller`, leaseDurationSeconds twice the shard's, acquireTime = renewTime =
/// `now`, and one more leaseTransition. The shard is then `dead` until a minute after the
/// doubled duration, and its objects move to other shards.
///
/// # Caveats
/// A Lease named `shardlease-controller` would be held by itself after the takeover.
#[must_use]
pub fn take_over(lease: &Lease, now: Timestamp) -> Lease {
    let doubled = lease_duration_seconds(lease).saturating_mul(2);
    let mut lease = lease.clone();
    let spec = lease.spec.get_or_insert_default();
    spec.holder_identity = Some(SHARD_LEASE_CONTROLLER.to_owned());
    spec.lease_duration_seconds = Some(doubled);
    spec.acquire_time = Some(MicroTime(now));
    spec.renew_time = Some(MicroTime(now));
    spec.lease_transitions = Some(spec.lease_transitions.unwrap_or_default().saturating_add(1));
    lease
}

#[cfg(test)]
mod tests {
    use super::super::state::{ShardState, next_transition, state};
    use super::super::test_lease::{lease, now};
    use super::*;
    use k8s_openapi::jiff::SignedDuration;
    use std::time::Duration;

    #[test]
    fn the_takeover_makes_an_uncertain_lease_dead() {
        let uncertain = lease("shard-0", now() - SignedDuration::from_secs(30), 15);
        assert_eq!(state(&uncertain, now()), ShardState::Uncertain);

        let taken = take_over(&uncertain, now());
        assert_eq!(state(&taken, now()), ShardState::Dead);
        // Dead until expiration (2·LD) plus a minute.
        assert_eq!(
            next_transition(&taken, now()),
            Some(Duration::from_secs(90))
        );

        let spec = taken.spec.as_ref().expect("spec");
        assert_eq!(
            spec.holder_identity.as_deref(),
            Some("shardlease-controller")
        );
        assert_eq!(spec.lease_duration_seconds, Some(30));
        assert_eq!(spec.acquire_time, Some(MicroTime(now())));
        assert_eq!(spec.renew_time, Some(MicroTime(now())));
        assert_eq!(spec.lease_transitions, Some(1));
        assert_eq!(
            taken.metadata, uncertain.metadata,
            "metadata (and resourceVersion) are kept"
        );
    }

    #[test]
    fn the_takeover_doubles_the_default_duration_when_a_field_is_missing() {
        let mut incomplete = lease("shard-0", now(), 10);
        let spec = incomplete.spec.as_mut().expect("spec");
        spec.acquire_time = None;
        spec.lease_transitions = None;
        let taken = take_over(&incomplete, now());
        let spec = taken.spec.as_ref().expect("spec");
        assert_eq!(spec.lease_duration_seconds, Some(30));
        assert_eq!(spec.lease_transitions, Some(1));
        assert_eq!(state(&taken, now()), ShardState::Dead);
    }
}
