//! The operator's command line: its flags (every flag also reads an environment variable, for
//! manifests) and the helper subcommands.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum, builder::NonEmptyStringValueParser};
use operations::duration::{parse as parse_duration, parse_lease_duration};

use crate::{api, samples};

/// Reconciles Websites and Themes into Deployments, ConfigMaps, Services and Ingresses.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// A helper to run instead of the operator.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How to run the operator.
    #[command(flatten)]
    pub options: Options,
}

/// The helpers beside the operator.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print N random Websites as YAML, for `kubectl apply -f -`.
    Generate {
        /// How many Websites.
        #[arg(default_value_t = 10, allow_negative_numbers = true)]
        count: usize,
        /// Their namespace (it must be labelled `webhosting.timebertt.dev/project=true`).
        #[arg(long, default_value = "project-foo", value_parser = NonEmptyStringValueParser::new())]
        namespace: String,
        /// The Themes to pick from at random.
        #[arg(long = "theme", default_values = ["exciting", "lame"], value_parser = NonEmptyStringValueParser::new())]
        themes: Vec<String>,
        /// Name prefix.
        #[arg(long, default_value = "website", value_parser = NonEmptyStringValueParser::new())]
        prefix: String,
        /// Label them `skip-workload` so that their Deployments run no pods.
        #[arg(long)]
        skip_workload: bool,
    },
    /// Print the CRDs, or write them to a directory.
    Crds {
        /// Write the files into this directory instead of printing them.
        #[arg(long, value_name = "DIR")]
        write: Option<PathBuf>,
    },
}

impl Command {
    /// Runs the helper, printing to stdout.
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            Self::Generate {
                count,
                namespace,
                themes,
                prefix,
                skip_workload,
            } => {
                let websites = samples::random_websites(
                    &mut rand::rng(),
                    count,
                    &namespace,
                    &prefix,
                    &themes,
                    skip_workload,
                );
                print!("{}", samples::to_yaml(&websites)?);
            }
            Self::Crds { write } => {
                for (file, yaml) in api::crds_yaml() {
                    match &write {
                        Some(dir) => std::fs::write(dir.join(file), yaml).with_context(|| {
                            format!("cannot write {}", dir.join(file).display())
                        })?,
                        None => print!("---\n{yaml}"),
                    }
                }
            }
        }
        Ok(())
    }
}

/// How the operator runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// One of many shards of the ControllerRing `webhosting-operator`: holds its shard Lease
    /// and reconciles only the Websites assigned to it.
    Sharded,
    /// One active replica that reconciles every Website, chosen by leader election.
    Singleton,
}

/// How to run the operator.
#[derive(Clone, Debug, Args)]
pub struct Options {
    /// Sharded (many active shards) or singleton (one leader-elected replica).
    #[arg(long, value_enum, env = "WEBHOSTING_MODE", default_value_t = Mode::Sharded)]
    pub mode: Mode,
    /// This replica's name: the shard name, or the holder in the leader Lease.
    #[arg(long, env = "POD_NAME", default_value_t = default_identity())]
    pub identity: String,
    /// The namespace of the shard Lease or the leader Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "webhosting-system")]
    pub namespace: String,
    /// Concurrent reconciliations.
    #[arg(allow_negative_numbers = true, long, env = "WEBHOSTING_WORKERS", default_value_t = 5,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
    /// A wait in every reconciliation that models a controller bound by external calls.
    #[arg(long, env = "WEBHOSTING_SIMULATED_WORK", value_name = "DURATION",
          default_value = "0s", value_parser = parse_duration)]
    pub simulated_work: Duration,
    /// How long the shard Lease or leader Lease is valid without renewal.
    #[arg(long, env = "WEBHOSTING_LEASE_DURATION", value_name = "DURATION",
          default_value = "15s", value_parser = parse_lease_duration)]
    pub lease_duration: Duration,
    /// Where `/metrics` is served.
    #[arg(
        long,
        env = "WEBHOSTING_METRICS_ADDRESS",
        default_value = "0.0.0.0:8080",
        value_parser = operations::http::listen_address
    )]
    pub metrics_address: SocketAddr,
    /// Serve `/metrics` over HTTPS to scrapers whose token may get it (`--metrics-secure` or
    /// `=true`, as the manifests do); plain HTTP to anyone by default, for local runs
    /// (docs/metrics-security.md#defaults).
    #[arg(long, env = "WEBHOSTING_METRICS_SECURE", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub metrics_secure: bool,
    /// Where `/healthz` and `/readyz` are served.
    #[arg(
        long,
        env = "WEBHOSTING_HEALTH_ADDRESS",
        default_value = "0.0.0.0:8081",
        value_parser = operations::http::listen_address
    )]
    pub health_address: SocketAddr,
    /// Append a JSON line per reconciliation start and end to this file.
    #[arg(long, env = "WEBHOSTING_AUDIT_FILE", value_name = "PATH")]
    pub audit_file: Option<PathBuf>,
    /// The kubeconfig; defaults to in-cluster or `KUBECONFIG`.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

fn default_identity() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "webhosting-operator".to_owned())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        options: Options,
    }

    #[test]
    fn defaults_run_a_shard_with_five_workers_and_no_simulated_work() {
        let cli = Cli::try_parse_from(["op", "--identity", "shard-0"]).unwrap();
        assert_eq!(cli.options.mode, Mode::Sharded);
        assert_eq!(cli.options.workers, 5);
        assert_eq!(cli.options.simulated_work, Duration::ZERO);
        assert_eq!(cli.options.lease_duration, Duration::from_secs(15));
        assert!(!cli.options.metrics_secure);
    }

    #[test]
    fn metrics_are_secure_with_the_flag_alone_or_set_to_true() {
        for (args, secure) in [
            (&["op", "--metrics-secure"][..], true),
            (&["op", "--metrics-secure=true"], true),
            (&["op", "--metrics-secure=false"], false),
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.options.metrics_secure, secure, "{args:?}");
        }
        let error = Cli::try_parse_from(["op", "--metrics-secure=yes"])
            .expect_err("invalid")
            .to_string();
        assert!(error.contains("--metrics-secure"), "{error}");
    }

    #[test]
    fn bad_values_name_the_flag() {
        for args in [
            &["op", "--workers", "0"][..],
            &["op", "--mode", "leader"],
            &["op", "--lease-duration", "1500ms"],
            &["op", "--simulated-work", "soon"],
            &["op", "--workers", "-1"],
        ] {
            let error = Cli::try_parse_from(args).expect_err("invalid").to_string();
            assert!(error.contains(args[1]), "{error}");
        }
    }

    #[test]
    fn listen_addresses_may_omit_the_host_as_in_go() {
        let cli = Cli::try_parse_from(["op", "--metrics-address", ":9080"]).unwrap();
        assert_eq!(cli.options.metrics_address, "0.0.0.0:9080".parse().unwrap());
        let error = Cli::try_parse_from(["op", "--health-address", "localhost"])
            .expect_err("invalid")
            .to_string();
        assert!(error.contains("--health-address"), "{error}");
    }

    #[test]
    fn generate_rejects_empty_names_and_negative_counts_by_their_argument() {
        for (args, named) in [
            (&["op", "generate", "--theme", ""][..], "--theme"),
            (&["op", "generate", "--namespace", ""], "--namespace"),
            (&["op", "generate", "--prefix", ""], "--prefix"),
            (&["op", "generate", "-1"], "[COUNT]"),
        ] {
            let error = super::Cli::try_parse_from(args)
                .expect_err("invalid")
                .to_string();
            assert!(error.contains(named), "{error}");
            assert!(!error.contains("unexpected argument"), "{error}");
        }
    }
}
