//! `loadgen operator-cost`: the webhosting-operator's CPU and memory, N shards against one
//! singleton, on one local control plane in one run (docs/experiments.md#cost).
//!
//! 1. Starts the webhosting [`stack::Stack`]: etcd, kube-apiserver and kube-controller-manager
//!    (the deployment controller makes the Websites' Deployments Available), the APIs and the
//!    sharder; then the [`World`]: Themes `theme-<i>` and namespaces `project-<i>`.
//! 2. Sharded phase: starts `--shards` operator shards, waits until the ring counts them all
//!    available, creates `--websites` Websites at a steady rate (labelled `skip-workload`, so
//!    no pods run), waits until every one is Ready for its generation, lets the operators run
//!    idle for `--settle`, and reads each shard's usage and the Websites it owns (its
//!    `kube_website_info` series). Then stops the shards gracefully and deletes the Websites
//!    and their children.
//! 3. Singleton phase: the same with one `--mode singleton` operator.
//!
//! Both phases run on the same machine and control plane, so their ratios are comparable;
//! absolute figures depend on the machine. CPU seconds count from each process's start.

use std::{fmt::Write as _, io::Write, time::Duration};

use anyhow::{Context as _, bail};
use clap::Args;
use futures::StreamExt as _;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Service},
    networking::v1::Ingress,
};
use kube::{
    Api, ResourceExt as _,
    api::{DeleteParams, ListParams, PostParams},
};
use kube_sharding::api::labels;
use operations::duration::parse as parse_duration;
use serde::Serialize;
use stack::{Binaries, OperatorSettings, Stack, StackOptions, Usage};
use tokio::time::Instant;
use webhosting_operator::api::{Website, WebsitePhase};

use crate::{
    experiment::schedule::intended_offset,
    listing,
    measure::{as_f64, ratio},
    report::{Progress, ReportFormat, TextTable},
    units::{format_optional, format_ratio, mib},
    workload::Workload,
    world::World,
};

/// Arguments of `loadgen operator-cost`.
#[derive(Debug, Args)]
pub struct OperatorCostArgs {
    /// Websites created in each phase (sharded, then singleton).
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub websites: u32,

    /// Operator shards in the sharded phase: shard-0, shard-1, ...
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    pub shards: u16,

    /// Concurrent reconciliations of each operator process (`--workers`).
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,

    /// Themes the Websites pick from at random.
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub themes: u16,

    /// Project namespaces the Websites are spread over.
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub namespaces: u16,

    /// Website creates per second.
    #[arg(allow_negative_numbers = true, long, value_name = "PER_SECOND", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,

    /// Creates in flight at most.
    #[arg(allow_negative_numbers = true, long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,

    /// How long the operators run idle after every Website is Ready, before their usage is read.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub settle: Duration,

    /// How long the Websites of a phase may take to become Ready (or to be deleted).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Keep the control plane's directory (component, sharder and operator logs) at the end.
    #[arg(long)]
    pub keep_directory: bool,

    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

/// The label that tells the Websites (and, through them, their children) of a phase apart.
const PHASE_LABEL: &str = "loadgen.sharding.timebertt.dev/phase";
/// How often Websites are listed while waiting for them; a list of thousands is not free.
const LIST_INTERVAL: Duration = Duration::from_secs(2);
/// Where its progress goes.
const PROGRESS: Progress = Progress::new("operator-cost");

/// Runs the experiment and writes its report to `out`.
pub fn run(args: &OperatorCostArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let binaries = Binaries::next_to_current_exe()?;
    crate::report::run(args.format, out, experiment(args, &binaries))
}

fn progress(message: &str) {
    PROGRESS.note(message);
}

/// The whole run: set-up, both phases, and the report.
async fn experiment(args: &OperatorCostArgs, binaries: &Binaries) -> anyhow::Result<Report> {
    progress("starting a local control plane (etcd, kube-apiserver, kube-controller-manager)");
    let options = StackOptions::default().keep_directory(args.keep_directory);
    let stack = Stack::start(&binaries.sharder, &options).await?;
    progress(&format!(
        "sharder started (pid {})",
        stack.sharders.lock()[0].pid()
    ));
    let workload = Workload::websites(u32::from(args.themes));
    let world = World::create(
        &stack.client,
        u32::from(args.namespaces),
        std::slice::from_ref(&workload),
    )
    .await?;
    let mut run = Run {
        args,
        binaries,
        stack,
        world,
        workload,
    };

    let shards = (0..args.shards)
        .map(|i| OperatorSettings::sharded(format!("shard-{i}")))
        .collect();
    let shards_phase = run.phase("sharded", shards).await?;
    run.delete_websites("sharded").await?;
    let singleton = vec![OperatorSettings::singleton("singleton")];
    let singleton_phase = run.phase("singleton", singleton).await?;

    let stack = run.stack;
    let sharder_cost = ProcessCost::new("sharder", None, stack.sharders.lock()[0].usage()?);
    let control_plane_cost = stack
        .control_plane
        .pids()
        .into_iter()
        .map(|(name, pid)| Ok(ProcessCost::new(name, None, Usage::of_pid(pid)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    progress("stopping the sharder and the control plane");
    stack.stop().await;
    Ok(Report::new(
        Parameters::of(args),
        shards_phase,
        singleton_phase,
        sharder_cost,
        control_plane_cost,
    ))
}

/// What both phases share.
struct Run<'a> {
    args: &'a OperatorCostArgs,
    binaries: &'a Binaries,
    stack: Stack,
    world: World,
    /// The default Website workload, whose objects the phases create.
    workload: Workload,
}

impl Run<'_> {
    /// Starts `operators`, creates the Websites, waits until they are Ready and settled, reads
    /// the operators' usage and stops them.
    async fn phase(
        &mut self,
        phase: &str,
        operators: Vec<OperatorSettings>,
    ) -> anyhow::Result<PhaseReport> {
        let shards = operators.iter().filter(|s| !s.singleton).count();
        for settings in operators {
            let settings = OperatorSettings {
                workers: self.args.workers,
                ..settings
            };
            let pid = self
                .stack
                .start_operator(&self.binaries.operator, &settings)
                .await?;
            progress(&format!(
                "{phase}: started {} (pid {pid})",
                settings.identity
            ));
        }
        self.stack
            .wait_operators_ready(shards)
            .await
            .with_context(|| format!("{phase}: the operators did not get ready"))?;

        let websites = self.websites(phase)?;
        progress(&format!(
            "{phase}: creating {} Websites at {}/s",
            websites.len(),
            self.args.rate
        ));
        let started = Instant::now();
        let (created, create_errors) = self.create(websites).await;
        let create_seconds = started.elapsed().as_secs_f64();
        if created == 0 {
            bail!("{phase}: every Website create failed");
        }
        self.wait_websites_ready(phase, created).await?;
        let ready_seconds = started.elapsed().as_secs_f64();
        progress(&format!(
            "{phase}: all {created} Websites Ready after {ready_seconds:.1} s; settling for {:?}",
            self.args.settle
        ));
        tokio::time::sleep(self.args.settle).await;

        let mut costs = Vec::new();
        for process in self.stack.operators.lock().await.iter_mut() {
            let usage = process.usage()?;
            let websites = process.metric_sum("kube_website_info").await;
            costs.push(ProcessCost::new(process.identity(), websites, usage));
        }
        for exit in self.stack.operators.stop_all().await {
            progress(&format!(
                "{phase}: {} did not exit cleanly ({:?}); its log ends with:\n{}",
                exit.identity, exit.status, exit.log_tail
            ));
        }
        Ok(PhaseReport {
            created,
            create_errors,
            create_seconds,
            ready_seconds,
            processes: costs,
        })
    }

    /// The Websites of a phase, of the default Website workload (docs/workloads.md), spread
    /// evenly over the project namespaces and labelled with the phase.
    fn websites(&self, phase: &str) -> anyhow::Result<Vec<Website>> {
        let mut rng = rand::rng();
        let total = usize::try_from(self.args.websites).unwrap_or(usize::MAX);
        let namespaces = &self.world.namespaces;
        let mut websites = Vec::new();
        for (namespace, count) in namespaces.iter().zip(split_evenly(total, namespaces.len())) {
            for _ in 0..count {
                let index = websites.len() as u64;
                let context = self.world.context((index, namespace), phase, None);
                let mut website: Website =
                    serde_json::from_value(self.workload.object(&context, &mut rng)?)?;
                website
                    .metadata
                    .labels
                    .get_or_insert_default()
                    .insert(PHASE_LABEL.to_owned(), phase.to_owned());
                websites.push(website);
            }
        }
        Ok(websites)
    }

    /// Creates the Websites on a steady schedule of `--rate` per second with at most
    /// `--concurrency` in flight; returns the number created and the number that failed.
    async fn create(&self, websites: Vec<Website>) -> (usize, usize) {
        let start = Instant::now();
        let rate = self.args.rate;
        let concurrency = usize::try_from(self.args.concurrency).unwrap_or(1);
        futures::stream::iter(websites.into_iter().enumerate())
            .map(|(i, website)| {
                let namespace = website.metadata.namespace.clone().unwrap_or_default();
                let api = Api::<Website>::namespaced(self.stack.client.clone(), &namespace);
                async move {
                    let intended = start + intended_offset(u64::try_from(i).unwrap_or(0), rate);
                    tokio::time::sleep_until(intended).await;
                    api.create(&PostParams::default(), &website).await
                }
            })
            .buffer_unordered(concurrency)
            .fold((0, 0), |(created, errors), result| async move {
                match result {
                    Ok(_) => (created + 1, errors),
                    Err(err) => {
                        if errors == 0 {
                            progress(&format!("a create failed: {err}"));
                        }
                        (created, errors + 1)
                    }
                }
            })
            .await
    }

    /// Waits until `expected` Websites of the phase are Ready for their current generation.
    async fn wait_websites_ready(&mut self, phase: &str, expected: usize) -> anyhow::Result<()> {
        let websites = Api::<Website>::all(self.stack.client.clone());
        let selector = format!("{PHASE_LABEL}={phase}");
        let deadline = Instant::now() + self.args.timeout;
        let mut last_ready = 0;
        loop {
            self.stack.check_alive().await?;
            let listed = listing::all(&websites, Some(&selector)).await?;
            let ready = listed.iter().filter(|w| is_reconciled(w)).count();
            if ready >= expected {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{phase}: only {ready} of {expected} Websites were Ready after {:?}; {}",
                    self.args.timeout,
                    not_ready_summary(&listed)
                );
            }
            if ready != last_ready {
                progress(&format!("{phase}: {ready}/{expected} Websites Ready"));
                last_ready = ready;
            }
            tokio::time::sleep(LIST_INTERVAL).await;
        }
    }

    /// Deletes the phase's Websites and waits until they and their children are gone, so that
    /// the next phase's operator does not spend its time on the garbage collector's deletes.
    async fn delete_websites(&mut self, phase: &str) -> anyhow::Result<()> {
        progress(&format!(
            "{phase}: deleting the Websites and their children"
        ));
        let selector = format!("{PHASE_LABEL}={phase}");
        let params = ListParams::default().labels(&selector);
        for namespace in &self.world.namespaces {
            Api::<Website>::namespaced(self.stack.client.clone(), namespace)
                .delete_collection(&DeleteParams::background(), &params)
                .await
                .with_context(|| format!("cannot delete the Websites in {namespace}"))?;
        }
        let client = &self.stack.client;
        let sharders = &self.stack.sharders;
        let what = format!("the deletion of the {phase} Websites and their children");
        stack::wait_for(
            &what,
            self.args.timeout,
            || sharders.check_alive(),
            || async {
                let gone = !listing::any(&Api::<Website>::all(client.clone()), &selector).await?
                    && !listing::any(&Api::<Deployment>::all(client.clone()), &selector).await?
                    && !listing::any(&Api::<ConfigMap>::all(client.clone()), &selector).await?
                    && !listing::any(&Api::<Service>::all(client.clone()), &selector).await?
                    && !listing::any(&Api::<Ingress>::all(client.clone()), &selector).await?;
                Ok(gone.then_some(()))
            },
        )
        .await
    }
}

/// Ready for its current generation: the operator reconciled the latest spec (docs/experiments.md).
fn is_reconciled(website: &Website) -> bool {
    website.status.as_ref().is_some_and(|status| {
        status.phase == Some(WebsitePhase::Ready)
            && status.observed_generation >= website.metadata.generation
    })
}

/// The Websites that are not Ready for their generation, counted by shard and phase, e.g.
/// `not Ready: 40 Pending on shard-1, 7 without status unassigned`.
fn not_ready_summary(websites: &[Website]) -> String {
    let shard_label = labels::shard(stack::WEBHOSTING_RING);
    let mut counts = std::collections::BTreeMap::<(String, String), usize>::new();
    for website in websites.iter().filter(|w| !is_reconciled(w)) {
        let shard = website
            .labels()
            .get(&shard_label)
            .map_or_else(|| "unassigned".to_owned(), |s| format!("on {s}"));
        let phase = match website.status.as_ref().and_then(|s| s.phase) {
            Some(WebsitePhase::Ready) => "Ready for an older generation".to_owned(),
            Some(phase) => phase.to_string(),
            None => "without status".to_owned(),
        };
        *counts.entry((phase, shard)).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .into_iter()
        .map(|((phase, shard), count)| format!("{count} {phase} {shard}"))
        .collect();
    format!("not Ready: {}", parts.join(", "))
}

/// `total` split into `parts` counts that differ by one at most, larger ones first.
fn split_evenly(total: usize, parts: usize) -> Vec<usize> {
    let parts = parts.max(1);
    (0..parts)
        .map(|i| total / parts + usize::from(i < total % parts))
        .collect()
}

/// The experiment's results and parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The run's parameters.
    pub parameters: Parameters,
    /// The shards' phase.
    pub sharded: PhaseReport,
    /// The singleton's phase.
    pub singleton: PhaseReport,
    /// Each shard against the singleton.
    pub shard_ratios: Vec<Ratios>,
    /// The mean shard against the singleton.
    pub mean_shard_ratios: Ratios,
    /// The sharder over the whole run.
    pub sharder: ProcessCost,
    /// The control plane's components over the whole run.
    pub control_plane: Vec<ProcessCost>,
}

/// The run's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Parameters {
    /// Websites per phase.
    pub websites: u32,
    /// Shards in the sharded phase.
    pub shards: u16,
    /// Workers of each operator process.
    pub workers: u16,
    /// Themes.
    pub themes: u16,
    /// Project namespaces.
    pub namespaces: u16,
    /// Creates per second.
    pub rate_per_second: u32,
    /// Creates in flight at most.
    pub concurrency: u32,
    /// Idle time before the usage is read.
    pub settle_seconds: f64,
}

impl Parameters {
    fn of(args: &OperatorCostArgs) -> Self {
        Self {
            websites: args.websites,
            shards: args.shards,
            workers: args.workers,
            themes: args.themes,
            namespaces: args.namespaces,
            rate_per_second: args.rate,
            concurrency: args.concurrency,
            settle_seconds: args.settle.as_secs_f64(),
        }
    }
}

/// One phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// Websites created.
    pub created: usize,
    /// Failed creates.
    pub create_errors: usize,
    /// From the first create to the last.
    pub create_seconds: f64,
    /// From the first create until every Website was Ready.
    pub ready_seconds: f64,
    /// Each operator process, read after the settle time.
    pub processes: Vec<ProcessCost>,
}

/// What one process used since it started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessCost {
    /// Its name: the shard, `singleton`, `sharder` or a control plane component.
    pub name: String,
    /// The Websites in its cache (`kube_website_info` series), if it is an operator and could
    /// be scraped.
    pub websites: Option<f64>,
    /// User plus system CPU time.
    pub cpu_seconds: f64,
    /// Resident memory (VmRSS).
    pub rss_mib: f64,
    /// Peak resident memory (VmHWM).
    pub peak_rss_mib: f64,
}

impl ProcessCost {
    fn new(name: &str, websites: Option<f64>, usage: Usage) -> Self {
        Self {
            name: name.to_owned(),
            websites,
            cpu_seconds: usage.cpu_seconds,
            rss_mib: mib(usage.rss_bytes),
            peak_rss_mib: mib(usage.peak_rss_bytes),
        }
    }
}

/// A shard's figures divided by the singleton's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratios {
    /// The shard, or `mean`.
    pub name: String,
    /// Websites owned.
    pub websites: Option<f64>,
    /// CPU seconds.
    pub cpu: Option<f64>,
    /// RSS.
    pub rss: Option<f64>,
    /// Peak RSS.
    pub peak_rss: Option<f64>,
}

impl Ratios {
    fn of(shard: &ProcessCost, singleton: &ProcessCost) -> Self {
        Self {
            name: shard.name.clone(),
            websites: shard
                .websites
                .zip(singleton.websites)
                .and_then(|(s, t)| ratio(s, t)),
            cpu: ratio(shard.cpu_seconds, singleton.cpu_seconds),
            rss: ratio(shard.rss_mib, singleton.rss_mib),
            peak_rss: ratio(shard.peak_rss_mib, singleton.peak_rss_mib),
        }
    }
}

/// The mean of `costs`, named `name`; websites only when every process has them.
fn mean(name: &str, costs: &[ProcessCost]) -> ProcessCost {
    let n = as_f64(costs.len().max(1) as u64);
    let websites: Option<Vec<f64>> = costs.iter().map(|c| c.websites).collect();
    ProcessCost {
        name: name.to_owned(),
        websites: websites.map(|w| w.iter().sum::<f64>() / n),
        cpu_seconds: costs.iter().map(|c| c.cpu_seconds).sum::<f64>() / n,
        rss_mib: costs.iter().map(|c| c.rss_mib).sum::<f64>() / n,
        peak_rss_mib: costs.iter().map(|c| c.peak_rss_mib).sum::<f64>() / n,
    }
}

impl Report {
    fn new(
        parameters: Parameters,
        sharded: PhaseReport,
        singleton: PhaseReport,
        sharder_cost: ProcessCost,
        control_plane: Vec<ProcessCost>,
    ) -> Self {
        let reference = singleton
            .processes
            .first()
            .cloned()
            .unwrap_or_else(|| mean("singleton", &[]));
        let shard_ratios = sharded
            .processes
            .iter()
            .map(|shard| Ratios::of(shard, &reference))
            .collect();
        let mean_shard_ratios = Ratios::of(&mean("mean", &sharded.processes), &reference);
        Self {
            parameters,
            sharded,
            singleton,
            shard_ratios,
            mean_shard_ratios,
            sharder: sharder_cost,
            control_plane,
        }
    }
}

impl crate::report::Report for Report {
    fn table(&self) -> String {
        let p = &self.parameters;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "operator-cost: {} Websites per phase ({} Themes, {} namespaces, {} creates/s, {} in flight), {} shards vs 1 singleton, {} workers each, settle {} s\n",
            p.websites,
            p.themes,
            p.namespaces,
            p.rate_per_second,
            p.concurrency,
            p.shards,
            p.workers,
            p.settle_seconds
        );
        let mut processes = TextTable::new(&[
            "process",
            "websites",
            "CPU s",
            "RSS MiB",
            "peak MiB",
            "CPU/single",
            "peak/single",
        ]);
        let rows = self
            .sharded
            .processes
            .iter()
            .zip(&self.shard_ratios)
            .map(|(cost, ratios)| (cost.clone(), Some(ratios)))
            .chain([(
                mean("shard mean", &self.sharded.processes),
                Some(&self.mean_shard_ratios),
            )])
            .chain(self.singleton.processes.iter().map(|c| (c.clone(), None)));
        for (cost, ratios) in rows {
            processes.row([
                cost.name,
                format_optional(cost.websites, 0),
                format!("{:.2}", cost.cpu_seconds),
                format!("{:.1}", cost.rss_mib),
                format!("{:.1}", cost.peak_rss_mib),
                format_ratio(ratios.and_then(|r| r.cpu)),
                format_ratio(ratios.and_then(|r| r.peak_rss)),
            ]);
        }
        text.push_str(&processes.render());
        let m = &self.mean_shard_ratios;
        let _ = writeln!(
            text,
            "\n  mean shard / singleton, measured in this run: websites {}, CPU {}, RSS {}, peak RSS {}",
            format_ratio(m.websites),
            format_ratio(m.cpu),
            format_ratio(m.rss),
            format_ratio(m.peak_rss)
        );
        for (name, phase) in [("sharded", &self.sharded), ("singleton", &self.singleton)] {
            let _ = writeln!(
                text,
                "  {name}: {} created ({} errors) in {:.1} s, all Ready after {:.1} s",
                phase.created, phase.create_errors, phase.create_seconds, phase.ready_seconds
            );
        }
        let _ = writeln!(text, "\nover the whole run");
        let mut whole_run = TextTable::new(&[]);
        for cost in std::iter::once(&self.sharder).chain(&self.control_plane) {
            whole_run.row([
                cost.name.clone(),
                format!("{:.2} CPU s", cost.cpu_seconds),
                format!("{:.1} MiB RSS", cost.rss_mib),
                format!("{:.1} MiB peak", cost.peak_rss_mib),
            ]);
        }
        text.push_str(&whole_run.render());
        text
    }
}

#[cfg(test)]
mod tests {
    use kube::api::ObjectMeta;
    use webhosting_operator::api::{WebsiteSpec, WebsiteStatus};

    use super::*;
    use crate::report::Report as _;

    #[test]
    fn websites_not_ready_are_counted_by_phase_and_shard() {
        let mut on_shard = website(1, Some(1), Some(WebsitePhase::Pending));
        on_shard.metadata.labels =
            Some([(labels::shard("webhosting-operator"), "shard-1".to_owned())].into());
        let websites = [
            on_shard.clone(),
            on_shard,
            website(2, Some(1), Some(WebsitePhase::Ready)),
            website(1, None, None),
            website(1, Some(1), Some(WebsitePhase::Ready)),
        ];
        assert_eq!(
            not_ready_summary(&websites),
            "not Ready: 2 Pending on shard-1, 1 Ready for an older generation unassigned, \
             1 without status unassigned"
        );
    }

    #[test]
    fn websites_are_split_evenly_over_namespaces() {
        assert_eq!(split_evenly(10, 4), [3, 3, 2, 2]);
        assert_eq!(split_evenly(2, 4), [1, 1, 0, 0]);
        assert_eq!(split_evenly(9, 3), [3, 3, 3]);
        assert_eq!(split_evenly(5, 0), [5]);
    }

    fn website(generation: i64, observed: Option<i64>, phase: Option<WebsitePhase>) -> Website {
        Website {
            metadata: ObjectMeta {
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            spec: WebsiteSpec {
                theme: "theme-0".into(),
            },
            status: Some(WebsiteStatus {
                observed_generation: observed,
                phase,
                last_transition_time: None,
            }),
        }
    }

    #[test]
    fn a_website_counts_when_ready_for_its_generation() {
        assert!(is_reconciled(&website(
            2,
            Some(2),
            Some(WebsitePhase::Ready)
        )));
        assert!(!is_reconciled(&website(
            2,
            Some(1),
            Some(WebsitePhase::Ready)
        )));
        assert!(!is_reconciled(&website(
            2,
            Some(2),
            Some(WebsitePhase::Pending)
        )));
        assert!(!is_reconciled(&website(1, None, None)));
    }

    fn cost(name: &str, websites: f64, cpu: f64, rss: f64) -> ProcessCost {
        ProcessCost {
            name: name.into(),
            websites: Some(websites),
            cpu_seconds: cpu,
            rss_mib: rss,
            peak_rss_mib: rss * 2.0,
        }
    }

    fn phase(processes: Vec<ProcessCost>) -> PhaseReport {
        PhaseReport {
            created: 300,
            create_errors: 0,
            create_seconds: 6.0,
            ready_seconds: 20.0,
            processes,
        }
    }

    fn report() -> Report {
        let args = OperatorCostArgs {
            websites: 300,
            shards: 3,
            workers: 5,
            themes: 5,
            namespaces: 4,
            rate: 50,
            concurrency: 16,
            settle: Duration::from_secs(20),
            timeout: Duration::from_secs(600),
            keep_directory: false,
            format: ReportFormat::Table,
        };
        Report::new(
            Parameters::of(&args),
            phase(vec![
                cost("shard-0", 90.0, 2.0, 30.0),
                cost("shard-1", 100.0, 3.0, 30.0),
                cost("shard-2", 110.0, 4.0, 36.0),
            ]),
            phase(vec![cost("singleton", 300.0, 8.0, 60.0)]),
            cost("sharder", 0.0, 1.0, 20.0),
            vec![cost("kube-apiserver", 0.0, 50.0, 400.0)],
        )
    }

    #[test]
    fn ratios_compare_each_shard_and_the_mean_with_the_singleton() {
        let report = report();
        assert_eq!(report.shard_ratios[0].cpu, Some(0.25));
        assert_eq!(report.shard_ratios[2].peak_rss, Some(0.6));
        let mean = &report.mean_shard_ratios;
        assert_eq!(mean.name, "mean");
        assert_eq!(mean.websites, Some(100.0 / 300.0));
        assert_eq!(mean.cpu, Some(3.0 / 8.0));
        assert_eq!(mean.rss, Some(32.0 / 60.0));
    }

    #[test]
    fn the_table_has_a_row_per_process_and_the_ratios() {
        let table = report().table();
        for needle in [
            "3 shards vs 1 singleton",
            "shard-1",
            "shard mean",
            "singleton",
            "0.25x",
            "mean shard / singleton, measured in this run: websites 0.33x, CPU 0.38x",
            "all Ready after 20.0 s",
            "kube-apiserver",
        ] {
            assert!(table.contains(needle), "{needle:?} not in\n{table}");
        }
    }

    #[test]
    fn the_json_report_carries_both_phases_and_the_ratios() {
        let value = serde_json::to_value(report()).unwrap();
        assert_eq!(value["sharded"]["processes"][0]["name"], "shard-0");
        assert_eq!(value["singleton"]["processes"][0]["websites"], 300.0);
        assert_eq!(value["mean_shard_ratios"]["cpu"], 0.375);
        assert_eq!(value["parameters"]["shards"], 3);
    }
}
