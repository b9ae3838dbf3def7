//! `report.md`: a headline that answers the scenario's question, what ran where, a table per
//! shard count, the SLO verdicts and the plots.

use std::{fmt::Write, time::Duration};

use super::{
    ComponentClass, RunResults, SKEW_MIN_OBJECTS_PER_SHARD, ShardCountResults, seconds_since,
};
use crate::{
    measure::{
        failover::FailoverKind,
        movement::Change,
        slo::{self, Breach, Metric, capacity_scaling},
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

/// The one or two sentences at the top of the report that answer the scenario's question in
/// numbers (docs/experiments.md#the-headline): the capacity per shard count under a ramp of
/// load, the failover times under chaos, otherwise the reconciliation p99 against its SLO.
#[must_use]
pub fn headline(results: &RunResults) -> String {
    if results.scenario.measures_capacity() {
        capacity_headline(results)
    } else if results
        .shard_counts
        .iter()
        .any(|count| !count.failovers.is_empty())
    {
        failover_headline(results)
    } else {
        slo_headline(results)
    }
}

/// The breach the headline reports as a shard count's capacity.
fn headline_capacity(count: &ShardCountResults) -> Option<Breach> {
    count.capacity
}

/// The seconds from the kill until all of the shard's objects were reconciled again, of the
/// failovers of `kind` that got there, and how many did not.
fn headline_failover_seconds(count: &ShardCountResults, kind: FailoverKind) -> (Vec<f64>, usize) {
    let phases: Vec<Option<Duration>> = count
        .failovers
        .iter()
        .filter(|failover| failover.kind == kind)
        .map(|failover| failover.phases().to_all_reconciled)
        .collect();
    let finished: Vec<f64> = phases.iter().flatten().map(Duration::as_secs_f64).collect();
    let unfinished = phases.len() - finished.len();
    (finished, unfinished)
}

/// The reconciliation p99 of a whole shard count, in seconds.
fn headline_p99_seconds(count: &ShardCountResults) -> f64 {
    count.reconciliation.summary().p99_ms / 1000.0
}

/// A number of seconds with the digits that matter at its size.
fn seconds_text(seconds: f64) -> String {
    if seconds >= 10.0 {
        format!("{seconds:.0} s")
    } else if seconds >= 1.0 {
        format!("{seconds:.1} s")
    } else {
        format!("{seconds:.2} s")
    }
}

/// The SLO of `metric` as a reader knows it, with its threshold.
fn slo_text(results: &RunResults, metric: Metric) -> String {
    let threshold = match metric {
        Metric::ReconciliationLatency => results.scenario.slo.reconciliation_p99,
        Metric::QueueLatency => results.scenario.slo.queue_p99,
    };
    format!(
        "{} SLO (p99 ≤ {})",
        metric_name(metric),
        seconds_text(threshold.as_secs_f64())
    )
}

/// The shard counts as `1/2/3`.
fn shard_list(results: &RunResults) -> String {
    let shards: Vec<String> = results
        .shard_counts
        .iter()
        .map(|count| count.shards.to_string())
        .collect();
    shards.join("/")
}

fn capacity_headline(results: &RunResults) -> String {
    let breaches: Vec<Option<Breach>> =
        results.shard_counts.iter().map(headline_capacity).collect();
    // A shard count that never breached carried at least the ramp's peak.
    let peak = crate::experiment::offered(&results.scenario, results.scenario.duration);
    let figures = |value: fn(&slo::Load) -> f64, decimals: usize| {
        let figures: Vec<String> = breaches
            .iter()
            .map(|breach| match breach {
                Some(breach) => format!("{:.decimals$}", value(&breach.load)),
                None => format!("≥ {:.decimals$}", value(&peak)),
            })
            .collect();
        figures.join("/")
    };
    let load = format!(
        "{} operations/s offered ({} Websites)",
        figures(|load| load.operations_per_second, 1),
        figures(|load| load.websites, 0)
    );
    let mut metrics: Vec<Metric> = breaches.iter().flatten().map(|b| b.metric).collect();
    metrics.dedup();
    let mut text = match metrics.as_slice() {
        [] => format!(
            "With {} shards no SLO broke up to the ramp's peak of {load}",
            shard_list(results)
        ),
        [metric] => format!(
            "With {} shards the {} held up to {load}",
            shard_list(results),
            slo_text(results, *metric)
        ),
        _ => {
            let names: Vec<&str> = breaches
                .iter()
                .map(|breach| breach.map_or("no", |b| metric_name(b.metric)))
                .collect();
            format!(
                "With {} shards an SLO first broke at {load}, on the {} SLO",
                shard_list(results),
                names.join("/")
            )
        }
    };
    let capacities: Vec<(u32, f64)> = results
        .shard_counts
        .iter()
        .filter_map(|count| Some((count.shards, headline_capacity(count)?.load.websites)))
        .collect();
    match capacity_scaling(&capacities).last() {
        Some(&(shards, ratio)) if shards > 1 => {
            let _ = write!(
                text,
                "; {shards} shards carry {ratio:.2}× the Websites of one (linear: {shards}×)"
            );
            if metrics.len() > 1 {
                text.push_str(", across different SLOs");
            }
        }
        _ => text.push_str("; no scaling figure without a breach at 1 shard and another"),
    }
    text.push('.');
    text
}

fn failover_headline(results: &RunResults) -> String {
    let parts: Vec<String> = [FailoverKind::Involuntary, FailoverKind::Voluntary]
        .into_iter()
        .filter_map(|kind| {
            let (mut seconds, mut unfinished) = (Vec::new(), 0);
            for count in &results.shard_counts {
                let (finished, not) = headline_failover_seconds(count, kind);
                seconds.extend(finished);
                unfinished += not;
            }
            let n = seconds.len() + unfinished;
            let name = match kind {
                FailoverKind::Voluntary => "voluntary",
                FailoverKind::Involuntary => "involuntary",
            };
            let not_finished = match unfinished {
                0 => String::new(),
                1 => ", 1 did not finish".to_owned(),
                more => format!(", {more} did not finish"),
            };
            match spread(&mut seconds) {
                Some((min, median, max)) => Some(format!(
                    "{name} ones took median {} (n={n}: {}–{}{not_finished})",
                    seconds_text(median),
                    seconds_text(min),
                    seconds_text(max),
                )),
                None if n > 0 => Some(format!("no {name} one finished (n={n})")),
                None => None,
            }
        })
        .collect();
    format!(
        "Failovers, from the kill until all of the shard's objects were reconciled again, over \
         shard counts {}: {}.",
        shard_list(results),
        parts.join("; ")
    )
}

/// The least, the median and the largest of `values` (sorted in place); `None` when empty.
fn spread(values: &mut [f64]) -> Option<(f64, f64, f64)> {
    values.sort_by(f64::total_cmp);
    let (&min, &max) = (values.first()?, values.last()?);
    let middle = values.len() / 2;
    let median = if values.len().is_multiple_of(2) {
        f64::midpoint(values[middle - 1], values[middle])
    } else {
        values[middle]
    };
    Some((min, median, max))
}

fn slo_headline(results: &RunResults) -> String {
    let threshold = results.scenario.slo.reconciliation_p99.as_secs_f64();
    let (p99s, verdicts): (Vec<String>, Vec<&str>) = results
        .shard_counts
        .iter()
        .map(|count| {
            let p99 = headline_p99_seconds(count);
            (
                seconds_text(p99),
                if p99 <= threshold { "met" } else { "missed" },
            )
        })
        .unzip();
    format!(
        "With {} shards the reconciliation p99 was {} against the {}: {}.",
        shard_list(results),
        p99s.join("/"),
        slo_text(results, Metric::ReconciliationLatency),
        verdicts.join("/")
    )
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
    line!(out, "**{}**", headline(results));
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
            or_dash(count.queue_p99_ms.map(|ms| format!("{ms:.0} ms"))),
            or_dash(count.capacity.map(|breach| format!(
                "{:.0} Websites, {:.1} ops/s",
                breach.load.websites, breach.load.operations_per_second
            ))),
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
         all reconciled. Capacity: the load offered at the first sustained SLO breach. \
         Operator peak: the peak memory of all shards added up."
    );
    line!(out);
    line!(
        out,
        "![reconciliation latency p99 of every shard count](latency-all.png)"
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
    use crate::{
        measure::{failover::FailoverEvents, slo::Load},
        results::tests::{START, at, synthetic},
    };

    /// `synthetic()` with 1, 2 and 3 shards breaching `metrics` at the reference capacity
    /// run's loads.
    fn capacity_run(metrics: [Metric; 3]) -> RunResults {
        let mut results = synthetic();
        let mut two = results.shard_counts[1].clone();
        two.shards = 2;
        results.shard_counts.insert(1, two);
        let loads = [(367.0, 9.2), (709.0, 16.1), (941.0, 20.6)];
        for ((count, (websites, ops)), metric) in
            results.shard_counts.iter_mut().zip(loads).zip(metrics)
        {
            count.capacity = Some(Breach {
                metric,
                at: at(START + 90),
                load: Load {
                    websites,
                    operations_per_second: ops,
                },
            });
        }
        results
    }

    #[test]
    fn the_capacity_headline_names_each_shard_counts_load_and_the_scaling() {
        let results = capacity_run([Metric::ReconciliationLatency; 3]);
        assert_eq!(
            headline(&results),
            "With 1/2/3 shards the reconciliation latency SLO (p99 ≤ 5.0 s) held up to \
             9.2/16.1/20.6 operations/s offered (367/709/941 Websites); 3 shards carry 2.56× \
             the Websites of one (linear: 3×)."
        );
        let report = report_markdown(&results);
        assert!(report.starts_with(&format!(
            "# Scenario `synthetic`: run `20231114-synthetic`\n\n**{}**\n",
            headline(&results)
        )));
    }

    #[test]
    fn a_capacity_headline_across_different_slos_says_so() {
        let results = capacity_run([
            Metric::ReconciliationLatency,
            Metric::ReconciliationLatency,
            Metric::QueueLatency,
        ]);
        let text = headline(&results);
        assert!(
            text.contains(
                "an SLO first broke at 9.2/16.1/20.6 operations/s offered (367/709/941 \
                 Websites), on the reconciliation latency/reconciliation latency/queue latency SLO"
            ),
            "{text}"
        );
        assert!(
            text.ends_with("(linear: 3×), across different SLOs."),
            "{text}"
        );
    }

    #[test]
    fn a_shard_count_without_a_breach_carried_at_least_the_ramps_peak() {
        // The synthetic ramp rises from 1 to 3 creates/s over 2 minutes: 240 Websites at the
        // end; 1 shard never breached.
        let text = headline(&synthetic());
        assert!(
            text.contains("held up to ≥ 3.0/60.0 operations/s offered (≥ 240/3000 Websites)"),
            "{text}"
        );
        assert!(text.ends_with("; no scaling figure without a breach at 1 shard and another."));
    }

    fn failover(kind: FailoverKind, reconciled_after: Option<i64>) -> FailoverEvents {
        FailoverEvents {
            shard: "shard-0".to_owned(),
            kind,
            killed_at: at(START),
            lease_dead_at: Some(at(START + 1)),
            all_assigned_at: Some(at(START + 1)),
            all_reconciled_at: reconciled_after.map(|s| at(START + s)),
        }
    }

    #[test]
    fn the_failover_headline_takes_the_median_and_counts_the_unfinished() {
        let mut results = synthetic();
        results.scenario.load.create.rate = crate::scenario::CreateRate::Constant(1.0);
        // Involuntary: 30, 36 and 34 s and one that never finished; voluntary: 1 and 4 s.
        results.shard_counts[0].failovers = vec![
            failover(FailoverKind::Involuntary, Some(30)),
            failover(FailoverKind::Voluntary, Some(4)),
            failover(FailoverKind::Involuntary, None),
        ];
        results.shard_counts[1].failovers = vec![
            failover(FailoverKind::Involuntary, Some(36)),
            failover(FailoverKind::Involuntary, Some(34)),
            failover(FailoverKind::Voluntary, Some(1)),
        ];
        assert_eq!(
            headline(&results),
            "Failovers, from the kill until all of the shard's objects were reconciled again, \
             over shard counts 1/3: involuntary ones took median 34 s (n=4: 30 s–36 s, 1 did \
             not finish); voluntary ones took median 2.5 s (n=2: 1.0 s–4.0 s)."
        );
    }

    #[test]
    fn the_median_of_an_even_count_is_between_the_middle_two() {
        assert_eq!(spread(&mut [10.0, 1.0, 3.0, 2.0]), Some((1.0, 2.5, 10.0)));
        assert_eq!(spread(&mut [5.0]), Some((5.0, 5.0, 5.0)));
        assert_eq!(spread(&mut []), None);
    }

    #[test]
    fn a_steady_run_without_failovers_headlines_the_p99_against_the_slo() {
        let mut results = synthetic();
        results.scenario.load.create.rate = crate::scenario::CreateRate::Constant(1.0);
        for count in &mut results.shard_counts {
            count.failovers.clear();
        }
        // The fixture's latencies run 100 to 440 ms.
        let p99s: Vec<String> = results
            .shard_counts
            .iter()
            .map(|count| seconds_text(headline_p99_seconds(count)))
            .collect();
        assert_eq!(
            headline(&results),
            format!(
                "With 1/3 shards the reconciliation p99 was {} against the reconciliation \
                 latency SLO (p99 ≤ 5.0 s): met/met.",
                p99s.join("/")
            )
        );
    }

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
        assert!(summary.contains("| – | 15.0 / 16.0 / – s |"), "{summary}");
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
