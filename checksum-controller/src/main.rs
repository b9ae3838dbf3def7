//! The checksum-controller binary: flags, then [`checksum_controller::run`].

use anyhow::Context as _;
use checksum_controller::{Listeners, options::Options};
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    operations::telemetry::init();
    let client = operations::client::build(options.kubeconfig.as_deref())
        .await
        .context("cannot create a Kubernetes client")?;
    let listeners = Listeners::bind(options.metrics_address, options.health_address)?;
    let shutdown = operations::telemetry::shutdown_signal();
    checksum_controller::run(options, client, listeners, shutdown).await
}
