//! `loadgen compare` on run directories as `loadgen experiment` writes them.

use std::path::{Path, PathBuf};

use loadgen::{
    commands::compare::{self, CompareArgs},
    report::ReportFormat,
};

/// The header `summary.csv` had when these tests were written, with a column compare does not
/// know in the middle.
const HEADER: &str = "shards,count,p50_ms,p90_ms,p99_ms,max_ms,queue_p99_ms,steady_max_skew,\
                      capacity_websites,capacity_at,unknown_future_column,\
                      sharder_cpu_seconds,sharder_peak_rss_bytes,operator_cpu_seconds,\
                      operator_peak_rss_bytes,control_plane_cpu_seconds,\
                      control_plane_peak_rss_bytes";

/// Writes `root/<id>/` with a `run.json` and a `summary.csv` of `rows` under `header`.
fn write_run(root: &Path, id: &str, header: &str, rows: &[&str]) -> PathBuf {
    let dir = root.join(id);
    std::fs::create_dir(&dir).expect("create the run directory");
    let run_json = serde_json::json!({
        "run_id": id,
        "scenario": {"name": "smoke", "shards": [1, 2, 3]},
        "started": "2023-11-14T22:13:20Z",
        "machine": {"cores": 2},
    });
    std::fs::write(dir.join("run.json"), run_json.to_string()).expect("write run.json");
    let mut csv = format!("{header}\n");
    for row in rows {
        csv.push_str(row);
        csv.push('\n');
    }
    std::fs::write(dir.join("summary.csv"), csv).expect("write summary.csv");
    dir
}

/// A sweep of 1, 2 and 3 shards; 1 shard did not breach an SLO.
fn sweep(root: &Path, id: &str) -> PathBuf {
    write_run(
        root,
        id,
        HEADER,
        &[
            "1,500,800,900,1000,1500,200,1.0,,,x,2.0,31457280,30.0,104857600,100.0,524288000",
            "2,600,400,450,500,700,100,1.2,4000,2023-11-14T22:20:00Z,y,2.5,31457280,33.0,209715200,110.0,524288000",
            "3,700,300,350,400,600,,1.3,6000,2023-11-14T22:30:00Z,z,3.0,31457280,36.0,314572800,120.0,524288000",
        ],
    )
}

fn compare(runs: &[&Path], format: ReportFormat) -> anyhow::Result<String> {
    let args = CompareArgs {
        runs: runs.iter().map(|run| run.to_path_buf()).collect(),
        format,
        fail_on_regression: None,
    };
    let mut out = Vec::new();
    compare::run(&args, &mut out)?;
    Ok(String::from_utf8(out).expect("UTF-8 output"))
}

/// The rows of the table of the figure whose heading starts with `heading`.
fn figure_rows<'a>(table: &'a str, heading: &str) -> Vec<&'a str> {
    table
        .lines()
        .skip_while(|line| !line.starts_with(heading))
        .skip(4)
        .take_while(|line| line.starts_with('|'))
        .collect()
}

#[test]
fn a_sweep_is_compared_with_its_smallest_shard_count() {
    let root = tempfile::tempdir().expect("temp dir");
    let run = sweep(root.path(), "20231114-smoke");

    let table = compare(&[&run], ReportFormat::Table).expect("compare");

    assert!(
        table.contains("Ratios are to the smallest shard count of `20231114-smoke`."),
        "{table}"
    );
    assert!(table.contains(
        "| run | shards | baseline | valid repetitions |\n|---|---:|---|---|\n\
         | `20231114-smoke` | 1 | itself | 1 of 1 |\n\
         | `20231114-smoke` | 2 | `20231114-smoke`, 1 shard | 1 of 1 |\n"
    ));
    let headings: Vec<&str> = table
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .collect();
    assert_eq!(
        headings,
        [
            "reconcile p50, ms, lower is better",
            "reconcile p99, ms, lower is better",
            "queue p99, ms, lower is better",
            "steady max skew, lower is better",
            "capacity, higher is better",
            "sharder CPU, s, lower is better",
            "sharder peak, MiB, lower is better",
            "operator CPU, s, lower is better",
            "operator peak, MiB, lower is better",
            "control plane CPU, s, lower is better",
            "control plane peak, MiB, lower is better",
        ]
    );
    // One repetition each: values without a range, ratios without an interval.
    assert_eq!(
        figure_rows(&table, "### reconcile p50"),
        [
            "| `20231114-smoke` | 1 | 800 (n=1) | baseline |",
            "| `20231114-smoke` | 2 | 400 (n=1) | 0.50× |",
            "| `20231114-smoke` | 3 | 300 (n=1) | 0.38× |",
        ]
    );
    // Capacity has no ratio, since 1 shard breached nothing; queue p99 was not scraped at 3.
    assert_eq!(
        figure_rows(&table, "### capacity")[2],
        "| `20231114-smoke` | 3 | 6000 (n=1) | – |"
    );
    assert_eq!(
        figure_rows(&table, "### queue p99")[2],
        "| `20231114-smoke` | 3 | – | – |"
    );
    assert_eq!(
        figure_rows(&table, "### operator peak")[2],
        "| `20231114-smoke` | 3 | 300 (n=1) | 3.00× |"
    );
}

#[test]
fn runs_are_compared_shard_count_by_shard_count_as_json() {
    let root = tempfile::tempdir().expect("temp dir");
    let before = sweep(root.path(), "before");
    // A later run, with failover columns and without the 1-shard row.
    let after = write_run(
        root.path(),
        "after",
        &format!(
            "{HEADER},failover_involuntary_lease_dead_median_s,failover_involuntary_assigned_median_s"
        ),
        &[
            "2,600,200,450,250,700,50,1.2,8000,,y,2.5,31457280,33.0,209715200,110.0,524288000,15.0,16.5",
            "4,600,100,450,150,700,50,1.2,9000,,y,2.5,31457280,33.0,209715200,110.0,524288000,14.0,",
        ],
    );

    let json = compare(&[&before, &after], ReportFormat::Json).expect("compare");
    let json: serde_json::Value = serde_json::from_str(&json).expect("JSON output");

    assert_eq!(json["runs"][0]["run_id"], "before");
    assert_eq!(json["runs"][1]["scenario"], "smoke");
    let metrics: Vec<&str> = json["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|metric| metric["column"].as_str().expect("column"))
        .collect();
    assert!(metrics.contains(&"failover_involuntary_lease_dead_median_s"));
    assert!(!metrics.contains(&"failover_involuntary_reconciled_median_s"));

    let rows = json["rows"].as_array().expect("rows");
    let shards: Vec<(&str, u64)> = rows
        .iter()
        .map(|row| {
            (
                row["run_id"].as_str().unwrap(),
                row["shards"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shards,
        [
            ("before", 1),
            ("before", 2),
            ("before", 3),
            ("after", 2),
            ("after", 4)
        ]
    );
    let after_2 = &rows[3];
    assert_eq!(after_2["is_baseline"], false);
    assert_eq!(after_2["baseline"]["run_id"], "before");
    assert_eq!(after_2["baseline"]["shards"], 2);
    let p50 = &after_2["figures"]["p50_ms"];
    assert_eq!(p50["value"]["median"], 200.0);
    assert_eq!(p50["value"]["n"], 1);
    assert_eq!(p50["value"]["method"], "single");
    assert_eq!(p50["ratio"]["ratio"], 0.5);
    assert_eq!(p50["ratio"]["significant"], false);
    assert_eq!(
        after_2["figures"]["capacity_websites"]["ratio"]["ratio"],
        2.0
    );
    // The baseline run measured no failover: the value without a ratio.
    assert_eq!(
        after_2["figures"]["failover_involuntary_lease_dead_median_s"]["value"]["median"],
        15.0
    );
    assert!(after_2["figures"]["failover_involuntary_lease_dead_median_s"]["ratio"].is_null());
    // The baseline run measured no 4 shards.
    let after_4 = &rows[4];
    assert!(after_4["baseline"].is_null());
    assert!(after_4["figures"]["p50_ms"]["ratio"].is_null());
    assert!(after_4["figures"]["failover_involuntary_assigned_median_s"]["value"].is_null());
    assert_eq!(rows[1]["is_baseline"], true);
    assert!(rows[1]["figures"]["p50_ms"]["ratio"].is_null());
    assert!(json["gate"].is_null());

    let table = compare(&[&before, &after], ReportFormat::Table).expect("compare");
    assert!(table.contains("| `after` | 4 | none | 1 of 1 |"), "{table}");
    assert_eq!(
        figure_rows(&table, "### reconcile p50")[4],
        "| `after` | 4 | 100 (n=1) | – |"
    );
    assert!(
        table.contains("### involuntary to Lease dead, median, s, lower is better\n"),
        "{table}"
    );
    assert!(
        table.contains("### involuntary to all assigned, median, s, lower is better\n"),
        "{table}"
    );
}

#[test]
fn a_missing_or_broken_run_is_reported_naming_the_file() {
    let root = tempfile::tempdir().expect("temp dir");
    let good = sweep(root.path(), "good");
    let error = |run: &Path| {
        let error = compare(&[&good, run], ReportFormat::Table).expect_err("an error");
        format!("{error:#}")
    };

    let missing = root.path().join("missing");
    let message = error(&missing);
    assert!(
        message.starts_with(&format!(
            "cannot read the run directory {}: ",
            missing.display()
        )),
        "{message}"
    );

    let file = root.path().join("file");
    std::fs::write(&file, "").expect("write a file");
    assert_eq!(
        error(&file),
        format!(
            "{} is not a run directory (one with run.json and summary.csv)",
            file.display()
        )
    );

    let no_summary = sweep(root.path(), "no-summary");
    std::fs::remove_file(no_summary.join("summary.csv")).expect("remove summary.csv");
    let message = error(&no_summary);
    assert!(
        message.starts_with(&format!(
            "cannot read {}: ",
            no_summary.join("summary.csv").display()
        )),
        "{message}"
    );

    let no_run_json = sweep(root.path(), "no-run-json");
    std::fs::remove_file(no_run_json.join("run.json")).expect("remove run.json");
    let message = error(&no_run_json);
    assert!(
        message.starts_with(&format!(
            "cannot read {}: ",
            no_run_json.join("run.json").display()
        )),
        "{message}"
    );

    let bad_run_json = sweep(root.path(), "bad-run-json");
    std::fs::write(
        bad_run_json.join("run.json"),
        r#"{"scenario": {"name": "x"}}"#,
    )
    .expect("write run.json");
    let message = error(&bad_run_json);
    assert!(
        message.starts_with(&format!(
            "{} is not a valid run.json: missing field `run_id`",
            bad_run_json.join("run.json").display()
        )),
        "{message}"
    );

    let bad_summary = write_run(root.path(), "bad-summary", "shards,p99_ms", &["1,soon"]);
    assert_eq!(
        error(&bad_summary),
        format!(
            "{}, line 2: `p99_ms` is `soon`, not a finite number",
            bad_summary.join("summary.csv").display()
        )
    );
}

/// The header of a run with repetitions: `repetition` and `valid` after `shards`.
const REPEATED_HEADER: &str = "shards,repetition,valid,p99_ms,capacity_websites";

/// Three repetitions at 2 shards, p99 about `p99` and capacity about `capacity`; a fourth,
/// invalid, far off.
fn repeated(root: &Path, id: &str, p99: u32, capacity: u32) -> PathBuf {
    let rows: Vec<String> = [
        (1, true, 0),
        (2, true, 50),
        (3, true, 100),
        (4, false, 5000),
    ]
    .iter()
    .map(|&(repetition, valid, off)| {
        format!("2,{repetition},{valid},{},{}", p99 + off, capacity + off)
    })
    .collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    write_run(root, id, REPEATED_HEADER, &rows)
}

#[test]
fn repetitions_become_intervals_without_the_invalid_ones() {
    let root = tempfile::tempdir().expect("temp dir");
    let before = repeated(root.path(), "before", 1000, 4000);
    let after = repeated(root.path(), "after", 1500, 4000);

    let table = compare(&[&before, &after], ReportFormat::Table).expect("compare");

    assert!(
        table.contains("| `after` | 2 | `before`, 2 shards | 3 of 4 (repetition 4 invalid) |"),
        "{table}"
    );
    assert_eq!(
        figure_rows(&table, "### reconcile p99"),
        [
            "| `before` | 2 | 1050 [1000, 1100] (n=3, min–max) | baseline |",
            "| `after` | 2 | 1550 [1500, 1600] (n=3, min–max) | 1.48× [1.36, 1.60] (min–max) **worse** |",
        ]
    );
    assert_eq!(
        figure_rows(&table, "### capacity")[1],
        "| `after` | 2 | 4050 [4000, 4100] (n=3, min–max) | 1.00× [0.98, 1.02] (min–max) |"
    );
}

/// Runs the `loadgen` binary with `args`; its exit status and stdout.
fn loadgen(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("run loadgen");
    (
        output.status.code(),
        String::from_utf8(output.stdout).expect("UTF-8 output"),
    )
}

#[test]
fn the_exit_status_tells_a_regression_from_an_error_and_a_usage_error() {
    let root = tempfile::tempdir().expect("temp dir");
    let before = repeated(root.path(), "before", 1000, 4000);
    let after = repeated(root.path(), "after", 1500, 4000);
    let (before, after) = (before.as_os_str(), after.as_os_str());
    let flag = std::ffi::OsStr::new("--fail-on-regression");
    let compare = std::ffi::OsStr::new("compare");

    // p99 is at least 1.36× the baseline's: beyond 30 %, within 40 %.
    let (status, out) = loadgen(&[compare, before, after, flag, "30".as_ref()]);
    assert_eq!(status, Some(3));
    assert!(
        out.contains("2 checked, 1 failed, 0 not checkable"),
        "{out}"
    );
    let (status, _) = loadgen(&[compare, before, after, flag, "40".as_ref()]);
    assert_eq!(status, Some(0));
    let (status, _) = loadgen(&[compare, before, root.path().join("missing").as_os_str()]);
    assert_eq!(status, Some(1));
    let (status, _) = loadgen(&[compare, before, flag, "0".as_ref()]);
    assert_eq!(status, Some(2));
}

#[test]
fn the_regression_check_needs_a_run_to_check_against_the_baseline() {
    let root = tempfile::tempdir().expect("temp dir");
    let run = sweep(root.path(), "sweep");
    let args = CompareArgs {
        runs: vec![run.clone()],
        format: ReportFormat::Table,
        fail_on_regression: Some(10.0),
    };
    let error = compare::run(&args, &mut Vec::new()).expect_err("one run");
    assert_eq!(
        error.to_string(),
        format!(
            "--fail-on-regression checks runs against the first: give a baseline run and at \
             least one more, not {} alone",
            run.display()
        )
    );
}
