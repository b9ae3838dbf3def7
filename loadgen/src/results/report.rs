//! `report.md`: what ran where, a table per shard count, the SLO verdicts and the plots.

use std::{fmt::Write, time::Duration};

use super::{
    ComponentClass, RunResults, SKEW_MIN_OBJECTS_PER_SHARD, ShardCountResults, seconds_since,
};
use crate::{
    measure::{
        failover::FailoverKind,
        movement::Change,
        slo::{self, Breach, Metric, Verdict, capacity_scaling},
    },
    units::{format_latency, format_quantile, mib},
};

/// The report of a run as Markdown.
#[must_use]
pub fn report_markdown(results: &RunResults) -> String {
    let mut out = String::new();
    header(&mut out, results);
    summary_table(&mut out, results);
    let ramped = results.scenario.measures_capacity();
    for shard_count in &results.shard_counts {
        shard_count_section(&mut out, shard_count, ramped);
    }
    scaling_section(&mut out, results);
    out
}

/// Appends a line; writing to a `String` cannot fail.
macro_rules! line {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        let _ = writeln!($out, $($arg)*);
    }};
}

fn header(out: &mut String, results: &RunResults) {
    let scenario = &results.scenario;
    line!(
        out,
        "# Scenario `{}`: run `{}`",
        scenario.name,
        results.run_id
    );
    line!(out);
    if !scenario.description.is_empty() {
        line!(out, "{}", scenario.description);
        line!(out);
    }
    line!(
        out,
        "- Date: {} to {} ({:.0} s)",
        results.started,
        results.ended,
        seconds_since(results.started, results.ended)
    );
    line!(
        out,
        "- Machine: {} cores, {:.1} GiB memory, {}",
        results.machine.cores,
        mib(results.machine.memory_bytes) / 1024.0,
        results.machine.os
    );
    line!(
        out,
        "- Versions: loadgen {}, Kubernetes {}",
        results.versions.loadgen,
        results.versions.kubernetes
    );
    let shards: Vec<String> = results
        .shard_counts
        .iter()
        .map(|count| count.shards.to_string())
        .collect();
    line!(out, "- Shard counts: {}", shards.join(", "));
    line!(out);
}

/// The headline figures of every shard count, one row each.
fn summary_table(out: &mut String, results: &RunResults) {
    line!(out, "## Summary");
    line!(out);
    line!(
        out,
        "| shards | reconcile p99 | queue p99 | capacity | max skew | voluntary failover | \
         involuntary failover | operator CPU | operator peak | sharder CPU |"
    );
    line!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "–".to_owned());
    for count in &results.shard_counts {
        let classes = count.class_costs();
        let class = |class| classes.get(&class).copied().unwrap_or_default();
        let (operator, sharder) = (
            class(ComponentClass::Operator),
            class(ComponentClass::Sharder),
        );
        let failover = |kind| {
            let [dead, assigned, reconciled] = count.mean_failover_seconds(kind);
            let s = |value: Option<f64>| or_dash(value.map(|v| format!("{v:.1}")));
            (dead.is_some() || assigned.is_some() || reconciled.is_some())
                .then(|| format!("{} / {} / {} s", s(dead), s(assigned), s(reconciled)))
        };
        line!(
            out,
            "| {} | {:.0} ms | {} | {} | {} | {} | {} | {:.1} s | {:.0} MiB | {:.1} s |",
            count.shards,
            count.reconciliation.summary().p99_ms,
            or_dash(count.queue_p99.as_ref().map(format_quantile)),
            or_dash(capacity_cell(count)),
            or_dash(count.max_skew().map(|skew| format!("{skew:.3}"))),
            or_dash(failover(FailoverKind::Voluntary)),
            or_dash(failover(FailoverKind::Involuntary)),
            operator.cpu_seconds,
            mib(operator.peak_rss_bytes),
            sharder.cpu_seconds,
        );
    }
    line!(out);
    line!(
        out,
        "Failovers: mean seconds from the kill to the Lease dead / all its objects assigned / \
         all reconciled. Capacity: per SLO, the load the schedule offered in the window where \
         that SLO's sustained breach began, with the rate the driver achieved in it. \
         Operator peak: the peak memory of all shards added up."
    );
    line!(out);
}

/// Each SLO's capacity, naming the SLO; `None` without any breach.
fn capacity_cell(count: &ShardCountResults) -> Option<String> {
    let cells: Vec<String> = [Metric::ReconciliationLatency, Metric::QueueLatency]
        .into_iter()
        .filter_map(|metric| {
            count.capacity.of(metric).map(|breach| {
                format!(
                    "{}: {:.0} Websites, {:.1} ops/s offered ({:.1} achieved)",
                    metric_name(metric),
                    breach.load.websites,
                    breach.load.operations_per_second,
                    breach.achieved_operations_per_second
                )
            })
        })
        .collect();
    (!cells.is_empty()).then(|| cells.join("; "))
}

fn shard_count_section(out: &mut String, results: &ShardCountResults, ramped: bool) {
    line!(out, "## {} shards", results.shards);
    line!(out);

    latency_table(out, results);
    verdict_table(out, results);
    assignment_table(out, results);
    movement_table(out, results);
    failover_table(out, results);
    capacity_line(out, results, ramped);
    cost_table(out, results);
    plot_links(out, results);
}

fn latency_table(out: &mut String, results: &ShardCountResults) {
    let latency = results.reconciliation.summary();
    line!(out, "### Latency");
    line!(out);
    line!(
        out,
        "| reconciliations | p50 | p90 | p99 | p99.9 | max | queue p99 |"
    );
    line!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    line!(
        out,
        "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
        latency.count,
        latency.p50_ms,
        latency.p90_ms,
        latency.p99_ms,
        latency.p999_ms,
        latency.max_ms,
        results
            .queue_p99
            .as_ref()
            .map_or_else(|| "not scraped".to_owned(), format_quantile)
    );
    if results.reconciliation.clamped() > 0 {
        line!(
            out,
            "\n{} latencies exceeded the recorder's range and count as its limit.",
            results.reconciliation.clamped()
        );
    }
    line!(out);
}

fn verdict_table(out: &mut String, results: &ShardCountResults) {
    line!(out, "### SLO verdicts");
    line!(out);
    line!(out, "| SLO | observed p99 | threshold | verdict |");
    line!(out, "|---|---:|---:|:---:|");
    for verdict in &results.verdicts {
        line!(
            out,
            "| {} | {} | {} | {} |",
            metric_name(verdict.metric),
            observed(verdict),
            format_latency(verdict.threshold.as_secs_f64()),
            match verdict.met {
                Some(true) => "✅",
                Some(false) => "❌",
                None => "undetermined",
            }
        );
    }
    if results.verdicts.is_empty() {
        line!(out, "| (none) | | | |");
    }
    if results.verdicts.iter().any(|v| v.range.is_some()) {
        line!(
            out,
            "\nA range is the histogram bucket the p99 lies in, wider than ±25 %: it meets \
             the objective only if all of it does, breaches it only if all of it is over, and \
             is undetermined otherwise."
        );
    }
    line!(out);
}

/// A verdict's p99 to 3 significant digits (HdrHistogram's and the queue buckets' resolution),
/// or the bucket it lies in when that is wider than ±25 %.
fn observed(verdict: &Verdict) -> String {
    match verdict.range {
        None => format_latency(verdict.observed.as_secs_f64()),
        Some((lower, upper)) => format_quantile(&crate::measure::prometheus::Quantile {
            value: verdict.observed.as_secs_f64(),
            lower: lower.as_secs_f64(),
            upper: upper.map_or(f64::INFINITY, |upper| upper.as_secs_f64()),
        }),
    }
}

fn assignment_table(out: &mut String, results: &ShardCountResults) {
    line!(out, "### Assignment");
    line!(out);
    match results.skew.last() {
        Some((_, last)) => {
            line!(
                out,
                "| samples | max/mean (worst, ≥ {SKEW_MIN_OBJECTS_PER_SHARD} objects per shard) | \
                 max/mean (last) | CV (last) | objects (last) |"
            );
            line!(out, "|---:|---:|---:|---:|---:|");
            let worst = results
                .max_skew()
                .map_or_else(|| "–".to_owned(), |max| format!("{max:.3}"));
            line!(
                out,
                "| {} | {worst} | {:.3} | {:.3} | {} |",
                results.skew.len(),
                last.max_over_mean,
                last.coefficient_of_variation,
                last.total
            );
        }
        None => line!(out, "No samples of objects per shard."),
    }
    line!(out);
}

fn movement_table(out: &mut String, results: &ShardCountResults) {
    if !results.movements.is_empty() {
        line!(out, "### Movement");
        line!(out);
        line!(
            out,
            "| at | change | objects | moved | moved share | ideal share | vs ideal |"
        );
        line!(out, "|---|---|---:|---:|---:|---:|---:|");
        for change in &results.movements {
            let m = &change.movement;
            line!(
                out,
                "| {} | {} | {} | {} | {:.3} | {:.3} | {} |",
                change.at,
                change_name(&change.change),
                m.objects,
                m.moved,
                m.moved_share,
                m.ideal_share,
                m.ratio_to_ideal
                    .map_or_else(|| "–".to_owned(), |ratio| format!("{ratio:.2}×"))
            );
        }
        line!(out);
    }
}

fn failover_table(out: &mut String, results: &ShardCountResults) {
    if !results.failovers.is_empty() {
        line!(out, "### Failover");
        line!(out);
        line!(
            out,
            "| shard | kind | killed at | to Lease dead | to all assigned | to all reconciled |"
        );
        line!(out, "|---|---|---|---:|---:|---:|");
        for failover in &results.failovers {
            let phases = failover.phases();
            line!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                failover.shard,
                match failover.kind {
                    FailoverKind::Voluntary => "voluntary",
                    FailoverKind::Involuntary => "involuntary",
                },
                failover.killed_at,
                seconds(phases.to_lease_dead),
                seconds(phases.to_all_assigned),
                seconds(phases.to_all_reconciled)
            );
        }
        line!(out);
    }
}

fn capacity_line(out: &mut String, results: &ShardCountResults, ramped: bool) {
    line!(out, "### Capacity");
    line!(out);
    if !ramped {
        line!(
            out,
            "Not measured: capacity needs a load that rises until an SLO breaks \
             (`load.create.ramp`), and this scenario's is steady."
        );
        line!(out);
        return;
    }
    for metric in [Metric::ReconciliationLatency, Metric::QueueLatency] {
        line!(
            out,
            "- {}: {}",
            metric_name(metric),
            capacity_text(results, metric)
        );
    }
    line!(out);
}

/// The capacity under `metric`'s SLO, or why there is none.
fn capacity_text(results: &ShardCountResults, metric: Metric) -> String {
    let undetermined = results.capacity.queue_undetermined_windows;
    match results.capacity.of(metric) {
        Some(Breach {
            load,
            achieved_operations_per_second,
            at,
            ..
        }) => format!(
            "first sustained breach at {:.0} Websites and {:.1} operations/s offered \
             ({achieved_operations_per_second:.1}/s achieved): the p99 stayed over its objective \
             for {} s from the window at {at} ({:.0} s into the load).",
            load.websites,
            load.operations_per_second,
            slo::SUSTAINED.as_secs(),
            seconds_since(results.load_started, at)
        ),
        None if metric == Metric::QueueLatency && results.queue_windows.is_empty() => {
            "not measured: the queue latency was not scraped.".to_owned()
        }
        None if metric == Metric::QueueLatency && undetermined > 0 => format!(
            "undetermined: no window's p99 was surely over the objective, but in {undetermined} \
             window(s) its histogram bucket holds the objective."
        ),
        None => "no sustained breach during the load.".to_owned(),
    }
}

fn cost_table(out: &mut String, results: &ShardCountResults) {
    line!(out, "### Cost");
    line!(out);
    line!(
        out,
        "| component | class | CPU seconds | cores | peak memory | restarts |"
    );
    line!(out, "|---|---|---:|---:|---:|---:|");
    for (component, cost) in &results.cost {
        line!(
            out,
            "| {component} | {} | {:.2} | {:.3} | {:.1} MiB | {} |",
            ComponentClass::of(component).as_str(),
            cost.cpu_seconds,
            cost.cores,
            mib(cost.peak_rss_bytes),
            cost.restarts
        );
    }
    for (class, cost) in results.class_costs() {
        line!(
            out,
            "| **all {}** | | {:.2} | | {:.1} MiB | |",
            class.as_str(),
            cost.cpu_seconds,
            mib(cost.peak_rss_bytes)
        );
    }
    line!(out);
}

fn plot_links(out: &mut String, results: &ShardCountResults) {
    let n = results.shards;
    line!(out, "### Plots");
    line!(out);
    line!(out, "![latency, {n} shards](latency-{n}shards.png)");
    line!(out);
    line!(
        out,
        "![objects per shard, {n} shards](objects-{n}shards.png)"
    );
    line!(out);
    line!(out, "![queue latency, {n} shards](queue-{n}shards.png)");
    line!(out);
}

fn scaling_section(out: &mut String, results: &RunResults) {
    line!(out, "## Scaling");
    line!(out);
    if results.scenario.measures_capacity() {
        for metric in [Metric::ReconciliationLatency, Metric::QueueLatency] {
            scaling_table(out, results, metric);
        }
    } else {
        line!(out, "No capacity scaling: the scenario's load has no ramp.");
        line!(out);
    }
    line!(out, "![capacity and cost against shards](scaling.png)");
}

/// The capacity scaling on `metric`'s SLO alone, so no ratio divides the capacities of two SLOs.
fn scaling_table(out: &mut String, results: &RunResults, metric: Metric) {
    let capacities: Vec<(u32, f64)> = results
        .shard_counts
        .iter()
        .filter_map(|count| Some((count.shards, count.capacity.of(metric)?.load.websites)))
        .collect();
    let scaling = capacity_scaling(&capacities);
    let name = metric_name(metric);
    if scaling.is_empty() {
        line!(
            out,
            "No capacity scaling on the {name} SLO: it needs a breach of it with 1 shard to \
             compare against."
        );
    } else {
        line!(
            out,
            "| shards | capacity on the {name} SLO (Websites) / capacity(1) |"
        );
        line!(out, "|---:|---:|");
        for (shards, ratio) in scaling {
            line!(out, "| {shards} | {ratio:.2} |");
        }
    }
    line!(out);
}

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::ReconciliationLatency => "reconciliation latency",
        Metric::QueueLatency => "queue latency",
    }
}

fn change_name(change: &Change) -> String {
    match change {
        Change::Join { shard } => format!("{shard} joined"),
        Change::Leave { shard } => format!("{shard} left"),
    }
}

/// A phase in seconds, or a dash when it did not happen before the run ended.
fn seconds(phase: Option<Duration>) -> String {
    phase.map_or_else(|| "–".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::synthetic;

    #[test]
    fn the_header_names_the_scenario_date_and_machine() {
        let report = report_markdown(&synthetic());
        assert!(report.starts_with("# Scenario `synthetic`: run `20231114-synthetic`\n"));
        assert!(report.contains("- Date: 2023-11-14T22:13:20Z to 2023-11-14T22:15:50Z (150 s)"));
        assert!(report.contains("- Machine: 2 cores, 8.0 GiB memory, linux"));
    }

    #[test]
    fn each_shard_count_has_its_tables() {
        let report = report_markdown(&synthetic());
        for section in ["## 1 shards", "## 3 shards"] {
            assert!(report.contains(section), "{section}");
        }
        assert_eq!(report.matches("### Latency").count(), 2);
        assert!(
            report
                .contains("| shard-0 | involuntary | 2023-11-14T22:14:00Z | 15.0 s | 16.0 s | – |")
        );
        assert!(report.contains("| shard-new joined | 10 | 1 | 0.100 | 0.500 | 0.20× |"));
        assert!(report.contains(
            "- reconciliation latency: first sustained breach at 3000 Websites and 60.0 \
             operations/s offered (45.0/s achieved): the p99 stayed over its objective for 20 s"
        ));
        assert!(report.contains("- queue latency: no sustained breach during the load."));
        assert!(report.contains("| **all operator** | | 10.00 | | 150.0 MiB | |"));
        assert!(report.contains("![latency, 3 shards](latency-3shards.png)"));
        assert!(report.contains("![queue latency, 3 shards](queue-3shards.png)"));
        assert!(report.contains("![capacity and cost against shards](scaling.png)"));
    }

    #[test]
    fn the_summary_has_a_row_per_shard_count() {
        let report = report_markdown(&synthetic());
        let summary =
            &report[report.find("## Summary").unwrap()..report.find("## 1 shards").unwrap()];
        assert!(summary.contains("| 1 | "), "{summary}");
        // 3 shards breached at 3000 Websites; its one failover is involuntary.
        assert!(
            summary.contains(
                "| reconciliation latency: 3000 Websites, 60.0 ops/s offered (45.0 achieved) | "
            ),
            "{summary}"
        );
        assert!(summary.contains("| – | 15.0 / 16.0 / – s |"), "{summary}");
    }

    #[test]
    fn capacity_is_not_measured_under_a_steady_load() {
        let mut results = synthetic();
        results.scenario.load.create.rate = crate::scenario::CreateRate::Constant(2.0);
        for count in &mut results.shard_counts {
            count.capacity = slo::Capacity::default();
        }
        let report = report_markdown(&results);
        assert!(report.contains("Not measured: capacity needs a load that rises"));
        assert!(report.contains("No capacity scaling: the scenario's load has no ramp."));
    }

    #[test]
    fn verdicts_show_observed_against_threshold() {
        let report = report_markdown(&synthetic());
        assert!(report.contains("| SLO | observed p99 | threshold | verdict |"));
        assert!(report.contains("| queue latency | 2 s | 1 s | ❌ |"));
        assert!(report.contains("| queue latency | 200 ms | 1 s | ✅ |"));
        assert!(report.contains(" ms | 200 ms | "), "{report}");
    }

    #[test]
    fn scaling_needs_a_breach_with_one_shard() {
        let mut results = synthetic();
        assert!(report_markdown(&results).contains("No capacity scaling"));
        results.shard_counts[0].capacity.reconciliation = results.shard_counts[1]
            .capacity
            .reconciliation
            .map(|mut breach| {
                breach.load.websites = 1500.0;
                breach
            });
        assert!(report_markdown(&results).contains("| 3 | 2.00 |"));
    }

    #[test]
    fn scaling_never_divides_the_capacities_of_two_slos() {
        // 1 shard breaks on the queue SLO at 1000 Websites, 3 shards on the reconciliation
        // SLO at 3000: the old report divided them (3.00); neither SLO has a ratio.
        let mut results = synthetic();
        let breach = results.shard_counts[1].capacity.reconciliation.unwrap();
        results.shard_counts[0].capacity.queue = Some(Breach {
            metric: Metric::QueueLatency,
            load: slo::Load {
                websites: 1000.0,
                ..breach.load
            },
            ..breach
        });
        let report = report_markdown(&results);
        assert!(!report.contains("| 3 | 3.00 |"), "{report}");
        assert!(report.contains(
            "No capacity scaling on the reconciliation latency SLO: it needs a breach of it \
             with 1 shard"
        ));
        assert!(report.contains(
            "| shards | capacity on the queue latency SLO (Websites) / capacity(1) |\n\
             |---:|---:|\n| 1 | 1.00 |\n\n"
        ));
    }

    #[test]
    fn a_queue_p99_in_a_wide_bucket_is_shown_as_the_bucket_and_undetermined() {
        let mut results = synthetic();
        let wide = crate::measure::prometheus::Quantile {
            value: 5.5,
            lower: 1.0,
            upper: 10.0,
        };
        results.shard_counts[0].queue_p99 = Some(wide);
        results.shard_counts[0].verdicts =
            slo::Slo::default().verdicts(Duration::from_secs(1), Some(wide));
        let report = report_markdown(&results);
        assert!(report.contains("| queue latency | 1–10 s | 1 s | undetermined |"));
        assert!(report.contains("| 1 | "));
        assert!(report.contains(" | 1–10 s |"), "{report}");
    }
}
