//! Load generation and what-if analysis for controller sharding.
//!
//! - [`ring_whatif`]: `loadgen ring`, the assignment of objects to shards computed offline with
//!   [`sharding::consistent_hash`], its skew, and the movement when a shard joins or leaves.
//! - [`sharder_bench`]: `loadgen sharder-bench`, the sharder measured on a local control plane:
//!   webhook latency, memory against the number of sharded objects, and move time.
//! - [`operator_cost`]: `loadgen operator-cost`, the webhosting-operator's CPU and memory, N
//!   shards against one singleton, measured in one run on a local control plane.
//! - [`report`]: running a measurement to its report, as a table or JSON.
//! - [`experiment`]: running a scenario; so far its open-loop schedules.
//! - [`measure`]: the measurements of the experiments (SPEC D): pure, over timestamped samples.
//! - [`scenario`]: the scenario files of `experiments/`, parsed and validated naming the field.
//! - [`results`]: a run's measurements written as JSON, CSV, `.hgrm`, PNG/SVG plots and Markdown.

use std::io::{BufWriter, Write};

pub mod cli;
pub mod experiment;
pub mod measure;
pub mod operator_cost;
pub mod report;
pub mod results;
pub mod ring_whatif;
pub mod scenario;
pub mod sharder_bench;

/// Runs the subcommand, writing its output to stdout.
pub fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    match cli.command {
        cli::Command::Ring(args) => ring_whatif::run(&args, &mut out)?,
        cli::Command::SharderBench(args) => sharder_bench::run(&args, &mut out)?,
        cli::Command::OperatorCost(args) => operator_cost::run(&args, &mut out)?,
    }
    out.flush()?;
    Ok(())
}
