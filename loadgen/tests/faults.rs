//! Faults on the local control plane: `experiments/faults.yaml` shortened to a minute of load
//! at 2 shards with two sharder replicas, every kind of fault injected, the processes that exit
//! restarted by the supervisor, and every object reconciled in the end.

use std::path::Path;

use loadgen::scenario::Scenario;

mod support;

/// `experiments/faults.yaml` with 70 s of load at 2 shards, 5 s shard Leases and a resync
/// every 15 s, and its faults closer together: the leader killed mid-move at 8 s, a shard paused 12 s (past its
/// Lease) at 20 s, the API server stopped 10 s at 38 s, the leader paused 10 s (past its 8 s
/// Lease) at 55 s.
fn scenario() -> Scenario {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/faults.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let faults = text
        .find("faults:\n")
        .expect("faults.yaml ends with its faults");
    let short = text[..faults]
        .replace(
            "duration: 3m\nsettle: 60s\nshards: [3]\n",
            "duration: 70s\nsettle: 30s\nshards: [2]\n",
        )
        .replace("leaseDuration: 10s", "leaseDuration: 5s")
        .replace("syncPeriod: 30s", "syncPeriod: 15s")
        + "faults:\n\
           - {at: 8s, kind: killSharderLeader, during: move}\n\
           - {at: 20s, kind: pause, target: shard, duration: 12s}\n\
           - {at: 38s, kind: stopApiServer, duration: 10s}\n\
           - {at: 55s, kind: pause, target: sharderLeader, duration: 10s}\n";
    assert!(
        short.contains("duration: 70s")
            && short.contains("leaseDuration: 5s")
            && short.contains("syncPeriod: 15s"),
        "experiments/faults.yaml changed its sizes"
    );
    Scenario::from_yaml(&short, &file).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_fault_is_injected_exited_processes_restart_and_every_object_is_reconciled() {
    let (_results, dir, run) =
        support::run_locally(&["sharder", "webhosting-operator"], &scenario(), "faults");
    let count = &run.shard_counts[0];

    // Every fault, in order, each on its target.
    let injected: Vec<(&str, &str)> = count
        .faults
        .iter()
        .map(|fault| (fault.kind, fault.target.as_str()))
        .collect();
    let kinds: Vec<&str> = injected.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(
        kinds,
        ["killSharderLeader", "pause", "stopApiServer", "pause"],
        "{injected:?}"
    );
    assert!(injected[0].1.starts_with("sharder-"), "{injected:?}");
    assert!(injected[1].1.starts_with("shard-"), "{injected:?}");
    assert_eq!(injected[2].1, "kube-apiserver");
    assert!(injected[3].1.starts_with("sharder-"), "{injected:?}");
    let paused = &count.faults[1];
    let seconds = paused.ended.duration_since(paused.started).as_secs();
    assert!((12..15).contains(&seconds), "{paused:?}");
    assert!(
        count.faults[0]
            .note
            .as_deref()
            .is_some_and(|note| note.contains("Lease released")),
        "{:?}",
        count.faults[0]
    );

    // The killed leader and the shard that lost its Lease in its pause exited and were
    // restarted.
    let restarts = count
        .restarts
        .clone()
        .expect("the local target counts restarts");
    assert!(
        restarts.get(injected[0].1).is_some_and(|n| *n >= 1),
        "{restarts:?}"
    );
    assert!(
        restarts.get(injected[1].1).is_some_and(|n| *n >= 1),
        "{restarts:?}"
    );

    // Every object is reconciled after the settle time.
    let writes = &count.accounting.writes;
    assert!(writes.reconciled >= 40, "{writes:?}");
    assert_eq!(writes.pending, 0, "{writes:?}");
    assert_eq!(writes.not_issued, 0, "{writes:?}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let faults = &json["shard_counts"][0]["faults"];
    assert_eq!(faults.as_array().map(Vec::len), Some(4), "{faults}");
    assert_eq!(json["scenario"]["sharder"]["replicas"], 2);
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("### Faults"), "{report}");
    assert!(report.contains("Restarts by the supervisor"), "{report}");
}
