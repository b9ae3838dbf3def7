//! The wire contract: the ControllerRing resource and the names and labels of SPEC A.1–A.2.

pub mod controller_ring;
pub mod crd;
pub mod labels;

pub use controller_ring::{
    ControllerRing, ControllerRingSpec, ControllerRingStatus, GroupResource, ResourceRole,
    RingResource,
};
