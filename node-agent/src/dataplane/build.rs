//! Builds the desired state from the Kubernetes objects the agent watches: core/v1 Services and
//! discovery/v1 EndpointSlices. Objects the dataplane cannot serve (headless and ExternalName
//! Services, FQDN slices, unparsable addresses) are left out rather than failing the sync, as
//! kube-proxy does.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{Service, ServicePort as K8sServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::model::{
    DesiredState, Endpoint, IpFamily, Protocol, ServicePort, ServicePortKey, TrafficPolicy,
};

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT_SECONDS: u32 = 10_800;

/// Builds the whole desired state from every Service and EndpointSlice in the cluster.
pub fn desired_state<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> DesiredState {
    let mut slices_by_service: HashMap<(String, String), Vec<&EndpointSlice>> = HashMap::new();
    for slice in slices {
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        slices_by_service
            .entry((namespace, service.clone()))
            .or_default()
            .push(slice);
    }
    let mut state = DesiredState::default();
    for service in services {
        let key = (
            service.metadata.namespace.clone().unwrap_or_default(),
            service.metadata.name.clone().unwrap_or_default(),
        );
        let slices = slices_by_service
            .get(&key)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for port in service_ports(service, slices) {
            state.insert(port);
        }
    }
    state
}

/// The Service ports (one per spec port and cluster IP family) of one Service, with the
/// endpoints its slices list. Empty for Services the dataplane does not serve.
pub fn service_ports(service: &Service, slices: &[&EndpointSlice]) -> Vec<ServicePort> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
    if service_type == "ExternalName" {
        return Vec::new();
    }
    let cluster_ips = cluster_ips(spec.cluster_ips.as_deref(), spec.cluster_ip.as_deref());
    let is_load_balancer = service_type == "LoadBalancer";
    let load_balancer_ips: Vec<IpAddr> = if is_load_balancer {
        load_balancer_ips(service)
    } else {
        Vec::new()
    };
    let external_ips: Vec<IpAddr> = parse_ips(spec.external_ips.iter().flatten());
    let source_ranges: Vec<IpNet> = spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .filter_map(|range| parse_net(range))
        .collect();
    let external_policy = policy(spec.external_traffic_policy.as_deref());
    let internal_policy = policy(spec.internal_traffic_policy.as_deref());
    let affinity_timeout_seconds =
        (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|config| config.client_ip.as_ref())
                .and_then(|client_ip| client_ip.timeout_seconds)
                .and_then(|seconds| u32::try_from(seconds).ok())
                .unwrap_or(DEFAULT_AFFINITY_TIMEOUT_SECONDS)
        });
    let health_check_node_port = spec
        .health_check_node_port
        .and_then(|port| u16::try_from(port).ok())
        .filter(|port| *port != 0);

    let mut ports = Vec::new();
    for spec_port in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::from_k8s(spec_port.protocol.as_deref()) else {
            continue;
        };
        let Ok(port_number) = u16::try_from(spec_port.port) else {
            continue;
        };
        let node_port = if matches!(service_type, "NodePort" | "LoadBalancer") {
            spec_port
                .node_port
                .and_then(|port| u16::try_from(port).ok())
                .filter(|p| *p != 0)
        } else {
            None
        };
        for cluster_ip in &cluster_ips {
            let family = IpFamily::of(cluster_ip);
            let of_family = |ips: &[IpAddr]| -> Vec<IpAddr> {
                ips.iter()
                    .filter(|ip| IpFamily::of(ip) == family)
                    .copied()
                    .collect()
            };
            ports.push(ServicePort {
                key: ServicePortKey {
                    family,
                    namespace: service.metadata.namespace.clone().unwrap_or_default(),
                    name: service.metadata.name.clone().unwrap_or_default(),
                    port_name: spec_port.name.clone().unwrap_or_default(),
                    protocol,
                },
                cluster_ip: *cluster_ip,
                port: port_number,
                node_port,
                external_ips: of_family(&external_ips),
                load_balancer_ips: of_family(&load_balancer_ips),
                load_balancer_source_ranges: source_ranges
                    .iter()
                    .filter(|net| IpFamily::of_net(net) == family)
                    .copied()
                    .collect(),
                external_policy,
                internal_policy,
                affinity_timeout_seconds,
                health_check_node_port,
                endpoints: endpoints_for(spec_port, protocol, family, slices),
            });
        }
    }
    ports
}

fn cluster_ips(cluster_ips: Option<&[String]>, cluster_ip: Option<&str>) -> Vec<IpAddr> {
    let listed: Vec<&str> = match cluster_ips {
        Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
        _ => cluster_ip.into_iter().collect(),
    };
    // "None" (headless) and "" (not yet allocated) fail to parse and drop out here.
    let mut seen_families = BTreeSet::new();
    listed
        .into_iter()
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| seen_families.insert(IpFamily::of(ip)))
        .collect()
}

fn load_balancer_ips(service: &Service) -> Vec<IpAddr> {
    let ingress = service
        .status
        .as_ref()
        .and_then(|status| status.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    // ipMode Proxy means the load balancer delivers to the node with its own address as the
    // destination, so the node must not capture the VIP (kube-proxy skips it too).
    parse_ips(
        ingress
            .into_iter()
            .flatten()
            .filter(|ingress| ingress.ip_mode.as_deref() != Some("Proxy"))
            .filter_map(|ingress| ingress.ip.as_ref()),
    )
}

fn parse_ips<'a>(ips: impl Iterator<Item = &'a String>) -> Vec<IpAddr> {
    let mut parsed: Vec<IpAddr> = ips.filter_map(|ip| ip.trim().parse().ok()).collect();
    parsed.dedup();
    parsed
}

fn parse_net(range: &str) -> Option<IpNet> {
    let range = range.trim();
    range
        .parse::<IpNet>()
        .map(|net| net.trunc())
        .ok()
        .or_else(|| range.parse::<IpAddr>().ok().map(IpNet::from))
}

fn policy(policy: Option<&str>) -> TrafficPolicy {
    match policy {
        Some("Local") => TrafficPolicy::Local,
        _ => TrafficPolicy::Cluster,
    }
}

fn endpoints_for(
    spec_port: &K8sServicePort,
    protocol: Protocol,
    family: IpFamily,
    slices: &[&EndpointSlice],
) -> Vec<Endpoint> {
    let address_type = match family {
        IpFamily::V4 => "IPv4",
        IpFamily::V6 => "IPv6",
    };
    let port_name = spec_port.name.as_deref().unwrap_or_default();
    let mut endpoints = BTreeSet::new();
    for slice in slices
        .iter()
        .filter(|slice| slice.address_type == address_type)
    {
        let Some(target_port) = slice.ports.iter().flatten().find(|slice_port| {
            slice_port.name.as_deref().unwrap_or_default() == port_name
                && Protocol::from_k8s(slice_port.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(port) = target_port.port.and_then(|port| u16::try_from(port).ok()) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
            let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
            // Every address of an endpoint is the same pod; kube-proxy uses the first.
            let Some(ip) = endpoint
                .addresses
                .first()
                .and_then(|ip| ip.parse::<IpAddr>().ok())
            else {
                continue;
            };
            if IpFamily::of(&ip) != family {
                continue;
            }
            endpoints.insert(Endpoint {
                ip,
                port,
                node_name: endpoint.node_name.clone(),
                ready,
                serving,
                terminating,
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
