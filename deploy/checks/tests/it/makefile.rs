//! The Makefile's kind targets (docs/kind.md), run for real with stand-ins for docker, podman,
//! kind and kubectl that record what they are asked: every step acts on the kind cluster, the
//! node image is kind's own, images reach the node with Docker or Podman, and the results of a
//! Job land where the docs say.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::PathBuf,
    process::{Command, Output},
};

use serde_json::Value;

use crate::support::{Kustomization, find, kubectl, repo};

/// A tool that records its arguments, one call a line, in `$FAKE_LOG`. `save -o FILE` writes
/// FILE; `load image-archive` fails unless its archive exists; `apply -k DIR` renders DIR with
/// the real kubectl into `$FAKE_LOG.yaml`; `wait` fails when `$FAKE_WAIT_FAILS` is set.
const FAKE_TOOL: &str = r#"#!/usr/bin/env bash
set -euo pipefail
echo "$(basename "$0") $*" >> "$FAKE_LOG"
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    save) [[ "${args[i+1]}" == -o ]] && : > "${args[i+2]}" ;;
    image-archive) [[ -f "${args[${#args[@]}-1]}" ]] || { echo "no archive" >&2; exit 1; } ;;
    -k) "$REAL_KUBECTL" kustomize "${args[i+1]}" >> "$FAKE_LOG.yaml" ;;
    wait) [[ -z "${FAKE_WAIT_FAILS:-}" ]] || exit 1 ;;
  esac
done
"#;

/// The stand-ins, in a directory of their own, and the log they write.
struct Tools {
    dir: tempfile::TempDir,
}

impl Tools {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for tool in ["docker", "podman", "kind", "kubectl"] {
            let path = dir.path().join(tool);
            std::fs::write(&path, FAKE_TOOL).expect("a tool");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("executable");
        }
        Self { dir }
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// `make <args>` with the stand-ins for KIND, KUBECTL and DOCKER (or `docker`), a
    /// KUBECONFIG of two files, and KIND_CLUSTER `kx`.
    fn make(&self, args: &[&str], docker: &str, wait_fails: bool) -> Output {
        let mut command = Command::new("make");
        command
            .args(["-s", "--no-print-directory"])
            .args(args)
            .arg(format!("KIND={}", self.tool("kind").display()))
            .arg(format!("KUBECTL={}", self.tool("kubectl").display()))
            .arg(format!("DOCKER={}", self.tool(docker).display()))
            .arg("KIND_CLUSTER=kx")
            .current_dir(repo())
            .env("KUBECONFIG", "/nonexistent/a:/nonexistent/b")
            .env("FAKE_LOG", self.log())
            .env("REAL_KUBECTL", kubectl());
        if wait_fails {
            command.env("FAKE_WAIT_FAILS", "1");
        }
        command.output().expect("make runs")
    }

    /// The calls, each as its tool's name and arguments.
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// What the kubectl calls applied with `-k`, rendered.
    fn applied(&self) -> Vec<Value> {
        let yaml = std::fs::read_to_string(self.log().with_extension("yaml")).expect("an apply");
        serde_saphyr::from_multiple::<Value>(&yaml)
            .expect("YAML")
            .into_iter()
            .filter(|object| !object.is_null())
            .collect()
    }
}

#[track_caller]
fn succeeded(output: &Output) {
    assert!(
        output.status.success(),
        "make failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `make -n <targets>` with KIND_CLUSTER `kx` and a KUBECONFIG of two files: the commands.
fn dry_run(targets: &[&str]) -> String {
    let output = Command::new("make")
        .args(["-n", "--no-print-directory", "KIND_CLUSTER=kx"])
        .args(targets)
        .current_dir(repo())
        .env("KUBECONFIG", "/a:/b")
        .output()
        .expect("make runs");
    succeeded(&output);
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// A variable's value as the Makefile sets it.
fn variable(name: &str) -> String {
    let makefile = std::fs::read_to_string(repo().join("Makefile")).expect("a Makefile");
    makefile
        .lines()
        .find_map(|line| {
            let (left, value) = line.split_once('=')?;
            (left.trim_end_matches(['?', ':', ' ']) == name).then(|| value.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no {name} in the Makefile"))
}

#[test]
fn every_step_acts_on_the_kind_cluster_and_reads_kubeconfig_as_kubectl_does() {
    let targets = [
        "kind-up",
        "kind-down",
        "kind-load",
        "deploy",
        "monitoring",
        "experiment",
        "experiment-job",
        "experiment-job-results",
    ];
    let commands = dry_run(&targets);
    let words: Vec<&str> = commands.split_whitespace().collect();
    let kubectl_calls = words.iter().filter(|word| **word == "kubectl").count();
    let pinned = words
        .windows(3)
        .filter(|w| w[0] == "kubectl" && w[1] == "--context" && w[2] == "kind-kx")
        .count();
    assert!(kubectl_calls > 10, "{commands}");
    assert_eq!(
        pinned, kubectl_calls,
        "a kubectl step without --context:\n{commands}"
    );
    assert!(
        commands.contains("--target cluster --context kind-kx"),
        "make experiment does not pin the context:\n{commands}"
    );
    // A KUBECONFIG list is not one file: kind, kubectl and loadgen read it themselves.
    assert!(!commands.contains("--kubeconfig"), "{commands}");
}

#[test]
fn the_node_image_is_the_pinned_kind_releases_with_its_digest() {
    let image = variable("KIND_NODE_IMAGE");
    let (name, digest) = image.split_once("@sha256:").expect("a digest");
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{image}"
    );
    // The Kubernetes minor version of the control plane the checks here run.
    let tag = name
        .strip_prefix("kindest/node:")
        .expect("a kind node image");
    let minor = |version: &str| version.split('.').take(2).collect::<Vec<_>>().join(".");
    assert_eq!(minor(tag), minor(testenv::KUBERNETES_VERSION), "{image}");
    assert!(dry_run(&["kind-up"]).contains(&format!("--image {image}")));
    let kind_version = variable("KIND_VERSION");
    let docs = std::fs::read_to_string(repo().join("docs/kind.md")).expect("docs/kind.md");
    assert!(
        docs.contains(&format!("kind {kind_version}")) && docs.contains(&image),
        "docs/kind.md names neither kind {kind_version} nor {image}"
    );
}

#[test]
fn images_reach_the_node_as_archives_from_docker_and_from_podman() {
    for (docker, repo_prefix) in [
        ("docker", "controller-sharding"),
        ("podman", "localhost/controller-sharding"),
    ] {
        let tools = Tools::new();
        succeeded(&tools.make(&["kind-load"], docker, false));
        let calls = tools.calls();
        for image in ["sharder", "webhosting-operator", "loadgen"] {
            let tag = format!("{repo_prefix}/{image}:dev");
            assert!(
                calls
                    .iter()
                    .any(|c| c.starts_with(docker) && c.contains(" save -o ") && c.ends_with(&tag)),
                "{docker} does not save {tag}: {calls:#?}"
            );
        }
        let loads = calls
            .iter()
            .filter(|c| c.starts_with("kind load image-archive --name kx "))
            .count();
        assert_eq!(loads, 3, "{calls:#?}");
    }
}

#[test]
fn a_job_runs_the_chosen_scenario_with_the_built_images() {
    let tools = Tools::new();
    succeeded(&tools.make(&["experiment-job", "SCENARIO=basic"], "podman", false));
    let calls = tools.calls();
    assert_eq!(
        calls.first().map(String::as_str),
        Some("kubectl --context kind-kx -n loadgen delete job loadgen --ignore-not-found")
    );
    // The temporary overlay (inside deploy/, for kustomize) is gone again.
    let overlay = calls
        .iter()
        .find_map(|call| call.split(" -k ").nth(1))
        .expect("an apply -k");
    assert!(!repo().join(overlay).exists(), "{overlay} is left behind");
    let objects = tools.applied();
    let scenario = find(&objects, "ConfigMap", "loadgen-scenario");
    assert_eq!(scenario["data"]["scenario"], "basic");
    let job = find(&objects, "Job", "loadgen");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        "localhost/controller-sharding/loadgen:dev"
    );
    assert_eq!(
        container["env"][0]["valueFrom"]["configMapKeyRef"]["name"],
        scenario["metadata"]["name"]
    );
}

/// The Job's results directory: loadgen's `--results`, which must be the volume's mount.
fn job_results_dir() -> String {
    let objects = Kustomization("deploy/loadgen".to_owned()).objects();
    let job = find(&objects, "Job", "loadgen");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let dir = args
        .windows(2)
        .find(|pair| pair[0] == "--results")
        .map(|pair| pair[1])
        .expect("the Job passes --results");
    let mount = container["volumeMounts"]
        .as_array()
        .and_then(|mounts| mounts.iter().find(|m| m["name"] == "results"))
        .expect("the results volume is mounted");
    assert_eq!(mount["mountPath"], dir, "loadgen writes beside the volume");
    dir.to_owned()
}

#[test]
fn results_are_copied_to_results_cluster_and_the_helper_pod_never_stays() {
    let dir = job_results_dir();
    let kubectl = "kubectl --context kind-kx -n loadgen";
    let leftover = format!("{kubectl} delete pod loadgen-results --ignore-not-found");
    let cleanup = format!("{leftover} --wait=false");

    let tools = Tools::new();
    succeeded(&tools.make(&["experiment-job-results"], "docker", false));
    let calls = tools.calls();
    assert_eq!(calls.first(), Some(&leftover), "{calls:#?}");
    assert!(calls[1].starts_with(&format!("{kubectl} run loadgen-results ")));
    // The helper pod mounts the volume where the Job does, and each run's directory
    // <dir>/<run-id> becomes results/cluster/<run-id> (kubectl cp copies a directory's content).
    assert!(
        calls[1].contains(&format!(r#""mountPath":"{dir}""#)),
        "{}",
        calls[1]
    );
    assert!(
        calls.contains(&format!(
            "{kubectl} cp loadgen-results:{dir} results/cluster"
        )),
        "{calls:#?}"
    );
    assert_eq!(calls.last(), Some(&cleanup), "{calls:#?}");

    // A pod that never gets ready: the target fails and still deletes it.
    let tools = Tools::new();
    assert!(
        !tools
            .make(&["experiment-job-results"], "docker", true)
            .status
            .success()
    );
    let calls = tools.calls();
    assert!(!calls.iter().any(|c| c.contains(" cp ")), "{calls:#?}");
    assert_eq!(calls.last(), Some(&cleanup), "{calls:#?}");
}
