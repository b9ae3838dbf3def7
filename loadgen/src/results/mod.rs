//! The results of one run of an experiment, and the files they are written to.
//!
//! A run of a scenario (`loadgen experiment`) measures each shard count of its sweep with the
//! pure functions of [`crate::measure`]; [`RunResults`] gathers those measurements, and
//! [`writer::write`] turns them into the files of `results/<run-id>/`:
//!
//! - [`writer`]: `run.json`, `summary.csv`, CSV time series, `.hgrm` percentile distributions;
//! - [`summary`]: the row of `summary.csv`, its header and the figures compare reads from it;
//! - [`plots`]: PNG and SVG plots of latency, objects per shard and scaling;
//! - [`report`]: `report.md`, a table per shard count and the SLO verdicts; with several
//!   assignment strategies, `strategies` sets them side by side.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube_sharding::strategy::Strategy;
use serde::Serialize;

use crate::{
    experiment::{faults::FaultRecord, search::SearchResults},
    measure::{
        accounting::Accounting,
        cost::{self, Cost, MachineLoad, MachineWindow, UsageSample},
        failover::{FailoverEvents, FailoverKind, KindStats},
        latency::LatencyRecorder,
        movement::{self, Change, Movement},
        owned::OwnedCheck,
        ownership::Ownership,
        prometheus::{Quantile, QuantileWindow},
        skew::{Skew, SkewSummary},
        slo::{Breach, Capacity, Metric, Verdict},
        webhook::WebhookLatency,
    },
    measure::{findings::Finding, validity::Validity},
    scenario::Scenario,
};

pub mod plots;
pub mod repetitions;
pub mod report;
mod strategies;
pub mod summary;
pub mod writer;

/// Everything one run measured, for every shard count of its sweep.
#[derive(Debug, Clone)]
pub struct RunResults {
    /// The name of the run's directory, `results/<run-id>/`.
    pub run_id: String,
    /// The scenario as it ran.
    pub scenario: Scenario,
    /// When the run started; plots count time from here.
    pub started: Timestamp,
    /// When the run ended.
    pub ended: Timestamp,
    /// Where it ran.
    pub machine: Machine,
    /// What ran.
    pub versions: Versions,
    /// The measurements of each shard count, in the order they ran.
    pub shard_counts: Vec<ShardCountResults>,
}

/// The machine a run ran on, since the figures of a 2-core laptop and of a cluster differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cores: u32,
    /// Physical memory.
    pub memory_bytes: u64,
    /// The operating system, as `uname` or the target reports it.
    pub os: String,
}

/// The versions of what ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Versions {
    /// This program.
    pub loadgen: String,
    /// The Kubernetes API server.
    pub kubernetes: String,
}

/// The measurements of one shard count.
#[derive(Debug, Clone)]
pub struct ShardCountResults {
    /// The ring's assignment strategy (docs/experiments.md#assignment-strategies).
    pub strategy: Strategy,
    /// Operator shards.
    pub shards: u32,
    /// Which run of this shard count it was, from 1 (`--repeat`).
    pub repetition: u32,
    /// The steps of a capacity search and the bracket they leave
    /// (docs/experiments.md#capacity-search); `None` under a load.
    pub search: Option<SearchResults>,
    /// Whether the harness, not the operator, may have shaped the figures: of the load, or of
    /// the search's step that decided its capacity (docs/experiments.md#validity).
    pub validity: Validity,
    /// What bound the load, or the deciding step (docs/experiments.md#findings).
    pub findings: Vec<Finding>,
    /// How every scheduled write and delete ended.
    pub accounting: Accounting,
    /// When this shard count's load started; its plots count time from here.
    pub load_started: Timestamp,
    /// Reconciliation latencies, in total and per window; written as CSV and `.hgrm`.
    pub reconciliation: LatencyRecorder,
    /// The p99 of the operator's queue latency (seconds) with the bucket it lies in.
    pub queue_p99: Option<Quantile>,
    /// The queue latency's p99 between two scrapes with observations; written as CSV.
    pub queue_windows: Vec<QuantileWindow>,
    /// Objects per shard (shard name to count) as the watch saw them at each time.
    pub objects_per_shard: Vec<(Timestamp, BTreeMap<String, u64>)>,
    /// The skew of the assignment at each time.
    pub skew: Vec<(Timestamp, Skew)>,
    /// Those samples split into steady state and membership changes.
    pub skew_summary: SkewSummary,
    /// The membership changes and the objects they moved.
    pub movements: Vec<MembershipChange>,
    /// The failovers; their phases follow from the events ([`FailoverEvents::phases`]).
    pub failovers: Vec<FailoverEvents>,
    /// When each rolling update of the operator began.
    pub rolling_updates: Vec<Timestamp>,
    /// The scenario's faults as they were injected (docs/experiments.md#faults).
    pub faults: Vec<FaultRecord>,
    /// How often the local target's supervisor restarted each process that exited, by name
    /// (only those it restarted); `None` on a cluster (docs/experiments.md#the-supervisor).
    pub restarts: Option<BTreeMap<String, usize>>,
    /// The owned objects against their owners' shards once settled; `None` when no workload
    /// declares owned kinds (docs/workloads.md#owned-objects).
    pub owned: Option<OwnedCheck>,
    /// The ownership audit (docs/experiments.md#ownership); `None` only for results made
    /// without a run.
    pub ownership: Option<Ownership>,
    /// The first sustained breach of each SLO under the ramp: the capacity at this shard
    /// count per SLO.
    pub capacity: Capacity,
    /// The cost of each component: `sharder`, each shard, the control plane's processes.
    pub cost: BTreeMap<String, Cost>,
    /// The samples [`Self::cost`] comes from, for the memory of processes together.
    pub usage: Vec<UsageSample>,
    /// The slot of each shard that ran ([`cost::slot_restarts`]); `None` where the target
    /// cannot tell which shard a new one replaced.
    pub slots: Option<BTreeMap<String, u32>>,
    /// The machine's CPU and loadgen's own between sampler ticks.
    pub machine_windows: Vec<MachineWindow>,
    /// The SLO verdicts on the whole run of this shard count.
    pub verdicts: Vec<Verdict>,
    /// The sharder's webhook admission latency of the ring during the load; `None` where the
    /// sharder's `/metrics` are not read (a cluster) or it decided no request
    /// (docs/experiments.md#webhook-latency).
    pub webhook: Option<WebhookLatency>,
}

/// One membership change and the objects it moved by the next change (or the end).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MembershipChange {
    /// When the shard's Lease was seen to change availability.
    pub at: Timestamp,
    /// The shard that joined or left.
    pub change: Change,
    /// The objects it moved.
    pub movement: Movement,
    /// The leave of a shard that chaos killed: how it was killed.
    pub killed: Option<FailoverKind>,
    /// A shard killed before the change whose Lease was not yet dead: it was still in the ring
    /// and could not hand its objects over, so the ring's moves off it are outstanding.
    pub during_failover: Option<String>,
}

/// The fewest objects per shard for a sample to count in the skew ([`SkewSummary`]): on every
/// shard for the steady state, on average during membership changes.
pub const SKEW_MIN_OBJECTS_PER_SHARD: u64 = 20;

/// The kinds of processes whose cost is compared across shard counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentClass {
    /// The sharder.
    Sharder,
    /// The shards of the controller under test (the webhosting-operator by default), all
    /// together.
    Operator,
    /// etcd, kube-apiserver, kube-controller-manager, ...
    ControlPlane,
}

/// The control plane's processes that are not named `kube-*`.
const CONTROL_PLANE: &[&str] = &["etcd"];

impl ComponentClass {
    /// All classes, in the order of reports and CSV columns.
    pub const ALL: [Self; 3] = [Self::Sharder, Self::Operator, Self::ControlPlane];

    /// The class of a component of [`ShardCountResults::cost`]. Shards carry names chosen by
    /// the target (`shard-0`, a pod name), so whatever is neither the sharder (`sharder`, or a
    /// replica of several, `sharder-1`) nor the control plane is an operator shard.
    #[must_use]
    pub fn of(component: &str) -> Self {
        let replica = component
            .strip_prefix("sharder-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if component == "sharder" || replica {
            Self::Sharder
        } else if component.starts_with("kube-") || CONTROL_PLANE.contains(&component) {
            Self::ControlPlane
        } else {
            Self::Operator
        }
    }

    /// A stable name for reports and CSV columns.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sharder => "sharder",
            Self::Operator => "operator",
            Self::ControlPlane => "control_plane",
        }
    }
}

/// The cost of all components of one class.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ClassCost {
    /// CPU seconds of all its components.
    pub cpu_seconds: f64,
    /// The peak over sample times of the memory its components held together
    /// ([`cost::peak_of_sum`]).
    pub peak_rss_bytes: u64,
}

/// The operator's CPU seconds and peak memory ([`ClassCost`]) per shard (the shard count, not
/// the processes that filled its slots) and per 1,000 Websites held at the end of the load
/// (the last sample of objects per shard: the settle time that follows creates and deletes
/// none). `None` where the divisor is zero.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct OperatorUnitCost {
    /// The Websites held at the end.
    pub websites: Option<u64>,
    /// Operator CPU seconds per shard.
    pub cpu_seconds_per_shard: Option<f64>,
    /// Operator peak memory per shard.
    pub peak_rss_bytes_per_shard: Option<f64>,
    /// Operator CPU seconds per 1,000 Websites.
    pub cpu_seconds_per_1000_websites: Option<f64>,
    /// Operator peak memory per 1,000 Websites.
    pub peak_rss_bytes_per_1000_websites: Option<f64>,
}

/// The machine's CPU and loadgen's own over a shard count's sampler windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MachineSummary {
    /// The machine's busy share of all cores over the windows (time-weighted) and its largest
    /// window; `None` where the target cannot measure it.
    pub busy: Option<MachineLoad>,
    /// The cores loadgen used over the windows (time-weighted).
    pub loadgen_cores_mean: f64,
    /// The most cores loadgen used in a window.
    pub loadgen_cores_max: f64,
    /// The windows.
    pub windows: usize,
}

impl RunResults {
    /// The assignment strategies that ran, in the scenario's order; the scenario's first when
    /// none ran, so that a run always has one.
    #[must_use]
    pub fn strategies(&self) -> Vec<Strategy> {
        let mut strategies: Vec<Strategy> = Vec::new();
        let ran = self.shard_counts.iter().map(|count| count.strategy);
        for strategy in self.scenario.strategies.iter().copied().chain(ran) {
            if !strategies.contains(&strategy)
                && self.shard_counts.iter().any(|c| c.strategy == strategy)
            {
                strategies.push(strategy);
            }
        }
        if strategies.is_empty() {
            strategies.extend(self.scenario.strategies.first());
        }
        strategies
    }

    /// Whether more than one strategy ran: then the report sets them side by side
    /// (docs/experiments.md#assignment-strategies).
    #[must_use]
    pub fn compares_strategies(&self) -> bool {
        self.strategies().len() > 1
    }

    /// The run's measurements under `strategy` alone, as if the run had swept only it.
    #[must_use]
    pub fn under(&self, strategy: Strategy) -> Self {
        Self {
            shard_counts: self
                .shard_counts
                .iter()
                .filter(|count| count.strategy == strategy)
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// The name of a plot over the run's shard counts: `name`, with `-<strategy>` when the
    /// run is of one strategy other than hash-ring, as [`ShardCountResults::stem`] names it.
    #[must_use]
    pub fn plot_name(&self, name: &str) -> String {
        match self.strategies()[..] {
            [strategy] if strategy != Strategy::default() => format!("{name}-{strategy}"),
            _ => name.to_owned(),
        }
    }

    /// The SLO the headline and the scaling plot report capacity on, so that no figure divides
    /// the capacities of two SLOs: the one breached at the most shard counts, the
    /// reconciliation latency on a tie (docs/experiments.md#capacity). `None` without a breach.
    #[must_use]
    pub fn scaling_slo(&self) -> Option<Metric> {
        let breached = |metric| {
            self.shard_counts
                .iter()
                .filter(|count| count.capacity.of(metric).is_some())
                .count()
        };
        let (reconciliation, queue) = (
            breached(Metric::ReconciliationLatency),
            breached(Metric::QueueLatency),
        );
        if reconciliation == 0 && queue == 0 {
            None
        } else if reconciliation >= queue {
            Some(Metric::ReconciliationLatency)
        } else {
            Some(Metric::QueueLatency)
        }
    }
}

impl ShardCountResults {
    /// The part of this measurement's file names: `<N>shards`, with `-<strategy>` under
    /// another strategy than hash-ring (so that a run without the strategy axis names its
    /// files as before) and `-r<K>` for repetitions after the first.
    #[must_use]
    pub fn stem(&self) -> String {
        let mut stem = format!("{}shards", self.shards);
        if self.strategy != Strategy::default() {
            stem = format!("{stem}-{}", self.strategy);
        }
        match self.repetition {
            0 | 1 => stem,
            repetition => format!("{stem}-r{repetition}"),
        }
    }

    /// The p99 of the operator's queue latency in ms, when it was scraped: [`Self::queue_p99`]'s
    /// interpolated value, as PromQL gives it.
    #[must_use]
    pub fn queue_p99_ms(&self) -> Option<f64> {
        self.queue_p99.map(|p99| p99.value * 1000.0)
    }

    /// The cost per component class; a class without components costs zero.
    #[must_use]
    pub fn class_costs(&self) -> BTreeMap<ComponentClass, ClassCost> {
        let mut classes: BTreeMap<ComponentClass, ClassCost> = ComponentClass::ALL
            .into_iter()
            .map(|class| (class, ClassCost::default()))
            .collect();
        for (component, cost) in &self.cost {
            let class = classes.entry(ComponentClass::of(component)).or_default();
            class.cpu_seconds += cost.cpu_seconds;
        }
        for (class, peak) in cost::peak_of_sum(&self.usage, |c| Some(ComponentClass::of(c))) {
            classes.entry(class).or_default().peak_rss_bytes = peak;
        }
        classes
    }

    /// The peak over sample times of the memory all components held together.
    #[must_use]
    pub fn total_peak_rss_bytes(&self) -> u64 {
        cost::peak_of_sum(&self.usage, |_| Some(()))
            .into_values()
            .next()
            .unwrap_or(0)
    }

    /// The restarts of each shard slot ([`cost::slot_restarts`]); `None` where the target
    /// cannot tell.
    #[must_use]
    pub fn slot_restarts(&self) -> Option<BTreeMap<u32, usize>> {
        self.slots.as_ref().map(cost::slot_restarts)
    }

    /// The machine's CPU and loadgen's own over the whole shard count; `None` without windows.
    #[must_use]
    pub fn machine_summary(&self) -> Option<MachineSummary> {
        let first = self.machine_windows.first()?;
        let last = self.machine_windows.last()?;
        let span = crate::measure::elapsed(first.start, last.start + last.length);
        let seconds: f64 = self
            .machine_windows
            .iter()
            .map(|w| w.length.as_secs_f64())
            .sum();
        let loadgen_seconds: f64 = self
            .machine_windows
            .iter()
            .map(|w| w.loadgen_cores * w.length.as_secs_f64())
            .sum();
        Some(MachineSummary {
            busy: cost::machine_load(first.start, span, &self.machine_windows),
            loadgen_cores_mean: crate::measure::ratio(loadgen_seconds, seconds).unwrap_or(0.0),
            loadgen_cores_max: self
                .machine_windows
                .iter()
                .map(|w| w.loadgen_cores)
                .fold(0.0, f64::max),
            windows: self.machine_windows.len(),
        })
    }

    /// The machine's CPU during the window of the first SLO breach; `None` without a breach or
    /// without machine CPU then.
    #[must_use]
    pub fn capacity_machine_load(&self) -> Option<MachineLoad> {
        self.breach_machine_load(&self.capacity.earliest()?)
    }

    /// The machine's CPU during the window of `breach` (from its start for
    /// [`slo::SUSTAINED`](crate::measure::slo::SUSTAINED)); `None` without machine CPU then.
    #[must_use]
    pub fn breach_machine_load(&self, breach: &Breach) -> Option<MachineLoad> {
        cost::machine_load(
            breach.at,
            crate::measure::slo::SUSTAINED,
            &self.machine_windows,
        )
    }

    /// The operator's cost per shard and per 1,000 Websites ([`OperatorUnitCost`]).
    #[must_use]
    pub fn operator_unit_cost(&self) -> OperatorUnitCost {
        let operator = self
            .class_costs()
            .get(&ComponentClass::Operator)
            .copied()
            .unwrap_or_default();
        let websites = self
            .objects_per_shard
            .last()
            .map(|(_, counts)| counts.values().sum::<u64>());
        let thousands = websites.map(|w| crate::measure::as_f64(w) / 1000.0);
        let per_thousand = |value: f64| thousands.and_then(|t| crate::measure::ratio(value, t));
        let peak = crate::measure::as_f64(operator.peak_rss_bytes);
        OperatorUnitCost {
            websites,
            cpu_seconds_per_shard: crate::measure::ratio(
                operator.cpu_seconds,
                f64::from(self.shards),
            ),
            peak_rss_bytes_per_shard: crate::measure::ratio(peak, f64::from(self.shards)),
            cpu_seconds_per_1000_websites: per_thousand(operator.cpu_seconds),
            peak_rss_bytes_per_1000_websites: per_thousand(peak),
        }
    }

    /// The failovers of `kind`, phase by phase. Voluntary and involuntary failovers are
    /// apart, since the second waits about 2 × leaseDuration.
    #[must_use]
    pub fn failover_stats(&self, kind: FailoverKind) -> KindStats {
        KindStats::of(&self.failovers, kind)
    }

    /// The movements of all membership changes added up; unnecessary moves are the headline.
    #[must_use]
    pub fn movement_totals(&self) -> movement::Totals {
        self.movements
            .iter()
            .map(|change| &change.movement)
            .collect()
    }

    /// The worst steady-state max/mean of the assignment ([`SkewSummary::steady`]); `None`
    /// without such samples.
    #[must_use]
    pub fn steady_max_skew(&self) -> Option<f64> {
        self.skew_summary.steady.max_over_mean
    }
}

/// Seconds from `start` to `at`, negative before it: the x axis of every time series, so that
/// series of different sources line up by time rather than by sample index.
#[must_use]
pub fn seconds_since(start: Timestamp, at: Timestamp) -> f64 {
    at.duration_since(start).as_secs_f64()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        experiment::search::{Bracket, Step},
        measure::{
            accounting::{Deletes, Writes},
            cost::Cost,
            failover::Recovery,
            latency::{LatencyRecorder, LatencySummary},
            movement::Movement,
            slo::{Breach, Load, Metric, Slo},
            validity::{Reason, Rule},
        },
    };

    pub(crate) fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    /// The start of the synthetic run.
    pub(crate) const START: i64 = 1_700_000_000;

    pub(crate) fn scenario() -> Scenario {
        let yaml = "name: synthetic\nduration: 2m\nshards: [1, 3]\n\
                    world: {namespaces: 2, themes: 3}\n\
                    load:\n  create: {ramp: {from: 1, to: 3}, workers: 1}\n";
        Scenario::from_yaml(yaml, std::path::Path::new("synthetic.yaml")).unwrap()
    }

    fn cost(cpu_seconds: f64, peak_rss_bytes: u64) -> Cost {
        Cost {
            cpu_seconds,
            cores: cpu_seconds / 120.0,
            peak_rss_bytes,
        }
    }

    /// The 120 latencies of [`shard_count`] are the reconciled writes; three more failed, two
    /// were skipped.
    fn accounting() -> Accounting {
        Accounting {
            writes: Writes {
                scheduled: 125,
                reconciled: 120,
                failed: BTreeMap::from([("500 InternalError".to_owned(), 3)]),
                skipped: 2,
                ..Writes::default()
            },
            deletes: Deletes {
                scheduled: 10,
                deleted: 9,
                skipped: 1,
                ..Deletes::default()
            },
        }
    }

    /// The machine busy in the last 30 s of two minutes, where 3 shards breach.
    fn machine_windows() -> Vec<MachineWindow> {
        (0..24)
            .map(|i| MachineWindow {
                start: at(START + 5 * i),
                length: Duration::from_secs(5),
                busy: Some(if i >= 18 { 0.95 } else { 0.5 }),
                loadgen_cores: 0.1,
            })
            .collect()
    }

    /// `shard-new` joins and takes `w0` of 10 objects on `shard-0`, as the ring requires.
    fn join() -> MembershipChange {
        let before: BTreeMap<String, String> = (0..10)
            .map(|i| (format!("w{i}"), "shard-0".to_owned()))
            .collect();
        let mut after = before.clone();
        after.insert("w0".to_owned(), "shard-new".to_owned());
        let change = Change::Join {
            shard: "shard-new".to_owned(),
        };
        // The ring after the join gives w0 to the new shard.
        let owner = |object: &str| {
            Some(
                if object == "w0" {
                    "shard-new"
                } else {
                    "shard-0"
                }
                .to_owned(),
            )
        };
        let movement = Movement::of(&before, &after, owner, &change, 1);
        MembershipChange {
            at: at(START + 60),
            change,
            movement,
            killed: None,
            during_failover: None,
        }
    }

    fn shard_count(shards: u32) -> ShardCountResults {
        let mut reconciliation = LatencyRecorder::new(Duration::from_secs(10)).unwrap();
        for i in 0..120 {
            let millis = 100 + u64::from(shards) * 10 + (u64::try_from(i).unwrap() % 7) * 50;
            reconciliation.record(at(START + i), Duration::from_millis(millis));
        }
        let names: Vec<String> = (0..shards).map(|i| format!("shard-{i}")).collect();
        let objects_per_shard: Vec<(Timestamp, BTreeMap<String, u64>)> = (0..4)
            .map(|step| {
                let counts = names
                    .iter()
                    .enumerate()
                    .map(|(i, name)| (name.clone(), 10 * step + u64::try_from(i).unwrap()))
                    .collect();
                (at(START + 30 * i64::try_from(step).unwrap()), counts)
            })
            .collect();
        let skew: Vec<(Timestamp, Skew)> = objects_per_shard
            .iter()
            .map(|(t, counts)| (*t, Skew::of(&counts.values().copied().collect::<Vec<_>>())))
            .collect();
        let skew_summary = SkewSummary::of(&skew, &[], SKEW_MIN_OBJECTS_PER_SHARD);
        let mut costs: BTreeMap<String, Cost> = names
            .iter()
            .map(|name| (name.clone(), cost(10.0 / f64::from(shards), 50 << 20)))
            .collect();
        costs.insert("sharder".to_owned(), cost(1.0, 30 << 20));
        costs.insert("kube-apiserver".to_owned(), cost(20.0, 400 << 20));
        // Each component at its peak at 0 s and 120 s, all together.
        let usage = [0, 120]
            .into_iter()
            .flat_map(|seconds| {
                costs.iter().map(move |(component, cost)| UsageSample {
                    at: at(START + seconds),
                    component: component.clone(),
                    cpu_seconds: cost.cpu_seconds * f64::from(u8::from(seconds > 0)),
                    rss_bytes: cost.peak_rss_bytes,
                })
            })
            .collect();
        let slots = (0..shards).map(|i| (format!("shard-{i}"), i)).collect();
        let queue_p99 = Some(QUEUE_P99);
        let summary = reconciliation.summary();
        let verdicts =
            Slo::default().verdicts(Duration::from_secs_f64(summary.p99_ms / 1000.0), queue_p99);
        ShardCountResults {
            strategy: Strategy::HashRing,
            shards,
            repetition: 1,
            search: None,
            validity: Validity {
                valid: true,
                ..Validity::default()
            },
            findings: Vec::new(),
            accounting: accounting(),
            load_started: at(START + 10),
            reconciliation,
            queue_p99,
            queue_windows: queue_windows(),
            objects_per_shard,
            skew,
            skew_summary,
            movements: vec![join()],
            failovers: vec![FailoverEvents {
                shard: "shard-0".to_owned(),
                kind: FailoverKind::Involuntary,
                killed_at: at(START + 40),
                lease_dead_at: Some(at(START + 55)),
                recovery: Recovery {
                    objects: 10,
                    assigned_after_kill: 1,
                    to_reconcile: 2,
                    all_assigned_at: Some(at(START + 56)),
                    all_reconciled_at: None,
                },
            }],
            rolling_updates: vec![at(START + 70)],
            faults: Vec::new(),
            restarts: Some(BTreeMap::new()),
            owned: None,
            ownership: None,
            capacity: Capacity {
                reconciliation: (shards > 1).then(|| Breach {
                    metric: Metric::ReconciliationLatency,
                    at: at(START + 90),
                    load: Load {
                        websites: 1000.0 * f64::from(shards),
                        operations_per_second: 20.0 * f64::from(shards),
                    },
                    achieved_operations_per_second: 15.0 * f64::from(shards),
                }),
                queue: None,
                queue_undetermined_windows: 0,
            },
            cost: costs,
            usage,
            slots: Some(slots),
            machine_windows: machine_windows(),
            verdicts,
            webhook: Some(webhook()),
        }
    }

    /// 130 webhook requests, their p50 in the bucket up to 0.2 ms and their p99 up to 0.8 ms.
    fn webhook() -> WebhookLatency {
        let quantile = |value: f64| Quantile {
            value,
            lower: value / 1.5,
            upper: value * 4.0 / 3.0,
        };
        WebhookLatency {
            p50: quantile(0.00015),
            p99: quantile(0.0006),
            requests: 130,
        }
    }

    /// A queue p99 in a bucket of a factor 1.22.
    const QUEUE_P99: Quantile = Quantile {
        value: 0.2,
        lower: 0.18,
        upper: 0.22,
    };

    /// A resolved queue window, then one in the `+Inf` bucket.
    fn queue_windows() -> Vec<QuantileWindow> {
        vec![
            QuantileWindow {
                start: at(START + 10),
                end: at(START + 15),
                quantile: QUEUE_P99,
                observations: 40,
            },
            QuantileWindow {
                start: at(START + 15),
                end: at(START + 20),
                quantile: Quantile {
                    value: 1.0,
                    lower: 1.0,
                    upper: f64::INFINITY,
                },
                observations: 7,
            },
        ]
    }

    pub(crate) fn synthetic() -> RunResults {
        let mut results = RunResults {
            run_id: "20231114-synthetic".to_owned(),
            scenario: scenario(),
            started: at(START),
            ended: at(START + 150),
            machine: Machine {
                cores: 2,
                memory_bytes: 8 << 30,
                os: "linux".to_owned(),
            },
            versions: Versions {
                loadgen: "0.1.0".to_owned(),
                kubernetes: "v1.36.0".to_owned(),
            },
            shard_counts: vec![shard_count(1), shard_count(3)],
        };
        // One failed verdict, so the report shows both marks.
        results.shard_counts[1].verdicts.push(Verdict::new(
            Metric::QueueLatency,
            Duration::from_secs(1),
            Duration::from_secs(2),
        ));
        results
    }

    /// The synthetic run under hash-ring and under bounded-load, whose 3 shards made one
    /// unnecessary move on their join and whose sharder used twice the CPU.
    pub(crate) fn compared() -> RunResults {
        let mut results = synthetic();
        results.scenario.strategies = vec![Strategy::HashRing, Strategy::BoundedLoad];
        let mut bounded: Vec<ShardCountResults> = results
            .shard_counts
            .iter()
            .cloned()
            .map(|mut count| {
                count.strategy = Strategy::BoundedLoad;
                count
                    .cost
                    .get_mut("sharder")
                    .expect("the sharder's cost")
                    .cpu_seconds = 2.0;
                count.usage.iter_mut().for_each(|sample| {
                    if sample.component == "sharder" {
                        sample.cpu_seconds *= 2.0;
                    }
                });
                count
            })
            .collect();
        let before = [("a", "shard-0"), ("b", "shard-1")]
            .map(|(o, s)| (o.to_owned(), s.to_owned()))
            .into();
        let after = [("a", "shard-2"), ("b", "shard-0")]
            .map(|(o, s)| (o.to_owned(), s.to_owned()))
            .into();
        let available = ["shard-0", "shard-1", "shard-2"].map(str::to_owned).into();
        let change = Change::Join {
            shard: "shard-2".to_owned(),
        };
        bounded[1].movements = vec![MembershipChange {
            movement: Movement::among_available(&before, &after, &available, &change, 2),
            change,
            ..bounded[1].movements[0].clone()
        }];
        results.shard_counts.extend(bounded);
        results
    }

    /// A step of [`searched`] at `churn`: `reconciliation_ms` and `queue_s` p99s against the
    /// default SLOs (5 s and 1 s), valid unless `machine_busy` is over 90 %.
    fn step(churn: f64, reconciliation_ms: f64, queue_s: f64, machine_busy: f64) -> Step {
        let reconciliation = LatencySummary {
            count: 100,
            censored: 0,
            p50_ms: reconciliation_ms / 2.0,
            p90_ms: reconciliation_ms / 1.5,
            p99_ms: reconciliation_ms,
            p999_ms: reconciliation_ms,
            max_ms: reconciliation_ms,
            p50_lower_bound: false,
            p90_lower_bound: false,
            p99_lower_bound: false,
            p999_lower_bound: false,
            max_lower_bound: false,
        };
        let queue_p99 = Some(Quantile {
            value: queue_s,
            lower: queue_s * 0.9,
            upper: queue_s * 1.1,
        });
        let validity = if machine_busy > 0.9 {
            Validity {
                valid: false,
                reasons: vec![Reason {
                    rule: Rule::MachineCpu,
                    sentence: format!("the machine was {:.0} % busy", machine_busy * 100.0),
                }],
                unchecked: Vec::new(),
            }
        } else {
            Validity {
                valid: true,
                ..Validity::default()
            }
        };
        let mut step = Step {
            churn,
            started: at(START + 10),
            hold: Duration::from_secs(30),
            scheduled: 30 * 2,
            achieved_per_second: churn,
            failed: 0,
            reconciliation,
            queue_p99,
            drained: Duration::from_millis(1500),
            outstanding: 0,
            machine_busy: Some(machine_busy),
            loadgen_cores: Some(0.1),
            verdicts: Step::verdicts(&Slo::default(), &reconciliation, queue_p99),
            passed: false,
            validity,
            findings: Vec::new(),
        };
        step.passed = step.validity.valid && step.met_slos();
        step
    }

    /// A search of `shards` shards whose capacity is `capacity` changes/s: steps at half of it
    /// and at it pass; at twice it the reconciliation and queue SLOs break, at 1.1× the queue
    /// SLO; the deciding step is valid unless `machine_busy` is over 90 %.
    fn searched_count(
        shards: u32,
        repetition: u32,
        capacity: f64,
        machine_busy: f64,
    ) -> ShardCountResults {
        let steps = vec![
            step(capacity / 2.0, 200.0, 0.2, 0.5),
            step(capacity, 400.0, 0.5, 0.5),
            step(capacity * 2.0, 6000.0, 2.0, 0.5),
            step(capacity * 1.1, 900.0, 1.5, machine_busy),
        ];
        let bracket = Bracket {
            highest_passing: Some(capacity),
            lowest_failing: Some(capacity * 1.1),
        };
        let search = SearchResults { steps, bracket };
        let deciding = search.deciding_step().unwrap();
        ShardCountResults {
            repetition,
            validity: deciding.validity.clone(),
            findings: deciding.findings.clone(),
            capacity: Capacity::default(),
            failovers: Vec::new(),
            movements: Vec::new(),
            search: Some(search),
            ..shard_count(shards)
        }
    }

    /// A capacity search over 50 Websites, twice at 1 and 2 shards: 1 shard found 4 changes/s
    /// and, in an invalid repetition, 5; 2 shards found 8 and 10.
    pub(crate) fn searched() -> RunResults {
        let yaml = "name: plan\nshards: [1, 2]\n\
                    world: {namespaces: 2, themes: 3, initialWebsites: 50}\n\
                    search:\n  churn: {from: 2, to: 64}\n  hold: 30s\n";
        RunResults {
            scenario: Scenario::from_yaml(yaml, std::path::Path::new("plan.yaml")).unwrap(),
            shard_counts: vec![
                searched_count(1, 1, 4.0, 0.5),
                searched_count(2, 1, 8.0, 0.5),
                searched_count(1, 2, 5.0, 0.95),
                searched_count(2, 2, 10.0, 0.5),
            ],
            ..synthetic()
        }
    }

    #[test]
    fn components_fall_into_classes_by_name() {
        assert_eq!(ComponentClass::of("sharder"), ComponentClass::Sharder);
        assert_eq!(ComponentClass::of("sharder-1"), ComponentClass::Sharder);
        assert_eq!(ComponentClass::of("sharder-x"), ComponentClass::Operator);
        assert_eq!(
            ComponentClass::of("kube-apiserver"),
            ComponentClass::ControlPlane
        );
        assert_eq!(ComponentClass::of("etcd"), ComponentClass::ControlPlane);
        assert_eq!(ComponentClass::of("shard-2"), ComponentClass::Operator);
    }

    #[test]
    fn class_costs_add_up_their_components() {
        let results = shard_count(3);
        let classes = results.class_costs();
        let operator = classes[&ComponentClass::Operator];
        assert!((operator.cpu_seconds - 10.0).abs() < 1e-9);
        assert_eq!(operator.peak_rss_bytes, 3 * (50 << 20));
        assert_eq!(classes[&ComponentClass::Sharder].peak_rss_bytes, 30 << 20);
        assert_eq!(results.total_peak_rss_bytes(), (150 + 30 + 400) << 20);
    }

    #[test]
    fn a_replaced_shard_is_not_added_to_its_replacement_in_the_class_peak() {
        let mut results = shard_count(1);
        // shard-0 was killed after 0 s; shard-1 replaced it in slot 0 and held 60 MiB at 120 s.
        results
            .usage
            .retain(|s| !(s.component == "shard-0" && s.at == at(START + 120)));
        results.usage.push(UsageSample {
            at: at(START + 120),
            component: "shard-1".to_owned(),
            cpu_seconds: 1.0,
            rss_bytes: 60 << 20,
        });
        results.slots = Some(BTreeMap::from([
            ("shard-0".to_owned(), 0),
            ("shard-1".to_owned(), 0),
        ]));
        let operator = results.class_costs()[&ComponentClass::Operator];
        assert_eq!(operator.peak_rss_bytes, 60 << 20);
        assert_eq!(results.slot_restarts(), Some(BTreeMap::from([(0, 1)])));
    }

    #[test]
    fn the_machine_summary_weights_windows_by_time() {
        let results = shard_count(1);
        let summary = results.machine_summary().unwrap();
        let busy = summary.busy.unwrap();
        // 18 windows at 50 %, 6 at 95 %.
        assert!((busy.mean_busy - (18.0 * 0.5 + 6.0 * 0.95) / 24.0).abs() < 1e-9);
        assert!((busy.max_busy - 0.95).abs() < 1e-9);
        assert!((summary.loadgen_cores_mean - 0.1).abs() < 1e-9);
        assert_eq!(summary.windows, 24);
        // The 3-shard fixture breached at 90 s, in the busy windows from 90 s on.
        assert!(shard_count(3).capacity_machine_load().unwrap().bound());
        assert!(results.capacity_machine_load().is_none());
    }

    #[test]
    fn unit_costs_divide_by_shards_and_by_the_websites_at_the_end() {
        let cost = shard_count(2).operator_unit_cost();
        // The last sample holds 30 + 31 Websites; the operator used 10 s and 100 MiB at once.
        assert_eq!(cost.websites, Some(61));
        assert!((cost.cpu_seconds_per_shard.unwrap() - 5.0).abs() < 1e-9);
        assert!((cost.peak_rss_bytes_per_shard.unwrap() - f64::from(50 << 20)).abs() < 1e-3);
        assert!((cost.cpu_seconds_per_1000_websites.unwrap() - 10.0 / 0.061).abs() < 1e-9);
        let empty = ShardCountResults {
            objects_per_shard: Vec::new(),
            ..shard_count(2)
        };
        assert_eq!(
            empty.operator_unit_cost().cpu_seconds_per_1000_websites,
            None
        );
    }

    #[test]
    fn a_stem_names_the_strategy_unless_hash_ring_and_the_repetition_after_the_first() {
        let mut count = shard_count(2);
        assert_eq!(count.stem(), "2shards");
        count.repetition = 3;
        assert_eq!(count.stem(), "2shards-r3");
        count.strategy = Strategy::BoundedLoad;
        assert_eq!(count.stem(), "2shards-bounded-load-r3");
        count.repetition = 1;
        assert_eq!(count.stem(), "2shards-bounded-load");
    }

    #[test]
    fn a_run_splits_by_the_strategies_that_ran_in_the_scenarios_order() {
        assert_eq!(synthetic().strategies(), [Strategy::HashRing]);
        assert!(!synthetic().compares_strategies());
        let results = compared();
        assert_eq!(
            results.strategies(),
            [Strategy::HashRing, Strategy::BoundedLoad]
        );
        let bounded = results.under(Strategy::BoundedLoad);
        assert_eq!(bounded.shard_counts.len(), 2);
        assert!(!bounded.compares_strategies());
        let groups = repetitions::by_shard_count(&results);
        let keys: Vec<(u32, Strategy)> = groups.iter().map(|g| (g.shards, g.strategy)).collect();
        assert_eq!(
            keys,
            [
                (1, Strategy::HashRing),
                (1, Strategy::BoundedLoad),
                (3, Strategy::HashRing),
                (3, Strategy::BoundedLoad)
            ]
        );
    }

    #[test]
    fn time_counts_from_the_start_in_seconds() {
        assert!((seconds_since(at(100), at(130)) - 30.0).abs() < 1e-9);
        assert!((seconds_since(at(100), at(90)) + 10.0).abs() < 1e-9);
    }
}
