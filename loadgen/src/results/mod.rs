//! The results of one run of an experiment, and the files they are written to.
//!
//! A run of a scenario (`loadgen experiment`) measures each shard count of its sweep with the
//! pure functions of [`crate::measure`]; [`RunResults`] gathers those measurements, and
//! [`writer::write`] turns them into the files of `results/<run-id>/`:
//!
//! - [`writer`]: `run.json`, `summary.csv`, CSV time series, `.hgrm` percentile distributions;
//! - [`summary`]: the row of `summary.csv`, its header and the figures compare reads from it;
//! - [`plots`]: PNG and SVG plots of latency, objects per shard and scaling;
//! - [`report`]: `report.md`, a table per shard count and the SLO verdicts.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::{
    measure::{
        cost::Cost,
        failover::{FailoverEvents, FailoverKind},
        latency::LatencyRecorder,
        movement::{Change, Movement},
        prometheus::{Quantile, QuantileWindow},
        skew::Skew,
        slo::{Capacity, Verdict},
    },
    scenario::Scenario,
};

pub mod plots;
pub mod report;
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
    /// Operator shards.
    pub shards: u32,
    /// When this shard count's load started; its plots count time from here.
    pub load_started: Timestamp,
    /// Reconciliation latencies, in total and per window; written as CSV and `.hgrm`.
    pub reconciliation: LatencyRecorder,
    /// The p99 of the operator's queue latency, when it was scraped: [`Self::queue_p99`]'s
    /// interpolated value in ms, as PromQL gives it.
    pub queue_p99_ms: Option<f64>,
    /// The p99 of the operator's queue latency (seconds) with the bucket it lies in.
    pub queue_p99: Option<Quantile>,
    /// The queue latency's p99 between two scrapes with observations; written as CSV.
    pub queue_windows: Vec<QuantileWindow>,
    /// Objects per shard (shard name to count) as the watch saw them at each time.
    pub objects_per_shard: Vec<(Timestamp, BTreeMap<String, u64>)>,
    /// The skew of the assignment at each time.
    pub skew: Vec<(Timestamp, Skew)>,
    /// The membership changes and the objects they moved.
    pub movements: Vec<MembershipChange>,
    /// The failovers; their phases follow from the events ([`FailoverEvents::phases`]).
    pub failovers: Vec<FailoverEvents>,
    /// The first sustained breach of each SLO under the ramp: the capacity at this shard
    /// count per SLO.
    pub capacity: Capacity,
    /// The cost of each component: `sharder`, each shard, the control plane's processes.
    pub cost: BTreeMap<String, Cost>,
    /// The SLO verdicts on the whole run of this shard count.
    pub verdicts: Vec<Verdict>,
}

/// One membership change and the objects it moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MembershipChange {
    /// When the assignment after the change was taken.
    pub at: Timestamp,
    /// The shard that joined or left.
    pub change: Change,
    /// The objects it moved.
    pub movement: Movement,
}

/// The fewest objects per shard for a sample to count in [`ShardCountResults::max_skew`]: with
/// a handful of objects (the first seconds of a run, 1 object on 2 shards is max/mean 2) the
/// skew is chance, not the ring's.
pub const SKEW_MIN_OBJECTS_PER_SHARD: u64 = 20;

/// The kinds of processes whose cost is compared across shard counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentClass {
    /// The sharder.
    Sharder,
    /// The webhosting-operator processes, all shards together.
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
    /// the target (`shard-0`, a pod name), so whatever is neither the sharder nor the control
    /// plane is an operator shard.
    #[must_use]
    pub fn of(component: &str) -> Self {
        if component == "sharder" {
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
    /// The sum of its components' peaks: an upper bound of the memory the class held at once,
    /// since the peaks were not necessarily simultaneous.
    pub peak_rss_bytes: u64,
}

impl ShardCountResults {
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
            class.peak_rss_bytes += cost.peak_rss_bytes;
        }
        classes
    }

    /// The mean time of each phase of the failovers of `kind` in seconds (to Lease dead, to
    /// all assigned, to all reconciled), over those where the phase happened. Voluntary and
    /// involuntary failovers are apart, since the second waits about 2 × leaseDuration.
    #[must_use]
    pub fn mean_failover_seconds(&self, kind: FailoverKind) -> [Option<f64>; 3] {
        let phases: Vec<_> = self
            .failovers
            .iter()
            .filter(|failover| failover.kind == kind)
            .map(FailoverEvents::phases)
            .collect();
        let mean = |phase: fn(
            &crate::measure::failover::FailoverPhases,
        ) -> Option<std::time::Duration>| {
            let seconds: Vec<f64> = phases
                .iter()
                .filter_map(|p| phase(p).map(|d| d.as_secs_f64()))
                .collect();
            crate::measure::ratio(
                seconds.iter().sum(),
                crate::measure::as_f64(seconds.len() as u64),
            )
        };
        [
            mean(|p| p.to_lease_dead),
            mean(|p| p.to_all_assigned),
            mean(|p| p.to_all_reconciled),
        ]
    }

    /// The mean of the movements' ratios to the ideal, over the changes that had to move
    /// something.
    #[must_use]
    pub fn mean_movement_ratio(&self) -> Option<f64> {
        let ratios: Vec<f64> = self
            .movements
            .iter()
            .filter_map(|change| change.movement.ratio_to_ideal)
            .collect();
        crate::measure::ratio(
            ratios.iter().sum(),
            crate::measure::as_f64(ratios.len() as u64),
        )
    }

    /// The largest max/mean of the assignment over the samples with at least
    /// [`SKEW_MIN_OBJECTS_PER_SHARD`] objects per shard; `None` without such samples.
    #[must_use]
    pub fn max_skew(&self) -> Option<f64> {
        self.skew
            .iter()
            .filter(|(_, skew)| {
                skew.total >= SKEW_MIN_OBJECTS_PER_SHARD.saturating_mul(skew.shards as u64)
            })
            .map(|(_, skew)| skew.max_over_mean)
            .max_by(f64::total_cmp)
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
    use crate::measure::{
        cost::Cost,
        latency::LatencyRecorder,
        slo::{Breach, Load, Metric, Slo},
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
            restarts: 0,
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
        let skew = objects_per_shard
            .iter()
            .map(|(t, counts)| (*t, Skew::of(&counts.values().copied().collect::<Vec<_>>())))
            .collect();
        let before: BTreeMap<String, String> = (0..10)
            .map(|i| (format!("w{i}"), "shard-0".to_owned()))
            .collect();
        let mut after = before.clone();
        after.insert("w0".to_owned(), "shard-new".to_owned());
        let change = Change::Join {
            shard: "shard-new".to_owned(),
        };
        let movement = Movement::of(&before, &after, &change, 1);
        let mut costs: BTreeMap<String, Cost> = names
            .iter()
            .map(|name| (name.clone(), cost(10.0 / f64::from(shards), 50 << 20)))
            .collect();
        costs.insert("sharder".to_owned(), cost(1.0, 30 << 20));
        costs.insert("kube-apiserver".to_owned(), cost(20.0, 400 << 20));
        let queue_p99 = Some(QUEUE_P99);
        let summary = reconciliation.summary();
        let verdicts =
            Slo::default().verdicts(Duration::from_secs_f64(summary.p99_ms / 1000.0), queue_p99);
        ShardCountResults {
            shards,
            load_started: at(START + 10),
            reconciliation,
            queue_p99_ms: Some(200.0),
            queue_p99,
            queue_windows: queue_windows(),
            objects_per_shard,
            skew,
            movements: vec![MembershipChange {
                at: at(START + 60),
                change,
                movement,
            }],
            failovers: vec![FailoverEvents {
                shard: "shard-0".to_owned(),
                kind: FailoverKind::Involuntary,
                killed_at: at(START + 40),
                lease_dead_at: Some(at(START + 55)),
                all_assigned_at: Some(at(START + 56)),
                all_reconciled_at: None,
            }],
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
            verdicts,
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

    #[test]
    fn components_fall_into_classes_by_name() {
        assert_eq!(ComponentClass::of("sharder"), ComponentClass::Sharder);
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
    }

    #[test]
    fn the_max_skew_is_the_largest_sample_with_enough_objects() {
        let samples = |counts: &[&[u64]]| {
            counts
                .iter()
                .enumerate()
                .map(|(i, c)| (at(START + i64::try_from(i).unwrap()), Skew::of(c)))
                .collect::<Vec<_>>()
        };
        let results = ShardCountResults {
            skew: samples(&[&[1, 0], &[30, 20], &[45, 55]]),
            ..shard_count(2)
        };
        assert_eq!(results.max_skew(), Some(1.2));
        let too_few = ShardCountResults {
            skew: samples(&[&[1, 0], &[20, 19]]),
            ..shard_count(2)
        };
        assert_eq!(too_few.max_skew(), None);
        assert_eq!(
            ShardCountResults {
                skew: Vec::new(),
                ..results
            }
            .max_skew(),
            None
        );
    }

    #[test]
    fn time_counts_from_the_start_in_seconds() {
        assert!((seconds_since(at(100), at(130)) - 30.0).abs() < 1e-9);
        assert!((seconds_since(at(100), at(90)) + 10.0).abs() < 1e-9);
    }
}
