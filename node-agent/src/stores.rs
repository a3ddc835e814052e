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
//! shared by two waiters would wake only one of them (STYLE.md). Readiness (the first list is
//! in) has the same trap: a kube-runtime `Store::wait_until_ready` remembers only the last
//! task that polled it, so with two components waiting on the same store one would never
//! wake. One task here waits on the stores and publishes readiness on a `watch` that any number
//! of components can wait on.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use portico_runtime::WatchHealth;
use portico_runtime::reflect::reflect_reported_trimmed;
use tokio::sync::{Notify, watch};

use crate::trim::{trim_endpoint_slice, trim_service};

/// The trimmed Services and EndpointSlices (see `trim` for what is kept).
#[derive(Clone)]
pub struct ServiceStores {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    /// True once both stores hold their first list.
    ready: watch::Receiver<bool>,
}

impl ServiceStores {
    /// Starts both watches; every change wakes each of `wake`.
    pub fn spawn(client: &kube::Client, watches: &WatchHealth, wake: &[Arc<Notify>]) -> Self {
        Self::over(
            reflect_reported_trimmed(
                Api::<Service>::all(client.clone()),
                watcher::Config::default(),
                wake.to_vec(),
                watches,
                trim_service,
            ),
            reflect_reported_trimmed(
                Api::<EndpointSlice>::all(client.clone()),
                watcher::Config::default(),
                wake.to_vec(),
                watches,
                trim_endpoint_slice,
            ),
        )
    }

    /// Shares two stores; the only task that waits on their own readiness is started here.
    pub fn over(services: Store<Service>, slices: Store<EndpointSlice>) -> Self {
        let (ready_tx, ready) = watch::channel(false);
        let (services_ready, slices_ready) = (services.clone(), slices.clone());
        tokio::spawn(async move {
            let (a, b) = tokio::join!(
                services_ready.wait_until_ready(),
                slices_ready.wait_until_ready()
            );
            // An error means a writer was dropped: the watch is gone and never becomes ready.
            if a.is_ok() && b.is_ok() {
                ready_tx.send_replace(true);
            } else {
                std::future::pending::<()>().await;
            }
        });
        ServiceStores {
            services,
            slices,
            ready,
        }
    }

    /// Resolves once both stores hold their first list; any number of tasks may wait.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.clone();
        // Err only if the task above ended without readiness, which it never does.
        let _ = ready.wait_for(|ready| *ready).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    use super::*;

    /// The proxier and the announcer both wait for the shared stores before their first pass;
    /// each must wake when the lists are in (kube-runtime's own readiness wakes only one).
    #[tokio::test]
    async fn every_component_waiting_on_the_shared_stores_wakes() {
        let (services, mut services_writer) = reflector::store::<Service>();
        let (slices, mut slices_writer) = reflector::store::<EndpointSlice>();
        let shared = ServiceStores::over(services, slices);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let shared = shared.clone();
                tokio::spawn(async move { shared.wait_until_ready().await })
            })
            .collect();
        tokio::task::yield_now().await;
        for event in [Event::Init, Event::InitDone] {
            services_writer.apply_watcher_event(&event);
        }
        for event in [Event::Init, Event::InitDone] {
            slices_writer.apply_watcher_event(&event);
        }
        // A guard against hanging forever, not a measure of speed.
        let all = futures::future::join_all(waiters);
        let woken = tokio::time::timeout(Duration::from_secs(30), all).await;
        assert!(
            woken.is_ok(),
            "a component waiting on the stores never woke"
        );
    }
}
