//! `sharder` and `faults`: how many sharder replicas run, and the faults injected during the
//! load (docs/experiments.md#faults), read and checked as the rest of the file is.

use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use super::rules::{self, Verdict};
use super::{duration_text, format_duration};

/// `sharder`: the sharder's replicas and its periodic resync, on the local target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sharder {
    /// `replicas`: 1 (the default) without leader election, or 2 that elect a leader, so
    /// that a fault of the leader is a failover to the other.
    pub replicas: u32,
    /// `syncPeriod`: the sharder's `controller.sharder.syncPeriod` (default 5 min,
    /// docs/contract.md#sharder-behaviour): how soon an object created while no webhook
    /// answered is assigned by the periodic resync.
    #[serde(serialize_with = "duration_text")]
    pub sync_period: Duration,
}

/// The sharder's default `controller.sharder.syncPeriod`.
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(5 * 60);

impl Default for Sharder {
    fn default() -> Self {
        Self {
            replicas: 1,
            sync_period: DEFAULT_SYNC_PERIOD,
        }
    }
}

/// The most sharder replicas: one leader and one standby show every failover.
const MAX_SHARDER_REPLICAS: u32 = 2;

/// One entry of `faults`: what happens, `at` into the load of each shard count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// `at`: the offset into the load at which it starts.
    pub at: Duration,
    /// `kind` and its fields.
    pub kind: FaultKind,
}

/// `faults[].kind`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// `killSharderLeader`: SIGKILL the sharder replica that holds the leader Lease.
    KillSharderLeader {
        /// `during: move`: first stop a random shard gracefully, with a replacement as chaos
        /// starts one, and kill the leader as soon as that shard's Lease is released, while
        /// the sharder moves its objects to the other shards.
        during_move: bool,
    },
    /// `pause`: SIGSTOP `target` for `duration`, then SIGCONT.
    Pause {
        /// `target`.
        target: PauseTarget,
        /// `duration`.
        duration: Duration,
    },
    /// `stopApiServer`: stop kube-apiserver for `duration`, then start it again (local target).
    StopApiServer {
        /// `duration`.
        duration: Duration,
    },
}

/// `faults[].target` of a pause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PauseTarget {
    /// `sharderLeader`: the replica that holds the sharder's leader Lease.
    SharderLeader,
    /// `shard`: a random running shard.
    RandomShard,
    /// Any other value: the shard of that name (`shard-1`).
    Shard(String),
}

impl FaultKind {
    /// The stable name of the kind, as the file writes it and the results record it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::KillSharderLeader { .. } => "killSharderLeader",
            Self::Pause { .. } => "pause",
            Self::StopApiServer { .. } => "stopApiServer",
        }
    }

    /// How long the fault lasts as scheduled: zero for a kill.
    #[must_use]
    pub fn duration(&self) -> Duration {
        match self {
            Self::KillSharderLeader { .. } => Duration::ZERO,
            Self::Pause { duration, .. } | Self::StopApiServer { duration } => *duration,
        }
    }
}

impl Fault {
    /// When it ends as scheduled, from the start of the load.
    #[must_use]
    pub fn end(&self) -> Duration {
        self.at + self.kind.duration()
    }
}

/// The file's shape of a [`Fault`].
impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct File<'a> {
            #[serde(serialize_with = "duration_text")]
            at: Duration,
            kind: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            during: Option<During>,
            #[serde(skip_serializing_if = "Option::is_none")]
            target: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            duration: Option<String>,
        }
        let (during, target) = match &self.kind {
            FaultKind::KillSharderLeader { during_move } => {
                (during_move.then_some(During::Move), None)
            }
            FaultKind::Pause { target, .. } => (
                None,
                Some(match target {
                    PauseTarget::SharderLeader => SHARDER_LEADER,
                    PauseTarget::RandomShard => RANDOM_SHARD,
                    PauseTarget::Shard(name) => name.as_str(),
                }),
            ),
            FaultKind::StopApiServer { .. } => (None, None),
        };
        File {
            at: self.at,
            kind: self.kind.name(),
            during,
            target,
            duration: (!self.kind.duration().is_zero())
                .then(|| format_duration(self.kind.duration())),
        }
        .serialize(serializer)
    }
}

/// `target: sharderLeader`.
const SHARDER_LEADER: &str = "sharderLeader";
/// `target: shard`.
const RANDOM_SHARD: &str = "shard";

/// `sharder` as written.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawSharder {
    replicas: Option<i64>,
    sync_period: Option<String>,
}

/// `faults[]` as written; which fields apply depends on `kind`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawFault {
    at: Option<String>,
    kind: Option<KindName>,
    during: Option<During>,
    target: Option<String>,
    duration: Option<String>,
}

/// `faults[].kind` as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
enum KindName {
    #[serde(rename = "killSharderLeader")]
    KillSharderLeader,
    #[serde(rename = "pause")]
    Pause,
    #[serde(rename = "stopApiServer")]
    StopApiServer,
}

/// `faults[].during`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
enum During {
    /// While the sharder moves objects.
    #[serde(rename = "move")]
    Move,
}

/// A field of `sharder` or `faults` with what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Invalid {
    /// The field path, such as `faults[2].duration`.
    pub(super) field: String,
    /// The problem, with the value as written.
    pub(super) problem: String,
}

/// A verdict on `field`.
fn at<T>(field: String, verdict: Verdict<T>) -> Result<T, Invalid> {
    verdict.map_err(|problem| Invalid { field, problem })
}

impl RawSharder {
    /// The replicas, 1 or 2, and the sync period, above 0.
    pub(super) fn validate(self) -> Result<Sharder, Invalid> {
        let replicas = self
            .replicas
            .map_or(Ok(1), |replicas| match u32::try_from(replicas) {
                Ok(replicas) if (1..=MAX_SHARDER_REPLICAS).contains(&replicas) => Ok(replicas),
                _ => Err(format!(
                    "must be 1 or {MAX_SHARDER_REPLICAS}, got {replicas}"
                )),
            });
        let sync_period = self.sync_period.map_or(Ok(DEFAULT_SYNC_PERIOD), |text| {
            rules::duration(&text).and_then(rules::positive_duration)
        });
        Ok(Sharder {
            replicas: at("sharder.replicas".to_owned(), replicas)?,
            sync_period: at("sharder.syncPeriod".to_owned(), sync_period)?,
        })
    }
}

/// What the faults are checked against: the load's duration, the sharder and the smallest
/// shard count of the sweep.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bounds {
    pub(super) duration: Duration,
    pub(super) sharder: Sharder,
    pub(super) smallest_shards: u32,
}

/// `faults`: each fault valid, in order, one ending before the next starts, so that a fault
/// never meets another one's effects half-way (a leader cannot be found while the API server
/// is down).
pub(super) fn validate(raws: Vec<RawFault>, bounds: Bounds) -> Result<Vec<Fault>, Invalid> {
    let mut faults: Vec<Fault> = Vec::with_capacity(raws.len());
    for (i, raw) in raws.into_iter().enumerate() {
        let fault = validate_one(raw, &format!("faults[{i}]"), bounds)?;
        if let Some(previous) = faults.last() {
            at(
                format!("faults[{i}].at"),
                after_previous(fault.at, previous.end(), i - 1),
            )?;
        }
        faults.push(fault);
    }
    Ok(faults)
}

fn validate_one(raw: RawFault, path: &str, bounds: Bounds) -> Result<Fault, Invalid> {
    let field = |name: &str| format!("{path}.{name}");
    let at_ = at(
        field("at"),
        rules::required(raw.at)
            .and_then(|text| rules::duration(&text))
            .and_then(|at| starts_within(at, bounds.duration)),
    )?;
    let kind = at(field("kind"), rules::required(raw.kind))?;
    let not_with = |name: &str, set: bool| {
        at(
            field(name),
            if set {
                Err(format!("is not allowed with kind {}", kind_name(kind)))
            } else {
                Ok(())
            },
        )
    };
    let duration = || {
        at(
            field("duration"),
            rules::required(raw.duration.clone())
                .and_then(|text| rules::duration(&text))
                .and_then(rules::positive_duration)
                .and_then(|duration| ends_within(at_, duration, bounds.duration)),
        )
    };
    let kind = match kind {
        KindName::KillSharderLeader => {
            not_with("target", raw.target.is_some())?;
            not_with("duration", raw.duration.is_some())?;
            at(field("kind"), needs_a_standby(kind, bounds.sharder))?;
            let during_move = raw.during == Some(During::Move);
            if during_move {
                at(field("during"), move_needs_shards(bounds.smallest_shards))?;
            }
            FaultKind::KillSharderLeader { during_move }
        }
        KindName::Pause => {
            not_with("during", raw.during.is_some())?;
            let target = at(
                field("target"),
                rules::required(raw.target.clone()).and_then(pause_target),
            )?;
            if target == PauseTarget::SharderLeader {
                at(field("target"), needs_a_standby(kind, bounds.sharder))?;
            }
            FaultKind::Pause {
                target,
                duration: duration()?,
            }
        }
        KindName::StopApiServer => {
            not_with("target", raw.target.is_some())?;
            not_with("during", raw.during.is_some())?;
            FaultKind::StopApiServer {
                duration: duration()?,
            }
        }
    };
    Ok(Fault { at: at_, kind })
}

fn kind_name(kind: KindName) -> &'static str {
    match kind {
        KindName::KillSharderLeader => "killSharderLeader",
        KindName::Pause => "pause",
        KindName::StopApiServer => "stopApiServer",
    }
}

/// A fault starts before the load ends, or it would not happen under load.
fn starts_within(at: Duration, duration: Duration) -> Verdict<Duration> {
    if at < duration {
        Ok(at)
    } else {
        Err(format!(
            "must be before the end of the load (duration {}), got {}",
            format_duration(duration),
            format_duration(at)
        ))
    }
}

/// A fault ends within the load, so that the settle time measures the recovery from it.
fn ends_within(at: Duration, length: Duration, duration: Duration) -> Verdict<Duration> {
    if at + length <= duration {
        Ok(length)
    } else {
        Err(format!(
            "must end within the load: at ({}) + {} is past duration ({})",
            format_duration(at),
            format_duration(length),
            format_duration(duration)
        ))
    }
}

/// A fault starts when the one before it (`faults[previous]`) has ended.
fn after_previous(at: Duration, previous_end: Duration, previous: usize) -> Verdict<Duration> {
    if at >= previous_end {
        Ok(at)
    } else {
        Err(format!(
            "must not be before faults[{previous}] ends ({}), got {}: faults run one after \
             another",
            format_duration(previous_end),
            format_duration(at)
        ))
    }
}

/// A fault of the leader needs a second replica to take over, and a leader Lease to find
/// the leader by.
fn needs_a_standby(kind: KindName, sharder: Sharder) -> Verdict<()> {
    if sharder.replicas >= 2 {
        Ok(())
    } else {
        Err(format!(
            "{} of the sharder's leader needs sharder.replicas: 2 (a leader Lease, and a \
             replica to take over), got {}",
            kind_name(kind),
            sharder.replicas
        ))
    }
}

/// A move needs a shard to stop and another to take its objects.
fn move_needs_shards(smallest: u32) -> Verdict<()> {
    if smallest >= 2 {
        Ok(())
    } else {
        Err(format!(
            "move needs at least 2 shards, so that a stopped shard's objects move to another; \
             shards[0] is {smallest}"
        ))
    }
}

/// `sharderLeader`, `shard`, or a shard's name.
fn pause_target(text: String) -> Verdict<PauseTarget> {
    match text.as_str() {
        SHARDER_LEADER => Ok(PauseTarget::SharderLeader),
        RANDOM_SHARD => Ok(PauseTarget::RandomShard),
        _ => rules::object_name(text, true)
            .map(PauseTarget::Shard)
            .map_err(|problem| {
                format!("must be {SHARDER_LEADER}, {RANDOM_SHARD} or a shard's name: {problem}")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    const BOUNDS: Bounds = Bounds {
        duration: Duration::from_secs(180),
        sharder: Sharder {
            replicas: 2,
            sync_period: DEFAULT_SYNC_PERIOD,
        },
        smallest_shards: 3,
    };

    fn raw(text: &str) -> Vec<RawFault> {
        serde_saphyr::from_str(text).unwrap()
    }

    fn problem(text: &str, bounds: Bounds) -> String {
        let Invalid { field, problem } = validate(raw(text), bounds).unwrap_err();
        format!("{field}: {problem}")
    }

    #[test]
    fn every_kind_reads_with_its_fields() {
        let faults = validate(
            raw("- {at: 20s, kind: killSharderLeader, during: move}\n\
                 - {at: 40s, kind: pause, target: sharderLeader, duration: 20s}\n\
                 - {at: 60s, kind: pause, target: shard, duration: 25s}\n\
                 - {at: 90s, kind: pause, target: shard-1, duration: 5s}\n\
                 - {at: 100s, kind: stopApiServer, duration: 20s}\n\
                 - {at: 150s, kind: killSharderLeader}\n"),
            BOUNDS,
        )
        .unwrap();
        let kinds: Vec<_> = faults.iter().map(|f| (f.at, f.kind.clone())).collect();
        assert_eq!(
            kinds,
            [
                (secs(20), FaultKind::KillSharderLeader { during_move: true }),
                (
                    secs(40),
                    FaultKind::Pause {
                        target: PauseTarget::SharderLeader,
                        duration: secs(20)
                    }
                ),
                (
                    secs(60),
                    FaultKind::Pause {
                        target: PauseTarget::RandomShard,
                        duration: secs(25)
                    }
                ),
                (
                    secs(90),
                    FaultKind::Pause {
                        target: PauseTarget::Shard("shard-1".to_owned()),
                        duration: secs(5)
                    }
                ),
                (secs(100), FaultKind::StopApiServer { duration: secs(20) }),
                (
                    secs(150),
                    FaultKind::KillSharderLeader { during_move: false }
                ),
            ]
        );
        assert_eq!(faults[1].end(), secs(60));
        assert_eq!(faults[0].end(), secs(20));
    }

    #[test]
    fn a_fault_writes_back_as_it_was_read() {
        let text = "- {at: 20s, kind: killSharderLeader, during: move}\n\
                    - {at: 40s, kind: pause, target: shard-1, duration: 20s}\n\
                    - {at: 100s, kind: stopApiServer, duration: 20s}\n";
        let faults = validate(raw(text), BOUNDS).unwrap();
        let json = serde_json::to_value(&faults).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"at": "20s", "kind": "killSharderLeader", "during": "move"},
                {"at": "40s", "kind": "pause", "target": "shard-1", "duration": "20s"},
                {"at": "100s", "kind": "stopApiServer", "duration": "20s"},
            ])
        );
        let read_back: Vec<RawFault> = serde_json::from_value(json).unwrap();
        assert_eq!(validate(read_back, BOUNDS).unwrap(), faults);
    }

    #[test]
    fn a_bad_fault_is_named_by_its_index_and_field() {
        let cases = [
            (
                "- {kind: stopApiServer, duration: 5s}",
                "faults[0].at: is required",
            ),
            ("- {at: 5s}", "faults[0].kind: is required"),
            (
                "- {at: 3m, kind: killSharderLeader}",
                "faults[0].at: must be before the end of the load (duration 3m), got 3m",
            ),
            (
                "- {at: 10s, kind: stopApiServer}",
                "faults[0].duration: is required",
            ),
            (
                "- {at: 10s, kind: stopApiServer, duration: 0s}",
                "faults[0].duration: must be greater than 0s",
            ),
            (
                "- {at: 10s, kind: stopApiServer, duration: 20s}\n\
                 - {at: 170s, kind: pause, target: shard, duration: 20s}",
                "faults[1].duration: must end within the load: at (170s) + 20s is past \
                 duration (3m)",
            ),
            (
                "- {at: 10s, kind: stopApiServer, duration: 20s, target: shard}",
                "faults[0].target: is not allowed with kind stopApiServer",
            ),
            (
                "- {at: 10s, kind: killSharderLeader, duration: 20s}",
                "faults[0].duration: is not allowed with kind killSharderLeader",
            ),
            (
                "- {at: 10s, kind: pause, during: move, target: shard, duration: 5s}",
                "faults[0].during: is not allowed with kind pause",
            ),
            (
                "- {at: 10s, kind: pause, duration: 5s}",
                "faults[0].target: is required",
            ),
            (
                "- {at: 10s, kind: pause, target: Shard_1, duration: 5s}",
                "faults[0].target: must be sharderLeader, shard or a shard's name: must match \
                 [a-z0-9]([-a-z0-9]*[a-z0-9])? with at most 63 characters, got \"Shard_1\"",
            ),
            (
                "- {at: 50s, kind: stopApiServer, duration: 20s}\n\
                 - {at: 60s, kind: killSharderLeader}",
                "faults[1].at: must not be before faults[0] ends (70s), got 1m: faults run \
                 one after another",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(problem(text, BOUNDS), expected, "{text}");
        }
    }

    #[test]
    fn faults_of_the_leader_need_a_second_replica_and_a_move_two_shards() {
        let one_replica = Bounds {
            sharder: Sharder::default(),
            ..BOUNDS
        };
        assert_eq!(
            problem("- {at: 10s, kind: killSharderLeader}", one_replica),
            "faults[0].kind: killSharderLeader of the sharder's leader needs sharder.replicas: \
             2 (a leader Lease, and a replica to take over), got 1"
        );
        assert_eq!(
            problem(
                "- {at: 10s, kind: pause, target: sharderLeader, duration: 5s}",
                one_replica
            ),
            "faults[0].target: pause of the sharder's leader needs sharder.replicas: 2 (a \
             leader Lease, and a replica to take over), got 1"
        );
        assert!(
            validate(
                raw("- {at: 10s, kind: pause, target: shard, duration: 5s}"),
                one_replica
            )
            .is_ok()
        );
        let one_shard = Bounds {
            smallest_shards: 1,
            ..BOUNDS
        };
        assert_eq!(
            problem(
                "- {at: 10s, kind: killSharderLeader, during: move}",
                one_shard
            ),
            "faults[0].during: move needs at least 2 shards, so that a stopped shard's objects \
             move to another; shards[0] is 1"
        );
    }

    #[test]
    fn the_sharder_has_one_replica_or_two_and_resyncs_every_5_minutes_by_default() {
        let sharder = |text: &str| {
            serde_saphyr::from_str::<RawSharder>(text)
                .unwrap()
                .validate()
        };
        let replicas = |text: &str| sharder(text).map(|sharder| sharder.replicas);
        assert_eq!(replicas("{}"), Ok(1));
        assert_eq!(replicas("{replicas: 2}"), Ok(2));
        for bad in [0, 3, -1] {
            assert_eq!(
                replicas(&format!("{{replicas: {bad}}}")),
                Err(Invalid {
                    field: "sharder.replicas".to_owned(),
                    problem: format!("must be 1 or 2, got {bad}"),
                })
            );
        }
        assert_eq!(Sharder::default().replicas, 1);
        assert_eq!(Sharder::default().sync_period, secs(300));
        assert_eq!(sharder("{syncPeriod: 20s}").unwrap().sync_period, secs(20));
        assert_eq!(
            sharder("{syncPeriod: 0s}"),
            Err(Invalid {
                field: "sharder.syncPeriod".to_owned(),
                problem: "must be greater than 0s".to_owned(),
            })
        );
    }
}
