//! A Kubernetes client whose requests are counted in `rest_client_requests_total`.

use std::path::Path;

use anyhow::Context as _;
use controller_runtime_metrics::RestClientMetrics;
use kube::Client;

/// A client from the kubeconfig at `kubeconfig_path`, or else from the environment (in-cluster or
/// `KUBECONFIG`), counting its requests in the returned metrics.
pub async fn build(kubeconfig_path: Option<&Path>) -> anyhow::Result<(Client, RestClientMetrics)> {
    let kube_config = match kubeconfig_path {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await?
        }
        None => kube::Config::infer().await?,
    };
    let metrics = RestClientMetrics::default();
    let host = kube_config
        .cluster_url
        .authority()
        .map(ToString::to_string)
        .unwrap_or_default();
    let client = kube::client::ClientBuilder::try_from(kube_config)?
        .with_layer(&metrics.layer(&host))
        .build();
    Ok((client, metrics))
}
