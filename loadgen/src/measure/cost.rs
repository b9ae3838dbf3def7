//! Cost: CPU seconds and peak memory per component, from samples of `/proc` (SPEC D).

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
}
