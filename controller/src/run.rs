//! Wiring of the controller, once this replica leads:
//!
//! ```text
//!   AddressPools ─reflector─┐                       ┌─▶ reconcile (per Service, one path: cloud.rs)
//!   Namespaces ──reflector──┼─▶ Ipam ─▶ Context ────┤
//!   Nodes (if the provider uses them)   │           └─▶ pool status writer
//!   Services (paged list) ─▶ provider.restore, before the first reconcile
//!   Services ─watch─▶ Controller ◀── pool spec changes: the Services they affect (pool_watch),
//!                          │          or node set changes (cloud::follow_nodes)
//!                          └─▶ every Service of the initial list reconciled ─▶ ready (catch_up)
//! Each reconcile requeues itself for the periodic resync.
//! ```
//! Without a cloud provider the provider is `BareMetal` over the `Ipam`. Every Service that
//! already has an address is restored into the allocator before the first reconcile, so a
//! restart neither renumbers nor lets a new Service take an address an old one holds (MetalLB's
//! lesson).

use std::collections::HashSet;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use kube::api::{Api, ListParams};
use kube::core::DeserializeGuard;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{Controller, WatchStreamExt, controller, watcher};
use portico_api::AddressPool;
use portico_runtime::Readiness;
use portico_runtime::reflect::{reflect_reported, reported};
use tokio::sync::{Notify, mpsc, watch};
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::catch_up;
use crate::cloud::Cloud;
use crate::metrics::ControllerMetrics;
use crate::providers::LoadBalancerProvider;
use crate::providers::baremetal::{BareMetal, Ipam};
use crate::reconcile::{self, Context, RESYNC_PERIOD};
use crate::service_filter::is_portico_service;
use crate::status::current_ips;

/// Reconciles in flight at once (each is a few API round trips).
const RECONCILE_CONCURRENCY: u16 = 16;
/// Services per page of the restore's list (the watcher's page size too).
const RESTORE_PAGE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot list Services to restore their addresses: {0}")]
    ListServices(#[source] kube::Error),
}

/// Runs the controller until the future is dropped (shutdown or lost leadership).
pub async fn run(
    client: kube::Client,
    default_class: bool,
    metrics: ControllerMetrics,
    identity: String,
    readiness: Readiness,
    provider: Option<Arc<dyn crate::providers::LoadBalancerProvider>>,
) -> Result<(), RunError> {
    let watches = readiness.watches().clone();
    let watches = &watches;
    let pools_changed = Arc::new(Notify::new());
    // Guarded, so one pool the type cannot read is reported (by the pool status writer) instead
    // of failing the whole list and stalling the controller before its first reconcile.
    let pools = reflect_reported(
        Api::<DeserializeGuard<AddressPool>>::all(client.clone()),
        watcher::Config::default(),
        Some(pools_changed.clone()),
        watches,
    );
    let namespaces = reflect_reported(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
        None,
        watches,
    );
    let ipam = Arc::new(Ipam::new(pools, namespaces));
    let provider: Arc<dyn LoadBalancerProvider> =
        provider.unwrap_or_else(|| Arc::new(BareMetal::new(ipam.clone())));
    // Only a provider that sends traffic to the nodes needs the Nodes (the node set).
    let nodes_changed = Arc::new(Notify::new());
    let nodes = provider.uses_nodes().then(|| {
        reflect_reported(
            Api::<Node>::all(client.clone()),
            watcher::Config::default(),
            Some(nodes_changed.clone()),
            watches,
        )
    });
    let (_, _) = tokio::join!(
        ipam.pools.wait_until_ready(),
        ipam.namespaces.wait_until_ready()
    );
    if let Some(nodes) = &nodes {
        let _ = nodes.wait_until_ready().await;
    }
    let cloud = Cloud::new(provider, nodes);

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "portico-controller".into(),
            instance: Some(identity),
        },
    );
    let ctx = Arc::new(Context::new(
        client.clone(),
        default_class,
        ipam,
        recorder,
        metrics,
        cloud,
    ));
    ctx.ipam.refresh_pools();
    restore_all(&client, &ctx).await?;
    tokio::spawn(crate::pool_status::run_writer(ctx.clone()));

    let (store, writer) = reflector::store();
    let (listed, listed_rx) = watch::channel(false);
    let services_api = Api::<Service>::all(client);
    let services = watcher(services_api.clone(), watcher::Config::default())
        .default_backoff()
        .modify(trim_for_cache)
        .reflect(writer)
        .inspect_ok(move |event| {
            if matches!(event, watcher::Event::InitDone) {
                listed.send_replace(true);
            }
        })
        .touched_objects();
    let services = reported(services, services_api, watches.reporter("Service"))
        // The store has every version; only versions someone else wrote start a reconcile.
        .try_filter({
            let ctx = ctx.clone();
            move |service| futures::future::ready(!ctx.own_writes.is_own(service))
        });
    // Pool changes requeue only the Services they can affect (see pool_watch).
    let (requeue, requeued) = mpsc::unbounded_channel();
    let controller = Controller::for_stream(services, store)
        // Bounded, so a burst of thousands of Services does not open thousands of connections.
        .with_config(controller::Config::default().concurrency(RECONCILE_CONCURRENCY))
        .reconcile_on(UnboundedReceiverStream::new(requeued));
    let store = controller.store();
    if ctx.cloud.provider.uses_nodes() {
        tokio::spawn(crate::cloud::follow_nodes(
            ctx.clone(),
            nodes_changed,
            store.clone(),
            requeue,
        ));
    } else {
        tokio::spawn(crate::pool_watch::run(
            ctx.clone(),
            pools_changed,
            store.clone(),
            requeue,
        ));
    }
    tokio::spawn(release_deleted(store.clone(), ctx.clone()));
    tokio::spawn(crate::cloud::delete_orphans_once_listed(
        ctx.clone(),
        store.clone(),
        listed_rx.clone(),
    ));
    let waiter = ctx.clone();
    tokio::spawn(
        async move { catch_up::wait(&waiter.catch_up, store, listed_rx, readiness).await },
    );
    controller
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
    Ok(())
}

/// kubectl's copy of the last applied object, dropped from the cache.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops what the controller never reads and what costs the most memory per cached Service:
/// managedFields and kubectl's copy of the last applied object.
fn trim_for_cache(service: &mut Service) {
    service.metadata.managed_fields = None;
    if let Some(annotations) = service.metadata.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// Restores every Portico Service's addresses, before any reconcile. Listed a page at a time,
/// and only the request is kept of each Service: the full objects of 10,000 Services (managed
/// fields and all) would stay in the heap long after the restore.
async fn restore_all(client: &kube::Client, ctx: &Context) -> Result<(), RunError> {
    let api = Api::<Service>::all(client.clone());
    let mut params = ListParams::default().limit(RESTORE_PAGE);
    let mut restored = 0;
    loop {
        let page = api.list(&params).await.map_err(RunError::ListServices)?;
        for service in page
            .items
            .iter()
            .filter(|s| is_portico_service(s, ctx.default_class) && !current_ips(s).is_empty())
        {
            match ctx.cloud.provider.restore(service) {
                Ok(()) => restored += 1,
                // The reconcile reports it on the Service with an Event.
                Err(e) => {
                    tracing::warn!(service = %reconcile::service_key(service), error = %e, "could not restore an address")
                }
            }
        }
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    tracing::info!(restored, "restored the addresses Services already had");
    Ok(())
}

/// Releases the addresses of Services deleted without the finalizer running (for example when
/// it was removed by hand), checked on every resync.
async fn release_deleted(store: Store<Service>, ctx: Arc<Context>) {
    let mut ticker = tokio::time::interval(RESYNC_PERIOD);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        let existing: HashSet<_> = store
            .state()
            .iter()
            .map(|s| reconcile::service_key(s))
            .collect();
        ctx.ipam.release_missing(&existing);
    }
}
