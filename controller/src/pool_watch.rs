//! Pool changes reach only the Services they can affect:
//!
//! ```text
//!   AddressPool event ─▶ pools_dirty (the status writer compares and writes on a difference)
//!                     └▶ refresh_pools: did any spec change? ──no──▶ nothing (a status write,
//!                                          │                         Portico's own or anyone's)
//!                                          yes
//!                                          ▼
//!        Services holding an address in a changed pool (before or after the change)
//!      + Services still waiting for an address (none held, or the last reconcile failed)
//!                                          ▼
//!                               requeue ─▶ Controller::reconcile_on
//! ```
//! Requeuing every Service on every pool event made each status write of the pool (up to once a
//! second while a burst is being assigned) reconcile every Service again: about 20 reconciles
//! per Service in a burst of 10,000.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use k8s_openapi::api::core::v1::Service;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::{Notify, mpsc};

use crate::ipam::ServiceKey;
use crate::reconcile::{Context, service_key};
use crate::service_filter::is_portico_service;

/// Follows pool changes until the receiver of `requeue` is gone.
pub async fn run(
    ctx: Arc<Context>,
    pools_changed: Arc<Notify>,
    services: Store<Service>,
    requeue: mpsc::UnboundedSender<ObjectRef<Service>>,
) {
    loop {
        pools_changed.notified().await;
        ctx.ipam.pools_dirty.store(true, Ordering::Relaxed);
        let Some(holders) = ctx.ipam.refresh_pools() else {
            continue;
        };
        let affected = affected_services(&ctx, &services, holders);
        tracing::debug!(
            services = affected.len(),
            "AddressPools changed; reconciling the Services they can affect"
        );
        for key in affected {
            let reference = ObjectRef::new(&key.name).within(&key.namespace);
            if requeue.send(reference).is_err() {
                return;
            }
        }
    }
}

/// The holders of addresses in changed pools, and every Portico Service still waiting for an
/// address (a new or grown pool may serve it now).
fn affected_services(
    ctx: &Context,
    services: &Store<Service>,
    holders: BTreeSet<ServiceKey>,
) -> BTreeSet<ServiceKey> {
    let mut affected = holders;
    let failing = ctx.failing_services();
    for service in services.state() {
        if !is_portico_service(&service, ctx.default_class)
            || service.meta().deletion_timestamp.is_some()
        {
            continue;
        }
        let key = service_key(&service);
        if failing.contains(&key) || !ctx.ipam.holds_addresses(&key) {
            affected.insert(key);
        }
    }
    affected
}
