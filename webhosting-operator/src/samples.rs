//! Random Websites for demos and load: `webhosting-operator generate`.

use std::collections::BTreeMap;

use kube::api::ObjectMeta;
use rand::{Rng, RngExt as _, seq::IndexedRandom as _};

use crate::api::{LABEL_SKIP_WORKLOAD, Website, WebsiteSpec};

/// `count` Websites named `<prefix>-<8 random a-z>` in `namespace`, each with a random
/// Theme of `themes`, optionally labelled `skip-workload` so that no pods run.
///
/// # Panics
/// If `themes` is empty.
pub fn random_websites(
    rng: &mut impl Rng,
    count: usize,
    namespace: &str,
    prefix: &str,
    themes: &[String],
    skip_workload: bool,
) -> Vec<Website> {
    assert!(!themes.is_empty(), "at least one Theme is needed");
    (0..count)
        .map(|_| {
            let suffix: String = (0..8).map(|_| rng.random_range('a'..='z')).collect();
            let labels = skip_workload
                .then(|| BTreeMap::from([(LABEL_SKIP_WORKLOAD.to_owned(), "true".to_owned())]));
            Website {
                metadata: ObjectMeta {
                    name: Some(format!("{prefix}-{suffix}")),
                    namespace: Some(namespace.to_owned()),
                    labels,
                    ..ObjectMeta::default()
                },
                spec: WebsiteSpec {
                    theme: themes.choose(rng).expect("not empty").clone(),
                },
                status: None,
            }
        })
        .collect()
}

/// The Websites as a multi-document YAML stream for `kubectl apply -f -`.
pub fn to_yaml(websites: &[Website]) -> Result<String, serde_saphyr::SerializeError> {
    let mut text = String::new();
    for website in websites {
        text.push_str("---\n");
        text.push_str(&serde_saphyr::to_string(website)?);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng as _;

    use super::*;

    #[test]
    fn websites_get_random_names_and_themes_of_the_list() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let themes = ["exciting".to_owned(), "lame".to_owned()];
        let websites = random_websites(&mut rng, 50, "project-a", "website", &themes, true);
        let mut names: Vec<_> = websites
            .iter()
            .map(|w| w.metadata.name.clone().unwrap())
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 50);
        for website in &websites {
            let name = website.metadata.name.as_deref().unwrap();
            let suffix = name.strip_prefix("website-").unwrap();
            assert!(suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_lowercase()));
            assert!(themes.contains(&website.spec.theme));
            assert_eq!(
                website.metadata.labels.as_ref().unwrap()[LABEL_SKIP_WORKLOAD],
                "true"
            );
        }
        assert!(websites.iter().any(|w| w.spec.theme == "lame"));
        assert!(websites.iter().any(|w| w.spec.theme == "exciting"));
    }

    #[test]
    fn the_yaml_stream_parses_back() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let websites = random_websites(&mut rng, 3, "p", "w", &["t".to_owned()], false);
        let text = to_yaml(&websites).unwrap();
        assert_eq!(text.matches("---\n").count(), 3);
        assert!(text.contains("kind: Website"), "{text}");
    }
}
