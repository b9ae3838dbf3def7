//! `loadgen ring`: what the sharder's hash ring does with a set of objects, computed offline
//! with [`kube_sharding::consistent_hash`] (docs/contract.md#hash-ring).
//!
//! The statistics are pure functions; [`run`] reads the input and prints them.

use std::{
    collections::HashMap,
    io::{self, Write},
    path::{Path, PathBuf},
};

use clap::{ArgGroup, Args, ValueEnum};
use kube_sharding::consistent_hash::Ring;
use serde::Serialize;

use crate::{measure::as_f64, report::TextTable, units::format_optional};

/// Arguments of `loadgen ring`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("shard_set").required(true).args(["shards", "shard_count"])))]
#[command(group(ArgGroup::new("object_set").required(true).args(["keys_file", "objects"])))]
pub struct RingArgs {
    /// Shard names, comma-separated.
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub shards: Vec<String>,

    /// Generated shard names: shard-0, shard-1, ...
    #[arg(allow_negative_numbers = true, long, value_name = "N")]
    pub shard_count: Option<usize>,

    /// Hash keys (`group/Kind/namespace/name`), one per line; blank lines are ignored.
    #[arg(long, value_name = "PATH")]
    pub keys_file: Option<PathBuf>,

    /// Generated Website keys, deterministic:
    /// `webhosting.timebertt.dev/Website/project-<i%20>/experiment-<i>`.
    #[arg(allow_negative_numbers = true, long, value_name = "N")]
    pub objects: Option<usize>,

    /// The shard that joins in the movement analysis.
    #[arg(long, value_name = "NAME", default_value = "shard-new")]
    pub add: String,

    /// The shard that leaves in the movement analysis [default: each shard in turn].
    #[arg(long, value_name = "NAME")]
    pub remove: Option<String>,

    /// Output format: table and json report the distribution and movement, csv prints the
    /// assignment of each key.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
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
    /// `--add` names a shard that is already in the ring.
    #[error("--add {0:?}: the shard is already in the ring")]
    AddExisting(String),
    /// `--remove` names a shard that is not in the ring.
    #[error("--remove {0:?}: no such shard in the ring")]
    RemoveUnknown(String),
    /// `--remove` names the only shard: nothing would be left to move objects to.
    #[error("--remove {0:?}: cannot remove the only shard")]
    RemoveOnly(String),
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
/// (table, json) to `out`.
pub fn run(args: &RingArgs, out: &mut impl Write) -> Result<(), Error> {
    let shards = shard_names(&args.shards, args.shard_count)?;
    let keys = match (&args.keys_file, args.objects) {
        (Some(path), None) => read_keys(path)?,
        (None, Some(n)) => generated_keys(n),
        _ => return Err(Error::KeySource),
    };
    if args.format == Format::Csv {
        let ring = Ring::with_nodes(&shards);
        return write_csv(out, &keys, &assign(&ring, &keys));
    }
    let report = analyse(&shards, &keys, &args.add, args.remove.as_deref())?;
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        }
        Format::Table | Format::Csv => write_table(out, &report)?,
    }
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
}

/// The skew of a distribution of objects over shards (one count per shard).
#[must_use]
pub fn skew(counts: &[usize]) -> Skew {
    if counts.is_empty() {
        return Skew {
            mean: 0.0,
            max_over_mean: None,
            coefficient_of_variation: None,
        };
    }
    let n = as_f64(counts.len() as u64);
    let mean = counts.iter().map(|&c| as_f64(c as u64)).sum::<f64>() / n;
    if mean == 0.0 {
        return Skew {
            mean,
            max_over_mean: None,
            coefficient_of_variation: None,
        };
    }
    let max = counts
        .iter()
        .copied()
        .max()
        .map_or(0.0, |c| as_f64(c as u64));
    let variance = counts
        .iter()
        .map(|&c| (as_f64(c as u64) - mean).powi(2))
        .sum::<f64>()
        / n;
    Skew {
        mean,
        max_over_mean: Some(max / mean),
        coefficient_of_variation: Some(variance.sqrt() / mean),
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
}

/// The number of keys assigned differently in `before` and `after`.
#[must_use]
pub fn moved(before: &[&str], after: &[&str]) -> usize {
    before.iter().zip(after).filter(|(b, a)| b != a).count()
}

/// The movement when `joining` is added to the ring of `shards`.
#[must_use]
pub fn join(shards: &[String], keys: &[String], before: &[&str], joining: &str) -> Movement {
    let ring = Ring::with_nodes(shards.iter().map(String::as_str).chain([joining]));
    Movement {
        event: Event::Join,
        shard: joining.to_owned(),
        moved: moved(before, &assign(&ring, keys)),
        ideal: as_f64(keys.len() as u64) / as_f64(shards.len() as u64 + 1),
    }
}

/// The movement when `leaving` is removed from the ring of `shards`.
#[must_use]
pub fn leave(shards: &[String], keys: &[String], before: &[&str], leaving: &str) -> Movement {
    let ring = Ring::with_nodes(
        shards
            .iter()
            .map(String::as_str)
            .filter(|&shard| shard != leaving),
    );
    Movement {
        event: Event::Leave,
        shard: leaving.to_owned(),
        moved: moved(before, &assign(&ring, keys)),
        ideal: as_f64(before.iter().filter(|&&shard| shard == leaving).count() as u64),
    }
}

/// Everything `loadgen ring` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The number of objects.
    pub objects: usize,
    /// Objects per shard.
    pub counts: Vec<ShardCount>,
    /// How uneven the counts are.
    pub skew: Skew,
    /// One join, then one leave per shard removed.
    pub movements: Vec<Movement>,
}

/// The report for `keys` on the ring of `shards`, with `add` joining and `remove` (or each
/// shard in turn) leaving. With a single shard and no `remove`, no leave is reported.
pub fn analyse(
    shards: &[String],
    keys: &[String],
    add: &str,
    remove: Option<&str>,
) -> Result<Report, Error> {
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
    let ring = Ring::with_nodes(shards);
    let before = assign(&ring, keys);
    let counts = counts(shards, &before);
    let skew = skew(&counts.iter().map(|c| c.objects).collect::<Vec<_>>());
    let movements = std::iter::once(join(shards, keys, &before, add))
        .chain(
            leaving
                .into_iter()
                .map(|shard| leave(shards, keys, &before, shard)),
        )
        .collect();
    Ok(Report {
        objects: keys.len(),
        counts,
        skew,
        movements,
    })
}

/// Writes `key,shard` and then one line per key, quoted as CSV needs.
pub fn write_csv(out: &mut impl Write, keys: &[String], assignment: &[&str]) -> Result<(), Error> {
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(["key", "shard"])?;
    for (key, shard) in keys.iter().zip(assignment) {
        csv.write_record([key.as_str(), shard])?;
    }
    csv.flush()?;
    Ok(())
}

/// Writes the report for people.
pub fn write_table(out: &mut impl Write, report: &Report) -> io::Result<()> {
    writeln!(
        out,
        "{} shards, {} objects",
        report.counts.len(),
        report.objects
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
        "skew: mean {:.1}, max/mean {}, coefficient of variation {}",
        report.skew.mean,
        format_optional(report.skew.max_over_mean, 3),
        format_optional(report.skew.coefficient_of_variation, 3),
    )?;
    writeln!(out)?;
    let mut movements = TextTable::new(&["event", "shard", "moved", "ideal", "moved/ideal"])
        .indent(0)
        .gap(2)
        .left_aligned(2);
    for movement in &report.movements {
        let event = match movement.event {
            Event::Join => "join",
            Event::Leave => "leave",
        };
        let over_ideal =
            (movement.ideal > 0.0).then(|| as_f64(movement.moved as u64) / movement.ideal);
        movements.row([
            event.to_owned(),
            movement.shard.clone(),
            movement.moved.to_string(),
            format!("{:.1}", movement.ideal),
            format_optional(over_ideal, 3),
        ]);
    }
    out.write_all(movements.render().as_bytes())
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

    #[test]
    fn a_leave_moves_exactly_the_departed_shards_objects() {
        let shards = names(&["shard-0", "shard-1", "shard-2"]);
        let keys = generated_keys(3000);
        let ring = Ring::with_nodes(&shards);
        let before = assign(&ring, &keys);
        let movement = leave(&shards, &keys, &before, "shard-1");
        assert_eq!(movement.event, Event::Leave);
        assert!(movement.moved > 0);
        assert!(close(as_f64(movement.moved as u64), movement.ideal));
    }

    #[test]
    fn a_join_moves_objects_only_to_the_new_shard() {
        let shards = names(&["shard-0", "shard-1", "shard-2"]);
        let keys = generated_keys(3000);
        let ring = Ring::with_nodes(&shards);
        let before = assign(&ring, &keys);
        let movement = join(&shards, &keys, &before, "shard-new");
        let after_ring = Ring::with_nodes(shards.iter().map(String::as_str).chain(["shard-new"]));
        let after = assign(&after_ring, &keys);
        assert_eq!(
            movement.moved,
            after.iter().filter(|&&s| s == "shard-new").count()
        );
        assert!(close(movement.ideal, 750.0));
    }

    #[test]
    fn the_report_has_one_join_and_a_leave_per_shard() {
        let shards = names(&["a", "b", "c"]);
        let report = analyse(&shards, &generated_keys(100), "d", None).expect("valid");
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

        let report = analyse(&shards, &generated_keys(100), "d", Some("b")).expect("valid");
        assert_eq!(report.movements.len(), 2);
        assert_eq!(
            analyse(&names(&["a"]), &[], "d", None)
                .expect("valid")
                .movements
                .len(),
            1
        );
    }

    #[test]
    fn invalid_joins_and_leaves_are_errors() {
        let shards = names(&["a", "b"]);
        let err = analyse(&shards, &[], "a", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"--add "a": the shard is already in the ring"#
        );
        let err = analyse(&shards, &[], "new", Some("x")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"--remove "x": no such shard in the ring"#
        );
        let err = analyse(&names(&["a"]), &[], "new", Some("a")).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"--remove "a": cannot remove the only shard"#
        );
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
        write_csv(&mut out, &names(&["a/b", "x,y"]), &["s1", "s2"]).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "key,shard\na/b,s1\n\"x,y\",s2\n"
        );
    }

    #[test]
    fn the_table_shows_counts_skew_and_movement() {
        let report = analyse(&names(&["a", "b"]), &generated_keys(10), "c", None).expect("valid");
        let mut out = Vec::new();
        write_table(&mut out, &report).expect("write");
        let table = String::from_utf8(out).expect("utf-8");
        assert!(table.starts_with("2 shards, 10 objects\n"), "{table}");
        assert!(table.contains("skew: mean 5.0, max/mean "), "{table}");
        assert!(table.contains("\njoin   c  "), "{table}");
        assert!(table.contains("\nleave  a  "), "{table}");
    }
}
