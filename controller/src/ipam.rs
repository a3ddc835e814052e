//! Bare-metal IP address management: which addresses of which `AddressPool` each LoadBalancer
//! Service gets. Pure code, no API calls (as MetalLB keeps `internal/allocator`), so every
//! decision is unit-tested; the reconcile feeds it objects and writes out what it returns.
//!
//! ```text
//!   AddressPool list ────────────────────────▶ set_pools ──┐
//!   Services with addresses in their status ─▶ restore ────┤     ┌───────────────────────────┐
//!   Service ─▶ ServiceRequest::from_service ─▶ assign ─────┼───▶ │ Allocator                 │
//!   Service deleted ─────────────────────────▶ release ────┘     │  pools: valid, invalid    │
//!                                                                │  ledger: address→holders, │
//!                                                                │   Service→addresses       │
//!                                                                └─────────────┬─────────────┘
//!   Allocation (addresses, pool of each, previous) ──▶ status.loadBalancer.ingress, IPAllocated
//!   IpamError (message, label()) ────────────────────▶ AllocationFailed Event, failure metric
//!   stats(), invalid_pools(), overlapping_pools() ───▶ AddressPool status and conditions
//!   outside_pools() ─────────────────────────────────▶ Warning Events on the Services
//! ```
//!
//! The call order the reconcile follows:
//! 1. [`Allocator::set_pools`] with every `AddressPool` (again on each pool change; holdings survive).
//! 2. [`Allocator::restore`] for every Service that already has addresses in its status, before
//!    any `assign`, so that a restart neither renumbers nor lets a new Service take an address
//!    that an old one has not reclaimed yet.
//! 3. [`Allocator::assign`] per Service, with a [`ServiceRequest`] built by
//!    [`ServiceRequest::from_service`] (which reports malformed annotations and fields). A
//!    Service that was not restored has its status addresses reclaimed here, if still free.
//!    What a Service holds never changes while it fits its request and pools; an address whose
//!    pool shrank or went away is kept and reported by [`Allocation::outside_pools`].
//! 4. [`Allocator::release`] when the Service is deleted or stops being Portico's.
//!
//! Pool choice: the pool named by annotation `portico.dev/address-pool` (also the only way to
//! use an `autoAssign: false` pool without asking for a specific address); else the `autoAssign`
//! pools whose `serviceAllocation` (namespaces, namespace or Service selectors) selects the
//! Service; else the `autoAssign` pools without such restrictions. Within each group pools go
//! by `serviceAllocation.priority` (lower first, none last), then by name.

mod allocator;
mod error;
mod families;
mod ledger;
mod pool;
mod request;
mod selector;
mod sharing;

pub use allocator::{Allocation, Allocator, AssignedAddress, PoolStats};
pub use error::{IpamError, ShareRefusal};
pub use request::{
    IpFamilyPolicy, RequestedBy, ServiceKey, ServicePort, ServiceRequest, TrafficPolicy,
};

#[cfg(test)]
mod tests;
