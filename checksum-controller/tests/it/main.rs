//! Integration tests of the checksum-controller on a real control plane with
//! kube-controller-manager and the sharder as a real process; the controller's shards run
//! in-process.

mod sharded;

use std::{
    io::{Read as _, Write as _},
    net::TcpListener,
    path::PathBuf,
    sync::OnceLock,
    time::Duration,
};

use checksum_controller::{Listeners, RING, options::Options};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use kube_sharding::api::ControllerRing;
use stack::{SharderProcess, SharderSettings};
use testenv::ControlPlane;
use tokio::{sync::oneshot, task::JoinHandle};

/// How long a test waits for the controller to act before it fails.
const PATIENCE: Duration = Duration::from_secs(90);

/// The namespace of the shard Leases.
const LEASE_NAMESPACE: &str = "checksum-system";

/// The ring as shipped with the controller.
const CONTROLLER_RING_YAML: &str = include_str!("../../config/controllerring.yaml");

/// The directory of the sharder binary, built once per test binary.
fn sharder_binary() -> &'static PathBuf {
    static SHARDER: OnceLock<PathBuf> = OnceLock::new();
    SHARDER.get_or_init(|| {
        stack::build_for_tests(&["sharder"])
            .unwrap()
            .join("sharder")
    })
}

/// A control plane with kube-controller-manager (which garbage-collects the ConfigMaps of
/// deleted Secrets), the ring, the namespaces `namespace` and `checksum-system`, and the
/// sharder, once the ring's webhook is called.
async fn stack(namespace: &str) -> (ControlPlane, Client, SharderProcess) {
    let control_plane = stack::environment().start().await.unwrap();
    let client = control_plane.client().await.unwrap();
    stack::install_sharding(&client).await.unwrap();
    let ring: ControllerRing = serde_saphyr::from_str(CONTROLLER_RING_YAML).unwrap();
    Api::<ControllerRing>::all(client.clone())
        .patch(
            RING,
            &PatchParams::apply("checksum-it").force(),
            &Patch::Apply(&ring),
        )
        .await
        .unwrap();
    stack::create_namespace(&client, LEASE_NAMESPACE)
        .await
        .unwrap();
    stack::create_namespace(&client, namespace).await.unwrap();
    let sharder = SharderProcess::start(
        &control_plane,
        sharder_binary(),
        &SharderSettings::default(),
    )
    .unwrap();
    stack::wait_ring_ready(&client, RING, PATIENCE)
        .await
        .unwrap();
    (control_plane, client, sharder)
}

/// One shard of the controller running in-process; [`Shard::stop`] stops it as SIGTERM does.
struct Shard {
    metrics_port: u16,
    health_port: u16,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Shard {
    async fn start(control_plane: &ControlPlane, identity: &str) -> Self {
        let options = Options {
            identity: identity.to_owned(),
            namespace: LEASE_NAMESPACE.to_owned(),
            workers: 5,
            simulated_work: Duration::ZERO,
            lease_duration: Duration::from_secs(5),
            metrics_address: "127.0.0.1:0".parse().unwrap(),
            metrics_secure: false,
            health_address: "127.0.0.1:0".parse().unwrap(),
            kubeconfig: Some(control_plane.kubeconfig_path()),
        };
        let client = operations::client::build(options.kubeconfig.as_deref())
            .await
            .unwrap();
        let listeners = Listeners {
            metrics: TcpListener::bind(options.metrics_address).unwrap(),
            health: TcpListener::bind(options.health_address).unwrap(),
        };
        let metrics_port = listeners.metrics.local_addr().unwrap().port();
        let health_port = listeners.health.local_addr().unwrap().port();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(checksum_controller::run(
            options,
            client,
            listeners,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            metrics_port,
            health_port,
            stop,
            task,
        }
    }

    async fn scrape(&self) -> String {
        let (status, body) = get(self.metrics_port, "/metrics").await;
        assert!(status.contains(" 200 "), "/metrics: {status}");
        body
    }

    async fn ready(&self) -> bool {
        get(self.health_port, "/readyz").await.0.contains(" 200 ")
    }

    /// Stops the shard and returns how its run ended: `Ok` once the Lease is released.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await.unwrap()
    }
}

/// The status line and body of `GET <path>` on 127.0.0.1:`port`; HTTP/1.0, so that the server
/// closes the connection after the body. Blocking, on a worker thread: the shards serve on
/// this test's runtime.
async fn get(port: u16, path: &str) -> (String, String) {
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        (
            head.lines().next().unwrap_or_default().to_owned(),
            body.to_owned(),
        )
    })
    .await
    .unwrap()
}
