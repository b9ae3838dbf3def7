//! The local target: for each shard count a fresh control plane (etcd, kube-apiserver,
//! kube-controller-manager) on loopback with the manifests of the controller under test, the
//! sharder and N shards of the controller as processes started from its command template, so
//! that every shard count starts from the same empty state.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    path::{Path, PathBuf},
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use stack::{
    ControllerSetup, LeaderElection, RestartPolicy, ShardCommand, SharderSettings, Stack,
    StackOptions, Usage,
};

use crate::{
    measure::cost::{MachineCpu, UsageSample},
    results::Machine,
    scenario::{Controller, LocalController, Operator, ShardValues, Sharder, Signal},
};

/// The directory of the shards' audit logs in the control plane's directory.
const AUDIT_DIRECTORY: &str = "audit";

/// How long the stack gets to become ready, and a new shard to become available.
const PATIENCE: Duration = Duration::from_secs(120);

/// How long a replacement shard takes to start after a kill. A Deployment's new pod needs
/// a few seconds to be scheduled and started; a local process starts at once, which would
/// make the replacement join in the same moment as the kill and blur the two membership
/// changes into one.
const REPLACEMENT_DELAY: Duration = Duration::from_secs(2);

/// The local target.
pub struct Local {
    /// The sharder's executable.
    sharder: PathBuf,
    /// `{{ bin }}` of the command templates: where the workspace's binaries are.
    bin: PathBuf,
    keep_directory: bool,
    controller: Controller,
    running: Option<Running>,
}

/// The stack of one shard count.
struct Running {
    stack: Stack,
    /// What every shard's command is rendered with.
    shards: ShardTemplate,
    /// Every new shard gets a new name, as a new pod of a Deployment does.
    next_shard: AtomicU32,
    /// The slot of every shard started: a replacement takes the slot of the shard it
    /// replaces, so restarts are counted per slot (docs/experiments.md#cost).
    slots: Mutex<BTreeMap<String, u32>>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("sharder", &self.sharder)
            .field("bin", &self.bin)
            .field("controller", &self.controller.name)
            .field("keep_directory", &self.keep_directory)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl Local {
    /// A local target running the sharder `sharder` and shards of `controller`, whose command
    /// finds the workspace's binaries in `bin`.
    ///
    /// # Errors
    /// The controller has no `local` section, or its program is missing (checked now rather
    /// than after the control plane has started).
    pub fn new(
        sharder: PathBuf,
        bin: PathBuf,
        keep_directory: bool,
        controller: Controller,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            controller.local.is_some(),
            "controller {} has no `local` section: it runs only on the cluster target",
            controller.name
        );
        let sample = ShardValues {
            bin: &bin,
            shard: "shard-0",
            kubeconfig: &bin,
            metrics_port: 0,
            health_port: 0,
            audit_file: &bin,
        };
        let program = controller
            .shard_command(&sample, &Operator::default())?
            .program;
        if let Some(problem) = missing_program(Path::new(&program)) {
            anyhow::bail!("controller.local.command[0]: {problem}");
        }
        Ok(Self {
            sharder,
            bin,
            keep_directory,
            controller,
            running: None,
        })
    }

    /// Starts a fresh stack with `shards` shards and the replicas of `sharder` (with leader
    /// election and [`LeaderElection::SHORT`] timings when there are several, and its sync
    /// period), and waits until the ring counts them all.
    pub async fn prepare(
        &mut self,
        shards: u32,
        operator: &Operator,
        sharder: Sharder,
    ) -> anyhow::Result<()> {
        self.finish().await?;
        let local = self.local()?;
        let setup = ControllerSetup {
            ring: self.controller.ring.clone(),
            lease_namespace: self.controller.lease_namespace.clone(),
            manifests: local.manifests.clone(),
        };
        let settings = SharderSettings {
            leader_election: (sharder.replicas > 1).then_some(LeaderElection::SHORT),
            sync_period: sharder.sync_period,
            ..SharderSettings::default()
        };
        let options = StackOptions::default()
            .controller(setup)
            .sharder(settings)
            .sharder_replicas(sharder.replicas)
            .keep_directory(self.keep_directory)
            .patience(PATIENCE);
        let stack = Stack::start(&self.sharder, &options).await?;
        if self.keep_directory {
            eprintln!(
                "the control plane's files are kept in {}",
                stack.control_plane.directory().display()
            );
        }
        let audit_dir = stack.control_plane.directory().join(AUDIT_DIRECTORY);
        std::fs::create_dir_all(&audit_dir)
            .with_context(|| format!("cannot create {}", audit_dir.display()))?;
        let shard_template = ShardTemplate {
            controller: self.controller.clone(),
            operator: *operator,
            bin: self.bin.clone(),
            kubeconfig: stack.control_plane.kubeconfig_path(),
            audit_dir,
        };
        let running = Running {
            stack,
            shards: shard_template,
            next_shard: AtomicU32::new(0),
            slots: Mutex::default(),
        };
        for slot in 0..shards {
            running.start_shard(slot).await?;
        }
        running
            .stack
            .wait_operators_ready(usize::try_from(shards)?)
            .await?;
        self.running = Some(running);
        Ok(())
    }

    /// The controller under test.
    #[must_use]
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// A client of the control plane's API server.
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(self.running()?.stack.client.clone())
    }

    /// The names of the shards that run.
    pub async fn shards(&self) -> Vec<String> {
        match &self.running {
            Some(running) => running.stack.operators.identities().await,
            None => Vec::new(),
        }
    }

    /// Signals `shard` and waits until it has exited; with `replace`, starts a new shard
    /// [`REPLACEMENT_DELAY`] later.
    pub async fn kill(&self, shard: &str, signal: Signal, replace: bool) -> anyhow::Result<()> {
        let running = self.running()?;
        let slot = running.slot(shard)?;
        let mut process = running.stack.operators.take(shard).await?;
        match signal {
            Signal::Term => process.stop().await,
            Signal::Kill => process.kill().await,
        };
        if replace {
            tokio::time::sleep(REPLACEMENT_DELAY).await;
            running.start_shard(slot).await?;
        }
        Ok(())
    }

    /// For each shard, starts a new one, waits until the ring counts it, and stops the old
    /// one gracefully: a Deployment's rolling update with a surge of one.
    pub async fn rolling_update(&self) -> anyhow::Result<()> {
        let running = self.running()?;
        let old: Vec<String> = self.shards().await;
        let count = u32::try_from(old.len())?;
        for shard in old {
            running.start_shard(running.slot(&shard)?).await?;
            running.wait_available(count + 1).await?;
            running.stack.operators.take(&shard).await?.stop().await;
        }
        Ok(())
    }

    /// CPU and memory of the sharder, each shard and the control plane's processes, from
    /// `/proc`.
    pub async fn usage(&self) -> anyhow::Result<Vec<UsageSample>> {
        let running = self.running()?;
        let at = Timestamp::now();
        let mut pids: Vec<(String, u32)> = running
            .stack
            .sharders
            .lock()
            .iter()
            .map(|replica| (replica.name().to_owned(), replica.pid()))
            .collect();
        pids.extend(
            running
                .stack
                .operators
                .lock()
                .await
                .iter()
                .map(|p| (p.identity().to_owned(), p.pid())),
        );
        pids.extend(
            running
                .stack
                .control_plane
                .pids()
                .into_iter()
                .map(|(name, pid)| (name.to_owned(), pid)),
        );
        // A process may exit between listing and reading it (a shard being killed).
        Ok(pids
            .into_iter()
            .filter_map(|(component, pid)| {
                let usage = Usage::of_pid(pid).ok()?;
                Some(UsageSample {
                    at,
                    component,
                    cpu_seconds: usage.cpu_seconds,
                    // The high-water mark, so that a peak between samples is not missed.
                    rss_bytes: usage.peak_rss_bytes,
                })
            })
            .collect())
    }

    /// The slot of every shard started since [`Self::prepare`].
    pub fn slots(&self) -> anyhow::Result<BTreeMap<String, u32>> {
        Ok(self.running()?.slots().clone())
    }

    /// Each running shard's `/metrics`.
    pub async fn operator_metrics(&self) -> Vec<(String, String)> {
        let Some(running) = &self.running else {
            return Vec::new();
        };
        let operators = running.stack.operators.lock().await;
        let mut scrapes = Vec::new();
        for process in operators.iter() {
            if let Some(text) = process.scrape().await {
                scrapes.push((process.identity().to_owned(), text));
            }
        }
        scrapes
    }

    /// The `/metrics` of each sharder replica that answers, by name.
    pub async fn sharder_metrics(&self) -> Vec<(String, String)> {
        match &self.running {
            Some(running) => running.stack.sharders.scrape().await,
            None => Vec::new(),
        }
    }

    /// Every shard's audit log so far, as (file name, text); `None` when the controller's
    /// command does not pass `{{ audit_file }}` (docs/experiments.md#ownership). A shard that
    /// reconciled nothing may have written no file.
    ///
    /// # Errors
    /// The directory or a log cannot be read.
    pub fn audit_logs(&self) -> anyhow::Result<Option<Vec<(String, String)>>> {
        if !self.controller.uses("audit_file") {
            return Ok(None);
        }
        let dir = &self.running()?.shards.audit_dir;
        let mut logs = Vec::new();
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let path = entry?.path();
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            logs.push((name, text));
        }
        logs.sort();
        Ok(Some(logs))
    }

    /// Restarts the processes of the stack that exit, as a kubelet would
    /// (docs/experiments.md#the-supervisor), until dropped; returns only with the error of a
    /// crash loop. Chaos and rolling updates take their shards out of its sight first.
    pub async fn supervise(&self) -> anyhow::Error {
        match self.running() {
            Ok(running) => running.stack.supervise(RestartPolicy::default()).await,
            Err(error) => error,
        }
    }

    /// The restarts of each process by the supervisor since [`Self::prepare`], by name.
    pub fn restarts(&self) -> anyhow::Result<BTreeMap<String, usize>> {
        Ok(self.running()?.stack.restarts())
    }

    /// The name of the sharder replica that leads (`sharder-1`).
    pub async fn sharder_leader(&self) -> anyhow::Result<String> {
        let stack = &self.running()?.stack;
        stack.sharders.leader(&stack.client).await
    }

    /// Kills the sharder replica `name` with SIGKILL, as a crash; the supervisor restarts it.
    pub fn crash_sharder(&self, name: &str) -> anyhow::Result<()> {
        self.with_sharder(name, stack::SharderProcess::crash)
    }

    /// Pauses (SIGSTOP) or resumes (SIGCONT) the sharder replica `name`, or else the shard
    /// `name`.
    pub async fn pause(&self, name: &str, pause: bool) -> anyhow::Result<()> {
        let running = self.running()?;
        let is_sharder = running
            .stack
            .sharders
            .lock()
            .iter()
            .any(|replica| replica.name() == name);
        if is_sharder {
            return self.with_sharder(name, |replica| {
                if pause {
                    replica.pause()
                } else {
                    replica.resume()
                }
            });
        }
        let mut shards = running.stack.operators.lock().await;
        let shard = shards
            .iter_mut()
            .find(|shard| shard.identity() == name)
            .with_context(|| format!("no shard or sharder replica {name} runs"))?;
        if pause { shard.pause() } else { shard.resume() }
    }

    /// Stops kube-apiserver (SIGKILL); returns whether it ran.
    pub fn stop_api_server(&self) -> anyhow::Result<bool> {
        Ok(self.running()?.stack.control_plane.stop_api_server())
    }

    /// Starts kube-apiserver again, as it ran before, and waits until it is ready.
    pub async fn start_api_server(&self) -> anyhow::Result<()> {
        Ok(self
            .running()?
            .stack
            .control_plane
            .start_api_server()
            .await?)
    }

    /// Calls `act` on the sharder replica `name`.
    fn with_sharder(
        &self,
        name: &str,
        act: impl FnOnce(&mut stack::SharderProcess) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let running = self.running()?;
        let mut replicas = running.stack.sharders.lock();
        let replica = replicas
            .iter_mut()
            .find(|replica| replica.name() == name)
            .with_context(|| format!("no sharder replica {name} runs"))?;
        act(replica)
    }

    /// Stops the shards, the sharder and the control plane.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(running) = self.running.take() {
            running.stack.stop().await;
        }
        Ok(())
    }

    fn local(&self) -> anyhow::Result<&LocalController> {
        self.controller
            .local
            .as_ref()
            .with_context(|| format!("controller {} has no `local` section", self.controller.name))
    }

    fn running(&self) -> anyhow::Result<&Running> {
        self.running
            .as_ref()
            .context("the local target is not prepared")
    }
}

impl Running {
    /// Starts a new shard in `slot`.
    async fn start_shard(&self, slot: u32) -> anyhow::Result<()> {
        let n = self.next_shard.fetch_add(1, Ordering::Relaxed);
        let identity = format!("shard-{n}");
        let command = self
            .shards
            .command(&identity, stack::free_port()?, stack::free_port()?)?;
        // The slot is known before the shard can be listed (and killed); a shard that did not
        // start fills none.
        self.slots().insert(identity.clone(), slot);
        let started = self
            .stack
            .operators
            .start_command(&self.stack.control_plane, &command)
            .await;
        if started.is_err() {
            self.slots().remove(&identity);
        }
        started?;
        Ok(())
    }

    /// The slots; a panic while holding them cannot leave an insert half done.
    fn slots(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u32>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of `shard`, which this target started.
    fn slot(&self, shard: &str) -> anyhow::Result<u32> {
        self.slots()
            .get(shard)
            .copied()
            .with_context(|| format!("{shard} is not a shard of this target"))
    }

    /// Waits until the ring counts `shards` available shards and every process is ready.
    async fn wait_available(&self, shards: u32) -> anyhow::Result<()> {
        let stack = &self.stack;
        stack
            .operators
            .wait_ready(&stack.client, usize::try_from(shards)?, PATIENCE, || Ok(()))
            .await
    }
}

/// Why `program` cannot be started, if a path names it and nothing is there: with the command
/// that builds it, assuming a workspace binary of that name. A bare name is looked up in `PATH`
/// when it starts.
fn missing_program(program: &Path) -> Option<String> {
    if program.components().count() < 2 || program.is_file() {
        return None;
    }
    let name = program.file_name()?.to_string_lossy();
    Some(format!(
        "{} is missing: build it with `cargo build --release -p {name}` or fix the path",
        program.display()
    ))
}

/// What every shard's command is rendered from.
struct ShardTemplate {
    controller: Controller,
    operator: Operator,
    bin: PathBuf,
    kubeconfig: PathBuf,
    /// Where each shard's audit log goes, `<shard>.jsonl` (docs/experiments.md#ownership).
    audit_dir: PathBuf,
}

impl ShardTemplate {
    /// The command of shard `identity` on the given loopback ports.
    fn command(
        &self,
        identity: &str,
        metrics_port: u16,
        health_port: u16,
    ) -> anyhow::Result<ShardCommand> {
        let audit_file = audit_file(&self.audit_dir, identity);
        let values = ShardValues {
            bin: &self.bin,
            shard: identity,
            kubeconfig: &self.kubeconfig,
            metrics_port,
            health_port,
            audit_file: &audit_file,
        };
        let rendered = self.controller.shard_command(&values, &self.operator)?;
        let ready_path = self
            .controller
            .local
            .as_ref()
            .and_then(|local| local.ready_path.clone());
        Ok(ShardCommand {
            identity: identity.to_owned(),
            program: rendered.program.into(),
            args: rendered.args.into_iter().map(OsString::from).collect(),
            env: rendered
                .env
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
            metrics_port,
            health_port,
            ready_path,
        })
    }
}

/// The audit log of shard `identity` in `dir`.
fn audit_file(dir: &Path, identity: &str) -> PathBuf {
    dir.join(format!("{identity}.jsonl"))
}

/// This machine: logical CPUs, physical memory and the kernel.
pub fn machine() -> anyhow::Result<Machine> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    };
    Ok(Machine {
        cores: u32::try_from(cores)?,
        memory_bytes: mem_total_bytes(&meminfo).unwrap_or(0),
        os: format!(
            "{} {}",
            read("/proc/sys/kernel/ostype"),
            read("/proc/sys/kernel/osrelease")
        )
        .trim()
        .to_owned(),
    })
}

/// All cores' CPU time so far, from `/proc/stat`.
pub fn machine_cpu() -> anyhow::Result<MachineCpu> {
    let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    proc_stat_cpu(&stat).context("no cpu line in /proc/stat")
}

/// The `cpu` line of `/proc/stat` (all cores, in clock ticks): busy is everything but `idle`
/// and `iowait`. `guest` and `guest_nice` are left out, as `user` and `nice` include them.
fn proc_stat_cpu(stat: &str) -> Option<MachineCpu> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let total: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some(MachineCpu {
        busy: crate::measure::as_f64(total.checked_sub(idle)?),
        total: crate::measure::as_f64(total),
    })
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn total_memory_is_read_from_meminfo_in_kib() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total_bytes(meminfo), Some(24_576_000 * 1024));
        assert_eq!(mem_total_bytes("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn machine_cpu_is_busy_all_but_idle_and_iowait_of_all_cores() {
        let stat = "cpu  100 5 20 800 50 3 2 20 10 0\ncpu0 50 2 10 400 25 1 1 10 5 0\n";
        // user nice system idle iowait irq softirq steal; guest is inside user.
        let cpu = proc_stat_cpu(stat).unwrap();
        assert!((cpu.total - 1000.0).abs() < 1e-9);
        assert!((cpu.busy - 150.0).abs() < 1e-9);
        assert_eq!(proc_stat_cpu("cpu0 1 2 3 4\n"), None);
        assert_eq!(proc_stat_cpu("cpu  1 x 3 4\n"), None);
        let here = machine_cpu().unwrap();
        assert!(here.busy <= here.total && here.total > 0.0);
    }

    #[test]
    fn a_missing_program_is_named_with_how_to_build_it() {
        assert_eq!(
            missing_program(Path::new("/nowhere/checksum-controller")).unwrap(),
            "/nowhere/checksum-controller is missing: build it with `cargo build --release -p \
             checksum-controller` or fix the path"
        );
        assert_eq!(missing_program(Path::new("/bin/sh")), None);
        assert_eq!(missing_program(Path::new("kubectl")), None);
        let controller = Controller::webhosting_operator();
        let error = Local::new("sharder".into(), "/nowhere".into(), false, controller);
        assert!(
            format!("{:#}", error.unwrap_err()).starts_with(
                "controller.local.command[0]: /nowhere/webhosting-operator is missing"
            )
        );
    }

    #[test]
    fn the_default_controller_starts_shards_as_the_operator_always_was() {
        let template = ShardTemplate {
            controller: Controller::webhosting_operator(),
            operator: Operator {
                workers: 7,
                simulated_work: Duration::from_millis(50),
                lease_duration: Duration::from_secs(10),
            },
            bin: PathBuf::from("/w/target/release"),
            kubeconfig: PathBuf::from("/tmp/cp/kubeconfig"),
            audit_dir: PathBuf::from("/tmp/cp/audit"),
        };
        let command = template.command("shard-3", 8080, 8081).unwrap();
        let settings = stack::OperatorSettings {
            workers: 7,
            simulated_work: Duration::from_millis(50),
            lease_duration: Duration::from_secs(10),
            audit_file: Some(PathBuf::from("/tmp/cp/audit/shard-3.jsonl")),
            ..stack::OperatorSettings::sharded("shard-3")
        };
        let operator = Path::new("/w/target/release/webhosting-operator");
        assert_eq!(command, settings.command(operator, 8080, 8081));
    }
}
