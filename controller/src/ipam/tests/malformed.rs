//! Reading a `Service`: every malformed annotation or field is refused with its name and its
//! value quoted, and a well-formed one becomes the request the allocator expects.

use k8s_openapi::api::core::v1::{
    LoadBalancerIngress, LoadBalancerStatus, Service, ServicePort as K8sServicePort, ServiceSpec,
    ServiceStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use portico_api::IpFamily;

use super::*;

fn k8s_service(annotations: &[(&str, &str)], edit: impl FnOnce(&mut ServiceSpec)) -> Service {
    let mut spec = ServiceSpec {
        type_: Some("LoadBalancer".into()),
        ..ServiceSpec::default()
    };
    edit(&mut spec);
    Service {
        metadata: ObjectMeta {
            namespace: Some("shop".into()),
            name: Some("web".into()),
            labels: Some(labels(&[("app", "web")])),
            annotations: Some(labels(annotations)),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn read(service: &Service) -> Result<ServiceRequest, String> {
    ServiceRequest::from_service(service, &labels(&[("env", "prod")])).map_err(|e| e.to_string())
}

/// Annotations, a change to the spec, and what the error must say.
type MalformedCase = (
    &'static [(&'static str, &'static str)],
    fn(&mut ServiceSpec),
    &'static str,
);

#[test]
fn malformed_input_is_refused_naming_the_annotation_or_field_and_quoting_the_value() {
    let cases: [MalformedCase; 11] = [
        (
            &[("portico.dev/load-balancer-ips", "10.0.0.x")],
            |_| {},
            "annotation portico.dev/load-balancer-ips: \"10.0.0.x\" is not an IP address",
        ),
        (
            &[("portico.dev/load-balancer-ips", "10.0.0.1,,10.0.0.2")],
            |_| {},
            "annotation portico.dev/load-balancer-ips: \"10.0.0.1,,10.0.0.2\" has an empty entry",
        ),
        (
            &[("portico.dev/load-balancer-ips", "10.0.0.1, 10.0.0.2")],
            |_| {},
            "portico.dev/load-balancer-ips requests two IPv4 addresses (10.0.0.1 and 10.0.0.2)",
        ),
        (
            &[("portico.dev/address-pool", " ")],
            |_| {},
            "annotation portico.dev/address-pool: \" \" must name an AddressPool",
        ),
        (
            &[("portico.dev/allow-shared-ip", "")],
            |_| {},
            "annotation portico.dev/allow-shared-ip: \"\" must be a non-empty sharing key",
        ),
        (
            &[],
            |s| s.load_balancer_ip = Some("10.0.0.300".into()),
            "spec.loadBalancerIP: \"10.0.0.300\" is not an IP address",
        ),
        (
            &[("portico.dev/load-balancer-ips", "10.0.0.1")],
            |s| s.load_balancer_ip = Some("10.0.0.2".into()),
            "spec.loadBalancerIP 10.0.0.2 is not among the addresses of annotation portico.dev/load-balancer-ips: \"10.0.0.1\"",
        ),
        (
            &[],
            |s| s.ip_families = Some(vec!["IPv5".into()]),
            "spec.ipFamilies: \"IPv5\" is not one of IPv4, IPv6",
        ),
        (
            &[],
            |s| s.ip_family_policy = Some("DualStack".into()),
            "spec.ipFamilyPolicy: \"DualStack\" is not one of",
        ),
        (
            &[],
            |s| s.external_traffic_policy = Some("Global".into()),
            "spec.externalTrafficPolicy: \"Global\" is not one of Cluster, Local",
        ),
        (
            &[("portico.dev/load-balancer-ips", "10.0.0.1/32")],
            |_| {},
            "\"10.0.0.1/32\" is not an IP address",
        ),
    ];
    for (annotations, edit, expected) in cases {
        let message = read(&k8s_service(annotations, edit)).unwrap_err();
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
}

#[test]
fn malformed_input_errors_have_metric_labels() {
    let label = |annotations: &[(&str, &str)], edit: fn(&mut ServiceSpec)| {
        ServiceRequest::from_service(&k8s_service(annotations, edit), &BTreeMap::new())
            .unwrap_err()
            .label()
    };
    assert_eq!(
        label(&[("portico.dev/load-balancer-ips", "x")], |_| {}),
        "malformed_annotation"
    );
    assert_eq!(
        label(&[], |s| s.load_balancer_ip = Some("x".into())),
        "malformed_field"
    );
    assert_eq!(
        label(
            &[("portico.dev/load-balancer-ips", "1.1.1.1,2.2.2.2")],
            |_| {}
        ),
        "two_addresses_of_one_family"
    );
    let both = |s: &mut ServiceSpec| s.load_balancer_ip = Some("1.1.1.2".into());
    assert_eq!(
        label(&[("portico.dev/load-balancer-ips", "1.1.1.1")], both),
        "conflicting_requests"
    );
}

#[test]
fn well_formed_service_becomes_a_request() {
    let mut service = k8s_service(
        &[
            ("portico.dev/address-pool", "main"),
            ("portico.dev/load-balancer-ips", "10.0.0.5, 2001:db8::5"),
            ("portico.dev/allow-shared-ip", "front"),
        ],
        |s| {
            s.load_balancer_ip = Some("10.0.0.5".into());
            s.ip_families = Some(vec!["IPv6".into(), "IPv4".into()]);
            s.ip_family_policy = Some("RequireDualStack".into());
            s.external_traffic_policy = Some("Local".into());
            s.selector = Some(labels(&[("app", "web")]));
            s.ports = Some(vec![
                K8sServicePort {
                    port: 443,
                    ..K8sServicePort::default()
                },
                K8sServicePort {
                    port: 53,
                    protocol: Some("UDP".into()),
                    ..K8sServicePort::default()
                },
            ]);
        },
    );
    service.status = Some(ServiceStatus {
        load_balancer: Some(LoadBalancerStatus {
            ingress: Some(vec![
                LoadBalancerIngress {
                    ip: Some("10.0.0.5".into()),
                    ..LoadBalancerIngress::default()
                },
                LoadBalancerIngress {
                    hostname: Some("lb.example.com".into()),
                    ..LoadBalancerIngress::default()
                },
            ]),
        }),
        conditions: None,
    });
    let request = read(&service).unwrap();
    let expected = ServiceRequest {
        key: ServiceKey::new("shop", "web"),
        labels: labels(&[("app", "web")]),
        namespace_labels: labels(&[("env", "prod")]),
        pool: Some("main".into()),
        requested_ips: ips(&["10.0.0.5", "2001:db8::5"]),
        requested_by: RequestedBy::Annotation,
        sharing_key: Some("front".into()),
        ports: vec![ServicePort::new(443, "TCP"), ServicePort::new(53, "UDP")],
        traffic_policy: TrafficPolicy::Local,
        selector: labels(&[("app", "web")]),
        ip_families: vec![IpFamily::V6, IpFamily::V4],
        ip_family_policy: IpFamilyPolicy::RequireDualStack,
        current_ips: ips(&["10.0.0.5"]),
    };
    assert_eq!(request, expected);
}

#[test]
fn addresses_from_the_deprecated_field_say_so() {
    let request = read(&k8s_service(&[], |s| {
        s.load_balancer_ip = Some("10.0.0.9".into())
    }))
    .unwrap();
    assert_eq!(
        (request.requested_ips, request.requested_by),
        (ips(&["10.0.0.9"]), RequestedBy::LoadBalancerIp)
    );
}

#[test]
fn bare_service_defaults_to_cluster_single_stack_with_nothing_requested() {
    let request = read(&k8s_service(&[], |_| {})).unwrap();
    assert_eq!(
        (
            request.traffic_policy,
            request.ip_family_policy,
            request.pool,
            request.requested_ips
        ),
        (
            TrafficPolicy::Cluster,
            IpFamilyPolicy::SingleStack,
            None,
            vec![]
        )
    );
}
