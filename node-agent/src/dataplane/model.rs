//! The desired state of the node's dataplane: one `ServicePort` per (Service, port, family),
//! with every endpoint the EndpointSlices list for it. Which endpoints a packet may reach is
//! decided later (`endpoints::categorize`), so that the renderer, the health check counts and
//! the conntrack cleanup all read the same facts.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// The address family a rule set is written for (`iptables` or `ip6tables`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    pub fn of_net(net: &IpNet) -> Self {
        IpFamily::of(&net.addr())
    }
}

/// A Service port's transport protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// Parses the Kubernetes spelling (`TCP`, `UDP`, `SCTP`); unset means TCP.
    pub fn from_k8s(protocol: Option<&str>) -> Option<Self> {
        match protocol.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The lowercase name iptables and kube-proxy's chain hashes use.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// `externalTrafficPolicy` / `internalTrafficPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TrafficPolicy {
    #[default]
    Cluster,
    Local,
}

/// Identifies one Service port in one family: the map key of `DesiredState`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortKey {
    pub family: IpFamily,
    pub namespace: String,
    pub name: String,
    /// The port's name; empty for the single unnamed port a Service may have.
    pub port_name: String,
    pub protocol: Protocol,
}

impl ServicePortKey {
    /// kube-proxy's `ServicePortName.String()`: `ns/name:port`, or `ns/name` for an unnamed port.
    pub fn service_port_name(&self) -> String {
        if self.port_name.is_empty() {
            format!("{}/{}", self.namespace, self.name)
        } else {
            format!("{}/{}:{}", self.namespace, self.name, self.port_name)
        }
    }
}

impl fmt::Display for ServicePortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.service_port_name(), self.protocol.as_str())
    }
}

/// One endpoint of a Service port, with its EndpointSlice conditions resolved as kube-proxy
/// resolves them (ready unset → true, serving unset → ready, terminating unset → false).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
    /// `nodeName` from the slice; `None` when the slice does not say.
    pub node_name: Option<String>,
    pub ready: bool,
    pub serving: bool,
    pub terminating: bool,
}

impl Endpoint {
    /// `IP:port`, with brackets for IPv6, as kube-proxy hashes and DNATs it.
    pub fn address(&self) -> String {
        std::net::SocketAddr::new(self.ip, self.port).to_string()
    }

    pub fn is_on_node(&self, node_name: &str) -> bool {
        self.node_name.as_deref() == Some(node_name)
    }
}

/// Everything the dataplane needs to know about one Service port in one family.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServicePort {
    pub key: ServicePortKey,
    pub cluster_ip: IpAddr,
    pub port: u16,
    pub node_port: Option<u16>,
    pub external_ips: Vec<IpAddr>,
    pub load_balancer_ips: Vec<IpAddr>,
    pub load_balancer_source_ranges: Vec<IpNet>,
    pub external_policy: TrafficPolicy,
    pub internal_policy: TrafficPolicy,
    /// `Some(seconds)` when `sessionAffinity: ClientIP`.
    pub affinity_timeout_seconds: Option<u32>,
    pub health_check_node_port: Option<u16>,
    /// Every endpoint of this family the slices list, sorted and without duplicates.
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// kube-proxy's `ExternallyAccessible`: reachable through a NodePort, an LB IP or an
    /// external IP.
    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some()
            || !self.load_balancer_ips.is_empty()
            || !self.external_ips.is_empty()
    }

    /// `externalTrafficPolicy: Local` only means something for externally reachable ports.
    pub fn external_policy_local(&self) -> bool {
        self.external_policy == TrafficPolicy::Local && self.externally_accessible()
    }

    pub fn internal_policy_local(&self) -> bool {
        self.internal_policy == TrafficPolicy::Local
    }

    /// Cluster-wide endpoints are needed for Cluster internal policy, and for any external
    /// destination (even under Local, pods reaching the external address are short-circuited
    /// to the cluster-wide chain).
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_policy_local() || self.externally_accessible()
    }

    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_policy_local() || self.external_policy_local()
    }
}

/// What the node knows about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeContext {
    pub node_name: String,
    /// The node's own addresses (both families); a source range that contains one of them lets
    /// the node reach the LB IPs it owns.
    pub node_ips: Vec<IpAddr>,
    /// The cluster's pod CIDRs: sources inside them are pods (no masquerade to ClusterIPs,
    /// short-circuit to the cluster-wide chain for external destinations).
    pub pod_cidrs: Vec<IpNet>,
    /// The addresses that serve NodePorts (`--nodeport-addresses`); None: every local address.
    pub nodeport_ips: Option<Vec<IpAddr>>,
}

impl NodeContext {
    pub fn pod_cidrs_of(&self, family: IpFamily) -> Vec<IpNet> {
        self.pod_cidrs
            .iter()
            .filter(|net| IpFamily::of_net(net) == family)
            .copied()
            .collect()
    }

    pub fn node_ips_of(&self, family: IpFamily) -> Vec<IpAddr> {
        self.node_ips
            .iter()
            .filter(|ip| IpFamily::of(ip) == family)
            .copied()
            .collect()
    }
}

/// The whole desired dataplane of a node: every Service port of both families.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub ports: BTreeMap<ServicePortKey, ServicePort>,
}

impl DesiredState {
    pub fn insert(&mut self, port: ServicePort) {
        self.ports.insert(port.key.clone(), port);
    }

    /// The ports of one family, in key order.
    pub fn ports_of(&self, family: IpFamily) -> impl Iterator<Item = &ServicePort> {
        self.ports
            .values()
            .filter(move |port| port.key.family == family)
    }
}
