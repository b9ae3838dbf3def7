//! `plan.png` and `plan.svg`: the measured capacity per shard count with its interval, the
//! fitted curve, the extrapolation and the capacity needed (docs/experiments.md#planning).

use std::path::{Path, PathBuf};

use plotters::{
    coord::{
        Shift,
        types::{RangedCoordf64, RangedCoordu32},
    },
    prelude::*,
};

use super::{Plan, Verdict};
use crate::results::plots::{FAMILY, Plot, draw_legend, shard_axis, upper, write_plot};

/// The legend of the measured medians and their intervals.
const MEASURED_LEGEND: &str = "measured: median, [low, high]";
/// The legend of the fitted curve beyond the largest measured shard count.
const EXTRAPOLATED_LEGEND: &str = "fitted, extrapolated";

/// Writes `plan.png` and `plan.svg` into `dir`.
pub fn write(dir: &Path, plan: &Plan) -> anyhow::Result<[PathBuf; 2]> {
    write_plot(dir, "plan", &PlanPlot::of(plan))
}

/// A chart with shard counts on x and capacity on y.
type ShardChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordu32, RangedCoordf64>>;

/// What the plan plot draws.
struct PlanPlot {
    /// Per measured shard count: its median, low and high.
    measured: Vec<(u32, f64, f64, f64)>,
    /// The fitted model's name and its capacity at 1 shard up to one past the largest
    /// measured or recommended shard count.
    fitted: Option<(&'static str, Vec<(u32, f64)>)>,
    /// The largest measured shard count: the fit beyond it is extrapolated.
    largest: u32,
    /// The recommended shard count and its predicted capacity, when extrapolated.
    extrapolated: Option<(u32, f64)>,
    /// The recommended shard count, when measured.
    recommended: Option<u32>,
    /// The capacity needed and the headroom it includes.
    needed: f64,
    headroom: f64,
}

impl PlanPlot {
    fn of(plan: &Plan) -> Self {
        let measured: Vec<(u32, f64, f64, f64)> = plan
            .curve
            .iter()
            .filter_map(|row| row.measured.as_ref())
            .filter(|point| point.is_measured())
            .map(|point| (point.shards, point.median, point.low, point.high))
            .collect();
        let largest = measured.iter().map(|point| point.0).max().unwrap_or(1);
        let top = largest.max(plan.verdict.shards().unwrap_or(0)) + 1;
        let fitted = plan.fit.as_ref().map(|fit| {
            (
                fit.chosen.name(),
                (1..=top)
                    .map(|shards| (shards, fit.predict(f64::from(shards))))
                    .collect(),
            )
        });
        let (extrapolated, recommended) = match plan.verdict {
            Verdict::Reachable { shards, .. } => (None, Some(shards)),
            Verdict::ReachableByExtrapolation {
                shards, predicted, ..
            } => (Some((shards, predicted)), None),
            Verdict::Unreachable { .. } => (None, None),
        };
        Self {
            measured,
            fitted,
            largest,
            extrapolated,
            recommended,
            needed: plan.needed,
            headroom: plan.target.headroom,
        }
    }

    /// The last shard count on the x axis.
    fn top(&self) -> u32 {
        self.fitted
            .as_ref()
            .and_then(|(_, points)| points.last().map(|point| point.0))
            .unwrap_or(self.largest + 1)
    }
}

impl PlanPlot {
    /// The fitted curve: solid up to the largest measured shard count, dashed beyond it.
    fn draw_fitted<'a, DB: DrawingBackend + 'a>(
        &self,
        chart: &mut ShardChart<'a, DB>,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let Some((model, points)) = &self.fitted else {
            return Ok(());
        };
        let fit_color = RGBColor(120, 120, 120);
        let inside = points
            .iter()
            .copied()
            .filter(|point| point.0 <= self.largest);
        chart
            .draw_series(LineSeries::new(inside, fit_color.stroke_width(2)))?
            .label(format!("fitted {model}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], fit_color));
        // The dashed part starts at the largest measured shard count, so the curve is
        // unbroken.
        let dashed = points
            .iter()
            .copied()
            .filter(|point| point.0 >= self.largest);
        chart
            .draw_series(DashedLineSeries::new(
                dashed,
                6,
                4,
                fit_color.stroke_width(2),
            ))?
            .label(EXTRAPOLATED_LEGEND)
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new([(0, 0), (8, 0)], fit_color)
                    + PathElement::new([(12, 0), (20, 0)], fit_color)
            });
        Ok(())
    }
}

impl Plot for PlanPlot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (x, x_labels) = shard_axis(self.top());
        let y_top = upper(
            self.measured
                .iter()
                .map(|point| point.3)
                .chain(
                    self.fitted
                        .iter()
                        .flat_map(|(_, points)| points.iter().map(|p| p.1)),
                )
                .chain([self.needed]),
        );
        let mut chart = ChartBuilder::on(root)
            .caption("Capacity against shards", (FAMILY, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x.clone(), 0.0..y_top)?;
        chart
            .configure_mesh()
            .x_labels(x_labels)
            .x_desc("shards")
            .y_desc("capacity (operations/s)")
            .draw()?;

        let needed_color = RED;
        chart
            .draw_series(LineSeries::new(
                [(x.start, self.needed), (x.end, self.needed)],
                needed_color.stroke_width(2),
            ))?
            .label(format!(
                "needed: {:.1} ops/s (churn + {:.0} % headroom)",
                self.needed,
                self.headroom * 100.0
            ))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], needed_color));

        self.draw_fitted(&mut chart)?;

        // An error bar: the interval as a vertical line, capped at both ends.
        chart
            .draw_series(self.measured.iter().map(|&(shards, _, low, high)| {
                PathElement::new([(shards, low), (shards, high)], BLUE.stroke_width(2))
            }))?
            .label(MEASURED_LEGEND)
            .legend(|(x, y)| Circle::new((x + 10, y), 4, BLUE.filled()));
        chart.draw_series(self.measured.iter().flat_map(|&(shards, _, low, high)| {
            [low, high].map(|end| {
                EmptyElement::at((shards, end))
                    + PathElement::new([(-6, 0), (6, 0)], BLUE.stroke_width(2))
            })
        }))?;
        chart.draw_series(
            self.measured
                .iter()
                .map(|&(shards, median, ..)| Circle::new((shards, median), 4, BLUE.filled())),
        )?;

        let label = |at: (u32, f64), text: String| {
            EmptyElement::at(at) + Text::new(text, (10, 4), (FAMILY, 14).into_font().color(&BLUE))
        };
        if let Some((shards, predicted)) = self.extrapolated {
            // Hollow: a prediction, not a measurement.
            chart.draw_series([Circle::new((shards, predicted), 6, BLUE.stroke_width(2))])?;
            chart.draw_series([label(
                (shards, predicted),
                format!("{shards} shards, extrapolated"),
            )])?;
        }
        let recommended = self
            .recommended
            .and_then(|shards| self.measured.iter().find(|point| point.0 == shards));
        if let Some(&(shards, median, ..)) = recommended {
            chart.draw_series([label(
                (shards, median),
                format!("{shards} shards, recommended"),
            )])?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{
        plan,
        tests::{linear_to_three, target},
    };

    #[test]
    fn the_plan_plot_is_written_as_png_and_svg_with_its_legend() {
        // 1 to 3 shards measured, 6 extrapolated (see the plan's tests).
        let plan = plan(target(400.0, 0.25), linear_to_three(), &[], None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let [png, svg] = write(dir.path(), &plan).unwrap();
        assert_eq!(png, dir.path().join("plan.png"));
        assert!(std::fs::metadata(&png).unwrap().len() > 0);
        let svg = std::fs::read_to_string(svg).unwrap();
        for label in [
            MEASURED_LEGEND,
            EXTRAPOLATED_LEGEND,
            "fitted linear",
            "needed: 500.0 ops/s (churn + 25 % headroom)",
            "6 shards, extrapolated",
        ] {
            assert!(svg.contains(label), "{label} is missing");
        }
    }

    #[test]
    fn the_fitted_curve_runs_one_past_the_recommendation_and_is_extrapolated_past_the_measured() {
        let plot = PlanPlot::of(&plan(target(400.0, 0.25), linear_to_three(), &[], None).unwrap());
        let (model, points) = plot.fitted.as_ref().unwrap();
        assert_eq!(*model, "linear");
        let shards: Vec<u32> = points.iter().map(|point| point.0).collect();
        assert_eq!(shards, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(plot.largest, 3);
        assert_eq!(plot.extrapolated, Some((6, 600.0)));
        assert_eq!(plot.measured[0], (1, 100.0, 90.0, 110.0));
        // Measured recommendation: labelled, nothing hollow.
        let plot = PlanPlot::of(&plan(target(100.0, 0.0), linear_to_three(), &[], None).unwrap());
        assert_eq!((plot.recommended, plot.extrapolated), (Some(2), None));
        assert_eq!(plot.top(), 4);
    }
}
