//! Self-contained kubeconfig files (certificates embedded as data).

use base64::{Engine, engine::general_purpose::STANDARD};

use crate::certs::CertifiedKey;

/// The context (and cluster and user) name in written kubeconfigs.
pub const CONTEXT: &str = "testenv";

/// A kubeconfig for `server` that trusts `ca_pem` and authenticates with `client`.
pub(crate) fn render(server: &str, ca_pem: &str, client: &CertifiedKey) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {CONTEXT}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {CONTEXT}
  context:
    cluster: {CONTEXT}
    user: {CONTEXT}
current-context: {CONTEXT}
",
        ca = STANDARD.encode(ca_pem),
        cert = STANDARD.encode(&client.cert_pem),
        key = STANDARD.encode(&client.key_pem),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_kubeconfig_parses_and_points_at_the_server() {
        let client = CertifiedKey {
            cert_pem: "cert".to_owned(),
            key_pem: "key".to_owned(),
        };
        let yaml = render("https://127.0.0.1:1234", "ca", &client);
        let parsed = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(parsed.current_context.as_deref(), Some(CONTEXT));
        let cluster = parsed.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:1234"));
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Y2E="));
    }
}
