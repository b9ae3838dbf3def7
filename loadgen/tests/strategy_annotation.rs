//! The strategy axis puts the controller's ControllerRing under each strategy on a real API
//! server (docs/experiments.md#assignment-strategies).

use kube::{
    Api,
    api::{Patch, PatchParams},
};
use kube_sharding::{
    api::ControllerRing,
    strategy::{ANNOTATION, Strategy},
};
use loadgen::environment::annotate_strategy;

#[tokio::test]
async fn the_ring_is_annotated_with_the_strategy_and_hash_ring_removes_the_annotation() {
    let control_plane = testenv::Environment::new().start().await.unwrap();
    let client = control_plane.client().await.unwrap();
    stack::install_sharding(&client).await.unwrap();
    stack::install_webhosting(&client).await.unwrap();
    let rings = Api::<ControllerRing>::all(client.clone());
    let ring = "webhosting-operator";
    let annotation = || async {
        let ring = rings.get(ring).await.unwrap();
        (
            ring.metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(ANNOTATION))
                .cloned(),
            Strategy::of(&ring).unwrap(),
        )
    };
    let spec = rings.get(ring).await.unwrap().spec;

    annotate_strategy(&client, ring, Strategy::BoundedLoad)
        .await
        .unwrap();
    assert_eq!(
        annotation().await,
        (Some("bounded-load".to_owned()), Strategy::BoundedLoad)
    );
    annotate_strategy(&client, ring, Strategy::HashRing)
        .await
        .unwrap();
    assert_eq!(annotation().await, (None, Strategy::HashRing));
    // A ring already under the strategy is not written: its resourceVersion stays.
    let version = rings.get(ring).await.unwrap().metadata.resource_version;
    annotate_strategy(&client, ring, Strategy::HashRing)
        .await
        .unwrap();
    let unchanged = rings.get(ring).await.unwrap();
    assert_eq!(unchanged.metadata.resource_version, version);
    assert_eq!(unchanged.spec, spec);
    // An explicit hash-ring annotation is removed, so the ring looks as without the axis.
    let explicit =
        serde_json::json!({ "metadata": { "annotations": { ANNOTATION: "hash-ring" } } });
    rings
        .patch(ring, &PatchParams::default(), &Patch::Merge(&explicit))
        .await
        .unwrap();
    annotate_strategy(&client, ring, Strategy::HashRing)
        .await
        .unwrap();
    assert_eq!(annotation().await, (None, Strategy::HashRing));

    let error = annotate_strategy(&client, "missing", Strategy::BoundedLoad)
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").starts_with("cannot put ControllerRing missing under bounded-load"),
        "{error:#}"
    );
}
