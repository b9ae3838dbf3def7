//! `summary.csv`: a row per shard count, whose type also names its columns and the figures
//! `loadgen compare` reads back from them, so the three cannot drift apart.

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::{ComponentClass, ShardCountResults};
use crate::measure::failover::FailoverKind;

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
/// `=> optional("label", Unit)`.
macro_rules! csv_row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(<$lifetime:lifetime>)? {
            $(
                $(#[doc = $doc:literal])*
                $field:ident: $type:ty $(=> $kind:ident($label:literal, $unit:ident))?
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
                ),
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
}

csv_row! {
    /// A row of `summary.csv`: one shard count. Empty fields were not measured.
    pub struct SummaryRow {
        shards: u32,
        count: u64,
        p50_ms: f64 => new("reconcile p50", Millis),
        p90_ms: f64,
        p99_ms: f64 => new("reconcile p99", Millis),
        max_ms: f64,
        queue_p99_ms: Option<f64> => new("queue p99", Millis),
        max_skew: Option<f64> => new("max skew", Plain),
        capacity_websites: Option<f64> => new("capacity", Plain),
        capacity_ops_per_second: Option<f64> => optional("capacity ops/s", Plain),
        capacity_slo: Option<&'static str>,
        capacity_at: Option<Timestamp>,
        failover_voluntary_lease_dead_s: Option<f64> => optional("voluntary to Lease dead", Seconds),
        failover_voluntary_assigned_s: Option<f64> => optional("voluntary to all assigned", Seconds),
        failover_voluntary_reconciled_s: Option<f64> => optional("voluntary to all reconciled", Seconds),
        failover_involuntary_lease_dead_s: Option<f64> => optional("involuntary to Lease dead", Seconds),
        failover_involuntary_assigned_s: Option<f64> => optional("involuntary to all assigned", Seconds),
        failover_involuntary_reconciled_s: Option<f64> => optional("involuntary to all reconciled", Seconds),
        movement_ratio: Option<f64> => optional("movement vs ideal", Plain),
        sharder_cpu_seconds: f64 => new("sharder CPU", Seconds),
        sharder_peak_rss_bytes: u64 => new("sharder peak", Bytes),
        operator_cpu_seconds: f64 => new("operator CPU", Seconds),
        operator_peak_rss_bytes: u64 => new("operator peak", Bytes),
        control_plane_cpu_seconds: f64 => new("control plane CPU", Seconds),
        control_plane_peak_rss_bytes: u64 => new("control plane peak", Bytes),
        /// The bucket of `queue_p99_ms`: it is a point only if upper / lower ≤ 1.25.
        queue_p99_lower_ms: Option<f64>,
        queue_p99_upper_ms: Option<f64>,
        /// The driver's completed operations per second in the window of `capacity_at`.
        capacity_achieved_ops_per_second: Option<f64>,
        capacity_websites_reconciliation: Option<f64> => optional("capacity (reconciliation SLO)", Plain),
        capacity_ops_per_second_reconciliation: Option<f64>,
        capacity_achieved_ops_per_second_reconciliation: Option<f64>,
        capacity_at_reconciliation: Option<Timestamp>,
        capacity_websites_queue: Option<f64> => optional("capacity (queue SLO)", Plain),
        capacity_ops_per_second_queue: Option<f64>,
        capacity_achieved_ops_per_second_queue: Option<f64>,
        capacity_at_queue: Option<Timestamp>,
        /// Queue windows whose p99 bucket holds the objective: with any and no queue breach,
        /// the queue SLO's capacity is undetermined.
        capacity_queue_undetermined_windows: usize,
    }
}

impl SummaryRow {
    /// The summary of one shard count.
    #[must_use]
    pub fn of(results: &ShardCountResults) -> Self {
        let latency = results.reconciliation.summary();
        let classes = results.class_costs();
        let class = |class| classes.get(&class).copied().unwrap_or_default();
        let (sharder, operator, control_plane) = (
            class(ComponentClass::Sharder),
            class(ComponentClass::Operator),
            class(ComponentClass::ControlPlane),
        );
        let [
            voluntary_lease_dead,
            voluntary_assigned,
            voluntary_reconciled,
        ] = results.mean_failover_seconds(FailoverKind::Voluntary);
        let [
            involuntary_lease_dead,
            involuntary_assigned,
            involuntary_reconciled,
        ] = results.mean_failover_seconds(FailoverKind::Involuntary);
        let capacity = results.capacity.earliest();
        let reconciliation = results.capacity.reconciliation;
        let queue = results.capacity.queue;
        Self {
            shards: results.shards,
            count: latency.count,
            p50_ms: latency.p50_ms,
            p90_ms: latency.p90_ms,
            p99_ms: latency.p99_ms,
            max_ms: latency.max_ms,
            queue_p99_ms: results.queue_p99_ms,
            max_skew: results.max_skew(),
            capacity_websites: capacity.map(|breach| breach.load.websites),
            capacity_ops_per_second: capacity.map(|breach| breach.load.operations_per_second),
            capacity_slo: capacity.map(|breach| breach.metric.as_str()),
            capacity_at: capacity.map(|breach| breach.at),
            failover_voluntary_lease_dead_s: voluntary_lease_dead,
            failover_voluntary_assigned_s: voluntary_assigned,
            failover_voluntary_reconciled_s: voluntary_reconciled,
            failover_involuntary_lease_dead_s: involuntary_lease_dead,
            failover_involuntary_assigned_s: involuntary_assigned,
            failover_involuntary_reconciled_s: involuntary_reconciled,
            movement_ratio: results.mean_movement_ratio(),
            sharder_cpu_seconds: sharder.cpu_seconds,
            sharder_peak_rss_bytes: sharder.peak_rss_bytes,
            operator_cpu_seconds: operator.cpu_seconds,
            operator_peak_rss_bytes: operator.peak_rss_bytes,
            control_plane_cpu_seconds: control_plane.cpu_seconds,
            control_plane_peak_rss_bytes: control_plane.peak_rss_bytes,
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_follows_the_fields() {
        assert_eq!(SummaryRow::HEADER.len(), 37);
        assert_eq!(SummaryRow::HEADER[..3], ["shards", "count", "p50_ms"]);
        assert_eq!(SummaryRow::HEADER[24], "control_plane_peak_rss_bytes");
        assert_eq!(
            SummaryRow::HEADER[36],
            "capacity_queue_undetermined_windows"
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
        assert_eq!(compared.len(), 21);
        assert!(SummaryRow::METRICS[5].optional);
        assert_eq!(SummaryRow::METRICS[5].label, "capacity ops/s");
    }
}
