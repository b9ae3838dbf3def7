//! Kubernetes quantities as numbers, for the metrics API's usage and the nodes' allocatable
//! resources.

use anyhow::Context as _;

/// A Kubernetes quantity as a number of its unit: `250m` is 0.25 (cores), `1Ki` 1024
/// (bytes), `12345n` 0.000012345, `1e3` 1000.
pub(super) fn parse_quantity(text: &str) -> anyhow::Result<f64> {
    let invalid = || format!("invalid quantity {text:?}");
    let split = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '+' || c == '-'))))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().with_context(invalid)?;
    let factor = match suffix {
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0_f64.powi(2),
        "Gi" => 1024.0_f64.powi(3),
        "Ti" => 1024.0_f64.powi(4),
        "Pi" => 1024.0_f64.powi(5),
        "Ei" => 1024.0_f64.powi(6),
        // A decimal exponent; a lone `E` is exa, above.
        _ => {
            let exponent = suffix
                .strip_prefix(['e', 'E'])
                .and_then(|e| e.parse::<i32>().ok())
                .with_context(invalid)?;
            10.0_f64.powi(exponent)
        }
    };
    Ok(number * factor)
}

/// A count or byte size from a quantity: rounded, 0 for negative values and NaN.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the cast saturates: negative and NaN give 0; byte counts are integers far below \
              2^53, so nothing is lost"
)]
pub(super) fn saturating_u64(value: f64) -> u64 {
    value.round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_read_in_their_unit() {
        let cases = [
            ("250m", 0.25),
            ("2", 2.0),
            ("1.5", 1.5),
            ("12345n", 0.000_012_345),
            ("7u", 0.000_007),
            ("1k", 1000.0),
            ("1Ki", 1024.0),
            ("100Mi", 100.0 * 1024.0 * 1024.0),
            ("1Gi", 1024.0 * 1024.0 * 1024.0),
            ("12345Ki", 12345.0 * 1024.0),
            ("2G", 2e9),
            ("1E", 1e18),
            ("1e3", 1000.0),
            ("5E-1", 0.5),
            ("+3", 3.0),
            ("-2m", -0.002),
        ];
        for (text, expected) in cases {
            assert_close(parse_quantity(text).unwrap(), expected);
        }
    }

    /// Equal up to rounding: quantities are computed in floating point.
    #[track_caller]
    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() <= expected.abs() * 1e-12,
            "{actual} != {expected}"
        );
    }

    #[test]
    fn invalid_quantities_are_named() {
        for text in ["", "m", "1x", "1Zi", "1e", "1ex", "1.2.3", "1-"] {
            let error = parse_quantity(text).unwrap_err().to_string();
            assert_eq!(error, format!("invalid quantity {text:?}"));
        }
    }
}
