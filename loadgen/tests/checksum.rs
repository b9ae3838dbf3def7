//! A controller other than the webhosting-operator under test, declared only by data: the
//! checksum-controller with the Secrets of `experiments/checksum.yaml`, shortened and with a
//! graceful kill, at 1 and 2 shards on the local control plane, and the report it gets.

use std::path::Path;

use loadgen::scenario::Scenario;

mod support;

/// `experiments/checksum.yaml` with 20 s of load (every Secret changed every 10 s) and 10 s of
/// settling at 1 and 2 shards, and a shard stopped (SIGTERM) and replaced 15 s into the load,
/// for movement and failover.
fn scenario() -> Scenario {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/checksum.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let short = text
        .replace("duration: 60s\nsettle: 15s\nshards: [1, 2, 3]\n", "")
        .replace(
            "world:\n",
            "duration: 20s\nsettle: 10s\nshards: [1, 2]\n\
             chaos: {interval: 15s, signal: SIGTERM, restart: true}\nworld:\n",
        );
    let short = short.replace("interval: 30s", "interval: 10s");
    assert_ne!(short, text, "experiments/checksum.yaml changed its sizes");
    Scenario::from_yaml(&short, &file).unwrap_or_else(|e| panic!("{e}"))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn the_checksum_controller_is_measured_at_one_and_two_shards_from_its_declaration() {
    let (_results, dir, _) = support::run_locally(
        &["sharder", "webhosting-operator", "checksum-controller"],
        &scenario(),
        "checksum",
    );

    let summary_text = read(&dir, "summary.csv");
    let mut summary = csv::Reader::from_reader(summary_text.as_bytes());
    let headers = summary.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = summary.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{summary_text}");
    let column = |row: &csv::StringRecord, name: &str| {
        let i = headers.iter().position(|h| h == name).expect(name);
        row[i].to_owned()
    };
    for row in &rows {
        let shards = column(row, "shards");
        // About 40 creates and their changes, each measured from its intended time.
        let count: u64 = column(row, "count").parse().unwrap();
        assert!(count >= 30, "{shards} shards: {count} reconciliations");
        let reconciled: u64 = column(row, "writes_reconciled").parse().unwrap();
        assert!(reconciled >= 30, "{shards} shards: {reconciled} reconciled");
        assert!(
            !column(row, "queue_p99_ms").is_empty(),
            "the queue `secret`"
        );
        assert_eq!(column(row, "failover_voluntary_n"), "1", "{shards} shards");
        assert!(column(row, "movement_changes").parse::<u64>().unwrap() >= 2);
        let operator_cpu: f64 = column(row, "operator_cpu_seconds").parse().unwrap();
        assert!(operator_cpu > 0.0);
        // Every ConfigMap is on its Secret's shard once settled.
        assert!(column(row, "owned_checked").parse::<u64>().unwrap() >= 30);
        assert_eq!(column(row, "owned_off_owner_shard"), "0", "{shards} shards");
        // Its command passes no audit log: not measured, never 0; its conflicts are scraped.
        assert_eq!(
            column(row, "double_reconciled_objects"),
            "",
            "{shards} shards"
        );
        assert!(column(row, "conflicts_shards").parse::<u64>().is_ok());
    }

    let report = read(&dir, "report.md");
    for part in [
        "# Scenario `checksum`",
        "## 1 shards",
        "## 2 shards",
        "### Latency",
        "### Assignment",
        "### Movement",
        "### Cost",
        "Owned objects once settled",
        "### Ownership",
        "Reconciled by two shards at once: not measured (controller checksum-controller's \
         command does not pass {{ audit_file }}).",
    ] {
        assert!(
            report.contains(part),
            "{part} missing in report.md:\n{report}"
        );
    }
}
