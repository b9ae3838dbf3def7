//! Command-line arguments: the subcommands, each with the arguments its module defines.

use clap::{Parser, Subcommand};

use crate::commands::{
    compare::CompareArgs, experiment::ExperimentArgs, operator_cost::OperatorCostArgs,
    plan::PlanArgs, ring::RingArgs, sharder_bench::SharderBenchArgs,
};

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
    /// Assign objects to shards offline with the sharder's hash ring or bounded-load, or both
    /// side by side, and report the skew and the movement when shards join or leave.
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
    Compare(CompareArgs),
    /// How many shards a target of objects and churn needs: run a capacity search at each
    /// shard count of a scenario (or read one), fit the capacity curve and pick the smallest
    /// shard count whose lower bound covers the target with headroom.
    Plan(PlanArgs),
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::CommandFactory;
    use kube_sharding::strategy::Strategy;

    use super::*;
    use crate::{
        commands::{
            ring::{Change, Format, ShardCounts},
            sharder_bench::Phase,
        },
        report::ReportFormat,
    };

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
    fn events_may_start_with_a_hyphen() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "ring",
            "--shard-count",
            "2..4",
            "--objects",
            "3",
            "--events",
            "-shard-1,+x",
            "--compare",
        ])
        .expect("valid");
        let Command::Ring(args) = cli.command else {
            panic!("not ring");
        };
        assert_eq!(args.events, [Change::leave("shard-1"), Change::join("x")]);
        assert_eq!(args.shard_count, Some(ShardCounts { from: 2, to: 4 }));
        assert!(args.compare);
        assert_eq!(args.strategy, Strategy::HashRing);
    }

    #[test]
    fn events_conflict_with_add_and_compare_with_strategy() {
        for extra in [
            &["--events", "+x", "--add", "y"][..],
            &["--events", "+x", "--remove", "shard-0"],
            &["--compare", "--strategy", "bounded-load"],
        ] {
            let err = Cli::try_parse_from(
                ["loadgen", "ring", "--shard-count", "2", "--objects", "1"]
                    .iter()
                    .chain(extra),
            )
            .expect_err("conflict");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{err}"
            );
        }
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
        assert_eq!(
            args.phases,
            [Phase::Latency, Phase::Memory, Phase::Move, Phase::Abuse]
        );
        assert_eq!(args.abuse_connections, 100);
        assert_eq!(args.abuse_body_bytes, 15_000_000);
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
    fn duration_flags_take_gos_syntax() {
        let cli =
            Cli::try_parse_from(["loadgen", "operator-cost", "--timeout", "1h30m"]).expect("valid");
        let Command::OperatorCost(args) = cli.command else {
            panic!("not operator-cost");
        };
        assert_eq!(args.timeout, Duration::from_secs(5400));
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
    fn a_zero_window_is_rejected_before_anything_starts() {
        let err = Cli::try_parse_from(["loadgen", "experiment", "x.yaml", "--window", "0s"])
            .expect_err("invalid");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("--window"), "{err}");
        assert!(err.to_string().contains("must be at least 1ms"), "{err}");
    }

    #[test]
    fn a_negative_number_is_named_by_its_flag_not_taken_for_a_flag() {
        for args in [
            &["loadgen", "operator-cost", "--websites", "-1"][..],
            &["loadgen", "sharder-bench", "--rate", "-5"],
            &["loadgen", "experiment", "x.yaml", "--repeat", "-2"],
            &[
                "loadgen",
                "plan",
                "x.yaml",
                "--objects",
                "1",
                "--churn",
                "-3",
            ],
        ] {
            let err = Cli::try_parse_from(args).expect_err("invalid");
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation, "{err}");
            assert!(err.to_string().contains(args[args.len() - 2]), "{err}");
        }
    }

    #[test]
    fn a_zero_rate_is_rejected() {
        let err =
            Cli::try_parse_from(["loadgen", "sharder-bench", "--rate", "0"]).expect_err("invalid");
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }
}
