//! Trimmed objects give the announcer the same decisions, and carry none of the bulk.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::json;

use super::*;
use crate::view::SliceView;

/// A LoadBalancer Service as a real API server serves it after `kubectl apply`.
pub(crate) fn real_service() -> Service {
    serde_json::from_value(json!({
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "u-1", "resourceVersion": "42",
            "labels": {"app.kubernetes.io/name": "web", "service.kubernetes.io/service-proxy-name": "portico"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"big\":\"json\"}"},
            "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                               "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}],
            "finalizers": ["portico.dev/load-balancer-cleanup"],
        },
        "spec": {
            "type": "LoadBalancer", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "selector": {"app": "web"}, "loadBalancerClass": "portico.dev/lb",
            "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000,
            "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
            "loadBalancerSourceRanges": ["203.0.113.0/24"], "externalIPs": ["192.0.2.7"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080,
                       "nodePort": 31000, "appProtocol": "http"}],
        },
        "status": {
            "loadBalancer": {"ingress": [{"ip": "198.19.0.1", "ipMode": "VIP", "ports": [{"port": 80, "protocol": "TCP"}]},
                                         {"ip": "198.19.0.2", "ipMode": "Proxy"}]},
            "conditions": [{"type": "portico.dev/LoadBalancerReady", "status": "True", "reason": "Ready",
                            "message": "ok", "lastTransitionTime": "2026-11-30T00:00:00Z"}],
        },
    }))
    .unwrap()
}

pub(crate) fn real_slice() -> EndpointSlice {
    serde_json::from_value(json!({
        "metadata": {
            "name": "web-abcde", "namespace": "shop", "uid": "u-2", "resourceVersion": "43", "generation": 3,
            "labels": {"kubernetes.io/service-name": "web", "endpointslice.kubernetes.io/managed-by": "x"},
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-11-30T00:00:00Z"},
            "managedFields": [{"manager": "kube-controller-manager", "operation": "Update"}],
            "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "u-1"}],
        },
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.244.1.5"], "nodeName": "node-a", "zone": "z", "hostname": "h",
             "conditions": {"ready": true, "serving": true, "terminating": false},
             "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "shop"},
             "hints": {"forZones": [{"name": "z"}]}},
            {"addresses": ["10.244.2.5"], "nodeName": "node-b",
             "conditions": {"ready": false, "serving": true, "terminating": true}},
            {"addresses": ["not-an-ip"], "nodeName": "node-b"},
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}],
    }))
    .unwrap()
}

#[test]
fn trimming_drops_managed_fields_annotations_and_unread_labels() {
    let mut service = real_service();
    trim_service(&mut service);
    let meta = &service.metadata;
    assert!(meta.managed_fields.is_none() && meta.annotations.is_none());
    assert!(meta.finalizers.is_none());
    assert_eq!(
        meta.labels.as_ref().unwrap().keys().collect::<Vec<_>>(),
        ["service.kubernetes.io/service-proxy-name"]
    );
    assert_eq!(
        (meta.name.as_deref(), meta.uid.as_deref()),
        (Some("web"), Some("u-1")),
        "Events still name the Service"
    );
    let spec = service.spec.as_ref().unwrap();
    assert!(spec.selector.is_none() && spec.load_balancer_class.is_none());
    assert!(service.status.as_ref().unwrap().conditions.is_none());
}

/// The announcer reads trimmed Services and the slices' views (`stores`): they must keep what
/// its decision reads (type, ingress IPs, traffic policy, the slice's Service label, endpoint
/// nodes and readiness).
#[test]
fn trimmed_objects_give_the_announcer_the_same_plan() {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::Node;
    use portico_api::{AddressPool, AddressPoolSpec, L2Announcement, L2AnnouncementSpec};

    use crate::announcer::plan::{Inputs, plan};

    let node = |name: &str| {
        let mut node = Node::default();
        node.metadata.name = Some(name.into());
        Arc::new(node)
    };
    let nodes = vec![node("node-a"), node("node-b")];
    let pools = vec![Arc::new(AddressPool::new(
        "vips",
        AddressPoolSpec {
            addresses: vec!["198.19.0.0/24".into()],
            auto_assign: true,
            avoid_buggy_ips: false,
            service_allocation: None,
        },
    ))];
    let announcements = vec![Arc::new(L2Announcement::new(
        "all",
        L2AnnouncementSpec::default(),
    ))];
    let alive: BTreeSet<String> = ["node-a".into(), "node-b".into()].into();
    let plan_of = |service: Service, slice: EndpointSlice| {
        plan(&Inputs {
            services: &[Arc::new(service)],
            slices: &[Arc::new(SliceView::from(&slice))],
            nodes: &nodes,
            pools: &pools,
            announcements: &announcements,
            alive: &alive,
        })
    };
    let full = plan_of(real_service(), real_slice());
    let mut service = real_service();
    trim_service(&mut service);
    let trimmed = plan_of(service, real_slice());
    assert_eq!(trimmed, full);
    // Both VIPs are Portico's and have an owner (not "no eligible node" for want of endpoints).
    assert_eq!(full.len(), 2);
    assert!(full.iter().all(|vip| vip.owner().is_some()), "{full:?}");
}

#[test]
fn trimming_keeps_the_announcers_own_condition_and_drops_the_others() {
    let mut service = real_service();
    let announced: k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition =
        serde_json::from_value(json!({
            "type": crate::announcer::status::L2_ANNOUNCED, "status": "True",
            "reason": "NodeAnnouncing", "message": "198.19.0.1 by node node-a on eth0",
            "lastTransitionTime": "2026-11-30T00:00:00Z",
        }))
        .unwrap();
    let status = service.status.as_mut().unwrap();
    status.conditions.as_mut().unwrap().push(announced.clone());
    // A Service whose VIP was released keeps the condition (the announcer removes it).
    let mut released = service.clone();
    released.status.as_mut().unwrap().load_balancer = None;

    trim_service(&mut service);
    trim_service(&mut released);
    let status = service.status.unwrap();
    assert_eq!(status.conditions, Some(vec![announced.clone()]));
    assert!(status.load_balancer.is_some());
    let released = released.status.unwrap();
    assert_eq!(released.conditions, Some(vec![announced]));
    assert_eq!(released.load_balancer, None);
}

/// A Node as the API server serves it: most of it is images, conditions and managedFields.
fn real_node() -> k8s_openapi::api::core::v1::Node {
    serde_json::from_value(json!({
        "metadata": {
            "name": "node-a", "uid": "u-3", "resourceVersion": "44",
            "deletionTimestamp": "2026-11-30T00:00:00Z",
            "labels": {"zone": "a", "node.kubernetes.io/exclude-from-external-load-balancers": "false"},
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
            "managedFields": [{"manager": "kubelet", "operation": "Update"}],
        },
        "spec": {
            "podCIDR": "10.244.1.0/24",
            "taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}],
        },
        "status": {
            "addresses": [{"type": "InternalIP", "address": "198.18.0.11"},
                          {"type": "Hostname", "address": "node-a"}],
            "images": [{"names": ["registry.example/app:1"], "sizeBytes": 1000}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "c",
                         "kernelVersion": "k", "kubeProxyVersion": "", "kubeletVersion": "v",
                         "machineID": "m", "operatingSystem": "linux", "osImage": "o",
                         "systemUUID": "s"},
        },
    }))
    .unwrap()
}

#[test]
fn trimmed_nodes_keep_what_the_announcer_reads() {
    use crate::health::node_eligible;
    use crate::node_info::node_ips;

    let full = real_node();
    let mut node = full.clone();
    trim_node(&mut node);
    assert_eq!(node.metadata.name, full.metadata.name);
    assert_eq!(node.metadata.labels, full.metadata.labels);
    assert!(node.metadata.deletion_timestamp.is_some());
    assert!(node.metadata.managed_fields.is_none() && node.metadata.annotations.is_none());
    assert_eq!(node_ips(&node), node_ips(&full));
    assert!(!node_ips(&node).is_empty());
    // Deleting and tainted: ineligible, before and after trimming; each alone, too.
    assert!(!node_eligible(&node) && !node_eligible(&full));
    node.metadata.deletion_timestamp = None;
    assert!(!node_eligible(&node), "the taint is kept");
    let status = node.status.as_ref().unwrap();
    assert!(status.images.is_none() && status.conditions.is_none() && status.node_info.is_none());
    assert!(node.spec.as_ref().unwrap().pod_cidr.is_none());
}
