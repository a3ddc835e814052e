//! The reconcile of a Service when a cloud provider makes its load balancer, and the Node watch
//! that requeues Services when the load balancers' node set changes.
//!
//! ```text
//!   Service ──not Portico's──▶ ensure_deleted, clear status, drop finalizer (if it was ours)
//!           ──being deleted─▶ DeletingLoadBalancer ─▶ ensure_deleted ─▶ DeletedLoadBalancer ─▶ finalizer off
//!           ──Portico's─────▶ finalizer ─▶ node set ─▶ provider.ensure ─▶ status (on a difference)
//!                                                                     └▶ Events: EnsuredLoadBalancer
//!                                                                        (when something changed),
//!                                                                        SyncLoadBalancerFailed
//!   Nodes ─watch─▶ node set changed? ─yes─▶ requeue every Portico Service
//! ```
//! A failed ensure leaves whatever already works in place: the plan only creates, modifies and
//! deletes what differs, and an error stops it before anything else is touched.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use portico_api::keys::reason;
use tokio::sync::{Notify, mpsc};

use crate::nodes::{LbNode, load_balancer_nodes};
use crate::providers::{LoadBalancerProvider, ProviderError};
use crate::reconcile::{
    Context, RESYNC_PERIOD, ReconcileError, ensure_finalizer, has_finalizer, remove_finalizer,
    write_status,
};
use crate::service_filter::is_portico_service;
use crate::status::current_ingress;

/// A cloud provider and the nodes it sends traffic to.
pub struct Cloud {
    pub provider: Arc<dyn LoadBalancerProvider>,
    pub nodes: Store<Node>,
}

impl Cloud {
    pub fn node_set(&self) -> Vec<LbNode> {
        let nodes = self.nodes.state();
        load_balancer_nodes(nodes.iter().map(|n| n.as_ref()))
    }
}

fn provider_error(error: ProviderError) -> ReconcileError {
    ReconcileError::Provider(error)
}

/// A Portico Service: make its load balancer match, write its status.
pub async fn apply(
    api: &Api<Service>,
    service: &Service,
    ctx: &Context,
    cloud: &Cloud,
) -> Result<Action, ReconcileError> {
    let service = ensure_finalizer(api, service, ctx).await?;
    let nodes = cloud.node_set();
    if nodes.is_empty() {
        ctx.publish(
            &service,
            EventType::Warning,
            reason::UNAVAILABLE_LOAD_BALANCER,
            "There are no available nodes for LoadBalancer (every node is excluded, being deleted or tainted ToBeDeletedByClusterAutoscaler)".into(),
        )
        .await;
    }
    let first = current_ingress(&service).is_empty();
    if first {
        ctx.publish(
            &service,
            EventType::Normal,
            reason::ENSURING_LOAD_BALANCER,
            "Ensuring load balancer".into(),
        )
        .await;
    }
    let ensured = match cloud.provider.ensure(&service, &nodes).await {
        Ok(ensured) => ensured,
        Err(e) => {
            ctx.publish(
                &service,
                EventType::Warning,
                reason::SYNC_LOAD_BALANCER_FAILED,
                format!("Error syncing load balancer: {e}"),
            )
            .await;
            return Err(provider_error(e));
        }
    };
    for warning in &ensured.warnings {
        ctx.publish(
            &service,
            EventType::Warning,
            reason::UPDATE_LOAD_BALANCER_FAILED,
            warning.clone(),
        )
        .await;
    }
    let desired = ensured.status.ingress;
    if current_ingress(&service) != desired {
        let mut predicted = service.clone();
        predicted
            .status
            .get_or_insert_default()
            .load_balancer
            .get_or_insert_default()
            .ingress = Some(desired.clone());
        ctx.own_writes.expect(&predicted);
        write_status(api, &service, &desired).await?;
    }
    if first || !ensured.changes.is_empty() {
        let reason = if first {
            reason::ENSURED_LOAD_BALANCER
        } else {
            reason::UPDATED_LOAD_BALANCER
        };
        let note = if ensured.changes.is_empty() {
            "Ensured load balancer".to_string()
        } else {
            ensured.changes.join("; ")
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
    if !has_finalizer(service) {
        return Ok(Action::await_change());
    }
    ctx.publish(
        service,
        EventType::Normal,
        reason::DELETING_LOAD_BALANCER,
        "Deleting load balancer".into(),
    )
    .await;
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
            return Err(provider_error(e));
        }
    };
    if service.meta().deletion_timestamp.is_none() && !current_ingress(service).is_empty() {
        write_status(api, service, &[]).await?;
    }
    remove_finalizer(api, service).await?;
    ctx.publish(
        service,
        EventType::Normal,
        reason::DELETED_LOAD_BALANCER,
        format!("Deleted load balancer: {}", deleted.join(", ")),
    )
    .await;
    Ok(Action::await_change())
}

/// Requeues every Portico Service when the node set changes (not on every Node heartbeat).
pub async fn follow_nodes(
    ctx: Arc<Context>,
    nodes_changed: Arc<Notify>,
    services: Store<Service>,
    requeue: mpsc::UnboundedSender<ObjectRef<Service>>,
) {
    let Some(cloud) = ctx.cloud.as_ref() else {
        return;
    };
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
    let Some(cloud) = ctx.cloud.as_ref() else {
        return;
    };
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
