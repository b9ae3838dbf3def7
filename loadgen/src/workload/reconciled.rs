//! The readiness rules (docs/workloads.md#reconciled): what a write awaits, and what an
//! observed object shows.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    Awaited, Check, Context, Kind, Locate, Reconciled, Related, RenderError, object_key, template,
};

/// The fixtures of the context an observed object's check is rendered in: none.
static NO_FIXTURES: BTreeMap<String, Vec<String>> = BTreeMap::new();

impl Reconciled {
    /// What `written`, just returned by the API server, awaits.
    ///
    /// # Errors
    /// The rule needs a `metadata.generation` the object lacks, or a template does not render.
    pub fn awaited(&self, written: &Value, context: &Context<'_>) -> Result<Awaited, RenderError> {
        let context = Context {
            object: Some(written),
            ..*context
        };
        match self {
            Self::ObservedGeneration { .. } => written
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .map(Awaited::Generation)
                .ok_or_else(|| RenderError {
                    field: "reconciled.observedGeneration".to_owned(),
                    problem: "the written object has no metadata.generation: its resource does \
                              not count generations, await a jsonPath instead"
                        .to_owned(),
                }),
            Self::Own(check) => Ok(Awaited::Value {
                related: None,
                expected: check.expected(&context, "reconciled.equals")?,
            }),
            Self::Related(related) => {
                let key = match &related.locate {
                    Locate::Name(name) => {
                        let name = template::render(&name.text, &context, None)
                            .and_then(|name| {
                                if name.is_empty() {
                                    Err("renders an empty name".to_owned())
                                } else {
                                    Ok(name)
                                }
                            })
                            .map_err(|problem| RenderError {
                                field: "reconciled.related.name".to_owned(),
                                problem,
                            })?;
                        Some(object_key(namespace_of(written), &name))
                    }
                    Locate::OwnerReference => None,
                };
                Ok(Awaited::Value {
                    related: key,
                    expected: related
                        .check
                        .expected(&context, "reconciled.related.equals")?,
                })
            }
        }
    }

    /// For [`Reconciled::ObservedGeneration`]: the generation `observed` is reconciled at
    /// (its `status.observedGeneration` when the condition and check hold), 0 when it is not;
    /// `None` for the other rules.
    #[must_use]
    pub fn reconciled_generation(&self, observed: &Value) -> Option<i64> {
        let Self::ObservedGeneration { condition, check } = self else {
            return None;
        };
        let generation = observed
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let condition_holds = condition.as_ref().is_none_or(|condition| {
            observed
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|conditions| {
                    conditions.iter().any(|found| {
                        found.get("type").and_then(Value::as_str) == Some(&condition.type_)
                            && found.get("status").and_then(Value::as_str)
                                == Some(&condition.status)
                    })
                })
        });
        let check_holds = check.as_ref().is_none_or(|check| {
            let expected = check.expected(&observed_context(observed), "reconciled.equals");
            expected.is_ok_and(|expected| check.json_path.value(observed) == Some(expected))
        });
        Some(if condition_holds && check_holds {
            generation
        } else {
            0
        })
    }

    /// For [`Reconciled::Own`] and [`Reconciled::Related`]: the value at the rule's JSONPath in
    /// `observed` (the object itself, or the related one).
    #[must_use]
    pub fn observed_value(&self, observed: &Value) -> Option<String> {
        match self {
            Self::ObservedGeneration { .. } => None,
            Self::Own(check) | Self::Related(Related { check, .. }) => {
                check.json_path.value(observed)
            }
        }
    }

    /// The related object's kind, when the rule has one.
    #[must_use]
    pub fn related(&self) -> Option<&Related> {
        match self {
            Self::Related(related) => Some(related),
            Self::ObservedGeneration { .. } | Self::Own(_) => None,
        }
    }
}

impl Related {
    /// For [`Locate::OwnerReference`]: the `namespace/name` of the object of kind `owner`
    /// that `observed` names as its controller; `None` when it names none.
    #[must_use]
    pub fn owner_key(&self, observed: &Value, owner: &Kind) -> Option<String> {
        let references = observed
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)?;
        let controller = references.iter().find(|reference| {
            reference.get("controller").and_then(Value::as_bool) == Some(true)
                && reference.get("apiVersion").and_then(Value::as_str) == Some(&owner.api_version)
                && reference.get("kind").and_then(Value::as_str) == Some(&owner.kind)
        })?;
        let name = controller.get("name").and_then(Value::as_str)?;
        Some(object_key(namespace_of(observed), name))
    }
}

impl Check {
    /// `equals` rendered with `context`; `field` names it in the error.
    pub(super) fn expected(
        &self,
        context: &Context<'_>,
        field: &str,
    ) -> Result<String, RenderError> {
        template::render(&self.equals.text, context, None).map_err(|problem| RenderError {
            field: field.to_owned(),
            problem,
        })
    }
}

/// What the check of [`Reconciled::ObservedGeneration`] sees: the observed object, and empty
/// values for the rest, since the observer knows nothing of the write.
fn observed_context(observed: &Value) -> Context<'_> {
    Context {
        index: 0,
        namespace: namespace_of(observed),
        namespaces: &[],
        run: "",
        fixtures: &NO_FIXTURES,
        object: Some(observed),
    }
}

/// `metadata.namespace`, empty for a cluster-scoped object.
fn namespace_of(object: &Value) -> &str {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::workload::{Condition, JsonPath, Template};

    fn check(json_path: &str, equals: &str) -> Check {
        Check {
            json_path: JsonPath {
                text: json_path.to_owned(),
            },
            equals: Template {
                text: equals.to_owned(),
            },
        }
    }

    fn context(fixtures: &BTreeMap<String, Vec<String>>) -> Context<'_> {
        Context {
            index: 3,
            namespace: "team-a",
            namespaces: &[],
            run: "run-1",
            fixtures,
            object: None,
        }
    }

    fn website(generation: i64, observed: i64, phase: &str) -> Value {
        json!({
            "metadata": {"name": "w", "namespace": "team-a", "generation": generation},
            "status": {"observedGeneration": observed, "phase": phase,
                       "conditions": [{"type": "Ready", "status": "True"}]},
        })
    }

    fn secret(data: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "team-a", "uid": "u-1"},
            "data": {"password": data},
        })
    }

    fn config_map(checksum: &str, owner: &Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "db-checksum", "namespace": "team-a", "ownerReferences": [owner]},
            "data": {"checksum": checksum},
        })
    }

    fn secret_owner(controller: bool) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "name": "db", "uid": "u-1", "controller": controller})
    }

    #[test]
    fn a_generation_rule_awaits_the_written_generation() {
        let rule = Reconciled::ObservedGeneration {
            condition: None,
            check: None,
        };
        let fixtures = BTreeMap::new();
        assert_eq!(
            rule.awaited(&website(4, 0, ""), &context(&fixtures)),
            Ok(Awaited::Generation(4))
        );
        let error = rule
            .awaited(&json!({"metadata": {"name": "w"}}), &context(&fixtures))
            .unwrap_err();
        assert_eq!(error.field, "reconciled.observedGeneration");
        assert!(error.problem.contains("no metadata.generation"), "{error}");
    }

    #[test]
    fn a_generation_rule_is_reconciled_at_the_observed_generation() {
        let rule = Reconciled::ObservedGeneration {
            condition: None,
            check: None,
        };
        assert_eq!(rule.reconciled_generation(&website(4, 3, "")), Some(3));
        assert_eq!(
            rule.reconciled_generation(&json!({"metadata": {"name": "w"}})),
            Some(0)
        );
    }

    #[test]
    fn a_generation_rule_with_a_check_needs_the_value_too() {
        let rule = Reconciled::ObservedGeneration {
            condition: None,
            check: Some(check("{.status.phase}", "Ready")),
        };
        assert_eq!(rule.reconciled_generation(&website(4, 4, "Ready")), Some(4));
        assert_eq!(
            rule.reconciled_generation(&website(4, 4, "Pending")),
            Some(0)
        );
        // The expectation renders with the observed object.
        let rule = Reconciled::ObservedGeneration {
            condition: None,
            check: Some(check("{.status.phase}", "{{ object.metadata.name }}")),
        };
        assert_eq!(rule.reconciled_generation(&website(2, 2, "w")), Some(2));
    }

    #[test]
    fn a_generation_rule_with_a_condition_needs_its_status() {
        let rule = |status: &str| Reconciled::ObservedGeneration {
            condition: Some(Condition {
                type_: "Ready".to_owned(),
                status: status.to_owned(),
            }),
            check: None,
        };
        assert_eq!(
            rule("True").reconciled_generation(&website(2, 2, "")),
            Some(2)
        );
        assert_eq!(
            rule("False").reconciled_generation(&website(2, 2, "")),
            Some(0)
        );
        let without_conditions = json!({"status": {"observedGeneration": 2}});
        assert_eq!(
            rule("True").reconciled_generation(&without_conditions),
            Some(0)
        );
    }

    #[test]
    fn an_own_value_rule_awaits_the_value_rendered_from_the_written_object() {
        let rule = Reconciled::Own(check(
            "{.metadata.annotations.seen}",
            "{{ object.spec.color }}-{{ index }}",
        ));
        let fixtures = BTreeMap::new();
        let written = json!({"metadata": {"name": "c"}, "spec": {"color": "red"}});
        assert_eq!(
            rule.awaited(&written, &context(&fixtures)),
            Ok(Awaited::Value {
                related: None,
                expected: "red-3".to_owned(),
            })
        );
        let observed = json!({"metadata": {"annotations": {"seen": "red-3"}}});
        assert_eq!(rule.observed_value(&observed).as_deref(), Some("red-3"));
        assert_eq!(rule.reconciled_generation(&observed), None);
        assert!(rule.related().is_none());
    }

    #[test]
    fn a_related_rule_by_name_awaits_a_value_on_the_named_object() {
        let rule = Reconciled::Related(Related {
            kind: Kind {
                api_version: "v1".to_owned(),
                kind: "ConfigMap".to_owned(),
            },
            locate: Locate::Name(Template {
                text: "{{ object.metadata.name }}-checksum".to_owned(),
            }),
            check: check("{.data.checksum}", "{{ object.data | json | sha256 }}"),
        });
        let fixtures = BTreeMap::new();
        // printf '{"password":"aHVudGVyMg=="}' | sha256sum
        let expected = "ba3b27ff42274af9b5c4178c3c8c41309639ca29a17a82be6d3e9f40057673de";
        let awaited = rule
            .awaited(&secret("aHVudGVyMg=="), &context(&fixtures))
            .unwrap();
        let Awaited::Value {
            related,
            expected: rendered,
        } = awaited
        else {
            panic!("a related rule awaits a value");
        };
        assert_eq!(related.as_deref(), Some("team-a/db-checksum"));
        assert_eq!(rendered, expected);
        let observed = config_map(&rendered, &secret_owner(true));
        assert_eq!(rule.observed_value(&observed), Some(rendered));
        assert_eq!(rule.related().unwrap().kind.kind, "ConfigMap");
    }

    #[test]
    fn a_related_rule_by_owner_reference_finds_the_controlling_owner() {
        let related = Related {
            kind: Kind {
                api_version: "v1".to_owned(),
                kind: "ConfigMap".to_owned(),
            },
            locate: Locate::OwnerReference,
            check: check("{.data.checksum}", "x"),
        };
        let secret_kind = Kind {
            api_version: "v1".to_owned(),
            kind: "Secret".to_owned(),
        };
        let fixtures = BTreeMap::new();
        let rule = Reconciled::Related(related.clone());
        assert_eq!(
            rule.awaited(&secret("YQ=="), &context(&fixtures)),
            Ok(Awaited::Value {
                related: None,
                expected: "x".to_owned(),
            })
        );
        let owned = config_map("x", &secret_owner(true));
        assert_eq!(
            related.owner_key(&owned, &secret_kind).as_deref(),
            Some("team-a/db")
        );
        let not_controller = config_map("x", &secret_owner(false));
        assert_eq!(related.owner_key(&not_controller, &secret_kind), None);
        let other_kind = Kind {
            api_version: "v1".to_owned(),
            kind: "Service".to_owned(),
        };
        assert_eq!(related.owner_key(&owned, &other_kind), None);
        let unowned = json!({"metadata": {"name": "db-checksum", "namespace": "team-a"}});
        assert_eq!(related.owner_key(&unowned, &secret_kind), None);
    }
}
