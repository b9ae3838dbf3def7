//! The Grafana dashboards of `dashboards/`: valid JSON with a datasource variable, PromQL that
//! parses once the template variables are substituted, and only series that the sharder and the
//! operator really export (docs/contract.md#metrics: the original's dashboards read stale ones).
//! Where a Prometheus binary is installed (Debian's `prometheus` package), it scrapes a local stack
//! and every panel must return data.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use kube_sharding::consistent_hash::Ring;
use promql_parser::parser::{self, Expr};
use serde_json::Value;
use stack::{OperatorProcess, OperatorSettings, SharderProcess, SharderSettings};
use webhosting_operator::api::{LABEL_SKIP_WORKLOAD, Theme, ThemeSpec, Website, WebsiteSpec};

use crate::support::{http_get, repo};

/// Series the dashboards read that our components do not export: cAdvisor's, scraped from the
/// kubelets by deploy/monitoring, for the CPU and memory of every component on the Experiments
/// dashboard (no component of ours measures itself). Nothing else may come from outside.
const EXTERNAL_SERIES: [&str; 2] = [
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
];

/// How long the local stack may take for each step.
const PATIENCE: Duration = Duration::from_secs(120);

/// One PromQL expression of a dashboard: a panel's target or a variable's query.
#[derive(Debug)]
struct Query {
    /// `<dashboard file>: <panel title>` or `<dashboard file>: variable <name>`.
    place: String,
    /// As written, with template variables.
    expr: String,
}

/// Every dashboard: file name and JSON.
fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("dashboards/")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("{name} is not valid JSON: {error}"));
            (name, json)
        })
        .collect()
}

/// The panels of a dashboard, those inside rows included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    fn collect<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            collect(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    collect(&dashboard["panels"], &mut out);
    out
}

/// Every PromQL expression of a dashboard. A variable's `label_values(<selector>, <label>)`
/// contributes its selector.
fn queries(file: &str, dashboard: &Value) -> Vec<Query> {
    let mut queries = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{file}: a target of {} has no expr", panel["title"]));
            queries.push(Query {
                place: format!("{file}: {}", panel["title"].as_str().unwrap_or_default()),
                expr: expr.to_owned(),
            });
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .or_else(|| variable["query"].as_str())
            .expect("a query variable has a query");
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map_or(query, |(selector, _)| selector);
        queries.push(Query {
            place: format!("{file}: variable {}", variable["name"]),
            expr: selector.to_owned(),
        });
    }
    queries
}

/// `expr` with Grafana's interval variables set to `rate_interval` and every other variable
/// (`$ring`, `${job}`, ...) to `.*`, which all of them are used as (regex matchers).
fn substitute(expr: &str, rate_interval: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced.find('}').expect("a closed ${...}");
            (&braced[..end], end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        out.push_str(match name {
            "__rate_interval" | "__interval" | "__range" => rate_interval,
            _ => ".*",
        });
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// The metric names an expression selects.
fn metric_names(expr: &Expr, names: &mut BTreeSet<String>) {
    let mut selector = |vs: &promql_parser::parser::VectorSelector| {
        let name = vs.name.clone().or_else(|| {
            vs.matchers
                .matchers
                .iter()
                .find(|m| m.name == "__name__")
                .map(|m| m.value.clone())
        });
        names.insert(name.unwrap_or_else(|| panic!("a selector without a metric name: {vs}")));
    };
    match expr {
        Expr::VectorSelector(vs) => selector(vs),
        Expr::MatrixSelector(ms) => selector(&ms.vs),
        Expr::Aggregate(aggregate) => {
            metric_names(&aggregate.expr, names);
            if let Some(param) = &aggregate.param {
                metric_names(param, names);
            }
        }
        Expr::Unary(unary) => metric_names(&unary.expr, names),
        Expr::Binary(binary) => {
            metric_names(&binary.lhs, names);
            metric_names(&binary.rhs, names);
        }
        Expr::Paren(paren) => metric_names(&paren.expr, names),
        Expr::Subquery(subquery) => metric_names(&subquery.expr, names),
        Expr::Call(call) => {
            for arg in &call.args.args {
                metric_names(arg, names);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// Every query of every dashboard, parsed: (query, metric names).
fn parsed_queries() -> Vec<(Query, BTreeSet<String>)> {
    dashboards()
        .iter()
        .flat_map(|(file, dashboard)| queries(file, dashboard))
        .map(|query| {
            let substituted = substitute(&query.expr, "1m");
            let expr = parser::parse(&substituted).unwrap_or_else(|error| {
                panic!("{}: {substituted:?} does not parse: {error}", query.place)
            });
            let mut names = BTreeSet::new();
            metric_names(&expr, &mut names);
            (query, names)
        })
        .collect()
}

#[test]
fn every_dashboard_has_a_datasource_variable_and_promql_that_parses() {
    let dashboards = dashboards();
    let files: BTreeSet<&str> = dashboards.iter().map(|(f, _)| f.as_str()).collect();
    for expected in [
        "controllers.json",
        "experiments.json",
        "sharding.json",
        "webhosting.json",
    ] {
        assert!(files.contains(expected), "no dashboards/{expected}");
    }
    // Grafana provisions every file through the ConfigMap of dashboards/kustomization.yaml.
    let kustomization =
        std::fs::read_to_string(repo().join("dashboards/kustomization.yaml")).unwrap();
    let generated: BTreeSet<&str> = kustomization
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- "))
        .filter(|file| Path::new(file).extension().is_some_and(|ext| ext == "json"))
        .collect();
    assert_eq!(
        generated, files,
        "dashboards/kustomization.yaml lists every dashboard"
    );

    let mut uids = BTreeSet::new();
    for (file, dashboard) in &dashboards {
        let uid = dashboard["uid"].as_str().unwrap_or_default();
        assert!(
            !uid.is_empty() && uids.insert(uid.to_owned()),
            "{file}: uid {uid:?}"
        );
        let variables = dashboard["templating"]["list"]
            .as_array()
            .expect("variables");
        assert!(
            variables.iter().any(|v| v["type"] == "datasource"
                && v["name"] == "datasource"
                && v["query"] == "prometheus"),
            "{file}: no datasource variable"
        );
        let mut ids = BTreeSet::new();
        for panel in panels(dashboard) {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(
                ids.insert(panel["id"].as_i64()),
                "{file}: panel id of {title} repeats"
            );
            if panel["type"] == "row" {
                continue;
            }
            let targets = panel["targets"].as_array().map_or(0, Vec::len);
            assert!(targets > 0, "{file}: {title} has no query");
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file}: {title} does not use the datasource variable"
            );
        }
    }
    let queries = parsed_queries();
    assert!(queries.len() > 40, "{} queries", queries.len());
}

#[test]
fn substitution_replaces_every_template_variable() {
    assert_eq!(
        substitute(
            r#"rate(x{a=~"$ring", b=~"${job}"}[$__rate_interval])"#,
            "30s"
        ),
        r#"rate(x{a=~".*", b=~".*"}[30s])"#
    );
    assert_eq!(substitute("up", "1m"), "up");
}

/// Every metric name on the `/metrics` page `text`: sample names, and the names that each
/// `# TYPE` family exports even before its first sample (OpenMetrics counters end in
/// `_total`, histograms have `_bucket`, `_sum` and `_count`).
fn exported_names(text: &str, names: &mut BTreeSet<String>) {
    for line in text.lines() {
        if let Some(family) = line.strip_prefix("# TYPE ") {
            let mut words = family.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count"],
                "info" => &["_info"],
                _ => &[""],
            };
            for suffix in suffixes {
                if !name.ends_with(suffix) || suffix.is_empty() {
                    names.insert(format!("{name}{suffix}"));
                } else {
                    names.insert(name.to_owned());
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
}

#[test]
fn exported_names_follow_the_openmetrics_families() {
    let mut names = BTreeSet::new();
    exported_names(
        "# TYPE a counter\n# TYPE b histogram\n# TYPE c gauge\nc{x=\"1\"} 2\nd_total 1\n# EOF\n",
        &mut names,
    );
    let expected = ["a_total", "b_bucket", "b_count", "b_sum", "c", "d_total"];
    assert_eq!(names, expected.into_iter().map(str::to_owned).collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_series_on_the_dashboards_is_exported_and_every_panel_has_data() {
    let queries = parsed_queries();
    let stack = Stack::start().await;
    let mut exported = BTreeSet::new();
    for (job, port) in stack.targets() {
        let (code, text) = http_get(port, "/metrics").await.expect("a scrape");
        assert_eq!(code, 200, "{job}: {text}");
        exported_names(&text, &mut exported);
    }
    let mut missing = BTreeMap::new();
    let mut external_used = BTreeSet::new();
    for (query, names) in &queries {
        for name in names {
            if EXTERNAL_SERIES.contains(&name.as_str()) {
                external_used.insert(name.as_str());
            } else if !exported.contains(name) {
                missing.insert(name.clone(), query.place.clone());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the dashboards read series that nothing exports (name: where): {missing:#?}"
    );
    assert_eq!(
        external_used,
        EXTERNAL_SERIES.into_iter().collect(),
        "an allow-listed external series is not used any more: remove it"
    );

    match prometheus_binary() {
        Some(binary) => every_panel_has_data(&binary, &stack, &queries).await,
        // .ci/run installs it, so in CI its absence is a broken set-up, not a reason to skip.
        None if std::env::var_os("CI").is_some() => {
            panic!("no prometheus on PATH in CI: .ci/run should have installed Debian's prometheus")
        }
        None => eprintln!(
            "no prometheus on PATH (Debian: apt-get install prometheus): the panels' data is not checked"
        ),
    }
    stack.stop().await;
}

/// A local stack with series for every panel: the sharder, and two operator shards where the
/// second joined after the Websites were created, so that the sharder drained some, and a
/// Website in a namespace that joined the ring late, so that the sharder moved it.
///
/// Drains alone do not certainly give movements: the new shard copies the Website's shard
/// label to the children and may do so before the resync reaches them, leaving it nothing to
/// move.
struct Stack {
    control_plane: testenv::ControlPlane,
    sharder: SharderProcess,
    shards: Vec<OperatorProcess>,
}

const NAMESPACE: &str = "project-dashboards";
/// Outside the ring when its Website is created, so the webhook leaves the Website unassigned.
const LATE_NAMESPACE: &str = "project-dashboards-late";
const THEME: &str = "plain";

impl Stack {
    async fn start() -> Self {
        let binaries = stack::Binaries::build_for_tests().expect("the binaries build");
        let control_plane = stack::environment().start().await.expect("a control plane");
        let client = control_plane.client().await.unwrap();
        stack::install_sharding(&client).await.unwrap();
        stack::install_webhosting(&client).await.unwrap();
        let sharder = SharderProcess::start(
            &control_plane,
            &binaries.sharder,
            &SharderSettings::default(),
        )
        .unwrap();
        if let Err(error) = stack::wait_ring_ready(&client, stack::WEBHOSTING_RING, PATIENCE).await
        {
            panic!(
                "{error:#}\nthe sharder's log ends with:\n{}",
                sharder.log_tail()
            );
        }
        stack::create_project_namespace(&client, NAMESPACE)
            .await
            .unwrap();
        create_theme(&client).await;
        let mut stack = Self {
            control_plane,
            sharder,
            shards: Vec::new(),
        };
        stack.add_shard(&binaries.operator, "shard-0").await;
        let websites = website_names();
        create_websites(&client, NAMESPACE, &websites).await;
        stack
            .wait("every Website Ready on shard-0", |metrics| {
                metrics.texts.get(1).is_some_and(|text| {
                    series(text, "kube_website_info{") == websites.len()
                        && ready_websites(text) == websites.len()
                })
            })
            .await;
        create_late_website(&client).await;
        stack.add_shard(&binaries.operator, "shard-1").await;
        stack
            .wait(
                "the sharder to drain objects to shard-1 and to move the late Website",
                |metrics| {
                    metrics.sharder("controller_sharding_drains_total") > Some(0.0)
                        && metrics.sharder("controller_sharding_movements_total") > Some(0.0)
                        && metrics.shard(1, "kube_website_info") > Some(0.0)
                },
            )
            .await;
        stack
    }

    async fn add_shard(&mut self, binary: &std::path::Path, name: &str) {
        let shard = OperatorProcess::start(
            &self.control_plane,
            binary,
            &OperatorSettings::sharded(name),
        )
        .unwrap();
        self.shards.push(shard);
        let index = self.shards.len() - 1;
        let deadline = Instant::now() + PATIENCE;
        while !self.shards[index].ready().await {
            if let Err(error) = self.shards[index].check_alive() {
                panic!("{error:#}");
            }
            assert!(
                Instant::now() < deadline,
                "{name} is not ready:\n{}",
                self.shards[index].log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// (job, metrics port) of every process, as Prometheus in the cluster labels them.
    fn targets(&self) -> Vec<(&'static str, u16)> {
        let mut targets = vec![("sharder", self.sharder.metrics_port())];
        targets.extend(
            self.shards
                .iter()
                .map(|shard| ("webhosting-operator", shard.metrics_port())),
        );
        targets
    }

    /// Waits until `done` holds for the scraped pages, failing with every log tail.
    async fn wait(&mut self, what: &str, done: impl Fn(&Scrapes) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut texts = Vec::new();
            for (_, port) in self.targets() {
                texts.push(
                    http_get(port, "/metrics")
                        .await
                        .map(|(_, body)| body)
                        .unwrap_or_default(),
                );
            }
            if done(&Scrapes { texts }) {
                return;
            }
            self.sharder.check_alive().unwrap();
            for shard in &mut self.shards {
                shard.check_alive().unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the sharder's log ends with:\n{}\nthe shards' logs end with:\n{}",
                self.sharder.log_tail(),
                self.shards
                    .iter()
                    .map(OperatorProcess::log_tail)
                    .collect::<Vec<_>>()
                    .join("\n---\n")
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn stop(mut self) {
        for shard in &mut self.shards {
            shard.stop().await;
        }
        self.sharder.stop().await;
    }
}

/// The `/metrics` pages of the sharder (first) and of each shard.
struct Scrapes {
    texts: Vec<String>,
}

impl Scrapes {
    fn sharder(&self, name: &str) -> Option<f64> {
        stack::metric_sum(&self.texts[0], name)
    }

    fn shard(&self, index: usize, name: &str) -> Option<f64> {
        stack::metric_sum(self.texts.get(index + 1)?, name)
    }
}

/// The lines of a `/metrics` page that start with `prefix`: the series of a family.
fn series(text: &str, prefix: &str) -> usize {
    text.lines().filter(|line| line.starts_with(prefix)).count()
}

/// Websites in phase Ready on a shard's page.
fn ready_websites(text: &str) -> usize {
    text.lines()
        .filter(|line| {
            line.starts_with("kube_website_status_phase{")
                && line.contains("phase=\"Ready\"")
                && line.ends_with(" 1")
        })
        .count()
}

/// Website names of which, with shards shard-0 and shard-1, at least one lands on each, so that
/// shard-1's arrival certainly drains some (docs/contract.md#hash-keys and
/// docs/contract.md#hash-ring decide it).
fn website_names() -> Vec<String> {
    let ring = Ring::with_nodes(["shard-0", "shard-1"]);
    let shard_of = |name: &str| {
        ring.hash(&format!(
            "webhosting.timebertt.dev/Website/{NAMESPACE}/{name}"
        ))
        .map(str::to_owned)
    };
    let mut names: Vec<String> = (0..4).map(|i| format!("website-{i}")).collect();
    let mut i = names.len();
    while !names
        .iter()
        .any(|n| shard_of(n).as_deref() == Some("shard-1"))
        || !names
            .iter()
            .any(|n| shard_of(n).as_deref() == Some("shard-0"))
    {
        names.push(format!("website-{i}"));
        i += 1;
    }
    names
}

async fn create_theme(client: &Client) {
    let theme = Theme::new(
        THEME,
        ThemeSpec {
            color: "darkcyan".to_owned(),
            font_family: "Menlo".to_owned(),
        },
    );
    Api::<Theme>::all(client.clone())
        .create(&PostParams::default(), &theme)
        .await
        .expect("a Theme");
}

/// A Website created unassigned, in a namespace that then joins the ring: the next resync
/// (shard-1's arrival triggers one) moves it to a shard.
async fn create_late_website(client: &Client) {
    stack::create_namespace(client, LATE_NAMESPACE)
        .await
        .unwrap();
    create_websites(client, LATE_NAMESPACE, &["late".to_owned()]).await;
    stack::create_project_namespace(client, LATE_NAMESPACE)
        .await
        .unwrap();
}

/// Websites without pods (`skip-workload`): their Deployments become Available at once.
async fn create_websites(client: &Client, namespace: &str, names: &[String]) {
    let websites = Api::<Website>::namespaced(client.clone(), namespace);
    for name in names {
        let mut website = Website::new(
            name,
            WebsiteSpec {
                theme: THEME.to_owned(),
            },
        );
        website.metadata = ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_owned()),
            labels: Some([(LABEL_SKIP_WORKLOAD.to_owned(), "true".to_owned())].into()),
            ..ObjectMeta::default()
        };
        websites
            .create(&PostParams::default(), &website)
            .await
            .expect("a Website");
    }
}

/// `prometheus` on PATH, if it is installed.
fn prometheus_binary() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("prometheus"))
            .find(|candidate| candidate.is_file())
    })
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The number of results of an instant query, or the error Prometheus answered.
async fn query(port: u16, expr: &str) -> Result<usize, String> {
    let (code, body) = http_get(port, &format!("/api/v1/query?query={}", encode(expr)))
        .await
        .map_err(|error| error.to_string())?;
    let json: Value = serde_json::from_str(&body).map_err(|_| format!("{code}: {body}"))?;
    if json["status"] != "success" {
        return Err(body);
    }
    Ok(json["data"]["result"].as_array().map_or(1, Vec::len))
}

/// Prometheus scraping the stack every second, as the cluster's Prometheus does every 15 s
/// with the same job labels; every panel's query must return data within a minute, except
/// those of cAdvisor series.
async fn every_panel_has_data(
    binary: &std::path::Path,
    stack: &Stack,
    queries: &[(Query, BTreeSet<String>)],
) {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap();
    let mut jobs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (job, target_port) in stack.targets() {
        jobs.entry(job)
            .or_default()
            .push(format!("'127.0.0.1:{target_port}'"));
    }
    let mut config = String::from("global:\n  scrape_interval: 1s\nscrape_configs:\n");
    for (job, targets) in &jobs {
        let targets = targets.join(", ");
        let _ = write!(
            config,
            "- job_name: {job}\n  static_configs:\n  - targets: [{targets}]\n"
        );
    }
    let config_file = dir.path().join("prometheus.yml");
    std::fs::write(&config_file, config).unwrap();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let mut prometheus = tokio::process::Command::new(binary)
        .arg(format!("--config.file={}", config_file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("prometheus starts");
    let log_tail = || {
        let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(http_get(port, "/-/ready").await, Ok((200, _))) {
        let exited = prometheus.try_wait().ok().flatten();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "Prometheus is not ready ({exited:?}); its log ends with:\n{}",
            log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let pending: Vec<(&Query, String)> = queries
        .iter()
        .filter(|(_, names)| !names.iter().any(|n| EXTERNAL_SERIES.contains(&n.as_str())))
        .map(|(query, _)| (query, substitute(&query.expr, "20s")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut empty: Vec<String>;
    loop {
        empty = Vec::new();
        for (query_place, expr) in &pending {
            match query(port, expr).await {
                Ok(n) if n > 0 => {}
                Ok(_) => empty.push(format!("{}: {expr}", query_place.place)),
                Err(error) => panic!(
                    "{}: {expr}: Prometheus rejects it: {error}",
                    query_place.place
                ),
            }
        }
        if empty.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let _ = prometheus.start_kill();
    let _ = prometheus.wait().await;
    assert!(
        empty.is_empty(),
        "panels without data:\n{}\nPrometheus' log ends with:\n{}",
        empty.join("\n"),
        log_tail()
    );
}
