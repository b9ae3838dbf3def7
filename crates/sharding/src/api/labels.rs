//! Label keys and object names of the sharding contract (docs/contract.md#names-and-labels).
//! `<ring>` is the ControllerRing's name, used verbatim (the CRD limits it to 63 characters for
//! this reason).

/// Prefix of the per-ring shard and drain labels.
const ALPHA_PREFIX: &str = "alpha.sharding.timebertt.dev";

/// Labels shard Leases and webhook configurations with the ring they belong to.
pub const CONTROLLER_RING: &str = "alpha.sharding.timebertt.dev/controllerring";

/// The shard state the sharder writes on shard Leases (`ready`, `expired`, …).
pub const STATE: &str = "alpha.sharding.timebertt.dev/state";

/// The holder identity the sharder writes when it takes over an `uncertain` shard Lease.
pub const SHARD_LEASE_CONTROLLER: &str = "shardlease-controller";

/// The single webhook in each ring's MutatingWebhookConfiguration.
pub const WEBHOOK_NAME: &str = "sharder.sharding.timebertt.dev";

/// The sharder's namespace.
pub const SHARDER_NAMESPACE: &str = "sharding-system";

/// The sharder's leader-election Lease (in [`SHARDER_NAMESPACE`]).
pub const SHARDER_LEASE: &str = "sharder";

/// `app.kubernetes.io/name` of the sharder's objects.
pub const APP_NAME: &str = "controller-sharding";

/// The label naming the shard an object is assigned to:
/// `shard.alpha.sharding.timebertt.dev/<ring>`.
#[must_use]
pub fn shard(ring: &str) -> String {
    format!("shard.{ALPHA_PREFIX}/{ring}")
}

/// The label asking the current shard to let go of an object:
/// `drain.alpha.sharding.timebertt.dev/<ring>`. Its presence is what counts.
#[must_use]
pub fn drain(ring: &str) -> String {
    format!("drain.{ALPHA_PREFIX}/{ring}")
}

/// The MutatingWebhookConfiguration of a ring: `controllerring-<ring>`.
#[must_use]
pub fn webhook_configuration(ring: &str) -> String {
    format!("controllerring-{ring}")
}

/// The path the sharder serves a ring's webhook on: `/webhooks/sharder/controllerring/<ring>`.
#[must_use]
pub fn webhook_path(ring: &str) -> String {
    format!("/webhooks/sharder/controllerring/{ring}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        assert_eq!(
            shard("webhosting-operator"),
            "shard.alpha.sharding.timebertt.dev/webhosting-operator"
        );
        assert_eq!(
            drain("webhosting-operator"),
            "drain.alpha.sharding.timebertt.dev/webhosting-operator"
        );
        assert_eq!(webhook_configuration("r"), "controllerring-r");
        assert_eq!(webhook_path("r"), "/webhooks/sharder/controllerring/r");
    }
}
