//! The units reports print figures in: MiB, rates, ratios and latencies.

use std::time::Duration;

use crate::measure::{as_f64, prometheus::Quantile};

/// Bytes in a MiB, as a float for byte figures read back from files.
pub const BYTES_PER_MIB: f64 = 1024.0 * 1024.0;

/// `bytes` in MiB.
#[must_use]
pub fn mib(bytes: u64) -> f64 {
    as_f64(bytes) / BYTES_PER_MIB
}

/// `count / elapsed` per second, 0 for no time.
#[must_use]
pub fn per_second(count: usize, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        as_f64(count as u64) / seconds
    } else {
        0.0
    }
}

/// A ratio as `0.25x`, or `n/a` when there is none.
#[must_use]
pub fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}x"))
}

/// A figure with `decimals` decimals, or `n/a` when there is none.
#[must_use]
pub fn format_optional(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

/// A latency in seconds as ms below 1 s and s above, to 3 significant digits: the resolution
/// of the recorders (docs/experiments.md#queue-latency), so no digit says more than was measured.
#[must_use]
pub fn format_latency(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{} ms", significant(seconds * 1000.0))
    } else {
        format!("{} s", significant(seconds))
    }
}

/// A quantile read from a histogram: a point when its bucket is narrow enough
/// ([`Quantile::is_resolved`]), otherwise the bucket ("0.1–1 s", "> 10 s", "≤ 1 ms").
#[must_use]
pub fn format_quantile(quantile: &Quantile) -> String {
    if quantile.is_resolved() {
        format_latency(quantile.value)
    } else if !quantile.upper.is_finite() {
        format!("> {}", format_latency(quantile.lower))
    } else if quantile.lower <= 0.0 {
        format!("≤ {}", format_latency(quantile.upper))
    } else if quantile.upper < 1.0 {
        format!(
            "{}–{} ms",
            significant(quantile.lower * 1000.0),
            significant(quantile.upper * 1000.0)
        )
    } else {
        format!(
            "{}–{} s",
            significant(quantile.lower),
            significant(quantile.upper)
        )
    }
}

/// `value` to 3 significant digits (all of its integer digits above 999), without trailing
/// zeros.
fn significant(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the log10 of a latency is a small integer"
    )]
    let decimals = (2.0 - value.abs().log10().floor()).max(0.0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_mib() {
        assert!((mib(3 * 1024 * 1024) - 3.0).abs() < f64::EPSILON);
        assert!((mib(512 * 1024) - 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn a_rate_over_no_time_is_zero() {
        assert!((per_second(500, Duration::from_secs(2)) - 250.0).abs() < 1e-9);
        assert!(per_second(500, Duration::ZERO).abs() < f64::EPSILON);
    }

    #[test]
    fn missing_figures_read_not_available() {
        assert_eq!(format_ratio(Some(0.254)), "0.25x");
        assert_eq!(format_ratio(None), "n/a");
        assert_eq!(format_optional(Some(1.23456), 3), "1.235");
        assert_eq!(format_optional(None, 3), "n/a");
    }

    #[test]
    fn latencies_carry_three_significant_digits_at_most() {
        assert_eq!(format_latency(0.000_123_4), "0.123 ms");
        assert_eq!(format_latency(0.9123), "912 ms");
        assert_eq!(format_latency(1.25), "1.25 s");
        assert_eq!(format_latency(597.4), "597 s");
        assert_eq!(format_latency(1.0), "1 s");
        assert_eq!(format_latency(0.0), "0 ms");
    }

    #[test]
    fn a_quantile_in_a_wide_bucket_reads_as_the_bucket() {
        let q = |value, lower, upper| Quantile {
            value,
            lower,
            upper,
        };
        assert_eq!(format_quantile(&q(0.91, 0.1, 1.0)), "0.1–1 s");
        assert_eq!(format_quantile(&q(0.05, 0.01, 0.1)), "10–100 ms");
        assert_eq!(format_quantile(&q(5.5, 1.0, 10.0)), "1–10 s");
        assert_eq!(format_quantile(&q(10.0, 10.0, f64::INFINITY)), "> 10 s");
        assert_eq!(format_quantile(&q(0.0005, 0.0, 0.001)), "≤ 1 ms");
        assert_eq!(format_quantile(&q(1.1, 1.0, 1.25)), "1.1 s");
    }
}
