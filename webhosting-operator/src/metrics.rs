//! The `kube_website_*` and `kube_theme_*` series (docs/contract.md#metrics), computed from the
//! operator's own caches at each scrape: a shard exports its own Websites, so the series of all
//! shards add up to every Website once.

use kube::{ResourceExt as _, runtime::reflector::Store};
use kube_sharding::api::labels;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{MetricType, family::Family, gauge::Gauge},
};

use crate::api::{Theme, Website, WebsitePhase};

/// The ring of the webhosting-operator.
pub const RING: &str = "webhosting-operator";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebsiteLabels {
    namespace: String,
    website: String,
    uid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebsiteInfoLabels {
    namespace: String,
    website: String,
    uid: String,
    theme: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebsiteShardLabels {
    namespace: String,
    website: String,
    uid: String,
    shard: String,
    drain: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebsitePhaseLabels {
    namespace: String,
    website: String,
    uid: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThemeInfoLabels {
    theme: String,
    uid: String,
    color: String,
    font_family: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThemeLabels {
    theme: String,
    uid: String,
}

/// Collects the Website and Theme series from the caches.
#[derive(Debug)]
pub struct WebhostingCollector {
    /// This shard's Websites.
    pub websites: Store<Website>,
    /// All Themes.
    pub themes: Store<Theme>,
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    family: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    family.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for WebhostingCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_websites(&mut encoder)?;
        self.encode_themes(&mut encoder)
    }
}

impl WebhostingCollector {
    fn encode_websites(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let info = Family::<WebsiteInfoLabels, Gauge>::default();
        let shard = Family::<WebsiteShardLabels, Gauge>::default();
        let generation = Family::<WebsiteLabels, Gauge>::default();
        let observed = Family::<WebsiteLabels, Gauge>::default();
        let phases = Family::<WebsitePhaseLabels, Gauge>::default();
        let (shard_label, drain_label) = (labels::shard(RING), labels::drain(RING));
        for website in self.websites.state() {
            let id = WebsiteLabels {
                namespace: website.namespace().unwrap_or_default(),
                website: website.name_any(),
                uid: website.uid().unwrap_or_default(),
            };
            let label = |key: &str| website.labels().get(key).cloned().unwrap_or_default();
            info.get_or_create(&WebsiteInfoLabels {
                namespace: id.namespace.clone(),
                website: id.website.clone(),
                uid: id.uid.clone(),
                theme: website.spec.theme.clone(),
            })
            .set(1);
            shard
                .get_or_create(&WebsiteShardLabels {
                    namespace: id.namespace.clone(),
                    website: id.website.clone(),
                    uid: id.uid.clone(),
                    shard: label(&shard_label),
                    drain: label(&drain_label),
                })
                .set(1);
            generation
                .get_or_create(&id)
                .set(website.metadata.generation.unwrap_or_default());
            let status = website.status.as_ref();
            observed.get_or_create(&id).set(
                status
                    .and_then(|s| s.observed_generation)
                    .unwrap_or_default(),
            );
            let current = status.and_then(|s| s.phase.as_ref());
            // A state set: one series per phase, 1 for the current one.
            for phase in WebsitePhase::ALL {
                phases
                    .get_or_create(&WebsitePhaseLabels {
                        namespace: id.namespace.clone(),
                        website: id.website.clone(),
                        uid: id.uid.clone(),
                        phase: phase.to_string(),
                    })
                    .set(i64::from(current == Some(&phase)));
            }
        }
        gauge(
            encoder,
            "kube_website_info",
            "Information about a Website",
            &info,
        )?;
        gauge(
            encoder,
            "kube_website_shard",
            "The shard a Website is assigned to, and whether it is being drained",
            &shard,
        )?;
        gauge(
            encoder,
            "kube_website_metadata_generation",
            "The metadata.generation of a Website",
            &generation,
        )?;
        gauge(
            encoder,
            "kube_website_observed_generation",
            "The status.observedGeneration of a Website",
            &observed,
        )?;
        gauge(
            encoder,
            "kube_website_status_phase",
            "The phase of a Website, one series per phase",
            &phases,
        )
    }

    fn encode_themes(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let theme_info = Family::<ThemeInfoLabels, Gauge>::default();
        let theme_generation = Family::<ThemeLabels, Gauge>::default();
        for theme in self.themes.state() {
            let (name, uid) = (theme.name_any(), theme.uid().unwrap_or_default());
            theme_info
                .get_or_create(&ThemeInfoLabels {
                    theme: name.clone(),
                    uid: uid.clone(),
                    color: theme.spec.color.clone(),
                    font_family: theme.spec.font_family.clone(),
                })
                .set(1);
            theme_generation
                .get_or_create(&ThemeLabels { theme: name, uid })
                .set(theme.metadata.generation.unwrap_or_default());
        }
        gauge(
            encoder,
            "kube_theme_info",
            "Information about a Theme",
            &theme_info,
        )?;
        gauge(
            encoder,
            "kube_theme_metadata_generation",
            "The metadata.generation of a Theme",
            &theme_generation,
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::{
        api::ObjectMeta,
        runtime::{reflector::store::Writer, watcher::Event},
    };
    use prometheus_client::{encoding::text::encode, registry::Registry};

    use super::*;
    use crate::api::{ThemeSpec, WebsiteSpec, WebsiteStatus};

    fn store<K>(objects: Vec<K>) -> Store<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        let mut writer = Writer::default();
        for object in objects {
            writer.apply_watcher_event(&Event::Apply(object));
        }
        writer.as_reader()
    }

    fn scrape(collector: WebhostingCollector) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    #[test]
    fn websites_and_themes_are_exported_from_the_caches() {
        let website = Website {
            metadata: ObjectMeta {
                name: Some("home".to_owned()),
                namespace: Some("project-a".to_owned()),
                uid: Some("u1".to_owned()),
                generation: Some(3),
                labels: Some(BTreeMap::from([
                    (labels::shard(RING), "shard-0".to_owned()),
                    (labels::drain(RING), "true".to_owned()),
                ])),
                ..ObjectMeta::default()
            },
            spec: WebsiteSpec {
                theme: "lame".to_owned(),
            },
            status: Some(WebsiteStatus {
                observed_generation: Some(2),
                phase: Some(WebsitePhase::Pending),
                last_transition_time: None,
            }),
        };
        let mut theme = Theme::new(
            "lame",
            ThemeSpec {
                color: "darkgoldenrod".to_owned(),
                font_family: "Comic Sans MS".to_owned(),
            },
        );
        theme.metadata.uid = Some("t1".to_owned());
        theme.metadata.generation = Some(1);
        let text = scrape(WebhostingCollector {
            websites: store(vec![website]),
            themes: store(vec![theme]),
        });
        let id = r#"namespace="project-a",website="home",uid="u1""#;
        for line in [
            format!(r#"kube_website_info{{{id},theme="lame"}} 1"#),
            format!(r#"kube_website_shard{{{id},shard="shard-0",drain="true"}} 1"#),
            format!("kube_website_metadata_generation{{{id}}} 3"),
            format!("kube_website_observed_generation{{{id}}} 2"),
            format!(r#"kube_website_status_phase{{{id},phase="Pending"}} 1"#),
            format!(r#"kube_website_status_phase{{{id},phase="Ready"}} 0"#),
            r#"kube_theme_info{theme="lame",uid="t1",color="darkgoldenrod",font_family="Comic Sans MS"} 1"#.to_owned(),
            r#"kube_theme_metadata_generation{theme="lame",uid="t1"} 1"#.to_owned(),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
