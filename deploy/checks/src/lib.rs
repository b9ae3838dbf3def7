//! Running the stack on a cluster (`deploy/`, `docs/kind.md`).
//!
//! The sharder's webhook serving certificate for the manifests that do without cert-manager
//! comes from `sharder webhook-certs` (`make webhook-certs`). The integration tests check what
//! cannot run here: every kustomization under `deploy/` against a real API server, every
//! dashboard of `dashboards/` against the series that the sharder and the operator export, and
//! the `Dockerfile` against the workspace.

#![deny(missing_docs)]
