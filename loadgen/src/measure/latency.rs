//! Latency recorders: microsecond HdrHistograms in total and per fixed time window
//! (docs/experiments.md).
//!
//! A latency is recorded at the time it belongs to (for an open-loop operation, its intended
//! start), so a stall shows in the windows of the operations it delayed.

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
    windows: BTreeMap<Timestamp, Histogram<u64>>,
    clamped: u64,
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
            windows: BTreeMap::new(),
            clamped: 0,
        })
    }

    /// Records `latency` at `at`. Latencies beyond [`HIGHEST`] count as [`HIGHEST`] and are
    /// counted in [`Self::clamped`].
    pub fn record(&mut self, at: Timestamp, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let value = if micros > HIGHEST_MICROS {
            self.clamped += 1;
            HIGHEST_MICROS
        } else {
            micros
        };
        self.total.saturating_record(value);
        self.windows
            .entry(window_start(at, self.window_micros))
            .or_insert_with(histogram)
            .saturating_record(value);
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
        for (start, from) in &other.windows {
            add(self.windows.entry(*start).or_insert_with(histogram), from);
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

    /// The percentiles of all latencies.
    #[must_use]
    pub fn summary(&self) -> LatencySummary {
        LatencySummary::of(&self.total)
    }

    /// The percentiles of each window with a latency in it, in time order.
    #[must_use]
    pub fn windows(&self) -> Vec<WindowPercentiles> {
        self.windows
            .iter()
            .map(|(&start, histogram)| WindowPercentiles::of(start, histogram))
            .collect()
    }

    /// Writes all latencies as an HdrHistogram percentile distribution (`.hgrm`), in ms.
    pub fn write_hgrm(&self, out: &mut impl Write) -> io::Result<()> {
        write_percentile_distribution(&self.total, out)
    }
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Recorded latencies.
    pub count: u64,
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
}

impl LatencySummary {
    /// Summarizes a histogram of latencies in microseconds; all zeros when it is empty.
    #[must_use]
    pub fn of(histogram: &Histogram<u64>) -> Self {
        Self {
            count: histogram.len(),
            p50_ms: millis(histogram.value_at_quantile(0.5)),
            p90_ms: millis(histogram.value_at_quantile(0.9)),
            p99_ms: millis(histogram.value_at_quantile(0.99)),
            p999_ms: millis(histogram.value_at_quantile(0.999)),
            max_ms: millis(histogram.max()),
        }
    }
}

/// Percentiles of the latencies of one window, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowPercentiles {
    /// The start of the window; it ends one window length later.
    pub start: Timestamp,
    /// Latencies recorded in the window.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl WindowPercentiles {
    fn of(start: Timestamp, histogram: &Histogram<u64>) -> Self {
        let summary = LatencySummary::of(histogram);
        Self {
            start,
            count: summary.count,
            p50_ms: summary.p50_ms,
            p90_ms: summary.p90_ms,
            p99_ms: summary.p99_ms,
            max_ms: summary.max_ms,
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
                p50_ms: 0.0,
                p90_ms: 0.0,
                p99_ms: 0.0,
                p999_ms: 0.0,
                max_ms: 0.0
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
    fn three_significant_digits_take_2048_sub_buckets() {
        assert_eq!(sub_bucket_count(3), 2048);
        assert_eq!(sub_bucket_count(2), 256);
        assert_eq!(sub_bucket_count(0), 2);
    }
}
