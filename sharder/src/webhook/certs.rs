//! The sharder's webhook serving certificate and the CA that signed it, written by `sharder
//! webhook-certs`: `tls.crt`, `tls.key` and `ca.crt` in one directory, as the Secret of
//! `deploy/sharder/default` wants them (for the in-cluster Service's names) and as
//! `sharder/config/local.yaml` reads them (for 127.0.0.1 and localhost,
//! docs/sharder.md#running-outside-a-cluster).
//!
//! The API server verifies the webhook with the CA: the sharder reads `ca.crt` as its
//! `caBundleFile` and puts it into every ring's MutatingWebhookConfiguration
//! (docs/contract.md#webhook).

use std::{
    fs::OpenOptions,
    io::Write as _,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The serving certificate's file name (the Secret key and the sharder's `certName`).
pub const CERT_FILE: &str = "tls.crt";
/// The serving key's file name (the Secret key and the sharder's `keyName`).
pub const KEY_FILE: &str = "tls.key";
/// The CA certificate's file name (the sharder's `caBundleFile`).
pub const CA_FILE: &str = "ca.crt";

/// An error creating or writing the certificates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rcgen could not create a key or a certificate.
    #[error("cannot create {what}")]
    Generate {
        /// What was being created.
        what: &'static str,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A serving certificate, its key and the CA certificate that signed it, PEM-encoded.
#[derive(Clone)]
pub struct WebhookCerts {
    /// The CA certificate.
    pub ca_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving certificate's private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for WebhookCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookCerts")
            .field("ca_pem", &self.ca_pem)
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All three files were there and are kept: the deployed CA stays valid.
    Kept,
    /// New files were written.
    Written,
}

/// The names by which the API server calls a sharder on this machine, at a
/// `clientConfig.url` of `https://127.0.0.1:<port>/` or `https://localhost:<port>/`.
pub const LOCAL_HOSTS: [&str; 2] = ["127.0.0.1", "localhost"];

/// The DNS names by which the API server may call Service `name` in `namespace`.
#[must_use]
pub fn service_hosts(name: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{name}.{namespace}"),
        format!("{name}.{namespace}.svc"),
        format!("{name}.{namespace}.svc.cluster.local"),
    ]
}

/// A new CA and a serving certificate for `hosts` that it signed: each host that parses as an
/// IP address becomes an IP SAN, every other a DNS SAN.
///
/// Both keep rcgen's default validity (1975 to 4096): a local cluster's or a local run's
/// certificate does not expire; deleting the files and writing them again rotates it.
pub fn generate(hosts: &[String]) -> Result<WebhookCerts> {
    let ca_key = key("the CA key")?;
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "controller-sharding webhook CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(|source| Error::Generate {
        what: "the CA certificate",
        source,
    })?;
    let issuer = Issuer::new(ca, ca_key);

    let key = key("the serving key")?;
    let mut serving = CertificateParams::new(hosts.to_vec()).map_err(|source| Error::Generate {
        what: "the serving certificate's names",
        source,
    })?;
    if let Some(host) = hosts.first() {
        serving
            .distinguished_name
            .push(DnType::CommonName, host.as_str());
    }
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    serving.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let cert = serving
        .signed_by(&key, &issuer)
        .map_err(|source| Error::Generate {
            what: "the serving certificate",
            source,
        })?;
    Ok(WebhookCerts {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Writes a new CA and serving certificate for `hosts` into `dir` (created if missing) unless
/// all three files are there already. Keeping them matters: the running sharder and every
/// webhook configuration trust the CA that is deployed.
pub fn ensure(dir: &Path, hosts: &[String]) -> Result<Outcome> {
    let files = [CA_FILE, CERT_FILE, KEY_FILE].map(|file| dir.join(file));
    if files.iter().all(|file| file.is_file()) {
        return Ok(Outcome::Kept);
    }
    let certs = generate(hosts)?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_owned(),
        source,
    })?;
    let [ca, cert, key] = files;
    write(&ca, &certs.ca_pem, 0o644)?;
    write(&cert, &certs.cert_pem, 0o644)?;
    write(&key, &certs.key_pem, 0o600)?;
    Ok(Outcome::Written)
}

fn key(what: &'static str) -> Result<KeyPair> {
    KeyPair::generate().map_err(|source| Error::Generate { what, source })
}

/// Replaces `path` with `contents`, created with `mode` (a private key is not world-readable).
fn write(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .map_err(error)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn service_hosts_are_the_names_of_a_service() {
        assert_eq!(
            service_hosts("sharder", "sharding-system"),
            [
                "sharder.sharding-system",
                "sharder.sharding-system.svc",
                "sharder.sharding-system.svc.cluster.local"
            ]
        );
    }

    /// Whether a client that trusts `certs`' CA accepts its serving certificate for `host`.
    fn verify(certs: &WebhookCerts, ca_pem: &str, host: &str) -> bool {
        use std::sync::Arc;

        use tokio_rustls::rustls::{
            self,
            client::{WebPkiServerVerifier, danger::ServerCertVerifier as _},
            pki_types::{CertificateDer, ServerName, UnixTime, pem::PemObject as _},
        };
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let cert = CertificateDer::from_pem_slice(certs.cert_pem.as_bytes()).unwrap();
        verifier
            .verify_server_cert(
                &cert,
                &[],
                &ServerName::try_from(host).unwrap(),
                &[],
                UnixTime::now(),
            )
            .is_ok()
    }

    #[test]
    fn a_local_certificate_serves_127_0_0_1_and_localhost_only() {
        let certs = generate(&LOCAL_HOSTS.map(str::to_owned)).unwrap();
        assert!(verify(&certs, &certs.ca_pem, "127.0.0.1"));
        assert!(verify(&certs, &certs.ca_pem, "localhost"));
        assert!(!verify(&certs, &certs.ca_pem, "127.0.0.2"));
        assert!(!verify(
            &certs,
            &certs.ca_pem,
            "sharder.sharding-system.svc"
        ));
        let other = generate(&LOCAL_HOSTS.map(str::to_owned)).unwrap();
        assert!(!verify(&certs, &other.ca_pem, "127.0.0.1"));
    }

    #[test]
    fn a_service_certificate_serves_the_service_names() {
        let hosts = service_hosts("sharder", "sharding-system");
        let certs = generate(&hosts).unwrap();
        for host in &hosts {
            assert!(verify(&certs, &certs.ca_pem, host), "{host}");
        }
        assert!(!verify(&certs, &certs.ca_pem, "127.0.0.1"));
    }

    #[test]
    fn ensure_writes_three_files_once_and_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        let hosts = service_hosts("sharder", "sharding-system");
        assert_eq!(ensure(&certs, &hosts).unwrap(), Outcome::Written);
        let ca = std::fs::read_to_string(certs.join(CA_FILE)).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
        let key = std::fs::metadata(certs.join(KEY_FILE)).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);

        assert_eq!(ensure(&certs, &hosts).unwrap(), Outcome::Kept);
        assert_eq!(std::fs::read_to_string(certs.join(CA_FILE)).unwrap(), ca);
    }

    #[test]
    fn a_partial_directory_gets_a_new_pair() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CA_FILE), "old").unwrap();
        let hosts = service_hosts("sharder", "sharding-system");
        assert_eq!(ensure(dir.path(), &hosts).unwrap(), Outcome::Written);
        assert_ne!(
            std::fs::read_to_string(dir.path().join(CA_FILE)).unwrap(),
            "old"
        );
    }

    #[test]
    fn an_unwritable_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let error = ensure(&file.join("certs"), &["a".to_owned()]).unwrap_err();
        assert!(error.to_string().contains("file/certs"), "{error}");
    }
}
