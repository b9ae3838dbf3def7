//! Where the stack's executables are.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

/// The command that builds every executable the stack and loadgen need.
const BUILD_COMMAND: &str = "cargo build --release -p sharder -p webhosting-operator -p loadgen";

/// The packages whose binaries the stack starts.
const PACKAGES: [&str; 2] = ["sharder", "webhosting-operator"];

/// The `sharder` and `webhosting-operator` executables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    /// The sharder.
    pub sharder: PathBuf,
    /// The webhosting-operator.
    pub operator: PathBuf,
}

impl Binaries {
    /// Both executables in `dir`; fails naming the first one that is missing.
    pub fn in_dir(dir: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            sharder: existing(dir, PACKAGES[0])?,
            operator: existing(dir, PACKAGES[1])?,
        })
    }

    /// Both executables in the directory of the running one (`target/release` for loadgen).
    pub fn next_to_current_exe() -> anyhow::Result<Self> {
        Self::in_dir(&current_exe_dir()?)
    }

    /// Only the sharder, in the directory of the running one, for a stack without operators.
    pub fn sharder_next_to_current_exe() -> anyhow::Result<PathBuf> {
        existing(&current_exe_dir()?, PACKAGES[0])
    }

    /// Both executables freshly built for an integration test: see [`build_for_tests`].
    pub fn build_for_tests() -> anyhow::Result<Self> {
        Self::in_dir(&build_for_tests(&PACKAGES)?)
    }
}

/// Builds the binaries of `packages` with the cargo that built this crate, into the target
/// directory and profile of the running test, and returns the directory that holds them
/// (`<target>/debug` under `cargo test`).
///
/// An integration test only gets its own package's binaries from cargo, so a test of another
/// package would otherwise start whatever stale binary is lying around. Building always (not
/// only when a binary is missing) costs about a second when they are fresh. It cannot
/// deadlock: cargo releases the build directory lock before it runs tests (checked with
/// cargo 1.95); while another build holds the lock, this one waits for it.
///
/// # Errors
/// The running executable is not in `<target>/<profile>/deps`, or the build fails (the error
/// carries cargo's output).
pub fn build_for_tests(packages: &[&str]) -> anyhow::Result<PathBuf> {
    let deps = current_exe_dir()?;
    let (target, profile) = test_layout(&deps).with_context(|| {
        format!(
            "{} is not a cargo test directory (<target>/<profile>/deps)",
            deps.display()
        )
    })?;
    let mut command = Command::new(env!("CARGO"));
    command
        .arg("build")
        .arg("--target-dir")
        .arg(&target)
        .args(profile_args(&profile))
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    for package in packages {
        command.args(["-p", package]);
    }
    let output = command
        .output()
        .with_context(|| format!("cannot run {}", env!("CARGO")))?;
    if !output.status.success() {
        bail!(
            "`cargo build -p {}` failed ({}):\n{}",
            packages.join(" -p "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(target.join(profile))
}

/// `dir/<package>`, if it is a file.
fn existing(dir: &Path, package: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(package);
    if !path.is_file() {
        bail!(
            "{} is missing: build it with `{BUILD_COMMAND}`",
            path.display()
        );
    }
    Ok(path)
}

fn current_exe_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    exe.parent()
        .map(Path::to_owned)
        .with_context(|| format!("{} has no directory", exe.display()))
}

/// `(<target>, <profile dir name>)` of a test executable's directory `<target>/<profile>/deps`.
fn test_layout(deps: &Path) -> Option<(PathBuf, String)> {
    if deps.file_name()? != "deps" {
        return None;
    }
    let profile_dir = deps.parent()?;
    let profile = profile_dir.file_name()?.to_str()?.to_owned();
    Some((profile_dir.parent()?.to_owned(), profile))
}

/// The cargo flags that build into the directory `profile_dir` (`debug` is the dev profile).
fn profile_args(profile_dir: &str) -> Vec<String> {
    match profile_dir {
        "debug" => Vec::new(),
        "release" => vec!["--release".to_owned()],
        custom => vec!["--profile".to_owned(), custom.to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_is_named_with_the_build_command() {
        let dir = std::env::temp_dir().join("stack-no-binaries-here");
        let error = Binaries::in_dir(&dir).unwrap_err().to_string();
        assert!(error.contains("stack-no-binaries-here/sharder"), "{error}");
        assert!(error.contains(BUILD_COMMAND), "{error}");
    }

    #[test]
    fn a_test_directory_names_its_target_and_profile() {
        assert_eq!(
            test_layout(Path::new("/w/target/debug/deps")),
            Some((PathBuf::from("/w/target"), "debug".to_owned()))
        );
        assert_eq!(test_layout(Path::new("/w/target/debug")), None);
    }

    #[test]
    fn profile_directories_map_to_cargo_flags() {
        assert!(profile_args("debug").is_empty());
        assert_eq!(profile_args("release"), ["--release"]);
        assert_eq!(profile_args("bench-fast"), ["--profile", "bench-fast"]);
    }
}
