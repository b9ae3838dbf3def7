//! What the end-to-end tests of one scenario share: a run on a fresh local target.

use std::{path::PathBuf, time::Duration};

use loadgen::{
    environment::Choice,
    experiment::{self, Options},
    results::RunResults,
    scenario::Scenario,
};

/// Runs `scenario` once as run `run_id` on a local target with the binaries of `packages`
/// built for the test, into a temporary directory; returns it (removed when dropped), the
/// run's directory and its results.
pub fn run_locally(
    packages: &[&str],
    scenario: &Scenario,
    run_id: &str,
) -> (tempfile::TempDir, PathBuf, RunResults) {
    let dir = stack::build_for_tests(packages).expect("the binaries build");
    let binaries = stack::Binaries::in_dir(&dir).unwrap();
    let results = tempfile::tempdir().unwrap();
    let options = Options {
        target: Choice::Local {
            keep_directory: false,
            binaries: Some(binaries),
        },
        results: results.path().to_owned(),
        run_id: Some(run_id.to_owned()),
        window: Duration::from_secs(10),
        metrics_address: None,
        repeat: 1,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (dir, run) = runtime
        .block_on(experiment::run(scenario, &options))
        .unwrap_or_else(|e| panic!("{e:#}"));
    (results, dir, run)
}
