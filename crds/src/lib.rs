//! Portico's API: the CRD types (`AddressPool`, `L2Announcement`), the annotation, label and
//! finalizer keys Portico reads and writes, and validation of what users write.
//!
//! This crate does no I/O so that every other crate (controller, agent, lab) can depend on it.
//!
//! ```text
//!   user YAML ──▶ CRD schema (patterns, CEL)  ──▶ API server rejects what the schema can express
//!             └─▶ AddressPoolSpec::validate() ──▶ controller Events for what it cannot
//! ```
#![forbid(unsafe_code)]

pub mod address_pool;
pub mod address_range;
pub mod crd_yaml;
pub mod keys;
pub mod l2_announcement;
pub mod selector;
pub mod service_key;
pub mod validation;

pub use address_pool::{AddressPool, AddressPoolSpec, AddressPoolStatus, ServiceAllocation};
pub use address_range::{AddressRange, AddressRangeError, IpFamily};
pub use l2_announcement::{L2Announcement, L2AnnouncementSpec};
pub use service_key::ServiceKey;
pub use validation::{FieldError, ValidationErrors};

/// The API group of every Portico CRD.
pub const GROUP: &str = "portico.dev";
/// The one served version.
pub const VERSION: &str = "v1alpha1";
