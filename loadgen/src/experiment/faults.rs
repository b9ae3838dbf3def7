//! The scenario's faults during the load (docs/experiments.md#faults): each at its offset
//! into the load, one after another, and recorded as it happened, so that what the run saw
//! can be read against them.

use std::time::Duration;

use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::Api;
use rand::seq::IndexedRandom as _;
use serde::Serialize;
use tokio::time::Instant;

use crate::{
    environment::Target,
    scenario::{Fault, FaultKind, PauseTarget, Signal},
};

/// How often the Lease of a shard stopped for a move is read until it is released.
const RELEASE_POLL: Duration = Duration::from_millis(50);

/// How long a shard stopped for a move gets to release its Lease: its graceful shutdown
/// (the harness kills it after 10 s) and a margin.
const RELEASE_PATIENCE: Duration = Duration::from_secs(15);

/// A fault as it was injected: what, to whom, when it started and when it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultRecord {
    /// The scenario's `kind`: `killSharderLeader`, `pause` or `stopApiServer`.
    pub kind: &'static str,
    /// Whom it hit: a sharder replica (`sharder-1`), a shard (`shard-2`) or `kube-apiserver`.
    pub target: String,
    /// When it began: the kill, the SIGSTOP, the API server's stop; for a kill during a move,
    /// when the shard was stopped.
    pub started: Timestamp,
    /// When it ended: the kill, the SIGCONT, the API server ready again.
    pub ended: Timestamp,
    /// What else the fault did, such as the shard stopped for a move and when its Lease was
    /// released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Injects `faults` at their offsets from `start`, one after another (a fault that is late
/// because the one before it took longer starts at once); returns the records of those
/// injected and the errors of those that failed.
pub async fn inject(
    target: &Target,
    faults: &[Fault],
    start: Instant,
) -> (Vec<FaultRecord>, Vec<String>) {
    let (mut records, mut errors) = (Vec::new(), Vec::new());
    for (i, fault) in faults.iter().enumerate() {
        tokio::time::sleep_until(start + fault.at).await;
        match one(target, &fault.kind).await {
            Ok(record) => records.push(record),
            Err(error) => errors.push(format!("faults[{i}] ({}): {error:#}", fault.kind.name())),
        }
    }
    (records, errors)
}

/// Injects one fault and returns its record.
async fn one(target: &Target, kind: &FaultKind) -> anyhow::Result<FaultRecord> {
    let record = |target: String, started, note| FaultRecord {
        kind: kind.name(),
        target,
        started,
        ended: Timestamp::now(),
        note,
    };
    match kind {
        FaultKind::KillSharderLeader { during_move: false } => {
            let started = Timestamp::now();
            let leader = target.kill_sharder_leader().await?;
            Ok(record(leader, started, None))
        }
        FaultKind::KillSharderLeader { during_move: true } => {
            let started = Timestamp::now();
            let (leader, note) = kill_leader_during_move(target).await?;
            Ok(record(leader, started, Some(note)))
        }
        FaultKind::Pause {
            target: whom,
            duration,
        } => {
            let name = match whom {
                PauseTarget::SharderLeader => target.sharder_leader().await?,
                PauseTarget::RandomShard => random_shard(target).await?,
                PauseTarget::Shard(name) => name.clone(),
            };
            let started = Timestamp::now();
            target.pause(&name, true).await?;
            tokio::time::sleep(*duration).await;
            target.pause(&name, false).await?;
            Ok(record(name, started, None))
        }
        FaultKind::StopApiServer { duration } => {
            let started = Timestamp::now();
            anyhow::ensure!(target.stop_api_server()?, "kube-apiserver was not running");
            tokio::time::sleep(*duration).await;
            target.start_api_server().await?;
            Ok(record("kube-apiserver".to_owned(), started, None))
        }
    }
}

/// A random running shard.
async fn random_shard(target: &Target) -> anyhow::Result<String> {
    target
        .shards()
        .await?
        .choose(&mut rand::rng())
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no shard runs"))
}

/// Stops a random shard gracefully with a replacement, as chaos does, and kills the sharder's
/// leader as soon as the shard's Lease is released: the sharder is then about to move, or
/// moving, the shard's objects to the others. Returns the leader and what happened.
async fn kill_leader_during_move(target: &Target) -> anyhow::Result<(String, String)> {
    let shard = random_shard(target).await?;
    let client = target.client()?;
    let leases = Api::<Lease>::namespaced(client, &target.controller().lease_namespace);
    let stopped = Timestamp::now();
    let stop = target.kill(&shard, Signal::Term, true);
    let kill = async {
        let released = released(&leases, &shard).await?;
        let leader = target.kill_sharder_leader().await?;
        anyhow::Ok((leader, released))
    };
    let (stop, kill) = tokio::join!(stop, kill);
    stop?;
    let (leader, released) = kill?;
    Ok((
        leader,
        format!(
            "during the move of {shard}'s objects: {shard} stopped (SIGTERM) at {stopped}, its \
             Lease released at {released}"
        ),
    ))
}

/// Waits until the Lease of `shard` is no longer held by it; returns when that was seen.
async fn released(leases: &Api<Lease>, shard: &str) -> anyhow::Result<Timestamp> {
    let deadline = Instant::now() + RELEASE_PATIENCE;
    loop {
        let lease = leases.get_opt(shard).await?;
        if !held_by(lease.as_ref(), shard) {
            return Ok(Timestamp::now());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{shard} did not release its Lease within {RELEASE_PATIENCE:?}"
        );
        tokio::time::sleep(RELEASE_POLL).await;
    }
}

/// Whether `lease` names `shard` as its holder.
fn held_by(lease: Option<&Lease>, shard: &str) -> bool {
    lease
        .and_then(|lease| lease.spec.as_ref())
        .and_then(|spec| spec.holder_identity.as_deref())
        == Some(shard)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;

    use super::*;

    fn lease(holder: Option<&str>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: holder.map(Into::into),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn a_lease_is_released_once_the_shard_no_longer_holds_it() {
        assert!(held_by(Some(&lease(Some("shard-1"))), "shard-1"));
        assert!(!held_by(Some(&lease(None)), "shard-1"));
        assert!(!held_by(Some(&lease(Some("sharder"))), "shard-1"));
        assert!(!held_by(None, "shard-1"));
    }

    #[test]
    fn a_record_names_what_whom_and_when() {
        let record = FaultRecord {
            kind: "pause",
            target: "shard-2".to_owned(),
            started: Timestamp::from_second(100).unwrap(),
            ended: Timestamp::from_second(125).unwrap(),
            note: None,
        };
        assert_eq!(
            serde_json::to_value(&record).unwrap(),
            serde_json::json!({
                "kind": "pause",
                "target": "shard-2",
                "started": "1970-01-01T00:01:40Z",
                "ended": "1970-01-01T00:02:05Z",
            })
        );
    }
}
