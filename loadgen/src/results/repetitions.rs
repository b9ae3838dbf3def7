//! The repetitions of each shard count (`--repeat`), and figures over them: medians with their
//! interval over the valid repetitions (docs/experiments.md#repetitions-and-intervals), the
//! capacity each search measured, and what a shard costs while it carries it.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube_sharding::strategy::Strategy;

use super::{ComponentClass, RunResults, ShardCountResults};
use crate::{
    measure::{
        cost::{self, MachineWindow},
        stats::{self, Interval},
    },
    plan::{CapacityPoint, ShardCost},
};

/// Every repetition of one shard count under one assignment strategy, in the order they ran.
#[derive(Debug, Clone)]
pub struct Repetitions<'a> {
    /// The assignment strategy.
    pub strategy: Strategy,
    /// The shard count.
    pub shards: u32,
    /// Its repetitions.
    pub all: Vec<&'a ShardCountResults>,
}

/// The repetitions of each shard count of `results` under each strategy, by shard count and
/// then strategy.
#[must_use]
pub fn by_shard_count(results: &RunResults) -> Vec<Repetitions<'_>> {
    let mut groups: Vec<Repetitions<'_>> = Vec::new();
    for count in &results.shard_counts {
        let key = (count.shards, count.strategy);
        match groups
            .iter_mut()
            .find(|group| (group.shards, group.strategy) == key)
        {
            Some(group) => group.all.push(count),
            None => groups.push(Repetitions {
                strategy: count.strategy,
                shards: count.shards,
                all: vec![count],
            }),
        }
    }
    groups.sort_by_key(|group| (group.shards, group.strategy));
    groups
}

impl<'a> Repetitions<'a> {
    /// The repetitions the harness left to the operator (docs/experiments.md#validity).
    pub fn valid(&self) -> impl Iterator<Item = &'a ShardCountResults> + '_ {
        self.all
            .iter()
            .copied()
            .filter(|count| count.validity.valid)
    }

    /// How many were invalid.
    #[must_use]
    pub fn invalid(&self) -> usize {
        self.all.len() - self.valid().count()
    }

    /// A figure over the valid repetitions that have it.
    #[must_use]
    pub fn interval(&self, figure: impl Fn(&ShardCountResults) -> Option<f64>) -> Option<Interval> {
        let values: Vec<f64> = self.valid().filter_map(figure).collect();
        stats::interval(&values)
    }

    /// The capacity point of a search: each valid repetition's capacity
    /// ([`ShardCountResults::searched_capacity`]); a repetition without one counts as invalid,
    /// since its capacity lies outside the searched range.
    #[must_use]
    pub fn capacity_point(&self) -> CapacityPoint {
        let samples: Vec<f64> = self
            .valid()
            .filter_map(ShardCountResults::searched_capacity)
            .collect();
        let invalid = self.all.len() - samples.len();
        CapacityPoint::of(self.shards, samples, invalid)
    }

    /// What a shard and the sharder cost while the search's highest passing step ran: the
    /// median over the valid repetitions that have one.
    #[must_use]
    pub fn cost_at_capacity(&self) -> ShardCost {
        let costs: Vec<CapacityCost> = self
            .valid()
            .filter_map(ShardCountResults::cost_at_capacity)
            .collect();
        let figure = |figure: fn(&CapacityCost) -> Option<f64>| {
            costs.iter().filter_map(figure).collect::<Vec<f64>>()
        };
        ShardCost::of(
            self.shards,
            [
                figure(|c| c.operator_cores_per_shard),
                figure(|c| c.operator_bytes_per_shard),
                figure(|c| c.sharder_cores),
                figure(|c| c.sharder_bytes),
            ],
        )
    }
}

/// What one repetition cost while its search's highest passing step ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityCost {
    /// The operator's cores, per shard.
    pub operator_cores_per_shard: Option<f64>,
    /// The operator's peak memory, per shard, in bytes.
    pub operator_bytes_per_shard: Option<f64>,
    /// The sharder's cores.
    pub sharder_cores: Option<f64>,
    /// The sharder's peak memory, in bytes.
    pub sharder_bytes: Option<f64>,
}

impl ShardCountResults {
    /// What this repetition cost while its search's highest passing step held its churn;
    /// `None` under a load or without a passing step.
    #[must_use]
    pub fn cost_at_capacity(&self) -> Option<CapacityCost> {
        let count = self;
        let search = count.search.as_ref()?;
        let step = search
            .steps
            .iter()
            .filter(|step| step.passed)
            .max_by(|a, b| a.churn.total_cmp(&b.churn))?;
        let (start, length) = (step.started, step.hold);
        let cores = count.class_cores(start, length);
        let bytes = count.class_peaks(start, length);
        let shards = f64::from(count.shards);
        let get =
            |map: &std::collections::BTreeMap<ComponentClass, f64>, class| map.get(&class).copied();
        Some(CapacityCost {
            operator_cores_per_shard: get(&cores, ComponentClass::Operator).map(|c| c / shards),
            operator_bytes_per_shard: get(&bytes, ComponentClass::Operator).map(|b| b / shards),
            sharder_cores: get(&cores, ComponentClass::Sharder),
            sharder_bytes: get(&bytes, ComponentClass::Sharder),
        })
    }

    /// The capacity a search measured: its highest passing churn, when a failing step above
    /// it bounds it (docs/experiments.md#capacity-search); `None` under a load, or when the
    /// capacity lies below or above the searched range.
    #[must_use]
    pub fn searched_capacity(&self) -> Option<f64> {
        let bracket = self.search.as_ref()?.bracket;
        bracket.lowest_failing?;
        bracket.highest_passing
    }

    /// The cores each component class used over `length` from `start`.
    #[must_use]
    pub fn class_cores(
        &self,
        start: Timestamp,
        length: Duration,
    ) -> std::collections::BTreeMap<ComponentClass, f64> {
        let window = MachineWindow {
            start,
            length,
            busy: None,
            loadgen_cores: 0.0,
        };
        cost::group_cores(&self.usage, |c| Some(ComponentClass::of(c)), &[window])
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// The most memory each component class held together at a sample within `length` from
    /// `start`, in bytes.
    #[must_use]
    pub fn class_peaks(
        &self,
        start: Timestamp,
        length: Duration,
    ) -> std::collections::BTreeMap<ComponentClass, f64> {
        let within: Vec<cost::UsageSample> = self
            .usage
            .iter()
            .filter(|sample| sample.at >= start && sample.at <= start + length)
            .cloned()
            .collect();
        cost::peak_of_sum(&within, |c| Some(ComponentClass::of(c)))
            .into_iter()
            .map(|(class, peak)| (class, crate::measure::as_f64(peak)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        experiment::search::{Bracket, SearchResults},
        measure::validity::{Reason, Rule, Validity},
        results::tests::synthetic,
    };

    fn searched(passing: Option<f64>, failing: Option<f64>) -> SearchResults {
        SearchResults {
            steps: Vec::new(),
            bracket: Bracket {
                highest_passing: passing,
                lowest_failing: failing,
            },
        }
    }

    #[test]
    fn repetitions_group_by_shard_count_and_only_valid_bracketed_ones_give_capacity() {
        let mut results = synthetic();
        let template = results.shard_counts[0].clone();
        let repetition = |repetition, search, valid: bool| ShardCountResults {
            repetition,
            search: Some(search),
            validity: Validity {
                valid,
                reasons: if valid {
                    Vec::new()
                } else {
                    vec![Reason {
                        rule: Rule::MachineCpu,
                        sentence: "busy".to_owned(),
                    }]
                },
                unchecked: Vec::new(),
            },
            ..template.clone()
        };
        results.shard_counts = vec![
            repetition(1, searched(Some(4.0), Some(4.4)), true),
            repetition(2, searched(Some(5.0), Some(5.5)), true),
            // Invalid, above the range, below the range: none counts.
            repetition(3, searched(Some(9.0), Some(9.9)), false),
            repetition(4, searched(Some(64.0), None), true),
            repetition(5, searched(None, Some(2.0)), true),
        ];
        let groups = by_shard_count(&results);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].invalid(), 1);
        let point = groups[0].capacity_point();
        assert_eq!(point.samples, [4.0, 5.0]);
        assert_eq!(point.invalid, 3);
        assert!((point.median - 4.5).abs() < 1e-9);
        assert!((point.low - 4.0).abs() < 1e-9 && (point.high - 5.0).abs() < 1e-9);
    }
}
