//! A real local Kubernetes control plane for tests and experiments.
//!
//! [`Environment`] starts etcd, kube-apiserver and, when asked, kube-controller-manager as
//! child processes on free loopback ports, with a fresh certificate authority, RBAC,
//! service-account keys and an admin user authenticated by client certificate. The returned
//! [`ControlPlane`] writes a kubeconfig, hands out clients, and issues serving certificates
//! that the API server trusts (for webhooks served on 127.0.0.1).
//!
//! The binaries come from `KUBEBUILDER_ASSETS` when it is set, or else from the project's
//! pinned build (`hack/build-control-plane.sh`), which this crate runs on first use.
//!
//! # Guarantees
//! Dropping the [`ControlPlane`] kills its processes and removes its directory. When the
//! owning process dies instead (Ctrl-C, a panic with `panic = "abort"`, `SIGKILL`, or a
//! control plane kept in a `static` such as [`SharedControlPlane`]), a watchdog process does
//! the same.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_openapi::api::core::v1::Namespace;
//!
//! let control_plane = testenv::Environment::new().controller_manager(true).start().await?;
//! let client = control_plane.client().await?;
//! let namespaces = kube::Api::<Namespace>::all(client).list(&Default::default()).await?;
//! assert!(namespaces.items.iter().any(|ns| ns.metadata.name.as_deref() == Some("default")));
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

mod apiserver;
mod assets;
pub mod certs;
mod controller_manager;
mod error;
mod etcd;
mod kubeconfig;
mod layout;
mod process;
mod shared;

use std::{
    future::Future,
    net::TcpListener,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::{
    Api, Client,
    config::{KubeConfigOptions, Kubeconfig},
};
use tracing::{instrument::WithSubscriber as _, subscriber::NoSubscriber};

pub use crate::{
    assets::{ASSETS_ENV, ETCD_VERSION, KUBERNETES_VERSION},
    certs::{CertificateAuthority, CertifiedKey},
    error::{Error, Result},
    kubeconfig::CONTEXT,
    process::log_tail,
    shared::SharedControlPlane,
};
use crate::{
    layout::Layout,
    process::{Component, Reaper},
};

/// How to start a control plane: a builder with defaults for tests.
#[derive(Debug, Clone)]
#[must_use]
pub struct Environment {
    controller_manager: bool,
    assets: Option<PathBuf>,
    startup_timeout: Duration,
    keep_directory: bool,
    api_server_args: Vec<String>,
}

impl Default for Environment {
    fn default() -> Self {
        Self {
            controller_manager: false,
            assets: None,
            startup_timeout: Duration::from_secs(120),
            keep_directory: false,
            api_server_args: Vec::new(),
        }
    }
}

impl Environment {
    /// etcd and kube-apiserver, binaries from `KUBEBUILDER_ASSETS` or the project's build.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also run kube-controller-manager (garbage collection, Deployment status, namespace
    /// deletion, service-account tokens).
    pub fn controller_manager(mut self, enabled: bool) -> Self {
        self.controller_manager = enabled;
        self
    }

    /// Take the binaries from this directory, ignoring `KUBEBUILDER_ASSETS`.
    pub fn assets(mut self, dir: impl Into<PathBuf>) -> Self {
        self.assets = Some(dir.into());
        self
    }

    /// How long each component may take to become ready (default 120 s, enough for a busy
    /// 2-core machine).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Keep the directory (logs, certificates, data) when the control plane stops.
    pub fn keep_directory(mut self, keep: bool) -> Self {
        self.keep_directory = keep;
        self
    }

    /// An extra kube-apiserver flag, e.g. `--feature-gates=...`; it overrides the defaults.
    pub fn api_server_arg(mut self, arg: impl Into<String>) -> Self {
        self.api_server_args.push(arg.into());
        self
    }

    /// Starts the control plane and waits until it is ready.
    ///
    /// Free ports are found by binding port 0 and releasing it, so another process may take
    /// one in between; a start that fails that way is retried on new ports.
    pub async fn start(self) -> Result<ControlPlane> {
        let assets = assets::locate(self.assets.as_deref(), self.controller_manager).await?;
        let mut attempt = 1;
        loop {
            match self.start_once(&assets).await {
                Err(error) if error.is_port_conflict() && attempt < 3 => {
                    tracing::warn!(%error, attempt, "port conflict, retrying on other ports");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(&self, assets: &Path) -> Result<ControlPlane> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("testenv-")
            .tempdir()
            .map_err(Error::io("create a temporary directory"))?;
        let layout = Layout::new(dir.path());
        // The reaper exists before the first process, so nothing can outlive a dying parent.
        let reaper = Reaper::spawn(layout.root())?;
        let [etcd_port, peer_port, api_port] = free_ports()?;
        let mut control_plane = ControlPlane {
            processes: Mutex::new(Processes {
                components: Vec::new(),
                reaper: Some(reaper),
            }),
            api_server: ApiServerCommand {
                binary: assets.join("kube-apiserver"),
                args: apiserver::args(&layout, api_port, etcd_port, &self.api_server_args),
                port: api_port,
            },
            startup_timeout: self.startup_timeout,
            api_server_url: String::new(),
            ca: CertificateAuthority::new("testenv-ca")?,
            layout,
            directory: Some(dir),
            keep_directory: self.keep_directory,
        };
        control_plane.write_files(api_port)?;
        let layout = control_plane.layout.clone();

        control_plane.spawn(
            "etcd",
            &assets.join("etcd"),
            &etcd::args(&layout.etcd_data(), etcd_port, peer_port),
        )?;
        control_plane.start_api_server().await?;

        if self.controller_manager {
            control_plane.spawn(
                "kube-controller-manager",
                &assets.join("kube-controller-manager"),
                &controller_manager::args(&layout),
            )?;
            // The service-account controller creating `default/default` shows that the
            // controllers run and can write; it needs no HTTPS endpoint of the manager.
            let client = control_plane.client().await?;
            let service_accounts = Api::<ServiceAccount>::namespaced(client, "default");
            control_plane
                .wait_ready("kube-controller-manager", || async {
                    matches!(service_accounts.get_opt("default").await, Ok(Some(_)))
                })
                .await?;
        }
        tracing::info!(
            dir = %control_plane.directory().display(),
            url = control_plane.api_server_url,
            elapsed = ?started.elapsed(),
            "control plane ready"
        );
        Ok(control_plane)
    }
}

/// A running control plane. Dropping it stops every process and removes its directory.
#[derive(Debug)]
pub struct ControlPlane {
    /// Behind a lock so that kube-apiserver can be stopped and started again through a shared
    /// reference, while other tasks use the control plane.
    processes: Mutex<Processes>,
    api_server: ApiServerCommand,
    startup_timeout: Duration,
    api_server_url: String,
    ca: CertificateAuthority,
    layout: Layout,
    directory: Option<tempfile::TempDir>,
    keep_directory: bool,
}

/// The running components, in start order, and the reaper that watches them.
#[derive(Debug)]
struct Processes {
    components: Vec<Component>,
    reaper: Option<Reaper>,
}

/// How kube-apiserver is started, kept to start it again on the same port, certificates and
/// etcd.
#[derive(Debug)]
struct ApiServerCommand {
    binary: PathBuf,
    args: Vec<String>,
    port: u16,
}

/// The name of kube-apiserver's component, its log's name.
const API_SERVER: &str = "kube-apiserver";

impl ControlPlane {
    /// The API server's URL, `https://127.0.0.1:<port>`.
    #[must_use]
    pub fn api_server_url(&self) -> &str {
        &self.api_server_url
    }

    /// The admin kubeconfig (user `admin` in group `system:masters`), for `kubectl` or any
    /// other client: `KUBECONFIG=<path> kubectl get ns`.
    #[must_use]
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.layout.admin_kubeconfig()
    }

    /// The admin kubeconfig, parsed.
    pub fn kubeconfig(&self) -> Result<Kubeconfig> {
        Kubeconfig::read_from(self.kubeconfig_path()).map_err(Error::Kubeconfig)
    }

    /// A new admin client. Each async runtime (each `#[tokio::test]`) needs its own, since a
    /// client's connections belong to the runtime that created them.
    pub async fn client(&self) -> Result<Client> {
        let config =
            kube::Config::from_custom_kubeconfig(self.kubeconfig()?, &KubeConfigOptions::default())
                .await
                .map_err(Error::Kubeconfig)?;
        Client::try_from(config).map_err(Error::Client)
    }

    /// The certificate authority the API server trusts, to issue serving certificates for
    /// webhooks on 127.0.0.1 (`caBundle` = [`CertificateAuthority::cert_pem`]) or client
    /// certificates for other users.
    #[must_use]
    pub fn certificate_authority(&self) -> &CertificateAuthority {
        &self.ca
    }

    /// The directory holding certificates, data, kubeconfigs and `logs/<component>.log`.
    #[must_use]
    pub fn directory(&self) -> &Path {
        self.layout.root()
    }

    /// The log file of a component (`etcd`, `kube-apiserver`, `kube-controller-manager`).
    #[must_use]
    pub fn log_path(&self, component: &str) -> PathBuf {
        self.layout.log(component)
    }

    /// The process ids of the running components, by name.
    #[must_use]
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.processes()
            .components
            .iter()
            .map(|c| (c.name, c.pid()))
            .collect()
    }

    /// Stops kube-apiserver at once (SIGKILL), as a crash or a partitioned node would take it
    /// away: clients see connections refused until [`Self::start_api_server`]. etcd and
    /// kube-controller-manager keep running. Returns whether it was running.
    pub fn stop_api_server(&self) -> bool {
        let mut processes = self.processes();
        let running = processes
            .components
            .iter()
            .position(|c| c.name == API_SERVER);
        // Dropping a component kills and reaps it.
        running
            .map(|index| processes.components.remove(index))
            .is_some()
    }

    /// Starts kube-apiserver with the flags, port, certificates and etcd it first started with
    /// (its log is appended to), and waits until it is ready; a running one is left alone.
    ///
    /// # Errors
    /// It cannot be started, exits, or is not ready within the start-up timeout.
    pub async fn start_api_server(&self) -> Result<()> {
        if self.pids().iter().any(|(name, _)| *name == API_SERVER) {
            return Ok(());
        }
        let command = &self.api_server;
        self.spawn(API_SERVER, &command.binary, &command.args)?;
        let client = self.client().await?;
        self.wait_ready(API_SERVER, || {
            // The client logs every failed probe as an error; not ready yet is expected.
            api_server_ready(&client, command.port).with_subscriber(NoSubscriber::default())
        })
        .await
    }

    /// Stops the control plane now; the same as dropping it.
    pub fn stop(self) {}

    fn write_files(&mut self, api_port: u16) -> Result<()> {
        let layout = &self.layout;
        for dir in [layout.pki(), layout.logs()] {
            std::fs::create_dir_all(&dir)
                .map_err(Error::io(format!("create {}", dir.display())))?;
        }
        self.api_server_url = format!("https://127.0.0.1:{api_port}");
        let serving = self.ca.issue_serving(certs::API_SERVER_HOSTS)?;
        let admin = self.ca.issue_client("admin", &["system:masters"])?;
        let controller_manager = self.ca.issue_client(controller_manager::USER, &[])?;
        let (service_account_key, service_account_public_key) = certs::generate_key_pair_pem()?;
        let files = [
            (layout.ca_cert(), self.ca.cert_pem().to_owned()),
            (layout.apiserver_cert(), serving.cert_pem),
            (layout.apiserver_key(), serving.key_pem),
            (layout.service_account_key(), service_account_key),
            (
                layout.service_account_public_key(),
                service_account_public_key,
            ),
            (
                layout.admin_kubeconfig(),
                kubeconfig::render(&self.api_server_url, self.ca.cert_pem(), &admin),
            ),
            (
                layout.controller_manager_kubeconfig(),
                kubeconfig::render(
                    &self.api_server_url,
                    self.ca.cert_pem(),
                    &controller_manager,
                ),
            ),
        ];
        for (path, contents) in files {
            std::fs::write(&path, contents)
                .map_err(Error::io(format!("write {}", path.display())))?;
        }
        Ok(())
    }

    /// The processes; a panic while holding them cannot leave a push or remove half done.
    fn processes(&self) -> MutexGuard<'_, Processes> {
        self.processes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn spawn(&self, name: &'static str, binary: &Path, args: &[String]) -> Result<()> {
        let mut processes = self.processes();
        let reaper = processes
            .reaper
            .as_mut()
            .expect("the reaper lives as long as the control plane");
        let component = Component::spawn(name, binary, args, self.layout.log(name), reaper)?;
        processes.components.push(component);
        Ok(())
    }

    /// Polls `ready` until it holds, failing early with the log of any component that exits,
    /// for at most the start-up timeout.
    async fn wait_ready<F, Fut>(&self, name: &'static str, mut ready: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let timeout = self.startup_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(exited) = self.exited() {
                return Err(exited);
            }
            if ready().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let tail = self
                    .processes()
                    .components
                    .iter()
                    .find(|c| c.name == name)
                    .map(Component::log_tail)
                    .unwrap_or_default();
                return Err(Error::NotReady {
                    component: name,
                    timeout,
                    log: self.layout.log(name),
                    tail,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The error of the first component that has exited, if any.
    fn exited(&self) -> Option<Error> {
        self.processes()
            .components
            .iter_mut()
            .find_map(|component| {
                let status = component.exit_status()?;
                Some(Error::Exited {
                    component: component.name,
                    status,
                    log: component.log().to_owned(),
                    tail: component.log_tail(),
                })
            })
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let processes = self
            .processes
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        // Reverse start order: clients of etcd go before etcd.
        while let Some(component) = processes.components.pop() {
            drop(component);
        }
        if let Some(dir) = self.directory.take() {
            if self.keep_directory {
                let kept = dir.keep();
                tracing::info!(dir = %kept.display(), "kept the control plane's directory");
            } else if let Err(error) = dir.close() {
                tracing::warn!(%error, "cannot remove the control plane's directory");
            }
        }
        // Released only now, so that the reaper would still clean up had anything above failed.
        processes.reaper.take();
    }
}

async fn api_server_ready(client: &Client, port: u16) -> bool {
    // A client request to a closed port logs an error; a bare connect does not.
    if tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        return false;
    }
    let request = http::Request::get("/readyz").body(Vec::new());
    match request {
        Ok(request) => client
            .request_text(request)
            .await
            .is_ok_and(|body| body == "ok"),
        Err(_) => false,
    }
}

/// Distinct free loopback ports (bound together so that none is handed out twice).
fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(Error::io("find a free port on 127.0.0.1"))?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener
            .local_addr()
            .map_err(Error::io("find a free port on 127.0.0.1"))?
            .port();
    }
    Ok(ports)
}

/// Polls `check` every 200 ms until it returns `Some`, and returns that value: how tests wait
/// for a control plane (or a controller on it) to converge.
///
/// # Panics
/// When `check` has not returned `Some` within `patience`, naming `what` did not happen.
pub async fn eventually<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {patience:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
