//! The webhook's HTTP handler (docs/contract.md#webhook): decodes an AdmissionReview, looks up the
//! ring named in the path, decides with [`assign`], and answers.
//!
//! Every answer is a 200 with an AdmissionReview (docs/contract.md#webhook): a body that cannot be
//! decoded gets a denial with code 400, so the API server reports the reason instead of a transport
//! error, and the webhook's `failurePolicy: Ignore` lets the object through unassigned for the
//! resync to pick up. Requests beyond the server's bounds never reach the handler: the
//! [`limits`](super::limits) answer them with 429, 413 or 408, which the API server treats as a
//! failed call, with the same outcome under `failurePolicy: Ignore`.
//!
//! The answers' codes and messages are those of the Go original (docs/compatibility.md):
//! denials carry a code and a message but no reason, allowed requests code 200 and why.

use std::{sync::Arc, time::Instant};

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection, rejection::PathRejection},
};
use k8s_openapi::ByteString;
use kube::core::admission::{AdmissionRequest, META_API_VERSION_V1, META_KIND};
use kube_sharding::{api::ControllerRing, consistent_hash::Ring, strategy};
use serde::{Deserialize, Serialize};

use super::{
    assign::{Decision, Placement, assign},
    metrics::{ResourceLabels, RingLabels, WebhookMetrics},
    review::{self, ObjectHead, Unreadable},
};
use crate::load_table::LoadTable;

/// The message of an allowed request that assigns the object, as the Go original words it.
pub const ASSIGNING: &str = "assigning object";

/// Where the webhook finds the ControllerRings, the hash rings of their available shards, and
/// the load tables of bounded-load rings.
///
/// The sharder implements it with its caches; tests use a map.
pub trait RingState: Send + Sync + 'static {
    /// The ControllerRing named `name`, if it exists.
    fn controller_ring(&self, name: &str) -> Option<Arc<ControllerRing>>;

    /// The hash ring of the available shards of the ring named `name` at the time of the
    /// call (empty when it has none).
    fn hash_ring(&self, name: &str) -> Arc<Ring>;

    /// The names of the available shards of the ring named `name` at the time of the call.
    fn available_shards(&self, name: &str) -> Vec<String> {
        self.hash_ring(name).nodes().map(str::to_owned).collect()
    }

    /// The load table of the bounded-load ring named `name`, once its watches were started.
    fn load_table(&self, _name: &str) -> Option<Arc<LoadTable>> {
        None
    }
}

/// The webhook: the ring state it decides with and the metrics it records. Cheap to clone.
#[derive(Clone)]
pub struct Webhook {
    state: Arc<dyn RingState>,
    metrics: WebhookMetrics,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").finish_non_exhaustive()
    }
}

impl Webhook {
    /// A webhook that decides with `state` and records into `metrics`.
    #[must_use]
    pub fn new(state: Arc<dyn RingState>, metrics: WebhookMetrics) -> Self {
        Self { state, metrics }
    }

    /// The metrics it records into.
    #[must_use]
    pub fn metrics(&self) -> &WebhookMetrics {
        &self.metrics
    }

    /// Answers the AdmissionReview in `body`, sent to the path of the ring named `ring`.
    ///
    /// # Guarantees
    /// Never panics and always returns a `admission.k8s.io/v1` AdmissionReview with a
    /// response, which carries the request's uid whenever the body has one.
    #[must_use]
    #[tracing::instrument(name = "admit", skip_all, fields(ring = %ring, uid))]
    pub fn review(&self, ring: &str, body: &[u8]) -> Review {
        let request = match review::read(body) {
            Ok(request) => request,
            Err(unreadable) => {
                tracing::debug!(error = %unreadable, "cannot read AdmissionReview");
                let uid = match unreadable {
                    Unreadable::Decode(_) => uid_of(body).unwrap_or_default(),
                    Unreadable::NoRequest => String::new(),
                };
                return Review::invalid(unreadable.to_string(), uid);
            }
        };
        tracing::Span::current().record("uid", request.uid.as_str());

        let Some(controller_ring) = self.state.controller_ring(ring) else {
            // Only rings with a webhook configuration send requests here: this one is gone,
            // or the caches have not seen it yet.
            return Review::denied(
                request.uid,
                404,
                format!("ControllerRing {ring:?} not found"),
            );
        };
        // Timed only for existing rings, so that requests to made-up paths add no series.
        let started = Instant::now();
        let decision = match strategy::Strategy::of(&controller_ring) {
            Ok(strategy::Strategy::HashRing) => assign(
                &controller_ring,
                &Placement::HashRing(&self.state.hash_ring(ring)),
                &request,
            ),
            Ok(strategy::Strategy::BoundedLoad) => {
                self.bounded_load(ring, &controller_ring, &request)
            }
            Err(invalid) => assign(&controller_ring, &Placement::Invalid(&invalid), &request),
        };
        tracing::debug!(?decision, "decided");
        if let Decision::Patch { .. } = decision
            && !request.dry_run
        {
            // Dry runs change nothing, so they assign nothing (docs/contract.md#webhook).
            self.metrics
                .assignments
                .get_or_create(&ResourceLabels::new(
                    ring,
                    &request.resource.group,
                    &request.resource.resource,
                ))
                .inc();
        }
        let review = Review::deciding(request.uid, decision);
        self.metrics
            .request_duration
            .get_or_create(&RingLabels {
                controllerring: ring.to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
        review
    }

    /// Decides on `request` to the bounded-load ring `controller_ring` (named `ring`) under its
    /// table's lock, and records the placement of a main object in the table, unless the
    /// request is a dry run (docs/sharder.md#assignment-strategies).
    fn bounded_load(
        &self,
        ring: &str,
        controller_ring: &ControllerRing,
        request: &AdmissionRequest<ObjectHead>,
    ) -> Decision {
        let available = self.state.available_shards(ring);
        let Some(table) = self.state.load_table(ring) else {
            // The ring watch has not started the table yet: place by preference.
            let placement = Placement::BoundedLoad {
                table: None,
                available: &available,
            };
            return assign(controller_ring, &placement, request);
        };
        let mut table = table.lock();
        let now = Instant::now();
        table.expire(now);
        let synced = table.is_synced();
        let placement = Placement::BoundedLoad {
            table: synced.then(|| table.assignment()),
            available: &available,
        };
        let decision = assign(controller_ring, &placement, request);
        if let Decision::Patch {
            shard,
            record: Some(key),
            ..
        } = &decision
            && !request.dry_run
        {
            table.record(key, shard, now);
        }
        decision
    }
}

/// The axum handler of `POST /webhooks/sharder/controllerring/{ring}`.
///
/// Extractor failures are answered like undecodable bodies, with a 200 and a reason.
pub async fn admit(
    State(webhook): State<Webhook>,
    ring: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Json<Review> {
    let review = match (ring, body) {
        (Ok(Path(ring)), Ok(body)) => webhook.review(&ring, &body),
        (Err(rejection), _) => {
            Review::invalid(format!("invalid request path: {rejection}"), String::new())
        }
        (_, Err(rejection)) => Review::invalid(
            format!("cannot read the request body: {rejection}"),
            String::new(),
        ),
    };
    Json(review)
}

/// The `admission.k8s.io/v1` AdmissionReview the webhook answers with, serialized as the
/// Kubernetes API defines it.
///
/// kube's `AdmissionResponse` only decodes requests here: it serializes its patch, a
/// `Vec<u8>`, as an array of numbers (kube-rs issue 1781), where the API's `[]byte` is a base64
/// string. kube-apiserver accepts both; other readers of AdmissionReviews need the string.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Review {
    api_version: &'static str,
    kind: &'static str,
    response: Response,
}

/// The `response` of a [`Review`]: the fields of the API's AdmissionResponse the webhook sets.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    uid: String,
    allowed: bool,
    status: Status,
    /// A JSON patch, base64 in JSON (`k8s_openapi::ByteString`).
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<ByteString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
}

/// The `status` of a [`Response`]: the fields of `metav1.Status` the Go original's webhook
/// sets. Without a reason, kubectl prints a denial as "Error from server: …".
#[derive(Clone, Debug, PartialEq, Serialize)]
struct Status {
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    code: u16,
}

impl Review {
    /// A review of the one version the webhook is registered for (docs/contract.md#webhook:
    /// `admissionReviewVersions: [v1]`), whatever the request claimed to be.
    fn new(response: Response) -> Self {
        Self {
            api_version: META_API_VERSION_V1,
            kind: META_KIND,
            response,
        }
    }

    /// Admits the request with id `uid`, saying why in `message`.
    fn allowed(uid: String, message: String, patch: Option<Vec<u8>>) -> Self {
        let patch_type = patch.is_some().then_some("JSONPatch");
        Self::new(Response {
            uid,
            allowed: true,
            status: Status { message, code: 200 },
            patch: patch.map(ByteString),
            patch_type,
        })
    }

    /// Rejects the request with id `uid` with HTTP `code` and `message`.
    fn denied(uid: String, code: u16, message: String) -> Self {
        Self::new(Response {
            uid,
            allowed: false,
            status: Status { message, code },
            patch: None,
            patch_type: None,
        })
    }

    /// Rejects a body without a readable request (code 400); `uid` if one could be read.
    fn invalid(message: impl Into<String>, uid: String) -> Self {
        Self::denied(uid, 400, message.into())
    }

    /// Answers the request with id `uid` with `decision`.
    fn deciding(uid: String, decision: Decision) -> Self {
        match decision {
            Decision::Allow { reason } => Self::allowed(uid, reason.to_owned(), None),
            Decision::Deny { reason } => Self::denied(uid, 400, reason),
            Decision::Patch { patch, .. } => match serde_json::to_vec(&patch) {
                Ok(patch) => Self::allowed(uid, ASSIGNING.to_owned(), Some(patch)),
                // Serializing a JSON patch of strings cannot fail; answer anyway rather than panic.
                Err(error) => Self::denied(uid, 500, error.to_string()),
            },
        }
    }
}

/// The request's uid in a body that is not a decodable review, if it has one: the API server
/// matches responses to requests by it.
fn uid_of(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Review {
        request: Option<Request>,
    }
    #[derive(Deserialize)]
    struct Request {
        uid: String,
    }
    serde_json::from_slice::<Review>(body)
        .ok()?
        .request
        .map(|request| request.uid)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use base64::{Engine as _, prelude::BASE64_STANDARD};
    use kube_sharding::api::{ControllerRingSpec, GroupResource, RingResource, labels};
    use prometheus_client::{encoding::text::encode, registry::Registry};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// Rings by name, with their hash rings.
    struct Rings(HashMap<String, (Arc<ControllerRing>, Arc<Ring>)>);

    impl RingState for Rings {
        fn controller_ring(&self, name: &str) -> Option<Arc<ControllerRing>> {
            self.0.get(name).map(|(ring, _)| Arc::clone(ring))
        }

        fn hash_ring(&self, name: &str) -> Arc<Ring> {
            self.0
                .get(name)
                .map(|(_, hash_ring)| Arc::clone(hash_ring))
                .unwrap_or_default()
        }
    }

    /// Ring `balanced` (bounded-load, with a synced table), ring `starting` (bounded-load,
    /// without a table yet) and ring `bad` (an invalid strategy), each with three shards.
    struct BoundedLoadRings(Arc<LoadTable>);

    impl RingState for BoundedLoadRings {
        fn controller_ring(&self, name: &str) -> Option<Arc<ControllerRing>> {
            let value = match name {
                "balanced" | "starting" => "bounded-load",
                "bad" => "least-loaded",
                _ => return None,
            };
            let mut ring = ControllerRing::new(
                name,
                ControllerRingSpec {
                    resources: vec![RingResource {
                        group: "example.com".into(),
                        resource: "things".into(),
                        controlled_resources: vec![],
                    }],
                    namespace_selector: None,
                },
            );
            ring.metadata.annotations =
                Some([(strategy::ANNOTATION.to_owned(), value.to_owned())].into());
            Some(Arc::new(ring))
        }

        fn hash_ring(&self, _: &str) -> Arc<Ring> {
            Arc::new(Ring::with_nodes(["shard-0", "shard-1", "shard-2"]))
        }

        fn load_table(&self, name: &str) -> Option<Arc<LoadTable>> {
            (name == "balanced").then(|| Arc::clone(&self.0))
        }
    }

    fn bounded_load_webhook() -> (Webhook, Arc<LoadTable>) {
        let table = Arc::new(LoadTable::default());
        table.lock().expect_feeds(&[]);
        let rings = BoundedLoadRings(Arc::clone(&table));
        let metrics = WebhookMetrics::register(&mut Registry::default());
        (Webhook::new(Arc::new(rings), metrics), table)
    }

    /// The shard `answer` labels `object` with on ring `ring`.
    fn assigned_shard(answer: &Value, mut object: Value, ring: &str) -> String {
        json_patch::patch(&mut object, &patch_of(&answer["response"])).unwrap();
        object["metadata"]["labels"][labels::shard(ring)]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_bounded_load_placement_is_recorded_at_once_unless_it_is_a_dry_run() {
        let (webhook, table) = bounded_load_webhook();
        let object = thing(&json!({"name": "foo", "namespace": "default"}));
        let _ = answer_json(&webhook, "balanced", &body("things", &object, true));
        assert!(table.lock().assignment().is_empty(), "a dry run");
        let answer = answer_json(&webhook, "balanced", &body("things", &object, false));
        let shard = assigned_shard(&answer, object, "balanced");
        assert_eq!(
            table
                .lock()
                .assignment()
                .shard_of("example.com/Thing/default/foo"),
            Some(shard.as_str())
        );
    }

    #[test]
    fn consecutive_bounded_load_admissions_see_each_others_placements() {
        let (webhook, table) = bounded_load_webhook();
        for i in 0..60 {
            let object = thing(&json!({"name": format!("thing-{i}"), "namespace": "default"}));
            let _ = answer_json(&webhook, "balanced", &body("things", &object, false));
        }
        let table = table.lock();
        let loads: Vec<usize> = ["shard-0", "shard-1", "shard-2"]
            .map(|shard| table.assignment().load(shard))
            .to_vec();
        assert_eq!(loads.iter().sum::<usize>(), 60);
        assert!(
            loads.iter().all(|&load| load <= strategy::capacity(60, 3)),
            "{loads:?}"
        );
    }

    #[test]
    fn a_bounded_load_ring_without_a_table_yet_places_by_preference() {
        let (webhook, _) = bounded_load_webhook();
        let object = thing(&json!({"name": "foo", "namespace": "default"}));
        let answer = answer_json(&webhook, "starting", &body("things", &object, false));
        assert_eq!(
            assigned_shard(&answer, object, "starting"),
            strategy::preference(
                "example.com/Thing/default/foo",
                &["shard-0", "shard-1", "shard-2"]
            )[0]
        );
    }

    #[test]
    fn an_invalid_strategy_is_denied_with_400_naming_the_annotation_and_value() {
        let (webhook, _) = bounded_load_webhook();
        let object = thing(&json!({"name": "foo", "namespace": "default"}));
        let response = &answer_json(&webhook, "bad", &body("things", &object, false))["response"];
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 400);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.contains(strategy::ANNOTATION), "{message}");
        assert!(message.contains("least-loaded"), "{message}");
    }

    /// A webhook knowing ring `ring` (main `example.com/things`, controlled `configmaps`)
    /// with three shards and ring `empty` without shards, and the registry of its metrics.
    fn webhook() -> (Webhook, Registry) {
        let controller_ring = |name: &str| {
            Arc::new(ControllerRing::new(
                name,
                ControllerRingSpec {
                    resources: vec![RingResource {
                        group: "example.com".into(),
                        resource: "things".into(),
                        controlled_resources: vec![GroupResource::new("", "configmaps")],
                    }],
                    namespace_selector: None,
                },
            ))
        };
        let rings = Rings(HashMap::from([
            (
                "ring".to_owned(),
                (
                    controller_ring("ring"),
                    Arc::new(Ring::with_nodes(["shard-0", "shard-1", "shard-2"])),
                ),
            ),
            (
                "empty".to_owned(),
                (controller_ring("empty"), Arc::new(Ring::default())),
            ),
        ]));
        let mut registry = Registry::default();
        let metrics = WebhookMetrics::register(&mut registry);
        (Webhook::new(Arc::new(rings), metrics), registry)
    }

    fn body(resource: &str, object: &Value, dry_run: bool) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "uid-1",
                "kind": {"group": "example.com", "version": "v1", "kind": "Thing"},
                "resource": {"group": "example.com", "version": "v1", "resource": resource},
                "name": "foo",
                "namespace": "default",
                "operation": "CREATE",
                "userInfo": {"username": "admin"},
                "object": object,
                "dryRun": dry_run,
            }
        }))
        .unwrap()
    }

    fn thing(metadata: &Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Thing", "metadata": metadata})
    }

    /// The answer to `body` on ring `ring` as JSON, after checking that a strict reader of
    /// the API type accepts it.
    fn answer_json(webhook: &Webhook, ring: &str, body: &[u8]) -> Value {
        let answer = serde_json::to_value(webhook.review(ring, body)).unwrap();
        let strict: StrictReview = serde_json::from_value(answer.clone())
            .unwrap_or_else(|error| panic!("{error} in {answer}"));
        assert_eq!(strict.api_version, "admission.k8s.io/v1");
        assert_eq!(strict.kind, "AdmissionReview");
        if let Some(patch) = &strict.response.patch {
            assert!(
                BASE64_STANDARD.decode(patch).is_ok(),
                "the patch is not base64: {answer}"
            );
        }
        answer
    }

    /// An `admission.k8s.io/v1` AdmissionReview as the Kubernetes API reference defines it,
    /// read strictly: unknown fields are errors, and the patch (`[]byte`) is a string.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct StrictReview {
        api_version: String,
        kind: String,
        response: StrictResponse,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[expect(dead_code, reason = "the fields are there to be accepted, not read")]
    struct StrictResponse {
        uid: String,
        allowed: bool,
        status: Option<StrictStatus>,
        patch: Option<String>,
        patch_type: Option<String>,
        audit_annotations: Option<HashMap<String, String>>,
        warnings: Option<Vec<String>>,
    }

    /// `metav1.Status`.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[expect(dead_code, reason = "the fields are there to be accepted, not read")]
    struct StrictStatus {
        kind: Option<String>,
        api_version: Option<String>,
        metadata: Option<Value>,
        status: Option<String>,
        message: Option<String>,
        reason: Option<String>,
        details: Option<Value>,
        code: Option<i32>,
    }

    /// The JSON patch in `response`, decoded from base64.
    fn patch_of(response: &Value) -> json_patch::Patch {
        let patch = BASE64_STANDARD
            .decode(response["patch"].as_str().expect("a base64 string"))
            .unwrap();
        serde_json::from_slice(&patch).unwrap()
    }

    fn metrics_text(registry: &Registry) -> String {
        let mut text = String::new();
        encode(&mut text, registry).unwrap();
        text
    }

    const ASSIGNED: &str = r#"controller_sharding_assignments_total{controllerring="ring",group="example.com",resource="things"} 1"#;

    #[test]
    fn an_assignment_is_answered_with_a_json_patch_and_counted() {
        let (webhook, registry) = webhook();
        let mut object = thing(&json!({"name": "foo", "namespace": "default"}));
        let answer = answer_json(&webhook, "ring", &body("things", &object, false));

        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
        let response = &answer["response"];
        assert_eq!(response["uid"], "uid-1");
        assert_eq!(response["allowed"], true);
        assert_eq!(response["status"]["code"], 200);
        assert_eq!(response["patchType"], "JSONPatch");
        json_patch::patch(&mut object, &patch_of(response)).unwrap();
        let shard = object["metadata"]["labels"][labels::shard("ring")]
            .as_str()
            .unwrap();
        assert!(shard.starts_with("shard-"), "{object}");
        assert_eq!(response["status"]["message"], "assigning object");
        assert!(metrics_text(&registry).contains(ASSIGNED));
    }

    #[test]
    fn a_dry_run_is_decided_the_same_but_not_counted() {
        let (webhook, registry) = webhook();
        let object = thing(&json!({"name": "foo", "namespace": "default"}));
        let dry = answer_json(&webhook, "ring", &body("things", &object, true));
        assert_eq!(
            dry,
            answer_json(&webhook, "ring", &body("things", &object, false))
        );
        // Only the second request counts.
        assert!(metrics_text(&registry).contains(ASSIGNED));
    }

    #[test]
    fn allowed_requests_carry_the_reason() {
        let (webhook, registry) = webhook();
        for (ring, object, reason) in [
            (
                "ring",
                thing(&json!({"name": "foo", "labels": {labels::shard("ring"): "shard-1"}})),
                "object is already assigned",
            ),
            (
                "empty",
                thing(&json!({"name": "foo"})),
                "there is no available shard",
            ),
        ] {
            let response =
                &answer_json(&webhook, ring, &body("things", &object, false))["response"];
            assert_eq!(response["uid"], "uid-1");
            assert_eq!(response["allowed"], true);
            assert_eq!(response["status"]["code"], 200);
            assert_eq!(response["status"]["message"], reason);
            assert_eq!(response.get("patch"), None);
        }
        assert!(!metrics_text(&registry).contains("controller_sharding_assignments_total{"));
    }

    #[test]
    fn a_denied_request_is_answered_with_400_and_the_reason() {
        let (webhook, _) = webhook();
        let object = thing(&json!({"generateName": "foo-", "namespace": "default"}));
        let response = &answer_json(&webhook, "ring", &body("things", &object, false))["response"];
        assert_eq!(response["uid"], "uid-1");
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 400);
        // No reason, as in the Go original: kubectl prints "Error from server: …".
        assert_eq!(response["status"].get("reason"), None);
        assert_eq!(
            response["status"]["message"],
            "error calculating hash key for object: generateName is not supported on ring resources that are not controlled by another resource"
        );
    }

    #[test]
    fn a_request_for_an_unknown_ring_is_denied_and_adds_no_series() {
        let (webhook, registry) = webhook();
        let object = thing(&json!({"name": "foo"}));
        let response = &answer_json(&webhook, "gone", &body("things", &object, false))["response"];
        assert_eq!(response["uid"], "uid-1");
        assert_eq!(response["allowed"], false);
        assert_eq!(response["status"]["code"], 404);
        assert_eq!(
            response["status"]["message"],
            r#"ControllerRing "gone" not found"#
        );
        assert!(!metrics_text(&registry).contains("gone"));
    }

    #[test]
    fn request_durations_are_recorded_per_known_ring() {
        let (webhook, registry) = webhook();
        let _ = webhook.review(
            "ring",
            &body("things", &thing(&json!({"name": "foo"})), false),
        );
        assert!(metrics_text(&registry).contains(
            r#"controller_sharding_webhook_request_duration_seconds_count{controllerring="ring"} 1"#
        ));
    }

    #[test]
    fn an_undecodable_body_is_answered_as_invalid() {
        let (webhook, _) = webhook();
        let response = &answer_json(&webhook, "ring", b"{not json")["response"];
        assert_eq!(response["allowed"], false);
        assert_eq!(response["uid"], "");
        assert_eq!(response["status"]["code"], 400);
        assert_eq!(response["status"].get("reason"), None);
        assert!(
            response["status"]["message"]
                .as_str()
                .unwrap()
                .starts_with("cannot decode AdmissionReview: ")
        );
    }

    #[test]
    fn an_undecodable_field_is_named_by_its_path() {
        let (webhook, _) = webhook();
        let mut review: Value =
            serde_json::from_slice(&body("things", &thing(&json!({"name": "foo"})), false))
                .unwrap();
        review["request"]["operation"] = json!(7);
        let response =
            &answer_json(&webhook, "ring", &serde_json::to_vec(&review).unwrap())["response"];
        assert_eq!(response["status"]["code"], 400);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("cannot decode AdmissionReview: request.operation: "),
            "{message}"
        );
    }

    #[test]
    fn an_undecodable_review_with_a_uid_is_answered_with_that_uid() {
        let (webhook, _) = webhook();
        let body = br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "uid-2", "object": 5}}"#;
        let response = &answer_json(&webhook, "ring", body)["response"];
        assert_eq!(response["uid"], "uid-2");
        assert_eq!(response["allowed"], false);
    }

    #[test]
    fn a_review_without_a_request_is_answered_as_invalid() {
        let (webhook, _) = webhook();
        let response = &answer_json(
            &webhook,
            "ring",
            br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#,
        )["response"];
        assert_eq!(response["allowed"], false);
        assert_eq!(
            response["status"]["message"],
            "AdmissionReview carries no request"
        );
    }

    #[test]
    fn the_answer_is_always_a_v1_review() {
        let (webhook, _) = webhook();
        let mut review: Value =
            serde_json::from_slice(&body("things", &thing(&json!({"name": "foo"})), false))
                .unwrap();
        review["apiVersion"] = json!("admission.k8s.io/v1beta1");
        let answer = answer_json(&webhook, "ring", &serde_json::to_vec(&review).unwrap());
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(answer["kind"], "AdmissionReview");
    }

    /// Checks the answer to any `body`: a v1 review with a response and no request, the
    /// request's uid if the body has one, a reason for every denial, and a patch that applies
    /// to the request's object and adds the shard label.
    fn check_answer(webhook: &Webhook, ring: &str, body: &[u8]) -> Result<(), TestCaseError> {
        let answer = answer_json(webhook, ring, body);
        prop_assert_eq!(&answer["apiVersion"], "admission.k8s.io/v1");
        prop_assert_eq!(&answer["kind"], "AdmissionReview");
        prop_assert!(answer.get("request").is_none());
        let response = &answer["response"];
        prop_assert!(response["uid"].is_string());
        let sent: Option<Value> = serde_json::from_slice(body).ok();
        if let Some(uid) = sent
            .as_ref()
            .and_then(|sent| sent.pointer("/request/uid"))
            .and_then(Value::as_str)
        {
            prop_assert_eq!(&response["uid"], uid);
        }
        match response["allowed"].as_bool() {
            Some(false) => {
                prop_assert!(matches!(
                    response["status"]["code"].as_u64(),
                    Some(400 | 404)
                ));
                prop_assert!(
                    !response["status"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .is_empty()
                );
            }
            Some(true) => {
                if response.get("patch").is_some() {
                    prop_assert_eq!(&response["patchType"], "JSONPatch");
                    let mut object = sent.as_ref().unwrap()["request"]["object"].clone();
                    json_patch::patch(&mut object, &patch_of(response)).unwrap();
                    prop_assert!(object["metadata"]["labels"][labels::shard(ring)].is_string());
                }
            }
            None => prop_assert!(false, "allowed is missing in {answer}"),
        }
        Ok(())
    }

    /// Any JSON value, with keys that often are those of a review, so that random values
    /// often reach past the outer layers of decoding.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        let key = prop_oneof![
            Just("apiVersion".to_owned()),
            Just("kind".to_owned()),
            Just("request".to_owned()),
            Just("uid".to_owned()),
            Just("object".to_owned()),
            Just("metadata".to_owned()),
            Just("labels".to_owned()),
            Just("name".to_owned()),
            "[a-zA-Z]{0,8}",
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    /// Reviews that decode, and some with one part replaced by any JSON value.
    fn any_review() -> impl Strategy<Value = Value> {
        let resource = prop_oneof![
            Just(("example.com", "things")),
            Just(("", "configmaps")),
            Just(("", "secrets")),
        ];
        let owner = (any::<bool>(), "[a-z]{0,4}", prop_oneof![Just("example.com/v1"), Just("v1"), Just(""), Just("a/b/c")])
            .prop_map(|(controller, name, api_version)| {
                json!({"apiVersion": api_version, "kind": "Thing", "name": name, "uid": "x", "controller": controller})
            });
        let metadata = (
            prop::option::of("[a-z]{0,6}"),
            prop::option::of("[a-z]{0,6}-"),
            prop::option::of("[a-z]{0,6}"),
            prop::option::of(prop::collection::btree_map(
                prop_oneof![Just(labels::shard("ring")), "[a-z./~]{1,10}"],
                "[a-z0-9-]{0,8}",
                0..3,
            )),
            prop::option::of(prop::collection::vec(owner, 0..3)),
        )
            .prop_map(|(name, generate_name, namespace, labels, owners)| {
                json!({
                    "name": name, "generateName": generate_name, "namespace": namespace,
                    "labels": labels, "ownerReferences": owners,
                })
            });
        let object = prop::option::of((prop_oneof![Just("example.com/v1"), Just("v1"), Just("")], metadata).prop_map(
            |(api_version, metadata)| json!({"apiVersion": api_version, "kind": "Thing", "metadata": metadata}),
        ));
        let review = (
            "[a-z0-9-]{0,36}",
            resource,
            prop_oneof![
                Just("CREATE"),
                Just("UPDATE"),
                Just("DELETE"),
                Just("CONNECT")
            ],
            object,
            any::<bool>(),
        )
            .prop_map(|(uid, (group, resource), operation, object, dry_run)| {
                json!({
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "request": {
                        "uid": uid,
                        "kind": {"group": group, "version": "v1", "kind": "Thing"},
                        "resource": {"group": group, "version": "v1", "resource": resource},
                        "operation": operation,
                        "userInfo": {},
                        "object": object,
                        "dryRun": dry_run,
                    }
                })
            });
        let part = prop_oneof![
            Just("/request/uid"),
            Just("/request/object"),
            Just("/request/object/metadata"),
            Just("/request/object/metadata/labels"),
            Just("/request/object/metadata/ownerReferences"),
            Just("/request/resource"),
            Just("/request/dryRun"),
            Just("/request"),
            Just("/apiVersion"),
        ];
        (review, prop::option::of((part, any_json()))).prop_map(|(mut review, replacement)| {
            if let Some((pointer, value)) = replacement
                && let Some(part) = review.pointer_mut(pointer)
            {
                *part = value;
            }
            review
        })
    }

    #[test]
    fn the_generated_reviews_reach_every_kind_of_answer() {
        use proptest::{strategy::ValueTree as _, test_runner::TestRunner};

        let (webhook, _) = webhook();
        let mut runner = TestRunner::deterministic();
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let review = any_review().new_tree(&mut runner).unwrap().current();
            let answer = answer_json(&webhook, "ring", &serde_json::to_vec(&review).unwrap());
            let response = &answer["response"];
            seen.insert(
                match (response["allowed"].as_bool(), response.get("patch")) {
                    (Some(true), Some(_)) => "patch".to_owned(),
                    (Some(true), None) => "allow".to_owned(),
                    _ => format!("deny {}", response["status"]["code"]),
                },
            );
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            ["allow", "deny 400", "patch"],
            "the property tests would not cover every answer"
        );
    }

    fn any_ring() -> impl Strategy<Value = String> {
        prop_oneof![Just("ring".to_owned()), Just("empty".to_owned()), ".{0,8}"]
    }

    proptest! {
        #[test]
        fn any_bytes_get_a_well_formed_answer(ring in any_ring(), body in prop::collection::vec(any::<u8>(), 0..256)) {
            check_answer(&webhook().0, &ring, &body)?;
        }

        #[test]
        fn any_json_gets_a_well_formed_answer(ring in any_ring(), body in any_json()) {
            check_answer(&webhook().0, &ring, &serde_json::to_vec(&body).unwrap())?;
        }

        #[test]
        fn any_review_gets_a_well_formed_answer(ring in any_ring(), review in any_review()) {
            check_answer(&webhook().0, &ring, &serde_json::to_vec(&review).unwrap())?;
        }
    }
}
