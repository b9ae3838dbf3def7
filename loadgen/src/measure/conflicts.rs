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
    /// The sharder's; `None` when not read or not exposed.
    pub sharder: Option<u64>,
    /// Each shard's that could be read and exposes the counter.
    pub shards: BTreeMap<String, u64>,
}

impl Scrape {
    /// The scrape of the sharder's `/metrics` text (if read) and each shard's.
    #[must_use]
    pub fn of(sharder: Option<&str>, shards: &[(String, String)]) -> Self {
        Self {
            sharder: sharder.and_then(count),
            shards: shards
                .iter()
                .filter_map(|(shard, text)| Some((shard.clone(), count(text)?)))
                .collect(),
        }
    }
}

/// The conflicts of one shard count, per component; `None`: not measured (the component was
/// never scraped, or does not expose `rest_client_requests_total`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Conflicts {
    /// The sharder's.
    pub sharder: Option<u64>,
    /// The shards' together.
    pub shards: Option<u64>,
    /// Each shard's.
    pub per_shard: BTreeMap<String, u64>,
}

impl Conflicts {
    /// The increase over consecutive `scrapes`, from the first to the last, taken as PromQL's
    /// `increase` would: a counter that went down restarted and counts from zero, and a shard
    /// first seen after the first scrape started in between and counts from zero. What a
    /// process counted after its last scrape before it ended is not seen.
    #[must_use]
    pub fn over(scrapes: &[Scrape]) -> Self {
        let mut conflicts = Self::default();
        for pair in scrapes.windows(2) {
            let [before, after] = pair else { continue };
            if let Some(now) = after.sharder {
                let increase = prometheus::counter_delta(before.sharder.unwrap_or(0), now);
                *conflicts.sharder.get_or_insert(0) += increase;
            }
            for (shard, &now) in &after.shards {
                let then = before.shards.get(shard).copied().unwrap_or(0);
                *conflicts.per_shard.entry(shard.clone()).or_default() +=
                    prometheus::counter_delta(then, now);
            }
        }
        if !conflicts.per_shard.is_empty() {
            conflicts.shards = Some(conflicts.per_shard.values().sum());
        }
        conflicts
    }
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
            sharder,
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
            Some(&text(1, 0)),
            &[("shard-0".to_owned(), "up 1\n".to_owned())],
        );
        assert_eq!(read.sharder, Some(1));
        assert!(read.shards.is_empty());
    }
}
