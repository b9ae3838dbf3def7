//! The Website reconciler (docs/contract.md#the-webhosting-operator-api): applies the ConfigMap,
//! Service, Ingress and Deployment of a Website and reports its phase.

use std::{sync::Arc, time::Duration};

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        core::v1::{ConfigMap, Service},
        networking::v1::Ingress,
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource as _, ResourceExt as _,
    api::{Patch, PatchParams},
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder},
        reflector::{ObjectRef, Store},
    },
};
use kube_sharding::{
    fence::{Expired, Fence},
    shard::{Shard, reconciler},
};
use serde_json::json;

use super::apply::apply;
use crate::{
    api::{Theme, Website, WebsitePhase},
    audit::Audit,
    children,
    phase::{self, Observation},
};

/// Errors of one reconciliation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Applying a child object failed.
    #[error("cannot apply {kind} {name}")]
    Apply {
        /// The child's kind.
        kind: &'static str,
        /// The child's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the Website's status failed; a conflict means the Website changed since it
    /// was read.
    #[error("cannot update the status of Website {0}")]
    Status(String, #[source] kube::Error),
    /// The replica's Lease may have passed to another holder: nothing more is written.
    #[error("not writing for Website {0}")]
    Fenced(String, #[source] Expired),
}

/// The caches and settings the reconciler reads.
#[derive(Clone)]
pub struct Context {
    /// The API client.
    pub client: Client,
    /// All Themes.
    pub themes: Store<Theme>,
    /// This shard's Deployments, ConfigMaps, Services and Ingresses.
    pub deployments: Store<Deployment>,
    /// See `deployments`.
    pub config_maps: Store<ConfigMap>,
    /// See `deployments`.
    pub services: Store<Service>,
    /// See `deployments`.
    pub ingresses: Store<Ingress>,
    /// Records events on Websites.
    pub recorder: Recorder,
    /// This shard, when the operator runs sharded.
    pub shard: Option<Shard>,
    /// The fence of the shard Lease or the singleton's leader Lease, checked before every
    /// write (docs/contract.md#fencing).
    pub fence: Fence,
    /// A wait in every reconciliation that models work on external systems.
    pub simulated_work: Duration,
    /// The reconciliation audit log, if enabled.
    pub audit: Option<Audit>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("shard", &self.shard)
            .field("simulated_work", &self.simulated_work)
            .finish_non_exhaustive()
    }
}

/// Reconciles `website` if it is assigned to this shard (or the operator is a singleton),
/// and acknowledges its drain without reconciling it.
pub async fn reconcile(
    website: Arc<Website>,
    ctx: Arc<Context>,
) -> Result<Action, reconciler::Error<Error>> {
    match ctx.shard.clone() {
        Some(shard) => {
            shard
                .reconcile(website, |website| reconcile_assigned(website, ctx))
                .await
        }
        None => reconcile_assigned(website, ctx)
            .await
            .map_err(reconciler::Error::Inner),
    }
}

/// Retries failed reconciliations after a while; their cause is logged.
#[allow(
    clippy::needless_pass_by_value,
    reason = "the signature Controller::run expects"
)]
pub fn error_policy(
    website: Arc<Website>,
    error: &reconciler::Error<Error>,
    _: Arc<Context>,
) -> Action {
    tracing::warn!(
        website = %ObjectRef::from_obj(website.as_ref()),
        error = %operations::error_chain(error),
        "reconciliation failed"
    );
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile_assigned(website: Arc<Website>, ctx: Arc<Context>) -> Result<Action, Error> {
    let audit = ctx.audit.as_ref().map(|audit| {
        audit.reconciling(format!(
            "{}/{}",
            website.namespace().unwrap_or_default(),
            website.name_any()
        ))
    });
    match reconcile_website(&website, &ctx).await {
        Ok(action) => Ok(action),
        Err(error) => {
            publish(
                &ctx,
                &website,
                EventType::Warning,
                "ReconcileError",
                operations::error_chain(&error),
            )
            .await;
            // The error is what the caller must see; a failed status write adds nothing.
            let _ = write_status(&ctx, &website, phase::phase(Observation::Failed)).await;
            if let (Error::Fenced(..), Some(audit)) = (&error, audit) {
                audit.fenced();
            }
            Err(error)
        }
    }
}

async fn reconcile_website(website: &Website, ctx: &Context) -> Result<Action, Error> {
    if website.meta().deletion_timestamp.is_some() {
        write_status(ctx, website, phase::phase(Observation::Deleting)).await?;
        return Ok(Action::await_change());
    }
    let Some(theme) = ctx.themes.get(&ObjectRef::new(&website.spec.theme)) else {
        if website.status.as_ref().and_then(|s| s.phase.as_ref()) != Some(&WebsitePhase::Error) {
            publish(
                ctx,
                website,
                EventType::Warning,
                "ThemeNotFound",
                format!("Theme {:?} not found", website.spec.theme),
            )
            .await;
        }
        write_status(ctx, website, phase::phase(Observation::ThemeMissing)).await?;
        // Creating the Theme triggers this Website again.
        return Ok(Action::await_change());
    };
    if !ctx.simulated_work.is_zero() {
        tokio::time::sleep(ctx.simulated_work).await;
    }

    // Each apply is a write on the strength of the Lease.
    let config_map = children::config_map(website, &theme);
    fenced(ctx, website)?;
    apply(&ctx.client, &ctx.config_maps, &config_map)
        .await
        .map_err(apply_error("ConfigMap", &config_map))?;
    let service = children::service(website);
    fenced(ctx, website)?;
    apply(&ctx.client, &ctx.services, &service)
        .await
        .map_err(apply_error("Service", &service))?;
    let ingress = children::ingress(website);
    fenced(ctx, website)?;
    apply(&ctx.client, &ctx.ingresses, &ingress)
        .await
        .map_err(apply_error("Ingress", &ingress))?;
    let deployment = children::deployment(website, &config_map);
    fenced(ctx, website)?;
    let deployment = apply(&ctx.client, &ctx.deployments, &deployment)
        .await
        .map_err(apply_error("Deployment", &deployment))?;

    let phase = phase::phase(Observation::Deployment(Some(&deployment)));
    write_status(ctx, website, phase).await?;
    // A change of the Deployment's status triggers the Website again.
    Ok(Action::await_change())
}

fn apply_error<K: kube::Resource>(
    kind: &'static str,
    object: &K,
) -> impl FnOnce(kube::Error) -> Error {
    let name = object.meta().name.clone().unwrap_or_default();
    move |source| Error::Apply { kind, name, source }
}

/// Passes while the replica's fence holds (docs/contract.md#fencing).
fn fenced(ctx: &Context, website: &Website) -> Result<(), Error> {
    ctx.fence
        .check()
        .map_err(|expired| Error::Fenced(website.name_any(), expired))
}

/// Writes the status for `phase`, unless it is already the Website's status. The write
/// carries the resourceVersion that was read, so it applies only to that version of the
/// Website (docs/webhosting-operator.md#writes).
async fn write_status(ctx: &Context, website: &Website, phase: WebsitePhase) -> Result<(), Error> {
    let status = phase::desired_status(website, phase, Timestamp::now());
    if website.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let name = website.name_any();
    let patch = json!({
        "metadata": { "resourceVersion": website.resource_version() },
        "status": status,
    });
    fenced(ctx, website)?;
    Api::<Website>::namespaced(ctx.client.clone(), &website.namespace().unwrap_or_default())
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|source| Error::Status(name, source))?;
    Ok(())
}

async fn publish(ctx: &Context, website: &Website, type_: EventType, reason: &str, note: String) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if fenced(ctx, website).is_err() {
        return;
    }
    if let Err(error) = ctx.recorder.publish(&event, &website.object_ref(&())).await {
        tracing::warn!(%error, "cannot record an event");
    }
}
