//! The strategy axis puts the controller's ControllerRing under each strategy on a real API
//! server (docs/experiments.md#assignment-strategies).

use kube::Api;
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
    // A ring without the annotation stays without it, and the spec is untouched.
    annotate_strategy(&client, ring, Strategy::HashRing)
        .await
        .unwrap();
    assert_eq!(annotation().await, (None, Strategy::HashRing));
    assert_eq!(rings.get(ring).await.unwrap().spec, spec);

    let error = annotate_strategy(&client, "missing", Strategy::BoundedLoad)
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").starts_with("cannot put ControllerRing missing under bounded-load"),
        "{error:#}"
    );
}
