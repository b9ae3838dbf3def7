//! The Prometheus text exposition of a `/metrics` scrape, read one sample line at a time.
//!
//! Both the Prometheus text format and OpenMetrics (timestamps, exemplars, `# EOF`) are read;
//! only sample lines are parsed, and a line that does not parse is skipped.

/// The sum of the values of every series of metric `name` in a Prometheus text exposition,
/// or `None` when it has no series. Summing a family of info gauges (value 1 each, such as
/// `kube_website_info`) counts its series.
#[must_use]
pub fn metric_sum(exposition: &str, name: &str) -> Option<f64> {
    samples(exposition)
        .filter(|sample| sample.name == name)
        .map(|sample| sample.value)
        .reduce(|sum, value| sum + value)
}

/// One sample line: `name{label="value",...} value [timestamp] [# exemplar]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    /// The metric name, e.g. `workqueue_adds_total` or `..._bucket`.
    pub name: &'a str,
    /// The labels in the order written, values unescaped.
    pub labels: Vec<(&'a str, String)>,
    /// The value.
    pub value: f64,
}

impl Sample<'_> {
    /// The value of label `name`, if the sample has it.
    #[must_use]
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| *label == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the sample has every label of `filter` with its value.
    #[must_use]
    pub fn matches(&self, filter: &[(&str, &str)]) -> bool {
        filter
            .iter()
            .all(|&(name, value)| self.label(name) == Some(value))
    }
}

/// The sample lines of `text`; comments, blank lines and lines that do not parse are skipped.
pub fn samples(text: &str) -> impl Iterator<Item = Sample<'_>> {
    text.lines().filter_map(parse_sample)
}

fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim_start();
    if line.starts_with('#') {
        return None;
    }
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(name_end);
    if name.is_empty() {
        return None;
    }
    let rest = rest.trim_start();
    let (labels, rest) = match rest.strip_prefix('{') {
        Some(inside) => parse_labels(inside)?,
        None => (Vec::new(), rest),
    };
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `name="value",...}` (the opening brace already taken); returns the labels and what
/// follows the closing brace.
fn parse_labels(mut rest: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Some((labels, after));
        }
        let (name, after_name) = rest.split_once('=')?;
        let (value, after_value) = parse_quoted(after_name.trim_start().strip_prefix('"')?)?;
        labels.push((name.trim(), value));
        rest = after_value.trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if !rest.starts_with('}') {
            return None;
        }
    }
}

/// Reads a label value up to its closing quote (the opening one already taken), undoing the
/// escapes `\\`, `\"` and `\n`; returns it and what follows the closing quote.
fn parse_quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                escaped => value.push(escaped),
            },
            c => value.push(c),
        }
    }
    None
}

/// A sample value or `le` bound: Go's float syntax, including `+Inf`, `-Inf` and `NaN`.
fn parse_value(text: &str) -> Option<f64> {
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_sums_add_every_series_of_the_name_only() {
        let exposition = "\
# HELP controller_sharding_movements_total Moves.
# TYPE controller_sharding_movements_total counter
controller_sharding_movements_total{controllerring=\"a\",group=\"\",resource=\"configmaps\"} 3
controller_sharding_movements_total{controllerring=\"b\",group=\"\",resource=\"secrets\"} 4
controller_sharding_movements_total_other 100
controller_sharding_drains_total{controllerring=\"a\"} 9
";
        assert_eq!(
            metric_sum(exposition, "controller_sharding_movements_total"),
            Some(7.0)
        );
        assert_eq!(metric_sum("up 1\n", "up"), Some(1.0));
        assert_eq!(metric_sum(exposition, "missing_total"), None);
    }

    #[test]
    fn info_series_sum_to_their_count() {
        let exposition = "\
kube_website_info{namespace=\"p-1\",website=\"a\",uid=\"1\",theme=\"t\"} 1
kube_website_info{namespace=\"p-1\",website=\"b\",uid=\"2\",theme=\"t\"} 1
kube_website_shard{namespace=\"p-1\",website=\"a\",uid=\"1\",shard=\"s\",drain=\"false\"} 1
";
        assert_eq!(metric_sum(exposition, "kube_website_info"), Some(2.0));
    }

    #[test]
    fn sample_lines_parse_into_name_labels_and_value() {
        assert_eq!(
            parse_sample(r#"up{job="x", instance="y",} 1"#),
            Some(Sample {
                name: "up",
                labels: vec![("job", "x".to_owned()), ("instance", "y".to_owned())],
                value: 1.0
            })
        );
        assert_eq!(
            parse_sample("up 0").map(|s| (s.name, s.labels.len())),
            Some(("up", 0))
        );
        assert_eq!(
            parse_sample("up{} NaN").map(|s| s.value.is_nan()),
            Some(true)
        );
        assert_eq!(
            parse_sample("x -Inf").map(|s| s.value),
            Some(f64::NEG_INFINITY)
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        for line in [
            "",
            "# HELP up help",
            "up",
            "up{job=\"x\" 1",
            "up{job=\"x} 1",
            "up{job} 1",
            "up{job=\"x\"} one",
            "{job=\"x\"} 1",
        ] {
            assert_eq!(parse_sample(line), None, "{line}");
        }
    }

    #[test]
    fn escaped_quotes_commas_and_braces_stay_inside_a_label_value() {
        let text = r#"requests_total{path="/a\"b,}c",code="200"} 3
requests_total{path="back\\slash\nline",code="200"} 4"#;
        let values = |filter: &[(&str, &str)]| -> Vec<f64> {
            samples(text)
                .filter(|sample| sample.matches(filter))
                .map(|sample| sample.value)
                .collect()
        };
        assert_eq!(values(&[("path", "/a\"b,}c")]), [3.0]);
        assert_eq!(values(&[("path", "back\\slash\nline")]), [4.0]);
        assert_eq!(values(&[("code", "200")]), [3.0, 4.0]);
    }

    #[test]
    fn openmetrics_timestamps_exemplars_and_eof_are_read_past() {
        let text = r#"# TYPE latency_seconds histogram
latency_seconds_bucket{le="1.0"} 2 # {trace_id="abc"} 0.5 1700000000.0
events_total 1e+06 1700000000
# EOF
"#;
        assert_eq!(metric_sum(text, "latency_seconds_bucket"), Some(2.0));
        assert_eq!(metric_sum(text, "events_total"), Some(1e6));
    }
}
