//! Shard states computed from shard Leases at a given time (docs/contract.md#lease-states).
//!
//! Everything here is a pure function of a Lease and `now`: the sharder passes its clock's
//! time in, so the state machine is tested without waiting.

mod shards;
mod state;
mod takeover;
mod times;

pub use shards::{Shard, Shards};
pub use state::{ParseShardStateError, ShardState, next_transition, state};
pub use takeover::take_over;
pub use times::{DEFAULT_LEASE_DURATION, LEASE_TTL, LeaseTimes};

#[cfg(test)]
mod test_lease {
    use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
    use k8s_openapi::jiff::{SignedDuration, Timestamp};

    /// A fixed, arbitrary `now` for the tests.
    pub(super) fn now() -> Timestamp {
        "2025-01-01T12:00:00Z".parse().expect("valid timestamp")
    }

    /// A Lease `name` held by itself, acquired a minute before `renewed`, with `seconds` as
    /// leaseDurationSeconds.
    pub(super) fn lease(name: &str, renewed: Timestamp, seconds: i32) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(name.into()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(renewed - SignedDuration::from_mins(1))),
                renew_time: Some(MicroTime(renewed)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        }
    }

    /// The same Lease with another holder.
    pub(super) fn held_by(mut lease: Lease, holder: Option<&str>) -> Lease {
        if let Some(spec) = lease.spec.as_mut() {
            spec.holder_identity = holder.map(Into::into);
        }
        lease
    }
}
