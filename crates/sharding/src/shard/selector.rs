//! Watching only this shard's objects.

use kube::runtime::watcher;

use crate::api::labels;

/// The label selector for objects assigned to `shard` in `ring`:
/// `shard.alpha.sharding.timebertt.dev/<ring>=<shard>`.
///
/// Objects being drained keep their shard label until the shard acknowledges the drain, so
/// they still match and their drain events reach the shard (docs/contract.md#sharder-behaviour).
#[must_use]
pub fn label_selector(ring: &str, shard: &str) -> String {
    format!("{}={shard}", labels::shard(ring))
}

/// A watcher configuration that lists and watches only the objects assigned to `shard`,
/// for the controller's main kind and for the kinds it owns alike, so that a shard's caches
/// hold its own share and nothing else.
///
/// `.labels(..)` on the result replaces this selector: to add a selector of your own, join
/// it with [`label_selector`] instead (`format!("app=web,{}", label_selector(ring, shard))`).
///
/// ```no_run
/// # use k8s_openapi::api::{apps::v1::Deployment, core::v1::ConfigMap};
/// # use kube::{Api, Client, runtime::Controller};
/// # fn demo(client: Client) {
/// let config = kube_sharding::shard::watcher_config("my-ring", "my-pod-0");
/// let controller = Controller::new(Api::<ConfigMap>::all(client.clone()), config.clone())
///     .owns(Api::<Deployment>::all(client), config);
/// # }
/// ```
#[must_use]
pub fn watcher_config(ring: &str, shard: &str) -> watcher::Config {
    watcher::Config::default().labels(&label_selector(ring, shard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_selector_matches_this_shards_label() {
        assert_eq!(
            label_selector("web", "web-0"),
            "shard.alpha.sharding.timebertt.dev/web=web-0"
        );
        assert_eq!(
            watcher_config("web", "web-0").label_selector.as_deref(),
            Some("shard.alpha.sharding.timebertt.dev/web=web-0")
        );
    }
}
