//! `/metrics` served securely (docs/metrics-security.md#how-a-scrape-is-authorized): scrapers
//! are reviewed by the real API server with ServiceAccount tokens from the TokenRequest API.

use std::{net::TcpListener, sync::Arc, time::Duration};

use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    core::v1::{Namespace, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject},
};
use kube::{
    Api, Client, Config,
    api::{DeleteParams, ObjectMeta, PostParams},
};
use operations::http::{MetricsServing, serve_metrics};
use prometheus_client::{metrics::counter::Counter, registry::Registry};

const NAMESPACE: &str = "metrics-scrapers";
/// The ClusterRole and ClusterRoleBinding that grant `get` on `/metrics`.
const ROLE: &str = "metrics-scraper";
const PATIENCE: Duration = Duration::from_secs(30);

/// The answer to `GET /metrics` over HTTPS on `port` (its certificate is self-signed, so it
/// is not verified), with `token` as the bearer token if any: the status code and the body.
async fn scrape(port: u16, token: Option<&str>) -> (u16, String) {
    let mut config = Config::new(format!("https://127.0.0.1:{port}").parse().unwrap());
    config.accept_invalid_certs = true;
    config.auth_info.token = token.map(|token| token.to_owned().into());
    let client = Client::try_from(config).unwrap();
    let request = http::Request::get("/metrics").body(Vec::new()).unwrap();
    match client.request_text(request).await {
        Ok(body) => (200, body),
        Err(kube::Error::Api(status)) => (status.code, status.message),
        Err(error) => panic!("the scrape failed: {error}"),
    }
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        ..ObjectMeta::default()
    }
}

/// A token of the new ServiceAccount `name` in [`NAMESPACE`] from the TokenRequest API.
async fn service_account_token(client: &Client, name: &str) -> String {
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), NAMESPACE);
    accounts
        .create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta(name),
                ..ServiceAccount::default()
            },
        )
        .await
        .unwrap();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let issued: TokenRequest = accounts
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .unwrap();
    issued
        .status
        .and_then(|status| status.token)
        .expect("an issued token")
}

/// Grants `get` on `/metrics` to the ServiceAccount `name` in [`NAMESPACE`], as
/// deploy/monitoring grants it to Prometheus, and waits until the authorizer knows it (a
/// refusal would be remembered for half a minute).
async fn grant_metrics(client: &Client, name: &str) {
    Api::<ClusterRole>::all(client.clone())
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: meta(ROLE),
                rules: Some(vec![PolicyRule {
                    non_resource_urls: Some(vec!["/metrics".to_owned()]),
                    verbs: vec!["get".to_owned()],
                    ..PolicyRule::default()
                }]),
                ..ClusterRole::default()
            },
        )
        .await
        .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(
            &PostParams::default(),
            &ClusterRoleBinding {
                metadata: meta(ROLE),
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".to_owned()),
                    kind: "ClusterRole".to_owned(),
                    name: ROLE.to_owned(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".to_owned(),
                    name: name.to_owned(),
                    namespace: Some(NAMESPACE.to_owned()),
                    ..Subject::default()
                }]),
            },
        )
        .await
        .unwrap();
    testenv::eventually("the grant of get /metrics", PATIENCE, || async {
        may_get_metrics(client, name).await.then_some(())
    })
    .await;
}

/// Whether the API server's authorizer lets the ServiceAccount `name` in [`NAMESPACE`] get
/// `/metrics` now.
async fn may_get_metrics(client: &Client, name: &str) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{NAMESPACE}:{name}")),
            non_resource_attributes: Some(NonResourceAttributes {
                path: Some("/metrics".to_owned()),
                verb: Some("get".to_owned()),
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .is_some_and(|status| status.allowed)
}

#[tokio::test]
async fn metrics_need_a_token_whose_user_may_get_them() {
    let control_plane = testenv::Environment::new().start().await.unwrap();
    let client = control_plane.client().await.unwrap();
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: meta(NAMESPACE),
                ..Namespace::default()
            },
        )
        .await
        .unwrap();
    let stranger = service_account_token(&client, "stranger").await;
    let scraper = service_account_token(&client, "scraper").await;
    grant_metrics(&client, "scraper").await;

    let mut registry = Registry::default();
    let events = Counter::<u64>::default();
    events.inc();
    registry.register("example_events", "An example counter", events);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_metrics(
        listener,
        Arc::new(registry),
        MetricsServing::new(true, &client),
        async {
            let _ = stopped.await;
        },
    ));

    assert_eq!(scrape(port, None).await.0, 401, "without a token");
    assert_eq!(
        scrape(port, Some("made-up")).await.0,
        401,
        "a made-up token"
    );
    let (code, message) = scrape(port, Some(&stranger)).await;
    assert_eq!(code, 403, "a ServiceAccount without the grant: {message}");
    assert!(
        message.contains(&format!("system:serviceaccount:{NAMESPACE}:stranger")),
        "{message}"
    );
    let (code, body) = scrape(port, Some(&scraper)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("example_events_total 1"), "{body}");
    // Remembered for a minute: the grant's removal is not seen at once.
    Api::<ClusterRoleBinding>::all(client.clone())
        .delete(ROLE, &DeleteParams::default())
        .await
        .unwrap();
    testenv::eventually("the grant's removal", PATIENCE, || async {
        (!may_get_metrics(&client, "scraper").await).then_some(())
    })
    .await;
    assert_eq!(scrape(port, Some(&scraper)).await.0, 200, "remembered");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
