//! The world a run's objects live in: the project namespaces and every workload's fixtures
//! (docs/workloads.md#fields), alike for every subcommand that creates objects.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{DynamicObject, ObjectMeta, Patch, PatchParams},
    core::GroupVersionKind,
    discovery::{self, ApiResource, Scope},
};
use serde_json::Value;

use crate::workload::{Context, Workload};

/// Field manager of loadgen's server-side applies.
const FIELD_MANAGER: &str = "loadgen";

/// The namespaces and fixtures of a measurement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    /// `project-0` … `project-<n - 1>`, labelled as project namespaces (in the ring).
    pub namespaces: Vec<String>,
    /// The names of each fixture's objects, by fixture name (unique across the scenario's
    /// workloads, and seen by every workload's templates).
    pub fixtures: BTreeMap<String, Vec<String>>,
}

impl World {
    /// Applies `namespaces` project namespaces and every fixture of `workloads` (applied, so
    /// that a world left by an earlier run on a cluster is taken over).
    pub async fn create(
        client: &Client,
        namespaces: u32,
        workloads: &[Workload],
    ) -> anyhow::Result<Self> {
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let namespace_api = Api::<Namespace>::all(client.clone());
        let mut namespace_names = Vec::new();
        for i in 0..namespaces {
            let name = format!("project-{i}");
            let namespace = Namespace {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(BTreeMap::from([(
                        stack::PROJECT_LABEL.to_owned(),
                        "true".to_owned(),
                    )])),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            namespace_api
                .patch(&name, &params, &Patch::Apply(&namespace))
                .await
                .with_context(|| format!("cannot create namespace {name}"))?;
            namespace_names.push(name);
        }
        let mut resources = Resources::new(client);
        let mut fixtures = BTreeMap::new();
        let empty = BTreeMap::new();
        let context = Context {
            index: 0,
            namespace: "",
            namespaces: &namespace_names,
            run: "",
            fixtures: &empty,
            object: None,
        };
        for fixture in workloads.iter().flat_map(|workload| &workload.fixtures) {
            let mut created = Vec::new();
            for object in fixture.objects(&context)? {
                created.push(resources.apply(&object, &params).await?);
            }
            fixtures.insert(fixture.name.clone(), created);
        }
        Ok(Self {
            namespaces: namespace_names,
            fixtures,
        })
    }

    /// What the templates see for object number `index` in `namespace` of run `run`,
    /// changing `object` if given.
    #[must_use]
    pub fn context<'a>(
        &'a self,
        (index, namespace): (u64, &'a str),
        run: &'a str,
        object: Option<&'a Value>,
    ) -> Context<'a> {
        Context {
            index,
            namespace,
            namespaces: &self.namespaces,
            run,
            fixtures: &self.fixtures,
            object,
        }
    }
}

/// The API resources of kinds, found by discovery once each.
pub struct Resources {
    client: Client,
    found: HashMap<GroupVersionKind, (ApiResource, bool)>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources")
            .field("found", &self.found.len())
            .finish_non_exhaustive()
    }
}

impl Resources {
    /// None found yet.
    #[must_use]
    pub fn new(client: &Client) -> Self {
        Self {
            client: client.clone(),
            found: HashMap::new(),
        }
    }

    /// The API resource of `gvk` and whether it is namespaced.
    ///
    /// # Errors
    /// The API server does not serve the kind.
    pub async fn find(&mut self, gvk: &GroupVersionKind) -> anyhow::Result<(ApiResource, bool)> {
        if let Some(found) = self.found.get(gvk) {
            return Ok(found.clone());
        }
        let (resource, capabilities) = discovery::pinned_kind(&self.client, gvk)
            .await
            .with_context(|| {
                format!(
                    "the API server does not serve kind {} of {}/{}",
                    gvk.kind, gvk.group, gvk.version
                )
            })?;
        let found = (resource, capabilities.scope == Scope::Namespaced);
        self.found.insert(gvk.clone(), found.clone());
        Ok(found)
    }

    /// An API of `gvk` in `namespace` (all namespaces for `None` or a cluster-scoped kind).
    ///
    /// # Errors
    /// The API server does not serve the kind.
    pub async fn api(
        &mut self,
        gvk: &GroupVersionKind,
        namespace: Option<&str>,
    ) -> anyhow::Result<Api<DynamicObject>> {
        let (resource, namespaced) = self.find(gvk).await?;
        Ok(match namespace.filter(|_| namespaced) {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        })
    }

    /// Applies `object` (server-side, forced); returns its name.
    async fn apply(&mut self, object: &Value, params: &PatchParams) -> anyhow::Result<String> {
        let dynamic: DynamicObject =
            serde_json::from_value(object.clone()).context("a fixture is not an object")?;
        let types = dynamic.types.clone().unwrap_or_default();
        let gvk = GroupVersionKind::try_from(&types)
            .with_context(|| format!("a fixture's apiVersion {:?}", types.api_version))?;
        let name = dynamic.metadata.name.clone().unwrap_or_default();
        let api = self
            .api(&gvk, dynamic.metadata.namespace.as_deref())
            .await?;
        api.patch(&name, params, &Patch::Apply(object))
            .await
            .with_context(|| format!("cannot create {} {name}", types.kind))?;
        Ok(name)
    }
}

/// The APIs of a workload's objects and of its related objects, found by discovery.
#[derive(Debug, Clone)]
pub struct WorkloadApi {
    /// The workload's resource.
    pub resource: ApiResource,
    /// The related objects' resource, when its readiness rule reads one
    /// (docs/workloads.md#reconciled).
    pub related: Option<ApiResource>,
}

impl WorkloadApi {
    /// The API of the workload's objects in `namespace` (empty: all, or cluster-scoped).
    #[must_use]
    pub fn objects(&self, client: &Client, namespace: &str) -> Api<DynamicObject> {
        if namespace.is_empty() {
            Api::all_with(client.clone(), &self.resource)
        } else {
            Api::namespaced_with(client.clone(), namespace, &self.resource)
        }
    }
}

/// The APIs of `workloads`, checked against what the API server serves: each kind exists and
/// is namespaced as its workload says.
///
/// # Errors
/// A kind is not served or its scope differs, named by the workload's field.
pub async fn workload_apis(
    client: &Client,
    workloads: &[Workload],
) -> anyhow::Result<Vec<WorkloadApi>> {
    let mut resources = Resources::new(client);
    let mut apis = Vec::new();
    for (i, workload) in workloads.iter().enumerate() {
        let field = format!("workloads[{i}].resource");
        let (resource, namespaced) = resources
            .find(&workload.resource.kind.gvk())
            .await
            .with_context(|| field.clone())?;
        anyhow::ensure!(
            namespaced == workload.resource.namespaced,
            "{field}.namespaced: {} is {}, the workload says namespaced: {}",
            workload.resource.kind.kind,
            if namespaced {
                "namespaced"
            } else {
                "cluster-scoped"
            },
            workload.resource.namespaced
        );
        let related = match workload.reconciled.related() {
            Some(related) => Some(
                resources
                    .find(&related.kind.gvk())
                    .await
                    .with_context(|| format!("workloads[{i}].reconciled.related"))?
                    .0,
            ),
            None => None,
        };
        apis.push(WorkloadApi { resource, related });
    }
    Ok(apis)
}
