//! The ownership audit of a shard count (docs/experiments.md#ownership), once its settle time
//! is over: the observer's label and Lease events, the shards' audit logs read from the target
//! and the conflicts the sampler scraped.

use k8s_openapi::jiff::Timestamp;

use super::{chaos::Kill, faults::FaultRecord, progress::NOTES};
use crate::{
    environment::Target,
    measure::{
        audit::{self, DoubleReconciliation},
        conflicts::{Conflicts, Scrape},
        ownership::{Audited, Ownership, UNOWNED_GRACE},
        unowned::{self, UnownedSummary},
    },
};

/// The audit at `end` of what `target` ran: `events` from the tracker, `kills` (the end of each
/// killed shard's process), the `faults` injected (the pauses of shards) and the sampler's
/// conflict `scrapes`.
#[must_use]
pub fn audit(
    target: &Target,
    events: &[(Timestamp, unowned::Event)],
    (kills, faults): (&[Kill], &[FaultRecord]),
    scrapes: &[Scrape],
    end: Timestamp,
) -> Ownership {
    let intervals = unowned::intervals(events, end);
    Ownership {
        unowned: UnownedSummary::of(&intervals, UNOWNED_GRACE),
        double_reconciliation: double_reconciliation(target, (kills, faults), end),
        conflicts: Conflicts::over(scrapes),
    }
}

/// The shards' reconciliations from their audit logs, as active outside their pauses; not
/// measured without logs, or with one that cannot be read (noted, since `--check` then cannot
/// vouch for the run).
fn double_reconciliation(
    target: &Target,
    (kills, faults): (&[Kill], &[FaultRecord]),
    end: Timestamp,
) -> Audited {
    let logs = match target.audit_logs() {
        Ok(Ok(logs)) => logs,
        Ok(Err(reason)) => return Audited::NotMeasured { reason },
        Err(error) => return not_readable(&format!("{error:#}")),
    };
    let mut records = Vec::new();
    for (name, text) in &logs {
        match audit::parse(name, text) {
            Ok(read) => records.extend(read),
            Err(error) => return not_readable(&error.to_string()),
        }
    }
    let ends: Vec<(String, Timestamp)> = kills
        .iter()
        .map(|kill| (kill.shard.clone(), kill.at))
        .collect();
    let pauses: Vec<(String, Timestamp, Timestamp)> = faults
        .iter()
        .filter(|fault| fault.kind == "pause")
        .map(|fault| (fault.target.clone(), fault.started, fault.ended))
        .collect();
    Audited::Measured(DoubleReconciliation::of(&audit::active(
        audit::reconciliations(&records, &ends, end),
        &pauses,
    )))
}

fn not_readable(error: &str) -> Audited {
    NOTES.note(&format!("the audit logs were not read: {error}"));
    Audited::NotMeasured {
        reason: format!("an audit log could not be read: {error}"),
    }
}
