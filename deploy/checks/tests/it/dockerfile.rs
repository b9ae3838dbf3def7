//! The `Dockerfile` and `.dockerignore`, checked without a container engine: what they build
//! and copy exists in the workspace, the runtime images run as non-root, and the images are the
//! ones the Makefile builds and the manifests run.

use std::collections::BTreeSet;

use crate::support::{Kustomization, repo};

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

/// Whether `.dockerignore` (an allow-list: `*`, then `!path/` entries) sends `path`.
fn sent(rules: &[&str], path: &str) -> bool {
    let mut included = true;
    for rule in rules {
        let (negated, pattern) = match rule.strip_prefix('!') {
            Some(pattern) => (true, pattern),
            None => (false, *rule),
        };
        let pattern = pattern.trim_end_matches('/');
        let matches = match pattern {
            "*" => true,
            _ if pattern.starts_with("**/") => path
                .split('/')
                .any(|part| part == pattern.trim_start_matches("**/")),
            _ => path == pattern || path.starts_with(&format!("{pattern}/")),
        };
        if matches {
            included = negated;
        }
    }
    included
}

#[test]
fn the_build_context_holds_the_workspace_and_leaves_out_targets() {
    let text = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    let rules: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let mut needed = vec![
        "Cargo.toml".to_owned(),
        "Cargo.lock".to_owned(),
        "experiments/smoke.yaml".to_owned(),
        "webhosting-operator/config/controllerring.yaml".to_owned(),
    ];
    needed.extend(members().into_iter().map(|m| format!("{m}/Cargo.toml")));
    needed.extend(members().into_iter().map(|m| format!("{m}/src/lib.rs")));
    for path in &needed {
        assert!(sent(&rules, path), ".dockerignore leaves out {path}");
    }
    for path in [
        "target/release/sharder",
        "loadgen/target/x",
        "results/x.csv",
        ".git/HEAD",
    ] {
        assert!(!sent(&rules, path), ".dockerignore sends {path}");
    }
}
