//! The measurements of the experiments (docs/experiments.md), as pure functions over timestamped
//! samples.
//!
//! Every sample carries the absolute time at which it was observed ([`Timestamp`]), so series from
//! different sources (the watch, the schedule, `/metrics` scrapes, `/proc`) are aligned by time and
//! never by sample index (docs/experiments.md#measurements: the original's tool plotted load about
//! 15 s late).
//!
//! - [`accounting`]: every scheduled write and delete in one class, adding up to the schedule.
//! - [`latency`]: HdrHistogram recorders, in total and per time window; `.hgrm` output.
//! - [`skew`]: objects per shard, max/mean and coefficient of variation; steady and transient.
//! - [`movement`]: objects moved by a membership change against the moves the ring required.
//! - [`failover`]: the phases of a failover from timestamped events and observations.
//! - [`slo`]: SLO verdicts, the first breach under a ramp, and capacity scaling.
//! - [`scaling_model`]: linear, Amdahl and USL fits of capacity against the shard count.
//! - [`cost`]: CPU seconds and peak memory per component from `/proc` samples.
//! - [`prometheus`]: histograms and counters read from the text exposition of `/metrics`.
//! - [`stats`]: a figure over repetitions as a median with an interval, and ratios of two.
//! - [`snapshot`]: the API server's and the shards' `/metrics` at a tick, and between two.
//! - [`findings`]: sentences on what bound a measurement, each citing its figures.
//! - [`validity`]: whether a measurement can be trusted, with its reasons.
//! - [`webhook`]: the sharder's webhook admission latency from its `/metrics`.
//! - [`ownership`]: the ownership audit: objects on no live shard ([`unowned`]), objects
//!   reconciled by two shards at once ([`audit`]), writes rejected by conflicts ([`conflicts`]).

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

pub mod accounting;
pub mod audit;
pub mod conflicts;
pub mod cost;
pub mod failover;
pub mod findings;
pub mod latency;
pub mod movement;
pub mod owned;
pub mod ownership;
pub mod prometheus;
pub mod scaling_model;
pub mod skew;
pub mod slo;
pub mod snapshot;
pub mod stats;
pub mod unowned;
pub mod validity;
pub mod webhook;

/// `numerator / denominator`, or `None` when the denominator is not positive.
#[must_use]
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

/// The time from `from` to `to`; zero when `to` is earlier.
///
/// Events of one experiment are stamped by different observers (the kill, a watch, a scrape),
/// so an effect may carry a stamp a hair before its cause; that reads as "at once".
#[must_use]
pub fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// How many of `times` fall from `start` to `end`, both included.
#[must_use]
pub fn count_within(times: &[Timestamp], start: Timestamp, end: Timestamp) -> u64 {
    times
        .iter()
        .filter(|at| (start..=end).contains(at))
        .map(|_| 1)
        .sum()
}

/// A count as a float, for means and shares.
#[allow(
    clippy::cast_precision_loss,
    reason = "counts of objects, samples and observations stay far below 2^52"
)]
pub(crate) fn as_f64(count: u64) -> f64 {
    count as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn a_ratio_needs_a_positive_denominator() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(0.0, 2.0), Some(0.0));
        assert_eq!(ratio(3.0, 0.0), None);
        assert_eq!(ratio(3.0, -1.0), None);
        assert_eq!(ratio(3.0, f64::NAN), None);
    }

    #[test]
    fn elapsed_time_is_measured_between_absolute_timestamps() {
        assert_eq!(elapsed(at(10), at(13)), Duration::from_secs(3));
        assert_eq!(elapsed(at(10), at(10)), Duration::ZERO);
    }

    #[test]
    fn an_effect_stamped_before_its_cause_happened_at_once() {
        assert_eq!(elapsed(at(10), at(9)), Duration::ZERO);
    }

    #[test]
    fn times_are_counted_within_both_ends() {
        let times = [at(1), at(5), at(6), at(10), at(11)];
        assert_eq!(count_within(&times, at(5), at(10)), 3);
        assert_eq!(count_within(&times, at(20), at(30)), 0);
        assert_eq!(count_within(&[], at(0), at(30)), 0);
    }

    #[test]
    fn counts_convert_to_floats() {
        assert!((as_f64(12) - 12.0).abs() < f64::EPSILON);
        assert!(as_f64(0).abs() < f64::EPSILON);
    }
}
