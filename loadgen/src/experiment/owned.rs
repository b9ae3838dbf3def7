//! The objects the controller made for the run's objects, listed once a shard count has settled
//! and judged against their owners' shards (docs/workloads.md#owned-objects).

use std::collections::BTreeSet;

use kube::{Client, ResourceExt as _};
use kube_sharding::api::labels;

use super::tracker::Tracker;
use crate::{
    listing,
    measure::owned::OwnedCheck,
    workload::{Kind, Workload},
    world::Resources,
};

/// The check of the owned kinds the workloads declare; `None` when they declare none.
///
/// # Errors
/// An owned kind is not served, or listing it failed.
pub async fn check(
    client: &Client,
    workloads: &[Workload],
    ring: &str,
    tracker: &Tracker,
) -> anyhow::Result<Option<OwnedCheck>> {
    let kinds: BTreeSet<&Kind> = workloads.iter().flat_map(|w| &w.owned).collect();
    if kinds.is_empty() {
        return Ok(None);
    }
    let mut resources = Resources::new(client);
    let shard_label = labels::shard(ring);
    let mut owned = Vec::new();
    for kind in kinds {
        let api = resources.api(&kind.gvk(), None).await?;
        for object in listing::all(&api, None).await? {
            if let Some(owner) = kube_sharding::key::for_controller(&object.metadata) {
                owned.push((owner, object.labels().get(&shard_label).cloned()));
            }
        }
    }
    let owned = owned
        .iter()
        .map(|(owner, shard)| (owner.as_str(), shard.as_deref()));
    Ok(Some(OwnedCheck::of(owned, &tracker.shards())))
}
