use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn mk_service(policy: &str, ports: &[(i32, &str, i32)], annotations: &[(&str, &str)]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            uid: Some("1234-5678".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            external_traffic_policy: Some(policy.into()),
            health_check_node_port: (policy == "Local").then_some(32000),
            ports: Some(
                ports
                    .iter()
                    .map(|(port, protocol, node_port)| ServicePort {
                        port: *port,
                        protocol: Some(protocol.to_string()),
                        node_port: Some(*node_port),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn local_aims_the_health_check_at_the_health_check_node_port() {
    let lb = desired_lb(
        "lab",
        &mk_service("Local", &[(80, "TCP", 30080)], &[]),
        ClusterHealthCheck::Agent,
    )
    .unwrap();
    let health = &lb.target_groups[0].health;
    assert_eq!(
        (
            health.protocol.as_str(),
            health.port.as_str(),
            health.path.as_deref()
        ),
        ("HTTP", "32000", Some("/healthz"))
    );
    assert_eq!(
        (
            health.interval,
            health.timeout,
            health.healthy,
            health.unhealthy
        ),
        (10, 6, 2, 2)
    );
    assert_eq!(lb.target_groups[0].node_port, 30080);
    assert!(lb.name.len() <= 32 && lb.target_groups[0].name.len() <= 32);
    assert_eq!(lb.tags["kubernetes.io/cluster/lab"], "owned");
    assert_eq!(lb.tags["kubernetes.io/service-name"], "shop/web");
    assert!(!lb.internal);
}

#[test]
fn cluster_aims_at_the_agent_or_the_traffic_port() {
    let service = mk_service("Cluster", &[(80, "TCP", 30080)], &[]);
    let health = health_check(&service, ClusterHealthCheck::Agent).unwrap();
    assert_eq!(
        (health.port.as_str(), health.interval, health.healthy),
        ("10256", 30, 3)
    );
    let health = health_check(&service, ClusterHealthCheck::TrafficPort).unwrap();
    assert_eq!(
        (health.protocol.as_str(), health.port.as_str(), health.path),
        ("TCP", "traffic-port", None)
    );
}

#[test]
fn tcp_and_udp_on_one_port_share_a_tcp_udp_target_group() {
    let lb = desired_lb(
        "lab",
        &mk_service(
            "Cluster",
            &[(53, "UDP", 30053), (53, "TCP", 30053), (80, "TCP", 30080)],
            &[],
        ),
        ClusterHealthCheck::Agent,
    )
    .unwrap();
    let protocols: Vec<_> = lb
        .target_groups
        .iter()
        .map(|t| (t.port, t.protocol.as_str()))
        .collect();
    assert_eq!(protocols, [(53, "TCP_UDP"), (80, "TCP")]);
    assert_ne!(lb.target_groups[0].name, lb.target_groups[1].name);
}

#[test]
fn annotations_set_the_thresholds_and_bad_values_name_the_annotation() {
    let service = mk_service(
        "Local",
        &[(80, "TCP", 30080)],
        &[
            (ann::AWS_HEALTHCHECK_INTERVAL, "20"),
            (ann::AWS_HEALTHCHECK_UNHEALTHY_THRESHOLD, "5"),
            (ann::AWS_INTERNAL, "true"),
        ],
    );
    let lb = desired_lb("lab", &service, ClusterHealthCheck::Agent).unwrap();
    assert!(lb.internal);
    assert_eq!(
        (
            lb.target_groups[0].health.interval,
            lb.target_groups[0].health.unhealthy
        ),
        (20, 5)
    );

    for (key, value) in [
        (ann::AWS_INTERNAL, "yes"),
        (ann::AWS_HEALTHCHECK_INTERVAL, "often"),
        (ann::AWS_HEALTHCHECK_HEALTHY_THRESHOLD, "1"),
        (ann::AWS_SUBNETS, "sub-1"),
        (ann::AWS_EIP_ALLOCATIONS, "1.2.3.4"),
    ] {
        let error = desired_lb(
            "lab",
            &mk_service("Local", &[(80, "TCP", 30080)], &[(key, value)]),
            ClusterHealthCheck::Agent,
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with(key), "{error}");
    }
}

#[test]
fn instance_ids_come_from_the_provider_id() {
    assert_eq!(instance_id("aws:///us-east-1a/i-0abc"), Some("i-0abc"));
    assert_eq!(instance_id("aws:///i-0abc"), Some("i-0abc"));
    assert_eq!(instance_id("gce://p/z/n"), None);
    assert_eq!(instance_id("aws:///us-east-1a/"), None);
    assert_eq!(instance_id(""), None);
}
