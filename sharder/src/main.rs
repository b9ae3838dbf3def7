//! The sharder binary: flags and the config file, then [`sharder::run`].

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use sharder::config::SharderConfig;

/// Assigns the objects of ControllerRings to shards and moves them when shards change.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The SharderConfig file; defaults apply without one.
    #[arg(long, env = "SHARDER_CONFIG")]
    config: Option<PathBuf>,
    /// This replica's identity in the leader-election Lease.
    #[arg(long, env = "POD_NAME", default_value_t = default_identity())]
    identity: String,
}

fn default_identity() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "sharder".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    operations::telemetry::init();
    let cli = Cli::parse();
    let config = cli
        .config
        .as_deref()
        .map_or_else(|| Ok(SharderConfig::default()), SharderConfig::load)?;
    let client = sharder::client(&config)
        .await
        .context("cannot create a Kubernetes client")?;
    let listeners = sharder::Listeners::bind(&config)?;
    let shutdown = operations::telemetry::shutdown_signal();
    sharder::run(config, client, listeners, cli.identity, shutdown).await
}
