use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::post};
use axum_server::tls_rustls::RustlsConfig;
use base64::{Engine, engine::general_purpose::STANDARD};
use k8s_openapi::api::{
    admissionregistration::v1::MutatingWebhookConfiguration, core::v1::ConfigMap,
};
use kube::{
    Api,
    api::{DeleteParams, DynamicObject, PostParams},
    core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview},
};
use serde_json::json;

use crate::{CONTROL_PLANE, CONVERGE, client, namespace};

const MUTATED: &str = "testenv.example.com/mutated";

/// Adds the `MUTATED` label, creating `metadata.labels` when the object has none.
async fn mutate(
    State(calls): State<Arc<AtomicUsize>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    calls.fetch_add(1, Ordering::SeqCst);
    let request: AdmissionRequest<DynamicObject> = review.try_into().unwrap();
    let has_labels = request
        .object
        .as_ref()
        .is_some_and(|o| o.metadata.labels.is_some());
    let mut operations = Vec::new();
    if !has_labels {
        operations.push(json!({ "op": "add", "path": "/metadata/labels", "value": {} }));
    }
    let escaped = MUTATED.replace('~', "~0").replace('/', "~1");
    operations.push(
        json!({ "op": "add", "path": format!("/metadata/labels/{escaped}"), "value": "true" }),
    );
    let patch: json_patch::Patch = serde_json::from_value(json!(operations)).unwrap();
    let response = AdmissionResponse::from(&request).with_patch(patch).unwrap();
    Json(response.into_review())
}

#[tokio::test]
async fn a_mutating_webhook_on_loopback_is_called_and_its_patch_applied() {
    let control_plane = CONTROL_PLANE.get();
    let serving = control_plane
        .certificate_authority()
        .issue_serving(&["127.0.0.1"])
        .unwrap();
    let tls = RustlsConfig::from_pem(serving.cert_pem.into_bytes(), serving.key_pem.into_bytes())
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/mutate", post(mutate))
        .with_state(calls.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .serve(app.into_make_service()),
    );

    let client = client().await;
    let namespace = namespace(&client, &[]).await;
    let name = format!("testenv-{namespace}");
    let configuration: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "metadata": { "name": name },
        "webhooks": [{
            "name": "mutate.testenv.example.com",
            "clientConfig": {
                "url": format!("https://{address}/mutate"),
                "caBundle": STANDARD.encode(control_plane.certificate_authority().cert_pem()),
            },
            // Only this test's namespace, so that other tests never meet the webhook.
            "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": namespace } },
            "rules": [{ "operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"] }],
            "failurePolicy": "Ignore",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 5,
        }]
    }))
    .unwrap();
    let configurations = Api::<MutatingWebhookConfiguration>::all(client.clone());
    configurations
        .create(&PostParams::default(), &configuration)
        .await
        .unwrap();

    // The API server picks up new webhook configurations asynchronously: create objects until
    // one comes back mutated. Objects without labels show that the patch creates the map.
    let config_maps = Api::<ConfigMap>::namespaced(client, &namespace);
    let mutated = tokio::time::timeout(CONVERGE, async {
        for attempt in 0.. {
            let object: ConfigMap =
                serde_json::from_value(json!({ "metadata": { "name": format!("cm-{attempt}") } }))
                    .unwrap();
            let created = config_maps
                .create(&PostParams::default(), &object)
                .await
                .unwrap();
            if created
                .metadata
                .labels
                .as_ref()
                .is_some_and(|labels| labels.get(MUTATED).is_some_and(|v| v == "true"))
            {
                return created;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        unreachable!()
    })
    .await
    .expect("the webhook's patch was applied in time");
    assert!(calls.load(Ordering::SeqCst) >= 1);

    // An object that has labels keeps them and gains the webhook's.
    let labelled: ConfigMap = serde_json::from_value(
        json!({ "metadata": { "name": "labelled", "labels": { "keep": "me" } } }),
    )
    .unwrap();
    let created = config_maps
        .create(&PostParams::default(), &labelled)
        .await
        .unwrap();
    let labels = created.metadata.labels.unwrap();
    assert_eq!(labels.get("keep").map(String::as_str), Some("me"));
    assert_eq!(
        labels.get(MUTATED).map(String::as_str),
        Some("true"),
        "{mutated:?}"
    );

    configurations
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    server.abort();
}
