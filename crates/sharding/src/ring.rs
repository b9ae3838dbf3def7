//! The hash ring of a ControllerRing: its available shards (docs/contract.md#lease-states,
//! docs/contract.md#hash-ring).

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;

use crate::consistent_hash::Ring;
use crate::leases::Shards;

/// The ring of the available shards among `leases` at `now`, and all their shards with their
/// states. The caller passes only the Leases of one ControllerRing (those with its ring label).
#[must_use]
pub fn from_leases<'a>(
    leases: impl IntoIterator<Item = &'a Lease>,
    now: Timestamp,
) -> (Ring, Shards) {
    let shards = Shards::from_leases(leases, now);
    let ring = Ring::with_nodes(shards.available().map(|shard| shard.name.as_str()));
    (ring, shards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leases::ShardState;
    use k8s_openapi::jiff::SignedDuration;

    fn lease(name: &str, holder: &str, renewed: Timestamp) -> Lease {
        crate::testing::lease(name)
            .holder(holder)
            .renewed_at(renewed)
            .build()
    }

    #[test]
    fn only_available_shards_are_in_the_ring() {
        let now: Timestamp = "2025-01-01T12:00:00Z".parse().expect("valid timestamp");
        let leases = [
            lease("shard-ready", "shard-ready", now),
            lease(
                "shard-uncertain",
                "shard-uncertain",
                now - SignedDuration::from_secs(40),
            ),
            lease("shard-dead", "", now),
            lease("shard-orphaned", "", now - SignedDuration::from_mins(5)),
        ];
        let (ring, shards) = from_leases(&leases, now);

        assert_eq!(
            ring.nodes().collect::<Vec<_>>(),
            ["shard-ready", "shard-uncertain"]
        );
        assert_eq!(shards.len(), 4);
        assert_eq!(
            shards.by_name("shard-orphaned").map(|s| s.state),
            Some(ShardState::Orphaned)
        );
        for key in [
            "/ConfigMap/default/a",
            "apps/Deployment/default/b",
            "webhosting.timebertt.dev/Theme//c",
        ] {
            let shard = ring.hash(key).expect("the ring has shards");
            assert!(shards.is_available(shard), "{key} went to {shard}");
        }
        assert_eq!(
            Ring::with_nodes(["shard-ready", "shard-uncertain"]).hash("/ConfigMap/default/a"),
            ring.hash("/ConfigMap/default/a")
        );
    }

    #[test]
    fn no_available_shard_gives_an_empty_ring() {
        let now: Timestamp = "2025-01-01T12:00:00Z".parse().expect("valid timestamp");
        let (ring, shards) = from_leases(&[lease("shard-dead", "", now)], now);
        assert!(ring.is_empty());
        assert_eq!(ring.hash("/ConfigMap/default/a"), None);
        assert_eq!(shards.len(), 1);
    }
}
