//! Workloads as data (docs/workloads.md): what objects a scenario creates, changes and deletes,
//! and when a write of it counts as reconciled. The Website load is one such workload, the
//! default ([`Workload::websites`]); any other resource of any sharded controller is declared
//! the same way in a scenario's `workloads`.
//!
//! Pure: rendering and the readiness rules take the objects as JSON values and randomness as
//! an argument; the driver and the observer run them.

use std::collections::BTreeMap;

use kube::{api::Patch, core::GroupVersionKind};
use rand::RngExt as _;
use serde::{Serialize, Serializer};
use serde_json::Value;

mod jsonpath;
mod raw;
mod reconciled;
mod template;

pub(crate) use raw::{RawWorkload, read_files, validate};

/// The default workload's definition (docs/workloads.md#the-default-website-workload).
const WEBSITES: &str = include_str!("websites.yaml");

/// Why a template did not render into what its field must hold, or, when a scenario is read, why
/// a workload is invalid. The message names the field: relative to the workload when a
/// [`Workload`]'s methods render (`mutations[1].merge: ...`), the full path when a scenario is
/// validated (`workloads[0].mutations[1].merge: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct RenderError {
    /// The field path, such as `template` or `workloads[0].template`.
    pub field: String,
    /// What went wrong, quoting the template engine or the rendered text.
    pub problem: String,
}

impl RenderError {
    /// The error with its field below `path`.
    #[must_use]
    fn within(mut self, path: &str) -> Self {
        self.field = format!("{path}.{}", self.field);
        self
    }
}

/// An API kind: `apiVersion` and `kind`, as objects spell them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kind {
    /// `apiVersion`: `v1` or `group/version`.
    pub api_version: String,
    /// `kind`: `Secret`.
    pub kind: String,
}

impl Kind {
    /// The group, empty for the core group.
    #[must_use]
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map_or("", |(group, _)| group)
    }

    /// The version.
    #[must_use]
    pub fn version(&self) -> &str {
        self.api_version
            .split_once('/')
            .map_or(self.api_version.as_str(), |(_, version)| version)
    }

    /// Group, version and kind, for discovery.
    #[must_use]
    pub fn gvk(&self) -> GroupVersionKind {
        GroupVersionKind::gvk(self.group(), self.version(), &self.kind)
    }
}

/// `workloads[].resource`: the kind of the workload's objects and whether they live in a
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `apiVersion` and `kind`.
    #[serde(flatten)]
    pub kind: Kind,
    /// `namespaced` (default true): objects are created in the world's namespaces, at random.
    pub namespaced: bool,
}

/// A YAML template with placeholders (docs/workloads.md#templates), checked to render when the
/// scenario is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Template {
    /// The text as written.
    pub text: String,
}

/// What a template sees (docs/workloads.md#templates).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// `index`: the number of the object among all the run's creates (or of the fixture
    /// among its fixture's), from 0.
    pub index: u64,
    /// `namespace`: the namespace chosen for the object, empty for a cluster-scoped one.
    pub namespace: &'a str,
    /// `namespaces`: every namespace of the world.
    pub namespaces: &'a [String],
    /// `run`: the run's id.
    pub run: &'a str,
    /// `fixtures.<name>`: the names of each fixture's objects.
    pub fixtures: &'a BTreeMap<String, Vec<String>>,
    /// `object`: in a mutation, the object as last written; in a readiness rule's
    /// expectation, the object as the API server returned it after the write.
    pub object: Option<&'a Value>,
}

/// `workloads[].fixtures[]`: objects created once before the load, such as the Themes
/// Websites refer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fixture {
    /// `name`: how templates refer to the fixture's object names, `fixtures.<name>`.
    pub name: String,
    /// `count`: objects, rendered with `index` 0 … count − 1.
    pub count: u32,
    /// `template`: one object of any kind.
    pub template: Template,
}

/// `workloads[].mutations[]`: a change of a live object, a patch rendered with `object` the
/// object as last written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutation {
    /// `merge`: a JSON merge patch (RFC 7386), as YAML.
    Merge(Template),
    /// `json`: a JSON patch (RFC 6902), a YAML list of operations.
    Json(Template),
}

/// A JSONPath expression, kubectl's `{.status.phase}` or RFC 9535's `$.status.phase`, checked
/// to parse when the scenario is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct JsonPath {
    /// The expression as written.
    pub text: String,
}

/// `reconciled.condition`: a condition of `status.conditions` with this type and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// `type`, such as `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `status`, such as `"True"`.
    pub status: String,
}

/// A JSONPath and the value it must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `jsonPath`.
    pub json_path: JsonPath,
    /// `equals`: a template, rendered with `object` the written object.
    pub equals: Template,
}

/// `reconciled.related.name` or `reconciled.related.ownerReference`: how the related object of
/// a written one is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locate {
    /// `name`: a template rendered with `object` the written object; the related object is in
    /// the written object's namespace.
    Name(Template),
    /// `ownerReference: true`: the related object names the written one as its controller in
    /// `metadata.ownerReferences` (same namespace).
    OwnerReference,
}

/// `reconciled.related`: for a controller that writes no status, an object it makes for the
/// written one, and what that object must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Related {
    /// `apiVersion`, `kind` of the related object.
    #[serde(flatten)]
    pub kind: Kind,
    /// How it is found.
    #[serde(flatten)]
    pub locate: Locate,
    /// What it must show.
    #[serde(flatten)]
    pub check: Check,
}

/// `workloads[].reconciled`: when a write counts as reconciled
/// (docs/workloads.md#reconciled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// `observedGeneration: true`: `status.observedGeneration` reached the written
    /// generation, and the optional condition and check hold (their `equals` are rendered
    /// with `object` the observed object).
    ObservedGeneration {
        /// `condition`.
        condition: Option<Condition>,
        /// `jsonPath` with `equals`.
        check: Option<Check>,
    },
    /// `jsonPath` with `equals`, without `observedGeneration`: the object itself shows the
    /// value rendered from the written object.
    Own(Check),
    /// `related`.
    Related(Related),
}

/// What one write awaits, from the object the API server returned after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaited {
    /// Its `metadata.generation`: reconciled when the object is seen reconciled at this
    /// generation or a later one.
    Generation(i64),
    /// A value at the rule's JSONPath on the object itself or on its related object.
    Value {
        /// The related object's `namespace/name` when found by name; `None` when it is the
        /// object itself or found by owner reference.
        related: Option<String>,
        /// The value that shows the write reconciled.
        expected: String,
    },
}

/// One workload of a scenario (docs/workloads.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// `name`: `[a-z0-9-]+`, in reports.
    pub name: String,
    /// `resource`.
    pub resource: Resource,
    /// `controllerRing`: the ring whose shards reconcile it; its shard label is
    /// `shard.alpha.sharding.timebertt.dev/<ring>`.
    pub controller_ring: String,
    /// `weight` (default 1): the share of creates, relative to the other workloads'.
    pub weight: u32,
    /// `fixtures`.
    pub fixtures: Vec<Fixture>,
    /// `template`: a new object; loadgen adds the run label and, for a namespaced resource
    /// without one, the namespace.
    pub template: Template,
    /// `mutations`: at least one; each change picks one at random.
    pub mutations: Vec<Mutation>,
    /// `reconciled`.
    pub reconciled: Reconciled,
    /// `owned`: kinds whose objects the controller makes for each object of the workload and
    /// that must carry their owner's shard label.
    pub owned: Vec<Kind>,
}

impl Workload {
    /// The default workload: Websites with `themes` Theme fixtures, a random Theme each, no
    /// pods (`skip-workload`), changed to another Theme, reconciled when `status.phase` is
    /// Ready at the written generation.
    ///
    /// # Panics
    /// Never: the embedded definition is valid, as a test checks.
    #[must_use]
    pub fn websites(themes: u32) -> Self {
        let options = serde_saphyr::options! { with_snippet: false };
        let raw: RawWorkload = serde_saphyr::from_str_with_options(WEBSITES, options)
            .expect("the default Website workload is YAML of a workload");
        let mut workload = validate(vec![raw], "websites.yaml")
            .expect("the default Website workload is valid")
            .remove(0);
        // The file's count only serves its validation; its one fixture is the Themes.
        for fixture in &mut workload.fixtures {
            fixture.count = themes;
        }
        workload
    }

    /// A new object: the template rendered with `context` and `rng`, checked to be of the
    /// workload's kind, with `metadata.namespace` set for a namespaced resource.
    ///
    /// # Errors
    /// The template does not render into an object of the workload's kind with a name.
    pub fn object(
        &self,
        context: &Context<'_>,
        rng: &mut impl rand::Rng,
    ) -> Result<Value, RenderError> {
        let seed = rng.next_u64();
        let render = || {
            let mut object = template::render_yaml(&self.template.text, context, Some(seed))?;
            self.resource.check(&mut object, context.namespace)?;
            Ok(object)
        };
        render().map_err(|problem| RenderError {
            field: "template".to_owned(),
            problem,
        })
    }

    /// A change of `context.object`: one of the mutations, at random, rendered.
    ///
    /// # Errors
    /// The mutation does not render into a patch.
    pub fn mutation(
        &self,
        context: &Context<'_>,
        rng: &mut impl rand::Rng,
    ) -> Result<Patch<Value>, RenderError> {
        if self.mutations.is_empty() {
            return Err(RenderError {
                field: "mutations".to_owned(),
                problem: "must have at least one mutation".to_owned(),
            });
        }
        let i = rng.random_range(0..self.mutations.len());
        let mutation = &self.mutations[i];
        mutation
            .render(context, rng.random())
            .map_err(|problem| RenderError {
                field: format!("mutations[{i}].{}", mutation.field()),
                problem,
            })
    }
}

impl Resource {
    /// Checks that `object` is of this resource with a name, and sets `metadata.namespace` to
    /// `namespace` for a namespaced resource without one.
    fn check(&self, object: &mut Value, namespace: &str) -> Result<(), String> {
        let (api_version, kind) = identity(object)?;
        if api_version != self.kind.api_version {
            return Err(format!(
                "renders apiVersion {api_version}, the resource is {}",
                self.kind.api_version
            ));
        }
        if kind != self.kind.kind {
            return Err(format!(
                "renders kind {kind}, the resource is {}",
                self.kind.kind
            ));
        }
        let metadata = object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .ok_or("renders no metadata")?;
        let text = |field| {
            metadata
                .get(field)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
        };
        if text("name").is_none() {
            return Err(if text("generateName").is_some() {
                "renders metadata.generateName without metadata.name: the sharder places an \
                 object by its name and denies one that has none yet (docs/contract.md#hash-keys); \
                 make the name unique with random_string or index"
                    .to_owned()
            } else {
                "renders no metadata.name".to_owned()
            });
        }
        match (self.namespaced, text("namespace")) {
            (true, Some(_)) | (false, None) => Ok(()),
            (true, None) if namespace.is_empty() => {
                Err("renders no metadata.namespace and the context has no namespace".to_owned())
            }
            (true, None) => {
                metadata.insert("namespace".to_owned(), namespace.into());
                Ok(())
            }
            (false, Some(namespace)) => Err(format!(
                "renders metadata.namespace {namespace}, the resource is cluster-scoped"
            )),
        }
    }
}

impl Fixture {
    /// The fixture's objects, `count` renderings with `index` 0 … count − 1.
    ///
    /// # Errors
    /// The template does not render into an object with `apiVersion`, `kind` and a name.
    pub fn objects(&self, context: &Context<'_>) -> Result<Vec<Value>, RenderError> {
        (0..self.count)
            .map(|index| {
                let context = Context {
                    index: u64::from(index),
                    ..*context
                };
                let object =
                    template::render_yaml(&self.template.text, &context, None).and_then(|object| {
                        identity(&object)?;
                        object
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .filter(|name| !name.is_empty())
                            .ok_or("renders no metadata.name")?;
                        Ok(object)
                    });
                object.map_err(|problem| format!("at index {index}: {problem}"))
            })
            .collect::<Result<_, String>>()
            .map_err(|problem| RenderError {
                field: "template".to_owned(),
                problem,
            })
    }
}

impl Mutation {
    /// The patch, rendered with an rng seeded with `seed`.
    fn render(&self, context: &Context<'_>, seed: u64) -> Result<Patch<Value>, String> {
        match self {
            Self::Merge(template) => {
                let patch = template::render_yaml(&template.text, context, Some(seed))?;
                if patch.is_object() {
                    Ok(Patch::Merge(patch))
                } else {
                    Err(format!("renders {}, not a mapping", describe(&patch)))
                }
            }
            Self::Json(template) => {
                let patch = template::render_yaml(&template.text, context, Some(seed))?;
                if !patch.is_array() {
                    return Err(format!(
                        "renders {}, not a list of operations",
                        describe(&patch)
                    ));
                }
                serde_json::from_value(patch)
                    .map(Patch::Json)
                    .map_err(|error| format!("renders no JSON patch (RFC 6902): {error}"))
            }
        }
    }

    /// The field of the template: `merge` or `json`.
    fn field(&self) -> &'static str {
        match self {
            Self::Merge(_) => "merge",
            Self::Json(_) => "json",
        }
    }
}

/// The key of an object in reports and the tracker: `namespace/name`, or `name` for a
/// cluster-scoped object.
#[must_use]
pub fn object_key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}/{name}")
    }
}

/// The `apiVersion` and `kind` of a rendered object, which must be a mapping with both.
fn identity(object: &Value) -> Result<(&str, &str), String> {
    if !object.is_object() {
        return Err(format!("renders {}, not a mapping", describe(object)));
    }
    let text = |field| {
        object
            .get(field)
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
            .ok_or_else(|| format!("renders no {field}"))
    };
    Ok((text("apiVersion")?, text("kind")?))
}

/// What a rendered value is, for errors.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The file's shape: `name` (a template) or `ownerReference: true`.
impl Serialize for Locate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            name: Option<&'a Template>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            owner_reference: bool,
        }
        match self {
            Self::Name(name) => Fields {
                name: Some(name),
                owner_reference: false,
            },
            Self::OwnerReference => Fields {
                name: None,
                owner_reference: true,
            },
        }
        .serialize(serializer)
    }
}

/// The file's shape: `observedGeneration: true` with the optional `condition`, `jsonPath` and
/// `equals`; `jsonPath` and `equals`; or `related`.
impl Serialize for Reconciled {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize, Default)]
        #[serde(rename_all = "camelCase")]
        struct Fields<'a> {
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            observed_generation: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            condition: Option<&'a Condition>,
            #[serde(flatten, skip_serializing_if = "Option::is_none")]
            check: Option<&'a Check>,
            #[serde(skip_serializing_if = "Option::is_none")]
            related: Option<&'a Related>,
        }
        match self {
            Self::ObservedGeneration { condition, check } => Fields {
                observed_generation: true,
                condition: condition.as_ref(),
                check: check.as_ref(),
                related: None,
            },
            Self::Own(check) => Fields {
                check: Some(check),
                ..Fields::default()
            },
            Self::Related(related) => Fields {
                related: Some(related),
                ..Fields::default()
            },
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng as _, rngs::StdRng};
    use serde_json::json;
    use webhosting_operator::{
        api::{LABEL_SKIP_WORKLOAD, Theme, ThemeSpec},
        metrics::RING,
    };

    use super::*;

    /// The example of docs/workloads.md#example-secrets-and-their-checksums.
    const CHECKSUM_SECRETS: &str =
        include_str!("../../../experiments/workloads/checksum-secrets.yaml");

    fn themes(count: u32) -> BTreeMap<String, Vec<String>> {
        let names = (0..count).map(|i| format!("theme-{i}")).collect();
        BTreeMap::from([("themes".to_owned(), names)])
    }

    fn context<'a>(fixtures: &'a BTreeMap<String, Vec<String>>, namespace: &'a str) -> Context<'a> {
        Context {
            index: 0,
            namespace,
            namespaces: &[],
            run: "run-1",
            fixtures,
            object: None,
        }
    }

    /// The patch's body as sent.
    fn body(patch: &Patch<Value>) -> Value {
        match patch {
            Patch::Merge(body) => body.clone(),
            Patch::Json(operations) => serde_json::to_value(operations).unwrap(),
            _ => panic!("workloads make merge and JSON patches only"),
        }
    }

    fn parse_one(text: &str) -> Workload {
        let raw: RawWorkload = serde_saphyr::from_str(text).unwrap();
        validate(vec![raw], "workloads").unwrap().remove(0)
    }

    #[test]
    fn a_kind_splits_its_api_version() {
        let apps = Kind {
            api_version: "apps/v1".to_owned(),
            kind: "Deployment".to_owned(),
        };
        assert_eq!((apps.group(), apps.version()), ("apps", "v1"));
        assert_eq!(
            apps.gvk(),
            GroupVersionKind::gvk("apps", "v1", "Deployment")
        );
        let core = Kind {
            api_version: "v1".to_owned(),
            kind: "Secret".to_owned(),
        };
        assert_eq!((core.group(), core.version()), ("", "v1"));
    }

    #[test]
    fn the_default_websites_are_the_ones_the_world_makes() {
        let fixtures = themes(3);
        let mut rng = StdRng::seed_from_u64(7);
        let workload = Workload::websites(3);
        let mut object = workload
            .object(&context(&fixtures, "project-0"), &mut rng)
            .unwrap();
        let website = webhosting_operator::samples::random_websites(
            &mut rng,
            1,
            "project-0",
            "experiment",
            &fixtures["themes"],
            true,
        )
        .swap_remove(0);
        let mut made = serde_json::to_value(website).unwrap();
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        let suffix = name.strip_prefix("experiment-").unwrap();
        assert!(
            suffix.len() == 8 && suffix.chars().all(|c| c.is_ascii_lowercase()),
            "{name}"
        );
        assert!(fixtures["themes"].contains(&object["spec"]["theme"].as_str().unwrap().to_owned()));
        assert_eq!(object["metadata"]["labels"][LABEL_SKIP_WORKLOAD], "true");
        // Apart from the random name and Theme, the same object.
        for value in [&mut object, &mut made] {
            value["metadata"]["name"] = json!("experiment-x");
            value["spec"]["theme"] = json!("theme-x");
        }
        assert_eq!(object, made);
    }

    #[test]
    fn the_default_themes_are_the_ones_the_world_makes() {
        let workload = Workload::websites(6);
        assert_eq!(workload.fixtures.len(), 1);
        assert_eq!(workload.fixtures[0].name, "themes");
        let objects = workload.fixtures[0]
            .objects(&context(&BTreeMap::new(), ""))
            .unwrap();
        let expected: Vec<_> = [
            ("darkcyan", "Menlo"),
            ("crimson", "Georgia"),
            ("olive", "Verdana"),
            ("navy", "Menlo"),
            ("orchid", "Georgia"),
            ("darkcyan", "Verdana"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (color, font))| {
            let spec = ThemeSpec {
                color: (*color).to_owned(),
                font_family: (*font).to_owned(),
            };
            serde_json::to_value(Theme::new(&format!("theme-{i}"), spec)).unwrap()
        })
        .collect();
        assert_eq!(objects, expected);
    }

    #[test]
    fn the_default_workload_changes_the_theme_and_awaits_ready_at_the_generation() {
        let workload = Workload::websites(3);
        assert_eq!(workload.name, "websites");
        assert_eq!(workload.controller_ring, RING);
        assert_eq!(workload.weight, 1);
        assert!(workload.resource.namespaced);
        assert_eq!(
            workload.resource.kind.gvk(),
            GroupVersionKind::gvk("webhosting.timebertt.dev", "v1alpha1", "Website")
        );
        let owned: Vec<_> = workload
            .owned
            .iter()
            .map(|kind| kind.kind.as_str())
            .collect();
        assert_eq!(owned, ["ConfigMap", "Service", "Ingress", "Deployment"]);
        let fixtures = themes(3);
        let written = json!({"spec": {"theme": "theme-1"}});
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..10 {
            let context = Context {
                object: Some(&written),
                ..context(&fixtures, "project-0")
            };
            let Patch::Merge(patch) = workload.mutation(&context, &mut rng).unwrap() else {
                panic!("the default mutation is a merge patch");
            };
            let theme = patch["spec"]["theme"].as_str().unwrap();
            assert!(theme == "theme-0" || theme == "theme-2", "{theme}");
        }
        let ready = |phase| json!({"status": {"observedGeneration": 2, "phase": phase}});
        assert_eq!(
            workload.reconciled.reconciled_generation(&ready("Ready")),
            Some(2)
        );
        assert_eq!(
            workload.reconciled.reconciled_generation(&ready("Pending")),
            Some(0)
        );
    }

    #[test]
    fn the_default_workload_is_written_as_its_file_and_reads_back() {
        let workload = Workload::websites(4);
        let json = serde_json::to_string(&workload).unwrap();
        assert_eq!(parse_one(&json), workload);
        let value = serde_json::to_value(&workload).unwrap();
        assert_eq!(
            value["reconciled"],
            json!({"observedGeneration": true, "jsonPath": "{.status.phase}", "equals": "Ready"})
        );
        assert_eq!(value["fixtures"][0]["count"], 4);
    }

    #[test]
    fn an_object_gets_the_chosen_namespace_unless_it_has_one() {
        let workload = parse_one(CHECKSUM_SECRETS);
        let fixtures = BTreeMap::new();
        let mut rng = StdRng::seed_from_u64(1);
        let object = workload
            .object(&context(&fixtures, "team-a"), &mut rng)
            .unwrap();
        assert_eq!(object["metadata"]["namespace"], "team-a");
        let error = workload
            .object(&context(&fixtures, ""), &mut rng)
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "template: renders no metadata.namespace and the context has no namespace"
        );
        let mut own = workload.clone();
        own.template.text = own
            .template
            .text
            .replace("  name: secret-", "  namespace: mine\n  name: secret-");
        let object = own.object(&context(&fixtures, "team-a"), &mut rng).unwrap();
        assert_eq!(object["metadata"]["namespace"], "mine");
        own.template.text = own
            .template
            .text
            .replace("  name: secret-", "  generateName: secret-");
        let error = own
            .object(&context(&fixtures, "team-a"), &mut rng)
            .unwrap_err();
        assert!(
            error
                .problem
                .starts_with("renders metadata.generateName without metadata.name"),
            "{error}"
        );
    }

    #[test]
    fn a_seeded_rng_renders_the_same_object_and_patch() {
        let workload = parse_one(CHECKSUM_SECRETS);
        let fixtures = BTreeMap::new();
        let render = || {
            let mut rng = StdRng::seed_from_u64(42);
            let object = workload
                .object(&context(&fixtures, "team-a"), &mut rng)
                .unwrap();
            let context = Context {
                object: Some(&object),
                ..context(&fixtures, "team-a")
            };
            let patch = workload.mutation(&context, &mut rng).unwrap();
            (object.clone(), body(&patch))
        };
        let (object, patch) = render();
        assert_eq!(render(), (object.clone(), patch.clone()));
        assert_ne!(patch["data"]["password"], object["data"]["password"]);
    }

    #[test]
    fn a_json_mutation_is_a_json_patch() {
        let mut workload = parse_one(CHECKSUM_SECRETS);
        workload.mutations = vec![Mutation::Json(Template {
            text: "- {op: remove, path: /data/password}\n".to_owned(),
        })];
        let fixtures = BTreeMap::new();
        let object = json!({"data": {"password": "YQ=="}});
        let context = Context {
            object: Some(&object),
            ..context(&fixtures, "team-a")
        };
        let patch = workload
            .mutation(&context, &mut StdRng::seed_from_u64(1))
            .unwrap();
        assert_eq!(
            body(&patch),
            json!([{"op": "remove", "path": "/data/password"}])
        );
        assert!(matches!(patch, Patch::Json(_)));
    }

    #[test]
    fn the_docs_quote_the_default_workload_and_the_example() {
        let doc = include_str!("../../../docs/workloads.md");
        assert!(
            doc.contains(WEBSITES),
            "docs/workloads.md quotes websites.yaml"
        );
        assert!(
            doc.contains(CHECKSUM_SECRETS),
            "docs/workloads.md quotes the example"
        );
    }

    #[test]
    fn the_checksum_example_awaits_the_controllers_checksum_on_the_config_map() {
        let workload = parse_one(CHECKSUM_SECRETS);
        assert_eq!(workload.controller_ring, "checksum-controller");
        let fixtures = BTreeMap::new();
        let written = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "team-a", "generation": 1},
            "data": {"a": "Yg=="},
        });
        let awaited = workload
            .reconciled
            .awaited(&written, &context(&fixtures, "team-a"))
            .unwrap();
        // The checksum-controller's test of the same data: the SHA-256 of `{"a":"Yg=="}`.
        let checksum = "3d791b164a808638da9a8df03924be2a41e34cd664e42231c00fe369e3588272";
        assert_eq!(
            awaited,
            Awaited::Value {
                related: Some("team-a/db-checksum".to_owned()),
                expected: checksum.to_owned(),
            }
        );
        let config_map = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "db-checksum", "namespace": "team-a"},
            "data": {"checksum": checksum},
        });
        assert_eq!(
            workload.reconciled.observed_value(&config_map).as_deref(),
            Some(checksum)
        );
    }
}
