//! The scenario file as written, and its validation into a [`Scenario`].
//!
//! Every field is optional here so that a missing one is reported by its path (`world.themes:
//! is required`) rather than by serde without one; durations are the text as written.

use std::path::Path;
use std::time::Duration;

use kube_sharding::strategy::Strategy;
use serde::Deserialize;

use super::controller::{Controller, RawController};
use super::faults::{self, Bounds, Invalid, RawFault, RawSharder, Sharder};
use super::rules::{self, RateOrRamp, Verdict};
use super::{
    Chaos, ChaosSignal, Create, CreateRate, DEFAULT_MAX_STEPS, DEFAULT_PRECISION,
    DEFAULT_SEARCH_WORKERS, DEFAULT_SETTLE, Delete, Load, Mutate, Operator, Ramp, Result,
    RollingUpdate, Scenario, ScenarioError, Search, Slo, World,
};
use crate::workload::{self, RawWorkload, RenderError, Workload};

/// The top level of a scenario file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawScenario {
    name: Option<String>,
    description: Option<String>,
    duration: Option<String>,
    settle: Option<String>,
    shards: Option<Vec<i64>>,
    strategies: Option<Vec<String>>,
    world: Option<RawWorld>,
    workloads: Option<Vec<RawWorkload>>,
    load: Option<RawLoad>,
    search: Option<RawSearch>,
    chaos: Option<RawChaos>,
    rolling_update: Option<RawRollingUpdate>,
    operator: Option<RawOperator>,
    controller: Option<RawController>,
    slo: Option<RawSlo>,
    sharder: Option<RawSharder>,
    faults: Option<Vec<RawFault>>,
}

/// `world`; counts are signed so that a negative one is reported by its path.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawWorld {
    namespaces: Option<i64>,
    themes: Option<i64>,
    initial_websites: Option<i64>,
}

/// `load`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawLoad {
    create: Option<RawCreate>,
    delete: Option<RawDelete>,
    mutate: Option<RawMutate>,
}

/// `load.create`: `rate` or `ramp`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCreate {
    rate: Option<f64>,
    ramp: Option<RawRamp>,
    workers: Option<i64>,
}

/// `load.create.ramp`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRamp {
    from: Option<f64>,
    to: Option<f64>,
}

/// `load.delete`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawDelete {
    rate: Option<f64>,
    workers: Option<i64>,
}

/// `load.mutate`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawMutate {
    interval: Option<String>,
    workers: Option<i64>,
}

/// `search`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSearch {
    churn: Option<RawRamp>,
    hold: Option<String>,
    drain: Option<String>,
    precision: Option<f64>,
    max_steps: Option<i64>,
    workers: Option<i64>,
}

/// `chaos`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawChaos {
    interval: Option<String>,
    signal: Option<ChaosSignal>,
    restart: Option<bool>,
}

/// `rollingUpdate`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawRollingUpdate {
    interval: Option<String>,
}

/// `operator`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawOperator {
    workers: Option<i64>,
    simulated_work: Option<String>,
    lease_duration: Option<String>,
}

/// `slo`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSlo {
    reconciliation_p99: Option<String>,
    queue_p99: Option<String>,
}

impl RawScenario {
    /// Applies the defaults and checks every field; `file` is named in errors.
    pub(super) fn validate(mut self, file: &Path) -> Result<Scenario> {
        let check = Check { file };
        let name = check.field(
            "name",
            rules::required(self.name.take()).and_then(rules::name),
        )?;
        if let Some(search) = self.search.take() {
            return self.searching(&check, name, search);
        }
        let duration = check.field(
            "duration",
            required_duration(self.duration).and_then(rules::positive_duration),
        )?;
        let settle = check.field("settle", optional_duration(self.settle, DEFAULT_SETTLE))?;
        let shards = check.field(
            "shards",
            rules::required(self.shards).and_then(|shards| rules::shard_counts(&shards)),
        )?;
        let strategies = check.strategies(self.strategies)?;
        let (world, workloads) = check.world(
            check.field("world", rules::required(self.world))?,
            self.workloads,
        )?;
        let load = check.load(
            check.field("load", rules::required(self.load))?,
            duration,
            world.initial_websites,
        )?;
        let chaos = self
            .chaos
            .map(|raw| check.chaos(raw, duration, shards[0]))
            .transpose()?;
        let rolling_update = self
            .rolling_update
            .map(|raw| {
                let interval = check.interval("rollingUpdate.interval", raw.interval, duration)?;
                Ok(RollingUpdate { interval })
            })
            .transpose()?;
        let sharder = check.sharder(self.sharder)?;
        let faults = check.invalid(faults::validate(
            self.faults.unwrap_or_default(),
            Bounds {
                duration,
                sharder,
                smallest_shards: shards[0],
            },
        ))?;
        let (operator, controller) = check.controller(self.operator, self.controller)?;
        check.one_ring(&workloads, &controller)?;
        Ok(Scenario {
            name,
            description: self.description.unwrap_or_default(),
            duration,
            settle,
            shards,
            strategies,
            world,
            workloads,
            load: Some(load),
            search: None,
            chaos,
            rolling_update,
            operator,
            controller,
            slo: check.slo(self.slo.unwrap_or_default())?,
            sharder,
            faults,
        })
    }

    /// A scenario that searches capacity: the fields of one load do not apply, and its world
    /// must have Websites to change.
    fn searching(self, check: &Check<'_>, name: String, raw: RawSearch) -> Result<Scenario> {
        let not_with_search = |field: &str, set: bool, instead: &str| {
            check.field(
                field,
                if set {
                    Err(format!("is not allowed with search: {instead}"))
                } else {
                    Ok(())
                },
            )
        };
        not_with_search(
            "duration",
            self.duration.is_some(),
            "each step lasts search.hold",
        )?;
        not_with_search(
            "settle",
            self.settle.is_some(),
            "each step ends with search.drain",
        )?;
        not_with_search(
            "load",
            self.load.is_some(),
            "the steps change existing Websites",
        )?;
        not_with_search(
            "chaos",
            self.chaos.is_some(),
            "a failover would decide steps",
        )?;
        not_with_search(
            "rollingUpdate",
            self.rolling_update.is_some(),
            "a restart would decide steps",
        )?;
        not_with_search(
            "faults",
            self.faults.is_some(),
            "a fault would decide steps",
        )?;
        let shards = check.field(
            "shards",
            rules::required(self.shards).and_then(|shards| rules::shard_counts(&shards)),
        )?;
        let strategies = check.strategies(self.strategies)?;
        let (world, workloads) = check.world(
            check.field("world", rules::required(self.world))?,
            self.workloads,
        )?;
        check.field(
            "world.initialWebsites",
            rules::count(i64::from(world.initial_websites), 1)
                .map_err(|problem| format!("{problem}: a search changes existing Websites")),
        )?;
        let search = check.search(raw)?;
        let (operator, controller) = check.controller(self.operator, self.controller)?;
        check.one_ring(&workloads, &controller)?;
        Ok(Scenario {
            name,
            description: self.description.unwrap_or_default(),
            duration: search.hold,
            settle: Duration::ZERO,
            shards,
            strategies,
            world,
            workloads,
            load: None,
            search: Some(search),
            chaos: None,
            rolling_update: None,
            operator,
            controller,
            slo: check.slo(self.slo.unwrap_or_default())?,
            sharder: check.sharder(self.sharder)?,
            faults: Vec::new(),
        })
    }
}

/// A duration without a default.
fn required_duration(text: Option<String>) -> Verdict<Duration> {
    rules::required(text).and_then(|text| rules::duration(&text))
}

/// A duration with a default.
fn optional_duration(text: Option<String>, default: Duration) -> Verdict<Duration> {
    text.map_or(Ok(default), |text| rules::duration(&text))
}

/// Validation of one file: names the file and the field in errors.
struct Check<'a> {
    file: &'a Path,
}

impl Check<'_> {
    /// The value, or an error naming `field` and the problem.
    fn field<T>(&self, field: &str, verdict: Verdict<T>) -> Result<T> {
        verdict.map_err(|problem| ScenarioError::Invalid {
            file: self.file.to_owned(),
            field: field.to_owned(),
            problem,
        })
    }

    /// A field of `sharder` or `faults` and its problem, as an error naming the file.
    fn invalid<T>(&self, result: Result<T, Invalid>) -> Result<T> {
        result.map_err(|Invalid { field, problem }| ScenarioError::Invalid {
            file: self.file.to_owned(),
            field,
            problem,
        })
    }

    /// `strategies`: the assignment strategies to sweep, hash-ring alone when not set
    /// (docs/experiments.md#assignment-strategies).
    fn strategies(&self, raw: Option<Vec<String>>) -> Result<Vec<Strategy>> {
        let Some(raw) = raw else {
            return Ok(vec![Strategy::default()]);
        };
        let parsed = raw
            .iter()
            .enumerate()
            .map(|(i, name)| self.field(&format!("strategies[{i}]"), rules::strategy(name)))
            .collect::<Result<Vec<_>>>()?;
        self.field("strategies", rules::strategies(parsed))
    }

    /// `sharder`: one replica when not set.
    fn sharder(&self, raw: Option<RawSharder>) -> Result<Sharder> {
        self.invalid(raw.map_or(Ok(Sharder::default()), RawSharder::validate))
    }

    /// Every workload belongs to the ring of the controller under test: the harness follows
    /// one ring's shards (docs/workloads.md#fields).
    fn one_ring(&self, workloads: &[Workload], controller: &Controller) -> Result<()> {
        for (i, workload) in workloads.iter().enumerate() {
            self.field(
                &format!("workloads[{i}].controllerRing"),
                if workload.controller_ring == controller.ring {
                    Ok(())
                } else {
                    Err(format!(
                        "is {:?}, but the controller under test shards the ring {:?} \
                         (controller.ring): a scenario measures one ring",
                        workload.controller_ring, controller.ring
                    ))
                },
            )?;
        }
        Ok(())
    }

    /// An interval of the load: set, above 0 and within the load's duration.
    fn interval(&self, field: &str, text: Option<String>, duration: Duration) -> Result<Duration> {
        self.field(
            field,
            required_duration(text)
                .and_then(rules::positive_duration)
                .and_then(|interval| rules::within(interval, duration)),
        )
    }

    /// The world and the workloads: those declared, or the default Website workload with
    /// `world.themes` Themes.
    fn world(
        &self,
        raw: RawWorld,
        workloads: Option<Vec<RawWorkload>>,
    ) -> Result<(World, Vec<Workload>)> {
        let at_least_1 = |count| rules::required(count).and_then(|count| rules::count(count, 1));
        let namespaces = self.field("world.namespaces", at_least_1(raw.namespaces))?;
        let (themes, workloads) =
            if let Some(raws) = workloads {
                self.field(
                "world.themes",
                if raw.themes.is_some() {
                    Err("is not allowed with workloads: it sizes the default Website workload's \
                         Theme fixtures; declare fixtures instead"
                        .to_owned())
                } else {
                    Ok(())
                },
            )?;
                let base = self.file.parent().unwrap_or(Path::new("."));
                let workloads = workload::read_files(raws, base, "workloads")
                    .and_then(|raws| workload::validate(raws, "workloads"))
                    .map_err(|RenderError { field, problem }| ScenarioError::Invalid {
                        file: self.file.to_owned(),
                        field,
                        problem,
                    })?;
                (0, workloads)
            } else {
                let themes = self.field("world.themes", at_least_1(raw.themes))?;
                (themes, vec![Workload::websites(themes)])
            };
        let world = World {
            namespaces,
            themes,
            initial_websites: self.field(
                "world.initialWebsites",
                raw.initial_websites
                    .map_or(Ok(0), |count| rules::count(count, 0))
                    .and_then(|count| rules::websites(f64::from(count)).map(|_| count)),
            )?,
        };
        Ok((world, workloads))
    }

    fn load(&self, raw: RawLoad, duration: Duration, initial_websites: u32) -> Result<Load> {
        let create = self.create(self.field("load.create", rules::required(raw.create))?)?;
        self.field(
            "load.create",
            rules::websites(
                f64::from(initial_websites) + create.rate.mean_until(1.0) * duration.as_secs_f64(),
            ),
        )?;
        let delete = raw
            .delete
            .map(|raw| {
                let available = f64::from(initial_websites)
                    + create.rate.mean_until(1.0) * duration.as_secs_f64();
                let rate = self.field(
                    "load.delete.rate",
                    rules::required(raw.rate)
                        .and_then(rules::positive_rate)
                        .and_then(|rate| rules::deletes_fit(rate, duration, available)),
                )?;
                let workers = self.field(
                    "load.delete.workers",
                    rules::required(raw.workers).and_then(rules::workers),
                )?;
                Ok(Delete { rate, workers })
            })
            .transpose()?;
        let mutate = raw
            .mutate
            .map(|raw| {
                Ok(Mutate {
                    interval: self.interval("load.mutate.interval", raw.interval, duration)?,
                    workers: self.field(
                        "load.mutate.workers",
                        rules::required(raw.workers).and_then(rules::workers),
                    )?,
                })
            })
            .transpose()?;
        Ok(Load {
            create,
            delete,
            mutate,
        })
    }

    fn create(&self, raw: RawCreate) -> Result<Create> {
        let rate = match self.field("load.create", rules::rate_or_ramp(raw.rate, raw.ramp))? {
            RateOrRamp::Rate(rate) => {
                CreateRate::Constant(self.field("load.create.rate", rules::positive_rate(rate))?)
            }
            RateOrRamp::Ramp(ramp) => {
                let from = self.field(
                    "load.create.ramp.from",
                    rules::required(ramp.from).and_then(rules::ramp_from),
                )?;
                let to = self.field(
                    "load.create.ramp.to",
                    rules::required(ramp.to).and_then(|to| rules::ramp_to(from, to)),
                )?;
                CreateRate::Ramp(Ramp { from, to })
            }
        };
        let workers = self.field(
            "load.create.workers",
            rules::required(raw.workers).and_then(rules::workers),
        )?;
        Ok(Create { rate, workers })
    }

    fn search(&self, raw: RawSearch) -> Result<Search> {
        let churn = self.field("search.churn", rules::required(raw.churn))?;
        let from = self.field(
            "search.churn.from",
            rules::required(churn.from).and_then(rules::positive_rate),
        )?;
        let to = self.field(
            "search.churn.to",
            rules::required(churn.to).and_then(|to| rules::ramp_to(from, to)),
        )?;
        let hold = self.field(
            "search.hold",
            required_duration(raw.hold).and_then(rules::hold),
        )?;
        Ok(Search {
            churn: Ramp { from, to },
            hold,
            drain: self.field("search.drain", optional_duration(raw.drain, hold))?,
            precision: self.field(
                "search.precision",
                raw.precision
                    .map_or(Ok(DEFAULT_PRECISION), rules::precision),
            )?,
            max_steps: self.field(
                "search.maxSteps",
                raw.max_steps
                    .map_or(Ok(DEFAULT_MAX_STEPS), |steps| rules::count(steps, 2)),
            )?,
            workers: self.field(
                "search.workers",
                raw.workers
                    .map_or(Ok(DEFAULT_SEARCH_WORKERS), rules::workers),
            )?,
        })
    }

    fn chaos(&self, raw: RawChaos, duration: Duration, smallest_shards: u32) -> Result<Chaos> {
        let interval = self.interval("chaos.interval", raw.interval, duration)?;
        let signal = self.field("chaos.signal", rules::required(raw.signal))?;
        let kills = rules::intervals_within(interval, duration);
        let restart = self.field(
            "chaos.restart",
            rules::restart(
                raw.restart.unwrap_or(true),
                kills,
                smallest_shards,
                duration,
            ),
        )?;
        Ok(Chaos {
            interval,
            signal,
            restart,
        })
    }

    fn operator(&self, raw: RawOperator) -> Result<Operator> {
        let defaults = Operator::default();
        Ok(Operator {
            workers: self.field(
                "operator.workers",
                raw.workers.map_or(Ok(defaults.workers), rules::workers),
            )?,
            simulated_work: self.field(
                "operator.simulatedWork",
                optional_duration(raw.simulated_work, defaults.simulated_work),
            )?,
            lease_duration: self.field(
                "operator.leaseDuration",
                optional_duration(raw.lease_duration, defaults.lease_duration)
                    .and_then(rules::lease_duration),
            )?,
        })
    }

    /// `operator` and `controller`: without `controller`, the webhosting-operator.
    fn controller(
        &self,
        operator: Option<RawOperator>,
        controller: Option<RawController>,
    ) -> Result<(Operator, Controller)> {
        let operator = operator.unwrap_or_default();
        let set: Vec<&str> = [
            ("workers", operator.workers.is_some()),
            ("simulatedWork", operator.simulated_work.is_some()),
            ("leaseDuration", operator.lease_duration.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
        .collect();
        let operator = self.operator(operator)?;
        let controller = match controller {
            Some(raw) => raw.validate(self.file, &operator, &set)?,
            None => Controller::webhosting_operator(),
        };
        Ok((operator, controller))
    }

    fn slo(&self, raw: RawSlo) -> Result<Slo> {
        let defaults = Slo::default();
        Ok(Slo {
            reconciliation_p99: self.field(
                "slo.reconciliationP99",
                optional_duration(raw.reconciliation_p99, defaults.reconciliation_p99)
                    .and_then(rules::positive_duration),
            )?,
            queue_p99: self.field(
                "slo.queueP99",
                optional_duration(raw.queue_p99, defaults.queue_p99)
                    .and_then(rules::positive_duration),
            )?,
        })
    }
}
