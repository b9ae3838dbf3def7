//! `report.md`: what ran where, a table per shard count, the SLO verdicts and the plots.

use std::{fmt::Write, time::Duration};

use super::{
    ComponentClass, RunResults, SKEW_MIN_OBJECTS_PER_SHARD, ShardCountResults, seconds_since,
};
use crate::{
    measure::{
        failover::{FailoverKind, KindStats},
        movement::Change,
        skew::Worst,
        slo::{self, Metric, capacity_scaling},
    },
    units::mib,
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
        "| shards | reconcile p99 | queue p99 | capacity | steady max skew | unnecessary moves | \
         voluntary failover | involuntary failover | operator CPU | operator peak | sharder CPU |"
    );
    line!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "–".to_owned());
    for count in &results.shard_counts {
        let classes = count.class_costs();
        let class = |class| classes.get(&class).copied().unwrap_or_default();
        let (operator, sharder) = (
            class(ComponentClass::Operator),
            class(ComponentClass::Sharder),
        );
        let failover = |kind| failover_cell(&count.failover_stats(kind));
        let movement = count.movement_totals();
        line!(
            out,
            "| {} | {:.0} ms | {} | {} | {} | {} | {} | {} | {:.1} s | {:.0} MiB | {:.1} s |",
            count.shards,
            count.reconciliation.summary().p99_ms,
            or_dash(count.queue_p99_ms.map(|ms| format!("{ms:.0} ms"))),
            or_dash(count.capacity.map(|breach| format!(
                "{:.0} Websites, {:.1} ops/s",
                breach.load.websites, breach.load.operations_per_second
            ))),
            or_dash(count.steady_max_skew().map(|skew| format!("{skew:.3}"))),
            or_dash((movement.changes > 0).then(|| format!(
                "{} of {} moved (changes: {})",
                movement.unnecessary, movement.moved, movement.changes
            ))),
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
        "Failovers: median seconds from the kill to the Lease dead / all its objects assigned / \
         all that needed a reconcile reconciled (– when none finished or none needed one), over n \
         failovers; phases that did not finish before the run ended are counted, not averaged. \
         Steady max skew: the worst max/mean with at least {SKEW_MIN_OBJECTS_PER_SHARD} objects \
         on every shard and no membership change within a lease duration. Unnecessary moves: \
         moves that did not end on the object's ring owner, over all membership changes. \
         Capacity: the load offered at the first sustained SLO breach. Operator peak: the peak \
         memory of all shards added up."
    );
    line!(out);
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
            .queue_p99_ms
            .map_or_else(|| "not scraped".to_owned(), |ms| format!("{ms:.1} ms"))
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
            millis(verdict.observed),
            millis(verdict.threshold),
            if verdict.met { "✅" } else { "❌" }
        );
    }
    if results.verdicts.is_empty() {
        line!(out, "| (none) | | | |");
    }
    line!(out);
}

fn assignment_table(out: &mut String, results: &ShardCountResults) {
    line!(out, "### Assignment");
    line!(out);
    match results.skew.last() {
        Some((_, last)) => {
            let summary = &results.skew_summary;
            line!(
                out,
                "| samples | steady: samples | steady: worst max/mean | transient: samples | \
                 transient: worst max/mean | too few objects | max/mean (last) | CV (last) | \
                 objects (last) |"
            );
            line!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            let worst = |worst: &Worst| {
                worst
                    .max_over_mean
                    .zip(worst.at)
                    .map_or_else(|| "–".to_owned(), |(max, at)| format!("{max:.3} at {at}"))
            };
            line!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:.3} | {:.3} | {} |",
                summary.samples,
                summary.steady.samples,
                worst(&summary.steady),
                summary.transient.samples,
                worst(&summary.transient),
                summary.too_few_objects,
                last.max_over_mean,
                last.coefficient_of_variation,
                last.total
            );
            line!(out);
            line!(
                out,
                "Steady: at least {SKEW_MIN_OBJECTS_PER_SHARD} objects on every shard and no \
                 membership change (nor a kill whose Lease is not yet dead) within the last lease \
                 duration. Transient: within such a change, at least {SKEW_MIN_OBJECTS_PER_SHARD} \
                 objects per shard on average (a shard that just joined is empty by design)."
            );
        }
        None => line!(out, "No samples of objects per shard."),
    }
    line!(out);
}

fn movement_table(out: &mut String, results: &ShardCountResults) {
    if results.movements.is_empty() {
        return;
    }
    line!(out, "### Movement");
    line!(out);
    line!(
        out,
        "| at | change | while | objects | moved | required | unnecessary | outstanding | \
         moved / ideal |"
    );
    line!(out, "|---|---|---|---:|---:|---:|---:|---:|---:|");
    for change in &results.movements {
        let m = &change.movement;
        let context = match (&change.killed, &change.during_failover) {
            (Some(kind), _) => format!("killed ({})", signal_name(*kind)),
            (None, Some(shard)) => format!("{shard} dead, still in the ring"),
            (None, None) => "–".to_owned(),
        };
        line!(
            out,
            "| {} | {} | {context} | {} | {} | {} | {} | {} | {} |",
            change.at,
            change_name(&change.change),
            m.objects,
            m.moved,
            m.required,
            m.unnecessary,
            m.outstanding,
            m.moved_vs_ideal
                .map_or_else(|| "–".to_owned(), |ratio| format!("{ratio:.2}×"))
        );
    }
    let totals = results.movement_totals();
    line!(out);
    line!(
        out,
        "Unnecessary moves: {} (membership changes: {}, objects moved: {}, moves required: {}, \
         outstanding: {}). Required: objects whose shard before the change is not their owner on \
         the ring of the shards after it; unnecessary: moves that did not end on the ring's \
         owner; outstanding: required moves not made by the next change, such as those off a \
         dead shard that stays in the ring until its Lease is dead. Moved / ideal: on a join, \
         against the new shard's fair share of the objects; not defined on a leave, where the \
         least possible is the required moves.",
        totals.unnecessary,
        totals.changes,
        totals.moved,
        totals.required,
        totals.outstanding
    );
    line!(out);
}

fn failover_table(out: &mut String, results: &ShardCountResults) {
    if results.failovers.is_empty() {
        return;
    }
    line!(out, "### Failover");
    line!(out);
    line!(out, "| kind | phase | finished | min | median | max |");
    line!(out, "|---|---|---:|---:|---:|---:|");
    for kind in [FailoverKind::Voluntary, FailoverKind::Involuntary] {
        let stats = results.failover_stats(kind);
        if stats.failovers == 0 {
            continue;
        }
        for (phase, phase_stats) in [
            ("to Lease dead", stats.lease_dead),
            ("to all assigned", stats.all_assigned),
            ("to all reconciled", stats.all_reconciled),
        ] {
            line!(
                out,
                "| {} | {phase} | {} of {} | {} | {} | {} |",
                kind_name(kind),
                phase_stats.finished,
                phase_stats.n,
                seconds(phase_stats.min),
                seconds(phase_stats.median),
                seconds(phase_stats.max)
            );
        }
    }
    line!(out);
    line!(
        out,
        "| shard | kind | killed at | objects (after the kill) | to reconcile | to Lease dead | \
         to all assigned | to all reconciled |"
    );
    line!(out, "|---|---|---|---:|---:|---:|---:|---:|");
    for failover in &results.failovers {
        let phases = failover.phases();
        let recovery = &failover.recovery;
        let reconciled = if recovery.to_reconcile == 0 {
            "none needed".to_owned()
        } else {
            seconds(phases.to_all_reconciled)
        };
        line!(
            out,
            "| {} | {} | {} | {} ({}) | {} | {} | {} | {reconciled} |",
            failover.shard,
            kind_name(failover.kind),
            failover.killed_at,
            recovery.objects,
            recovery.assigned_after_kill,
            recovery.to_reconcile,
            seconds(phases.to_lease_dead),
            seconds(phases.to_all_assigned)
        );
    }
    line!(out);
    line!(
        out,
        "Objects: those on the shard at the kill and those assigned to it after (in brackets). \
         To reconcile: those not Ready for their generation while on the dead shard, which their \
         new shard must reconcile; a move of an object that was Ready shows no reconcile, so it \
         counts for the assigned phase only. Finished: the failovers in which the phase happened \
         before the run ended, of those it applies to; the times are over the finished."
    );
    line!(out);
}

/// A failover summary cell: the phases' medians and how many failovers finished each.
fn failover_cell(stats: &KindStats) -> Option<String> {
    if stats.failovers == 0 {
        return None;
    }
    let phases = [stats.lease_dead, stats.all_assigned, stats.all_reconciled];
    let medians: Vec<String> = phases
        .iter()
        .map(|phase| {
            phase
                .median
                .map_or_else(|| "–".to_owned(), |d| format!("{:.1}", d.as_secs_f64()))
        })
        .collect();
    let unfinished: Vec<String> = phases
        .iter()
        .zip(["Lease dead", "assigned", "reconciled"])
        .filter(|(phase, _)| phase.finished < phase.n)
        .map(|(phase, name)| format!("{name} {} of {}", phase.finished, phase.n))
        .collect();
    let mut cell = format!("{} s, n = {}", medians.join(" / "), stats.failovers);
    if !unfinished.is_empty() {
        let _ = write!(cell, "; finished: {}", unfinished.join(", "));
    }
    Some(cell)
}

fn kind_name(kind: FailoverKind) -> &'static str {
    match kind {
        FailoverKind::Voluntary => "voluntary",
        FailoverKind::Involuntary => "involuntary",
    }
}

fn signal_name(kind: FailoverKind) -> &'static str {
    match kind {
        FailoverKind::Voluntary => "SIGTERM",
        FailoverKind::Involuntary => "SIGKILL",
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
    match results.capacity {
        Some(breach) => line!(
            out,
            "First SLO breach at {:.0} Websites and {:.1} operations/s offered: the {} p99 \
             stayed over its objective for {} s from the window at {}.",
            breach.load.websites,
            breach.load.operations_per_second,
            metric_name(breach.metric),
            slo::SUSTAINED.as_secs(),
            breach.at
        ),
        None => line!(out, "No sustained SLO breach during the load."),
    }
    line!(out);
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
}

fn scaling_section(out: &mut String, results: &RunResults) {
    line!(out, "## Scaling");
    line!(out);
    let capacities: Vec<(u32, f64)> = results
        .shard_counts
        .iter()
        .filter_map(|count| Some((count.shards, count.capacity?.load.websites)))
        .collect();
    let scaling = capacity_scaling(&capacities);
    if !results.scenario.measures_capacity() {
        line!(out, "No capacity scaling: the scenario's load has no ramp.");
    } else if scaling.is_empty() {
        line!(
            out,
            "No capacity scaling: it needs an SLO breach with 1 shard to compare against."
        );
    } else {
        line!(out, "| shards | capacity (Websites) / capacity(1) |");
        line!(out, "|---:|---:|");
        for (shards, ratio) in scaling {
            line!(out, "| {shards} | {ratio:.2} |");
        }
    }
    line!(out);
    line!(out, "![capacity and cost against shards](scaling.png)");
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

fn millis(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
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
        assert!(report.contains(
            "| shard-0 | involuntary | 2023-11-14T22:14:00Z | 10 (1) | 2 | 15.0 s | 16.0 s | – |"
        ));
        assert!(report.contains("| involuntary | to all reconciled | 0 of 1 | – | – | – |"));
        assert!(
            report.contains("| involuntary | to Lease dead | 1 of 1 | 15.0 s | 15.0 s | 15.0 s |")
        );
        // 10 objects on 1 shard: the new shard's fair share is 5; 1 moved.
        assert!(report.contains("| shard-new joined | – | 10 | 1 | 1 | 0 | 0 | 0.20× |"));
        assert!(report.contains("Unnecessary moves: 0 (membership changes: 1, objects moved: 1,"));
        assert!(report.contains(
            "First SLO breach at 3000 Websites and 60.0 operations/s offered: the reconciliation \
             latency p99 stayed over its objective for 20 s"
        ));
        assert!(report.contains("| **all operator** | | 10.00 | | 150.0 MiB | |"));
        assert!(report.contains("![latency, 3 shards](latency-3shards.png)"));
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
            summary.contains("| 3000 Websites, 60.0 ops/s | "),
            "{summary}"
        );
        assert!(
            summary.contains("| 0 of 1 moved (changes: 1) | – | 15.0 / 16.0 / – s, n = 1; finished: reconciled 0 of 1 |"),
            "{summary}"
        );
    }

    #[test]
    fn capacity_is_not_measured_under_a_steady_load() {
        let mut results = synthetic();
        results.scenario.load.create.rate = crate::scenario::CreateRate::Constant(2.0);
        for count in &mut results.shard_counts {
            count.capacity = None;
        }
        let report = report_markdown(&results);
        assert!(report.contains("Not measured: capacity needs a load that rises"));
        assert!(report.contains("No capacity scaling: the scenario's load has no ramp."));
    }

    #[test]
    fn verdicts_show_observed_against_threshold() {
        let report = report_markdown(&synthetic());
        assert!(report.contains("| SLO | observed p99 | threshold | verdict |"));
        assert!(report.contains("| queue latency | 2000.0 ms | 1000.0 ms | ❌ |"));
        assert!(report.contains("| queue latency | 200.0 ms | 1000.0 ms | ✅ |"));
    }

    #[test]
    fn scaling_needs_a_breach_with_one_shard() {
        let mut results = synthetic();
        assert!(report_markdown(&results).contains("No capacity scaling"));
        results.shard_counts[0].capacity = results.shard_counts[1].capacity.map(|mut breach| {
            breach.load.websites = 1500.0;
            breach
        });
        assert!(report_markdown(&results).contains("| 3 | 2.00 |"));
    }
}
