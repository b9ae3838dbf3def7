//! A controller author follows docs/implement-sharding.md: the guide's dependency block and the
//! example controller (whose excerpts are the guide's Rust blocks) become a crate of their own,
//! outside this workspace, that reaches the libraries only as a user's crate would (by name,
//! with k8s-openapi's `latest` version feature, which the libraries must leave to it). Two
//! copies of it run as shards under the sharder: objects are assigned, drained to a joining
//! shard, and moved at once when a shard stops on SIGTERM.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::api::{coordination::v1::Lease, core::v1::ConfigMap};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use kube_sharding::api::labels;
use serde_json::json;

use crate::{
    CONTROL_PLANE, client, config_map_ring, eventually, expected_shard, new_namespace, spawn_logged,
};

/// The ring the example declares (`RING` in the example).
const RING: &str = "configmap-controller";
const OBJECTS: usize = 12;
/// How soon a stopped shard's objects must carry another shard's label: a released Lease moves
/// them at once, an expired one only after its 15 s lease duration.
const MOVE_BOUND: Duration = Duration::from_secs(2);

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The fenced blocks of `language` in `markdown`.
fn code_blocks(markdown: &str, language: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(info)) if info.trim() == language => current = Some(String::new()),
            (None, _) => {}
            (Some(block), None) => {
                block.push_str(line);
                block.push('\n');
            }
            (Some(_), Some(_)) => blocks.extend(current.take()),
        }
    }
    blocks
}

/// The non-blank lines of `text`, without their indentation.
fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect()
}

fn guide() -> String {
    std::fs::read_to_string(repository().join("docs/implement-sharding.md")).unwrap()
}

fn example() -> String {
    std::fs::read_to_string(repository().join("crates/sharding/examples/sharded_controller.rs"))
        .unwrap()
}

#[test]
fn every_rust_block_of_the_guide_is_an_excerpt_of_the_example() {
    let example = example();
    let example = lines(&example);
    let blocks = code_blocks(&guide(), "rust");
    assert!(blocks.len() >= 8, "the guide's Rust blocks: {blocks:?}");
    let drifted: Vec<String> = blocks
        .iter()
        .map(|block| lines(block))
        .filter(|block| !example.windows(block.len()).any(|window| window == block))
        .map(|block| block.join("\n"))
        .collect();
    assert!(
        drifted.is_empty(),
        "docs/implement-sharding.md shows blocks that \
         crates/sharding/examples/sharded_controller.rs does not contain, line by line:\n\n{}",
        drifted.join("\n\n")
    );
}

/// Builds the example as the binary of a crate of its own, from the guide's dependency block,
/// with the two libraries patched in from this repository by name, and returns its path.
fn build_newcomer_crate() -> PathBuf {
    let repository = repository().canonicalize().unwrap();
    let dependencies = code_blocks(&guide(), "toml");
    assert_eq!(dependencies.len(), 1, "the guide's dependency block");
    // Its own target directory, as the outer `cargo test` holds this workspace's, and a fixed
    // place for the crate, so that a second run finds it built.
    let target = repository.join("target/newcomer");
    let dir = target.join("crate");
    let manifest = format!(
        "[package]\nname = \"newcomer\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
         [workspace]\n\n{}\n\
         [patch.crates-io]\n\
         kube-sharding = {{ path = \"{}\" }}\n\
         controller-runtime-metrics = {{ path = \"{}\" }}\n",
        dependencies[0],
        repository.join("crates/sharding").display(),
        repository
            .join("crates/controller-runtime-metrics")
            .display(),
    );
    write_if_changed(&dir.join("Cargo.toml"), &manifest);
    write_if_changed(&dir.join("src/main.rs"), &example());
    // The workspace's resolved versions, so that the build needs no newer crate than it has.
    std::fs::copy(repository.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = Instant::now();
    // Niced, so that the tests running meanwhile keep their timing.
    let mut build = std::process::Command::new("nice");
    build
        .args(["-n", "19", &cargo, "build", "--quiet"])
        .current_dir(&dir)
        .env_remove("RUSTFLAGS")
        .env_remove("RUST_BACKTRACE");
    // What the outer cargo set for this test (CARGO_MANIFEST_DIR, CARGO_PKG_NAME, …): build
    // scripts that rerun when these change would otherwise rebuild whenever the test is run
    // differently.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CARGO_") && name != "CARGO_HOME" {
            build.env_remove(name);
        }
    }
    let output = build.env("CARGO_TARGET_DIR", &target).output().unwrap();
    assert!(
        output.status.success(),
        "the guide's crate does not build:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("built the guide's crate in {:?}", started.elapsed());
    target.join("debug/newcomer")
}

/// Writes `text` to `path` unless it holds it already, so that cargo sees no change.
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// One copy of the example, killed when dropped; its output goes to `log`.
struct Shard {
    child: tokio::process::Child,
    log: PathBuf,
    metrics: u16,
}

impl Shard {
    fn start(binary: &Path, name: &str, namespace: &str, dir: &Path) -> Self {
        let metrics = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("{name}.log"));
        let child = spawn_logged(
            tokio::process::Command::new(binary)
                .env("SHARD_NAME", name)
                .env("NAMESPACE", namespace)
                .env("METRICS_ADDRESS", format!("127.0.0.1:{metrics}"))
                .env("KUBECONFIG", CONTROL_PLANE.get().kubeconfig_path())
                .env("NO_COLOR", "1"),
            &log,
        );
        Self {
            child,
            log,
            metrics,
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A ConfigMap's name, its shard label, and the shard its annotation says reconciled it; the
/// label is `None` while a drain label marks it as moving.
async fn assignments(api: &Api<ConfigMap>) -> Vec<(String, Option<String>, Option<String>)> {
    let list = api.list(&ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .map(|config_map| {
            let meta = config_map.metadata;
            let object_labels = meta.labels.unwrap_or_default();
            let shard = (!object_labels.contains_key(&labels::drain(RING)))
                .then(|| object_labels.get(&labels::shard(RING)).cloned())
                .flatten();
            let by = meta
                .annotations
                .and_then(|mut a| a.remove("example.com/reconciled-by"));
            (meta.name.unwrap(), shard, by)
        })
        .collect()
}

/// Waits until every ConfigMap is labelled with the shard `shards` assign it to, and was
/// reconciled by that shard.
async fn placed(api: &Api<ConfigMap>, namespace: &str, shards: &[&str], what: &str) {
    eventually(what, || async {
        let assignments = assignments(api).await;
        let placed = assignments.iter().all(|(name, shard, by)| {
            let expected = expected_shard(shards, namespace, name);
            shard.as_ref() == Some(&expected) && by.as_ref() == Some(&expected)
        });
        (assignments.len() == OBJECTS && placed).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_guides_controller_built_as_a_users_crate_runs_as_two_shards() {
    let binary = tokio::task::spawn_blocking(build_newcomer_crate)
        .await
        .unwrap();
    let client = client().await;
    let namespace = new_namespace(&client).await;
    config_map_ring(&client, RING, &namespace).await;
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &namespace);
    let leases = Api::<Lease>::namespaced(client.clone(), &namespace);
    let logs = tempfile::tempdir().unwrap();

    let a = Shard::start(&binary, "shard-a", &namespace, logs.path());
    eventually("shard-a to hold its Lease", || async {
        let spec = leases.get_opt("shard-a").await.ok()??.spec?;
        (spec.holder_identity.as_deref() == Some("shard-a")).then_some(())
    })
    .await;
    for i in 0..OBJECTS {
        let object =
            serde_json::from_value(json!({ "metadata": { "name": format!("cm-{i}") } })).unwrap();
        config_maps
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
    }
    placed(
        &config_maps,
        &namespace,
        &["shard-a"],
        "shard-a to reconcile every object",
    )
    .await;

    // A joining shard takes its share through drains: shard-a lets go of each first.
    let mut b = Shard::start(&binary, "shard-b", &namespace, logs.path());
    let both = ["shard-a", "shard-b"];
    placed(
        &config_maps,
        &namespace,
        &both,
        "the objects to spread over both shards",
    )
    .await;
    let moved = assignments(&config_maps)
        .await
        .into_iter()
        .filter(|(_, shard, _)| shard.as_deref() == Some("shard-b"))
        .count();
    assert!(
        moved > 0,
        "the ring moves none to shard-b: pick other names"
    );

    let metrics = crate::metrics::page(a.metrics).await;
    assert!(
        metrics.contains("controller_runtime_reconcile_total{controller=\"configmap\""),
        "shard-a's /metrics: {metrics}\n{}",
        a.output()
    );

    let signalled = Instant::now();
    let pid = b.child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let mut back = None;
    while signalled.elapsed() < Duration::from_secs(30) {
        let on_a = assignments(&config_maps)
            .await
            .iter()
            .all(|(_, shard, _)| shard.as_deref() == Some("shard-a"));
        if on_a {
            back = Some(signalled.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exit = b.child.wait().await.unwrap();
    assert!(exit.success(), "shard-b on SIGTERM: {exit}\n{}", b.output());
    let spec = leases.get("shard-b").await.unwrap().spec.unwrap();
    assert_eq!(
        spec.holder_identity, None,
        "shard-b's Lease is released: {spec:?}"
    );
    let back = back.unwrap_or_else(|| panic!("shard-b's objects never moved\n{}", b.output()));
    eprintln!("shard-b's objects carried shard-a's label {back:?} after SIGTERM");
    assert!(
        back <= MOVE_BOUND,
        "shard-b's objects moved {back:?} after SIGTERM, more than {MOVE_BOUND:?}"
    );
    placed(
        &config_maps,
        &namespace,
        &["shard-a"],
        "shard-a to reconcile the moved objects",
    )
    .await;
    drop(a);
}
