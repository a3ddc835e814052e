//! Whole rendered dumps for small cases, one behaviour each (kube-proxy's proxier tests compare
//! whole dumps too, so a stray or missing rule anywhere fails the test).

use std::net::IpAddr;

use super::*;
use crate::dataplane::{Endpoint, Protocol, TrafficPolicy};

pub(crate) const NODE: &str = "node-a";

pub(crate) fn node() -> NodeContext {
    NodeContext {
        node_name: NODE.into(),
        node_ips: vec!["198.18.0.10".parse().unwrap()],
        pod_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
    }
}

/// A ClusterIP Service port `ns1/svc1:p80` (TCP 80 on 10.96.0.10) without endpoints.
pub(crate) fn mk_port(name: &str, cluster_ip: &str) -> ServicePort {
    let ip: IpAddr = cluster_ip.parse().unwrap();
    ServicePort {
        key: ServicePortKey {
            family: IpFamily::of(&ip),
            namespace: "ns1".into(),
            name: name.into(),
            port_name: "p80".into(),
            protocol: Protocol::Tcp,
        },
        cluster_ip: ip,
        port: 80,
        node_port: None,
        external_ips: vec![],
        load_balancer_ips: vec![],
        load_balancer_source_ranges: vec![],
        external_policy: TrafficPolicy::Cluster,
        internal_policy: TrafficPolicy::Cluster,
        affinity_timeout_seconds: None,
        health_check_node_port: None,
        endpoints: vec![],
    }
}

/// A ready endpoint on port 8080 of `node`.
pub(crate) fn mk_endpoint(ip: &str, node: &str) -> Endpoint {
    Endpoint {
        ip: ip.parse().unwrap(),
        port: 8080,
        node_name: Some(node.into()),
        ready: true,
        serving: true,
        terminating: false,
    }
}

pub(crate) fn terminating(mut endpoint: Endpoint) -> Endpoint {
    endpoint.ready = false;
    endpoint.serving = true;
    endpoint.terminating = true;
    endpoint
}

fn dump(ports: Vec<ServicePort>) -> String {
    let mut state = DesiredState::default();
    for port in ports {
        state.insert(port);
    }
    render(&state, &node(), IpFamily::V4).dump()
}

#[test]
fn print_cases() {
    let mut p = mk_port("svc1", "10.96.0.10");
    p.endpoints = vec![mk_endpoint("10.244.1.5", "node-b"), mk_endpoint("10.244.0.7", NODE)];
    p.node_port = Some(30080);
    p.load_balancer_ips = vec!["198.18.0.200".parse().unwrap()];
    p.external_policy = TrafficPolicy::Local;
    p.health_check_node_port = Some(31000);
    p.affinity_timeout_seconds = Some(300);
    p.load_balancer_source_ranges = vec!["203.0.113.0/24".parse().unwrap()];
    println!("{}", dump(vec![p, mk_port("svc2", "10.96.0.11")]));
}
