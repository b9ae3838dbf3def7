//! The webhosting-operator binary: flags, then [`webhosting_operator::run`], or one of the
//! helper subcommands.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use webhosting_operator::{Listeners, api, options::Options, samples};

/// Reconciles Websites and Themes into Deployments, ConfigMaps, Services and Ingresses.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    options: Options,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print N random Websites as YAML, for `kubectl apply -f -`.
    Generate {
        /// How many Websites.
        #[arg(default_value_t = 10)]
        count: usize,
        /// Their namespace (it must be labelled `webhosting.timebertt.dev/project=true`).
        #[arg(long, default_value = "project-foo")]
        namespace: String,
        /// The Themes to pick from at random.
        #[arg(long = "theme", default_values = ["exciting", "lame"])]
        themes: Vec<String>,
        /// Name prefix.
        #[arg(long, default_value = "website")]
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Generate {
            count,
            namespace,
            themes,
            prefix,
            skip_workload,
        }) => {
            let websites = samples::random_websites(
                &mut rand::rng(),
                count,
                &namespace,
                &prefix,
                &themes,
                skip_workload,
            );
            print!("{}", samples::to_yaml(&websites)?);
            Ok(())
        }
        Some(Command::Crds { write }) => {
            for (file, yaml) in api::crds_yaml() {
                match &write {
                    Some(dir) => std::fs::write(dir.join(file), yaml)
                        .with_context(|| format!("cannot write {}", dir.join(file).display()))?,
                    None => print!("---\n{yaml}"),
                }
            }
            Ok(())
        }
        None => {
            operations::telemetry::init();
            let client = operations::client::build(cli.options.kubeconfig.as_deref())
                .await
                .context("cannot create a Kubernetes client")?;
            let listeners = Listeners::bind(&cli.options)?;
            webhosting_operator::run(
                cli.options,
                client,
                listeners,
                operations::telemetry::shutdown_signal(),
            )
            .await
        }
    }
}
