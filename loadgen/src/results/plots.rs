//! PNG and SVG plots of a run: reconciliation latency and objects per shard over time, for each
//! shard count, and capacity and cost against the shard count.
//!
//! Text in the PNGs is rendered by ab_glyph from DejaVu Sans embedded in the binary (the
//! `dejavu` crate), so plotting needs no fontconfig or FreeType on the machine. Time is on the
//! x axis as seconds since the shard count's load started, computed from each sample's
//! timestamp, so series of different sources line up (docs/experiments.md#measurements) and
//! shard counts compare at the same point of their load (docs/experiments.md#plots).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use plotters::{
    coord::{Shift, types::RangedCoordf64},
    prelude::*,
    style::{FontStyle, register_font},
};

use super::{ComponentClass, RunResults, ShardCountResults, seconds_since};
use crate::{
    measure::{as_f64, failover::FailoverKind, movement::Change, prometheus::Quantile},
    units::{format_latency, mib},
};

/// The size of every plot, in pixels.
const SIZE: (u32, u32) = (1024, 576);
/// The font family plotters asks for by default; the embedded font is registered under it.
pub(crate) const FAMILY: &str = "sans-serif";

/// Writes `latency-<N>shards`, `objects-<N>shards`, `queue-<N>shards`, `latency-all` and
/// `scaling`, each as PNG and SVG; the last two per strategy, named like the stems
/// ([`RunResults::plot_name`]).
pub fn write_all(dir: &Path, results: &RunResults) -> anyhow::Result<Vec<PathBuf>> {
    register_embedded_font()?;
    let mut written = Vec::new();
    for shard_count in &results.shard_counts {
        let n = shard_count.stem();
        written.extend(render(
            dir,
            &format!("latency-{n}"),
            &LatencyPlot::of(results, shard_count),
        )?);
        written.extend(render(
            dir,
            &format!("objects-{n}"),
            &ObjectsPlot::of(shard_count),
        )?);
        written.extend(render(
            dir,
            &format!("queue-{n}"),
            &QueuePlot::of(results, shard_count),
        )?);
    }
    // A shard count's points of two strategies would be one above the other, not a curve.
    for strategy in results.strategies() {
        let part = results.under(strategy);
        written.extend(render(
            dir,
            &part.plot_name("latency-all"),
            &LatencyOverlay::of(&part),
        )?);
        written.extend(render(
            dir,
            &part.plot_name("scaling"),
            &ScalingPlot::of(&part),
        )?);
    }
    Ok(written)
}

/// Registers DejaVu Sans once per process; plotters keeps its fonts in a global registry.
fn register_embedded_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED
        .get_or_init(|| register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular()).is_ok());
    anyhow::ensure!(registered, "the embedded DejaVu Sans font cannot be parsed");
    Ok(())
}

/// A plot that draws on any backend, so one drawing makes both the PNG and the SVG.
pub(crate) trait Plot {
    /// Draws the plot on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static;
}

/// Draws `plot` into `<stem>.png` and `<stem>.svg` in `dir`, for a plot drawn on its own
/// (`loadgen plan`'s).
pub(crate) fn write_plot(dir: &Path, stem: &str, plot: &impl Plot) -> anyhow::Result<[PathBuf; 2]> {
    register_embedded_font()?;
    render(dir, stem, plot)
}

/// Draws `plot` into `<stem>.png` and `<stem>.svg` in `dir`.
fn render(dir: &Path, stem: &str, plot: &impl Plot) -> anyhow::Result<[PathBuf; 2]> {
    let png = dir.join(format!("{stem}.png"));
    {
        // The backends borrow the path until they are dropped.
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        plot.draw(&root)?;
        root.present()?;
    }
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        plot.draw(&root)?;
        root.present()?;
    }
    Ok([png, svg])
}

/// Draws the legend of `chart`'s labelled series at `position`, on a translucent white box.
pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// The top of an axis showing `values`: a tenth above the largest, and at least 1 so that an
/// empty or all-zero series still has an axis.
pub(crate) fn upper(values: impl IntoIterator<Item = f64>) -> f64 {
    values
        .into_iter()
        .fold(1.0, |top: f64, value| top.max(value * 1.1))
}

/// An x axis of shard counts from 0 to `max` and one more, and its number of ticks: shard
/// counts are whole, and an integer axis has no ticks between them.
pub(crate) fn shard_axis(max: u32) -> (std::ops::Range<u32>, usize) {
    (0..max + 1, usize::try_from(max).unwrap_or(usize::MAX) + 2)
}

/// The x range of one shard count's time series, in seconds since the run started: from its
/// first to its last sample (and a little room), so that each shard count's plot shows its own
/// part of the run while its times stay comparable with every other series.
fn time_range(times: impl IntoIterator<Item = f64>) -> std::ops::Range<f64> {
    let (first, last) = times
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(first, last), t| {
            (first.min(t), last.max(t))
        });
    if first > last {
        return 0.0..1.0;
    }
    first..last + ((last - first) * 0.02).max(1.0)
}

/// The lowest latency the log axes show: a window's percentile below it (zero when a window's
/// fastest reconciliations round to nothing) is drawn at it.
const LATENCY_FLOOR_SECONDS: f64 = 0.001;

/// The approximate width of the plotting area and of one character of a marker's label, in
/// pixels, to keep the labels of close markers apart.
const PLOT_WIDTH_PX: f64 = 930.0;
const LABEL_CHAR_PX: f64 = 7.0;
/// The height of a row of marker labels in pixels, and the most rows before they share one.
const LABEL_ROW_PX: f64 = 15.0;
const LABEL_ROWS: usize = 4;
/// Where a latency plot's legend starts in the plotting area, in pixels: right, below the
/// marker labels.
const LEGEND_LEFT_PX: i32 = 700;
const LEGEND_TOP_PX: i32 = 65;

/// A latency in milliseconds as seconds on a log axis, raised to [`LATENCY_FLOOR_SECONDS`].
fn plotted_seconds(ms: f64) -> f64 {
    (ms / 1000.0).max(LATENCY_FLOOR_SECONDS)
}

/// A log axis of whole decades that shows `values` (seconds), and one decade above the largest
/// for the markers' labels.
fn decades(values: impl IntoIterator<Item = f64>) -> std::ops::Range<f64> {
    let (low, high) = values
        .into_iter()
        .map(|value| value.max(LATENCY_FLOOR_SECONDS))
        .fold((f64::INFINITY, LATENCY_FLOOR_SECONDS), |(low, high), v| {
            (low.min(v), high.max(v))
        });
    let low = low.min(high);
    10f64.powf(low.log10().floor())..10f64.powf(high.log10().ceil() + 1.0)
}

/// A tick of a latency axis: milliseconds below a second, seconds above.
fn seconds_label(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1000.0)
    } else {
        format!("{seconds:.0} s")
    }
}

/// What happened to a shard count's shards during its load, marked on its latency plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EventKind {
    VoluntaryKill,
    InvoluntaryKill,
    RollingUpdate,
    Join,
    Leave,
}

impl EventKind {
    const ALL: [Self; 5] = [
        Self::VoluntaryKill,
        Self::InvoluntaryKill,
        Self::RollingUpdate,
        Self::Join,
        Self::Leave,
    ];

    fn legend(self) -> &'static str {
        match self {
            Self::VoluntaryKill => "voluntary kill (SIGTERM)",
            Self::InvoluntaryKill => "involuntary kill (SIGKILL)",
            Self::RollingUpdate => "rolling update",
            Self::Join => "shard joined",
            Self::Leave => "shard left",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Self::VoluntaryKill => RGBColor(230, 130, 0),
            Self::InvoluntaryKill => MAGENTA,
            Self::RollingUpdate => RGBColor(0, 140, 140),
            Self::Join => RGBColor(90, 90, 90),
            Self::Leave => RGBColor(160, 160, 160),
        }
    }
}

/// A vertical line with a short label at a time of a latency plot.
#[derive(Debug, Clone, PartialEq)]
struct Marker {
    /// Seconds since the load started.
    seconds: f64,
    kind: EventKind,
    label: String,
    /// The row of its label from the top, so that close labels do not overlap.
    row: usize,
}

/// The kills, rolling updates and membership changes of `shard_count`, in time order, their
/// labels all on the first row.
fn markers(shard_count: &ShardCountResults) -> Vec<Marker> {
    let since_load = |at| seconds_since(shard_count.load_started, at);
    let kills = shard_count.failovers.iter().map(|failover| {
        let (kind, verb) = match failover.kind {
            FailoverKind::Voluntary => (EventKind::VoluntaryKill, "stop"),
            FailoverKind::Involuntary => (EventKind::InvoluntaryKill, "kill"),
        };
        (
            since_load(failover.killed_at),
            kind,
            format!("{verb} {}", failover.shard),
        )
    });
    let updates = shard_count.rolling_updates.iter().map(|&at| {
        (
            since_load(at),
            EventKind::RollingUpdate,
            "rollout".to_owned(),
        )
    });
    let changes = shard_count.movements.iter().map(|change| {
        let (kind, label) = match &change.change {
            Change::Join { shard } => (EventKind::Join, format!("+{shard}")),
            Change::Leave { shard } => (EventKind::Leave, format!("−{shard}")),
        };
        (since_load(change.at), kind, label)
    });
    let mut markers: Vec<Marker> = kills
        .chain(updates)
        .chain(changes)
        .map(|(seconds, kind, label)| Marker {
            seconds,
            kind,
            label,
            row: 0,
        })
        .collect();
    markers.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    markers
}

/// Puts the labels of `markers` (in time order) on rows so that they do not overlap on an x
/// axis showing `range`.
fn stagger(markers: &mut [Marker], range: &std::ops::Range<f64>) {
    let seconds_per_char = (range.end - range.start) / PLOT_WIDTH_PX * LABEL_CHAR_PX;
    let rows = label_rows(markers.iter().map(|marker| {
        let chars = marker.label.chars().count() + 1;
        (marker.seconds, as_f64(chars as u64) * seconds_per_char)
    }));
    for (marker, row) in markers.iter_mut().zip(rows) {
        marker.row = row;
    }
}

/// The row of each label (start and width, in time order): the first row free by its start,
/// or, with [`LABEL_ROWS`] taken, the row that frees first.
fn label_rows(labels: impl IntoIterator<Item = (f64, f64)>) -> Vec<usize> {
    let mut ends: Vec<f64> = Vec::new();
    labels
        .into_iter()
        .map(|(start, width)| {
            let row = match ends.iter().position(|&end| end <= start) {
                Some(row) => row,
                None if ends.len() < LABEL_ROWS => {
                    ends.push(f64::NEG_INFINITY);
                    ends.len() - 1
                }
                None => (0..ends.len())
                    .min_by(|&a, &b| ends[a].total_cmp(&ends[b]))
                    .unwrap_or(0),
            };
            ends[row] = start + width;
            row
        })
        .collect()
}

/// The window starts of a shard count's latencies, in seconds since its load started.
fn latency_times(shard_count: &ShardCountResults) -> impl Iterator<Item = f64> + '_ {
    shard_count
        .reconciliation
        .windows()
        .into_iter()
        .map(|window| seconds_since(shard_count.load_started, window.start))
}

/// A chart of latency in seconds on a log axis against seconds since the load started.
type LatencyContext<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, LogCoord<f64>>>;

/// The chart of [`latency_chart`] and its y range.
type LatencyChart<'a, DB> = (LatencyContext<'a, DB>, std::ops::Range<f64>);

/// A latency chart: seconds since the load started against seconds on a log axis that shows
/// `latencies` and the reconciliation SLO, drawn as a dashed line.
fn latency_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x: std::ops::Range<f64>,
    latencies: impl Iterator<Item = f64>,
    slo_seconds: f64,
) -> anyhow::Result<LatencyChart<'a, DB>>
where
    DB::ErrorType: 'static,
{
    let y = decades(latencies.chain([slo_seconds]));
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FAMILY, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        // Just below the lowest decade, so that its tick is labelled too.
        .build_cartesian_2d(x.clone(), (y.start * 0.999..y.end).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds since the load started")
        .y_desc("latency (log scale)")
        .y_label_formatter(&|seconds| seconds_label(*seconds))
        .draw()?;
    let slo = format!("SLO: p99 ≤ {}", seconds_label(slo_seconds));
    chart
        .draw_series(DashedLineSeries::new(
            [(x.start, slo_seconds), (x.end, slo_seconds)],
            8,
            5,
            BLACK.stroke_width(2),
        ))?
        .label(slo.clone())
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    chart.draw_series(std::iter::once(
        EmptyElement::at((x.start, slo_seconds)) + Text::new(slo, (6, -16), (FAMILY, 13)),
    ))?;
    Ok((chart, y))
}

/// Reconciliation latency percentiles per window over the load, with its events marked.
struct LatencyPlot {
    shards: u32,
    slo_seconds: f64,
    range: std::ops::Range<f64>,
    /// Window start in seconds since the load started, and p50, p90 and p99 in seconds.
    points: Vec<(f64, [f64; 3])>,
    /// The points of `points` whose p99 is a lower bound: censored latencies reach it.
    lower_bound_p99s: Vec<(f64, f64)>,
    markers: Vec<Marker>,
}

impl LatencyPlot {
    fn of(results: &RunResults, shard_count: &ShardCountResults) -> Self {
        let points: Vec<(f64, [f64; 3])> = shard_count
            .reconciliation
            .windows()
            .iter()
            .zip(latency_times(shard_count))
            .map(|(window, seconds)| {
                (
                    seconds,
                    [window.p50_ms, window.p90_ms, window.p99_ms].map(plotted_seconds),
                )
            })
            .collect();
        let lower_bound_p99s = lower_bound_p99s(shard_count);
        let mut markers = markers(shard_count);
        let range = time_range(
            points
                .iter()
                .map(|(t, _)| *t)
                .chain(markers.iter().map(|m| m.seconds)),
        );
        stagger(&mut markers, &range);
        Self {
            shards: shard_count.shards,
            slo_seconds: results.scenario.slo.reconciliation_p99.as_secs_f64(),
            range,
            points,
            lower_bound_p99s,
            markers,
        }
    }
}

/// The window start (seconds since the load started) and p99 (seconds) of each window whose
/// p99 a censored latency reaches, so a plot can show that it is only a lower bound
/// (docs/experiments.md#reconciliation-latency).
fn lower_bound_p99s(shard_count: &ShardCountResults) -> Vec<(f64, f64)> {
    shard_count
        .reconciliation
        .windows()
        .iter()
        .zip(latency_times(shard_count))
        .filter(|(window, _)| window.p99_lower_bound)
        .map(|(window, seconds)| (seconds, plotted_seconds(window.p99_ms)))
        .collect()
}

/// Draws `points` as hollow circles of `color`: p99s that are lower bounds.
fn draw_lower_bounds<DB: DrawingBackend>(
    chart: &mut LatencyContext<'_, DB>,
    points: &[(f64, f64)],
    color: RGBAColor,
    legend: Option<&str>,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let series = chart.draw_series(
        points
            .iter()
            .map(|&point| Circle::new(point, 4, color.stroke_width(2))),
    )?;
    if let Some(legend) = legend {
        series
            .label(legend)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.stroke_width(2)));
    }
    Ok(())
}

/// The legend of [`draw_lower_bounds`].
const LOWER_BOUND_LEGEND: &str = "p99 ≥ (writes never seen reconciled reach it)";

impl Plot for LatencyPlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (mut chart, y) = latency_chart(
            root,
            &format!("Reconciliation latency, {} shards", self.shards),
            self.range.clone(),
            self.points.iter().flat_map(|(_, p)| p.iter().copied()),
            self.slo_seconds,
        )?;
        for (i, (name, color)) in [("p50", GREEN), ("p90", BLUE), ("p99", RED)]
            .into_iter()
            .enumerate()
        {
            chart
                .draw_series(LineSeries::new(
                    self.points.iter().map(|(t, p)| (*t, p[i])),
                    color.stroke_width(2),
                ))?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        if !self.lower_bound_p99s.is_empty() {
            draw_lower_bounds(
                &mut chart,
                &self.lower_bound_p99s,
                RED.to_rgba(),
                Some(LOWER_BOUND_LEGEND),
            )?;
        }
        // Each label row sits a fixed number of pixels below the top, a fixed ratio on the
        // log axis.
        let row_ratio = (y.end / y.start).powf(LABEL_ROW_PX / f64::from(SIZE.1 - 100));
        for kind in EventKind::ALL {
            let of_kind: Vec<&Marker> = self.markers.iter().filter(|m| m.kind == kind).collect();
            if of_kind.is_empty() {
                continue;
            }
            let color = kind.color();
            chart
                .draw_series(of_kind.iter().map(|marker| {
                    PathElement::new(
                        [(marker.seconds, y.start), (marker.seconds, y.end)],
                        color.stroke_width(1),
                    )
                }))?
                .label(kind.legend())
                .legend(move |(x, y)| PathElement::new([(x + 10, y - 6), (x + 10, y + 6)], color));
            chart.draw_series(of_kind.iter().map(|marker| {
                let top = y.end / row_ratio.powf(as_f64(marker.row as u64) + 0.2);
                EmptyElement::at((marker.seconds, top))
                    + Text::new(
                        marker.label.clone(),
                        (3, 0),
                        (FAMILY, 12).into_font().color(&color),
                    )
            }))?;
        }
        // The legend sits in the spare decade on top, below the rows of marker labels.
        draw_legend(
            &mut chart,
            SeriesLabelPosition::Coordinate(LEGEND_LEFT_PX, LEGEND_TOP_PX),
        )?;
        Ok(())
    }
}

/// The p99 of the reconciliation latency per window of every shard count, over one another.
struct LatencyOverlay {
    slo_seconds: f64,
    range: std::ops::Range<f64>,
    /// Per shard count: window start in seconds since its load started and the p99 in seconds.
    series: Vec<(u32, Vec<(f64, f64)>)>,
    /// Per shard count as in `series`: the points whose p99 is a lower bound.
    lower_bounds: Vec<Vec<(f64, f64)>>,
}

impl LatencyOverlay {
    fn of(results: &RunResults) -> Self {
        let series: Vec<(u32, Vec<(f64, f64)>)> = results
            .shard_counts
            .iter()
            .map(|count| {
                let points = count
                    .reconciliation
                    .windows()
                    .iter()
                    .zip(latency_times(count))
                    .map(|(window, seconds)| (seconds, plotted_seconds(window.p99_ms)))
                    .collect();
                (count.shards, points)
            })
            .collect();
        let lower_bounds = results.shard_counts.iter().map(lower_bound_p99s).collect();
        Self {
            slo_seconds: results.scenario.slo.reconciliation_p99.as_secs_f64(),
            range: time_range(
                series
                    .iter()
                    .flat_map(|(_, points)| points.iter().map(|p| p.0)),
            ),
            series,
            lower_bounds,
        }
    }
}

impl Plot for LatencyOverlay {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (mut chart, _) = latency_chart(
            root,
            "Reconciliation latency p99 per window, every shard count",
            self.range.clone(),
            self.series
                .iter()
                .flat_map(|(_, points)| points.iter().map(|p| p.1)),
            self.slo_seconds,
        )?;
        for (i, (shards, points)) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(if *shards == 1 {
                    "1 shard".to_owned()
                } else {
                    format!("{shards} shards")
                })
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        // One legend entry for the lower bounds of every shard count, in the first's colour.
        let mut legend = Some(LOWER_BOUND_LEGEND);
        for (i, points) in self.lower_bounds.iter().enumerate() {
            if points.is_empty() {
                continue;
            }
            draw_lower_bounds(
                &mut chart,
                points,
                Palette99::pick(i).to_rgba(),
                legend.take(),
            )?;
        }
        // The spare decade on top has room for the legend.
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}

/// Objects per shard over time, one line per shard.
struct ObjectsPlot {
    shards: u32,
    range: std::ops::Range<f64>,
    /// Per shard: seconds since the run started and its objects then.
    series: BTreeMap<String, Vec<(f64, f64)>>,
}

impl ObjectsPlot {
    fn of(shard_count: &ShardCountResults) -> Self {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (at, counts) in &shard_count.objects_per_shard {
            let t = seconds_since(shard_count.load_started, *at);
            for (shard, &objects) in counts {
                series
                    .entry(shard.clone())
                    .or_default()
                    .push((t, as_f64(objects)));
            }
        }
        Self {
            shards: shard_count.shards,
            range: time_range(
                shard_count
                    .objects_per_shard
                    .iter()
                    .map(|(at, _)| seconds_since(shard_count.load_started, *at)),
            ),
            series,
        }
    }
}

impl Plot for ObjectsPlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let top = upper(self.series.values().flatten().map(|(_, objects)| *objects));
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Objects per shard, {} shards", self.shards),
                (FAMILY, 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(self.range.clone(), 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the load started")
            .y_desc("objects")
            .draw()?;
        for (i, (shard, points)) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(shard)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        if !self.series.is_empty() {
            draw_legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        }
        Ok(())
    }
}

/// Capacity, CPU and memory against the shard count, in three panels.
struct ScalingPlot {
    max_shards: u32,
    /// The SLO of `capacity` ([`RunResults::scaling_slo`]).
    slo: Option<crate::measure::slo::Metric>,
    /// Shard count and the Websites at the first sustained breach of `slo`.
    capacity: Vec<(u32, f64)>,
    /// Shard count and capacity(1) × shard count, at every shard count of the run.
    ideal: Vec<(u32, f64)>,
    /// Per component class: shard count and CPU seconds.
    cpu: Vec<(ComponentClass, Vec<(u32, f64)>)>,
    /// Per component class: shard count and its peak memory in MiB (the peak of the sum).
    memory: Vec<(ComponentClass, Vec<(u32, f64)>)>,
}

/// Linear scaling from one shard: capacity(1) × N at each of `shards`; empty without a
/// capacity at 1 shard.
fn ideal_capacity(capacity: &[(u32, f64)], shards: &[u32]) -> Vec<(u32, f64)> {
    capacity
        .iter()
        .find(|(n, _)| *n == 1)
        .map_or_else(Vec::new, |&(_, single)| {
            shards.iter().map(|&n| (n, single * f64::from(n))).collect()
        })
}

impl ScalingPlot {
    fn of(results: &RunResults) -> Self {
        let mut counts: Vec<&ShardCountResults> = results.shard_counts.iter().collect();
        counts.sort_by_key(|count| count.shards);
        let classes: Vec<_> = counts
            .iter()
            .map(|count| (count.shards, count.class_costs()))
            .collect();
        let per_class = |value: fn(&super::ClassCost) -> f64| {
            ComponentClass::ALL
                .into_iter()
                .map(|class| {
                    let points = classes
                        .iter()
                        .map(|(shards, costs)| (*shards, costs.get(&class).map_or(0.0, value)))
                        .collect();
                    (class, points)
                })
                .collect()
        };
        let slo = results.scaling_slo();
        let capacity: Vec<(u32, f64)> = counts
            .iter()
            .filter_map(|count| Some((count.shards, count.capacity.of(slo?)?.load.websites)))
            .collect();
        let shards: Vec<u32> = counts.iter().map(|count| count.shards).collect();
        Self {
            slo,
            max_shards: shards.last().copied().unwrap_or(1),
            ideal: ideal_capacity(&capacity, &shards),
            capacity,
            cpu: per_class(|cost| cost.cpu_seconds),
            memory: per_class(|cost| mib(cost.peak_rss_bytes)),
        }
    }
}

impl Plot for ScalingPlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let panels = root.split_evenly((1, 3));
        let (x, x_labels) = shard_axis(self.max_shards);

        let mut capacity = ChartBuilder::on(&panels[0])
            .caption(
                format!(
                    "Capacity on the {} SLO",
                    self.slo.map_or("–", crate::measure::slo::Metric::name)
                ),
                (FAMILY, 18),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                x.clone(),
                0.0..upper(self.capacity.iter().chain(&self.ideal).map(|p| p.1)),
            )?;
        capacity
            .configure_mesh()
            .x_labels(x_labels)
            .x_desc("shards")
            .y_desc("capacity (objects)")
            .draw()?;
        capacity
            .draw_series(DashedLineSeries::new(
                self.ideal.iter().copied(),
                6,
                4,
                RGBColor(120, 120, 120).stroke_width(2),
            ))?
            .label("ideal: capacity(1) × N")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RGBColor(120, 120, 120)));
        capacity
            .draw_series(LineSeries::new(
                self.capacity.iter().copied(),
                BLUE.stroke_width(2),
            ))?
            .label("measured")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        capacity.draw_series(
            self.capacity
                .iter()
                .map(|&point| Circle::new(point, 4, BLUE.filled())),
        )?;
        draw_legend(&mut capacity, SeriesLabelPosition::UpperLeft)?;

        for (panel, title, unit, series) in [
            (&panels[1], "CPU", "CPU (seconds)", &self.cpu),
            (&panels[2], "Peak memory", "peak memory (MiB)", &self.memory),
        ] {
            let top = upper(
                series
                    .iter()
                    .flat_map(|(_, points)| points.iter().map(|p| p.1)),
            );
            let mut chart = ChartBuilder::on(panel)
                .caption(title, (FAMILY, 18))
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(x.clone(), 0.0..top)?;
            chart
                .configure_mesh()
                .x_labels(x_labels)
                .x_desc("shards")
                .y_desc(unit)
                .draw()?;
            for (i, (class, points)) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))?
                    .label(class.as_str())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
            }
            draw_legend(&mut chart, SeriesLabelPosition::MiddleRight)?;
        }
        Ok(())
    }
}

/// The queue latency's p99 per scrape interval over the load, on a log axis with the SLO line
/// (docs/experiments.md#queue-latency): a point where the histogram's bucket resolves it, the
/// bucket as a vertical bar where it does not.
struct QueuePlot {
    shards: u32,
    range: std::ops::Range<f64>,
    /// The objective, in seconds.
    slo: f64,
    /// Seconds since the load started, the p99 and its bucket's bounds (upper `+Inf` for the
    /// last bucket), in seconds.
    points: Vec<(f64, Quantile)>,
}

/// The lowest latency a log axis shows: below 1 ms the buckets do not resolve.
const QUEUE_AXIS_FLOOR: f64 = 1e-4;

impl QueuePlot {
    fn of(results: &RunResults, shard_count: &ShardCountResults) -> Self {
        let points: Vec<(f64, Quantile)> = shard_count
            .queue_windows
            .iter()
            .map(|window| {
                (
                    seconds_since(shard_count.load_started, window.start),
                    window.quantile,
                )
            })
            .collect();
        Self {
            shards: shard_count.shards,
            range: time_range(points.iter().map(|(t, _)| *t)),
            slo: results.scenario.slo.queue_p99.as_secs_f64(),
            points,
        }
    }

    /// The y range: a factor of 2 around the p99s, their finite bounds and the SLO, not below
    /// [`QUEUE_AXIS_FLOOR`].
    fn y_range(&self) -> std::ops::Range<f64> {
        let values = || {
            self.points
                .iter()
                .flat_map(|(_, q)| [q.value, q.lower, q.upper])
                .chain([self.slo])
                .filter(|v| v.is_finite() && *v > 0.0)
        };
        let low = values().fold(f64::INFINITY, f64::min) / 2.0;
        let high = values().fold(0.0, f64::max) * 2.0;
        low.max(QUEUE_AXIS_FLOOR)..high.max(QUEUE_AXIS_FLOOR * 10.0)
    }
}

impl Plot for QueuePlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let y = self.y_range();
        let clamp = |v: f64| v.clamp(y.start, y.end);
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Queue latency p99, {} shards", self.shards),
                (FAMILY, 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(self.range.clone(), y.clone().log_scale())?;
        chart
            .configure_mesh()
            .x_desc("seconds since the load started")
            .x_label_formatter(&|t| format!("{t:.0}"))
            .y_desc("p99")
            .y_label_formatter(&|v| format_latency(*v))
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                [(self.range.start, self.slo), (self.range.end, self.slo)],
                BLACK.stroke_width(2),
            ))?
            .label(format!("SLO: p99 ≤ {}", format_latency(self.slo)))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK));
        chart
            .draw_series(
                self.points
                    .iter()
                    .filter(|(_, q)| q.is_resolved())
                    .map(|(t, q)| Circle::new((*t, clamp(q.value)), 3, RED.filled())),
            )?
            .label("p99")
            .legend(|(x, y)| Circle::new((x + 10, y), 3, RED.filled()));
        chart
            .draw_series(
                self.points
                    .iter()
                    .filter(|(_, q)| !q.is_resolved())
                    .map(|(t, q)| {
                        PathElement::new(
                            [(*t, clamp(q.lower)), (*t, clamp(q.upper))],
                            BLUE.stroke_width(3),
                        )
                    }),
            )?
            .label("p99 somewhere in its bucket (wider than ±25 %)")
            .legend(|(x, y)| PathElement::new([(x + 10, y - 6), (x + 10, y + 6)], BLUE));
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::{START, at, synthetic};

    #[test]
    fn an_axis_has_room_above_the_largest_value_and_is_never_empty() {
        assert!((upper([10.0, 5.0]) - 11.0).abs() < 1e-9);
        assert!((upper([]) - 1.0).abs() < f64::EPSILON);
        assert!((upper([0.0]) - 1.0).abs() < f64::EPSILON);
    }

    /// Draws `plot` as SVG into a string, for tests of its text.
    fn svg(plot: &impl Plot) -> String {
        register_embedded_font().unwrap();
        let mut text = String::new();
        {
            let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
            plot.draw(&root).unwrap();
            root.present().unwrap();
        }
        text
    }

    /// Whether `svg` has a text element that reads `text`.
    fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    #[test]
    fn latency_is_placed_from_the_load_start_not_the_run_start() {
        let results = synthetic();
        // The run started at START, the load of this shard count 10 s later.
        let plot = LatencyPlot::of(&results, &results.shard_counts[0]);
        let times: Vec<f64> = plot.points.iter().map(|(t, _)| *t).collect();
        assert_eq!(times.first(), Some(&-10.0));
        assert_eq!(times.get(1), Some(&0.0));
        // The x axis spans this shard count's windows, with room after the last.
        assert!(plot.range.start <= -10.0);
        assert!(plot.range.end > *times.last().unwrap());
        assert_eq!(time_range([]), 0.0..1.0);
    }

    #[test]
    fn latency_is_in_seconds_raised_to_the_floor_of_the_log_axis() {
        assert!((plotted_seconds(346_030.1) - 346.0301).abs() < 1e-9);
        assert!((plotted_seconds(0.0) - LATENCY_FLOOR_SECONDS).abs() < f64::EPSILON);
        let results = synthetic();
        let plot = LatencyPlot::of(&results, &results.shard_counts[0]);
        // The fixture's first window holds 100 to 410 ms.
        assert!(
            (plot.points[0].1[2] - 0.41).abs() < 0.001,
            "{:?}",
            plot.points[0]
        );
        assert!((plot.slo_seconds - 5.0).abs() < f64::EPSILON);
    }

    #[test]
    fn a_log_axis_covers_its_values_in_whole_decades_with_one_to_spare_above() {
        let close = |a: std::ops::Range<f64>, b: std::ops::Range<f64>| {
            (a.start / b.start - 1.0).abs() < 1e-9 && (a.end / b.end - 1.0).abs() < 1e-9
        };
        assert!(close(decades([0.06, 31.7, 5.0]), 0.01..1000.0));
        assert!(close(decades([0.0, 5.0]), 0.001..100.0));
        assert!(close(decades([]), 0.001..0.01));
        assert_eq!(seconds_label(0.01), "10 ms");
        assert_eq!(seconds_label(5.0), "5 s");
    }

    #[test]
    fn kills_rollouts_and_membership_changes_are_marked_from_the_load_start() {
        let results = synthetic();
        // Killed at START + 40, joined at START + 60, rolled out at START + 70; the load
        // started at START + 10.
        let marks: Vec<(f64, EventKind, String)> = markers(&results.shard_counts[0])
            .into_iter()
            .map(|m| (m.seconds, m.kind, m.label))
            .collect();
        assert_eq!(
            marks,
            [
                (30.0, EventKind::InvoluntaryKill, "kill shard-0".to_owned()),
                (50.0, EventKind::Join, "+shard-new".to_owned()),
                (60.0, EventKind::RollingUpdate, "rollout".to_owned()),
            ]
        );
        let svg = svg(&LatencyPlot::of(&results, &results.shard_counts[0]));
        for text in [
            "SLO: p99 ≤ 5 s",
            "kill shard-0",
            "rollout",
            "involuntary kill (SIGKILL)",
        ] {
            assert!(has_text(&svg, text), "{text} is missing");
        }
    }

    #[test]
    fn labels_that_would_overlap_go_on_another_row() {
        // The second starts before the first ends; the third after; the fourth after the third.
        assert_eq!(
            label_rows([(0.0, 10.0), (5.0, 10.0), (12.0, 3.0), (20.0, 1.0)]),
            [0, 1, 0, 0]
        );
        // With every row taken, a label shares the row that frees first.
        let crowded = label_rows((0..=LABEL_ROWS).map(|i| (as_f64(i as u64) * 0.1, 10.0)));
        assert_eq!(crowded, [0, 1, 2, 3, 0]);
    }

    #[test]
    fn the_overlay_has_a_p99_series_per_shard_count() {
        let results = synthetic();
        let plot = LatencyOverlay::of(&results);
        let shards: Vec<u32> = plot.series.iter().map(|(n, _)| *n).collect();
        assert_eq!(shards, [1, 3]);
        assert_eq!(plot.series[1].1.len(), 12);
        assert!((plot.series[1].1[0].0 + 10.0).abs() < f64::EPSILON);
        let svg = svg(&plot);
        assert!(has_text(&svg, "1 shard") && has_text(&svg, "3 shards"));
    }

    #[test]
    fn a_p99_that_censored_latencies_reach_is_drawn_as_a_lower_bound() {
        let mut results = synthetic();
        let count = &mut results.shard_counts[1];
        assert!(lower_bound_p99s(count).is_empty());
        // Two writes still pending at the end, due in the fixture's third window: that
        // window's p99 is a lower bound, the others stay exact.
        for _ in 0..2 {
            count
                .reconciliation
                .record_censored(at(START + 25), std::time::Duration::from_secs(100));
        }
        let lower = lower_bound_p99s(count);
        assert_eq!(lower.len(), 1, "{lower:?}");
        assert!((lower[0].0 - 10.0).abs() < f64::EPSILON, "{lower:?}");
        assert!((lower[0].1 - 100.0).abs() < 1.0, "{lower:?}");
        for svg in [
            svg(&LatencyPlot::of(&results, &results.shard_counts[1])),
            svg(&LatencyOverlay::of(&results)),
        ] {
            assert!(has_text(&svg, LOWER_BOUND_LEGEND), "{svg}");
        }
        assert!(!has_text(
            &svg(&LatencyPlot::of(&results, &results.shard_counts[0])),
            LOWER_BOUND_LEGEND
        ));
    }

    #[test]
    fn the_ideal_line_is_one_shards_capacity_times_n() {
        assert_eq!(
            ideal_capacity(&[(1, 367.0), (2, 709.0), (3, 941.0)], &[1, 2, 3]),
            [(1, 367.0), (2, 734.0), (3, 1101.0)]
        );
        // Without a capacity at 1 shard there is nothing to scale from.
        assert!(ideal_capacity(&[(3, 941.0)], &[1, 2, 3]).is_empty());
    }

    #[test]
    fn objects_are_a_series_per_shard_in_seconds_since_the_load_started() {
        let mut results = synthetic();
        // A sample taken before the load's start lies left of zero rather than at index 0.
        results.shard_counts[1].load_started = at(START + 30);
        let plot = ObjectsPlot::of(&results.shard_counts[1]);
        assert_eq!(plot.series.len(), 3);
        let first: Vec<f64> = plot.series["shard-0"].iter().map(|p| p.0).collect();
        assert_eq!(first, [-30.0, 0.0, 30.0, 60.0]);
        assert!((plot.range.start + 30.0).abs() < f64::EPSILON);
    }

    #[test]
    fn scaling_has_a_capacity_point_per_breached_shard_count() {
        let plot = ScalingPlot::of(&synthetic());
        assert_eq!(plot.capacity, [(3, 3000.0)]);
        assert_eq!(plot.cpu.len(), ComponentClass::ALL.len());
        assert_eq!(plot.max_shards, 3);
        // 1 shard did not breach: no ideal line.
        assert!(plot.ideal.is_empty());
    }

    #[test]
    fn the_shard_axis_has_whole_ticks_only() {
        let mut results = synthetic();
        results.shard_counts[0].capacity = results.shard_counts[1].capacity;
        let plot = ScalingPlot::of(&results);
        assert_eq!(plot.ideal, [(1, 3000.0), (3, 9000.0)]);
        let svg = svg(&plot);
        assert!(has_text(&svg, "2") && has_text(&svg, "3"), "no whole ticks");
        assert!(
            !has_text(&svg, "1.5") && !has_text(&svg, "0.5") && !has_text(&svg, "2.0"),
            "a tick between shards or a fraction"
        );
        assert!(has_text(&svg, "ideal: capacity(1) × N"));
        assert!(has_text(&svg, "capacity (objects)"));
    }

    #[test]
    fn queue_windows_are_placed_from_the_load_start_on_a_range_holding_the_slo() {
        let results = synthetic();
        let plot = QueuePlot::of(&results, &results.shard_counts[1]);
        let times: Vec<f64> = plot.points.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, [0.0, 5.0]);
        assert!((plot.slo - 1.0).abs() < f64::EPSILON);
        // 0.18 s is the lowest value, 1 s (the SLO and the +Inf bucket's bound) the highest.
        let y = plot.y_range();
        assert!((y.start - 0.09).abs() < 1e-9, "{y:?}");
        assert!((y.end - 2.0).abs() < 1e-9, "{y:?}");
    }
}
