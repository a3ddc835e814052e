//! The agent's one set of Service and EndpointSlice stores, shared by its components: the
//! proxier (rules and health check servers) and the L2 announcer. The cluster's largest kinds
//! are watched once, and each object is held as the compact view its readers need
//! (`crate::view`), not as the API's object.
//!
//! ```text
//!   watch Services ───────┬─ ServiceView ─────────────▶ Store<ServiceView> ─▶ proxier
//!                         └─ LoadBalancer (trimmed) ──▶ Store<Service>     ─▶ announcer
//!   watch EndpointSlices ─── SliceView ───────────────▶ Store<SliceView>   ─▶ both
//!   every change wakes each consumer's own Notify
//! ```
//!
//! Each consumer passes its own `Notify`, and every change wakes each of them: one `Notify`
//! shared by two waiters would wake only one of them (STYLE.md). Readiness (the first list is
//! in) has the same trap: a kube-runtime `Store::wait_until_ready` remembers only the last
//! task that polled it, so with two components waiting on the same store one would never
//! wake. One task here waits on the stores and publishes readiness on a `watch` that any number
//! of components can wait on.
//!
//! Every event applied to the stores advances their `Generation`, so that one component can
//! tell another which state it has acted on: the proxier publishes the generation its last
//! sync covered, and the announcer takes a VIP over only once that covers what it saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use portico_runtime::WatchHealth;
use portico_runtime::reflect::{reported, watch_name};
use tokio::sync::{Notify, watch};

use crate::announcer::status::L2_ANNOUNCED;
use crate::trim::trim_service;
use crate::view::{Interner, ServiceView, SliceView};

/// The Services and EndpointSlices, as their readers need them.
#[derive(Clone)]
pub struct ServiceStores {
    /// Every Service, for the dataplane and the health servers.
    pub services: Store<ServiceView>,
    /// Every EndpointSlice.
    pub slices: Store<SliceView>,
    /// The announcer's Services (see `announced`), trimmed (see `trim`): a few whole objects,
    /// since it reads their status and writes their conditions.
    pub load_balancers: Store<Service>,
    /// Counts the events applied to these stores.
    pub generation: Generation,
    /// True once every store holds its first list.
    ready: watch::Receiver<bool>,
}

/// How many events have been applied to the shared stores, counted on both sides of each
/// apply (the two watches apply theirs concurrently), so that a reader can bound the state it
/// reads from either side:
///
/// ```text
///   covered() ─▶ read the stores     that state holds at least the first `covered` events
///   read the stores ─▶ seen()        that state holds no event past the first `seen`
/// ```
///
/// So when `covered()` read before one read of the stores is at least `seen()` read after
/// another, the first read holds every event the second held, whichever came first in time:
/// `done` never passes `begun`, so `covered >= seen` leaves no event begun but not done at the
/// first read that the second could have seen.
#[derive(Clone, Debug, Default)]
pub struct Generation {
    begun: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
}

impl Generation {
    /// Applies one event to the stores inside the count.
    pub fn apply<R>(&self, apply: impl FnOnce() -> R) -> R {
        self.begun.fetch_add(1, Ordering::SeqCst);
        let applied = apply();
        self.done.fetch_add(1, Ordering::SeqCst);
        applied
    }

    /// Read before reading the stores: the state read then includes this many events at least.
    pub fn covered(&self) -> u64 {
        self.done.load(Ordering::SeqCst)
    }

    /// Read after reading the stores: the state read before includes no event past this.
    pub fn seen(&self) -> u64 {
        self.begun.load(Ordering::SeqCst)
    }
}

impl ServiceStores {
    /// Starts both watches; every change wakes each of `wake`.
    pub fn spawn(client: &kube::Client, watches: &WatchHealth, wake: &[Arc<Notify>]) -> Self {
        let (services, mut services_writer) = reflector::store::<ServiceView>();
        let (load_balancers, mut load_balancers_writer) = reflector::store::<Service>();
        let mut strings = Interner::default();
        let generation = Generation::default();
        let counted = generation.clone();
        watch_into(
            Api::<Service>::all(client.clone()),
            watches,
            wake,
            move |event: Event<Service>| {
                let view = map_event(&event, |s| ServiceView::project(s, &mut strings));
                counted.apply(|| {
                    services_writer.apply_watcher_event(&view);
                    if let Some(event) = announcer_event(event) {
                        load_balancers_writer.apply_watcher_event(&event);
                    }
                });
            },
        );
        let (slices, mut slices_writer) = reflector::store::<SliceView>();
        let mut strings = Interner::default();
        let counted = generation.clone();
        watch_into(
            Api::<EndpointSlice>::all(client.clone()),
            watches,
            wake,
            move |event: Event<EndpointSlice>| {
                let view = map_event(&event, |s| SliceView::project(s, &mut strings));
                counted.apply(|| slices_writer.apply_watcher_event(&view));
            },
        );
        let mut stores = Self::over(services, slices, load_balancers);
        stores.generation = generation;
        stores
    }

    /// Shares the stores; the only task that waits on their own readiness is started here.
    pub fn over(
        services: Store<ServiceView>,
        slices: Store<SliceView>,
        load_balancers: Store<Service>,
    ) -> Self {
        let (ready_tx, ready) = watch::channel(false);
        let stores = (services.clone(), slices.clone(), load_balancers.clone());
        tokio::spawn(async move {
            let (a, b, c) = tokio::join!(
                stores.0.wait_until_ready(),
                stores.1.wait_until_ready(),
                stores.2.wait_until_ready()
            );
            // An error means a writer was dropped: the watch is gone and never becomes ready.
            if a.is_ok() && b.is_ok() && c.is_ok() {
                ready_tx.send_replace(true);
            } else {
                std::future::pending::<()>().await;
            }
        });
        ServiceStores {
            services,
            slices,
            load_balancers,
            generation: Generation::default(),
            ready,
        }
    }

    /// Resolves once every store holds its first list; any number of tasks may wait.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.clone();
        // Err only if the task above ended without readiness, which it never does.
        let _ = ready.wait_for(|ready| *ready).await;
    }
}

/// Runs a watch of every `K` in the background, handing each event to `apply` (which feeds the
/// stores) and then waking each of `wake`. Errors are retried with backoff and reported to
/// `watches`, as `portico_runtime::reflect` does for whole objects.
fn watch_into<K>(
    api: Api<K>,
    watches: &WatchHealth,
    wake: &[Arc<Notify>],
    mut apply: impl FnMut(Event<K>) + Send + 'static,
) where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let config = watcher::Config::default();
    let reporter = watches.reporter(watch_name::<K>(&config));
    let stream = watcher::watcher(api.clone(), config).default_backoff();
    let stream = reported(stream, api, reporter);
    let wake = wake.to_vec();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(item) = stream.next().await {
            if let Ok(event) = item {
                apply(event);
                for consumer in &wake {
                    consumer.notify_one();
                }
            }
        }
    });
}

/// The same event about the projection of its object.
fn map_event<K, P>(event: &Event<K>, mut project: impl FnMut(&K) -> P) -> Event<P> {
    match event {
        Event::Apply(object) => Event::Apply(project(object)),
        Event::Delete(object) => Event::Delete(project(object)),
        Event::Init => Event::Init,
        Event::InitApply(object) => Event::InitApply(project(object)),
        Event::InitDone => Event::InitDone,
    }
}

/// The Services the announcer reads: LoadBalancers (their VIPs), and any still carrying its
/// condition (it removes the condition once the Service has no VIP).
fn announced(service: &Service) -> bool {
    let load_balancer = (service.spec.as_ref())
        .and_then(|spec| spec.type_.as_deref())
        .is_some_and(|type_| type_ == "LoadBalancer");
    let condition = (service.status.as_ref())
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == L2_ANNOUNCED));
    load_balancer || condition
}

/// The event for the announcer's store: a Service that is no longer announced leaves it.
fn announcer_event(event: Event<Service>) -> Option<Event<Service>> {
    Some(match event {
        Event::Apply(mut service) if announced(&service) => {
            trim_service(&mut service);
            Event::Apply(service)
        }
        Event::Apply(service) => Event::Delete(service),
        Event::InitApply(mut service) if announced(&service) => {
            trim_service(&mut service);
            Event::InitApply(service)
        }
        Event::InitApply(_) => return None,
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The proxier and the announcer both wait for the shared stores before their first pass;
    /// each must wake when the lists are in (kube-runtime's own readiness wakes only one).
    #[tokio::test]
    async fn every_component_waiting_on_the_shared_stores_wakes() {
        let (services, mut services_writer) = reflector::store::<ServiceView>();
        let (slices, mut slices_writer) = reflector::store::<SliceView>();
        let (load_balancers, mut load_balancers_writer) = reflector::store::<Service>();
        let shared = ServiceStores::over(services, slices, load_balancers);
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
        for event in [Event::Init, Event::InitDone] {
            load_balancers_writer.apply_watcher_event(&event);
        }
        // A guard against hanging forever, not a measure of speed.
        let all = futures::future::join_all(waiters);
        let woken = tokio::time::timeout(Duration::from_secs(30), all).await;
        assert!(
            woken.is_ok(),
            "a component waiting on the stores never woke"
        );
    }

    fn service(type_: &str) -> Service {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop",
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
            "spec": {"type": type_, "clusterIP": "10.96.0.10", "ports": [{"port": 80}]},
        }))
        .unwrap()
    }

    /// The announcer's store holds LoadBalancer Services, trimmed, and loses one that stops
    /// being a LoadBalancer (else it would go on announcing its VIP).
    #[test]
    fn the_announcers_store_follows_the_services_type() {
        let (store, mut writer) = reflector::store::<Service>();
        let mut apply = |event| {
            if let Some(event) = announcer_event(event) {
                writer.apply_watcher_event(&event);
            }
        };
        apply(Event::Init);
        apply(Event::InitApply(service("ClusterIP")));
        apply(Event::InitApply(service("LoadBalancer")));
        apply(Event::InitDone);
        let held = store.state();
        assert_eq!(held.len(), 1);
        assert!(held[0].metadata.managed_fields.is_none(), "trimmed");
        apply(Event::Apply(service("ClusterIP")));
        assert!(store.state().is_empty());
    }
}
