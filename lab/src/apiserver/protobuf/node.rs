//! core/v1 Nodes (what a kubelet registers and heartbeats).

use k8s_pb::api::core::v1::{Node, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Taint};
use serde_json::{Value, json};

use super::json::{Fields, quantities, time};

pub fn node(node: &Node) -> Value {
    Fields::object("v1", "Node", node.metadata.as_ref())
        .opt_value("spec", node.spec.as_ref().map(node_spec))
        .opt_value("status", node.status.as_ref().map(node_status))
        .build()
}

fn node_spec(spec: &NodeSpec) -> Value {
    let taint = |t: &Taint| {
        Fields::new()
            .value("key", json!(t.key.as_deref().unwrap_or("")))
            .string("value", &t.value)
            .value("effect", json!(t.effect.as_deref().unwrap_or("")))
            .opt_value("timeAdded", t.time_added.as_ref().and_then(time))
            .build()
    };
    Fields::new()
        .string("podCIDR", &spec.pod_cidr)
        .strings("podCIDRs", &spec.pod_cid_rs)
        .string("providerID", &spec.provider_id)
        .bool("unschedulable", spec.unschedulable)
        .list("taints", spec.taints.iter().map(taint).collect())
        .string("externalID", &spec.external_id)
        .build()
}

fn node_status(status: &NodeStatus) -> Value {
    let condition = |c: &NodeCondition| {
        Fields::new()
            .value("type", json!(c.r#type.as_deref().unwrap_or("")))
            .value("status", json!(c.status.as_deref().unwrap_or("")))
            .opt_value(
                "lastHeartbeatTime",
                c.last_heartbeat_time.as_ref().and_then(time),
            )
            .opt_value(
                "lastTransitionTime",
                c.last_transition_time.as_ref().and_then(time),
            )
            .string("reason", &c.reason)
            .string("message", &c.message)
            .build()
    };
    let daemon_endpoints = status.daemon_endpoints.as_ref().map(|d| {
        let kubelet = d
            .kubelet_endpoint
            .as_ref()
            .map(|e| json!({"Port": e.port.unwrap_or(0)}));
        Fields::new().opt_value("kubeletEndpoint", kubelet).build()
    });
    Fields::new()
        .map("capacity", &quantities(&status.capacity))
        .map("allocatable", &quantities(&status.allocatable))
        .string("phase", &status.phase)
        .list(
            "conditions",
            status.conditions.iter().map(condition).collect(),
        )
        .list(
            "addresses",
            status
                .addresses
                .iter()
                .map(|a| {
                    json!({
                        "type": a.r#type.as_deref().unwrap_or(""),
                        "address": a.address.as_deref().unwrap_or(""),
                    })
                })
                .collect(),
        )
        .opt_value("daemonEndpoints", daemon_endpoints)
        .opt_value("nodeInfo", status.node_info.as_ref().map(node_info))
        .list(
            "images",
            status
                .images
                .iter()
                .map(|i| {
                    Fields::new()
                        .strings("names", &i.names)
                        .int("sizeBytes", i.size_bytes)
                        .build()
                })
                .collect(),
        )
        .strings("volumesInUse", &status.volumes_in_use)
        .strings("declaredFeatures", &status.declared_features)
        .build()
}

fn node_info(info: &NodeSystemInfo) -> Value {
    // Every field is required in Go (no omitempty), so each is written even when empty.
    let text = |v: &Option<String>| json!(v.as_deref().unwrap_or(""));
    Fields::new()
        .value("machineID", text(&info.machine_id))
        .value("systemUUID", text(&info.system_uuid))
        .value("bootID", text(&info.boot_id))
        .value("kernelVersion", text(&info.kernel_version))
        .value("osImage", text(&info.os_image))
        .value(
            "containerRuntimeVersion",
            text(&info.container_runtime_version),
        )
        .value("kubeletVersion", text(&info.kubelet_version))
        .value("kubeProxyVersion", text(&info.kube_proxy_version))
        .value("operatingSystem", text(&info.operating_system))
        .value("architecture", text(&info.architecture))
        .build()
}
