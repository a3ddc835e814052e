//! The agent's one set of Service and EndpointSlice stores, shared by its components: the
//! proxier (rules and health check servers) and the L2 announcer read the same trimmed objects,
//! so the cluster's largest kinds are watched once and held once.
//!
//! ```text
//!   watch Services ───────┐ trim ─▶ Store<Service>        ──▶ proxier   (woken by its own Notify)
//!   watch EndpointSlices ─┘ trim ─▶ Store<EndpointSlice>  ──▶ announcer (woken by its own Notify)
//! ```
//!
//! Each consumer passes its own `Notify`, and every change wakes each of them: one `Notify`
//! shared by two waiters would wake only one of them (STYLE.md).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use portico_runtime::WatchHealth;
use portico_runtime::reflect::reflect_reported_trimmed;
use tokio::sync::Notify;

use crate::trim::{trim_endpoint_slice, trim_service};

/// The trimmed Services and EndpointSlices (see `trim` for what is kept).
#[derive(Clone)]
pub struct ServiceStores {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
}

impl ServiceStores {
    /// Starts both watches; every change wakes each of `wake`.
    pub fn spawn(client: &kube::Client, watches: &WatchHealth, wake: &[Arc<Notify>]) -> Self {
        ServiceStores {
            services: reflect_reported_trimmed(
                Api::<Service>::all(client.clone()),
                watcher::Config::default(),
                wake.to_vec(),
                watches,
                trim_service,
            ),
            slices: reflect_reported_trimmed(
                Api::<EndpointSlice>::all(client.clone()),
                watcher::Config::default(),
                wake.to_vec(),
                watches,
                trim_endpoint_slice,
            ),
        }
    }

    /// Resolves once both stores hold their first list.
    pub async fn wait_until_ready(&self) {
        let _ = tokio::join!(
            self.services.wait_until_ready(),
            self.slices.wait_until_ready()
        );
    }
}
