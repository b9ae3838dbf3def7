//! Integration tests of the sharder on a real control plane: one control plane and one
//! in-process sharder per test binary, shared by the tests; each test has its own namespace
//! and its own ControllerRing selecting only that namespace.

mod assignment;
mod failover;
mod leader_election;
mod leader_fencing;
mod leader_partition;
mod lifecycle;
mod local_run;
mod metrics;
mod newcomer;
mod replica;
mod ring_validation;
mod strategy;
mod webhook_down;

use std::{path::Path, sync::OnceLock, time::Duration};

use k8s_openapi::{
    api::core::v1::{ConfigMap, Namespace},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::Condition,
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
    runtime::wait::{await_condition, conditions},
};
use kube_sharding::{
    api::{ControllerRing, ControllerRingSpec, GroupResource, RingResource, controller_ring},
    shard::{ShardLease, ShardLeaseConfig, ShardLeaseHandle},
};
use serde_json::json;
use sharder::config::SharderConfig;
use testenv::{ControlPlane, Environment, SharedControlPlane};

static CONTROL_PLANE: SharedControlPlane = SharedControlPlane::new(Environment::new);

/// How long a test waits for the sharder to act before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// The shared sharder's metrics port.
static METRICS_PORT: OnceLock<u16> = OnceLock::new();

/// A client, once the shared sharder runs.
async fn client() -> Client {
    let control_plane = CONTROL_PLANE.get();
    METRICS_PORT.get_or_init(|| {
        let (config, listeners) = sharder_config(control_plane, "shared", Duration::from_secs(300));
        let port = listeners
            .metrics
            .as_ref()
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async {
                install_crd(&control_plane.client().await.unwrap()).await;
                let client = sharder::client(&config).await.unwrap();
                let result = sharder::run(
                    config,
                    client,
                    listeners,
                    "it".into(),
                    std::future::pending(),
                )
                .await;
                panic!("the shared sharder stopped: {result:?}");
            });
        });
        port
    });
    let client = control_plane.client().await.unwrap();
    eventually("the ControllerRing CRD", || async {
        Api::<ControllerRing>::all(client.clone())
            .list(&kube::api::ListParams::default())
            .await
            .ok()
    })
    .await;
    client
}

/// A sharder config for tests: the webhook on 127.0.0.1 with a certificate from the control
/// plane's CA (in a directory removed with the control plane), no leader election.
fn sharder_config(
    control_plane: &ControlPlane,
    name: &str,
    sync_period: Duration,
) -> (SharderConfig, sharder::Listeners) {
    let listeners = sharder::Listeners {
        webhook: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
        health: Some(std::net::TcpListener::bind("127.0.0.1:0").unwrap()),
        metrics: Some(std::net::TcpListener::bind("127.0.0.1:0").unwrap()),
    };
    let port = listeners.webhook.local_addr().unwrap().port();
    let yaml = sharder_yaml(
        control_plane,
        name,
        sync_period,
        port,
        &control_plane.kubeconfig_path(),
        "leaderElect: false",
    );
    let config = SharderConfig::from_yaml(&yaml, Path::new("test.yaml")).unwrap();
    (config, listeners)
}

/// The SharderConfig file of [`sharder_config`] with webhook port `port`, the API server
/// reached through `kubeconfig`, and the `leaderElection` settings `leader_election` (one line
/// of YAML flow mapping entries).
fn sharder_yaml(
    control_plane: &ControlPlane,
    name: &str,
    sync_period: Duration,
    port: u16,
    kubeconfig: &Path,
    leader_election: &str,
) -> String {
    let dir = control_plane.directory().join(format!("sharder-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = control_plane.certificate_authority();
    let serving = ca.issue_serving(&["127.0.0.1"]).unwrap();
    std::fs::write(dir.join("tls.crt"), serving.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), serving.key_pem).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.cert_pem()).unwrap();
    format!(
        r"apiVersion: config.sharding.timebertt.dev/v1alpha1
kind: SharderConfig
clientConnection:
  kubeconfig: {kubeconfig}
leaderElection: {{ {leader_election} }}
health:
  bindAddress: '0'
metrics:
  bindAddress: '0'
  # The tests scrape plain HTTP on loopback (docs/metrics-security.md#defaults).
  secureServing: false
controller:
  sharder:
    syncPeriod: {sync}s
    concurrentMoves: 20
webhook:
  server:
    bindAddress: 127.0.0.1:{port}
    certDir: {dir}
  config:
    clientConfig:
      url: https://127.0.0.1:{port}/
    caBundleFile: {dir}/ca.crt
gracefulShutDown: 5s
",
        sync = sync_period.as_secs(),
        dir = dir.display(),
        kubeconfig = kubeconfig.display(),
    )
}

/// A control plane of the test's own started from `environment`, with the CRD and the
/// sharder's namespace, where sharders contend for leadership.
async fn leader_election_control_plane(environment: Environment) -> (ControlPlane, Client) {
    let control_plane = environment.start().await.unwrap();
    let client = control_plane.client().await.unwrap();
    install_crd(&client).await;
    let namespace: Namespace = serde_json::from_value(
        json!({ "metadata": { "name": kube_sharding::api::labels::SHARDER_NAMESPACE } }),
    )
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap();
    (control_plane, client)
}

async fn install_crd(client: &Client) {
    apply_crd(
        client,
        &serde_saphyr::from_str(&controller_ring::crd_yaml()).unwrap(),
    )
    .await;
}

/// Applies `crd` and waits until it is established.
async fn apply_crd(client: &Client, crd: &CustomResourceDefinition) {
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    let name = crd.metadata.name.clone().unwrap();
    crds.patch(
        &name,
        &PatchParams::apply("sharder-it").force(),
        &Patch::Apply(crd),
    )
    .await
    .unwrap();
    tokio::time::timeout(
        PATIENCE,
        await_condition(crds, &name, conditions::is_crd_established()),
    )
    .await
    .unwrap()
    .unwrap();
}

/// A namespace for one test, and a ring of the same name that shards its ConfigMaps
/// (main) and their controlled Secrets.
async fn namespace_and_ring(client: &Client) -> String {
    let name = new_namespace(client).await;
    config_map_ring(client, &name, &name).await;
    name
}

/// Ring `ring` over the ConfigMaps (main) and their controlled Secrets of namespace
/// `namespace`, once it is ready and the API server calls its webhook.
async fn config_map_ring(client: &Client, ring: &str, namespace: &str) {
    let resources = vec![RingResource {
        group: String::new(),
        resource: "configmaps".into(),
        controlled_resources: vec![GroupResource::new("", "secrets")],
    }];
    ring_over_namespace(client, ring, namespace, resources).await;
    await_config_map_ring(client, ring, namespace).await;
}

/// Waits until ring `ring` over the ConfigMaps of namespace `namespace` is ready and the API
/// server calls its webhook.
async fn await_config_map_ring(client: &Client, ring: &str, namespace: &str) {
    eventually("the ring's webhook to be ready", || async {
        (ready_condition(client, ring).await?.status == "True").then_some(())
    })
    .await;
    let probe: ConfigMap =
        serde_json::from_value(json!({ "metadata": { "generateName": "probe-" } })).unwrap();
    await_webhook(
        &Api::<ConfigMap>::namespaced(client.clone(), namespace),
        &probe,
    )
    .await;
}

/// Waits until the API server calls a ring's webhook on creates through `api`. It loads new
/// webhook configurations asynchronously; the webhook denies a main object with only a
/// generateName (`probe`), so once a dry run of one is denied, every later create goes through
/// the webhook.
async fn await_webhook<K>(api: &Api<K>, probe: &K)
where
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    eventually("the API server to call the ring's webhook", || async {
        match api.create(&dry_run, probe).await {
            Err(kube::Error::Api(status)) if status.code == 400 => Some(()),
            _ => None,
        }
    })
    .await;
}

/// A namespace for one test, and a ring of the same name over `resources` that selects only
/// that namespace; the ring is created, not awaited.
async fn namespace_and_ring_of(client: &Client, resources: Vec<RingResource>) -> String {
    let name = new_namespace(client).await;
    ring_over_namespace(client, &name, &name, resources).await;
    name
}

/// A new namespace `it-<random>`.
async fn new_namespace(client: &Client) -> String {
    let namespace: Namespace =
        serde_json::from_value(json!({ "metadata": { "generateName": "it-" } })).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap()
        .metadata
        .name
        .unwrap()
}

/// Starts `command` with its output in file `log`, killed when dropped.
fn spawn_logged(command: &mut tokio::process::Command, log: &Path) -> tokio::process::Child {
    let file = std::fs::File::create(log).unwrap();
    command
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Creates ring `ring` over `resources` that selects only namespace `namespace`.
async fn ring_over_namespace(
    client: &Client,
    ring: &str,
    namespace: &str,
    resources: Vec<RingResource>,
) {
    let ring = ControllerRing::new(
        ring,
        ControllerRingSpec {
            resources,
            namespace_selector: Some(
                serde_json::from_value(
                    json!({ "matchLabels": { "kubernetes.io/metadata.name": namespace } }),
                )
                .unwrap(),
            ),
        },
    );
    Api::<ControllerRing>::all(client.clone())
        .create(&PostParams::default(), &ring)
        .await
        .unwrap();
}

/// The `Ready` condition of ring `ring`, once it has one.
async fn ready_condition(client: &Client, ring: &str) -> Option<Condition> {
    let ring = Api::<ControllerRing>::all(client.clone())
        .get(ring)
        .await
        .ok()?;
    ring.status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
}

/// Starts shard `name` of `ring`, holding its Lease in `namespace` with short timings.
async fn shard(client: &Client, ring: &str, name: &str, lease_duration: u64) -> ShardLeaseHandle {
    let config = ShardLeaseConfig::new(ring, name, ring)
        .lease_duration(Duration::from_secs(lease_duration))
        .renew_deadline(Duration::from_secs(lease_duration) * 2 / 3)
        .retry_period(Duration::from_millis(500));
    ShardLease::new(client.clone(), config)
        .acquire()
        .await
        .unwrap()
}

/// The shard label of ConfigMap `name` in ring `ring` (= its namespace), if any.
async fn shard_of(client: &Client, ring: &str, name: &str) -> Option<String> {
    let config_map = Api::<ConfigMap>::namespaced(client.clone(), ring)
        .get(name)
        .await
        .ok()?;
    config_map
        .metadata
        .labels?
        .get(&kube_sharding::api::labels::shard(ring))
        .cloned()
}

/// Creates ConfigMaps `cm-0`.. in namespace `ring`, each with a Secret it controls.
async fn create_objects(client: &Client, ring: &str, count: usize) {
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ring);
    let secrets = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), ring);
    for i in 0..count {
        let name = format!("cm-{i}");
        let owner: ConfigMap =
            serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
        let owner = config_maps
            .create(&PostParams::default(), &owner)
            .await
            .unwrap();
        let reference = kube::Resource::controller_owner_ref(&owner, &()).unwrap();
        let secret = serde_json::from_value(json!({
            "metadata": { "name": format!("secret-{i}"), "ownerReferences": [reference] }
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
}

/// The shard the ring of `shards` assigns ConfigMap `name` in namespace `ring` to.
fn expected_shard(shards: &[&str], ring: &str, name: &str) -> String {
    let hash_ring = kube_sharding::consistent_hash::Ring::with_nodes(shards.iter().copied());
    hash_ring
        .hash(&format!("/ConfigMap/{ring}/{name}"))
        .unwrap()
        .to_owned()
}

/// Polls `check` until it returns `Some`, failing the test after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    testenv::eventually(what, PATIENCE, check).await
}
