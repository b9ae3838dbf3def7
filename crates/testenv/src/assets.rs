//! Finding the control-plane binaries: `KUBEBUILDER_ASSETS`, or the project's pinned build.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The Kubernetes release the project builds (`hack/control-plane/kubernetes/go.mod`).
pub const KUBERNETES_VERSION: &str = "v1.36.3";
/// The etcd release the project builds (`hack/control-plane/etcd/go.mod`).
pub const ETCD_VERSION: &str = "v3.6.16";

/// The environment variable naming a directory that already holds the binaries, as for envtest.
pub const ASSETS_ENV: &str = "KUBEBUILDER_ASSETS";

/// The script that builds the pinned binaries into a cache and prints the directory.
fn build_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/build-control-plane.sh")
}

/// The directory holding `etcd`, `kube-apiserver` and, if `controller_manager`,
/// `kube-controller-manager`.
///
/// An explicit directory or `KUBEBUILDER_ASSETS` is used as is. Otherwise the project's build
/// script runs: it returns the cached build at once, or builds it first (showing progress on
/// stderr), and serializes concurrent callers.
pub(crate) async fn locate(explicit: Option<&Path>, controller_manager: bool) -> Result<PathBuf> {
    let from_env = std::env::var_os(ASSETS_ENV).filter(|value| !value.is_empty());
    let dir = match (explicit, from_env) {
        (Some(dir), _) => dir.to_owned(),
        (None, Some(dir)) => PathBuf::from(dir),
        (None, None) => build().await?,
    };
    check(&dir, controller_manager)?;
    Ok(dir)
}

async fn build() -> Result<PathBuf> {
    let script = build_script();
    if !script.exists() {
        return Err(Error::Assets(format!(
            "set {ASSETS_ENV} to a directory with etcd and kube-apiserver, \
             or run from a checkout that has {}",
            script.display()
        )));
    }
    let output = tokio::process::Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .map_err(Error::io(format!("run {}", script.display())))?;
    if !output.status.success() {
        return Err(Error::Assets(format!(
            "{} failed with {} (its output is above)",
            script.display(),
            output.status
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = stdout.lines().last().unwrap_or_default().trim();
    Ok(PathBuf::from(dir))
}

/// Checks that the binaries a control plane needs are in `dir`.
fn check(dir: &Path, controller_manager: bool) -> Result<()> {
    let mut required = vec!["etcd", "kube-apiserver"];
    if controller_manager {
        required.push("kube-controller-manager");
    }
    let missing: Vec<_> = required
        .into_iter()
        .filter(|binary| !dir.join(binary).is_file())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Assets(format!(
            "{} has no {}",
            dir.display(),
            missing.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned(module: &str, path: &str) -> String {
        let go_mod = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../hack/control-plane")
                .join(module)
                .join("go.mod"),
        )
        .unwrap();
        go_mod
            .lines()
            .find_map(|line| {
                let mut words = line
                    .trim()
                    .trim_start_matches("require ")
                    .split_whitespace();
                (words.next() == Some(path)).then(|| words.next().unwrap().to_owned())
            })
            .unwrap()
    }

    #[test]
    fn versions_match_the_pinned_go_modules() {
        assert_eq!(
            pinned("kubernetes", "k8s.io/kubernetes"),
            KUBERNETES_VERSION
        );
        assert_eq!(pinned("etcd", "go.etcd.io/etcd/server/v3"), ETCD_VERSION);
    }

    #[test]
    fn a_directory_without_the_binaries_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("etcd"), "").unwrap();
        let error = check(dir.path(), true).unwrap_err().to_string();
        assert!(
            error.contains("kube-apiserver, kube-controller-manager"),
            "{error}"
        );
        assert!(!error.contains("etcd,"), "{error}");
    }
}
