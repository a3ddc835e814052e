//! The envelope and the per-kind mapping, from bodies kubectl 1.32 sent and bodies built with
//! k8s-pb.

use k8s_pb::api::coordination::v1::{Lease, LeaseSpec};
use k8s_pb::api::core::v1::{ConfigMap, Service, ServiceSpec};
use k8s_pb::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_pb::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::json;

use super::*;

/// `kubectl create namespace foo`, as `kubectl -v=8` printed it.
const KUBECTL_NAMESPACE: &str = "6b387300 0a0f0a02 76311209 4e616d65 73706163 65121b0a 130a0366 6f6f1200 1a002200 2a003200 38004200 12001a02 0a001a00 2200";

/// `kubectl create service loadbalancer web --tcp=80:8080`.
const KUBECTL_LOAD_BALANCER: &str = "6b387300 0a0d0a02 76311207 53657276 69636512 6c0a1f0a 03776562 12001a00 22002a00 32003800 42005a0a 0a036170 70120377 65621245 0a1b0a07 38302d38 30383012 03544350 18502207 08001090 3f1a0028 00120a0a 03617070 12037765 621a0022 0c4c6f61 6442616c 616e6365 723a0042 00520 05a00 60006800 1a020a00 1a002200";

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

fn body(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [MAGIC, &unknown.encode_to_vec()].concat()
}

fn meta(name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    })
}

#[test]
fn kubectl_create_namespace_body_decodes_to_the_json_kubectl_would_send() {
    let body = hex(KUBECTL_NAMESPACE);
    assert!(is_protobuf(&body));
    assert_eq!(
        decode(&body).unwrap(),
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "foo"},
            "spec": {},
            "status": {},
        })
    );
}

#[test]
fn kubectl_create_load_balancer_service_body_decodes_to_its_json() {
    assert_eq!(
        decode(&hex(KUBECTL_LOAD_BALANCER)).unwrap(),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                "selector": {"app": "web"},
                "type": "LoadBalancer",
            },
            "status": {"loadBalancer": {}},
        })
    );
}

#[test]
fn envelope_names_the_type_and_carries_the_raw_object() {
    let namespace = k8s_pb::api::core::v1::Namespace {
        metadata: meta("ns"),
        ..Default::default()
    };
    let envelope = open_envelope(&body("v1", "Namespace", &namespace)).unwrap();
    assert_eq!(envelope.api_version, "v1");
    assert_eq!(envelope.kind, "Namespace");
    assert_eq!(envelope.raw, namespace.encode_to_vec());
}

#[test]
fn body_without_the_magic_prefix_is_not_an_envelope() {
    assert!(!is_protobuf(b"{\"kind\":\"Namespace\"}"));
    assert!(matches!(
        open_envelope(b"{\"kind\":\"Namespace\"}"),
        Err(ProtobufError::MissingMagic)
    ));
}

#[test]
fn truncated_bodies_are_decode_errors() {
    let full = hex(KUBECTL_NAMESPACE);
    assert!(matches!(
        decode(&full[..12]),
        Err(ProtobufError::Envelope(_))
    ));
    let mut garbled = open_envelope(&full).unwrap();
    garbled.raw.truncate(5);
    assert!(matches!(
        to_json(&garbled),
        Err(ProtobufError::Object { .. })
    ));
}

#[test]
fn kinds_without_a_mapping_are_unsupported() {
    let object = ObjectMeta::default();
    let error = decode(&body("portico.dev/v1alpha1", "AddressPool", &object)).unwrap_err();
    assert_eq!(error.label(), "unsupported_kind");
}

#[test]
fn explicit_false_in_pointer_fields_survives() {
    let service = Service {
        metadata: meta("web"),
        spec: Some(ServiceSpec {
            r#type: Some("LoadBalancer".into()),
            allocate_load_balancer_node_ports: Some(false),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: None,
    };
    let json = decode(&body("v1", "Service", &service)).unwrap();
    assert_eq!(json["spec"]["allocateLoadBalancerNodePorts"], json!(false));
    assert!(json["spec"].get("publishNotReadyAddresses").is_none());
}

#[test]
fn config_map_binary_data_is_base64_as_in_json() {
    let config_map = ConfigMap {
        metadata: meta("cm"),
        data: [("a".to_string(), "b".to_string())].into(),
        binary_data: [("bin".to_string(), vec![0u8, 255])].into(),
        immutable: None,
    };
    let json = decode(&body("v1", "ConfigMap", &config_map)).unwrap();
    assert_eq!(json["data"], json!({"a": "b"}));
    assert_eq!(json["binaryData"], json!({"bin": "AP8="}));
    assert!(json.get("immutable").is_none());
}

#[test]
fn lease_keeps_zero_transitions_and_micro_times() {
    let lease = Lease {
        metadata: meta("leader"),
        spec: Some(LeaseSpec {
            holder_identity: Some("pod-a".into()),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(0),
            renew_time: Some(MicroTime {
                seconds: Some(1_700_000_000),
                nanos: Some(5_000),
            }),
            ..Default::default()
        }),
    };
    let json = decode(&body("coordination.k8s.io/v1", "Lease", &lease)).unwrap();
    assert_eq!(
        json["spec"],
        json!({
            "holderIdentity": "pod-a",
            "leaseDurationSeconds": 15,
            "leaseTransitions": 0,
            "renewTime": "2023-11-14T22:13:20.000005Z",
        })
    );
}

#[test]
fn role_binding_keeps_its_subjects_and_role_ref() {
    let binding = RoleBinding {
        metadata: meta("rb"),
        subjects: vec![Subject {
            kind: Some("User".into()),
            api_group: Some("rbac.authorization.k8s.io".into()),
            name: Some("alice".into()),
            namespace: Some(String::new()),
        }],
        role_ref: Some(RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: Some("Role".into()),
            name: Some("reader".into()),
        }),
    };
    let json = decode(&body(
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        &binding,
    ))
    .unwrap();
    assert_eq!(
        json["subjects"],
        json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}])
    );
    assert_eq!(json["roleRef"]["name"], json!("reader"));
}

#[test]
fn endpoint_slice_keeps_not_ready_conditions_and_node_names() {
    use k8s_pb::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
    let slice = EndpointSlice {
        metadata: meta("web-abc"),
        address_type: Some("IPv4".into()),
        endpoints: vec![Endpoint {
            addresses: vec!["10.244.1.5".into()],
            conditions: Some(EndpointConditions {
                ready: Some(false),
                serving: Some(true),
                terminating: Some(true),
            }),
            node_name: Some("node-a".into()),
            ..Default::default()
        }],
        ports: vec![EndpointPort {
            name: Some(String::new()),
            protocol: Some("TCP".into()),
            port: Some(8080),
            app_protocol: None,
        }],
    };
    let json = decode(&body("discovery.k8s.io/v1", "EndpointSlice", &slice)).unwrap();
    assert_eq!(json["addressType"], json!("IPv4"));
    assert_eq!(
        json["endpoints"],
        json!([{
            "addresses": ["10.244.1.5"],
            "conditions": {"ready": false, "serving": true, "terminating": true},
            "nodeName": "node-a",
        }])
    );
    assert_eq!(
        json["ports"],
        json!([{"name": "", "protocol": "TCP", "port": 8080}])
    );
}

#[test]
fn node_keeps_addresses_taints_and_capacity() {
    use k8s_pb::api::core::v1::{Node, NodeAddress, NodeSpec, NodeStatus, Taint};
    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    let node = Node {
        metadata: meta("node-a"),
        spec: Some(NodeSpec {
            pod_cidr: Some("10.244.1.0/24".into()),
            unschedulable: Some(false),
            taints: vec![Taint {
                key: Some("ToBeDeletedByClusterAutoscaler".into()),
                value: Some(String::new()),
                effect: Some("NoSchedule".into()),
                time_added: None,
            }],
            ..Default::default()
        }),
        status: Some(NodeStatus {
            capacity: [(
                "cpu".to_string(),
                Quantity {
                    string: Some("2".into()),
                },
            )]
            .into(),
            addresses: vec![NodeAddress {
                r#type: Some("InternalIP".into()),
                address: Some("198.18.0.11".into()),
            }],
            ..Default::default()
        }),
    };
    let json = decode(&body("v1", "Node", &node)).unwrap();
    assert_eq!(
        json["spec"],
        json!({
            "podCIDR": "10.244.1.0/24",
            "taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}],
        })
    );
    assert_eq!(json["status"]["capacity"], json!({"cpu": "2"}));
    assert_eq!(
        json["status"]["addresses"],
        json!([{"type": "InternalIP", "address": "198.18.0.11"}])
    );
}

#[test]
fn core_event_names_its_object_and_times() {
    use k8s_pb::api::core::v1::{Event, EventSource, ObjectReference};
    use k8s_pb::apimachinery::pkg::apis::meta::v1::Time;
    let event = Event {
        metadata: meta("web.1"),
        involved_object: Some(ObjectReference {
            kind: Some("Service".into()),
            namespace: Some("default".into()),
            name: Some("web".into()),
            ..Default::default()
        }),
        reason: Some("EnsuredLoadBalancer".into()),
        message: Some("Ensured load balancer".into()),
        source: Some(EventSource {
            component: Some("portico-controller".into()),
            host: Some(String::new()),
        }),
        first_timestamp: Some(Time {
            seconds: Some(1_700_000_000),
            nanos: Some(0),
        }),
        count: Some(1),
        r#type: Some("Normal".into()),
        event_time: Some(MicroTime::default()),
        ..Default::default()
    };
    let json = decode(&body("v1", "Event", &event)).unwrap();
    assert_eq!(
        json["involvedObject"],
        json!({"kind": "Service", "namespace": "default", "name": "web"})
    );
    assert_eq!(json["source"], json!({"component": "portico-controller"}));
    assert_eq!(json["firstTimestamp"], json!("2023-11-14T22:13:20Z"));
    assert_eq!(json["count"], json!(1));
    assert!(
        json.get("eventTime").is_none(),
        "the zero MicroTime is null in JSON"
    );
}
