//! Running the stack on a cluster (`deploy/`, `docs/kind.md`).
//!
//! The library writes the sharder's webhook serving certificate for the manifests that do
//! without cert-manager ([`webhook_certs`], run as `webhook-certs`). The integration tests check
//! what cannot run here: every kustomization under `deploy/` against a real API server, every
//! dashboard of `dashboards/` against the series that the sharder and the operator export, and
//! the `Dockerfile` against the workspace.

#![deny(missing_docs)]

pub mod webhook_certs;
