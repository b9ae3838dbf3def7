//! Integration tests of the shard library on a real control plane (one per test binary,
//! shared by the tests and isolated by namespace).

mod controller_ring;
mod reconciler;
mod shard_lease;
mod shutdown;

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client, api::PostParams};
use testenv::{Environment, SharedControlPlane};

static CONTROL_PLANE: SharedControlPlane = SharedControlPlane::new(Environment::new);

/// How long a test waits for something to happen before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

async fn client() -> Client {
    CONTROL_PLANE.get().client().await.expect("admin client")
}

/// A fresh namespace for one test.
async fn namespace(client: &Client) -> String {
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "generateName": "it-" } }))
            .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace")
        .metadata
        .name
        .unwrap()
}

/// Polls `check` until it returns `Some`, failing the test after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    testenv::eventually(what, PATIENCE, check).await
}
