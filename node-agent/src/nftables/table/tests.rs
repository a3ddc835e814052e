use std::net::IpAddr;

use super::*;
use crate::dataplane::{Endpoint, Protocol, ServicePort, TrafficPolicy};
use crate::nftables::pick::{MAPPED_ENDPOINTS_MAX, bucket_offset};

fn node() -> NodeContext {
    NodeContext {
        node_name: "node-a".into(),
        node_ips: vec!["198.18.0.10".parse().unwrap()],
        pod_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
        nodeport_ips: None,
    }
}

fn endpoint(ip: &str, node: &str) -> Endpoint {
    Endpoint {
        ip: ip.parse().unwrap(),
        port: 8080,
        node_name: Some(node.into()),
        ready: true,
        serving: true,
        terminating: false,
    }
}

fn port(index: u32, endpoints: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        key: ServicePortKey {
            family: IpFamily::V4,
            namespace: "ns".into(),
            name: format!("svc{index}"),
            port_name: "http".into(),
            protocol: Protocol::Tcp,
        },
        cluster_ip: IpAddr::from([10, 96, 0, u8::try_from(index).unwrap()]),
        port: 80,
        node_port: Some(30000 + u16::try_from(index).unwrap()),
        external_ips: vec![],
        load_balancer_ips: vec![],
        load_balancer_source_ranges: vec![],
        external_policy: TrafficPolicy::Cluster,
        internal_policy: TrafficPolicy::Cluster,
        affinity_timeout_seconds: None,
        health_check_node_port: None,
        endpoints,
    }
}

fn state(ports: Vec<ServicePort>) -> DesiredState {
    let mut state = DesiredState::default();
    for port in ports {
        state.insert(port);
    }
    state
}

fn many(changed: Option<u32>) -> DesiredState {
    state(
        (1..100)
            .map(|i| {
                let mut eps = vec![endpoint(&format!("10.245.0.{i}"), "node-b")];
                if changed == Some(i) {
                    eps.push(endpoint("10.245.1.1", "node-b"));
                }
                port(i, eps)
            })
            .collect(),
    )
}

#[test]
fn the_first_render_and_a_new_node_context_are_full() {
    let mut cache = TableCache::new(&node(), IpFamily::V4);
    assert_eq!(cache.update(&many(None), &node()), Update::Full);
    assert_eq!(cache.update(&many(None), &node()), Update::Unchanged);
    let mut moved = node();
    moved.pod_cidrs = vec!["10.250.0.0/16".parse().unwrap()];
    assert_eq!(cache.update(&many(None), &moved), Update::Full);
}

#[test]
fn an_added_endpoint_is_only_endpoint_map_and_hairpin_elements() {
    let mut cache = TableCache::new(&node(), IpFamily::V4);
    cache.update(&many(None), &node());
    let Update::Partial(transaction) = cache.update(&many(Some(42)), &node()) else {
        panic!("a partial update");
    };
    // No rule or chain: the kernel then commits without re-validating the whole table.
    for command in &transaction.commands {
        match command {
            Command::AddElements { set, .. } | Command::DeleteElements { set, .. } => assert!(
                [
                    names::CLUSTER_IP_ENDPOINTS,
                    names::CLUSTER_PORT_ENDPOINTS,
                    names::HAIRPIN
                ]
                .contains(&set.as_str()),
                "{command:?}"
            ),
            other => panic!("only elements: {other:?}"),
        }
    }
    let text = transaction.text();
    // One endpoint owned bucket 0; two own buckets 1 and 2, by cluster IP and by node port.
    assert!(text.contains("10.96.0.42 . tcp . 80 . 0"), "{text}");
    assert!(
        text.contains("10.96.0.42 . tcp . 80 . 1 : 10.245.0.42 . 8080"),
        "{text}"
    );
    assert!(
        text.contains("10.96.0.42 . tcp . 80 . 2 : 10.245.1.1 . 8080"),
        "{text}"
    );
    assert!(
        text.contains("tcp . 30042 . 2 : 10.245.1.1 . 8080"),
        "{text}"
    );
    assert!(text.contains("10.245.1.1 . 10.245.1.1"), "{text}");
}

#[test]
fn lists_of_each_length_own_disjoint_buckets_and_long_or_sticky_lists_keep_rules() {
    let buckets: Vec<std::ops::Range<usize>> = (1..=MAPPED_ENDPOINTS_MAX)
        .map(|count| bucket_offset(count)..bucket_offset(count) + count)
        .collect();
    for pair in buckets.windows(2) {
        assert_eq!(pair[0].end, pair[1].start, "{buckets:?}");
    }
    let long: Vec<Endpoint> = (0..=MAPPED_ENDPOINTS_MAX)
        .map(|i| endpoint(&format!("10.245.3.{i}"), "node-b"))
        .collect();
    let mut sticky = port(2, vec![endpoint("10.245.0.2", "node-b")]);
    sticky.affinity_timeout_seconds = Some(10800);
    let mut cache = TableCache::new(&node(), IpFamily::V4);
    cache.update(&state(vec![port(1, long), sticky]), &node());
    let text = cache.full_text();
    assert!(
        text.contains("numgen random mod 17 0 meta l4proto tcp dnat"),
        "{text}"
    );
    assert!(text.contains("goto endpoint-"), "{text}");
    assert!(!text.contains("10.96.0.1 . tcp . 80 . "), "{text}");
    assert!(!text.contains("10.96.0.2 . tcp . 80 . "), "{text}");
}

#[test]
fn a_removed_service_loses_its_elements_before_its_chains() {
    let mut cache = TableCache::new(&node(), IpFamily::V4);
    cache.update(
        &state(vec![port(1, vec![endpoint("10.245.0.1", "node-b")])]),
        &node(),
    );
    let Update::Partial(transaction) = cache.update(&DesiredState::default(), &node()) else {
        panic!("a partial update");
    };
    let text = transaction.text();
    let element = text
        .find("delete element ip portico service-ips")
        .expect(&text);
    let flush = text.find("flush chain").expect(&text);
    let delete = text.find("delete chain").expect(&text);
    assert!(element < flush && flush < delete, "{text}");
}

#[test]
fn no_endpoints_reject_and_local_without_local_endpoints_drops() {
    let mut local = port(2, vec![endpoint("10.245.0.2", "node-b")]);
    local.external_policy = TrafficPolicy::Local;
    let mut cache = TableCache::new(&node(), IpFamily::V4);
    cache.update(&state(vec![port(1, vec![]), local]), &node());
    let text = cache.full_text();
    assert!(
        text.contains("10.96.0.1 . tcp . 80 : goto reject-chain"),
        "{text}"
    );
    assert!(text.contains("tcp . 30001 : goto reject-chain"), "{text}");
    assert!(text.contains("tcp . 30002 : drop"), "{text}");
    // The ClusterIP of the Local Service still reaches its remote endpoint.
    assert!(
        text.contains("10.96.0.2 . tcp . 80 : goto service-"),
        "{text}"
    );
}

#[test]
fn an_update_with_removals_additions_and_changes_ends_where_a_fresh_render_does() {
    let mut cache = TableCache::new(&node(), IpFamily::V4);
    cache.update(&many(None), &node());
    // Ports gone at the start, the middle and the end of the key order, one changed, one new.
    let mut next = many(Some(42));
    for gone in [1, 50, 99] {
        let key = port(gone, vec![]).key;
        next.ports.remove(&key);
    }
    next.insert(port(200, vec![endpoint("10.245.2.1", "node-b")]));
    let Update::Partial(transaction) = cache.update(&next, &node()) else {
        panic!("a partial update");
    };
    let text = transaction.text();
    // svc42's endpoint added is only endpoint map elements.
    for touched in [
        "/svc1/",
        "/svc50/",
        "/svc99/",
        "10.96.0.42 . tcp . 80 . 2",
        "/svc200/",
    ] {
        assert!(text.contains(touched), "{touched} in {text}");
    }
    assert!(!text.contains("/svc2/"), "{text}");
    let mut fresh = TableCache::new(&node(), IpFamily::V4);
    fresh.update(&next, &node());
    assert_eq!(cache.full_text(), fresh.full_text());
}
