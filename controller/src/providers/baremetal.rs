//! The bare-metal provider: addresses from `AddressPool`s, announced by the agents. The pools
//! and the allocator live in [`Ipam`], shared (behind an `Arc`) by this provider, the pool
//! status writer and the pool watch.
//!
//! ```text
//!   AddressPools ─▶ Ipam::refresh_pools ─▶ Allocator ◀─ assign / release ─ BareMetal (the seam)
//!   Service statuses at start ─▶ Ipam::restore ──┘        └─▶ pool status writer (pools_dirty)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use portico_api::{AddressPool, AddressPoolSpec};

use crate::ipam::{Allocator, IpamError, ServiceKey, ServiceRequest};
use crate::reconcile::{lock, service_key};
use crate::status::current_ips;

/// The pools, the allocator and who holds what.
pub struct Ipam {
    pub allocator: Mutex<Allocator>,
    /// Pools as read; one that cannot be read is kept as the error (reported, never allocated from).
    pub pools: Store<DeserializeGuard<AddressPool>>,
    pub namespaces: Store<Namespace>,
    /// The specs of the pools last given to the allocator, by name (status writes change no spec).
    pools_seen: Mutex<BTreeMap<String, AddressPoolSpec>>,
    /// Services this controller holds addresses for (to release those deleted behind its back).
    holders: Mutex<HashSet<ServiceKey>>,
    /// Set when allocations changed, so the pool status writer runs.
    pub pools_dirty: AtomicBool,
    /// Pools that cannot be read, by name, with the resourceVersion already reported.
    pub unreadable_pools: Mutex<HashMap<String, String>>,
}

impl Ipam {
    pub fn new(pools: Store<DeserializeGuard<AddressPool>>, namespaces: Store<Namespace>) -> Self {
        Ipam {
            allocator: Mutex::new(Allocator::new()),
            pools,
            namespaces,
            pools_seen: Mutex::default(),
            holders: Mutex::default(),
            pools_dirty: AtomicBool::new(true),
            unreadable_pools: Mutex::default(),
        }
    }

    /// Hands the allocator the current pools when a pool's spec changed since the last call, and
    /// returns the Services holding an address in a changed pool (before or after the change).
    /// `None` when no spec changed: a status write, Portico's own or anyone's, affects no Service.
    pub fn refresh_pools(&self) -> Option<BTreeSet<ServiceKey>> {
        let readable: Vec<AddressPool> = self
            .pools
            .state()
            .iter()
            .filter_map(|p| p.0.as_ref().ok().cloned())
            .collect();
        let seen: BTreeMap<String, AddressPoolSpec> = readable
            .iter()
            .map(|p| (p.name_any(), p.spec.clone()))
            .collect();
        let mut last = lock(&self.pools_seen);
        if *last == seen {
            return None;
        }
        let changed: BTreeSet<String> = last
            .keys()
            .chain(seen.keys())
            .filter(|name| last.get(*name) != seen.get(*name))
            .cloned()
            .collect();
        let mut allocator = lock(&self.allocator);
        let mut holders = allocator.holders_in(&changed);
        allocator.set_pools(&readable);
        holders.extend(allocator.holders_in(&changed));
        *last = seen;
        self.pools_dirty.store(true, Ordering::Relaxed);
        Some(holders)
    }

    pub fn holds_addresses(&self, key: &ServiceKey) -> bool {
        !lock(&self.allocator).addresses_of(key).is_empty()
    }

    pub fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(&ObjectRef::new(namespace))
            .map(|ns| ns.labels().clone())
            .unwrap_or_default()
    }

    /// Rebuilds one Service's allocation from its status, before anything new is assigned.
    pub fn restore(&self, service: &Service) -> Result<(), IpamError> {
        let key = service_key(service);
        let request = self.request_for(service).unwrap_or_else(|_| {
            // A malformed annotation must not cost the Service the address it already has.
            let mut request = ServiceRequest::new(key.clone());
            request.current_ips = current_ips(service);
            request
        });
        lock(&self.allocator).restore(&request)?;
        lock(&self.holders).insert(key);
        Ok(())
    }

    pub(crate) fn request_for(&self, service: &Service) -> Result<ServiceRequest, IpamError> {
        let namespace = service.namespace().unwrap_or_default();
        ServiceRequest::from_service(service, &self.namespace_labels(&namespace))
    }

    pub(crate) fn release(&self, key: &ServiceKey) -> Vec<std::net::IpAddr> {
        lock(&self.holders).remove(key);
        let released = lock(&self.allocator).release(key);
        if !released.is_empty() {
            self.pools_dirty.store(true, Ordering::Relaxed);
        }
        released
    }

    /// Releases the addresses of Services that no longer exist (deleted while the controller
    /// was not looking, or without the finalizer).
    pub fn release_missing(&self, existing: &HashSet<ServiceKey>) {
        let gone: Vec<ServiceKey> = lock(&self.holders)
            .iter()
            .filter(|key| !existing.contains(key))
            .cloned()
            .collect();
        for key in gone {
            let released = self.release(&key);
            tracing::info!(namespace = %key.namespace, name = %key.name, ?released, "released the addresses of a Service that is gone");
        }
    }

    /// Records that the Service holds what it was just assigned.
    pub(crate) fn hold(&self, key: ServiceKey) {
        lock(&self.holders).insert(key);
    }
}
