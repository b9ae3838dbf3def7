//! Writes the sharder's webhook serving certificate and its CA into a directory, unless they
//! are there already (`make webhook-certs`).

use std::path::PathBuf;

use clap::Parser;
use deploy::webhook_certs::{self, Outcome};

/// Writes ca.crt, tls.crt and tls.key for the sharder's webhook Service, keeping existing ones.
#[derive(Debug, Parser)]
struct Cli {
    /// Where the files go.
    #[arg(default_value = "deploy/sharder/default/certs")]
    dir: PathBuf,
    /// The Service that the API server calls.
    #[arg(long, default_value = "sharder")]
    service: String,
    /// The Service's namespace.
    #[arg(long, default_value = "sharding-system")]
    namespace: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let hosts = webhook_certs::service_hosts(&cli.service, &cli.namespace);
    let verb = match webhook_certs::ensure(&cli.dir, &hosts)? {
        Outcome::Kept => "kept the existing",
        Outcome::Written => "wrote a new",
    };
    println!(
        "{verb} webhook CA and serving certificate in {}",
        cli.dir.display()
    );
    Ok(())
}
