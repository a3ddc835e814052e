//! Which endpoints a Service port's traffic may reach on this node, as kube-proxy's
//! `CategorizeEndpoints` decides it, and the local endpoint counts its health check reports.
//!
//! Ready endpoints win; serving-but-terminating ones are used only when no endpoint of the set
//! is ready, so connections drain onto terminating pods instead of failing during a rollout.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::model::{DesiredState, Endpoint, ServicePort};

/// The endpoint sets of one Service port, each in the port's endpoint order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSets<'a> {
    /// For Cluster policy: ready endpoints anywhere, else serving terminating ones anywhere.
    /// Empty when the port never uses cluster-wide endpoints.
    pub cluster: Vec<&'a Endpoint>,
    /// For Local policy: ready endpoints on this node, else serving terminating ones on this
    /// node. Empty when the port never uses local endpoints.
    pub local: Vec<&'a Endpoint>,
}

impl EndpointSets<'_> {
    /// kube-proxy's `hasEndpoints`: some endpoint is reachable from this node under some policy.
    pub fn has_any(&self) -> bool {
        !self.cluster.is_empty() || !self.local.is_empty()
    }
}

/// Splits a Service port's endpoints into the sets its traffic policies use on `node_name`.
pub fn categorize<'a>(port: &'a ServicePort, node_name: &str) -> EndpointSets<'a> {
    let cluster = if port.uses_cluster_endpoints() {
        ready_else_terminating(port.endpoints.iter())
    } else {
        Vec::new()
    };
    let local = if port.uses_local_endpoints() {
        ready_else_terminating(port.endpoints.iter().filter(|ep| ep.is_on_node(node_name)))
    } else {
        Vec::new()
    };
    EndpointSets { cluster, local }
}

fn ready_else_terminating<'a>(
    endpoints: impl Iterator<Item = &'a Endpoint> + Clone,
) -> Vec<&'a Endpoint> {
    let ready: Vec<&Endpoint> = endpoints.clone().filter(|ep| ep.ready).collect();
    if !ready.is_empty() {
        return ready;
    }
    endpoints
        .filter(|ep| ep.serving && ep.terminating)
        .collect()
}

/// The count kube-proxy's health check node port server reports per Service: distinct endpoint
/// IPs across all the Service's ports (and families) that are ready and on this node.
/// Terminating endpoints do not count, so a draining node fails the check.
///
/// Keyed by (namespace, name); only Services with a health check node port are listed.
pub fn local_ready_endpoints(
    state: &DesiredState,
    node_name: &str,
) -> BTreeMap<(String, String), usize> {
    let mut ips: BTreeMap<(String, String), BTreeSet<IpAddr>> = BTreeMap::new();
    for port in state.ports.values() {
        if port.health_check_node_port.is_none() {
            continue;
        }
        let service = (port.key.namespace.clone(), port.key.name.clone());
        let local_ips = ips.entry(service).or_default();
        local_ips.extend(
            port.endpoints
                .iter()
                .filter(|ep| ep.ready && ep.is_on_node(node_name))
                .map(|ep| ep.ip),
        );
    }
    ips.into_iter()
        .map(|(service, local_ips)| (service, local_ips.len()))
        .collect()
}
