//! A Service as the dataplane reads it.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use kube::Resource;

use super::Interner;
use crate::dataplane::{IpFamily, Protocol, TrafficPolicy};

/// The default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT_SECONDS: u32 = 10_800;

/// What the dataplane serves of one Service. A Service it does not serve (ExternalName,
/// headless, no cluster IP yet) has no cluster IPs, so it yields no Service ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceView {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// For Events about the Service (a health check port that could not be bound).
    pub uid: Option<Box<str>>,
    /// At most one per family, in the order the Service lists them.
    pub cluster_ips: Vec<IpAddr>,
    /// `status.loadBalancer.ingress` IPs of a LoadBalancer Service, but not those with
    /// `ipMode: Proxy` (the load balancer then sends to the node's own address, so the node must
    /// not capture the VIP; kube-proxy skips them too).
    pub load_balancer_ips: Vec<IpAddr>,
    pub external_ips: Vec<IpAddr>,
    pub source_ranges: Vec<IpNet>,
    pub external_policy: TrafficPolicy,
    pub internal_policy: TrafficPolicy,
    /// `Some(seconds)` when `sessionAffinity: ClientIP`.
    pub affinity_timeout_seconds: Option<u32>,
    pub health_check_node_port: Option<u16>,
    /// The spec's ports with a known protocol and a valid number.
    pub ports: Vec<PortView>,
}

/// One `spec.ports` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortView {
    /// Empty for the single unnamed port a Service may have.
    pub name: Box<str>,
    pub protocol: Protocol,
    pub port: u16,
    /// Only for NodePort and LoadBalancer Services.
    pub node_port: Option<u16>,
}

impl From<&Service> for ServiceView {
    fn from(service: &Service) -> Self {
        ServiceView::project(service, &mut Interner::default())
    }
}

impl ServiceView {
    /// The view of `service`; `strings` shares namespaces between views.
    pub fn project(service: &Service, strings: &mut Interner) -> Self {
        let meta = &service.metadata;
        let mut view = ServiceView {
            namespace: strings.get(meta.namespace.as_deref().unwrap_or_default()),
            name: Arc::from(meta.name.as_deref().unwrap_or_default()),
            uid: meta.uid.as_deref().map(Box::from),
            cluster_ips: Vec::new(),
            load_balancer_ips: Vec::new(),
            external_ips: Vec::new(),
            source_ranges: Vec::new(),
            external_policy: TrafficPolicy::Cluster,
            internal_policy: TrafficPolicy::Cluster,
            affinity_timeout_seconds: None,
            health_check_node_port: None,
            ports: Vec::new(),
        };
        let Some(spec) = service.spec.as_ref() else {
            return view;
        };
        let service_type = spec.type_.as_deref().unwrap_or("ClusterIP");
        if service_type == "ExternalName" {
            return view;
        }
        view.cluster_ips = cluster_ips(spec.cluster_ips.as_deref(), spec.cluster_ip.as_deref());
        if view.cluster_ips.is_empty() {
            return view;
        }
        if service_type == "LoadBalancer" {
            view.load_balancer_ips = load_balancer_ips(service);
        }
        view.external_ips = parse_ips(spec.external_ips.iter().flatten());
        view.source_ranges = spec
            .load_balancer_source_ranges
            .iter()
            .flatten()
            .filter_map(|range| parse_net(range))
            .collect();
        view.external_policy = policy(spec.external_traffic_policy.as_deref());
        view.internal_policy = policy(spec.internal_traffic_policy.as_deref());
        view.affinity_timeout_seconds = (spec.session_affinity.as_deref() == Some("ClientIP"))
            .then(|| {
                spec.session_affinity_config
                    .as_ref()
                    .and_then(|config| config.client_ip.as_ref())
                    .and_then(|client_ip| client_ip.timeout_seconds)
                    .and_then(|seconds| u32::try_from(seconds).ok())
                    .unwrap_or(DEFAULT_AFFINITY_TIMEOUT_SECONDS)
            });
        view.health_check_node_port = spec
            .health_check_node_port
            .and_then(|port| u16::try_from(port).ok())
            .filter(|port| *port != 0);
        let has_node_ports = matches!(service_type, "NodePort" | "LoadBalancer");
        view.ports = spec
            .ports
            .iter()
            .flatten()
            .filter_map(|spec_port| {
                Some(PortView {
                    name: Box::from(spec_port.name.as_deref().unwrap_or_default()),
                    protocol: Protocol::from_k8s(spec_port.protocol.as_deref())?,
                    port: u16::try_from(spec_port.port).ok()?,
                    node_port: spec_port
                        .node_port
                        .filter(|_| has_node_ports)
                        .and_then(|port| u16::try_from(port).ok())
                        .filter(|port| *port != 0),
                })
            })
            .collect();
        view
    }

    /// The Service, for an Event about it.
    pub fn object_ref(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some(Service::api_version(&()).into_owned()),
            kind: Some(Service::kind(&()).into_owned()),
            namespace: Some(self.namespace.to_string()),
            name: Some(self.name.to_string()),
            uid: self.uid.as_deref().map(str::to_owned),
            ..ObjectReference::default()
        }
    }
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
