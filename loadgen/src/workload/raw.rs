//! A workload as a scenario file writes it, and its validation into a [`Workload`]
//! (docs/workloads.md#fields).
//!
//! As for the scenario (loadgen/src/scenario/raw.rs), every field is optional here so that a
//! missing one is reported by its path. Validation checks everything before anything starts:
//! the values, then that every template renders, with a sample context, into what its field
//! must hold.

use std::{collections::BTreeMap, path::Path};

use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Check, Condition, Context, Fixture, JsonPath, Kind, Locate, Mutation, Reconciled, Related,
    RenderError, Resource, Template, Workload, template,
};
use crate::scenario::rules::{self, Verdict};

/// The most objects of one fixture: every one is rendered when the scenario is read.
const MAX_FIXTURE_COUNT: u32 = 10_000;

/// The sample context's namespace and run.
const SAMPLE: &str = "sample";

/// One entry of `workloads`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawWorkload {
    /// A file that holds the whole workload, relative to the scenario file.
    file: Option<String>,
    name: Option<String>,
    resource: Option<RawResource>,
    controller_ring: Option<String>,
    weight: Option<i64>,
    fixtures: Option<Vec<RawFixture>>,
    template: Option<String>,
    mutations: Option<Vec<RawMutation>>,
    reconciled: Option<RawReconciled>,
    owned: Option<Vec<RawKind>>,
}

/// `resource`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawResource {
    api_version: Option<String>,
    kind: Option<String>,
    namespaced: Option<bool>,
}

/// An entry of `owned`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawKind {
    api_version: Option<String>,
    kind: Option<String>,
}

/// An entry of `fixtures`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawFixture {
    name: Option<String>,
    count: Option<i64>,
    template: Option<String>,
}

/// An entry of `mutations`: `merge` or `json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMutation {
    merge: Option<String>,
    json: Option<String>,
}

/// `reconciled`: one of three forms (docs/workloads.md#reconciled).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawReconciled {
    observed_generation: Option<bool>,
    condition: Option<RawCondition>,
    json_path: Option<String>,
    equals: Option<String>,
    related: Option<RawRelated>,
}

/// `reconciled.condition`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    #[serde(rename = "type")]
    type_: Option<String>,
    status: Option<String>,
}

/// `reconciled.related`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRelated {
    api_version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    owner_reference: Option<bool>,
    json_path: Option<String>,
    equals: Option<String>,
}

impl RawWorkload {
    /// Whether any field but `file` is set.
    fn has_fields(&self) -> bool {
        self.name.is_some()
            || self.resource.is_some()
            || self.controller_ring.is_some()
            || self.weight.is_some()
            || self.fixtures.is_some()
            || self.template.is_some()
            || self.mutations.is_some()
            || self.reconciled.is_some()
            || self.owned.is_some()
    }
}

/// The entries of `raws`, the list at `field`, with each `file` entry replaced by the workload
/// its file holds, read relative to `base`, the scenario file's directory
/// (docs/workloads.md#fields).
pub(crate) fn read_files(
    raws: Vec<RawWorkload>,
    base: &Path,
    field: &str,
) -> Result<Vec<RawWorkload>, RenderError> {
    raws.into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let Some(file) = &raw.file else {
                return Ok(raw);
            };
            let error = |problem: String| RenderError {
                field: format!("{field}[{i}].file"),
                problem,
            };
            if raw.has_fields() {
                return Err(error(
                    "is not allowed with other fields: the file holds the whole workload"
                        .to_owned(),
                ));
            }
            let path = base.join(file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| error(format!("cannot read {}: {e}", path.display())))?;
            let read: RawWorkload = serde_saphyr::from_str(&text)
                .map_err(|e| error(format!("{}: {e}", path.display())))?;
            if read.file.is_some() {
                return Err(error(format!(
                    "{}: a workload file cannot name another one",
                    path.display()
                )));
            }
            Ok(read)
        })
        .collect()
}

/// The workloads of `raws`, the list at `field` (`workloads`), checked: each on its own, their
/// names and fixture names unique, and every template rendered with a sample context (docs/
/// workloads.md#validation). The error's field is the full path, such as
/// `workloads[1].mutations[0].merge`.
pub(crate) fn validate(raws: Vec<RawWorkload>, field: &str) -> Result<Vec<Workload>, RenderError> {
    if raws.is_empty() {
        return Err(RenderError {
            field: field.to_owned(),
            problem: "must not be empty: leave it out for the default Website workload".to_owned(),
        });
    }
    let mut workloads: Vec<Workload> = Vec::with_capacity(raws.len());
    for (i, raw) in raws.into_iter().enumerate() {
        let at = At(format!("{field}[{i}]"));
        let workload = raw.validate(&at)?;
        if let Some(first) = workloads.iter().position(|w| w.name == workload.name) {
            return at.field(
                "name",
                Err(format!(
                    "{:?} is the name of {field}[{first}] too",
                    workload.name
                )),
            );
        }
        workloads.push(workload);
    }
    let namespaces = [SAMPLE.to_owned()];
    let mut fixtures = BTreeMap::new();
    let mut declared = BTreeMap::new();
    for (i, workload) in workloads.iter().enumerate() {
        for (j, fixture) in workload.fixtures.iter().enumerate() {
            let at = At(format!("{field}[{i}].fixtures[{j}]"));
            if let Some(first) = declared.insert(fixture.name.clone(), at.0.clone()) {
                return at.field(
                    "name",
                    Err(format!("{:?} is the name of {first} too", fixture.name)),
                );
            }
            let context = Context {
                index: 0,
                namespace: "",
                namespaces: &namespaces,
                run: SAMPLE,
                fixtures: &BTreeMap::new(),
                object: None,
            };
            let objects = fixture
                .objects(&context)
                .map_err(|error| error.within(&at.0))?;
            let names = objects
                .iter()
                .filter_map(|object| object.pointer("/metadata/name")?.as_str())
                .map(str::to_owned)
                .collect();
            fixtures.insert(fixture.name.clone(), names);
        }
    }
    for (i, workload) in workloads.iter().enumerate() {
        workload
            .check_renders(&namespaces, &fixtures)
            .map_err(|error| error.within(&format!("{field}[{i}]")))?;
    }
    Ok(workloads)
}

impl Workload {
    /// Renders every template with a sample context: index 0, the first namespace, the
    /// fixtures' names, a seeded rng; mutations and expected values with `object` the sample
    /// object.
    fn check_renders(
        &self,
        namespaces: &[String],
        fixtures: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), RenderError> {
        let mut rng = StdRng::seed_from_u64(0);
        let context = Context {
            index: 0,
            namespace: if self.resource.namespaced {
                &namespaces[0]
            } else {
                ""
            },
            namespaces,
            run: SAMPLE,
            fixtures,
            object: None,
        };
        let mut object = self.object(&context, &mut rng)?;
        as_the_api_server_returns_it(&mut object);
        let context = Context {
            object: Some(&object),
            ..context
        };
        for (i, mutation) in self.mutations.iter().enumerate() {
            mutation
                .render(&context, rng.next_u64())
                .map_err(|problem| RenderError {
                    field: format!("mutations[{i}].{}", mutation.field()),
                    problem,
                })?;
        }
        match &self.reconciled {
            // Rendered with the object as observed, whose status the sample lacks: only
            // checked to be a template.
            Reconciled::ObservedGeneration { check, .. } => {
                check.as_ref().map_or(Ok(()), |check| {
                    template::compile(&check.equals.text).map_err(|problem| RenderError {
                        field: "reconciled.equals".to_owned(),
                        problem,
                    })
                })
            }
            Reconciled::Own(_) | Reconciled::Related(_) => {
                self.reconciled.awaited(&object, &context).map(drop)
            }
        }
    }
}

/// Adds the metadata the API server sets on a create to the sample object, so that templates
/// may read them from `object`.
fn as_the_api_server_returns_it(object: &mut Value) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        let set = [
            ("uid", json!("00000000-0000-0000-0000-000000000000")),
            ("resourceVersion", json!("1")),
            ("generation", json!(1)),
            ("creationTimestamp", json!("2000-01-01T00:00:00Z")),
        ];
        for (key, value) in set {
            metadata.entry(key).or_insert(value);
        }
    }
}

/// The path of one workload or fixture; names its fields in errors.
struct At(String);

impl At {
    fn field<T>(&self, field: &str, verdict: Verdict<T>) -> Result<T, RenderError> {
        verdict.map_err(|problem| RenderError {
            field: format!("{}.{field}", self.0),
            problem,
        })
    }

    /// The value, or an error naming this path itself.
    fn here<T>(&self, verdict: Verdict<T>) -> Result<T, RenderError> {
        verdict.map_err(|problem| RenderError {
            field: self.0.clone(),
            problem,
        })
    }

    /// The path of `field` below this one.
    fn below(&self, field: &str) -> Self {
        Self(format!("{}.{field}", self.0))
    }
}

impl RawWorkload {
    fn validate(self, at: &At) -> Result<Workload, RenderError> {
        let name = at.field("name", rules::required(self.name).and_then(rules::name))?;
        let resource = at.field("resource", rules::required(self.resource))?;
        let resource = Resource {
            kind: kind(&at.below("resource"), resource.api_version, resource.kind)?,
            namespaced: resource.namespaced.unwrap_or(true),
        };
        let controller_ring = at.field(
            "controllerRing",
            rules::required(self.controller_ring).and_then(ring_name),
        )?;
        let weight = at.field(
            "weight",
            self.weight.map_or(Ok(1), |weight| rules::count(weight, 1)),
        )?;
        let fixtures = self
            .fixtures
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, raw)| raw.validate(&at.below(&format!("fixtures[{i}]"))))
            .collect::<Result<_, _>>()?;
        let template = at.field("template", rules::required(self.template).map(as_template))?;
        let mutations = at.field(
            "mutations",
            rules::required(self.mutations).and_then(|list| {
                if list.is_empty() {
                    Err("must have at least one mutation".to_owned())
                } else {
                    Ok(list)
                }
            }),
        )?;
        let mutations = mutations
            .into_iter()
            .enumerate()
            .map(|(i, raw)| at.field(&format!("mutations[{i}]"), raw.validate()))
            .collect::<Result<_, _>>()?;
        let reconciled = at.field("reconciled", rules::required(self.reconciled))?;
        let reconciled = reconciled.validate(&at.below("reconciled"))?;
        let owned = self
            .owned
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, raw)| kind(&at.below(&format!("owned[{i}]")), raw.api_version, raw.kind))
            .collect::<Result<_, _>>()?;
        Ok(Workload {
            name,
            resource,
            controller_ring,
            weight,
            fixtures,
            template,
            mutations,
            reconciled,
            owned,
        })
    }
}

impl RawFixture {
    fn validate(self, at: &At) -> Result<Fixture, RenderError> {
        Ok(Fixture {
            name: at.field("name", rules::required(self.name).and_then(fixture_name))?,
            count: at.field(
                "count",
                rules::required(self.count)
                    .and_then(|count| rules::count(count, 1))
                    .and_then(|count| {
                        if count > MAX_FIXTURE_COUNT {
                            Err(format!("must be at most {MAX_FIXTURE_COUNT}, got {count}"))
                        } else {
                            Ok(count)
                        }
                    }),
            )?,
            template: at.field("template", rules::required(self.template).map(as_template))?,
        })
    }
}

impl RawMutation {
    fn validate(self) -> Verdict<Mutation> {
        match (self.merge, self.json) {
            (Some(text), None) => Ok(Mutation::Merge(as_template(text))),
            (None, Some(text)) => Ok(Mutation::Json(as_template(text))),
            (Some(_), Some(_)) => Err("set either merge or json, not both".to_owned()),
            (None, None) => Err("set merge (a merge patch) or json (a JSON patch)".to_owned()),
        }
    }
}

impl RawReconciled {
    fn validate(self, at: &At) -> Result<Reconciled, RenderError> {
        if let Some(related) = self.related {
            let not_with_related = |field: &str, set: bool| {
                at.field(
                    field,
                    if set {
                        Err("is not allowed with related, which has its own".to_owned())
                    } else {
                        Ok(())
                    },
                )
            };
            not_with_related("observedGeneration", self.observed_generation.is_some())?;
            not_with_related("condition", self.condition.is_some())?;
            not_with_related("jsonPath", self.json_path.is_some())?;
            not_with_related("equals", self.equals.is_some())?;
            return related
                .validate(&at.below("related"))
                .map(Reconciled::Related);
        }
        let check = check(at, self.json_path, self.equals)?;
        if self.observed_generation == Some(true) {
            let condition = self
                .condition
                .map(|raw| {
                    let at = at.below("condition");
                    Ok(Condition {
                        type_: at.field("type", non_empty(raw.type_))?,
                        status: at.field("status", non_empty(raw.status))?,
                    })
                })
                .transpose()?;
            return Ok(Reconciled::ObservedGeneration { condition, check });
        }
        at.field(
            "condition",
            if self.condition.is_some() {
                Err("needs observedGeneration: true".to_owned())
            } else {
                Ok(())
            },
        )?;
        at.here(check.map(Reconciled::Own).ok_or_else(|| {
            "set observedGeneration: true, jsonPath with equals, or related".to_owned()
        }))
    }
}

impl RawRelated {
    fn validate(self, at: &At) -> Result<Related, RenderError> {
        let kind = kind(at, self.api_version, self.kind)?;
        let locate = at.here(match (self.name, self.owner_reference.unwrap_or(false)) {
            (Some(name), false) => Ok(Locate::Name(as_template(name))),
            (None, true) => Ok(Locate::OwnerReference),
            (Some(_), true) => Err("set either name or ownerReference: true, not both".to_owned()),
            (None, false) => Err("set name (a template) or ownerReference: true".to_owned()),
        })?;
        let check = check(at, self.json_path, self.equals)?;
        let check = at.field("jsonPath", check.ok_or_else(|| "is required".to_owned()))?;
        Ok(Related {
            kind,
            locate,
            check,
        })
    }
}

/// `jsonPath` with `equals`: both or neither; the path parses.
fn check(
    at: &At,
    json_path: Option<String>,
    equals: Option<String>,
) -> Result<Option<Check>, RenderError> {
    match (json_path, equals) {
        (Some(text), Some(equals)) => {
            let json_path = JsonPath { text };
            at.field("jsonPath", json_path.rfc9535())?;
            Ok(Some(Check {
                json_path,
                equals: as_template(equals),
            }))
        }
        (Some(_), None) => at.field("equals", Err("is required with jsonPath".to_owned())),
        (None, Some(_)) => at.field("jsonPath", Err("is required with equals".to_owned())),
        (None, None) => Ok(None),
    }
}

/// `apiVersion` and `kind` at `at`.
fn kind(at: &At, api_version: Option<String>, kind: Option<String>) -> Result<Kind, RenderError> {
    Ok(Kind {
        api_version: at.field(
            "apiVersion",
            non_empty(api_version).and_then(|text| {
                let parts: Vec<_> = text.split('/').collect();
                if parts.len() <= 2 && parts.iter().all(|part| !part.is_empty()) {
                    Ok(text)
                } else {
                    Err(format!("must be version or group/version, got {text:?}"))
                }
            }),
        )?,
        kind: at.field("kind", non_empty(kind))?,
    })
}

fn as_template(text: String) -> Template {
    Template { text }
}

/// Set and not empty.
fn non_empty(text: Option<String>) -> Verdict<String> {
    rules::required(text).and_then(|text| {
        if text.is_empty() {
            Err("must not be empty".to_owned())
        } else {
            Ok(text)
        }
    })
}

/// A ControllerRing's name: it is also the name part of the shard label
/// `shard.alpha.sharding.timebertt.dev/<ring>`, so at most 63 characters of `[a-z0-9.-]`,
/// beginning and ending with a letter or digit.
fn ring_name(text: String) -> Verdict<String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let alphanumeric =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if text.len() <= 63
        && text.chars().all(allowed)
        && alphanumeric(text.chars().next())
        && alphanumeric(text.chars().last())
    {
        Ok(text)
    } else {
        Err(format!(
            "must be a Kubernetes name of at most 63 characters [a-z0-9.-], beginning and ending \
             with a letter or digit, got {text:?}"
        ))
    }
}

/// A fixture's name is written `fixtures.<name>` in templates, so it is an identifier.
fn fixture_name(text: String) -> Verdict<String> {
    let mut chars = text.chars();
    let start = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if start && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        Ok(text)
    } else {
        Err(format!(
            "must match [a-z_][a-z0-9_]* (templates write fixtures.<name>), got {text:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid workload of ConfigMaps whose controller annotates each with its color.
    const CONFIG_MAPS: &str = r#"
- name: config-maps
  resource: {apiVersion: v1, kind: ConfigMap}
  controllerRing: example
  fixtures:
  - name: colors
    count: 2
    template: |
      apiVersion: example.com/v1
      kind: Color
      metadata:
        name: color-{{ index }}
  template: |
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: cm-{{ random_string(5) }}
    data:
      color: {{ choice(fixtures.colors) }}
  mutations:
  - merge: |
      data:
        color: {{ choice_except(fixtures.colors, object.data.color) }}
  - json: |
      - {op: replace, path: /data/color, value: "{{ object.data.color }}-x"}
  reconciled:
    jsonPath: "{.metadata.annotations.color}"
    equals: "{{ object.data.color }}"
"#;

    fn parse(text: &str) -> Result<Vec<Workload>, RenderError> {
        let raws: Vec<RawWorkload> = serde_saphyr::from_str(text).expect("the test's YAML parses");
        validate(raws, "workloads")
    }

    /// The error of `CONFIG_MAPS` with `from` replaced by `to`, as printed.
    fn error(from: &str, to: &str) -> String {
        let text = CONFIG_MAPS.replace(from, to);
        assert_ne!(text, CONFIG_MAPS, "{from}");
        parse(&text)
            .expect_err("the workload is invalid")
            .to_string()
    }

    #[test]
    fn a_valid_workload_takes_the_defaults() {
        let workload = parse(CONFIG_MAPS).unwrap().remove(0);
        assert_eq!(workload.name, "config-maps");
        assert!(workload.resource.namespaced);
        assert_eq!(workload.weight, 1);
        assert_eq!(workload.owned, []);
        assert_eq!(workload.fixtures[0].count, 2);
        assert_eq!(workload.mutations.len(), 2);
        assert!(matches!(workload.reconciled, Reconciled::Own(_)));
    }

    #[test]
    fn a_workload_needs_a_name_of_lowercase_letters_digits_and_dashes() {
        assert_eq!(
            error("- name: config-maps\n", "- weight: 1\n"),
            "workloads[0].name: is required"
        );
        assert_eq!(
            error("name: config-maps", "name: ConfigMaps"),
            "workloads[0].name: must match [a-z0-9-]+, got \"ConfigMaps\""
        );
    }

    #[test]
    fn workload_names_are_unique() {
        let text = format!(
            "{CONFIG_MAPS}{}",
            CONFIG_MAPS.replace("name: colors", "name: shades")
        );
        assert_eq!(
            parse(&text).unwrap_err().to_string(),
            "workloads[1].name: \"config-maps\" is the name of workloads[0] too"
        );
    }

    #[test]
    fn fixture_names_are_unique_across_workloads() {
        let text = format!(
            "{CONFIG_MAPS}{}",
            CONFIG_MAPS.replace("name: config-maps", "name: other")
        );
        assert_eq!(
            parse(&text).unwrap_err().to_string(),
            "workloads[1].fixtures[0].name: \"colors\" is the name of workloads[0].fixtures[0] too"
        );
    }

    #[test]
    fn the_resource_needs_an_api_version_and_a_kind() {
        let cases = [
            (
                "resource: {apiVersion: v1, kind: ConfigMap}",
                "weight: 1",
                "resource: is required",
            ),
            (
                "apiVersion: v1, kind",
                "apiVersion: '', kind",
                "resource.apiVersion: must not be empty",
            ),
            (
                "apiVersion: v1, kind",
                "apiVersion: a/b/c, kind",
                "resource.apiVersion: must be version or group/version, got \"a/b/c\"",
            ),
            ("kind: ConfigMap}", "}", "resource.kind: is required"),
        ];
        for (from, to, expected) in cases {
            assert_eq!(error(from, to), format!("workloads[0].{expected}"));
        }
    }

    #[test]
    fn the_controller_ring_is_a_kubernetes_name() {
        assert_eq!(
            error("  controllerRing: example\n", ""),
            "workloads[0].controllerRing: is required"
        );
        assert_eq!(
            error("controllerRing: example", "controllerRing: Example-"),
            "workloads[0].controllerRing: must be a Kubernetes name of at most 63 characters \
             [a-z0-9.-], beginning and ending with a letter or digit, got \"Example-\""
        );
    }

    #[test]
    fn the_weight_is_at_least_1() {
        assert_eq!(
            error(
                "controllerRing: example",
                "controllerRing: example\n  weight: 0"
            ),
            "workloads[0].weight: must be at least 1, got 0"
        );
    }

    #[test]
    fn a_fixture_has_an_identifier_a_count_and_a_template() {
        let cases = [
            (
                "name: colors",
                "name: my-colors",
                "fixtures[0].name: must match [a-z_][a-z0-9_]* (templates write \
                 fixtures.<name>), got \"my-colors\"",
            ),
            (
                "count: 2",
                "count: 0",
                "fixtures[0].count: must be at least 1, got 0",
            ),
            (
                "count: 2",
                "count: 10001",
                "fixtures[0].count: must be at most 10000, got 10001",
            ),
            (
                "name: color-{{ index }}",
                "labels: {}",
                "fixtures[0].template: at index 0: renders no metadata.name",
            ),
            (
                "name: color-{{ index }}",
                "name: {{ ['a'][index] }}",
                "fixtures[0].template: at index 1: undefined value: `(...)[...]` is undefined (line 4)",
            ),
            (
                "name: color-{{ index }}",
                "name: color-{{ random_string(3) }}",
                "fixtures[0].template: at index 0: unknown function: random_string is unknown \
                 (line 4)",
            ),
        ];
        for (from, to, expected) in cases {
            assert_eq!(error(from, to), format!("workloads[0].{expected}"));
        }
    }

    #[test]
    fn the_template_renders_an_object_of_the_resource_with_a_name() {
        let cases = [
            (
                "    kind: ConfigMap\n",
                "    kind: Secret\n",
                "template: renders kind Secret, the resource is ConfigMap",
            ),
            (
                "    apiVersion: v1\n    kind: ConfigMap",
                "    apiVersion: v2\n    kind: ConfigMap",
                "template: renders apiVersion v2, the resource is v1",
            ),
            (
                "name: cm-{{ random_string(5) }}",
                "labels: {}",
                "template: renders no metadata.name",
            ),
            (
                "{{ choice(fixtures.colors) }}",
                "{{ choice(fixtures.colours) }}",
                "template: invalid operation: choice: the list is undefined (line 6)",
            ),
            (
                "resource: {apiVersion: v1, kind: ConfigMap}",
                "resource: {apiVersion: v1, kind: ConfigMap, namespaced: false}\n  \
                 # the template sets a namespace below",
                "",
            ),
        ];
        for (from, to, expected) in &cases[..4] {
            assert_eq!(error(from, to), format!("workloads[0].{expected}"));
        }
        let (from, to, _) = cases[4];
        let cluster_scoped = CONFIG_MAPS.replace(from, to).replace(
            "      name: cm-",
            "      namespace: team-a\n      name: cm-",
        );
        assert_eq!(
            parse(&cluster_scoped).unwrap_err().to_string(),
            "workloads[0].template: renders metadata.namespace team-a, the resource is \
             cluster-scoped"
        );
    }

    #[test]
    fn a_workload_has_at_least_one_mutation_each_merge_or_json() {
        let mutations = CONFIG_MAPS.find("  mutations:").unwrap();
        let reconciled = CONFIG_MAPS.find("  reconciled:").unwrap();
        let without = &CONFIG_MAPS[mutations..reconciled];
        assert_eq!(error(without, ""), "workloads[0].mutations: is required");
        assert_eq!(
            error(without, "  mutations: []\n"),
            "workloads[0].mutations: must have at least one mutation"
        );
        assert_eq!(
            error("  - merge: |", "  - json: '[]'\n    merge: |"),
            "workloads[0].mutations[0]: set either merge or json, not both"
        );
        assert_eq!(
            error("  - merge: |", "  - {}\n  - merge: |"),
            "workloads[0].mutations[0]: set merge (a merge patch) or json (a JSON patch)"
        );
    }

    #[test]
    fn a_mutation_renders_into_its_kind_of_patch() {
        let cases = [
            (
                "object.data.color) }}",
                "objekt.data.color) }}",
                "mutations[0].merge: undefined value: `objekt` is undefined (line 2)",
            ),
            (
                "      data:\n        color: {{ choice_except",
                "      - {{ choice_except",
                "mutations[0].merge: renders a list, not a mapping",
            ),
            (
                "{op: replace,",
                "{op: rename,",
                "mutations[1].json: renders no JSON patch (RFC 6902): unknown variant `rename`, \
                 expected one of `add`, `remove`, `replace`, `move`, `copy`, `test`",
            ),
            (
                "- json: |\n      - {op",
                "- json: |\n      {op",
                "mutations[1].json: renders a mapping, not a list of operations",
            ),
        ];
        for (from, to, expected) in cases {
            assert_eq!(error(from, to), format!("workloads[0].{expected}"));
        }
    }

    #[test]
    fn reconciled_is_one_of_three_forms() {
        let own = "    jsonPath: \"{.metadata.annotations.color}\"\n    equals: \"{{ object.data.color }}\"\n";
        let cases = [
            (
                own,
                "    {}\n",
                "reconciled: set observedGeneration: true, jsonPath with equals, or related",
            ),
            (
                "    equals: \"{{ object.data.color }}\"\n",
                "",
                "reconciled.equals: is required with jsonPath",
            ),
            (
                "    jsonPath: \"{.metadata.annotations.color}\"\n",
                "",
                "reconciled.jsonPath: is required with equals",
            ),
            (
                own,
                "    condition: {type: Ready, status: \"True\"}\n",
                "reconciled.condition: needs observedGeneration: true",
            ),
            (
                own,
                "    observedGeneration: true\n    condition: {type: Ready}\n",
                "reconciled.condition.status: is required",
            ),
            (
                own,
                "    observedGeneration: true\n    related: {apiVersion: v1, kind: Secret, ownerReference: true, jsonPath: '{.a}', equals: b}\n",
                "reconciled.observedGeneration: is not allowed with related, which has its own",
            ),
            (
                "    jsonPath: \"{.metadata.annotations.color}\"\n",
                "    jsonPath: \"{.metadata.annotations[}\"\n",
                "reconciled.jsonPath: invalid JSONPath \"{.metadata.annotations[}\": ",
            ),
        ];
        for (from, to, expected) in cases {
            let error = error(from, to);
            assert!(
                error.starts_with(&format!("workloads[0].{expected}")),
                "{error}"
            );
        }
        assert_eq!(
            error(&format!("  reconciled:\n{own}"), ""),
            "workloads[0].reconciled: is required"
        );
    }

    #[test]
    fn unquoted_scalars_are_read_as_written() {
        let own = "    jsonPath: \"{.metadata.annotations.color}\"\n    equals: \"{{ object.data.color }}\"\n";
        let text = CONFIG_MAPS.replace(
            own,
            "    observedGeneration: true\n    condition: {type: Ready, status: True}\n    \
             jsonPath: '{.spec.replicas}'\n    equals: 3\n",
        );
        let Reconciled::ObservedGeneration {
            condition: Some(condition),
            check: Some(check),
        } = parse(&text).unwrap().remove(0).reconciled
        else {
            panic!("a generation rule with a condition and a check");
        };
        assert_eq!(condition.status, "True");
        assert_eq!(check.equals.text, "3");
    }

    #[test]
    fn a_related_object_is_found_by_name_or_by_owner_reference() {
        let own = "    jsonPath: \"{.metadata.annotations.color}\"\n    equals: \"{{ object.data.color }}\"\n";
        let related = |locate: &str| {
            format!(
                "    related:\n      apiVersion: v1\n      kind: Secret\n{locate}      jsonPath: \"{{.data.color}}\"\n      equals: \"{{{{ object.data.color | b64encode }}}}\"\n"
            )
        };
        let valid = CONFIG_MAPS.replace(own, &related("      ownerReference: true\n"));
        assert!(matches!(
            parse(&valid).unwrap()[0].reconciled,
            Reconciled::Related(Related {
                locate: Locate::OwnerReference,
                ..
            })
        ));
        let cases = [
            (
                "      name: x\n      ownerReference: true\n",
                "reconciled.related: set either name or ownerReference: true, not both",
            ),
            (
                "",
                "reconciled.related: set name (a template) or ownerReference: true",
            ),
            (
                "      ownerReference: false\n",
                "reconciled.related: set name (a template) or ownerReference: true",
            ),
            (
                "      name: \"{{ object.metadata.nam }}\"\n",
                "reconciled.related.name: undefined value: `object.metadata.nam` is undefined (line 1)",
            ),
            (
                "      name: \"{{ '' }}\"\n",
                "reconciled.related.name: renders an empty name",
            ),
        ];
        for (locate, expected) in cases {
            let text = CONFIG_MAPS.replace(own, &related(locate));
            assert_eq!(
                parse(&text).unwrap_err().to_string(),
                format!("workloads[0].{expected}")
            );
        }
        let without_check = CONFIG_MAPS.replace(
            own,
            "    related: {apiVersion: v1, kind: Secret, ownerReference: true}\n",
        );
        assert_eq!(
            parse(&without_check).unwrap_err().to_string(),
            "workloads[0].reconciled.related.jsonPath: is required"
        );
        let without_kind = CONFIG_MAPS.replace(
            own,
            "    related: {apiVersion: v1, ownerReference: true, jsonPath: '{.a}', equals: b}\n",
        );
        assert_eq!(
            parse(&without_kind).unwrap_err().to_string(),
            "workloads[0].reconciled.related.kind: is required"
        );
    }

    #[test]
    fn an_expected_value_renders_with_the_sample_object() {
        assert_eq!(
            error(
                "equals: \"{{ object.data.color }}\"",
                "equals: \"{{ object.data.colour }}\""
            ),
            "workloads[0].reconciled.equals: undefined value: `object.data.colour` is undefined \
             (line 1)"
        );
    }

    #[test]
    fn templates_may_read_what_the_api_server_sets() {
        let text = CONFIG_MAPS.replace(
            "equals: \"{{ object.data.color }}\"",
            "equals: \"{{ object.metadata.uid }}-{{ object.metadata.generation }}\"",
        );
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn a_generation_rules_expected_value_is_only_checked_to_be_a_template() {
        let own = "    jsonPath: \"{.metadata.annotations.color}\"\n    equals: \"{{ object.data.color }}\"\n";
        let rule = |equals: &str| {
            CONFIG_MAPS.replace(
                own,
                &format!("    observedGeneration: true\n    jsonPath: '{{.status.phase}}'\n    equals: \"{equals}\"\n"),
            )
        };
        // The sample object has no status; the observed one will.
        assert!(parse(&rule("{{ object.status.expected }}")).is_ok());
        let error = parse(&rule("{{ object.status.expected"))
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("workloads[0].reconciled.equals: syntax error: "),
            "{error}"
        );
    }

    #[test]
    fn owned_kinds_need_an_api_version_and_a_kind() {
        let text = format!("{CONFIG_MAPS}  owned:\n  - {{apiVersion: apps/v1}}\n");
        assert_eq!(
            parse(&text).unwrap_err().to_string(),
            "workloads[0].owned[0].kind: is required"
        );
    }

    #[test]
    fn an_empty_list_of_workloads_is_rejected() {
        assert_eq!(
            validate(Vec::new(), "workloads").unwrap_err().to_string(),
            "workloads: must not be empty: leave it out for the default Website workload"
        );
    }
}
