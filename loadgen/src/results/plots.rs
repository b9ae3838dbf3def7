//! PNG and SVG plots of a run: reconciliation latency and objects per shard over time, for each
//! shard count, and capacity and cost against the shard count.
//!
//! Text in the PNGs is rendered by ab_glyph from DejaVu Sans embedded in the binary (the
//! `dejavu` crate), so plotting needs no fontconfig or FreeType on the machine. Time is on the
//! x axis as seconds since the run started, computed from each sample's timestamp, so series of
//! different sources line up (docs/experiments.md#measurements).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::OnceLock,
};

use plotters::{
    coord::Shift,
    prelude::*,
    style::{FontStyle, register_font},
};

use super::{ComponentClass, RunResults, ShardCountResults, seconds_since};
use crate::{
    measure::{as_f64, prometheus::Quantile},
    units::{format_latency, mib},
};

/// The size of every plot, in pixels.
const SIZE: (u32, u32) = (1024, 576);
/// The font family plotters asks for by default; the embedded font is registered under it.
const FAMILY: &str = "sans-serif";

/// Writes `latency-<N>shards`, `objects-<N>shards`, `queue-<N>shards` and `scaling`, each as
/// PNG and SVG.
pub fn write_all(dir: &Path, results: &RunResults) -> anyhow::Result<Vec<PathBuf>> {
    register_embedded_font()?;
    let mut written = Vec::new();
    for shard_count in &results.shard_counts {
        let n = shard_count.shards;
        written.extend(render(
            dir,
            &format!("latency-{n}shards"),
            &LatencyPlot::of(results, shard_count),
        )?);
        written.extend(render(
            dir,
            &format!("objects-{n}shards"),
            &ObjectsPlot::of(results, shard_count),
        )?);
        written.extend(render(
            dir,
            &format!("queue-{n}shards"),
            &QueuePlot::of(results, shard_count),
        )?);
    }
    written.extend(render(dir, "scaling", &ScalingPlot::of(results))?);
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
trait Plot {
    /// Draws the plot on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static;
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

/// The top of an axis showing `values`: a tenth above the largest, and at least 1 so that an
/// empty or all-zero series still has an axis.
fn upper(values: impl IntoIterator<Item = f64>) -> f64 {
    values
        .into_iter()
        .fold(1.0, |top: f64, value| top.max(value * 1.1))
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

/// Reconciliation latency percentiles per window over time.
struct LatencyPlot {
    shards: u32,
    range: std::ops::Range<f64>,
    /// Window start in seconds since the run started, and p50, p90 and p99 in ms.
    points: Vec<(f64, [f64; 3])>,
}

impl LatencyPlot {
    fn of(results: &RunResults, shard_count: &ShardCountResults) -> Self {
        let points: Vec<(f64, [f64; 3])> = shard_count
            .reconciliation
            .windows()
            .iter()
            .map(|window| {
                (
                    seconds_since(results.started, window.start),
                    [window.p50_ms, window.p90_ms, window.p99_ms],
                )
            })
            .collect();
        Self {
            shards: shard_count.shards,
            range: time_range(points.iter().map(|(t, _)| *t)),
            points,
        }
    }
}

impl Plot for LatencyPlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let top = upper(self.points.iter().flat_map(|(_, p)| p.iter().copied()));
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("Reconciliation latency, {} shards", self.shards),
                (FAMILY, 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(self.range.clone(), 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the run started")
            .y_desc("latency (ms)")
            .draw()?;
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
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
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
    fn of(results: &RunResults, shard_count: &ShardCountResults) -> Self {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for (at, counts) in &shard_count.objects_per_shard {
            let t = seconds_since(results.started, *at);
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
                    .map(|(at, _)| seconds_since(results.started, *at)),
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
            .x_desc("seconds since the run started")
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
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        Ok(())
    }
}

/// Capacity, CPU and memory against the shard count, in three panels.
struct ScalingPlot {
    max_shards: f64,
    /// Shard count and the Websites at the first SLO breach.
    capacity: Vec<(f64, f64)>,
    /// Per component class: shard count and CPU seconds.
    cpu: Vec<(ComponentClass, Vec<(f64, f64)>)>,
    /// Per component class: shard count and the sum of peak memory in MiB.
    memory: Vec<(ComponentClass, Vec<(f64, f64)>)>,
}

impl ScalingPlot {
    fn of(results: &RunResults) -> Self {
        let mut counts: Vec<&ShardCountResults> = results.shard_counts.iter().collect();
        counts.sort_by_key(|count| count.shards);
        let classes: Vec<_> = counts
            .iter()
            .map(|count| (f64::from(count.shards), count.class_costs()))
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
        Self {
            max_shards: counts.last().map_or(1.0, |count| f64::from(count.shards)),
            capacity: counts
                .iter()
                .filter_map(|count| {
                    Some((
                        f64::from(count.shards),
                        count.capacity.reconciliation?.load.websites,
                    ))
                })
                .collect(),
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
        let x = 0.0..self.max_shards + 1.0;

        let mut capacity = ChartBuilder::on(&panels[0])
            .caption("Capacity at the first SLO breach", (FAMILY, 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x.clone(), 0.0..upper(self.capacity.iter().map(|p| p.1)))?;
        capacity
            .configure_mesh()
            .x_desc("shards")
            .y_desc("Websites")
            .draw()?;
        capacity.draw_series(LineSeries::new(
            self.capacity.iter().copied(),
            BLUE.stroke_width(2),
        ))?;
        capacity.draw_series(
            self.capacity
                .iter()
                .map(|&point| Circle::new(point, 4, BLUE.filled())),
        )?;

        for (panel, title, unit, series) in [
            (&panels[1], "CPU", "CPU seconds", &self.cpu),
            (&panels[2], "Peak memory", "MiB", &self.memory),
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
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
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
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
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

    #[test]
    fn latency_points_are_placed_by_their_timestamps() {
        let results = synthetic();
        let plot = LatencyPlot::of(&results, &results.shard_counts[0]);
        let times: Vec<f64> = plot.points.iter().map(|(t, _)| *t).collect();
        assert_eq!(times.first(), Some(&0.0));
        assert_eq!(times.get(1), Some(&10.0));
        // The x axis spans this shard count's windows, with room after the last.
        assert!(plot.range.start <= 0.0);
        assert!(plot.range.end > *times.last().unwrap());
        assert_eq!(time_range([]), 0.0..1.0);
    }

    #[test]
    fn objects_are_a_series_per_shard_in_seconds_since_the_start() {
        let mut results = synthetic();
        // A sample taken before the run's start lies left of zero rather than at index 0.
        results.started = at(START + 30);
        let plot = ObjectsPlot::of(&results, &results.shard_counts[1]);
        assert_eq!(plot.series.len(), 3);
        let first: Vec<f64> = plot.series["shard-0"].iter().map(|p| p.0).collect();
        assert_eq!(first, [-30.0, 0.0, 30.0, 60.0]);
        assert!((plot.range.start + 30.0).abs() < f64::EPSILON);
    }

    #[test]
    fn scaling_has_a_capacity_point_per_breached_shard_count() {
        let plot = ScalingPlot::of(&synthetic());
        assert_eq!(plot.capacity, [(3.0, 3000.0)]);
        assert_eq!(plot.cpu.len(), ComponentClass::ALL.len());
        assert!((plot.max_shards - 3.0).abs() < f64::EPSILON);
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
