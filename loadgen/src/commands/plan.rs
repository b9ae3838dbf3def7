//! `loadgen plan`: how many shards a target of objects and churn needs, from a capacity search
//! run at several shard counts (docs/experiments.md#planning).
//!
//! It runs a search scenario (`experiments/plan.yaml`) with the target's objects as its world,
//! or reads a run directory that such a scenario wrote (`--from`), and hands the capacity and
//! cost of each shard count to [`crate::plan`]; it writes `plan.md`, `plan.json` and the plot
//! into the run's directory and prints the plan. The exit status says whether the target is
//! reachable within the measured shard counts.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Deserialize;

use super::{compare::Run, experiment::RunArgs};
use crate::{
    experiment::display_path,
    gate,
    plan::{self, CapacityPoint, DEFAULT_HEADROOM, Plan, ShardCost, Target},
    report::{self, Report as _, ReportFormat},
    scenario::Scenario,
};

/// Arguments of `loadgen plan`.
#[derive(Debug, Args)]
#[command(after_help = gate::EXIT_STATUS_HELP)]
pub struct PlanArgs {
    /// A scenario with a `search:` section, e.g. `experiments/plan.yaml`; its world gets
    /// `--objects` Websites.
    #[arg(value_name = "SCENARIO", required_unless_present = "from")]
    pub scenario: Option<PathBuf>,

    /// The objects (Websites) the controller holds.
    #[arg(allow_negative_numbers = true, long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)))]
    pub objects: u64,

    /// The churn to sustain: changes of those objects per second.
    #[arg(allow_negative_numbers = true, long, value_name = "PER_SECOND", value_parser = positive)]
    pub churn: f64,

    /// Spare capacity to keep above the churn, as a percentage (`30%`) or a fraction (`0.3`).
    #[arg(allow_negative_numbers = true, long, value_name = "PERCENT", value_parser = headroom, default_value_t = DEFAULT_HEADROOM)]
    pub headroom: f64,

    /// Plan from this run directory (written by `loadgen plan` or `loadgen experiment` with a
    /// search scenario) instead of running the search.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "scenario")]
    pub from: Option<PathBuf>,

    /// Output format of the plan on stdout.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,

    /// How and where the search runs.
    #[command(flatten)]
    pub run: RunArgs,
}

/// A churn: a finite number above 0.
fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(value),
        _ => Err(format!("must be a number greater than 0, got `{text}`")),
    }
}

/// A headroom: `30%` or `0.3`, from 0 up to 10 (1,000 %).
fn headroom(text: &str) -> Result<f64, String> {
    let fraction = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    };
    match fraction {
        Ok(value) if value.is_finite() && (0.0..=10.0).contains(&value) => Ok(value),
        _ => Err(format!(
            "must be a percentage such as 30% or a fraction such as 0.3, from 0 to 1000 %, got \
             `{text}`"
        )),
    }
}

/// Runs or reads the search, writes and prints the plan; fails with [`gate::CheckFailed`] when
/// the target is not reachable within the measured shard counts.
pub fn run(args: &PlanArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let target = Target {
        objects: args.objects,
        churn: args.churn,
        headroom: args.headroom,
    };
    let dir = match (&args.from, &args.scenario) {
        (Some(dir), _) => dir.clone(),
        (None, Some(file)) => {
            let scenario = searching(Scenario::load(file)?, file, args.objects)?;
            args.run.run(scenario)?.0
        }
        (None, None) => bail!("give a SCENARIO to run or --from RUN_DIR to read"),
    };
    let plan = plan_of(&dir, target)?;
    let written = write(&dir, &plan)?;
    report::write(args.format, out, &plan)?;
    if args.format == ReportFormat::Table {
        writeln!(out, "\nplan: {}", display_path(&written))?;
    }
    out.flush()?;
    if !plan.verdict.within_measured_range() {
        gate::check(vec![plan.answer()])?;
    }
    Ok(())
}

/// `scenario` with `objects` Websites in its world; it must search capacity.
fn searching(mut scenario: Scenario, file: &Path, objects: u64) -> anyhow::Result<Scenario> {
    if scenario.search.is_none() {
        bail!(
            "{}: plan needs a scenario with a search: section (such as experiments/plan.yaml); \
             this one runs a load",
            file.display()
        );
    }
    if let [_, _, ..] = scenario.strategies[..] {
        let names: Vec<&str> = scenario.strategies.iter().map(|s| s.name()).collect();
        bail!(
            "{}: strategies: plan sizes one assignment strategy, got {}: keep one, or run \
             `loadgen experiment` to set them side by side",
            file.display(),
            names.join(", ")
        );
    }
    scenario.world.initial_websites =
        u32::try_from(objects).context("--objects must be at most 4294967295")?;
    Ok(scenario)
}

/// The plan from the run in `dir`: the searched capacity and the cost at it of each
/// repetition of each shard count, from its `summary.csv`.
fn plan_of(dir: &Path, target: Target) -> anyhow::Result<Plan> {
    let run = Run::read(dir)?;
    let measured = MeasuredWorld::read(dir)?;
    if !measured.searched {
        bail!(
            "{} is not a capacity search: plan reads runs of a scenario with a search: section",
            dir.display()
        );
    }
    let mut points = Vec::new();
    let mut costs = Vec::new();
    for count in &run.shard_counts {
        let samples = count.samples("search_capacity_ops_per_second");
        let invalid = count.repetitions.len() - samples.len();
        points.push(CapacityPoint::of(count.shards, samples, invalid));
        costs.push(ShardCost::of(
            count.shards,
            [
                count.samples("capacity_operator_cores_per_shard"),
                count.samples("capacity_operator_peak_bytes_per_shard"),
                count.samples("capacity_sharder_cores"),
                count.samples("capacity_sharder_peak_bytes"),
            ],
        ));
    }
    plan::plan(target, points, &costs, Some(measured.objects))
        .with_context(|| format!("cannot plan from {}", dir.display()))
}

/// Writes `plan.md`, `plan.json` and the plot into `dir`; returns the path of `plan.md`.
fn write(dir: &Path, plan: &Plan) -> anyhow::Result<PathBuf> {
    let markdown = dir.join("plan.md");
    let text = format!(
        "# Plan\n\n**{}**\n\n```text\n{}```\n\n![capacity against shards](plan.png)\n",
        plan.answer(),
        plan.table()
    );
    std::fs::write(&markdown, text).with_context(|| format!("writing {}", markdown.display()))?;
    let json = dir.join("plan.json");
    std::fs::write(&json, serde_json::to_string_pretty(plan)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    plan::plot::write(dir, plan)?;
    Ok(markdown)
}

/// What `run.json` says of the world a run measured.
#[derive(Debug)]
struct MeasuredWorld {
    /// Its Websites.
    objects: u64,
    /// Whether its scenario searched capacity.
    searched: bool,
}

impl MeasuredWorld {
    fn read(dir: &Path) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct RunJson {
            scenario: ScenarioJson,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ScenarioJson {
            world: WorldJson,
            search: Option<serde_json::Value>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct WorldJson {
            #[serde(default)]
            initial_websites: u64,
        }
        let path = dir.join("run.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let run: RunJson = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid run.json", path.display()))?;
        Ok(Self {
            objects: run.scenario.world.initial_websites,
            searched: run.scenario.search.is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEARCH: &str = "name: plan\nshards: [1, 2]\n\
                          world: {namespaces: 1, themes: 1, initialWebsites: 10}\n\
                          search:\n  churn: {from: 2, to: 64}\n  hold: 20s\n";

    fn scenario(text: &str) -> Scenario {
        Scenario::from_yaml(text, Path::new("plan.yaml")).unwrap()
    }

    #[test]
    fn plan_takes_a_search_of_one_strategy_and_sizes_its_world() {
        let planned = searching(scenario(SEARCH), Path::new("plan.yaml"), 300).unwrap();
        assert_eq!(planned.world.initial_websites, 300);
        let bounded = format!("{SEARCH}strategies: [bounded-load]\n");
        assert!(searching(scenario(&bounded), Path::new("plan.yaml"), 300).is_ok());
    }

    #[test]
    fn plan_rejects_a_load_and_several_strategies_before_anything_runs() {
        let both = format!("{SEARCH}strategies: [hash-ring, bounded-load]\n");
        let error = searching(scenario(&both), Path::new("plan.yaml"), 300).unwrap_err();
        assert_eq!(
            error.to_string(),
            "plan.yaml: strategies: plan sizes one assignment strategy, got hash-ring, \
             bounded-load: keep one, or run `loadgen experiment` to set them side by side"
        );
        let load = "name: load\nduration: 1m\nshards: [1]\nworld: {namespaces: 1, themes: 1}\n\
                    load:\n  create: {rate: 1, workers: 1}\n";
        let error = searching(scenario(load), Path::new("load.yaml"), 300).unwrap_err();
        assert!(
            error.to_string().contains("this one runs a load"),
            "{error}"
        );
    }
}
