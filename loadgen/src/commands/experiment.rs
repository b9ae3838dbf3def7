//! `loadgen experiment`: a scenario (`experiments/*.yaml`) run at each shard count of its
//! sweep on a target, with its results written to `results/<run-id>/` (see
//! [`crate::experiment`]).

use std::{io::Write, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};
use operations::duration::parse as parse_duration;

use crate::{
    environment, experiment, gate, measure::ownership::Ownership, results::RunResults, scenario,
};

/// Arguments of `loadgen experiment`.
#[derive(Debug, Args)]
#[command(after_help = gate::EXIT_STATUS_HELP)]
pub struct ExperimentArgs {
    /// The scenario file, e.g. `experiments/smoke.yaml`.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,

    /// How and where to run it.
    #[command(flatten)]
    pub run: RunArgs,

    /// Exit with status 3 when an SLO verdict failed, a measurement was invalid or ownership
    /// was violated: an object reconciled by two shards at once, or left on no live shard at
    /// the end (after writing the results).
    #[arg(long)]
    pub check: bool,
}

/// How and where a scenario runs: the arguments `experiment` and `plan` share.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where to run: `local` starts a control plane, the sharder and the shards as processes;
    /// `cluster` uses a cluster where the sharder and the operator are deployed.
    #[arg(long, value_enum, default_value_t = TargetKind::Local)]
    pub target: TargetKind,

    /// The kubeconfig of the cluster [default: $KUBECONFIG, ~/.kube/config or in-cluster].
    #[arg(long, value_name = "PATH", requires_if("cluster", "target"))]
    pub kubeconfig: Option<PathBuf>,

    /// The kubeconfig context of the cluster [default: the current one].
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Only these shard counts of the scenario's sweep, comma-separated.
    #[arg(
        allow_negative_numbers = true,
        long,
        value_name = "N,...",
        value_delimiter = ','
    )]
    pub shards: Vec<u32>,

    /// Run each shard count this many times, each on a fresh target; reports show the median
    /// and an interval over the repetitions.
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,

    /// The directory that receives the run's directory.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,

    /// The name of the run's directory [default: <UTC time>-<scenario>].
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,

    /// The window of latency percentiles over time.
    #[arg(long, value_name = "DURATION", value_parser = window, default_value = "10s")]
    pub window: Duration,

    /// Where loadgen serves its own Prometheus metrics while it runs ("0" disables them); not
    /// 9090, where a port-forwarded Prometheus usually listens.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:9091", value_parser = parse_address)]
    pub metrics_address: MetricsAddress,

    /// Keep the local control plane's files (every process's log) after the run.
    #[arg(long)]
    pub keep_directory: bool,
}

/// `--window`: a duration of at least 1 ms, so that a run never fails on it after the control
/// plane has started.
fn window(text: &str) -> Result<Duration, String> {
    let window = parse_duration(text).map_err(|error| error.to_string())?;
    if window < Duration::from_millis(1) {
        return Err(format!("must be at least 1ms, got `{text}`"));
    }
    Ok(window)
}

/// Where an experiment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TargetKind {
    /// A local control plane with the sharder and the shards as processes.
    Local,
    /// A cluster with the sharder and the operator deployed.
    Cluster,
}

/// `--metrics-address`: an address, or disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddress(pub Option<std::net::SocketAddr>);

fn parse_address(text: &str) -> Result<MetricsAddress, String> {
    if text == "0" {
        return Ok(MetricsAddress(None));
    }
    text.parse()
        .map(|address| MetricsAddress(Some(address)))
        .map_err(|error| format!("{error}: expected ip:port or 0"))
}

/// Validates the scenario before anything starts, runs it, and prints where the report is;
/// with `--check`, then fails on a missed SLO or an invalid measurement.
pub fn run(args: &ExperimentArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let scenario = scenario::Scenario::load(&args.scenario)?;
    let (dir, results) = args.run.run(scenario)?;
    writeln!(
        out,
        "report: {}",
        experiment::display_path(&dir.join("report.md"))
    )?;
    if args.check {
        out.flush()?;
        gate::check(check_failures(&results))?;
    }
    Ok(())
}

/// Why `--check` fails a run: each missed SLO verdict, each invalid measurement and each
/// ownership violation (docs/experiments.md#ownership).
fn check_failures(results: &RunResults) -> Vec<String> {
    let mut reasons = Vec::new();
    let strategies = results.compares_strategies();
    for count in &results.shard_counts {
        let under = if strategies {
            format!(" under {}", count.strategy)
        } else {
            String::new()
        };
        let which = format!(
            "{} shard(s){under}, repetition {}",
            count.shards, count.repetition
        );
        for verdict in count.verdicts.iter().filter(|v| v.met == Some(false)) {
            reasons.push(format!(
                "{which}: the {} p99 was {}{:.0} ms, over its SLO of {:.0} ms",
                verdict.metric.name(),
                if verdict.lower_bound { "≥ " } else { "" },
                verdict.observed.as_secs_f64() * 1000.0,
                verdict.threshold.as_secs_f64() * 1000.0
            ));
        }
        if !count.validity.valid {
            let why: Vec<&str> = count
                .validity
                .reasons
                .iter()
                .map(|reason| reason.sentence.as_str())
                .collect();
            reasons.push(format!("{which} is invalid: {}", why.join("; ")));
        }
        let violations = count.ownership.iter().flat_map(Ownership::violations);
        reasons.extend(violations.map(|violation| format!("{which}: {violation}")));
    }
    reasons
}

impl RunArgs {
    /// Runs `scenario` as these arguments say (`--shards` narrows its sweep); returns the
    /// run's directory and results.
    pub fn run(&self, mut scenario: scenario::Scenario) -> anyhow::Result<(PathBuf, RunResults)> {
        let args = self;
        if !args.shards.is_empty() {
            scenario.shards = scenario::select_shards(&scenario.shards, &args.shards)
                .map_err(|problem| anyhow::anyhow!("--shards: {problem}"))?;
        }
        let options = experiment::Options {
            target: match args.target {
                TargetKind::Local => environment::Choice::Local {
                    keep_directory: args.keep_directory,
                    binaries: None,
                },
                TargetKind::Cluster => environment::Choice::Cluster {
                    kubeconfig: args.kubeconfig.clone(),
                    context: args.context.clone(),
                },
            },
            results: args.results.clone(),
            run_id: args.run_id.clone(),
            window: args.window,
            metrics_address: args.metrics_address.0,
            repeat: args.repeat,
        };
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(experiment::run(&scenario, &options))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::measure::{
        audit::{self, DoubleReconciliation, Record},
        conflicts::Conflicts,
        ownership::Audited,
        unowned::UnownedSummary,
    };

    #[test]
    fn the_check_names_the_strategy_when_the_run_compares_strategies() {
        let missed = |results: &RunResults| {
            check_failures(results)
                .into_iter()
                .filter(|reason| reason.contains("p99 was"))
                .map(|reason| reason[..reason.find(':').unwrap()].to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            missed(&crate::results::tests::synthetic()),
            ["3 shard(s), repetition 1"]
        );
        assert_eq!(
            missed(&crate::results::tests::compared()),
            [
                "3 shard(s) under hash-ring, repetition 1",
                "3 shard(s) under bounded-load, repetition 1"
            ]
        );
    }

    #[test]
    fn the_check_fails_on_an_object_reconciled_by_two_shards_at_once() {
        let mut results = crate::results::tests::synthetic();
        results.shard_counts.truncate(1);
        results.shard_counts[0].verdicts.clear();
        let at = |s| Timestamp::from_second(s).unwrap();
        let record = |s, shard: &str, start| Record {
            at: at(s),
            shard: shard.to_owned(),
            object: "project-0/w".to_owned(),
            start,
            fenced: false,
        };
        let records = [
            record(10, "shard-0", true),
            record(12, "shard-1", true),
            record(13, "shard-1", false),
            record(15, "shard-0", false),
        ];
        let mut ownership = Ownership {
            unowned: UnownedSummary::default(),
            double_reconciliation: Audited::Measured(DoubleReconciliation::of(&[])),
            conflicts: Conflicts::default(),
        };
        results.shard_counts[0].ownership = Some(ownership.clone());
        assert_eq!(check_failures(&results), Vec::<String>::new());
        ownership.double_reconciliation = Audited::Measured(DoubleReconciliation::of(
            &audit::reconciliations(&records, &[], at(100)),
        ));
        results.shard_counts[0].ownership = Some(ownership);
        let shards = results.shard_counts[0].shards;
        assert_eq!(
            check_failures(&results),
            [format!(
                "{shards} shard(s), repetition 1: 1 object(s) reconciled by two shards at once: \
                 project-0/w (shard-0 and shard-1, 1.0 s)"
            )]
        );
    }
}
