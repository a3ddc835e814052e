//! What the announcer keeps of the whole objects it reads (its LoadBalancer Services and every
//! Node): only the fields it reads. A real cluster's objects carry managedFields, a
//! `last-applied-configuration` annotation and labels that are most of their size. (The
//! dataplane keeps far less: compact views, see `crate::view`.)
//!
//! Each function keeps a whitelist (a new field in k8s-openapi is dropped until someone needs
//! it), and the announcer's plan over trimmed objects equals that over the originals (tested).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Node, NodeSpec, NodeStatus, Service, ServicePort,
    ServiceSpec, ServiceStatus,
};
use kube::api::ObjectMeta;

/// Labels on Services that proxies honour (`service.kubernetes.io/service-proxy-name`,
/// `service.kubernetes.io/headless`), kept for them.
const SERVICE_LABEL_PREFIX: &str = "service.kubernetes.io/";

/// Identity and version only (Events and the slice warnings name objects by them).
fn trim_meta(meta: &mut ObjectMeta, keep_label: impl Fn(&str) -> bool) {
    let labels = meta.labels.take().map(|labels| {
        labels
            .into_iter()
            .filter(|(key, _)| keep_label(key))
            .collect::<BTreeMap<_, _>>()
    });
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        generation: meta.generation.take(),
        labels: labels.filter(|labels| !labels.is_empty()),
        ..ObjectMeta::default()
    };
}

/// Keeps what `dataplane::build` and the announcer read of a Service.
pub fn trim_service(service: &mut Service) {
    trim_meta(&mut service.metadata, |key| {
        key.starts_with(SERVICE_LABEL_PREFIX)
    });
    service.spec = service.spec.take().map(|spec| ServiceSpec {
        type_: spec.type_,
        cluster_ip: spec.cluster_ip,
        cluster_ips: spec.cluster_ips,
        external_ips: spec.external_ips,
        external_traffic_policy: spec.external_traffic_policy,
        internal_traffic_policy: spec.internal_traffic_policy,
        health_check_node_port: spec.health_check_node_port,
        load_balancer_source_ranges: spec.load_balancer_source_ranges,
        session_affinity: spec.session_affinity,
        session_affinity_config: spec.session_affinity_config,
        ports: spec.ports.map(|ports| {
            ports
                .into_iter()
                .map(|port| ServicePort {
                    name: port.name,
                    port: port.port,
                    protocol: port.protocol,
                    node_port: port.node_port,
                    target_port: port.target_port,
                    ..ServicePort::default()
                })
                .collect()
        }),
        ..ServiceSpec::default()
    });
    let status = service.status.take().unwrap_or_default();
    // The announcer reads its own condition back to write it only when it changes.
    let conditions: Vec<_> = (status.conditions.into_iter().flatten())
        .filter(|condition| condition.type_ == crate::announcer::status::L2_ANNOUNCED)
        .collect();
    let ingress = status.load_balancer.and_then(|lb| lb.ingress);
    if ingress.is_none() && conditions.is_empty() {
        return;
    }
    service.status = Some(ServiceStatus {
        conditions: (!conditions.is_empty()).then_some(conditions),
        load_balancer: ingress.map(|ingress| LoadBalancerStatus {
            ingress: Some(
                ingress
                    .into_iter()
                    .map(|i| LoadBalancerIngress {
                        ip: i.ip,
                        ip_mode: i.ip_mode,
                        ..LoadBalancerIngress::default()
                    })
                    .collect(),
            ),
        }),
    });
}

/// Keeps what the announcer reads of a Node: its name, labels (announcement selectors, the
/// exclusion label), deletion (eligibility), taints and addresses. Most of a Node is its
/// images, conditions and managedFields, and the announcer watches every Node.
pub fn trim_node(node: &mut Node) {
    let deletion_timestamp = node.metadata.deletion_timestamp.take();
    trim_meta(&mut node.metadata, |_| true);
    node.metadata.deletion_timestamp = deletion_timestamp;
    node.spec = node.spec.take().map(|spec| NodeSpec {
        taints: spec.taints,
        ..NodeSpec::default()
    });
    node.status = node.status.take().map(|status| NodeStatus {
        addresses: status.addresses,
        ..NodeStatus::default()
    });
}

#[cfg(test)]
pub(crate) mod tests;
