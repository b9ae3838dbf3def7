//! The `Dockerfile` and `.dockerignore`, checked without a container engine: what they build
//! and copy exists in the workspace, the build context (computed by BuildKit's own code, see
//! `hack/image-context`) holds every source, the runtime images run as non-root, and the
//! images are the ones the Makefile builds and the manifests run. `make image-context` runs the
//! Dockerfile's build in a copy of that context.

use std::{collections::BTreeSet, path::Path, process::Command};

use crate::support::{Kustomization, repo, tracked_files};

/// One instruction: the keyword (upper case) and its arguments, continuation lines joined.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(start) = line.strip_suffix('\\') {
            current.push_str(start);
            current.push(' ');
        } else {
            current.push_str(line);
            joined.push(std::mem::take(&mut current));
        }
    }
    joined
        .into_iter()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (keyword, rest) = line.split_once(' ').unwrap_or((&line, ""));
            (keyword.to_uppercase(), rest.trim().to_owned())
        })
        .collect()
}

/// A build stage: its name and instructions.
struct Stage {
    name: String,
    base: String,
    instructions: Vec<(String, String)>,
}

fn stages() -> (Vec<(String, String)>, Vec<Stage>) {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("a Dockerfile");
    let mut args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for (keyword, rest) in instructions(&text) {
        if keyword == "FROM" {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let name = match words.as_slice() {
                [_, as_, name] if as_.eq_ignore_ascii_case("as") => (*name).to_owned(),
                _ => panic!("every stage is named: FROM {rest}"),
            };
            stages.push(Stage {
                name,
                base: words[0].to_owned(),
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push((keyword, rest));
        } else if keyword == "ARG" {
            let (name, value) = rest.split_once('=').expect("global ARGs have defaults");
            args.push((name.to_owned(), value.to_owned()));
        }
    }
    (args, stages)
}

/// The workspace members (root Cargo.toml).
fn members() -> Vec<String> {
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).expect("Cargo.toml");
    let line = manifest
        .lines()
        .find(|line| line.starts_with("members"))
        .expect("members");
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_dockerfile_builds_workspace_binaries_into_pinned_non_root_images() {
    let (_, stages) = stages();
    let members = members();
    let builder = stages
        .iter()
        .find(|stage| stage.name == "builder")
        .expect("a builder stage");
    let build = builder
        .instructions
        .iter()
        .find(|(keyword, rest)| keyword == "RUN" && rest.contains("cargo build"))
        .map(|(_, rest)| rest)
        .expect("the builder runs cargo build");
    assert!(
        build.contains("--locked") && build.contains("--release"),
        "{build}"
    );
    // The `-p` flags of `cargo build` only (`mkdir -p` follows).
    let cargo = build
        .split("cargo build")
        .nth(1)
        .and_then(|rest| rest.split("&&").next())
        .unwrap_or_default();
    let words: Vec<&str> = cargo.split_whitespace().collect();
    let packages: BTreeSet<&str> = words
        .windows(2)
        .filter(|pair| pair[0] == "-p")
        .map(|pair| pair[1])
        .collect();
    for package in &packages {
        assert!(
            members.iter().any(|member| member == package),
            "-p {package} is not a workspace member: {members:?}"
        );
        assert!(
            repo().join(package).join("src/main.rs").is_file(),
            "{package} has no binary of its name"
        );
        assert!(
            build.contains(&format!("target/release/{package}")),
            "the builder does not copy {package} out of the target cache: {build}"
        );
    }

    let runtime: Vec<&Stage> = stages.iter().filter(|s| s.name != "builder").collect();
    let targets: BTreeSet<&str> = runtime.iter().map(|stage| stage.name.as_str()).collect();
    assert_eq!(targets, packages, "one runtime image per built binary");
    for stage in &runtime {
        let has = |keyword: &str, value: &str| {
            stage
                .instructions
                .iter()
                .any(|(k, rest)| k == keyword && rest == value)
        };
        assert!(
            has(
                "COPY",
                &format!("--from=builder /out/{0} /usr/local/bin/{0}", stage.name)
            ),
            "{} does not copy its binary",
            stage.name
        );
        assert!(
            has("USER", "65532:65532"),
            "{} does not run as non-root",
            stage.name
        );
        assert!(
            has(
                "ENTRYPOINT",
                &format!("[\"/usr/local/bin/{}\"]", stage.name)
            ),
            "{} does not run its binary",
            stage.name
        );
        for (keyword, rest) in &stage.instructions {
            if keyword == "COPY" && !rest.starts_with("--from=") {
                let source = rest.split_whitespace().next().unwrap_or_default();
                assert!(
                    repo().join(source).exists(),
                    "{}: COPY {source} does not exist",
                    stage.name
                );
            }
        }
    }
}

#[test]
fn the_base_images_are_build_arguments_and_rust_is_recent_enough() {
    let (args, stages) = stages();
    // Base images come from build arguments with pinned defaults.
    let arg = |name: &str| {
        args.iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| panic!("no ARG {name}"), |(_, v)| v.as_str())
    };
    let builder = stages
        .iter()
        .find(|s| s.name == "builder")
        .expect("a builder");
    assert_eq!(builder.base, "${RUST_IMAGE}");
    assert!(
        stages
            .iter()
            .filter(|s| s.name != "builder")
            .all(|s| s.base == "${RUNTIME_IMAGE}")
    );
    assert!(arg("RUNTIME_IMAGE").ends_with(":nonroot"));
    // The builder's Rust is at least the workspace's rust-version.
    let rust = arg("RUST_IMAGE");
    let version = rust
        .rsplit_once(':')
        .and_then(|(_, tag)| tag.split('-').next())
        .expect("a versioned rust image");
    let manifest = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let required = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"'))
        .expect("rust-version");
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        parse(version) >= parse(required),
        "{rust} is older than rust-version {required}"
    );
}

#[test]
fn the_makefile_and_the_manifests_use_the_dockerfiles_images() {
    let (_, stages) = stages();
    let targets: BTreeSet<String> = stages
        .into_iter()
        .map(|s| s.name)
        .filter(|name| name != "builder")
        .collect();
    let makefile = std::fs::read_to_string(repo().join("Makefile")).unwrap();
    let images: BTreeSet<String> = makefile
        .lines()
        .find_map(|line| line.strip_prefix("IMAGES := "))
        .expect("IMAGES in the Makefile")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(images, targets);
    // Every image of ours in the manifests is controller-sharding/<target>:dev, the name the
    // Makefile's overlay replaces.
    for dir in ["deploy/default", "deploy/loadgen"] {
        let rendered = Kustomization(dir.to_owned()).render();
        for image in rendered
            .lines()
            .filter_map(|line| line.trim().strip_prefix("image: "))
        {
            let name = image
                .strip_prefix("controller-sharding/")
                .and_then(|rest| rest.strip_suffix(":dev"))
                .unwrap_or_else(|| panic!("{dir}: unexpected image {image}"));
            assert!(targets.contains(name), "{dir}: no Dockerfile target {name}");
        }
    }
}

/// The files `docker build` sends from `dir`: its `.dockerignore` applied by BuildKit's own
/// walker and pattern matcher (`hack/image-context`, built from their Go modules).
fn context_files(dir: &Path) -> BTreeSet<String> {
    let output = Command::new("go")
        .args(["run", "."])
        .arg(dir)
        .current_dir(repo().join("hack/image-context"))
        .output()
        .expect("cannot run go (the build context is computed by hack/image-context)");
    assert!(
        output.status.success(),
        "hack/image-context failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The files of `paths`, created empty in a new directory with the repository's
/// `.dockerignore`, that `docker build` would send.
fn sent(paths: &[String]) -> BTreeSet<String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::copy(
        repo().join(".dockerignore"),
        dir.path().join(".dockerignore"),
    )
    .expect(".dockerignore");
    for path in paths {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().expect("a parent")).expect("a directory");
        std::fs::write(file, "").expect("a file");
    }
    context_files(dir.path())
}

#[test]
fn the_build_context_holds_the_workspace_and_leaves_out_targets() {
    let mut needed = vec![
        "Cargo.toml".to_owned(),
        "Cargo.lock".to_owned(),
        "experiments/smoke.yaml".to_owned(),
        "webhosting-operator/config/controllerring.yaml".to_owned(),
    ];
    needed.extend(members().into_iter().map(|m| format!("{m}/Cargo.toml")));
    needed.extend(members().into_iter().map(|m| format!("{m}/src/lib.rs")));
    let unwanted = [
        "target/release/sharder",
        "loadgen/target/x",
        "results/x.csv",
        ".git/HEAD",
        "docs/kind.md",
        "deploy/default/kustomization.yaml",
        "deploy/checks/tests/it/main.rs",
    ]
    .map(str::to_owned);
    let sent = sent(&[needed.as_slice(), unwanted.as_slice()].concat());
    for path in &needed {
        assert!(sent.contains(path), ".dockerignore leaves out {path}");
    }
    for path in &unwanted {
        assert!(!sent.contains(path), ".dockerignore sends {path}");
    }
}

#[test]
fn the_build_context_holds_every_source_file_of_the_workspace() {
    let tracked = tracked_files();
    let sent = context_files(&repo());
    // What Cargo reads of a member to build the workspace: its manifest and its sources.
    let members = members();
    let missing: Vec<&str> = tracked
        .iter()
        .map(String::as_str)
        .filter(|path| {
            members.iter().any(|member| {
                path.strip_prefix(member.as_str())
                    .is_some_and(|rest| rest == "/Cargo.toml" || rest.starts_with("/src/"))
            })
        })
        .filter(|path| !sent.contains(*path))
        .collect();
    assert!(missing.is_empty(), ".dockerignore leaves out {missing:?}");
}
