//! The state of a shard, from its Lease at a given time (docs/contract.md#lease-states).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;

use super::times::LeaseTimes;

/// The state of a shard. The order is part of the contract:
/// unknown < orphaned < dead < uncertain < expired < ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShardState {
    /// Not computed from a Lease, e.g. a missing or unrecognised state label.
    #[default]
    Unknown,
    /// Released or taken over, and expired at least a minute ago: the sharder deletes the Lease.
    Orphaned,
    /// Released by the shard or taken over by the sharder.
    Dead,
    /// Held by the shard but expired at least a lease duration ago: the sharder takes it over.
    Uncertain,
    /// Held by the shard but expired less than a lease duration ago.
    Expired,
    /// Held by the shard and not expired.
    Ready,
}

impl ShardState {
    /// Every state, in order.
    pub const ALL: [ShardState; 6] = [
        ShardState::Unknown,
        ShardState::Orphaned,
        ShardState::Dead,
        ShardState::Uncertain,
        ShardState::Expired,
        ShardState::Ready,
    ];

    /// The lowercase name, as in the state label on shard Leases
    /// (docs/contract.md#names-and-labels).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            ShardState::Unknown => "unknown",
            ShardState::Orphaned => "orphaned",
            ShardState::Dead => "dead",
            ShardState::Uncertain => "uncertain",
            ShardState::Expired => "expired",
            ShardState::Ready => "ready",
        }
    }

    /// Whether objects may be assigned to a shard in this state: uncertain, expired or ready.
    /// Only available shards are in the hash ring.
    #[must_use]
    pub fn is_available(self) -> bool {
        self >= ShardState::Uncertain
    }
}

impl fmt::Display for ShardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`ShardState`]. The Go original reads such a state label as
/// `unknown`: use `.unwrap_or_default()` for that.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown shard state {input:?}")]
pub struct ParseShardStateError {
    /// The string that was parsed.
    pub input: String,
}

impl FromStr for ShardState {
    type Err = ParseShardStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ShardState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| ParseShardStateError {
                input: s.to_owned(),
            })
    }
}

/// The state of the shard whose Lease this is, at `now`. Never [`ShardState::Unknown`].
#[must_use]
pub fn state(lease: &Lease, now: Timestamp) -> ShardState {
    state_at(lease, &LeaseTimes::at(lease, now))
}

/// How long until the Lease's state changes if nothing writes it: when to look again.
///
/// `None` for `orphaned` and `uncertain`, which time alone does not change: the sharder
/// deletes an orphaned Lease and takes an uncertain one over (the Go original requeues the
/// latter after the lease duration for safety).
#[must_use]
pub fn next_transition(lease: &Lease, now: Timestamp) -> Option<Duration> {
    let times = LeaseTimes::at(lease, now);
    let until = match state_at(lease, &times) {
        ShardState::Ready => times.to_expired,
        ShardState::Expired => times.to_uncertain,
        ShardState::Dead => times.to_orphaned,
        ShardState::Unknown | ShardState::Orphaned | ShardState::Uncertain => return None,
    };
    // Positive by construction of the states above.
    Duration::try_from(until).ok()
}

fn state_at(lease: &Lease, times: &LeaseTimes) -> ShardState {
    let name = lease.metadata.name.as_deref().unwrap_or_default();
    let holder = lease
        .spec
        .as_ref()
        .and_then(|spec| spec.holder_identity.as_deref())
        .unwrap_or_default();
    // Released by the shard (empty holder) or taken over by the sharder.
    if holder.is_empty() || holder != name {
        return if times.to_orphaned.is_positive() {
            ShardState::Dead
        } else {
            ShardState::Orphaned
        };
    }
    if !times.to_uncertain.is_positive() {
        ShardState::Uncertain
    } else if !times.to_expired.is_positive() {
        ShardState::Expired
    } else {
        ShardState::Ready
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_lease::{held_by, lease, now};
    use super::*;
    use k8s_openapi::jiff::SignedDuration;

    const LD: i32 = 10;

    fn secs(s: i64) -> SignedDuration {
        SignedDuration::from_secs(s)
    }

    const US: SignedDuration = SignedDuration::from_micros(1);

    /// The state of a Lease held by itself that expired `ago` before now.
    fn held_expired_ago(ago: SignedDuration) -> ShardState {
        state(&lease("shard-0", now() - ago - secs(LD.into()), LD), now())
    }

    /// The state of a Lease released (holder "") that expired `ago` before now.
    fn released_expired_ago(ago: SignedDuration, seconds: i32) -> ShardState {
        let lease = held_by(
            lease("shard-0", now() - ago - secs(seconds.into()), seconds),
            Some(""),
        );
        state(&lease, now())
    }

    #[test]
    fn a_held_lease_is_ready_until_its_expiration() {
        assert_eq!(
            held_expired_ago(-secs(LD.into())),
            ShardState::Ready,
            "just renewed"
        );
        assert_eq!(held_expired_ago(-secs(1)), ShardState::Ready);
        assert_eq!(held_expired_ago(-US), ShardState::Ready);
    }

    #[test]
    fn a_held_lease_is_expired_from_its_expiration_until_one_lease_duration_later() {
        assert_eq!(
            held_expired_ago(SignedDuration::ZERO),
            ShardState::Expired,
            "exactly at expiration"
        );
        assert_eq!(held_expired_ago(US), ShardState::Expired);
        assert_eq!(held_expired_ago(secs(LD.into()) - US), ShardState::Expired);
        assert_eq!(
            held_expired_ago(secs(LD.into()) - secs(1)),
            ShardState::Expired
        );
    }

    #[test]
    fn a_held_lease_is_uncertain_from_one_lease_duration_after_its_expiration() {
        assert_eq!(
            held_expired_ago(secs(LD.into())),
            ShardState::Uncertain,
            "exactly at expiration + LD"
        );
        assert_eq!(
            held_expired_ago(secs(LD.into()) + US),
            ShardState::Uncertain
        );
        assert_eq!(
            held_expired_ago(secs(LD.into()) + secs(1)),
            ShardState::Uncertain
        );
        assert_eq!(
            held_expired_ago(SignedDuration::from_hours(24)),
            ShardState::Uncertain,
            "never orphaned"
        );
    }

    #[test]
    fn a_released_lease_is_dead_until_a_minute_after_its_expiration() {
        // A shard releases with leaseDurationSeconds 1 and renewTime now
        // (docs/contract.md#shard-leases).
        assert_eq!(
            released_expired_ago(-secs(1), 1),
            ShardState::Dead,
            "just released"
        );
        assert_eq!(
            released_expired_ago(SignedDuration::ZERO, 1),
            ShardState::Dead
        );
        assert_eq!(released_expired_ago(secs(59), 1), ShardState::Dead);
        assert_eq!(released_expired_ago(secs(60) - US, 1), ShardState::Dead);
    }

    #[test]
    fn a_released_lease_is_orphaned_from_a_minute_after_its_expiration() {
        assert_eq!(
            released_expired_ago(secs(60), 1),
            ShardState::Orphaned,
            "exactly at expiration + 1 min"
        );
        assert_eq!(released_expired_ago(secs(60) + US, 1), ShardState::Orphaned);
        assert_eq!(released_expired_ago(secs(61), 1), ShardState::Orphaned);
    }

    #[test]
    fn an_absent_holder_or_another_holder_counts_as_released() {
        let renewed = now();
        for holder in [
            None,
            Some(""),
            Some("shard-1"),
            Some("shardlease-controller"),
        ] {
            let fresh = held_by(lease("shard-0", renewed, LD), holder);
            assert_eq!(state(&fresh, now()), ShardState::Dead, "holder {holder:?}");
            let old = held_by(
                lease("shard-0", renewed - secs(70 + i64::from(LD)), LD),
                holder,
            );
            assert_eq!(
                state(&old, now()),
                ShardState::Orphaned,
                "holder {holder:?}"
            );
        }
    }

    #[test]
    fn a_held_lease_missing_a_field_is_expired_and_a_released_one_dead() {
        let mut held = lease("shard-0", now() - SignedDuration::from_hours(1), LD);
        held.spec.as_mut().expect("spec").renew_time = None;
        assert_eq!(state(&held, now()), ShardState::Expired);
        assert_eq!(next_transition(&held, now()), Some(Duration::from_secs(15)));

        let released = held_by(held, Some(""));
        assert_eq!(state(&released, now()), ShardState::Dead);
        assert_eq!(
            next_transition(&released, now()),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn a_lease_without_a_name_or_spec_is_dead() {
        let mut nameless = lease("shard-0", now(), LD);
        nameless.metadata.name = None;
        assert_eq!(state(&nameless, now()), ShardState::Dead);
        let specless = Lease {
            spec: None,
            ..lease("shard-0", now(), LD)
        };
        assert_eq!(state(&specless, now()), ShardState::Dead);
    }

    #[test]
    fn the_next_transition_is_the_next_boundary() {
        let renewed = now() - secs(4);
        let held = lease("shard-0", renewed, LD);
        assert_eq!(
            next_transition(&held, now()),
            Some(Duration::from_secs(6)),
            "ready until expiration"
        );
        let later = now() + secs(6);
        assert_eq!(state(&held, later), ShardState::Expired);
        assert_eq!(
            next_transition(&held, later),
            Some(Duration::from_secs(10)),
            "expired for LD"
        );
        assert_eq!(state(&held, later + secs(10)), ShardState::Uncertain);
        assert_eq!(
            next_transition(&held, later + secs(10)),
            None,
            "uncertain until taken over"
        );

        let released = held_by(held, Some(""));
        assert_eq!(
            next_transition(&released, now()),
            Some(Duration::from_secs(66)),
            "dead until expiration + 1 min"
        );
        assert_eq!(state(&released, now() + secs(66)), ShardState::Orphaned);
        assert_eq!(next_transition(&released, now() + secs(66)), None);
    }

    #[test]
    fn states_are_ordered_and_three_are_available() {
        let mut sorted = ShardState::ALL;
        sorted.sort();
        assert_eq!(sorted, ShardState::ALL);
        assert!(
            ShardState::Unknown < ShardState::Orphaned && ShardState::Expired < ShardState::Ready
        );
        let available: Vec<_> = ShardState::ALL
            .into_iter()
            .filter(|s| s.is_available())
            .collect();
        assert_eq!(
            available,
            [
                ShardState::Uncertain,
                ShardState::Expired,
                ShardState::Ready
            ]
        );
    }

    #[test]
    fn states_round_trip_through_their_names() {
        let names: Vec<_> = ShardState::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "unknown",
                "orphaned",
                "dead",
                "uncertain",
                "expired",
                "ready"
            ]
        );
        for state in ShardState::ALL {
            assert_eq!(state.as_str().parse(), Ok(state));
        }
        let err = "Ready".parse::<ShardState>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown shard state "Ready""#);
        assert_eq!(
            "bogus".parse::<ShardState>().unwrap_or_default(),
            ShardState::Unknown
        );
    }
}
