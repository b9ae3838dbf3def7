//! `testenv up`: a local control plane until Ctrl-C.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about = "A real local Kubernetes control plane on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start etcd and kube-apiserver (and kube-controller-manager), print the kubeconfig
    /// path, and run until Ctrl-C or SIGTERM.
    Up {
        /// Also run kube-controller-manager (garbage collection, Deployment status).
        #[arg(long)]
        controller_manager: bool,
        /// Also write the admin kubeconfig here (it is removed again on shutdown).
        #[arg(long, value_name = "PATH")]
        kubeconfig: Option<PathBuf>,
        /// Keep the directory with logs and data after shutdown.
        #[arg(long)]
        keep_directory: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Up {
        controller_manager,
        kubeconfig,
        keep_directory,
    } = Cli::parse().command;

    let control_plane = testenv::Environment::new()
        .controller_manager(controller_manager)
        .keep_directory(keep_directory)
        .start()
        .await
        .context("cannot start the control plane")?;
    let path = match &kubeconfig {
        Some(path) => {
            std::fs::copy(control_plane.kubeconfig_path(), path)
                .with_context(|| format!("cannot write the kubeconfig to {}", path.display()))?;
            path.clone()
        }
        None => control_plane.kubeconfig_path(),
    };
    println!("{}", path.display());
    eprintln!(
        "control plane ready at {}; logs in {}; Ctrl-C stops it",
        control_plane.api_server_url(),
        control_plane.directory().join("logs").display()
    );

    shutdown_signal().await?;
    drop(control_plane);
    if let Some(path) = kubeconfig {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot watch Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
