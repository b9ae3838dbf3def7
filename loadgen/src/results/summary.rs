//! `summary.csv`: a row per shard count, whose type also names its columns and the figures
//! `loadgen compare` reads back from them, so the three cannot drift apart.

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::{ComponentClass, ShardCountResults};
use crate::measure::{
    failover::{FailoverKind, PhaseStats},
    movement,
    owned::OwnedCheck,
    ownership::Ownership,
};

/// The columns of a CSV row type, in field order: written explicitly because csv derives the
/// header from the first row and would write none for an empty series.
pub trait Columns {
    /// The column names.
    const HEADER: &'static [&'static str];
    /// The columns compared by `loadgen compare`, in the order of its table.
    const METRICS: &'static [Metric];
}

/// Declares a CSV row struct (`Serialize`) and its [`Columns`]: the header from the field
/// names, and a [`Metric`] for each field marked `=> new("label", Unit)` or
/// `=> optional("label", Unit)`, lower-is-better unless a third argument says `Higher` or
/// `Neither` ([`Better`]).
macro_rules! csv_row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(<$lifetime:lifetime>)? {
            $(
                $(#[doc = $doc:literal])*
                $field:ident: $type:ty $(=> $kind:ident($label:literal, $unit:ident $(, $better:ident)?))?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, serde::Serialize)]
        $vis struct $name $(<$lifetime>)? {
            $(
                $(#[doc = $doc])*
                $field: $type,
            )*
        }

        impl $(<$lifetime>)? $crate::results::summary::Columns for $name $(<$lifetime>)? {
            const HEADER: &'static [&'static str] = &[$(stringify!($field)),*];
            const METRICS: &'static [$crate::results::summary::Metric] = &[$($(
                $crate::results::summary::Metric::$kind(
                    stringify!($field),
                    $label,
                    $crate::results::summary::Unit::$unit,
                )$(.better($crate::results::summary::Better::$better))?,
            )?)*];
        }
    };
}

pub(crate) use csv_row;

/// The unit of a figure of `summary.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds.
    Millis,
    /// Seconds.
    Seconds,
    /// Shown in MiB.
    Bytes,
    /// A count, a load or a ratio.
    Plain,
}

/// Which way a figure improves: what `loadgen compare --fail-on-regression` counts as worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Latencies, skew, cost, movement, failover times: higher is worse.
    Lower,
    /// Capacities and finished failovers: lower is worse.
    Higher,
    /// Counts of what the scenario did (failovers, membership changes): neither way is a
    /// regression.
    Neither,
}

/// A figure compared across rows: a column of `summary.csv`.
#[derive(Debug, Serialize)]
pub struct Metric {
    /// The column's name in `summary.csv`, and the figure's key in the JSON output.
    pub column: &'static str,
    /// The table's heading.
    pub label: &'static str,
    /// How its values are shown.
    pub unit: Unit,
    /// Shown only when some row has a value: scenarios without failovers or membership
    /// changes, and runs from before these columns existed, have none.
    pub optional: bool,
    /// Which way the figure improves.
    pub better: Better,
}

impl Metric {
    /// A figure every run has.
    #[must_use]
    pub const fn new(column: &'static str, label: &'static str, unit: Unit) -> Self {
        Self {
            column,
            label,
            unit,
            optional: false,
            better: Better::Lower,
        }
    }

    /// A figure only some runs have.
    #[must_use]
    pub const fn optional(column: &'static str, label: &'static str, unit: Unit) -> Self {
        Self {
            optional: true,
            ..Self::new(column, label, unit)
        }
    }

    /// The figure, improving the way `better` says.
    #[must_use]
    pub const fn better(self, better: Better) -> Self {
        Self { better, ..self }
    }
}

csv_row! {
    /// A row of `summary.csv`: one repetition of one shard count. Empty fields were not
    /// measured.
    pub struct SummaryRow {
        shards: u32,
        /// Which run of the shard count, from 1 (`--repeat`).
        repetition: u32,
        /// Whether the harness left the figures to the operator (docs/experiments.md#validity).
        valid: bool,
        count: u64,
        p50_ms: f64 => new("reconcile p50", Millis),
        p90_ms: f64,
        p99_ms: f64 => new("reconcile p99", Millis),
        max_ms: f64,
        queue_p99_ms: Option<f64> => new("queue p99", Millis),
        /// The worst steady-state skew (docs/experiments.md#assignment-skew).
        steady_max_skew: Option<f64> => new("steady max skew", Plain),
        skew_steady_samples: usize,
        transient_max_skew: Option<f64> => optional("transient max skew", Plain),
        capacity_websites: Option<f64> => new("capacity", Plain, Higher),
        capacity_ops_per_second: Option<f64> => optional("capacity ops/s", Plain, Higher),
        capacity_slo: Option<&'static str>,
        capacity_at: Option<Timestamp>,
        /// A capacity search's capacity: its highest passing churn in changes per second, when a
        /// failing step above it bounds it (docs/experiments.md#capacity-search).
        search_capacity_ops_per_second: Option<f64> => optional("searched capacity ops/s", Plain, Higher),
        /// The search's bracket: its highest passing and lowest failing churn.
        search_passing_ops_per_second: Option<f64>,
        search_failing_ops_per_second: Option<f64>,
        /// The SLOs the lowest failing step did not surely meet, `;`-separated.
        search_deciding_slos: Option<String>,
        search_steps: Option<usize>,
        /// What a shard and the sharder used while the highest passing step held its churn.
        capacity_operator_cores_per_shard: Option<f64> => optional("operator cores per shard at capacity", Plain),
        capacity_operator_peak_bytes_per_shard: Option<f64> => optional("operator peak per shard at capacity", Bytes),
        capacity_sharder_cores: Option<f64> => optional("sharder cores at capacity", Plain),
        capacity_sharder_peak_bytes: Option<f64> => optional("sharder peak at capacity", Bytes),
        failover_voluntary_n: Option<usize> => optional("voluntary failovers", Plain, Neither),
        failover_voluntary_lease_dead_finished: Option<usize> => optional("voluntary Lease dead (finished)", Plain, Higher),
        failover_voluntary_lease_dead_median_s: Option<f64> => optional("voluntary to Lease dead, median", Seconds),
        failover_voluntary_assigned_finished: Option<usize> => optional("voluntary all assigned (finished)", Plain, Higher),
        failover_voluntary_assigned_median_s: Option<f64> => optional("voluntary to all assigned, median", Seconds),
        failover_voluntary_reconciled_n: Option<usize> => optional("voluntary with objects to reconcile", Plain, Neither),
        failover_voluntary_reconciled_finished: Option<usize> => optional("voluntary all reconciled (finished)", Plain, Higher),
        failover_voluntary_reconciled_median_s: Option<f64> => optional("voluntary to all reconciled, median", Seconds),
        failover_involuntary_n: Option<usize> => optional("involuntary failovers", Plain, Neither),
        failover_involuntary_lease_dead_finished: Option<usize> => optional("involuntary Lease dead (finished)", Plain, Higher),
        failover_involuntary_lease_dead_median_s: Option<f64> => optional("involuntary to Lease dead, median", Seconds),
        failover_involuntary_assigned_finished: Option<usize> => optional("involuntary all assigned (finished)", Plain, Higher),
        failover_involuntary_assigned_median_s: Option<f64> => optional("involuntary to all assigned, median", Seconds),
        failover_involuntary_reconciled_n: Option<usize> => optional("involuntary with objects to reconcile", Plain, Neither),
        failover_involuntary_reconciled_finished: Option<usize> => optional("involuntary all reconciled (finished)", Plain, Higher),
        failover_involuntary_reconciled_median_s: Option<f64> => optional("involuntary to all reconciled, median", Seconds),
        movement_changes: Option<usize> => optional("membership changes", Plain, Neither),
        movement_moved: Option<usize> => optional("objects moved", Plain),
        movement_required: Option<usize> => optional("moves required", Plain),
        movement_unnecessary: Option<usize> => optional("unnecessary moves", Plain),
        movement_outstanding: Option<usize> => optional("required moves outstanding", Plain),
        owned_checked: Option<u64> => optional("owned objects checked", Plain, Neither),
        owned_off_owner_shard: Option<u64> => optional("owned objects off their owner's shard", Plain),
        /// Objects ever on no live shard (docs/experiments.md#ownership): as many as the
        /// scenario's kills left to move, so neither way is a regression; their times are.
        unowned_objects: Option<usize> => optional("objects on no live shard", Plain, Neither),
        unowned_longest_s: Option<f64> => optional("longest on no live shard", Seconds),
        unowned_p99_s: Option<f64> => optional("p99 on no live shard", Seconds),
        /// Intervals still open at the end: their lengths are lower bounds.
        unowned_censored: Option<usize>,
        /// Empty when not measured (no audit log), never 0.
        double_reconciled_objects: Option<usize> => optional("objects reconciled by two shards at once", Plain),
        conflicts_sharder: Option<u64> => optional("sharder conflicts (409)", Plain, Neither),
        conflicts_shards: Option<u64> => optional("shard conflicts (409)", Plain, Neither),
        sharder_cpu_seconds: f64 => new("sharder CPU", Seconds),
        sharder_peak_rss_bytes: u64 => new("sharder peak", Bytes),
        operator_cpu_seconds: f64 => new("operator CPU", Seconds),
        operator_peak_rss_bytes: u64 => new("operator peak", Bytes),
        control_plane_cpu_seconds: f64 => new("control plane CPU", Seconds),
        control_plane_peak_rss_bytes: u64 => new("control plane peak", Bytes),
        /// Censored latencies among `count`: writes pending at the end or abandoned.
        censored: u64,
        p50_lower_bound: bool,
        p90_lower_bound: bool,
        p99_lower_bound: bool,
        max_lower_bound: bool,
        writes_scheduled: u64,
        writes_reconciled: u64,
        writes_pending: u64,
        writes_abandoned: u64,
        writes_failed: u64,
        writes_not_issued: u64,
        writes_skipped: u64,
        deletes_scheduled: u64,
        deletes_failed: u64,
        /// The most memory all components held together at a sample.
        total_peak_rss_bytes: u64 => optional("total peak", Bytes),
        /// Shards started in a slot after its first, over all slots; empty where the target
        /// cannot tell.
        operator_restarts: Option<usize> => optional("operator restarts", Plain),
        operator_cpu_seconds_per_shard: Option<f64> => optional("operator CPU per shard", Seconds),
        operator_peak_rss_bytes_per_shard: Option<f64> => optional("operator peak per shard", Bytes),
        /// The Websites held at the end of the load, the divisor of the next two.
        websites_at_end: Option<u64>,
        operator_cpu_seconds_per_1000_websites: Option<f64> => optional("operator CPU per 1k objects", Seconds),
        operator_peak_rss_bytes_per_1000_websites: Option<f64> => optional("operator peak per 1k objects", Bytes),
        /// The machine's busy share of all cores over the sampler windows, in %.
        machine_busy_mean_percent: Option<f64> => optional("machine busy", Plain),
        machine_busy_max_percent: Option<f64>,
        loadgen_cores_mean: Option<f64> => optional("loadgen cores", Plain),
        loadgen_cores_max: Option<f64>,
        /// The machine's busy share during the capacity's breach window, in %.
        capacity_machine_busy_percent: Option<f64>,
        /// Whether that share was over 90 %: the capacity is the machine's.
        capacity_machine_bound: Option<bool>,
        /// The bucket of `queue_p99_ms`: it is a point only if upper / lower ≤ 1.25.
        queue_p99_lower_ms: Option<f64>,
        queue_p99_upper_ms: Option<f64>,
        /// The driver's completed operations per second in the window of `capacity_at`.
        capacity_achieved_ops_per_second: Option<f64>,
        capacity_websites_reconciliation: Option<f64> => optional("capacity (reconciliation SLO)", Plain, Higher),
        capacity_ops_per_second_reconciliation: Option<f64>,
        capacity_achieved_ops_per_second_reconciliation: Option<f64>,
        capacity_at_reconciliation: Option<Timestamp>,
        capacity_websites_queue: Option<f64> => optional("capacity (queue SLO)", Plain, Higher),
        capacity_ops_per_second_queue: Option<f64>,
        capacity_achieved_ops_per_second_queue: Option<f64>,
        capacity_at_queue: Option<Timestamp>,
        /// Queue windows whose p99 bucket holds the objective: with any and no queue breach,
        /// the queue SLO's capacity is undetermined.
        capacity_queue_undetermined_windows: usize,
        /// The ring's assignment strategy (docs/experiments.md#assignment-strategies); last,
        /// so that the columns before it are where they were without the strategy axis.
        strategy: &'static str,
        /// The sharder's webhook admission latency of the ring during the load, and the
        /// requests it rests on (docs/experiments.md#webhook-latency).
        webhook_p50_ms: Option<f64> => optional("webhook p50", Millis),
        webhook_p99_ms: Option<f64> => optional("webhook p99", Millis),
        webhook_requests: Option<u64>,
    }
}

impl SummaryRow {
    /// The summary of one shard count.
    #[must_use]
    #[allow(
        clippy::too_many_lines,
        reason = "one line per column of a flat CSV row"
    )]
    pub fn of(results: &ShardCountResults) -> Self {
        let latency = results.reconciliation.summary();
        let (writes, deletes) = (&results.accounting.writes, &results.accounting.deletes);
        let classes = results.class_costs();
        let class = |class| classes.get(&class).copied().unwrap_or_default();
        let (sharder, operator, control_plane) = (
            class(ComponentClass::Sharder),
            class(ComponentClass::Operator),
            class(ComponentClass::ControlPlane),
        );
        let voluntary = Failovers::of(results, FailoverKind::Voluntary);
        let involuntary = Failovers::of(results, FailoverKind::Involuntary);
        let movement = Some(results.movement_totals()).filter(|totals| totals.changes > 0);
        let moves = |count: fn(&movement::Totals) -> usize| movement.as_ref().map(count);
        let unit = results.operator_unit_cost();
        let machine = results.machine_summary();
        let busy = machine.and_then(|m| m.busy);
        let capacity_machine = results.capacity_machine_load();
        let capacity = results.capacity.earliest();
        let reconciliation = results.capacity.reconciliation;
        let queue = results.capacity.queue;
        let search = results.search.as_ref();
        let at_capacity = results.cost_at_capacity();
        let ownership = results.ownership.as_ref();
        Self {
            shards: results.shards,
            repetition: results.repetition,
            valid: results.validity.valid,
            count: latency.count,
            p50_ms: latency.p50_ms,
            p90_ms: latency.p90_ms,
            p99_ms: latency.p99_ms,
            max_ms: latency.max_ms,
            queue_p99_ms: results.queue_p99_ms(),
            steady_max_skew: results.steady_max_skew(),
            skew_steady_samples: results.skew_summary.steady.samples,
            transient_max_skew: results.skew_summary.transient.max_over_mean,
            capacity_websites: capacity.map(|breach| breach.load.websites),
            capacity_ops_per_second: capacity.map(|breach| breach.load.operations_per_second),
            capacity_slo: capacity.map(|breach| breach.metric.as_str()),
            capacity_at: capacity.map(|breach| breach.at),
            search_capacity_ops_per_second: results.searched_capacity(),
            search_passing_ops_per_second: search.and_then(|s| s.bracket.highest_passing),
            search_failing_ops_per_second: search.and_then(|s| s.bracket.lowest_failing),
            search_deciding_slos: search.map(|s| {
                let slos: Vec<&str> = s.deciding_slos().iter().map(|m| m.as_str()).collect();
                slos.join(";")
            }),
            search_steps: search.map(|s| s.steps.len()),
            capacity_operator_cores_per_shard: at_capacity.and_then(|c| c.operator_cores_per_shard),
            capacity_operator_peak_bytes_per_shard: at_capacity
                .and_then(|c| c.operator_bytes_per_shard),
            capacity_sharder_cores: at_capacity.and_then(|c| c.sharder_cores),
            capacity_sharder_peak_bytes: at_capacity.and_then(|c| c.sharder_bytes),
            failover_voluntary_n: voluntary.n,
            failover_voluntary_lease_dead_finished: voluntary.lease_dead.0,
            failover_voluntary_lease_dead_median_s: voluntary.lease_dead.1,
            failover_voluntary_assigned_finished: voluntary.assigned.0,
            failover_voluntary_assigned_median_s: voluntary.assigned.1,
            failover_voluntary_reconciled_n: voluntary.reconciled_n,
            failover_voluntary_reconciled_finished: voluntary.reconciled.0,
            failover_voluntary_reconciled_median_s: voluntary.reconciled.1,
            failover_involuntary_n: involuntary.n,
            failover_involuntary_lease_dead_finished: involuntary.lease_dead.0,
            failover_involuntary_lease_dead_median_s: involuntary.lease_dead.1,
            failover_involuntary_assigned_finished: involuntary.assigned.0,
            failover_involuntary_assigned_median_s: involuntary.assigned.1,
            failover_involuntary_reconciled_n: involuntary.reconciled_n,
            failover_involuntary_reconciled_finished: involuntary.reconciled.0,
            failover_involuntary_reconciled_median_s: involuntary.reconciled.1,
            movement_changes: moves(|t| t.changes),
            movement_moved: moves(|t| t.moved),
            movement_required: moves(|t| t.required),
            movement_unnecessary: moves(|t| t.unnecessary),
            movement_outstanding: moves(|t| t.outstanding),
            owned_checked: results.owned.as_ref().map(|owned| owned.checked),
            owned_off_owner_shard: results.owned.as_ref().map(OwnedCheck::off_owner_shard),
            unowned_objects: ownership.map(|o| o.unowned.objects),
            unowned_longest_s: ownership.map(|o| {
                o.unowned
                    .longest
                    .as_ref()
                    .map_or(0.0, |i| i.length().as_secs_f64())
            }),
            unowned_p99_s: ownership.map(|o| o.unowned.p99.unwrap_or_default().as_secs_f64()),
            unowned_censored: ownership.map(|o| o.unowned.censored),
            double_reconciled_objects: ownership
                .and_then(Ownership::double_reconciled)
                .map(|audit| audit.objects.len()),
            conflicts_sharder: ownership.and_then(|o| o.conflicts.sharder),
            conflicts_shards: ownership.and_then(|o| o.conflicts.shards),
            sharder_cpu_seconds: sharder.cpu_seconds,
            sharder_peak_rss_bytes: sharder.peak_rss_bytes,
            operator_cpu_seconds: operator.cpu_seconds,
            operator_peak_rss_bytes: operator.peak_rss_bytes,
            control_plane_cpu_seconds: control_plane.cpu_seconds,
            control_plane_peak_rss_bytes: control_plane.peak_rss_bytes,
            censored: latency.censored,
            p50_lower_bound: latency.p50_lower_bound,
            p90_lower_bound: latency.p90_lower_bound,
            p99_lower_bound: latency.p99_lower_bound,
            max_lower_bound: latency.max_lower_bound,
            writes_scheduled: writes.scheduled,
            writes_reconciled: writes.reconciled,
            writes_pending: writes.pending,
            writes_abandoned: writes.abandoned,
            writes_failed: writes.failed_total(),
            writes_not_issued: writes.not_issued,
            writes_skipped: writes.skipped,
            deletes_scheduled: deletes.scheduled,
            deletes_failed: deletes.failed.values().sum(),
            total_peak_rss_bytes: results.total_peak_rss_bytes(),
            operator_restarts: results
                .slot_restarts()
                .map(|restarts| restarts.values().sum()),
            operator_cpu_seconds_per_shard: unit.cpu_seconds_per_shard,
            operator_peak_rss_bytes_per_shard: unit.peak_rss_bytes_per_shard,
            websites_at_end: unit.websites,
            operator_cpu_seconds_per_1000_websites: unit.cpu_seconds_per_1000_websites,
            operator_peak_rss_bytes_per_1000_websites: unit.peak_rss_bytes_per_1000_websites,
            machine_busy_mean_percent: busy.map(|b| b.mean_busy * 100.0),
            machine_busy_max_percent: busy.map(|b| b.max_busy * 100.0),
            loadgen_cores_mean: machine.map(|m| m.loadgen_cores_mean),
            loadgen_cores_max: machine.map(|m| m.loadgen_cores_max),
            capacity_machine_busy_percent: capacity_machine.map(|load| load.mean_busy * 100.0),
            capacity_machine_bound: capacity_machine.map(|load| load.bound()),
            queue_p99_lower_ms: results.queue_p99.map(|p99| p99.lower * 1000.0),
            queue_p99_upper_ms: results
                .queue_p99
                .and_then(|p99| p99.upper.is_finite().then_some(p99.upper * 1000.0)),
            capacity_achieved_ops_per_second: capacity
                .map(|breach| breach.achieved_operations_per_second),
            capacity_websites_reconciliation: reconciliation.map(|breach| breach.load.websites),
            capacity_ops_per_second_reconciliation: reconciliation
                .map(|breach| breach.load.operations_per_second),
            capacity_achieved_ops_per_second_reconciliation: reconciliation
                .map(|breach| breach.achieved_operations_per_second),
            capacity_at_reconciliation: reconciliation.map(|breach| breach.at),
            capacity_websites_queue: queue.map(|breach| breach.load.websites),
            capacity_ops_per_second_queue: queue.map(|breach| breach.load.operations_per_second),
            capacity_achieved_ops_per_second_queue: queue
                .map(|breach| breach.achieved_operations_per_second),
            capacity_at_queue: queue.map(|breach| breach.at),
            capacity_queue_undetermined_windows: results.capacity.queue_undetermined_windows,
            strategy: results.strategy.name(),
            webhook_p50_ms: results.webhook.map(|w| w.p50.value * 1000.0),
            webhook_p99_ms: results.webhook.map(|w| w.p99.value * 1000.0),
            webhook_requests: results.webhook.map(|w| w.requests),
        }
    }
}

/// The columns of the failovers of one kind; all empty without such failovers.
struct Failovers {
    n: Option<usize>,
    /// Finished, and the median in seconds.
    lease_dead: (Option<usize>, Option<f64>),
    assigned: (Option<usize>, Option<f64>),
    reconciled_n: Option<usize>,
    reconciled: (Option<usize>, Option<f64>),
}

impl Failovers {
    fn of(results: &ShardCountResults, kind: FailoverKind) -> Self {
        let stats = results.failover_stats(kind);
        let any = stats.failovers > 0;
        let phase = |phase: PhaseStats| {
            (
                (any && phase.n > 0).then_some(phase.finished),
                phase.median.map(|d| d.as_secs_f64()),
            )
        };
        Self {
            n: any.then_some(stats.failovers),
            lease_dead: phase(stats.lease_dead),
            assigned: phase(stats.all_assigned),
            reconciled_n: any.then_some(stats.all_reconciled.n),
            reconciled: phase(stats.all_reconciled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_follows_the_fields() {
        let results = crate::results::tests::synthetic();
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        writer
            .serialize(SummaryRow::of(&results.shard_counts[0]))
            .unwrap();
        let row = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        let fields = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(row.as_bytes())
            .records()
            .next()
            .unwrap()
            .unwrap()
            .len();
        assert_eq!(SummaryRow::HEADER.len(), fields);
        assert_eq!(
            SummaryRow::HEADER[..4],
            ["shards", "repetition", "valid", "count"]
        );
    }

    #[test]
    fn compared_figures_are_columns_in_the_same_order() {
        let compared: Vec<&str> = SummaryRow::METRICS.iter().map(|m| m.column).collect();
        let in_header: Vec<&str> = SummaryRow::HEADER
            .iter()
            .copied()
            .filter(|column| compared.contains(column))
            .collect();
        assert_eq!(compared, in_header);
        let capacity = SummaryRow::METRICS
            .iter()
            .find(|m| m.label == "capacity ops/s")
            .unwrap();
        assert!(capacity.optional);
    }

    #[test]
    fn capacities_improve_upwards_counts_of_the_scenario_neither_way_and_the_rest_downwards() {
        let better = |column: &str| {
            SummaryRow::METRICS
                .iter()
                .find(|m| m.column == column)
                .unwrap()
                .better
        };
        for column in [
            "capacity_websites",
            "capacity_ops_per_second",
            "capacity_websites_queue",
            "failover_involuntary_assigned_finished",
        ] {
            assert_eq!(better(column), Better::Higher, "{column}");
        }
        for column in [
            "failover_voluntary_n",
            "movement_changes",
            "unowned_objects",
            "conflicts_sharder",
            "conflicts_shards",
        ] {
            assert_eq!(better(column), Better::Neither, "{column}");
        }
        for column in [
            "p99_ms",
            "steady_max_skew",
            "operator_cpu_seconds",
            "movement_moved",
            "failover_voluntary_assigned_median_s",
            "unowned_longest_s",
            "double_reconciled_objects",
        ] {
            assert_eq!(better(column), Better::Lower, "{column}");
        }
    }

    #[test]
    fn double_reconciliations_not_measured_are_an_empty_cell_never_zero() {
        use crate::measure::{
            audit::DoubleReconciliation,
            conflicts::Conflicts,
            ownership::{Audited, Ownership},
            unowned::UnownedSummary,
        };
        let mut results = crate::results::tests::synthetic();
        let count = &mut results.shard_counts[0];
        assert_eq!(SummaryRow::of(count).double_reconciled_objects, None);
        count.ownership = Some(Ownership {
            unowned: UnownedSummary::default(),
            double_reconciliation: Audited::NotMeasured {
                reason: "no audit log".to_owned(),
            },
            conflicts: Conflicts::default(),
        });
        let row = SummaryRow::of(count);
        assert_eq!(row.double_reconciled_objects, None);
        assert_eq!((row.unowned_objects, row.conflicts_shards), (Some(0), None));
        if let Some(ownership) = &mut count.ownership {
            ownership.double_reconciliation = Audited::Measured(DoubleReconciliation::of(&[]));
        }
        assert_eq!(SummaryRow::of(count).double_reconciled_objects, Some(0));
    }
}
