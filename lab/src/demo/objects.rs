//! The Kubernetes objects of the demo, in the shapes of the end-to-end source-IP test
//! (`tests/tests/agent/source_ip.rs`): Nodes with an InternalIP, LoadBalancer Services of class
//! `portico.dev/lb` with port 80 → 8080, hand-made EndpointSlices, and an AddressPool.

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::PostParams;
use kube::{Api, Client};
use portico_api::{AddressPool, AddressPoolSpec};
use serde_json::json;

use super::state::NodeState;

/// The port the echo servers listen on in their pods.
pub const ECHO_PORT: u16 = 8080;
/// The Services' port.
pub const SERVICE_PORT: u16 = 80;
/// Where the demo's Services and EndpointSlices live.
pub const NAMESPACE: &str = "default";

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("the demo's objects match their schema")
}

pub fn node(node: &NodeState) -> Node {
    node_object(&node.name, node.ip)
}

/// A Node named `name` whose InternalIP is `ip` (the lab has no kubelets to register them).
pub fn node_object(name: &str, ip: Ipv4Addr) -> Node {
    from_json(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name},
        "status": {"addresses": [{"type": "InternalIP", "address": ip.to_string()}]},
    }))
}

pub fn echo_service(name: &str, policy: &str) -> Service {
    from_json(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": "LoadBalancer",
            "loadBalancerClass": "portico.dev/lb",
            "externalTrafficPolicy": policy,
            "selector": {"app": "echo"},
            "ports": [{"name": "tcp", "port": SERVICE_PORT, "protocol": "TCP",
                       "targetPort": ECHO_PORT}],
        },
    }))
}

/// The EndpointSlice of `service` with the one (ready) pod `pod_ip` on `node`.
pub fn echo_slice(service: &str, node: &str, pod_ip: Ipv4Addr) -> EndpointSlice {
    from_json(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": format!("{service}-x1"), "namespace": NAMESPACE,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": [pod_ip.to_string()],
            "nodeName": node,
            "conditions": {"ready": true, "serving": true, "terminating": false},
        }],
        "ports": [{"name": "tcp", "port": ECHO_PORT, "protocol": "TCP"}],
    }))
}

pub async fn apply_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    // The same CRDs `portico-crdgen` writes into deploy/crds.
    for (_, crd) in portico_api::crd_yaml::crds() {
        api.create(&PostParams::default(), &crd).await?;
    }
    Ok(())
}

pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let namespace: Namespace =
        from_json(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}));
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    Ok(())
}

pub async fn create_address_pool(client: &Client, name: &str, cidr: &str) -> anyhow::Result<()> {
    let spec = AddressPoolSpec {
        addresses: vec![cidr.to_owned()],
        auto_assign: true,
        avoid_buggy_ips: false,
        service_allocation: None,
    };
    Api::<AddressPool>::all(client.clone())
        .create(&PostParams::default(), &AddressPool::new(name, spec))
        .await?;
    Ok(())
}

/// The first `status.loadBalancer.ingress` IP of a Service, once the controller wrote one.
pub fn ingress_ip(service: &Service) -> Option<Ipv4Addr> {
    service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?
        .ip
        .as_ref()?
        .parse()
        .ok()
}

pub fn node_port(service: &Service) -> Option<u16> {
    let port = service.spec.as_ref()?.ports.as_ref()?.first()?.node_port?;
    u16::try_from(port).ok()
}

pub fn health_check_node_port(service: &Service) -> Option<u16> {
    u16::try_from(service.spec.as_ref()?.health_check_node_port?).ok()
}
