//! etcd flags: a single member on loopback with its data in the control plane's directory.

use std::path::Path;

/// Flags for a single-member etcd serving plain HTTP on 127.0.0.1.
pub(crate) fn args(data_dir: &Path, client_port: u16, peer_port: u16) -> Vec<String> {
    let client = format!("http://127.0.0.1:{client_port}");
    let peer = format!("http://127.0.0.1:{peer_port}");
    vec![
        format!("--data-dir={}", data_dir.display()),
        format!("--listen-client-urls={client}"),
        format!("--advertise-client-urls={client}"),
        format!("--listen-peer-urls={peer}"),
        format!("--initial-advertise-peer-urls={peer}"),
        format!("--initial-cluster=default={peer}"),
        // The data is thrown away with the directory; fsync would only slow every write.
        "--unsafe-no-fsync=true".to_owned(),
        "--log-level=warn".to_owned(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_listens_only_on_loopback() {
        let args = args(Path::new("/tmp/x/etcd"), 2379, 2380);
        assert!(args.contains(&"--listen-client-urls=http://127.0.0.1:2379".to_owned()));
        assert!(args.contains(&"--listen-peer-urls=http://127.0.0.1:2380".to_owned()));
        assert!(args.contains(&"--data-dir=/tmp/x/etcd".to_owned()));
    }
}
