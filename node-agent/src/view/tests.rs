//! Views keep what the dataplane reads, parsed, and nothing else.

use std::sync::Arc;

use super::*;
use crate::dataplane::slice_problems::ProblemReason;
use crate::dataplane::{IpFamily, Protocol, TrafficPolicy};
use crate::trim::tests::{real_service, real_slice};

#[test]
fn a_service_view_holds_the_parsed_fields_the_dataplane_reads() {
    let view = ServiceView::from(&real_service());
    let ip = |s: &str| -> std::net::IpAddr { s.parse().unwrap() };
    assert_eq!((&*view.namespace, &*view.name), ("shop", "web"));
    assert_eq!(
        view.uid.as_deref(),
        Some("u-1"),
        "Events still name the Service"
    );
    assert_eq!(view.cluster_ips, [ip("10.96.0.10")]);
    // ipMode Proxy is left out: the node must not capture that VIP.
    assert_eq!(view.load_balancer_ips, [ip("198.19.0.1")]);
    assert_eq!(view.external_ips, [ip("192.0.2.7")]);
    assert_eq!(view.source_ranges, ["203.0.113.0/24".parse().unwrap()]);
    assert_eq!(view.external_policy, TrafficPolicy::Local);
    assert_eq!(view.affinity_timeout_seconds, Some(60));
    assert_eq!(view.health_check_node_port, Some(32000));
    assert_eq!(
        view.ports,
        [PortView {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: 80,
            node_port: Some(31000),
        }]
    );
    let reference = view.object_ref();
    assert_eq!(
        (reference.kind.as_deref(), reference.uid.as_deref()),
        (Some("Service"), Some("u-1"))
    );
}

#[test]
fn a_slice_view_keeps_servable_endpoints_and_the_slices_problems() {
    let view = SliceView::from(&real_slice());
    assert_eq!(view.service.as_deref(), Some("web"));
    assert_eq!(view.family, Some(IpFamily::V4));
    assert_eq!(view.ports.len(), 1);
    assert_eq!(view.ports[0].port, Some(8080));
    // "not-an-ip" cannot be served: it is left out, and said once as a problem.
    let endpoints: Vec<_> = (view.endpoints.iter())
        .map(|e| {
            (
                e.ip.to_string(),
                e.node.as_deref(),
                e.ready,
                e.serving,
                e.terminating,
            )
        })
        .collect();
    assert_eq!(
        endpoints,
        [
            ("10.244.1.5".into(), Some("node-a"), true, true, false),
            ("10.244.2.5".into(), Some("node-b"), false, true, true),
        ]
    );
    let problems = view
        .problems
        .as_deref()
        .expect("the invalid address is a problem");
    assert_eq!(problems.version, "43");
    assert_eq!(
        problems
            .problems
            .iter()
            .map(|p| p.reason)
            .collect::<Vec<_>>(),
        [ProblemReason::InvalidAddress]
    );
}

#[test]
fn node_names_and_namespaces_are_shared_between_slices() {
    let mut strings = Interner::default();
    let mut other = real_slice();
    other.metadata.name = Some("web-fghij".into());
    let first = SliceView::project(&real_slice(), &mut strings);
    let second = SliceView::project(&other, &mut strings);
    let node_a = |view: &SliceView| view.endpoints[0].node.clone().unwrap();
    assert!(Arc::ptr_eq(&node_a(&first), &node_a(&second)));
    assert!(Arc::ptr_eq(&first.namespace, &second.namespace));
}

#[test]
fn unserved_objects_keep_no_ports_or_endpoints() {
    let mut fqdn = real_slice();
    fqdn.address_type = "FQDN".into();
    let view = SliceView::from(&fqdn);
    assert!(view.ports.is_empty() && view.endpoints.is_empty());
    let mut external = real_service();
    external.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
    let view = ServiceView::from(&external);
    assert!(view.cluster_ips.is_empty() && view.ports.is_empty());
}
