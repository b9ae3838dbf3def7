//! Checks of what runs on a cluster and cannot run here (no container engine, no kind):
//! every kustomization of `deploy/` against a real API server, every dashboard of
//! `dashboards/` against the series that the sharder and the operator really export, and the
//! `Dockerfile` against the workspace.

mod dashboards;
mod dockerfile;
mod manifests;
mod support;
