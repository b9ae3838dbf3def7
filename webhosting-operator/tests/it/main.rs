//! Integration tests of the webhosting-operator on a real control plane with
//! kube-controller-manager, the sharder and the operator running as real processes.
//!
//! There is no kubelet, so the Websites carry `skip-workload`: their Deployments run no pods
//! and become Available at once, as on a cluster under load tests.

mod paused;
mod sharded;
mod singleton;

use std::{collections::BTreeMap, path::PathBuf, sync::OnceLock, time::Duration};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Service},
    networking::v1::Ingress,
};
use kube::{
    Api, Client, ResourceExt as _,
    api::{ListParams, Patch, PatchParams},
};
use stack::{Binaries, OperatorProcess, OperatorSettings, SharderProcess, SharderSettings};
use testenv::ControlPlane;
use webhosting_operator::{
    api::{LABEL_SKIP_WORKLOAD, Theme, Website, WebsitePhase},
    children,
};

/// How long a test waits for the operators to act before it fails.
const PATIENCE: Duration = Duration::from_secs(120);

/// The project namespace of the samples.
const PROJECT: &str = "project-foo";

/// The sharder and operator binaries, built once per test binary.
fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| Binaries::build_for_tests().unwrap())
}

/// A control plane with kube-controller-manager, the CRDs, the ring, a project namespace and
/// the sharder.
async fn stack() -> (ControlPlane, Client, SharderProcess) {
    let control_plane = stack::environment().start().await.unwrap();
    let client = control_plane.client().await.unwrap();
    stack::install_sharding(&client).await.unwrap();
    stack::install_webhosting(&client).await.unwrap();
    stack::create_project_namespace(&client, PROJECT)
        .await
        .unwrap();
    let sharder = SharderProcess::start(
        &control_plane,
        &binaries().sharder,
        &SharderSettings {
            sync_period: Duration::from_secs(30),
            ..SharderSettings::default()
        },
    )
    .unwrap();
    stack::wait_ring_ready(&client, "webhosting-operator", PATIENCE)
        .await
        .unwrap();
    (control_plane, client, sharder)
}

/// Shards `shards` once they are available, as processes on the [`stack`].
async fn shards(
    control_plane: &ControlPlane,
    client: &Client,
    shards: &[&str],
) -> Vec<OperatorProcess> {
    let mut operators: Vec<_> = shards
        .iter()
        .map(|shard| operator(control_plane, shard, false))
        .collect();
    available_shards(client, &mut operators).await;
    operators
}

fn operator(control_plane: &ControlPlane, identity: &str, singleton: bool) -> OperatorProcess {
    OperatorProcess::start(
        control_plane,
        &binaries().operator,
        &OperatorSettings {
            identity: identity.to_owned(),
            singleton,
            workers: 5,
            simulated_work: Duration::ZERO,
            lease_duration: Duration::from_secs(5),
            audit_file: Some(audit_file(control_plane, identity)),
        },
    )
    .unwrap()
}

fn audit_file(control_plane: &ControlPlane, identity: &str) -> PathBuf {
    control_plane
        .directory()
        .join(format!("audit-{identity}.jsonl"))
}

/// The sample Themes and Websites of `config/samples`, plus `extra` generated Websites, all
/// labelled `skip-workload`.
async fn create_samples(client: &Client, extra: usize) {
    let themes: Vec<Theme> = documents(include_str!("../../config/samples/themes.yaml"));
    for theme in &themes {
        apply(&Api::<Theme>::all(client.clone()), theme).await;
    }
    let mut websites: Vec<Website> = documents(include_str!("../../config/samples/websites.yaml"));
    let names: Vec<String> = themes.iter().map(kube::ResourceExt::name_any).collect();
    websites.extend(webhosting_operator::samples::random_websites(
        &mut rand::rng(),
        extra,
        PROJECT,
        "website",
        &names,
        true,
    ));
    let api = Api::<Website>::namespaced(client.clone(), PROJECT);
    for mut website in websites {
        website
            .labels_mut()
            .insert(LABEL_SKIP_WORKLOAD.to_owned(), "true".to_owned());
        apply(&api, &website).await;
    }
}

fn documents<T: serde::de::DeserializeOwned>(yaml: &str) -> Vec<T> {
    serde_saphyr::from_multiple(yaml).unwrap()
}

async fn apply<K>(api: &Api<K>, object: &K)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    api.patch(
        &object.name_any(),
        &PatchParams::apply("webhosting-it").force(),
        &Patch::Apply(object),
    )
    .await
    .unwrap();
}

/// All Websites of the project, once every one is Ready for its current generation.
async fn all_ready(client: &Client, expected: usize) -> Vec<Website> {
    let api = Api::<Website>::namespaced(client.clone(), PROJECT);
    testenv::eventually("every Website to be Ready", PATIENCE, || async {
        let websites = api.list(&ListParams::default()).await.ok()?.items;
        (websites.len() == expected && websites.iter().all(is_ready)).then_some(websites)
    })
    .await
}

fn is_ready(website: &Website) -> bool {
    website.status.as_ref().is_some_and(|status| {
        status.phase == Some(WebsitePhase::Ready)
            && status.observed_generation >= website.metadata.generation
    })
}

/// The shard label of the webhosting-operator ring.
fn shard_of(labels: &BTreeMap<String, String>) -> Option<&str> {
    labels
        .get(&kube_sharding::api::labels::shard("webhosting-operator"))
        .map(String::as_str)
}

/// The ConfigMap of `website`.
async fn config_map_of(client: &Client, website: &Website) -> Option<ConfigMap> {
    Api::<ConfigMap>::namespaced(client.clone(), PROJECT)
        .get_opt(&children::child_name(website))
        .await
        .unwrap()
}

/// The reconciliation audit of the given operators: the lines written so far. A line still
/// being written as the file is read has no newline yet and is left for the next read.
fn audit(
    control_plane: &ControlPlane,
    identities: &[&str],
) -> Vec<webhosting_operator::audit::Record> {
    identities
        .iter()
        .flat_map(|identity| {
            std::fs::read_to_string(audit_file(control_plane, identity))
                .unwrap_or_default()
                .split_inclusive('\n')
                .filter_map(|line| line.strip_suffix('\n'))
                .map(|line| {
                    serde_json::from_str(line)
                        .unwrap_or_else(|error| panic!("audit line {line:?}: {error}"))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The metadata of the four children named `name`: ConfigMap, Service, Ingress, Deployment.
async fn children_meta(client: &Client, name: &str) -> Vec<kube::api::ObjectMeta> {
    async fn meta<K>(client: &Client, name: &str) -> kube::api::ObjectMeta
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        Api::<K>::namespaced(client.clone(), PROJECT)
            .get(name)
            .await
            .unwrap_or_else(|error| panic!("{} {name}: {error}", K::kind(&())))
            .meta()
            .clone()
    }
    vec![
        meta::<ConfigMap>(client, name).await,
        meta::<Service>(client, name).await,
        meta::<Ingress>(client, name).await,
        meta::<Deployment>(client, name).await,
    ]
}

/// Waits until the ring counts each of `shards` available, so that Websites created next are
/// spread over all of them and stay where they are; fails at once, with its log, when one of
/// them exits.
async fn available_shards(client: &Client, shards: &mut [OperatorProcess]) {
    let rings = Api::<kube_sharding::api::ControllerRing>::all(client.clone());
    let count = i32::try_from(shards.len()).unwrap();
    testenv::eventually("the shards to be available", PATIENCE, || {
        for shard in shards.iter_mut() {
            if let Err(error) = shard.check_alive() {
                panic!("a shard exited before the ring counted it: {error:#}");
            }
        }
        let rings = rings.clone();
        async move {
            let status = rings.get("webhosting-operator").await.ok()?.status?;
            (status.available_shards == count).then_some(())
        }
    })
    .await;
}

/// `namespace/name` of `website`, as the audit names it.
fn key(website: &Website) -> String {
    format!("{}/{}", website.namespace().unwrap(), website.name_any())
}

/// Waits until every Website in `websites` (of `expected`) is Ready on a shard other than
/// `from` and, by the audit of `shards`, was reconciled by another shard after `since`
/// (nanoseconds since the epoch).
async fn reconciled_elsewhere(
    (control_plane, client): (&ControlPlane, &Client),
    websites: &std::collections::BTreeSet<String>,
    from: &str,
    since: i128,
    (shards, expected): (&[&str], usize),
) {
    testenv::eventually("the Websites reconciled elsewhere", PATIENCE, || async {
        let moved = all_ready(client, expected)
            .await
            .iter()
            .filter(|w| websites.contains(&key(w)))
            .all(|w| shard_of(w.labels()).is_some_and(|s| s != from));
        let records = audit(control_plane, shards);
        let reconciled = websites.iter().all(|website| {
            records
                .iter()
                .any(|r| &r.website == website && r.shard != from && r.time > since)
        });
        (moved && reconciled).then_some(())
    })
    .await;
}
