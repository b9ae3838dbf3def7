//! The world Websites live in: project namespaces and Themes, and the Websites themselves,
//! alike for every subcommand that creates them.

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams},
};
use rand::seq::IndexedRandom as _;
use webhosting_operator::{
    api::{Theme, ThemeSpec, Website},
    samples,
};

/// Field manager of loadgen's server-side applies.
const FIELD_MANAGER: &str = "loadgen";
/// Colors and fonts of the Themes, cycled.
const COLORS: [&str; 5] = ["darkcyan", "crimson", "olive", "navy", "orchid"];
const FONTS: [&str; 3] = ["Menlo", "Georgia", "Verdana"];

/// The namespaces and Themes of a measurement; there is at least one Theme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    /// `project-0` … `project-<n - 1>`, labelled as project namespaces (in the ring).
    pub namespaces: Vec<String>,
    /// `theme-0` … `theme-<n - 1>`.
    pub themes: Vec<String>,
}

impl World {
    /// Applies `namespaces` project namespaces and `themes` Themes (applied, so that a world
    /// left by an earlier run on a cluster is taken over).
    pub async fn create(client: &Client, namespaces: u32, themes: u32) -> anyhow::Result<Self> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let namespace_api = Api::<Namespace>::all(client.clone());
        let mut namespace_names = Vec::new();
        for i in 0..namespaces {
            let name = format!("project-{i}");
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(BTreeMap::from([(
                        stack::PROJECT_LABEL.to_owned(),
                        "true".to_owned(),
                    )])),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            namespace_api
                .patch(&name, &params, &Patch::Apply(&namespace))
                .await
                .with_context(|| format!("cannot create namespace {name}"))?;
            namespace_names.push(name);
        }
        let theme_api = Api::<Theme>::all(client.clone());
        let mut theme_names = Vec::new();
        for (i, (color, font)) in (0..themes).zip(COLORS.iter().cycle().zip(FONTS.iter().cycle())) {
            let name = format!("theme-{i}");
            let mut theme = Theme::new(
                &name,
                ThemeSpec {
                    color: (*color).to_owned(),
                    font_family: (*font).to_owned(),
                },
            );
            theme.metadata.managed_fields = None;
            theme_api
                .patch(&name, &params, &Patch::Apply(&theme))
                .await
                .with_context(|| format!("cannot create Theme {name}"))?;
            theme_names.push(name);
        }
        Ok(Self {
            namespaces: namespace_names,
            themes: theme_names,
        })
    }

    /// `count` new Websites in `namespace`, each named `experiment-<8 random a-z>` with a
    /// random Theme, labelled `skip-workload` (no pods run) and with `label`.
    ///
    /// # Panics
    /// The world has no Theme.
    pub fn websites(
        &self,
        rng: &mut impl rand::Rng,
        namespace: &str,
        count: usize,
        label: (&str, &str),
    ) -> Vec<Website> {
        let mut websites =
            samples::random_websites(rng, count, namespace, "experiment", &self.themes, true);
        for website in &mut websites {
            website
                .metadata
                .labels
                .get_or_insert_default()
                .insert(label.0.to_owned(), label.1.to_owned());
        }
        websites
    }

    /// One new Website as [`Self::websites`] makes them, in a random namespace of the world.
    pub fn random_website(&self, rng: &mut impl rand::Rng, label: (&str, &str)) -> Website {
        let namespace = self.namespaces.choose(rng).cloned().unwrap_or_default();
        let mut websites = self.websites(rng, &namespace, 1, label);
        websites.swap_remove(0)
    }
}

#[cfg(test)]
mod tests {
    use webhosting_operator::api::LABEL_SKIP_WORKLOAD;

    use super::*;

    #[test]
    fn a_website_skips_its_workload_and_carries_the_label() {
        let world = World {
            namespaces: vec!["project-0".into()],
            themes: vec!["theme-0".into(), "theme-1".into()],
        };
        let website = world.random_website(&mut rand::rng(), ("run", "r1"));
        let name = website.metadata.name.unwrap();
        assert!(
            name.starts_with("experiment-") && name.len() == 19,
            "{name}"
        );
        assert_eq!(website.metadata.namespace.as_deref(), Some("project-0"));
        let labels = website.metadata.labels.unwrap();
        assert_eq!(labels[LABEL_SKIP_WORKLOAD], "true");
        assert_eq!(labels["run"], "r1");
        assert!(world.themes.contains(&website.spec.theme));
    }
}
