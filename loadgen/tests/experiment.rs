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

/// Options of a run `run_id` on a local target into `results`, each shard count `repeat`
/// times, with 10 s windows and no metrics server.
fn local(binaries: stack::Binaries, results: &Path, run_id: &str, repeat: u32) -> Options {
    Options {
        target: Choice::Local {
            keep_directory: false,
            binaries: Some(binaries),
        },
        results: results.to_owned(),
        run_id: Some(run_id.to_owned()),
        window: Duration::from_secs(10),
        metrics_address: None,
        repeat,
    }
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Every window of `machine-2shards.csv` has the machine's busy share, and loadgen used CPU.
fn machine_windows_are_sampled(dir: &Path) {
    let machine_text = read(dir, "machine-2shards.csv");
    let mut machine = csv::Reader::from_reader(machine_text.as_bytes());
    let headers = machine.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (busy, loadgen) = (at("machine_busy_percent"), at("loadgen_cores"));
    let windows: Vec<csv::StringRecord> = machine.records().map(Result::unwrap).collect();
    // 40 s of load and settle, a window every 5 s.
    assert!(windows.len() >= 6, "{} machine windows", windows.len());
    for window in &windows {
        let percent: f64 = window[busy].parse().unwrap();
        assert!((0.0..=100.0).contains(&percent), "machine busy {percent} %");
    }
    assert!(
        windows
            .iter()
            .any(|w| w[loadgen].parse::<f64>().unwrap() > 0.0)
    );
}

/// The SIGTERM is a graceful leave: the ring requires its objects to move, and nothing else.
fn assert_the_graceful_leave_moved_only_what_the_ring_required(shard_count: &serde_json::Value) {
    let movements = shard_count["movements"].as_array().unwrap();
    let graceful: Vec<&serde_json::Value> = movements
        .iter()
        .filter(|m| m["change"]["kind"] == "leave" && m["killed"] == "voluntary")
        .collect();
    assert_eq!(graceful.len(), 1, "one graceful leave in {movements:#?}");
    assert_eq!(graceful[0]["movement"]["unnecessary"], 0, "{graceful:#?}");
}

/// `summary.csv` of the one shard count: its counts, latencies, failover, cost and machine.
fn assert_the_summary_row(dir: &Path) {
    let summary_text = read(dir, "summary.csv");
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
    assert_eq!(column("failover_voluntary_n"), "1", "the kill was measured");
    // The operator's buckets resolve a p99 above 1 ms to ±25 %.
    let lower: f64 = column("queue_p99_lower_ms").parse().unwrap();
    let upper: f64 = column("queue_p99_upper_ms").parse().unwrap();
    assert!(
        upper <= 1.0 || upper / lower <= 1.25 + 1e-9,
        "queue p99 in {lower}–{upper} ms"
    );
    assert!(
        !column("failover_voluntary_assigned_median_s").is_empty(),
        "the kill's objects were assigned again"
    );
    let operator_cpu: f64 = column("operator_cpu_seconds").parse().unwrap();
    assert!(operator_cpu > 0.0);
    // The one kill's replacement took the killed shard's slot.
    assert_eq!(column("operator_restarts"), "1");
    let busy: f64 = column("machine_busy_mean_percent").parse().unwrap();
    assert!((0.0..=100.0).contains(&busy), "machine busy {busy} %");
}

#[test]
fn a_scenario_runs_end_to_end_and_writes_its_results() {
    let binaries = stack::Binaries::build_for_tests().expect("the sharder and operator build");
    let scenario = Scenario::from_yaml(SCENARIO, Path::new("e2e.yaml")).expect("valid");
    let results = tempfile::tempdir().unwrap();
    let options = Options {
        metrics_address: Some("127.0.0.1:0".parse().unwrap()),
        ..local(binaries, results.path(), "e2e", 1)
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (dir, _) = runtime
        .block_on(experiment::run(&scenario, &options))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(dir, results.path().join("e2e"));

    for file in [
        "run.json",
        "summary.csv",
        "latency-2shards.csv",
        "latency-2shards.hgrm",
        "objects-2shards.csv",
        "machine-2shards.csv",
        "queue-2shards.csv",
        "queue-2shards.png",
        "latency-2shards.png",
        "latency-2shards.svg",
        "objects-2shards.png",
        "latency-all.png",
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
    let shard_count = &run["shard_counts"][0];
    assert_every_write_is_accounted_for(shard_count);
    assert_the_percentiles_are_ordered_and_the_hgrm_counts_them(&dir, shard_count);
    assert!(shard_count["load_started"].is_string());
    assert_the_graceful_leave_moved_only_what_the_ring_required(shard_count);

    assert_the_summary_row(&dir);

    machine_windows_are_sampled(&dir);

    let report = read(&dir, "report.md");
    for part in [
        "# Scenario `e2e`",
        "**Failovers, from the kill until the shard's objects recovered",
        "## Summary",
        "## 2 shards",
        "### Writes",
        "| shard-",
        "voluntary",
        "joined",
        "left",
        "![latency, 2 shards](latency-2shards.png)",
        "Restarts (shards started in a slot after its first",
        "Machine CPU (all cores",
    ] {
        assert!(
            report.contains(part),
            "{part} missing in report.md:\n{report}"
        );
    }
}

/// The classes of writes and of deletes add up to the schedule, and the latencies recorded
/// are the reconciled and the censored writes.
fn assert_every_write_is_accounted_for(shard_count: &serde_json::Value) {
    let count = |value: &serde_json::Value| value.as_u64().unwrap_or_else(|| panic!("{value}"));
    let failed = |failed: &serde_json::Value| -> u64 {
        failed.as_object().unwrap().values().map(count).sum()
    };
    let writes = &shard_count["accounting"]["writes"];
    let classes = [
        "reconciled",
        "pending",
        "abandoned",
        "not_issued",
        "skipped",
    ]
    .iter()
    .map(|class| count(&writes[class]))
    .sum::<u64>()
        + failed(&writes["failed"]);
    assert!(count(&writes["scheduled"]) > 50, "{writes}");
    assert_eq!(count(&writes["scheduled"]), classes, "{writes}");
    let deletes = &shard_count["accounting"]["deletes"];
    let classes = ["deleted", "skipped", "not_issued"]
        .iter()
        .map(|class| count(&deletes[class]))
        .sum::<u64>()
        + failed(&deletes["failed"]);
    assert_eq!(count(&deletes["scheduled"]), classes, "{deletes}");
    let latency = &shard_count["reconciliation"];
    let censored = count(&writes["pending"]) + count(&writes["abandoned"]);
    assert_eq!(count(&latency["censored"]), censored, "{latency}");
    assert_eq!(
        count(&latency["count"]),
        count(&writes["reconciled"]) + censored,
        "{latency}"
    );
}

/// p50 ≤ p90 ≤ p99 ≤ max, and the `.hgrm` file holds every latency counted.
fn assert_the_percentiles_are_ordered_and_the_hgrm_counts_them(
    dir: &Path,
    shard_count: &serde_json::Value,
) {
    let latency = &shard_count["reconciliation"];
    let percentiles: Vec<f64> = ["p50_ms", "p90_ms", "p99_ms", "max_ms"]
        .iter()
        .map(|p| latency[p].as_f64().unwrap())
        .collect();
    assert!(
        percentiles.windows(2).all(|pair| pair[0] <= pair[1]),
        "percentiles out of order: {latency}"
    );
    let hgrm = read(dir, "latency-2shards.hgrm");
    let total = format!(
        "Total count    = {:>12}]",
        latency["count"].as_u64().unwrap()
    );
    assert!(
        hgrm.contains(&total),
        "{total} missing in the .hgrm:\n{hgrm}"
    );
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

/// Kills its processes when dropped, so that a failing test leaves none behind.
struct KillOnDrop(Vec<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for pid in &self.0 {
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// The ids of the processes whose parent is `parent`, from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // `pid (comm) state ppid …`; comm may hold spaces, so parse after its `)`.
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

#[test]
fn an_interrupted_run_stops_every_process_it_started_and_writes_nothing() {
    let binaries = stack::Binaries::build_for_tests().expect("the sharder and operator build");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e2e.yaml");
    std::fs::write(&file, SCENARIO).unwrap();
    let stderr_path = dir.path().join("stderr");
    // loadgen finds the sharder and the operator next to itself; the test's cargo built them
    // into the directory `build_for_tests` returns, which is where loadgen is too.
    assert_eq!(
        Path::new(env!("CARGO_BIN_EXE_loadgen")).parent(),
        binaries.sharder.parent()
    );
    let mut loadgen = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("experiment")
        .arg(&file)
        .arg("--results")
        .arg(dir.path())
        .args(["--metrics-address", "0", "--run-id", "interrupted"])
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let loadgen_pid = loadgen.id();
    // Whatever fails below, loadgen does not outlive the test.
    let _loadgen = KillOnDrop(vec![loadgen_pid]);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&stderr_path)
        .unwrap()
        .contains("load started")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the load did not start:\n{}",
            std::fs::read_to_string(&stderr_path).unwrap()
        );
        assert!(loadgen.try_wait().unwrap().is_none(), "loadgen exited");
        std::thread::sleep(Duration::from_millis(200));
    }
    let started = children_of(loadgen_pid);
    let _started = KillOnDrop(started.clone());
    assert!(
        started.len() >= 3,
        "the sharder and two shards run: {started:?}"
    );
    let status = Command::new("kill")
        .args(["-INT", &loadgen_pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = loadgen.try_wait().unwrap() {
            break exit;
        }
        assert!(std::time::Instant::now() < deadline, "loadgen did not stop");
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(!exit.success(), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let left: Vec<u32> = started
        .into_iter()
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    assert!(left.is_empty(), "still running after loadgen: {left:?}");
    assert!(
        !dir.path().join("interrupted").exists(),
        "no results written"
    );
}

const SEARCH: &str = "\
name: e2e-search
description: a two-step capacity search, twice, for the integration test
shards: [1]
world:
  namespaces: 1
  themes: 3
  initialWebsites: 4
search:
  churn: {from: 0.5, to: 4}
  hold: 15s
  drain: 5s
  maxSteps: 2
  workers: 4
operator:
  workers: 1
  simulatedWork: 300ms
";

/// A tiny capacity search with two repetitions: each repetition is in `run.json` with its
/// steps, verdicts and validity, the bracket is ordered, and `summary.csv` has a row each.
#[test]
fn a_search_runs_twice_and_keeps_every_repetition() {
    let binaries = stack::Binaries::build_for_tests().expect("the sharder and operator build");
    let scenario = Scenario::from_yaml(SEARCH, Path::new("e2e-search.yaml")).expect("valid");
    let results = tempfile::tempdir().unwrap();
    let options = Options {
        window: Duration::from_secs(5),
        ..local(binaries, results.path(), "search", 2)
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (dir, _) = runtime
        .block_on(experiment::run(&scenario, &options))
        .unwrap_or_else(|e| panic!("{e:#}"));

    let run: serde_json::Value = serde_json::from_str(&read(&dir, "run.json")).unwrap();
    let counts = run["shard_counts"].as_array().unwrap();
    let repetitions: Vec<u64> = counts
        .iter()
        .map(|count| count["repetition"].as_u64().unwrap())
        .collect();
    assert_eq!(repetitions, [1, 2]);
    for count in counts {
        assert!(count["validity"]["valid"].is_boolean(), "{count:#}");
        let search = &count["search"];
        let steps = search["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 2, "{search:#}");
        assert_eq!(steps[0]["churn_ops_per_second"], 0.5);
        for step in steps {
            assert!(!step["verdicts"].as_array().unwrap().is_empty(), "{step:#}");
            assert!(step["validity"]["valid"].is_boolean(), "{step:#}");
            assert!(step["scheduled"].as_u64().unwrap() > 0, "{step:#}");
        }
        let bracket = &search["bracket"];
        if let (Some(passing), Some(failing)) = (
            bracket["highest_passing"].as_f64(),
            bracket["lowest_failing"].as_f64(),
        ) {
            assert!(passing < failing, "{bracket}");
        }
    }
    let summary = read(&dir, "summary.csv");
    let mut rows = csv::Reader::from_reader(summary.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let at = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (&rows[0][at("repetition")], &rows[1][at("repetition")]),
        ("1", "2")
    );
    assert!(
        rows.iter()
            .all(|row| ["true", "false"].contains(&&row[at("valid")]))
    );
    assert!(rows.iter().all(|row| &row[at("search_steps")] == "2"));
}
