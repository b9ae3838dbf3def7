//! CustomResourceDefinitions as checked in: kube's generated CRDs with their schemas brought
//! to those of the Go original, field for field (docs/compatibility.md).
//!
//! kube derives a schema from the Rust types; three things in it differ from what the
//! original's controller-gen emits, for every CRD, and are undone here in one place:
//! `spec` is required (the original accepts an object without it), every `Option` field is
//! `nullable` (the original has no nullable field), and the root has a `title`. What differs
//! per field (list and map types, validations of standard types) is set on the types with
//! the schema functions below.

use k8s_openapi::{
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector},
};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

/// The YAML of `crd` as checked in, after the schema fixes of this module.
///
/// # Panics
/// Never: a CRD always serializes to JSON, and JSON values to YAML.
#[must_use]
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    let mut crd = serde_json::to_value(crd).expect("a CRD serializes to JSON");
    if let Some(versions) = crd
        .pointer_mut("/spec/versions")
        .and_then(Value::as_array_mut)
    {
        for schema in versions
            .iter_mut()
            .filter_map(|version| version.pointer_mut("/schema/openAPIV3Schema"))
        {
            match_original(schema);
        }
    }
    format!(
        "---\n{}",
        serde_saphyr::to_string(&crd).expect("JSON values serialize to YAML")
    )
}

/// Removes from the root `schema` of a CRD version what kube adds and controller-gen does not.
fn match_original(schema: &mut Value) {
    let Some(root) = schema.as_object_mut() else {
        return;
    };
    root.remove("title");
    if let Some(Value::Array(required)) = root.get_mut("required") {
        required.retain(|field| field != "spec");
        if required.is_empty() {
            root.remove("required");
        }
    }
    remove_nullable(schema);
}

fn remove_nullable(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            object.remove("nullable");
            object.values_mut().for_each(remove_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(remove_nullable),
        _ => {}
    }
}

/// The schema of a `metav1.LabelSelector` field as controller-gen emits it: an atomic map
/// whose lists are atomic, so that a server-side apply replaces the selector as a whole.
pub fn atomic_label_selector(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = LabelSelector::json_schema(generator);
    extend(&mut schema, "", json!({"x-kubernetes-map-type": "atomic"}));
    for list in [
        "/properties/matchExpressions",
        "/properties/matchExpressions/items/properties/values",
    ] {
        extend(
            &mut schema,
            list,
            json!({"x-kubernetes-list-type": "atomic"}),
        );
    }
    schema
}

/// The schema of a `[]metav1.Condition` field as controller-gen emits it: a list map keyed
/// by `type`, whose items carry the validation that `metav1.Condition` declares.
pub fn conditions(generator: &mut SchemaGenerator) -> Schema {
    let mut items = Condition::json_schema(generator);
    for (property, validation) in [
        ("message", json!({"maxLength": 32768})),
        ("observedGeneration", json!({"minimum": 0})),
        (
            "reason",
            json!({
                "maxLength": 1024,
                "minLength": 1,
                "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            }),
        ),
        ("status", json!({"enum": ["True", "False", "Unknown"]})),
        (
            "type",
            json!({
                "maxLength": 316,
                "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            }),
        ),
    ] {
        extend(&mut items, &format!("/properties/{property}"), validation);
    }
    schemars::json_schema!({
        "type": "array",
        "items": items,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}

/// Adds the members of `entries` to the object at `pointer` in `schema`, if there is one.
fn extend(schema: &mut Schema, pointer: &str, entries: Value) {
    if let (Some(Value::Object(object)), Value::Object(entries)) =
        (schema.pointer_mut(pointer), entries)
    {
        object.extend(entries);
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, path::Path};

    use serde_json::Map;

    use super::*;

    /// The facts compared, by schema keyword: the notation of
    /// `testdata/original-crd-schemas.yaml`.
    const FACTS: [(&str, &str); 13] = [
        ("type", "type"),
        ("format", "format"),
        ("required", "required"),
        ("enum", "enum"),
        ("pattern", "pattern"),
        ("minLength", "minLength"),
        ("maxLength", "maxLength"),
        ("minimum", "minimum"),
        ("maximum", "maximum"),
        ("nullable", "nullable"),
        ("x-kubernetes-list-type", "listType"),
        ("x-kubernetes-list-map-keys", "listKeys"),
        ("x-kubernetes-map-type", "mapType"),
    ];

    /// Keywords that are not facts: descriptions, and those [`fields`] descends into.
    const STRUCTURE: [&str; 5] = [
        "description",
        "properties",
        "items",
        "additionalProperties",
        "x-kubernetes-validations",
    ];

    /// Adds the facts of `schema` at `path` and of its descendants to `out`.
    fn fields(schema: &Map<String, Value>, path: &str, out: &mut Map<String, Value>) {
        let mut facts = Map::new();
        for (keyword, value) in schema {
            if STRUCTURE.contains(&keyword.as_str()) {
                continue;
            }
            let (_, fact) = FACTS
                .iter()
                .find(|(known, _)| known == keyword)
                .unwrap_or_else(|| panic!("{path}: keyword {keyword} is not compared yet"));
            let value = match (keyword.as_str(), value) {
                ("required", Value::Array(required)) => {
                    let mut required = required.clone();
                    required.sort_by_key(ToString::to_string);
                    Value::Array(required)
                }
                _ => value.clone(),
            };
            facts.insert((*fact).to_owned(), value);
        }
        if let Some(Value::Array(rules)) = schema.get("x-kubernetes-validations") {
            let rules = rules.iter().map(|rule| rule["rule"].clone()).collect();
            facts.insert("rules".to_owned(), Value::Array(rules));
        }
        out.insert(path.to_owned(), Value::Object(facts));

        let child = |name: &str| match path {
            "." => name.to_owned(),
            _ => format!("{path}{name}"),
        };
        for (name, property) in schema
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if path == "." && ["apiVersion", "kind", "metadata"].contains(&name.as_str()) {
                continue;
            }
            let name = if path == "." {
                name.clone()
            } else {
                format!(".{name}")
            };
            fields(property.as_object().unwrap(), &child(&name), out);
        }
        if let Some(Value::Object(items)) = schema.get("items") {
            fields(items, &child("[]"), out);
        }
        if let Some(Value::Object(values)) = schema.get("additionalProperties") {
            fields(values, &child(".*"), out);
        }
    }

    /// The CRD in `yaml` in the notation of `testdata/original-crd-schemas.yaml`.
    fn describe(yaml: &str) -> (String, Value) {
        let crd: Value = serde_saphyr::from_str(yaml).unwrap();
        let spec = &crd["spec"];
        let mut versions = Map::new();
        for version in spec["versions"].as_array().unwrap() {
            let mut facts = Map::new();
            fields(
                version["schema"]["openAPIV3Schema"].as_object().unwrap(),
                ".",
                &mut facts,
            );
            let mut subresources: Vec<_> = version["subresources"]
                .as_object()
                .into_iter()
                .flat_map(Map::keys)
                .cloned()
                .collect();
            subresources.sort();
            let columns: Vec<_> = version["additionalPrinterColumns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|column| {
                    let text = |key: &str| column[key].as_str().unwrap_or_default().to_owned();
                    format!("{} ({}): {}", text("name"), text("type"), text("jsonPath"))
                })
                .collect();
            versions.insert(
                version["name"].as_str().unwrap().to_owned(),
                json!({
                    "served": version["served"],
                    "storage": version["storage"],
                    "subresources": subresources,
                    "columns": columns,
                    "fields": facts,
                }),
            );
        }
        let description = json!({
            "scope": spec["scope"],
            "kind": spec["names"]["kind"],
            "plural": spec["names"]["plural"],
            "singular": spec["names"]["singular"],
            "versions": versions,
        });
        (
            crd["metadata"]["name"].as_str().unwrap().to_owned(),
            numbers_as_floats(description),
        )
    }

    /// `value` with every number a float, so that `0` and `0.0` compare equal.
    fn numbers_as_floats(value: Value) -> Value {
        match value {
            Value::Number(number) => json!(number.as_f64()),
            Value::Array(items) => Value::Array(items.into_iter().map(numbers_as_floats).collect()),
            Value::Object(object) => Value::Object(
                object
                    .into_iter()
                    .map(|(key, value)| (key, numbers_as_floats(value)))
                    .collect(),
            ),
            other => other,
        }
    }

    #[test]
    fn the_checked_in_crds_have_the_original_schemas() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let original: BTreeMap<String, Value> = serde_saphyr::from_str(
            &std::fs::read_to_string(
                root.join("crates/sharding/testdata/original-crd-schemas.yaml"),
            )
            .unwrap(),
        )
        .unwrap();
        let ours: BTreeMap<String, Value> = [
            "config/crds/sharding.timebertt.dev_controllerrings.yaml",
            "webhosting-operator/config/crds/webhosting.timebertt.dev_themes.yaml",
            "webhosting-operator/config/crds/webhosting.timebertt.dev_websites.yaml",
        ]
        .into_iter()
        .map(|file| describe(&std::fs::read_to_string(root.join(file)).unwrap()))
        .collect();

        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            original.keys().collect::<Vec<_>>()
        );
        for (name, original) in original {
            let original = numbers_as_floats(original);
            let ours = &ours[&name];
            for (version, original) in original["versions"].as_object().unwrap() {
                let ours = &ours["versions"][version];
                let (original_fields, our_fields) = (&original["fields"], &ours["fields"]);
                let paths: std::collections::BTreeSet<_> = original_fields
                    .as_object()
                    .unwrap()
                    .keys()
                    .chain(our_fields.as_object().unwrap().keys())
                    .collect();
                for path in paths {
                    assert_eq!(
                        our_fields.get(path),
                        original_fields.get(path),
                        "{name} {version}: field {path} differs from the original's"
                    );
                }
            }
            assert_eq!(*ours, original, "{name} differs from the original's");
        }
    }

    #[test]
    fn kubes_additions_are_removed_from_the_root_only_where_the_original_lacks_them() {
        let mut schema = json!({
            "title": "Thing",
            "required": ["spec", "other"],
            "properties": {"spec": {"nullable": true, "properties": {"a": {"nullable": true}}}},
        });
        match_original(&mut schema);
        assert_eq!(
            schema,
            json!({"required": ["other"], "properties": {"spec": {"properties": {"a": {}}}}})
        );
    }
}
