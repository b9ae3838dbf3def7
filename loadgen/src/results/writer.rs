//! Writes the results of a run into its directory: `run.json`, `summary.csv`, per shard count
//! `latency-<N>shards.csv`, `queue-<N>shards.csv`, `objects-<N>shards.csv`,
//! `machine-<N>shards.csv`, `latency-<N>shards.hgrm` and, for a capacity search,
//! `search-<N>shards.csv`, the plots and `report.md`; under another strategy than hash-ring
//! the stem names it, `<N>shards-<strategy>` ([`ShardCountResults::stem`]). Timestamps
//! are RFC 3339 throughout, so the files of different runs and tools line up by time.

use std::{
    collections::BTreeMap,
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;
use k8s_openapi::jiff::Timestamp;
use kube_sharding::strategy::Strategy;
use serde::Serialize;

use super::{
    ClassCost, ComponentClass, Machine, MachineSummary, MembershipChange, OperatorUnitCost,
    RunResults, ShardCountResults, Versions, plots, report, seconds_since,
    summary::{Columns, SummaryRow, csv_row},
};
use crate::{
    experiment::{
        faults::FaultRecord,
        search::{Bracket, SearchResults, Step},
    },
    measure::{
        accounting::Accounting,
        cost::{self, Cost, MachineLoad},
        failover::{FailoverEvents, FailoverKind, KindStats},
        findings::Finding,
        latency::LatencySummary,
        movement,
        owned::OwnedCheck,
        ownership::Ownership,
        prometheus::Quantile,
        skew::{Skew, SkewSummary},
        slo::{Capacity, Metric, Verdict},
        validity::Validity,
        webhook::WebhookLatency,
    },
    scenario::Scenario,
    units::format_quantile,
};

/// Writes every file of `results` into `dir` (created if missing) and returns their paths.
pub fn write(dir: &Path, results: &RunResults) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();

    let run_json = dir.join("run.json");
    write_file(&run_json, |out| {
        serde_json::to_writer_pretty(&mut *out, &RunJson::of(results))?;
        Ok(writeln!(out)?)
    })?;
    written.push(run_json);

    let summary = dir.join("summary.csv");
    write_csv(&summary, results.shard_counts.iter().map(SummaryRow::of))?;
    written.push(summary);

    for shard_count in &results.shard_counts {
        let n = shard_count.stem();

        let latency = dir.join(format!("latency-{n}.csv"));
        write_csv(
            &latency,
            shard_count
                .reconciliation
                .windows()
                .into_iter()
                .map(|window| LatencyRow {
                    start: window.start,
                    seconds: seconds_since(results.started, window.start),
                    count: window.count,
                    p50_ms: window.p50_ms,
                    p90_ms: window.p90_ms,
                    p99_ms: window.p99_ms,
                    max_ms: window.max_ms,
                    censored: window.censored,
                    p50_lower_bound: window.p50_lower_bound,
                    p90_lower_bound: window.p90_lower_bound,
                    p99_lower_bound: window.p99_lower_bound,
                    max_lower_bound: window.max_lower_bound,
                    load_seconds: seconds_since(shard_count.load_started, window.start),
                }),
        )?;
        written.push(latency);

        let objects = dir.join(format!("objects-{n}.csv"));
        write_csv(
            &objects,
            shard_count
                .objects_per_shard
                .iter()
                .flat_map(|(timestamp, counts)| {
                    counts.iter().map(|(shard, &objects)| ObjectsRow {
                        timestamp: *timestamp,
                        seconds: seconds_since(results.started, *timestamp),
                        shard,
                        objects,
                        load_seconds: seconds_since(shard_count.load_started, *timestamp),
                    })
                }),
        )?;
        written.push(objects);

        let machine = dir.join(format!("machine-{n}.csv"));
        write_csv(&machine, MachineRow::of(shard_count))?;
        written.push(machine);
        let queue = dir.join(format!("queue-{n}.csv"));
        write_csv(
            &queue,
            shard_count.queue_windows.iter().map(|window| QueueRow {
                start: window.start,
                seconds: seconds_since(shard_count.load_started, window.start),
                p99: format_quantile(&window.quantile),
                p99_ms: window.quantile.value * 1000.0,
                p99_lower_ms: window.quantile.lower * 1000.0,
                p99_upper_ms: window
                    .quantile
                    .upper
                    .is_finite()
                    .then_some(window.quantile.upper * 1000.0),
                count: window.observations,
            }),
        )?;
        written.push(queue);

        if let Some(search) = &shard_count.search {
            let steps = dir.join(format!("search-{n}.csv"));
            write_csv(
                &steps,
                search
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(index, step)| StepRow::of(index + 1, step, shard_count.load_started)),
            )?;
            written.push(steps);
        }

        let hgrm = dir.join(format!("latency-{n}.hgrm"));
        write_file(&hgrm, |out| {
            Ok(shard_count.reconciliation.write_hgrm(out)?)
        })?;
        written.push(hgrm);
    }

    written.extend(plots::write_all(dir, results)?);

    let report = dir.join("report.md");
    write_file(&report, |out| {
        Ok(out.write_all(report::report_markdown(results).as_bytes())?)
    })?;
    written.push(report);

    Ok(written)
}

/// Creates `path` and fills it through a buffer, naming the file in any error.
fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut out =
        BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?);
    fill(&mut out)
        .and_then(|()| Ok(out.flush()?))
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes `rows` as CSV with a header from their field names; the header is written even
/// without rows, so an empty series still says what it would hold.
fn write_csv<R: Serialize + Columns>(
    path: &Path,
    rows: impl IntoIterator<Item = R>,
) -> anyhow::Result<()> {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_path(path)
        .with_context(|| format!("creating {}", path.display()))?;
    let write = |out: &mut csv::Writer<File>| -> anyhow::Result<()> {
        out.write_record(R::HEADER)?;
        for row in rows {
            out.serialize(row)?;
        }
        Ok(out.flush()?)
    };
    write(&mut out).with_context(|| format!("writing {}", path.display()))
}

/// `run.json`: what ran where, and a summary of each shard count.
#[derive(Debug, Serialize)]
struct RunJson<'a> {
    run_id: &'a str,
    scenario: &'a Scenario,
    started: Timestamp,
    ended: Timestamp,
    machine: &'a Machine,
    versions: &'a Versions,
    shard_counts: Vec<ShardCountJson<'a>>,
}

impl<'a> RunJson<'a> {
    fn of(results: &'a RunResults) -> Self {
        Self {
            run_id: &results.run_id,
            scenario: &results.scenario,
            started: results.started,
            ended: results.ended,
            machine: &results.machine,
            versions: &results.versions,
            shard_counts: results
                .shard_counts
                .iter()
                .map(ShardCountJson::of)
                .collect(),
        }
    }
}

/// The summary of one shard count in `run.json`; the time series are in the CSV files.
#[derive(Debug, Serialize)]
struct ShardCountJson<'a> {
    /// The ring's assignment strategy.
    strategy: Strategy,
    shards: u32,
    /// Which run of the shard count, from 1.
    repetition: u32,
    /// Whether the harness left the figures to the operator, with the reasons and what was not
    /// checked.
    validity: &'a Validity,
    /// What bound the load, or the search's deciding step.
    findings: &'a [Finding],
    /// The capacity search, step by step.
    search: Option<SearchJson<'a>>,
    /// How every scheduled write and delete ended; censored writes are in `reconciliation`.
    accounting: &'a Accounting,
    load_started: Timestamp,
    reconciliation: LatencySummary,
    /// Latencies longer than the recorder tells apart, counted at its limit.
    reconciliation_clamped: u64,
    queue_p99_ms: Option<f64>,
    /// The queue p99 in seconds with the bounds of its histogram bucket.
    queue_p99: Option<Quantile>,
    steady_max_skew: Option<f64>,
    /// The skew samples split into steady state and membership changes.
    skew: &'a SkewSummary,
    last_skew: Option<&'a Skew>,
    movements: &'a [MembershipChange],
    movement_totals: movement::Totals,
    failovers: Vec<FailoverJson<'a>>,
    rolling_updates: &'a [Timestamp],
    /// The scenario's faults as injected: what, to whom, when (docs/experiments.md#faults).
    faults: &'a [FaultRecord],
    /// The supervisor's restarts per process of the local target.
    process_restarts: Option<&'a BTreeMap<String, usize>>,
    /// Owned objects against their owners' shards (docs/workloads.md#owned-objects).
    owned: Option<&'a OwnedCheck>,
    /// The ownership audit: objects on no live shard, objects reconciled by two shards at
    /// once, conflicts (docs/experiments.md#ownership).
    ownership: Option<&'a Ownership>,
    /// Per kind, phase by phase.
    failover_stats: [KindStats; 2],
    capacity: Capacity,
    cost: &'a BTreeMap<String, Cost>,
    class_costs: BTreeMap<ComponentClass, ClassCost>,
    total_peak_rss_bytes: u64,
    slots: Option<&'a BTreeMap<String, u32>>,
    slot_restarts: Option<BTreeMap<u32, usize>>,
    operator_unit_cost: OperatorUnitCost,
    machine: Option<MachineSummary>,
    capacity_machine_load: Option<MachineLoad>,
    verdicts: Vec<VerdictJson>,
    /// The sharder's webhook admission latency of the ring during the load.
    webhook: Option<WebhookLatency>,
}

impl<'a> ShardCountJson<'a> {
    fn of(results: &'a ShardCountResults) -> Self {
        Self {
            strategy: results.strategy,
            shards: results.shards,
            repetition: results.repetition,
            validity: &results.validity,
            findings: &results.findings,
            search: results.search.as_ref().map(SearchJson::of),
            accounting: &results.accounting,
            load_started: results.load_started,
            reconciliation: results.reconciliation.summary(),
            reconciliation_clamped: results.reconciliation.clamped(),
            queue_p99_ms: results.queue_p99_ms(),
            queue_p99: results.queue_p99,
            steady_max_skew: results.steady_max_skew(),
            skew: &results.skew_summary,
            last_skew: results.skew.last().map(|(_, skew)| skew),
            movements: &results.movements,
            movement_totals: results.movement_totals(),
            failovers: results.failovers.iter().map(FailoverJson::of).collect(),
            rolling_updates: &results.rolling_updates,
            faults: &results.faults,
            process_restarts: results.restarts.as_ref(),
            owned: results.owned.as_ref(),
            ownership: results.ownership.as_ref(),
            failover_stats: [FailoverKind::Voluntary, FailoverKind::Involuntary]
                .map(|kind| results.failover_stats(kind)),
            capacity: results.capacity,
            cost: &results.cost,
            class_costs: results.class_costs(),
            total_peak_rss_bytes: results.total_peak_rss_bytes(),
            slots: results.slots.as_ref(),
            slot_restarts: results.slot_restarts(),
            operator_unit_cost: results.operator_unit_cost(),
            machine: results.machine_summary(),
            capacity_machine_load: results.capacity_machine_load(),
            verdicts: results.verdicts.iter().map(VerdictJson::of).collect(),
            webhook: results.webhook,
        }
    }
}

/// A capacity search: its bracket on every SLO together and on each, and its steps.
#[derive(Debug, Serialize)]
struct SearchJson<'a> {
    bracket: Bracket,
    reconciliation_bracket: Bracket,
    queue_bracket: Bracket,
    /// The SLOs the lowest failing step did not surely meet.
    deciding_slos: Vec<&'static str>,
    steps: Vec<StepJson<'a>>,
}

impl<'a> SearchJson<'a> {
    fn of(search: &'a SearchResults) -> Self {
        Self {
            bracket: search.bracket,
            reconciliation_bracket: search.bracket_of(Metric::ReconciliationLatency),
            queue_bracket: search.bracket_of(Metric::QueueLatency),
            deciding_slos: search.deciding_slos().iter().map(|m| m.as_str()).collect(),
            steps: search.steps.iter().map(StepJson::of).collect(),
        }
    }
}

/// One step of a search.
#[derive(Debug, Serialize)]
struct StepJson<'a> {
    churn_ops_per_second: f64,
    started: Timestamp,
    hold_s: f64,
    scheduled: u64,
    achieved_ops_per_second: f64,
    failed: u64,
    reconciliation: LatencySummary,
    queue_p99: Option<Quantile>,
    drained_s: f64,
    outstanding: u64,
    machine_busy: Option<f64>,
    loadgen_cores: Option<f64>,
    verdicts: Vec<VerdictJson>,
    passed: bool,
    validity: &'a Validity,
    findings: &'a [Finding],
}

impl<'a> StepJson<'a> {
    fn of(step: &'a Step) -> Self {
        Self {
            churn_ops_per_second: step.churn,
            started: step.started,
            hold_s: step.hold.as_secs_f64(),
            scheduled: step.scheduled,
            achieved_ops_per_second: step.achieved_per_second,
            failed: step.failed,
            reconciliation: step.reconciliation,
            queue_p99: step.queue_p99,
            drained_s: step.drained.as_secs_f64(),
            outstanding: step.outstanding,
            machine_busy: step.machine_busy,
            loadgen_cores: step.loadgen_cores,
            verdicts: step.verdicts.iter().map(VerdictJson::of).collect(),
            passed: step.passed,
            validity: &step.validity,
            findings: &step.findings,
        }
    }
}

/// A failover's events and its phases in seconds from the kill.
#[derive(Debug, Serialize)]
struct FailoverJson<'a> {
    shard: &'a str,
    kind: FailoverKind,
    events: &'a FailoverEvents,
    to_lease_dead_s: Option<f64>,
    to_all_assigned_s: Option<f64>,
    to_all_reconciled_s: Option<f64>,
}

impl<'a> FailoverJson<'a> {
    fn of(events: &'a FailoverEvents) -> Self {
        let phases = events.phases();
        Self {
            shard: &events.shard,
            kind: events.kind,
            events,
            to_lease_dead_s: phases.to_lease_dead.map(|d| d.as_secs_f64()),
            to_all_assigned_s: phases.to_all_assigned.map(|d| d.as_secs_f64()),
            to_all_reconciled_s: phases.to_all_reconciled.map(|d| d.as_secs_f64()),
        }
    }
}

/// An SLO verdict with its durations in milliseconds.
#[derive(Debug, Serialize)]
struct VerdictJson {
    metric: &'static str,
    threshold_ms: f64,
    observed_ms: f64,
    /// The bucket `observed_ms` lies in when it is too wide for a point; upper `null`: `+Inf`.
    observed_range_ms: Option<(f64, Option<f64>)>,
    /// `null`: undetermined, the bucket holds the threshold.
    met: Option<bool>,
}

impl VerdictJson {
    fn of(verdict: &Verdict) -> Self {
        let ms = |duration: std::time::Duration| duration.as_secs_f64() * 1000.0;
        Self {
            metric: verdict.metric.as_str(),
            threshold_ms: ms(verdict.threshold),
            observed_ms: ms(verdict.observed),
            observed_range_ms: verdict
                .range
                .map(|(lower, upper)| (ms(lower), upper.map(ms))),
            met: verdict.met,
        }
    }
}

csv_row! {
    /// A row of `latency-<N>shards.csv`: one window of reconciliation latencies.
    struct LatencyRow {
        start: Timestamp,
        /// `start` in seconds since the run started.
        seconds: f64,
        count: u64,
        p50_ms: f64,
        p90_ms: f64,
        p99_ms: f64,
        max_ms: f64,
        /// Latencies of writes not reconciled (pending, abandoned), at their time so far.
        censored: u64,
        p50_lower_bound: bool,
        p90_lower_bound: bool,
        p99_lower_bound: bool,
        max_lower_bound: bool,
        /// `start` in seconds since this shard count's load started, the x axis of the plots.
        load_seconds: f64,
    }
}

csv_row! {
    /// A row of `queue-<N>shards.csv`: the queue latency's p99 between two scrapes
    /// (docs/experiments.md#queue-latency).
    struct QueueRow {
        start: Timestamp,
        /// `start` in seconds since the load started.
        seconds: f64,
        /// The p99 as the report shows it: a point, or its bucket when wider than ±25 %.
        p99: String,
        /// PromQL's interpolated p99, a point only if `p99_upper_ms / p99_lower_ms` ≤ 1.25.
        p99_ms: f64,
        p99_lower_ms: f64,
        /// Empty for the `+Inf` bucket.
        p99_upper_ms: Option<f64>,
        /// The observations in the window.
        count: u64,
    }
}

csv_row! {
    /// A row of `objects-<N>shards.csv`: the objects of one shard at one time.
    struct ObjectsRow<'a> {
        timestamp: Timestamp,
        /// `timestamp` in seconds since the run started.
        seconds: f64,
        shard: &'a str,
        objects: u64,
        /// `timestamp` in seconds since this shard count's load started, the x axis of the
        /// plots.
        load_seconds: f64,
    }
}

csv_row! {
    /// A row of `machine-<N>shards.csv`: the machine's CPU, loadgen's own and each class's
    /// between two sampler ticks.
    struct MachineRow {
        start: Timestamp,
        /// `start` in seconds since this shard count's load started, the x axis of the plots.
        seconds: f64,
        length_s: f64,
        /// The busy share of all cores, in %; empty where the target cannot measure it.
        machine_busy_percent: Option<f64>,
        loadgen_cores: f64,
        sharder_cores: f64,
        operator_cores: f64,
        control_plane_cores: f64,
    }
}

csv_row! {
    /// A row of `search-<N>shards.csv`: one step of a capacity search
    /// (docs/experiments.md#capacity-search).
    struct StepRow {
        /// From 1, in the order the steps ran.
        step: usize,
        started: Timestamp,
        /// `started` in seconds since the search started (its first step).
        seconds: f64,
        hold_s: f64,
        /// The churn offered, in changes per second.
        churn_ops_per_second: f64,
        /// The changes the API server accepted during the hold, per second.
        achieved_ops_per_second: f64,
        /// The changes the schedule made due.
        scheduled: u64,
        /// The changes whose API call failed.
        failed: u64,
        /// The step's reconciliation latencies, censored ones included.
        count: u64,
        censored: u64,
        p50_ms: f64,
        p99_ms: f64,
        p99_lower_bound: bool,
        max_ms: f64,
        queue_p99_ms: Option<f64>,
        queue_p99_lower_ms: Option<f64>,
        /// Empty for the `+Inf` bucket.
        queue_p99_upper_ms: Option<f64>,
        /// Changes not reconciled when the drain ended.
        outstanding: u64,
        drained_s: f64,
        /// The machine's busy share of all cores during the hold, in %.
        machine_busy_percent: Option<f64>,
        loadgen_cores: Option<f64>,
        /// Empty: undetermined.
        reconciliation_met: Option<bool>,
        queue_met: Option<bool>,
        valid: bool,
        /// The validity rules the step broke, `;`-separated.
        invalid_rules: String,
        /// Whether the search counted it as passing: valid and every SLO surely met.
        passed: bool,
        /// The kinds of its findings, `;`-separated.
        findings: String,
    }
}

impl StepRow {
    fn of(number: usize, step: &Step, search_started: Timestamp) -> Self {
        let met = |metric| {
            step.verdicts
                .iter()
                .find(|verdict| verdict.metric == metric)
                .and_then(|verdict| verdict.met)
        };
        let findings: Vec<&str> = step
            .findings
            .iter()
            .map(|finding| finding.kind.as_str())
            .collect();
        Self {
            step: number,
            started: step.started,
            seconds: seconds_since(search_started, step.started),
            hold_s: step.hold.as_secs_f64(),
            churn_ops_per_second: step.churn,
            achieved_ops_per_second: step.achieved_per_second,
            scheduled: step.scheduled,
            failed: step.failed,
            count: step.reconciliation.count,
            censored: step.reconciliation.censored,
            p50_ms: step.reconciliation.p50_ms,
            p99_ms: step.reconciliation.p99_ms,
            p99_lower_bound: step.reconciliation.p99_lower_bound,
            max_ms: step.reconciliation.max_ms,
            queue_p99_ms: step.queue_p99.map(|q| q.value * 1000.0),
            queue_p99_lower_ms: step.queue_p99.map(|q| q.lower * 1000.0),
            queue_p99_upper_ms: step
                .queue_p99
                .and_then(|q| q.upper.is_finite().then_some(q.upper * 1000.0)),
            outstanding: step.outstanding,
            drained_s: step.drained.as_secs_f64(),
            machine_busy_percent: step.machine_busy.map(|busy| busy * 100.0),
            loadgen_cores: step.loadgen_cores,
            reconciliation_met: met(Metric::ReconciliationLatency),
            queue_met: met(Metric::QueueLatency),
            valid: step.validity.valid,
            invalid_rules: step.validity.broken().join(";"),
            passed: step.passed,
            findings: findings.join(";"),
        }
    }
}

impl MachineRow {
    fn of(results: &ShardCountResults) -> Vec<Self> {
        let windows = &results.machine_windows;
        let classes = cost::group_cores(&results.usage, |c| Some(ComponentClass::of(c)), windows);
        windows
            .iter()
            .zip(classes)
            .map(|(window, classes)| {
                let class = |class| classes.get(&class).copied().unwrap_or(0.0);
                Self {
                    start: window.start,
                    seconds: seconds_since(results.load_started, window.start),
                    length_s: window.length.as_secs_f64(),
                    machine_busy_percent: window.busy.map(|busy| busy * 100.0),
                    loadgen_cores: window.loadgen_cores,
                    sharder_cores: class(ComponentClass::Sharder),
                    operator_cores: class(ComponentClass::Operator),
                    control_plane_cores: class(ComponentClass::ControlPlane),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::{compared, searched, synthetic};

    fn read_csv(path: &Path) -> (Vec<String>, Vec<csv::StringRecord>) {
        let mut reader = csv::Reader::from_path(path).unwrap();
        let headers = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = reader.records().map(Result::unwrap).collect();
        (headers, rows)
    }

    #[test]
    fn every_file_of_a_run_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let results = synthetic();
        let written = write(dir.path(), &results).unwrap();
        let mut expected = vec!["run.json", "summary.csv", "report.md"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        for n in [1, 3] {
            for name in [
                "latency-{n}shards.csv",
                "queue-{n}shards.csv",
                "queue-{n}shards.png",
                "queue-{n}shards.svg",
                "objects-{n}shards.csv",
                "machine-{n}shards.csv",
                "latency-{n}shards.hgrm",
                "latency-{n}shards.png",
                "latency-{n}shards.svg",
                "objects-{n}shards.png",
                "objects-{n}shards.svg",
            ] {
                expected.push(name.replace("{n}", &n.to_string()));
            }
        }
        for name in ["scaling", "latency-all"] {
            expected.extend([format!("{name}.png"), format!("{name}.svg")]);
        }
        for name in &expected {
            let path = dir.path().join(name);
            assert!(path.is_file(), "{name} is missing");
            assert!(path.metadata().unwrap().len() > 0, "{name} is empty");
            assert!(written.contains(&path), "{name} is not reported as written");
        }
        assert_eq!(written.len(), expected.len());
    }

    #[test]
    fn the_csv_files_have_their_headers_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let results = synthetic();
        write(dir.path(), &results).unwrap();

        let (headers, rows) = read_csv(&dir.path().join("summary.csv"));
        assert_eq!(headers, SummaryRow::HEADER);
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[1][0], "3");
        // One shard count breached nothing: its capacity is empty.
        let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
        assert_eq!(&rows[0][column("capacity_websites")], "");
        assert_eq!(&rows[1][column("capacity_websites")], "3000.0");
        assert_eq!(&rows[1][column("capacity_ops_per_second")], "60.0");
        assert_eq!(&rows[1][column("capacity_slo")], "reconciliation_latency");
        assert_eq!(
            &rows[1][column("capacity_achieved_ops_per_second_reconciliation")],
            "45.0"
        );
        assert_eq!(&rows[1][column("capacity_websites_queue")], "");
        // The fixture's one failover is involuntary: no voluntary figures.
        assert_eq!(
            &rows[1][column("failover_voluntary_lease_dead_median_s")],
            ""
        );
        assert_eq!(
            &rows[1][column("failover_involuntary_lease_dead_median_s")],
            "15.0"
        );
        // Its reconciled phase did not finish: counted, not dropped.
        assert_eq!(&rows[1][column("failover_involuntary_reconciled_n")], "1");
        assert_eq!(
            &rows[1][column("failover_involuntary_reconciled_finished")],
            "0"
        );
        assert_eq!(&rows[1][column("movement_unnecessary")], "0");

        let (headers, rows) = read_csv(&dir.path().join("latency-3shards.csv"));
        assert_eq!(headers, LatencyRow::HEADER);
        // 120 latencies one second apart fill twelve windows of ten seconds.
        assert_eq!(rows.len(), 12);
        assert_eq!(&rows[0][0], "2023-11-14T22:13:20Z");
        assert_eq!(&rows[1][1], "10.0");
        // The load of the fixture's shard counts started 10 s into the run.
        assert_eq!(&rows[1][headers.len() - 1], "0.0");
        assert_eq!(headers.last().map(String::as_str), Some("load_seconds"));

        let (headers, rows) = read_csv(&dir.path().join("queue-3shards.csv"));
        assert_eq!(headers, QueueRow::HEADER);
        assert_eq!(
            rows.iter()
                .map(|row| [&row[1], &row[2], &row[6]].map(str::to_owned))
                .collect::<Vec<_>>(),
            [["0.0", "200 ms", "40"], ["5.0", "> 1 s", "7"]]
        );
        assert_eq!(&rows[1][5], "");

        let (headers, rows) = read_csv(&dir.path().join("objects-3shards.csv"));
        assert_eq!(headers, ObjectsRow::HEADER);
        assert_eq!(rows.len(), 4 * 3);
        assert_eq!(&rows[4][2], "shard-1");

        let (headers, rows) = read_csv(&dir.path().join("machine-3shards.csv"));
        assert_eq!(headers, MachineRow::HEADER);
        assert_eq!(rows.len(), 24);
        // From the load's start, 10 s after the fixture's first window.
        assert_eq!(&rows[1][1], "-5.0");
        assert_eq!(&rows[18][3], "95.0");
        // The fixture's 3 shards used 10 CPU seconds evenly over 120 s.
        let operator: f64 = rows[0][6].parse().unwrap();
        assert!((operator - 10.0 / 120.0).abs() < 1e-9, "{operator}");
    }

    #[test]
    fn run_json_names_the_scenario_and_summarizes_each_shard_count() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &synthetic()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["scenario"]["name"], "synthetic");
        assert_eq!(json["started"], "2023-11-14T22:13:20Z");
        assert_eq!(json["machine"]["cores"], 2);
        let counts = json["shard_counts"].as_array().unwrap();
        assert_eq!(counts.len(), 2);
        assert_eq!(counts[1]["shards"], 3);
        assert_eq!(counts[1]["reconciliation"]["count"], 120);
        assert_eq!(counts[1]["reconciliation"]["p99_lower_bound"], false);
        let writes = &counts[1]["accounting"]["writes"];
        assert_eq!(writes["scheduled"], 125);
        assert_eq!(writes["failed"]["500 InternalError"], 3);
        assert_eq!(counts[1]["accounting"]["deletes"]["deleted"], 9);
        assert_eq!(counts[0]["failovers"][0]["to_lease_dead_s"], 15.0);
        assert_eq!(counts[1]["verdicts"][2]["met"], false);
        assert_eq!(counts[1]["slot_restarts"]["2"], 0);
        assert_eq!(counts[1]["capacity_machine_load"]["windows"], 4);
        assert_eq!(counts[1]["machine"]["windows"], 24);
        assert_eq!(counts[0]["load_started"], "2023-11-14T22:13:30Z");
        assert_eq!(counts[0]["rolling_updates"][0], "2023-11-14T22:14:30Z");
        assert_eq!(counts[1]["queue_p99"]["upper"], 0.22);
        assert_eq!(
            counts[1]["capacity"]["reconciliation"]["achieved_operations_per_second"],
            45.0
        );
        assert!(counts[1]["capacity"]["queue"].is_null());
    }

    #[test]
    fn each_strategy_writes_its_own_files_and_hash_ring_keeps_the_names_without_the_axis() {
        let dir = tempfile::tempdir().unwrap();
        let written = write(dir.path(), &compared()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for name in [
            "latency-3shards.csv",
            "latency-3shards-bounded-load.csv",
            "objects-1shards-bounded-load.csv",
            "latency-1shards-bounded-load.hgrm",
            "scaling.png",
            "scaling-bounded-load.svg",
            "latency-all-bounded-load.png",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            names.len(),
            "a file was written twice: {names:?}"
        );
        let (headers, rows) = read_csv(&dir.path().join("summary.csv"));
        let column = headers.iter().position(|h| h == "strategy").unwrap();
        let strategies: Vec<&str> = rows.iter().map(|row| &row[column]).collect();
        assert_eq!(
            strategies,
            ["hash-ring", "hash-ring", "bounded-load", "bounded-load"]
        );
        let text = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["shard_counts"][2]["strategy"], "bounded-load");
        assert_eq!(json["shard_counts"][2]["webhook"]["requests"], 130);
        assert_eq!(
            json["scenario"]["strategies"],
            serde_json::json!(["hash-ring", "bounded-load"])
        );
        // Without the axis, run.json's scenario reads as before.
        write(dir.path(), &synthetic()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("run.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(json["scenario"].get("strategies").is_none());
    }

    #[test]
    fn the_hgrm_file_is_a_percentile_distribution() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &synthetic()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("latency-1shards.hgrm")).unwrap();
        assert!(text.contains("Percentile"), "{text}");
        assert!(text.contains("Total count    =          120]"), "{text}");
    }

    #[test]
    fn the_report_is_written_with_the_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &synthetic()).unwrap();
        let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(report.contains("| SLO | observed p99 | threshold | verdict |"));
        assert!(report.contains('✅') && report.contains('❌'));
    }

    #[test]
    fn plots_are_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &synthetic()).unwrap();
        for stem in [
            "latency-1shards",
            "objects-3shards",
            "latency-all",
            "scaling",
        ] {
            let png = std::fs::read(dir.path().join(format!("{stem}.png"))).unwrap();
            assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{stem}.png");
            let svg = std::fs::read_to_string(dir.path().join(format!("{stem}.svg"))).unwrap();
            assert!(svg.contains("<svg"), "{stem}.svg");
            assert!(svg.contains("<text"), "{stem}.svg has no labels");
        }
    }

    #[test]
    fn a_search_writes_its_steps_per_measurement() {
        let dir = tempfile::tempdir().unwrap();
        let written = write(dir.path(), &searched()).unwrap();
        for stem in ["1shards", "2shards", "1shards-r2", "2shards-r2"] {
            for name in [
                format!("search-{stem}.csv"),
                format!("latency-{stem}.csv"),
                format!("machine-{stem}.csv"),
            ] {
                let path = dir.path().join(&name);
                assert!(path.is_file(), "{name} is missing");
                assert!(written.contains(&path), "{name} is not reported as written");
            }
        }
        assert!(!dir.path().join("search-1shards-r3.csv").exists());
        let loads = tempfile::tempdir().unwrap();
        write(loads.path(), &synthetic()).unwrap();
        assert!(!loads.path().join("search-1shards.csv").exists());
    }

    #[test]
    fn the_search_csv_has_a_row_per_step() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &searched()).unwrap();
        let (headers, rows) = read_csv(&dir.path().join("search-1shards-r2.csv"));
        assert_eq!(headers, StepRow::HEADER);
        assert_eq!(
            headers[..5],
            [
                "step",
                "started",
                "seconds",
                "hold_s",
                "churn_ops_per_second"
            ]
        );
        let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let cells = |name: &str| -> Vec<String> {
            rows.iter()
                .map(|row| row[column(name)].to_owned())
                .collect()
        };
        // The repetition that found 5 changes/s: 2.5 and 5 pass, 10 breaks both SLOs, 5.5
        // breaks the queue SLO on a machine 95 % busy.
        assert_eq!(cells("step"), ["1", "2", "3", "4"]);
        assert_eq!(cells("churn_ops_per_second"), ["2.5", "5.0", "10.0", "5.5"]);
        assert_eq!(cells("p99_ms"), ["200.0", "400.0", "6000.0", "900.0"]);
        assert_eq!(
            cells("reconciliation_met"),
            ["true", "true", "false", "true"]
        );
        assert_eq!(cells("queue_met"), ["true", "true", "false", "false"]);
        assert_eq!(cells("valid"), ["true", "true", "true", "false"]);
        assert_eq!(cells("invalid_rules"), ["", "", "", "machine_cpu"]);
        assert_eq!(cells("machine_busy_percent")[3], "95.0");
        assert_eq!(cells("passed"), ["true", "true", "false", "false"]);
        assert_eq!(cells("queue_p99_ms")[0], "200.0");
        // The fixture's steps start as its load does.
        assert_eq!(cells("seconds")[0], "0.0");
    }
}
