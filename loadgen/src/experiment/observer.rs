//! The observer: one watch of the run's Websites and one of the ring's shard Leases, stamped
//! on arrival and fed to the [`Tracker`]. A watch that breaks after it has listed is started
//! over by kube-runtime's watcher (relisting when its resource version is too old) and counted
//! as a watch restart (docs/experiments.md#validity).

use std::sync::{Arc, Mutex};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use kube::{
    Api, Client, ResourceExt as _,
    runtime::{WatchStreamExt as _, watcher},
};
use sharding::{api::labels, leases::ShardState};
use tokio::sync::watch;
use webhosting_operator::api::{Website, WebsitePhase};

use super::{
    driver::{RUN_LABEL, key},
    metrics::Metrics,
    tracker::{Tracker, WebsiteView},
};

/// The namespace of the operator's shard Leases.
const LEASE_NAMESPACE: &str = "webhosting-system";
/// The operator's ring.
const RING: &str = webhosting_operator::metrics::RING;

/// Watches until the future is dropped; `synced` turns true once both watches have listed.
/// An error of a watch that has listed does not end it: it is a watch restart in the tracker.
pub async fn observe(
    client: Client,
    run_id: &str,
    tracker: Arc<Mutex<Tracker>>,
    metrics: Metrics,
    synced: watch::Sender<bool>,
) -> anyhow::Result<()> {
    let websites = watcher(
        Api::<Website>::all(client.clone()),
        watcher::Config::default().labels(&format!("{RUN_LABEL}={run_id}")),
    )
    .default_backoff();
    let leases = watcher(
        Api::<Lease>::namespaced(client, LEASE_NAMESPACE),
        watcher::Config::default().labels(&format!("{}={RING}", labels::CONTROLLER_RING)),
    )
    .default_backoff();
    let shard_label = labels::shard(RING);
    let (websites_synced, leases_synced) = (watch::channel(false), watch::channel(false));
    let websites_done = websites.map(Ok).try_for_each(|event| {
        let now = Timestamp::now();
        let mut tracker = super::lock(&tracker);
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                let listed = *websites_synced.0.borrow();
                return std::future::ready(broke(&mut tracker, now, listed, error));
            }
        };
        match event {
            watcher::Event::Apply(website) | watcher::Event::InitApply(website) => {
                let completed = tracker.website(now, view(&website, &shard_label));
                metrics.reconciled(&completed);
            }
            watcher::Event::Delete(website) => {
                tracker.website_deleted(now, &website_key(&website));
            }
            watcher::Event::Init => {}
            watcher::Event::InitDone => {
                websites_synced.0.send_replace(true);
            }
        }
        metrics.observed(
            tracker.websites(),
            tracker.available_shards().len(),
            tracker.pending(),
        );
        std::future::ready(Ok(()))
    });
    let mut listing = false;
    let mut first_listing = true;
    let leases_done = leases.map(Ok).try_for_each(|event| {
        let now = Timestamp::now();
        let mut tracker = super::lock(&tracker);
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                let listed = *leases_synced.0.borrow();
                return std::future::ready(broke(&mut tracker, now, listed, error));
            }
        };
        match event {
            watcher::Event::Init => listing = true,
            watcher::Event::InitApply(lease) => {
                tracker.lease(now, &lease.name_any(), state(&lease), first_listing);
            }
            watcher::Event::InitDone => {
                listing = false;
                first_listing = false;
                leases_synced.0.send_replace(true);
            }
            watcher::Event::Apply(lease) => {
                tracker.lease(
                    now,
                    &lease.name_any(),
                    state(&lease),
                    listing && first_listing,
                );
            }
            watcher::Event::Delete(lease) => tracker.lease(now, &lease.name_any(), None, false),
        }
        std::future::ready(Ok(()))
    });
    let both_synced = async {
        let (mut a, mut b) = (websites_synced.1, leases_synced.1);
        if a.wait_for(|s| *s).await.is_ok() && b.wait_for(|s| *s).await.is_ok() {
            synced.send_replace(true);
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        result = websites_done => result,
        result = leases_done => result,
        () = both_synced => Ok(()),
    }
}

/// A watch's error: before the watch has first listed, it ends the observer (the set-up is
/// wrong, say the CRD is missing); after, kube-runtime's watcher starts the watch over, and it
/// counts as a watch restart.
fn broke(
    tracker: &mut Tracker,
    now: Timestamp,
    listed: bool,
    error: watcher::Error,
) -> anyhow::Result<()> {
    if !listed {
        return Err(error.into());
    }
    tracker.watch_restarted(now);
    Ok(())
}

/// The shard state a Lease's label names; `None` without a label or with an unknown one.
fn state(lease: &Lease) -> Option<ShardState> {
    lease
        .labels()
        .get(labels::STATE)
        .and_then(|state| state.parse().ok())
}

fn website_key(website: &Website) -> String {
    key(
        website.metadata.namespace.as_deref().unwrap_or_default(),
        &website.name_any(),
    )
}

/// What the tracker needs of a Website.
fn view(website: &Website, shard_label: &str) -> WebsiteView {
    let status = website.status.as_ref();
    WebsiteView {
        key: website_key(website),
        shard: website.labels().get(shard_label).cloned(),
        phase_ready: status.and_then(|s| s.phase) == Some(WebsitePhase::Ready),
        observed_generation: status.and_then(|s| s.observed_generation),
        generation: website.metadata.generation.unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::api::ObjectMeta;
    use webhosting_operator::api::{WebsiteSpec, WebsiteStatus};

    use super::*;

    #[test]
    fn a_website_is_viewed_with_its_shard_and_readiness() {
        let shard_label = labels::shard(RING);
        let website = Website {
            metadata: ObjectMeta {
                name: Some("a".into()),
                namespace: Some("p".into()),
                generation: Some(3),
                labels: Some(BTreeMap::from([(shard_label.clone(), "s1".into())])),
                ..ObjectMeta::default()
            },
            spec: WebsiteSpec { theme: "t".into() },
            status: Some(WebsiteStatus {
                observed_generation: Some(2),
                phase: Some(WebsitePhase::Ready),
                last_transition_time: None,
            }),
        };
        assert_eq!(
            view(&website, &shard_label),
            WebsiteView {
                key: "p/a".into(),
                shard: Some("s1".into()),
                phase_ready: true,
                observed_generation: Some(2),
                generation: 3,
            }
        );
    }

    #[test]
    fn a_watch_error_ends_the_observer_before_the_first_listing_and_is_a_restart_after() {
        let mut tracker = Tracker::new(std::time::Duration::from_secs(10)).unwrap();
        let now = Timestamp::from_second(100).unwrap();
        let error = || watcher::Error::NoResourceVersion;
        assert!(broke(&mut tracker, now, false, error()).is_err());
        assert_eq!(tracker.watch_restarts(now, now), 0);
        assert!(broke(&mut tracker, now, true, error()).is_ok());
        assert_eq!(tracker.watch_restarts(now, now), 1);
    }

    #[test]
    fn a_lease_state_comes_from_its_label() {
        let mut lease = Lease::default();
        assert_eq!(state(&lease), None);
        lease.metadata.labels = Some(BTreeMap::from([(labels::STATE.into(), "dead".into())]));
        assert_eq!(state(&lease), Some(ShardState::Dead));
        lease.metadata.labels = Some(BTreeMap::from([(labels::STATE.into(), "odd".into())]));
        assert_eq!(state(&lease), None);
    }
}
