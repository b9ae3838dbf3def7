//! Checks of what runs on a cluster and cannot run here (no container engine, no kind):
//! every kustomization of `deploy/` against a real API server, every dashboard of
//! `dashboards/` against the series that the sharder and the operator really export, the
//! `Dockerfile` and its build context against the workspace, and the Makefile's kind targets.

mod dashboards;
mod dockerfile;
mod makefile;
mod manifests;
mod support;
