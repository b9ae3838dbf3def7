//! Latency recorders: microsecond HdrHistograms in total and per fixed time window
//! (docs/experiments.md).
//!
//! A latency is recorded at the time it belongs to (for an open-loop operation, its intended
//! start), so a stall shows in the windows of the operations it delayed.
//!
//! A latency may be *censored*: the operation had not ended when it stopped being watched, so
//! only its time so far is known, a lower bound. It is recorded with that time and marks every
//! percentile it may have pulled down as a lower bound ([`is_lower_bound`],
//! docs/experiments.md#reconciliation-latency).

use std::{
    collections::BTreeMap,
    io::{self, Write},
    time::Duration,
};

use hdrhistogram::Histogram;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::as_f64;

/// The default length of the windows of a [`LatencyRecorder`].
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(10);
/// The longest latency a recorder tells apart; longer ones are clamped to it and counted.
pub const HIGHEST: Duration = Duration::from_secs(3600);

/// [`HIGHEST`] in microseconds, the unit of the histograms.
const HIGHEST_MICROS: u64 = 3_600_000_000;
/// Three significant digits: 0.1 % resolution, HdrHistogram's usual choice.
const SIGNIFICANT_DIGITS: u8 = 3;
/// Percentile rows per halving of the distance to 100 %, HdrHistogram's default for `.hgrm`.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Why a recorder cannot be built or merged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The window is shorter than a microsecond or too long for a timestamp.
    #[error("the latency window must be between 1 µs and 292,000 years, got {window:?}")]
    Window {
        /// The window asked for.
        window: Duration,
    },
    /// The recorders cut time into different windows, so their windows do not line up.
    #[error("cannot merge latency recorders with windows of {ours:?} and {theirs:?}")]
    WindowMismatch {
        /// The window of the recorder merged into.
        ours: Duration,
        /// The window of the recorder merged from.
        theirs: Duration,
    },
}

/// The result of this module's fallible functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Latencies in microseconds (1 µs to 1 h, 3 significant digits), in total and per window.
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    window: Duration,
    window_micros: i64,
    total: Histogram<u64>,
    censored: Censored,
    windows: BTreeMap<Timestamp, Window>,
    clamped: u64,
}

/// The latencies of one window.
#[derive(Debug, Clone)]
struct Window {
    histogram: Histogram<u64>,
    censored: Censored,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            histogram: histogram(),
            censored: Censored::default(),
        }
    }
}

/// The censored latencies among those of a histogram: how many, and the smallest, which
/// decides which percentiles are lower bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Censored {
    count: u64,
    min_micros: Option<u64>,
}

impl Censored {
    fn add(&mut self, micros: u64) {
        self.count += 1;
        self.min_micros = Some(self.min_micros.map_or(micros, |min| min.min(micros)));
    }

    fn merge(&mut self, other: Self) {
        self.count += other.count;
        self.min_micros = match (self.min_micros, other.min_micros) {
            (Some(ours), Some(theirs)) => Some(ours.min(theirs)),
            (ours, theirs) => ours.or(theirs),
        };
    }
}

/// Whether a percentile of `value` is only a lower bound, given the smallest censored latency
/// among those it was computed from (microseconds, as recorded).
///
/// A censored latency at or below the percentile may truly be above it, so the true percentile
/// may be higher: a lower bound. Censored latencies all above it are truly above it too, so
/// the rank of `value`, and thus the percentile, does not change: exact.
#[must_use]
pub fn is_lower_bound(value: u64, min_censored: Option<u64>) -> bool {
    min_censored.is_some_and(|censored| censored <= value)
}

impl LatencyRecorder {
    /// A recorder with windows of `window`, aligned to the Unix epoch so that recorders of
    /// different sources share their window starts.
    pub fn new(window: Duration) -> Result<Self> {
        let window_micros = i64::try_from(window.as_micros())
            .ok()
            .filter(|&micros| micros > 0)
            .ok_or(Error::Window { window })?;
        Ok(Self {
            window,
            window_micros,
            total: histogram(),
            censored: Censored::default(),
            windows: BTreeMap::new(),
            clamped: 0,
        })
    }

    /// Records `latency` at `at`. Latencies beyond [`HIGHEST`] count as [`HIGHEST`] and are
    /// counted in [`Self::clamped`].
    pub fn record(&mut self, at: Timestamp, latency: Duration) {
        self.record_value(at, latency);
    }

    /// Records the time so far of an operation that had not ended, `latency`, at `at`: a
    /// lower bound of its latency, counted in [`Self::censored`].
    pub fn record_censored(&mut self, at: Timestamp, latency: Duration) {
        let (value, window) = self.record_value(at, latency);
        window.censored.add(value);
        self.censored.add(value);
    }

    /// Records `latency` in the total and its window; returns the value recorded and the window.
    fn record_value(&mut self, at: Timestamp, latency: Duration) -> (u64, &mut Window) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let value = if micros > HIGHEST_MICROS {
            self.clamped += 1;
            HIGHEST_MICROS
        } else {
            micros
        };
        self.total.saturating_record(value);
        let window = self
            .windows
            .entry(window_start(at, self.window_micros))
            .or_default();
        window.histogram.saturating_record(value);
        (value, window)
    }

    /// Adds the latencies of `other`, for example another shard count's or another source's.
    pub fn merge(&mut self, other: &Self) -> Result<()> {
        if other.window != self.window {
            return Err(Error::WindowMismatch {
                ours: self.window,
                theirs: other.window,
            });
        }
        add(&mut self.total, &other.total);
        self.censored.merge(other.censored);
        for (start, from) in &other.windows {
            let into = self.windows.entry(*start).or_default();
            add(&mut into.histogram, &from.histogram);
            into.censored.merge(from.censored);
        }
        self.clamped += other.clamped;
        Ok(())
    }

    /// The length of the windows.
    #[must_use]
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The latencies recorded as [`HIGHEST`] because they were longer.
    #[must_use]
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// The censored latencies, counted in the total.
    #[must_use]
    pub fn censored(&self) -> u64 {
        self.censored.count
    }

    /// The percentiles of all latencies.
    #[must_use]
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of_censored(&self.total, self.censored)
    }

    /// The percentiles of each window with a latency in it, in time order.
    #[must_use]
    pub fn windows(&self) -> Vec<WindowPercentiles> {
        self.windows
            .iter()
            .map(|(&start, window)| WindowPercentiles::of(start, window))
            .collect()
    }

    /// Writes all latencies, censored ones included, as an HdrHistogram percentile
    /// distribution (`.hgrm`), in ms: its total count is [`LatencySummary::count`].
    pub fn write_hgrm(&self, out: &mut impl Write) -> io::Result<()> {
        write_percentile_distribution(&self.total, out)
    }
}

/// Percentiles of a latency histogram, in milliseconds. A percentile marked `_lower_bound` is
/// reached by a censored latency ([`is_lower_bound`]): the true one is at least that.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "a flag per percentile, as run.json and the CSV files show them"
)]
pub struct LatencySummary {
    /// Recorded latencies, censored ones included.
    pub count: u64,
    /// Censored latencies: times so far of operations that had not ended.
    pub censored: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// `p50_ms` is a lower bound.
    pub p50_lower_bound: bool,
    /// `p90_ms` is a lower bound.
    pub p90_lower_bound: bool,
    /// `p99_ms` is a lower bound.
    pub p99_lower_bound: bool,
    /// `p999_ms` is a lower bound.
    pub p999_lower_bound: bool,
    /// `max_ms` is a lower bound: some latency is censored.
    pub max_lower_bound: bool,
}

impl LatencySummary {
    /// Summarizes a histogram of latencies in microseconds, none censored; all zeros when it
    /// is empty.
    #[must_use]
    pub fn of(histogram: &Histogram<u64>) -> Self {
        Self::of_censored(histogram, Censored::default())
    }

    /// Summarizes a histogram of latencies in microseconds, `censored` of them censored.
    #[allow(clippy::similar_names, reason = "the percentiles' names")]
    fn of_censored(histogram: &Histogram<u64>, censored: Censored) -> Self {
        let percentile = |value: u64| (millis(value), is_lower_bound(value, censored.min_micros));
        let (p50_ms, p50_lower_bound) = percentile(histogram.value_at_quantile(0.5));
        let (p90_ms, p90_lower_bound) = percentile(histogram.value_at_quantile(0.9));
        let (p99_ms, p99_lower_bound) = percentile(histogram.value_at_quantile(0.99));
        let (p999_ms, p999_lower_bound) = percentile(histogram.value_at_quantile(0.999));
        let (max_ms, max_lower_bound) = percentile(histogram.max());
        Self {
            count: histogram.len(),
            censored: censored.count,
            p50_ms,
            p90_ms,
            p99_ms,
            p999_ms,
            max_ms,
            p50_lower_bound,
            p90_lower_bound,
            p99_lower_bound,
            p999_lower_bound,
            max_lower_bound,
        }
    }
}

/// Percentiles of the latencies of one window, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "a flag per percentile, as the CSV files show them"
)]
pub struct WindowPercentiles {
    /// The start of the window; it ends one window length later.
    pub start: Timestamp,
    /// Latencies recorded in the window, censored ones included.
    pub count: u64,
    /// Censored latencies in the window.
    pub censored: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// `p50_ms` is a lower bound ([`is_lower_bound`]).
    pub p50_lower_bound: bool,
    /// `p90_ms` is a lower bound.
    pub p90_lower_bound: bool,
    /// `p99_ms` is a lower bound.
    pub p99_lower_bound: bool,
    /// `max_ms` is a lower bound.
    pub max_lower_bound: bool,
}

impl WindowPercentiles {
    fn of(start: Timestamp, window: &Window) -> Self {
        let summary = LatencySummary::of_censored(&window.histogram, window.censored);
        Self {
            start,
            count: summary.count,
            censored: summary.censored,
            p50_ms: summary.p50_ms,
            p90_ms: summary.p90_ms,
            p99_ms: summary.p99_ms,
            max_ms: summary.max_ms,
            p50_lower_bound: summary.p50_lower_bound,
            p90_lower_bound: summary.p90_lower_bound,
            p99_lower_bound: summary.p99_lower_bound,
            max_lower_bound: summary.max_lower_bound,
        }
    }
}

/// An empty histogram of 1 µs to 1 h at 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
        .expect("the bounds are constants that HdrHistogram accepts")
}

/// Adds `from` into `into`; both come from [`histogram`], so `from` always fits.
fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    into.add(from)
        .expect("histograms with the same bounds always add");
}

/// The start of the window of `window_micros` that holds `at`, counted from the Unix epoch.
fn window_start(at: Timestamp, window_micros: i64) -> Timestamp {
    let micros = at.as_microsecond();
    // A start before the earliest timestamp cannot happen for any real clock; `at` stands in.
    Timestamp::from_microsecond(micros - micros.rem_euclid(window_micros)).unwrap_or(at)
}

fn millis(micros: u64) -> f64 {
    as_f64(micros) / 1000.0
}

/// Writes `histogram` (µs) as HdrHistogram's percentile distribution text, values in ms.
///
/// Hand-written because the hdrhistogram crate has no text output: it follows Java's
/// `AbstractHistogram.outputPercentileDistribution(out, 5, 1000.0)` column for column, which
/// HistogramLogProcessor and the HdrHistogram plotter read. The last row (100 %) has no
/// `1/(1-Percentile)` column, as there.
fn write_percentile_distribution(
    histogram: &Histogram<u64>,
    out: &mut impl Write,
) -> io::Result<()> {
    let digits = usize::from(histogram.sigfig());
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    let mut total = 0_u64;
    for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total = total.saturating_add(step.count_since_last_iteration());
        let value = millis(step.value_iterated_to());
        let percentile = step.quantile_iterated_to();
        if percentile < 1.0 {
            let inverse = 1.0 / (1.0 - percentile);
            writeln!(
                out,
                "{value:12.digits$} {percentile:2.12} {total:10} {inverse:14.2}"
            )?;
        } else {
            writeln!(out, "{value:12.digits$} {percentile:2.12} {total:10}")?;
        }
    }
    writeln!(
        out,
        "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]",
        histogram.mean() / 1000.0,
        histogram.stdev() / 1000.0
    )?;
    writeln!(
        out,
        "#[Max     = {:12.digits$}, Total count    = {:12}]",
        millis(histogram.max()),
        histogram.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        histogram.buckets(),
        sub_bucket_count(histogram.sigfig())
    )
}

/// HdrHistogram's sub-buckets per bucket: the power of two that gives unit resolution up to
/// 2 × 10^digits (the crate keeps the number private).
fn sub_bucket_count(significant_digits: u8) -> u32 {
    (2 * 10_u32.pow(u32::from(significant_digits))).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected / 500.0
    }

    fn recorder() -> LatencyRecorder {
        LatencyRecorder::new(DEFAULT_WINDOW).unwrap()
    }

    fn hgrm(recorder: &LatencyRecorder) -> String {
        let mut out = Vec::new();
        recorder.write_hgrm(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_window_must_be_at_least_a_microsecond() {
        assert!(matches!(
            LatencyRecorder::new(Duration::ZERO),
            Err(Error::Window { window }) if window == Duration::ZERO
        ));
        assert!(LatencyRecorder::new(Duration::from_nanos(999)).is_err());
        assert!(LatencyRecorder::new(Duration::MAX).is_err());
        assert_eq!(
            LatencyRecorder::new(Duration::from_micros(1))
                .unwrap()
                .window(),
            Duration::from_micros(1)
        );
    }

    #[test]
    fn a_summary_reports_percentiles_in_milliseconds() {
        let mut recorder = recorder();
        for millis in 1..=1000 {
            recorder.record(at(0), ms(millis));
        }
        let summary = recorder.summary();
        assert_eq!(summary.count, 1000);
        assert!(close(summary.p50_ms, 500.0), "{summary:?}");
        assert!(close(summary.p90_ms, 900.0), "{summary:?}");
        assert!(close(summary.p99_ms, 990.0), "{summary:?}");
        assert!(close(summary.p999_ms, 999.0), "{summary:?}");
        assert!(close(summary.max_ms, 1000.0), "{summary:?}");
    }

    #[test]
    fn an_empty_recorder_summarizes_to_zeros_and_has_no_windows() {
        let recorder = recorder();
        assert_eq!(
            recorder.summary(),
            LatencySummary {
                count: 0,
                censored: 0,
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                p999_ms: 0.0,
                max_ms: 0.0,
                p50_lower_bound: false,
                p90_lower_bound: false,
                p99_lower_bound: false,
                p999_lower_bound: false,
                max_lower_bound: false,
            }
        );
        assert!(recorder.windows().is_empty());
        assert_eq!(recorder.clamped(), 0);
    }

    #[test]
    fn a_single_latency_is_every_percentile() {
        let mut recorder = recorder();
        recorder.record(at(0), ms(42));
        let summary = recorder.summary();
        assert_eq!(summary.count, 1);
        for p in [
            summary.p50_ms,
            summary.p99_ms,
            summary.p999_ms,
            summary.max_ms,
        ] {
            assert!(close(p, 42.0), "{summary:?}");
        }
    }

    #[test]
    fn latencies_fall_into_windows_aligned_to_the_epoch() {
        let mut recorder = recorder();
        recorder.record(at(100), ms(1));
        recorder.record(at(109), ms(3));
        recorder.record(at(110), ms(50));
        recorder.record(at(135), ms(7));
        let windows = recorder.windows();
        let starts: Vec<_> = windows.iter().map(|w| w.start).collect();
        assert_eq!(starts, [at(100), at(110), at(130)]);
        let counts: Vec<_> = windows.iter().map(|w| w.count).collect();
        assert_eq!(counts, [2, 1, 1]);
        assert!(close(windows[0].max_ms, 3.0));
        assert!(close(windows[1].p99_ms, 50.0));
        assert_eq!(recorder.summary().count, 4);
    }

    #[test]
    fn a_window_start_is_inclusive_and_its_end_exclusive() {
        assert_eq!(window_start(at(20), 10_000_000), at(20));
        let just_before = Timestamp::from_microsecond(29_999_999).unwrap();
        assert_eq!(window_start(just_before, 10_000_000), at(20));
    }

    #[test]
    fn windows_before_the_epoch_start_at_or_before_their_latencies() {
        assert_eq!(window_start(at(-1), 10_000_000), at(-10));
        assert_eq!(window_start(at(-10), 10_000_000), at(-10));
    }

    #[test]
    fn windows_come_out_in_time_order_whatever_the_recording_order() {
        let mut recorder = recorder();
        recorder.record(at(50), ms(1));
        recorder.record(at(10), ms(1));
        let starts: Vec<_> = recorder.windows().iter().map(|w| w.start).collect();
        assert_eq!(starts, [at(10), at(50)]);
    }

    #[test]
    fn latencies_beyond_an_hour_are_clamped_and_counted() {
        let mut recorder = recorder();
        recorder.record(at(0), HIGHEST);
        recorder.record(at(0), Duration::from_secs(7200));
        recorder.record(at(0), Duration::MAX);
        assert_eq!(recorder.clamped(), 2);
        let summary = recorder.summary();
        assert_eq!(summary.count, 3);
        assert!(close(summary.max_ms, 3_600_000.0), "{summary:?}");
    }

    #[test]
    fn latencies_below_a_microsecond_are_recorded() {
        let mut recorder = recorder();
        recorder.record(at(0), Duration::ZERO);
        recorder.record(at(0), Duration::from_nanos(500));
        assert_eq!(recorder.summary().count, 2);
        assert_eq!(recorder.clamped(), 0);
    }

    #[test]
    fn merging_adds_totals_windows_and_clamped_counts() {
        let mut one = recorder();
        one.record(at(0), ms(10));
        one.record(at(0), Duration::from_secs(4000));
        let mut two = recorder();
        two.record(at(5), ms(20));
        two.record(at(25), ms(30));
        one.merge(&two).unwrap();
        assert_eq!(one.summary().count, 4);
        assert_eq!(one.clamped(), 1);
        let counts: Vec<_> = one.windows().iter().map(|w| (w.start, w.count)).collect();
        assert_eq!(counts, [(at(0), 3), (at(20), 1)]);
    }

    #[test]
    fn merging_an_empty_recorder_changes_nothing() {
        let mut one = recorder();
        one.record(at(0), ms(10));
        one.merge(&recorder()).unwrap();
        assert_eq!(one.summary().count, 1);
        assert_eq!(one.windows().len(), 1);
    }

    #[test]
    fn recorders_with_different_windows_do_not_merge() {
        let mut one = recorder();
        let two = LatencyRecorder::new(Duration::from_secs(5)).unwrap();
        assert!(matches!(
            one.merge(&two),
            Err(Error::WindowMismatch { ours, theirs })
                if ours == DEFAULT_WINDOW && theirs == Duration::from_secs(5)
        ));
    }

    #[test]
    fn a_single_latency_writes_hdrhistograms_percentile_distribution() {
        let mut recorder = recorder();
        recorder.record(at(0), ms(1));
        let expected = format!(
            "       Value     Percentile TotalCount 1/(1-Percentile)\n\
             \n       1.000 0.000000000000          1           1.00\
             \n       1.000 1.000000000000          1\
             \n#[Mean    =        1.000, StdDeviation   =        0.000]\
             \n#[Max     =        1.000, Total count    =            1]\
             \n#[Buckets = {:>12}, SubBuckets     =         2048]\n",
            recorder.total.buckets()
        );
        assert_eq!(hgrm(&recorder), expected);
    }

    #[test]
    fn a_distribution_climbs_to_the_last_row_at_one_hundred_percent() {
        let mut recorder = recorder();
        for millis in 1..=1000 {
            recorder.record(at(0), ms(millis));
        }
        let text = hgrm(&recorder);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(2)
            .take_while(|line| !line.starts_with('#'))
            .map(|line| line.split_whitespace().collect())
            .collect();
        assert!(rows.len() > 20, "{text}");
        let percentiles: Vec<f64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
        assert!(percentiles.windows(2).all(|p| p[0] <= p[1]), "{text}");
        assert!(
            rows[..rows.len() - 1].iter().all(|r| r.len() == 4),
            "{text}"
        );
        let last = rows.last().unwrap();
        assert_eq!(last[1..], ["1.000000000000", "1000"]);
        assert!(close(last[0].parse().unwrap(), 1000.0), "{text}");
        let median = rows.iter().find(|r| r[1] == "0.500000000000").unwrap();
        assert!(close(median[0].parse().unwrap(), 500.0), "{text}");
        assert_eq!(median[2], "500");
        assert_eq!(median[3], "2.00");
        assert!(text.contains("Total count    =         1000]"), "{text}");
    }

    #[test]
    fn an_empty_recorder_writes_the_header_and_the_trailer() {
        let text = hgrm(&recorder());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert_eq!(lines[1], "");
        assert_eq!(
            lines[2],
            "#[Mean    =        0.000, StdDeviation   =        0.000]"
        );
        assert_eq!(
            lines[3],
            "#[Max     =        0.000, Total count    =            0]"
        );
    }

    #[test]
    fn a_percentile_is_a_lower_bound_when_a_censored_latency_is_at_or_below_it() {
        assert!(is_lower_bound(5, Some(5)));
        assert!(is_lower_bound(5, Some(4)));
        assert!(!is_lower_bound(5, Some(6)));
        assert!(!is_lower_bound(5, None));
    }

    #[test]
    fn a_p99_reached_by_a_censored_latency_is_a_lower_bound() {
        // 98 writes reconciled in 1 s, 2 still pending after 5 s: of 100, the 99th is a
        // pending one, so the p99 is "≥ 5 s"; the median is exact. The old summary printed
        // "5 s" as if it were a measured latency.
        let mut recorder = recorder();
        for _ in 0..98 {
            recorder.record(at(0), ms(1000));
        }
        recorder.record_censored(at(0), ms(5000));
        recorder.record_censored(at(3), ms(5000));
        let summary = recorder.summary();
        assert_eq!((summary.count, summary.censored), (100, 2));
        assert!(close(summary.p99_ms, 5000.0), "{summary:?}");
        assert!(summary.p99_lower_bound && summary.max_lower_bound);
        assert!(close(summary.p90_ms, 1000.0), "{summary:?}");
        assert!(!summary.p50_lower_bound && !summary.p90_lower_bound);
        let windows = recorder.windows();
        assert_eq!((windows[0].count, windows[0].censored), (100, 2));
        assert!(windows[0].p99_lower_bound && !windows[0].p50_lower_bound);
    }

    #[test]
    fn censored_latencies_above_a_percentile_leave_it_exact() {
        // 99 reconciled in 1 s, 1 pending after 10 s: the p99 is the 99th, a reconciled 1 s,
        // and stays so whatever the pending one's true latency; only the max is a bound.
        let mut recorder = recorder();
        for _ in 0..99 {
            recorder.record(at(0), ms(1000));
        }
        recorder.record_censored(at(0), ms(10_000));
        let summary = recorder.summary();
        assert!(close(summary.p99_ms, 1000.0), "{summary:?}");
        assert!(!summary.p99_lower_bound, "{summary:?}");
        assert!(summary.max_lower_bound && close(summary.max_ms, 10_000.0));
        assert!(hgrm(&recorder).contains("Total count    =          100]"));
    }

    #[test]
    fn merging_keeps_the_censored_latencies_and_their_smallest() {
        let mut one = recorder();
        one.record(at(0), ms(10));
        let mut two = recorder();
        two.record_censored(at(0), ms(5));
        two.record_censored(at(20), ms(50));
        one.merge(&two).unwrap();
        assert_eq!(one.censored(), 2);
        let summary = one.summary();
        assert_eq!(summary.censored, 2);
        assert!(summary.p50_lower_bound, "{summary:?}");
        let windows = one.windows();
        assert_eq!((windows[0].censored, windows[1].censored), (1, 1));
    }

    #[test]
    fn three_significant_digits_take_2048_sub_buckets() {
        assert_eq!(sub_bucket_count(3), 2048);
        assert_eq!(sub_bucket_count(2), 256);
        assert_eq!(sub_bucket_count(0), 2);
    }
}
