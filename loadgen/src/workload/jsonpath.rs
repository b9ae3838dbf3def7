//! JSONPath in either syntax (docs/workloads.md#jsonpath): kubectl's `{.status.phase}` is
//! turned into RFC 9535's `$.status.phase`, which jsonpath-rust evaluates.

use jsonpath_rust::{parser::parse_json_path, query::js_path_vals};
use serde_json::Value;

use super::JsonPath;

impl JsonPath {
    /// The expression in RFC 9535's syntax, checked to parse.
    pub(super) fn rfc9535(&self) -> Result<String, String> {
        let text = self.text.trim();
        // kubectl's `{...}` around the expression, and its relaxed start without `$`.
        let inner = text
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .unwrap_or(text)
            .trim();
        let expression = if inner.starts_with('$') {
            inner.to_owned()
        } else if inner.starts_with(['.', '[']) {
            format!("${inner}")
        } else {
            return Err(format!(
                "must be kubectl's {{.path}} or RFC 9535's $.path, got {:?}",
                self.text
            ));
        };
        parse_json_path(&expression)
            .map_err(|error| format!("invalid JSONPath {:?}: {error}", self.text))?;
        Ok(expression)
    }

    /// The value at the path in `object`: a string as it is, a number or boolean as its JSON
    /// text; `None` when the path matches nothing, more than one value, null, an object or a
    /// list.
    #[must_use]
    pub fn value(&self, object: &Value) -> Option<String> {
        let expression = self.rfc9535().ok()?;
        match js_path_vals(&expression, object).ok()?.as_slice() {
            [Value::String(text)] => Some(text.clone()),
            [value @ (Value::Number(_) | Value::Bool(_))] => Some(value.to_string()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(text: &str) -> JsonPath {
        JsonPath {
            text: text.to_owned(),
        }
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p", "labels": {"app.kubernetes.io/name": "web"}},
            "spec": {"replicas": 3, "paused": false},
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Initialized", "status": "True"},
                    {"type": "Ready", "status": "False"},
                ],
            },
        })
    }

    #[test]
    fn kubectls_syntax_reads_a_field() {
        assert_eq!(
            path("{.status.phase}").value(&pod()).as_deref(),
            Some("Running")
        );
        assert_eq!(
            path(".status.phase").value(&pod()).as_deref(),
            Some("Running")
        );
    }

    #[test]
    fn kubectls_filter_finds_a_condition() {
        let ready = path(r#"{.status.conditions[?(@.type=="Ready")].status}"#);
        assert_eq!(ready.value(&pod()).as_deref(), Some("False"));
    }

    #[test]
    fn rfc_9535s_syntax_reads_a_field_and_filters() {
        assert_eq!(
            path("$.status.phase").value(&pod()).as_deref(),
            Some("Running")
        );
        let ready = path("$.status.conditions[?@.type=='Initialized'].status");
        assert_eq!(ready.value(&pod()).as_deref(), Some("True"));
        let label = path("$.metadata.labels['app.kubernetes.io/name']");
        assert_eq!(label.value(&pod()).as_deref(), Some("web"));
    }

    #[test]
    fn numbers_and_booleans_read_as_their_json_text() {
        assert_eq!(path("{.spec.replicas}").value(&pod()).as_deref(), Some("3"));
        assert_eq!(
            path("{.spec.paused}").value(&pod()).as_deref(),
            Some("false")
        );
    }

    #[test]
    fn no_single_scalar_reads_as_none() {
        let pod = pod();
        for text in [
            "{.status.missing}",
            "{.status}",
            "{.status.conditions}",
            "{.status.conditions[*].status}",
        ] {
            assert_eq!(path(text).value(&pod), None, "{text}");
        }
        assert_eq!(path("{.a}").value(&json!({"a": null})), None);
    }

    #[test]
    fn an_expression_of_neither_syntax_is_rejected() {
        assert_eq!(
            path("status.phase").rfc9535(),
            Err("must be kubectl's {.path} or RFC 9535's $.path, got \"status.phase\"".to_owned())
        );
        let error = path("{.status[}").rfc9535().unwrap_err();
        assert!(
            error.starts_with("invalid JSONPath \"{.status[}\": "),
            "{error}"
        );
        assert_eq!(path("{.status.phase}").rfc9535().unwrap(), "$.status.phase");
    }
}
