//! Integration tests of `operations` on a real control plane (etcd and kube-apiserver).

mod secure_metrics;
