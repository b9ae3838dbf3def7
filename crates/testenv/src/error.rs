use std::{path::PathBuf, process::ExitStatus, time::Duration};

use crate::certs::CertificateError;

/// Why a control plane could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The control-plane binaries are neither in `KUBEBUILDER_ASSETS` nor could be built.
    #[error("control-plane binaries are not available: {0}")]
    Assets(String),

    /// A file or directory of the control plane could not be written or read.
    #[error("cannot {what}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A key or certificate could not be created.
    #[error(transparent)]
    Certificate(#[from] CertificateError),

    /// A component's binary could not be started.
    #[error("cannot start {component} ({binary})")]
    Spawn {
        /// The component, e.g. `kube-apiserver`.
        component: &'static str,
        /// The binary that was run.
        binary: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A component exited while the control plane was starting.
    #[error("{component} exited with {status} during start-up; last lines of {log}:\n{tail}", log = log.display())]
    Exited {
        /// The component, e.g. `etcd`.
        component: &'static str,
        /// How it exited.
        status: ExitStatus,
        /// Its log file (removed with the control plane's directory unless it is kept).
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },

    /// A component did not become ready in time.
    #[error("{component} was not ready after {timeout:?}; last lines of {log}:\n{tail}", log = log.display())]
    NotReady {
        /// The component, e.g. `kube-controller-manager`.
        component: &'static str,
        /// How long start-up waited.
        timeout: Duration,
        /// Its log file (removed with the control plane's directory unless it is kept).
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },

    /// The kubeconfig written for the control plane could not be loaded into a client.
    #[error("cannot build a client from the control plane's kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),

    /// A client for the control plane could not be created.
    #[error("cannot create a client for the control plane")]
    Client(#[source] kube::Error),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }

    /// Whether a retry on other ports may succeed: a component lost a race for a free port.
    pub(crate) fn is_port_conflict(&self) -> bool {
        matches!(self, Self::Exited { tail, .. } if tail.contains("address already in use"))
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
