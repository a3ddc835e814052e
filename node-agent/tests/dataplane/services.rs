//! Services and EndpointSlices as the API server would hold them, and the agent's sync of them
//! into a test's node namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Service, ServicePort, ServiceSpec, ServiceStatus,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use portico_agent::args::ProxyMode;
use portico_agent::dataplane::IpFamily;
use portico_agent::dataplane::backend::{Backend, for_mode};
use portico_agent::dataplane::{self, DesiredState, NodeContext};
use portico_agent::iptables::{Iptables, Syncer};

use crate::topology::{ECHO_PORT, NODE_IP, NODE_NAME};

pub const NAMESPACE: &str = "default";

/// A Service `name` with TCP port 80 named "http", of `type_`, with an optional node port.
pub fn mk_service(name: &str, cluster_ip: &str, type_: &str, node_port: Option<i32>) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some(type_.into()),
            cluster_ip: Some(cluster_ip.into()),
            cluster_ips: Some(vec![cluster_ip.into()]),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                protocol: Some("TCP".into()),
                node_port,
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

pub fn with_local_policy(mut service: Service) -> Service {
    service.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
    service
}

pub fn with_lb_ip(mut service: Service, ip: &str) -> Service {
    service.status = Some(ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: Some(vec![LoadBalancerIngress {
                ip: Some(ip.into()),
                ..Default::default()
            }]),
        }),
        ..Default::default()
    });
    service
}

/// The slice of Service `service` with ready endpoints `(ip, node)` on the echo port.
pub fn mk_slice(service: &str, endpoints: &[(&str, &str)]) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(format!("{service}-abcde")),
            namespace: Some(NAMESPACE.into()),
            labels: Some(BTreeMap::from([(
                "kubernetes.io/service-name".to_string(),
                service.to_string(),
            )])),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: endpoints
            .iter()
            .map(|(ip, node)| Endpoint {
                addresses: vec![ip.to_string()],
                node_name: Some(node.to_string()),
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                ..Default::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(i32::from(ECHO_PORT)),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
}

pub fn node_context() -> NodeContext {
    NodeContext {
        node_name: NODE_NAME.into(),
        node_ips: vec![NODE_IP.parse().unwrap()],
        pod_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
        nodeport_ips: None,
    }
}

pub fn state(services: &[Service], slices: &[EndpointSlice]) -> DesiredState {
    dataplane::desired_state(services, slices)
}

/// A syncer for the node namespace with the system's default iptables.
pub fn syncer(node_ns: &str) -> Syncer {
    Syncer::new(
        Iptables::new(IpFamily::V4).in_netns(node_ns),
        &node_context(),
    )
}

/// The dataplane backend of `mode` for the node namespace.
pub fn backend(mode: ProxyMode, node_ns: &str) -> Box<dyn Backend> {
    for_mode(mode, Some(node_ns), &node_context()).expect("a mode with a dataplane")
}

/// A namespace tag unique to the test and the mode.
pub fn tag(mode: ProxyMode, test: &str) -> String {
    match mode {
        ProxyMode::Iptables => format!("{test}i"),
        ProxyMode::Nftables => format!("{test}n"),
        ProxyMode::Off => format!("{test}o"),
    }
}

/// Runs `$case(mode)` as two tests, `$case::iptables` and `$case::nftables`: the same rows
/// proven on both backends.
#[macro_export]
macro_rules! in_both_modes {
    ($case:ident) => {
        mod $case {
            use portico_agent::args::ProxyMode;

            #[tokio::test]
            async fn iptables() {
                if $crate::topology::root_or_skip(concat!(stringify!($case), " (iptables)")) {
                    super::$case(ProxyMode::Iptables).await;
                }
            }

            #[tokio::test]
            async fn nftables() {
                if $crate::topology::root_or_skip(concat!(stringify!($case), " (nftables)")) {
                    super::$case(ProxyMode::Nftables).await;
                }
            }
        }
    };
}
