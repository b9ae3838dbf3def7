//! Integration tests on a real control plane: one per test binary, shared by the tests and
//! isolated by namespace.

mod controller_manager;
mod custom_resources;
mod lifecycle;
mod selectors;
mod webhook;

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::{Api, Client, api::PostParams};
use testenv::{Environment, SharedControlPlane};

static CONTROL_PLANE: SharedControlPlane =
    SharedControlPlane::new(|| Environment::new().controller_manager(true));

/// How long a test waits for the control plane to converge before it fails.
const CONVERGE: Duration = Duration::from_secs(60);

async fn client() -> Client {
    CONTROL_PLANE.get().client().await.expect("admin client")
}

/// A fresh namespace for one test, with `labels`.
async fn namespace(client: &Client, labels: &[(&str, &str)]) -> String {
    let namespace: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {
            "generateName": "it-",
            "labels": labels.iter().copied().collect::<std::collections::BTreeMap<_, _>>(),
        }
    }))
    .unwrap();
    let created = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    created.metadata.name.unwrap()
}

/// Waits for `condition` on the named object, failing the test after [`CONVERGE`].
async fn converge<K>(
    api: &Api<K>,
    name: &str,
    condition: impl kube::runtime::wait::Condition<K>,
) -> Option<K>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    tokio::time::timeout(
        CONVERGE,
        kube::runtime::wait::await_condition(api.clone(), name, condition),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} did not converge within {CONVERGE:?}"))
    .expect("watch")
}
