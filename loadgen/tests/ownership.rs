//! The ownership audit of a normal run (docs/experiments.md#ownership): `experiments/smoke.yaml`
//! shortened, at 2 shards on the local control plane with a shard stopped (SIGTERM) and replaced,
//! so that objects move; the webhosting-operator writes its audit log, and no object is
//! reconciled by two shards at once or left on no live shard.

use std::path::Path;

use loadgen::scenario::Scenario;

mod support;

/// `experiments/smoke.yaml` with 20 s of load (every Website changed every 10 s) and 10 s of
/// settling at 2 shards, and a shard stopped and replaced 10 s into the load.
fn scenario() -> Scenario {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/smoke.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let short = text.replace(
        "duration: 60s\nsettle: 15s\nshards: [1, 2, 3]\n",
        "duration: 20s\nsettle: 10s\nshards: [2]\n\
         chaos: {interval: 10s, signal: SIGTERM, restart: true}\n",
    );
    let short = short.replace("interval: 30s", "interval: 10s");
    assert_ne!(short, text, "experiments/smoke.yaml changed its sizes");
    Scenario::from_yaml(&short, &file).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_normal_run_is_audited_and_reconciles_no_object_on_two_shards_at_once() {
    let (_results, dir, _) = support::run_locally(
        &["sharder", "webhosting-operator"],
        &scenario(),
        "ownership",
    );

    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let ownership = &run["shard_counts"][0]["ownership"];
    let audit = &ownership["double_reconciliation"]["measured"];
    assert!(
        audit["reconciliations"].as_u64().unwrap() >= 30,
        "the shards' audit logs were read: {ownership:#}"
    );
    assert_eq!(audit["objects"], serde_json::json!([]), "{ownership:#}");
    assert_eq!(
        ownership["unowned"]["left_unowned"],
        serde_json::json!([]),
        "{ownership:#}"
    );
    assert!(
        ownership["conflicts"]["sharder"].is_u64(),
        "the sharder's conflicts were scraped: {ownership:#}"
    );
    assert!(ownership["conflicts"]["shards"].is_u64(), "{ownership:#}");

    let summary = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(summary.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let column = |name: &str| row[headers.iter().position(|h| h == name).expect(name)].to_owned();
    assert_eq!(column("double_reconciled_objects"), "0");
    assert!(column("unowned_objects").parse::<u64>().is_ok());

    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("### Ownership"), "{report}");
    assert!(report.contains("**0 object(s)**."), "{report}");
}
