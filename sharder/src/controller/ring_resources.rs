//! The resources a ControllerRing names, checked against what the API server serves
//! (docs/contract.md#ring-validation). The CRD accepts any group and resource, as the Go
//! original's does, so the sharder checks each entry before it writes a webhook rule for it or
//! lists its objects: a wildcard in a rule would send every write of a group to the webhook,
//! which denies what is not its ring's.

use std::{
    collections::{BTreeSet, HashMap},
    fmt::Write as _,
};

use kube::{
    Client,
    api::ApiResource,
    discovery::{self, Scope, verbs},
};
use kube_sharding::api::{ControllerRing, GroupResource};

/// The operations the resync needs: list to find objects, patch to drain and move them.
const NEEDED_VERBS: [&str; 2] = [verbs::LIST, verbs::PATCH];

/// The API group whose objects the API server never sends to admission webhooks, so that a
/// broken webhook cannot lock its own configuration.
const WEBHOOK_EXEMPT_GROUP: &str = "admissionregistration.k8s.io";

/// The longest group or resource value quoted in a problem; longer ones are cut so that
/// the ring's status stays short whatever the spec holds.
const MAX_QUOTED_BYTES: usize = 64;

/// A resource as the API server serves it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServedResource {
    /// Its version and kind at the most stable served version.
    pub api_resource: ApiResource,
    /// Whether its objects live in namespaces.
    pub namespaced: bool,
    /// The operations the API server allows on it (`list`, `patch`, …).
    pub verbs: Vec<String>,
}

/// What discovery found for the groups a ring names: a group or resource that is absent is
/// not served.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Served(HashMap<GroupResource, ServedResource>);

impl Served {
    /// The served resource `group_resource`, if it is served.
    #[must_use]
    pub fn get(&self, group_resource: &GroupResource) -> Option<&ServedResource> {
        self.0.get(group_resource)
    }
}

impl FromIterator<(GroupResource, ServedResource)> for Served {
    fn from_iter<I: IntoIterator<Item = (GroupResource, ServedResource)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Discovers the groups `ring` names (those that can name one group): a group the API server
/// does not serve is left out, as are its resources.
///
/// # Errors
///
/// When discovery fails for another reason than a group that is not served.
pub async fn discover(client: &Client, ring: &ControllerRing) -> kube::Result<Served> {
    let groups: BTreeSet<String> = entries(ring)
        .map(|(_, group_resource)| group_resource.group)
        .filter(|group| group_problem(group).is_none())
        .collect();
    let mut served = HashMap::new();
    for group in groups {
        let found = match discovery::group(client, &group).await {
            Ok(found) => found,
            Err(kube::Error::Discovery(kube::error::DiscoveryError::MissingApiGroup(_))) => {
                continue;
            }
            Err(error) => return Err(error),
        };
        for (api_resource, capabilities) in found.resources_by_stability() {
            served.insert(
                GroupResource::new(&group, &api_resource.plural),
                ServedResource {
                    namespaced: capabilities.scope == Scope::Namespaced,
                    verbs: capabilities.operations,
                    api_resource,
                },
            );
        }
    }
    Ok(Served(served))
}

/// Every group and resource `ring` names, with its field path: each main resource, then its
/// controlled resources.
pub fn entries(ring: &ControllerRing) -> impl Iterator<Item = (String, GroupResource)> + '_ {
    ring.spec
        .resources
        .iter()
        .enumerate()
        .flat_map(|(i, resource)| {
            let main = (format!("spec.resources[{i}]"), resource.group_resource());
            let controlled =
                resource
                    .controlled_resources
                    .iter()
                    .enumerate()
                    .map(move |(j, controlled)| {
                        (
                            format!("spec.resources[{i}].controlledResources[{j}]"),
                            controlled.clone(),
                        )
                    });
            std::iter::once(main).chain(controlled)
        })
}

/// What is wrong with one group and resource of a ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The group is or contains `*`.
    WildcardGroup(String),
    /// The group contains `/`, so it names no single group.
    NotOneGroup(String),
    /// The resource is or contains `*`.
    WildcardResource(String),
    /// The resource is empty or names a subresource (`pods/status`).
    NotOneResource(String),
    /// The API server never sends this group's objects to admission webhooks.
    WebhookExempt,
    /// The API server does not serve the resource (yet).
    NotServed,
    /// The API server serves the resource without the operations the resync needs.
    MissingVerbs(Vec<&'static str>),
}

impl Fault {
    /// Whether the entry is left out of the webhook configuration and the resync. An entry
    /// that is only not served yet keeps its rule: it matches nothing until the resource is
    /// served, and then assigns from the first object on.
    #[must_use]
    pub fn omitted(&self) -> bool {
        !matches!(self, Self::NotServed)
    }
}

/// One problem of a ring's spec: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The field path, e.g. `spec.resources[0].controlledResources[1]`.
    pub field: String,
    /// The group and resource of the entry.
    pub group_resource: GroupResource,
    /// What is wrong.
    pub fault: Fault,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = |value: &str| {
            format!(
                "{:?}",
                super::controller_ring::shorten(value, MAX_QUOTED_BYTES)
            )
        };
        let GroupResource { group, resource } = &self.group_resource;
        let name = quoted(&format!("{group}/{resource}"));
        write!(f, "{}: ", self.field)?;
        match &self.fault {
            Fault::WildcardGroup(group) => {
                write!(
                    f,
                    "group {} is a wildcard; name one API group",
                    quoted(group)
                )
            }
            Fault::NotOneGroup(group) => {
                write!(f, "group {} is not one API group", quoted(group))
            }
            Fault::WildcardResource(resource) => write!(
                f,
                "resource {} is a wildcard; name one resource",
                quoted(resource)
            ),
            Fault::NotOneResource(resource) => write!(
                f,
                "resource {} is not one resource; name its plural without subresource",
                quoted(resource)
            ),
            Fault::WebhookExempt => write!(
                f,
                "{name} is never sent to admission webhooks, so it cannot be assigned"
            ),
            Fault::NotServed => write!(f, "{name} is not served by the API server"),
            Fault::MissingVerbs(missing) => write!(
                f,
                "{name} is served without {}, which the resync needs",
                missing.join(" and ")
            ),
        }
    }
}

/// The problems of `ring`'s resources, in spec order. `served` is what discovery found for
/// the ring's groups; without it (discovery failed) only the names themselves are checked.
#[must_use]
pub fn validate(ring: &ControllerRing, served: Option<&Served>) -> Vec<Problem> {
    entries(ring)
        .filter_map(|(field, group_resource)| {
            let fault = fault(&group_resource, served)?;
            Some(Problem {
                field,
                group_resource,
                fault,
            })
        })
        .collect()
}

/// What is wrong with `group_resource`, if anything, given `served`.
fn fault(group_resource: &GroupResource, served: Option<&Served>) -> Option<Fault> {
    if let Some(fault) = group_problem(&group_resource.group) {
        return Some(fault);
    }
    let resource = &group_resource.resource;
    if resource.contains('*') {
        return Some(Fault::WildcardResource(resource.clone()));
    }
    if resource.is_empty() || resource.contains('/') {
        return Some(Fault::NotOneResource(resource.clone()));
    }
    if group_resource.group == WEBHOOK_EXEMPT_GROUP {
        return Some(Fault::WebhookExempt);
    }
    let found = served?.get(group_resource);
    let Some(found) = found else {
        return Some(Fault::NotServed);
    };
    let missing: Vec<_> = NEEDED_VERBS
        .into_iter()
        .filter(|verb| !found.verbs.iter().any(|served| served == verb))
        .collect();
    (!missing.is_empty()).then_some(Fault::MissingVerbs(missing))
}

/// What is wrong with `group` as the name of one API group, if anything.
fn group_problem(group: &str) -> Option<Fault> {
    if group.contains('*') {
        Some(Fault::WildcardGroup(group.to_owned()))
    } else if group.contains('/') {
        Some(Fault::NotOneGroup(group.to_owned()))
    } else {
        None
    }
}

/// The groups and resources of `ring` that are left out of its webhook configuration and its
/// resync, by `problems` (docs/contract.md#ring-validation).
#[must_use]
pub fn omitted(problems: &[Problem]) -> Vec<GroupResource> {
    problems
        .iter()
        .filter(|problem| problem.fault.omitted())
        .map(|problem| problem.group_resource.clone())
        .collect()
}

/// At most this many problems are spelled out in a status message; the rest are counted.
const MAX_LISTED_PROBLEMS: usize = 3;

/// A short summary of `problems` (never empty) for the ring's status and an event.
#[must_use]
pub fn summary(problems: &[Problem]) -> String {
    let listed: Vec<String> = problems
        .iter()
        .take(MAX_LISTED_PROBLEMS)
        .map(ToString::to_string)
        .collect();
    let mut summary = listed.join("; ");
    if let Some(more) = problems.len().checked_sub(MAX_LISTED_PROBLEMS)
        && more > 0
    {
        let _ = write!(summary, "; and {more} more");
    }
    summary
}

#[cfg(test)]
mod tests {
    use kube_sharding::api::{ControllerRingSpec, RingResource};

    use super::*;

    fn ring(resources: Vec<RingResource>) -> ControllerRing {
        let spec = ControllerRingSpec {
            resources,
            ..ControllerRingSpec::default()
        };
        ControllerRing::new("ring", spec)
    }

    fn entry(group: &str, resource: &str, controlled: &[(&str, &str)]) -> RingResource {
        RingResource {
            group: group.into(),
            resource: resource.into(),
            controlled_resources: controlled
                .iter()
                .map(|(group, resource)| GroupResource::new(*group, *resource))
                .collect(),
        }
    }

    fn served_resource(kind: &str, namespaced: bool, verbs: &[&str]) -> ServedResource {
        ServedResource {
            api_resource: ApiResource {
                group: String::new(),
                version: "v1".into(),
                api_version: "v1".into(),
                kind: kind.into(),
                plural: String::new(),
            },
            namespaced,
            verbs: verbs.iter().map(|&verb| verb.to_owned()).collect(),
        }
    }

    /// ConfigMaps and Secrets (namespaced), Themes (cluster-scoped) and a create-only
    /// TokenReview.
    fn served() -> Served {
        let all = [
            "create", "get", "list", "watch", "update", "patch", "delete",
        ];
        [
            (("", "configmaps"), served_resource("ConfigMap", true, &all)),
            (("", "secrets"), served_resource("Secret", true, &all)),
            (
                ("webhosting.timebertt.dev", "themes"),
                served_resource("Theme", false, &all),
            ),
            (
                ("authentication.k8s.io", "tokenreviews"),
                served_resource("TokenReview", false, &["create"]),
            ),
        ]
        .into_iter()
        .map(|((group, resource), found)| (GroupResource::new(group, resource), found))
        .collect()
    }

    fn messages(ring: &ControllerRing) -> Vec<String> {
        validate(ring, Some(&served()))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn served_namespaced_and_cluster_scoped_resources_are_valid() {
        let ring = ring(vec![
            entry("", "configmaps", &[("", "secrets")]),
            entry("webhosting.timebertt.dev", "themes", &[]),
        ]);
        assert_eq!(validate(&ring, Some(&served())), []);
    }

    #[test]
    fn wildcards_name_the_field_and_value() {
        let ring = ring(vec![
            entry("*", "*", &[]),
            entry("", "configmaps", &[("apps", "*"), ("", "pods/*")]),
            entry("rbac.*", "roles", &[]),
        ]);
        assert_eq!(
            messages(&ring),
            [
                r#"spec.resources[0]: group "*" is a wildcard; name one API group"#,
                r#"spec.resources[1].controlledResources[0]: resource "*" is a wildcard; name one resource"#,
                r#"spec.resources[1].controlledResources[1]: resource "pods/*" is a wildcard; name one resource"#,
                r#"spec.resources[2]: group "rbac.*" is a wildcard; name one API group"#,
            ]
        );
    }

    #[test]
    fn subresources_empty_names_and_paths_as_groups_are_not_one_resource() {
        let ring = ring(vec![
            entry("", "pods/status", &[("", "")]),
            entry("apps/v1", "deployments", &[]),
        ]);
        assert_eq!(
            messages(&ring),
            [
                r#"spec.resources[0]: resource "pods/status" is not one resource; name its plural without subresource"#,
                r#"spec.resources[0].controlledResources[0]: resource "" is not one resource; name its plural without subresource"#,
                r#"spec.resources[1]: group "apps/v1" is not one API group"#,
            ]
        );
    }

    #[test]
    fn unknown_unsupported_and_webhook_exempt_resources_are_reported() {
        let ring = ring(vec![
            entry("example.com", "things", &[("", "ConfigMaps")]),
            entry("authentication.k8s.io", "tokenreviews", &[]),
            entry(
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
                &[],
            ),
        ]);
        assert_eq!(
            messages(&ring),
            [
                r#"spec.resources[0]: "example.com/things" is not served by the API server"#,
                r#"spec.resources[0].controlledResources[0]: "/ConfigMaps" is not served by the API server"#,
                r#"spec.resources[1]: "authentication.k8s.io/tokenreviews" is served without list and patch, which the resync needs"#,
                r#"spec.resources[2]: "admissionregistration.k8s.io/validatingwebhookconfigurations" is never sent to admission webhooks, so it cannot be assigned"#,
            ]
        );
    }

    #[test]
    fn without_discovery_only_the_names_are_checked() {
        let ring = ring(vec![entry("example.com", "things", &[("*", "x")])]);
        let problems = validate(&ring, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].fault, Fault::WildcardGroup("*".into()));
    }

    #[test]
    fn only_resources_that_are_not_served_yet_keep_their_rule() {
        let ring = ring(vec![
            entry("example.com", "things", &[("*", "*")]),
            entry("authentication.k8s.io", "tokenreviews", &[]),
        ]);
        let problems = validate(&ring, Some(&served()));
        assert_eq!(
            omitted(&problems),
            [
                GroupResource::new("*", "*"),
                GroupResource::new("authentication.k8s.io", "tokenreviews"),
            ]
        );
    }

    #[test]
    fn messages_stay_short_however_long_or_many_the_values() {
        let long = "x".repeat(10_000);
        let ring = ring(
            (0..50)
                .map(|i| entry(&format!("{long}*"), &format!("r{i}"), &[]))
                .collect(),
        );
        let problems = validate(&ring, Some(&served()));
        assert_eq!(problems.len(), 50);
        for problem in &problems {
            assert!(problem.to_string().len() < 160, "{problem}");
        }
        let summary = summary(&problems);
        assert!(summary.len() < 512, "{} bytes: {summary}", summary.len());
        assert!(summary.ends_with("; and 47 more"), "{summary}");
    }

    #[test]
    fn a_summary_of_few_problems_lists_them_all() {
        let ring = ring(vec![entry("*", "things", &[])]);
        let problems = validate(&ring, Some(&served()));
        assert_eq!(summary(&problems), problems[0].to_string());
    }
}
