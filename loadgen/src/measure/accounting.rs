//! Every operation of a run accounted for (docs/experiments.md#reconciliation-latency): each
//! scheduled write ends in exactly one class, and the classes add up to the schedule.

use std::collections::BTreeMap;

use serde::Serialize;

/// Why the classes of a run do not add up to its schedule: a bug of loadgen's bookkeeping,
/// since every scheduled operation is meant to end in exactly one class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operations}: {accounted} accounted for, {scheduled} scheduled")]
pub struct Unaccounted {
    /// `writes` or `deletes`.
    pub operations: &'static str,
    /// The operations the schedule made due.
    pub scheduled: u64,
    /// The operations in a class.
    pub accounted: u64,
}

/// The creates and mutations of a run, each awaiting its reconciliation, by how they ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Writes {
    /// Creates and mutations the schedule made due during the load; a Website's mutations are
    /// scheduled once its create succeeded.
    pub scheduled: u64,
    /// Seen reconciled: their latency is measured.
    pub reconciled: u64,
    /// Not reconciled when the settle time ended: censored at their time so far.
    pub pending: u64,
    /// Their Website was deleted before they were reconciled: censored at the delete.
    pub abandoned: u64,
    /// The API call failed, by reason (`409 AlreadyExists`, `timeout`, `connection`).
    pub failed: BTreeMap<String, u64>,
    /// Due, but the driver had not issued them when the settle time ended: it fell behind.
    pub not_issued: u64,
    /// Mutations due after a delete had removed their Website: nothing to write.
    pub skipped: u64,
}

impl Writes {
    /// The failed writes, all reasons together.
    #[must_use]
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// The writes whose latency is censored (pending and abandoned): recorded with their time
    /// so far.
    #[must_use]
    pub fn censored(&self) -> u64 {
        self.pending + self.abandoned
    }

    /// Each class and its writes, in the order of the report.
    #[must_use]
    pub fn classes(&self) -> [(&'static str, u64); 6] {
        [
            ("reconciled", self.reconciled),
            ("pending at the end", self.pending),
            ("abandoned by a delete", self.abandoned),
            ("failed", self.failed_total()),
            ("not issued", self.not_issued),
            ("skipped", self.skipped),
        ]
    }

    /// The writes in a class.
    #[must_use]
    pub fn accounted(&self) -> u64 {
        self.classes().iter().map(|(_, writes)| writes).sum()
    }
}

/// The deletes of a run, which are not awaited, by how they ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Deletes {
    /// Deletes the schedule made due during the load.
    pub scheduled: u64,
    /// The API server accepted them.
    pub deleted: u64,
    /// The API call failed, by reason.
    pub failed: BTreeMap<String, u64>,
    /// No Website was left to delete.
    pub skipped: u64,
    /// Due, but not issued when the settle time ended.
    pub not_issued: u64,
}

impl Deletes {
    /// The deletes in a class.
    #[must_use]
    pub fn accounted(&self) -> u64 {
        self.deleted + self.failed.values().sum::<u64>() + self.skipped + self.not_issued
    }
}

/// The writes and deletes of one shard count's run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Accounting {
    /// Creates and mutations.
    pub writes: Writes,
    /// Deletes.
    pub deletes: Deletes,
}

impl Accounting {
    /// Whether the classes add up to the schedule.
    ///
    /// # Errors
    ///
    /// [`Unaccounted`] for the first kind of operation whose classes do not.
    pub fn check(&self) -> Result<(), Unaccounted> {
        let adds_up = |operations, scheduled, accounted| {
            if scheduled == accounted {
                Ok(())
            } else {
                Err(Unaccounted {
                    operations,
                    scheduled,
                    accounted,
                })
            }
        };
        adds_up("writes", self.writes.scheduled, self.writes.accounted())?;
        adds_up("deletes", self.deletes.scheduled, self.deletes.accounted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classes_of_writes_and_deletes_add_up_to_the_schedule() {
        let mut accounting = Accounting {
            writes: Writes {
                scheduled: 20,
                reconciled: 10,
                pending: 3,
                abandoned: 2,
                failed: BTreeMap::from([("timeout".to_owned(), 1), ("409 Conflict".to_owned(), 1)]),
                not_issued: 2,
                skipped: 1,
            },
            deletes: Deletes {
                scheduled: 5,
                deleted: 3,
                failed: BTreeMap::from([("connection".to_owned(), 1)]),
                skipped: 1,
                not_issued: 0,
            },
        };
        assert_eq!(accounting.writes.censored(), 5);
        assert_eq!(accounting.writes.failed_total(), 2);
        assert_eq!(accounting.check(), Ok(()));
        accounting.writes.scheduled = 21;
        assert_eq!(
            accounting.check(),
            Err(Unaccounted {
                operations: "writes",
                scheduled: 21,
                accounted: 20
            })
        );
        accounting.writes.scheduled = 20;
        accounting.deletes.not_issued = 1;
        assert_eq!(
            accounting.check().unwrap_err().to_string(),
            "deletes: 6 accounted for, 5 scheduled"
        );
    }
}
