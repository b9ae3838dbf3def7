//! Command-line arguments.

use std::{path::PathBuf, time::Duration};

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use operations::duration::parse as parse_duration;

/// Load generation and what-if analysis for controller sharding.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Assign objects to shards offline with the sharder's hash ring, and report the skew and
    /// the movement when one shard joins or leaves.
    Ring(RingArgs),
    /// Measure the sharder on a local control plane: webhook latency, memory against the
    /// number of sharded objects, and the time to move a departed shard's objects.
    SharderBench(SharderBenchArgs),
    /// Measure the webhosting-operator's cost on a local control plane: CPU and memory of each
    /// of N shards against one singleton, reconciling the same number of Websites in one run.
    OperatorCost(OperatorCostArgs),
    /// Run an experiment scenario (`experiments/*.yaml`) at each shard count of its sweep, on
    /// a local control plane or a cluster, and write `results/<run-id>/`.
    Experiment(ExperimentArgs),
    /// Put runs, or the shard counts of one run, side by side as ratios to a baseline.
    Compare(crate::compare::CompareArgs),
}

/// Arguments of `loadgen experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// The scenario file, e.g. `experiments/smoke.yaml`.
    #[arg(value_name = "SCENARIO")]
    pub scenario: PathBuf,

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
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    pub shards: Vec<u32>,

    /// The directory that receives the run's directory.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,

    /// The name of the run's directory [default: <UTC time>-<scenario>].
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,

    /// The window of latency percentiles over time.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub window: Duration,

    /// Where loadgen serves its own Prometheus metrics while it runs ("0" disables them); not
    /// 9090, where a port-forwarded Prometheus usually listens.
    #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:9091", value_parser = parse_address)]
    pub metrics_address: MetricsAddress,

    /// Keep the local control plane's files (every process's log) after the run.
    #[arg(long)]
    pub keep_directory: bool,
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

/// Arguments of `loadgen ring`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("shard_set").required(true).args(["shards", "shard_count"])))]
#[command(group(ArgGroup::new("object_set").required(true).args(["keys_file", "objects"])))]
pub struct RingArgs {
    /// Shard names, comma-separated.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub shards: Vec<String>,

    /// Generated shard names: shard-0, shard-1, ...
    #[arg(long, value_name = "N")]
    pub shard_count: Option<usize>,

    /// Hash keys (`group/Kind/namespace/name`), one per line; blank lines are ignored.
    #[arg(long, value_name = "PATH")]
    pub keys_file: Option<PathBuf>,

    /// Generated Website keys, deterministic: `webhosting.timebertt.dev/Website/project-<i%20>/experiment-<i>`.
    #[arg(long, value_name = "N")]
    pub objects: Option<usize>,

    /// The shard that joins in the movement analysis.
    #[arg(long, value_name = "NAME", default_value = "shard-new")]
    pub add: String,

    /// The shard that leaves in the movement analysis [default: each shard in turn].
    #[arg(long, value_name = "NAME")]
    pub remove: Option<String>,

    /// Output format: table and json report the distribution and movement, csv prints the
    /// assignment of each key.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Output formats of `loadgen ring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable report.
    Table,
    /// `key,shard` per key, in input order.
    Csv,
    /// The report as JSON.
    Json,
}

/// Arguments of `loadgen sharder-bench`.
#[derive(Debug, Args)]
pub struct SharderBenchArgs {
    /// Shards of the ring `bench`, each holding a Lease: bench-0, bench-1, ...
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: u32,

    /// Creates per second in the webhook latency phase (alternating sharded and plain).
    #[arg(long, value_name = "PER_SECOND", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,

    /// How long the webhook latency phase runs, e.g. 20s, 500ms, 2m.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Sharded ConfigMaps that exist at the second memory reading.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    pub objects: usize,

    /// Creates in flight while creating the objects of the memory phase.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,

    /// The sharder's `controller.sharder.concurrentMoves`.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrent_moves: u32,

    /// How long a forced resync is given before the sharder's memory is read.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,

    /// How long the move of a departed shard's objects may take before the run fails.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub move_timeout: Duration,

    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

/// Arguments of `loadgen operator-cost`.
#[derive(Debug, Args)]
pub struct OperatorCostArgs {
    /// Websites created in each phase (sharded, then singleton).
    #[arg(long, value_name = "N", default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub websites: u32,

    /// Operator shards in the sharded phase: shard-0, shard-1, ...
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub shards: u16,

    /// Concurrent reconciliations of each operator process (`--workers`).
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,

    /// Themes the Websites pick from at random.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub themes: u16,

    /// Project namespaces the Websites are spread over.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub namespaces: u16,

    /// Website creates per second.
    #[arg(long, value_name = "PER_SECOND", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,

    /// Creates in flight at most.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,

    /// How long the operators run idle after every Website is Ready, before their usage is read.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub settle: Duration,

    /// How long the Websites of a phase may take to become Ready (or to be deleted).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Keep the control plane's directory (component, sharder and operator logs) at the end.
    #[arg(long)]
    pub keep_directory: bool,

    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

/// Output formats of `loadgen sharder-bench` and `loadgen operator-cost`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Human-readable report.
    Table,
    /// The report as JSON.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn shards_split_on_commas() {
        let cli = Cli::try_parse_from(["loadgen", "ring", "--shards", "a,b,c", "--objects", "3"])
            .expect("valid");
        let Command::Ring(args) = cli.command else {
            panic!("not ring");
        };
        assert_eq!(args.shards, ["a", "b", "c"]);
        assert_eq!(args.format, Format::Table);
        assert_eq!(args.add, "shard-new");
    }

    #[test]
    fn shards_and_shard_count_conflict() {
        let err = Cli::try_parse_from([
            "loadgen",
            "ring",
            "--shards",
            "a",
            "--shard-count",
            "3",
            "--objects",
            "1",
        ])
        .expect_err("conflict");
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }

    #[test]
    fn shards_and_objects_are_required() {
        for args in [
            &["loadgen", "ring", "--objects", "1"][..],
            &["loadgen", "ring", "--shard-count", "1"],
        ] {
            let err = Cli::try_parse_from(args).expect_err("missing");
            assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        }
    }

    #[test]
    fn an_unknown_format_is_rejected() {
        let err = Cli::try_parse_from([
            "loadgen",
            "ring",
            "--shard-count",
            "1",
            "--objects",
            "1",
            "--format",
            "xml",
        ])
        .expect_err("invalid");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
    }

    #[test]
    fn sharder_bench_has_defaults() {
        let cli = Cli::try_parse_from(["loadgen", "sharder-bench"]).expect("valid");
        let Command::SharderBench(args) = cli.command else {
            panic!("not sharder-bench");
        };
        assert_eq!(args.shards, 2);
        assert_eq!(args.rate, 50);
        assert_eq!(args.duration, Duration::from_secs(20));
        assert_eq!(args.objects, 20_000);
        assert_eq!(args.concurrent_moves, 100);
        assert_eq!(args.format, ReportFormat::Table);
    }

    #[test]
    fn operator_cost_has_defaults() {
        let cli = Cli::try_parse_from(["loadgen", "operator-cost"]).expect("valid");
        let Command::OperatorCost(args) = cli.command else {
            panic!("not operator-cost");
        };
        assert_eq!(args.websites, 2_000);
        assert_eq!(args.shards, 3);
        assert_eq!(args.workers, 5);
        assert_eq!(args.settle, Duration::from_secs(20));
        assert_eq!(args.format, ReportFormat::Table);
    }

    #[test]
    fn operator_cost_rejects_zero_websites_shards_and_workers() {
        for flag in [
            "--websites",
            "--shards",
            "--workers",
            "--themes",
            "--namespaces",
        ] {
            let err =
                Cli::try_parse_from(["loadgen", "operator-cost", flag, "0"]).expect_err("invalid");
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
            let message = err.to_string();
            assert!(message.contains(flag), "{message}");
        }
    }

    #[test]
    fn a_zero_rate_is_rejected() {
        let err =
            Cli::try_parse_from(["loadgen", "sharder-bench", "--rate", "0"]).expect_err("invalid");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }
}
