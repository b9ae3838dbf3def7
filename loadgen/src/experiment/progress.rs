//! The progress bar and live status line of a run on stderr. Without a terminal (CI, a pipe)
//! the status line is printed every [`QUIET_INTERVAL`] instead.

use std::{
    collections::BTreeMap,
    io::IsTerminal as _,
    sync::{Arc, Mutex},
    time::Duration,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kube_sharding::strategy::Strategy;
use tokio::time::Instant;

use super::{
    driver::Population,
    metrics::{Metrics, Operation, Outcome},
    tracker::Tracker,
};
use crate::{
    experiment::search::SearchResults,
    measure::{findings::Finding, validity::Validity},
    results::{
        ShardCountResults,
        report::{bracket_text, slo_names},
    },
    scenario::Scenario,
    units::format_quantile,
};

/// How often the status line is printed without a terminal.
const QUIET_INTERVAL: Duration = Duration::from_secs(15);

/// The progress of one shard count.
pub struct Progress {
    bar: ProgressBar,
    prefix: String,
    terminal: bool,
}

/// Successful and failed operations, of all kinds.
fn operations(metrics: &Metrics) -> (u64, u64) {
    let count = |result| {
        Operation::ALL
            .iter()
            .map(|&op| metrics.operations(op, result))
            .sum::<u64>()
    };
    (count(Outcome::success), count(Outcome::error))
}

/// Lines that belong to no shard count.
pub const NOTES: crate::report::Progress = crate::report::Progress::new("loadgen");

impl Progress {
    /// The progress of repetition `repetition` of the run with `shards` shards under
    /// `strategy`, which the prefix names only when the scenario sweeps strategies.
    pub fn new(strategy: Strategy, shards: u32, repetition: u32, scenario: &Scenario) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let length = (scenario.duration + scenario.settle).as_secs();
        let bar = if terminal {
            ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len}s {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let prefix = if scenario.default_strategies() {
            format!("{} {shards} shard(s) #{repetition}", scenario.name)
        } else {
            format!(
                "{} {shards} shard(s) {strategy} #{repetition}",
                scenario.name
            )
        };
        bar.set_prefix(prefix.clone());
        Self {
            bar,
            prefix,
            terminal,
        }
    }

    /// A step of the set-up.
    pub fn phase(&self, message: &str) {
        self.line(&format!("{}: {message}", self.prefix));
    }

    /// The load begins.
    pub fn load_started(&self) {
        self.phase("load started");
        self.bar.reset_elapsed();
    }

    fn line(&self, line: &str) {
        if self.terminal {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// Updates the bar and the status line every second until `end`.
    pub async fn run(
        &self,
        start: Instant,
        end: Instant,
        metrics: &Metrics,
        tracker: &Arc<Mutex<Tracker>>,
        population: &Mutex<Population>,
    ) {
        // loadgen's counters run over the whole sweep; the status line counts this shard count.
        let before = operations(metrics);
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        let mut last_printed = Instant::now();
        while Instant::now() < end {
            ticks.tick().await;
            let status = status(metrics, before, tracker, population);
            if self.terminal {
                self.bar.set_position((Instant::now() - start).as_secs());
                self.bar.set_message(status);
            } else if last_printed.elapsed() >= QUIET_INTERVAL {
                last_printed = Instant::now();
                let elapsed = (Instant::now() - start).as_secs();
                eprintln!("{} {elapsed}s: {status}", self.prefix);
            }
        }
        self.bar.finish_and_clear();
    }

    /// The summary of the shard count, then its verdict ([`verdict_lines`]).
    pub fn done(
        &self,
        results: &ShardCountResults,
        errors: &BTreeMap<String, u64>,
        disruption_errors: &[String],
    ) {
        let summary = &results.reconciliation.summary();
        let queue_p99 = results.queue_p99.as_ref();
        let queue = queue_p99.map_or_else(|| "not scraped".to_owned(), format_quantile);
        let bound = |lower_bound| if lower_bound { "≥ " } else { "" };
        let writes = &results.accounting.writes;
        let classes: Vec<String> = writes
            .classes()
            .iter()
            .map(|(class, n)| format!("{n} {class}"))
            .collect();
        self.line(&format!(
            "{}: done: {} latencies ({} censored), p50 {}{:.0} ms, p99 {}{:.0} ms, max {}{:.0} ms; \
             queue p99 {queue}; writes: {} scheduled, {}",
            self.prefix,
            summary.count,
            summary.censored,
            bound(summary.p50_lower_bound),
            summary.p50_ms,
            bound(summary.p99_lower_bound),
            summary.p99_ms,
            bound(summary.max_lower_bound),
            summary.max_ms,
            writes.scheduled,
            classes.join(", "),
        ));
        for (error, count) in errors {
            self.line(&format!("{}: {count} × {error}", self.prefix));
        }
        for error in disruption_errors {
            self.line(&format!("{}: {error}", self.prefix));
        }
        for line in verdict_lines(
            &results.validity,
            &results.findings,
            results.search.as_ref(),
        ) {
            self.line(&format!("{}: {line}", self.prefix));
        }
    }
}

/// The verdict on a measurement, as [`Progress::done`] ends: VALID or INVALID with every reason,
/// for a search its bracket and the SLOs that decided it, then each finding.
pub fn verdict_lines(
    validity: &Validity,
    findings: &[Finding],
    search: Option<&SearchResults>,
) -> Vec<String> {
    let of = if search.is_some() {
        " (deciding step)"
    } else {
        ""
    };
    let mut lines = vec![if validity.valid {
        format!("VALID{of}")
    } else {
        let reasons: Vec<&str> = validity
            .reasons
            .iter()
            .map(|reason| reason.sentence.as_str())
            .collect();
        format!("INVALID{of}: {}", reasons.join("; "))
    }];
    if let Some(search) = search {
        let deciding = search.deciding_slos();
        lines.push(format!(
            "bracket {} changes/s after {} step(s){}",
            bracket_text(search.bracket),
            search.steps.len(),
            if deciding.is_empty() {
                String::new()
            } else {
                format!(", decided by the {} SLO", slo_names(&deciding))
            }
        ));
    }
    lines.extend(
        findings
            .iter()
            .map(|finding| format!("finding: {}", finding.sentence)),
    );
    lines
}

/// `ops 312 ok 2 err │ objects 140 seen, 120 live │ 3 shards │ 4 pending`.
fn status(
    metrics: &Metrics,
    (ok_before, errors_before): (u64, u64),
    tracker: &Arc<Mutex<Tracker>>,
    population: &Mutex<Population>,
) -> String {
    let (ok, errors) = operations(metrics);
    let (objects, shards, pending) = {
        let tracker = super::lock(tracker);
        (
            tracker.objects(),
            tracker.available_shards().len(),
            tracker.pending(),
        )
    };
    let live = super::lock(population).len();
    format!(
        "ops {} ok {} err │ objects {objects} seen, {live} live │ {shards} shards │ {pending} pending",
        ok - ok_before,
        errors - errors_before,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::searched;

    #[test]
    fn the_verdict_names_every_reason_the_bracket_and_each_finding() {
        let results = searched();
        let invalid = &results.shard_counts[2];
        assert_eq!(
            verdict_lines(
                &invalid.validity,
                &invalid.findings,
                invalid.search.as_ref()
            ),
            [
                "INVALID (deciding step): the machine was 95 % busy",
                "bracket [5.00, 5.50] changes/s after 4 step(s), decided by the queue latency SLO",
            ]
        );
        let findings = [Finding {
            kind: crate::measure::findings::FindingKind::MachineSaturated,
            sentence: "the machine was saturated".to_owned(),
        }];
        let valid = &results.shard_counts[0];
        assert_eq!(
            verdict_lines(&valid.validity, &findings, None),
            ["VALID", "finding: the machine was saturated"]
        );
    }
}
