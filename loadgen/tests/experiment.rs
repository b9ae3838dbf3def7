//! `loadgen experiment` end to end: a 30-second scenario with chaos on the local control plane
//! (etcd, kube-apiserver, kube-controller-manager, the sharder and two shards as processes),
//! and the files it writes.

use std::{path::Path, process::Command, time::Duration};

use loadgen::{
    environment::Choice,
    experiment::{self, Options},
    scenario::Scenario,
};

const SCENARIO: &str = "\
name: e2e
description: 30 s of every kind of load with one graceful kill, for the integration test
duration: 30s
settle: 10s
shards: [2]
world:
  namespaces: 2
  themes: 3
  initialWebsites: 4
load:
  create: {rate: 2, workers: 4}
  delete: {rate: 0.2, workers: 2}
  mutate: {interval: 10s, workers: 4}
chaos:
  interval: 20s
  signal: SIGTERM
  restart: true
";

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn a_scenario_runs_end_to_end_and_writes_its_results() {
    let binaries = stack::Binaries::build_for_tests().expect("the sharder and operator build");
    let scenario = Scenario::from_yaml(SCENARIO, Path::new("e2e.yaml")).expect("valid");
    let results = tempfile::tempdir().unwrap();
    let options = Options {
        target: Choice::Local {
            keep_directory: false,
            binaries: Some(binaries),
        },
        results: results.path().to_owned(),
        run_id: Some("e2e".to_owned()),
        window: Duration::from_secs(10),
        metrics_address: Some("127.0.0.1:0".parse().unwrap()),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = runtime
        .block_on(experiment::run(&scenario, &options))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(dir, results.path().join("e2e"));

    for file in [
        "run.json",
        "summary.csv",
        "latency-2shards.csv",
        "latency-2shards.hgrm",
        "objects-2shards.csv",
        "queue-2shards.csv",
        "queue-2shards.png",
        "latency-2shards.png",
        "latency-2shards.svg",
        "objects-2shards.png",
        "scaling.svg",
        "report.md",
    ] {
        let size = std::fs::metadata(dir.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .len();
        assert!(size > 0, "{file} is empty");
    }

    let run: serde_json::Value = serde_json::from_str(&read(&dir, "run.json")).unwrap();
    assert_eq!(run["scenario"]["name"], "e2e");
    assert_eq!(run["versions"]["kubernetes"], "v1.36.3");

    let summary_text = read(&dir, "summary.csv");
    let mut summary = csv::Reader::from_reader(summary_text.as_bytes());
    let headers = summary.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = summary.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
    let column = |name: &str| {
        let i = headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"));
        rows[0][i].to_owned()
    };
    assert_eq!(column("shards"), "2");
    // About 60 creates and a mutation of each Website every 10 s: far more than 50
    // reconciliations, each measured.
    let count: u64 = column("count").parse().unwrap();
    assert!(count > 50, "only {count} reconciliations measured");
    let p99: f64 = column("p99_ms").parse().unwrap();
    assert!(p99 > 0.0);
    assert!(
        !column("queue_p99_ms").is_empty(),
        "the queue latency was scraped"
    );
    // The operator's buckets resolve a p99 above 1 ms to ±25 %.
    let lower: f64 = column("queue_p99_lower_ms").parse().unwrap();
    let upper: f64 = column("queue_p99_upper_ms").parse().unwrap();
    assert!(
        upper <= 1.0 || upper / lower <= 1.25 + 1e-9,
        "queue p99 in {lower}–{upper} ms"
    );
    assert!(
        !column("failover_voluntary_assigned_s").is_empty(),
        "the kill was measured"
    );
    let operator_cpu: f64 = column("operator_cpu_seconds").parse().unwrap();
    assert!(operator_cpu > 0.0);

    let report = read(&dir, "report.md");
    for part in [
        "# Scenario `e2e`",
        "## Summary",
        "## 2 shards",
        "| shard-",
        "voluntary",
        "joined",
        "left",
        "![latency, 2 shards](latency-2shards.png)",
    ] {
        assert!(
            report.contains(part),
            "{part} missing in report.md:\n{report}"
        );
    }
}

#[test]
fn an_invalid_scenario_fails_before_anything_starts_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        SCENARIO.replace("rate: 2, workers: 4", "rate: -2, workers: 4"),
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("experiment")
        .arg(&file)
        .arg("--results")
        .arg(dir.path())
        .args(["--metrics-address", "0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("load.create.rate"), "{stderr}");
    assert!(!stderr.contains("starting"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "nothing but the scenario file is written");
}
