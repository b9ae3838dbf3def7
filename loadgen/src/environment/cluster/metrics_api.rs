//! The metrics API (`metrics.k8s.io/v1beta1`, served by metrics-server): the CPU rate and
//! working set of pods, and the CPU rate of nodes.

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta};
use kube::{Client, api::ListParams};
use serde::Deserialize;

use super::quantity::{parse_quantity, saturating_u64};
use crate::measure::cost::Usage;

/// The PodMetrics of the pods in `namespace` that `selector` selects.
pub(super) async fn pod_metrics(
    client: &Client,
    namespace: &str,
    selector: &str,
) -> anyhow::Result<Vec<PodMetrics>> {
    let request = kube::core::Request::new(format!(
        "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"
    ))
    .list(&ListParams::default().labels(selector))?;
    let list: PodMetricsList = client.request(request).await.context(
        "cannot read the metrics API (metrics.k8s.io/v1beta1): is metrics-server installed? \
         (the kind deployment installs it, see docs/kind.md)",
    )?;
    Ok(list.items)
}

/// The CPU rate of all nodes together, in cores.
pub(super) async fn node_cores(client: &Client) -> anyhow::Result<f64> {
    let request = kube::core::Request::new("/apis/metrics.k8s.io/v1beta1/nodes")
        .list(&ListParams::default())?;
    let list: NodeMetricsList = client
        .request(request)
        .await
        .context("cannot read the nodes' metrics (metrics.k8s.io/v1beta1)")?;
    list.cores()
}

/// A NodeMetricsList of `metrics.k8s.io/v1beta1`.
#[derive(Debug, Deserialize)]
struct NodeMetricsList {
    items: Vec<NodeMetrics>,
}

/// A node's usage as the metrics API reports it.
#[derive(Debug, Deserialize)]
struct NodeMetrics {
    usage: BTreeMap<String, Quantity>,
}

impl NodeMetricsList {
    /// The CPU rate of all its nodes.
    fn cores(&self) -> anyhow::Result<f64> {
        self.items
            .iter()
            .filter_map(|node| node.usage.get("cpu"))
            .map(|cpu| parse_quantity(&cpu.0))
            .sum()
    }
}

/// A PodMetricsList of `metrics.k8s.io/v1beta1`, which k8s-openapi does not have.
#[derive(Debug, Deserialize)]
struct PodMetricsList {
    items: Vec<PodMetrics>,
}

/// A pod's usage as the metrics API reports it.
#[derive(Debug, Deserialize)]
pub(super) struct PodMetrics {
    pub(super) metadata: ObjectMeta,
    containers: Vec<ContainerMetrics>,
}

#[derive(Debug, Deserialize)]
struct ContainerMetrics {
    usage: BTreeMap<String, Quantity>,
}

impl PodMetrics {
    /// The pod's containers together.
    pub(super) fn usage(&self) -> anyhow::Result<Usage> {
        let mut usage = Usage::default();
        for container in &self.containers {
            let read = |resource: &str| {
                container
                    .usage
                    .get(resource)
                    .map_or(Ok(0.0), |q| parse_quantity(&q.0))
            };
            usage.add(Usage {
                cores: read("cpu")?,
                bytes: saturating_u64(read("memory")?),
            });
        }
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pod_metrics_add_up_their_containers() {
        let metrics: PodMetricsList = serde_json::from_value(json!({
            "kind": "PodMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [{
                "metadata": { "name": "etcd-kind", "labels": { "component": "etcd" } },
                "timestamp": "2025-01-01T00:00:00Z",
                "window": "15s",
                "containers": [
                    { "name": "a", "usage": { "cpu": "250m", "memory": "1Mi" } },
                    { "name": "b", "usage": { "cpu": "500000000n", "memory": "1024Ki" } },
                ],
            }],
        }))
        .unwrap();
        assert_eq!(
            metrics.items[0].usage().unwrap(),
            Usage {
                cores: 0.75,
                bytes: 2 * 1024 * 1024
            }
        );
    }

    #[test]
    fn node_metrics_add_up_the_cpu_of_every_node() {
        let metrics: NodeMetricsList = serde_json::from_value(json!({
            "kind": "NodeMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [
                {
                    "metadata": { "name": "kind-control-plane" },
                    "timestamp": "2025-01-01T00:00:00Z",
                    "window": "20s",
                    "usage": { "cpu": "1500m", "memory": "2Gi" },
                },
                {
                    "metadata": { "name": "kind-worker" },
                    "timestamp": "2025-01-01T00:00:00Z",
                    "window": "20s",
                    "usage": { "cpu": "250000000n", "memory": "1Gi" },
                },
            ],
        }))
        .unwrap();
        assert!((metrics.cores().unwrap() - 1.75).abs() < 1e-9);
    }
}
