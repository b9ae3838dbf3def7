//! The sharder's configuration file (SPEC B).
//!
//! The file is the Go original's `SharderConfig` (`config.sharding.timebertt.dev/v1alpha1`), so a
//! config file written for the Go sharder works here unchanged. It is read in two steps
//! (STYLE 12): serde reads it into [`RawSharderConfig`], which mirrors the Go types field by field
//! (Go JSON names, unknown fields rejected, everything optional), and
//! [`RawSharderConfig::validate`] applies the Go defaults and checks every value, producing a
//! [`SharderConfig`] of plain Rust types. Errors name the file, the field path and the bad value
//! (STYLE 7).
//!
//! Two fields extend the original for running the sharder outside a cluster:
//! `webhook.server.bindAddress` (the Go sharder always listens on `:9443`) and
//! `webhook.config.caBundleFile` (a PEM file whose content becomes the webhook configuration's
//! `caBundle`, where in a cluster cert-manager injects it).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{ServiceReference, WebhookClientConfig};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use serde::Deserialize;
use sharding::api::labels::{SHARDER_LEASE, SHARDER_NAMESPACE};

/// The only `apiVersion` a sharder config file may have.
pub const API_VERSION: &str = "config.sharding.timebertt.dev/v1alpha1";
/// The only `kind` a sharder config file may have.
pub const KIND: &str = "SharderConfig";

/// Why a sharder config file was rejected. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read sharder config {}", file.display())]
    Read {
        /// The config file.
        file: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// The file is not YAML or does not have the shape of a SharderConfig: an unknown field, a
    /// wrong type, a duplicate key.
    #[error("{}: cannot parse sharder config", file.display())]
    Parse {
        /// The config file.
        file: PathBuf,
        /// The YAML parser's error, which names the field and its line.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A field has a value that is not allowed.
    #[error("{}: {field}: {message}", file.display())]
    Invalid {
        /// The config file.
        file: PathBuf,
        /// The field path, such as `controller.sharder.concurrentMoves`.
        field: String,
        /// What the value must be, and the rejected value as written (strings quoted), or
        /// `nothing` when the field is missing.
        message: String,
    },
    /// Fields that are valid on their own do not fit together.
    #[error("{}: {field}: {reason}", file.display())]
    Conflict {
        /// The config file.
        file: PathBuf,
        /// The path of the field that holds the conflicting fields.
        field: String,
        /// Which fields conflict and how.
        reason: String,
    },
    /// The CA bundle file named by `webhook.config.caBundleFile` could not be read.
    #[error("{}: {field}: cannot read {}", file.display(), path.display())]
    ReadCaBundle {
        /// The config file.
        file: PathBuf,
        /// The field path, `webhook.config.caBundleFile`.
        field: String,
        /// The CA bundle file.
        path: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
}

/// The result of loading a sharder config.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The validated sharder configuration, with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct SharderConfig {
    /// `clientConnection`: how to reach the API server.
    pub client_connection: ClientConnection,
    /// `leaderElection`: the sharder's leader election for its controllers.
    pub leader_election: LeaderElection,
    /// `debugging`: the component-base debugging switches, accepted for compatibility.
    pub debugging: Debugging,
    /// `health.bindAddress`: where `/healthz` and `/readyz` are served; `None` when set to `"0"`.
    /// Defaults to `:8081`.
    pub health_bind_address: Option<SocketAddr>,
    /// `metrics.bindAddress`: where `/metrics` is served; `None` when set to `"0"`. Defaults to
    /// `:8080` like the Go defaults.
    pub metrics_bind_address: Option<SocketAddr>,
    /// `controller.sharder`: the resync of object assignments.
    pub sharder_controller: SharderController,
    /// `webhook.server`: the HTTPS server of the assignment webhook.
    pub webhook_server: WebhookServer,
    /// `webhook.config`: the MutatingWebhookConfiguration written per ControllerRing (SPEC A.7).
    pub webhook_config: WebhookConfig,
    /// `gracefulShutDown`: how long the sharder's tasks get to stop after a shutdown signal.
    /// `Some(Duration::ZERO)` (`0s`) does not wait at all, `None` (a negative duration such as
    /// `-1s`) waits without a limit. Defaults to 15 s.
    pub graceful_shutdown_timeout: Option<Duration>,
}

/// `clientConnection` (component-base `ClientConnectionConfiguration`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientConnection {
    /// `kubeconfig`: path of a kubeconfig file; `None` uses the usual lookup (`KUBECONFIG`,
    /// `~/.kube/config`, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// `acceptContentTypes`: the `Accept` header for API requests; `None` leaves the client's.
    pub accept_content_types: Option<String>,
    /// `contentType`: the content type of request bodies; `None` leaves the client's.
    pub content_type: Option<String>,
    /// `qps`: the client-side request rate limit. `None` (unset, `0` or negative) means no
    /// client-side limit, the default (SPEC B).
    pub qps: Option<f32>,
    /// `burst`: the burst allowed above `qps`; `None` when unset or `0`.
    pub burst: Option<u32>,
}

/// `leaderElection` (component-base `LeaderElectionConfiguration`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElection {
    /// `leaderElect`: whether the controllers run only on the leader. Defaults to true.
    pub leader_elect: bool,
    /// `leaseDuration`: how long non-leaders wait before taking over. Defaults to 15 s.
    pub lease_duration: Duration,
    /// `renewDeadline`: how long the leader retries renewing before it gives up leadership.
    /// Less than `lease_duration`; defaults to 10 s.
    pub renew_deadline: Duration,
    /// `retryPeriod`: the wait between attempts to acquire or renew. Less than
    /// `renew_deadline`; defaults to 2 s.
    pub retry_period: Duration,
    /// `resourceLock`: the lock object type; only `leases` is supported.
    pub resource_lock: String,
    /// `resourceName`: the name of the Lease. Defaults to `sharder`.
    pub resource_name: String,
    /// `resourceNamespace`: the namespace of the Lease. Defaults to `sharding-system`.
    pub resource_namespace: String,
}

/// `debugging` (component-base `DebuggingConfiguration`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Debugging {
    /// `enableProfiling`: whether profiling endpoints may be served. Defaults to true.
    pub enable_profiling: bool,
    /// `enableContentionProfiling`: whether lock contention is profiled. Defaults to false.
    pub enable_contention_profiling: bool,
}

/// `controller.sharder`: the resync of object assignments (SPEC B).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SharderController {
    /// `syncPeriod`: how often every ring is resynced. Positive; defaults to 5 min.
    pub sync_period: Duration,
    /// `concurrentMoves`: how many objects of one ring are moved or drained at once. At least 1;
    /// defaults to 100.
    pub concurrent_moves: usize,
}

/// `webhook.server`: the HTTPS server of the assignment webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookServer {
    /// `bindAddress` (our extension): where the webhook server listens. Defaults to `:9443`, the
    /// Go sharder's fixed port; it cannot be disabled.
    pub bind_address: SocketAddr,
    /// `certDir`: the directory of the serving certificate and key. Defaults to
    /// `/tmp/k8s-webhook-server/serving-certs`.
    pub cert_dir: PathBuf,
    /// `certName`: the certificate's file name in `cert_dir`. Defaults to `tls.crt`.
    pub cert_name: String,
    /// `keyName`: the key's file name in `cert_dir`. Defaults to `tls.key`.
    pub key_name: String,
}

impl WebhookServer {
    /// The path of the serving certificate: `cert_dir/cert_name`.
    #[must_use]
    pub fn cert_file(&self) -> PathBuf {
        self.cert_dir.join(&self.cert_name)
    }

    /// The path of the serving key: `cert_dir/key_name`.
    #[must_use]
    pub fn key_file(&self) -> PathBuf {
        self.cert_dir.join(&self.key_name)
    }
}

/// `webhook.config`: what goes into each ring's MutatingWebhookConfiguration (SPEC A.7).
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookConfig {
    /// `annotations`: copied onto every webhook configuration (for example a CA-injection
    /// annotation).
    pub annotations: BTreeMap<String, String>,
    /// `clientConfig`: how the API server reaches the webhook. Exactly one of `service` and
    /// `url` is set; the ring's path replaces the service's `path` or is appended to the `url`
    /// (SPEC A.7). `ca_bundle` holds the content of `caBundleFile` when that is set. Defaults to
    /// the service `sharding-system/sharder`.
    pub client_config: WebhookClientConfig,
    /// `namespaceSelector`: the namespaces of a ring that sets none. Defaults to
    /// `kubernetes.io/metadata.name NotIn [kube-system, sharding-system]`.
    pub namespace_selector: LabelSelector,
}

impl Default for SharderConfig {
    /// The Go original's defaults (its `defaults.go`), and `:9443` for the webhook server.
    fn default() -> Self {
        Self {
            client_connection: ClientConnection::default(),
            leader_election: LeaderElection {
                leader_elect: true,
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
                resource_lock: "leases".to_owned(),
                resource_name: SHARDER_LEASE.to_owned(),
                resource_namespace: SHARDER_NAMESPACE.to_owned(),
            },
            debugging: Debugging {
                enable_profiling: true,
                enable_contention_profiling: false,
            },
            health_bind_address: Some(all_interfaces(8081)),
            metrics_bind_address: Some(all_interfaces(8080)),
            sharder_controller: SharderController {
                sync_period: Duration::from_secs(5 * 60),
                concurrent_moves: 100,
            },
            webhook_server: WebhookServer {
                bind_address: all_interfaces(9443),
                cert_dir: PathBuf::from("/tmp/k8s-webhook-server/serving-certs"),
                cert_name: "tls.crt".to_owned(),
                key_name: "tls.key".to_owned(),
            },
            webhook_config: WebhookConfig {
                annotations: BTreeMap::new(),
                client_config: WebhookClientConfig {
                    service: Some(default_service()),
                    ..WebhookClientConfig::default()
                },
                namespace_selector: LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "kubernetes.io/metadata.name".to_owned(),
                        operator: "NotIn".to_owned(),
                        values: Some(vec!["kube-system".to_owned(), SHARDER_NAMESPACE.to_owned()]),
                    }]),
                    match_labels: None,
                },
            },
            graceful_shutdown_timeout: Some(Duration::from_secs(15)),
        }
    }
}

fn default_service() -> ServiceReference {
    ServiceReference {
        namespace: SHARDER_NAMESPACE.to_owned(),
        // The Go default: the sharder's Service, named like its Lease.
        name: "sharder".to_owned(),
        path: None,
        port: None,
    }
}

/// `:port` in Go: every interface.
fn all_interfaces(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
}

impl SharderConfig {
    /// Reads, parses and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses and validates a config file's content; `source` is the file named in errors.
    ///
    /// Reads the file named by `webhook.config.caBundleFile`, if any.
    pub fn from_yaml(text: &str, source: &Path) -> Result<Self> {
        // One line, such as "line 3 column 1: unknown field `x`, expected one of ...": errors are
        // logged on one line, so without the multi-line source snippet.
        let options = serde_saphyr::options! { with_snippet: false };
        let raw: RawSharderConfig =
            serde_saphyr::from_str_with_options(text, options).map_err(|error| {
                ConfigError::Parse {
                    file: source.to_owned(),
                    source: Box::new(error),
                }
            })?;
        raw.validate(source)
    }
}

/// The config file as written: the Go `SharderConfig` with its JSON field names. Every field is
/// optional; [`RawSharderConfig::validate`] applies the defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSharderConfig {
    /// `apiVersion`: must be [`API_VERSION`].
    pub api_version: Option<String>,
    /// `kind`: must be [`KIND`].
    pub kind: Option<String>,
    /// `clientConnection`.
    pub client_connection: Option<RawClientConnection>,
    /// `leaderElection`.
    pub leader_election: Option<RawLeaderElection>,
    /// `debugging`.
    pub debugging: Option<RawDebugging>,
    /// `health`.
    pub health: Option<RawEndpoint>,
    /// `metrics`.
    pub metrics: Option<RawEndpoint>,
    /// `controller`.
    pub controller: Option<RawController>,
    /// `webhook`.
    pub webhook: Option<RawWebhook>,
    /// `gracefulShutDown` (sic, the Go JSON name): a Go duration.
    #[serde(rename = "gracefulShutDown")]
    pub graceful_shut_down: Option<String>,
}

/// `clientConnection` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawClientConnection {
    /// `kubeconfig`.
    pub kubeconfig: Option<String>,
    /// `acceptContentTypes`.
    pub accept_content_types: Option<String>,
    /// `contentType`.
    pub content_type: Option<String>,
    /// `qps`.
    pub qps: Option<f32>,
    /// `burst`.
    pub burst: Option<i32>,
}

/// `leaderElection` as written; durations are Go durations.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawLeaderElection {
    /// `leaderElect`.
    pub leader_elect: Option<bool>,
    /// `leaseDuration`.
    pub lease_duration: Option<String>,
    /// `renewDeadline`.
    pub renew_deadline: Option<String>,
    /// `retryPeriod`.
    pub retry_period: Option<String>,
    /// `resourceLock`.
    pub resource_lock: Option<String>,
    /// `resourceName`.
    pub resource_name: Option<String>,
    /// `resourceNamespace`.
    pub resource_namespace: Option<String>,
}

/// `debugging` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawDebugging {
    /// `enableProfiling`.
    pub enable_profiling: Option<bool>,
    /// `enableContentionProfiling`.
    pub enable_contention_profiling: Option<bool>,
}

/// `health` or `metrics` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawEndpoint {
    /// `bindAddress`: `host:port`, `:port`, or `0` to disable.
    pub bind_address: Option<String>,
}

/// `controller` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawController {
    /// `sharder`.
    pub sharder: Option<RawSharderController>,
}

/// `controller.sharder` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawSharderController {
    /// `syncPeriod`: a Go duration.
    pub sync_period: Option<String>,
    /// `concurrentMoves`.
    pub concurrent_moves: Option<i32>,
}

/// `webhook` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWebhook {
    /// `server`.
    pub server: Option<RawWebhookServer>,
    /// `config`.
    pub config: Option<RawWebhookConfig>,
}

/// `webhook.server` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWebhookServer {
    /// `bindAddress` (our extension).
    pub bind_address: Option<String>,
    /// `certDir`.
    pub cert_dir: Option<String>,
    /// `certName`.
    pub cert_name: Option<String>,
    /// `keyName`.
    pub key_name: Option<String>,
}

/// `webhook.config` as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWebhookConfig {
    /// `annotations`.
    pub annotations: Option<BTreeMap<String, String>>,
    /// `clientConfig`.
    pub client_config: Option<RawWebhookClientConfig>,
    /// `namespaceSelector`.
    pub namespace_selector: Option<RawLabelSelector>,
    /// `caBundleFile` (our extension): a PEM file whose content becomes `clientConfig.caBundle`.
    pub ca_bundle_file: Option<String>,
}

/// `webhook.config.clientConfig` as written (admissionregistration/v1 `WebhookClientConfig`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawWebhookClientConfig {
    /// `caBundle`: base64-encoded PEM.
    pub ca_bundle: Option<ByteString>,
    /// `service`.
    pub service: Option<RawServiceReference>,
    /// `url`.
    pub url: Option<String>,
}

/// `webhook.config.clientConfig.service` as written (admissionregistration/v1
/// `ServiceReference`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawServiceReference {
    /// `namespace`.
    pub namespace: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `path`.
    pub path: Option<String>,
    /// `port`.
    pub port: Option<i32>,
}

/// `webhook.config.namespaceSelector` as written (meta/v1 `LabelSelector`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawLabelSelector {
    /// `matchLabels`.
    pub match_labels: Option<BTreeMap<String, String>>,
    /// `matchExpressions`.
    pub match_expressions: Option<Vec<RawLabelSelectorRequirement>>,
}

/// One of `matchExpressions` as written (meta/v1 `LabelSelectorRequirement`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RawLabelSelectorRequirement {
    /// `key`.
    pub key: String,
    /// `operator`: `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// `values`.
    pub values: Option<Vec<String>>,
}

impl RawSharderConfig {
    /// Applies the defaults and checks every field; `source` is the file named in errors.
    ///
    /// Reads the file named by `webhook.config.caBundleFile`, if any.
    pub fn validate(self, source: &Path) -> Result<SharderConfig> {
        let check = Check { file: source };
        check.type_meta("apiVersion", self.api_version.as_deref(), API_VERSION)?;
        check.type_meta("kind", self.kind.as_deref(), KIND)?;
        let defaults = SharderConfig::default();
        let webhook = self.webhook.unwrap_or_default();
        Ok(SharderConfig {
            client_connection: check
                .client_connection(self.client_connection.unwrap_or_default())?,
            leader_election: check.leader_election(
                self.leader_election.unwrap_or_default(),
                defaults.leader_election,
            )?,
            debugging: {
                let raw = self.debugging.unwrap_or_default();
                Debugging {
                    enable_profiling: raw
                        .enable_profiling
                        .unwrap_or(defaults.debugging.enable_profiling),
                    enable_contention_profiling: raw
                        .enable_contention_profiling
                        .unwrap_or(defaults.debugging.enable_contention_profiling),
                }
            },
            health_bind_address: check.optional_bind_address(
                "health.bindAddress",
                self.health.and_then(|health| health.bind_address),
                defaults.health_bind_address,
            )?,
            metrics_bind_address: check.optional_bind_address(
                "metrics.bindAddress",
                self.metrics.and_then(|metrics| metrics.bind_address),
                defaults.metrics_bind_address,
            )?,
            sharder_controller: check.sharder_controller(
                self.controller
                    .and_then(|controller| controller.sharder)
                    .unwrap_or_default(),
                defaults.sharder_controller,
            )?,
            webhook_server: check
                .webhook_server(webhook.server.unwrap_or_default(), defaults.webhook_server)?,
            webhook_config: check
                .webhook_config(webhook.config.unwrap_or_default(), defaults.webhook_config)?,
            graceful_shutdown_timeout: match self.graceful_shut_down {
                None => defaults.graceful_shutdown_timeout,
                // Negative means no timeout, as in controller-runtime.
                Some(text) => check.duration("gracefulShutDown", &text)?.ok(),
            },
        })
    }
}

/// Validation of one file: builds errors that name it.
struct Check<'a> {
    file: &'a Path,
}

impl Check<'_> {
    fn invalid(&self, field: &str, value: impl Display, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            field: field.to_owned(),
            message: format!("{}, got {value}", reason.into()),
        }
    }

    fn conflict(&self, field: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Conflict {
            file: self.file.to_owned(),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    fn type_meta(&self, field: &str, value: Option<&str>, expected: &str) -> Result<()> {
        match value {
            Some(value) if value == expected => Ok(()),
            Some(value) => Err(self.invalid(field, quoted(value), format!("must be {expected}"))),
            None => Err(self.invalid(field, "nothing", format!("must be {expected}"))),
        }
    }

    fn client_connection(&self, raw: RawClientConnection) -> Result<ClientConnection> {
        let qps = match raw.qps {
            Some(qps) if !qps.is_finite() => {
                return Err(self.invalid("clientConnection.qps", qps, "must be a finite number"));
            }
            // 0 is unset, and a negative rate disables the limiter as in client-go: either way no
            // client-side limit (SPEC B).
            Some(qps) if qps > 0.0 => Some(qps),
            _ => None,
        };
        let burst = match raw.burst {
            Some(burst) => match u32::try_from(burst) {
                Ok(0) => None,
                Ok(burst) => Some(burst),
                Err(_) => {
                    return Err(self.invalid(
                        "clientConnection.burst",
                        burst,
                        "must not be negative",
                    ));
                }
            },
            None => None,
        };
        Ok(ClientConnection {
            kubeconfig: non_empty(raw.kubeconfig).map(PathBuf::from),
            accept_content_types: non_empty(raw.accept_content_types),
            content_type: non_empty(raw.content_type),
            qps,
            burst,
        })
    }

    fn leader_election(
        &self,
        raw: RawLeaderElection,
        defaults: LeaderElection,
    ) -> Result<LeaderElection> {
        let lease_duration = self.positive_duration(
            "leaderElection.leaseDuration",
            raw.lease_duration,
            defaults.lease_duration,
        )?;
        let renew_deadline = self.positive_duration(
            "leaderElection.renewDeadline",
            raw.renew_deadline,
            defaults.renew_deadline,
        )?;
        let retry_period = self.positive_duration(
            "leaderElection.retryPeriod",
            raw.retry_period,
            defaults.retry_period,
        )?;
        if renew_deadline >= lease_duration {
            return Err(self.conflict(
                "leaderElection",
                format!(
                    "renewDeadline ({renew_deadline:?}) must be less than leaseDuration \
                     ({lease_duration:?})"
                ),
            ));
        }
        if retry_period >= renew_deadline {
            return Err(self.conflict(
                "leaderElection",
                format!(
                    "retryPeriod ({retry_period:?}) must be less than renewDeadline \
                     ({renew_deadline:?})"
                ),
            ));
        }
        let resource_lock = non_empty(raw.resource_lock).unwrap_or(defaults.resource_lock);
        if resource_lock != "leases" {
            return Err(self.invalid(
                "leaderElection.resourceLock",
                quoted(&resource_lock),
                "must be leases",
            ));
        }
        Ok(LeaderElection {
            leader_elect: raw.leader_elect.unwrap_or(defaults.leader_elect),
            lease_duration,
            renew_deadline,
            retry_period,
            resource_lock,
            resource_name: non_empty(raw.resource_name).unwrap_or(defaults.resource_name),
            resource_namespace: non_empty(raw.resource_namespace)
                .unwrap_or(defaults.resource_namespace),
        })
    }

    fn sharder_controller(
        &self,
        raw: RawSharderController,
        defaults: SharderController,
    ) -> Result<SharderController> {
        let sync_period = self.positive_duration(
            "controller.sharder.syncPeriod",
            raw.sync_period,
            defaults.sync_period,
        )?;
        let concurrent_moves = match raw.concurrent_moves {
            None => defaults.concurrent_moves,
            Some(moves) => usize::try_from(moves)
                .ok()
                .filter(|&moves| moves >= 1)
                .ok_or_else(|| {
                    self.invalid(
                        "controller.sharder.concurrentMoves",
                        moves,
                        "must be at least 1",
                    )
                })?,
        };
        Ok(SharderController {
            sync_period,
            concurrent_moves,
        })
    }

    fn webhook_server(
        &self,
        raw: RawWebhookServer,
        defaults: WebhookServer,
    ) -> Result<WebhookServer> {
        let bind_address = match non_empty(raw.bind_address) {
            None => defaults.bind_address,
            Some(text) => parse_bind_address(&text).ok_or_else(|| {
                self.invalid(
                    "webhook.server.bindAddress",
                    quoted(&text),
                    "must be ip:port or :port (the webhook server cannot be disabled)",
                )
            })?,
        };
        Ok(WebhookServer {
            bind_address,
            cert_dir: non_empty(raw.cert_dir).map_or(defaults.cert_dir, PathBuf::from),
            cert_name: non_empty(raw.cert_name).unwrap_or(defaults.cert_name),
            key_name: non_empty(raw.key_name).unwrap_or(defaults.key_name),
        })
    }

    fn webhook_config(
        &self,
        raw: RawWebhookConfig,
        defaults: WebhookConfig,
    ) -> Result<WebhookConfig> {
        let mut client_config = match raw.client_config {
            None => defaults.client_config,
            Some(raw) => self.client_config(raw)?,
        };
        if let Some(path) = non_empty(raw.ca_bundle_file) {
            if client_config.ca_bundle.is_some() {
                return Err(self.conflict(
                    "webhook.config",
                    "at most one of caBundleFile and clientConfig.caBundle may be set",
                ));
            }
            client_config.ca_bundle = Some(ByteString(self.ca_bundle(&path)?));
        }
        Ok(WebhookConfig {
            annotations: raw.annotations.unwrap_or_default(),
            client_config,
            namespace_selector: match raw.namespace_selector {
                None => defaults.namespace_selector,
                Some(raw) => self.label_selector("webhook.config.namespaceSelector", raw)?,
            },
        })
    }

    fn client_config(&self, raw: RawWebhookClientConfig) -> Result<WebhookClientConfig> {
        const FIELD: &str = "webhook.config.clientConfig";
        let (service, url) = match (raw.service, non_empty(raw.url)) {
            (Some(_), Some(_)) => {
                return Err(self.conflict(FIELD, "exactly one of service and url must be set"));
            }
            (Some(service), None) => (Some(self.service(service)?), None),
            (None, Some(url)) => {
                check_https_url(&url).map_err(|reason| {
                    self.invalid("webhook.config.clientConfig.url", quoted(&url), reason)
                })?;
                (None, Some(url))
            }
            // Like the Go defaults: without a target, the sharder's own Service.
            (None, None) => (Some(default_service()), None),
        };
        Ok(WebhookClientConfig {
            ca_bundle: raw.ca_bundle,
            service,
            url,
        })
    }

    fn service(&self, raw: RawServiceReference) -> Result<ServiceReference> {
        let defaults = default_service();
        if let Some(port) = raw.port
            && !(1..=65535).contains(&port)
        {
            return Err(self.invalid(
                "webhook.config.clientConfig.service.port",
                port,
                "must be between 1 and 65535",
            ));
        }
        Ok(ServiceReference {
            namespace: non_empty(raw.namespace).unwrap_or(defaults.namespace),
            name: non_empty(raw.name).unwrap_or(defaults.name),
            path: raw.path,
            port: raw.port,
        })
    }

    fn ca_bundle(&self, path: &str) -> Result<Vec<u8>> {
        const FIELD: &str = "webhook.config.caBundleFile";
        let pem = std::fs::read(path).map_err(|source| ConfigError::ReadCaBundle {
            file: self.file.to_owned(),
            field: FIELD.to_owned(),
            path: PathBuf::from(path),
            source,
        })?;
        let marker = b"-----BEGIN CERTIFICATE-----";
        if !pem.windows(marker.len()).any(|window| window == marker) {
            return Err(self.invalid(
                FIELD,
                quoted(path),
                "must name a PEM file with at least one certificate",
            ));
        }
        Ok(pem)
    }

    fn label_selector(&self, field: &str, raw: RawLabelSelector) -> Result<LabelSelector> {
        let match_expressions = raw
            .match_expressions
            .map(|requirements| {
                requirements
                    .into_iter()
                    .enumerate()
                    .map(|(index, requirement)| {
                        self.requirement(&format!("{field}.matchExpressions[{index}]"), requirement)
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?;
        Ok(LabelSelector {
            match_expressions,
            match_labels: raw.match_labels,
        })
    }

    fn requirement(
        &self,
        field: &str,
        raw: RawLabelSelectorRequirement,
    ) -> Result<LabelSelectorRequirement> {
        if raw.key.is_empty() {
            return Err(self.invalid(&format!("{field}.key"), quoted(""), "must not be empty"));
        }
        let has_values = raw.values.as_ref().is_some_and(|values| !values.is_empty());
        match (raw.operator.as_str(), has_values) {
            ("In" | "NotIn", true) | ("Exists" | "DoesNotExist", false) => {}
            ("In" | "NotIn", false) => {
                return Err(self.conflict(field, "values must be set for operator In and NotIn"));
            }
            ("Exists" | "DoesNotExist", true) => {
                return Err(self.conflict(
                    field,
                    "values must be empty for operator Exists and DoesNotExist",
                ));
            }
            (operator, _) => {
                return Err(self.invalid(
                    &format!("{field}.operator"),
                    quoted(operator),
                    "must be In, NotIn, Exists or DoesNotExist",
                ));
            }
        }
        Ok(LabelSelectorRequirement {
            key: raw.key,
            operator: raw.operator,
            values: raw.values,
        })
    }

    /// A Go duration: `Ok` when zero or positive, `Err` with the magnitude when negative.
    fn duration(&self, field: &str, text: &str) -> Result<Result<Duration, Duration>> {
        let nanos =
            operations::duration::parse_nanos(text).map_err(|error| ConfigError::Invalid {
                file: self.file.to_owned(),
                field: field.to_owned(),
                message: error.to_string(),
            })?;
        let magnitude = Duration::from_nanos(nanos.unsigned_abs());
        Ok(if nanos < 0 {
            Err(magnitude)
        } else {
            Ok(magnitude)
        })
    }

    fn positive_duration(
        &self,
        field: &str,
        text: Option<String>,
        default: Duration,
    ) -> Result<Duration> {
        let Some(text) = text else {
            return Ok(default);
        };
        match self.duration(field, &text)? {
            Ok(duration) if !duration.is_zero() => Ok(duration),
            _ => Err(self.invalid(field, quoted(&text), "must be positive")),
        }
    }

    /// `health.bindAddress` or `metrics.bindAddress`: empty means the default, `0` disables.
    fn optional_bind_address(
        &self,
        field: &str,
        text: Option<String>,
        default: Option<SocketAddr>,
    ) -> Result<Option<SocketAddr>> {
        match non_empty(text) {
            None => Ok(default),
            Some(text) if text == "0" => Ok(None),
            Some(text) => parse_bind_address(&text).map(Some).ok_or_else(|| {
                self.invalid(
                    field,
                    quoted(&text),
                    "must be ip:port, :port or 0 to disable",
                )
            }),
        }
    }
}

/// Parses a Go listen address other than `0`: `ip:port`, `[ipv6]:port` or `:port` (every
/// interface).
fn parse_bind_address(text: &str) -> Option<SocketAddr> {
    match text.strip_prefix(':') {
        Some(port) => port.parse().ok().map(all_interfaces),
        None => text.parse().ok(),
    }
}

/// Checks what the API server requires of a webhook URL.
fn check_https_url(url: &str) -> std::result::Result<(), &'static str> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err("must start with https://");
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err("must have a host");
    }
    if host.contains('@') {
        return Err("must not contain user info");
    }
    if url.contains(['?', '#']) {
        return Err("must not contain a query or a fragment");
    }
    Ok(())
}

/// Go treats an empty string like an unset field.
fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|text| !text.is_empty())
}

/// A string value as shown in errors.
fn quoted(text: &str) -> String {
    format!("{text:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "sharder.yaml";

    fn parse(text: &str) -> Result<SharderConfig> {
        SharderConfig::from_yaml(text, Path::new(FILE))
    }

    /// A file with the required type meta and then `body`.
    fn parse_body(body: &str) -> Result<SharderConfig> {
        parse(&format!("apiVersion: {API_VERSION}\nkind: {KIND}\n{body}"))
    }

    fn error_text(body: &str) -> String {
        operations::error_chain(&parse_body(body).expect_err("the config must be rejected"))
    }

    /// A file in the temp directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, content: &str) -> Self {
            let path =
                std::env::temp_dir().join(format!("sharder-config-{}-{name}", std::process::id()));
            std::fs::write(&path, content).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn client_connection_has_no_defaults_and_no_rate_limit() {
        assert_eq!(
            SharderConfig::default().client_connection,
            ClientConnection {
                kubeconfig: None,
                accept_content_types: None,
                content_type: None,
                qps: None,
                burst: None,
            }
        );
    }

    #[test]
    fn leader_election_defaults_to_the_go_values() {
        assert_eq!(
            SharderConfig::default().leader_election,
            LeaderElection {
                leader_elect: true,
                lease_duration: Duration::from_secs(15),
                renew_deadline: Duration::from_secs(10),
                retry_period: Duration::from_secs(2),
                resource_lock: "leases".to_owned(),
                resource_name: "sharder".to_owned(),
                resource_namespace: "sharding-system".to_owned(),
            }
        );
    }

    #[test]
    fn debugging_defaults_to_profiling_without_contention_profiling() {
        assert_eq!(
            SharderConfig::default().debugging,
            Debugging {
                enable_profiling: true,
                enable_contention_profiling: false,
            }
        );
    }

    #[test]
    fn health_metrics_and_shutdown_default_to_the_go_values() {
        let config = SharderConfig::default();
        assert_eq!(
            config.health_bind_address,
            Some("0.0.0.0:8081".parse().unwrap())
        );
        assert_eq!(
            config.metrics_bind_address,
            Some("0.0.0.0:8080".parse().unwrap())
        );
        assert_eq!(
            config.graceful_shutdown_timeout,
            Some(Duration::from_secs(15))
        );
    }

    #[test]
    fn sharder_controller_defaults_to_five_minutes_and_100_moves() {
        assert_eq!(
            SharderConfig::default().sharder_controller,
            SharderController {
                sync_period: Duration::from_secs(300),
                concurrent_moves: 100,
            }
        );
    }

    #[test]
    fn webhook_server_defaults_to_port_9443_and_the_controller_runtime_cert_paths() {
        let server = SharderConfig::default().webhook_server;
        assert_eq!(
            server,
            WebhookServer {
                bind_address: "0.0.0.0:9443".parse().unwrap(),
                cert_dir: PathBuf::from("/tmp/k8s-webhook-server/serving-certs"),
                cert_name: "tls.crt".to_owned(),
                key_name: "tls.key".to_owned(),
            }
        );
        assert_eq!(
            server.cert_file(),
            Path::new("/tmp/k8s-webhook-server/serving-certs/tls.crt")
        );
        assert_eq!(
            server.key_file(),
            Path::new("/tmp/k8s-webhook-server/serving-certs/tls.key")
        );
    }

    #[test]
    fn webhook_config_defaults_to_the_sharder_service_and_excludes_system_namespaces() {
        assert_eq!(
            SharderConfig::default().webhook_config,
            WebhookConfig {
                annotations: BTreeMap::new(),
                client_config: WebhookClientConfig {
                    ca_bundle: None,
                    service: Some(ServiceReference {
                        namespace: "sharding-system".to_owned(),
                        name: "sharder".to_owned(),
                        path: None,
                        port: None,
                    }),
                    url: None,
                },
                namespace_selector: LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: "kubernetes.io/metadata.name".to_owned(),
                        operator: "NotIn".to_owned(),
                        values: Some(vec!["kube-system".to_owned(), "sharding-system".to_owned()]),
                    }]),
                    match_labels: None,
                },
            }
        );
    }

    #[test]
    fn a_file_with_only_type_meta_gets_every_default() {
        assert_eq!(parse_body("").unwrap(), SharderConfig::default());
    }

    #[test]
    fn empty_sections_and_empty_strings_get_the_defaults() {
        let config = parse_body(
            "clientConnection: {}\nleaderElection:\n  resourceName: ''\ndebugging:\nhealth: {}\n\
             metrics:\n  bindAddress: ''\ncontroller: {sharder: {}}\n\
             webhook: {server: {certDir: ''}, config: {clientConfig: {}}}\n",
        )
        .unwrap();
        assert_eq!(config, SharderConfig::default());
    }

    #[test]
    fn the_example_file_holds_exactly_the_defaults() {
        let example = include_str!("../config/sharder.yaml");
        assert_eq!(
            SharderConfig::from_yaml(example, Path::new("config/sharder.yaml")).unwrap(),
            SharderConfig::default()
        );
    }

    #[test]
    fn the_go_originals_example_file_is_accepted() {
        let config = parse_body(
            "clientConnection:\n  qps: 1000\n  burst: 1200\nwebhook:\n  config:\n    annotations:\n\
             \x20     cert-manager.io/inject-ca-from: sharding-system/webhook-server\n",
        )
        .unwrap();
        assert_eq!(config.client_connection.qps, Some(1000.0));
        assert_eq!(config.client_connection.burst, Some(1200));
        assert_eq!(
            config.webhook_config.annotations,
            BTreeMap::from([(
                "cert-manager.io/inject-ca-from".to_owned(),
                "sharding-system/webhook-server".to_owned()
            )])
        );
    }

    /// Every field set to a value other than its default; `CA_FILE` is replaced by a path.
    const FULL: &str = r#"apiVersion: config.sharding.timebertt.dev/v1alpha1
kind: SharderConfig
clientConnection:
  kubeconfig: /etc/kubeconfig
  acceptContentTypes: application/json
  contentType: application/json
  qps: 50.5
  burst: 80
leaderElection:
  leaderElect: false
  leaseDuration: 1m
  renewDeadline: 45s
  retryPeriod: 1.5s
  resourceLock: leases
  resourceName: my-sharder
  resourceNamespace: my-system
debugging:
  enableProfiling: false
  enableContentionProfiling: true
health:
  bindAddress: 127.0.0.1:9081
metrics:
  bindAddress: "0"
controller:
  sharder:
    syncPeriod: 1h30m
    concurrentMoves: 7
webhook:
  server:
    bindAddress: "[::1]:10443"
    certDir: /certs
    certName: cert.pem
    keyName: key.pem
  config:
    annotations:
      example.com/a: b
    clientConfig:
      url: https://sharder.example.com:10443/
    caBundleFile: CA_FILE
    namespaceSelector:
      matchLabels:
        sharded: "true"
      matchExpressions:
        - key: team
          operator: Exists
gracefulShutDown: -1s
"#;

    #[test]
    fn a_full_file_sets_every_field() {
        let ca = TempFile::new("full-ca.crt", PEM);
        let text = FULL.replace("CA_FILE", &ca.0.display().to_string());
        let config = parse(&text).unwrap();
        assert_eq!(
            config,
            SharderConfig {
                client_connection: ClientConnection {
                    kubeconfig: Some(PathBuf::from("/etc/kubeconfig")),
                    accept_content_types: Some("application/json".to_owned()),
                    content_type: Some("application/json".to_owned()),
                    qps: Some(50.5),
                    burst: Some(80),
                },
                leader_election: LeaderElection {
                    leader_elect: false,
                    lease_duration: Duration::from_secs(60),
                    renew_deadline: Duration::from_secs(45),
                    retry_period: Duration::from_millis(1500),
                    resource_lock: "leases".to_owned(),
                    resource_name: "my-sharder".to_owned(),
                    resource_namespace: "my-system".to_owned(),
                },
                debugging: Debugging {
                    enable_profiling: false,
                    enable_contention_profiling: true,
                },
                health_bind_address: Some("127.0.0.1:9081".parse().unwrap()),
                metrics_bind_address: None,
                sharder_controller: SharderController {
                    sync_period: Duration::from_secs(5400),
                    concurrent_moves: 7,
                },
                webhook_server: WebhookServer {
                    bind_address: "[::1]:10443".parse().unwrap(),
                    cert_dir: PathBuf::from("/certs"),
                    cert_name: "cert.pem".to_owned(),
                    key_name: "key.pem".to_owned(),
                },
                webhook_config: WebhookConfig {
                    annotations: BTreeMap::from([("example.com/a".to_owned(), "b".to_owned())]),
                    client_config: WebhookClientConfig {
                        ca_bundle: Some(ByteString(PEM.as_bytes().to_vec())),
                        service: None,
                        url: Some("https://sharder.example.com:10443/".to_owned()),
                    },
                    namespace_selector: LabelSelector {
                        match_expressions: Some(vec![LabelSelectorRequirement {
                            key: "team".to_owned(),
                            operator: "Exists".to_owned(),
                            values: None,
                        }]),
                        match_labels: Some(BTreeMap::from([(
                            "sharded".to_owned(),
                            "true".to_owned()
                        )])),
                    },
                },
                graceful_shutdown_timeout: None,
            }
        );
    }

    #[test]
    fn a_service_keeps_its_port_and_path_and_defaults_its_name() {
        let config = parse_body(
            "webhook:\n  config:\n    clientConfig:\n      caBundle: Zm9v\n      service:\n\
             \x20       namespace: other\n        path: /ignored\n        port: 8443\n",
        )
        .unwrap();
        assert_eq!(
            config.webhook_config.client_config,
            WebhookClientConfig {
                ca_bundle: Some(ByteString(b"foo".to_vec())),
                service: Some(ServiceReference {
                    namespace: "other".to_owned(),
                    name: "sharder".to_owned(),
                    path: Some("/ignored".to_owned()),
                    port: Some(8443),
                }),
                url: None,
            }
        );
    }

    #[test]
    fn zero_disables_health_and_metrics_and_port_zero_picks_a_free_port() {
        let config = parse_body(
            "health: {bindAddress: '0'}\nmetrics: {bindAddress: ':0'}\n\
             webhook: {server: {bindAddress: '127.0.0.1:0'}}\n",
        )
        .unwrap();
        assert_eq!(config.health_bind_address, None);
        assert_eq!(
            config.metrics_bind_address,
            Some("0.0.0.0:0".parse().unwrap())
        );
        assert_eq!(
            config.webhook_server.bind_address,
            "127.0.0.1:0".parse().unwrap()
        );
    }

    #[test]
    fn a_zero_graceful_shutdown_does_not_wait_and_a_negative_one_waits_forever() {
        assert_eq!(
            parse_body("gracefulShutDown: 0s\n")
                .unwrap()
                .graceful_shutdown_timeout,
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_body("gracefulShutDown: '0'\n")
                .unwrap()
                .graceful_shutdown_timeout,
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_body("gracefulShutDown: -1s\n")
                .unwrap()
                .graceful_shutdown_timeout,
            None
        );
    }

    #[test]
    fn a_zero_or_negative_qps_means_no_client_side_limit() {
        for qps in ["0", "-1"] {
            let config =
                parse_body(&format!("clientConnection: {{qps: {qps}, burst: 0}}\n")).unwrap();
            assert_eq!(config.client_connection.qps, None, "qps {qps}");
            assert_eq!(config.client_connection.burst, None, "qps {qps}");
        }
    }

    #[test]
    fn load_reads_the_file_and_names_it_in_errors() {
        let file = TempFile::new(
            "load.yaml",
            &format!("apiVersion: {API_VERSION}\nkind: {KIND}\n"),
        );
        assert_eq!(
            SharderConfig::load(&file.0).unwrap(),
            SharderConfig::default()
        );

        let missing = std::env::temp_dir().join("sharder-config-does-not-exist.yaml");
        let error = SharderConfig::load(&missing).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("cannot read sharder config {}", missing.display())
        );
    }

    #[test]
    fn unknown_fields_are_rejected_with_the_file_and_the_field() {
        for (body, field) in [
            ("gracefulShutdown: 15s\n", "gracefulShutdown"),
            (
                "leaderElection: {leaseDurationSeconds: 15}\n",
                "leaseDurationSeconds",
            ),
            (
                "controller: {sharder: {concurrentSyncs: 5}}\n",
                "concurrentSyncs",
            ),
            (
                "webhook: {config: {clientConfig: {service: {nam: x}}}}\n",
                "nam",
            ),
            (
                "webhook: {config: {namespaceSelector: {matchExpression: []}}}\n",
                "matchExpression",
            ),
        ] {
            let error = parse_body(body).unwrap_err();
            assert!(matches!(error, ConfigError::Parse { .. }), "{error:?}");
            let text = operations::error_chain(&error);
            assert!(
                text.starts_with("sharder.yaml: cannot parse sharder config: "),
                "{text}"
            );
            assert!(text.contains("unknown field"), "{text}");
            assert!(text.contains(&format!("`{field}`")), "{text}");
        }
    }

    #[test]
    fn an_unknown_field_error_names_the_file_the_field_and_its_line() {
        assert_eq!(
            error_text("gracefulShutdown: 15s\n"),
            "sharder.yaml: cannot parse sharder config: unknown field `gracefulShutdown`, \
             expected one of apiVersion, kind, clientConnection, leaderElection, debugging, \
             health, metrics, controller, webhook, gracefulShutDown at line 3, column 1"
        );
    }

    #[test]
    fn a_wrong_type_is_a_parse_error() {
        let text = error_text("controller: {sharder: {concurrentMoves: many}}\n");
        assert!(
            text.starts_with("sharder.yaml: cannot parse sharder config: "),
            "{text}"
        );
    }

    #[test]
    fn a_wrong_or_missing_api_version_or_kind_is_rejected() {
        let text = |yaml: &str| parse(yaml).unwrap_err().to_string();
        assert_eq!(
            text("apiVersion: v1\nkind: SharderConfig\n"),
            "sharder.yaml: apiVersion: must be config.sharding.timebertt.dev/v1alpha1, got \"v1\""
        );
        assert_eq!(
            text("kind: SharderConfig\n"),
            "sharder.yaml: apiVersion: must be config.sharding.timebertt.dev/v1alpha1, got nothing"
        );
        assert_eq!(
            text(&format!("apiVersion: {API_VERSION}\nkind: ShardConfig\n")),
            "sharder.yaml: kind: must be SharderConfig, got \"ShardConfig\""
        );
        assert_eq!(
            text(&format!("apiVersion: {API_VERSION}\n")),
            "sharder.yaml: kind: must be SharderConfig, got nothing"
        );
    }

    #[test]
    fn each_invalid_number_or_duration_is_named_with_its_field_and_value() {
        for (body, expected) in [
            (
                "controller: {sharder: {concurrentMoves: 0}}",
                "sharder.yaml: controller.sharder.concurrentMoves: must be at least 1, got 0",
            ),
            (
                "controller: {sharder: {concurrentMoves: -3}}",
                "sharder.yaml: controller.sharder.concurrentMoves: must be at least 1, got -3",
            ),
            (
                "controller: {sharder: {syncPeriod: 0s}}",
                "sharder.yaml: controller.sharder.syncPeriod: must be positive, got \"0s\"",
            ),
            (
                "controller: {sharder: {syncPeriod: 5}}",
                "sharder.yaml: controller.sharder.syncPeriod: invalid duration \"5\": missing \
                 unit, expected e.g. 20s, 500ms, 1h30m",
            ),
            (
                "leaderElection: {leaseDuration: 15x}",
                "sharder.yaml: leaderElection.leaseDuration: invalid duration \"15x\": unknown \
                 unit \"x\"",
            ),
            (
                "leaderElection: {retryPeriod: -2s}",
                "sharder.yaml: leaderElection.retryPeriod: must be positive, got \"-2s\"",
            ),
            (
                "leaderElection: {resourceLock: endpointsleases}",
                "sharder.yaml: leaderElection.resourceLock: must be leases, got \
                 \"endpointsleases\"",
            ),
            (
                "gracefulShutDown: soon",
                "sharder.yaml: gracefulShutDown: invalid duration \"soon\": expected e.g. 20s, \
                 500ms, 1h30m",
            ),
            (
                "clientConnection: {burst: -1}",
                "sharder.yaml: clientConnection.burst: must not be negative, got -1",
            ),
            (
                "clientConnection: {qps: .inf}",
                "sharder.yaml: clientConnection.qps: must be a finite number, got inf",
            ),
        ] {
            let error = parse_body(body).unwrap_err();
            assert!(matches!(error, ConfigError::Invalid { .. }), "{error:?}");
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn each_invalid_address_is_named_with_its_field_and_value() {
        for (body, expected) in [
            (
                "health: {bindAddress: '8081'}",
                "sharder.yaml: health.bindAddress: must be ip:port, :port or 0 to disable, \
                 got \"8081\"",
            ),
            (
                "metrics: {bindAddress: 'localhost:8080'}",
                "sharder.yaml: metrics.bindAddress: must be ip:port, :port or 0 to disable, \
                 got \"localhost:8080\"",
            ),
            (
                "webhook: {server: {bindAddress: '0'}}",
                "sharder.yaml: webhook.server.bindAddress: must be ip:port or :port (the webhook \
                 server cannot be disabled), got \"0\"",
            ),
            (
                "webhook: {server: {bindAddress: ':99999'}}",
                "sharder.yaml: webhook.server.bindAddress: must be ip:port or :port (the webhook \
                 server cannot be disabled), got \":99999\"",
            ),
            (
                "webhook: {config: {clientConfig: {url: 'http://sharder:9443'}}}",
                "sharder.yaml: webhook.config.clientConfig.url: must start with https://, got \
                 \"http://sharder:9443\"",
            ),
            (
                "webhook: {config: {clientConfig: {url: 'https:///path'}}}",
                "sharder.yaml: webhook.config.clientConfig.url: must have a host, got \
                 \"https:///path\"",
            ),
            (
                "webhook: {config: {clientConfig: {url: 'https://user@sharder'}}}",
                "sharder.yaml: webhook.config.clientConfig.url: must not contain user info, got \
                 \"https://user@sharder\"",
            ),
            (
                "webhook: {config: {clientConfig: {url: 'https://sharder/?a=b'}}}",
                "sharder.yaml: webhook.config.clientConfig.url: must not contain a query or a \
                 fragment, got \"https://sharder/?a=b\"",
            ),
            (
                "webhook: {config: {clientConfig: {service: {port: 0}}}}",
                "sharder.yaml: webhook.config.clientConfig.service.port: must be between 1 and \
                 65535, got 0",
            ),
            (
                "webhook: {config: {namespaceSelector: {matchExpressions: \
                 [{key: a, operator: Exists}, {key: b, operator: Has}]}}}",
                "sharder.yaml: webhook.config.namespaceSelector.matchExpressions[1].operator: \
                 must be In, NotIn, Exists or DoesNotExist, got \"Has\"",
            ),
            (
                "webhook: {config: {namespaceSelector: {matchExpressions: \
                 [{key: '', operator: Exists}]}}}",
                "sharder.yaml: webhook.config.namespaceSelector.matchExpressions[0].key: \
                 must not be empty, got \"\"",
            ),
        ] {
            let error = parse_body(body).unwrap_err();
            assert!(matches!(error, ConfigError::Invalid { .. }), "{error:?}");
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn each_conflict_is_named_with_its_field() {
        for (body, expected) in [
            (
                "leaderElection: {leaseDuration: 10s}",
                "sharder.yaml: leaderElection: renewDeadline (10s) must be less than \
                 leaseDuration (10s)",
            ),
            (
                "leaderElection: {renewDeadline: 1500ms}",
                "sharder.yaml: leaderElection: retryPeriod (2s) must be less than renewDeadline \
                 (1.5s)",
            ),
            (
                "webhook: {config: {clientConfig: {url: 'https://sharder', service: {}}}}",
                "sharder.yaml: webhook.config.clientConfig: exactly one of service and url must \
                 be set",
            ),
            (
                "webhook: {config: {clientConfig: {caBundle: Zm9v}, caBundleFile: /ca.crt}}",
                "sharder.yaml: webhook.config: at most one of caBundleFile and \
                 clientConfig.caBundle may be set",
            ),
            (
                "webhook: {config: {namespaceSelector: {matchExpressions: \
                 [{key: a, operator: In, values: []}]}}}",
                "sharder.yaml: webhook.config.namespaceSelector.matchExpressions[0]: values must \
                 be set for operator In and NotIn",
            ),
            (
                "webhook: {config: {namespaceSelector: {matchExpressions: \
                 [{key: a, operator: DoesNotExist, values: [x]}]}}}",
                "sharder.yaml: webhook.config.namespaceSelector.matchExpressions[0]: values must \
                 be empty for operator Exists and DoesNotExist",
            ),
        ] {
            let error = parse_body(body).unwrap_err();
            assert!(matches!(error, ConfigError::Conflict { .. }), "{error:?}");
            assert_eq!(error.to_string(), expected);
        }
    }

    #[test]
    fn a_ca_bundle_file_must_exist_and_hold_a_certificate() {
        let missing = std::env::temp_dir().join("sharder-config-missing-ca.crt");
        let error = parse_body(&format!(
            "webhook: {{config: {{caBundleFile: {}}}}}",
            missing.display()
        ))
        .unwrap_err();
        assert!(
            matches!(error, ConfigError::ReadCaBundle { .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            format!(
                "sharder.yaml: webhook.config.caBundleFile: cannot read {}",
                missing.display()
            )
        );

        let not_pem = TempFile::new("not-pem.crt", "hello");
        assert_eq!(
            error_text(&format!(
                "webhook: {{config: {{caBundleFile: {}}}}}",
                not_pem.0.display()
            )),
            format!(
                "sharder.yaml: webhook.config.caBundleFile: must name a PEM file with at least \
                 one certificate, got {:?}",
                not_pem.0.display().to_string()
            )
        );
    }

    #[test]
    fn a_ca_bundle_file_fills_the_default_service_client_config() {
        let ca = TempFile::new("service-ca.crt", PEM);
        let config = parse_body(&format!(
            "webhook: {{config: {{caBundleFile: {}}}}}",
            ca.0.display()
        ))
        .unwrap();
        assert_eq!(
            config.webhook_config.client_config,
            WebhookClientConfig {
                ca_bundle: Some(ByteString(PEM.as_bytes().to_vec())),
                service: Some(default_service()),
                url: None,
            }
        );
    }
}
