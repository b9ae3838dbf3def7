//! The section of `report.md` that sets the assignment strategies side by side, one table per
//! shard count (docs/experiments.md#strategies-side-by-side).

use std::fmt::Write;

use k8s_openapi::jiff::Timestamp;

use super::{
    ComponentClass, RunResults, SKEW_MIN_OBJECTS_PER_SHARD, ShardCountResults,
    repetitions::{Repetitions, by_shard_count},
};
use crate::{
    measure::{as_f64, prometheus::Quantile, ratio, skew::Skew, stats},
    report::TextTable,
    units::{format_latency, format_quantile, mib},
};

/// One row of the tables: a figure of one measurement, how it is written, and the n it rests
/// on within that measurement (`None` where the figure is one reading).
struct Figure {
    name: &'static str,
    value: fn(&ShardCountResults) -> Option<f64>,
    number: fn(f64) -> String,
    n: Option<fn(&ShardCountResults) -> String>,
    /// Written instead when a measurement lacks the figure.
    missing: &'static str,
}

/// The figures, in the order of the rows.
const FIGURES: &[Figure] = &[
    Figure {
        name: "skew at the end (max/mean)",
        value: |count| Some(count.skew.last()?.1.max_over_mean),
        number: |v| format!("{v:.3}"),
        n: Some(|count| {
            count.skew.last().map_or_else(String::new, |(_, skew)| {
                format!("{} objects on {} shards", skew.total, skew.shards)
            })
        }),
        missing: "no sample",
    },
    Figure {
        name: "worst steady skew (max/mean)",
        value: |count| count.skew_summary.steady.max_over_mean,
        number: |v| format!("{v:.3}"),
        n: Some(|count| format!("n={} samples", count.skew_summary.steady.samples)),
        missing: "no steady sample",
    },
    Figure {
        name: "skew at the capacity breach (max/mean)",
        value: |count| Some(at_breach(count)?.1.max_over_mean),
        number: |v| format!("{v:.3}"),
        n: Some(|count| {
            at_breach(count).map_or_else(String::new, |(_, skew)| {
                format!("{} objects on {} shards", skew.total, skew.shards)
            })
        }),
        missing: "no breach",
    },
    Figure {
        name: "worst skew before the first membership event",
        value: |count| before_first_event(count).1,
        number: |v| format!("{v:.3}"),
        n: Some(|count| format!("n={} samples", before_first_event(count).0)),
        missing: "no sample",
    },
    Figure {
        name: "membership events",
        value: |count| Some(as_f64(count.movement_totals().changes as u64)),
        number: |v| format!("{v:.0}"),
        n: None,
        missing: "–",
    },
    Figure {
        name: "objects moved per event",
        value: |count| per_event(count, count.movement_totals().moved),
        number: |v| format!("{v:.1}"),
        n: Some(events),
        missing: "no event",
    },
    Figure {
        name: "unnecessary moves per event",
        value: |count| per_event(count, count.movement_totals().unnecessary),
        number: |v| format!("{v:.1}"),
        n: Some(events),
        missing: "no event",
    },
    Figure {
        name: "capacity at the first SLO breach (objects)",
        value: |count| Some(count.capacity.earliest()?.load.websites),
        number: |v| format!("{v:.0}"),
        n: Some(|count| {
            count
                .capacity
                .earliest()
                .map_or_else(String::new, |breach| {
                    format!(
                        "{}, {:.1} ops/s offered",
                        breach.metric.name(),
                        breach.load.operations_per_second
                    )
                })
        }),
        missing: "no breach",
    },
    Figure {
        name: "sharder CPU",
        value: |count| Some(sharder(count).cpu_seconds),
        number: |v| format!("{v:.1} s"),
        n: None,
        missing: "–",
    },
    Figure {
        name: "sharder peak memory",
        value: |count| Some(mib(sharder(count).peak_rss_bytes)),
        number: |v| format!("{v:.0} MiB"),
        n: None,
        missing: "–",
    },
    Figure {
        name: "webhook latency p50",
        value: |count| Some(count.webhook?.p50.value),
        number: format_latency,
        n: Some(|count| webhook_n(count, |w| w.p50)),
        missing: "not measured",
    },
    Figure {
        name: "webhook latency p99",
        value: |count| Some(count.webhook?.p99.value),
        number: format_latency,
        n: Some(|count| webhook_n(count, |w| w.p99)),
        missing: "not measured",
    },
];

/// The last skew sample at or before the first SLO breach: the spread that decided it.
fn at_breach(count: &ShardCountResults) -> Option<&(Timestamp, Skew)> {
    let breach = count.capacity.earliest()?.at;
    count.skew.iter().rev().find(|(at, _)| *at <= breach)
}

/// The samples before the first membership change with at least
/// [`SKEW_MIN_OBJECTS_PER_SHARD`] objects on every shard, and the largest max/mean among them:
/// the spread the strategy keeps while only creations change the ring, apart from the moves
/// that a change starts and a busy shard may take minutes to acknowledge.
fn before_first_event(count: &ShardCountResults) -> (usize, Option<f64>) {
    let first = count.movements.iter().map(|change| change.at).min();
    let maxima: Vec<f64> = count
        .skew
        .iter()
        .filter(|(at, skew)| {
            first.is_none_or(|first| *at < first) && skew.min >= SKEW_MIN_OBJECTS_PER_SHARD
        })
        .map(|(_, skew)| skew.max_over_mean)
        .collect();
    (maxima.len(), maxima.into_iter().reduce(f64::max))
}

/// `count`'s `moves` per membership event; `None` without events.
fn per_event(count: &ShardCountResults, moves: usize) -> Option<f64> {
    ratio(
        as_f64(moves as u64),
        as_f64(count.movement_totals().changes as u64),
    )
}

fn events(count: &ShardCountResults) -> String {
    format!("n={} events", count.movement_totals().changes)
}

fn sharder(count: &ShardCountResults) -> super::ClassCost {
    count
        .class_costs()
        .get(&ComponentClass::Sharder)
        .copied()
        .unwrap_or_default()
}

/// The bucket the webhook's percentile fell in and the requests it rests on.
fn webhook_n(
    count: &ShardCountResults,
    quantile: fn(&crate::measure::webhook::WebhookLatency) -> Quantile,
) -> String {
    count.webhook.map_or_else(String::new, |webhook| {
        format!(
            "bucket {}, n={} requests",
            format_quantile(&quantile(&webhook)),
            webhook.requests
        )
    })
}

/// A figure of one group: the one measurement's value with its n, or with repetitions the
/// median and interval over the valid ones.
fn cell(figure: &Figure, group: &Repetitions<'_>) -> String {
    if let [count] = group.all[..] {
        return (figure.value)(count).map_or_else(
            || figure.missing.to_owned(),
            |value| {
                let n = figure.n.map(|n| n(count)).filter(|n| !n.is_empty());
                match n {
                    Some(n) => format!("{} ({n})", (figure.number)(value)),
                    None => (figure.number)(value),
                }
            },
        );
    }
    group.interval(figure.value).map_or_else(
        || figure.missing.to_owned(),
        |interval: stats::Interval| interval.render(figure.number),
    )
}

/// "Strategies side by side": per shard count, each figure under each strategy, then what
/// each figure is and leaves out.
pub(super) fn section(results: &RunResults) -> String {
    let mut out = String::new();
    let strategies = results.strategies();
    let groups = by_shard_count(results);
    let _ = writeln!(out, "## Strategies side by side\n");
    let mut shard_counts: Vec<u32> = groups.iter().map(|group| group.shards).collect();
    shard_counts.dedup();
    for shards in shard_counts {
        let _ = writeln!(out, "### {shards} shards\n");
        let mut header = vec!["figure"];
        header.extend(strategies.iter().map(|s| s.name()));
        let mut table = TextTable::new(&header).indent(0).gap(3);
        let of = |strategy| {
            groups
                .iter()
                .find(|group| group.shards == shards && group.strategy == strategy)
        };
        let mut validity = vec!["valid".to_owned()];
        validity.extend(strategies.iter().map(|&strategy| {
            of(strategy).map_or_else(
                || "not run".to_owned(),
                |group| match group.all[..] {
                    [count] => count.validity.cell(),
                    _ => format!(
                        "{} of {} repetitions",
                        group.valid().count(),
                        group.all.len()
                    ),
                },
            )
        }));
        table.row(validity);
        for figure in FIGURES {
            let mut row = vec![figure.name.to_owned()];
            row.extend(strategies.iter().map(|&strategy| {
                of(strategy).map_or_else(|| "not run".to_owned(), |group| cell(figure, group))
            }));
            table.row(row);
        }
        let _ = writeln!(out, "```text\n{}```\n", table.render());
    }
    let single = groups.iter().all(|group| group.all.len() == 1);
    let _ = writeln!(
        out,
        "{}",
        if single {
            "One repetition of each strategy and shard count: each figure is that one \
             measurement, with the n it rests on, and there is no interval; run with --repeat \
             for one."
        } else {
            "Each figure over the valid repetitions: median [low, high] (n repetitions, the \
             range below 5, a 95 % bootstrap of the median from 5); invalid repetitions are left \
             out."
        }
    );
    let _ = writeln!(
        out,
        "\nSkew at the end: the fullest available shard over the mean at the last sample, after \
         the settle time; shards whose Lease is not available are left out. Worst steady skew: \
         the largest max/mean over the samples with at least {SKEW_MIN_OBJECTS_PER_SHARD} \
         objects on every shard and no membership change within a lease duration; the others \
         are left out, but the moves a change starts may take longer when a shard is behind. \
         Skew at the capacity breach: the last sample at or before the first SLO breach. Worst \
         skew before the first membership event: the largest max/mean over the samples with at \
         least {SKEW_MIN_OBJECTS_PER_SHARD} objects on every shard before the first change, \
         while only creations changed the ring. Moves per event: over every membership change (n events) of objects \
         assigned both before and after it, leaving out those created or deleted meanwhile. \
         Unnecessary: under hash-ring, a move that did not end on the object's owner on the \
         ring after the change; under another strategy, a move between two shards that were \
         available both before and after the change (docs/experiments.md#movement). Capacity: \
         the objects the schedule had created when the first SLO's sustained breach began, \
         none when no SLO broke before the ramp's end or the load has no ramp; a machine busy \
         over 90 % then bounds it (see each shard count's section). Sharder CPU and peak \
         memory: from /proc over the load and the settle time, all replicas. Webhook latency: \
         the sharder's time to decide the ring's admission requests during the load, over all \
         replicas, from its histogram (buckets doubling from 0.1 ms), so the figure is PromQL's \
         interpolation within the bucket given; not measured on a cluster, whose sharder's \
         /metrics loadgen does not read."
    );
    let _ = writeln!(out);
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::SignedDuration;

    use super::{at_breach, before_first_event};
    use crate::{
        measure::skew::Skew,
        results::{
            report::report_markdown,
            tests::{compared, synthetic},
        },
    };

    #[test]
    fn the_skew_that_decided_the_breach_and_the_one_before_any_membership_change() {
        let mut count = compared().shard_counts.pop().expect("a shard count");
        let breach = count.capacity.earliest().expect("a breach").at;
        let at = |offset: i64| breach + SignedDuration::from_secs(offset);
        count.movements.truncate(1);
        count.movements[0].at = at(5);
        // Before the breach (one with a shard below 20 objects); at it; after the change, its
        // moves still under way.
        count.skew = vec![
            (at(-20), Skew::of(&[10, 30, 20])),
            (at(-10), Skew::of(&[40, 50, 30])),
            (at(0), Skew::of(&[40, 40, 44])),
            (at(10), Skew::of(&[100, 20, 30])),
        ];
        assert_eq!(at_breach(&count).map(|(t, _)| *t), Some(at(0)));
        assert_eq!(before_first_event(&count), (2, Some(1.25)));
        count.movements.clear();
        assert_eq!(
            before_first_event(&count),
            (3, Some(Skew::of(&[100, 20, 30]).max_over_mean))
        );
    }

    #[test]
    fn a_run_of_one_strategy_has_no_side_by_side_section() {
        let report = report_markdown(&synthetic());
        assert!(!report.contains("Strategies side by side"));
        assert!(!report.contains("# Under"));
        assert!(!report.contains("Assignment strategies"));
    }

    #[test]
    fn strategies_are_set_side_by_side_per_shard_count_with_their_n() {
        let results = compared();
        let report = report_markdown(&results);
        assert!(report.contains("- Assignment strategies: hash-ring, bounded-load"));
        let section = &report[report.find("## Strategies side by side").unwrap()
            ..report.find("# Under hash-ring").unwrap()];
        assert!(section.contains("### 1 shards\n"), "{section}");
        let three = &section[section.find("### 3 shards").unwrap()..];
        let row = |name: &str| {
            three
                .lines()
                .find(|line| line.starts_with(name))
                .unwrap_or_else(|| panic!("{name} in {three}"))
                .split("   ")
                .map(str::trim)
                .filter(|cell| !cell.is_empty())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            row("figure"),
            ["figure", "hash-ring", "bounded-load"],
            "{three}"
        );
        assert_eq!(
            row("unnecessary moves per event"),
            [
                "unnecessary moves per event",
                "0.0 (n=1 events)",
                "1.0 (n=1 events)"
            ]
        );
        assert_eq!(
            row("sharder CPU"),
            ["sharder CPU", "1.0 s", "2.0 s"],
            "{three}"
        );
        assert_eq!(
            row("webhook latency p99"),
            [
                "webhook latency p99",
                "0.6 ms (bucket 0.4–0.8 ms, n=130 requests)",
                "0.6 ms (bucket 0.4–0.8 ms, n=130 requests)"
            ]
        );
        assert_eq!(
            row("capacity at the first SLO breach (objects)")[2],
            "3000 (reconciliation latency, 60.0 ops/s offered)"
        );
        assert!(section.contains("there is no interval"));
        // Each strategy's measurements follow under their own heading, as a run of it alone.
        assert_eq!(report.matches("\n## 3 shards\n").count(), 2);
        assert!(
            report.find("# Under hash-ring").unwrap()
                < report.find("# Under bounded-load").unwrap()
        );
        assert!(report.contains("| 3 bounded-load |"));
        for plot in [
            "(latency-all.png)",
            "(latency-all-bounded-load.png)",
            "(scaling.png)",
            "(scaling-bounded-load.png)",
        ] {
            assert_eq!(report.matches(plot).count(), 1, "{plot}");
        }
        assert!(report.starts_with(
            "# Scenario `synthetic`: run `20231114-synthetic`\n\n**Under hash-ring: With 1/3"
        ));
    }
}
