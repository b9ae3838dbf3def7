//! The units reports print figures in: MiB, rates and ratios.

use std::time::Duration;

use crate::measure::as_f64;

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
}
