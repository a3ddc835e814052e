//! The reconcile of a Service through the provider seam (every provider, bare metal included),
//! and the Node watch that requeues Services when the load balancers' node set changes.
//!
//! ```text
//!   Service ──not Portico's──▶ ensure_deleted, clear status, drop finalizer (if it was ours;
//!                              else provider.forget, which makes no API call)
//!           ──being deleted─▶ DeletingLoadBalancer ─▶ ensure_deleted ─▶ DeletedLoadBalancer ─▶ finalizer off
//!           ──Portico's─────▶ finalizer ─▶ node set ─▶ only the node set changed? provider.update_hosts
//!                                                     else provider.ensure
//!                                         ─▶ status + LoadBalancerReady condition (on a difference)
//!                                                                     └▶ Events: EnsuredLoadBalancer
//!                                                                        (when something changed),
//!                                                                        SyncLoadBalancerFailed,
//!                                                                        the provider's own
//! The lifecycle Events (Ensuring/Ensured/Updated/Deleting) and the node set only for providers
//! that ask for them (`lifecycle_events`, `uses_nodes`): bare metal keeps its own Events.
//!   Nodes ─watch─▶ node set changed? ─yes─▶ requeue every Portico Service
//! ```
//! A failed ensure leaves whatever already works in place: the plan only creates, modifies and
//! deletes what differs, and an error stops it before anything else is touched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use portico_api::keys::reason;
use tokio::sync::{Notify, mpsc};

use crate::conditions::{self, Readiness};
use crate::ipam::ServiceKey;
use crate::nodes::{LbNode, load_balancer_nodes};
use crate::providers::{Ensured, LoadBalancerProvider, LoadBalancerStatus, ProviderError};
use crate::reconcile::{
    Context, RESYNC_PERIOD, ReconcileError, ensure_finalizer, has_finalizer, lock,
    remove_finalizer, report_failure, service_key, sync_status, write_status,
};
use crate::service_filter::is_portico_service;
use crate::status::current_ingress;

/// The provider and the nodes it sends traffic to (None when it uses no nodes).
pub struct Cloud {
    pub provider: Arc<dyn LoadBalancerProvider>,
    pub nodes: Option<Store<Node>>,
    /// What each Service's last successful ensure was given: a fingerprint of the Service and the
    /// node set. A later reconcile with the same Service and another node set is an update of
    /// the hosts only.
    ensured: Mutex<HashMap<ServiceKey, (u64, Vec<LbNode>)>>,
}

impl Cloud {
    pub fn new(provider: Arc<dyn LoadBalancerProvider>, nodes: Option<Store<Node>>) -> Self {
        Cloud {
            provider,
            nodes,
            ensured: Mutex::default(),
        }
    }

    pub fn node_set(&self) -> Vec<LbNode> {
        let Some(nodes) = &self.nodes else {
            return Vec::new();
        };
        let nodes = nodes.state();
        load_balancer_nodes(nodes.iter().map(|n| n.as_ref()))
    }
}

/// What of a Service a provider reads (its identity, annotations and spec), hashed.
fn fingerprint(service: &Service) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut annotations = service.annotations().clone();
    annotations.remove(crate::run::LAST_APPLIED);
    let state = serde_json::json!([service.uid(), annotations, service.spec]);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    state.to_string().hash(&mut hasher);
    hasher.finish()
}

/// What a cloud reconcile decided: the Service's status, and what changed for the Event.
enum Outcome {
    Ensured(Ensured),
    HostsUpdated(Vec<String>),
}

async fn ensure_or_update_hosts(
    service: &Service,
    cloud: &Cloud,
    nodes: &[LbNode],
) -> Result<Outcome, ProviderError> {
    if !cloud.provider.uses_nodes() {
        // No node set to follow, so nothing to remember between reconciles.
        return cloud
            .provider
            .ensure(service, nodes)
            .await
            .map(Outcome::Ensured);
    }
    let key = service_key(service);
    let print = fingerprint(service);
    let last = lock(&cloud.ensured).get(&key).cloned();
    let outcome = match last {
        Some((last_print, last_nodes)) if last_print == print && last_nodes != nodes => cloud
            .provider
            .update_hosts(service, nodes)
            .await
            .map(Outcome::HostsUpdated),
        _ => cloud
            .provider
            .ensure(service, nodes)
            .await
            .map(Outcome::Ensured),
    };
    match &outcome {
        Ok(_) => lock(&cloud.ensured).insert(key, (print, nodes.to_vec())),
        Err(_) => lock(&cloud.ensured).remove(&key),
    };
    outcome
}

/// A Portico Service: make its load balancer match, write its status and condition.
pub async fn apply(
    api: &Api<Service>,
    service: &Service,
    ctx: &Context,
    cloud: &Cloud,
) -> Result<Action, ReconcileError> {
    let service = ensure_finalizer(api, service, ctx).await?;
    let nodes = cloud.node_set();
    let lifecycle = cloud.provider.lifecycle_events();
    let first = current_ingress(&service).is_empty();
    if lifecycle && first {
        ctx.publish(
            &service,
            EventType::Normal,
            reason::ENSURING_LOAD_BALANCER,
            "Ensuring load balancer".into(),
        )
        .await;
    }
    let outcome = match ensure_or_update_hosts(&service, cloud, &nodes).await {
        Ok(outcome) => outcome,
        Err(e) => {
            report_failure(api, &service, ctx, &Readiness::from_provider_error(&e)).await;
            let (reason, note) = e.failure_event();
            ctx.publish(&service, EventType::Warning, reason, note)
                .await;
            return Err(ReconcileError::Provider(e));
        }
    };
    let ensured = match outcome {
        Outcome::Ensured(ensured) => ensured,
        Outcome::HostsUpdated(changes) => Ensured {
            status: LoadBalancerStatus {
                ingress: current_ingress(&service),
            },
            changes,
            ..Ensured::default()
        },
    };
    let Ensured {
        status: LoadBalancerStatus { ingress },
        changes,
        warnings,
        events,
        ready_message,
    } = ensured;
    for warning in &warnings {
        ctx.publish(
            &service,
            EventType::Warning,
            reason::UPDATE_LOAD_BALANCER_FAILED,
            warning.clone(),
        )
        .await;
    }
    let readiness = if cloud.provider.uses_nodes() && nodes.is_empty() {
        // Once per episode, not on every resync.
        if conditions::current(&service).is_none_or(|c| c.reason != conditions::NO_ELIGIBLE_NODES) {
            ctx.publish(
                &service,
                EventType::Warning,
                reason::UNAVAILABLE_LOAD_BALANCER,
                "There are no available nodes for LoadBalancer (every node is excluded, being deleted or tainted ToBeDeletedByClusterAutoscaler)".into(),
            )
            .await;
        }
        Readiness::no_eligible_nodes()
    } else if let Some(message) = ready_message {
        Readiness::ready(message)
    } else {
        let names: Vec<&str> = ingress
            .iter()
            .filter_map(|i| i.hostname.as_deref().or(i.ip.as_deref()))
            .collect();
        Readiness::ready(format!(
            "load balancer {} ready ({} provider)",
            names.join(", "),
            cloud.provider.name()
        ))
    };
    if sync_status(api, &service, ctx, &ingress, &readiness).await? {
        // `ips=[198.19.8.7]`, as operators (and the logs test) read it; hostnames are named too.
        let ips: Vec<std::net::IpAddr> = ingress
            .iter()
            .filter_map(|i| i.ip.as_deref()?.parse().ok())
            .collect();
        let hostnames: Vec<&str> = ingress
            .iter()
            .filter_map(|i| i.hostname.as_deref())
            .collect();
        tracing::debug!(?ips, ?hostnames, "wrote the status");
    }
    for event in events {
        ctx.publish(&service, event.type_, event.reason, event.note)
            .await;
    }
    if lifecycle && (first || !changes.is_empty()) {
        let reason = if first {
            reason::ENSURED_LOAD_BALANCER
        } else {
            reason::UPDATED_LOAD_BALANCER
        };
        let note = if changes.is_empty() {
            "Ensured load balancer".to_string()
        } else {
            changes.join("; ")
        };
        ctx.publish(&service, EventType::Normal, reason, note).await;
    }
    Ok(Action::requeue(RESYNC_PERIOD))
}

/// A Portico Service being deleted, or one that is no longer Portico's but still carries the
/// finalizer: delete its load balancer, then let go.
pub async fn delete(
    api: &Api<Service>,
    service: &Service,
    ctx: &Context,
    cloud: &Cloud,
) -> Result<Action, ReconcileError> {
    let stays = service.meta().deletion_timestamp.is_none();
    if !has_finalizer(service) {
        // Only a Service that stopped being Portico's: one being deleted without the finalizer
        // is released by the resync's sweep, as before.
        if !is_portico_service(service, ctx.default_class) {
            cloud.provider.forget(service);
        }
        return Ok(Action::await_change());
    }
    if cloud.provider.lifecycle_events() {
        ctx.publish(
            service,
            EventType::Normal,
            reason::DELETING_LOAD_BALANCER,
            "Deleting load balancer".into(),
        )
        .await;
    }
    lock(&cloud.ensured).remove(&service_key(service));
    let deleted = match cloud.provider.ensure_deleted(service).await {
        Ok(deleted) => deleted,
        Err(e) => {
            ctx.publish(
                service,
                EventType::Warning,
                reason::SYNC_LOAD_BALANCER_FAILED,
                format!("Error deleting load balancer: {e}"),
            )
            .await;
            return Err(ReconcileError::Provider(e));
        }
    };
    if stays && (!current_ingress(service).is_empty() || conditions::current(service).is_some()) {
        write_status(api, service, &[], None).await?;
    }
    remove_finalizer(api, service).await?;
    if let Some(note) = cloud.provider.deleted_note(&deleted, stays) {
        ctx.publish(
            service,
            EventType::Normal,
            reason::DELETED_LOAD_BALANCER,
            note,
        )
        .await;
    }
    Ok(Action::await_change())
}

/// Requeues every Portico Service when the node set changes (not on every Node heartbeat).
pub async fn follow_nodes(
    ctx: Arc<Context>,
    nodes_changed: Arc<Notify>,
    services: Store<Service>,
    requeue: mpsc::UnboundedSender<ObjectRef<Service>>,
) {
    let cloud = &ctx.cloud;
    if !cloud.provider.uses_nodes() {
        return;
    }
    let mut last = cloud.node_set();
    loop {
        nodes_changed.notified().await;
        let now = cloud.node_set();
        if now == last {
            continue;
        }
        last = now;
        let affected: Vec<_> = services
            .state()
            .into_iter()
            .filter(|s| is_portico_service(s, ctx.default_class))
            .collect();
        tracing::debug!(
            services = affected.len(),
            "the load balancers' node set changed"
        );
        for service in affected {
            let reference = ObjectRef::new(&service.name_any())
                .within(&service.namespace().unwrap_or_default());
            if requeue.send(reference).is_err() {
                return;
            }
        }
    }
}

/// Once the Services are listed, deletes the load balancers of Services that are gone (deleted
/// while the controller was down). Failures are logged; the next start tries again.
pub async fn delete_orphans_once_listed(
    ctx: Arc<Context>,
    services: Store<Service>,
    mut listed: tokio::sync::watch::Receiver<bool>,
) {
    let cloud = &ctx.cloud;
    if listed.wait_for(|listed| *listed).await.is_err() {
        return;
    }
    let live: std::collections::HashSet<String> =
        services.state().iter().filter_map(|s| s.uid()).collect();
    match cloud.provider.delete_orphans(&live).await {
        Ok(deleted) if deleted.is_empty() => {}
        Ok(deleted) => tracing::info!(
            ?deleted,
            "deleted the load balancers of Services that are gone"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "could not look for the load balancers of deleted Services")
        }
    }
}
