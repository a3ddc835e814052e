//! Model construction from Services and EndpointSlices, built with small `mk_*` helpers.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use k8s_openapi::api::core::v1::{
    ClientIPConfig, LoadBalancerIngress, LoadBalancerStatus, Service, ServicePort as K8sPort,
    ServiceSpec, ServiceStatus, SessionAffinityConfig,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint as K8sEndpoint, EndpointConditions, EndpointPort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::dataplane::endpoints::{categorize, local_ready_endpoints};
use crate::dataplane::model::{Protocol, TrafficPolicy};

fn mk_service(
    name: &str,
    type_: &str,
    cluster_ips: &[&str],
    ports: &[(&str, &str, i32)],
) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns1".into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            cluster_ip: cluster_ips.first().map(|ip| ip.to_string()),
            cluster_ips: Some(cluster_ips.iter().map(|ip| ip.to_string()).collect()),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, protocol, port)| K8sPort {
                        name: (!name.is_empty()).then(|| name.to_string()),
                        protocol: Some(protocol.to_string()),
                        port: *port,
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

fn spec(service: &mut Service) -> &mut ServiceSpec {
    service.spec.as_mut().unwrap()
}

/// (ip, node, ready, serving, terminating)
type Ep<'a> = (&'a str, &'a str, Option<bool>, Option<bool>, Option<bool>);

fn mk_slice(
    service: &str,
    address_type: &str,
    ports: &[(&str, &str, i32)],
    endpoints: &[Ep],
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(format!("{service}-x")),
            namespace: Some("ns1".into()),
            labels: Some(BTreeMap::from([(
                SERVICE_NAME_LABEL.to_string(),
                service.to_string(),
            )])),
            ..Default::default()
        },
        address_type: address_type.into(),
        endpoints: endpoints
            .iter()
            .map(|(ip, node, ready, serving, terminating)| K8sEndpoint {
                addresses: vec![ip.to_string()],
                node_name: (!node.is_empty()).then(|| node.to_string()),
                conditions: Some(EndpointConditions {
                    ready: *ready,
                    serving: *serving,
                    terminating: *terminating,
                }),
                ..Default::default()
            })
            .collect(),
        ports: Some(
            ports
                .iter()
                .map(|(name, protocol, port)| EndpointPort {
                    name: (!name.is_empty()).then(|| name.to_string()),
                    protocol: Some(protocol.to_string()),
                    port: Some(*port),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

const READY: (Option<bool>, Option<bool>, Option<bool>) = (Some(true), Some(true), Some(false));
const TERMINATING: (Option<bool>, Option<bool>, Option<bool>) =
    (Some(false), Some(true), Some(true));

fn ep<'a>(ip: &'a str, node: &'a str, c: (Option<bool>, Option<bool>, Option<bool>)) -> Ep<'a> {
    (ip, node, c.0, c.1, c.2)
}

#[test]
fn each_port_and_family_becomes_a_service_port_with_its_endpoints() {
    let service = mk_service(
        "web",
        "ClusterIP",
        &["10.96.0.10", "fd00:96::a"],
        &[("http", "TCP", 80), ("dns", "UDP", 53)],
    );
    let slices = [
        mk_slice(
            "web",
            "IPv4",
            &[("http", "TCP", 8080), ("dns", "UDP", 5353)],
            &[ep("10.244.1.5", "node-b", READY)],
        ),
        mk_slice(
            "web",
            "IPv6",
            &[("http", "TCP", 8080)],
            &[ep("fd00:244::5", "node-b", READY)],
        ),
        mk_slice(
            "other",
            "IPv4",
            &[("http", "TCP", 9999)],
            &[ep("10.244.9.9", "node-b", READY)],
        ),
    ];
    let state = desired_state([&service], &slices);
    let summary: Vec<String> = state
        .ports
        .values()
        .map(|port| {
            let endpoints: Vec<String> = port.endpoints.iter().map(Endpoint::address).collect();
            format!(
                "{} {}:{} -> {}",
                port.key,
                port.cluster_ip,
                port.port,
                endpoints.join(",")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "ns1/web:dns/udp 10.96.0.10:53 -> 10.244.1.5:5353",
            "ns1/web:http/tcp 10.96.0.10:80 -> 10.244.1.5:8080",
            "ns1/web:dns/udp fd00:96::a:53 -> ",
            "ns1/web:http/tcp fd00:96::a:80 -> [fd00:244::5]:8080",
        ]
    );
}

#[test]
fn headless_and_external_name_services_are_not_served() {
    let headless = mk_service("headless", "ClusterIP", &["None"], &[("", "TCP", 80)]);
    let external = mk_service("ext", "ExternalName", &[], &[("", "TCP", 80)]);
    assert!(desired_state([&headless, &external], &[]).ports.is_empty());
}

#[test]
fn load_balancer_fields_are_carried_over() {
    let mut service = mk_service("lb", "LoadBalancer", &["10.96.0.10"], &[("", "SCTP", 80)]);
    let spec = spec(&mut service);
    spec.ports.as_mut().unwrap()[0].node_port = Some(30080);
    spec.external_traffic_policy = Some("Local".into());
    spec.internal_traffic_policy = Some("Local".into());
    spec.health_check_node_port = Some(31000);
    spec.load_balancer_source_ranges = Some(vec!["203.0.113.0/24".into(), "198.51.100.7".into()]);
    spec.external_ips = Some(vec!["192.0.2.5".into()]);
    spec.session_affinity = Some("ClientIP".into());
    spec.session_affinity_config = Some(SessionAffinityConfig {
        client_ip: Some(ClientIPConfig {
            timeout_seconds: Some(60),
        }),
    });
    service.status = Some(ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: Some(vec![
                LoadBalancerIngress {
                    ip: Some("198.18.0.200".into()),
                    ..Default::default()
                },
                LoadBalancerIngress {
                    ip: Some("198.18.0.201".into()),
                    ip_mode: Some("Proxy".into()),
                    ..Default::default()
                },
                LoadBalancerIngress {
                    hostname: Some("lb.example".into()),
                    ..Default::default()
                },
            ]),
        }),
        ..Default::default()
    });
    let ports = service_ports(&service, &[]);
    assert_eq!(ports.len(), 1);
    let port = &ports[0];
    assert_eq!(port.key.protocol, Protocol::Sctp);
    assert_eq!(port.key.service_port_name(), "ns1/lb");
    assert_eq!(port.node_port, Some(30080));
    assert_eq!(
        port.load_balancer_ips,
        vec!["198.18.0.200".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(
        port.external_ips,
        vec!["192.0.2.5".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(
        port.load_balancer_source_ranges,
        vec![
            "203.0.113.0/24".parse::<IpNet>().unwrap(),
            "198.51.100.7/32".parse().unwrap()
        ]
    );
    assert_eq!(
        (port.external_policy, port.internal_policy),
        (TrafficPolicy::Local, TrafficPolicy::Local)
    );
    assert_eq!(port.affinity_timeout_seconds, Some(60));
    assert_eq!(port.health_check_node_port, Some(31000));
}

#[test]
fn affinity_timeout_defaults_to_three_hours_and_cluster_ip_services_have_no_node_port() {
    let mut service = mk_service("web", "ClusterIP", &["10.96.0.10"], &[("", "TCP", 80)]);
    spec(&mut service).session_affinity = Some("ClientIP".into());
    spec(&mut service).ports.as_mut().unwrap()[0].node_port = Some(30080);
    let port = &service_ports(&service, &[])[0];
    assert_eq!(port.affinity_timeout_seconds, Some(10_800));
    assert_eq!(port.node_port, None);
}

#[test]
fn endpoint_conditions_default_as_kube_proxy_reads_them() {
    let service = mk_service("web", "ClusterIP", &["10.96.0.10"], &[("", "TCP", 80)]);
    let slice = mk_slice(
        "web",
        "IPv4",
        &[("", "TCP", 8080)],
        &[
            ("10.244.1.1", "n", None, None, None),
            ("10.244.1.2", "n", Some(false), None, None),
        ],
    );
    let port = &service_ports(&service, &[&slice])[0];
    let conditions: Vec<(bool, bool, bool)> = port
        .endpoints
        .iter()
        .map(|ep| (ep.ready, ep.serving, ep.terminating))
        .collect();
    assert_eq!(conditions, [(true, true, false), (false, false, false)]);
}

/// Endpoint selection, table-driven: (case, externalTrafficPolicy, internalTrafficPolicy,
/// endpoints, expected cluster set, expected local set) on node "node-a".
#[test]
fn endpoint_sets_follow_policy_and_terminating_fallback() {
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Vec<Ep<'a>>,
        &'a [&'a str],
        &'a [&'a str],
    );
    let cases: Vec<Case> = vec![
        (
            "ready wins over terminating",
            "Cluster",
            "Cluster",
            vec![
                ep("10.0.0.1", "node-a", READY),
                ep("10.0.0.2", "node-b", TERMINATING),
            ],
            &["10.0.0.1"],
            &[],
        ),
        (
            "terminating used when nothing is ready",
            "Cluster",
            "Cluster",
            vec![
                ep("10.0.0.1", "node-a", TERMINATING),
                ep("10.0.0.2", "node-b", (Some(false), Some(false), Some(true))),
            ],
            &["10.0.0.1"],
            &[],
        ),
        (
            "local: ready local endpoints only",
            "Local",
            "Cluster",
            vec![
                ep("10.0.0.1", "node-a", READY),
                ep("10.0.0.2", "node-b", READY),
            ],
            &["10.0.0.1", "10.0.0.2"],
            &["10.0.0.1"],
        ),
        (
            "local: terminating local when no local is ready, even if remote ones are",
            "Local",
            "Cluster",
            vec![
                ep("10.0.0.1", "node-a", TERMINATING),
                ep("10.0.0.2", "node-b", READY),
            ],
            &["10.0.0.2"],
            &["10.0.0.1"],
        ),
        (
            "local: none on this node",
            "Local",
            "Cluster",
            vec![ep("10.0.0.2", "node-b", READY)],
            &["10.0.0.2"],
            &[],
        ),
        (
            "internal Local without external access uses no cluster set",
            "Cluster",
            "Local",
            vec![
                ep("10.0.0.1", "node-a", READY),
                ep("10.0.0.2", "node-b", READY),
            ],
            &[],
            &["10.0.0.1"],
        ),
    ];
    for (case, external, internal, endpoints, want_cluster, want_local) in cases {
        let type_ = if external == "Local" {
            "NodePort"
        } else {
            "ClusterIP"
        };
        let mut service = mk_service("web", type_, &["10.96.0.10"], &[("", "TCP", 80)]);
        spec(&mut service).ports.as_mut().unwrap()[0].node_port =
            (type_ == "NodePort").then_some(30080);
        spec(&mut service).external_traffic_policy = Some(external.into());
        spec(&mut service).internal_traffic_policy = Some(internal.into());
        let slice = mk_slice("web", "IPv4", &[("", "TCP", 8080)], &endpoints);
        let port = &service_ports(&service, &[&slice])[0];
        let sets = categorize(port, "node-a");
        let ips = |set: &[&Endpoint]| set.iter().map(|ep| ep.ip.to_string()).collect::<Vec<_>>();
        assert_eq!(ips(&sets.cluster), want_cluster, "{case}: cluster set");
        assert_eq!(ips(&sets.local), want_local, "{case}: local set");
    }
}

#[test]
fn local_endpoint_counts_are_distinct_ready_ips_on_this_node_across_ports() {
    let mut service = mk_service(
        "web",
        "LoadBalancer",
        &["10.96.0.10"],
        &[("http", "TCP", 80), ("https", "TCP", 443)],
    );
    spec(&mut service).health_check_node_port = Some(31000);
    let ports = [("http", "TCP", 8080), ("https", "TCP", 8443)];
    let slice = mk_slice(
        "web",
        "IPv4",
        &ports,
        &[
            ep("10.0.0.1", "node-a", READY),
            ep("10.0.0.2", "node-a", READY),
            ep("10.0.0.3", "node-a", TERMINATING),
            ep("10.0.0.4", "node-b", READY),
        ],
    );
    let state = desired_state([&service], [&slice]);
    assert_eq!(
        local_ready_endpoints(&state, "node-a"),
        BTreeMap::from([(("ns1".to_string(), "web".to_string()), 2)])
    );
    assert_eq!(
        local_ready_endpoints(&state, "node-c")[&("ns1".to_string(), "web".to_string())],
        0
    );
}
