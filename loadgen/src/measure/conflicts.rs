//! Writes rejected by conflicts (docs/experiments.md#ownership): the API requests the sharder
//! and the shards saw answered `409 Conflict`, from their `rest_client_requests_total` at each
//! sampler tick. A conflict is optimistic locking at work (a write carrying a resourceVersion
//! that another write overtook), so these are reported, not judged.

use std::collections::BTreeMap;

use serde::Serialize;

use super::prometheus;

/// The counter of a process's API requests by `code`, `method` and `host`.
const REQUESTS: &str = "rest_client_requests_total";

/// The 409s in a process's `/metrics` text; `None` when it has no [`REQUESTS`] at all, so its
/// conflicts are not measured.
#[must_use]
pub fn count(text: &str) -> Option<u64> {
    prometheus::counter_sum(text, REQUESTS, |_| true)?;
    Some(prometheus::counter_sum(text, REQUESTS, |s| s.label("code") == Some("409")).unwrap_or(0))
}

/// The 409s of each process at one tick, as far as they could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scrape {
    /// Each sharder replica's that could be read and exposes the counter.
    pub sharders: BTreeMap<String, u64>,
    /// Each shard's that could be read and exposes the counter.
    pub shards: BTreeMap<String, u64>,
}

impl Scrape {
    /// The scrape of each sharder replica's and each shard's `/metrics` text, by name.
    #[must_use]
    pub fn of(sharders: &[(String, String)], shards: &[(String, String)]) -> Self {
        let counts = |texts: &[(String, String)]| {
            texts
                .iter()
                .filter_map(|(name, text)| Some((name.clone(), count(text)?)))
                .collect()
        };
        Self {
            sharders: counts(sharders),
            shards: counts(shards),
        }
    }
}

/// The conflicts of one shard count, per component; `None`: not measured (the component was
/// never scraped, or does not expose `rest_client_requests_total`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Conflicts {
    /// The sharder's replicas' together.
    pub sharder: Option<u64>,
    /// The shards' together.
    pub shards: Option<u64>,
    /// Each shard's.
    pub per_shard: BTreeMap<String, u64>,
}

impl Conflicts {
    /// The increase over `scrapes`, from the first to the last, taken as PromQL's `increase`
    /// would: a counter that went down restarted and counts from zero, and a process first
    /// seen after the first scrape started in between and counts from zero. A process missing
    /// from some scrapes (paused, or not answering) counts on from its last value seen. What
    /// a process counted after its last scrape before it ended is not seen.
    #[must_use]
    pub fn over(scrapes: &[Scrape]) -> Self {
        let sharders = increases(scrapes.iter().map(|scrape| &scrape.sharders));
        let per_shard = increases(scrapes.iter().map(|scrape| &scrape.shards));
        Self {
            sharder: (!sharders.is_empty()).then(|| sharders.values().sum()),
            shards: (!per_shard.is_empty()).then(|| per_shard.values().sum()),
            per_shard,
        }
    }
}

/// Each process's increase over consecutive readings of its counter (see [`Conflicts::over`]).
fn increases<'a>(
    readings: impl Iterator<Item = &'a BTreeMap<String, u64>>,
) -> BTreeMap<String, u64> {
    let mut last: BTreeMap<&str, u64> = BTreeMap::new();
    let mut increases = BTreeMap::new();
    for (tick, reading) in readings.enumerate() {
        for (process, &now) in reading {
            let then = last.insert(process, now);
            if tick > 0 {
                *increases.entry(process.clone()).or_default() +=
                    prometheus::counter_delta(then.unwrap_or(0), now);
            }
        }
    }
    increases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(ok: u64, conflicts: u64) -> String {
        format!(
            "# TYPE rest_client_requests_total counter\n\
             rest_client_requests_total{{code=\"200\",method=\"GET\",host=\"127.0.0.1:6443\"}} {ok}\n\
             rest_client_requests_total{{code=\"409\",method=\"PATCH\",host=\"127.0.0.1:6443\"}} {conflicts}\n\
             rest_client_requests_total{{code=\"409\",method=\"PUT\",host=\"127.0.0.1:6443\"}} 1\n"
        )
    }

    #[test]
    fn conflicts_are_the_409s_of_the_request_counter() {
        assert_eq!(count(&text(10, 3)), Some(4));
        let no_conflicts = "rest_client_requests_total{code=\"200\",method=\"GET\",host=\"h\"} 5\n";
        assert_eq!(count(no_conflicts), Some(0));
        assert_eq!(count("workqueue_adds_total{name=\"website\"} 3\n"), None);
    }

    #[test]
    fn conflicts_add_up_over_the_ticks_across_restarts_and_new_shards() {
        let scrape = |sharder: Option<u64>, shards: &[(&str, u64)]| Scrape {
            sharders: sharder
                .map(|n| ("sharder-0".to_owned(), n))
                .into_iter()
                .collect(),
            shards: shards.iter().map(|&(s, n)| (s.to_owned(), n)).collect(),
        };
        let scrapes = [
            scrape(Some(5), &[("shard-0", 2), ("shard-1", 1)]),
            // shard-1 is gone (its last 409s unseen), shard-2 started with 3 already.
            scrape(Some(7), &[("shard-0", 4), ("shard-2", 3)]),
            // The sharder restarted: 1 since.
            scrape(Some(1), &[("shard-0", 4), ("shard-2", 5)]),
        ];
        let conflicts = Conflicts::over(&scrapes);
        assert_eq!(conflicts.sharder, Some(3));
        assert_eq!(conflicts.shards, Some(7));
        assert_eq!(
            conflicts.per_shard,
            BTreeMap::from([("shard-0".to_owned(), 2), ("shard-2".to_owned(), 5)])
        );
    }

    #[test]
    fn a_component_never_scraped_is_not_measured() {
        let scrapes = [Scrape::default(), Scrape::default()];
        assert_eq!(Conflicts::over(&scrapes), Conflicts::default());
        assert_eq!(Conflicts::over(&[]).sharder, None);
        let read = Scrape::of(
            &[("sharder-0".to_owned(), text(1, 0))],
            &[("shard-0".to_owned(), "up 1\n".to_owned())],
        );
        assert_eq!(read.sharders, BTreeMap::from([("sharder-0".to_owned(), 1)]));
        assert!(read.shards.is_empty());
    }

    #[test]
    fn a_process_missing_from_a_scrape_counts_on_from_its_last_value() {
        let scrape = |sharders: &[(&str, u64)], shards: &[(&str, u64)]| Scrape {
            sharders: sharders.iter().map(|&(s, n)| (s.to_owned(), n)).collect(),
            shards: shards.iter().map(|&(s, n)| (s.to_owned(), n)).collect(),
        };
        let scrapes = [
            scrape(&[("sharder-0", 5), ("sharder-1", 0)], &[("shard-0", 2)]),
            // Both paused: not scraped.
            scrape(&[("sharder-1", 1)], &[]),
            scrape(&[("sharder-0", 6), ("sharder-1", 1)], &[("shard-0", 4)]),
        ];
        let conflicts = Conflicts::over(&scrapes);
        assert_eq!(conflicts.sharder, Some(2));
        assert_eq!(conflicts.shards, Some(2));
    }
}
