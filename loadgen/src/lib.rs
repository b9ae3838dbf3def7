//! Load generation and what-if analysis for controller sharding.
//!
//! - [`cli`] and [`commands`]: the subcommands, each in its own module: `ring`,
//!   `sharder-bench`, `operator-cost`, `experiment` and `compare`.
//! - [`world`]: the namespaces, Themes and Websites a measurement creates; [`listing`]: lists
//!   by label selector in pages.
//! - [`report`]: running a measurement to its report, as a table or JSON; [`units`]: the
//!   units and ratios reports print.
//! - [`environment`]: where an experiment runs: a local control plane or a cluster.
//! - [`gate`]: checks whose failure is a finding (exit status 3), not an error (1).
//! - [`experiment`]: a scenario run at each shard count of its sweep on a target, written to
//!   `results/<run-id>/`. - [`measure`]: the measurements of the experiments (docs/experiments.md):
//!   pure, over timestamped samples.
//! - [`scenario`]: the scenario files of `experiments/`, parsed and validated naming the field.
//! - [`plan`]: `loadgen plan`'s decision: the shard count a target needs, from measured
//!   capacity and a scaling model; its report and plot.
//! - [`results`]: a run's measurements written as JSON, CSV, `.hgrm`, PNG/SVG plots and Markdown.

use std::io::{BufWriter, Write as _};

pub mod cli;
pub mod commands;
pub mod environment;
pub mod experiment;
pub mod gate;
pub mod listing;
pub mod measure;
pub mod plan;
pub mod report;
pub mod results;
pub mod scenario;
pub mod units;
pub mod workload;
pub mod world;

/// Runs the subcommand, writing its output to stdout.
pub fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    match cli.command {
        cli::Command::Ring(args) => commands::ring::run(&args, &mut out)?,
        cli::Command::SharderBench(args) => commands::sharder_bench::run(&args, &mut out)?,
        cli::Command::OperatorCost(args) => commands::operator_cost::run(&args, &mut out)?,
        cli::Command::Experiment(args) => commands::experiment::run(&args, &mut out)?,
        cli::Command::Compare(args) => commands::compare::run(&args, &mut out)?,
        cli::Command::Plan(args) => commands::plan::run(&args, &mut out)?,
    }
    out.flush()?;
    Ok(())
}
