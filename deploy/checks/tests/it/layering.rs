//! The workspace's layering: `crates/` holds libraries only, and no library depends on an
//! application. Both sets come from `cargo metadata`: a library is a workspace member under
//! `crates/`, an application is any other member.
//!
//! It lives with the repository's checks, since a virtual workspace has no package of its own.

use std::{path::Path, process::Command};

use serde_json::Value;

/// Binaries that a library may keep, as (package, binary): dev tools that no image ships and no
/// application runs.
const DEV_TOOLS: &[(&str, &str)] = &[
    // `testenv up`: a local control plane for trying the binaries by hand (README).
    ("testenv", "testenv"),
];

/// The workspace members, split into the libraries under `crates/` and the applications.
struct Workspace {
    libraries: Vec<Value>,
    applications: Vec<String>,
}

fn workspace() -> Workspace {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let crates = Path::new(
        metadata["workspace_root"]
            .as_str()
            .expect("a workspace root"),
    )
    .join("crates");
    let (libraries, applications): (Vec<Value>, Vec<Value>) = metadata["packages"]
        .as_array()
        .expect("a package list")
        .iter()
        .cloned()
        .partition(|package| {
            Path::new(package["manifest_path"].as_str().expect("a manifest path"))
                .starts_with(&crates)
        });
    assert!(
        libraries
            .iter()
            .any(|package| package["name"] == "kube-sharding"),
        "no library found under {}",
        crates.display()
    );
    Workspace {
        libraries,
        applications: applications
            .iter()
            .map(|package| name(package).to_owned())
            .collect(),
    }
}

fn name(value: &Value) -> &str {
    value["name"].as_str().expect("a name")
}

#[test]
fn every_package_under_crates_is_a_library() {
    let mut violations = Vec::new();
    for package in workspace().libraries {
        let targets = package["targets"].as_array().expect("a target list");
        let kinds = |target: &Value| {
            target["kind"]
                .as_array()
                .expect("a kind list")
                .iter()
                .map(|kind| kind.as_str().expect("a kind").to_owned())
                .collect::<Vec<_>>()
        };
        if !targets
            .iter()
            .any(|target| kinds(target).iter().any(|kind| kind == "lib"))
        {
            violations.push(format!("{} has no lib target", name(&package)));
        }
        for target in targets {
            if kinds(target).iter().any(|kind| kind == "bin")
                && !DEV_TOOLS.contains(&(name(&package), name(target)))
            {
                violations.push(format!(
                    "{} has the binary {} ({})",
                    name(&package),
                    name(target),
                    target["src_path"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "crates/ holds libraries only:\n{}",
        violations.join("\n")
    );
}

#[test]
fn no_library_depends_on_an_application() {
    let workspace = workspace();
    let mut violations = Vec::new();
    for package in &workspace.libraries {
        for dependency in package["dependencies"]
            .as_array()
            .expect("a dependency list")
        {
            // Normal (null) and build dependencies ship with the library; dev ones do not.
            let shipped = dependency["kind"].is_null() || dependency["kind"] == "build";
            if shipped
                && workspace
                    .applications
                    .iter()
                    .any(|app| app == name(dependency))
            {
                violations.push(format!(
                    "{} depends on the application {}",
                    name(package),
                    name(dependency)
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "libraries never depend on applications:\n{}",
        violations.join("\n")
    );
}
