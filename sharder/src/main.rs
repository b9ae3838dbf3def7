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
    /// The name this replica's leader-election identity starts with (default: the host name);
    /// `_` and a UUID new at every start follow it.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    operations::telemetry::init();
    let cli = Cli::parse();
    let base = match cli.identity {
        Some(name) => name,
        None => hostname::get()
            .context("cannot read the host name for the leader-election identity")?
            .to_string_lossy()
            .into_owned(),
    };
    let identity = operations::leader::unique_identity(&base, rand::random());
    let config = cli
        .config
        .as_deref()
        .map_or_else(|| Ok(SharderConfig::default()), SharderConfig::load)?;
    let client = sharder::client(&config)
        .await
        .context("cannot create a Kubernetes client")?;
    let listeners = sharder::Listeners::bind(&config)?;
    let shutdown = operations::telemetry::shutdown_signal();
    sharder::run(config, client, listeners, identity, shutdown).await
}
