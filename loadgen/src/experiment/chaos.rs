//! Chaos and rolling updates during the load: a random shard killed every interval, the whole
//! operator restarted every interval.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;
use rand::seq::IndexedRandom as _;
use tokio::time::Instant;

use super::tracker::Tracker;
use crate::{
    environment::Target,
    measure::failover::FailoverKind,
    scenario::{Chaos, RollingUpdate, Signal},
};

/// A shard killed by chaos, and its objects then.
#[derive(Debug, Clone)]
pub struct Kill {
    /// The shard.
    pub shard: String,
    /// Graceful or not.
    pub kind: FailoverKind,
    /// When it was signalled.
    pub at: Timestamp,
    /// The objects assigned to it then.
    pub objects: BTreeSet<String>,
}

/// The times of the `n`-th event (1-based) every `interval` within `duration`.
fn times(interval: Duration, duration: Duration) -> impl Iterator<Item = Duration> {
    (1u32..)
        .map(move |n| interval * n)
        .take_while(move |at| !interval.is_zero() && *at <= duration)
}

/// Kills a random shard every `chaos.interval` from `start` until `duration`; returns the
/// kills and the errors of the kills that failed.
pub async fn kill_shards(
    target: &Target,
    chaos: Chaos,
    start: Instant,
    duration: Duration,
    tracker: &Arc<Mutex<Tracker>>,
) -> (Vec<Kill>, Vec<String>) {
    let (mut kills, mut errors) = (Vec::new(), Vec::new());
    for (n, offset) in (0u32..).zip(times(chaos.interval, duration)) {
        tokio::time::sleep_until(start + offset).await;
        let shards = match target.shards().await {
            Ok(shards) => shards,
            Err(error) => {
                errors.push(format!("listing the shards: {error:#}"));
                continue;
            }
        };
        let Some(shard) = shards.choose(&mut rand::rng()).cloned() else {
            errors.push("no shard to kill".to_owned());
            continue;
        };
        let signal = chaos.signal.signal(n);
        let objects = super::lock(tracker).objects_of(&shard);
        let at = Timestamp::now();
        if let Err(error) = target.kill(&shard, signal, chaos.restart).await {
            errors.push(format!("killing {shard}: {error:#}"));
            continue;
        }
        kills.push(Kill {
            shard,
            kind: match signal {
                Signal::Term => FailoverKind::Voluntary,
                Signal::Kill => FailoverKind::Involuntary,
            },
            at,
            objects,
        });
    }
    (kills, errors)
}

/// Restarts the operator every `update.interval` from `start` until `duration`; returns when
/// each began and the errors of those that failed.
pub async fn rolling_updates(
    target: &Target,
    update: RollingUpdate,
    start: Instant,
    duration: Duration,
) -> (Vec<Timestamp>, Vec<String>) {
    let (mut began, mut errors) = (Vec::new(), Vec::new());
    for offset in times(update.interval, duration) {
        tokio::time::sleep_until(start + offset).await;
        began.push(Timestamp::now());
        if let Err(error) = target.rolling_update().await {
            errors.push(format!("rolling update: {error:#}"));
        }
    }
    (began, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_every_interval_after_the_start_within_the_duration() {
        let secs = Duration::from_secs;
        assert_eq!(
            times(secs(90), secs(300)).collect::<Vec<_>>(),
            [secs(90), secs(180), secs(270)]
        );
        assert_eq!(times(secs(60), secs(60)).count(), 1);
        assert_eq!(times(secs(0), secs(60)).count(), 0);
    }
}
