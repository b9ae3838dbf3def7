//! The sharder's mutating webhook (docs/contract.md#webhook): assigns new and moved objects of a
//! ControllerRing to one of its available shards by adding the shard label.
//!
//! - [`assign`]: the pure decision for one admission request;
//! - [`review`]: reading a review's request with its objects' type and metadata only;
//! - [`handler`]: decoding a review, looking up the ring, answering, and counting;
//! - [`limits`]: the bounds on requests in flight, body size, body bytes held and body time;
//! - [`server`]: the HTTPS server that reloads its certificate when the files change;
//! - [`certs`]: a CA and a serving certificate for the server (`sharder webhook-certs`);
//! - [`configuration`]: the ring's MutatingWebhookConfiguration;
//! - [`metrics`]: `controller_sharding_assignments_total`, the request duration and the
//!   rejections.

pub mod assign;
pub mod certs;
pub mod configuration;
pub mod handler;
pub mod limits;
pub mod metrics;
pub mod review;
pub mod server;
