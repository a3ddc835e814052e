//! The nftables backend's own promises: a partial transaction leaves the kernel exactly where a
//! full load of the same state does; other tables and iptables rules survive its syncs and its
//! cleanup; switching modes leaves no rules of the other mode behind.

use portico_agent::args::ProxyMode;
use portico_agent::dataplane::{
    DesiredState, Endpoint, IpFamily, Protocol, ServicePort, ServicePortKey, TrafficPolicy,
};
use portico_agent::nftables::{Command, Nft, NftError, NftablesBackend, Transaction};
use serde_json::Value;

use crate::helper::{Answer, EchoServer, connect_from};
use crate::in_both_modes;
use crate::services::{
    backend, mk_service, mk_slice, node_context, state, tag, with_lb_ip, with_local_policy,
};
use crate::topology::{
    CLIENT_IP, ECHO_PORT, LB_IP, NODE_IP, NODE_NAME, NODE_POD_GATEWAY, POD_A_IP, POD_B_IP,
    Topology, in_ns, output_in_ns, root_or_skip,
};

/// `nft -j list table ip portico` with what differs between equal tables left out: handles,
/// and the order of set elements (hash order, seeded per set).
fn table_listing(node: &str) -> Value {
    family_table_listing(node, "ip")
}

fn family_table_listing(node: &str, family: &str) -> Value {
    let text = output_in_ns(node, &["nft", "-j", "list", "table", family, "portico"]);
    let mut json: Value = serde_json::from_str(&text).expect("nft -j output");
    normalize(&mut json);
    json
}

fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("handle");
            for (key, inner) in map.iter_mut() {
                normalize(inner);
                if key == "elem"
                    && let Value::Array(items) = inner
                {
                    items.sort_by_key(|item| item.to_string());
                }
            }
        }
        Value::Array(items) => {
            items.iter_mut().for_each(normalize);
            // Objects of the table (chains, sets, rules) in a canonical order.
            items.sort_by_key(|item| item.to_string());
        }
        _ => {}
    }
}

#[tokio::test]
async fn a_partial_transaction_ends_where_a_full_load_of_the_same_state_does() {
    if !root_or_skip("a_partial_transaction_ends_where_a_full_load_of_the_same_state_does") {
        return;
    }
    let topology = Topology::new("nfeq");
    let fresh = Topology::new("nfeqf");
    let mut sticky = mk_service("sticky", "10.96.0.12", "ClusterIP", None);
    sticky.spec.as_mut().unwrap().session_affinity = Some("ClientIP".into());
    let mut ranged = with_lb_ip(
        with_local_policy(mk_service(
            "ranged",
            "10.96.0.11",
            "LoadBalancer",
            Some(30081),
        )),
        LB_IP,
    );
    ranged.spec.as_mut().unwrap().load_balancer_source_ranges = Some(vec!["203.0.113.0/24".into()]);
    let steps = [
        (
            vec![mk_service("web", "10.96.0.10", "NodePort", Some(30080))],
            vec![],
        ),
        (
            vec![
                mk_service("web", "10.96.0.10", "NodePort", Some(30080)),
                ranged.clone(),
                sticky.clone(),
            ],
            vec![
                mk_slice("web", &[(POD_A_IP, NODE_NAME), (POD_B_IP, "node-b")]),
                mk_slice("ranged", &[(POD_B_IP, "node-b")]),
                mk_slice("sticky", &[(POD_A_IP, NODE_NAME), (POD_B_IP, "node-b")]),
            ],
        ),
        (
            vec![ranged, sticky],
            vec![
                mk_slice("ranged", &[(POD_A_IP, NODE_NAME)]),
                mk_slice("sticky", &[(POD_B_IP, "node-b")]),
            ],
        ),
        (vec![], vec![]),
    ];
    let mut incremental = NftablesBackend::new(Some(&topology.node), &node_context());
    for (index, (services, slices)) in steps.iter().enumerate() {
        let desired = state(services, slices);
        let writes = portico_agent::dataplane::backend::Backend::sync(
            &mut incremental,
            &desired,
            &node_context(),
        )
        .await
        .expect("sync");
        if index > 0 {
            assert_eq!(writes, ["partial"], "step {index} is a partial transaction");
        }
        let mut full = NftablesBackend::new(Some(&fresh.node), &node_context());
        portico_agent::dataplane::backend::Backend::sync_full(&mut full, &desired, &node_context())
            .await
            .expect("full sync");
        assert_eq!(
            table_listing(&topology.node),
            table_listing(&fresh.node),
            "step {index}: partial and full differ; full text:\n{}",
            full.full_text(IpFamily::V4).unwrap_or_default()
        );
    }
    // Every step above (the first full, then partials) went to the kernel as one netlink batch,
    // not `nft -f`; the full loads it is compared with are netlink too, and
    // `a_netlink_full_load_equals_nft_reading_the_table_text` ties those to nft's own encoding.
    assert_eq!(incremental.netlink_transactions(), steps.len());
}

#[tokio::test]
async fn a_netlink_full_load_equals_nft_reading_the_table_text() {
    if !root_or_skip("a_netlink_full_load_equals_nft_reading_the_table_text") {
        return;
    }
    let topology = Topology::new("nfnl");
    let text = Topology::new("nfnlt");
    let mut sticky = mk_service("sticky", "10.96.0.12", "ClusterIP", None);
    sticky.spec.as_mut().unwrap().session_affinity = Some("ClientIP".into());
    let mut ranged = with_lb_ip(
        with_local_policy(mk_service(
            "ranged",
            "10.96.0.11",
            "LoadBalancer",
            Some(30081),
        )),
        LB_IP,
    );
    ranged.spec.as_mut().unwrap().load_balancer_source_ranges = Some(vec!["203.0.113.0/24".into()]);
    let desired = state(
        &[
            mk_service("web", "10.96.0.10", "NodePort", Some(30080)),
            mk_service("empty", "10.96.0.13", "NodePort", Some(30082)),
            ranged,
            sticky,
        ],
        &[
            mk_slice("web", &[(POD_A_IP, NODE_NAME), (POD_B_IP, "node-b")]),
            mk_slice("ranged", &[(POD_B_IP, "node-b")]),
            mk_slice("sticky", &[(POD_A_IP, NODE_NAME), (POD_B_IP, "node-b")]),
        ],
    );
    let mut nodeport_addresses = node_context();
    nodeport_addresses.nodeport_ips = Some(vec![NODE_IP.parse().unwrap()]);
    for node in [node_context(), nodeport_addresses] {
        let mut netlink = NftablesBackend::new(Some(&topology.node), &node);
        portico_agent::dataplane::backend::Backend::sync_full(&mut netlink, &desired, &node)
            .await
            .expect("full sync");
        assert_eq!(
            netlink.netlink_transactions(),
            1,
            "the full load went as netlink"
        );
        let table = netlink.full_text(IpFamily::V4).expect("an IPv4 table");
        portico_agent::nftables::Nft::new(Some(&text.node))
            .apply(&table)
            .await
            .expect("nft -f of the same table");
        assert_eq!(
            table_listing(&topology.node),
            table_listing(&text.node),
            "netlink and nft -f differ; table text:\n{table}"
        );
    }
}

/// An IPv6 Service port for the table comparison below (no packets: the listing is compared).
fn v6_port(name: &str, cluster_ip: &str, endpoints: &[(&str, &str)]) -> ServicePort {
    ServicePort {
        key: ServicePortKey {
            family: IpFamily::V6,
            namespace: "default".into(),
            name: name.into(),
            port_name: "http".into(),
            protocol: Protocol::Tcp,
        },
        cluster_ip: cluster_ip.parse().unwrap(),
        port: 80,
        node_port: None,
        external_ips: vec![],
        load_balancer_ips: vec![],
        load_balancer_source_ranges: vec![],
        external_policy: TrafficPolicy::Cluster,
        internal_policy: TrafficPolicy::Cluster,
        affinity_timeout_seconds: None,
        health_check_node_port: None,
        endpoints: endpoints
            .iter()
            .map(|(ip, node)| Endpoint {
                ip: ip.parse().unwrap(),
                port: 8080,
                node_name: Some((*node).into()),
                ready: true,
                serving: true,
                terminating: false,
            })
            .collect(),
    }
}

#[tokio::test]
async fn an_ipv6_netlink_full_load_equals_nft_reading_the_table_text() {
    if !root_or_skip("an_ipv6_netlink_full_load_equals_nft_reading_the_table_text") {
        return;
    }
    let topology = Topology::new("nfnl6");
    let text = Topology::new("nfnl6t");
    let mut node = node_context();
    node.node_ips.push("fd00:18::10".parse().unwrap());
    node.pod_cidrs.push("fd00:244::/64".parse().unwrap());
    let mut web = v6_port(
        "web",
        "fd00:96::10",
        &[("fd00:244::5", NODE_NAME), ("fd00:245::6", "node-b")],
    );
    web.node_port = Some(30080);
    let mut ranged = v6_port("ranged", "fd00:96::11", &[("fd00:245::7", "node-b")]);
    ranged.node_port = Some(30081);
    ranged.load_balancer_ips = vec!["fd00:19::1".parse().unwrap()];
    ranged.load_balancer_source_ranges = vec!["fd00:203::/64".parse().unwrap()];
    ranged.external_policy = TrafficPolicy::Local;
    let mut sticky = v6_port(
        "sticky",
        "fd00:96::12",
        &[("fd00:244::5", NODE_NAME), ("fd00:245::6", "node-b")],
    );
    sticky.affinity_timeout_seconds = Some(10800);
    let mut empty = v6_port("empty", "fd00:96::13", &[]);
    empty.node_port = Some(30082);
    let mut desired = DesiredState::default();
    for port in [web, ranged, sticky, empty] {
        desired.insert(port);
    }
    let mut netlink = NftablesBackend::new(Some(&topology.node), &node);
    portico_agent::dataplane::backend::Backend::sync_full(&mut netlink, &desired, &node)
        .await
        .expect("full sync");
    // The (empty) IPv4 table and the IPv6 one.
    assert_eq!(netlink.netlink_transactions(), 2, "both went as netlink");
    let table = netlink.full_text(IpFamily::V6).expect("an IPv6 table");
    Nft::new(Some(&text.node))
        .apply(&table)
        .await
        .expect("nft -f of the same table");
    assert_eq!(
        family_table_listing(&topology.node, "ip6"),
        family_table_listing(&text.node, "ip6"),
        "netlink and nft -f differ; table text:\n{table}"
    );
}

#[tokio::test]
async fn a_transaction_the_kernel_refuses_over_netlink_is_tried_as_nft_text() {
    if !root_or_skip("a_transaction_the_kernel_refuses_over_netlink_is_tried_as_nft_text") {
        return;
    }
    let topology = Topology::new("nfref");
    let nft = Nft::new(Some(&topology.node));
    // Encodable, but refused: no such table or chain.
    let transaction = Transaction {
        family: IpFamily::V4,
        commands: vec![Command::AddRule {
            chain: "no-such-chain".into(),
            rule: "goto elsewhere".into(),
        }],
    };
    let error = nft
        .apply_transaction(&transaction, || transaction.text())
        .await
        .expect_err("refused both ways");
    // nft's own error: the text was tried after the kernel refused the batch.
    assert!(matches!(error, NftError::Failed { .. }), "{error}");
}

#[tokio::test]
async fn foreign_tables_and_iptables_rules_survive_and_cleanup_removes_only_portico() {
    if !root_or_skip("foreign_tables_and_iptables_rules_survive_and_cleanup_removes_only_portico") {
        return;
    }
    let topology = Topology::new("nffr");
    let node = topology.node.as_str();
    in_ns(node, &["nft", "add table inet foreign"]);
    in_ns(
        node,
        &[
            "nft",
            "add chain inet foreign input { type filter hook input priority 0; }",
        ],
    );
    in_ns(
        node,
        &["nft", "add rule inet foreign input ip saddr 192.0.2.2 drop"],
    );
    in_ns(
        node,
        &[
            "iptables",
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            "192.0.2.9",
            "-j",
            "ACCEPT",
        ],
    );
    let foreign_intact = |when: &str| {
        let ruleset = output_in_ns(node, &["nft", "list", "table", "inet", "foreign"]);
        assert!(
            ruleset.contains("ip saddr 192.0.2.2 drop"),
            "{when}:\n{ruleset}"
        );
        let saved = output_in_ns(node, &["iptables-save", "-t", "nat"]);
        assert!(
            saved.contains("-A POSTROUTING -s 192.0.2.9/32 -j ACCEPT"),
            "{when}:\n{saved}"
        );
    };
    let _echo = EchoServer::start(&topology.pod_a, &format!("0.0.0.0:{ECHO_PORT}"));
    let mut nft = backend(ProxyMode::Nftables, node);
    let services = [mk_service("web", "10.96.0.10", "NodePort", Some(30080))];
    nft.sync(&state(&services, &[]), &node_context())
        .await
        .expect("full sync");
    foreign_intact("after a full sync");
    let slices = [mk_slice("web", &[(POD_A_IP, NODE_NAME)])];
    let writes = nft
        .sync(&state(&services, &slices), &node_context())
        .await
        .expect("partial");
    assert_eq!(writes, ["partial"]);
    foreign_intact("after a partial sync");
    assert_eq!(
        connect_from(&topology.client, &format!("{NODE_IP}:30080")),
        Answer::Peer(NODE_POD_GATEWAY.into())
    );
    // The periodic check finds the table in place (its netlink `create table` meets EEXIST)
    // and writes nothing; a deleted table it finds gone and writes again.
    let writes = nft
        .check(&state(&services, &slices), &node_context())
        .await
        .expect("check");
    assert!(writes.is_empty(), "{writes:?}");
    foreign_intact("after a check");
    in_ns(node, &["nft", "delete table ip portico"]);
    let writes = nft
        .check(&state(&services, &slices), &node_context())
        .await
        .expect("check");
    assert_eq!(writes, ["repair"]);
    assert_eq!(
        connect_from(&topology.client, &format!("{NODE_IP}:30080")),
        Answer::Peer(NODE_POD_GATEWAY.into())
    );
    // The same check when nothing changed since (no desired state): in place, then rewritten
    // from what was last written.
    let writes = nft.check_unchanged().await.expect("check");
    assert_eq!(writes, Some(vec![]));
    in_ns(node, &["nft", "delete table ip portico"]);
    let writes = nft.check_unchanged().await.expect("check");
    assert_eq!(writes, Some(vec!["repair"]));
    assert_eq!(
        connect_from(&topology.client, &format!("{NODE_IP}:30080")),
        Answer::Peer(NODE_POD_GATEWAY.into())
    );
    nft.cleanup().await.expect("cleanup");
    let tables = output_in_ns(node, &["nft", "list", "tables"]);
    assert!(!tables.contains("portico"), "{tables}");
    foreign_intact("after cleanup");
}

#[tokio::test]
async fn switching_modes_leaves_no_rules_of_the_other_mode() {
    if !root_or_skip("switching_modes_leaves_no_rules_of_the_other_mode") {
        return;
    }
    let topology = Topology::new("nfsw");
    let node = topology.node.as_str();
    let _echo = EchoServer::start(&topology.pod_a, &format!("0.0.0.0:{ECHO_PORT}"));
    let services = [mk_service("web", "10.96.0.10", "NodePort", Some(30080))];
    let slices = [mk_slice("web", &[(POD_A_IP, NODE_NAME)])];
    let desired = state(&services, &slices);
    let portico_in_iptables = || output_in_ns(node, &["iptables-save"]).contains("PORTICO-");
    let portico_table = || output_in_ns(node, &["nft", "list", "tables"]).contains("portico");
    for (mode, other_gone) in [
        (ProxyMode::Iptables, "no nftables table"),
        (ProxyMode::Nftables, "no iptables chain"),
        (ProxyMode::Iptables, "no nftables table"),
    ] {
        backend(mode, node)
            .sync(&desired, &node_context())
            .await
            .expect("sync");
        let (ours, theirs) = match mode {
            ProxyMode::Nftables => (portico_table(), portico_in_iptables()),
            _ => (portico_in_iptables(), portico_table()),
        };
        assert!(ours && !theirs, "{mode:?}: {other_gone} expected");
        assert_eq!(
            connect_from(&topology.client, &format!("{NODE_IP}:30080")),
            Answer::Peer(NODE_POD_GATEWAY.into()),
            "{mode:?}"
        );
    }
}

in_both_modes!(load_balancer_source_ranges_admit_only_the_listed_sources);
async fn load_balancer_source_ranges_admit_only_the_listed_sources(mode: ProxyMode) {
    let topology = Topology::new(&tag(mode, "lsr"));
    let _echo = EchoServer::start(&topology.pod_a, &format!("0.0.0.0:{ECHO_PORT}"));
    let mut backend = backend(mode, &topology.node);
    for (range, expected) in [
        (
            format!("{CLIENT_IP}/32"),
            Answer::Peer(NODE_POD_GATEWAY.into()),
        ),
        ("203.0.113.0/24".to_string(), Answer::Timeout),
    ] {
        let mut service = with_lb_ip(
            mk_service("web", "10.96.0.10", "LoadBalancer", Some(30080)),
            LB_IP,
        );
        service.spec.as_mut().unwrap().load_balancer_source_ranges = Some(vec![range.clone()]);
        let slices = [mk_slice("web", &[(POD_A_IP, NODE_NAME)])];
        backend
            .sync(&state(&[service], &slices), &node_context())
            .await
            .expect("sync");
        assert_eq!(
            connect_from(&topology.client, &format!("{LB_IP}:80")),
            expected,
            "source range {range}"
        );
    }
}

in_both_modes!(client_ip_affinity_keeps_a_client_on_one_endpoint);
async fn client_ip_affinity_keeps_a_client_on_one_endpoint(mode: ProxyMode) {
    let topology = Topology::new(&tag(mode, "aff"));
    // Two endpoints that answer with different words: the answer tells which one was reached.
    let _a = EchoServer::start(&topology.pod_a, &format!("0.0.0.0:{ECHO_PORT}"));
    let _b = EchoServer::start(&topology.pod_b, &format!("0.0.0.0:{ECHO_PORT}"));
    let mut service = mk_service("web", "10.96.0.10", "NodePort", Some(30080));
    service.spec.as_mut().unwrap().session_affinity = Some("ClientIP".into());
    let slices = [mk_slice(
        "web",
        &[(POD_A_IP, NODE_NAME), (POD_B_IP, NODE_NAME)],
    )];
    backend(mode, &topology.node)
        .sync(&state(&[service], &slices), &node_context())
        .await
        .expect("sync");
    // The echo servers answer with the peer they saw, which is the node either way (Cluster
    // policy masquerades); the conntrack table tells which endpoint each connection reached.
    let mut reached = std::collections::BTreeSet::new();
    for _ in 0..8 {
        let answer = connect_from(&topology.client, &format!("{NODE_IP}:30080"));
        assert_eq!(answer, Answer::Peer(NODE_POD_GATEWAY.into()));
        let flows = output_in_ns(
            &topology.node,
            &["conntrack", "-L", "-p", "tcp", "--orig-port-dst", "30080"],
        );
        for endpoint in [POD_A_IP, POD_B_IP] {
            if flows.contains(&format!("src={endpoint} ")) {
                reached.insert(endpoint);
            }
        }
    }
    assert_eq!(
        reached.len(),
        1,
        "every connection of the client reached one endpoint: {reached:?}"
    );
}
