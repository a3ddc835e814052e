//! The bare-metal provider: addresses from `AddressPool`s, announced by the agents. The pools
//! and the allocator live in [`Ipam`], shared (behind an `Arc`) by this provider, the pool
//! status writer and the pool watch.
//!
//! ```text
//!   AddressPools ─▶ Ipam::refresh_pools ─▶ Allocator ◀─ assign / release ─ BareMetal (the seam)
//!   Service statuses at start ─▶ Ipam::restore ──┘        └─▶ pool status writer (pools_dirty)
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use portico_api::keys::reason;
use portico_api::{AddressPool, AddressPoolSpec};

use crate::ipam::{Allocator, IpamError, ServiceKey, ServiceRequest};
use crate::nodes::LbNode;
use crate::providers::{
    Ensured, LoadBalancerProvider, LoadBalancerStatus, ProviderError, ProviderEvent,
};
use crate::reconcile::{lock, service_key};
use crate::status::{current_ips, desired_ingress};

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

/// The bare-metal implementation of the seam: ensure assigns from the pools, ensure deleted
/// releases. No node set (the agents announce) and no cloud lifecycle Events: its own Events
/// say which address from which pool.
pub struct BareMetal {
    ipam: Arc<Ipam>,
}

impl BareMetal {
    pub fn new(ipam: Arc<Ipam>) -> Self {
        BareMetal { ipam }
    }

    fn assign(&self, service: &Service) -> Result<Ensured, IpamError> {
        let request = self.ipam.request_for(service)?;
        let allocation = lock(&self.ipam.allocator).assign(&request)?;
        self.ipam.hold(request.key.clone());
        let ips = allocation.ips();
        let addresses: Vec<String> = ips.iter().map(ToString::to_string).collect();
        let mut events = Vec::new();
        if allocation.changed() {
            self.ipam.pools_dirty.store(true, Ordering::Relaxed);
            let pools: Vec<String> = allocation
                .addresses
                .iter()
                .filter_map(|a| a.pool.clone())
                .collect();
            events.push(ProviderEvent {
                type_: EventType::Normal,
                reason: reason::IP_ALLOCATED,
                note: format!("Assigned IP {addresses:?} from pool {}", pools.join(", ")),
            });
        }
        for ip in allocation.outside_pools() {
            events.push(ProviderEvent {
                type_: EventType::Warning,
                reason: reason::ADDRESS_OUTSIDE_POOL,
                note: format!(
                    "IP {ip} is no longer in any AddressPool this Service may use; it keeps the \
                     address until the pool is restored or the Service is changed or deleted"
                ),
            });
        }
        Ok(Ensured {
            status: LoadBalancerStatus {
                ingress: desired_ingress(&ips),
            },
            ready_message: Some(format!(
                "address {} assigned; the agents announce it",
                addresses.join(", ")
            )),
            events,
            ..Ensured::default()
        })
    }

    fn release(&self, service: &Service) -> Vec<String> {
        let released = self.ipam.release(&service_key(service));
        released.iter().map(ToString::to_string).collect()
    }
}

impl LoadBalancerProvider for BareMetal {
    fn name(&self) -> &'static str {
        "baremetal"
    }

    fn get<'a>(
        &'a self,
        service: &'a Service,
    ) -> BoxFuture<'a, Result<Option<LoadBalancerStatus>, ProviderError>> {
        let ips = lock(&self.ipam.allocator).addresses_of(&service_key(service));
        let status = (!ips.is_empty()).then(|| LoadBalancerStatus {
            ingress: desired_ingress(&ips),
        });
        Box::pin(async move { Ok(status) })
    }

    fn ensure<'a>(
        &'a self,
        service: &'a Service,
        _nodes: &'a [LbNode],
    ) -> BoxFuture<'a, Result<Ensured, ProviderError>> {
        let ensured = self.assign(service).map_err(ProviderError::Allocation);
        Box::pin(async move { ensured })
    }

    fn update_hosts<'a>(
        &'a self,
        _service: &'a Service,
        _nodes: &'a [LbNode],
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>> {
        Box::pin(async move { Ok(Vec::new()) })
    }

    fn ensure_deleted<'a>(
        &'a self,
        service: &'a Service,
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>> {
        let released = self.release(service);
        Box::pin(async move { Ok(released) })
    }

    /// Services gone behind the controller's back are released by `Ipam::release_missing` on
    /// every resync; nothing outside the controller's memory needs deleting.
    fn delete_orphans<'a>(
        &'a self,
        _live_uids: &'a HashSet<String>,
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>> {
        Box::pin(async move { Ok(Vec::new()) })
    }

    fn uses_nodes(&self) -> bool {
        false
    }

    fn lifecycle_events(&self) -> bool {
        false
    }

    fn restore(&self, service: &Service) -> Result<(), ProviderError> {
        self.ipam
            .restore(service)
            .map_err(ProviderError::Allocation)
    }

    fn forget(&self, service: &Service) {
        self.release(service);
    }

    fn deleted_note(&self, released: &[String], stays: bool) -> Option<String> {
        if stays {
            Some(format!(
                "No longer a Portico load balancer; released IP {released:?}"
            ))
        } else if released.is_empty() {
            None
        } else {
            Some(format!("Released IP {released:?}"))
        }
    }
}

#[cfg(test)]
mod tests;
