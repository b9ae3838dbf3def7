//! The `webhosting.timebertt.dev/v1alpha1` API (docs/contract.md#the-webhosting-operator-api):
//! Websites and the Themes that style them, and their CustomResourceDefinitions as checked in under
//! `config/crds/`.

pub mod theme;
pub mod website;

use kube::CustomResourceExt;

pub use theme::{Theme, ThemeSpec, ThemeStatus};
pub use website::{LABEL_SKIP_WORKLOAD, Website, WebsitePhase, WebsiteSpec, WebsiteStatus};

/// The API group of Websites and Themes.
pub const GROUP: &str = "webhosting.timebertt.dev";

/// The CustomResourceDefinitions as (file name, YAML), in the layout of `config/crds/`, with
/// the schemas of the Go original's (docs/compatibility.md).
#[must_use]
pub fn crds_yaml() -> Vec<(&'static str, String)> {
    vec![
        (
            "webhosting.timebertt.dev_websites.yaml",
            crd_yaml::<Website>(),
        ),
        ("webhosting.timebertt.dev_themes.yaml", crd_yaml::<Theme>()),
    ]
}

fn crd_yaml<K: CustomResourceExt>() -> String {
    kube_sharding::api::crd::to_yaml(&K::crd())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_checked_in_crds_are_what_the_types_generate() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/crds");
        for (file, yaml) in crds_yaml() {
            let path = dir.join(file);
            let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                checked_in == yaml,
                "{} is stale: run `cargo run -p webhosting-operator -- crds --write`",
                path.display()
            );
        }
    }

    #[test]
    fn the_crds_carry_the_contract() {
        let crds = crds_yaml();
        let (_, websites) = &crds[0];
        for needle in [
            "name: websites.webhosting.timebertt.dev",
            "scope: Namespaced",
            "status: {}",
            "jsonPath: .status.lastTransitionTime",
            "- theme",
        ] {
            assert!(
                websites.contains(needle),
                "missing {needle:?} in\n{websites}"
            );
        }
        let (_, themes) = &crds[1];
        for needle in [
            "name: themes.webhosting.timebertt.dev",
            "scope: Cluster",
            "name: Font Family",
            "- fontFamily",
        ] {
            assert!(themes.contains(needle), "missing {needle:?} in\n{themes}");
        }
    }
}
