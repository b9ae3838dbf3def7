//! The control plane's certificate authority and the certificates it issues.
//!
//! One CA signs everything: the API server's serving certificate, the client certificates of
//! the admin user and of kube-controller-manager, and serving certificates that callers ask
//! for (for example a webhook served on 127.0.0.1 that the API server must trust).

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// An error creating a key or certificate.
#[derive(Debug, thiserror::Error)]
#[error("cannot create {what}")]
pub struct CertificateError {
    what: String,
    #[source]
    source: rcgen::Error,
}

/// A certificate with its private key, both PEM-encoded.
#[derive(Clone)]
pub struct CertifiedKey {
    /// The certificate, PEM-encoded.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM-encoded.
    pub key_pem: String,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// The certificate authority of one control plane.
///
/// The API server trusts client certificates it signs, and kube-apiserver verifies webhook
/// serving certificates against [`CertificateAuthority::cert_pem`] when that is the webhook's
/// `caBundle`.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a new self-signed CA with a fresh ECDSA P-256 key.
    pub fn new(common_name: &str) -> Result<Self, CertificateError> {
        let key = generate_key("the CA key")?;
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(|source| error("the CA certificate", source))?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM-encoded: a `caBundle` or `certificate-authority-data`.
    #[must_use]
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a serving certificate for the given host names and IP addresses.
    ///
    /// Entries that parse as IP addresses become IP SANs, the others DNS SANs.
    pub fn issue_serving(&self, hosts: &[&str]) -> Result<CertifiedKey, CertificateError> {
        let mut params = CertificateParams::default();
        params.subject_alt_names = hosts
            .iter()
            .map(|host| san(host))
            .collect::<Result<_, _>>()?;
        params.distinguished_name.push(
            DnType::CommonName,
            hosts.first().copied().unwrap_or("serving"),
        );
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        self.issue(&params, &format!("a serving certificate for {hosts:?}"))
    }

    /// Issues a client certificate for a Kubernetes user: `user` becomes the common name
    /// (the user name) and each of `groups` an organization (a group).
    pub fn issue_client(
        &self,
        user: &str,
        groups: &[&str],
    ) -> Result<CertifiedKey, CertificateError> {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, user);
        for group in groups {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *group);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(&params, &format!("a client certificate for user {user}"))
    }

    fn issue(
        &self,
        params: &CertificateParams,
        what: &str,
    ) -> Result<CertifiedKey, CertificateError> {
        let key = generate_key(what)?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|source| error(what, source))?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A new ECDSA P-256 key pair as (private key, public key), PEM-encoded: the
/// service-account token signing key.
pub(crate) fn generate_key_pair_pem() -> Result<(String, String), CertificateError> {
    let key = generate_key("the service-account signing key")?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

/// The names the API server's serving certificate covers: loopback, and the in-cluster
/// names and first service IP a pod would use.
pub(crate) const API_SERVER_HOSTS: &[&str] = &[
    "127.0.0.1",
    "::1",
    "localhost",
    "10.0.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

fn san(host: &str) -> Result<SanType, CertificateError> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => host
            .try_into()
            .map(SanType::DnsName)
            .map_err(|source| error(&format!("a SAN for {host:?}"), source)),
    }
}

fn generate_key(what: &str) -> Result<KeyPair, CertificateError> {
    KeyPair::generate().map_err(|source| error(what, source))
}

fn error(what: &str, source: rcgen::Error) -> CertificateError {
    CertificateError {
        what: what.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_are_pem() {
        let ca = CertificateAuthority::new("test-ca").unwrap();
        let serving = ca.issue_serving(&["127.0.0.1", "localhost"]).unwrap();
        let client = ca.issue_client("admin", &["system:masters"]).unwrap();
        for pem in [ca.cert_pem(), &serving.cert_pem, &client.cert_pem] {
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        }
        assert!(serving.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn a_host_that_is_an_ip_becomes_an_ip_san() {
        assert!(matches!(san("127.0.0.1").unwrap(), SanType::IpAddress(_)));
        assert!(matches!(san("::1").unwrap(), SanType::IpAddress(_)));
        assert!(matches!(san("localhost").unwrap(), SanType::DnsName(_)));
    }
}
