//! The wire contract: the ControllerRing resource (docs/contract.md#controllerring) and the names
//! and labels of the contract (docs/contract.md#names-and-labels).

pub mod controller_ring;
pub mod crd;
pub mod labels;

pub use controller_ring::{
    ControllerRing, ControllerRingSpec, ControllerRingStatus, GroupResource, ResourceRole,
    RingResource,
};
