//! `loadgen compare`: runs, or the shard counts of one sweep, side by side as ratios with their
//! intervals, and a gate on regressions for CI.
//!
//! Each argument is a run directory written by `loadgen experiment` (`results/<run-id>/`, see
//! [`crate::results`]); compare reads its `run.json` for the run's name and its `summary.csv` for
//! the figures of each shard count (docs/experiments.md), by column name, so that columns added to
//! the summary later are ignored and columns missing from older runs read as not measured.
//!
//! `summary.csv` has a row per shard count and repetition (columns `repetition`, 1-based, and
//! `valid`); a run without them has one valid repetition per shard count. Each figure of a shard
//! count is the median over its valid repetitions with an interval, and each ratio to the
//! baseline comes with its interval and whether it is significant
//! (docs/experiments.md#repetitions-and-intervals). Invalid repetitions are counted and left
//! out.
//!
//! The baseline of a row:
//! - with one run, its smallest shard count, so a sweep reads as scaling from its first step;
//! - with several runs, the first run's row of the same shard count. A shard count the first
//!   run did not measure gets no baseline and no ratios: a ratio to another shard count of
//!   another run would mix the two differences and attribute both to the run.
//!
//! Ratios are `value / baseline` for every figure alike; each figure says which way it improves
//! ([`Better`]), which marks a significant ratio as better or worse and decides what
//! `--fail-on-regression` counts as a regression.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs::File,
    io::{Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, anyhow, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::{
    gate::{self, EXIT_STATUS_HELP},
    measure::stats::{self, Interval, RatioInterval},
    report::{Report, ReportFormat},
    results::summary::{Better, Columns as _, Metric, SummaryRow, Unit},
    units::BYTES_PER_MIB,
};

/// Arguments of `loadgen compare`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_STATUS_HELP)]
pub struct CompareArgs {
    /// Run directories (`results/<run-id>/`), each with run.json and summary.csv; the first
    /// is the baseline.
    #[arg(value_name = "RUN_DIR", required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,

    /// Output format of the comparison: a Markdown table or JSON.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,

    /// Exit with status 3 when a figure of some shard count is significantly worse than its
    /// baseline by more than PCT percent (e.g. 10): the end of its ratio's interval nearest to
    /// no change lies above 1 + PCT/100 for a lower-is-better figure, below 1 − PCT/100 for a
    /// higher-is-better one (capacity).
    #[arg(long, value_name = "PCT", value_parser = regression_threshold, allow_negative_numbers = true)]
    pub fail_on_regression: Option<f64>,
}

/// Parses `--fail-on-regression`: a percentage greater than 0.
fn regression_threshold(text: &str) -> Result<f64, String> {
    let percent: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a percentage"))?;
    if percent.is_finite() && percent > 0.0 {
        Ok(percent)
    } else {
        Err(format!("must be a percentage greater than 0, got `{text}`"))
    }
}

/// Reads the runs, writes their comparison to `out`, then fails with [`gate::CheckFailed`]
/// when `--fail-on-regression` found a regression.
pub fn run(args: &CompareArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.runs.is_empty() {
        bail!("no run directory to compare");
    }
    if args.fail_on_regression.is_some() && args.runs.len() < 2 {
        // Within one run the baseline is another shard count, whose figures differ by design.
        bail!(
            "--fail-on-regression checks runs against the first: give a baseline run and at \
             least one more, not {} alone",
            args.runs[0].display()
        );
    }
    let runs = args
        .runs
        .iter()
        .map(|dir| Run::read(dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let comparison = Comparison::of(&runs, args.fail_on_regression);
    crate::report::write(args.format, out, &comparison)?;
    // The report goes out before the verdict that refers to it.
    out.flush()?;
    gate::check(comparison.gate.map_or_else(Vec::new, |gate| gate.reasons()))?;
    Ok(())
}

/// The figures compared, in the order of the tables.
const METRICS: &[Metric] = SummaryRow::METRICS;

/// One run directory as read from disk.
#[derive(Debug)]
pub(crate) struct Run {
    dir: PathBuf,
    /// `run_id` of `run.json`.
    id: String,
    scenario: String,
    /// Ordered by shard count.
    pub(crate) shard_counts: Vec<ShardCount>,
}

/// The part of `run.json` that compare needs; the rest is ignored.
#[derive(Debug, Deserialize)]
struct RunJson {
    run_id: String,
    scenario: ScenarioJson,
}

/// The part of `run.json`'s scenario that compare needs.
#[derive(Debug, Deserialize)]
struct ScenarioJson {
    name: String,
}

/// The repetitions of one shard count, from the rows of `summary.csv`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ShardCount {
    pub(crate) shards: u32,
    /// Ordered by repetition number.
    pub(crate) repetitions: Vec<Repetition>,
}

/// The figures of one repetition of a shard count: a row of `summary.csv`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Repetition {
    /// 1-based.
    number: u32,
    /// Whether the measurement was valid; an invalid one is left out of every figure.
    valid: bool,
    /// The measured figures of [`METRICS`], by column; an empty field is absent.
    values: BTreeMap<&'static str, f64>,
}

impl ShardCount {
    /// The values of `column` over the valid repetitions that measured it.
    pub(crate) fn samples(&self, column: &str) -> Vec<f64> {
        self.repetitions
            .iter()
            .filter(|repetition| repetition.valid)
            .filter_map(|repetition| repetition.values.get(column).copied())
            .collect()
    }

    /// The numbers of the invalid repetitions.
    fn excluded(&self) -> Vec<u32> {
        self.repetitions
            .iter()
            .filter(|repetition| !repetition.valid)
            .map(|repetition| repetition.number)
            .collect()
    }

    /// Whether some repetition, valid or not, measured `column`.
    fn measured(&self, column: &str) -> bool {
        self.repetitions
            .iter()
            .any(|repetition| repetition.values.contains_key(column))
    }
}

impl Run {
    /// Reads the run directory `dir`.
    pub(crate) fn read(dir: &Path) -> anyhow::Result<Self> {
        let metadata = std::fs::metadata(dir)
            .with_context(|| format!("cannot read the run directory {}", dir.display()))?;
        if !metadata.is_dir() {
            bail!(
                "{} is not a run directory (one with run.json and summary.csv)",
                dir.display()
            );
        }
        let run_json_path = dir.join("run.json");
        let text = std::fs::read_to_string(&run_json_path)
            .with_context(|| format!("cannot read {}", run_json_path.display()))?;
        let run_json: RunJson = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid run.json", run_json_path.display()))?;
        let summary_path = dir.join("summary.csv");
        let summary = File::open(&summary_path)
            .with_context(|| format!("cannot read {}", summary_path.display()))?;
        Ok(Self {
            dir: dir.to_owned(),
            id: run_json.run_id,
            scenario: run_json.scenario.name,
            shard_counts: read_summary(summary, &summary_path)?,
        })
    }
}

/// Parses a `summary.csv` read from `input`; `path` names it in errors. Shard counts come back
/// ordered, each with its repetitions ordered.
fn read_summary(input: impl Read, path: &Path) -> anyhow::Result<Vec<ShardCount>> {
    let file = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .with_context(|| format!("cannot read the header of {file}"))?
        .clone();
    let position = |name: &str| headers.iter().position(|header| header == name);
    let shards_at = position("shards").ok_or_else(|| {
        let header: Vec<&str> = headers.iter().collect();
        anyhow!(
            "{file} has no `shards` column; its header is `{}`",
            header.join(",")
        )
    })?;
    let (repetition_at, valid_at) = (position("repetition"), position("valid"));
    let strategy_at = position("strategy");
    let mut strategies: Vec<String> = Vec::new();
    let columns: Vec<(&'static str, usize)> = METRICS
        .iter()
        .filter_map(|metric| Some((metric.column, position(metric.column)?)))
        .collect();

    let mut shard_counts: BTreeMap<u32, Vec<Repetition>> = BTreeMap::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("cannot read {file}"))?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |at: usize| record.get(at).unwrap_or_default();
        if let Some(strategy) = strategy_at.map(field)
            && !strategies.iter().any(|known| known == strategy)
        {
            strategies.push(strategy.to_owned());
        }
        if strategies.len() > 1 {
            bail!(
                "{file} holds runs under several assignment strategies ({}): compare reads runs \
                 of one strategy; the run's report.md sets its strategies side by side \
                 (docs/experiments.md#strategies-side-by-side)",
                strategies.join(", ")
            );
        }
        let shards = field(shards_at);
        let shards: u32 = shards.parse().map_err(|_| {
            anyhow!("{file}, line {line}: `shards` is `{shards}`, not a number of shards")
        })?;
        let number = match repetition_at.map(field) {
            None => 1,
            Some(text) => text.parse().ok().filter(|&n: &u32| n >= 1).ok_or_else(|| {
                anyhow!("{file}, line {line}: `repetition` is `{text}`, not a repetition number (1, 2, …)")
            })?,
        };
        let valid = match valid_at.map(field) {
            None | Some("true") => true,
            Some("false") => false,
            Some(text) => {
                bail!("{file}, line {line}: `valid` is `{text}`, not `true` or `false`")
            }
        };
        let mut values = BTreeMap::new();
        for &(column, at) in &columns {
            let value = field(at);
            if !value.is_empty() {
                let value = value
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(|| {
                        anyhow!("{file}, line {line}: `{column}` is `{value}`, not a finite number")
                    })?;
                values.insert(column, value);
            }
        }
        let repetitions = shard_counts.entry(shards).or_default();
        if repetitions
            .iter()
            .any(|repetition| repetition.number == number)
        {
            bail!("{file}, line {line}: a second row for {shards} shards, repetition {number}");
        }
        repetitions.push(Repetition {
            number,
            valid,
            values,
        });
    }
    if shard_counts.is_empty() {
        bail!("{file} has no rows: the run measured no shard count");
    }
    Ok(shard_counts
        .into_iter()
        .map(|(shards, mut repetitions)| {
            repetitions.sort_by_key(|repetition| repetition.number);
            ShardCount {
                shards,
                repetitions,
            }
        })
        .collect())
}

/// The comparison of the runs: a row per run and shard count, with ratios to its baseline.
#[derive(Debug, Serialize)]
struct Comparison {
    /// The runs in argument order; the first is the baseline.
    runs: Vec<RunInfo>,
    /// The figures compared (optional ones only when measured), in table order.
    metrics: Vec<&'static Metric>,
    rows: Vec<Row>,
    /// The regression check, with `--fail-on-regression`.
    gate: Option<Gate>,
}

/// A run of the comparison.
#[derive(Debug, Serialize)]
struct RunInfo {
    run_id: String,
    scenario: String,
    dir: PathBuf,
}

/// One shard count of one run.
#[derive(Debug, Serialize)]
struct Row {
    run_id: String,
    shards: u32,
    /// The repetitions in `summary.csv`, valid or not.
    repetitions: usize,
    /// The numbers of the invalid repetitions, left out of every figure.
    excluded: Vec<u32>,
    /// Whether this is a row of the baseline, which has no ratios.
    is_baseline: bool,
    /// The row its ratios are to; itself for a baseline, none without one.
    baseline: Option<RowRef>,
    /// Each compared figure by column, in the unit of `summary.csv`.
    figures: BTreeMap<&'static str, Figure>,
}

impl Row {
    /// The valid repetitions.
    fn valid(&self) -> usize {
        self.repetitions - self.excluded.len()
    }
}

/// A row named by its run and shard count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct RowRef {
    run_id: String,
    shards: u32,
}

/// A figure over the valid repetitions and its ratio to the baseline's; either may be missing
/// (not measured, no valid repetition, no baseline, or a baseline of zero).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct Figure {
    value: Option<Interval>,
    ratio: Option<RatioInterval>,
}

impl Figure {
    /// The figure of `samples`, with its ratio to `baseline` when given.
    fn of(samples: &[f64], baseline: Option<&[f64]>) -> Self {
        Self {
            value: stats::interval(samples),
            ratio: baseline.and_then(|baseline| stats::ratio(baseline, samples)),
        }
    }
}

/// The outcome of `--fail-on-regression`.
#[derive(Debug, Serialize)]
struct Gate {
    /// PCT: how much worse a figure may be, in percent.
    threshold_percent: f64,
    /// Ratios judged: of rows other than the baseline, on figures that improve one way, with
    /// an interval (2 or more valid repetitions on both sides).
    checked: usize,
    /// Figures of rows other than the baseline that have a value but could not be judged: no
    /// baseline, a baseline of zero, or a single valid repetition on a side.
    unchecked: usize,
    /// The figures worse by more than the threshold.
    regressions: Vec<Regression>,
}

/// A figure significantly worse than its baseline by more than the threshold.
#[derive(Debug, Serialize)]
struct Regression {
    run_id: String,
    shards: u32,
    column: &'static str,
    label: &'static str,
    baseline: RowRef,
    ratio: RatioInterval,
}

/// Whether `ratio` shows a figure that improves as `better` says significantly worse than its
/// baseline by more than `threshold` (a fraction: 0.1 for 10 %): the end of its interval
/// nearest to no change lies beyond `1 + threshold` (lower-is-better) or below `1 − threshold`
/// (higher-is-better). Every ratio the repetitions allow is then worse by more than the
/// threshold, not only the median's.
fn regressed(ratio: &RatioInterval, better: Better, threshold: f64) -> bool {
    ratio.significant
        && match better {
            Better::Lower => ratio.low > 1.0 + threshold,
            Better::Higher => ratio.high < 1.0 - threshold,
            Better::Neither => false,
        }
}

impl Gate {
    /// Judges every ratio of `rows` against `threshold_percent`.
    fn of(rows: &[Row], metrics: &[&'static Metric], threshold_percent: f64) -> Self {
        let threshold = threshold_percent / 100.0;
        let mut gate = Self {
            threshold_percent,
            checked: 0,
            unchecked: 0,
            regressions: Vec::new(),
        };
        for row in rows.iter().filter(|row| !row.is_baseline) {
            for metric in metrics.iter().filter(|m| m.better != Better::Neither) {
                let Some(figure) = row.figures.get(metric.column) else {
                    continue;
                };
                let judged = figure
                    .ratio
                    .filter(|ratio| ratio.method != stats::IntervalMethod::Single);
                match (figure.value, judged, &row.baseline) {
                    (None, _, _) => {}
                    (Some(_), Some(ratio), Some(baseline)) => {
                        gate.checked += 1;
                        if regressed(&ratio, metric.better, threshold) {
                            gate.regressions.push(Regression {
                                run_id: row.run_id.clone(),
                                shards: row.shards,
                                column: metric.column,
                                label: metric.label,
                                baseline: baseline.clone(),
                                ratio,
                            });
                        }
                    }
                    (Some(_), _, _) => gate.unchecked += 1,
                }
            }
        }
        gate
    }

    /// A sentence per regression, naming the rows and the figure.
    fn reasons(&self) -> Vec<String> {
        self.regressions
            .iter()
            .map(|regression| {
                format!(
                    "{} of `{}` at {} is {} that of `{}` at {}: worse by more than {} %",
                    regression.label,
                    regression.run_id,
                    shards(regression.shards),
                    regression.ratio.render(),
                    regression.baseline.run_id,
                    shards(regression.baseline.shards),
                    self.threshold_percent,
                )
            })
            .collect()
    }
}

/// The baseline of a row of `shards` shards, always a shard count of the first run (see the
/// module documentation for the rule).
fn baseline_of(runs: &[Run], shards: u32) -> Option<&ShardCount> {
    let first = runs.first()?;
    if runs.len() == 1 {
        // Shard counts are ordered, so the first is the smallest.
        first.shard_counts.first()
    } else {
        first
            .shard_counts
            .iter()
            .find(|shard_count| shard_count.shards == shards)
    }
}

/// The metrics shown: every one that is not optional, and the optional ones some repetition
/// has.
fn shown_metrics(runs: &[Run]) -> Vec<&'static Metric> {
    METRICS
        .iter()
        .filter(|metric| {
            !metric.optional
                || runs
                    .iter()
                    .flat_map(|run| &run.shard_counts)
                    .any(|shard_count| shard_count.measured(metric.column))
        })
        .collect()
}

impl Comparison {
    /// The comparison of `runs`, with the regression check when `threshold_percent` is given.
    fn of(runs: &[Run], threshold_percent: Option<f64>) -> Self {
        let metrics = shown_metrics(runs);
        let row_of = |run: &Run, shard_count: &ShardCount| {
            let baseline = baseline_of(runs, shard_count.shards);
            let is_baseline = baseline.is_some_and(|baseline| std::ptr::eq(baseline, shard_count));
            let figures = metrics
                .iter()
                .map(|metric| {
                    let baseline = baseline
                        .filter(|_| !is_baseline)
                        .map(|baseline| baseline.samples(metric.column));
                    let figure =
                        Figure::of(&shard_count.samples(metric.column), baseline.as_deref());
                    (metric.column, figure)
                })
                .collect();
            Row {
                run_id: run.id.clone(),
                shards: shard_count.shards,
                repetitions: shard_count.repetitions.len(),
                excluded: shard_count.excluded(),
                is_baseline,
                baseline: baseline.map(|baseline| RowRef {
                    run_id: runs[0].id.clone(),
                    shards: baseline.shards,
                }),
                figures,
            }
        };
        let rows: Vec<Row> = runs
            .iter()
            .flat_map(|run| {
                run.shard_counts
                    .iter()
                    .map(move |shard_count| (run, shard_count))
            })
            .map(|(run, shard_count)| row_of(run, shard_count))
            .collect();
        Self {
            runs: runs
                .iter()
                .map(|run| RunInfo {
                    run_id: run.id.clone(),
                    scenario: run.scenario.clone(),
                    dir: run.dir.clone(),
                })
                .collect(),
            gate: threshold_percent.map(|threshold| Gate::of(&rows, &metrics, threshold)),
            metrics,
            rows,
        }
    }
}

impl Report for Comparison {
    fn table(&self) -> String {
        let mut text = String::new();
        let Some(baseline) = self.runs.first() else {
            return text;
        };
        // Writing to a `String` cannot fail.
        let _ = writeln!(text, "Runs:");
        for (i, run) in self.runs.iter().enumerate() {
            let _ = writeln!(
                text,
                "- {} (scenario {}) in {}{}",
                code(&run.run_id),
                code(&run.scenario),
                code(&run.dir.display().to_string()),
                if i == 0 { ": the baseline" } else { "" }
            );
        }
        let _ = writeln!(
            text,
            "\n{} Each figure is the median over the valid repetitions with its interval: a 95 % \
             bootstrap with 5 or more, the minimum to the maximum with 2 to 4, none with 1. A \
             ratio is the median over the baseline's with its interval; **better** or **worse** \
             marks one whose interval excludes 1 (docs/experiments.md#repetitions-and-intervals).\n",
            if self.runs.len() == 1 {
                format!(
                    "Ratios are to the smallest shard count of {}.",
                    code(&baseline.run_id)
                )
            } else {
                format!(
                    "Ratios are to the same shard count of {}; shard counts it did not measure have none.",
                    code(&baseline.run_id)
                )
            }
        );

        let _ = writeln!(
            text,
            "| run | shards | baseline | valid repetitions |\n|---|---:|---|---|"
        );
        for row in &self.rows {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} |",
                code(&row.run_id),
                row.shards,
                match (&row.baseline, row.is_baseline) {
                    (_, true) => "itself".to_owned(),
                    (Some(baseline), false) =>
                        format!("{}, {}", code(&baseline.run_id), shards(baseline.shards)),
                    (None, false) => "none".to_owned(),
                },
                repetitions(row)
            );
        }

        for metric in &self.metrics {
            let _ = writeln!(
                text,
                "\n### {}, {}\n\n| run | shards | median [interval] | ratio to baseline |\n|---|---:|---:|---:|",
                metric.label,
                heading_note(metric)
            );
            for row in &self.rows {
                let figure = row.figures.get(metric.column);
                let _ = writeln!(
                    text,
                    "| {} | {} | {} | {} |",
                    code(&row.run_id),
                    row.shards,
                    figure.and_then(|figure| figure.value).map_or_else(
                        || "–".to_owned(),
                        |value| value.render(|v| number(in_unit(metric.unit, v)))
                    ),
                    ratio_cell(row, figure.and_then(|figure| figure.ratio), metric.better),
                );
            }
        }
        if let Some(gate) = &self.gate {
            gate_section(&mut text, gate);
        }
        text
    }
}

/// `3 of 3`, `2 of 3 (repetition 2 invalid)`, `1 of 3 (repetitions 1, 3 invalid)`.
fn repetitions(row: &Row) -> String {
    let mut text = format!("{} of {}", row.valid(), row.repetitions);
    if !row.excluded.is_empty() {
        let excluded: Vec<String> = row.excluded.iter().map(u32::to_string).collect();
        let noun = if excluded.len() == 1 {
            "repetition"
        } else {
            "repetitions"
        };
        let _ = write!(text, " ({noun} {} invalid)", excluded.join(", "));
    }
    text
}

/// The unit a metric's table shows and which way it improves: `ms, lower is better`.
fn heading_note(metric: &Metric) -> String {
    let unit = match metric.unit {
        Unit::Millis => "ms, ",
        Unit::Seconds => "s, ",
        Unit::Bytes => "MiB, ",
        Unit::Plain => "",
    };
    let better = match metric.better {
        Better::Lower => "lower is better",
        Better::Higher => "higher is better",
        Better::Neither => "neither way is better",
    };
    format!("{unit}{better}")
}

/// A value of `summary.csv` in the unit its table shows.
fn in_unit(unit: Unit, value: f64) -> f64 {
    match unit {
        Unit::Bytes => value / BYTES_PER_MIB,
        Unit::Millis | Unit::Seconds | Unit::Plain => value,
    }
}

/// A ratio cell: `baseline` for a baseline row, the ratio with its interval and, when
/// significant, whether it is better or worse; a dash without a ratio.
fn ratio_cell(row: &Row, ratio: Option<RatioInterval>, better: Better) -> String {
    if row.is_baseline {
        return "baseline".to_owned();
    }
    let Some(ratio) = ratio else {
        return "–".to_owned();
    };
    let text = ratio.render();
    if !ratio.significant {
        return text;
    }
    let higher = ratio.low > 1.0;
    let verdict = match (better, higher) {
        (Better::Lower, false) | (Better::Higher, true) => "better",
        (Better::Lower, true) | (Better::Higher, false) => "worse",
        (Better::Neither, _) => "differs",
    };
    format!("{text} **{verdict}**")
}

/// The outcome of `--fail-on-regression` below the tables.
fn gate_section(text: &mut String, gate: &Gate) {
    let _ = writeln!(
        text,
        "\n### Regression check\n\nA figure fails when every ratio its interval allows is worse \
         than the baseline's by more than {} %: {} checked, {} failed, {} not checkable (no \
         baseline, a baseline of zero, or a single valid repetition on a side).",
        gate.threshold_percent,
        gate.checked,
        gate.regressions.len(),
        gate.unchecked
    );
    if !gate.regressions.is_empty() {
        text.push('\n');
        for reason in gate.reasons() {
            let _ = writeln!(text, "- {reason}");
        }
    }
}

/// A number with about three significant digits, as figures of a noisy machine deserve.
fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude < 0.005 {
        // Rather than `0.00` or `-0.00`.
        "0".to_owned()
    } else {
        format!("{value:.2}")
    }
}

/// `1 shard`, `3 shards`.
fn shards(n: u32) -> String {
    if n == 1 {
        "1 shard".to_owned()
    } else {
        format!("{n} shards")
    }
}

/// Text as Markdown code in a table cell, where a `|` would end the cell.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('|', "\\|"))
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser};

    use super::*;
    use crate::measure::stats::IntervalMethod;

    fn summary(csv: &str) -> anyhow::Result<Vec<ShardCount>> {
        read_summary(csv.as_bytes(), Path::new("run/summary.csv"))
    }

    /// A shard count whose valid repetitions measured `column` as `values`, one each.
    fn shard_count(shards: u32, column: &'static str, values: &[f64]) -> ShardCount {
        ShardCount {
            shards,
            repetitions: (1..)
                .zip(values)
                .map(|(number, &value)| Repetition {
                    number,
                    valid: true,
                    values: BTreeMap::from([(column, value)]),
                })
                .collect(),
        }
    }

    fn run(id: &str, shard_counts: Vec<ShardCount>) -> Run {
        Run {
            dir: PathBuf::from(format!("results/{id}")),
            id: id.to_owned(),
            scenario: "smoke".to_owned(),
            shard_counts,
        }
    }

    fn figure(comparison: &Comparison, run_id: &str, shards: u32, column: &str) -> Figure {
        let row = comparison
            .rows
            .iter()
            .find(|row| row.run_id == run_id && row.shards == shards)
            .unwrap();
        row.figures[column]
    }

    fn ratio_of(comparison: &Comparison, run_id: &str, shards: u32, column: &str) -> Option<f64> {
        figure(comparison, run_id, shards, column)
            .ratio
            .map(|ratio| ratio.ratio)
    }

    /// The lines of `table` under the heading that starts with `heading`, up to the next one.
    fn section<'a>(table: &'a str, heading: &str) -> Vec<&'a str> {
        table
            .lines()
            .skip_while(|line| !line.starts_with(heading))
            .skip(1)
            .take_while(|line| !line.starts_with("###"))
            .filter(|line| !line.is_empty())
            .collect()
    }

    #[test]
    fn numbers_keep_about_three_significant_digits() {
        assert_eq!(number(812.4), "812");
        assert_eq!(number(2500.0), "2500");
        assert_eq!(number(45.63), "45.6");
        assert_eq!(number(1.234), "1.23");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(-0.001), "0");
    }

    #[test]
    fn a_figure_has_no_ratio_to_a_missing_or_zero_baseline() {
        let ratio =
            |samples: &[f64], baseline| Figure::of(samples, baseline).ratio.map(|r| r.ratio);
        assert_eq!(ratio(&[3.0], Some(&[2.0])), Some(1.5));
        assert_eq!(ratio(&[3.0], Some(&[0.0])), None);
        assert_eq!(ratio(&[3.0], None), None);
        assert_eq!(ratio(&[], Some(&[2.0])), None);
        assert_eq!(Figure::of(&[], Some(&[2.0])).value, None);
    }

    #[test]
    fn the_summary_is_read_by_column_name() {
        // Reordered columns, a column compare does not know, an empty field, and the optional
        // and cost columns missing altogether; no repetition columns: one valid repetition.
        let shard_counts = summary(
            "p99_ms,future_column,shards,capacity_websites,p50_ms\n\
             900.5,x,3,,100\n\
             1200,y,1,2500,150\n",
        )
        .unwrap();
        let one = |values: &[(&'static str, f64)]| {
            vec![Repetition {
                number: 1,
                valid: true,
                values: values.iter().copied().collect(),
            }]
        };
        assert_eq!(
            shard_counts,
            [
                ShardCount {
                    shards: 1,
                    repetitions: one(&[
                        ("p99_ms", 1200.0),
                        ("capacity_websites", 2500.0),
                        ("p50_ms", 150.0)
                    ]),
                },
                ShardCount {
                    shards: 3,
                    repetitions: one(&[("p99_ms", 900.5), ("p50_ms", 100.0)]),
                },
            ]
        );
    }

    #[test]
    fn repetitions_are_grouped_by_shard_count_and_invalid_ones_left_out() {
        let shard_counts = summary(
            "shards,repetition,valid,p99_ms\n\
             2,2,true,700\n\
             1,1,true,1000\n\
             2,1,false,9000\n\
             2,3,true,500\n\
             1,2,true,1200\n",
        )
        .unwrap();
        let [one, two] = shard_counts.as_slice() else {
            panic!("{shard_counts:?}");
        };
        assert_eq!((one.shards, two.shards), (1, 2));
        let numbers: Vec<u32> = two.repetitions.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [1, 2, 3]);
        assert_eq!(two.samples("p99_ms"), [700.0, 500.0]);
        assert_eq!(two.excluded(), [1]);
        assert_eq!(one.samples("p99_ms"), [1000.0, 1200.0]);

        let comparison = Comparison::of(&[run("r", shard_counts)], None);
        let row = &comparison.rows[1];
        assert_eq!(
            (row.repetitions, row.valid(), &row.excluded),
            (3, 2, &vec![1])
        );
        let value = figure(&comparison, "r", 2, "p99_ms").value.unwrap();
        assert_eq!(
            (value.median, value.low, value.high, value.n),
            (600.0, 500.0, 700.0, 2)
        );
        assert_eq!(
            ratio_of(&comparison, "r", 2, "p99_ms"),
            Some(600.0 / 1100.0)
        );
        let table = comparison.table();
        assert!(
            table.contains("| `r` | 2 | `r`, 1 shard | 2 of 3 (repetition 1 invalid) |"),
            "{table}"
        );
        assert!(table.contains("| `r` | 1 | itself | 2 of 2 |"), "{table}");
    }

    #[test]
    fn a_shard_count_without_a_valid_repetition_has_no_figures() {
        let shard_counts = summary("shards,valid,p99_ms\n1,true,1000\n2,false,500\n").unwrap();
        let comparison = Comparison::of(&[run("r", shard_counts)], Some(10.0));
        assert_eq!(
            figure(&comparison, "r", 2, "p99_ms"),
            Figure {
                value: None,
                ratio: None
            }
        );
        assert!(
            comparison
                .table()
                .contains("| `r` | 2 | `r`, 1 shard | 0 of 1 (repetition 1 invalid) |")
        );
    }

    #[test]
    fn a_bad_summary_is_reported_with_its_file_line_and_column() {
        let error = |csv: &str| format!("{:#}", summary(csv).unwrap_err());
        assert_eq!(
            error("shards,p99_ms\n1,12\n2,fast\n"),
            "run/summary.csv, line 3: `p99_ms` is `fast`, not a finite number"
        );
        assert_eq!(
            error("shards,p99_ms\n1,NaN\n"),
            "run/summary.csv, line 2: `p99_ms` is `NaN`, not a finite number"
        );
        assert_eq!(
            error("shards,p99_ms\n-1,12\n"),
            "run/summary.csv, line 2: `shards` is `-1`, not a number of shards"
        );
        assert_eq!(
            error("count,p99_ms\n1,12\n"),
            "run/summary.csv has no `shards` column; its header is `count,p99_ms`"
        );
        assert_eq!(
            error("shards\n2\n2\n"),
            "run/summary.csv, line 3: a second row for 2 shards, repetition 1"
        );
        assert_eq!(
            error("shards,repetition\n2,0\n"),
            "run/summary.csv, line 2: `repetition` is `0`, not a repetition number (1, 2, …)"
        );
        assert_eq!(
            error("shards,valid\n2,yes\n"),
            "run/summary.csv, line 2: `valid` is `yes`, not `true` or `false`"
        );
        assert_eq!(
            error("shards,p99_ms\n"),
            "run/summary.csv has no rows: the run measured no shard count"
        );
        assert_eq!(
            error("shards,strategy\n2,hash-ring\n2,bounded-load\n"),
            "run/summary.csv holds runs under several assignment strategies (hash-ring, \
             bounded-load): compare reads runs of one strategy; the run's report.md sets its \
             strategies side by side (docs/experiments.md#strategies-side-by-side)"
        );
        assert!(error("shards,p99_ms\n1\n").starts_with("cannot read run/summary.csv: "));
    }

    #[test]
    fn one_run_compares_its_shard_counts_with_the_smallest() {
        let runs = [run(
            "sweep",
            vec![
                shard_count(1, "p99_ms", &[1000.0]),
                shard_count(2, "p99_ms", &[600.0]),
                shard_count(3, "p99_ms", &[500.0]),
            ],
        )];
        let comparison = Comparison::of(&runs, None);
        let baselines: Vec<_> = comparison
            .rows
            .iter()
            .map(|row| (row.is_baseline, row.baseline.clone().unwrap().shards))
            .collect();
        assert_eq!(baselines, [(true, 1), (false, 1), (false, 1)]);
        assert_eq!(ratio_of(&comparison, "sweep", 1, "p99_ms"), None);
        assert_eq!(ratio_of(&comparison, "sweep", 3, "p99_ms"), Some(0.5));
        let table = comparison.table();
        assert!(table.contains("Ratios are to the smallest shard count of `sweep`."));
        assert!(
            table.contains("| `sweep` | 3 | `sweep`, 1 shard | 1 of 1 |"),
            "{table}"
        );
        let p99 = section(&table, "### reconcile p99, ms, lower is better");
        assert_eq!(
            p99[2..],
            [
                "| `sweep` | 1 | 1000 (n=1) | baseline |",
                "| `sweep` | 2 | 600 (n=1) | 0.60× |",
                "| `sweep` | 3 | 500 (n=1) | 0.50× |",
            ]
        );
    }

    #[test]
    fn several_runs_compare_each_shard_count_with_the_first_runs() {
        let runs = [
            run(
                "a",
                vec![
                    shard_count(1, "p99_ms", &[1000.0]),
                    shard_count(2, "p99_ms", &[800.0]),
                ],
            ),
            run(
                "b",
                vec![
                    shard_count(2, "p99_ms", &[400.0]),
                    shard_count(4, "p99_ms", &[300.0]),
                ],
            ),
        ];
        let comparison = Comparison::of(&runs, None);
        assert_eq!(ratio_of(&comparison, "b", 2, "p99_ms"), Some(0.5));
        // The first run measured no 4 shards: no baseline, no ratio.
        assert_eq!(ratio_of(&comparison, "b", 4, "p99_ms"), None);
        let b4 = &comparison.rows[3];
        assert_eq!((b4.shards, &b4.baseline, b4.is_baseline), (4, &None, false));
        let table = comparison.table();
        assert!(table.contains("- `a` (scenario `smoke`) in `results/a`: the baseline\n"));
        assert!(table.contains("- `b` (scenario `smoke`) in `results/b`\n"));
        assert!(table.contains("Ratios are to the same shard count of `a`;"));
        assert!(table.contains("| `a` | 2 | itself | 1 of 1 |"), "{table}");
        assert!(table.contains("| `b` | 2 | `a`, 2 shards | 1 of 1 |"));
        assert!(table.contains("| `b` | 4 | none | 1 of 1 |"));
        let p99 = section(&table, "### reconcile p99");
        assert!(p99.contains(&"| `b` | 2 | 400 (n=1) | 0.50× |"), "{p99:?}");
        assert!(p99.contains(&"| `b` | 4 | 300 (n=1) | – |"), "{p99:?}");
    }

    /// One shard count whose valid repetitions measured a p99 and a capacity each.
    fn p99_and_capacity(p99: &[f64], capacity: &[f64]) -> ShardCount {
        let mut shard_count = shard_count(1, "p99_ms", p99);
        for (repetition, &capacity) in shard_count.repetitions.iter_mut().zip(capacity) {
            repetition.values.insert("capacity_websites", capacity);
        }
        shard_count
    }

    #[test]
    fn a_significant_ratio_is_marked_better_or_worse_by_the_figures_direction() {
        let runs = [
            run(
                "a",
                vec![p99_and_capacity(
                    &[900.0, 1000.0, 1100.0],
                    &[100.0, 110.0, 120.0],
                )],
            ),
            run(
                "b",
                vec![p99_and_capacity(
                    &[1500.0, 1600.0, 1700.0],
                    &[105.0, 115.0, 125.0],
                )],
            ),
        ];
        let table = Comparison::of(&runs, None).table();
        let p99 = section(&table, "### reconcile p99");
        assert!(
            p99.contains(
                &"| `b` | 1 | 1600 [1500, 1700] (n=3, min–max) | 1.60× [1.36, 1.89] (min–max) **worse** |"
            ),
            "{p99:?}"
        );
        let capacity = section(&table, "### capacity, higher is better");
        assert!(
            capacity.contains(
                &"| `b` | 1 | 115 [105, 125] (n=3, min–max) | 1.05× [0.88, 1.25] (min–max) |"
            ),
            "{capacity:?}"
        );
    }

    fn ratio_interval(low: f64, high: f64, method: IntervalMethod) -> RatioInterval {
        RatioInterval {
            ratio: f64::midpoint(low, high),
            low,
            high,
            method,
            baseline_n: 3,
            candidate_n: 3,
            significant: method != IntervalMethod::Single && (low > 1.0 || high < 1.0),
        }
    }

    #[test]
    fn a_significant_regression_beyond_the_threshold_fails_the_gate() {
        let worse = ratio_interval(1.15, 1.4, IntervalMethod::MinMax);
        assert!(regressed(&worse, Better::Lower, 0.10));
        let lower_capacity = ratio_interval(0.6, 0.85, IntervalMethod::Bootstrap);
        assert!(regressed(&lower_capacity, Better::Higher, 0.10));
    }

    #[test]
    fn a_regression_within_the_threshold_or_not_significant_passes_the_gate() {
        // Significant, but its end nearest to no change is within 10 %.
        let within = ratio_interval(1.05, 1.4, IntervalMethod::MinMax);
        assert!(within.significant);
        assert!(!regressed(&within, Better::Lower, 0.10));
        // The median is 30 % worse, but the interval holds 1.
        let unsure = ratio_interval(0.95, 1.65, IntervalMethod::MinMax);
        assert!(!regressed(&unsure, Better::Lower, 0.10));
        // One repetition on a side is never significant.
        let single = ratio_interval(1.5, 1.5, IntervalMethod::Single);
        assert!(!regressed(&single, Better::Lower, 0.10));
    }

    #[test]
    fn the_gate_respects_which_way_a_figure_improves() {
        let higher = ratio_interval(1.2, 1.4, IntervalMethod::Bootstrap);
        assert!(regressed(&higher, Better::Lower, 0.10));
        assert!(!regressed(&higher, Better::Higher, 0.10));
        assert!(!regressed(&higher, Better::Neither, 0.10));
        let lower = ratio_interval(0.6, 0.8, IntervalMethod::Bootstrap);
        assert!(!regressed(&lower, Better::Lower, 0.10));
        assert!(regressed(&lower, Better::Higher, 0.10));
    }

    #[test]
    fn the_gate_lists_regressions_and_counts_what_it_could_not_check() {
        let runs = [
            run(
                "a",
                vec![
                    shard_count(1, "p99_ms", &[900.0, 1000.0, 1100.0]),
                    shard_count(2, "p99_ms", &[500.0]),
                ],
            ),
            run(
                "b",
                vec![
                    shard_count(1, "p99_ms", &[1500.0, 1600.0, 1700.0]),
                    shard_count(2, "p99_ms", &[900.0, 950.0]),
                    shard_count(3, "p99_ms", &[400.0, 420.0]),
                ],
            ),
        ];
        let comparison = Comparison::of(&runs, Some(20.0));
        let gate = comparison.gate.as_ref().unwrap();
        // b at 1 shard is judged; at 2 shards its baseline has one repetition, at 3 none.
        assert_eq!((gate.checked, gate.unchecked), (1, 2));
        assert_eq!(
            gate.reasons(),
            [
                "reconcile p99 of `b` at 1 shard is 1.60× [1.36, 1.89] (min–max) that of `a` at \
              1 shard: worse by more than 20 %"
            ]
        );
        let table = comparison.table();
        assert!(
            table.contains("1 checked, 1 failed, 2 not checkable"),
            "{table}"
        );
        assert!(
            table.contains("\n- reconcile p99 of `b` at 1 shard is 1.60×"),
            "{table}"
        );

        let lenient = Comparison::of(&runs, Some(40.0));
        assert!(lenient.gate.unwrap().regressions.is_empty());
        assert!(Comparison::of(&runs, None).gate.is_none());
    }

    #[test]
    fn optional_figures_are_shown_only_when_some_repetition_has_them() {
        let without = [run("a", vec![shard_count(1, "p99_ms", &[1.0])])];
        let shown =
            |runs: &[Run]| -> Vec<&str> { shown_metrics(runs).iter().map(|m| m.column).collect() };
        assert!(!shown(&without).contains(&"failover_involuntary_lease_dead_median_s"));
        assert!(shown(&without).contains(&"capacity_websites"));
        let mut invalid = shard_count(1, "failover_involuntary_lease_dead_median_s", &[15.0]);
        invalid.repetitions[0].valid = false;
        let with = [
            run("a", vec![shard_count(1, "p99_ms", &[1.0])]),
            run("b", vec![invalid]),
        ];
        let shown_with = shown(&with);
        assert!(shown_with.contains(&"failover_involuntary_lease_dead_median_s"));
        assert!(!shown_with.contains(&"failover_involuntary_assigned_median_s"));
        let table = Comparison::of(&with, None).table();
        assert!(
            table.contains("### involuntary to Lease dead, median, s, lower is better"),
            "{table}"
        );
    }

    #[test]
    fn each_figure_has_a_table_with_a_row_per_run_and_shard_count() {
        let runs = [run(
            "a",
            vec![
                shard_count(1, "p99_ms", &[1.0]),
                shard_count(2, "p99_ms", &[1.0]),
            ],
        )];
        let table = Comparison::of(&runs, None).table();
        let headings = table
            .lines()
            .filter(|line| line.starts_with("### "))
            .count();
        assert_eq!(headings, METRICS.iter().filter(|m| !m.optional).count());
        let peak = section(&table, "### sharder peak, MiB, lower is better");
        assert_eq!(peak.len(), 2 + 2);
        assert_eq!(peak[2], "| `a` | 1 | – | baseline |");
    }

    #[test]
    fn the_runs_writer_output_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let results = crate::results::tests::synthetic();
        crate::results::writer::write(dir.path(), &results).unwrap();

        let written = Run::read(dir.path()).unwrap();
        assert_eq!(written.id, results.run_id);
        assert_eq!(written.scenario, "synthetic");
        let shards: Vec<u32> = written.shard_counts.iter().map(|s| s.shards).collect();
        assert_eq!(shards, [1, 3]);
        let (one, three) = (&written.shard_counts[0], &written.shard_counts[1]);
        // Only 3 shards breached an SLO; 1 shard's operator shard costs 10 CPU seconds.
        assert!(one.samples("capacity_websites").is_empty());
        assert_eq!(three.samples("capacity_websites"), [3000.0]);
        assert_eq!(one.samples("operator_cpu_seconds"), [10.0]);
        assert_eq!(one.samples("sharder_peak_rss_bytes"), [31_457_280.0]);

        // A failover or movement column the writer adds must be one compare knows by name.
        let mut reader = csv::Reader::from_path(dir.path().join("summary.csv")).unwrap();
        for header in reader.headers().unwrap() {
            if header.starts_with("failover") || header.starts_with("movement") {
                assert!(
                    METRICS.iter().any(|metric| metric.column == header),
                    "summary.csv has `{header}`, which compare does not read"
                );
            }
        }
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: CompareArgs,
    }

    #[test]
    fn the_arguments_take_run_directories_a_format_and_a_regression_threshold() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["compare", "a", "b", "--format", "json"]).unwrap();
        assert_eq!(cli.args.runs, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(cli.args.format, ReportFormat::Json);
        assert_eq!(cli.args.fail_on_regression, None);
        let cli = Cli::try_parse_from(["compare", "a", "--fail-on-regression", "12.5"]).unwrap();
        assert_eq!(cli.args.format, ReportFormat::Table);
        assert_eq!(cli.args.fail_on_regression, Some(12.5));
        let error = Cli::try_parse_from(["compare"]).unwrap_err();
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
    }

    #[test]
    fn the_regression_threshold_must_be_a_positive_percentage() {
        for (value, problem) in [
            ("0", "must be a percentage greater than 0, got `0`"),
            ("-5", "must be a percentage greater than 0, got `-5`"),
            ("inf", "must be a percentage greater than 0, got `inf`"),
            ("ten", "`ten` is not a percentage"),
        ] {
            let error =
                Cli::try_parse_from(["compare", "a", "--fail-on-regression", value]).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
            let message = error.to_string();
            assert!(message.contains("--fail-on-regression"), "{message}");
            assert!(message.contains(problem), "{message}");
        }
    }

    #[test]
    fn the_help_documents_the_exit_statuses() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("3  a check failed"), "{help}");
    }
}
