//! The webhosting-operator binary: flags, then [`webhosting_operator::run`], or one of the
//! helper subcommands.

use anyhow::Context as _;
use clap::Parser;
use webhosting_operator::{Listeners, options::Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(command) = cli.command {
        return command.run();
    }
    operations::telemetry::init();
    let client = operations::client::build(cli.options.kubeconfig.as_deref())
        .await
        .context("cannot create a Kubernetes client")?;
    let listeners = Listeners::bind(cli.options.metrics_address, cli.options.health_address)?;
    let shutdown = operations::telemetry::shutdown_signal();
    webhosting_operator::run(cli.options, client, listeners, shutdown).await
}
