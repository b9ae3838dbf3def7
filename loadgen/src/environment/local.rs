//! The local target: for each shard count a fresh control plane (etcd, kube-apiserver,
//! kube-controller-manager) on loopback, the sharder and N operator shards as processes, so
//! that every shard count starts from the same empty state.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use stack::{Binaries, OperatorSettings, Stack, StackOptions, Usage};

use crate::{
    measure::cost::{MachineCpu, UsageSample},
    results::Machine,
    scenario::{Operator, Signal},
};

/// How long the stack gets to become ready, and a new shard to become available.
const PATIENCE: Duration = Duration::from_secs(120);

/// How long a replacement shard takes to start after a kill. A Deployment's new pod needs
/// a few seconds to be scheduled and started; a local process starts at once, which would
/// make the replacement join in the same moment as the kill and blur the two membership
/// changes into one.
const REPLACEMENT_DELAY: Duration = Duration::from_secs(2);

/// The local target.
pub struct Local {
    binaries: Binaries,
    keep_directory: bool,
    running: Option<Running>,
}

/// The stack of one shard count.
struct Running {
    stack: Stack,
    settings: OperatorSettings,
    /// Every new shard gets a new name, as a new pod of a Deployment does.
    next_shard: AtomicU32,
    /// The slot of every shard started: a replacement takes the slot of the shard it
    /// replaces, so restarts are counted per slot (docs/experiments.md#cost).
    slots: Mutex<BTreeMap<String, u32>>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("keep_directory", &self.keep_directory)
            .field("running", &self.running.is_some())
            .finish_non_exhaustive()
    }
}

impl Local {
    /// A local target running `binaries`.
    #[must_use]
    pub fn new(binaries: Binaries, keep_directory: bool) -> Self {
        Self {
            binaries,
            keep_directory,
            running: None,
        }
    }

    /// Starts a fresh stack with `shards` shards and waits until the ring counts them all.
    pub async fn prepare(&mut self, shards: u32, operator: &Operator) -> anyhow::Result<()> {
        self.finish().await?;
        let options = StackOptions::default()
            .keep_directory(self.keep_directory)
            .patience(PATIENCE);
        let stack = Stack::start(&self.binaries.sharder, &options).await?;
        if self.keep_directory {
            eprintln!(
                "the control plane's files are kept in {}",
                stack.control_plane.directory().display()
            );
        }
        let mut running = Running {
            stack,
            settings: settings(operator)?,
            next_shard: AtomicU32::new(0),
            slots: Mutex::default(),
        };
        for slot in 0..shards {
            running.start_shard(&self.binaries, slot).await?;
        }
        running
            .stack
            .wait_operators_ready(usize::try_from(shards)?)
            .await?;
        self.running = Some(running);
        Ok(())
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
            running.start_shard(&self.binaries, slot).await?;
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
            running
                .start_shard(&self.binaries, running.slot(&shard)?)
                .await?;
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
        let mut pids: Vec<(String, u32)> =
            vec![("sharder".to_owned(), running.stack.sharder.pid())];
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

    /// Stops the shards, the sharder and the control plane.
    pub async fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(running) = self.running.take() {
            running.stack.stop().await;
        }
        Ok(())
    }

    fn running(&self) -> anyhow::Result<&Running> {
        self.running
            .as_ref()
            .context("the local target is not prepared")
    }
}

impl Running {
    /// Starts a new shard in `slot`.
    async fn start_shard(&self, binaries: &Binaries, slot: u32) -> anyhow::Result<()> {
        let n = self.next_shard.fetch_add(1, Ordering::Relaxed);
        let settings = OperatorSettings {
            identity: format!("shard-{n}"),
            ..self.settings.clone()
        };
        // The slot is known before the shard can be listed (and killed); a shard that did not
        // start fills none.
        self.slots().insert(settings.identity.clone(), slot);
        let started = self
            .stack
            .start_operator(&binaries.operator, &settings)
            .await;
        if started.is_err() {
            self.slots().remove(&settings.identity);
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

/// The settings of every shard of a scenario.
fn settings(operator: &Operator) -> anyhow::Result<OperatorSettings> {
    Ok(OperatorSettings {
        workers: u16::try_from(operator.workers)
            .with_context(|| format!("operator.workers {} is too large", operator.workers))?,
        simulated_work: operator.simulated_work,
        lease_duration: operator.lease_duration,
        ..OperatorSettings::default()
    })
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
    fn shards_run_with_the_scenario_settings() {
        let operator = Operator {
            workers: 7,
            simulated_work: Duration::from_millis(50),
            lease_duration: Duration::from_secs(10),
        };
        let settings = settings(&operator).unwrap();
        assert_eq!(settings.workers, 7);
        assert_eq!(settings.simulated_work, Duration::from_millis(50));
        assert_eq!(settings.lease_duration, Duration::from_secs(10));
        assert!(!settings.singleton);
        let too_many = Operator {
            workers: 70_000,
            ..operator
        };
        assert!(settings_error(&too_many).contains("operator.workers 70000"));
    }

    fn settings_error(operator: &Operator) -> String {
        format!("{:#}", settings(operator).expect_err("invalid"))
    }
}
