//! core/v1 kinds that clients send as protobuf (`kubectl create namespace|service|configmap|
//! secret|serviceaccount`).

use k8s_pb::api::core::v1::{
    ConfigMap, LoadBalancerIngress, Namespace, ObjectReference, Secret, Service, ServiceAccount,
    ServicePort, ServiceSpec, ServiceStatus,
};
use serde_json::{Value, json};

use super::json::{Fields, int_or_string};

pub fn namespace(ns: &Namespace) -> Value {
    let spec = ns.spec.as_ref().map(|spec| {
        Fields::new()
            .strings("finalizers", &spec.finalizers)
            .build()
    });
    let status = ns
        .status
        .as_ref()
        .map(|status| Fields::new().string("phase", &status.phase).build());
    Fields::object("v1", "Namespace", ns.metadata.as_ref())
        .opt_value("spec", spec)
        .opt_value("status", status)
        .build()
}

pub fn service(svc: &Service) -> Value {
    Fields::object("v1", "Service", svc.metadata.as_ref())
        .opt_value("spec", svc.spec.as_ref().map(service_spec))
        .opt_value("status", svc.status.as_ref().map(service_status))
        .build()
}

fn service_spec(spec: &ServiceSpec) -> Value {
    let affinity = spec.session_affinity_config.as_ref().map(|config| {
        let client_ip = config.client_ip.as_ref().map(|c| {
            Fields::new()
                .opt_int("timeoutSeconds", c.timeout_seconds)
                .build()
        });
        Fields::new().opt_value("clientIP", client_ip).build()
    });
    Fields::new()
        .list("ports", spec.ports.iter().map(service_port).collect())
        .map("selector", &spec.selector)
        .string("clusterIP", &spec.cluster_ip)
        .strings("clusterIPs", &spec.cluster_ips)
        .string("type", &spec.r#type)
        .strings("externalIPs", &spec.external_ips)
        .string("sessionAffinity", &spec.session_affinity)
        .string("loadBalancerIP", &spec.load_balancer_ip)
        .strings(
            "loadBalancerSourceRanges",
            &spec.load_balancer_source_ranges,
        )
        .string("externalName", &spec.external_name)
        .string("externalTrafficPolicy", &spec.external_traffic_policy)
        .int("healthCheckNodePort", spec.health_check_node_port)
        .bool("publishNotReadyAddresses", spec.publish_not_ready_addresses)
        .opt_value("sessionAffinityConfig", affinity)
        .strings("ipFamilies", &spec.ip_families)
        .opt_string("ipFamilyPolicy", &spec.ip_family_policy)
        .opt_bool(
            "allocateLoadBalancerNodePorts",
            spec.allocate_load_balancer_node_ports,
        )
        .opt_string("loadBalancerClass", &spec.load_balancer_class)
        .opt_string("internalTrafficPolicy", &spec.internal_traffic_policy)
        .opt_string("trafficDistribution", &spec.traffic_distribution)
        .build()
}

fn service_port(port: &ServicePort) -> Value {
    Fields::new()
        .string("name", &port.name)
        .string("protocol", &port.protocol)
        .opt_string("appProtocol", &port.app_protocol)
        .value("port", json!(port.port.unwrap_or(0)))
        .opt_value(
            "targetPort",
            port.target_port.as_ref().and_then(int_or_string),
        )
        .int("nodePort", port.node_port)
        .build()
}

fn service_status(status: &ServiceStatus) -> Value {
    let ingress = |ingress: &LoadBalancerIngress| {
        Fields::new()
            .string("ip", &ingress.ip)
            .string("hostname", &ingress.hostname)
            .opt_string("ipMode", &ingress.ip_mode)
            .list(
                "ports",
                ingress
                    .ports
                    .iter()
                    .map(|p| {
                        Fields::new()
                            .value("port", json!(p.port.unwrap_or(0)))
                            .value("protocol", json!(p.protocol.as_deref().unwrap_or("")))
                            .opt_string("error", &p.error)
                            .build()
                    })
                    .collect(),
            )
            .build()
    };
    let load_balancer = status.load_balancer.as_ref().map(|lb| {
        Fields::new()
            .list("ingress", lb.ingress.iter().map(ingress).collect())
            .build()
    });
    Fields::new()
        .opt_value("loadBalancer", load_balancer)
        .build()
}

pub fn config_map(cm: &ConfigMap) -> Value {
    Fields::object("v1", "ConfigMap", cm.metadata.as_ref())
        .opt_bool("immutable", cm.immutable)
        .map("data", &cm.data)
        .bytes_map("binaryData", &cm.binary_data)
        .build()
}

pub fn secret(secret: &Secret) -> Value {
    Fields::object("v1", "Secret", secret.metadata.as_ref())
        .opt_bool("immutable", secret.immutable)
        .bytes_map("data", &secret.data)
        .map("stringData", &secret.string_data)
        .string("type", &secret.r#type)
        .build()
}

pub fn service_account(sa: &ServiceAccount) -> Value {
    Fields::object("v1", "ServiceAccount", sa.metadata.as_ref())
        .list("secrets", sa.secrets.iter().map(object_reference).collect())
        .list(
            "imagePullSecrets",
            sa.image_pull_secrets
                .iter()
                .map(|s| Fields::new().string("name", &s.name).build())
                .collect(),
        )
        .opt_bool(
            "automountServiceAccountToken",
            sa.automount_service_account_token,
        )
        .build()
}

/// `core/v1.ObjectReference`: every field is an `omitempty` string.
pub fn object_reference(r: &ObjectReference) -> Value {
    Fields::new()
        .string("kind", &r.kind)
        .string("namespace", &r.namespace)
        .string("name", &r.name)
        .string("uid", &r.uid)
        .string("apiVersion", &r.api_version)
        .string("resourceVersion", &r.resource_version)
        .string("fieldPath", &r.field_path)
        .build()
}
