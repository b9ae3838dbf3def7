//! Objects reconciled by two shards at once (docs/experiments.md#ownership), from the shards'
//! audit logs: a JSON line when a reconciliation of an object starts and one when it ends,
//! with the shard (`webhosting-operator --audit-file`). Pure: the records of every shard in,
//! the reconciliations and the overlaps of different shards' reconciliations of one object out.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use webhosting_operator::audit::Record as Line;

use super::elapsed;

/// A line of an audit log that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The line is not a record.
    #[error("{source_name} line {line}: not an audit record: {error}")]
    Json {
        /// The log's name.
        source_name: String,
        /// The line's number, from 1.
        line: usize,
        /// Why.
        #[source]
        error: serde_json::Error,
    },
    /// A field has a value the log never holds.
    #[error("{source_name} line {line}: {field} is {value:?}; expected {expected}")]
    Field {
        /// The log's name.
        source_name: String,
        /// The line's number, from 1.
        line: usize,
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
}

/// One record of an audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When it was written.
    pub at: Timestamp,
    /// The shard that reconciled.
    pub shard: String,
    /// The object, `namespace/name`.
    pub object: String,
    /// Whether the reconciliation started (or ended).
    pub start: bool,
    /// On an end: the reconciliation stopped at the shard's fence, having written nothing
    /// once the shard's Lease had run out by its own clock.
    pub fenced: bool,
}

/// The records of the audit log `text` named `source_name` (for errors); blank lines are
/// skipped.
///
/// # Errors
/// A line is not a record, its time is out of range or its event neither `start` nor `end`;
/// the error names the log and the line.
pub fn parse(source_name: &str, text: &str) -> Result<Vec<Record>, Error> {
    let field = |line, field, value: String, expected| Error::Field {
        source_name: source_name.to_owned(),
        line,
        field,
        value,
        expected,
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let number = i + 1;
            let record: Line = serde_json::from_str(line).map_err(|error| Error::Json {
                source_name: source_name.to_owned(),
                line: number,
                error,
            })?;
            let at = Timestamp::from_nanosecond(record.time).map_err(|_| {
                field(
                    number,
                    "time",
                    record.time.to_string(),
                    "nanoseconds since 1970 within jiff's range",
                )
            })?;
            let start = match record.event.as_str() {
                "start" => true,
                "end" => false,
                other => return Err(field(number, "event", other.to_owned(), "start or end")),
            };
            Ok(Record {
                at,
                shard: record.shard,
                object: record.website,
                start,
                fenced: record.fenced,
            })
        })
        .collect()
}

/// One reconciliation of one object by one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciliation {
    /// The shard.
    pub shard: String,
    /// The object, `namespace/name`.
    pub object: String,
    /// When it started.
    pub start: Timestamp,
    /// When it ended; for an unclosed one, when it is taken to have ended.
    pub end: Timestamp,
    /// Without an end record: the shard's process ended (killed) mid-reconciliation, or the
    /// run ended first.
    pub unclosed: bool,
    /// It stopped at the shard's fence (see [`Record::fenced`]).
    pub fenced: bool,
}

/// The reconciliations in `records` of every shard. A start without an end is unclosed: it
/// counts as running until the shard's next start of the same object (a shard's controller
/// never runs two reconciliations of one object at once, so its process must have ended in
/// between), else the first of `process_ends` of its shard after it, else `end`.
#[must_use]
pub fn reconciliations(
    records: &[Record],
    process_ends: &[(String, Timestamp)],
    end: Timestamp,
) -> Vec<Reconciliation> {
    let mut records: Vec<&Record> = records.iter().collect();
    records.sort_by_key(|record| record.at);
    let mut open: BTreeMap<(&str, &str), Timestamp> = BTreeMap::new();
    let mut done = Vec::new();
    let closed = |(shard, object): (&str, &str), start, end, unclosed, fenced| Reconciliation {
        shard: shard.to_owned(),
        object: object.to_owned(),
        start,
        end,
        unclosed,
        fenced,
    };
    for record in records {
        let key = (record.shard.as_str(), record.object.as_str());
        if record.start {
            if let Some(start) = open.insert(key, record.at) {
                let ended = process_end(process_ends, key.0, start)
                    .map_or(record.at, |died| died.min(record.at));
                done.push(closed(key, start, ended, true, false));
            }
        } else if let Some(start) = open.remove(&key) {
            done.push(closed(key, start, record.at, false, record.fenced));
        }
    }
    for (key, start) in open {
        let ended = process_end(process_ends, key.0, start).unwrap_or(end);
        done.push(closed(key, start, ended.max(start), true, false));
    }
    done.sort_by(|a, b| (&a.object, a.start, &a.shard).cmp(&(&b.object, b.start, &b.shard)));
    done
}

/// `reconciliations` as the shards were active in them: one that spans the start of a pause
/// of its shard (SIGSTOP, as `pauses` of (shard, from, to) list them) and ended at the fence
/// ends at the pause's start. A paused process does nothing, and once resumed, a
/// reconciliation stopped by the fence wrote nothing more (docs/experiments.md#ownership).
#[must_use]
pub fn active(
    mut reconciliations: Vec<Reconciliation>,
    pauses: &[(String, Timestamp, Timestamp)],
) -> Vec<Reconciliation> {
    for reconciliation in reconciliations.iter_mut().filter(|r| r.fenced) {
        let first_pause = pauses
            .iter()
            .filter(|(shard, from, _)| {
                *shard == reconciliation.shard
                    && reconciliation.start <= *from
                    && *from < reconciliation.end
            })
            .map(|(_, from, _)| *from)
            .min();
        if let Some(from) = first_pause {
            reconciliation.end = from;
        }
    }
    reconciliations
}

/// The first end of `shard`'s process at or after `after`.
fn process_end(ends: &[(String, Timestamp)], shard: &str, after: Timestamp) -> Option<Timestamp> {
    ends.iter()
        .filter(|(name, at)| name == shard && *at >= after)
        .map(|(_, at)| *at)
        .min()
}

/// Two shards reconciling one object at the same time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Overlap {
    /// The object, `namespace/name`.
    pub object: String,
    /// The shard whose reconciliation started first, and the other.
    pub shards: (String, String),
    /// When both ran.
    pub start: Timestamp,
    /// When the first of the two ended.
    pub end: Timestamp,
    /// Whether either reconciliation was unclosed, so its end is inferred.
    pub inferred: bool,
}

impl Overlap {
    /// How long both ran.
    #[must_use]
    pub fn length(&self) -> Duration {
        elapsed(self.start, self.end)
    }
}

/// Every pair of reconciliations of one object by different shards whose times overlap (one
/// starts before the other ends; one ending the instant the other starts is a handover, not an
/// overlap). `reconciliations` must be sorted by object and start, as
/// [`reconciliations`] returns them.
#[must_use]
pub fn overlaps(reconciliations: &[Reconciliation]) -> Vec<Overlap> {
    let mut found = Vec::new();
    for (i, first) in reconciliations.iter().enumerate() {
        let later = reconciliations[i + 1..]
            .iter()
            .take_while(|other| other.object == first.object && other.start < first.end);
        for second in later.filter(|other| other.shard != first.shard) {
            found.push(Overlap {
                object: first.object.clone(),
                shards: (first.shard.clone(), second.shard.clone()),
                start: second.start,
                end: first.end.min(second.end),
                inferred: first.unclosed || second.unclosed,
            });
        }
    }
    found
}

/// The audit of one shard count (docs/experiments.md#ownership).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DoubleReconciliation {
    /// Reconciliations in the logs.
    pub reconciliations: usize,
    /// Of those, without an end record.
    pub unclosed: usize,
    /// The objects reconciled by two shards at once.
    pub objects: Vec<String>,
    /// Every overlap, in the order of the objects.
    pub overlaps: Vec<Overlap>,
}

impl DoubleReconciliation {
    /// The audit of `reconciliations`.
    #[must_use]
    pub fn of(reconciliations: &[Reconciliation]) -> Self {
        let overlaps = overlaps(reconciliations);
        let mut objects: Vec<String> = overlaps.iter().map(|o| o.object.clone()).collect();
        objects.dedup();
        Self {
            reconciliations: reconciliations.len(),
            unclosed: reconciliations.iter().filter(|r| r.unclosed).count(),
            objects,
            overlaps,
        }
    }

    /// The longest overlap.
    #[must_use]
    pub fn longest(&self) -> Option<&Overlap> {
        self.overlaps.iter().max_by_key(|o| o.length())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn record(seconds: i64, shard: &str, object: &str, start: bool) -> Record {
        Record {
            at: at(seconds),
            shard: shard.to_owned(),
            object: object.to_owned(),
            start,
            fenced: false,
        }
    }

    fn spans(found: &[Reconciliation]) -> Vec<(&str, &str, i64, i64, bool)> {
        found
            .iter()
            .map(|r| {
                (
                    r.object.as_str(),
                    r.shard.as_str(),
                    r.start.as_second(),
                    r.end.as_second(),
                    r.unclosed,
                )
            })
            .collect()
    }

    #[test]
    fn a_log_reads_as_records_and_a_bad_line_is_named() {
        let text = "{\"time\":1000000000,\"shard\":\"s0\",\"website\":\"p/a\",\"event\":\"start\"}\n\n\
                    {\"time\":2500000000,\"shard\":\"s0\",\"website\":\"p/a\",\"event\":\"end\"}\n";
        let records = parse("s0.jsonl", text).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0], record(1, "s0", "p/a", true));
        assert_eq!(records[1].at, Timestamp::from_millisecond(2500).unwrap());
        let bad = "{\"time\":1,\"shard\":\"s0\",\"website\":\"p/a\",\"event\":\"begin\"}\n";
        assert_eq!(
            parse("s0.jsonl", bad).unwrap_err().to_string(),
            "s0.jsonl line 1: event is \"begin\"; expected start or end"
        );
        let error = parse("s1.jsonl", "\n{\"time\":1}").unwrap_err().to_string();
        assert!(
            error.starts_with("s1.jsonl line 2: not an audit record"),
            "{error}"
        );
    }

    #[test]
    fn a_handover_after_the_end_is_no_overlap() {
        let records = [
            record(1, "a", "p/w", true),
            record(2, "a", "p/w", false),
            record(2, "b", "p/w", true),
            record(4, "b", "p/w", false),
        ];
        let found = reconciliations(&records, &[], at(100));
        assert_eq!(
            spans(&found),
            [("p/w", "a", 1, 2, false), ("p/w", "b", 2, 4, false)]
        );
        assert_eq!(
            DoubleReconciliation::of(&found).objects,
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_start_on_another_shard_before_the_end_is_an_overlap() {
        let records = [
            record(1, "a", "p/w", true),
            record(2, "b", "p/w", true),
            record(3, "a", "p/w", false),
            record(4, "b", "p/w", false),
            // The same shard twice in a row, and another object: no overlap.
            record(5, "b", "p/w", true),
            record(6, "b", "p/w", false),
            record(1, "c", "p/x", true),
            record(9, "c", "p/x", false),
        ];
        let audit = DoubleReconciliation::of(&reconciliations(&records, &[], at(100)));
        assert_eq!(audit.reconciliations, 4);
        assert_eq!(audit.objects, ["p/w"]);
        let overlap = &audit.overlaps[0];
        assert_eq!(overlap.shards, ("a".to_owned(), "b".to_owned()));
        assert_eq!((overlap.start, overlap.end), (at(2), at(3)));
        assert!(!overlap.inferred);
        assert_eq!(audit.longest().unwrap().length(), Duration::from_secs(1));
    }

    #[test]
    fn a_reconciliation_paused_and_stopped_at_the_fence_was_active_until_the_pause() {
        let fenced_end = |seconds, shard: &str| Record {
            fenced: true,
            ..record(seconds, shard, "p/w", false)
        };
        let records = [
            // a is paused from 2 to 30; b takes the object over at 20; a resumes at 30 and
            // stops at its fence.
            record(1, "a", "p/w", true),
            record(20, "b", "p/w", true),
            record(21, "b", "p/w", false),
            fenced_end(30, "a"),
            // c, paused from 40 to 50, ends normally after it: still counted whole.
            record(35, "c", "p/w", true),
            record(45, "b", "p/w", true),
            record(46, "b", "p/w", false),
            record(51, "c", "p/w", false),
        ];
        let pauses = [
            ("a".to_owned(), at(2), at(30)),
            ("c".to_owned(), at(40), at(50)),
        ];
        let all = reconciliations(&records, &[], at(100));
        assert_eq!(DoubleReconciliation::of(&all).overlaps.len(), 2);
        let active = active(all, &pauses);
        let audit = DoubleReconciliation::of(&active);
        assert_eq!(audit.overlaps.len(), 1);
        assert_eq!(audit.overlaps[0].shards, ("c".to_owned(), "b".to_owned()));
        let a = active.iter().find(|r| r.shard == "a").unwrap();
        assert_eq!((a.start, a.end), (at(1), at(2)));
    }

    #[test]
    fn a_shard_killed_mid_reconciliation_runs_until_its_process_ended() {
        // a is killed at 5 while reconciling; b takes the object over at 8: no overlap.
        // c is never seen to end: it runs until the end of the run and overlaps d's.
        let records = [
            record(1, "a", "p/w", true),
            record(8, "b", "p/w", true),
            record(9, "b", "p/w", false),
            record(1, "c", "p/x", true),
            record(50, "d", "p/x", true),
            record(51, "d", "p/x", false),
        ];
        let ends = [("a".to_owned(), at(5)), ("a".to_owned(), at(0))];
        let found = reconciliations(&records, &ends, at(60));
        assert_eq!(
            spans(&found),
            [
                ("p/w", "a", 1, 5, true),
                ("p/w", "b", 8, 9, false),
                ("p/x", "c", 1, 60, true),
                ("p/x", "d", 50, 51, false),
            ]
        );
        let audit = DoubleReconciliation::of(&found);
        assert_eq!(audit.unclosed, 2);
        assert_eq!(audit.objects, ["p/x"]);
        assert!(audit.overlaps[0].inferred);
    }

    #[test]
    fn a_restarted_shards_next_start_ends_its_unclosed_reconciliation() {
        // Shard a restarts under the same name (its process ended unseen) and starts the object
        // again at 20; b reconciled it from 10 to 12, while a's first one was unclosed.
        let records = [
            record(1, "a", "p/w", true),
            record(10, "b", "p/w", true),
            record(12, "b", "p/w", false),
            record(20, "a", "p/w", true),
            record(21, "a", "p/w", false),
        ];
        let found = reconciliations(&records, &[], at(60));
        assert_eq!(
            spans(&found),
            [
                ("p/w", "a", 1, 20, true),
                ("p/w", "b", 10, 12, false),
                ("p/w", "a", 20, 21, false),
            ]
        );
        let audit = DoubleReconciliation::of(&found);
        assert_eq!(audit.overlaps.len(), 1);
        assert_eq!(audit.overlaps[0].length(), Duration::from_secs(2));
    }
}
