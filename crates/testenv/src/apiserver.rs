//! kube-apiserver flags: RBAC, client-certificate authentication and service-account tokens.

use crate::layout::Layout;

/// The service CIDR: a /16 holds a ClusterIP Service for each of tens of thousands of objects
/// (a /24 held 253). The serving certificate covers its first address, `10.0.0.1`
/// (`kubernetes.default`).
pub(crate) const SERVICE_CLUSTER_IP_RANGE: &str = "10.0.0.0/16";

/// Flags for kube-apiserver on 127.0.0.1:`port` backed by etcd on `etcd_port`.
pub(crate) fn args(layout: &Layout, port: u16, etcd_port: u16, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
        format!("--secure-port={port}"),
        "--bind-address=127.0.0.1".to_owned(),
        "--advertise-address=127.0.0.1".to_owned(),
        format!("--cert-dir={}", layout.pki().display()),
        format!("--tls-cert-file={}", layout.apiserver_cert().display()),
        format!(
            "--tls-private-key-file={}",
            layout.apiserver_key().display()
        ),
        format!("--client-ca-file={}", layout.ca_cert().display()),
        "--authorization-mode=RBAC".to_owned(),
        format!(
            "--service-account-key-file={}",
            layout.service_account_public_key().display()
        ),
        format!(
            "--service-account-signing-key-file={}",
            layout.service_account_key().display()
        ),
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
        format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
        "--allow-privileged=true".to_owned(),
        "--profiling=false".to_owned(),
    ];
    args.extend_from_slice(extra);
    args
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn extra_flags_come_last_so_they_win() {
        let layout = Layout::new(Path::new("/tmp/cp"));
        let args = args(&layout, 6443, 2379, &["--v=4".to_owned()]);
        assert_eq!(args.last().unwrap(), "--v=4");
        assert!(args.contains(&"--authorization-mode=RBAC".to_owned()));
        assert!(args.contains(&"--client-ca-file=/tmp/cp/pki/ca.crt".to_owned()));
    }
}
