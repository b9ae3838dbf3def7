//! Rendering of templates (docs/workloads.md#templates): minijinja with strict undefined values,
//! so that a misspelt placeholder is an error rather than an empty string, and loadgen's
//! functions and filters.
//!
//! Randomness comes from a seed the caller draws from its rng, so a seeded rng renders the same
//! text every time. Without a seed (fixtures, expected values, related names) the random
//! functions do not exist: those templates must render the same text every time.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{Arc, Mutex, PoisonError},
};

use base64::Engine as _;
use minijinja::{
    Environment, Error, ErrorKind, UndefinedBehavior,
    value::{Serde, ValueKind},
};
use rand::{RngExt as _, SeedableRng as _, rngs::StdRng, seq::IndexedRandom as _};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::Context;

/// The longest `random_string`: a typo such as `random_string(80000000)` fails rather than
/// filling memory.
const MAX_RANDOM_STRING: usize = 1024;

/// The variables a template sees, as [`Context`] documents them.
#[derive(Serialize)]
struct Variables<'a> {
    index: u64,
    namespace: &'a str,
    namespaces: &'a [String],
    run: &'a str,
    fixtures: &'a BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<&'a Value>,
}

/// `text` rendered with `context`; with `seed`, the random functions draw from an rng seeded
/// with it. The error quotes the template engine, with the line.
pub(super) fn render(
    text: &str,
    context: &Context<'_>,
    seed: Option<u64>,
) -> Result<String, String> {
    // The observer evaluates readiness rules on every watch event; most expected values are
    // plain text, which renders as itself (less the one trailing newline minijinja drops).
    if !text.contains(['{', '}']) {
        return Ok(text.strip_suffix('\n').unwrap_or(text).to_owned());
    }
    let variables = Variables {
        index: context.index,
        namespace: context.namespace,
        namespaces: context.namespaces,
        run: context.run,
        fixtures: context.fixtures,
        object: context.object,
    };
    environment(seed)
        .render_str(text, minijinja::Value::from(Serde(&variables)))
        .map_err(|error| describe(&error))
}

/// Whether `text` is a template, without rendering it.
pub(super) fn compile(text: &str) -> Result<(), String> {
    environment(None)
        .template_from_str(text)
        .map(drop)
        .map_err(|error| describe(&error))
}

/// `text` rendered, then read as YAML.
pub(super) fn render_yaml(
    text: &str,
    context: &Context<'_>,
    seed: Option<u64>,
) -> Result<Value, String> {
    let rendered = render(text, context, seed)?;
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options(&rendered, options)
        .map_err(|error| format!("renders no YAML: {error}"))
}

/// The engine's message with the line, without the name minijinja gives a template from a
/// string.
fn describe(error: &Error) -> String {
    let mut text = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    if let Some(line) = error.line() {
        let _ = write!(text, " (line {line})");
    }
    text
}

fn environment(seed: Option<u64>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("b64encode", |text: &str| {
        base64::engine::general_purpose::STANDARD.encode(text)
    });
    env.add_filter("sha256", |text: &str| sha256(text));
    env.add_filter("json", |value: minijinja::Value| {
        // Not `null`: a missing field would render a value that no object shows.
        if value.is_undefined() {
            return Err(invalid("json: the value is undefined".to_owned()));
        }
        serde_json::to_value(&value)
            .map(|value| canonical_json(&value))
            .map_err(|error| Error::new(ErrorKind::InvalidOperation, error.to_string()))
    });
    if let Some(seed) = seed {
        let rng = Shared(Arc::new(Mutex::new(StdRng::seed_from_u64(seed))));
        let shared = rng.clone();
        env.add_function("random_string", move |n: usize| {
            if n > MAX_RANDOM_STRING {
                return Err(invalid(format!(
                    "random_string: n must be at most {MAX_RANDOM_STRING}, got {n}"
                )));
            }
            Ok(shared.with(|rng| {
                (0..n)
                    .map(|_| rng.random_range('a'..='z'))
                    .collect::<String>()
            }))
        });
        let shared = rng.clone();
        env.add_function("random_int", move |lo: i64, hi: i64| {
            if lo > hi {
                return Err(invalid(format!(
                    "random_int: lo must not be above hi, got {lo} and {hi}"
                )));
            }
            Ok(shared.with(|rng| rng.random_range(lo..=hi)))
        });
        let shared = rng.clone();
        env.add_function("choice", move |list: minijinja::Value| {
            let list = items("choice", &list)?;
            shared
                .with(|rng| list.choose(rng).cloned())
                .ok_or_else(|| invalid("choice: the list is empty".to_owned()))
        });
        env.add_function(
            "choice_except",
            move |list: minijinja::Value, value: minijinja::Value| {
                let others: Vec<_> = items("choice_except", &list)?
                    .into_iter()
                    .filter(|item| *item != value)
                    .collect();
                Ok(rng.with(|rng| others.choose(rng).cloned()).unwrap_or(value))
            },
        );
    }
    env
}

/// The rng of one rendering, shared by its functions.
#[derive(Clone)]
struct Shared(Arc<Mutex<StdRng>>);

impl Shared {
    fn with<T>(&self, draw: impl FnOnce(&mut StdRng) -> T) -> T {
        draw(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The items of `function`'s list argument. minijinja's own conversion says only "not
/// iterable", also of a misspelt `fixtures.<name>`.
fn items(function: &str, list: &minijinja::Value) -> Result<Vec<minijinja::Value>, Error> {
    if list.is_undefined() {
        return Err(invalid(format!("{function}: the list is undefined")));
    }
    match list.kind() {
        ValueKind::Seq => Ok(list.try_iter()?.collect()),
        kind => Err(invalid(format!("{function}: expects a list, got {kind}"))),
    }
}

fn invalid(problem: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, problem)
}

/// The lowercase hex SHA-256 of `text`'s UTF-8 bytes.
fn sha256(text: &str) -> String {
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(text.as_bytes()) {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// `value` as canonical JSON: keys sorted, no whitespace, no escapes beyond JSON's own (as
/// `jq -cS` writes it), so that a hash of it can be computed elsewhere.
pub(super) fn canonical_json(value: &Value) -> String {
    let mut text = String::new();
    write_canonical(value, &mut text);
    text
}

fn write_canonical(value: &Value, text: &mut String) {
    match value {
        Value::Object(map) => {
            // Sorted here: serde_json keeps insertion order when another crate turns on
            // its `preserve_order`.
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by_key(|(key, _)| *key);
            text.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&Value::from(key.as_str()).to_string());
                text.push(':');
                write_canonical(value, text);
            }
            text.push('}');
        }
        Value::Array(items) => {
            text.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                write_canonical(item, text);
            }
            text.push(']');
        }
        scalar => text.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context<'a>(
        fixtures: &'a BTreeMap<String, Vec<String>>,
        object: Option<&'a Value>,
    ) -> Context<'a> {
        Context {
            index: 7,
            namespace: "project-1",
            namespaces: &[],
            run: "run-1",
            fixtures,
            object,
        }
    }

    fn plain(text: &str) -> Result<String, String> {
        render(text, &context(&BTreeMap::new(), None), Some(1))
    }

    #[test]
    fn variables_render_into_the_text() {
        let fixtures = BTreeMap::from([("themes".to_owned(), vec!["theme-0".to_owned()])]);
        let object = json!({"spec": {"theme": "theme-0"}});
        let text = "{{ index }} {{ namespace }} {{ run }} {{ fixtures.themes[0] }} {{ object.spec.theme }}";
        assert_eq!(
            render(text, &context(&fixtures, Some(&object)), None).unwrap(),
            "7 project-1 run-1 theme-0 theme-0"
        );
    }

    #[test]
    fn a_misspelt_placeholder_is_an_error_naming_it() {
        let error = plain("a: {{ objekt.spec }}").unwrap_err();
        assert!(error.starts_with("undefined value"), "{error}");
        assert!(error.contains("objekt"), "{error}");
        assert!(error.ends_with("(line 1)"), "{error}");
    }

    #[test]
    fn the_same_seed_renders_the_same_random_values() {
        let text = "{{ random_string(8) }} {{ random_int(1, 100) }} {{ choice(['a', 'b', 'c']) }}";
        let first = plain(text).unwrap();
        assert_eq!(plain(text).unwrap(), first);
        let (word, rest) = first.split_once(' ').unwrap();
        assert_eq!(word.len(), 8);
        assert!(word.chars().all(|c| c.is_ascii_lowercase()), "{word}");
        let (number, letter) = rest.split_once(' ').unwrap();
        assert!(
            (1..=100).contains(&number.parse::<i64>().unwrap()),
            "{number}"
        );
        assert!(["a", "b", "c"].contains(&letter), "{letter}");
        assert_ne!(
            render(text, &context(&BTreeMap::new(), None), Some(2)).unwrap(),
            first
        );
    }

    #[test]
    fn choice_except_never_repeats_the_value_unless_it_is_the_only_one() {
        for seed in 0..20 {
            let text = "{{ choice_except(['a', 'b'], 'a') }}";
            let rendered = render(text, &context(&BTreeMap::new(), None), Some(seed));
            assert_eq!(rendered.unwrap(), "b");
        }
        assert_eq!(plain("{{ choice_except(['a'], 'a') }}").unwrap(), "a");
        assert_eq!(plain("{{ choice_except([], 'a') }}").unwrap(), "a");
    }

    #[test]
    fn bad_arguments_of_the_random_functions_are_errors() {
        assert!(
            plain("{{ choice([]) }}")
                .unwrap_err()
                .contains("the list is empty")
        );
        assert!(
            plain("{{ random_int(2, 1) }}")
                .unwrap_err()
                .contains("lo must not be above hi")
        );
        assert!(
            plain("{{ random_string(5000) }}")
                .unwrap_err()
                .contains("at most 1024")
        );
    }

    #[test]
    fn without_a_seed_the_random_functions_do_not_exist() {
        let error = render(
            "{{ random_string(3) }}",
            &context(&BTreeMap::new(), None),
            None,
        )
        .unwrap_err();
        assert!(error.contains("random_string"), "{error}");
    }

    #[test]
    fn filters_encode_hash_and_write_canonical_json() {
        assert_eq!(plain("{{ 'hello' | b64encode }}").unwrap(), "aGVsbG8=");
        // printf '' | sha256sum
        assert_eq!(
            plain("{{ '' | sha256 }}").unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let object = json!({"data": {"b": "<&>", "a": [1, true, null, {"z": 1, "y": "é"}]}});
        let fixtures = BTreeMap::new();
        assert_eq!(
            render(
                "{{ object.data | json }}",
                &context(&fixtures, Some(&object)),
                None
            )
            .unwrap(),
            r#"{"a":[1,true,null,{"y":"é","z":1}],"b":"<&>"}"#
        );
    }

    #[test]
    fn the_json_of_a_missing_field_is_an_error() {
        let object = json!({"metadata": {"name": "s"}});
        let fixtures = BTreeMap::new();
        let rendered = render(
            "{{ object.data | json }}",
            &context(&fixtures, Some(&object)),
            None,
        );
        assert_eq!(
            rendered.unwrap_err(),
            "invalid operation: json: the value is undefined (line 1)"
        );
    }

    #[test]
    fn plain_text_renders_as_itself() {
        assert_eq!(plain("Ready").unwrap(), "Ready");
        assert_eq!(plain("Ready\n").unwrap(), "Ready");
        assert_eq!(plain("{{ 'Ready' }}\n").unwrap(), "Ready");
    }

    #[test]
    fn a_rendering_that_is_not_yaml_is_an_error() {
        let error = render_yaml("a: [", &context(&BTreeMap::new(), None), None).unwrap_err();
        assert!(error.starts_with("renders no YAML: "), "{error}");
        assert_eq!(
            render_yaml("a: {{ index }}", &context(&BTreeMap::new(), None), None).unwrap(),
            json!({"a": 7})
        );
    }
}
