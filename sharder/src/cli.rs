//! The sharder's command line: run the sharder (the Go sharder's flags), or write a webhook
//! certificate with `webhook-certs`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::{
    config::SharderConfig,
    webhook::certs::{self, Outcome},
};

/// Assigns the objects of ControllerRings to shards and moves them when shards change.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// Something else than running the sharder.
    #[command(subcommand)]
    command: Option<Command>,
    /// The sharder's flags.
    #[command(flatten)]
    run: RunArgs,
}

/// The flags of a running sharder.
#[derive(Debug, Args)]
struct RunArgs {
    /// The SharderConfig file; defaults apply without one.
    #[arg(long, env = "SHARDER_CONFIG")]
    config: Option<PathBuf>,
    /// The name this replica's leader-election identity starts with (default: the host name);
    /// `_` and a UUID new at every start follow it.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes a CA (ca.crt) and a webhook serving certificate it signed (tls.crt, tls.key) into
    /// a directory, unless all three are there already.
    WebhookCerts(WebhookCertsArgs),
}

#[derive(Debug, Args)]
struct WebhookCertsArgs {
    /// Where the files go: the config's `webhook.server.certDir`, and `ca.crt` its
    /// `webhook.config.caBundleFile`.
    dir: PathBuf,
    /// For a sharder on this machine (127.0.0.1 and localhost, as `sharder/config/local.yaml`
    /// expects) instead of the in-cluster Service.
    #[arg(long, conflicts_with_all = ["service", "namespace"])]
    local: bool,
    /// The Service that the API server calls.
    #[arg(long, default_value = "sharder")]
    service: String,
    /// The Service's namespace.
    #[arg(long, default_value = "sharding-system")]
    namespace: String,
}

impl Cli {
    /// Runs what the command line asks for: the sharder until a signal, or a subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Some(Command::WebhookCerts(args)) => webhook_certs(&args),
            None => run_sharder(self.run).await,
        }
    }
}

async fn run_sharder(args: RunArgs) -> anyhow::Result<()> {
    let base = match args.identity {
        Some(name) => name,
        None => hostname::get()
            .context("cannot read the host name for the leader-election identity")?
            .to_string_lossy()
            .into_owned(),
    };
    let identity = operations::leader::unique_identity(&base, rand::random());
    let config = args
        .config
        .as_deref()
        .map_or_else(|| Ok(SharderConfig::default()), SharderConfig::load)?;
    let client = crate::client(&config)
        .await
        .context("cannot create a Kubernetes client")?;
    let listeners = crate::Listeners::bind(&config)?;
    let shutdown = operations::telemetry::shutdown_signal();
    crate::run(config, client, listeners, identity, shutdown).await
}

fn webhook_certs(args: &WebhookCertsArgs) -> anyhow::Result<()> {
    let hosts = if args.local {
        certs::LOCAL_HOSTS.map(str::to_owned).to_vec()
    } else {
        certs::service_hosts(&args.service, &args.namespace)
    };
    let dir = args.dir.display();
    match certs::ensure(&args.dir, &hosts)? {
        // The files may be for other hosts: delete them to write new ones.
        Outcome::Kept => println!("kept the existing webhook CA and serving certificate in {dir}"),
        Outcome::Written => println!(
            "wrote a new webhook CA and serving certificate for {} in {dir}",
            hosts.join(", ")
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_subcommand_the_sharder_runs_with_the_go_flags() {
        let cli =
            Cli::try_parse_from(["sharder", "--config", "c.yaml", "--identity", "a"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.config, Some(PathBuf::from("c.yaml")));
    }

    #[test]
    fn local_certificates_take_no_service() {
        let cli = Cli::try_parse_from(["sharder", "webhook-certs", "--local", "d"]).unwrap();
        assert!(matches!(cli.command, Some(Command::WebhookCerts(ref a)) if a.local));
        let both =
            Cli::try_parse_from(["sharder", "webhook-certs", "--local", "--service", "s", "d"]);
        assert!(both.is_err());
    }
}
