//! The sharder's configuration file (docs/contract.md#sharder-behaviour).
//!
//! The file is the Go original's `SharderConfig` (`config.sharding.timebertt.dev/v1alpha1`), so a
//! config file written for the Go sharder works here unchanged. serde reads it straight into
//! [`SharderConfig`]: Go's JSON field names, Go's defaults for missing fields and for
//! empty strings (which Go treats as unset), k8s-openapi's types where Go uses Kubernetes types,
//! and newtypes such as [`PositiveDuration`] whose `Deserialize` rejects a bad value. Unknown
//! fields are rejected, inside the Kubernetes types too. `SharderConfig::validate` then checks
//! what no single value can: the rules across fields, and those inside the Kubernetes types.
//! Errors name the file, the field path and the bad value.
//!
//! Three fields extend the original for running the sharder outside a cluster:
//! `webhook.server.bindAddress` (the Go sharder always listens on `:9443`),
//! `webhook.config.caBundleFile` (a PEM file whose content becomes the webhook configuration's
//! `caBundle`, where in a cluster cert-manager injects it) and `metrics.secureServing` (the Go
//! sharder always serves `/metrics` securely; `false` serves plain HTTP for local runs,
//! docs/metrics-security.md#defaults). Five more bound what a client can hold of the webhook
//! server (docs/sharder.md#the-webhook-under-load): `webhook.server.headerReadTimeout`,
//! `bodyReadTimeout`, `maxConcurrentRequests`, `maxRequestBodyBytes` and
//! `maxInFlightBodyBytes`.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{ServiceReference, WebhookClientConfig};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube_sharding::api::labels::{SHARDER_LEASE, SHARDER_NAMESPACE};
use serde::{Deserialize, Deserializer, de::Error as _};

use crate::webhook::{configuration::default_namespace_selector, limits::Limits};

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
        /// What is wrong with the shape.
        #[source]
        source: ShapeError,
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
    #[error(
        "{}: {field}: cannot read {} (for a sharder on this machine, `sharder webhook-certs \
         --local DIR` writes DIR/ca.crt and the serving certificate)",
        file.display(),
        path.display()
    )]
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

/// Why a file does not have the shape of a SharderConfig.
#[derive(Debug, thiserror::Error)]
pub enum ShapeError {
    /// The YAML parser's error, which names the field and its line.
    #[error(transparent)]
    Yaml(Box<serde_saphyr::Error>),
    /// A field that a Kubernetes type in the file does not have (those types ignore unknown
    /// fields themselves).
    #[error("{parent}: unknown field `{field}`")]
    UnknownField {
        /// The path of the object that holds the field.
        parent: String,
        /// The field's name.
        field: String,
    },
}

/// The result of loading a sharder config.
pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The sharder configuration, with every default applied: the Go `SharderConfig`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SharderConfig {
    /// `apiVersion`: [`API_VERSION`]; `None` when the file has none, which
    /// [`SharderConfig::from_yaml`] rejects.
    #[serde(default)]
    pub api_version: Option<ApiVersion>,
    /// `kind`: [`KIND`]; `None` when the file has none, which [`SharderConfig::from_yaml`]
    /// rejects.
    #[serde(default)]
    pub kind: Option<Kind>,
    /// `clientConnection`: how to reach the API server.
    #[serde(deserialize_with = "section")]
    pub client_connection: ClientConnection,
    /// `leaderElection`: the sharder's leader election for its controllers.
    #[serde(deserialize_with = "section")]
    pub leader_election: LeaderElection,
    /// `debugging`: the component-base debugging switches, accepted for compatibility.
    #[serde(deserialize_with = "section")]
    pub debugging: Debugging,
    /// `health`: where `/healthz` and `/readyz` are served, `:8081` by default.
    #[serde(deserialize_with = "section")]
    pub health: Endpoint<ListenAddress<8081>>,
    /// `metrics`: where and how `/metrics` is served.
    #[serde(deserialize_with = "section")]
    pub metrics: MetricsEndpoint,
    /// `controller`: the sharder's controllers.
    #[serde(deserialize_with = "section")]
    pub controller: Controller,
    /// `webhook`: the assignment webhook's server and configuration.
    #[serde(deserialize_with = "section")]
    pub webhook: Webhook,
    /// `gracefulShutDown` (sic, the Go JSON name): how long the sharder's tasks get to stop
    /// after a shutdown signal.
    #[serde(rename = "gracefulShutDown")]
    pub graceful_shutdown_timeout: GracefulShutdown,
}

/// `clientConnection` (component-base `ClientConnectionConfiguration`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientConnection {
    /// `kubeconfig`: path of a kubeconfig file; `None` uses the usual lookup (`KUBECONFIG`,
    /// `~/.kube/config`, in-cluster).
    #[serde(deserialize_with = "non_empty")]
    pub kubeconfig: Option<PathBuf>,
    /// `acceptContentTypes`: the `Accept` header for API requests; `None` leaves the client's.
    #[serde(deserialize_with = "non_empty")]
    pub accept_content_types: Option<String>,
    /// `contentType`: the content type of request bodies; `None` leaves the client's.
    #[serde(deserialize_with = "non_empty")]
    pub content_type: Option<String>,
    /// `qps`: the client-side request rate limit. `None` (unset, `0` or negative) means no
    /// client-side limit, the default (docs/contract.md#sharder-behaviour).
    #[serde(deserialize_with = "qps")]
    pub qps: Option<f32>,
    /// `burst`: the burst allowed above `qps`; `None` when unset or `0`.
    #[serde(deserialize_with = "burst")]
    pub burst: Option<u32>,
}

/// `leaderElection` (component-base `LeaderElectionConfiguration`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct LeaderElection {
    /// `leaderElect`: whether the controllers run only on the leader. Defaults to true.
    pub leader_elect: bool,
    /// `leaseDuration`: how long non-leaders wait before taking over. Defaults to 15 s.
    pub lease_duration: PositiveDuration,
    /// `renewDeadline`: how long the leader retries renewing before it gives up leadership.
    /// Less than `lease_duration`; defaults to 10 s.
    pub renew_deadline: PositiveDuration,
    /// `retryPeriod`: the wait between attempts to acquire or renew. Less than
    /// `renew_deadline`; defaults to 2 s.
    pub retry_period: PositiveDuration,
    /// `resourceLock`: the lock object type; only `leases` is supported.
    pub resource_lock: ResourceLock,
    /// `resourceName`: the name of the Lease. Defaults to `sharder`.
    #[serde(deserialize_with = "resource_name")]
    pub resource_name: String,
    /// `resourceNamespace`: the namespace of the Lease. Defaults to `sharding-system`.
    #[serde(deserialize_with = "resource_namespace")]
    pub resource_namespace: String,
}

impl Default for LeaderElection {
    fn default() -> Self {
        Self {
            leader_elect: true,
            lease_duration: PositiveDuration::from_secs(15),
            renew_deadline: PositiveDuration::from_secs(10),
            retry_period: PositiveDuration::from_secs(2),
            resource_lock: ResourceLock,
            resource_name: SHARDER_LEASE.to_owned(),
            resource_namespace: SHARDER_NAMESPACE.to_owned(),
        }
    }
}

/// `debugging` (component-base `DebuggingConfiguration`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Debugging {
    /// `enableProfiling`: whether profiling endpoints may be served. Defaults to true.
    pub enable_profiling: bool,
    /// `enableContentionProfiling`: whether lock contention is profiled. Defaults to false.
    pub enable_contention_profiling: bool,
}

impl Default for Debugging {
    fn default() -> Self {
        Self {
            enable_profiling: true,
            enable_contention_profiling: false,
        }
    }
}

/// `health`: an endpoint served over plain HTTP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Endpoint<A> {
    /// `bindAddress`: where the endpoint is served, if at all.
    pub bind_address: A,
}

/// `metrics`: where and how `/metrics` is served (docs/metrics-security.md#defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct MetricsEndpoint {
    /// `bindAddress`: where `/metrics` is served, if at all; `:8080` by default like the Go
    /// defaults.
    pub bind_address: ListenAddress<8080>,
    /// `secureServing`: HTTPS, with scrapers authorized by TokenReview and
    /// SubjectAccessReview, as the Go sharder always serves it (the default); `false` serves
    /// plain HTTP to anyone, for local runs. An extension of the Go config.
    pub secure_serving: bool,
}

impl Default for MetricsEndpoint {
    fn default() -> Self {
        Self {
            bind_address: ListenAddress::default(),
            secure_serving: true,
        }
    }
}

/// `controller`: the sharder's controllers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Controller {
    /// `sharder`: the resync of object assignments.
    #[serde(deserialize_with = "section")]
    pub sharder: SharderController,
}

/// `controller.sharder`: the resync of object assignments (docs/contract.md#sharder-behaviour).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SharderController {
    /// `syncPeriod`: how often every ring is resynced. Defaults to 5 min.
    pub sync_period: PositiveDuration,
    /// `concurrentMoves`: how many objects of one ring are moved or drained at once. Defaults
    /// to 100.
    pub concurrent_moves: ConcurrentMoves,
}

impl Default for SharderController {
    fn default() -> Self {
        Self {
            sync_period: PositiveDuration::from_secs(5 * 60),
            concurrent_moves: ConcurrentMoves(100),
        }
    }
}

/// `webhook`: the assignment webhook.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Webhook {
    /// `server`: the HTTPS server of the assignment webhook.
    #[serde(deserialize_with = "section")]
    pub server: WebhookServer,
    /// `config`: the MutatingWebhookConfiguration written per ControllerRing
    /// (docs/contract.md#webhook).
    #[serde(deserialize_with = "section")]
    pub config: WebhookConfig,
}

/// `webhook.server`: the HTTPS server of the assignment webhook.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookServer {
    /// `bindAddress` (our extension): where the webhook server listens. Defaults to `:9443`, the
    /// Go sharder's fixed port; it cannot be disabled.
    pub bind_address: WebhookAddress,
    /// `certDir`: the directory of the serving certificate and key. Defaults to
    /// `/tmp/k8s-webhook-server/serving-certs`.
    #[serde(deserialize_with = "cert_dir")]
    pub cert_dir: PathBuf,
    /// `certName`: the certificate's file name in `cert_dir`. Defaults to `tls.crt`.
    #[serde(deserialize_with = "cert_name")]
    pub cert_name: String,
    /// `keyName`: the key's file name in `cert_dir`. Defaults to `tls.key`.
    #[serde(deserialize_with = "key_name")]
    pub key_name: String,
    /// `headerReadTimeout` (our extension): how long a client may take for the TLS handshake,
    /// for a request's headers, and between requests on a keep-alive connection. Defaults to
    /// 10 s, like the `ReadHeaderTimeout` Go servers commonly set.
    pub header_read_timeout: PositiveDuration,
    /// `bodyReadTimeout` (our extension): how long a client may take for a request's body once
    /// its headers are read. Defaults to 10 s; the API server's own call times out after 5 s.
    pub body_read_timeout: PositiveDuration,
    /// `maxConcurrentRequests` (our extension): requests handled at once; more are answered 429
    /// at once. Defaults to 256, room for `concurrentMoves` calls of a few rings' moves.
    pub max_concurrent_requests: AtLeastOne,
    /// `maxRequestBodyBytes` (our extension): the largest request body; a larger one is answered
    /// 413. Defaults to 7 MiB: the API server accepts objects of up to 3 MiB, and an UPDATE's
    /// review carries the object and the old object.
    pub max_request_body_bytes: AtLeastOne,
    /// `maxInFlightBodyBytes` (our extension): request body bytes held by all requests
    /// together; a request whose body does not fit is answered 429. At least
    /// `maxRequestBodyBytes`; defaults to 16 MiB, two reviews of the largest size or thousands of
    /// common ones.
    pub max_in_flight_body_bytes: AtLeastOne,
}

const CERT_DIR: &str = "/tmp/k8s-webhook-server/serving-certs";
const CERT_NAME: &str = "tls.crt";
const KEY_NAME: &str = "tls.key";
const MIB: u32 = 1024 * 1024;

impl Default for WebhookServer {
    fn default() -> Self {
        Self {
            bind_address: WebhookAddress::default(),
            cert_dir: PathBuf::from(CERT_DIR),
            cert_name: CERT_NAME.to_owned(),
            key_name: KEY_NAME.to_owned(),
            header_read_timeout: PositiveDuration::from_secs(10),
            body_read_timeout: PositiveDuration::from_secs(10),
            max_concurrent_requests: AtLeastOne(256),
            max_request_body_bytes: AtLeastOne(7 * MIB),
            max_in_flight_body_bytes: AtLeastOne(16 * MIB),
        }
    }
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

    /// The bounds of the webhook server.
    #[must_use]
    pub fn limits(&self) -> Limits {
        Limits {
            header_read_timeout: self.header_read_timeout.get(),
            body_read_timeout: self.body_read_timeout.get(),
            max_concurrent_requests: self.max_concurrent_requests.get(),
            max_request_body_bytes: self.max_request_body_bytes.get(),
            max_in_flight_body_bytes: self.max_in_flight_body_bytes.get(),
        }
    }
}

/// `webhook.config`: what goes into each ring's MutatingWebhookConfiguration
/// (docs/contract.md#webhook).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookConfig {
    /// `annotations`: copied onto every webhook configuration (for example a CA-injection
    /// annotation).
    pub annotations: BTreeMap<String, String>,
    /// `clientConfig`: how the API server reaches the webhook. Exactly one of `service` and
    /// `url` is set; the ring's path replaces the service's `path` or is appended to the `url`
    /// (docs/contract.md#webhook). [`SharderConfig::load`] fills `ca_bundle` with the content of
    /// `caBundleFile`. Defaults to the service `sharding-system/sharder`.
    #[serde(deserialize_with = "client_config")]
    pub client_config: WebhookClientConfig,
    /// `namespaceSelector`: the namespaces of a ring that sets none. Defaults to
    /// `kubernetes.io/metadata.name NotIn [kube-system, sharding-system]`.
    pub namespace_selector: LabelSelector,
    /// `caBundleFile` (our extension): a PEM file whose content becomes `clientConfig.caBundle`.
    #[serde(deserialize_with = "non_empty")]
    pub ca_bundle_file: Option<PathBuf>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            annotations: BTreeMap::new(),
            client_config: WebhookClientConfig {
                service: Some(default_service()),
                ..WebhookClientConfig::default()
            },
            namespace_selector: default_namespace_selector(),
            ca_bundle_file: None,
        }
    }
}

impl Default for SharderConfig {
    /// The Go original's defaults (its `defaults.go`), and `:9443` for the webhook server.
    fn default() -> Self {
        Self {
            api_version: Some(ApiVersion),
            kind: Some(Kind),
            client_connection: ClientConnection::default(),
            leader_election: LeaderElection::default(),
            debugging: Debugging::default(),
            health: Endpoint::default(),
            metrics: MetricsEndpoint::default(),
            controller: Controller::default(),
            webhook: Webhook::default(),
            graceful_shutdown_timeout: GracefulShutdown(Some(Duration::from_secs(15))),
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
    /// Reads the file named by `webhook.config.caBundleFile`, if any, into
    /// `webhook.config.clientConfig.caBundle`.
    pub fn from_yaml(text: &str, source: &Path) -> Result<Self> {
        let mut config = parse(text).map_err(|error| error.in_file(source))?;
        let check = Check { file: source };
        config.validate(&check)?;
        if let Some(path) = &config.webhook.config.ca_bundle_file {
            config.webhook.config.client_config.ca_bundle =
                Some(ByteString(check.ca_bundle(path)?));
        }
        Ok(config)
    }

    /// The rules no single value can check: across fields, and inside the Kubernetes types.
    fn validate(&self, check: &Check<'_>) -> Result<()> {
        for (field, present, expected) in [
            ("apiVersion", self.api_version.is_some(), API_VERSION),
            ("kind", self.kind.is_some(), KIND),
        ] {
            if !present {
                return Err(check.invalid(field, "nothing", format!("must be {expected}")));
            }
        }
        let election = &self.leader_election;
        for (shorter, value, longer, limit) in [
            (
                "renewDeadline",
                election.renew_deadline,
                "leaseDuration",
                election.lease_duration,
            ),
            (
                "retryPeriod",
                election.retry_period,
                "renewDeadline",
                election.renew_deadline,
            ),
        ] {
            if value >= limit {
                return Err(check.conflict(
                    "leaderElection",
                    format!("{shorter} ({value}) must be less than {longer} ({limit})"),
                ));
            }
        }
        let server = &self.webhook.server;
        if server.max_request_body_bytes > server.max_in_flight_body_bytes {
            return Err(check.conflict(
                "webhook.server",
                format!(
                    "maxRequestBodyBytes ({}) must not exceed maxInFlightBodyBytes ({})",
                    server.max_request_body_bytes.get(),
                    server.max_in_flight_body_bytes.get()
                ),
            ));
        }
        let webhook = &self.webhook.config;
        check.client_config(&webhook.client_config)?;
        if webhook.ca_bundle_file.is_some() && webhook.client_config.ca_bundle.is_some() {
            return Err(check.conflict(
                "webhook.config",
                "at most one of caBundleFile and clientConfig.caBundle may be set",
            ));
        }
        check.label_selector(
            "webhook.config.namespaceSelector",
            &webhook.namespace_selector,
        )
    }
}

/// Why [`parse`] failed, before the file is known.
enum ParseError {
    Shape(ShapeError),
    Invalid { field: String, message: String },
}

impl ParseError {
    fn in_file(self, file: &Path) -> ConfigError {
        let file = file.to_owned();
        match self {
            Self::Shape(source) => ConfigError::Parse { file, source },
            Self::Invalid { field, message } => ConfigError::Invalid {
                file,
                field,
                message,
            },
        }
    }
}

/// Reads a config file's YAML, tracking the path of a rejected value and the fields that the
/// Kubernetes types ignore.
fn parse(text: &str) -> Result<SharderConfig, ParseError> {
    // One line, such as "line 3 column 1: unknown field `x`, expected one of ...": errors are
    // logged on one line, so without the multi-line source snippet.
    let options = serde_saphyr::options! { with_snippet: false };
    let mut ignored = None;
    let mut path = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |yaml| {
        let mut on_ignored = |field: serde_ignored::Path<'_>| {
            ignored.get_or_insert_with(|| ignored_field(&field));
        };
        let yaml = serde_ignored::Deserializer::new(yaml, &mut on_ignored);
        let mut track = serde_path_to_error::Track::new();
        let result =
            SharderConfig::deserialize(serde_path_to_error::Deserializer::new(yaml, &mut track));
        if result.is_err() {
            path = track.path().to_string();
        }
        result
    });
    match (parsed, ignored) {
        (Ok(_), Some((parent, field))) => Err(ParseError::Shape(ShapeError::UnknownField {
            parent,
            field,
        })),
        (Ok(config), None) => Ok(config),
        // A newtype's own message: what the value must be, and the value.
        (Err(serde_saphyr::Error::Message { msg, .. }), _) => Err(ParseError::Invalid {
            field: path,
            message: msg,
        }),
        (Err(error), _) => Err(ParseError::Shape(ShapeError::Yaml(Box::new(error)))),
    }
}

/// The path of an ignored field's parent and the field's name, as in `a.b[0]` and `c`.
fn ignored_field(path: &serde_ignored::Path<'_>) -> (String, String) {
    fn text(path: &serde_ignored::Path<'_>) -> String {
        match path {
            serde_ignored::Path::Root => String::new(),
            serde_ignored::Path::Seq { parent, index } => format!("{}[{index}]", text(parent)),
            serde_ignored::Path::Map { parent, key } => match text(parent) {
                parent if parent.is_empty() => key.clone(),
                parent => format!("{parent}.{key}"),
            },
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => text(parent),
        }
    }
    match path {
        serde_ignored::Path::Map { parent, key } => (text(parent), key.clone()),
        other => (text(other), String::new()),
    }
}

/// Validation of one file: builds errors that name it.
struct Check<'a> {
    file: &'a Path,
}

impl Check<'_> {
    fn invalid(
        &self,
        field: &str,
        value: impl fmt::Display,
        reason: impl fmt::Display,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            field: field.to_owned(),
            message: format!("{reason}, got {value}"),
        }
    }

    fn conflict(&self, field: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Conflict {
            file: self.file.to_owned(),
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    fn client_config(&self, config: &WebhookClientConfig) -> Result<()> {
        const FIELD: &str = "webhook.config.clientConfig";
        match (&config.service, &config.url) {
            (Some(_), Some(_)) => {
                Err(self.conflict(FIELD, "exactly one of service and url must be set"))
            }
            (Some(service), None) => match service.port {
                Some(port) if !(1..=65535).contains(&port) => Err(self.invalid(
                    "webhook.config.clientConfig.service.port",
                    port,
                    "must be between 1 and 65535",
                )),
                _ => Ok(()),
            },
            (None, Some(url)) => check_https_url(url).map_err(|reason| {
                self.invalid("webhook.config.clientConfig.url", quoted(url), reason)
            }),
            // Filled with the default service while reading.
            (None, None) => Ok(()),
        }
    }

    fn ca_bundle(&self, path: &Path) -> Result<Vec<u8>> {
        const FIELD: &str = "webhook.config.caBundleFile";
        let pem = std::fs::read(path).map_err(|source| ConfigError::ReadCaBundle {
            file: self.file.to_owned(),
            field: FIELD.to_owned(),
            path: path.to_owned(),
            source,
        })?;
        let marker = b"-----BEGIN CERTIFICATE-----";
        if !pem.windows(marker.len()).any(|window| window == marker) {
            return Err(self.invalid(
                FIELD,
                quoted(&path.display().to_string()),
                "must name a PEM file with at least one certificate",
            ));
        }
        Ok(pem)
    }

    fn label_selector(&self, field: &str, selector: &LabelSelector) -> Result<()> {
        for (index, requirement) in selector.match_expressions.iter().flatten().enumerate() {
            self.requirement(&format!("{field}.matchExpressions[{index}]"), requirement)?;
        }
        Ok(())
    }

    fn requirement(&self, field: &str, requirement: &LabelSelectorRequirement) -> Result<()> {
        if requirement.key.is_empty() {
            return Err(self.invalid(&format!("{field}.key"), quoted(""), "must not be empty"));
        }
        let has_values = requirement
            .values
            .as_ref()
            .is_some_and(|values| !values.is_empty());
        match (requirement.operator.as_str(), has_values) {
            ("In" | "NotIn", true) | ("Exists" | "DoesNotExist", false) => Ok(()),
            ("In" | "NotIn", false) => {
                Err(self.conflict(field, "values must be set for operator In and NotIn"))
            }
            ("Exists" | "DoesNotExist", true) => Err(self.conflict(
                field,
                "values must be empty for operator Exists and DoesNotExist",
            )),
            (operator, _) => Err(self.invalid(
                &format!("{field}.operator"),
                quoted(operator),
                "must be In, NotIn, Exists or DoesNotExist",
            )),
        }
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
    if url.parse::<axum::http::Uri>().is_err() {
        return Err("must be a valid URL (no spaces or other characters a URL cannot hold)");
    }
    Ok(())
}

/// A string value as shown in errors.
fn quoted(text: &str) -> String {
    format!("{text:?}")
}

/// The error of a value that breaks its field's rule: what it must be, and the value.
fn rejected<E: serde::de::Error>(value: impl fmt::Display, reason: &str) -> E {
    E::custom(format!("{reason}, got {value}"))
}

/// `apiVersion`: only [`API_VERSION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiVersion;

/// `kind`: only [`KIND`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind;

/// `leaderElection.resourceLock`: only `leases` (empty means the same).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResourceLock;

/// Reads a string that must be `expected` (or empty, where Go's default is `expected`).
fn fixed_text<'de, D: Deserializer<'de>>(
    deserializer: D,
    expected: &str,
    empty_allowed: bool,
) -> Result<(), D::Error> {
    let text = String::deserialize(deserializer)?;
    if text == expected || (empty_allowed && text.is_empty()) {
        Ok(())
    } else {
        Err(rejected(quoted(&text), &format!("must be {expected}")))
    }
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fixed_text(deserializer, API_VERSION, false).map(|()| Self)
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fixed_text(deserializer, KIND, false).map(|()| Self)
    }
}

impl<'de> Deserialize<'de> for ResourceLock {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        fixed_text(deserializer, "leases", true).map(|()| Self)
    }
}

/// A Go duration greater than zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PositiveDuration(operations::Duration);

impl PositiveDuration {
    /// `duration`, unless it is zero.
    #[must_use]
    pub fn new(duration: Duration) -> Option<Self> {
        (!duration.is_zero()).then_some(Self(operations::Duration::new(duration)))
    }

    const fn from_secs(secs: u64) -> Self {
        Self(operations::Duration::from_secs(secs))
    }

    /// The duration.
    #[must_use]
    pub const fn get(self) -> Duration {
        self.0.get()
    }
}

impl fmt::Display for PositiveDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for PositiveDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let nanos = operations::duration::parse_nanos(&text).map_err(D::Error::custom)?;
        match u64::try_from(nanos) {
            Ok(nanos) if nanos > 0 => Ok(Self(Duration::from_nanos(nanos).into())),
            _ => Err(rejected(quoted(&text), "must be positive")),
        }
    }
}

/// `gracefulShutDown`: a Go duration; `Some(Duration::ZERO)` (`0s`) does not wait at all, `None`
/// (a negative duration such as `-1s`) waits without a limit, as in controller-runtime.
/// Defaults to 15 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracefulShutdown(Option<Duration>);

impl GracefulShutdown {
    /// The timeout; `None` waits without a limit.
    #[must_use]
    pub const fn get(self) -> Option<Duration> {
        self.0
    }
}

impl<'de> Deserialize<'de> for GracefulShutdown {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let nanos = operations::duration::parse_nanos(&text).map_err(D::Error::custom)?;
        Ok(Self(u64::try_from(nanos).ok().map(Duration::from_nanos)))
    }
}

/// `health.bindAddress` or `metrics.bindAddress`: `ip:port` or `:port`, or `0` to disable;
/// empty means `:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddress<const PORT: u16>(Option<SocketAddr>);

impl<const PORT: u16> ListenAddress<PORT> {
    /// The address, or `None` when disabled.
    #[must_use]
    pub const fn get(self) -> Option<SocketAddr> {
        self.0
    }
}

impl<const PORT: u16> Default for ListenAddress<PORT> {
    fn default() -> Self {
        Self(Some(all_interfaces(PORT)))
    }
}

impl<'de, const PORT: u16> Deserialize<'de> for ListenAddress<PORT> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "" => Ok(Self::default()),
            "0" => Ok(Self(None)),
            _ => operations::http::parse_listen_address(&text)
                .map(|address| Self(Some(address)))
                .ok_or_else(|| rejected(quoted(&text), "must be ip:port, :port or 0 to disable")),
        }
    }
}

/// `webhook.server.bindAddress`: `ip:port` or `:port`; empty means `:9443`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebhookAddress(SocketAddr);

impl WebhookAddress {
    /// The address.
    #[must_use]
    pub const fn get(self) -> SocketAddr {
        self.0
    }
}

impl Default for WebhookAddress {
    fn default() -> Self {
        Self(all_interfaces(9443))
    }
}

impl<'de> Deserialize<'de> for WebhookAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.is_empty() {
            return Ok(Self::default());
        }
        operations::http::parse_listen_address(&text)
            .map(Self)
            .ok_or_else(|| {
                rejected(
                    quoted(&text),
                    "must be ip:port or :port (the webhook server cannot be disabled)",
                )
            })
    }
}

/// `controller.sharder.concurrentMoves`: at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConcurrentMoves(usize);

impl ConcurrentMoves {
    /// How many moves at once.
    #[must_use]
    pub const fn get(self) -> usize {
        self.0
    }
}

impl<'de> Deserialize<'de> for ConcurrentMoves {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let moves = i32::deserialize(deserializer)?;
        usize::try_from(moves)
            .ok()
            .filter(|&moves| moves >= 1)
            .map(Self)
            .ok_or_else(|| rejected(moves, "must be at least 1"))
    }
}

/// A count or a size of the webhook server's limits: at least 1, at most `u32::MAX`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AtLeastOne(u32);

impl AtLeastOne {
    /// The value.
    #[must_use]
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for AtLeastOne {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = i64::deserialize(deserializer)?;
        u32::try_from(value)
            .ok()
            .filter(|&value| value >= 1)
            .map(Self)
            .ok_or_else(|| rejected(value, "must be between 1 and 4294967295"))
    }
}

/// A section such as `debugging:` that is present but empty (null) has every default.
fn section<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Go treats an empty string like an unset field.
fn non_empty<'de, D: Deserializer<'de>, T: From<String>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.filter(|text| !text.is_empty()).map(T::from))
}

/// A string whose empty value means `default`, as Go's defaulting does.
fn or_default<'de, D: Deserializer<'de>>(
    deserializer: D,
    default: &str,
) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    Ok(if text.is_empty() {
        default.to_owned()
    } else {
        text
    })
}

fn resource_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    or_default(deserializer, SHARDER_LEASE)
}

fn resource_namespace<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    or_default(deserializer, SHARDER_NAMESPACE)
}

fn cert_dir<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
    or_default(deserializer, CERT_DIR).map(PathBuf::from)
}

fn cert_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    or_default(deserializer, CERT_NAME)
}

fn key_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    or_default(deserializer, KEY_NAME)
}

/// `clientConnection.qps`: a finite number; zero means unset, and a negative rate disables the
/// limiter as in client-go: either way no client-side limit (docs/contract.md#sharder-behaviour).
fn qps<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f32>, D::Error> {
    let qps = f32::deserialize(deserializer)?;
    if !qps.is_finite() {
        return Err(rejected(qps, "must be a finite number"));
    }
    Ok((qps > 0.0).then_some(qps))
}

/// `clientConnection.burst`: not negative; zero means unset.
fn burst<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let burst = i32::deserialize(deserializer)?;
    let burst = u32::try_from(burst).map_err(|_| rejected(burst, "must not be negative"))?;
    Ok((burst > 0).then_some(burst))
}

/// `webhook.config.clientConfig` with Go's defaults: the sharder's own Service when neither a
/// service nor a URL is set, and the Service's name and namespace when empty.
fn client_config<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<WebhookClientConfig, D::Error> {
    let mut config = WebhookClientConfig::deserialize(deserializer)?;
    let defaults = default_service();
    config.url = config.url.filter(|url| !url.is_empty());
    match &mut config.service {
        None if config.url.is_none() => config.service = Some(defaults),
        None => {}
        Some(service) => {
            if service.namespace.is_empty() {
                service.namespace = defaults.namespace;
            }
            if service.name.is_empty() {
                service.name = defaults.name;
            }
        }
    }
    Ok(config)
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

    fn positive(duration: Duration) -> PositiveDuration {
        PositiveDuration::new(duration).unwrap()
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
                lease_duration: positive(Duration::from_secs(15)),
                renew_deadline: positive(Duration::from_secs(10)),
                retry_period: positive(Duration::from_secs(2)),
                resource_lock: ResourceLock,
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
            config.health.bind_address.get(),
            Some("0.0.0.0:8081".parse().unwrap())
        );
        assert_eq!(
            config.metrics.bind_address.get(),
            Some("0.0.0.0:8080".parse().unwrap())
        );
        assert!(config.metrics.secure_serving);
        assert_eq!(
            config.graceful_shutdown_timeout.get(),
            Some(Duration::from_secs(15))
        );
    }

    #[test]
    fn sharder_controller_defaults_to_five_minutes_and_100_moves() {
        let sharder = SharderConfig::default().controller.sharder;
        assert_eq!(sharder.sync_period.get(), Duration::from_secs(300));
        assert_eq!(sharder.concurrent_moves.get(), 100);
    }

    #[test]
    fn webhook_server_defaults_to_port_9443_and_the_controller_runtime_cert_paths() {
        let server = SharderConfig::default().webhook.server;
        assert_eq!(
            server,
            WebhookServer {
                bind_address: WebhookAddress("0.0.0.0:9443".parse().unwrap()),
                cert_dir: PathBuf::from("/tmp/k8s-webhook-server/serving-certs"),
                cert_name: "tls.crt".to_owned(),
                key_name: "tls.key".to_owned(),
                header_read_timeout: positive(Duration::from_secs(10)),
                body_read_timeout: positive(Duration::from_secs(10)),
                max_concurrent_requests: AtLeastOne(256),
                max_request_body_bytes: AtLeastOne(7_340_032),
                max_in_flight_body_bytes: AtLeastOne(16_777_216),
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
            SharderConfig::default().webhook.config,
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
                ca_bundle_file: None,
            }
        );
    }

    #[test]
    fn the_webhook_server_limits_are_those_of_the_config() {
        let config = parse_body(
            "webhook: {server: {headerReadTimeout: 1s, bodyReadTimeout: 2s, \
             maxConcurrentRequests: 3, maxRequestBodyBytes: 4, maxInFlightBodyBytes: 5}}",
        )
        .unwrap();
        assert_eq!(
            config.webhook.server.limits(),
            Limits {
                header_read_timeout: Duration::from_secs(1),
                body_read_timeout: Duration::from_secs(2),
                max_concurrent_requests: 3,
                max_request_body_bytes: 4,
                max_in_flight_body_bytes: 5,
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
            config.webhook.config.annotations,
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
  secureServing: false
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
    headerReadTimeout: 3s
    bodyReadTimeout: 4s
    maxConcurrentRequests: 50
    maxRequestBodyBytes: 1000000
    maxInFlightBodyBytes: 20000000
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
                    lease_duration: positive(Duration::from_secs(60)),
                    renew_deadline: positive(Duration::from_secs(45)),
                    retry_period: positive(Duration::from_millis(1500)),
                    resource_lock: ResourceLock,
                    resource_name: "my-sharder".to_owned(),
                    resource_namespace: "my-system".to_owned(),
                },
                debugging: Debugging {
                    enable_profiling: false,
                    enable_contention_profiling: true,
                },
                health: Endpoint {
                    bind_address: ListenAddress(Some("127.0.0.1:9081".parse().unwrap())),
                },
                metrics: MetricsEndpoint {
                    bind_address: ListenAddress(None),
                    secure_serving: false,
                },
                controller: Controller {
                    sharder: SharderController {
                        sync_period: positive(Duration::from_secs(5400)),
                        concurrent_moves: ConcurrentMoves(7),
                    },
                },
                webhook: Webhook {
                    server: WebhookServer {
                        bind_address: WebhookAddress("[::1]:10443".parse().unwrap()),
                        cert_dir: PathBuf::from("/certs"),
                        cert_name: "cert.pem".to_owned(),
                        key_name: "key.pem".to_owned(),
                        header_read_timeout: positive(Duration::from_secs(3)),
                        body_read_timeout: positive(Duration::from_secs(4)),
                        max_concurrent_requests: AtLeastOne(50),
                        max_request_body_bytes: AtLeastOne(1_000_000),
                        max_in_flight_body_bytes: AtLeastOne(20_000_000),
                    },
                    config: WebhookConfig {
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
                        ca_bundle_file: Some(ca.0.clone()),
                    },
                },
                graceful_shutdown_timeout: GracefulShutdown(None),
                ..SharderConfig::default()
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
            config.webhook.config.client_config,
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
        assert_eq!(config.health.bind_address.get(), None);
        assert_eq!(
            config.metrics.bind_address.get(),
            Some("0.0.0.0:0".parse().unwrap())
        );
        assert_eq!(
            config.webhook.server.bind_address.get(),
            "127.0.0.1:0".parse().unwrap()
        );
    }

    #[test]
    fn a_zero_graceful_shutdown_does_not_wait_and_a_negative_one_waits_forever() {
        assert_eq!(
            parse_body("gracefulShutDown: 0s\n")
                .unwrap()
                .graceful_shutdown_timeout
                .get(),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_body("gracefulShutDown: '0'\n")
                .unwrap()
                .graceful_shutdown_timeout
                .get(),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_body("gracefulShutDown: -1s\n")
                .unwrap()
                .graceful_shutdown_timeout
                .get(),
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
    fn an_unknown_field_of_a_kubernetes_type_is_named_with_its_path() {
        assert_eq!(
            error_text(
                "webhook: {config: {namespaceSelector: {matchExpressions: \
                 [{key: a, operator: Exists, value: b}]}}}\n"
            ),
            "sharder.yaml: cannot parse sharder config: \
             webhook.config.namespaceSelector.matchExpressions[0]: unknown field `value`"
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
            (
                "webhook: {server: {headerReadTimeout: 0s}}",
                "sharder.yaml: webhook.server.headerReadTimeout: must be positive, got \"0s\"",
            ),
            (
                "webhook: {server: {bodyReadTimeout: -1s}}",
                "sharder.yaml: webhook.server.bodyReadTimeout: must be positive, got \"-1s\"",
            ),
            (
                "webhook: {server: {maxConcurrentRequests: 0}}",
                "sharder.yaml: webhook.server.maxConcurrentRequests: must be between 1 and \
                 4294967295, got 0",
            ),
            (
                "webhook: {server: {maxRequestBodyBytes: -1}}",
                "sharder.yaml: webhook.server.maxRequestBodyBytes: must be between 1 and \
                 4294967295, got -1",
            ),
            (
                "webhook: {server: {maxInFlightBodyBytes: 4294967296}}",
                "sharder.yaml: webhook.server.maxInFlightBodyBytes: must be between 1 and \
                 4294967295, got 4294967296",
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
                "webhook: {config: {clientConfig: {url: 'https://a b/'}}}",
                "sharder.yaml: webhook.config.clientConfig.url: must be a valid URL (no spaces or \
                 other characters a URL cannot hold), got \"https://a b/\"",
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
                "webhook: {server: {maxRequestBodyBytes: 2000, maxInFlightBodyBytes: 1000}}",
                "sharder.yaml: webhook.server: maxRequestBodyBytes (2000) must not exceed \
                 maxInFlightBodyBytes (1000)",
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
                "sharder.yaml: webhook.config.caBundleFile: cannot read {} (for a sharder on \
                 this machine, `sharder webhook-certs --local DIR` writes DIR/ca.crt and the \
                 serving certificate)",
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
            config.webhook.config.client_config,
            WebhookClientConfig {
                ca_bundle: Some(ByteString(PEM.as_bytes().to_vec())),
                service: Some(default_service()),
                url: None,
            }
        );
    }
}
