//! The fence of a held Lease (docs/contract.md#fencing): whether this process may still act on
//! the strength of a Lease it holds, judged by its own monotonic clock.
//!
//! The Lease keeper ([`crate::shard::ShardLease`]) extends the fence after every successful
//! renewal to the renewal's request start plus the renew deadline, and revokes it when the
//! Lease is lost or released. Another holder can take the Lease only once `renewTime +
//! leaseDurationSeconds` has passed, and `renewTime` is written after that request start, so
//! the fence ends at least `leaseDuration − renewDeadline` (the safety margin) before anyone
//! else can hold the Lease. A process paused and resumed finds the fence expired by its own
//! clock, which kept running during the pause, before it writes anything.
//!
//! [`valid`] is the pure decision; [`Fence::check`] applies it at the current instant.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::Instant;

/// Acting on the strength of the Lease is no longer safe.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "Lease {lease} is no longer held by this process's clock: not renewed within its renew deadline, lost or released"
)]
pub struct Expired {
    /// `namespace/name` of the Lease.
    pub lease: String,
}

/// Whether a fence valid until `valid_until` (`None`: never renewed, lost or released) still
/// holds at `now` (pure).
#[must_use]
pub fn valid(valid_until: Option<Instant>, now: Instant) -> bool {
    valid_until.is_some_and(|until| now < until)
}

/// A cheap, cloneable check that the Lease behind it is still held; call [`Fence::check`]
/// immediately before every write made on the strength of the Lease.
///
/// # Caveats
/// The check and the write are not atomic: a process paused after a passing check (or whose
/// request is delayed on the way) can still land the write later. See
/// docs/contract.md#fencing for what bounds that window.
#[derive(Clone, Debug)]
pub struct Fence {
    /// `None` for [`Fence::unfenced`].
    held: Option<Arc<Held>>,
}

#[derive(Debug)]
struct Held {
    lease: String,
    valid_until: Mutex<Option<Instant>>,
}

impl Fence {
    /// The fence of Lease `lease` (`namespace/name`), closed until the first renewal.
    pub(crate) fn new(lease: String) -> Self {
        Self {
            held: Some(Arc::new(Held {
                lease,
                valid_until: Mutex::new(None),
            })),
        }
    }

    /// A fence that always passes, for a process that holds no Lease because nothing contends
    /// with it (for example the sharder with leader election off).
    #[must_use]
    pub fn unfenced() -> Self {
        Self { held: None }
    }

    /// Passes while the Lease is held by this process's clock.
    ///
    /// # Errors
    /// [`Expired`] once the renew deadline has passed since the last successful renewal's
    /// request start, or the Lease was lost or released.
    pub fn check(&self) -> Result<(), Expired> {
        self.check_at(Instant::now())
    }

    /// [`Fence::check`] at `now`.
    ///
    /// # Errors
    /// See [`Fence::check`].
    pub fn check_at(&self, now: Instant) -> Result<(), Expired> {
        let Some(held) = &self.held else {
            return Ok(());
        };
        if valid(
            *held
                .valid_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
            now,
        ) {
            Ok(())
        } else {
            Err(Expired {
                lease: held.lease.clone(),
            })
        }
    }

    /// Keeps the fence open until `until`, unless it is open longer already.
    pub(crate) fn extend(&self, until: Instant) {
        if let Some(held) = &self.held {
            let mut valid_until = held
                .valid_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *valid_until = Some(valid_until.map_or(until, |current| current.max(until)));
        }
    }

    /// Closes the fence: the Lease is lost or about to be released.
    pub(crate) fn revoke(&self) {
        if let Some(held) = &self.held {
            *held
                .valid_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_fence_holds_strictly_before_its_end_only() {
        let start = Instant::now();
        let until = Some(start + Duration::from_secs(10));
        assert!(valid(until, start));
        assert!(valid(until, start + Duration::from_millis(9_999)));
        assert!(!valid(until, start + Duration::from_secs(10)));
        assert!(!valid(until, start + Duration::from_secs(39)));
        assert!(!valid(None, start));
    }

    #[test]
    fn a_new_fence_is_closed_until_extended_and_closes_again_when_revoked() {
        let fence = Fence::new("ns/shard-0".to_owned());
        let start = Instant::now();
        assert_eq!(
            fence.check_at(start),
            Err(Expired {
                lease: "ns/shard-0".to_owned()
            })
        );
        fence.extend(start + Duration::from_secs(10));
        assert_eq!(fence.check_at(start + Duration::from_secs(9)), Ok(()));
        assert!(fence.check_at(start + Duration::from_secs(10)).is_err());
        fence.revoke();
        assert!(fence.check_at(start).is_err());
    }

    #[test]
    fn an_older_renewal_never_shortens_the_fence() {
        let fence = Fence::new("ns/shard-0".to_owned());
        let start = Instant::now();
        fence.extend(start + Duration::from_secs(12));
        fence.extend(start + Duration::from_secs(10));
        assert_eq!(fence.check_at(start + Duration::from_secs(11)), Ok(()));
    }

    #[test]
    fn clones_share_the_fence_and_an_unfenced_one_always_passes() {
        let fence = Fence::new("ns/sharder".to_owned());
        let clone = fence.clone();
        let start = Instant::now();
        fence.extend(start + Duration::from_secs(1));
        assert_eq!(clone.check_at(start), Ok(()));
        assert_eq!(
            Fence::unfenced().check_at(start + Duration::from_secs(1_000)),
            Ok(())
        );
    }
}
