//! `loadgen ring`: what an assignment strategy ([`kube_sharding::strategy`]) does with a set of
//! objects, computed offline: the sharder's hash ring ([`kube_sharding::consistent_hash`],
//! docs/contract.md#hash-ring) or bounded-load, one strategy or all side by side
//! (docs/experiments.md#ring).
//!
//! The statistics are pure functions; [`run`] reads the input and prints them.

use std::{
    collections::{HashMap, HashSet},
    fmt,
    io::{self, Write},
    path::{Path, PathBuf},
    str::FromStr,
};

use clap::{ArgGroup, Args, ValueEnum};
use kube_sharding::{
    consistent_hash::Ring,
    strategy::{Assignment, Strategy},
};
use serde::Serialize;

use crate::{
    measure::{as_f64, ratio},
    report::TextTable,
    units::format_optional,
};

/// Arguments of `loadgen ring`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("shard_set").required(true).args(["shards", "shard_count"])))]
#[command(group(ArgGroup::new("object_set").required(true).args(["keys_file", "objects"])))]
pub struct RingArgs {
    /// Shard names, comma-separated.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub shards: Vec<String>,

    /// Generated shard names: shard-0, shard-1, ... A range `A..B` (both included) repeats the
    /// analysis for each shard count from A to B.
    #[arg(allow_negative_numbers = true, long, value_name = "N|A..B")]
    pub shard_count: Option<ShardCounts>,

    /// Hash keys (`group/Kind/namespace/name`), one per line; blank lines are ignored.
    #[arg(long, value_name = "PATH")]
    pub keys_file: Option<PathBuf>,

    /// Generated Website keys, deterministic:
    /// `webhosting.timebertt.dev/Website/project-<i%20>/experiment-<i>`.
    #[arg(allow_negative_numbers = true, long, value_name = "N")]
    pub objects: Option<usize>,

    /// The assignment strategy: hash-ring (the sharder's default) or bounded-load.
    #[arg(long, value_name = "NAME", default_value_t = Strategy::HashRing, value_parser = parse_strategy)]
    pub strategy: Strategy,

    /// Every strategy side by side, on the same keys, shards and events.
    #[arg(long, conflicts_with = "strategy")]
    pub compare: bool,

    /// The shard that joins in the movement analysis.
    #[arg(long, value_name = "NAME", default_value = "shard-new")]
    pub add: String,

    /// The shard that leaves in the movement analysis [default: each shard in turn].
    #[arg(long, value_name = "NAME")]
    pub remove: Option<String>,

    /// Joins (`+name`) and leaves (`-name`), comma-separated, applied one after the other
    /// instead of the independent join of --add and leaves of --remove.
    #[arg(
        long,
        value_name = "EVENTS",
        value_delimiter = ',',
        allow_hyphen_values = true,
        conflicts_with_all = ["add", "remove"]
    )]
    pub events: Vec<Change>,

    /// Output format: table and json report the distribution and movement, csv prints the
    /// assignment of each key.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `--strategy`: a name of [`Strategy`], the error listing the accepted ones.
fn parse_strategy(value: &str) -> Result<Strategy, String> {
    value.parse().map_err(|_| {
        let names: Vec<&str> = Strategy::ALL.iter().map(|s| s.name()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

/// Output formats of `loadgen ring`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable report.
    Table,
    /// `key,shard` per key, in input order.
    Csv,
    /// The report as JSON.
    Json,
}

/// The shard counts of `--shard-count`: one, or each of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardCounts {
    /// The first count.
    pub from: usize,
    /// The last count, included.
    pub to: usize,
}

impl FromStr for ShardCounts {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let number = |text: &str| {
            text.trim().parse::<usize>().map_err(|_| {
                format!("expected a number of shards N or a range A..B, got {value:?}")
            })
        };
        let (from, to) = value.split_once("..").unwrap_or((value, value));
        let (from, to) = (number(from)?, number(to)?);
        if from > to {
            return Err(format!(
                "the range {value:?} is empty: {from} is above {to}"
            ));
        }
        Ok(Self { from, to })
    }
}

/// Why `loadgen ring` cannot answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither a shard name nor a positive shard count.
    #[error("no shards: pass --shards with at least one name or --shard-count of at least 1")]
    NoShards,
    /// Both `--shards` and `--shard-count`.
    #[error("--shards and --shard-count cannot be used together")]
    ConflictingShards,
    /// An empty name in `--shards`, e.g. `a,,b`.
    #[error("empty shard name in --shards {0:?}")]
    EmptyShardName(String),
    /// A name given twice in `--shards`.
    #[error("shard {0:?} is given twice in --shards")]
    DuplicateShard(String),
    /// Neither `--keys-file` nor `--objects`, or both.
    #[error("pass exactly one of --keys-file and --objects")]
    KeySource,
    /// The keys file cannot be read.
    #[error("cannot read the keys file {}", path.display())]
    ReadKeys {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A key given twice in `--keys-file`: one object to bounded-load, which places each once.
    #[error("key {0:?} is given twice in --keys-file: bounded-load places each object once")]
    DuplicateKey(String),
    /// `--add` names a shard that is already in the ring.
    #[error("--add {0:?}: the shard is already in the ring")]
    AddExisting(String),
    /// `--remove` names a shard that is not in the ring.
    #[error("--remove {0:?}: no such shard in the ring")]
    RemoveUnknown(String),
    /// `--remove` names the only shard: nothing would be left to move objects to.
    #[error("--remove {0:?}: cannot remove the only shard")]
    RemoveOnly(String),
    /// An event of `--events` that cannot happen to the shards it meets.
    #[error("--events {change} (event {position}) on {shards} shards: {reason}")]
    InvalidEvent {
        /// The event as given.
        change: Change,
        /// Its place in the list, from 1.
        position: usize,
        /// The shards before it.
        shards: usize,
        /// Why it cannot happen.
        reason: Refusal,
    },
    /// `--format csv` with a range of shard counts.
    #[error("--format csv prints one assignment: give --shard-count one number, not a range")]
    CsvSweep,
    /// Writing the output failed.
    #[error("cannot write the output")]
    Write(#[from] io::Error),
    /// Writing the CSV output failed.
    #[error("cannot write the CSV output")]
    Csv(#[from] csv::Error),
    /// Writing the JSON output failed.
    #[error("cannot write the JSON output")]
    Json(#[from] serde_json::Error),
}

/// Reads the shards and keys that `args` name, and writes the assignment (csv) or the report
/// (table, json) to `out`: one strategy's report on one set of shards, or, with `--compare` or
/// a range of shard counts, a comparison.
pub fn run(args: &RingArgs, out: &mut impl Write) -> Result<(), Error> {
    let shard_sets = shard_sets(&args.shards, args.shard_count)?;
    let keys = match (&args.keys_file, args.objects) {
        (Some(path), None) => read_keys(path)?,
        (None, Some(n)) => generated_keys(n),
        _ => return Err(Error::KeySource),
    };
    let strategies: &[Strategy] = if args.compare {
        &Strategy::ALL
    } else {
        std::slice::from_ref(&args.strategy)
    };
    if args.format == Format::Csv {
        let [shards] = shard_sets.as_slice() else {
            return Err(Error::CsvSweep);
        };
        let placements = strategies
            .iter()
            .map(|&strategy| Placement::new(strategy, shards, &keys))
            .collect::<Result<Vec<_>, _>>()?;
        return write_csv(out, &keys, &placements);
    }
    let mut reports = Vec::new();
    for shards in &shard_sets {
        let plan = plan(shards, &args.add, args.remove.as_deref(), &args.events)?;
        for &strategy in strategies {
            reports.push(analyse(strategy, shards, &keys, &plan)?);
        }
    }
    let comparison = args.compare || shard_sets.len() > 1;
    match (args.format, comparison) {
        (Format::Json, false) => serde_json::to_writer_pretty(&mut *out, &reports[0])?,
        (Format::Json, true) => serde_json::to_writer_pretty(
            &mut *out,
            &Comparison {
                objects: keys.len(),
                reports,
            },
        )?,
        (Format::Table | Format::Csv, false) => return Ok(write_table(out, &reports[0])?),
        (Format::Table | Format::Csv, true) => return Ok(write_comparison(out, &reports)?),
    }
    writeln!(out)?;
    Ok(())
}

/// The shard names: the given ones, or `shard-0`..`shard-<count-1>`.
pub fn shard_names(names: &[String], count: Option<usize>) -> Result<Vec<String>, Error> {
    match (names.is_empty(), count) {
        (false, Some(_)) => Err(Error::ConflictingShards),
        (true, None | Some(0)) => Err(Error::NoShards),
        (true, Some(n)) => Ok((0..n).map(|i| format!("shard-{i}")).collect()),
        (false, None) => {
            if names.iter().all(String::is_empty) {
                return Err(Error::NoShards);
            }
            if names.iter().any(String::is_empty) {
                return Err(Error::EmptyShardName(names.join(",")));
            }
            for (i, name) in names.iter().enumerate() {
                if names[..i].contains(name) {
                    return Err(Error::DuplicateShard(name.clone()));
                }
            }
            Ok(names.to_vec())
        }
    }
}

/// The shard sets to analyse: the given names, or generated names for each shard count.
pub fn shard_sets(
    names: &[String],
    counts: Option<ShardCounts>,
) -> Result<Vec<Vec<String>>, Error> {
    match counts {
        Some(counts) if names.is_empty() => (counts.from..=counts.to)
            .map(|n| shard_names(names, Some(n)))
            .collect(),
        _ => Ok(vec![shard_names(names, counts.map(|c| c.from))?]),
    }
}

/// `n` Website keys spread over 20 projects; the same `n` always gives the same keys.
#[must_use]
pub fn generated_keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "webhosting.timebertt.dev/Website/project-{:02}/experiment-{i}",
                i % 20
            )
        })
        .collect()
}

/// The keys in a keys file's text: one per line, blank lines ignored.
#[must_use]
pub fn parse_keys(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn read_keys(path: &Path) -> Result<Vec<String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadKeys {
        path: path.to_owned(),
        source,
    })?;
    Ok(parse_keys(&text))
}

/// The shard of each key, in order; `""` for every key on an empty ring.
#[must_use]
pub fn assign<'r>(ring: &'r Ring, keys: &[String]) -> Vec<&'r str> {
    keys.iter()
        .map(|key| ring.hash(key).unwrap_or_default())
        .collect()
}

/// The number of objects one shard has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardCount {
    /// The shard.
    pub shard: String,
    /// Its objects.
    pub objects: usize,
}

/// How unevenly objects are spread over shards. The ratios are `None` without objects.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Skew {
    /// Mean objects per shard.
    pub mean: f64,
    /// The largest shard's objects over the mean: 1 is perfectly even.
    pub max_over_mean: Option<f64>,
    /// Population standard deviation over the mean: 0 is perfectly even.
    pub coefficient_of_variation: Option<f64>,
    /// The fewest objects of a shard.
    pub min: usize,
    /// The most objects of a shard.
    pub max: usize,
    /// The smallest shard's objects over the mean: 1 is perfectly even, 0 an idle shard.
    pub min_over_mean: Option<f64>,
}

/// The skew of a distribution of objects over shards (one count per shard).
#[must_use]
pub fn skew(counts: &[usize]) -> Skew {
    let min = counts.iter().copied().min().unwrap_or(0);
    let max = counts.iter().copied().max().unwrap_or(0);
    let mean = if counts.is_empty() {
        0.0
    } else {
        counts.iter().map(|&c| as_f64(c as u64)).sum::<f64>() / as_f64(counts.len() as u64)
    };
    if mean == 0.0 {
        return Skew {
            mean,
            max_over_mean: None,
            coefficient_of_variation: None,
            min,
            max,
            min_over_mean: None,
        };
    }
    let variance = counts
        .iter()
        .map(|&c| (as_f64(c as u64) - mean).powi(2))
        .sum::<f64>()
        / as_f64(counts.len() as u64);
    Skew {
        mean,
        max_over_mean: Some(as_f64(max as u64) / mean),
        coefficient_of_variation: Some(variance.sqrt() / mean),
        min,
        max,
        min_over_mean: Some(as_f64(min as u64) / mean),
    }
}

/// Objects per shard, in the order of `shards`.
#[must_use]
pub fn counts(shards: &[String], assignment: &[&str]) -> Vec<ShardCount> {
    let mut by_shard: HashMap<&str, usize> = HashMap::with_capacity(shards.len());
    for shard in assignment {
        *by_shard.entry(shard).or_default() += 1;
    }
    shards
        .iter()
        .map(|shard| ShardCount {
            shard: shard.clone(),
            objects: by_shard.get(shard.as_str()).copied().unwrap_or(0),
        })
        .collect()
}

/// Whether a shard joins or leaves the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The shard is added.
    Join,
    /// The shard is removed.
    Leave,
}

/// A shard joining or leaving: `+name` or `-name` in `--events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Join or leave.
    pub event: Event,
    /// The shard.
    pub shard: String,
}

impl Change {
    /// `shard` joins.
    #[must_use]
    pub fn join(shard: &str) -> Self {
        Self {
            event: Event::Join,
            shard: shard.to_owned(),
        }
    }

    /// `shard` leaves.
    #[must_use]
    pub fn leave(shard: &str) -> Self {
        Self {
            event: Event::Leave,
            shard: shard.to_owned(),
        }
    }

    /// Whether the change can happen to `shards`, and the shards after it.
    pub fn apply(&self, shards: &[String]) -> Result<Vec<String>, Refusal> {
        let present = shards.contains(&self.shard);
        match self.event {
            Event::Join if present => Err(Refusal::AlreadyIn),
            Event::Join => Ok(shards.iter().cloned().chain([self.shard.clone()]).collect()),
            Event::Leave if !present => Err(Refusal::Unknown),
            Event::Leave if shards.len() == 1 => Err(Refusal::Only),
            Event::Leave => Ok(shards
                .iter()
                .filter(|&shard| *shard != self.shard)
                .cloned()
                .collect()),
        }
    }
}

impl FromStr for Change {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let (event, shard) = match value.split_at_checked(1) {
            Some(("+", shard)) => (Event::Join, shard),
            Some(("-", shard)) => (Event::Leave, shard),
            _ => {
                return Err(format!(
                    "{value:?}: expected +<shard> (a join) or -<shard> (a leave)"
                ));
            }
        };
        if shard.is_empty() {
            return Err(format!("{value:?}: the shard name is empty"));
        }
        Ok(Self {
            event,
            shard: shard.to_owned(),
        })
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.event {
            Event::Join => '+',
            Event::Leave => '-',
        };
        write!(f, "{sign}{}", self.shard)
    }
}

/// Why a change cannot happen to a set of shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A join of a shard that is already there.
    #[error("the shard is already in the ring")]
    AlreadyIn,
    /// A leave of a shard that is not there.
    #[error("no such shard in the ring")]
    Unknown,
    /// A leave of the only shard: nothing would be left to move objects to.
    #[error("cannot remove the only shard")]
    Only,
}

/// The membership changes to analyse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Each change on its own, from the initial assignment (`--add`, `--remove`).
    Each(Vec<Change>),
    /// The changes one after the other (`--events`).
    Sequence(Vec<Change>),
}

impl Plan {
    /// The changes.
    #[must_use]
    pub fn changes(&self) -> &[Change] {
        match self {
            Self::Each(changes) | Self::Sequence(changes) => changes,
        }
    }
}

/// The changes for `shards`: `events` in order if any, else the join of `add` and the leave of
/// `remove` (or of each shard in turn), each on its own. With a single shard and no `remove`,
/// no leave is planned.
pub fn plan(
    shards: &[String],
    add: &str,
    remove: Option<&str>,
    events: &[Change],
) -> Result<Plan, Error> {
    if !events.is_empty() {
        let mut current = shards.to_vec();
        for (i, change) in events.iter().enumerate() {
            current = change
                .apply(&current)
                .map_err(|reason| Error::InvalidEvent {
                    change: change.clone(),
                    position: i + 1,
                    shards: current.len(),
                    reason,
                })?;
        }
        return Ok(Plan::Sequence(events.to_vec()));
    }
    if shards.iter().any(|shard| shard == add) {
        return Err(Error::AddExisting(add.to_owned()));
    }
    let leaving: Vec<&str> = match remove {
        Some(name) if !shards.iter().any(|shard| shard == name) => {
            return Err(Error::RemoveUnknown(name.to_owned()));
        }
        Some(name) if shards.len() == 1 => return Err(Error::RemoveOnly(name.to_owned())),
        Some(name) => vec![name],
        None if shards.len() == 1 => Vec::new(),
        None => shards.iter().map(String::as_str).collect(),
    };
    Ok(Plan::Each(
        std::iter::once(Change::join(add))
            .chain(leaving.into_iter().map(Change::leave))
            .collect(),
    ))
}

/// One strategy's assignment of a list of keys to a set of shards, changed as shards join
/// and leave.
#[derive(Debug, Clone)]
pub struct Placement<'k> {
    keys: &'k [String],
    shards: Vec<String>,
    state: State,
}

#[derive(Debug, Clone)]
enum State {
    /// The ring of the shards, in the order they were added.
    HashRing(Ring),
    /// The table the sharder keeps.
    BoundedLoad(Assignment),
}

impl<'k> Placement<'k> {
    /// The keys on `shards` as `strategy` assigns them. Bounded-load simulates the sharder:
    /// each object is created in turn, in the order of `keys`, and recorded where it is placed.
    pub fn new(strategy: Strategy, shards: &[String], keys: &'k [String]) -> Result<Self, Error> {
        let state = match strategy {
            Strategy::HashRing => State::HashRing(Ring::with_nodes(shards)),
            Strategy::BoundedLoad => {
                let mut assignment = Assignment::new();
                for key in keys {
                    if assignment.shard_of(key).is_some() {
                        return Err(Error::DuplicateKey(key.clone()));
                    }
                    if let Some(shard) = assignment.place(key, shards) {
                        assignment.set(key.as_str(), shard);
                    }
                }
                State::BoundedLoad(assignment)
            }
        };
        Ok(Self {
            keys,
            shards: shards.to_vec(),
            state,
        })
    }

    /// The strategy.
    #[must_use]
    pub fn strategy(&self) -> Strategy {
        match self.state {
            State::HashRing(_) => Strategy::HashRing,
            State::BoundedLoad(_) => Strategy::BoundedLoad,
        }
    }

    /// The shards, in the order they were added.
    #[must_use]
    pub fn shards(&self) -> &[String] {
        &self.shards
    }

    /// The shard of each key, in order; `""` for a key without one.
    #[must_use]
    pub fn assignment(&self) -> Vec<&str> {
        match &self.state {
            State::HashRing(ring) => assign(ring, self.keys),
            State::BoundedLoad(assignment) => self
                .keys
                .iter()
                .map(|key| assignment.shard_of(key).unwrap_or_default())
                .collect(),
        }
    }

    /// Applies `change` as the sharder would (hash-ring: the ring of the new shard set;
    /// bounded-load: the moves of `Assignment::rebalance`) and returns the movement it caused.
    pub fn apply(&mut self, change: &Change) -> Result<Movement, Refusal> {
        let shards = change.apply(&self.shards)?;
        let before: Vec<String> = self.assignment().into_iter().map(str::to_owned).collect();
        match &mut self.state {
            State::HashRing(ring) => *ring = Ring::with_nodes(&shards),
            State::BoundedLoad(assignment) => assignment.apply(&assignment.rebalance(&shards)),
        }
        let previous = std::mem::replace(&mut self.shards, shards);
        let after = self.assignment();
        let before: Vec<&str> = before.iter().map(String::as_str).collect();
        Ok(movement(change, &previous, &self.shards, &before, &after))
    }
}

/// The objects that change shards when one shard joins or leaves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Movement {
    /// Join or leave.
    pub event: Event,
    /// The shard that joins or leaves.
    pub shard: String,
    /// Objects assigned to another shard afterwards.
    pub moved: usize,
    /// The least that must move: `objects / (N + 1)` on a join (the new shard's fair share),
    /// the departed shard's objects on a leave.
    pub ideal: f64,
    /// Moves between two shards that are there both before and after the change: none had to
    /// happen.
    pub unnecessary: usize,
    /// The shards after the change.
    pub shards_after: usize,
    /// The skew after the change.
    pub skew_after: Skew,
}

/// The number of keys assigned differently in `before` and `after`.
#[must_use]
pub fn moved(before: &[&str], after: &[&str]) -> usize {
    before.iter().zip(after).filter(|(b, a)| b != a).count()
}

/// The movement of `change` from the assignment `before` on `shards_before` to `after` on
/// `shards_after` (one shard per key, in the same order).
#[must_use]
pub fn movement(
    change: &Change,
    shards_before: &[String],
    shards_after: &[String],
    before: &[&str],
    after: &[&str],
) -> Movement {
    let staying: HashSet<&str> = shards_before
        .iter()
        .filter(|&shard| shards_after.contains(shard))
        .map(String::as_str)
        .collect();
    let unnecessary = before
        .iter()
        .zip(after)
        .filter(|(b, a)| b != a && staying.contains(*b) && staying.contains(*a))
        .count();
    let ideal = match change.event {
        Event::Join => as_f64(before.len() as u64) / as_f64(shards_before.len() as u64 + 1),
        Event::Leave => as_f64(
            before
                .iter()
                .filter(|&&shard| shard == change.shard)
                .count() as u64,
        ),
    };
    Movement {
        event: change.event,
        shard: change.shard.clone(),
        moved: moved(before, after),
        ideal,
        unnecessary,
        shards_after: shards_after.len(),
        skew_after: skew(
            &counts(shards_after, after)
                .iter()
                .map(|c| c.objects)
                .collect::<Vec<_>>(),
        ),
    }
}

/// The movements of a sequence of changes added up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Changes.
    pub events: usize,
    /// Objects moved, counted once per change that moved them.
    pub moved: usize,
    /// The ideals added up.
    pub ideal: f64,
    /// Unnecessary moves.
    pub unnecessary: usize,
}

impl<'a> FromIterator<&'a Movement> for Totals {
    fn from_iter<I: IntoIterator<Item = &'a Movement>>(movements: I) -> Self {
        movements.into_iter().fold(
            Self {
                events: 0,
                moved: 0,
                ideal: 0.0,
                unnecessary: 0,
            },
            |sum, m| Self {
                events: sum.events + 1,
                moved: sum.moved + m.moved,
                ideal: sum.ideal + m.ideal,
                unnecessary: sum.unnecessary + m.unnecessary,
            },
        )
    }
}

/// Everything `loadgen ring` reports on one strategy and one set of shards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The assignment strategy.
    pub strategy: Strategy,
    /// The number of objects.
    pub objects: usize,
    /// Objects per shard.
    pub counts: Vec<ShardCount>,
    /// How uneven the counts are.
    pub skew: Skew,
    /// One join, then one leave per shard removed, each from the initial assignment; or the
    /// events of `--events`, each after the one before.
    pub movements: Vec<Movement>,
    /// The movements added up, for `--events`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totals: Option<Totals>,
}

/// The report of `strategy` for `keys` on `shards` with the changes of `plan`.
pub fn analyse(
    strategy: Strategy,
    shards: &[String],
    keys: &[String],
    plan: &Plan,
) -> Result<Report, Error> {
    let initial = Placement::new(strategy, shards, keys)?;
    let counts = counts(shards, &initial.assignment());
    let skew = skew(&counts.iter().map(|c| c.objects).collect::<Vec<_>>());
    let refused =
        |change: &Change, position: usize, shards: &[String], reason| Error::InvalidEvent {
            change: change.clone(),
            position,
            shards: shards.len(),
            reason,
        };
    let (movements, totals) = match plan {
        Plan::Each(changes) => {
            let mut movements = Vec::with_capacity(changes.len());
            for (i, change) in changes.iter().enumerate() {
                let mut placement = initial.clone();
                movements.push(
                    placement
                        .apply(change)
                        .map_err(|reason| refused(change, i + 1, shards, reason))?,
                );
            }
            (movements, None)
        }
        Plan::Sequence(changes) => {
            let mut placement = initial;
            let mut movements = Vec::with_capacity(changes.len());
            for (i, change) in changes.iter().enumerate() {
                let before = placement.shards().to_vec();
                movements.push(
                    placement
                        .apply(change)
                        .map_err(|reason| refused(change, i + 1, &before, reason))?,
                );
            }
            let totals = movements.iter().collect();
            (movements, Some(totals))
        }
    };
    Ok(Report {
        strategy,
        objects: keys.len(),
        counts,
        skew,
        movements,
        totals,
    })
}

/// Several reports side by side: each strategy on each shard count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The number of objects.
    pub objects: usize,
    /// The reports, by shard count and then strategy.
    pub reports: Vec<Report>,
}

/// Writes `key,shard` (one placement) or `key,<strategy>...` (several) and then one line per
/// key, quoted as CSV needs.
pub fn write_csv(
    out: &mut impl Write,
    keys: &[String],
    placements: &[Placement<'_>],
) -> Result<(), Error> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(std::iter::once("key").chain(match placements {
        [_] => vec!["shard"],
        _ => placements.iter().map(|p| p.strategy().name()).collect(),
    }))?;
    let assignments: Vec<Vec<&str>> = placements.iter().map(Placement::assignment).collect();
    for (i, key) in keys.iter().enumerate() {
        csv.write_record(std::iter::once(key.as_str()).chain(assignments.iter().map(|a| a[i])))?;
    }
    csv.flush()?;
    Ok(())
}

/// Writes the report for people.
pub fn write_table(out: &mut impl Write, report: &Report) -> io::Result<()> {
    writeln!(
        out,
        "{} shards, {} objects, {}",
        report.counts.len(),
        report.objects,
        report.strategy
    )?;
    writeln!(out)?;
    let mut shards = TextTable::new(&["shard", "objects", "share"])
        .indent(0)
        .gap(2);
    for count in &report.counts {
        let share = if report.objects == 0 {
            0.0
        } else {
            100.0 * as_f64(count.objects as u64) / as_f64(report.objects as u64)
        };
        shards.row([
            count.shard.clone(),
            count.objects.to_string(),
            format!("{share:.2}%"),
        ]);
    }
    out.write_all(shards.render().as_bytes())?;
    writeln!(out)?;
    writeln!(
        out,
        "skew: mean {:.1}, max/mean {}, coefficient of variation {}, min/mean {}",
        report.skew.mean,
        format_optional(report.skew.max_over_mean, 3),
        format_optional(report.skew.coefficient_of_variation, 3),
        format_optional(report.skew.min_over_mean, 3),
    )?;
    writeln!(out)?;
    let mut movements = TextTable::new(&[
        "event",
        "shard",
        "moved",
        "ideal",
        "moved/ideal",
        "unnecessary",
        "max/mean after",
    ])
    .indent(0)
    .gap(2)
    .left_aligned(2);
    for movement in &report.movements {
        let event = match movement.event {
            Event::Join => "join",
            Event::Leave => "leave",
        };
        movements.row([
            event.to_owned(),
            movement.shard.clone(),
            movement.moved.to_string(),
            format!("{:.1}", movement.ideal),
            format_optional(over_ideal(movement.moved, movement.ideal), 3),
            movement.unnecessary.to_string(),
            format_optional(movement.skew_after.max_over_mean, 3),
        ]);
    }
    if let Some(totals) = &report.totals {
        movements.row([
            "total".to_owned(),
            format!("{} events", totals.events),
            totals.moved.to_string(),
            format!("{:.1}", totals.ideal),
            format_optional(over_ideal(totals.moved, totals.ideal), 3),
            totals.unnecessary.to_string(),
            String::new(),
        ]);
    }
    out.write_all(movements.render().as_bytes())
}

/// `moved / ideal`, where the ideal is positive.
fn over_ideal(moved: usize, ideal: f64) -> Option<f64> {
    ratio(as_f64(moved as u64), ideal)
}

/// Writes reports side by side for people: per report its initial assignment, then a line per
/// change (the figures after it) and, for a sequence, the totals.
pub fn write_comparison(out: &mut impl Write, reports: &[Report]) -> io::Result<()> {
    writeln!(
        out,
        "{} objects",
        reports.first().map_or(0, |report| report.objects)
    )?;
    writeln!(out)?;
    let mut table = TextTable::new(&[
        "shards",
        "strategy",
        "event",
        "min",
        "max",
        "mean",
        "max/mean",
        "min/mean",
        "moved",
        "ideal",
        "moved/ideal",
        "unnecessary",
    ])
    .indent(0)
    .gap(2)
    .left_aligned(3);
    let distribution = |skew: &Skew| {
        [
            skew.min.to_string(),
            skew.max.to_string(),
            format!("{:.1}", skew.mean),
            format_optional(skew.max_over_mean, 3),
            format_optional(skew.min_over_mean, 3),
        ]
    };
    let moves = |moved: usize, ideal: f64, unnecessary: usize| {
        [
            moved.to_string(),
            format!("{ideal:.1}"),
            format_optional(over_ideal(moved, ideal), 3),
            unnecessary.to_string(),
        ]
    };
    for (i, report) in reports.iter().enumerate() {
        if i > 0 && reports[i - 1].counts.len() != report.counts.len() {
            table.row(std::iter::repeat_n(String::new(), 12));
        }
        let name = report.strategy.name().to_owned();
        table.row(
            [
                report.counts.len().to_string(),
                name.clone(),
                "initial".to_owned(),
            ]
            .into_iter()
            .chain(distribution(&report.skew))
            .chain(std::iter::repeat_n(String::new(), 4)),
        );
        for movement in &report.movements {
            let change = Change {
                event: movement.event,
                shard: movement.shard.clone(),
            };
            table.row(
                [
                    movement.shards_after.to_string(),
                    name.clone(),
                    change.to_string(),
                ]
                .into_iter()
                .chain(distribution(&movement.skew_after))
                .chain(moves(movement.moved, movement.ideal, movement.unnecessary)),
            );
        }
        if let Some(totals) = &report.totals {
            table.row(
                [
                    report
                        .movements
                        .last()
                        .map_or(report.counts.len(), |m| m.shards_after)
                        .to_string(),
                    name.clone(),
                    format!("total of {}", totals.events),
                ]
                .into_iter()
                .chain(std::iter::repeat_n(String::new(), 5))
                .chain(moves(totals.moved, totals.ideal, totals.unnecessary)),
            );
        }
    }
    out.write_all(table.render().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|&n| n.to_owned()).collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn skew_is_max_over_mean_and_population_stddev_over_mean() {
        let s = skew(&[1, 2, 3]);
        assert!(close(s.mean, 2.0));
        assert!(close(s.max_over_mean.expect("objects"), 1.5));
        assert!(close(
            s.coefficient_of_variation.expect("objects"),
            (2.0_f64 / 3.0).sqrt() / 2.0
        ));
    }

    #[test]
    fn an_even_distribution_has_no_skew() {
        let s = skew(&[5, 5, 5, 5]);
        assert_eq!(s.max_over_mean, Some(1.0));
        assert_eq!(s.coefficient_of_variation, Some(0.0));
    }

    #[test]
    fn skew_is_undefined_without_objects() {
        assert_eq!(skew(&[]).max_over_mean, None);
        assert_eq!(skew(&[0, 0]).coefficient_of_variation, None);
    }

    #[test]
    fn counts_follow_the_shard_order_and_include_empty_shards() {
        let counts = counts(&names(&["b", "a", "c"]), &["a", "b", "a"]);
        let got: Vec<_> = counts
            .iter()
            .map(|c| (c.shard.as_str(), c.objects))
            .collect();
        assert_eq!(got, [("b", 1), ("a", 2), ("c", 0)]);
    }

    #[test]
    fn moved_counts_changed_assignments() {
        assert_eq!(moved(&["a", "b", "c"], &["a", "c", "c"]), 1);
        assert_eq!(moved(&[], &[]), 0);
    }

    fn each(shards: &[String], keys: &[String]) -> Vec<Report> {
        let plan = plan(shards, "shard-new", None, &[]).expect("valid");
        Strategy::ALL
            .iter()
            .map(|&strategy| analyse(strategy, shards, keys, &plan).expect("valid"))
            .collect()
    }

    #[test]
    fn a_hash_ring_leave_moves_exactly_the_departed_shards_objects() {
        let shards = names(&["shard-0", "shard-1", "shard-2"]);
        let keys = generated_keys(3000);
        let mut placement = Placement::new(Strategy::HashRing, &shards, &keys).expect("valid");
        let movement = placement.apply(&Change::leave("shard-1")).expect("valid");
        assert_eq!(movement.event, Event::Leave);
        assert!(movement.moved > 0);
        assert!(close(as_f64(movement.moved as u64), movement.ideal));
        assert_eq!(movement.unnecessary, 0);
        assert_eq!(movement.shards_after, 2);
    }

    #[test]
    fn a_hash_ring_join_moves_objects_only_to_the_new_shard() {
        let shards = names(&["shard-0", "shard-1", "shard-2"]);
        let keys = generated_keys(3000);
        let mut placement = Placement::new(Strategy::HashRing, &shards, &keys).expect("valid");
        let movement = placement.apply(&Change::join("shard-new")).expect("valid");
        let after_ring = Ring::with_nodes(shards.iter().map(String::as_str).chain(["shard-new"]));
        let after = assign(&after_ring, &keys);
        assert_eq!(placement.assignment(), after);
        assert_eq!(
            movement.moved,
            after.iter().filter(|&&s| s == "shard-new").count()
        );
        assert!(close(movement.ideal, 750.0));
    }

    #[test]
    fn unnecessary_moves_are_those_between_shards_that_stay() {
        let change = Change::join("d");
        let m = movement(
            &change,
            &names(&["a", "b", "c"]),
            &names(&["a", "b", "c", "d"]),
            &["a", "b", "c", "a"],
            &["d", "c", "c", "a"],
        );
        assert_eq!(m.moved, 2);
        assert_eq!(m.unnecessary, 1, "b to c did not have to happen");
        assert!(close(m.ideal, 1.0));
        assert_eq!(
            (m.shards_after, m.skew_after.min, m.skew_after.max),
            (4, 0, 2)
        );

        let change = Change::leave("b");
        let m = movement(
            &change,
            &names(&["a", "b", "c"]),
            &names(&["a", "c"]),
            &["a", "b", "b", "c"],
            &["c", "a", "c", "c"],
        );
        assert_eq!(m.moved, 3);
        assert_eq!(m.unnecessary, 1, "a to c did not have to happen");
        assert!(close(m.ideal, 2.0));
    }

    #[test]
    fn bounded_load_keeps_max_over_mean_within_5_percent_where_the_ring_does_not() {
        let keys = generated_keys(1000);
        for count in 2..=10 {
            let shards = shard_names(&[], Some(count)).expect("valid");
            let [ring, bounded] = <[Report; 2]>::try_from(each(&shards, &keys)).expect("two");
            assert_eq!(bounded.strategy, Strategy::BoundedLoad);
            let bounded_skew = bounded.skew.max_over_mean.expect("objects");
            let ring_skew = ring.skew.max_over_mean.expect("objects");
            assert!(bounded_skew <= 1.05, "{count} shards: {bounded_skew}");
            assert!(ring_skew > 1.1, "{count} shards: {ring_skew}");
            assert_eq!(
                bounded.counts.iter().map(|c| c.objects).sum::<usize>(),
                1000
            );
        }
    }

    #[test]
    fn neither_strategy_makes_an_unnecessary_move_on_a_join_or_leave() {
        let keys = generated_keys(1000);
        for count in 2..=10 {
            let shards = shard_names(&[], Some(count)).expect("valid");
            for report in each(&shards, &keys) {
                assert_eq!(report.movements.len(), count + 1);
                for movement in &report.movements {
                    let context = format!("{} {count} {movement:?}", report.strategy);
                    assert_eq!(movement.unnecessary, 0, "{context}");
                    assert!(
                        as_f64(movement.moved as u64) <= 1.15 * movement.ideal,
                        "{context}"
                    );
                    if movement.event == Event::Leave {
                        assert!(
                            close(as_f64(movement.moved as u64), movement.ideal),
                            "{context}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_sequence_applies_each_event_to_the_state_the_one_before_left() {
        let shards = shard_names(&[], Some(3)).expect("valid");
        let keys = generated_keys(1000);
        let events = [
            Change::join("x"),
            Change::leave("shard-0"),
            Change::leave("x"),
        ];
        let plan = plan(&shards, "shard-new", None, &events).expect("valid");
        for strategy in Strategy::ALL {
            let report = analyse(strategy, &shards, &keys, &plan).expect("valid");
            let after: Vec<usize> = report.movements.iter().map(|m| m.shards_after).collect();
            assert_eq!(after, [4, 3, 2], "{strategy}");
            let totals = report.totals.clone().expect("a sequence has totals");
            assert_eq!(totals.events, 3);
            assert_eq!(
                totals.moved,
                report.movements.iter().map(|m| m.moved).sum::<usize>()
            );
            assert_eq!(totals.unnecessary, 0, "{strategy}");
            // The leave of x moves what x holds then, not on the initial shards where it is
            // not.
            let last = &report.movements[2];
            assert!(last.ideal > 0.0, "{strategy}");
            assert!(close(as_f64(last.moved as u64), last.ideal), "{strategy}");
        }
        let independent =
            analyse(Strategy::HashRing, &shards, &keys, &plan_of_each(&shards)).expect("valid");
        assert_eq!(independent.totals, None);
    }

    fn plan_of_each(shards: &[String]) -> Plan {
        plan(shards, "shard-new", None, &[]).expect("valid")
    }

    #[test]
    fn a_join_and_leave_of_the_same_shard_restores_the_hash_ring() {
        let shards = shard_names(&[], Some(4)).expect("valid");
        let keys = generated_keys(500);
        let events = [Change::join("x"), Change::leave("x")];
        let plan = plan(&shards, "shard-new", None, &events).expect("valid");
        let report = analyse(Strategy::HashRing, &shards, &keys, &plan).expect("valid");
        assert_eq!(report.movements[0].moved, report.movements[1].moved);
        assert_eq!(report.movements[1].skew_after, report.skew);
    }

    #[test]
    fn bounded_load_takes_each_key_once() {
        let shards = names(&["a", "b"]);
        let keys = names(&["k1", "k2", "k1"]);
        let err = Placement::new(Strategy::BoundedLoad, &shards, &keys).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"key "k1" is given twice in --keys-file: bounded-load places each object once"#
        );
        let ring = Placement::new(Strategy::HashRing, &shards, &keys).expect("valid");
        assert_eq!(ring.assignment().len(), 3);
    }

    #[test]
    fn the_report_has_one_join_and_a_leave_per_shard() {
        let shards = names(&["a", "b", "c"]);
        let keys = generated_keys(100);
        let plan_d = plan(&shards, "d", None, &[]).expect("valid");
        let report = analyse(Strategy::HashRing, &shards, &keys, &plan_d).expect("valid");
        assert_eq!(report.objects, 100);
        assert_eq!(report.counts.iter().map(|c| c.objects).sum::<usize>(), 100);
        let events: Vec<_> = report
            .movements
            .iter()
            .map(|m| (m.event, m.shard.as_str()))
            .collect();
        assert_eq!(
            events,
            [
                (Event::Join, "d"),
                (Event::Leave, "a"),
                (Event::Leave, "b"),
                (Event::Leave, "c")
            ]
        );

        assert_eq!(
            plan(&shards, "d", Some("b"), &[]).expect("valid"),
            Plan::Each(vec![Change::join("d"), Change::leave("b")])
        );
        assert_eq!(
            plan(&names(&["a"]), "d", None, &[]).expect("valid"),
            Plan::Each(vec![Change::join("d")])
        );
    }

    #[test]
    fn invalid_joins_and_leaves_are_errors() {
        let shards = names(&["a", "b"]);
        let err = plan(&shards, "a", None, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"--add "a": the shard is already in the ring"#
        );
        let err = plan(&shards, "new", Some("x"), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"--remove "x": no such shard in the ring"#
        );
        let err = plan(&names(&["a"]), "new", Some("a"), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"--remove "a": cannot remove the only shard"#
        );
    }

    #[test]
    fn events_that_cannot_happen_are_named_with_their_place() {
        let shards = names(&["a", "b"]);
        let cases = [
            (
                vec![Change::join("c"), Change::join("c")],
                "--events +c (event 2) on 3 shards: the shard is already in the ring",
            ),
            (
                vec![Change::leave("c")],
                "--events -c (event 1) on 2 shards: no such shard in the ring",
            ),
            (
                vec![Change::leave("a"), Change::leave("b")],
                "--events -b (event 2) on 1 shards: cannot remove the only shard",
            ),
        ];
        for (events, message) in cases {
            let err = plan(&shards, "shard-new", None, &events).unwrap_err();
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn events_are_a_sign_and_a_shard_name() {
        assert_eq!("+x".parse(), Ok(Change::join("x")));
        assert_eq!("-shard-1".parse(), Ok(Change::leave("shard-1")));
        assert_eq!(Change::leave("shard-1").to_string(), "-shard-1");
        assert_eq!(
            "x".parse::<Change>(),
            Err(r#""x": expected +<shard> (a join) or -<shard> (a leave)"#.to_owned())
        );
        assert_eq!(
            "+".parse::<Change>(),
            Err(r#""+": the shard name is empty"#.to_owned())
        );
        assert!("".parse::<Change>().is_err());
    }

    #[test]
    fn shard_counts_are_a_number_or_an_inclusive_range() {
        assert_eq!("5".parse(), Ok(ShardCounts { from: 5, to: 5 }));
        assert_eq!("2..10".parse(), Ok(ShardCounts { from: 2, to: 10 }));
        assert_eq!(
            "3..2".parse::<ShardCounts>(),
            Err(r#"the range "3..2" is empty: 3 is above 2"#.to_owned())
        );
        for bad in ["", "-1", "2..", "..3", "2..=3", "a"] {
            assert!(bad.parse::<ShardCounts>().is_err(), "{bad}");
        }
        let sets = shard_sets(&[], Some(ShardCounts { from: 2, to: 3 })).expect("valid");
        assert_eq!(
            sets,
            [
                names(&["shard-0", "shard-1"]),
                names(&["shard-0", "shard-1", "shard-2"])
            ]
        );
        assert!(matches!(
            shard_sets(&[], Some(ShardCounts { from: 0, to: 3 })),
            Err(Error::NoShards)
        ));
        assert_eq!(
            shard_sets(&names(&["a"]), None).expect("valid"),
            [names(&["a"])]
        );
    }

    #[test]
    fn only_the_names_of_strategy_are_accepted() {
        assert_eq!(parse_strategy("bounded-load"), Ok(Strategy::BoundedLoad));
        assert_eq!(
            parse_strategy("consistent"),
            Err("expected one of hash-ring, bounded-load".to_owned())
        );
    }

    #[test]
    fn skew_has_the_extremes_and_min_over_mean() {
        let s = skew(&[1, 2, 3]);
        assert_eq!((s.min, s.max), (1, 3));
        assert!(close(s.min_over_mean.expect("objects"), 0.5));
        assert_eq!(skew(&[0, 0]).min_over_mean, None);
    }

    #[test]
    fn shard_names_are_given_or_generated() {
        assert_eq!(
            shard_names(&names(&["a", "b"]), None).expect("valid"),
            ["a", "b"]
        );
        assert_eq!(
            shard_names(&[], Some(3)).expect("valid"),
            ["shard-0", "shard-1", "shard-2"]
        );
    }

    #[test]
    fn invalid_shard_lists_are_errors() {
        assert!(matches!(shard_names(&[], None), Err(Error::NoShards)));
        assert!(matches!(shard_names(&[], Some(0)), Err(Error::NoShards)));
        assert!(matches!(
            shard_names(&names(&[""]), None),
            Err(Error::NoShards)
        ));
        assert!(matches!(
            shard_names(&names(&["a"]), Some(2)),
            Err(Error::ConflictingShards)
        ));
        let err = shard_names(&names(&["a", "", "b"]), None).unwrap_err();
        assert_eq!(err.to_string(), r#"empty shard name in --shards "a,,b""#);
        let err = shard_names(&names(&["a", "b", "a"]), None).unwrap_err();
        assert_eq!(err.to_string(), r#"shard "a" is given twice in --shards"#);
    }

    #[test]
    fn keys_are_one_per_line_without_blank_lines() {
        assert_eq!(parse_keys("a\n\n  \nb\r\nc"), ["a", "b", "c"]);
    }

    #[test]
    fn generated_keys_are_deterministic_website_keys() {
        let keys = generated_keys(21);
        assert_eq!(
            keys[0],
            "webhosting.timebertt.dev/Website/project-00/experiment-0"
        );
        assert_eq!(
            keys[20],
            "webhosting.timebertt.dev/Website/project-00/experiment-20"
        );
        assert_eq!(keys, generated_keys(21));
    }

    #[test]
    fn csv_quotes_keys_that_need_it() {
        let mut out = Vec::new();
        let keys = names(&["a/b", "x,y"]);
        let placement = Placement::new(Strategy::HashRing, &names(&["s1"]), &keys).expect("valid");
        write_csv(&mut out, &keys, &[placement]).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "key,shard\na/b,s1\n\"x,y\",s1\n"
        );
    }

    #[test]
    fn csv_has_a_column_per_strategy_when_compared() {
        let keys = generated_keys(50);
        let shards = names(&["s1", "s2"]);
        let placements: Vec<_> = Strategy::ALL
            .iter()
            .map(|&s| Placement::new(s, &shards, &keys).expect("valid"))
            .collect();
        let mut out = Vec::new();
        write_csv(&mut out, &keys, &placements).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "key,hash-ring,bounded-load");
        assert_eq!(lines.len(), 51);
        let ring = Ring::with_nodes(&shards);
        assert!(lines[1].starts_with(&format!(
            "{},{},",
            keys[0],
            ring.hash(&keys[0]).expect("shards")
        )));
    }

    #[test]
    fn the_table_shows_counts_skew_and_movement() {
        let shards = names(&["a", "b"]);
        let plan = plan(&shards, "c", None, &[]).expect("valid");
        let report =
            analyse(Strategy::HashRing, &shards, &generated_keys(10), &plan).expect("valid");
        let mut out = Vec::new();
        write_table(&mut out, &report).expect("write");
        let table = String::from_utf8(out).expect("utf-8");
        assert!(
            table.starts_with("2 shards, 10 objects, hash-ring\n"),
            "{table}"
        );
        assert!(table.contains("unnecessary  max/mean after\n"), "{table}");
        assert!(!table.contains("\ntotal"), "{table}");
        assert!(table.contains("skew: mean 5.0, max/mean "), "{table}");
        assert!(table.contains("\njoin   c  "), "{table}");
        assert!(table.contains("\nleave  a  "), "{table}");
    }

    #[test]
    fn a_sequence_ends_in_totals() {
        let shards = names(&["a", "b"]);
        let plan =
            plan(&shards, "", None, &[Change::join("c"), Change::leave("a")]).expect("valid");
        let report =
            analyse(Strategy::BoundedLoad, &shards, &generated_keys(100), &plan).expect("valid");
        let mut out = Vec::new();
        write_table(&mut out, &report).expect("write");
        let table = String::from_utf8(out).expect("utf-8");
        assert!(
            table.starts_with("2 shards, 100 objects, bounded-load\n"),
            "{table}"
        );
        assert!(table.contains("\ntotal  2 events  "), "{table}");
    }

    #[test]
    fn the_comparison_puts_strategies_side_by_side_per_shard_count() {
        let keys = generated_keys(100);
        let mut reports = Vec::new();
        for count in [2, 3] {
            let shards = shard_names(&[], Some(count)).expect("valid");
            let plan = plan(&shards, "", None, &[Change::join("x")]).expect("valid");
            for strategy in Strategy::ALL {
                reports.push(analyse(strategy, &shards, &keys, &plan).expect("valid"));
            }
        }
        let mut out = Vec::new();
        write_comparison(&mut out, &reports).expect("write");
        let table = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "100 objects");
        assert!(
            lines[2].starts_with("shards  strategy      event       min"),
            "{table}"
        );
        assert!(lines[2].ends_with("moved/ideal  unnecessary"), "{table}");
        let rows: Vec<Vec<&str>> = lines[3..]
            .iter()
            .map(|line| line.split_whitespace().take(3).collect())
            .collect();
        assert_eq!(
            rows,
            [
                vec!["2", "hash-ring", "initial"],
                vec!["3", "hash-ring", "+x"],
                vec!["3", "hash-ring", "total"],
                vec!["2", "bounded-load", "initial"],
                vec!["3", "bounded-load", "+x"],
                vec!["3", "bounded-load", "total"],
                vec![],
                vec!["3", "hash-ring", "initial"],
                vec!["4", "hash-ring", "+x"],
                vec!["4", "hash-ring", "total"],
                vec!["3", "bounded-load", "initial"],
                vec!["4", "bounded-load", "+x"],
                vec!["4", "bounded-load", "total"],
            ]
        );
    }
}
