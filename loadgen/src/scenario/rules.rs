//! The rules a scenario's values follow, one pure function each: it returns the value to keep
//! or what is wrong with it, with the value as written, and the caller names the field.

use std::time::Duration;

use kube_sharding::strategy::Strategy;

use super::format_duration;

/// A value, or what is wrong with it.
pub(crate) type Verdict<T> = Result<T, String>;

/// The most concurrent requests of one kind: more would only contend on 2 cores, and a
/// schedule that workers cannot keep is not an error since latency shows it.
pub(super) const MAX_WORKERS: u32 = 1000;

/// A field without a default must be set.
pub(crate) fn required<T>(value: Option<T>) -> Verdict<T> {
    value.ok_or_else(|| "is required".to_owned())
}

/// `[a-z0-9-]+`: the name goes into run ids and directory names.
pub(crate) fn name(text: String) -> Verdict<String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !text.is_empty() && text.chars().all(allowed) {
        Ok(text)
    } else {
        Err(format!("must match [a-z0-9-]+, got {text:?}"))
    }
}

/// A duration as written, such as `15m`; the parser's message quotes the text.
pub(super) fn duration(text: &str) -> Verdict<Duration> {
    operations::duration::parse(text).map_err(|error| error.to_string())
}

/// Loads, intervals and SLO thresholds of zero mean nothing.
pub(super) fn positive_duration(value: Duration) -> Verdict<Duration> {
    if value.is_zero() {
        Err("must be greater than 0s".to_owned())
    } else {
        Ok(value)
    }
}

/// An interval of the load (mutations, kills, rolling restarts) that would never come up
/// within the load's duration is a mistake in the file.
pub(super) fn within(value: Duration, duration: Duration) -> Verdict<Duration> {
    if value <= duration {
        Ok(value)
    } else {
        Err(format!(
            "must not be longer than duration ({}), got {}",
            format_duration(duration),
            format_duration(value)
        ))
    }
}

/// How many times an interval elapses within the duration, counting one at its very end.
pub(super) fn intervals_within(interval: Duration, duration: Duration) -> u32 {
    // Durations are validated positive; the quotient of two of them fits u32 in any real file.
    u32::try_from(duration.as_nanos() / interval.as_nanos().max(1)).unwrap_or(u32::MAX)
}

/// A count of at least `min`, such as namespaces (1) or initial Websites (0).
pub(crate) fn count(value: i64, min: u32) -> Verdict<u32> {
    if value < i64::from(min) {
        return Err(format!("must be at least {min}, got {value}"));
    }
    u32::try_from(value).map_err(|_| format!("must be at most {}, got {value}", u32::MAX))
}

/// Concurrent workers of the load generator or the operator: 1 to [`MAX_WORKERS`].
pub(super) fn workers(value: i64) -> Verdict<u32> {
    match u32::try_from(value) {
        Ok(workers) if (1..=MAX_WORKERS).contains(&workers) => Ok(workers),
        _ => Err(format!("must be between 1 and {MAX_WORKERS}, got {value}")),
    }
}

/// The most shards of a shard count: every shard is a process on the local target and a pod
/// on a cluster, and a sweep past this many is a typo rather than an experiment.
pub(super) const MAX_SHARDS: u32 = 256;

/// The most Websites a scenario may make exist, initially or by its load: past this the
/// run would take hours on any target, and such a number is a typo rather than an experiment.
pub(super) const MAX_WEBSITES: u32 = 1_000_000;

/// The sweep: at least one shard count, each from 1 to [`MAX_SHARDS`], strictly increasing so
/// that each count runs once and reports read in order.
pub(super) fn shard_counts(values: &[i64]) -> Verdict<Vec<u32>> {
    if values.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let counts: Vec<u32> = values
        .iter()
        .map(|&value| u32::try_from(value).ok().filter(|&count| count >= 1))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("must each be at least 1, got {values:?}"))?;
    if counts.iter().any(|&count| count > MAX_SHARDS) {
        return Err(format!("must each be at most {MAX_SHARDS}, got {values:?}"));
    }
    if counts.windows(2).all(|pair| pair[0] < pair[1]) {
        Ok(counts)
    } else {
        Err(format!("must be strictly increasing, got {values:?}"))
    }
}

/// One name of `strategies`: an assignment strategy the sharder knows
/// (docs/experiments.md#assignment-strategies); the names are the library's.
pub(super) fn strategy(text: &str) -> Verdict<Strategy> {
    text.parse().map_err(|_| {
        let known: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
        format!(
            "unknown assignment strategy {text:?}: expected one of {}",
            known.join(", ")
        )
    })
}

/// The strategy axis: at least one, each once, so that no (strategy, shard count) runs twice
/// under one name.
pub(super) fn strategies(strategies: Vec<Strategy>) -> Verdict<Vec<Strategy>> {
    if strategies.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let names = || strategies.iter().map(|s| s.name()).collect::<Vec<_>>();
    if strategies
        .iter()
        .enumerate()
        .any(|(i, strategy)| strategies[..i].contains(strategy))
    {
        return Err(format!("must each appear once, got {:?}", names()));
    }
    Ok(strategies)
}

/// A rate in operations per second: finite and above 0. A rate the workers cannot keep is
/// allowed: the latency shows it.
pub(super) fn positive_rate(value: f64) -> Verdict<f64> {
    if !value.is_finite() {
        Err(format!("must be a finite number, got {value}"))
    } else if value > 0.0 {
        Ok(value)
    } else {
        Err(format!("must be greater than 0, got {value}"))
    }
}

/// The start of a ramp: finite and at least 0, since a capacity ramp may start from nothing.
pub(super) fn ramp_from(value: f64) -> Verdict<f64> {
    if !value.is_finite() {
        Err(format!("must be a finite number, got {value}"))
    } else if value >= 0.0 {
        Ok(value)
    } else {
        Err(format!("must be at least 0, got {value}"))
    }
}

/// The end of a ramp: finite and above its start, since a ramp rises (a flat one is a `rate`).
pub(super) fn ramp_to(from: f64, to: f64) -> Verdict<f64> {
    if !to.is_finite() {
        Err(format!("must be a finite number, got {to}"))
    } else if to > from {
        Ok(to)
    } else {
        Err(format!("must be greater than from ({from}), got {to}"))
    }
}

/// The shortest hold of a search step: three of the sampler's 5 s intervals, so that the queue
/// latency of a step rests on more than one scrape.
pub(super) const MIN_HOLD: Duration = Duration::from_secs(15);

/// A search step's hold: at least [`MIN_HOLD`].
pub(super) fn hold(value: Duration) -> Verdict<Duration> {
    if value >= MIN_HOLD {
        Ok(value)
    } else {
        Err(format!(
            "must be at least {}, got {}",
            format_duration(MIN_HOLD),
            format_duration(value)
        ))
    }
}

/// Websites a scenario makes exist, at most [`MAX_WEBSITES`].
pub(super) fn websites(value: f64) -> Verdict<f64> {
    if value <= f64::from(MAX_WEBSITES) {
        Ok(value)
    } else {
        Err(format!(
            "must make at most {MAX_WEBSITES} Websites exist, got {value:.0}"
        ))
    }
}

/// A search's precision: a fraction above 0 and at most 1 (10 % is 0.1).
pub(super) fn precision(value: f64) -> Verdict<f64> {
    if value.is_finite() && value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(format!(
            "must be a fraction above 0 and at most 1 (0.1 for 10 %), got {value}"
        ))
    }
}

/// Which of `rate` and `ramp` a create load sets.
#[derive(Debug, PartialEq)]
pub(super) enum RateOrRamp<R> {
    /// `rate`.
    Rate(f64),
    /// `ramp`.
    Ramp(R),
}

/// A create load sets exactly one of `rate` and `ramp`.
pub(super) fn rate_or_ramp<R>(rate: Option<f64>, ramp: Option<R>) -> Verdict<RateOrRamp<R>> {
    match (rate, ramp) {
        (Some(rate), None) => Ok(RateOrRamp::Rate(rate)),
        (None, Some(ramp)) => Ok(RateOrRamp::Ramp(ramp)),
        (Some(_), Some(_)) => Err("set either rate or ramp, not both".to_owned()),
        (None, None) => Err("set either rate or ramp".to_owned()),
    }
}

/// Deletes must find Websites: over the duration they may not outnumber the initial Websites
/// plus the creates, or the scenario would not do what it says (and expected Websites would
/// be negative).
pub(super) fn deletes_fit(rate: f64, duration: Duration, available: f64) -> Verdict<f64> {
    let deletes = rate * duration.as_secs_f64();
    if deletes <= available {
        Ok(rate)
    } else {
        Err(format!(
            "must not delete more Websites ({deletes}) over duration ({}) than initialWebsites \
             plus creates ({available}), got {rate}",
            format_duration(duration)
        ))
    }
}

/// The lease duration of the shard Leases: `leaseDurationSeconds` is whole seconds, and
/// renewing before expiry needs at least 2 (the operator's own rule).
pub(super) fn lease_duration(value: Duration) -> Verdict<Duration> {
    if value.subsec_nanos() != 0 {
        Err(format!(
            "must be whole seconds, got {}",
            format_duration(value)
        ))
    } else if value < Duration::from_secs(2) {
        Err(format!(
            "must be at least 2s, got {}",
            format_duration(value)
        ))
    } else {
        Ok(value)
    }
}

/// Chaos without restarts removes a shard per kill: the smallest shard count must outlive
/// every kill, or the rest of the run measures an operator with no shard at all.
pub(super) fn restart(
    restart: bool,
    kills: u32,
    smallest: u32,
    duration: Duration,
) -> Verdict<bool> {
    if restart || kills < smallest {
        Ok(restart)
    } else {
        Err(format!(
            "must be true when the {kills} kills over duration ({}) leave no shard of shards[0] \
             ({smallest}), got false",
            format_duration(duration)
        ))
    }
}

/// A Kubernetes object name (a DNS subdomain): lowercase letters, digits, `-` and `.`, starting
/// and ending with a letter or digit, at most 253 characters. `label` narrows it to a DNS label
/// (no `.`, at most 63), as namespace names are.
pub(super) fn object_name(text: String, label: bool) -> Verdict<String> {
    let (max, pattern) = if label {
        (63, "[a-z0-9]([-a-z0-9]*[a-z0-9])?")
    } else {
        (253, "[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
    };
    let allowed =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (c == '.' && !label);
    let ends = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if text.len() <= max
        && text.chars().all(allowed)
        && ends(text.chars().next())
        && ends(text.chars().last())
    {
        Ok(text)
    } else {
        Err(format!(
            "must match {pattern} with at most {max} characters, got {text:?}"
        ))
    }
}

/// `namespace/name` of a namespaced object.
pub(super) fn namespaced_name(text: &str) -> Verdict<(String, String)> {
    let (namespace, name) = text
        .split_once('/')
        .ok_or_else(|| format!("must be namespace/name, got {text:?}"))?;
    let namespace = object_name(namespace.to_owned(), true)
        .map_err(|problem| format!("namespace {problem}"))?;
    let name = object_name(name.to_owned(), false).map_err(|problem| format!("name {problem}"))?;
    Ok((namespace, name))
}

/// An HTTP path: starts with `/`, no spaces.
pub(super) fn http_path(text: String) -> Verdict<String> {
    if text.starts_with('/') && !text.contains(char::is_whitespace) {
        Ok(text)
    } else {
        Err(format!("must be a path starting with /, got {text:?}"))
    }
}

/// A label selector as `kubectl get -l` takes it (`a=b,c!=d,e in (f,g)`): not empty, and only
/// the characters of label keys, values and operators. The API server checks the rest.
pub(super) fn label_selector(text: String) -> Verdict<String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./=!,() ".contains(c);
    if !text.trim().is_empty() && text.chars().all(allowed) {
        Ok(text)
    } else {
        Err(format!(
            "must be a label selector such as app=name, got {text:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_missing_value_is_required() {
        assert_eq!(required(Some(1)), Ok(1));
        assert_eq!(required::<u32>(None), Err("is required".to_owned()));
    }

    #[test]
    fn names_are_lowercase_digits_and_dashes() {
        assert_eq!(
            name("rolling-update-2".to_owned()),
            Ok("rolling-update-2".to_owned())
        );
        for bad in ["", "Basic", "scale_out", "a b", "é"] {
            assert_eq!(
                name(bad.to_owned()),
                Err(format!("must match [a-z0-9-]+, got {bad:?}"))
            );
        }
    }

    #[test]
    fn durations_parse_with_a_unit() {
        assert_eq!(duration("15m"), Ok(15 * MINUTE));
        assert!(
            duration("15 minutes")
                .unwrap_err()
                .contains("\"15 minutes\"")
        );
    }

    #[test]
    fn zero_durations_are_rejected_where_they_mean_nothing() {
        assert_eq!(positive_duration(MINUTE), Ok(MINUTE));
        assert_eq!(
            positive_duration(Duration::ZERO),
            Err("must be greater than 0s".to_owned())
        );
    }

    #[test]
    fn an_interval_must_fit_in_the_duration() {
        assert_eq!(within(5 * MINUTE, 15 * MINUTE), Ok(5 * MINUTE));
        assert_eq!(within(15 * MINUTE, 15 * MINUTE), Ok(15 * MINUTE));
        assert_eq!(
            within(16 * MINUTE, 15 * MINUTE),
            Err("must not be longer than duration (15m), got 16m".to_owned())
        );
    }

    #[test]
    fn intervals_within_count_the_one_at_the_end() {
        assert_eq!(intervals_within(5 * MINUTE, 15 * MINUTE), 3);
        assert_eq!(intervals_within(4 * MINUTE, 15 * MINUTE), 3);
        assert_eq!(intervals_within(15 * MINUTE, 15 * MINUTE), 1);
    }

    #[test]
    fn counts_have_a_minimum_and_fit_u32() {
        assert_eq!(count(0, 0), Ok(0));
        assert_eq!(count(20, 1), Ok(20));
        assert_eq!(count(0, 1), Err("must be at least 1, got 0".to_owned()));
        assert_eq!(count(-1, 0), Err("must be at least 0, got -1".to_owned()));
        assert_eq!(
            count(1 << 40, 1),
            Err("must be at most 4294967295, got 1099511627776".to_owned())
        );
    }

    #[test]
    fn workers_are_between_1_and_1000() {
        assert_eq!(workers(1), Ok(1));
        assert_eq!(workers(1000), Ok(1000));
        for bad in [0, -1, 1001] {
            assert_eq!(
                workers(bad),
                Err(format!("must be between 1 and 1000, got {bad}"))
            );
        }
    }

    #[test]
    fn shard_counts_are_positive_strictly_increasing_and_not_empty() {
        assert_eq!(shard_counts(&[1, 2, 3]), Ok(vec![1, 2, 3]));
        assert_eq!(shard_counts(&[]), Err("must not be empty".to_owned()));
        assert_eq!(
            shard_counts(&[0, 1]),
            Err("must each be at least 1, got [0, 1]".to_owned())
        );
        assert_eq!(
            shard_counts(&[2, 1]),
            Err("must be strictly increasing, got [2, 1]".to_owned())
        );
        assert_eq!(
            shard_counts(&[1, 1]),
            Err("must be strictly increasing, got [1, 1]".to_owned())
        );
    }

    #[test]
    fn sweeps_and_worlds_have_a_sane_size() {
        assert_eq!(shard_counts(&[1, 256]), Ok(vec![1, 256]));
        assert_eq!(
            shard_counts(&[1, 1000]),
            Err("must each be at most 256, got [1, 1000]".to_owned())
        );
        assert_eq!(websites(1e6), Ok(1e6));
        assert_eq!(
            websites(1e8),
            Err("must make at most 1000000 Websites exist, got 100000000".to_owned())
        );
    }

    #[test]
    fn rates_are_finite_and_positive() {
        assert_eq!(positive_rate(0.5), Ok(0.5));
        assert_eq!(
            positive_rate(-1.0),
            Err("must be greater than 0, got -1".to_owned())
        );
        assert_eq!(
            positive_rate(0.0),
            Err("must be greater than 0, got 0".to_owned())
        );
        assert_eq!(
            positive_rate(f64::INFINITY),
            Err("must be a finite number, got inf".to_owned())
        );
        assert_eq!(
            positive_rate(f64::NAN),
            Err("must be a finite number, got NaN".to_owned())
        );
    }

    #[test]
    fn a_ramp_starts_at_0_or_more() {
        assert_eq!(ramp_from(0.0), Ok(0.0));
        assert_eq!(
            ramp_from(-1.0),
            Err("must be at least 0, got -1".to_owned())
        );
        assert_eq!(
            ramp_from(f64::NAN),
            Err("must be a finite number, got NaN".to_owned())
        );
    }

    #[test]
    fn a_ramp_rises() {
        assert_eq!(ramp_to(1.0, 30.0), Ok(30.0));
        assert_eq!(
            ramp_to(2.0, 2.0),
            Err("must be greater than from (2), got 2".to_owned())
        );
        assert_eq!(
            ramp_to(1.0, f64::INFINITY),
            Err("must be a finite number, got inf".to_owned())
        );
    }

    #[test]
    fn a_create_load_sets_rate_or_ramp() {
        assert_eq!(
            rate_or_ramp::<()>(Some(1.0), None),
            Ok(RateOrRamp::Rate(1.0))
        );
        assert_eq!(rate_or_ramp(None, Some(())), Ok(RateOrRamp::Ramp(())));
        assert_eq!(
            rate_or_ramp(Some(1.0), Some(())),
            Err("set either rate or ramp, not both".to_owned())
        );
        assert_eq!(
            rate_or_ramp::<()>(None, None),
            Err("set either rate or ramp".to_owned())
        );
    }

    #[test]
    fn deletes_must_not_outnumber_the_websites() {
        assert_eq!(deletes_fit(2.0, MINUTE, 120.0), Ok(2.0));
        assert_eq!(
            deletes_fit(2.0, MINUTE, 100.0),
            Err(
                "must not delete more Websites (120) over duration (1m) than initialWebsites \
                 plus creates (100), got 2"
                    .to_owned()
            )
        );
    }

    #[test]
    fn lease_durations_are_whole_seconds_of_at_least_2() {
        assert_eq!(
            lease_duration(Duration::from_secs(15)),
            Ok(Duration::from_secs(15))
        );
        assert_eq!(
            lease_duration(Duration::from_millis(2500)),
            Err("must be whole seconds, got 2500ms".to_owned())
        );
        assert_eq!(
            lease_duration(Duration::from_secs(1)),
            Err("must be at least 2s, got 1s".to_owned())
        );
    }

    #[test]
    fn chaos_without_restarts_must_leave_a_shard() {
        assert_eq!(restart(true, 3, 1, 15 * MINUTE), Ok(true));
        assert_eq!(restart(false, 2, 3, 15 * MINUTE), Ok(false));
        assert_eq!(
            restart(false, 3, 3, 15 * MINUTE),
            Err(
                "must be true when the 3 kills over duration (15m) leave no shard of shards[0] \
                 (3), got false"
                    .to_owned()
            )
        );
    }
    #[test]
    fn object_names_are_dns_subdomains_and_namespaces_dns_labels() {
        assert_eq!(object_name("a.b-c".into(), false), Ok("a.b-c".to_owned()));
        assert_eq!(
            object_name("a.b".into(), true),
            Err(
                "must match [a-z0-9]([-a-z0-9]*[a-z0-9])? with at most 63 characters, got \"a.b\""
                    .to_owned()
            )
        );
        for bad in ["", "-a", "a-", "A", "a_b"] {
            assert!(object_name(bad.into(), false).is_err(), "{bad:?}");
        }
        assert!(object_name("a".repeat(64), true).is_err());
        assert!(object_name("a".repeat(253), false).is_ok());
    }

    #[test]
    fn a_namespaced_name_needs_both_parts() {
        assert_eq!(
            namespaced_name("system/controller"),
            Ok(("system".to_owned(), "controller".to_owned()))
        );
        assert_eq!(
            namespaced_name("controller"),
            Err("must be namespace/name, got \"controller\"".to_owned())
        );
        assert!(
            namespaced_name("a.b/c")
                .unwrap_err()
                .starts_with("namespace must match")
        );
        assert!(
            namespaced_name("a/")
                .unwrap_err()
                .starts_with("name must match")
        );
    }

    #[test]
    fn paths_and_selectors_are_checked_for_their_shape() {
        assert!(http_path("/readyz".into()).is_ok());
        assert!(http_path("readyz".into()).is_err());
        assert!(label_selector("app.kubernetes.io/name=x,tier in (a, b),!c".into()).is_ok());
        assert!(label_selector(" ".into()).is_err());
        assert!(label_selector("app=\"x\"".into()).is_err());
    }
}
