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
    };
    let mut out = Vec::new();
    compare::run(&args, &mut out)?;
    Ok(String::from_utf8(out).expect("UTF-8 output"))
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
        "| run | shards | baseline | reconcile p50 | reconcile p99 | queue p99 | steady max skew | \
         capacity | sharder CPU | sharder peak | operator CPU | operator peak | \
         control plane CPU | control plane peak |\n"
    ));
    assert!(table.contains(
        "| `20231114-smoke` | 1 | itself | 800 ms | 1000 ms | 200 ms | 1.00 | – | 2.00 s | \
         30.0 MiB | 30.0 s | 100 MiB | 100 s | 500 MiB |\n"
    ));
    // Capacity has no ratio, since 1 shard breached nothing; queue p99 was not scraped at 3.
    assert!(table.contains(
        "| `20231114-smoke` | 3 | `20231114-smoke`, 1 shard | 300 ms (0.38×) | 400 ms (0.40×) | \
         – | 1.30 (1.30×) | 6000 | 3.00 s (1.50×) | 30.0 MiB (1.00×) | 36.0 s (1.20×) | \
         300 MiB (3.00×) | 120 s (1.20×) | 500 MiB (1.00×) |\n"
    ));
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
    assert_eq!(after_2["figures"]["p50_ms"]["value"], 200.0);
    assert_eq!(after_2["figures"]["p50_ms"]["ratio"], 0.5);
    assert_eq!(after_2["figures"]["capacity_websites"]["ratio"], 2.0);
    // The baseline run measured no failover: the value without a ratio.
    assert_eq!(
        after_2["figures"]["failover_involuntary_lease_dead_median_s"]["value"],
        15.0
    );
    assert!(after_2["figures"]["failover_involuntary_lease_dead_median_s"]["ratio"].is_null());
    // The baseline run measured no 4 shards.
    let after_4 = &rows[4];
    assert!(after_4["baseline"].is_null());
    assert!(after_4["figures"]["p50_ms"]["ratio"].is_null());
    assert!(after_4["figures"]["failover_involuntary_assigned_median_s"]["value"].is_null());
    assert_eq!(rows[1]["is_baseline"], true);
    assert_eq!(rows[1]["figures"]["p50_ms"]["ratio"], 1.0);

    let table = compare(&[&before, &after], ReportFormat::Table).expect("compare");
    assert!(
        table.contains("| `after` | 4 | none | 100 ms | 150 ms |"),
        "{table}"
    );
    assert!(
        table
            .contains(" involuntary to Lease dead, median | involuntary to all assigned, median |"),
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
            "{}, line 2: `p99_ms` is `soon`, not a number",
            bad_summary.join("summary.csv").display()
        )
    );
}
