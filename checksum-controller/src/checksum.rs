//! The pure half of reconciliation: the ConfigMap a Secret should have
//! (docs/checksum-controller.md#what-it-does).

use std::{collections::BTreeMap, fmt::Write as _};

use k8s_openapi::{
    ByteString,
    api::core::v1::{ConfigMap, Secret},
};
use kube::{Resource as _, api::ObjectMeta};
use sha2::{Digest as _, Sha256};

/// The label that opts a Secret in: only Secrets with `<MANAGED_LABEL>=true` get a ConfigMap.
pub const MANAGED_LABEL: &str = "checksum.sharding.timebertt.dev/managed";

/// The key of the ConfigMap's data that holds the checksum.
pub const CHECKSUM_KEY: &str = "checksum";

/// The name of the ConfigMap that belongs to Secret `secret`.
#[must_use]
pub fn config_map_name(secret: &str) -> String {
    format!("{secret}-checksum")
}

/// Whether `secret` is labelled `<MANAGED_LABEL>=true`.
#[must_use]
pub fn is_managed(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_LABEL))
        .is_some_and(|value| value == "true")
}

/// The SHA-256, in lowercase hex, of `data` as canonical JSON: keys in sorted order (a
/// `BTreeMap`), each value in base64 with padding as the API server serves it, no whitespace,
/// such as `{"a":"Yg=="}` (docs/checksum-controller.md#what-it-does). So a load test reproduces
/// it from the Secret it wrote (`{{ object.data | json | sha256 }}`, docs/workloads.md), and
/// so does `kubectl get secret S -o json | jq -cjS '.data // {}' | sha256sum`.
#[must_use]
pub fn checksum(data: &BTreeMap<String, ByteString>) -> String {
    // A map of strings to base64 strings always serializes; keys need JSON's escapes only.
    let json = serde_json::to_string(data).unwrap_or_default();
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(json.as_bytes()) {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The ConfigMap that `secret` should have: `<secret>-checksum` in its namespace, controlled by
/// the Secret (so the sharder assigns it to the Secret's shard and it is deleted with it), with
/// the checksum of the Secret's data. `None` for a Secret without name, namespace or uid (one
/// not read from the API server).
#[must_use]
pub fn desired_config_map(secret: &Secret) -> Option<ConfigMap> {
    let (name, namespace) = (
        secret.metadata.name.as_ref()?,
        secret.metadata.namespace.as_ref()?,
    );
    let owner = secret.controller_owner_ref(&())?;
    let empty = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name(name)),
            namespace: Some(namespace.clone()),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(CHECKSUM_KEY.to_owned(), checksum(data))])),
        ..ConfigMap::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(data: &[(&str, &[u8])]) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some("db".to_owned()),
                namespace: Some("team-a".to_owned()),
                uid: Some("0b5c-uid".to_owned()),
                labels: Some(BTreeMap::from([(
                    MANAGED_LABEL.to_owned(),
                    "true".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(key, value)| ((*key).to_owned(), ByteString(value.to_vec())))
                    .collect(),
            ),
            ..Secret::default()
        }
    }

    fn checksum_of(config_map: &ConfigMap) -> &str {
        &config_map.data.as_ref().unwrap()[CHECKSUM_KEY]
    }

    #[test]
    fn the_checksum_of_known_data_is_the_sha256_of_its_canonical_json() {
        // printf '{"a":"Yg=="}' | sha256sum
        let desired = desired_config_map(&secret(&[("a", b"b")])).unwrap();
        assert_eq!(
            checksum_of(&desired),
            "3d791b164a808638da9a8df03924be2a41e34cd664e42231c00fe369e3588272"
        );
    }

    #[test]
    fn keys_are_hashed_in_sorted_order_whatever_order_they_were_given_in() {
        // printf '{"a":"Yg==","b":""}' | sha256sum
        let expected = "105d0371db729c08b105af60b2709b4582870cd878e2127bf7767c2c2d66ca5e";
        let forward = desired_config_map(&secret(&[("a", b"b"), ("b", b"")])).unwrap();
        let backward = desired_config_map(&secret(&[("b", b""), ("a", b"b")])).unwrap();
        assert_eq!(checksum_of(&forward), expected);
        assert_eq!(checksum_of(&backward), expected);
    }

    #[test]
    fn moving_bytes_between_key_and_value_changes_the_checksum() {
        let one = desired_config_map(&secret(&[("ab", b"c")])).unwrap();
        let other = desired_config_map(&secret(&[("a", b"bc")])).unwrap();
        assert_ne!(checksum_of(&one), checksum_of(&other));
    }

    #[test]
    fn empty_or_missing_data_hashes_as_an_empty_json_object() {
        // printf '{}' | sha256sum
        let sha256_of_empty_object =
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let mut without_data = secret(&[]);
        assert_eq!(
            checksum_of(&desired_config_map(&without_data).unwrap()),
            sha256_of_empty_object
        );
        without_data.data = None;
        assert_eq!(
            checksum_of(&desired_config_map(&without_data).unwrap()),
            sha256_of_empty_object
        );
    }

    #[test]
    fn the_config_map_is_named_after_the_secret_and_controlled_by_it() {
        let desired = desired_config_map(&secret(&[("a", b"b")])).unwrap();
        assert_eq!(desired.metadata.name.as_deref(), Some("db-checksum"));
        assert_eq!(desired.metadata.namespace.as_deref(), Some("team-a"));
        let owners = desired.metadata.owner_references.unwrap();
        assert_eq!(owners.len(), 1);
        let owner = &owners[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str()
            ),
            ("v1", "Secret", "db", "0b5c-uid")
        );
        assert_eq!(owner.controller, Some(true));
    }

    #[test]
    fn a_secret_never_read_from_the_api_server_has_no_config_map() {
        let mut without_uid = secret(&[]);
        without_uid.metadata.uid = None;
        assert!(desired_config_map(&without_uid).is_none());
    }

    #[test]
    fn only_secrets_labelled_managed_true_are_managed() {
        let mut labelled = secret(&[]);
        assert!(is_managed(&labelled));
        labelled.metadata.labels = Some(BTreeMap::from([(
            MANAGED_LABEL.to_owned(),
            "false".to_owned(),
        )]));
        assert!(!is_managed(&labelled));
        labelled.metadata.labels = None;
        assert!(!is_managed(&labelled));
    }
}
