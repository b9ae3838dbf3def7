//! The consistent hash ring that maps hash keys to shards (docs/contract.md#hash-ring, bit-for-bit
//! with the Go original's `pkg/sharding/consistenthash`).
//!
//! Each node gets `tokens_per_node` tokens `hash(node + decimal(i))`, no separator. A key maps
//! to the node owning the first token `>= hash(key)`, wrapping past the last token to the first.

use std::fmt::{self, Write as _};

/// A hash function over bytes. The ring takes it as a parameter so that tests can inject one.
pub type Hash = fn(&[u8]) -> u64;

/// The number of tokens each node gets on the ring (docs/contract.md#hash-ring).
pub const DEFAULT_TOKENS_PER_NODE: usize = 100;

/// xxHash64 with seed 0, the hash of the contract (docs/contract.md#hash-ring).
#[must_use]
pub fn xxhash64(data: &[u8]) -> u64 {
    xxhash_rust::xxh64::xxh64(data, 0)
}

/// A consistent hash ring of nodes (shard names).
///
/// # Guarantees
/// Assigns every key exactly as the Go original does, including on token collisions between
/// nodes: the node added last owns the token.
#[derive(Clone)]
pub struct Ring {
    hash: Hash,
    tokens_per_node: usize,
    /// Node names in insertion order, without duplicates.
    nodes: Vec<String>,
    /// Sorted, distinct tokens; parallel to `owners`. Kept apart from the owners so that the
    /// binary search touches only the tokens.
    tokens: Vec<u64>,
    /// Index into `nodes` of each token's owner.
    owners: Vec<usize>,
}

impl Ring {
    /// An empty ring with the given hash function and number of tokens per node.
    ///
    /// A `tokens_per_node` of 0 means [`DEFAULT_TOKENS_PER_NODE`], as in the Go original.
    #[must_use]
    pub fn new(hash: Hash, tokens_per_node: usize) -> Self {
        let tokens_per_node = if tokens_per_node == 0 {
            DEFAULT_TOKENS_PER_NODE
        } else {
            tokens_per_node
        };
        Self {
            hash,
            tokens_per_node,
            nodes: Vec::new(),
            tokens: Vec::new(),
            owners: Vec::new(),
        }
    }

    /// The ring of the contract (xxHash64, 100 tokens per node) with the given nodes.
    #[must_use]
    pub fn with_nodes<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut ring = Self::default();
        ring.add_nodes(nodes);
        ring
    }

    /// Adds nodes to the ring. Adding a node that is already on the ring adds nothing, except
    /// that it wins its tokens back from nodes added since (as in the Go original).
    pub fn add_nodes<I, S>(&mut self, nodes: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        // Existing entries come first and the sort is stable, so within a run of equal tokens
        // the last entry is the one inserted last: the Go original's tokenToNode map keeps it.
        let mut entries: Vec<(u64, usize)> = self
            .tokens
            .iter()
            .copied()
            .zip(self.owners.iter().copied())
            .collect();
        let mut token_input = String::new();
        for node in nodes {
            let node = node.into();
            let index = if let Some(index) = self.nodes.iter().position(|n| *n == node) {
                index
            } else {
                self.nodes.push(node);
                self.nodes.len() - 1
            };
            for i in 0..self.tokens_per_node {
                token_input.clear();
                token_input.push_str(&self.nodes[index]);
                // Writing to a String cannot fail.
                let _ = write!(token_input, "{i}");
                entries.push(((self.hash)(token_input.as_bytes()), index));
            }
        }
        entries.sort_by_key(|&(token, _)| token);

        self.tokens.clear();
        self.owners.clear();
        for (token, owner) in entries {
            if self.tokens.last() == Some(&token) {
                if let Some(last) = self.owners.last_mut() {
                    *last = owner;
                }
            } else {
                self.tokens.push(token);
                self.owners.push(owner);
            }
        }
    }

    /// The node a key is assigned to, or `None` if the ring is empty.
    #[must_use]
    pub fn hash(&self, key: &str) -> Option<&str> {
        let token = (self.hash)(key.as_bytes());
        let index = self.tokens.partition_point(|&t| t < token);
        // Past the last token the ring wraps around to the first.
        let index = if index == self.tokens.len() { 0 } else { index };
        let owner = *self.owners.get(index)?;
        Some(&self.nodes[owner])
    }

    /// Whether the ring has no nodes (and so assigns nothing).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The number of nodes on the ring.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes on the ring, in the order they were first added.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(String::as_str)
    }
}

impl Default for Ring {
    /// An empty ring of the contract: xxHash64 and [`DEFAULT_TOKENS_PER_NODE`].
    fn default() -> Self {
        Self::new(xxhash64, DEFAULT_TOKENS_PER_NODE)
    }
}

impl fmt::Debug for Ring {
    // The tokens would drown the output: show the nodes and the number of tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("tokens_per_node", &self.tokens_per_node)
            .field("nodes", &self.nodes)
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    fn vectors_path() -> PathBuf {
        std::env::var_os("RING_VECTORS").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/ring-vectors.json"),
            PathBuf::from,
        )
    }

    #[test]
    fn the_ring_reproduces_the_shared_vectors() {
        let path = vectors_path();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
            panic!(
                "cannot read the ring vectors at {} (set RING_VECTORS to override): {err}",
                path.display()
            )
        });
        let vectors: serde_json::Value =
            serde_json::from_str(&text).expect("ring vectors are JSON");

        let checks = vectors["xxh64_checks"]
            .as_object()
            .expect("xxh64_checks is an object");
        assert!(!checks.is_empty(), "no xxh64 checks in {}", path.display());
        for (input, expected) in checks {
            let expected: u64 = expected
                .as_str()
                .expect("xxh64 checks are strings")
                .parse()
                .expect("decimal u64");
            assert_eq!(xxhash64(input.as_bytes()), expected, "xxh64({input:?})");
        }

        let cases = vectors["cases"].as_array().expect("cases is an array");
        assert!(!cases.is_empty(), "no cases in {}", path.display());
        for case in cases {
            let shards: Vec<&str> = case["shards"]
                .as_array()
                .expect("shards")
                .iter()
                .map(|s| s.as_str().expect("shard name"))
                .collect();
            let tokens =
                usize::try_from(case["tokens_per_shard"].as_u64().expect("tokens_per_shard"))
                    .unwrap();
            let mut ring = Ring::new(xxhash64, tokens);
            ring.add_nodes(shards.iter().copied());

            let assignments = case["assignments"].as_object().expect("assignments");
            assert!(!assignments.is_empty());
            let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
            for (key, expected) in assignments {
                let got = ring.hash(key).unwrap_or("");
                assert_eq!(
                    got,
                    expected.as_str().expect("shard"),
                    "key {key:?} on shards {shards:?}"
                );
                if !got.is_empty() {
                    *counts.entry(got).or_default() += 1;
                }
            }
            let expected_counts: BTreeMap<&str, u64> = case["counts"]
                .as_object()
                .expect("counts")
                .iter()
                .map(|(shard, n)| (shard.as_str(), n.as_u64().expect("count")))
                .collect();
            assert_eq!(counts, expected_counts, "counts on shards {shards:?}");
        }
    }

    #[test]
    fn an_empty_ring_assigns_nothing() {
        let ring = Ring::default();
        assert!(ring.is_empty());
        assert_eq!(ring.hash("apps/Deployment/default/nginx"), None);
        assert_eq!(Ring::with_nodes(Vec::<String>::new()).hash(""), None);
    }

    #[test]
    fn a_single_node_gets_every_key() {
        let ring = Ring::with_nodes(["shard-0"]);
        for key in [
            "",
            "a",
            "/Secret/default/foo",
            "apps/Deployment/default/nginx",
        ] {
            assert_eq!(ring.hash(key), Some("shard-0"));
        }
    }

    // A hash under the test's control: the numeric value of the input, or u64::MAX.
    fn numeric(data: &[u8]) -> u64 {
        std::str::from_utf8(data)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX)
    }

    #[test]
    fn a_key_maps_to_the_first_token_at_or_after_its_hash_and_wraps() {
        // Tokens: node "1" -> 10, 11; node "5" -> 50, 51.
        let ring = {
            let mut ring = Ring::new(numeric, 2);
            ring.add_nodes(["1", "5"]);
            ring
        };
        assert_eq!(ring.hash("0"), Some("1"));
        assert_eq!(ring.hash("10"), Some("1"));
        assert_eq!(ring.hash("11"), Some("1"));
        assert_eq!(ring.hash("12"), Some("5"));
        assert_eq!(ring.hash("51"), Some("5"));
        assert_eq!(
            ring.hash("52"),
            Some("1"),
            "past the last token wraps to the first"
        );
    }

    #[test]
    fn on_a_token_collision_the_node_added_last_wins() {
        // "a" + "10" and "a1" + "0" are the same token input, and so on up to "19"/"9".
        let colliding = xxhash64(b"a10");
        let key_hash_hits = |ring: &Ring| {
            let index = ring.tokens.partition_point(|&t| t < colliding);
            assert_eq!(ring.tokens[index], colliding);
            ring.nodes[ring.owners[index]].clone()
        };
        assert_eq!(key_hash_hits(&Ring::with_nodes(["a", "a1"])), "a1");
        assert_eq!(key_hash_hits(&Ring::with_nodes(["a1", "a"])), "a");

        let mut ring = Ring::with_nodes(["a1", "a"]);
        ring.add_nodes(["a1"]);
        assert_eq!(
            key_hash_hits(&ring),
            "a1",
            "re-adding a node wins its tokens back"
        );
        assert_eq!(ring.nodes().collect::<Vec<_>>(), ["a1", "a"]);
        // "a" + "10".."19" equal "a1" + "0".."9": ten tokens collide and are stored once.
        assert_eq!(ring.tokens.len(), 190);
    }

    #[test]
    fn adding_nodes_one_by_one_equals_adding_them_at_once() {
        let names = [
            "webhosting-operator-0",
            "webhosting-operator-1",
            "webhosting-operator-2",
        ];
        let at_once = Ring::with_nodes(names);
        let mut one_by_one = Ring::default();
        for name in names {
            one_by_one.add_nodes([name]);
        }
        assert_eq!(at_once.tokens, one_by_one.tokens);
        assert_eq!(at_once.owners, one_by_one.owners);
        assert_eq!(at_once.len(), 3);
        assert_eq!(at_once.tokens.len(), 300);
    }

    #[test]
    fn zero_tokens_per_node_means_the_default() {
        let mut ring = Ring::new(xxhash64, 0);
        ring.add_nodes(["shard-0"]);
        assert_eq!(ring.tokens.len(), DEFAULT_TOKENS_PER_NODE);
    }

    #[test]
    fn debug_output_omits_the_tokens() {
        let debug = format!("{:?}", Ring::with_nodes(["shard-0"]));
        assert_eq!(
            debug,
            r#"Ring { tokens_per_node: 100, nodes: ["shard-0"], tokens: 100, .. }"#
        );
    }
}
