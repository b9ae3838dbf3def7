//! The workload whose replicas are the shards: a Deployment or a StatefulSet
//! (`controller.cluster` of the scenario), read and patched the same way.

use anyhow::Context as _;
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, StatefulSet},
        core::v1::PodTemplateSpec,
    },
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, Patch, PatchParams},
};
use serde_json::Value;

use super::rollout::{rollout_pending, stateful_rollout_pending};
use crate::scenario::{ShardWorkload, WorkloadKind};

/// The workload as read.
#[derive(Debug, Clone)]
pub(super) enum Workload {
    Deployment(Deployment),
    StatefulSet(StatefulSet),
}

impl Workload {
    /// Its replicas; the API server defaults a missing one to 1.
    pub(super) fn replicas(&self) -> i32 {
        match self {
            Self::Deployment(d) => d.spec.as_ref().and_then(|s| s.replicas),
            Self::StatefulSet(s) => s.spec.as_ref().and_then(|s| s.replicas),
        }
        .unwrap_or(1)
    }

    /// Its pod selector.
    pub(super) fn selector(&self) -> LabelSelector {
        match self {
            Self::Deployment(d) => d.spec.as_ref().map(|s| s.selector.clone()),
            Self::StatefulSet(s) => s.spec.as_ref().map(|s| s.selector.clone()),
        }
        .unwrap_or_default()
    }

    /// Its pod template.
    pub(super) fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Self::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Self::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
        }
    }

    /// Why its rollout is not finished, or `None` when it is.
    pub(super) fn rollout_pending(&self) -> Option<String> {
        match self {
            Self::Deployment(d) => rollout_pending(d),
            Self::StatefulSet(s) => stateful_rollout_pending(s),
        }
    }
}

/// Reads and patches one workload.
pub(super) struct WorkloadApi {
    api: Api<DynamicObject>,
    workload: ShardWorkload,
}

impl WorkloadApi {
    pub(super) fn new(client: &Client, workload: &ShardWorkload) -> Self {
        let resource = match workload.kind {
            WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
            WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
        };
        Self {
            api: Api::namespaced_with(client.clone(), &workload.namespace, &resource),
            workload: workload.clone(),
        }
    }

    /// The workload, `None` when it does not exist.
    pub(super) async fn get_opt(&self) -> anyhow::Result<Option<Workload>> {
        let Some(object) = self
            .api
            .get_opt(&self.workload.name)
            .await
            .with_context(|| format!("cannot read {}", self.workload))?
        else {
            return Ok(None);
        };
        let typed = match self.workload.kind {
            WorkloadKind::Deployment => Workload::Deployment(object.try_parse()?),
            WorkloadKind::StatefulSet => Workload::StatefulSet(object.try_parse()?),
        };
        Ok(Some(typed))
    }

    /// The workload; fails when it does not exist.
    pub(super) async fn get(&self) -> anyhow::Result<Workload> {
        self.get_opt()
            .await?
            .with_context(|| format!("{} does not exist", self.workload))
    }

    /// Applies a strategic merge `patch` (Deployments and StatefulSets merge the same way).
    pub(super) async fn patch(&self, params: &PatchParams, patch: Value) -> anyhow::Result<()> {
        self.api
            .patch(&self.workload.name, params, &Patch::Strategic(patch))
            .await
            .with_context(|| format!("cannot patch {}", self.workload))?;
        Ok(())
    }
}
