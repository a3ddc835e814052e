//! The synthetic Services both dataplane benches load: N Services × 5 endpoints on other nodes,
//! every tenth a LoadBalancer with a node port (included with `#[path]` by `iptables.rs` and
//! `dataplane.rs`, so cargo does not take it for a bench of its own).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use portico_agent::dataplane::{
    DesiredState, Endpoint, IpFamily, NodeContext, Protocol, ServicePort, ServicePortKey,
    TrafficPolicy,
};

pub const ENDPOINTS_PER_SERVICE: usize = 5;

pub fn node() -> NodeContext {
    NodeContext {
        node_name: "node-a".into(),
        node_ips: vec!["198.18.0.10".parse().unwrap()],
        pod_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
        nodeport_ips: None,
    }
}

pub fn service(index: usize, extra_endpoint: bool) -> ServicePort {
    let index_u32 = u32::try_from(index).unwrap();
    let cluster_ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 0, 0)) + index_u32 + 1);
    let is_lb = index.is_multiple_of(10);
    let mut endpoints: Vec<Endpoint> = (0..ENDPOINTS_PER_SERVICE + usize::from(extra_endpoint))
        .map(|e| {
            let pod =
                u32::from(Ipv4Addr::new(10, 245, 0, 0)) + index_u32 * 8 + u32::try_from(e).unwrap();
            Endpoint {
                ip: IpAddr::V4(Ipv4Addr::from(pod)),
                port: 8080,
                node_name: Some(format!("node-{}", e + 2)),
                ready: true,
                serving: true,
                terminating: false,
            }
        })
        .collect();
    endpoints.sort();
    ServicePort {
        key: ServicePortKey {
            family: IpFamily::V4,
            namespace: format!("ns{}", index % 50),
            name: format!("svc{index}"),
            port_name: "http".into(),
            protocol: Protocol::Tcp,
        },
        cluster_ip: IpAddr::V4(cluster_ip),
        port: 80,
        node_port: is_lb.then(|| 30000 + u16::try_from(index / 10).unwrap()),
        external_ips: vec![],
        load_balancer_ips: if is_lb {
            vec![IpAddr::V4(Ipv4Addr::from(
                u32::from(Ipv4Addr::new(198, 19, 0, 0)) + index_u32,
            ))]
        } else {
            vec![]
        },
        load_balancer_source_ranges: vec![],
        external_policy: TrafficPolicy::Cluster,
        internal_policy: TrafficPolicy::Cluster,
        affinity_timeout_seconds: None,
        health_check_node_port: None,
        endpoints,
    }
}

pub fn state(services: usize, changed: Option<usize>) -> DesiredState {
    state_with_changes(services, changed.iter().copied())
}

/// `services` Services, those of `changed` with a sixth endpoint.
pub fn state_with_changes(
    services: usize,
    changed: impl IntoIterator<Item = usize>,
) -> DesiredState {
    let changed: std::collections::BTreeSet<usize> = changed.into_iter().collect();
    let mut ports = BTreeMap::new();
    for index in 0..services {
        let port = service(index, changed.contains(&index));
        ports.insert(port.key.clone(), port);
    }
    DesiredState { ports }
}
