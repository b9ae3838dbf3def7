//! Command-line arguments.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

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

    /// Generated Website keys, deterministic: webhosting.timebertt.dev/Website/project-<i%20>/experiment-<i>.
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
        let Command::Ring(args) = cli.command;
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
}
