//! The scenario file of an experiment (docs/experiments.md): what load to put on the operator, for
//! how long, and at which shard counts.
//!
//! The original's scenarios (docs/experiments.md#scenarios) are sized for a remote cluster; a
//! 2-core machine that also runs the control plane cannot carry them, so every rate, count and
//! duration is a parameter of a file in `experiments/`. A file is read in two steps: serde reads
//! the YAML into a private raw form (camelCase keys, unknown keys rejected, everything optional),
//! then validation applies the defaults and checks every value with pure rules, one function each,
//! producing a [`Scenario`]. Errors name the file, the field path and the problem, so an invalid
//! file fails before anything starts.
//!
//! A [`Scenario`] serializes back to the file's format, so `run.json` records it as it ran and
//! can be read again as a scenario.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_sharding::strategy::Strategy;
use serde::{Serialize, Serializer};

use crate::{measure::slo::Slo, workload::Workload};

mod controller;
mod faults;
mod raw;
pub(crate) mod rules;

pub use faults::{DEFAULT_SYNC_PERIOD, Fault, FaultKind, PauseTarget, Sharder};

pub use controller::{
    ClusterController, Controller, LocalController, PLACEHOLDERS, RenderedCommand, ShardValues,
    ShardWorkload, WorkloadKind,
};

/// How long to wait after the load before the final measurements, when `settle` is not set.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(30);

/// `search.precision` when not set: the bracket is within 10 %.
pub const DEFAULT_PRECISION: f64 = 0.1;

/// `search.maxSteps` when not set: from a range of 32× (for example 2 to 64 changes/s),
/// doubling takes at most 6 steps and bisecting to 10 % 3 more.
pub const DEFAULT_MAX_STEPS: u32 = 12;

/// `search.workers` when not set.
pub const DEFAULT_SEARCH_WORKERS: u32 = 20;

/// Why a scenario file was rejected. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file could not be read.
    #[error("cannot read scenario {}", file.display())]
    Read {
        /// The scenario file.
        file: PathBuf,
        /// Why reading failed.
        #[source]
        source: io::Error,
    },
    /// The file is not YAML or not shaped like a scenario: an unknown field, a wrong type, a
    /// duplicate key.
    #[error("{}: cannot parse scenario", file.display())]
    Parse {
        /// The scenario file.
        file: PathBuf,
        /// The YAML parser's error, which names the field and its line.
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A field is missing or has a value that is not allowed, alone or with other fields.
    #[error("{}: {field}: {problem}", file.display())]
    Invalid {
        /// The scenario file.
        file: PathBuf,
        /// The field path, such as `load.create.rate`.
        field: String,
        /// What is wrong, with the value as written, such as `must be greater than 0, got -1`.
        problem: String,
    },
}

/// The result of loading a scenario.
pub type Result<T, E = ScenarioError> = std::result::Result<T, E>;

/// A validated scenario, with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `name`: `[a-z0-9-]+`, part of run ids.
    pub name: String,
    /// `description`: free text, empty when not set.
    pub description: String,
    /// `duration`: how long the load runs at each shard count; with [`Self::search`], how long
    /// each step of the search holds its churn (`search.hold`).
    pub duration: Duration,
    /// `settle`: the wait after the load before the final measurements; zero with a search,
    /// whose steps drain instead.
    pub settle: Duration,
    /// `shards`: the sweep, shard counts in strictly increasing order.
    pub shards: Vec<u32>,
    /// `strategies`: the assignment strategies each shard count runs under, in the file's
    /// order, each once; `[hash-ring]` when not set (docs/experiments.md#assignment-strategies).
    pub strategies: Vec<Strategy>,
    /// `world`: the namespaces, Themes and Websites that exist before the load.
    pub world: World,
    /// `workloads`: what the load creates, changes and deletes (docs/workloads.md); when not
    /// set, the Website workload with `world.themes` Themes.
    pub workloads: Vec<Workload>,
    /// `load`: the operations on Websites during the load; `None` exactly when the scenario
    /// searches capacity instead.
    pub load: Option<Load>,
    /// `search`: a search of the highest sustainable churn instead of one load
    /// (docs/experiments.md#capacity-search).
    pub search: Option<Search>,
    /// `chaos`: shards killed during the load.
    pub chaos: Option<Chaos>,
    /// `rollingUpdate`: rolling restarts of the operator during the load.
    pub rolling_update: Option<RollingUpdate>,
    /// `operator`: how each operator shard runs.
    pub operator: Operator,
    /// `controller`: the controller under test; the webhosting-operator when not set
    /// (docs/experiments.md#the-controller-under-test).
    pub controller: Controller,
    /// `slo`: the thresholds of the SLO verdicts.
    pub slo: Slo,
    /// `sharder`: the sharder's replicas; one when not set (docs/experiments.md#faults).
    pub sharder: Sharder,
    /// `faults`: faults injected during the load, in order (docs/experiments.md#faults).
    pub faults: Vec<Fault>,
}

/// The file's shape of a [`Scenario`]: a search has neither `duration` nor `settle`, which
/// it derives, nor `load`; the default workload is `world.themes`; so that `run.json`'s
/// scenario reads back as the same scenario.
impl Serialize for Scenario {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct File<'a> {
            name: &'a str,
            description: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            duration: Option<String>,
            #[serde(skip_serializing_if = "Option::is_none")]
            settle: Option<String>,
            shards: &'a [u32],
            #[serde(skip_serializing_if = "Option::is_none")]
            strategies: Option<&'a [Strategy]>,
            world: &'a World,
            #[serde(skip_serializing_if = "Option::is_none")]
            workloads: Option<&'a [Workload]>,
            #[serde(skip_serializing_if = "Option::is_none")]
            load: Option<&'a Load>,
            #[serde(skip_serializing_if = "Option::is_none")]
            search: Option<&'a Search>,
            #[serde(skip_serializing_if = "Option::is_none")]
            chaos: Option<&'a Chaos>,
            #[serde(skip_serializing_if = "Option::is_none")]
            rolling_update: Option<&'a RollingUpdate>,
            #[serde(skip_serializing_if = "Option::is_none")]
            operator: Option<OperatorFile>,
            #[serde(skip_serializing_if = "Option::is_none")]
            controller: Option<&'a Controller>,
            #[serde(serialize_with = "slo_fields")]
            slo: &'a Slo,
            #[serde(skip_serializing_if = "Option::is_none")]
            sharder: Option<&'a Sharder>,
            #[serde(skip_serializing_if = "<[Fault]>::is_empty")]
            faults: &'a [Fault],
        }
        let load = self.search.is_none();
        File {
            name: &self.name,
            description: &self.description,
            duration: load.then(|| format_duration(self.duration)),
            settle: load.then(|| format_duration(self.settle)),
            shards: &self.shards,
            // Not written when not set, so that a run.json without the axis reads as before.
            strategies: (!self.default_strategies()).then_some(self.strategies.as_slice()),
            world: &self.world,
            // The default workload is written as the `world.themes` it was made from.
            workloads: (self.world.themes == 0).then_some(self.workloads.as_slice()),
            load: self.load.as_ref(),
            search: self.search.as_ref(),
            chaos: self.chaos.as_ref(),
            rolling_update: self.rolling_update.as_ref(),
            operator: OperatorFile::of(&self.operator, &self.controller),
            controller: Some(&self.controller).filter(|c| !c.is_default()),
            slo: &self.slo,
            sharder: Some(&self.sharder).filter(|s| **s != Sharder::default()),
            faults: &self.faults,
        }
        .serialize(serializer)
    }
}

/// `operator` as written back: only the settings the controller's command uses, which are
/// the only ones a scenario may set.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OperatorFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    simulated_work: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_duration: Option<String>,
}

impl OperatorFile {
    /// The settings of `operator` that `controller` uses; `None` when it uses none.
    fn of(operator: &Operator, controller: &Controller) -> Option<Self> {
        let file = Self {
            workers: controller.uses("workers").then_some(operator.workers),
            simulated_work: controller
                .uses("simulated_work")
                .then(|| format_duration(operator.simulated_work)),
            lease_duration: controller
                .uses("lease_duration")
                .then(|| format_duration(operator.lease_duration)),
        };
        (file.workers.is_some() || file.simulated_work.is_some() || file.lease_duration.is_some())
            .then_some(file)
    }
}

/// `search`: on a fixed world of `world.initialWebsites`, steps of offered churn (changes of
/// existing Websites per second), each held for `hold`, bisecting between the highest step
/// that met every SLO and the lowest that did not until they are within `precision`
/// (docs/experiments.md#capacity-search).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Search {
    /// `churn`: the range searched, in changes per second; the first step offers `from`.
    pub churn: Ramp,
    /// `hold`: how long each step offers its churn.
    #[serde(serialize_with = "duration_text")]
    pub hold: Duration,
    /// `drain`: the longest wait after a step for its changes to be reconciled before the
    /// next step starts; what is still outstanding then counts as censored.
    #[serde(serialize_with = "duration_text")]
    pub drain: Duration,
    /// `precision`: the search ends when the lowest failing step is within this fraction above
    /// the highest passing one.
    pub precision: f64,
    /// `maxSteps`: the most steps per shard count, whatever the precision reached.
    pub max_steps: u32,
    /// `workers`: concurrent update requests.
    pub workers: u32,
}

/// `world`: what exists before the load starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct World {
    /// `namespaces`: `project-*` namespaces labelled `webhosting.timebertt.dev/project=true`.
    pub namespaces: u32,
    /// `themes`: the Theme fixtures of the default Website workload; 0 when the scenario
    /// declares `workloads`, which declare their own fixtures.
    #[serde(skip_serializing_if = "is_zero")]
    pub themes: u32,
    /// `initialWebsites`: objects created before the load starts, of all workloads, shared by
    /// weight; the name is the one from before workloads, kept so that scenario files stay
    /// valid.
    pub initial_websites: u32,
}

/// `load`: the operations on Websites, each on its own open-loop schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Load {
    /// `create`: Website creates.
    pub create: Create,
    /// `delete`: Website deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete: Option<Delete>,
    /// `mutate`: theme changes of every Website.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mutate: Option<Mutate>,
}

/// `load.create`: Websites created per second, constant or ramped.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Create {
    /// `rate` or `ramp`.
    #[serde(flatten)]
    pub rate: CreateRate,
    /// `workers`: concurrent create requests.
    pub workers: u32,
}

/// The create rate over the load's duration.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub enum CreateRate {
    /// `rate`: Websites per second throughout.
    #[serde(rename = "rate")]
    Constant(f64),
    /// `ramp`: the rate rises linearly over the duration, for capacity runs (docs/experiments.md).
    #[serde(rename = "ramp")]
    Ramp(Ramp),
}

impl CreateRate {
    /// The rate at `fraction` (0 to 1) of the load's duration.
    fn at(self, fraction: f64) -> f64 {
        match self {
            Self::Constant(rate) => rate,
            Self::Ramp(Ramp { from, to }) => from + (to - from) * fraction,
        }
    }

    /// The mean rate from the start of the load to `fraction` (0 to 1) of its duration.
    fn mean_until(self, fraction: f64) -> f64 {
        f64::midpoint(self.at(0.0), self.at(fraction))
    }
}

/// `load.create.ramp`: a linear rise of the rate, in Websites per second; also the range of
/// `search.churn`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Ramp {
    /// `from`: the rate when the load starts.
    pub from: f64,
    /// `to`: the rate when the load ends.
    pub to: f64,
}

/// `load.delete`: Websites deleted per second.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Delete {
    /// `rate`: Websites per second.
    pub rate: f64,
    /// `workers`: concurrent delete requests.
    pub workers: u32,
}

/// `load.mutate`: every Website gets a random theme once per interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Mutate {
    /// `interval`: how often each Website is mutated.
    #[serde(serialize_with = "duration_text")]
    pub interval: Duration,
    /// `workers`: concurrent update requests.
    pub workers: u32,
}

/// `chaos`: one random shard killed every interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Chaos {
    /// `interval`: time between kills; the first comes one interval after the load starts.
    #[serde(serialize_with = "duration_text")]
    pub interval: Duration,
    /// `signal`: how shards are killed.
    pub signal: ChaosSignal,
    /// `restart`: whether a replacement shard is started after each kill.
    pub restart: bool,
}

/// `chaos.signal`: the signals of the kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum ChaosSignal {
    /// `SIGKILL`: involuntary failovers only.
    #[serde(rename = "SIGKILL")]
    Kill,
    /// `SIGTERM`: voluntary (graceful) failovers only.
    #[serde(rename = "SIGTERM")]
    Term,
    /// `alternate`: SIGTERM, then SIGKILL, then SIGTERM…, so one run measures both kinds.
    #[serde(rename = "alternate")]
    Alternate,
}

/// A signal that kills a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Signal {
    /// SIGKILL: the shard dies without releasing its Lease.
    #[serde(rename = "SIGKILL")]
    Kill,
    /// SIGTERM: the shard releases its Lease as it shuts down (docs/contract.md#shard-leases).
    #[serde(rename = "SIGTERM")]
    Term,
}

impl ChaosSignal {
    /// The signal of the kill numbered `kill`, counting from 0.
    #[must_use]
    pub fn signal(self, kill: u32) -> Signal {
        match self {
            Self::Kill => Signal::Kill,
            Self::Alternate if !kill.is_multiple_of(2) => Signal::Kill,
            Self::Term | Self::Alternate => Signal::Term,
        }
    }
}

/// `rollingUpdate`: every shard restarted one by one every interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RollingUpdate {
    /// `interval`: time between rolling restarts; the first comes one interval after the load
    /// starts.
    #[serde(serialize_with = "duration_text")]
    pub interval: Duration,
}

/// `operator`: how each shard runs: the webhosting-operator's flags, and the placeholders
/// `workers`, `simulated_work` and `lease_duration` of a declared controller's command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operator {
    /// `workers`: concurrent reconciliations per shard.
    pub workers: u32,
    /// `simulatedWork`: a wait in every reconciliation, so that capacity is bounded by the
    /// operator rather than the machine.
    #[serde(serialize_with = "duration_text")]
    pub simulated_work: Duration,
    /// `leaseDuration`: the shard Lease's duration, whole seconds.
    #[serde(serialize_with = "duration_text")]
    pub lease_duration: Duration,
}

impl Default for Operator {
    /// As in the original's evaluation (docs/experiments.md#the-originals-evaluation): 5 workers
    /// per shard and no simulated work; leaseDurationSeconds 15 (docs/contract.md#shard-leases).
    fn default() -> Self {
        Self {
            workers: 5,
            simulated_work: Duration::ZERO,
            lease_duration: Duration::from_secs(15),
        }
    }
}

impl Scenario {
    /// Reads, parses and validates the scenario file at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses and validates a scenario file's content; `source` is the file named in errors.
    pub fn from_yaml(text: &str, source: &Path) -> Result<Self> {
        // One line, such as "unknown field `duraton`, expected one of ... at line 3, column 1":
        // errors are printed on one line, so without the multi-line source snippet.
        let options = serde_saphyr::options! { with_snippet: false };
        let raw: raw::RawScenario =
            serde_saphyr::from_str_with_options(text, options).map_err(|error| {
                ScenarioError::Parse {
                    file: source.to_owned(),
                    source: Box::new(error),
                }
            })?;
        raw.validate(source)
    }

    /// The create rate, in Websites per second, `elapsed` after the load started: constant, or
    /// on the ramp. After the load's duration it stays at the final rate.
    #[must_use]
    pub fn create_rate_at(&self, elapsed: Duration) -> f64 {
        let fraction = self.fraction_of_duration(elapsed);
        self.load
            .as_ref()
            .map_or(0.0, |load| load.create.rate.at(fraction))
    }

    /// Whether a run measures capacity at the first breach: only under a ramp of creates
    /// (docs/experiments.md). Under a steady load, a breach says when the load was too much or
    /// a failover held it up, not how much load a shard count carries; a search measures
    /// capacity its own way.
    #[must_use]
    pub fn measures_capacity(&self) -> bool {
        self.load
            .as_ref()
            .is_some_and(|load| matches!(load.create.rate, CreateRate::Ramp(_)))
    }

    /// The Websites created by `elapsed` after the load started according to the schedule
    /// (the integral of [`Self::create_rate_at`]), counting no creates after the duration.
    #[must_use]
    pub fn creates_by(&self, elapsed: Duration) -> f64 {
        let fraction = self.fraction_of_duration(elapsed);
        self.load.as_ref().map_or(0.0, |load| {
            load.create.rate.mean_until(fraction) * elapsed.min(self.duration).as_secs_f64()
        })
    }

    /// The Websites that exist when the load ends: the initial ones plus the creates minus the
    /// deletes over the duration. For docs and reports; validation ensures it is not negative.
    #[must_use]
    pub fn expected_websites(&self) -> f64 {
        let deletes = self
            .load
            .as_ref()
            .and_then(|load| load.delete)
            .map_or(0.0, |delete| delete.rate * self.duration.as_secs_f64());
        f64::from(self.world.initial_websites) + self.creates_by(self.duration) - deletes
    }

    /// How many shards the chaos kills at each shard count: one every interval up to and
    /// including the end of the load.
    #[must_use]
    pub fn kills(&self) -> u32 {
        self.chaos.map_or(0, |chaos| {
            rules::intervals_within(chaos.interval, self.duration)
        })
    }

    /// Whether the scenario runs only the default strategy, hash-ring: then nothing of the
    /// strategy axis shows in its results (docs/experiments.md#assignment-strategies).
    #[must_use]
    pub fn default_strategies(&self) -> bool {
        self.strategies == [Strategy::default()]
    }

    /// The runs of the sweep as (strategy, shard count, repetition): shard count by shard
    /// count, each under every strategy in a row, so that the runs a report sets side by side
    /// ran close in time; repeated `repeat` times round the whole sweep, so that a drift of the
    /// machine spreads over every run.
    #[must_use]
    pub fn runs(&self, repeat: u32) -> Vec<(Strategy, u32, u32)> {
        (1..=repeat.max(1))
            .flat_map(|repetition| {
                self.shards.iter().flat_map(move |&shards| {
                    self.strategies
                        .iter()
                        .map(move |&strategy| (strategy, shards, repetition))
                })
            })
            .collect()
    }

    /// `elapsed` as a fraction of the duration, at most 1.
    fn fraction_of_duration(&self, elapsed: Duration) -> f64 {
        (elapsed.as_secs_f64() / self.duration.as_secs_f64()).min(1.0)
    }
}

/// A duration as a scenario file writes it: `15m`, `30s`, `500ms`, `1h`, `0s`.
/// The shard counts of `sweep` that `selected` names, in the sweep's order; an error names a
/// count that is not in the sweep.
pub fn select_shards(sweep: &[u32], selected: &[u32]) -> Result<Vec<u32>, String> {
    if let Some(missing) = selected.iter().find(|n| !sweep.contains(n)) {
        return Err(format!(
            "{missing} is not a shard count of the scenario's sweep {sweep:?}"
        ));
    }
    Ok(sweep
        .iter()
        .copied()
        .filter(|n| selected.contains(n))
        .collect())
}

#[must_use]
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    match duration.subsec_nanos() {
        0 if seconds == 0 => "0s".to_owned(),
        0 if seconds.is_multiple_of(3600) => format!("{}h", seconds / 3600),
        0 if seconds.is_multiple_of(60) => format!("{}m", seconds / 60),
        0 => format!("{seconds}s"),
        nanos if nanos.is_multiple_of(1_000_000) => format!("{}ms", duration.as_millis()),
        _ => format!("{}s", duration.as_secs_f64()),
    }
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde passes fields by reference"
)]
fn is_zero(count: &u32) -> bool {
    *count == 0
}

fn duration_text<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_duration(*duration))
}

/// The SLO in the file's shape; [`Slo`] belongs to `measure`, which has no serde.
fn slo_fields<S: Serializer>(slo: &Slo, serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Fields {
        #[serde(serialize_with = "duration_text")]
        reconciliation_p99: Duration,
        #[serde(serialize_with = "duration_text")]
        queue_p99: Duration,
    }
    Fields {
        reconciliation_p99: slo.reconciliation_p99,
        queue_p99: slo.queue_p99,
    }
    .serialize(serializer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASIC: &str = "\
name: basic
description: the original's basic, scaled
duration: 15m
settle: 20s
shards: [1, 2, 3]
world:
  namespaces: 20
  themes: 50
  initialWebsites: 100
load:
  create: {rate: 12, workers: 10}
  delete: {rate: 2, workers: 5}
  mutate: {interval: 1m, workers: 10}
chaos:
  interval: 5m
  signal: alternate
rollingUpdate:
  interval: 5m
operator:
  workers: 4
  simulatedWork: 50ms
  leaseDuration: 10s
slo:
  reconciliationP99: 4s
  queueP99: 500ms
";

    fn parse(text: &str) -> Result<Scenario> {
        Scenario::from_yaml(text, Path::new("experiments/test.yaml"))
    }

    /// The error and its causes, as the CLI prints them.
    fn message(text: &str) -> String {
        operations::error_chain(&parse(text).expect_err("the scenario is invalid"))
    }

    fn minimal() -> String {
        "\
name: minimal
duration: 10m
shards: [1]
world: {namespaces: 2, themes: 3}
load:
  create: {rate: 1, workers: 1}
"
        .to_owned()
    }

    fn ramp(from: f64, to: f64) -> Scenario {
        let mut scenario = parse(&minimal()).unwrap();
        scenario.load.as_mut().unwrap().create.rate = CreateRate::Ramp(Ramp { from, to });
        scenario
    }

    #[test]
    fn a_sweep_can_be_narrowed_to_some_of_its_shard_counts() {
        assert_eq!(select_shards(&[1, 2, 3], &[3, 1]), Ok(vec![1, 3]));
        assert_eq!(
            select_shards(&[1, 2, 3], &[4]),
            Err("4 is not a shard count of the scenario's sweep [1, 2, 3]".to_owned())
        );
    }

    #[test]
    fn a_full_file_sets_every_field() {
        let scenario = parse(BASIC).unwrap();
        assert_eq!(
            scenario,
            Scenario {
                name: "basic".to_owned(),
                description: "the original's basic, scaled".to_owned(),
                duration: Duration::from_secs(900),
                settle: Duration::from_secs(20),
                shards: vec![1, 2, 3],
                strategies: vec![Strategy::HashRing],
                world: World {
                    namespaces: 20,
                    themes: 50,
                    initial_websites: 100,
                },
                workloads: vec![Workload::websites(50)],
                load: Some(Load {
                    create: Create {
                        rate: CreateRate::Constant(12.0),
                        workers: 10,
                    },
                    delete: Some(Delete {
                        rate: 2.0,
                        workers: 5,
                    }),
                    mutate: Some(Mutate {
                        interval: Duration::from_secs(60),
                        workers: 10,
                    }),
                }),
                search: None,
                chaos: Some(Chaos {
                    interval: Duration::from_secs(300),
                    signal: ChaosSignal::Alternate,
                    restart: true,
                }),
                rolling_update: Some(RollingUpdate {
                    interval: Duration::from_secs(300),
                }),
                operator: Operator {
                    workers: 4,
                    simulated_work: Duration::from_millis(50),
                    lease_duration: Duration::from_secs(10),
                },
                controller: Controller::webhosting_operator(),
                slo: Slo {
                    reconciliation_p99: Duration::from_secs(4),
                    queue_p99: Duration::from_millis(500),
                },
                sharder: Sharder::default(),
                faults: Vec::new(),
            }
        );
    }

    #[test]
    fn omitted_fields_take_the_spec_defaults() {
        let scenario = parse(&minimal()).unwrap();
        assert_eq!(scenario.description, "");
        assert_eq!(scenario.settle, Duration::from_secs(30));
        assert_eq!(scenario.world.initial_websites, 0);
        let load = scenario.load.unwrap();
        assert_eq!(load.delete, None);
        assert_eq!(load.mutate, None);
        assert_eq!(scenario.chaos, None);
        assert_eq!(scenario.rolling_update, None);
        assert_eq!(scenario.operator.workers, 5);
        assert_eq!(scenario.operator.simulated_work, Duration::ZERO);
        assert_eq!(scenario.operator.lease_duration, Duration::from_secs(15));
        assert_eq!(scenario.slo.reconciliation_p99, Duration::from_secs(5));
        assert_eq!(scenario.slo.queue_p99, Duration::from_secs(1));
    }

    #[test]
    fn chaos_restarts_shards_unless_told_not_to() {
        let with_chaos = |restart: &str| {
            // Two kills leave one of three shards.
            let text = format!(
                "{}chaos: {{interval: 5m, signal: SIGKILL{restart}}}\n",
                minimal().replace("shards: [1]", "shards: [3]")
            );
            parse(&text).unwrap().chaos.unwrap().restart
        };
        assert!(with_chaos(""));
        assert!(!with_chaos(", restart: false"));
    }

    #[test]
    fn faults_and_sharder_replicas_read_and_write_back_and_are_named_by_their_path() {
        let text = format!(
            "{}sharder: {{replicas: 2, syncPeriod: 20s}}\nfaults:\n\
             - {{at: 1m, kind: killSharderLeader, during: move}}\n\
             - {{at: 2m, kind: pause, target: sharderLeader, duration: 20s}}\n\
             - {{at: 3m, kind: stopApiServer, duration: 20s}}\n",
            minimal().replace("shards: [1]", "shards: [3]")
        );
        let scenario = parse(&text).unwrap();
        assert_eq!(scenario.sharder.replicas, 2);
        assert_eq!(scenario.faults.len(), 3);
        assert_eq!(
            scenario.faults[2].kind,
            FaultKind::StopApiServer {
                duration: Duration::from_secs(20)
            }
        );
        let json = serde_json::to_string(&scenario).unwrap();
        assert_eq!(parse(&json).unwrap(), scenario, "{json}");
        // Without them, the file is written as before.
        let plain = serde_json::to_value(parse(&minimal()).unwrap()).unwrap();
        assert_eq!(plain.get("sharder"), None);
        assert_eq!(plain.get("faults"), None);
        assert_eq!(
            message(&text.replace("duration: 20s}\n- {at: 3m", "duration: 9m}\n- {at: 3m")),
            "experiments/test.yaml: faults[1].duration: must end within the load: at (2m) + 9m \
             is past duration (10m)"
        );
        assert_eq!(
            message(&text.replace("replicas: 2", "replicas: 3")),
            "experiments/test.yaml: sharder.replicas: must be 1 or 2, got 3"
        );
        let error = message(&text.replace("kind: pause", "kind: freeze"));
        assert!(error.contains("unknown variant `freeze`"), "{error}");
    }

    #[test]
    fn a_scenario_serializes_to_a_file_that_reads_back_the_same() {
        for text in [BASIC.to_owned(), minimal()] {
            let scenario = parse(&text).unwrap();
            // JSON is YAML: run.json's scenario is a scenario file.
            let json = serde_json::to_string(&scenario).unwrap();
            assert_eq!(parse(&json).unwrap(), scenario, "{json}");
        }
        let json = serde_json::to_value(ramp(1.0, 30.0)).unwrap();
        assert_eq!(
            json["load"]["create"],
            serde_json::json!({"ramp": {"from": 1.0, "to": 30.0}, "workers": 1})
        );
        assert_eq!(json["duration"], "10m");
    }

    /// `minimal` with the checksum-controller's example workload instead of the Websites.
    fn with_workloads() -> String {
        let workload = include_str!("../../../experiments/workloads/checksum-secrets.yaml");
        let entry: String = workload
            .lines()
            .flat_map(|line| ["    ", line, "\n"])
            .collect();
        let entry = entry.replacen("    name:", "  - name:", 1);
        minimal().replace("themes: 3", "initialWebsites: 10")
            + "workloads:\n"
            + &entry
            + CHECKSUM_CONTROLLER_ON_A_CLUSTER
    }

    /// The checksum-controller as deployed on a cluster, the ring of its example workload.
    const CHECKSUM_CONTROLLER_ON_A_CLUSTER: &str = "\
controller:
  name: checksum-controller
  ring: checksum-controller
  leaseNamespace: checksum-system
  queue: secret
  cluster:
    deployment: checksum-system/checksum-controller
";

    #[test]
    fn a_workload_may_be_read_from_a_file_next_to_the_scenario() {
        let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/test.yaml");
        let by_file = |entry: &str| {
            let text = minimal().replace("themes: 3", "initialWebsites: 10")
                + "workloads:\n"
                + entry
                + CHECKSUM_CONTROLLER_ON_A_CLUSTER;
            Scenario::from_yaml(&text, &experiments)
        };
        let inline = parse(&with_workloads()).unwrap();
        let read = by_file("- file: workloads/checksum-secrets.yaml\n").unwrap();
        assert_eq!(read.workloads, inline.workloads);
        let problem = |entry: &str| match by_file(entry) {
            Err(ScenarioError::Invalid { field, problem, .. }) => format!("{field}: {problem}"),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            problem("- {file: workloads/checksum-secrets.yaml, weight: 2}\n"),
            "workloads[0].file: is not allowed with other fields: the file holds the whole \
             workload"
        );
        assert!(
            problem("- file: workloads/missing.yaml\n").starts_with(&format!(
                "workloads[0].file: cannot read {}",
                experiments
                    .with_file_name("workloads/missing.yaml")
                    .display()
            )),
            "{}",
            problem("- file: workloads/missing.yaml\n")
        );
    }

    #[test]
    fn every_workload_belongs_to_the_ring_of_the_controller_under_test() {
        let text = with_workloads().replace(CHECKSUM_CONTROLLER_ON_A_CLUSTER, "");
        assert_eq!(
            message(&text),
            "experiments/test.yaml: workloads[0].controllerRing: is \"checksum-controller\", but \
             the controller under test shards the ring \"webhosting-operator\" \
             (controller.ring): a scenario measures one ring"
        );
    }

    #[test]
    fn without_workloads_the_websites_are_the_workload() {
        assert_eq!(
            parse(&minimal()).unwrap().workloads,
            [Workload::websites(3)]
        );
    }

    #[test]
    fn declared_workloads_replace_the_websites_and_read_back_the_same() {
        let scenario = parse(&with_workloads()).unwrap();
        assert_eq!(scenario.world.themes, 0);
        assert_eq!(scenario.workloads.len(), 1);
        assert_eq!(scenario.workloads[0].name, "checksum-secrets");
        let json = serde_json::to_string(&scenario).unwrap();
        assert_eq!(parse(&json).unwrap(), scenario, "{json}");
        let value = serde_json::to_value(&scenario).unwrap();
        assert_eq!(value["world"].get("themes"), None);
        assert_eq!(
            value["workloads"][0]["reconciled"]["related"]["name"],
            "{{ object.metadata.name }}-checksum"
        );
    }

    #[test]
    fn declared_workloads_do_not_take_world_themes() {
        let text = with_workloads().replace("initialWebsites: 10", "themes: 3");
        assert_eq!(
            message(&text),
            "experiments/test.yaml: world.themes: is not allowed with workloads: it sizes the \
             default Website workload's Theme fixtures; declare fixtures instead"
        );
    }

    #[test]
    fn an_invalid_workload_is_named_by_its_full_path() {
        let text = with_workloads().replace(
            "kind: Secret\n      metadata:",
            "kind: ConfigMap\n      metadata:",
        );
        assert_ne!(text, with_workloads());
        assert_eq!(
            message(&text),
            "experiments/test.yaml: workloads[0].template: renders kind ConfigMap, the resource \
             is Secret"
        );
        let text = with_workloads().replace("controllerRing:", "controllerRinq:");
        assert!(
            message(&text).contains("unknown field `controllerRinq`"),
            "{text}"
        );
    }

    #[test]
    fn durations_are_read_in_gos_syntax_as_in_the_sharder_config() {
        let scenario = parse(&minimal().replace("duration: 10m", "duration: 1h30m")).unwrap();
        assert_eq!(scenario.duration, Duration::from_secs(5400));
        let settle = parse(&format!("{}settle: 1m30.5s\n", minimal())).unwrap();
        assert_eq!(settle.settle, Duration::from_millis(90_500));
    }

    #[test]
    fn durations_are_written_in_their_largest_whole_unit() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(900), "15m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(1500), "0.0015s"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(duration), text);
            assert_eq!(operations::duration::parse(text), Ok(duration), "{text}");
        }
    }

    #[test]
    fn an_unknown_field_is_named_with_its_line() {
        let text = minimal().replace("duration:", "duraton:");
        let error = message(&text);
        assert!(
            error.starts_with(
                "experiments/test.yaml: cannot parse scenario: unknown field `duraton`, \
                 expected one of name, description, duration,"
            ),
            "{error}"
        );
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn an_unknown_nested_field_and_signal_are_parse_errors() {
        let error = message(&format!("{}operator: {{wrokers: 5}}\n", minimal()));
        assert!(error.contains("unknown field `wrokers`"), "{error}");
        let text = format!("{}chaos: {{interval: 5m, signal: SIGINT}}\n", minimal());
        let error = message(&text);
        assert!(error.contains("unknown variant `SIGINT`"), "{error}");
        assert!(
            error.contains("expected one of SIGKILL, SIGTERM, alternate"),
            "{error}"
        );
    }

    #[test]
    fn a_duplicate_key_is_a_parse_error() {
        let error = message(&format!("{}duration: 5m\n", minimal()));
        assert!(error.contains("duplicate"), "{error}");
    }

    #[test]
    fn a_missing_field_is_named_by_its_path() {
        let cases = [
            ("name: minimal\n", "", "name: is required"),
            ("duration: 10m\n", "", "duration: is required"),
            ("shards: [1]\n", "", "shards: is required"),
            (
                "world: {namespaces: 2, themes: 3}\n",
                "",
                "world: is required",
            ),
            (
                "world: {namespaces: 2, themes: 3}\n",
                "world: {namespaces: 2}\n",
                "world.themes: is required",
            ),
            (
                "load:\n  create: {rate: 1, workers: 1}\n",
                "",
                "load: is required",
            ),
            (
                "  create: {rate: 1, workers: 1}\n",
                "  create: {rate: 1}\n",
                "load.create.workers: is required",
            ),
        ];
        for (from, to, expected) in cases {
            let error = message(&minimal().replace(from, to));
            assert_eq!(error, format!("experiments/test.yaml: {expected}"));
        }
        let error = message(&format!("{}chaos: {{interval: 5m}}\n", minimal()));
        assert_eq!(error, "experiments/test.yaml: chaos.signal: is required");
    }

    #[test]
    fn an_invalid_value_is_named_by_its_path() {
        let cases = [
            (
                "name: minimal",
                "name: Minimal",
                "name: must match [a-z0-9-]+, got \"Minimal\"",
            ),
            (
                "duration: 10m",
                "duration: 0s",
                "duration: must be greater than 0s",
            ),
            (
                "duration: 10m",
                "duration: soon",
                "duration: invalid duration \"soon\": expected e.g. 20s, 500ms, 1h30m",
            ),
            (
                "shards: [1]",
                "shards: [2, 1]",
                "shards: must be strictly increasing, got [2, 1]",
            ),
            ("shards: [1]", "shards: []", "shards: must not be empty"),
            (
                "shards: [1]",
                "shards: [0, 1]",
                "shards: must each be at least 1, got [0, 1]",
            ),
            (
                "namespaces: 2",
                "namespaces: 0",
                "world.namespaces: must be at least 1, got 0",
            ),
            (
                "themes: 3",
                "themes: -3",
                "world.themes: must be at least 1, got -3",
            ),
            (
                "rate: 1,",
                "rate: -1,",
                "load.create.rate: must be greater than 0, got -1",
            ),
            (
                "rate: 1,",
                "rate: .inf,",
                "load.create.rate: must be a finite number, got inf",
            ),
            (
                "rate: 1,",
                "rate: 1, ramp: {from: 1, to: 2},",
                "load.create: set either rate or ramp, not both",
            ),
            ("rate: 1,", "", "load.create: set either rate or ramp"),
            (
                "rate: 1,",
                "ramp: {from: 2, to: 1},",
                "load.create.ramp.to: must be greater than from (2), got 1",
            ),
            (
                "rate: 1,",
                "ramp: {from: -1, to: 1},",
                "load.create.ramp.from: must be at least 0, got -1",
            ),
            (
                "rate: 1,",
                "ramp: {to: 1},",
                "load.create.ramp.from: is required",
            ),
            (
                "workers: 1",
                "workers: 1001",
                "load.create.workers: must be between 1 and 1000, got 1001",
            ),
        ];
        for (from, to, expected) in cases {
            let text = minimal().replace(from, to);
            assert_ne!(text, minimal(), "{from}");
            let error = message(&text);
            assert_eq!(error, format!("experiments/test.yaml: {expected}"));
        }
    }

    #[test]
    fn an_invalid_optional_section_is_named_by_its_path() {
        // Top-level sections go before `shards`, load sections after `load:`.
        let cases = [
            (
                "load:\n  ",
                "delete: {rate: 0, workers: 1}",
                "load.delete.rate: must be greater than 0, got 0",
            ),
            (
                "load:\n  ",
                "delete: {rate: 1, workers: 0}",
                "load.delete.workers: must be between 1 and 1000, got 0",
            ),
            (
                "load:\n  ",
                "mutate: {interval: 0s, workers: 1}",
                "load.mutate.interval: must be greater than 0s",
            ),
            (
                "load:\n  ",
                "mutate: {interval: 11m, workers: 1}",
                "load.mutate.interval: must not be longer than duration (10m), got 11m",
            ),
            (
                "",
                "chaos: {interval: 11m, signal: SIGKILL}",
                "chaos.interval: must not be longer than duration (10m), got 11m",
            ),
            (
                "",
                "rollingUpdate: {interval: 0s}",
                "rollingUpdate.interval: must be greater than 0s",
            ),
            (
                "",
                "rollingUpdate: {interval: 11m}",
                "rollingUpdate.interval: must not be longer than duration (10m), got 11m",
            ),
            (
                "",
                "operator: {workers: 0}",
                "operator.workers: must be between 1 and 1000, got 0",
            ),
            (
                "",
                "operator: {leaseDuration: 1s}",
                "operator.leaseDuration: must be at least 2s, got 1s",
            ),
            (
                "",
                "operator: {leaseDuration: 2500ms}",
                "operator.leaseDuration: must be whole seconds, got 2500ms",
            ),
            (
                "",
                "operator: {simulatedWork: -1s}",
                "operator.simulatedWork: invalid duration \"-1s\": must not be negative",
            ),
            (
                "",
                "slo: {reconciliationP99: 0s}",
                "slo.reconciliationP99: must be greater than 0s",
            ),
            (
                "",
                "slo: {queueP99: 0ms}",
                "slo.queueP99: must be greater than 0s",
            ),
            (
                "",
                "settle: forever",
                "settle: invalid duration \"forever\": expected e.g. 20s, 500ms, 1h30m",
            ),
        ];
        for (indent, section, expected) in cases {
            let text = if indent.is_empty() {
                minimal().replace("shards:", &format!("{section}\nshards:"))
            } else {
                minimal().replace(indent, &format!("{indent}{section}\n  "))
            };
            let error = message(&text);
            assert_eq!(
                error,
                format!("experiments/test.yaml: {expected}"),
                "{text}"
            );
        }
        let text = minimal().replace("themes: 3", "themes: 3, initialWebsites: -1");
        assert_eq!(
            message(&text),
            "experiments/test.yaml: world.initialWebsites: must be at least 0, got -1"
        );
    }

    #[test]
    fn a_scenario_of_absurd_size_is_rejected_by_its_field() {
        let cases = [
            (
                "shards: [1]",
                "shards: [1, 1000]",
                "shards: must each be at most 256, got [1, 1000]",
            ),
            (
                "themes: 3",
                "themes: 3, initialWebsites: 100000000",
                "world.initialWebsites: must make at most 1000000 Websites exist, got 100000000",
            ),
            (
                "rate: 1,",
                "rate: 100000,",
                "load.create: must make at most 1000000 Websites exist, got 60000000",
            ),
        ];
        for (from, to, expected) in cases {
            assert_eq!(
                message(&minimal().replace(from, to)),
                format!("experiments/test.yaml: {expected}")
            );
        }
    }

    #[test]
    fn fields_that_do_not_fit_together_are_rejected() {
        // 1 create/s for 10 min with no initial Websites: 600 exist to delete.
        let text = minimal().replace("load:\n", "load:\n  delete: {rate: 1.5, workers: 1}\n");
        assert_eq!(
            message(&text),
            "experiments/test.yaml: load.delete.rate: must not delete more Websites (900) over \
             duration (10m) than initialWebsites plus creates (600), got 1.5"
        );
        let text = format!(
            "{}chaos: {{interval: 5m, signal: SIGTERM, restart: false}}\n",
            minimal().replace("shards: [1]", "shards: [2, 3]")
        );
        assert_eq!(
            message(&text),
            "experiments/test.yaml: chaos.restart: must be true when the 2 kills over duration \
             (10m) leave no shard of shards[0] (2), got false"
        );
    }

    #[test]
    fn a_file_that_cannot_be_read_is_named() {
        let error = Scenario::load(Path::new("/nonexistent/scenario.yaml")).unwrap_err();
        assert!(matches!(error, ScenarioError::Read { .. }));
        assert_eq!(
            error.to_string(),
            "cannot read scenario /nonexistent/scenario.yaml"
        );
    }

    #[test]
    fn a_constant_create_rate_is_the_same_throughout() {
        let scenario = parse(&minimal()).unwrap();
        assert!((scenario.create_rate_at(Duration::ZERO) - 1.0).abs() < 1e-9);
        assert!((scenario.create_rate_at(Duration::from_secs(3600)) - 1.0).abs() < 1e-9);
        assert!((scenario.creates_by(Duration::from_secs(60)) - 60.0).abs() < 1e-9);
    }

    #[test]
    fn a_ramp_rises_linearly_over_the_duration_and_then_holds() {
        let scenario = ramp(1.0, 31.0);
        let rate = |seconds| scenario.create_rate_at(Duration::from_secs(seconds));
        assert!((rate(0) - 1.0).abs() < 1e-9);
        assert!((rate(300) - 16.0).abs() < 1e-9);
        assert!((rate(600) - 31.0).abs() < 1e-9);
        assert!((rate(900) - 31.0).abs() < 1e-9);
    }

    #[test]
    fn creates_integrate_the_rate_up_to_the_duration() {
        let scenario = ramp(1.0, 31.0);
        let creates = |seconds| scenario.creates_by(Duration::from_secs(seconds));
        // Half-way the rate is 16/s: the average of 1 and 16 over 300 s.
        assert!((creates(300) - 8.5 * 300.0).abs() < 1e-6);
        assert!((creates(600) - 16.0 * 600.0).abs() < 1e-6);
        assert!((creates(900) - creates(600)).abs() < 1e-6);
    }

    #[test]
    fn expected_websites_are_initial_plus_creates_minus_deletes() {
        let scenario = parse(BASIC).unwrap();
        // 100 + 12/s × 900 s − 2/s × 900 s.
        assert!((scenario.expected_websites() - 9100.0).abs() < 1e-6);
        assert!((ramp(0.0, 2.0).expected_websites() - 600.0).abs() < 1e-6);
    }

    #[test]
    fn chaos_kills_once_per_interval_within_the_duration() {
        let mut scenario = parse(BASIC).unwrap();
        assert_eq!(scenario.kills(), 3);
        scenario.chaos = None;
        assert_eq!(scenario.kills(), 0);
    }

    #[test]
    fn alternate_chaos_starts_with_sigterm() {
        let signals: Vec<_> = (0..4)
            .map(|kill| ChaosSignal::Alternate.signal(kill))
            .collect();
        assert_eq!(
            signals,
            [Signal::Term, Signal::Kill, Signal::Term, Signal::Kill]
        );
        assert_eq!(ChaosSignal::Kill.signal(0), Signal::Kill);
        assert_eq!(ChaosSignal::Term.signal(1), Signal::Term);
    }

    const SEARCH: &str = "\
name: plan
shards: [1, 2]
world: {namespaces: 2, themes: 3, initialWebsites: 50}
search:
  churn: {from: 2, to: 64}
  hold: 30s
";

    #[test]
    fn a_search_takes_its_defaults_and_derives_duration_and_settle() {
        let scenario = parse(SEARCH).unwrap();
        assert_eq!(scenario.load, None);
        assert_eq!(
            scenario.search,
            Some(Search {
                churn: Ramp {
                    from: 2.0,
                    to: 64.0
                },
                hold: Duration::from_secs(30),
                drain: Duration::from_secs(30),
                precision: 0.1,
                max_steps: 12,
                workers: 20,
            })
        );
        assert_eq!(scenario.duration, Duration::from_secs(30));
        assert_eq!(scenario.settle, Duration::ZERO);
        assert!(!scenario.measures_capacity());
        let json = serde_json::to_value(&scenario).unwrap();
        assert_eq!(json.get("duration"), None);
        assert_eq!(json.get("load"), None);
        assert_eq!(parse(&json.to_string()).unwrap(), scenario);
    }

    #[test]
    fn a_search_rejects_what_belongs_to_a_load_and_names_bad_values() {
        let cases = [
            (
                "duration: 5m\n",
                "duration: is not allowed with search: each step lasts search.hold",
            ),
            (
                "settle: 5s\n",
                "settle: is not allowed with search: each step ends with search.drain",
            ),
            (
                "load: {create: {rate: 1, workers: 1}}\n",
                "load: is not allowed with search: the steps change existing Websites",
            ),
            (
                "chaos: {interval: 5m, signal: SIGKILL}\n",
                "chaos: is not allowed with search: a failover would decide steps",
            ),
            (
                "faults: []\n",
                "faults: is not allowed with search: a fault would decide steps",
            ),
        ];
        for (extra, expected) in cases {
            let error = message(&format!("{SEARCH}{extra}"));
            assert_eq!(error, format!("experiments/test.yaml: {expected}"));
        }
        let replaced = [
            (
                "initialWebsites: 50",
                "initialWebsites: 0",
                "world.initialWebsites: must be at least 1, got 0: a search changes existing \
                 Websites",
            ),
            (
                "hold: 30s",
                "hold: 10s",
                "search.hold: must be at least 15s, got 10s",
            ),
            (
                "from: 2",
                "from: 0",
                "search.churn.from: must be greater than 0, got 0",
            ),
            (
                "to: 64",
                "to: 1",
                "search.churn.to: must be greater than from (2), got 1",
            ),
            (
                "hold: 30s",
                "hold: 30s\n  precision: 10",
                "search.precision: must be a fraction above 0 and at most 1 (0.1 for 10 %), got 10",
            ),
            (
                "hold: 30s",
                "hold: 30s\n  maxSteps: 1",
                "search.maxSteps: must be at least 2, got 1",
            ),
            ("  hold: 30s\n", "", "search.hold: is required"),
        ];
        for (from, to, expected) in replaced {
            let text = SEARCH.replace(from, to);
            assert_ne!(text, SEARCH, "{from}");
            assert_eq!(message(&text), format!("experiments/test.yaml: {expected}"));
        }
    }

    #[test]
    fn strategies_default_to_hash_ring_alone_and_are_not_written_back_then() {
        let scenario = parse(&minimal()).unwrap();
        assert_eq!(scenario.strategies, [Strategy::HashRing]);
        assert!(scenario.default_strategies());
        let json = serde_json::to_value(&scenario).unwrap();
        assert_eq!(json.get("strategies"), None);
        let text = minimal().replace("shards: [1]", "shards: [1]\nstrategies: [hash-ring]");
        assert_eq!(parse(&text).unwrap(), scenario);
    }

    #[test]
    fn strategies_are_swept_per_shard_count_and_read_back_from_run_json() {
        let text = minimal().replace(
            "shards: [1]",
            "shards: [2, 3]\nstrategies: [bounded-load, hash-ring]",
        );
        let scenario = parse(&text).unwrap();
        assert_eq!(
            scenario.strategies,
            [Strategy::BoundedLoad, Strategy::HashRing]
        );
        assert!(!scenario.default_strategies());
        assert_eq!(
            scenario.runs(2),
            [
                (Strategy::BoundedLoad, 2, 1),
                (Strategy::HashRing, 2, 1),
                (Strategy::BoundedLoad, 3, 1),
                (Strategy::HashRing, 3, 1),
                (Strategy::BoundedLoad, 2, 2),
                (Strategy::HashRing, 2, 2),
                (Strategy::BoundedLoad, 3, 2),
                (Strategy::HashRing, 3, 2),
            ]
        );
        let json = serde_json::to_value(&scenario).unwrap();
        assert_eq!(
            json["strategies"],
            serde_json::json!(["bounded-load", "hash-ring"])
        );
        assert_eq!(parse(&json.to_string()).unwrap(), scenario);
        let search = format!("{SEARCH}strategies: [hash-ring, bounded-load]\n");
        assert_eq!(parse(&search).unwrap().strategies.len(), 2);
    }

    #[test]
    fn an_invalid_strategy_is_named_by_its_index() {
        let cases = [
            (
                "strategies: [hash-ring, round-robin]",
                "strategies[1]: unknown assignment strategy \"round-robin\": expected one of \
                 hash-ring, bounded-load",
            ),
            ("strategies: []", "strategies: must not be empty"),
            (
                "strategies: [bounded-load, bounded-load]",
                "strategies: must each appear once, got [\"bounded-load\", \"bounded-load\"]",
            ),
        ];
        for (line, expected) in cases {
            let text = minimal().replace("shards: [1]", &format!("shards: [1]\n{line}"));
            assert_eq!(message(&text), format!("experiments/test.yaml: {expected}"));
        }
    }

    #[test]
    fn operator_defaults_are_the_spec_ones() {
        let defaults = Operator::default();
        assert_eq!(defaults.workers, 5);
        assert_eq!(defaults.simulated_work, Duration::ZERO);
        assert_eq!(defaults.lease_duration, Duration::from_secs(15));
        assert_eq!(DEFAULT_SETTLE, Duration::from_secs(30));
    }
}
