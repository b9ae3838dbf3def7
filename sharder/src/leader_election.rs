//! Why the sharder cannot lead, in the terms of its config file: what to run or change when
//! retrying cannot help (docs/sharder.md#running-outside-a-cluster).
//!
//! The sharder never creates the namespace of its leader Lease itself: neither does the Go
//! sharder (controller-runtime's leader election), and creating namespaces needs a cluster-wide
//! permission that the in-cluster sharder's RBAC does not grant.

use kube_sharding::shard::lease;
use operations::leader;

/// `error` with, when acquiring the leader Lease cannot succeed until something outside the
/// process changes, a first line that says what to do (see [`hint`]).
#[must_use]
pub fn explain(error: leader::Error, namespace: &str) -> anyhow::Error {
    match hint(&error, namespace) {
        Some(hint) => anyhow::Error::new(error).context(hint),
        None => error.into(),
    }
}

/// What to run or change when the leader Lease in `namespace`
/// (`leaderElection.resourceNamespace`) cannot be acquired (pure): the namespace is missing
/// (404 on create), the sharder's user may not use Leases there (403), or the API server does
/// not accept its credentials (401). `None` for errors that retrying can resolve.
#[must_use]
pub fn hint(error: &leader::Error, namespace: &str) -> Option<String> {
    let leader::Error::Acquire(lease::Error::Denied { source, .. }) = error else {
        return None;
    };
    let kube::Error::Api(status) = source.as_ref() else {
        return None;
    };
    match status.code {
        404 => Some(format!(
            "the namespace of the sharder's leader Lease, {namespace:?} \
             (leaderElection.resourceNamespace), does not exist: create it with `kubectl create \
             namespace {namespace}`, or set leaderElection.resourceNamespace to an existing \
             namespace"
        )),
        403 => Some(format!(
            "the sharder may not use its leader Lease in namespace {namespace:?} \
             (leaderElection.resourceNamespace): {message}; it needs get, create and update on \
             leases.coordination.k8s.io there, as deploy/sharder/base/rbac.yaml grants: `kubectl \
             -n {namespace} create role sharder-leader-election --verb=get,create,update \
             --resource=leases.coordination.k8s.io` and `kubectl -n {namespace} create \
             rolebinding sharder-leader-election --role=sharder-leader-election --user=<the \
             user above>`",
            message = status.message,
        )),
        401 => Some(
            "the API server does not accept the sharder's credentials: check \
             clientConnection.kubeconfig or $KUBECONFIG"
                .to_owned(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(code: u16, message: &str) -> leader::Error {
        let source = kube::Error::Api(
            kube::core::Status::failure(message, "Reason")
                .with_code(code)
                .boxed(),
        );
        leader::Error::Acquire(lease::Error::Denied {
            lease: "sharding-system/sharder".to_owned(),
            hint: "the library's hint".to_owned(),
            source: Box::new(source),
        })
    }

    #[test]
    fn a_missing_namespace_says_which_command_creates_it() {
        let hint = hint(&denied(404, "namespaces \"local\" not found"), "local").unwrap();
        assert!(hint.contains("`kubectl create namespace local`"), "{hint}");
        assert!(hint.contains("leaderElection.resourceNamespace"), "{hint}");
    }

    #[test]
    fn a_denial_names_the_verb_the_resource_and_the_grant() {
        let message = "leases.coordination.k8s.io \"sharder\" is forbidden: User \"dev\" cannot \
                       create resource \"leases\" in API group \"coordination.k8s.io\" in the \
                       namespace \"sharding-system\"";
        let hint = hint(&denied(403, message), "sharding-system").unwrap();
        assert!(hint.contains("cannot create resource \"leases\""), "{hint}");
        assert!(
            hint.contains(
                "kubectl -n sharding-system create role sharder-leader-election \
                 --verb=get,create,update --resource=leases.coordination.k8s.io"
            ),
            "{hint}"
        );
    }

    #[test]
    fn the_hint_comes_first_and_the_api_error_stays_in_the_chain() {
        let error = explain(
            denied(404, "namespaces \"sharding-system\" not found"),
            "sharding-system",
        );
        let text = format!("{error:#}");
        assert!(
            text.starts_with("the namespace of the sharder's leader Lease"),
            "{text}"
        );
        assert!(
            text.contains("namespaces \"sharding-system\" not found"),
            "{text}"
        );
    }

    #[test]
    fn errors_that_retrying_resolves_get_no_hint() {
        assert_eq!(hint(&denied(500, "etcd"), "sharding-system"), None);
        let unreachable = leader::Error::Acquire(lease::Error::Config("bad".to_owned()));
        assert_eq!(hint(&unreachable, "sharding-system"), None);
    }
}
