use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
    runtime::wait::{await_condition, conditions},
};
use kube_sharding::api::{ControllerRing, ControllerRingSpec, RingResource, controller_ring};

use crate::{PATIENCE, client};

async fn install_crd(client: &kube::Client) {
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(&controller_ring::crd_yaml()).unwrap();
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.patch(
        "controllerrings.sharding.timebertt.dev",
        &PatchParams::apply("sharding-it").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply CRD");
    tokio::time::timeout(
        PATIENCE,
        await_condition(
            crds,
            "controllerrings.sharding.timebertt.dev",
            conditions::is_crd_established(),
        ),
    )
    .await
    .expect("CRD established in time")
    .unwrap();
}

fn ring(name: &str) -> ControllerRing {
    ControllerRing::new(
        name,
        ControllerRingSpec {
            resources: vec![RingResource {
                group: "webhosting.timebertt.dev".into(),
                resource: "websites".into(),
                controlled_resources: vec![kube_sharding::api::GroupResource::new(
                    "apps",
                    "deployments",
                )],
            }],
            namespace_selector: None,
        },
    )
}

#[tokio::test]
async fn the_crd_accepts_valid_rings_and_rejects_names_longer_than_63_characters() {
    let client = client().await;
    install_crd(&client).await;
    let rings = Api::<ControllerRing>::all(client);

    let created = rings
        .create(&PostParams::default(), &ring("webhosting-operator"))
        .await
        .unwrap();
    assert_eq!(created.spec, ring("webhosting-operator").spec);
    let longest = "a".repeat(63);
    rings
        .create(&PostParams::default(), &ring(&longest))
        .await
        .expect("63 characters are fine");

    let error = rings
        .create(&PostParams::default(), &ring(&"a".repeat(64)))
        .await
        .expect_err("64 characters are too long");
    let kube::Error::Api(status) = error else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(status.code, 422);
    assert!(
        status
            .message
            .contains("ControllerRing name must not be longer than 63 characters"),
        "{}",
        status.message
    );
}
