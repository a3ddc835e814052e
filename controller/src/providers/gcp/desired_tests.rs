use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::desired::*;
use crate::nodes::LbNode;
use crate::providers::ProviderError;

fn scope() -> Scope {
    Scope {
        project: "p".into(),
        region: "r".into(),
        network: "default".into(),
        node_tags: vec!["nodes".into()],
        cluster: "lab".into(),
    }
}

fn service(policy: &str, annotations: &[(&str, &str)]) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into()),
            annotations: Some(
                annotations
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            external_traffic_policy: Some(policy.into()),
            health_check_node_port: (policy == "Local").then_some(31000),
            ports: Some(vec![
                ServicePort {
                    port: 443,
                    ..Default::default()
                },
                ServicePort {
                    port: 80,
                    ..Default::default()
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn names_come_from_the_uid_cut_to_32_characters() {
    let name = lb_name("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
    assert_eq!(name, "a0f1e2d3c4b5a69788796a5b4c3d2e1f");
    assert_eq!(name.len(), 32);
}

#[test]
fn local_gets_its_own_check_and_cluster_the_shared_one() {
    let (lb, _) = desired_lb(&scope(), &service("Local", &[]), &[]).unwrap();
    assert_eq!(lb.health_check.name, lb.name);
    assert_eq!(lb.health_check.port, 31000);
    assert_eq!(
        (
            lb.health_check.interval,
            lb.health_check.timeout,
            lb.health_check.healthy,
            lb.health_check.unhealthy
        ),
        (8, 1, 1, 3)
    );
    assert_eq!(lb.port_range, "80-443");
    assert_eq!(lb.firewall.ports, ["443", "80"]);
    assert_eq!(lb.firewall.source_ranges, ["0.0.0.0/0"]);
    let (lb, _) = desired_lb(&scope(), &service("Cluster", &[]), &[]).unwrap();
    assert_eq!(lb.health_check.name, "k8s-lab-node");
    assert!(lb.health_check.shared);
    assert_eq!(lb.health_check.port, NODE_HEALTH_PORT);
    assert_eq!(lb.health_firewall.ports, ["10256"]);
}

#[test]
fn annotations_tune_the_check_and_bad_ones_name_the_annotation() {
    let (lb, _) = desired_lb(
        &scope(),
        &service("Local", &[(INTERVAL, "20"), (UNHEALTHY, "5")]),
        &[],
    )
    .unwrap();
    assert_eq!(
        (lb.health_check.interval, lb.health_check.unhealthy),
        (20, 5)
    );
    let err = desired_lb(
        &scope(),
        &service("Local", &[(TIMEOUT, "9"), (INTERVAL, "5")]),
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(err, ProviderError::Invalid { ref field, .. } if field == TIMEOUT),
        "{err}"
    );
    let err = desired_lb(&scope(), &service("Local", &[(HEALTHY, "x")]), &[]).unwrap_err();
    assert!(err.to_string().contains(HEALTHY), "{err}");
}

#[test]
fn instances_come_from_gce_provider_ids_and_others_are_warned() {
    let nodes = [
        LbNode {
            name: "b".into(),
            provider_id: "gce://p/us-central1-b/node-b".into(),
        },
        LbNode {
            name: "a".into(),
            provider_id: "gce://p/us-central1-a/node-a".into(),
        },
        LbNode {
            name: "c".into(),
            provider_id: "aws:///us-east-1a/i-1".into(),
        },
    ];
    let (urls, warnings) = instances(&nodes);
    assert_eq!(
        urls,
        [
            "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/instances/node-a",
            "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-b/instances/node-b",
        ]
    );
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("node c") && warnings[0].contains("spec.providerID"));
}

#[test]
fn descriptions_name_the_service_and_the_cluster() {
    let d = description("lab", &service("Cluster", &[]));
    assert_eq!(
        owner(&d),
        Some(("lab".into(), "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into()))
    );
    assert!(
        d.contains(r#""kubernetes.io/service-name":"default/web""#),
        "{d}"
    );
}
