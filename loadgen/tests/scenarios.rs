//! The scenario files shipped in `experiments/` are valid, so an experiment never fails on its
//! own file after the control plane has started.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_sharding::strategy::Strategy;
use loadgen::scenario::Scenario;

fn experiments() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments")
}

/// Every `*.yaml` in `experiments/`, loaded, by file name.
fn shipped() -> Vec<(String, Scenario)> {
    let mut scenarios: Vec<_> = std::fs::read_dir(experiments())
        .expect("experiments/ exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| {
            let scenario = Scenario::load(&path)
                .unwrap_or_else(|error| panic!("{}", operations::error_chain(&error)));
            let stem = path.file_stem().expect("file name").to_string_lossy();
            (stem.into_owned(), scenario)
        })
        .collect();
    scenarios.sort_by(|a, b| a.0.cmp(&b.0));
    scenarios
}

#[test]
fn every_shipped_scenario_validates_and_is_named_after_its_file() {
    let scenarios = shipped();
    let names: Vec<_> = scenarios.iter().map(|(file, _)| file.as_str()).collect();
    assert_eq!(
        names,
        [
            "basic",
            "capacity",
            "chaos",
            "checksum",
            "failover",
            "faults",
            "plan",
            "rolling-update",
            "scale-out",
            "smoke",
            "strategies"
        ]
    );
    for (file, scenario) in &scenarios {
        assert_eq!(&scenario.name, file);
        assert!(!scenario.description.is_empty(), "{file}");
    }
}

#[test]
fn smoke_fits_three_minutes_per_shard_count() {
    let (_, smoke) = shipped()
        .into_iter()
        .find(|(file, _)| file == "smoke")
        .expect("smoke.yaml");
    // About 60 s of set-up per shard count leaves 120 s of the 3 minutes for load and settling.
    assert!(
        smoke.duration + smoke.settle <= Duration::from_secs(120),
        "{:?} + {:?}",
        smoke.duration,
        smoke.settle
    );
    assert_eq!(smoke.shards, [1, 2, 3]);
}

#[test]
fn checksum_puts_smokes_load_on_the_checksum_controller() {
    let scenarios = shipped();
    let find = |name: &str| {
        scenarios
            .iter()
            .find(|(file, _)| file == name)
            .map(|(_, scenario)| scenario.clone())
            .expect(name)
    };
    let (checksum, smoke) = (find("checksum"), find("smoke"));
    assert_eq!(checksum.controller.ring, "checksum-controller");
    assert_eq!(checksum.workloads[0].resource.kind.kind, "Secret");
    // The same churn, so that their costs compare.
    assert_eq!(
        (checksum.duration, checksum.settle, &checksum.shards),
        (smoke.duration, smoke.settle, &smoke.shards)
    );
    assert_eq!(checksum.load, smoke.load);
    assert_eq!(checksum.operator, smoke.operator);
    assert_eq!(checksum.world.namespaces, smoke.world.namespaces);
    assert_eq!(
        checksum.world.initial_websites,
        smoke.world.initial_websites
    );
}

#[test]
fn plan_searches_a_fixed_world() {
    let (_, plan) = shipped()
        .into_iter()
        .find(|(file, _)| file == "plan")
        .expect("plan.yaml");
    let search = plan.search.expect("plan.yaml searches capacity");
    assert!(plan.load.is_none());
    assert!(plan.world.initial_websites > 0);
    assert!(search.churn.from < search.churn.to);
}

#[test]
fn faults_injects_every_kind_at_three_shards_with_two_sharder_replicas() {
    use loadgen::scenario::{FaultKind, PauseTarget};

    let (_, faults) = shipped()
        .into_iter()
        .find(|(file, _)| file == "faults")
        .expect("faults.yaml");
    assert_eq!(faults.shards, [3]);
    assert_eq!(faults.sharder.replicas, 2);
    let kinds: Vec<&FaultKind> = faults.faults.iter().map(|fault| &fault.kind).collect();
    assert!(matches!(
        kinds[..],
        [
            FaultKind::KillSharderLeader { during_move: true },
            FaultKind::Pause {
                target: PauseTarget::SharderLeader,
                ..
            },
            FaultKind::Pause {
                target: PauseTarget::RandomShard,
                ..
            },
            FaultKind::StopApiServer { .. },
        ]
    ));
    // The shard's pause outlasts its Lease, twice over.
    assert!(faults.faults[2].kind.duration() >= faults.operator.lease_duration * 2);
    // About ten minutes on a 2-core machine, a minute of it set-up.
    assert!(faults.duration + faults.settle <= Duration::from_secs(5 * 60));
}

#[test]
fn strategies_sets_both_strategies_on_a_capacity_ramp_with_one_membership_event_after_it() {
    let (_, strategies) = shipped()
        .into_iter()
        .find(|(file, _)| file == "strategies")
        .expect("strategies.yaml");
    assert_eq!(
        strategies.strategies,
        [Strategy::HashRing, Strategy::BoundedLoad]
    );
    assert!(strategies.measures_capacity());
    // One SIGTERM and replacement, at the end of the load: after the breach it should not
    // decide.
    let chaos = strategies.chaos.expect("a membership event");
    assert_eq!(chaos.interval, strategies.duration);
    assert_eq!(strategies.kills(), 1);
    assert!(chaos.restart);
    // About 90 s of set-up and teardown per run keeps the bake-off within 40 minutes.
    let runs = strategies.runs(1).len();
    assert_eq!(runs, 4);
    let per_run = strategies.duration + strategies.settle + Duration::from_secs(90);
    assert!(
        per_run * u32::try_from(runs).unwrap() <= Duration::from_secs(40 * 60),
        "{runs} runs of {per_run:?}"
    );
}
