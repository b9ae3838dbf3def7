//! Workloads as data (docs/workloads.md): what objects a scenario creates, changes and deletes,
//! and when a write of it counts as reconciled. The Website load is one such workload, the
//! default ([`Workload::websites`]); any other resource of any sharded controller is declared
//! the same way in a scenario's `workloads`.
//!
//! Pure: rendering and the readiness rules take the objects as JSON values and randomness as
//! an argument; the driver and the observer run them.

use std::collections::BTreeMap;

use kube::{api::Patch, core::GroupVersionKind};
use serde::Serialize;
use serde_json::Value;

/// Why a template did not render into what its field must hold. The message names the field,
/// such as `workloads[0].mutations[1]: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct RenderError {
    /// The field path of the template, such as `workloads[0].template`.
    pub field: String,
    /// What went wrong, quoting the template engine or the rendered text.
    pub problem: String,
}

/// An API kind: `apiVersion` and `kind`, as objects spell them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Kind {
    /// `apiVersion`: `v1` or `group/version`.
    pub api_version: String,
    /// `kind`: `Secret`.
    pub kind: String,
}

impl Kind {
    /// The group, empty for the core group.
    #[must_use]
    pub fn group(&self) -> &str {
        todo!()
    }

    /// The version.
    #[must_use]
    pub fn version(&self) -> &str {
        todo!()
    }

    /// Group, version and kind, for discovery.
    #[must_use]
    pub fn gvk(&self) -> GroupVersionKind {
        todo!()
    }
}

/// `workloads[].resource`: the kind of the workload's objects and whether they live in a
/// namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// `apiVersion` and `kind`.
    #[serde(flatten)]
    pub kind: Kind,
    /// `namespaced` (default true): objects are created in the world's namespaces, at random.
    pub namespaced: bool,
}

/// A YAML template with placeholders (docs/workloads.md#templates), checked to render when the
/// scenario is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Template {
    /// The text as written.
    pub text: String,
}

/// What a template sees (docs/workloads.md#templates).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// `index`: the number of the object among all the run's creates (or of the fixture
    /// among its fixture's), from 0.
    pub index: u64,
    /// `namespace`: the namespace chosen for the object, empty for a cluster-scoped one.
    pub namespace: &'a str,
    /// `namespaces`: every namespace of the world.
    pub namespaces: &'a [String],
    /// `run`: the run's id.
    pub run: &'a str,
    /// `fixtures.<name>`: the names of each fixture's objects.
    pub fixtures: &'a BTreeMap<String, Vec<String>>,
    /// `object`: in a mutation, the object as last written; in a readiness rule's
    /// expectation, the object as the API server returned it after the write.
    pub object: Option<&'a Value>,
}

/// `workloads[].fixtures[]`: objects created once before the load, such as the Themes
/// Websites refer to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fixture {
    /// `name`: how templates refer to the fixture's object names, `fixtures.<name>`.
    pub name: String,
    /// `count`: objects, rendered with `index` 0 … count − 1.
    pub count: u32,
    /// `template`: one object of any kind.
    pub template: Template,
}

/// `workloads[].mutations[]`: a change of a live object, a patch rendered with `object` the
/// object as last written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutation {
    /// `merge`: a JSON merge patch (RFC 7386), as YAML.
    Merge(Template),
    /// `json`: a JSON patch (RFC 6902), a YAML list of operations.
    Json(Template),
}

/// A JSONPath expression, kubectl's `{.status.phase}` or RFC 9535's `$.status.phase`, checked
/// to parse when the scenario is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct JsonPath {
    /// The expression as written.
    pub text: String,
}

impl JsonPath {
    /// The value at the path in `object`: a string as it is, a number or boolean as its JSON
    /// text; `None` when the path matches nothing, more than one value, null, an object or a
    /// list.
    #[must_use]
    pub fn value(&self, object: &Value) -> Option<String> {
        let _ = object;
        todo!()
    }
}

/// `reconciled.condition`: a condition of `status.conditions` with this type and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// `type`, such as `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `status`, such as `"True"`.
    pub status: String,
}

/// A JSONPath and the value it must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// `jsonPath`.
    pub json_path: JsonPath,
    /// `equals`: a template, rendered with `object` the written object.
    pub equals: Template,
}

/// `reconciled.related.name` or `reconciled.related.ownerReference`: how the related object of
/// a written one is found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Locate {
    /// `name`: a template rendered with `object` the written object; the related object is in
    /// the written object's namespace.
    Name(Template),
    /// `ownerReference: true`: the related object names the written one as its controller in
    /// `metadata.ownerReferences` (same namespace).
    OwnerReference,
}

/// `reconciled.related`: for a controller that writes no status, an object it makes for the
/// written one, and what that object must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Related {
    /// `apiVersion`, `kind` of the related object.
    #[serde(flatten)]
    pub kind: Kind,
    /// How it is found.
    pub locate: Locate,
    /// What it must show.
    #[serde(flatten)]
    pub check: Check,
}

/// `workloads[].reconciled`: when a write counts as reconciled
/// (docs/workloads.md#reconciled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reconciled {
    /// `observedGeneration: true`: `status.observedGeneration` reached the written
    /// generation, and the optional condition and check hold (their `equals` are rendered
    /// with `object` the observed object).
    ObservedGeneration {
        /// `condition`.
        condition: Option<Condition>,
        /// `jsonPath` with `equals`.
        check: Option<Check>,
    },
    /// `jsonPath` with `equals`, without `observedGeneration`: the object itself shows the
    /// value rendered from the written object.
    Own(Check),
    /// `related`.
    Related(Related),
}

/// What one write awaits, from the object the API server returned after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaited {
    /// Its `metadata.generation`: reconciled when the object is seen reconciled at this
    /// generation or a later one.
    Generation(i64),
    /// A value at the rule's JSONPath on the object itself or on its related object.
    Value {
        /// The related object's `namespace/name` when found by name; `None` when it is the
        /// object itself or found by owner reference.
        related: Option<String>,
        /// The value that shows the write reconciled.
        expected: String,
    },
}

impl Reconciled {
    /// What `written`, just returned by the API server, awaits.
    ///
    /// # Errors
    /// The rule needs a `metadata.generation` the object lacks, or a template does not render.
    pub fn awaited(&self, written: &Value, context: &Context<'_>) -> Result<Awaited, RenderError> {
        let _ = (written, context);
        todo!()
    }

    /// For [`Reconciled::ObservedGeneration`]: the generation `observed` is reconciled at
    /// (its `status.observedGeneration` when the condition and check hold), 0 when it is not;
    /// `None` for the other rules.
    #[must_use]
    pub fn reconciled_generation(&self, observed: &Value) -> Option<i64> {
        let _ = observed;
        todo!()
    }

    /// For [`Reconciled::Own`] and [`Reconciled::Related`]: the value at the rule's JSONPath in
    /// `observed` (the object itself, or the related one).
    #[must_use]
    pub fn observed_value(&self, observed: &Value) -> Option<String> {
        let _ = observed;
        todo!()
    }

    /// The related object's kind, when the rule has one.
    #[must_use]
    pub fn related(&self) -> Option<&Related> {
        todo!()
    }
}

impl Related {
    /// For [`Locate::OwnerReference`]: the `namespace/name` of the object of kind `owner`
    /// that `observed` names as its controller; `None` when it names none.
    #[must_use]
    pub fn owner_key(&self, observed: &Value, owner: &Kind) -> Option<String> {
        let _ = (observed, owner);
        todo!()
    }
}

/// One workload of a scenario (docs/workloads.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Workload {
    /// `name`: `[a-z0-9-]+`, in reports.
    pub name: String,
    /// `resource`.
    pub resource: Resource,
    /// `controllerRing`: the ring whose shards reconcile it; its shard label is
    /// `shard.alpha.sharding.timebertt.dev/<ring>`.
    pub controller_ring: String,
    /// `weight` (default 1): the share of creates, relative to the other workloads'.
    pub weight: u32,
    /// `fixtures`.
    pub fixtures: Vec<Fixture>,
    /// `template`: a new object; loadgen adds the run label and, for a namespaced resource
    /// without one, the namespace.
    pub template: Template,
    /// `mutations`: at least one; each change picks one at random.
    pub mutations: Vec<Mutation>,
    /// `reconciled`.
    pub reconciled: Reconciled,
    /// `owned`: kinds whose objects the controller makes for each object of the workload and
    /// that must carry their owner's shard label.
    pub owned: Vec<Kind>,
}

impl Workload {
    /// The default workload: Websites with `themes` Theme fixtures, a random Theme each, no
    /// pods (`skip-workload`), changed to another Theme, reconciled when `status.phase` is
    /// Ready at the written generation.
    #[must_use]
    pub fn websites(themes: u32) -> Self {
        let _ = themes;
        todo!()
    }

    /// A new object: the template rendered with `context` and `rng`, checked to be of the
    /// workload's kind, with `metadata.namespace` set for a namespaced resource.
    ///
    /// # Errors
    /// The template does not render into an object of the workload's kind with a name.
    pub fn object(
        &self,
        context: &Context<'_>,
        rng: &mut impl rand::Rng,
    ) -> Result<Value, RenderError> {
        let _ = (context, rng);
        todo!()
    }

    /// A change of `context.object`: one of the mutations, at random, rendered.
    ///
    /// # Errors
    /// The mutation does not render into a patch.
    pub fn mutation(
        &self,
        context: &Context<'_>,
        rng: &mut impl rand::Rng,
    ) -> Result<Patch<Value>, RenderError> {
        let _ = (context, rng);
        todo!()
    }
}

impl Fixture {
    /// The fixture's objects, `count` renderings with `index` 0 … count − 1.
    ///
    /// # Errors
    /// The template does not render into an object with `apiVersion`, `kind` and a name.
    pub fn objects(&self, context: &Context<'_>) -> Result<Vec<Value>, RenderError> {
        let _ = context;
        todo!()
    }
}
