//! kube-controller-manager flags: all default controllers, no leader election.

use crate::layout::Layout;

/// The user kube-controller-manager authenticates as; the API server's RBAC bootstrap policy
/// grants it what the controllers need.
pub(crate) const USER: &str = "system:kube-controller-manager";

/// Flags for kube-controller-manager with its own kubeconfig and HTTPS serving disabled (its
/// readiness is observed through the API: see `ControlPlane::start`).
pub(crate) fn args(layout: &Layout) -> Vec<String> {
    vec![
        format!(
            "--kubeconfig={}",
            layout.controller_manager_kubeconfig().display()
        ),
        "--leader-elect=false".to_owned(),
        "--secure-port=0".to_owned(),
        format!(
            "--service-account-private-key-file={}",
            layout.service_account_key().display()
        ),
        format!("--root-ca-file={}", layout.ca_cert().display()),
        "--controllers=*".to_owned(),
        // Each controller acts as its own service account with the bootstrap RBAC roles, as
        // in a kubeadm cluster; the manager's own user may only mint their tokens.
        "--use-service-account-credentials=true".to_owned(),
        // Sync Deployments and garbage-collect dependents promptly, as tests wait for both.
        "--concurrent-gc-syncs=20".to_owned(),
        "--concurrent-deployment-syncs=10".to_owned(),
        "--concurrent-replicaset-syncs=10".to_owned(),
        // The default client limit (20 requests/s) made kube-controller-manager the bottleneck
        // of load tests: Websites waited for Deployment status at about one per second.
        "--kube-api-qps=300".to_owned(),
        "--kube-api-burst=600".to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn controller_manager_uses_its_own_kubeconfig() {
        let args = args(&Layout::new(Path::new("/tmp/cp")));
        assert!(
            args.contains(&"--kubeconfig=/tmp/cp/kube-controller-manager.kubeconfig".to_owned())
        );
        assert!(args.contains(&"--leader-elect=false".to_owned()));
    }
}
