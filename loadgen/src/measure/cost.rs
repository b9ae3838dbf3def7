//! Cost: CPU seconds and peak memory per component, from samples of `/proc` (docs/experiments.md),
//! or of a metrics API's CPU rates, which [`CpuIntegrals`] turns into CPU seconds first.

use std::collections::BTreeMap;

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
    /// Times the process was seen to restart (its cumulative CPU went down).
    pub restarts: usize,
}

/// The cost of each component in `samples` (in any order).
///
/// A restart resets the cumulative CPU; the segments before and after it are added. The CPU the
/// old process used after its last sample is not seen and not counted, and neither is the
/// memory peak between samples.
#[must_use]
pub fn summarize(samples: &[UsageSample]) -> BTreeMap<String, Cost> {
    let mut by_component: BTreeMap<&str, Vec<&UsageSample>> = BTreeMap::new();
    for sample in samples {
        by_component
            .entry(&sample.component)
            .or_default()
            .push(sample);
    }
    by_component
        .into_iter()
        .map(|(component, mut samples)| {
            samples.sort_by_key(|s| s.at);
            (component.to_owned(), cost(&samples))
        })
        .collect()
}

/// The cost of one component's samples, in time order (at least one).
fn cost(samples: &[&UsageSample]) -> Cost {
    let mut cpu_seconds = 0.0;
    let mut restarts = 0;
    for pair in samples.windows(2) {
        let (previous, current) = (pair[0].cpu_seconds, pair[1].cpu_seconds);
        if current >= previous {
            cpu_seconds += current - previous;
        } else {
            // A new process: all it used so far falls into this segment.
            restarts += 1;
            cpu_seconds += current;
        }
    }
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let seconds = elapsed(first.at, last.at).as_secs_f64();
    Cost {
        cpu_seconds,
        cores: ratio(cpu_seconds, seconds).unwrap_or(0.0),
        peak_rss_bytes: samples.iter().map(|s| s.rss_bytes).max().unwrap_or(0),
        restarts,
    }
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
        assert_eq!(cost.restarts, 0);
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
        assert_eq!(cost.restarts, 1);
    }

    #[test]
    fn samples_are_taken_in_time_order() {
        let costs = summarize(&[
            sample(20, "sharder", 3.0, 1),
            sample(0, "sharder", 1.0, 1),
            sample(10, "sharder", 2.0, 1),
        ]);
        assert!(close(costs["sharder"].cpu_seconds, 2.0));
        assert_eq!(costs["sharder"].restarts, 0);
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
}
