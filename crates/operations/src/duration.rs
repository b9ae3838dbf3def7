//! The project's one duration type, written as Go writes durations: `15s`, `1h30m`, `1.5s`,
//! `500ms`, `2us`. Config files, scenario files and flags all read it, so a value copied from one
//! works in another, and a config file written for the Go sharder reads the same here.

use std::{fmt, str::FromStr};

/// A non-negative duration read and written in Go's syntax (`time.ParseDuration` and
/// `time.Duration.String`).
///
/// It reads from a string (flags through [`FromStr`], files through serde) and writes Go's
/// text form, so `90m` reads as the duration that [`Display`](fmt::Display) writes as `1h30m0s`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// No time at all.
    pub const ZERO: Self = Self(std::time::Duration::ZERO);

    /// The duration of `duration`.
    #[must_use]
    pub const fn new(duration: std::time::Duration) -> Self {
        Self(duration)
    }

    /// `secs` seconds.
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// The standard library's duration.
    #[must_use]
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl From<std::time::Duration> for Duration {
    fn from(duration: std::time::Duration) -> Self {
        Self(duration)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(duration: Duration) -> Self {
        duration.0
    }
}

/// Why a text is not a duration; it names the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {problem}")]
pub struct ParseDurationError {
    /// The text as given.
    pub input: String,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a duration's text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Not of the form `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or out of Go's range (about 292
    /// years); Go's "invalid duration".
    #[error("expected e.g. 20s, 500ms, 1h30m")]
    Invalid,
    /// A number without a unit, such as `15` (only `0` may omit it).
    #[error("missing unit, expected e.g. 20s, 500ms, 1h30m")]
    MissingUnit,
    /// A unit other than `ns`, `us`, `µs`, `ms`, `s`, `m` and `h`.
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    /// A valid Go duration below zero where only zero or more is allowed.
    #[error("must not be negative")]
    Negative,
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let nanos = parse_nanos(text)?;
        let nanos = u64::try_from(nanos).map_err(|_| ParseDurationError {
            input: text.to_owned(),
            problem: Problem::Negative,
        })?;
        Ok(Self(std::time::Duration::from_nanos(nanos)))
    }
}

/// Parses a non-negative Go duration into the standard library's type, for clap's
/// `value_parser` on a `std::time::Duration` field.
pub fn parse(text: &str) -> Result<std::time::Duration, ParseDurationError> {
    text.parse().map(Duration::get)
}

/// Parses a Lease duration for clap: Lease durations are whole seconds in a Lease, and
/// renewal needs at least two.
pub fn parse_lease_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = parse(text).map_err(|error| error.to_string())?;
    if duration < std::time::Duration::from_secs(2) || duration.subsec_nanos() != 0 {
        return Err(format!(
            "invalid lease duration {text:?}: must be whole seconds, at least 2s"
        ));
    }
    Ok(duration)
}

impl fmt::Display for Duration {
    /// Go's `time.Duration.String`: `1h30m0s`, `1.5s`, `500ms`, `2µs`, `0s`. Durations beyond
    /// Go's range (about 292 years) are written the same way.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SECOND: u128 = 1_000_000_000;
        let nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        if nanos < SECOND {
            // Below a second, the largest unit in which the value is at least 1.
            let (precision, unit) = match nanos {
                0..1_000 => (0, "ns"),
                1_000..1_000_000 => (3, "\u{b5}s"),
                _ => (6, "ms"),
            };
            return write!(f, "{}{unit}", fraction(nanos, precision));
        }
        let seconds = nanos / SECOND;
        let (hours, minutes) = (seconds / 3600, seconds / 60 % 60);
        let seconds = fraction(nanos % (60 * SECOND), 9);
        match (hours, minutes) {
            (0, 0) => write!(f, "{seconds}s"),
            (0, _) => write!(f, "{minutes}m{seconds}s"),
            _ => write!(f, "{hours}h{minutes}m{seconds}s"),
        }
    }
}

/// `value / 10^precision` with the fraction's trailing zeros (and a bare point) left out.
fn fraction(value: u128, precision: u32) -> String {
    let scale = 10_u128.pow(precision);
    let (whole, part) = (value / scale, value % scale);
    if part == 0 {
        return whole.to_string();
    }
    let digits = format!("{part:0width$}", width = precision as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Go's unit table.
const NANOS_PER_UNIT: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),  // U+00B5 micro sign
    ("\u{3bc}s", 1_000), // U+03BC Greek small letter mu
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 60 * 60 * 1_000_000_000),
];

/// Go's limit: a duration is an `int64` of nanoseconds.
const LIMIT: u128 = 1 << 63;

/// Parses a Go duration, negative ones too, into signed nanoseconds, accepting exactly what Go's
/// `time.ParseDuration` accepts and giving the same value (Go computes fractions through a
/// float64, and so does this, so `0.3333333333333333333h` is exactly 20 minutes in both).
pub fn parse_nanos(text: &str) -> Result<i64, ParseDurationError> {
    signed_nanos(text).map_err(|problem| ParseDurationError {
        input: text.to_owned(),
        problem,
    })
}

fn signed_nanos(text: &str) -> Result<i64, Problem> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(Problem::Invalid);
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (nanos, after) = component(rest)?;
        total += nanos;
        if total > LIMIT {
            return Err(Problem::Invalid);
        }
        rest = after;
    }
    let total = i128::try_from(total).map_err(|_| Problem::Invalid)?;
    i64::try_from(if negative { -total } else { total }).map_err(|_| Problem::Invalid)
}

/// One `[0-9]*(\.[0-9]*)?[a-z]+` component: its nanoseconds and the text after it.
fn component(text: &str) -> Result<(u128, &str), Problem> {
    let digits = |text: &str| text.bytes().take_while(u8::is_ascii_digit).count();
    let integer_len = digits(text);
    let mut integer: u128 = 0;
    for digit in text[..integer_len].bytes() {
        integer = integer * 10 + u128::from(digit - b'0');
        if integer > LIMIT {
            return Err(Problem::Invalid);
        }
    }
    let mut rest = &text[integer_len..];
    // Fraction digits beyond what fits are ignored, as in Go.
    let (mut fraction, mut scale, mut fraction_len) = (0_u64, 1_f64, 0);
    if rest.starts_with('.') {
        rest = &rest[1..];
        fraction_len = digits(rest);
        for digit in rest[..fraction_len].bytes() {
            if fraction > (i64::MAX as u64) / 10 {
                break;
            }
            let next = fraction * 10 + u64::from(digit - b'0');
            if u128::from(next) > LIMIT {
                break;
            }
            (fraction, scale) = (next, scale * 10.0);
        }
        rest = &rest[fraction_len..];
    }
    if integer_len == 0 && fraction_len == 0 {
        return Err(Problem::Invalid);
    }
    let unit_len = rest
        .bytes()
        .take_while(|&byte| byte != b'.' && !byte.is_ascii_digit())
        .count();
    if unit_len == 0 {
        return Err(Problem::MissingUnit);
    }
    let unit = &rest[..unit_len];
    let nanos_per_unit = NANOS_PER_UNIT
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|&(_, nanos)| nanos)
        .ok_or_else(|| Problem::UnknownUnit(unit.to_owned()))?;
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "Go computes the fraction through float64; so must we, to get its value to the \
                  nanosecond"
    )]
    let fraction_nanos = (fraction as f64 * (nanos_per_unit as f64 / scale)) as u128;
    let nanos = integer * nanos_per_unit + fraction_nanos;
    if nanos > LIMIT {
        return Err(Problem::Invalid);
    }
    Ok((nanos, &rest[unit_len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse_to_the_same_nanoseconds_as_go() {
        const S: i64 = 1_000_000_000;
        for (text, nanos) in [
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("5s", 5 * S),
            ("30s", 30 * S),
            ("1478s", 1478 * S),
            ("-5s", -5 * S),
            ("+5s", 5 * S),
            ("-0s", 0),
            ("5.0s", 5 * S),
            ("5.6s", 5 * S + 600_000_000),
            ("5.s", 5 * S),
            (".5s", S / 2),
            ("1.0s", S),
            ("1.00s", S),
            ("1.004s", S + 4_000_000),
            ("1.0040s", S + 4_000_000),
            ("100.00100s", 100 * S + 1_000_000),
            ("10ns", 10),
            ("11us", 11_000),
            ("12\u{b5}s", 12_000),
            ("12\u{3bc}s", 12_000),
            ("13ms", 13_000_000),
            ("14s", 14 * S),
            ("15m", 15 * 60 * S),
            ("16h", 16 * 3600 * S),
            ("3h30m", (3 * 3600 + 30 * 60) * S),
            ("10.5s4m", 4 * 60 * S + 10 * S + S / 2),
            ("-2m3.4s", -(2 * 60 * S + 3 * S + 400_000_000)),
            (
                "1h2m3s4ms5us6ns",
                3600 * S + 2 * 60 * S + 3 * S + 4_000_000 + 5_000 + 6,
            ),
            ("39h9m14.425s", (39 * 3600 + 9 * 60 + 14) * S + 425_000_000),
            ("52763797000ns", 52_763_797_000),
            ("0.3333333333333333333h", 20 * 60 * S),
            ("9007199254740993ns", 9_007_199_254_740_993),
            ("9223372036854775807ns", i64::MAX),
            ("9223372036854775.807us", i64::MAX),
            ("9223372036s854ms775us807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("-9223372036854775.808us", i64::MIN),
            ("-9223372036s854ms775us808ns", i64::MIN),
            ("-2562047h47m16.854775808s", i64::MIN),
            ("0.100000000000000000000h", 6 * 60 * S),
            (
                "0.830103483285477580700h",
                49 * 60 * S + 48 * S + 372_539_827,
            ),
        ] {
            assert_eq!(parse_nanos(text), Ok(nanos), "{text}");
        }
    }

    #[test]
    fn invalid_go_durations_are_rejected_like_go() {
        use Problem::{Invalid, MissingUnit, UnknownUnit};
        for (text, problem) in [
            ("", Invalid),
            ("3", MissingUnit),
            ("-", Invalid),
            ("s", Invalid),
            (".", Invalid),
            ("-.", Invalid),
            (".s", Invalid),
            ("+.s", Invalid),
            ("1d", UnknownUnit("d".to_owned())),
            ("1.5.5s", MissingUnit),
            ("3000000h", Invalid),
            ("9223372036854775808ns", Invalid),
            ("9223372036854775.808us", Invalid),
            ("9223372036854ms775us808ns", Invalid),
            ("-9223372036854775809ns", Invalid),
            ("1s ", UnknownUnit("s ".to_owned())),
            (" 1s", Invalid),
            ("00", MissingUnit),
        ] {
            let error = ParseDurationError {
                input: text.to_owned(),
                problem,
            };
            assert_eq!(parse_nanos(text), Err(error), "{text:?}");
        }
    }

    #[test]
    fn the_type_holds_no_negative_duration() {
        assert_eq!("-0s".parse(), Ok(Duration::ZERO));
        assert_eq!(
            "-1s".parse::<Duration>().unwrap_err().to_string(),
            "invalid duration \"-1s\": must not be negative"
        );
    }

    #[test]
    fn a_bad_duration_names_the_input_and_what_is_expected() {
        for (text, message) in [
            (
                "soon",
                "invalid duration \"soon\": expected e.g. 20s, 500ms, 1h30m",
            ),
            (
                "1.5",
                "invalid duration \"1.5\": missing unit, expected e.g. 20s, 500ms, 1h30m",
            ),
            ("10x", "invalid duration \"10x\": unknown unit \"x\""),
            ("1e400s", "invalid duration \"1e400s\": unknown unit \"e\""),
        ] {
            assert_eq!(parse(text).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn durations_are_written_as_go_writes_them() {
        for (nanos, text) in [
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_100, "1.1\u{b5}s"),
            (2_000, "2\u{b5}s"),
            (2_200_000, "2.2ms"),
            (500_000_000, "500ms"),
            (1_500_000_000, "1.5s"),
            (60_000_000_000, "1m0s"),
            (75_500_000_000, "1m15.5s"),
            (5_400_000_000_000, "1h30m0s"),
            (90_061_000_000_001, "25h1m1.000000001s"),
            (i64::MAX.unsigned_abs(), "2562047h47m16.854775807s"),
        ] {
            let duration = Duration::new(std::time::Duration::from_nanos(nanos));
            assert_eq!(duration.to_string(), text);
            assert_eq!(text.parse(), Ok(duration), "{text} reads back");
        }
    }

    #[test]
    fn serde_reads_and_writes_the_go_text() {
        let duration: Duration = serde_json::from_str("\"1h30m\"").unwrap();
        assert_eq!(duration, Duration::from_secs(5400));
        assert_eq!(serde_json::to_string(&duration).unwrap(), "\"1h30m0s\"");
        let error = serde_json::from_str::<Duration>("\"5\"").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid duration \"5\": missing unit"),
            "{error}"
        );
    }
}
