//! Checks of what runs on a cluster and cannot run here (no container engine, no kind):
//! every kustomization of `deploy/` against a real API server, every dashboard of
//! `dashboards/` against the series that the sharder and the operator really export, the
//! `Dockerfile` and its build context against the workspace, the Makefile's kind targets, and
//! the workspace's layering (libraries in `crates/` never depend on applications).

mod dashboards;
mod dockerfile;
mod docs;
mod layering;
mod makefile;
mod manifests;
mod support;
