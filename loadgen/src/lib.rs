//! Load generation and what-if analysis for controller sharding.
//!
//! - [`ring_whatif`]: `loadgen ring`, the assignment of objects to shards computed offline with
//!   [`sharding::consistent_hash`], its skew, and the movement when a shard joins or leaves.
//! - [`sharder_bench`]: `loadgen sharder-bench`, the sharder measured on a local control plane:
//!   webhook latency, memory against the number of sharded objects, and move time.
//! - [`operator_cost`]: `loadgen operator-cost`, the webhosting-operator's CPU and memory, N
//!   shards against one singleton, measured in one run on a local control plane.
//! - [`report`]: running a measurement to its report, as a table or JSON.
//! - [`experiment`]: `loadgen experiment`, a scenario run at each shard count of its sweep on
//!   a target (an [`environment`]), written to `results/<run-id>/`.
//! - [`compare`]: `loadgen compare`, runs or the shard counts of one run side by side.
//! - [`environment`]: where an experiment runs: a local control plane or a cluster.
//! - [`measure`]: the measurements of the experiments (SPEC D): pure, over timestamped samples.
//! - [`scenario`]: the scenario files of `experiments/`, parsed and validated naming the field.
//! - [`results`]: a run's measurements written as JSON, CSV, `.hgrm`, PNG/SVG plots and Markdown.

use std::io::{BufWriter, Write};

pub mod cli;
pub mod compare;
pub mod environment;
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
        cli::Command::Experiment(args) => experiment_command(&args, &mut out)?,
        cli::Command::Compare(args) => compare::run(&args, &mut out)?,
    }
    out.flush()?;
    Ok(())
}

/// `loadgen experiment`: validates the scenario before anything starts, runs it, and prints
/// where the report is.
fn experiment_command(args: &cli::ExperimentArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut scenario = scenario::Scenario::load(&args.scenario)?;
    if !args.shards.is_empty() {
        scenario.shards = scenario::select_shards(&scenario.shards, &args.shards)
            .map_err(|problem| anyhow::anyhow!("--shards: {problem}"))?;
    }
    let options = experiment::Options {
        target: match args.target {
            cli::TargetKind::Local => environment::Choice::Local {
                keep_directory: args.keep_directory,
                binaries: None,
            },
            cli::TargetKind::Cluster => environment::Choice::Cluster {
                kubeconfig: args.kubeconfig.clone(),
                context: args.context.clone(),
            },
        },
        results: args.results.clone(),
        run_id: args.run_id.clone(),
        window: args.window,
        metrics_address: args.metrics_address.0,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let dir = runtime.block_on(experiment::run(&scenario, &options))?;
    writeln!(
        out,
        "report: {}",
        experiment::display_path(&dir.join("report.md"))
    )?;
    Ok(())
}
