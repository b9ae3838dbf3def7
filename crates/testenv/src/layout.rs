//! Where a control plane keeps its files inside its directory.

use std::path::{Path, PathBuf};

/// The paths of one control plane's files.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }

    pub(crate) fn ca_cert(&self) -> PathBuf {
        self.pki().join("ca.crt")
    }

    pub(crate) fn apiserver_cert(&self) -> PathBuf {
        self.pki().join("apiserver.crt")
    }

    pub(crate) fn apiserver_key(&self) -> PathBuf {
        self.pki().join("apiserver.key")
    }

    pub(crate) fn service_account_key(&self) -> PathBuf {
        self.pki().join("service-account.key")
    }

    pub(crate) fn service_account_public_key(&self) -> PathBuf {
        self.pki().join("service-account.pub")
    }

    pub(crate) fn etcd_data(&self) -> PathBuf {
        self.root.join("etcd")
    }

    pub(crate) fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub(crate) fn log(&self, component: &str) -> PathBuf {
        self.logs().join(format!("{component}.log"))
    }

    pub(crate) fn admin_kubeconfig(&self) -> PathBuf {
        self.root.join("kubeconfig")
    }

    pub(crate) fn controller_manager_kubeconfig(&self) -> PathBuf {
        self.root.join("kube-controller-manager.kubeconfig")
    }
}
