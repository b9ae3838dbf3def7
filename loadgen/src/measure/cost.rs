//! Cost: CPU seconds and peak memory per component, from samples of `/proc` (docs/experiments.md#cost),
//! or of a metrics API's CPU rates, which [`CpuIntegrals`] turns into CPU seconds first; the
//! peak memory of processes together; restarts per shard slot; the machine's CPU and
//! loadgen's own per sampler interval, and whether a breach was the machine's.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::{elapsed, ratio};

/// One reading of a component's process.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageSample {
    /// When it was read.
    pub at: Timestamp,
    /// The component: `sharder`, a shard's name, `kube-apiserver`, ...
    pub component: String,
    /// CPU time (user + system) the process used since it started, as `/proc` reports it.
    pub cpu_seconds: f64,
    /// Resident memory then.
    pub rss_bytes: u64,
}

/// What a component cost over its samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cost {
    /// CPU seconds used between the first and the last sample, over all restarts.
    pub cpu_seconds: f64,
    /// Mean cores used: `cpu_seconds` over the time from the first to the last sample; 0
    /// without time between them.
    pub cores: f64,
    /// The largest resident memory sampled.
    pub peak_rss_bytes: u64,
}

/// The cost of each component in `samples` (in any order).
///
/// A restart in place (a container restarted under the same name) resets the cumulative CPU;
/// the segments before and after it are added. The CPU the
/// old process used after its last sample is not seen and not counted, and neither is the
/// memory peak between samples.
#[must_use]
pub fn summarize(samples: &[UsageSample]) -> BTreeMap<String, Cost> {
    by_component(samples)
        .into_iter()
        .map(|(component, samples)| (component.to_owned(), cost(&samples)))
        .collect()
}

/// The samples of each component, in time order.
fn by_component(samples: &[UsageSample]) -> BTreeMap<&str, Vec<&UsageSample>> {
    let mut by_component: BTreeMap<&str, Vec<&UsageSample>> = BTreeMap::new();
    for sample in samples {
        by_component
            .entry(&sample.component)
            .or_default()
            .push(sample);
    }
    for samples in by_component.values_mut() {
        samples.sort_by_key(|s| s.at);
    }
    by_component
}

/// The cost of one component's samples, in time order (at least one).
fn cost(samples: &[&UsageSample]) -> Cost {
    let cpu_seconds = samples
        .windows(2)
        .map(|pair| cpu_between(pair[0].cpu_seconds, pair[1].cpu_seconds))
        .sum();
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let seconds = elapsed(first.at, last.at).as_secs_f64();
    Cost {
        cpu_seconds,
        cores: ratio(cpu_seconds, seconds).unwrap_or(0.0),
        peak_rss_bytes: samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0),
    }
}

/// The CPU seconds used between two readings of cumulative CPU; when it went down, a new
/// process started in between and all it used so far falls into this segment.
fn cpu_between(previous: f64, current: f64) -> f64 {
    if current >= previous {
        current - previous
    } else {
        current
    }
}

/// The peak over sample times of the memory that the components of each group held together:
/// at each time of `samples`, the resident memory of the components sampled then is summed per
/// group (`group` maps a component to its group, `None` leaves it out), and the largest sum
/// of each group is kept.
///
/// Components that ran one after another (a killed shard and its replacement) are never
/// summed, unlike a sum of each component's peak. A component not sampled at a time (it
/// exited, or its reading failed) adds nothing then.
#[must_use]
pub fn peak_of_sum<K: Ord>(
    samples: &[UsageSample],
    group: impl Fn(&str) -> Option<K>,
) -> BTreeMap<K, u64> {
    let mut sums: BTreeMap<(Timestamp, K), u64> = BTreeMap::new();
    for sample in samples {
        if let Some(key) = group(&sample.component) {
            *sums.entry((sample.at, key)).or_default() += sample.rss_bytes;
        }
    }
    let mut peaks: BTreeMap<K, u64> = BTreeMap::new();
    for ((_, key), sum) in sums {
        let peak = peaks.entry(key).or_default();
        *peak = (*peak).max(sum);
    }
    peaks
}

/// The restarts of each shard slot: a slot is a place for one shard (N slots with N shards),
/// and every shard started in a slot after its first (a replacement of a killed shard, the
/// new shard of a rolling update) is a restart of it. `slots` maps each shard that ran to its
/// slot.
#[must_use]
pub fn slot_restarts(slots: &BTreeMap<String, u32>) -> BTreeMap<u32, usize> {
    let mut shards: BTreeMap<u32, usize> = BTreeMap::new();
    for &slot in slots.values() {
        *shards.entry(slot).or_default() += 1;
    }
    shards
        .into_iter()
        .map(|(slot, shards)| (slot, shards.saturating_sub(1)))
        .collect()
}

/// The CPU time of all cores of a machine so far, in one unit (clock ticks of `/proc/stat`):
/// only the share of busy time in a window counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MachineCpu {
    /// Time of all cores spent on anything but idling and waiting for I/O.
    pub busy: f64,
    /// Time of all cores in all: the elapsed time times the cores.
    pub total: f64,
}

/// The machine's CPU and loadgen's own at one sampler tick.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MachineSample {
    /// When they were read.
    pub at: Timestamp,
    /// All cores of the machine; `None` where the target cannot tell (docs/experiments.md#cost).
    pub cpu: Option<MachineCpu>,
    /// loadgen's own CPU time (user + system) since it started.
    pub loadgen_cpu_seconds: f64,
}

/// The machine's CPU and loadgen's own between two sampler ticks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MachineWindow {
    /// The earlier tick.
    pub start: Timestamp,
    /// The time to the later tick.
    pub length: Duration,
    /// The share of all cores' time that was busy, 0 to 1; `None` where not measured.
    pub busy: Option<f64>,
    /// The cores loadgen used on average.
    pub loadgen_cores: f64,
}

/// The shortest window of [`machine_windows`]. The kernel counts CPU time in clock ticks of
/// 10 ms, so a window of a few milliseconds reads as 0 % or 100 % busy and as whole cores of
/// loadgen's own CPU; over 1 s a tick is 1 % of a core.
pub const MIN_MACHINE_WINDOW: Duration = Duration::from_secs(1);

/// The windows between consecutive `samples` (in any order). A sample less than
/// [`MIN_MACHINE_WINDOW`] after the start of its window does not end it (the window runs to
/// the next one), and a last one that close is left out. A machine counter that went down (it
/// cannot, short of a reboot) gives no busy share.
#[must_use]
pub fn machine_windows(samples: &[MachineSample]) -> Vec<MachineWindow> {
    let mut ordered: Vec<&MachineSample> = samples.iter().collect();
    ordered.sort_by_key(|s| s.at);
    let mut bounds: Vec<&MachineSample> = Vec::with_capacity(ordered.len());
    for sample in ordered {
        if bounds
            .last()
            .is_none_or(|start| elapsed(start.at, sample.at) >= MIN_MACHINE_WINDOW)
        {
            bounds.push(sample);
        }
    }
    bounds
        .windows(2)
        .filter_map(|pair| {
            let (before, after) = (pair[0], pair[1]);
            let length = elapsed(before.at, after.at);
            let busy = match (before.cpu, after.cpu) {
                (Some(before), Some(after)) => {
                    ratio(after.busy - before.busy, after.total - before.total)
                        .filter(|busy| (0.0..=1.0).contains(busy))
                }
                _ => None,
            };
            Some(MachineWindow {
                start: before.at,
                length,
                busy,
                loadgen_cores: ratio(
                    cpu_between(before.loadgen_cpu_seconds, after.loadgen_cpu_seconds),
                    length.as_secs_f64(),
                )?,
            })
        })
        .collect()
}

/// The cores the components of each group (as in [`peak_of_sum`]) used in each of `windows`:
/// a component's CPU between two of its samples is spread evenly over the time between them
/// and counted in each window by its overlap.
#[must_use]
pub fn group_cores<K: Ord + Clone>(
    samples: &[UsageSample],
    group: impl Fn(&str) -> Option<K>,
    windows: &[MachineWindow],
) -> Vec<BTreeMap<K, f64>> {
    let mut cores: Vec<BTreeMap<K, f64>> = vec![BTreeMap::new(); windows.len()];
    for (component, samples) in by_component(samples) {
        let Some(key) = group(component) else {
            continue;
        };
        for pair in samples.windows(2) {
            let (before, after) = (pair[0], pair[1]);
            let seconds = elapsed(before.at, after.at).as_secs_f64();
            let Some(rate) = ratio(cpu_between(before.cpu_seconds, after.cpu_seconds), seconds)
            else {
                continue;
            };
            for (window, cores) in windows.iter().zip(&mut cores) {
                let overlap = overlap(window.start, window.length, before.at, after.at);
                if overlap > 0.0
                    && let Some(used) = ratio(rate * overlap, window.length.as_secs_f64())
                {
                    *cores.entry(key.clone()).or_default() += used;
                }
            }
        }
    }
    cores
}

/// The seconds that the window of `length` from `start` and the time from `from` to `to` share.
fn overlap(start: Timestamp, length: Duration, from: Timestamp, to: Timestamp) -> f64 {
    elapsed(start.max(from), (start + length).min(to)).as_secs_f64()
}

/// The machine's busy share above which a breach is the machine's limit, not the controller's.
pub const MACHINE_BOUND: f64 = 0.9;

/// The machine's CPU during a breach window, from the [`MachineWindow`]s that overlap it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MachineLoad {
    /// The busy share over the breach window, each machine window weighted by its overlap.
    pub mean_busy: f64,
    /// The largest busy share of a machine window that overlaps it.
    pub max_busy: f64,
    /// The machine windows that overlap it.
    pub windows: usize,
}

impl MachineLoad {
    /// Whether the machine was busy beyond [`MACHINE_BOUND`] over the breach window, so the
    /// capacity measured there is the machine's.
    #[must_use]
    pub fn bound(&self) -> bool {
        self.mean_busy > MACHINE_BOUND
    }
}

/// The machine's CPU over the window of `length` from `start` (a breach's); `None` when no
/// machine window with a measured busy share overlaps it.
#[must_use]
pub fn machine_load(
    start: Timestamp,
    length: Duration,
    windows: &[MachineWindow],
) -> Option<MachineLoad> {
    let (mut weighted, mut weight, mut max_busy, mut count) = (0.0, 0.0, 0.0_f64, 0);
    for (window, overlap) in overlapping(start, length, windows) {
        let Some(busy) = window.busy else { continue };
        weighted += busy * overlap;
        weight += overlap;
        max_busy = max_busy.max(busy);
        count += 1;
    }
    Some(MachineLoad {
        mean_busy: ratio(weighted, weight)?,
        max_busy,
        windows: count,
    })
}

/// The cores loadgen used over the span of `length` from `start` (a measurement's), each
/// machine window weighted by its overlap; `None` when no window overlaps it
/// (docs/experiments.md#validity).
#[must_use]
pub fn loadgen_cores(start: Timestamp, length: Duration, windows: &[MachineWindow]) -> Option<f64> {
    let (weighted, weight) = overlapping(start, length, windows).fold(
        (0.0, 0.0),
        |(weighted, weight), (window, overlap)| {
            (weighted + window.loadgen_cores * overlap, weight + overlap)
        },
    );
    ratio(weighted, weight)
}

/// The windows that overlap the span of `length` from `start`, with the seconds they share.
fn overlapping(
    start: Timestamp,
    length: Duration,
    windows: &[MachineWindow],
) -> impl Iterator<Item = (&MachineWindow, f64)> {
    windows.iter().filter_map(move |window| {
        let overlap = overlap(window.start, window.length, start, start + length);
        (overlap > 0.0).then_some((window, overlap))
    })
}

/// A component's CPU rate and working set at one time, as a metrics API reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// The CPU rate, in cores.
    pub cores: f64,
    /// The working set.
    pub bytes: u64,
}

impl Usage {
    /// Adds `other`'s rate and memory, e.g. of another container of the same pod.
    pub fn add(&mut self, other: Usage) {
        self.cores += other.cores;
        self.bytes += other.bytes;
    }
}

/// The cumulative CPU seconds of each component, integrated from the rates of its samples,
/// starting at 0 with a component's first sample.
#[derive(Debug, Default)]
pub struct CpuIntegrals(BTreeMap<String, CpuIntegral>);

impl CpuIntegrals {
    /// The samples of `usage` at `at`, advancing each component's integral. A component missing
    /// from `usage` keeps its integral.
    pub fn sample(&mut self, at: Timestamp, usage: BTreeMap<String, Usage>) -> Vec<UsageSample> {
        usage
            .into_iter()
            .map(|(component, usage)| {
                let integral = match self.0.get(&component) {
                    Some(previous) => previous.advance(at, usage.cores),
                    None => CpuIntegral::start(at, usage.cores),
                };
                self.0.insert(component.clone(), integral);
                UsageSample {
                    at,
                    component,
                    cpu_seconds: integral.seconds,
                    rss_bytes: usage.bytes,
                }
            })
            .collect()
    }
}

/// A component's CPU seconds so far, integrated from the rates of its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuIntegral {
    at: Timestamp,
    cores: f64,
    seconds: f64,
}

impl CpuIntegral {
    /// The first sample: nothing used yet, as far as the samples tell.
    fn start(at: Timestamp, cores: f64) -> Self {
        Self {
            at,
            cores,
            seconds: 0.0,
        }
    }

    /// The integral up to `at`, where the rate is `cores`: the trapezoid since the last
    /// sample, as the rate moved between the two.
    fn advance(self, at: Timestamp, cores: f64) -> Self {
        let elapsed = at.duration_since(self.at).as_secs_f64().max(0.0);
        Self {
            at,
            cores,
            seconds: self.seconds + f64::midpoint(self.cores, cores) * elapsed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seconds: i64, component: &str, cpu_seconds: f64, rss_bytes: u64) -> UsageSample {
        UsageSample {
            at: Timestamp::from_second(seconds).unwrap(),
            component: component.to_owned(),
            cpu_seconds,
            rss_bytes,
        }
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < 1e-9
    }

    #[test]
    fn cpu_is_the_last_reading_minus_the_first_over_the_elapsed_time() {
        let costs = summarize(&[
            sample(0, "sharder", 10.0, 30),
            sample(10, "sharder", 11.0, 50),
            sample(20, "sharder", 12.0, 40),
        ]);
        let cost = costs["sharder"];
        assert!(close(cost.cpu_seconds, 2.0));
        assert!(close(cost.cores, 0.1));
        assert_eq!(cost.peak_rss_bytes, 50);
    }

    #[test]
    fn components_are_summarized_separately() {
        let costs = summarize(&[
            sample(0, "shard-0", 0.0, 1),
            sample(0, "shard-1", 0.0, 2),
            sample(10, "shard-0", 5.0, 1),
            sample(10, "shard-1", 1.0, 2),
        ]);
        assert_eq!(costs.keys().collect::<Vec<_>>(), ["shard-0", "shard-1"]);
        assert!(close(costs["shard-0"].cores, 0.5));
        assert!(close(costs["shard-1"].cores, 0.1));
    }

    #[test]
    fn a_restart_adds_the_segments() {
        let costs = summarize(&[
            sample(0, "shard-0", 100.0, 10),
            sample(10, "shard-0", 104.0, 20),
            sample(20, "shard-0", 1.0, 5),
            sample(30, "shard-0", 3.0, 8),
        ]);
        let cost = costs["shard-0"];
        assert!(close(cost.cpu_seconds, 4.0 + 1.0 + 2.0));
        assert!(close(cost.cores, 7.0 / 30.0));
        assert_eq!(cost.peak_rss_bytes, 20);
    }

    #[test]
    fn samples_are_taken_in_time_order() {
        let costs = summarize(&[
            sample(20, "sharder", 3.0, 1),
            sample(0, "sharder", 1.0, 1),
            sample(10, "sharder", 2.0, 1),
        ]);
        assert!(close(costs["sharder"].cpu_seconds, 2.0));
    }

    #[test]
    fn a_single_sample_costs_no_cpu_but_has_its_memory() {
        let costs = summarize(&[sample(0, "sharder", 5.0, 42)]);
        let cost = costs["sharder"];
        assert!(close(cost.cpu_seconds, 0.0));
        assert!(close(cost.cores, 0.0));
        assert_eq!(cost.peak_rss_bytes, 42);
    }

    #[test]
    fn samples_at_the_same_time_use_no_cores() {
        let costs = summarize(&[sample(0, "sharder", 1.0, 1), sample(0, "sharder", 2.0, 1)]);
        assert!(close(costs["sharder"].cpu_seconds, 1.0));
        assert!(close(costs["sharder"].cores, 0.0));
    }

    #[test]
    fn no_samples_cost_nothing() {
        assert!(summarize(&[]).is_empty());
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    #[test]
    fn cpu_seconds_integrate_the_rate_between_samples() {
        let integral = CpuIntegral::start(at(0), 1.0);
        assert!(close(integral.seconds, 0.0));
        // From 1 core to 3 cores over 10 s: 20 CPU seconds, then 3 cores for 5 s.
        let integral = integral.advance(at(10), 3.0);
        assert!(close(integral.seconds, 20.0));
        let integral = integral.advance(at(15), 3.0);
        assert!(close(integral.seconds, 35.0));
        // A clock that went back adds nothing.
        assert!(close(integral.advance(at(14), 3.0).seconds, 35.0));
    }

    #[test]
    fn each_component_integrates_on_its_own() {
        let mut cpu = CpuIntegrals::default();
        let usage = |pairs: &[(&str, f64, u64)]| -> BTreeMap<String, Usage> {
            pairs
                .iter()
                .map(|&(c, cores, bytes)| (c.to_owned(), Usage { cores, bytes }))
                .collect()
        };
        let first = cpu.sample(at(0), usage(&[("sharder", 0.5, 100)]));
        assert_eq!(
            first,
            vec![UsageSample {
                at: at(0),
                component: "sharder".into(),
                cpu_seconds: 0.0,
                rss_bytes: 100,
            }]
        );
        let second = cpu.sample(
            at(4),
            usage(&[("sharder", 0.5, 200), ("shard-a", 2.0, 300)]),
        );
        let components: Vec<(&str, u64)> = second
            .iter()
            .map(|s| (s.component.as_str(), s.rss_bytes))
            .collect();
        assert_eq!(components, [("shard-a", 300), ("sharder", 200)]);
        assert!(close(second[0].cpu_seconds, 0.0));
        assert!(close(second[1].cpu_seconds, 2.0));
        // A component missing from a sample keeps its integral.
        let third = cpu.sample(at(8), usage(&[("shard-a", 2.0, 300)]));
        assert!(close(third[0].cpu_seconds, 8.0));
        assert!(close(cpu.0["sharder"].seconds, 2.0));
    }

    #[test]
    fn peak_memory_is_the_peak_of_the_sum_not_the_sum_of_peaks() {
        // shard-0 ran from 0 s to 10 s, was killed, and shard-1 replaced it from 20 s; the
        // sharder ran throughout.
        let samples = [
            sample(0, "shard-0", 0.0, 100),
            sample(0, "sharder", 0.0, 30),
            sample(10, "shard-0", 1.0, 120),
            sample(10, "sharder", 1.0, 30),
            sample(20, "shard-1", 0.0, 110),
            sample(20, "sharder", 2.0, 40),
            sample(30, "shard-1", 1.0, 90),
            sample(30, "sharder", 3.0, 30),
        ];
        let operator = |c: &str| (c != "sharder").then_some("operator");
        // The sum of each shard's peak, 120 + 110, was never held at once.
        let costs = summarize(&samples);
        assert_eq!(
            costs["shard-0"].peak_rss_bytes + costs["shard-1"].peak_rss_bytes,
            230
        );
        assert_eq!(peak_of_sum(&samples, operator)["operator"], 120);
        // All together: 120 + 30 at 10 s beats 110 + 40 at 20 s.
        assert_eq!(peak_of_sum(&samples, |_| Some(()))[&()], 150);
        assert!(peak_of_sum(&samples, |_| None::<()>).is_empty());
    }

    #[test]
    fn a_slot_restarts_once_per_shard_started_in_it_after_the_first() {
        let slots: BTreeMap<String, u32> = [
            ("shard-0", 0),
            ("shard-1", 1),
            ("shard-2", 0),
            ("shard-3", 0),
            ("shard-4", 2),
        ]
        .into_iter()
        .map(|(shard, slot)| (shard.to_owned(), slot))
        .collect();
        let restarts = slot_restarts(&slots);
        assert_eq!(restarts, BTreeMap::from([(0, 2), (1, 0), (2, 0)]));
        assert!(slot_restarts(&BTreeMap::new()).is_empty());
    }

    fn machine(seconds: i64, busy: f64, total: f64, loadgen: f64) -> MachineSample {
        MachineSample {
            at: at(seconds),
            cpu: Some(MachineCpu { busy, total }),
            loadgen_cpu_seconds: loadgen,
        }
    }

    #[test]
    fn machine_windows_are_the_busy_share_of_all_cores_between_ticks() {
        // 2 cores: 10 core-seconds in 5 s, of which 9 busy; loadgen used 1 s of CPU.
        let windows = machine_windows(&[
            machine(5, 19.0, 20.0, 3.0),
            machine(0, 10.0, 10.0, 2.0),
            machine(10, 20.0, 30.0, 3.5),
        ]);
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[0].start, at(0));
        assert_eq!(windows[0].length, Duration::from_secs(5));
        assert!(close(windows[0].busy.unwrap(), 0.9));
        assert!(close(windows[0].loadgen_cores, 0.2));
        assert!(close(windows[1].busy.unwrap(), 0.1));
        assert!(close(windows[1].loadgen_cores, 0.1));
        // Without the machine's counters only loadgen's own CPU is known.
        let unmeasured = MachineSample {
            cpu: None,
            ..machine(15, 0.0, 0.0, 4.0)
        };
        let windows = machine_windows(&[machine(10, 20.0, 30.0, 3.5), unmeasured]);
        assert_eq!(windows[0].busy, None);
        assert!(close(windows[0].loadgen_cores, 0.1));
        assert!(
            machine_windows(&[machine(0, 0.0, 0.0, 0.0), machine(0, 1.0, 1.0, 1.0)]).is_empty()
        );
    }

    #[test]
    fn a_tick_a_few_milliseconds_after_another_does_not_make_a_window() {
        // The baseline and the sampler's first tick 4 ms apart: one 10 ms clock tick of busy
        // time in 8 ms of the 2 cores' time read as 100 % busy and 2.5 cores of loadgen.
        let soon = |sample: MachineSample| MachineSample {
            at: sample.at + Duration::from_millis(4),
            ..sample
        };
        let windows = machine_windows(&[
            machine(0, 0.0, 0.0, 0.0),
            soon(machine(0, 0.01, 0.008, 0.01)),
            machine(5, 5.01, 10.0, 0.51),
            soon(machine(5, 5.02, 10.008, 0.52)),
        ]);
        assert_eq!(windows.len(), 1, "{windows:?}");
        assert_eq!(windows[0].length, Duration::from_secs(5));
        assert!(close(windows[0].busy.unwrap(), 0.501), "{windows:?}");
        assert!(close(windows[0].loadgen_cores, 0.102), "{windows:?}");
    }

    fn window(seconds: i64, busy: Option<f64>) -> MachineWindow {
        MachineWindow {
            start: at(seconds),
            length: Duration::from_secs(5),
            busy,
            loadgen_cores: 0.0,
        }
    }

    #[test]
    fn loadgens_cores_over_a_measurement_weight_each_window_by_its_overlap() {
        let windows: Vec<MachineWindow> = [0.2, 0.4, 0.8]
            .into_iter()
            .zip([0, 5, 10])
            .map(|(cores, seconds)| MachineWindow {
                loadgen_cores: cores,
                // Without the machine's CPU, loadgen's own still counts.
                ..window(seconds, None)
            })
            .collect();
        // From 3 s to 13 s: 2 s at 0.2, 5 s at 0.4, 3 s at 0.8.
        let cores = loadgen_cores(at(3), Duration::from_secs(10), &windows).unwrap();
        assert!(close(cores, (0.2 * 2.0 + 0.4 * 5.0 + 0.8 * 3.0) / 10.0));
        assert!(loadgen_cores(at(15), Duration::from_secs(5), &windows).is_none());
        assert!(loadgen_cores(at(0), Duration::from_secs(5), &[]).is_none());
    }

    #[test]
    fn a_breach_is_machine_bound_when_the_machine_was_busy_over_its_window() {
        let windows = [
            window(0, Some(0.5)),
            window(5, Some(0.95)),
            window(10, Some(0.95)),
            window(15, Some(0.92)),
            window(20, Some(0.85)),
            window(25, None),
        ];
        // 5 s to 20 s: 0.95, 0.95, 0.92.
        let load = machine_load(at(5), Duration::from_secs(15), &windows).unwrap();
        assert!(close(load.mean_busy, 0.94));
        assert!(close(load.max_busy, 0.95));
        assert_eq!(load.windows, 3);
        assert!(load.bound());
        // From 2 s to 22 s: 3 s of the window at 0 and 2 s of the one at 20 count.
        let load = machine_load(at(2), Duration::from_secs(20), &windows).unwrap();
        assert!(close(
            load.mean_busy,
            (0.5 * 3.0 + 0.95 * 5.0 + 0.95 * 5.0 + 0.92 * 5.0 + 0.85 * 2.0) / 20.0
        ));
        assert_eq!(load.windows, 5);
        // 0.5 for 3 s drags the mean below 90 % although most windows were above.
        assert!(!load.bound());
        assert!(machine_load(at(25), Duration::from_secs(5), &windows).is_none());
    }

    #[test]
    fn group_cores_spread_each_segment_over_the_windows_it_overlaps() {
        // shard-0 used 10 s of CPU from 0 s to 10 s (1 core), the sharder 1 s from 5 s to 10 s.
        let samples = [
            sample(0, "shard-0", 0.0, 0),
            sample(10, "shard-0", 10.0, 0),
            sample(5, "sharder", 1.0, 0),
            sample(10, "sharder", 2.0, 0),
        ];
        let class = |c: &str| Some(c == "sharder");
        let windows: Vec<MachineWindow> = [0, 5, 10]
            .into_iter()
            .map(|seconds| MachineWindow {
                start: Timestamp::from_second(seconds).unwrap(),
                ..window(0, None)
            })
            .collect();
        let cores = group_cores(&samples, class, &windows);
        assert_eq!(cores.len(), 3);
        assert!(close(cores[0][&false], 1.0));
        assert!(!cores[0].contains_key(&true));
        assert!(close(cores[1][&false], 1.0));
        assert!(close(cores[1][&true], 0.2));
        assert!(cores[2].is_empty());
    }
}
