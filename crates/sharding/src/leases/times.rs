//! The times and durations of a shard Lease (docs/contract.md#lease-states).

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The lease duration assumed when a Lease lacks acquireTime, renewTime or
/// leaseDurationSeconds.
pub const DEFAULT_LEASE_DURATION: SignedDuration = SignedDuration::from_secs(15);

/// How long a released or taken-over Lease stays `dead` past its expiration before it is
/// `orphaned` and deleted.
pub const LEASE_TTL: SignedDuration = SignedDuration::from_mins(1);

/// The parsed times of a Lease relative to `now`. A duration `<= 0` means that point has been
/// reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// renewTime + leaseDuration, or `now` if the Lease lacks one of the fields.
    pub expiration: Timestamp,
    /// leaseDurationSeconds, or [`DEFAULT_LEASE_DURATION`] if the Lease lacks one of the fields.
    pub lease_duration: SignedDuration,
    /// expiration − now.
    pub to_expired: SignedDuration,
    /// to_expired + lease_duration: when a held Lease becomes `uncertain`.
    pub to_uncertain: SignedDuration,
    /// to_expired + [`LEASE_TTL`]: when a released or taken-over Lease becomes `orphaned`.
    pub to_orphaned: SignedDuration,
}

impl LeaseTimes {
    /// The times of `lease` at `now`.
    ///
    /// # Caveats
    /// A Lease that lacks acquireTime, renewTime or leaseDurationSeconds expires at `now`
    /// whenever it is evaluated, so time alone never moves it past `expired` or `dead` (as in
    /// the Go original).
    #[must_use]
    pub fn at(lease: &Lease, now: Timestamp) -> Self {
        let (lease_duration, expiration) = match renewal(lease) {
            Some((renew_time, seconds)) => {
                let lease_duration = SignedDuration::from_secs(i64::from(seconds));
                (lease_duration, saturating_add(renew_time, lease_duration))
            }
            None => (DEFAULT_LEASE_DURATION, now),
        };
        let to_expired = expiration.duration_since(now);
        Self {
            expiration,
            lease_duration,
            to_expired,
            to_uncertain: to_expired.saturating_add(lease_duration),
            to_orphaned: to_expired.saturating_add(LEASE_TTL),
        }
    }
}

/// leaseDurationSeconds as the states use it: the Lease's own, or 15 if the Lease lacks one
/// of acquireTime, renewTime or leaseDurationSeconds.
pub(super) fn lease_duration_seconds(lease: &Lease) -> i32 {
    renewal(lease).map_or(15, |(_, seconds)| seconds)
}

/// renewTime and leaseDurationSeconds, if the Lease has them and an acquireTime.
fn renewal(lease: &Lease) -> Option<(Timestamp, i32)> {
    let spec = lease.spec.as_ref()?;
    spec.acquire_time.as_ref()?;
    Some((spec.renew_time.as_ref()?.0, spec.lease_duration_seconds?))
}

/// `time + duration`, clamped to the representable range: a Lease renewed near the end of time
/// must not panic the sharder.
fn saturating_add(time: Timestamp, duration: SignedDuration) -> Timestamp {
    time.checked_add(duration)
        .unwrap_or(if duration.is_negative() {
            Timestamp::MIN
        } else {
            Timestamp::MAX
        })
}

#[cfg(test)]
mod tests {
    use super::super::test_lease::{lease, now};
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;

    #[test]
    fn times_follow_from_renew_time_and_lease_duration() {
        let renewed = now() - SignedDuration::from_secs(4);
        let times = LeaseTimes::at(&lease("shard-0", renewed, 10), now());
        assert_eq!(
            times,
            LeaseTimes {
                expiration: renewed + SignedDuration::from_secs(10),
                lease_duration: SignedDuration::from_secs(10),
                to_expired: SignedDuration::from_secs(6),
                to_uncertain: SignedDuration::from_secs(16),
                to_orphaned: SignedDuration::from_secs(66),
            }
        );
    }

    #[test]
    fn a_lease_missing_any_field_expires_now_with_the_default_duration() {
        let complete = lease("shard-0", now(), 10);
        let clears: [fn(&mut LeaseSpec); 3] = [
            |s| s.acquire_time = None,
            |s| s.renew_time = None,
            |s| s.lease_duration_seconds = None,
        ];
        let mut missing = Vec::new();
        for clear in clears {
            let mut lease = complete.clone();
            clear(lease.spec.as_mut().expect("spec"));
            missing.push(lease);
        }
        missing.push(Lease {
            spec: None,
            ..complete
        });
        for lease in missing {
            let times = LeaseTimes::at(&lease, now());
            assert_eq!(times.expiration, now());
            assert_eq!(times.lease_duration, DEFAULT_LEASE_DURATION);
            assert_eq!(times.to_expired, SignedDuration::ZERO);
            assert_eq!(times.to_uncertain, SignedDuration::from_secs(15));
            assert_eq!(times.to_orphaned, SignedDuration::from_mins(1));
            assert_eq!(lease_duration_seconds(&lease), 15);
        }
    }

    #[test]
    fn a_lease_renewed_at_the_end_of_time_does_not_overflow() {
        let times = LeaseTimes::at(&lease("shard-0", Timestamp::MAX, i32::MAX), now());
        assert_eq!(times.expiration, Timestamp::MAX);
        assert!(times.to_expired.is_positive());
    }
}
