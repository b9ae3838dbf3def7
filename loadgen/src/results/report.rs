//! `report.md`: a headline that answers the scenario's question, what ran where, a table per
//! shard count, the SLO verdicts and the plots.

use std::{fmt::Write, time::Duration};

use super::{
    ComponentClass, RunResults, SKEW_MIN_OBJECTS_PER_SHARD, ShardCountResults,
    repetitions::{Repetitions, by_shard_count},
    seconds_since,
};
use crate::{
    experiment::search::{Bracket, SearchResults},
    measure::{
        conflicts::Conflicts,
        cost,
        failover::{FailoverKind, KindStats, PhaseStats},
        movement::Change,
        ownership::{Audited, Ownership, UNOWNED_GRACE},
        skew::Worst,
        slo::{self, Breach, Metric, Verdict, capacity_scaling},
        stats,
        unowned::UnownedSummary,
    },
    units::{BYTES_PER_MIB, format_latency, format_quantile, mib},
};

/// The report of a run as Markdown.
#[must_use]
pub fn report_markdown(results: &RunResults) -> String {
    let mut out = String::new();
    header(&mut out, results);
    summary_table(&mut out, results);
    censored_line(&mut out, results);
    if results.compares_strategies() {
        strategies_section(&mut out, results);
        // Each strategy's measurements as a run of it alone would report them.
        for strategy in results.strategies() {
            let _ = writeln!(out, "# Under {strategy}\n");
            measurements(&mut out, &results.under(strategy));
        }
    } else {
        measurements(&mut out, results);
    }
    out
}

/// "Strategies side by side" (docs/experiments.md#strategies-side-by-side).
fn strategies_section(out: &mut String, results: &RunResults) {
    out.push_str(&super::strategies::section(results));
}

/// The sections of the measurements: the search, the repetitions, each shard count, the
/// scaling.
fn measurements(out: &mut String, results: &RunResults) {
    search_section(out, results);
    repetitions_section(out, results);
    let ramped = results.scenario.measures_capacity();
    let repeated = repeated(results);
    for shard_count in &results.shard_counts {
        shard_count_section(out, shard_count, ramped, repeated);
    }
    scaling_section(out, results);
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
/// numbers (docs/experiments.md#the-headline): the searched capacity per shard count under a
/// capacity search, the capacity per shard count under a ramp of load, the failover times
/// under chaos, otherwise the reconciliation p99 against its SLO.
#[must_use]
pub fn headline(results: &RunResults) -> String {
    if results.compares_strategies() {
        let parts: Vec<String> = results
            .strategies()
            .into_iter()
            .map(|strategy| format!("Under {strategy}: {}", headline(&results.under(strategy))))
            .collect();
        return parts.join(" ");
    }
    if results.scenario.search.is_some() {
        search_headline(results)
    } else if results.scenario.measures_capacity() {
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

/// The time from the kill until the shard's objects recovered, per failover of `kind`
/// (`None`: not before the run ended): until all that needed a reconcile were reconciled, or,
/// when none needed one, until all were assigned to live shards.
fn headline_failover_recovery(
    count: &ShardCountResults,
    kind: FailoverKind,
) -> Vec<Option<Duration>> {
    count
        .failovers
        .iter()
        .filter(|failover| failover.kind == kind)
        .map(|failover| {
            let phases = failover.phases();
            if failover.recovery.to_reconcile > 0 {
                phases.to_all_reconciled
            } else {
                phases.to_all_assigned
            }
        })
        .collect()
}

/// The reconciliation p99 of a whole shard count in seconds, and whether it is a lower bound
/// (a censored write reaches it).
fn headline_p99_seconds(count: &ShardCountResults) -> (f64, bool) {
    let summary = count.reconciliation.summary();
    (summary.p99_ms / 1000.0, summary.p99_lower_bound)
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
        Metric::name(metric),
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

/// The capacity per shard count on one SLO ([`RunResults::scaling_slo`]) and the scaling of
/// the largest shard count; a shard count that never breached that SLO carried at least the
/// ramp's peak (docs/experiments.md#the-headline).
fn capacity_headline(results: &RunResults) -> String {
    let Some(metric) = results.scaling_slo() else {
        let peak = ramp_peak(results);
        return format!(
            "With {} shards no SLO broke up to the ramp's peak of {:.1} operations/s offered \
             ({:.0} objects).",
            shard_list(results),
            peak.operations_per_second,
            peak.websites
        );
    };
    let breaches: Vec<Option<Breach>> = results
        .shard_counts
        .iter()
        .map(|count| count.capacity.of(metric))
        .collect();
    let peak = ramp_peak(results);
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
    let mut text = format!(
        "With {} shards the {} held up to {} operations/s offered ({} objects)",
        shard_list(results),
        slo_text(results, metric),
        figures(|load| load.operations_per_second, 1),
        figures(|load| load.websites, 0)
    );
    let capacities: Vec<(u32, f64)> = results
        .shard_counts
        .iter()
        .zip(&breaches)
        .filter_map(|(count, breach)| Some((count.shards, breach.as_ref()?.load.websites)))
        .collect();
    match capacity_scaling(&capacities).last() {
        Some(&(shards, ratio)) if shards > 1 => {
            let _ = write!(
                text,
                "; {shards} shards carry {ratio:.2}× the objects of one (linear: {shards}×)"
            );
        }
        _ => text.push_str("; no scaling figure without a breach at 1 shard and another"),
    }
    text.push('.');
    text
}

/// The load the schedule offers in the last latency window of the ramp, and the objects at its
/// end.
fn ramp_peak(results: &RunResults) -> slo::Load {
    let scenario = &results.scenario;
    let offered = crate::experiment::schedule::Offered::of(scenario);
    let window = results
        .shard_counts
        .first()
        .map_or(Duration::from_secs(10), |count| {
            count.reconciliation.window()
        });
    slo::Load {
        websites: offered.websites_at(scenario.duration),
        operations_per_second: offered
            .rate_between(scenario.duration.saturating_sub(window), scenario.duration),
    }
}

fn failover_headline(results: &RunResults) -> String {
    let parts: Vec<String> = [FailoverKind::Involuntary, FailoverKind::Voluntary]
        .into_iter()
        .filter_map(|kind| {
            let recovery: Vec<Option<Duration>> = results
                .shard_counts
                .iter()
                .flat_map(|count| headline_failover_recovery(count, kind))
                .collect();
            let stats = PhaseStats::of(&recovery);
            let name = match kind {
                FailoverKind::Voluntary => "voluntary",
                FailoverKind::Involuntary => "involuntary",
            };
            let not_finished = match stats.n - stats.finished {
                0 => String::new(),
                1 => ", 1 did not finish".to_owned(),
                more => format!(", {more} did not finish"),
            };
            let text = |d: Option<Duration>| seconds_text(d.unwrap_or_default().as_secs_f64());
            match stats.median {
                Some(median) => Some(format!(
                    "{name} ones took median {} (n={}: {}–{}{not_finished})",
                    text(Some(median)),
                    stats.n,
                    text(stats.min),
                    text(stats.max),
                )),
                None if stats.n > 0 => Some(format!("no {name} one finished (n={})", stats.n)),
                None => None,
            }
        })
        .collect();
    format!(
        "Failovers, from the kill until the shard's objects recovered (all that needed a \
         reconcile reconciled again on live shards, or all assigned to one when none did), over \
         shard counts {}: {}.",
        shard_list(results),
        parts.join("; ")
    )
}

fn slo_headline(results: &RunResults) -> String {
    let threshold = results.scenario.slo.reconciliation_p99.as_secs_f64();
    let (p99s, verdicts): (Vec<String>, Vec<&str>) = results
        .shard_counts
        .iter()
        .map(|count| {
            let (p99, lower_bound) = headline_p99_seconds(count);
            let verdict = if p99 > threshold {
                "missed"
            } else if lower_bound {
                // Censored writes may lie above the threshold.
                "undecided"
            } else {
                "met"
            };
            (
                format!(
                    "{}{}",
                    if lower_bound { "≥ " } else { "" },
                    seconds_text(p99)
                ),
                verdict,
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

/// Whether some shard count ran more than once (`--repeat`).
fn repeated(results: &RunResults) -> bool {
    results
        .shard_counts
        .iter()
        .any(|count| count.repetition > 1)
}

/// A measurement as the report names it: `2`, with its strategy when the run compares
/// strategies (`2 bounded-load`) and its repetition when the run repeats (`2 #3`).
fn measurement_name(count: &ShardCountResults, repeated: bool, strategies: bool) -> String {
    let mut name = count.shards.to_string();
    if strategies {
        let _ = write!(name, " {}", count.strategy);
    }
    if repeated {
        let _ = write!(name, " #{}", count.repetition);
    }
    name
}

/// Changes per second.
fn churn_text(churn: f64) -> String {
    format!("{churn:.2}")
}

/// `[passing, failing]` in changes per second, naming an open end.
pub(crate) fn bracket_text(bracket: Bracket) -> String {
    format!(
        "[{}, {}]",
        bracket
            .highest_passing
            .map_or_else(|| "none passed".to_owned(), churn_text),
        bracket
            .lowest_failing
            .map_or_else(|| "none failed".to_owned(), churn_text)
    )
}

/// SLOs by the names a reader knows them, `and`-joined.
pub(crate) fn slo_names(metrics: &[Metric]) -> String {
    let names: Vec<&str> = metrics.iter().map(|metric| Metric::name(*metric)).collect();
    names.join(" and ")
}

/// What the repetitions of one shard count's search add up to
/// (docs/experiments.md#capacity-search): the capacity over the valid ones bracketed by a
/// failing step, and those left out.
struct SearchOutcome<'a> {
    /// The searched capacity of each valid bracketed repetition, in changes per second.
    capacities: Vec<f64>,
    /// The SLOs that decided those capacities, each once.
    deciding: Vec<Metric>,
    /// Invalid repetitions: the harness may have shaped the deciding step.
    invalid: Vec<&'a ShardCountResults>,
    /// Valid repetitions whose first step failed.
    below: Vec<&'a ShardCountResults>,
    /// Valid repetitions in which no step failed.
    above: Vec<&'a ShardCountResults>,
}

impl<'a> SearchOutcome<'a> {
    fn of(group: &Repetitions<'a>) -> Self {
        let mut outcome = Self {
            capacities: Vec::new(),
            deciding: Vec::new(),
            invalid: Vec::new(),
            below: Vec::new(),
            above: Vec::new(),
        };
        for &count in &group.all {
            let Some(search) = &count.search else {
                continue;
            };
            if !count.validity.valid {
                outcome.invalid.push(count);
            } else if let Some(capacity) = count.searched_capacity() {
                outcome.capacities.push(capacity);
                for metric in search.deciding_slos() {
                    if !outcome.deciding.contains(&metric) {
                        outcome.deciding.push(metric);
                    }
                }
            } else if search.bracket.highest_passing.is_none() {
                outcome.below.push(count);
            } else {
                outcome.above.push(count);
            }
        }
        outcome
    }

    /// The median capacity with its interval and n, or why there is none.
    fn capacity_text(&self) -> String {
        stats::interval(&self.capacities).map_or_else(
            || "not measured: no valid repetition bracketed it".to_owned(),
            |interval| interval.render(churn_text),
        )
    }

    /// The repetitions left out, counted: `1 invalid, 1 below the range`; `None` without any.
    fn left_out_count(&self) -> Option<String> {
        let parts: Vec<String> = [
            (self.invalid.len(), "invalid"),
            (self.below.len(), "below the range"),
            (self.above.len(), "above the range"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// The repetitions left out and why, each by its number.
    fn left_out_reasons(&self) -> String {
        let mut parts: Vec<String> = self
            .invalid
            .iter()
            .map(|count| {
                format!(
                    "#{} invalid ({})",
                    count.repetition,
                    count.validity.broken().join(", ")
                )
            })
            .collect();
        parts.extend(self.below.iter().map(|count| {
            format!(
                "#{} below the range (the first step failed)",
                count.repetition
            )
        }));
        parts.extend(self.above.iter().map(|count| {
            let passing = count
                .search
                .as_ref()
                .and_then(|search| search.bracket.highest_passing)
                .unwrap_or_default();
            format!(
                "#{} above the range (no step failed; at least {})",
                count.repetition,
                churn_text(passing)
            )
        }));
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join("; ")
        }
    }
}

/// The searched capacity of each shard count over its valid repetitions, the SLO that
/// decided it, and the repetitions left out (docs/experiments.md#the-headline).
fn search_headline(results: &RunResults) -> String {
    let parts: Vec<String> = by_shard_count(results)
        .iter()
        .map(|group| {
            let outcome = SearchOutcome::of(group);
            let mut part = format!("{} shard(s) {}", group.shards, outcome.capacity_text());
            if !outcome.deciding.is_empty() {
                let _ = write!(
                    part,
                    ", decided by the {} SLO",
                    slo_names(&outcome.deciding)
                );
            }
            let left_out = outcome
                .left_out_count()
                .unwrap_or_else(|| "none".to_owned());
            let _ = write!(part, ", {left_out} left out");
            part
        })
        .collect();
    format!(
        "The highest sustainable churn over {} objects, in changes/s, median [low, high] over \
         the valid repetitions whose search bracketed it: {}.",
        results.scenario.world.initial_websites,
        parts.join("; ")
    )
}

/// For a search: the capacity per shard count with its cost, and each repetition's brackets.
fn search_section(out: &mut String, results: &RunResults) {
    let Some(search) = results.scenario.search else {
        return;
    };
    line!(out, "## Capacity search");
    line!(out);
    line!(
        out,
        "Each search offers the {} objects steps of churn (changes/s) for {} s each, every step \
         followed by a drain of up to {} s: from {} it doubles while steps pass (up to {}), then \
         bisects geometrically between the highest passing and the lowest failing step until \
         they are within {:.0} % (at most {} steps). A step passes when it surely met every SLO \
         and was valid: an invalid step counts as failing. A repetition's capacity is its \
         highest passing churn when a failing step bounds it; below the range: its first step \
         failed; above: no step failed.",
        results.scenario.world.initial_websites,
        search.hold.as_secs(),
        search.drain.as_secs(),
        churn_text(search.churn.from),
        churn_text(search.churn.to),
        search.precision * 100.0,
        search.max_steps
    );
    line!(out);
    line!(
        out,
        "| shards | capacity (changes/s) | deciding SLO | left out | operator cores per shard | \
         operator MiB per shard | sharder cores | sharder MiB |"
    );
    line!(out, "|---:|---:|---|---|---:|---:|---:|---:|");
    let or_dash = |value: Option<f64>, decimals: usize| {
        value.map_or_else(|| "–".to_owned(), |v| format!("{v:.decimals$}"))
    };
    for group in by_shard_count(results) {
        let outcome = SearchOutcome::of(&group);
        let cost = group.cost_at_capacity();
        line!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            group.shards,
            outcome.capacity_text(),
            if outcome.deciding.is_empty() {
                "–".to_owned()
            } else {
                slo_names(&outcome.deciding)
            },
            outcome.left_out_reasons(),
            or_dash(cost.operator_cpu_cores_per_shard, 3),
            or_dash(
                cost.operator_memory_bytes_per_shard
                    .map(|b| b / BYTES_PER_MIB),
                1
            ),
            or_dash(cost.sharder_cpu_cores, 3),
            or_dash(cost.sharder_memory_bytes.map(|b| b / BYTES_PER_MIB), 1),
        );
    }
    line!(out);
    line!(
        out,
        "Capacity: median [low, high] over the valid repetitions whose search a failing step \
         bounded (n), the range the smallest to the largest below 5 repetitions, a 95 % \
         bootstrap of the median from 5. Deciding SLO: those the lowest failing step did not \
         surely meet. Cost: while each such repetition's highest passing step held its churn, \
         the cores and the most memory the operator used per shard and the sharder used, \
         median over those repetitions."
    );
    line!(out);
    brackets_table(out, results);
}

/// Each search's bracket, on every SLO together and on each.
fn brackets_table(out: &mut String, results: &RunResults) {
    let repeated = repeated(results);
    line!(
        out,
        "| measurement | valid | bracket (changes/s) | steps | deciding SLO | {} bracket | {} \
         bracket |",
        Metric::name(Metric::ReconciliationLatency),
        Metric::name(Metric::QueueLatency)
    );
    line!(out, "|---:|---|---:|---:|---|---:|---:|");
    for count in &results.shard_counts {
        let Some(search) = &count.search else {
            continue;
        };
        let deciding = search.deciding_slos();
        line!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            measurement_name(count, repeated, results.compares_strategies()),
            count.validity.cell(),
            bracket_text(search.bracket),
            search.steps.len(),
            if deciding.is_empty() {
                "–".to_owned()
            } else {
                slo_names(&deciding)
            },
            bracket_text(search.bracket_of(Metric::ReconciliationLatency)),
            bracket_text(search.bracket_of(Metric::QueueLatency)),
        );
    }
    line!(out);
    line!(
        out,
        "Bracket: [highest passing, lowest failing] step. Per SLO: over the steps whose verdict \
         on that SLO was decided, the highest that met it and the lowest that breached it, \
         whatever the other SLO and the validity said."
    );
    line!(out);
}

/// When a shard count ran more than once: each figure's median and interval over its valid
/// repetitions.
fn repetitions_section(out: &mut String, results: &RunResults) {
    let groups = by_shard_count(results);
    if groups.iter().all(|group| group.all.len() < 2) {
        return;
    }
    line!(out, "## Repetitions");
    line!(out);
    line!(
        out,
        "| shards | reconcile p99 | queue p99 | operator CPU | sharder CPU | total peak memory | \
         left out |"
    );
    line!(out, "|---:|---:|---:|---:|---:|---:|---|");
    let class_cpu = |class| {
        move |count: &ShardCountResults| Some(count.class_costs().get(&class).copied()?.cpu_seconds)
    };
    let ms = |v: f64| format!("{v:.0} ms");
    let seconds = |v: f64| format!("{v:.1} s");
    for group in &groups {
        let cell = |interval: Option<stats::Interval>, number: &dyn Fn(f64) -> String| {
            interval.map_or_else(|| "–".to_owned(), |i| i.render(number))
        };
        let invalid: Vec<String> = group
            .all
            .iter()
            .filter(|count| !count.validity.valid)
            .map(|count| format!("#{}", count.repetition))
            .collect();
        line!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            group.shards,
            cell(
                group.interval(|count| Some(count.reconciliation.summary().p99_ms)),
                &ms
            ),
            cell(group.interval(ShardCountResults::queue_p99_ms), &ms),
            cell(
                group.interval(class_cpu(ComponentClass::Operator)),
                &seconds
            ),
            cell(group.interval(class_cpu(ComponentClass::Sharder)), &seconds),
            cell(
                group.interval(|count| Some(mib(count.total_peak_rss_bytes()))),
                &|v| format!("{v:.0} MiB")
            ),
            if invalid.is_empty() {
                "none".to_owned()
            } else {
                format!("{} invalid ({})", invalid.len(), invalid.join(", "))
            },
        );
    }
    line!(out);
    line!(
        out,
        "Each figure over the whole measurement of every valid repetition (n): median [low, \
         high], the range the smallest to the largest below 5 repetitions, a 95 % bootstrap of \
         the median from 5. A reconcile p99 that is a lower bound counts at its value."
    );
    line!(out);
}

/// The measurement's verdict: VALID or INVALID with every reason, and the rules not checked.
fn validity_lines(out: &mut String, results: &ShardCountResults) {
    let validity = &results.validity;
    line!(out, "### Validity");
    line!(out);
    let of = if results.search.is_some() {
        " (of the step that decided the capacity)"
    } else {
        ""
    };
    if validity.valid {
        line!(out, "VALID{of}.");
    } else if validity.reasons.is_empty() {
        line!(out, "INVALID{of}: not assessed.");
    } else {
        line!(out, "INVALID{of}:");
        line!(out);
        for reason in &validity.reasons {
            line!(out, "- {}: {}", reason.rule.as_str(), reason.sentence);
        }
    }
    if !validity.unchecked.is_empty() {
        let unchecked: Vec<String> = validity
            .unchecked
            .iter()
            .map(|reason| format!("{} ({})", reason.rule.as_str(), reason.sentence))
            .collect();
        line!(out);
        line!(out, "Unchecked: {}.", unchecked.join("; "));
    }
    line!(out);
}

/// What bound the measurement, one sentence each.
fn findings_lines(out: &mut String, results: &ShardCountResults) {
    line!(out, "### Findings");
    line!(out);
    if results.findings.is_empty() {
        line!(out, "none");
    }
    for finding in &results.findings {
        line!(out, "- {}", finding.sentence);
    }
    line!(out);
}

/// A search's steps, one row each, and the bracket they leave.
fn steps_table(out: &mut String, search: &SearchResults) {
    line!(out, "### Search steps");
    line!(out);
    line!(
        out,
        "| step | churn offered | achieved | scheduled | failed | reconcile p99 | queue p99 | \
         outstanding after drain | drained | machine busy | loadgen cores | valid | passed |"
    );
    line!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    );
    for (number, step) in search.steps.iter().enumerate() {
        line!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {} | {} | {} | {} |",
            number + 1,
            churn_text(step.churn),
            churn_text(step.achieved_per_second),
            step.scheduled,
            step.failed,
            bounded_ms(
                step.reconciliation.p99_ms,
                step.reconciliation.p99_lower_bound,
                0
            ),
            step.queue_p99
                .as_ref()
                .map_or_else(|| "not scraped".to_owned(), format_quantile),
            step.outstanding,
            step.drained.as_secs_f64(),
            step.machine_busy
                .map_or_else(|| "–".to_owned(), |busy| format!("{:.0} %", busy * 100.0)),
            step.loadgen_cores
                .map_or_else(|| "–".to_owned(), |cores| format!("{cores:.2}")),
            step.validity.cell(),
            if step.passed { "yes" } else { "no" },
        );
    }
    line!(out);
    let deciding = search.deciding_slos();
    line!(
        out,
        "Churn offered and achieved: changes/s the schedule offered and the API server \
         accepted during the hold. Failed: changes whose API call failed. Reconcile p99: over \
         the step's changes, \"≥\" when a change still outstanding after the drain reaches it. \
         Bracket: {} changes/s{}{}.",
        bracket_text(search.bracket),
        search
            .bracket
            .width()
            .map_or_else(String::new, |width| format!(
                ", {:.0} % wide",
                width * 100.0
            )),
        if deciding.is_empty() {
            String::new()
        } else {
            format!(", decided by the {} SLO", slo_names(&deciding))
        }
    );
    line!(out);
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
    let mut shards: Vec<String> = by_shard_count(results)
        .iter()
        .map(|group| match group.all.len() {
            1 => group.shards.to_string(),
            n => format!("{} ({n} repetitions)", group.shards),
        })
        .collect();
    // Each strategy's group of a shard count reads the same.
    shards.dedup();
    line!(out, "- Shard counts: {}", shards.join(", "));
    if results.compares_strategies() {
        let strategies: Vec<&str> = results.strategies().iter().map(|s| s.name()).collect();
        line!(
            out,
            "- Assignment strategies: {} (docs/experiments.md#assignment-strategies)",
            strategies.join(", ")
        );
    }
    line!(out);
}

/// The headline figures of every shard count, one row each.
fn summary_table(out: &mut String, results: &RunResults) {
    line!(out, "## Summary");
    line!(out);
    let searched = results.scenario.search.is_some();
    let repeated = repeated(results);
    line!(
        out,
        "| {} | valid | reconcile p99 | queue p99 | {} | steady max skew | unnecessary moves | \
         voluntary failover | involuntary failover | operator CPU | operator peak | sharder CPU |",
        match (repeated, results.compares_strategies()) {
            (false, false) => "shards",
            (true, false) => "shards #repetition",
            (false, true) => "shards strategy",
            (true, true) => "shards strategy #repetition",
        },
        if searched {
            "bracket (changes/s)"
        } else {
            "capacity"
        }
    );
    line!(
        out,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "–".to_owned());
    let strategies = results.compares_strategies();
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
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} s | {:.0} MiB | {:.1} s |",
            measurement_name(count, repeated, strategies),
            count.validity.cell(),
            {
                let latency = count.reconciliation.summary();
                bounded_ms(latency.p99_ms, latency.p99_lower_bound, 0)
            },
            or_dash(count.queue_p99.as_ref().map(format_quantile)),
            or_dash(match &count.search {
                Some(search) => Some(bracket_text(search.bracket)),
                None => capacity_cell(count),
            }),
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
         Capacity: per SLO, the load the schedule offered in the window where that SLO's sustained \
         breach began, with the rate the driver achieved in it; for a search, the bracket \
         [highest passing, lowest failing] step. Valid: whether the harness left the figures \
         to the operator, or the rules it broke (for a search, of the step that decided the \
         capacity). Operator peak: the most memory the shards held together at a sample."
    );
    line!(out);
}

/// How many latencies of each shard count are censored, under the headline figures: a "≥"
/// figure is a lower bound (docs/experiments.md#reconciliation-latency).
fn censored_line(out: &mut String, results: &RunResults) {
    let repeated = repeated(results);
    let strategies = results.compares_strategies();
    let counts: Vec<String> = results
        .shard_counts
        .iter()
        .map(|count| {
            let writes = &count.accounting.writes;
            format!(
                "{} of {} with {} shard(s){}{} ({} pending at the end, {} abandoned by a delete)",
                writes.censored(),
                count.reconciliation.summary().count,
                count.shards,
                if strategies {
                    format!(" under {}", count.strategy)
                } else {
                    String::new()
                },
                if repeated {
                    format!(" #{}", count.repetition)
                } else {
                    String::new()
                },
                writes.pending,
                writes.abandoned
            )
        })
        .collect();
    line!(
        out,
        "Censored latencies (writes never seen reconciled, counted at their time so far): {}. \
         A percentile such a latency reaches is shown as \"≥\", a lower bound.",
        counts.join("; ")
    );
    line!(out);
    for strategy in results.strategies() {
        let (name, under) = if results.compares_strategies() {
            let part = results.under(strategy);
            (part.plot_name("latency-all"), format!(" under {strategy}"))
        } else {
            (results.plot_name("latency-all"), String::new())
        };
        line!(
            out,
            "![reconciliation latency p99 of every shard count{under}]({name}.png)"
        );
        line!(out);
    }
}

/// Each SLO's capacity, naming the SLO; `None` without any breach.
fn capacity_cell(count: &ShardCountResults) -> Option<String> {
    let cells: Vec<String> = [Metric::ReconciliationLatency, Metric::QueueLatency]
        .into_iter()
        .filter_map(|metric| {
            count.capacity.of(metric).map(|breach| {
                format!(
                    "{}: {:.0} objects, {:.1} ops/s offered ({:.1} achieved)",
                    Metric::name(metric),
                    breach.load.websites,
                    breach.load.operations_per_second,
                    breach.achieved_operations_per_second
                )
            })
        })
        .collect();
    (!cells.is_empty()).then(|| cells.join("; "))
}

fn shard_count_section(
    out: &mut String,
    results: &ShardCountResults,
    ramped: bool,
    repeated: bool,
) {
    if repeated {
        line!(
            out,
            "## {} shards, repetition {}",
            results.shards,
            results.repetition
        );
    } else {
        line!(out, "## {} shards", results.shards);
    }
    line!(out);

    validity_lines(out, results);
    findings_lines(out, results);
    if let Some(search) = &results.search {
        steps_table(out, search);
    }
    writes_table(out, results);
    latency_table(out, results);
    verdict_table(out, results);
    assignment_table(out, results);
    if let Some(ownership) = &results.ownership {
        ownership_section(out, ownership);
    }
    movement_table(out, results);
    failover_table(out, results);
    faults_lines(out, results);
    if results.search.is_none() {
        capacity_line(out, results, ramped);
    }
    cost_table(out, results);
    plot_links(out, results);
}

fn latency_table(out: &mut String, results: &ShardCountResults) {
    let latency = results.reconciliation.summary();
    line!(out, "### Latency");
    line!(out);
    line!(
        out,
        "| latencies | censored | p50 | p90 | p99 | p99.9 | max | queue p99 |"
    );
    line!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|");
    line!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        latency.count,
        latency.censored,
        bounded_ms(latency.p50_ms, latency.p50_lower_bound, 1),
        bounded_ms(latency.p90_ms, latency.p90_lower_bound, 1),
        bounded_ms(latency.p99_ms, latency.p99_lower_bound, 1),
        bounded_ms(latency.p999_ms, latency.p999_lower_bound, 1),
        bounded_ms(latency.max_ms, latency.max_lower_bound, 1),
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

/// Every scheduled write by how it ended, the failures by reason, and the deletes; a loud
/// note when the classes do not add up to the schedule (a bug of loadgen).
fn writes_table(out: &mut String, results: &ShardCountResults) {
    let (writes, deletes) = (&results.accounting.writes, &results.accounting.deletes);
    line!(out, "### Writes");
    line!(out);
    if let Err(unaccounted) = results.accounting.check() {
        line!(
            out,
            "> **Bug: these counts do not add up** ({unaccounted}); do not trust this shard \
             count's figures."
        );
        line!(out);
    }
    let classes = writes.classes();
    let names: Vec<&str> = classes.iter().map(|(class, _)| *class).collect();
    let counts: Vec<String> = classes.iter().map(|(_, n)| n.to_string()).collect();
    line!(out, "| scheduled | {} |", names.join(" | "));
    line!(out, "|---:|{}", "---:|".repeat(names.len()));
    line!(out, "| {} | {} |", writes.scheduled, counts.join(" | "));
    line!(out);
    let reasons = |failed: &std::collections::BTreeMap<String, u64>| {
        failed
            .iter()
            .map(|(reason, n)| format!("{n} × {reason}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !writes.failed.is_empty() {
        line!(out, "Failed writes: {}.", reasons(&writes.failed));
        line!(out);
    }
    line!(
        out,
        "Deletes (not awaited): {} scheduled, {} accepted, {} failed{}, {} with no object left, \
         {} not issued.",
        deletes.scheduled,
        deletes.deleted,
        deletes.failed.values().sum::<u64>(),
        if deletes.failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons(&deletes.failed))
        },
        deletes.skipped,
        deletes.not_issued
    );
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
            "| {} | {}{} | {} | {} |",
            Metric::name(verdict.metric),
            if verdict.lower_bound { "≥ " } else { "" },
            observed(verdict),
            format_latency(verdict.threshold.as_secs_f64()),
            match (verdict.met, verdict.lower_bound) {
                (Some(false), _) => "❌",
                (Some(true), _) => "✅",
                (None, true) => "undetermined (lower bound)",
                (None, false) => "undetermined",
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
    if let Some(owned) = &results.owned {
        line!(
            out,
            "Owned objects once settled (docs/workloads.md#owned-objects): {} checked, {} on their \
             owner's shard, {} on another shard, {} without a shard label; {} whose owner had \
             no shard yet are not judged.",
            owned.checked,
            owned.on_owner_shard,
            owned.elsewhere,
            owned.unlabelled,
            owned.owner_unassigned
        );
        line!(out);
    }
}

/// The ownership audit (docs/experiments.md#ownership): each figure with its n and what it
/// leaves out.
fn ownership_section(out: &mut String, ownership: &Ownership) {
    line!(out, "### Ownership");
    line!(out);
    unowned_lines(out, &ownership.unowned);
    double_reconciliation_lines(out, &ownership.double_reconciliation);
    conflicts_line(out, &ownership.conflicts);
}

fn unowned_lines(out: &mut String, unowned: &UnownedSummary) {
    line!(
        out,
        "Objects on no live shard (no shard label, or a label naming a shard whose Lease is not \
         held), as the observer's watch saw them from its first listing to the end of the \
         settle time; the time between an object's create and the watch's first sight of it is \
         left out."
    );
    line!(out);
    line!(
        out,
        "| objects | intervals | open at the end | total | p50 | p99 | longest |"
    );
    line!(out, "|---:|---:|---:|---:|---:|---:|---|");
    let longest = unowned.longest.as_ref().map_or_else(
        || "–".to_owned(),
        |i| {
            let bound = if i.censored { "≥ " } else { "" };
            format!(
                "{bound}{} `{}` from {}",
                seconds(Some(i.length())),
                i.object,
                i.start
            )
        },
    );
    line!(
        out,
        "| {} | {} | {} | {} | {} | {} | {longest} |",
        unowned.objects,
        unowned.intervals,
        unowned.censored,
        seconds(Some(unowned.total)),
        seconds(unowned.p50),
        seconds(unowned.p99),
    );
    line!(out);
    if unowned.censored > 0 {
        line!(
            out,
            "Intervals open at the end count with their length so far, a lower bound."
        );
        line!(out);
    }
    let grace = UNOWNED_GRACE.as_secs();
    match unowned.left_unowned.len() {
        0 => line!(
            out,
            "No object was left on no live shard at the end for {grace} s or more."
        ),
        n => line!(
            out,
            "**{n} object(s) left on no live shard at the end for {grace} s or more: a \
             violation.**"
        ),
    }
    line!(out);
}

fn double_reconciliation_lines(out: &mut String, audited: &Audited) {
    let audit = match audited {
        Audited::Measured(audit) => audit,
        Audited::NotMeasured { reason } => {
            line!(
                out,
                "Reconciled by two shards at once: not measured ({reason})."
            );
            line!(out);
            return;
        }
    };
    line!(
        out,
        "Reconciled by two shards at once, from {} reconciliations in the shards' audit logs \
         ({} without an end record, counted as running until their shard was killed, started \
         the object again, or the run ended): **{} object(s)**.",
        audit.reconciliations,
        audit.unclosed,
        audit.objects.len()
    );
    line!(out);
    if audit.overlaps.is_empty() {
        return;
    }
    line!(out, "| object | shards | from | both for | end inferred |");
    line!(out, "|---|---|---|---:|---|");
    for overlap in audit.overlaps.iter().take(REPORTED_OVERLAPS) {
        line!(
            out,
            "| `{}` | {}, {} | {} | {} | {} |",
            overlap.object,
            overlap.shards.0,
            overlap.shards.1,
            overlap.start,
            seconds(Some(overlap.length())),
            if overlap.inferred { "yes" } else { "no" }
        );
    }
    if audit.overlaps.len() > REPORTED_OVERLAPS {
        line!(
            out,
            "\n{} more in `run.json`.",
            audit.overlaps.len() - REPORTED_OVERLAPS
        );
    }
    line!(out);
}

fn conflicts_line(out: &mut String, conflicts: &Conflicts) {
    let count = |n: Option<u64>| n.map_or_else(|| "not measured".to_owned(), |n| n.to_string());
    let per_shard: Vec<String> = conflicts
        .per_shard
        .iter()
        .map(|(shard, n)| format!("{shard} {n}"))
        .collect();
    let per_shard = if per_shard.is_empty() {
        String::new()
    } else {
        format!(" ({})", per_shard.join(", "))
    };
    line!(
        out,
        "Writes rejected by conflicts (409), from the load's start to the end of the settle \
         time: sharder {}, shards {}{per_shard}. Expected: a conflict is optimistic locking at \
         work, not a violation; what a process counted after its last scrape before it ended is \
         not seen.",
        count(conflicts.sharder),
        count(conflicts.shards),
    );
    line!(out);
}

/// How many overlaps the report lists; `run.json` has them all.
const REPORTED_OVERLAPS: usize = 10;

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

/// The faults as injected, and the supervisor's restarts (docs/experiments.md#faults).
fn faults_lines(out: &mut String, results: &ShardCountResults) {
    let restarts = results.restarts.as_ref().filter(|r| !r.is_empty());
    if results.faults.is_empty() && restarts.is_none() {
        return;
    }
    line!(out, "### Faults");
    line!(out);
    if !results.faults.is_empty() {
        line!(out, "| fault | target | from (s) | to (s) | note |");
        line!(out, "|---|---|---:|---:|---|");
        for fault in &results.faults {
            line!(
                out,
                "| {} | {} | {:.1} | {:.1} | {} |",
                fault.kind,
                fault.target,
                super::seconds_since(results.load_started, fault.started),
                super::seconds_since(results.load_started, fault.ended),
                fault.note.as_deref().unwrap_or("–")
            );
        }
        line!(out);
        line!(out, "Times count from the start of the load.");
        line!(out);
    }
    if let Some(restarts) = restarts {
        let each: Vec<String> = restarts
            .iter()
            .map(|(process, n)| format!("{process}: {n}"))
            .collect();
        line!(
            out,
            "Restarts by the supervisor (processes that exited and were started again): {}.",
            each.join(", ")
        );
        line!(out);
    }
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
    for metric in [Metric::ReconciliationLatency, Metric::QueueLatency] {
        line!(
            out,
            "- {}: {}",
            Metric::name(metric),
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
            "first sustained breach at {:.0} objects and {:.1} operations/s offered \
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
        "| component | class | slot | CPU seconds | cores | peak memory |"
    );
    line!(out, "|---|---|---:|---:|---:|---:|");
    let slot = |component: &str| {
        results
            .slots
            .as_ref()
            .and_then(|slots| slots.get(component))
            .map_or_else(String::new, u32::to_string)
    };
    for (component, cost) in &results.cost {
        line!(
            out,
            "| {component} | {} | {} | {:.2} | {:.3} | {:.1} MiB |",
            ComponentClass::of(component).as_str(),
            slot(component),
            cost.cpu_seconds,
            cost.cores,
            mib(cost.peak_rss_bytes)
        );
    }
    for (class, cost) in results.class_costs() {
        line!(
            out,
            "| **all {}** | | | {:.2} | | {:.1} MiB |",
            class.as_str(),
            cost.cpu_seconds,
            mib(cost.peak_rss_bytes)
        );
    }
    line!(
        out,
        "| **all** | | | {:.2} | | {:.1} MiB |",
        results.cost.values().map(|c| c.cpu_seconds).sum::<f64>(),
        mib(results.total_peak_rss_bytes())
    );
    line!(out);
    line!(
        out,
        "Peak memory of a class: the most its processes held together at one sample (each \
         process's high-water mark so far on the local target, its working set on a cluster), \
         so a killed shard and its replacement are not added up."
    );
    line!(out);
    restarts_line(out, results);
    unit_cost_line(out, results);
    machine_lines(out, results);
}

/// The restarts of each shard slot: the shards started in it after its first.
fn restarts_line(out: &mut String, results: &ShardCountResults) {
    match results.slot_restarts() {
        Some(restarts) => {
            let per_slot: Vec<String> = restarts
                .iter()
                .map(|(slot, n)| format!("slot {slot}: {n}"))
                .collect();
            line!(
                out,
                "Restarts (shards started in a slot after its first, by a kill or a rolling \
                 update): {} in all; {}.",
                restarts.values().sum::<usize>(),
                per_slot.join(", ")
            );
        }
        None => line!(
            out,
            "Restarts per shard slot: not measured, the target cannot tell which shard a new \
             one replaced."
        ),
    }
    line!(out);
}

/// The operator's cost per shard and per 1,000 objects.
fn unit_cost_line(out: &mut String, results: &ShardCountResults) {
    let cost = results.operator_unit_cost();
    let or_dash = |value: Option<String>| value.unwrap_or_else(|| "–".to_owned());
    line!(
        out,
        "Operator cost per shard: {} CPU seconds, {} peak memory; per 1,000 objects (of {} \
         held at the end of the load): {} CPU seconds, {} peak memory.",
        or_dash(cost.cpu_seconds_per_shard.map(|s| format!("{s:.1}"))),
        or_dash(
            cost.peak_rss_bytes_per_shard
                .map(|b| format!("{:.1} MiB", b / BYTES_PER_MIB))
        ),
        or_dash(cost.websites.map(|w| w.to_string())),
        or_dash(
            cost.cpu_seconds_per_1000_websites
                .map(|s| format!("{s:.1}"))
        ),
        or_dash(
            cost.peak_rss_bytes_per_1000_websites
                .map(|b| format!("{:.1} MiB", b / BYTES_PER_MIB))
        ),
    );
    line!(out);
}

/// The machine's CPU and loadgen's own, and whether the capacity was the machine's.
fn machine_lines(out: &mut String, results: &ShardCountResults) {
    let Some(summary) = results.machine_summary() else {
        line!(out, "Machine CPU: no samples.");
        line!(out);
        return;
    };
    let busy = summary.busy.map_or_else(
        || {
            "not measured (the target's CPU could not be read, loadgen said why as it ran)"
                .to_owned()
        },
        |busy| {
            format!(
                "{:.0} % busy on average, {:.0} % at most",
                busy.mean_busy * 100.0,
                busy.max_busy * 100.0
            )
        },
    );
    line!(
        out,
        "Machine CPU (all cores, over {} windows of {} s, `machine-{}.csv`): {busy}; \
         loadgen itself used {:.2} cores on average, {:.2} at most.",
        summary.windows,
        crate::experiment::sampler::INTERVAL.as_secs(),
        results.stem(),
        summary.loadgen_cores_mean,
        summary.loadgen_cores_max
    );
    line!(out);
    for breach in [results.capacity.reconciliation, results.capacity.queue]
        .into_iter()
        .flatten()
    {
        let slo = Metric::name(breach.metric);
        match results.breach_machine_load(&breach) {
            Some(load) if load.bound() => line!(
                out,
                "**The {slo} capacity is bound by the machine, not the controller**: the machine \
                 was {:.0} % busy on average ({:.0} % at most) during the breach window from {}.",
                load.mean_busy * 100.0,
                load.max_busy * 100.0,
                breach.at
            ),
            Some(load) => line!(
                out,
                "The machine was {:.0} % busy on average ({:.0} % at most) during the {slo} \
                 breach window from {}: at most {:.0} %, so that capacity is the controller's.",
                load.mean_busy * 100.0,
                load.max_busy * 100.0,
                breach.at,
                cost::MACHINE_BOUND * 100.0
            ),
            None => line!(
                out,
                "The machine's CPU during the {slo} breach window is not known: whether that \
                 capacity is the machine's or the controller's cannot be told."
            ),
        }
        line!(out);
    }
}

fn plot_links(out: &mut String, results: &ShardCountResults) {
    let (n, stem) = (results.shards, results.stem());
    line!(out, "### Plots");
    line!(out);
    line!(out, "![latency, {n} shards](latency-{stem}.png)");
    line!(out);
    line!(out, "![objects per shard, {n} shards](objects-{stem}.png)");
    line!(out);
    line!(out, "![queue latency, {n} shards](queue-{stem}.png)");
    line!(out);
}

fn scaling_section(out: &mut String, results: &RunResults) {
    line!(out, "## Scaling");
    line!(out);
    let invalid = results
        .shard_counts
        .iter()
        .filter(|count| !count.validity.valid)
        .count();
    if results.scenario.search.is_some() || results.scenario.measures_capacity() {
        line!(
            out,
            "Over the valid repetitions only, the median of each shard count: {invalid} invalid \
             left out."
        );
        line!(out);
    }
    if results.scenario.search.is_some() {
        search_scaling_table(out, results);
    } else if results.scenario.measures_capacity() {
        for metric in [Metric::ReconciliationLatency, Metric::QueueLatency] {
            scaling_table(out, results, metric);
        }
    } else {
        line!(out, "No capacity scaling: the scenario's load has no ramp.");
        line!(out);
    }
    line!(
        out,
        "![capacity and cost against shards]({}.png)",
        results.plot_name("scaling")
    );
}

/// The capacity scaling on `metric`'s SLO alone, so no ratio divides the capacities of two SLOs.
fn scaling_table(out: &mut String, results: &RunResults, metric: Metric) {
    let capacities: Vec<(u32, f64)> = by_shard_count(results)
        .iter()
        .filter_map(|group| {
            let capacity =
                group.interval(|count| Some(count.capacity.of(metric)?.load.websites))?;
            Some((group.shards, capacity.median))
        })
        .collect();
    let scaling = capacity_scaling(&capacities);
    let name = Metric::name(metric);
    if scaling.is_empty() {
        line!(
            out,
            "No capacity scaling on the {name} SLO: it needs a breach of it with 1 shard to \
             compare against."
        );
    } else {
        line!(
            out,
            "| shards | capacity on the {name} SLO (objects) / capacity(1) |"
        );
        line!(out, "|---:|---:|");
        for (shards, ratio) in scaling {
            line!(out, "| {shards} | {ratio:.2} |");
        }
    }
    line!(out);
}

/// The searched capacity of each shard count over its valid repetitions, against 1 shard's.
fn search_scaling_table(out: &mut String, results: &RunResults) {
    let capacities: Vec<(u32, f64)> = by_shard_count(results)
        .iter()
        .filter_map(|group| {
            let point = group.capacity_point();
            point.is_measured().then_some((group.shards, point.median))
        })
        .collect();
    let scaling = capacity_scaling(&capacities);
    if scaling.is_empty() {
        line!(
            out,
            "No capacity scaling: it needs a searched capacity with 1 shard to compare against."
        );
    } else {
        line!(
            out,
            "| shards | searched capacity (changes/s), median | / capacity(1) |"
        );
        line!(out, "|---:|---:|---:|");
        for (shards, ratio) in scaling {
            let capacity = capacities
                .iter()
                .find(|(of, _)| *of == shards)
                .map_or(0.0, |(_, capacity)| *capacity);
            line!(out, "| {shards} | {} | {ratio:.2} |", churn_text(capacity));
        }
    }
    line!(out);
}

fn change_name(change: &Change) -> String {
    match change {
        Change::Join { shard } => format!("{shard} joined"),
        Change::Leave { shard } => format!("{shard} left"),
    }
}

/// Milliseconds with `decimals` decimals, "≥ " first when the figure is a lower bound.
fn bounded_ms(ms: f64, lower_bound: bool, decimals: usize) -> String {
    let bound = if lower_bound { "≥ " } else { "" };
    format!("{bound}{ms:.decimals$} ms")
}

/// A phase or an interval in seconds, or a dash when there is none (a phase that did not
/// happen before the run ended).
fn seconds(phase: Option<Duration>) -> String {
    phase.map_or_else(|| "–".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        measure::{
            failover::{FailoverEvents, Recovery},
            slo::Load,
        },
        results::tests::{START, at, searched, synthetic},
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
            let breach = Some(Breach {
                metric,
                at: at(START + 90),
                load: Load {
                    websites,
                    operations_per_second: ops,
                },
                achieved_operations_per_second: ops,
            });
            count.capacity = match metric {
                Metric::ReconciliationLatency => slo::Capacity {
                    reconciliation: breach,
                    ..slo::Capacity::default()
                },
                Metric::QueueLatency => slo::Capacity {
                    queue: breach,
                    ..slo::Capacity::default()
                },
            };
        }
        results
    }

    #[test]
    fn the_capacity_headline_names_each_shard_counts_load_and_the_scaling() {
        let results = capacity_run([Metric::ReconciliationLatency; 3]);
        assert_eq!(
            headline(&results),
            "With 1/2/3 shards the reconciliation latency SLO (p99 ≤ 5.0 s) held up to \
             9.2/16.1/20.6 operations/s offered (367/709/941 objects); 3 shards carry 2.56× \
             the objects of one (linear: 3×)."
        );
        let report = report_markdown(&results);
        assert!(report.starts_with(&format!(
            "# Scenario `synthetic`: run `20231114-synthetic`\n\n**{}**\n",
            headline(&results)
        )));
    }

    #[test]
    fn the_capacity_headline_stays_on_one_slo_when_shard_counts_break_different_ones() {
        // 3 shards broke only the queue SLO: the headline stays on the reconciliation SLO,
        // which 1 and 2 shards broke, and divides nothing by the queue SLO's capacity.
        let results = capacity_run([
            Metric::ReconciliationLatency,
            Metric::ReconciliationLatency,
            Metric::QueueLatency,
        ]);
        let text = headline(&results);
        assert!(
            text.starts_with(
                "With 1/2/3 shards the reconciliation latency SLO (p99 ≤ 5.0 s) held up to \
                 9.2/16.1/≥ "
            ),
            "{text}"
        );
        assert!(text.ends_with("; 2 shards carry 1.93× the objects of one (linear: 2×)."));
    }

    #[test]
    fn a_shard_count_without_a_breach_carried_at_least_the_ramps_peak() {
        // The synthetic ramp rises from 1 to 3 creates/s over 2 minutes: 240 objects at the
        // end, 2.9 creates/s offered in its last 10 s window; 1 shard never breached.
        let text = headline(&synthetic());
        assert!(
            text.contains("held up to ≥ 2.9/60.0 operations/s offered (≥ 240/3000 objects)"),
            "{text}"
        );
        assert!(text.ends_with("; no scaling figure without a breach at 1 shard and another."));
    }

    /// A failover whose one object needed a reconcile, done `reconciled_after` s after the kill.
    fn failover(kind: FailoverKind, reconciled_after: Option<i64>) -> FailoverEvents {
        FailoverEvents {
            shard: "shard-0".to_owned(),
            kind,
            killed_at: at(START),
            lease_dead_at: Some(at(START + 1)),
            recovery: Recovery {
                objects: 1,
                assigned_after_kill: 0,
                to_reconcile: 1,
                all_assigned_at: Some(at(START + 1)),
                all_reconciled_at: reconciled_after.map(|s| at(START + s)),
            },
        }
    }

    #[test]
    fn the_failover_headline_takes_the_median_and_counts_the_unfinished() {
        let mut results = synthetic();
        results.scenario.load.as_mut().unwrap().create.rate =
            crate::scenario::CreateRate::Constant(1.0);
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
            "Failovers, from the kill until the shard's objects recovered (all that needed a \
             reconcile reconciled again on live shards, or all assigned to one when none did), \
             over shard counts 1/3: involuntary ones took median 34 s (n=4: 30 s–36 s, 1 did \
             not finish); voluntary ones took median 2.5 s (n=2: 1.0 s–4.0 s)."
        );
    }

    #[test]
    fn a_steady_run_without_failovers_headlines_the_p99_against_the_slo() {
        let mut results = synthetic();
        results.scenario.load.as_mut().unwrap().create.rate =
            crate::scenario::CreateRate::Constant(1.0);
        for count in &mut results.shard_counts {
            count.failovers.clear();
        }
        // The fixture's latencies run 100 to 440 ms.
        let p99s: Vec<String> = results
            .shard_counts
            .iter()
            .map(|count| seconds_text(headline_p99_seconds(count).0))
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
    fn a_p99_under_the_slo_that_a_censored_write_reaches_leaves_the_verdict_undecided() {
        let mut results = synthetic();
        results.scenario.load.as_mut().unwrap().create.rate =
            crate::scenario::CreateRate::Constant(1.0);
        results.shard_counts.truncate(1);
        let count = &mut results.shard_counts[0];
        count.failovers.clear();
        // Two pending writes at 300 ms of 122: the p99 (440 ms) may be higher in truth.
        for _ in 0..2 {
            count
                .reconciliation
                .record_censored(count.load_started, Duration::from_millis(300));
        }
        let text = headline(&results);
        assert!(text.contains("was ≥ 0.4"), "{text}");
        assert!(text.ends_with(": undecided."), "{text}");
    }

    #[test]
    fn the_header_names_the_scenario_date_and_machine() {
        let report = report_markdown(&synthetic());
        assert!(report.starts_with("# Scenario `synthetic`: run `20231114-synthetic`\n"));
        assert!(report.contains("- Date: 2023-11-14T22:13:20Z to 2023-11-14T22:15:50Z (150 s)"));
        assert!(report.contains("- Machine: 2 cores, 8.0 GiB memory, linux"));
    }

    #[test]
    fn faults_are_listed_from_the_start_of_the_load_with_the_supervisors_restarts() {
        let mut results = synthetic();
        let count = &mut results.shard_counts[0];
        let start = count.load_started;
        assert!(!report_markdown(&results).contains("### Faults"));
        let count = &mut results.shard_counts[0];
        count.faults = vec![crate::experiment::faults::FaultRecord {
            kind: "pause",
            target: "shard-1".to_owned(),
            started: start + Duration::from_secs(30),
            ended: start + Duration::from_millis(55_500),
            note: None,
        }];
        count.restarts = Some(std::collections::BTreeMap::from([
            ("sharder-0".to_owned(), 1),
            ("shard-1".to_owned(), 2),
        ]));
        let report = report_markdown(&results);
        assert_eq!(report.matches("### Faults").count(), 1);
        assert!(
            report.contains("| pause | shard-1 | 30.0 | 55.5 | – |"),
            "{report}"
        );
        assert!(report.contains(
            "Restarts by the supervisor (processes that exited and were started again): \
             shard-1: 2, sharder-0: 1."
        ));
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
            "- reconciliation latency: first sustained breach at 3000 objects and 60.0 \
             operations/s offered (45.0/s achieved): the p99 stayed over its objective for 20 s"
        ));
        assert!(report.contains("| **all operator** | | | 10.00 | | 150.0 MiB |"));
        assert!(report.contains("| shard-2 | operator | 2 | 3.33 | 0.028 | 50.0 MiB |"));
        assert!(report.contains("Restarts (shards started in a slot after its first"));
        assert!(report.contains("0 in all; slot 0: 0, slot 1: 0, slot 2: 0."));
        assert!(report.contains("- queue latency: no sustained breach during the load."));
        assert!(report.contains("![latency, 3 shards](latency-3shards.png)"));
        assert!(report.contains("![queue latency, 3 shards](queue-3shards.png)"));
        assert!(report.contains("![capacity and cost against shards](scaling.png)"));
    }

    #[test]
    fn owned_objects_are_reported_only_when_a_workload_declares_owned_kinds() {
        let mut results = synthetic();
        assert!(!report_markdown(&results).contains("Owned objects"));
        results.shard_counts[0].owned = Some(crate::measure::owned::OwnedCheck {
            checked: 12,
            on_owner_shard: 10,
            elsewhere: 1,
            unlabelled: 1,
            owner_unassigned: 0,
        });
        assert!(report_markdown(&results).contains(
            "Owned objects once settled (docs/workloads.md#owned-objects): 12 checked, 10 on their \
             owner's shard, 1 on another shard, 1 without a shard label; 0 whose owner had no \
             shard yet are not judged."
        ));
    }

    #[test]
    fn the_ownership_section_gives_each_figure_and_says_what_was_not_measured() {
        use crate::measure::{
            audit::{self, DoubleReconciliation},
            conflicts::Conflicts,
            unowned::{self, Event},
        };
        let mut results = synthetic();
        assert!(!report_markdown(&results).contains("### Ownership"));
        let at = |s| k8s_openapi::jiff::Timestamp::from_second(s).unwrap();
        let events = [
            (
                at(0),
                Event::Lease {
                    shard: "shard-0".into(),
                    available: true,
                },
            ),
            (
                at(1),
                Event::Label {
                    object: "g/Website/p/a".into(),
                    shard: None,
                },
            ),
            (
                at(3),
                Event::Label {
                    object: "g/Website/p/a".into(),
                    shard: Some("shard-0".into()),
                },
            ),
        ];
        let intervals = unowned::intervals(&events, at(100));
        results.shard_counts[0].ownership = Some(Ownership {
            unowned: UnownedSummary::of(&intervals, UNOWNED_GRACE),
            double_reconciliation: Audited::Measured(DoubleReconciliation::of(
                &audit::reconciliations(&[], &[], at(100)),
            )),
            conflicts: Conflicts {
                sharder: Some(4),
                shards: Some(9),
                per_shard: [("shard-0".to_owned(), 9)].into(),
            },
        });
        results.shard_counts[1].ownership = Some(Ownership {
            unowned: UnownedSummary::default(),
            double_reconciliation: Audited::NotMeasured {
                reason: "the cluster target does not read the shards' audit logs".into(),
            },
            conflicts: Conflicts::default(),
        });
        let report = report_markdown(&results);
        assert!(report.contains(
            "| 1 | 1 | 0 | 2.0 s | 2.0 s | 2.0 s | 2.0 s `g/Website/p/a` from \
             1970-01-01T00:00:01Z |"
        ));
        assert!(report.contains("from 0 reconciliations in the shards' audit logs"));
        assert!(report.contains("**0 object(s)**"));
        assert!(report.contains("sharder 4, shards 9 (shard-0 9)"));
        assert!(report.contains(
            "Reconciled by two shards at once: not measured (the cluster target does not read \
             the shards' audit logs)."
        ));
        assert!(report.contains("sharder not measured, shards not measured."));
    }

    #[test]
    fn the_summary_has_a_row_per_shard_count() {
        let report = report_markdown(&synthetic());
        let summary =
            &report[report.find("## Summary").unwrap()..report.find("## 1 shards").unwrap()];
        assert!(summary.contains("| 1 | "), "{summary}");
        // 3 shards breached at 3000 objects; its one failover is involuntary.
        assert!(
            summary.contains(
                "| reconciliation latency: 3000 objects, 60.0 ops/s offered (45.0 achieved) | "
            ),
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
        results.scenario.load.as_mut().unwrap().create.rate =
            crate::scenario::CreateRate::Constant(2.0);
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
    fn every_write_is_in_the_writes_table_and_censored_percentiles_are_lower_bounds() {
        let mut results = synthetic();
        let count = &mut results.shard_counts[1];
        // Five writes pending after 600 s among 120 reconciled: the p99 is one of them.
        for _ in 0..5 {
            count
                .reconciliation
                .record_censored(crate::results::tests::at(0), Duration::from_secs(600));
        }
        count.accounting.writes.scheduled += 5;
        count.accounting.writes.pending = 5;
        // As the run measures it: the verdict met on the p99 before the pending writes is open.
        count.verdicts[0] = count.verdicts[0].at_least();
        let report = report_markdown(&results);
        assert!(
            report.contains("| 125 | 120 | 0 | 0 | 3 | 0 | 2 |"),
            "{report}"
        );
        assert!(
            report.contains("| 130 | 120 | 5 | 0 | 3 | 0 | 2 |"),
            "{report}"
        );
        assert!(report.contains("Failed writes: 3 × 500 InternalError."));
        assert!(report.contains("Deletes (not awaited): 10 scheduled, 9 accepted, 0 failed,"));
        assert!(report.contains("| 125 | 5 | "), "{report}");
        let latency = &report[report.find("| 125 | 5 | ").unwrap()..];
        let cells: Vec<&str> = latency.lines().next().unwrap().split(" | ").collect();
        // p50 and p90 are reconciled latencies; p99, p99.9 and max are pending ones.
        assert!(
            !cells[2].starts_with('≥') && !cells[3].starts_with('≥'),
            "{cells:?}"
        );
        assert!(
            cells[4..7].iter().all(|cell| cell.starts_with("≥ 600")),
            "{cells:?}"
        );
        assert!(report.contains("| 3 | yes | ≥ 600"), "{report}");
        let verdict = report.find("| reconciliation latency | ≥ ").unwrap();
        assert!(
            report[verdict..]
                .lines()
                .next()
                .unwrap()
                .ends_with("| undetermined (lower bound) |")
        );
        assert!(report.contains("0 of 120 with 1 shard(s)"));
        assert!(report.contains("5 of 125 with 3 shard(s) (5 pending at the end"));
        assert!(!report.contains("Bug"));
        results.shard_counts[1].accounting.writes.scheduled += 1;
        assert!(report_markdown(&results).contains(
            "> **Bug: these counts do not add up** (writes: 130 accounted for, 131 scheduled)"
        ));
    }

    #[test]
    fn scaling_needs_a_breach_with_one_shard_in_a_valid_repetition() {
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
        results.shard_counts[0].validity.valid = false;
        let report = report_markdown(&results);
        assert!(!report.contains("| 3 | 2.00 |"), "{report}");
        assert!(report.contains("the median of each shard count: 1 invalid left out."));
        assert!(report.contains("No capacity scaling on the reconciliation latency SLO"));
    }

    #[test]
    fn a_breach_in_busy_machine_windows_is_bound_by_the_machine() {
        let report = report_markdown(&synthetic());
        // The 3-shard fixture breached at 90 s, when the machine was 95 % busy.
        assert!(
            report.contains(
                "**The reconciliation latency capacity is bound by the machine, not the \
                 controller**: the machine was 95 % busy on average (95 % at most) during the breach window from \
                 2023-11-14T22:14:50Z."
            ),
            "{report}"
        );
        assert!(report.contains(
            "Machine CPU (all cores, over 24 windows of 5 s, `machine-1shards.csv`): 61 % busy \
             on average, 95 % at most; loadgen itself used 0.10 cores on average, 0.10 at most."
        ));
        let mut results = synthetic();
        for window in &mut results.shard_counts[1].machine_windows {
            window.busy = Some(0.6);
        }
        assert!(report_markdown(&results).contains("so that capacity is the controller's."));
        for window in &mut results.shard_counts[1].machine_windows {
            window.busy = None;
        }
        let report = report_markdown(&results);
        assert!(report.contains("not measured (the target's CPU could not be read"));
        assert!(report.contains("cannot be told"));
    }

    #[test]
    fn unit_costs_are_per_shard_and_per_thousand_websites() {
        let report = report_markdown(&synthetic());
        // 3 shards: 10 CPU seconds and 150 MiB at once; 93 objects at the end.
        assert!(
            report.contains(
                "Operator cost per shard: 3.3 CPU seconds, 50.0 MiB peak memory; per 1,000 \
                 objects (of 93 held at the end of the load): 107.5 CPU seconds, 1612.9 MiB \
                 peak memory."
            ),
            "{report}"
        );
    }

    #[test]
    fn scaling_never_divides_the_capacities_of_two_slos() {
        // 1 shard breaks on the queue SLO at 1000 objects, 3 shards on the reconciliation
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
            "| shards | capacity on the queue latency SLO (objects) / capacity(1) |\n\
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

    #[test]
    fn the_search_headline_gives_each_shard_counts_median_over_valid_repetitions() {
        assert_eq!(
            headline(&searched()),
            "The highest sustainable churn over 50 objects, in changes/s, median [low, high] \
             over the valid repetitions whose search bracketed it: 1 shard(s) 4.00 (n=1), \
             decided by the queue latency SLO, 1 invalid left out; 2 shard(s) 9.00 [8.00, \
             10.00] (n=2, min–max), decided by the queue latency SLO, none left out."
        );
    }

    #[test]
    fn the_search_headline_counts_repetitions_below_and_above_the_range() {
        let mut results = searched();
        let search = results.shard_counts[1].search.as_mut().unwrap();
        search.bracket.lowest_failing = None;
        let search = results.shard_counts[3].search.as_mut().unwrap();
        search.bracket.highest_passing = None;
        let text = headline(&results);
        assert!(
            text.ends_with(
                "2 shard(s) not measured: no valid repetition bracketed it, 1 below the range, \
                 1 above the range left out."
            ),
            "{text}"
        );
        let report = report_markdown(&results);
        assert!(
            report.contains(
                "#2 below the range (the first step failed); #1 above the range (no step \
                 failed; at least 8.00)"
            ),
            "{report}"
        );
    }

    #[test]
    fn the_summary_has_a_row_per_repetition_with_its_validity_and_bracket() {
        let report = report_markdown(&searched());
        assert!(
            report.contains("| shards #repetition | valid | "),
            "{report}"
        );
        assert!(report.contains("| bracket (changes/s) |"), "{report}");
        assert!(report.contains("| 1 #1 | yes | "), "{report}");
        let invalid = report.find("| 1 #2 | INVALID: machine_cpu | ").unwrap();
        let row = report[invalid..].lines().next().unwrap();
        assert!(row.contains(" | [5.00, 5.50] | "), "{row}");
    }

    #[test]
    fn the_capacity_search_section_gives_capacity_cost_and_brackets() {
        let report = report_markdown(&searched());
        let section = &report
            [report.find("## Capacity search").unwrap()..report.find("## Repetitions").unwrap()];
        assert!(section.contains("from 2.00 it doubles"), "{section}");
        assert!(section.contains("an invalid step counts as failing"));
        assert!(
            section.contains("| 1 | 4.00 (n=1) | queue latency | #2 invalid (machine_cpu) | "),
            "{section}"
        );
        assert!(
            section.contains("| 2 | 9.00 [8.00, 10.00] (n=2, min–max) | queue latency | none | "),
            "{section}"
        );
        // At 8 changes/s: 8.80 broke the queue SLO alone, 16 both.
        assert!(
            section.contains(
                "| 2 #1 | yes | [8.00, 8.80] | 4 | queue latency | [8.80, 16.00] | [8.00, 8.80] |"
            ),
            "{section}"
        );
    }

    #[test]
    fn repetitions_show_each_figures_interval_over_the_valid_ones() {
        let report = report_markdown(&searched());
        let section =
            &report[report.find("## Repetitions").unwrap()..report.find("## 1 shards").unwrap()];
        // 1 shard: one valid repetition; 2 shards: two.
        assert!(section.contains("| 1 | "), "{section}");
        assert!(section.contains("(n=1) | "), "{section}");
        assert!(section.contains("(n=2, min–max)"), "{section}");
        assert!(section.contains("| 1 invalid (#2) |"), "{section}");
        assert!(section.contains("| none |"), "{section}");
        assert!(!report_markdown(&synthetic()).contains("## Repetitions"));
    }

    #[test]
    fn each_measurement_has_its_validity_findings_and_steps() {
        let mut results = searched();
        results.shard_counts[1].findings = vec![crate::measure::findings::Finding {
            kind: crate::measure::findings::FindingKind::QueueBound,
            sentence: "shard-0's items waited 3× longer in its queue than they took to \
                       reconcile."
                .to_owned(),
        }];
        results.shard_counts[0].validity.unchecked = vec![crate::measure::validity::Reason {
            rule: crate::measure::validity::Rule::RateLimiter,
            sentence: "kube-rs clients have no rate limiter".to_owned(),
        }];
        let report = report_markdown(&results);
        assert!(report.contains(
            "## 1 shards, repetition 1\n\n### Validity\n\nVALID (of the step that decided the \
             capacity).\n\nUnchecked: rate_limiter (kube-rs clients have no rate limiter).\n\n\
             ### Findings\n\nnone\n"
        ));
        assert!(report.contains(
            "## 1 shards, repetition 2\n\n### Validity\n\nINVALID (of the step that decided \
             the capacity):\n\n- machine_cpu: the machine was 95 % busy\n"
        ));
        assert!(report.contains(
            "## 2 shards, repetition 1\n\n### Validity\n\nVALID (of the step that decided the \
             capacity).\n\n### Findings\n\n- shard-0's items waited 3× longer"
        ));
        assert_eq!(report.matches("### Search steps").count(), 4);
        assert!(
            report.contains("| 1 | 4.00 | 4.00 | 60 | 0 | 200 ms | 200 ms | 0 | 1.5 s | 50 % | 0.10 | yes | yes |"),
            "{report}"
        );
        let invalid = report
            .find("| 4 | 5.50 | 5.50 | 60 | 0 | 900 ms | ")
            .unwrap();
        assert!(
            report[invalid..]
                .lines()
                .next()
                .unwrap()
                .ends_with("| 0 | 1.5 s | 95 % | 0.10 | INVALID: machine_cpu | no |")
        );
        assert!(report.contains(
            "Bracket: [8.00, 8.80] changes/s, 10 % wide, decided by the queue latency SLO."
        ));
        // A search measures no breach under a ramp.
        assert!(!report.contains("### Capacity\n"));
    }

    #[test]
    fn search_scaling_leaves_invalid_repetitions_out() {
        let report = report_markdown(&searched());
        let scaling = &report[report.find("## Scaling").unwrap()..];
        assert!(
            scaling.contains("Over the valid repetitions only, the median of each shard count: 1 invalid left out."),
            "{scaling}"
        );
        // 1 shard: 4 (the invalid 5 left out); 2 shards: the median of 8 and 10.
        assert!(
            scaling.contains(
                "| shards | searched capacity (changes/s), median | / capacity(1) |\n|---:|---:|---:|\n\
                 | 1 | 4.00 | 1.00 |\n| 2 | 9.00 | 2.25 |\n"
            ),
            "{scaling}"
        );
    }
}
