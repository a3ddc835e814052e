//! Bare-metal IP address management: which addresses of which `AddressPool` each LoadBalancer
//! Service gets. Pure code, no API calls (as MetalLB keeps `internal/allocator`), so every
//! decision is unit-tested; the reconcile feeds it objects and writes out what it returns.
//!
//! ```text
//!  AddressPool list ──▶ set_pools ──▶ ┌──────────── Allocator ────────────┐ ──▶ stats() ──▶ AddressPool status, metrics
//!                                     │ pools (valid) + invalid_pools     │ ──▶ invalid_pools() ──▶ Valid=False, Warning
//!  Services with status ─▶ restore ─▶ │ ledger: address → holders,        │ ──▶ outside_pools() ──▶ Warning Events
//!                                     │   Service → addresses, key → IPs  │
//!  each Service ──▶ ServiceRequest ─▶ │ assign ──▶ Allocation             │ ──▶ status.loadBalancer.ingress, IPAllocated
//!  Service deleted ──────▶ release ─▶ └───────────────────────────────────┘ ──▶ or IpamError: AllocationFailed + label()
//! ```
//!
//! The call order the reconcile follows:
//! 1. [`Allocator::set_pools`] with every `AddressPool` (again on each pool change; holdings survive).
//! 2. [`Allocator::restore`] for every Service that already has addresses in its status, before
//!    any `assign`, so that a restart neither renumbers nor lets a new Service take an address
//!    that an old one has not reclaimed yet.
//! 3. [`Allocator::assign`] per Service, with a [`ServiceRequest`] built by
//!    [`ServiceRequest::from_service`] (which reports malformed annotations and fields).
//!    What a Service holds never changes while it fits its request and pools; an address whose
//!    pool shrank or went away is kept and reported by [`Allocation::outside_pools`].
//! 4. [`Allocator::release`] when the Service is deleted or stops being Portico's.
//!
//! Pool choice: the pool named by annotation `portico.dev/address-pool` (also the only way to
//! use an `autoAssign: false` pool automatically); else the `autoAssign` pools whose
//! `serviceAllocation` serves the Service, by priority (lower first, none last), then name.

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
pub use request::{IpFamilyPolicy, ServiceKey, ServicePort, ServiceRequest, TrafficPolicy};

#[cfg(test)]
mod tests;
