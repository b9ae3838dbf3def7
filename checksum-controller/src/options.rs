//! The controller's flags; every flag also reads an environment variable, for manifests.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use operations::duration::{parse as parse_duration, parse_lease_duration};

/// Keeps a ConfigMap `<secret>-checksum` with the SHA-256 of the data of every Secret
/// labelled `checksum.sharding.timebertt.dev/managed=true`, as one shard of the
/// ControllerRing `checksum-controller`.
#[derive(Clone, Debug, Parser)]
#[command(version)]
pub struct Options {
    /// This replica's name: the shard name and the name of its shard Lease.
    #[arg(long, env = "POD_NAME", default_value_t = default_identity())]
    pub identity: String,
    /// The namespace of the shard Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "checksum-system")]
    pub namespace: String,
    /// Concurrent reconciliations.
    #[arg(long, env = "CHECKSUM_WORKERS", default_value_t = 5, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,
    /// A wait in every reconciliation that models a controller bound by external calls.
    #[arg(long, env = "CHECKSUM_SIMULATED_WORK", value_name = "DURATION",
          default_value = "0s", value_parser = parse_duration)]
    pub simulated_work: Duration,
    /// How long the shard Lease is valid without renewal.
    #[arg(long, env = "CHECKSUM_LEASE_DURATION", value_name = "DURATION",
          default_value = "15s", value_parser = parse_lease_duration)]
    pub lease_duration: Duration,
    /// Where `/metrics` is served.
    #[arg(long, env = "CHECKSUM_METRICS_ADDRESS", default_value = "0.0.0.0:8080",
          value_parser = operations::http::listen_address)]
    pub metrics_address: SocketAddr,
    /// Serve `/metrics` over HTTPS to scrapers whose token may get it (`--metrics-secure` or
    /// `=true`); plain HTTP to anyone by default, for local runs
    /// (docs/metrics-security.md#defaults).
    #[arg(long, env = "CHECKSUM_METRICS_SECURE", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value_t = false,
          action = clap::ArgAction::Set)]
    pub metrics_secure: bool,
    /// Where `/healthz` and `/readyz` are served.
    #[arg(long, env = "CHECKSUM_HEALTH_ADDRESS", default_value = "0.0.0.0:8081",
          value_parser = operations::http::listen_address)]
    pub health_address: SocketAddr,
    /// The kubeconfig; defaults to in-cluster or `KUBECONFIG`.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

fn default_identity() -> String {
    std::env::var("HOSTNAME").unwrap_or_else(|_| "checksum-controller".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_run_five_workers_without_simulated_work_on_a_15s_lease() {
        let options = Options::try_parse_from(["checksum", "--identity", "shard-0"]).unwrap();
        assert_eq!(options.identity, "shard-0");
        assert_eq!(options.workers, 5);
        assert_eq!(options.simulated_work, Duration::ZERO);
        assert_eq!(options.lease_duration, Duration::from_secs(15));
        assert!(!options.metrics_secure);
        let secure = Options::try_parse_from(["checksum", "--metrics-secure"]).unwrap();
        assert!(secure.metrics_secure);
        let error = Options::try_parse_from(["checksum", "--metrics-secure=yes"])
            .expect_err("invalid")
            .to_string();
        assert!(error.contains("--metrics-secure"), "{error}");
    }

    #[test]
    fn bad_values_name_the_flag() {
        for args in [
            &["checksum", "--workers", "0"][..],
            &["checksum", "--lease-duration", "1500ms"],
            &["checksum", "--simulated-work", "soon"],
            &["checksum", "--metrics-address", "nowhere"],
        ] {
            let error = Options::try_parse_from(args)
                .expect_err("invalid")
                .to_string();
            assert!(error.contains(args[1]), "{error}");
        }
    }
}
