//! Builds the desired state from the Services and EndpointSlices the agent watches, as the
//! compact views the stores keep (`crate::view`). Objects the dataplane cannot serve (headless
//! and ExternalName Services, FQDN slices, unparsable addresses) are left out rather than
//! failing the sync, as kube-proxy does; the views already leave them out.

use std::collections::{BTreeSet, HashMap};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::model::{DesiredState, Endpoint, IpFamily, ServicePort, ServicePortKey};
use crate::view::{PortView, ServiceView, SliceView};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub use crate::view::DEFAULT_AFFINITY_TIMEOUT_SECONDS;

/// Builds the whole desired state from every Service and EndpointSlice in the cluster (whole
/// objects: their views are taken here).
pub fn desired_state<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> DesiredState {
    let services: Vec<ServiceView> = services.into_iter().map(ServiceView::from).collect();
    let slices: Vec<SliceView> = slices.into_iter().map(SliceView::from).collect();
    desired_state_of(&services, &slices)
}

/// Builds the whole desired state from the views of every Service and EndpointSlice.
pub fn desired_state_of<'a>(
    services: impl IntoIterator<Item = &'a ServiceView>,
    slices: impl IntoIterator<Item = &'a SliceView>,
) -> DesiredState {
    let mut slices_by_service: HashMap<(&str, &str), Vec<&SliceView>> = HashMap::new();
    for slice in slices {
        let Some(service) = slice.service.as_deref() else {
            continue;
        };
        slices_by_service
            .entry((&slice.namespace, service))
            .or_default()
            .push(slice);
    }
    let mut state = DesiredState::default();
    for service in services {
        let slices = slices_by_service
            .get(&(&*service.namespace, &*service.name))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for port in service_ports_of(service, slices) {
            state.insert(port);
        }
    }
    state
}

/// The Service ports (one per spec port and cluster IP family) of one Service, with the
/// endpoints its slices list. Empty for Services the dataplane does not serve.
pub fn service_ports(service: &Service, slices: &[&EndpointSlice]) -> Vec<ServicePort> {
    let slices: Vec<SliceView> = slices.iter().map(|slice| SliceView::from(*slice)).collect();
    let slices: Vec<&SliceView> = slices.iter().collect();
    service_ports_of(&ServiceView::from(service), &slices)
}

/// `service_ports` of the views.
pub fn service_ports_of(service: &ServiceView, slices: &[&SliceView]) -> Vec<ServicePort> {
    let mut ports = Vec::new();
    for spec_port in &service.ports {
        for cluster_ip in &service.cluster_ips {
            let family = IpFamily::of(cluster_ip);
            let of_family = |ips: &[std::net::IpAddr]| -> Vec<std::net::IpAddr> {
                ips.iter()
                    .filter(|ip| IpFamily::of(ip) == family)
                    .copied()
                    .collect()
            };
            ports.push(ServicePort {
                key: ServicePortKey {
                    family,
                    namespace: service.namespace.to_string(),
                    name: service.name.to_string(),
                    port_name: spec_port.name.to_string(),
                    protocol: spec_port.protocol,
                },
                cluster_ip: *cluster_ip,
                port: spec_port.port,
                node_port: spec_port.node_port,
                external_ips: of_family(&service.external_ips),
                load_balancer_ips: of_family(&service.load_balancer_ips),
                load_balancer_source_ranges: (service.source_ranges.iter())
                    .filter(|net| IpFamily::of_net(net) == family)
                    .copied()
                    .collect(),
                external_policy: service.external_policy,
                internal_policy: service.internal_policy,
                affinity_timeout_seconds: service.affinity_timeout_seconds,
                health_check_node_port: service.health_check_node_port,
                endpoints: endpoints_for(spec_port, family, slices),
            });
        }
    }
    ports
}

fn endpoints_for(spec_port: &PortView, family: IpFamily, slices: &[&SliceView]) -> Vec<Endpoint> {
    let mut endpoints = BTreeSet::new();
    for slice in slices.iter().filter(|slice| slice.family == Some(family)) {
        let Some(target_port) = slice.ports.iter().find(|slice_port| {
            slice_port.name == spec_port.name && slice_port.protocol == spec_port.protocol
        }) else {
            continue;
        };
        let Some(port) = target_port.port else {
            continue;
        };
        // The view keeps only endpoints with an IP of the slice's family.
        for endpoint in &slice.endpoints {
            endpoints.insert(Endpoint {
                ip: endpoint.ip,
                port,
                node_name: endpoint.node.as_deref().map(str::to_owned),
                ready: endpoint.ready,
                serving: endpoint.serving,
                terminating: endpoint.terminating,
            });
        }
    }
    // The same IP:port can appear in two slices during a move; keep one, preferring ready.
    let mut unique: Vec<Endpoint> = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        match unique.last_mut() {
            Some(last) if last.ip == endpoint.ip && last.port == endpoint.port => {
                if endpoint.ready && !last.ready {
                    *last = endpoint;
                }
            }
            _ => unique.push(endpoint),
        }
    }
    unique
}

#[cfg(test)]
mod tests;
