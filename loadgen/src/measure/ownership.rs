//! The ownership audit of one shard count (docs/experiments.md#ownership): objects on no live
//! shard ([`super::unowned`]), objects reconciled by two shards at once ([`super::audit`]) and
//! writes rejected by conflicts ([`super::conflicts`]), and the invariant violations that fail
//! `loadgen experiment --check`.

use std::time::Duration;

use serde::Serialize;

use super::{audit::DoubleReconciliation, conflicts::Conflicts, unowned::UnownedSummary};

/// How long an object may have been unowned at the end of a shard count, after its settle
/// time, before it violates the invariant: the sharder moves a dead shard's objects as soon as
/// it sees the Lease dead, within seconds; 30 s leaves a loaded machine room for a move under
/// way at the very end.
pub const UNOWNED_GRACE: Duration = Duration::from_secs(30);

/// How many objects a violation's message names.
const NAMED: usize = 10;

/// Whether the shards' reconciliations were audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Audited {
    /// From every shard's audit log.
    Measured(DoubleReconciliation),
    /// Not measured, and why: never a count of 0.
    NotMeasured {
        /// Why, a sentence.
        reason: String,
    },
}

/// The ownership audit of one shard count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ownership {
    /// Objects on no live shard, and for how long.
    pub unowned: UnownedSummary,
    /// Objects reconciled by two shards at once.
    pub double_reconciliation: Audited,
    /// 409 Conflict answers per component, over the load and the settle time.
    pub conflicts: Conflicts,
}

impl Ownership {
    /// The objects reconciled by two shards at once; `None` when not measured.
    #[must_use]
    pub fn double_reconciled(&self) -> Option<&DoubleReconciliation> {
        match &self.double_reconciliation {
            Audited::Measured(audit) => Some(audit),
            Audited::NotMeasured { .. } => None,
        }
    }

    /// The invariant violations, a sentence each naming the objects: any object reconciled by
    /// two shards at once, and objects unowned at the end for at least [`UNOWNED_GRACE`].
    #[must_use]
    pub fn violations(&self) -> Vec<String> {
        let mut violations = Vec::new();
        if let Some(audit) = self.double_reconciled()
            && !audit.objects.is_empty()
        {
            violations.push(format!(
                "{} object(s) reconciled by two shards at once: {}",
                audit.objects.len(),
                named(audit.overlaps.iter().map(|o| {
                    format!(
                        "{} ({} and {}, {:.1} s{})",
                        o.object,
                        o.shards.0,
                        o.shards.1,
                        o.length().as_secs_f64(),
                        if o.inferred { ", an end inferred" } else { "" }
                    )
                })),
            ));
        }
        let left = &self.unowned.left_unowned;
        if !left.is_empty() {
            violations.push(format!(
                "{} object(s) on no live shard at the end, for at least {} s: {}",
                left.len(),
                UNOWNED_GRACE.as_secs(),
                named(left.iter().map(|i| format!(
                    "{} ({:.1} s)",
                    i.object,
                    i.length().as_secs_f64()
                ))),
            ));
        }
        violations
    }
}

/// The first [`NAMED`] of `items`, comma-separated, and how many more there are.
fn named(items: impl ExactSizeIterator<Item = String>) -> String {
    let more = items.len().saturating_sub(NAMED);
    let text = items.take(NAMED).collect::<Vec<_>>().join(", ");
    if more > 0 {
        format!("{text} and {more} more")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;
    use crate::measure::{
        audit::{self, Record},
        unowned::{self, Event},
    };

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn ownership(records: &[Record], events: &[(Timestamp, Event)]) -> Ownership {
        let intervals = unowned::intervals(events, at(100));
        Ownership {
            unowned: UnownedSummary::of(&intervals, UNOWNED_GRACE),
            double_reconciliation: Audited::Measured(DoubleReconciliation::of(
                &audit::reconciliations(records, &[], at(100)),
            )),
            conflicts: Conflicts::default(),
        }
    }

    fn record(seconds: i64, shard: &str, start: bool) -> Record {
        Record {
            at: at(seconds),
            shard: shard.to_owned(),
            object: "p/w".to_owned(),
            start,
            fenced: false,
        }
    }

    #[test]
    fn a_synthetic_overlap_is_a_violation_naming_the_object_and_shards() {
        let records = [
            record(10, "shard-0", true),
            record(11, "shard-1", true),
            record(13, "shard-0", false),
            record(14, "shard-1", false),
        ];
        assert_eq!(
            ownership(&records, &[]).violations(),
            ["1 object(s) reconciled by two shards at once: p/w (shard-0 and shard-1, 2.0 s)"]
        );
    }

    #[test]
    fn a_normal_run_has_no_violation_and_an_unaudited_one_is_not_measured() {
        let records = [
            record(10, "shard-0", true),
            record(11, "shard-0", false),
            record(11, "shard-1", true),
            record(12, "shard-1", false),
        ];
        let events = [
            (
                at(0),
                Event::Lease {
                    shard: "shard-0".to_owned(),
                    available: true,
                },
            ),
            (
                at(1),
                Event::Label {
                    object: "p/w".to_owned(),
                    shard: Some("shard-0".to_owned()),
                },
            ),
        ];
        let mut normal = ownership(&records, &events);
        assert!(normal.violations().is_empty());
        assert_eq!(normal.double_reconciled().unwrap().reconciliations, 2);
        normal.double_reconciliation = Audited::NotMeasured {
            reason: "no audit log".to_owned(),
        };
        assert_eq!(normal.double_reconciled(), None);
        assert!(normal.violations().is_empty());
    }

    #[test]
    fn objects_left_unowned_past_the_grace_are_a_violation_and_a_late_move_is_not() {
        let events: Vec<(Timestamp, Event)> = (0..12)
            .map(|i| {
                (
                    at(i),
                    Event::Label {
                        object: format!("p/w{i:02}"),
                        shard: None,
                    },
                )
            })
            .chain([(
                at(90),
                Event::Label {
                    object: "p/late".to_owned(),
                    shard: None,
                },
            )])
            .collect();
        let violations = ownership(&[], &events).violations();
        assert_eq!(violations.len(), 1);
        assert!(
            violations[0].starts_with(
                "12 object(s) on no live shard at the end, for at least 30 s: p/w00 (100.0 s), \
                 p/w01 (99.0 s),"
            ),
            "{violations:?}"
        );
        assert!(
            violations[0].ends_with("p/w09 (91.0 s) and 2 more"),
            "{violations:?}"
        );
    }
}
