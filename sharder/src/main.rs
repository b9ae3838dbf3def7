//! The sharder binary: the command line, then [`sharder::cli::Cli::run`].

use clap::Parser as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    operations::telemetry::init();
    sharder::cli::Cli::parse().run().await
}
