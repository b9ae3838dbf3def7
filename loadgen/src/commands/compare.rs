//! `loadgen compare`: runs, or the shard counts of one sweep, side by side as ratios.
//!
//! Each argument is a run directory written by `loadgen experiment` (`results/<run-id>/`, see
//! [`crate::results`]); compare reads its `run.json` for the run's name and its `summary.csv` for
//! the figures of each shard count (docs/experiments.md), by column name, so that columns added to
//! the summary later are ignored and columns missing from older runs read as not measured.
//!
//! The baseline of a row:
//! - with one run, its smallest shard count, so a sweep reads as scaling from its first step;
//! - with several runs, the first run's row of the same shard count. A shard count the first
//!   run did not measure gets no baseline and no ratios: a ratio to another shard count of
//!   another run would mix the two differences and attribute both to the run.
//!
//! Ratios are `value / baseline` for every figure alike; whether higher is better (capacity)
//! or worse (everything else) is left to the reader.

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
    measure::ratio,
    report::{Report, ReportFormat},
    results::summary::{Columns as _, Metric, SummaryRow, Unit},
    units::BYTES_PER_MIB,
};

/// Arguments of `loadgen compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run directories (`results/<run-id>/`), each with run.json and summary.csv; the first
    /// is the baseline.
    #[arg(value_name = "RUN_DIR", required = true, num_args = 1..)]
    pub runs: Vec<PathBuf>,

    /// Output format of the comparison: a Markdown table or JSON.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

/// Reads the runs and writes their comparison to `out`.
pub fn run(args: &CompareArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if args.runs.is_empty() {
        bail!("no run directory to compare");
    }
    let runs = args
        .runs
        .iter()
        .map(|dir| Run::read(dir))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let comparison = Comparison::of(&runs);
    crate::report::write(args.format, out, &comparison)
}

/// The figures compared, in the order of the table's columns.
const METRICS: &[Metric] = SummaryRow::METRICS;

/// One run directory as read from disk.
#[derive(Debug)]
struct Run {
    dir: PathBuf,
    /// `run_id` of `run.json`.
    id: String,
    scenario: String,
    /// Ordered by shard count.
    rows: Vec<ShardCountRow>,
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

/// The figures of one shard count, from a row of `summary.csv`.
#[derive(Debug, Clone, PartialEq)]
struct ShardCountRow {
    shards: u32,
    /// The measured figures of [`METRICS`], by column; an empty field is absent.
    values: BTreeMap<&'static str, f64>,
}

impl Run {
    fn read(dir: &Path) -> anyhow::Result<Self> {
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
            rows: read_summary(summary, &summary_path)?,
        })
    }
}

/// Parses a `summary.csv` read from `input`; `path` names it in errors. Rows come back
/// ordered by shard count.
fn read_summary(input: impl Read, path: &Path) -> anyhow::Result<Vec<ShardCountRow>> {
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
    let columns: Vec<(&'static str, usize)> = METRICS
        .iter()
        .filter_map(|metric| Some((metric.column, position(metric.column)?)))
        .collect();

    let mut rows: Vec<ShardCountRow> = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("cannot read {file}"))?;
        let line = record.position().map_or(0, csv::Position::line);
        let field = |at: usize| record.get(at).unwrap_or_default();
        let shards = field(shards_at);
        let shards: u32 = shards.parse().map_err(|_| {
            anyhow!("{file}, line {line}: `shards` is `{shards}`, not a number of shards")
        })?;
        let mut values = BTreeMap::new();
        for &(column, at) in &columns {
            let value = field(at);
            if !value.is_empty() {
                let value: f64 = value.parse().map_err(|_| {
                    anyhow!("{file}, line {line}: `{column}` is `{value}`, not a number")
                })?;
                values.insert(column, value);
            }
        }
        if rows.iter().any(|row| row.shards == shards) {
            bail!("{file}, line {line}: a second row for {shards} shards");
        }
        rows.push(ShardCountRow { shards, values });
    }
    if rows.is_empty() {
        bail!("{file} has no rows: the run measured no shard count");
    }
    rows.sort_by_key(|row| row.shards);
    Ok(rows)
}

/// The comparison of the runs: a row per run and shard count, with ratios to its baseline.
#[derive(Debug, Serialize)]
struct Comparison {
    /// The runs in argument order; the first is the baseline.
    runs: Vec<RunInfo>,
    /// The figures compared (optional ones only when measured), in table order.
    metrics: Vec<&'static Metric>,
    rows: Vec<Row>,
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
    /// Whether this is a row of the baseline, whose ratios are all one.
    is_baseline: bool,
    /// The row its ratios are to; itself for a baseline, none without one.
    baseline: Option<RowRef>,
    /// Each compared figure by column, in the unit of `summary.csv`.
    figures: BTreeMap<&'static str, Figure>,
}

/// A row named by its run and shard count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct RowRef {
    run_id: String,
    shards: u32,
}

/// A figure and its ratio to the baseline's; either may be missing (not measured, or a
/// baseline of zero).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct Figure {
    value: Option<f64>,
    ratio: Option<f64>,
}

impl Figure {
    fn of(value: Option<f64>, baseline: Option<f64>) -> Self {
        Self {
            value,
            ratio: value.zip(baseline).and_then(|(v, b)| ratio(v, b)),
        }
    }
}

/// The baseline of a row of `shards` shards, always a row of the first run (see the module
/// documentation for the rule).
fn baseline_row(runs: &[Run], shards: u32) -> Option<&ShardCountRow> {
    let first = runs.first()?;
    if runs.len() == 1 {
        // Rows are ordered by shard count, so the first is the smallest.
        first.rows.first()
    } else {
        first.rows.iter().find(|row| row.shards == shards)
    }
}

/// The metrics shown: every one that is not optional, and the optional ones some row has.
fn shown_metrics(runs: &[Run]) -> Vec<&'static Metric> {
    METRICS
        .iter()
        .filter(|metric| {
            !metric.optional
                || runs
                    .iter()
                    .flat_map(|run| &run.rows)
                    .any(|row| row.values.contains_key(metric.column))
        })
        .collect()
}

impl Comparison {
    fn of(runs: &[Run]) -> Self {
        let metrics = shown_metrics(runs);
        let row_of = |run: &Run, row: &ShardCountRow| {
            let baseline = baseline_row(runs, row.shards);
            let figures = metrics
                .iter()
                .map(|metric| {
                    let value = |row: &ShardCountRow| row.values.get(metric.column).copied();
                    (
                        metric.column,
                        Figure::of(value(row), baseline.and_then(value)),
                    )
                })
                .collect();
            Row {
                run_id: run.id.clone(),
                shards: row.shards,
                is_baseline: baseline.is_some_and(|baseline| std::ptr::eq(baseline, row)),
                baseline: baseline.map(|baseline| RowRef {
                    run_id: runs[0].id.clone(),
                    shards: baseline.shards,
                }),
                figures,
            }
        };
        let rows = runs
            .iter()
            .flat_map(|run| run.rows.iter().map(move |shard_count| (run, shard_count)))
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
            "\n{}\n",
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

        let mut heading = String::from("| run | shards | baseline |");
        let mut rule = String::from("|---|---:|---|");
        for metric in &self.metrics {
            let _ = write!(heading, " {} |", metric.label);
            rule.push_str("---:|");
        }
        let _ = writeln!(text, "{heading}\n{rule}");
        for row in &self.rows {
            let _ = write!(
                text,
                "| {} | {} | {} |",
                code(&row.run_id),
                row.shards,
                match (&row.baseline, row.is_baseline) {
                    (_, true) => "itself".to_owned(),
                    (Some(baseline), false) =>
                        format!("{}, {}", code(&baseline.run_id), shards(baseline.shards)),
                    (None, false) => "none".to_owned(),
                }
            );
            for metric in &self.metrics {
                let figure = row.figures.get(metric.column).copied();
                let _ = write!(text, " {} |", cell(metric.unit, figure, !row.is_baseline));
            }
            text.push('\n');
        }
        text
    }
}

/// A table cell: the value in its unit, with its ratio when `with_ratio` and there is one;
/// a dash when not measured.
fn cell(unit: Unit, figure: Option<Figure>, with_ratio: bool) -> String {
    let Some(Figure {
        value: Some(value),
        ratio,
    }) = figure
    else {
        return "–".to_owned();
    };
    let value = match unit {
        Unit::Millis => format!("{} ms", number(value)),
        Unit::Seconds => format!("{} s", number(value)),
        Unit::Bytes => format!("{} MiB", number(value / BYTES_PER_MIB)),
        Unit::Plain => number(value),
    };
    match ratio.filter(|_| with_ratio) {
        Some(ratio) => format!("{value} ({ratio:.2}×)"),
        None => value,
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

    fn summary(csv: &str) -> anyhow::Result<Vec<ShardCountRow>> {
        read_summary(csv.as_bytes(), Path::new("run/summary.csv"))
    }

    fn row(shards: u32, values: &[(&'static str, f64)]) -> ShardCountRow {
        ShardCountRow {
            shards,
            values: values.iter().copied().collect(),
        }
    }

    fn run(id: &str, rows: Vec<ShardCountRow>) -> Run {
        Run {
            dir: PathBuf::from(format!("results/{id}")),
            id: id.to_owned(),
            scenario: "smoke".to_owned(),
            rows,
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
    fn a_cell_shows_the_value_in_its_unit_and_the_ratio() {
        let figure = |value, ratio| {
            Some(Figure {
                value: Some(value),
                ratio,
            })
        };
        assert_eq!(
            cell(Unit::Millis, figure(812.0, Some(0.523)), true),
            "812 ms (0.52×)"
        );
        assert_eq!(
            cell(Unit::Seconds, figure(12.34, Some(2.0)), true),
            "12.3 s (2.00×)"
        );
        assert_eq!(
            cell(Unit::Bytes, figure(52_428_800.0, None), true),
            "50.0 MiB"
        );
        assert_eq!(cell(Unit::Plain, figure(1.25, Some(1.0)), false), "1.25");
        assert_eq!(
            cell(Unit::Plain, Some(Figure::of(None, Some(1.0))), true),
            "–"
        );
    }

    #[test]
    fn a_figure_has_no_ratio_to_a_missing_or_zero_baseline() {
        assert_eq!(Figure::of(Some(3.0), Some(2.0)).ratio, Some(1.5));
        assert_eq!(Figure::of(Some(3.0), Some(0.0)).ratio, None);
        assert_eq!(Figure::of(Some(3.0), None).ratio, None);
        assert_eq!(Figure::of(None, Some(2.0)).ratio, None);
    }

    #[test]
    fn the_summary_is_read_by_column_name() {
        // Reordered columns, a column compare does not know, an empty field, and the optional
        // and cost columns missing altogether.
        let rows = summary(
            "p99_ms,future_column,shards,capacity_websites,p50_ms\n\
             900.5,x,3,,100\n\
             1200,y,1,2500,150\n",
        )
        .unwrap();
        assert_eq!(
            rows,
            [
                row(
                    1,
                    &[
                        ("p99_ms", 1200.0),
                        ("capacity_websites", 2500.0),
                        ("p50_ms", 150.0)
                    ]
                ),
                row(3, &[("p99_ms", 900.5), ("p50_ms", 100.0)]),
            ]
        );
    }

    #[test]
    fn a_bad_summary_is_reported_with_its_file_line_and_column() {
        let error = |csv: &str| format!("{:#}", summary(csv).unwrap_err());
        assert_eq!(
            error("shards,p99_ms\n1,12\n2,fast\n"),
            "run/summary.csv, line 3: `p99_ms` is `fast`, not a number"
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
            "run/summary.csv, line 3: a second row for 2 shards"
        );
        assert_eq!(
            error("shards,p99_ms\n"),
            "run/summary.csv has no rows: the run measured no shard count"
        );
        assert!(error("shards,p99_ms\n1\n").starts_with("cannot read run/summary.csv: "));
    }

    #[test]
    fn one_run_compares_its_shard_counts_with_the_smallest() {
        let runs = [run(
            "sweep",
            vec![
                row(1, &[("p99_ms", 1000.0)]),
                row(2, &[("p99_ms", 600.0)]),
                row(3, &[("p99_ms", 500.0)]),
            ],
        )];
        let comparison = Comparison::of(&runs);
        let baselines: Vec<_> = comparison
            .rows
            .iter()
            .map(|row| (row.is_baseline, row.baseline.clone().unwrap().shards))
            .collect();
        assert_eq!(baselines, [(true, 1), (false, 1), (false, 1)]);
        assert_eq!(figure(&comparison, "sweep", 1, "p99_ms").ratio, Some(1.0));
        assert_eq!(figure(&comparison, "sweep", 3, "p99_ms").ratio, Some(0.5));
        let table = comparison.table();
        assert!(table.contains("Ratios are to the smallest shard count of `sweep`."));
        assert!(
            table.contains("| `sweep` | 1 | itself | – | 1000 ms |"),
            "{table}"
        );
        assert!(table.contains("| `sweep` | 3 | `sweep`, 1 shard | – | 500 ms (0.50×) |"));
    }

    #[test]
    fn several_runs_compare_each_shard_count_with_the_first_runs() {
        let runs = [
            run(
                "a",
                vec![row(1, &[("p99_ms", 1000.0)]), row(2, &[("p99_ms", 800.0)])],
            ),
            run(
                "b",
                vec![row(2, &[("p99_ms", 400.0)]), row(4, &[("p99_ms", 300.0)])],
            ),
        ];
        let comparison = Comparison::of(&runs);
        assert_eq!(figure(&comparison, "a", 2, "p99_ms").ratio, Some(1.0));
        assert_eq!(figure(&comparison, "b", 2, "p99_ms").ratio, Some(0.5));
        // The first run measured no 4 shards: no baseline, no ratio.
        assert_eq!(figure(&comparison, "b", 4, "p99_ms").ratio, None);
        let b4 = &comparison.rows[3];
        assert_eq!((b4.shards, &b4.baseline, b4.is_baseline), (4, &None, false));
        let table = comparison.table();
        assert!(table.contains("- `a` (scenario `smoke`) in `results/a`: the baseline\n"));
        assert!(table.contains("- `b` (scenario `smoke`) in `results/b`\n"));
        assert!(table.contains("Ratios are to the same shard count of `a`;"));
        assert!(
            table.contains("| `a` | 2 | itself | – | 800 ms |"),
            "{table}"
        );
        assert!(table.contains("| `b` | 2 | `a`, 2 shards | – | 400 ms (0.50×) |"));
        assert!(table.contains("| `b` | 4 | none | – | 300 ms |"));
    }

    #[test]
    fn optional_figures_are_shown_only_when_some_row_has_them() {
        let without = [run("a", vec![row(1, &[("p99_ms", 1.0)])])];
        let shown =
            |runs: &[Run]| -> Vec<&str> { shown_metrics(runs).iter().map(|m| m.column).collect() };
        assert!(!shown(&without).contains(&"failover_involuntary_lease_dead_median_s"));
        assert!(shown(&without).contains(&"capacity_websites"));
        let with = [
            run("a", vec![row(1, &[])]),
            run(
                "b",
                vec![row(
                    1,
                    &[("failover_involuntary_lease_dead_median_s", 15.0)],
                )],
            ),
        ];
        let shown_with = shown(&with);
        assert!(shown_with.contains(&"failover_involuntary_lease_dead_median_s"));
        assert!(!shown_with.contains(&"failover_involuntary_assigned_median_s"));
        let table = Comparison::of(&with).table();
        assert!(table.contains(" to Lease dead, median |"), "{table}");
    }

    #[test]
    fn the_table_has_a_column_per_figure() {
        let runs = [run("a", vec![row(1, &[])])];
        let table = Comparison::of(&runs).table();
        let heading = table
            .lines()
            .find(|line| line.starts_with("| run"))
            .unwrap();
        let rule = table.lines().find(|line| line.starts_with("|---")).unwrap();
        let row = table
            .lines()
            .find(|line| line.starts_with("| `a`"))
            .unwrap();
        let cells = |line: &str| line.matches('|').count();
        assert_eq!(cells(heading), cells(rule));
        assert_eq!(cells(heading), cells(row));
        assert_eq!(
            cells(heading),
            3 + METRICS.iter().filter(|m| !m.optional).count() + 1
        );
    }

    #[test]
    fn the_runs_writer_output_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let results = crate::results::tests::synthetic();
        crate::results::writer::write(dir.path(), &results).unwrap();

        let written = Run::read(dir.path()).unwrap();
        assert_eq!(written.id, results.run_id);
        assert_eq!(written.scenario, "synthetic");
        let shards: Vec<u32> = written.rows.iter().map(|row| row.shards).collect();
        assert_eq!(shards, [1, 3]);
        // Only 3 shards breached an SLO; 1 shard's operator shard costs 10 CPU seconds.
        assert_eq!(written.rows[0].values.get("capacity_websites"), None);
        assert_eq!(
            written.rows[1].values.get("capacity_websites"),
            Some(&3000.0)
        );
        assert_eq!(
            written.rows[0].values.get("operator_cpu_seconds"),
            Some(&10.0)
        );
        assert_eq!(
            written.rows[0].values.get("sharder_peak_rss_bytes"),
            Some(&31_457_280.0)
        );

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
    fn the_arguments_take_run_directories_and_a_format() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["compare", "a", "b", "--format", "json"]).unwrap();
        assert_eq!(cli.args.runs, [PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(cli.args.format, ReportFormat::Json);
        let cli = Cli::try_parse_from(["compare", "a"]).unwrap();
        assert_eq!(cli.args.format, ReportFormat::Table);
        let error = Cli::try_parse_from(["compare"]).unwrap_err();
        assert_eq!(
            error.kind(),
            clap::error::ErrorKind::MissingRequiredArgument
        );
    }
}
