//! `loadgen ring` run as a program, as a user runs it.

use std::process::{Command, Output};

use kube_sharding::consistent_hash::Ring;

fn loadgen(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("loadgen runs")
}

#[test]
fn csv_prints_each_keys_shard_in_input_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = [
        "webhosting.timebertt.dev/Website/project-00/site-1",
        "/ConfigMap/default/with,comma",
        "apps/Deployment/default/nginx",
        "webhosting.timebertt.dev/Theme//exciting",
    ];
    let file = format!("{}\n\n{}\n{}\n  \n{}\n", keys[0], keys[1], keys[2], keys[3]);
    std::fs::write(dir.path().join("keys.txt"), file).expect("write keys");

    let output = loadgen(
        dir.path(),
        &[
            "ring",
            "--shards",
            "a,b,c",
            "--keys-file",
            "keys.txt",
            "--format",
            "csv",
        ],
    );

    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ring = Ring::with_nodes(["a", "b", "c"]);
    let mut expected = vec!["key,shard".to_owned()];
    for key in keys {
        let shard = ring.hash(key).expect("three shards");
        let key = if key.contains(',') {
            format!("\"{key}\"")
        } else {
            key.to_owned()
        };
        expected.push(format!("{key},{shard}"));
    }
    assert_eq!(
        String::from_utf8(output.stdout).expect("utf-8"),
        expected.join("\n") + "\n"
    );
}

#[test]
fn a_missing_keys_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().expect("temp dir");

    let output = loadgen(
        dir.path(),
        &[
            "ring",
            "--shards",
            "a,b,c",
            "--keys-file",
            "keys.txt",
            "--format",
            "csv",
        ],
    );

    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).expect("utf-8");
    assert!(
        stderr.starts_with("error: cannot read the keys file keys.txt: "),
        "stderr: {stderr}"
    );
}

fn run_ok(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = loadgen(dir.path(), args);
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

fn run_err(args: &[&str], code: i32) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = loadgen(dir.path(), args);
    assert_eq!(output.status.code(), Some(code), "{args:?}");
    assert!(output.stdout.is_empty());
    String::from_utf8(output.stderr).expect("utf-8")
}

fn number(value: &serde_json::Value, path: &str) -> f64 {
    value
        .pointer(path)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("{path} in {value}"))
}

#[test]
fn compare_json_has_every_strategy_per_shard_count() {
    let json = run_ok(&[
        "ring",
        "--compare",
        "--shard-count",
        "2..10",
        "--objects",
        "1000",
        "--events",
        "+shard-new,-shard-0",
        "--format",
        "json",
    ]);
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value["objects"], 1000);
    let reports = value["reports"].as_array().expect("reports");
    assert_eq!(reports.len(), 18);
    for (i, pair) in reports.chunks(2).enumerate() {
        let shards = i + 2;
        let [ring, bounded] = pair else {
            panic!("pairs");
        };
        assert_eq!(ring["strategy"], "hash-ring");
        assert_eq!(bounded["strategy"], "bounded-load");
        assert_eq!(ring["counts"].as_array().expect("counts").len(), shards);
        let ring_skew = number(ring, "/skew/max_over_mean");
        let bounded_skew = number(bounded, "/skew/max_over_mean");
        assert!(bounded_skew <= 1.05, "{shards} shards: {bounded_skew}");
        assert!(ring_skew > bounded_skew, "{shards} shards: {ring_skew}");
        for report in pair {
            let movements = report["movements"].as_array().expect("movements");
            assert_eq!(movements.len(), 2);
            assert_eq!(movements[0]["event"], "join");
            assert_eq!(movements[0]["shard"], "shard-new");
            assert_eq!(movements[0]["shards_after"], shards + 1);
            assert_eq!(movements[1]["event"], "leave");
            assert_eq!(movements[1]["shards_after"], shards);
            for movement in movements {
                assert_eq!(movement["unnecessary"], 0, "{movement}");
                assert!(number(movement, "/moved") > 0.0);
                assert!(number(movement, "/ideal") > 0.0);
                assert!(number(movement, "/skew_after/min_over_mean") > 0.0);
            }
            // A leave moves exactly the leaving shard's objects under either strategy.
            assert!(
                (number(&movements[1], "/moved") - number(&movements[1], "/ideal")).abs() < 1e-9,
                "{movements:?}"
            );
            assert_eq!(report["totals"]["events"], 2);
            assert_eq!(report["totals"]["unnecessary"], 0);
        }
    }
}

#[test]
fn compare_table_shows_both_strategies_with_every_column() {
    let table = run_ok(&[
        "ring",
        "--compare",
        "--shards",
        "a,b,c",
        "--objects",
        "1000",
        "--remove",
        "b",
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines[0], "1000 objects");
    let header: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(
        header,
        [
            "shards",
            "strategy",
            "event",
            "min",
            "max",
            "mean",
            "max/mean",
            "min/mean",
            "moved",
            "ideal",
            "moved/ideal",
            "unnecessary"
        ]
    );
    let events: Vec<(&str, &str, &str)> = lines[3..]
        .iter()
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            (cells[0], cells[1], cells[2])
        })
        .collect();
    assert_eq!(
        events,
        [
            ("3", "hash-ring", "initial"),
            ("4", "hash-ring", "+shard-new"),
            ("2", "hash-ring", "-b"),
            ("3", "bounded-load", "initial"),
            ("4", "bounded-load", "+shard-new"),
            ("2", "bounded-load", "-b"),
        ]
    );
    let unnecessary: Vec<&str> = lines[4..]
        .iter()
        .filter(|line| !line.contains("initial"))
        .map(|line| line.split_whitespace().last().expect("cells"))
        .collect();
    assert_eq!(unnecessary, ["0", "0", "0", "0"]);
}

#[test]
fn one_strategy_reports_events_in_sequence_with_totals() {
    let table = run_ok(&[
        "ring",
        "--strategy",
        "bounded-load",
        "--shard-count",
        "3",
        "--objects",
        "300",
        "--events",
        "+x,-shard-1,+y",
    ]);
    assert!(
        table.starts_with("3 shards, 300 objects, bounded-load\n"),
        "{table}"
    );
    for row in [
        "\njoin   x  ",
        "\nleave  shard-1  ",
        "\njoin   y  ",
        "\ntotal  3 events  ",
    ] {
        assert!(table.contains(row), "{row:?} in {table}");
    }
}

#[test]
fn an_unknown_strategy_is_named_with_the_accepted_ones() {
    let stderr = run_err(
        &[
            "ring",
            "--strategy",
            "least-loaded",
            "--shard-count",
            "3",
            "--objects",
            "10",
        ],
        2,
    );
    assert!(
        stderr.starts_with(
            "error: invalid value 'least-loaded' for '--strategy <NAME>': expected one of \
             hash-ring, bounded-load"
        ),
        "stderr: {stderr}"
    );
}

#[test]
fn bad_events_are_named_by_their_flag() {
    let stderr = run_err(
        &[
            "ring",
            "--shard-count",
            "2..4",
            "--objects",
            "10",
            "--events",
            "+x,-shard-3",
        ],
        1,
    );
    assert_eq!(
        stderr,
        "error: --events -shard-3 (event 2) on 3 shards: no such shard in the ring\n"
    );
    let stderr = run_err(
        &[
            "ring",
            "--shard-count",
            "2",
            "--objects",
            "10",
            "--events",
            "shard-1",
        ],
        2,
    );
    assert!(
        stderr.starts_with("error: invalid value 'shard-1' for '--events <EVENTS>': "),
        "stderr: {stderr}"
    );
    let stderr = run_err(&["ring", "--shard-count", "4..2", "--objects", "10"], 2);
    assert!(
        stderr.contains("'--shard-count <N|A..B>'"),
        "stderr: {stderr}"
    );
}
