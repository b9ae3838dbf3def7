//! An optional audit log of reconciliations: a JSON line when a Website's reconciliation
//! starts and one when it ends, with the shard. Merging the logs of all shards by time shows
//! whether two shards ever reconciled one Website at the same time.

use std::{
    fs::File,
    io::Write as _,
    path::Path,
    sync::{Arc, Mutex},
};

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When, in nanoseconds since the Unix epoch.
    pub time: i128,
    /// The shard (or singleton) that reconciled.
    pub shard: String,
    /// `namespace/name` of the Website.
    pub website: String,
    /// `start` or `end`.
    pub event: String,
    /// On an `end`: the reconciliation stopped at the shard's fence, so it wrote nothing once
    /// the shard's Lease had run out by its own clock (docs/contract.md#fencing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fenced: bool,
}

/// Appends records to a file.
#[derive(Clone, Debug)]
pub struct Audit {
    file: Arc<Mutex<File>>,
    shard: String,
}

impl Audit {
    /// Appends to `path` (created if missing) for `shard`.
    pub fn open(path: &Path, shard: &str) -> std::io::Result<Self> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(Self {
            file: Arc::new(Mutex::new(file)),
            shard: shard.to_owned(),
        })
    }

    /// Records the start of a reconciliation of `website`; the end is recorded when the
    /// returned guard is dropped, also if the reconciliation is cancelled, or by
    /// [`Reconciling::fenced`].
    #[must_use]
    pub fn reconciling(&self, website: String) -> Reconciling {
        self.write("start", &website, false);
        Reconciling {
            audit: self.clone(),
            website,
            ended: false,
        }
    }

    fn write(&self, event: &str, website: &str, fenced: bool) {
        let record = Record {
            time: Timestamp::now().as_nanosecond(),
            shard: self.shard.clone(),
            website: website.to_owned(),
            event: event.to_owned(),
            fenced,
        };
        let mut line = serde_json::to_string(&record).expect("a record serializes");
        line.push('\n');
        // One write per line on an append-mode file, so lines of concurrent workers do not mix.
        if let Err(error) = self
            .file
            .lock()
            .expect("not poisoned")
            .write_all(line.as_bytes())
        {
            tracing::warn!(%error, "cannot write the audit log");
        }
    }
}

/// See [`Audit::reconciling`].
#[derive(Debug)]
pub struct Reconciling {
    audit: Audit,
    website: String,
    ended: bool,
}

impl Reconciling {
    /// Records the end of a reconciliation that stopped at the shard's fence.
    pub fn fenced(mut self) {
        self.audit.write("end", &self.website, true);
        self.ended = true;
    }
}

impl Drop for Reconciling {
    fn drop(&mut self) {
        if !self.ended {
            self.audit.write("end", &self.website, false);
        }
    }
}

/// The Websites that two shards reconciled at overlapping times, from the records of all
/// shards (pure; for tests and experiments).
#[must_use]
pub fn overlaps(records: &[Record]) -> Vec<String> {
    let mut records: Vec<&Record> = records.iter().collect();
    records.sort_by_key(|record| record.time);
    let mut running: std::collections::HashMap<&str, Vec<&str>> = std::collections::HashMap::new();
    let mut overlapping = Vec::new();
    for record in records {
        let shards = running.entry(&record.website).or_default();
        if record.event == "start" {
            if shards.iter().any(|shard| *shard != record.shard) {
                overlapping.push(record.website.clone());
            }
            shards.push(&record.shard);
        } else if let Some(at) = shards.iter().position(|shard| *shard == record.shard) {
            shards.remove(at);
        }
    }
    overlapping.sort();
    overlapping.dedup();
    overlapping
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: i128, shard: &str, event: &str) -> Record {
        Record {
            time,
            shard: shard.to_owned(),
            website: "ns/web".to_owned(),
            event: event.to_owned(),
            fenced: false,
        }
    }

    #[test]
    fn a_handover_after_the_end_is_no_overlap() {
        let records = [
            record(1, "a", "start"),
            record(2, "a", "end"),
            record(3, "b", "start"),
            record(4, "b", "end"),
        ];
        assert!(overlaps(&records).is_empty());
    }

    #[test]
    fn a_start_on_another_shard_before_the_end_is_an_overlap() {
        let records = [
            record(1, "a", "start"),
            record(3, "a", "end"),
            record(2, "b", "start"),
            record(4, "b", "end"),
        ];
        assert_eq!(overlaps(&records), ["ns/web"]);
    }

    #[test]
    fn the_log_holds_a_start_and_an_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let audit = Audit::open(&path, "a").unwrap();
        drop(audit.reconciling("ns/web".to_owned()));
        audit.reconciling("ns/web".to_owned()).fenced();
        let text = std::fs::read_to_string(&path).unwrap();
        let events: Vec<Record> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(
            events
                .iter()
                .map(|r| (r.event.as_str(), r.fenced))
                .collect::<Vec<_>>(),
            [
                ("start", false),
                ("end", false),
                ("start", false),
                ("end", true)
            ]
        );
        assert!(!text.lines().nth(1).unwrap().contains("fenced"), "{text}");
    }
}
