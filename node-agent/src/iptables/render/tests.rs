//! Whole rendered dumps for small cases, one behaviour each (kube-proxy's proxier tests compare
//! whole dumps too, so a stray or missing rule anywhere fails the test).

use std::net::IpAddr;

use super::*;
use crate::dataplane::{Endpoint, Protocol, ServicePort, ServicePortKey, TrafficPolicy};
use crate::iptables::incremental::RenderCache;
use crate::iptables::ruleset::ExtraLines;

pub(crate) const NODE: &str = "node-a";

pub(crate) fn node() -> NodeContext {
    NodeContext {
        node_name: NODE.into(),
        node_ips: vec!["198.18.0.10".parse().unwrap()],
        pod_cidrs: vec!["10.244.0.0/16".parse().unwrap()],
        nodeport_ips: None,
    }
}

/// A ClusterIP Service port `ns1/svc1:p80` (TCP 80 on 10.96.0.10) without endpoints.
pub(crate) fn mk_port(name: &str, cluster_ip: &str) -> ServicePort {
    let ip: IpAddr = cluster_ip.parse().unwrap();
    ServicePort {
        key: ServicePortKey {
            family: IpFamily::of(&ip),
            namespace: "ns1".into(),
            name: name.into(),
            port_name: "p80".into(),
            protocol: Protocol::Tcp,
        },
        cluster_ip: ip,
        port: 80,
        node_port: None,
        external_ips: vec![],
        load_balancer_ips: vec![],
        load_balancer_source_ranges: vec![],
        external_policy: TrafficPolicy::Cluster,
        internal_policy: TrafficPolicy::Cluster,
        affinity_timeout_seconds: None,
        health_check_node_port: None,
        endpoints: vec![],
    }
}

/// A ready endpoint on port 8080 of `node`.
pub(crate) fn mk_endpoint(ip: &str, node: &str) -> Endpoint {
    Endpoint {
        ip: ip.parse().unwrap(),
        port: 8080,
        node_name: Some(node.into()),
        ready: true,
        serving: true,
        terminating: false,
    }
}

pub(crate) fn terminating(mut endpoint: Endpoint) -> Endpoint {
    endpoint.ready = false;
    endpoint.serving = true;
    endpoint.terminating = true;
    endpoint
}

/// The expected IPv4 rule set: the fixed chains plus `listing` (iptables-save lines, `:CHAIN`
/// for a chain without rules), with `$SVC`, `$SVL`, `$EXT`, `$FW` and `$SEP7` (the SEP chain of
/// 10.244.0.7:8080) standing for the chains of `ns1/svc1:p80` over `protocol`.
fn expected(protocol: Protocol, listing: &str) -> String {
    expected_in(IpFamily::V4, protocol, listing)
}

/// The hairpin rule's BPF program: "source address == destination address" of each family's
/// IP header (`ld [src]; tax; ld [dst]; jeq x`, word by word; then return 1, else 0).
const HAIRPIN_V4: &str = "6,32 0 0 12,7 0 0 0,32 0 0 16,29 0 1 0,6 0 0 1,6 0 0 0";
const HAIRPIN_V6: &str = "18,32 0 0 8,7 0 0 0,32 0 0 24,29 0 13 0,32 0 0 12,7 0 0 0,32 0 0 28,29 0 9 0,\
                          32 0 0 16,7 0 0 0,32 0 0 32,29 0 5 0,32 0 0 20,7 0 0 0,32 0 0 36,29 0 1 0,\
                          6 0 0 1,6 0 0 0";

fn expected_in(family: IpFamily, protocol: Protocol, listing: &str) -> String {
    let (hash, sep7) = match protocol {
        Protocol::Tcp => ("XPGD46QRK7WJZT7O", "WUFPZIJA6ALYN5XD"),
        Protocol::Udp => ("OJWW7NSBVZTDHXNW", "GG4QURTZPQHOO7OE"),
        Protocol::Sctp => ("GFCIFIA5VTFSTMSM", "TCAKMOS2N2LKBSIQ"),
    };
    let listing = listing
        .replace("$SVC", &format!("PORTICO-SVC-{hash}"))
        .replace("$SVL", &format!("PORTICO-SVL-{hash}"))
        .replace("$EXT", &format!("PORTICO-EXT-{hash}"))
        .replace("$FW", &format!("PORTICO-FW-{hash}"))
        .replace("$SEP7", &format!("PORTICO-SEP-{sep7}"));
    let mut set = RuleSet::default();
    let hairpin = match family {
        IpFamily::V4 => HAIRPIN_V4,
        IpFamily::V6 => HAIRPIN_V6,
    };
    let fixed = format!(
        r#"nat -A PORTICO-MARK-MASQ -j MARK --or-mark 0x4000
nat -A PORTICO-POSTROUTING -m conntrack --ctstate DNAT -m bpf --bytecode "{hairpin}" -m comment --comment "portico hairpin: a pod reached itself through a Service" -j PORTICO-MARK-MASQ
nat -A PORTICO-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
nat -A PORTICO-POSTROUTING -j MARK --xor-mark 0x4000
nat -A PORTICO-POSTROUTING -m comment --comment "portico service traffic requiring SNAT" -j MASQUERADE --random-fully
nat :PORTICO-NODEPORTS
filter :PORTICO-SERVICES
filter :PORTICO-EXTERNAL-SERVICES
filter :PORTICO-NODEPORTS
filter :PORTICO-FIREWALL"#
    );
    for line in fixed
        .lines()
        .chain(listing.lines())
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        let (table, line) = line.split_once(' ').expect("table first");
        let chains = set.chains_mut(if table == "nat" {
            Table::Nat
        } else {
            Table::Filter
        });
        if let Some(chain) = line.strip_prefix(':') {
            chains.entry(chain.to_string()).or_default();
        } else {
            let (chain, rule) = line
                .strip_prefix("-A ")
                .expect("-A line")
                .split_once(' ')
                .expect("rule");
            chains
                .entry(chain.to_string())
                .or_default()
                .push(rule.to_string());
        }
    }
    let services = set.nat.entry(names::SERVICES.to_string()).or_default();
    services.push(
        r#"-m comment --comment "portico service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j PORTICO-NODEPORTS"#.into(),
    );
    set.dump()
}

fn dump(ports: Vec<ServicePort>) -> String {
    dump_for(ports, &node())
}

fn dump_for(ports: Vec<ServicePort>, node: &NodeContext) -> String {
    let mut state = DesiredState::default();
    for port in ports {
        state.insert(port);
    }
    let family = state
        .ports
        .values()
        .next()
        .map_or(IpFamily::V4, |port| port.key.family);
    render(&state, node, family).dump()
}

fn svc1() -> ServicePort {
    mk_port("svc1", "10.96.0.10")
}

fn with_node_port(mut port: ServicePort) -> ServicePort {
    port.node_port = Some(30080);
    port
}

fn with_lb(mut port: ServicePort) -> ServicePort {
    port.node_port = Some(30080);
    port.load_balancer_ips = vec!["198.18.0.200".parse().unwrap()];
    port
}

fn local(mut port: ServicePort) -> ServicePort {
    port.external_policy = TrafficPolicy::Local;
    port.health_check_node_port = Some(31000);
    port
}

fn endpoints(mut port: ServicePort, endpoints: Vec<Endpoint>) -> ServicePort {
    port.endpoints = endpoints;
    port
}

fn remote() -> Endpoint {
    mk_endpoint("10.244.1.5", "node-b")
}

fn on_this_node() -> Endpoint {
    mk_endpoint("10.244.0.7", NODE)
}

/// The table of behaviours: (case, Service ports, expected listing).
#[test]
fn rendered_rules_match_kube_proxy_semantics() {
    let cases: Vec<(&str, ServicePort, &str)> = vec![
        (
            "cluster IP: remote endpoints DNAT in place, a local one through a hairpin SEP chain",
            endpoints(svc1(), vec![remote(), on_this_node()]),
            r#"nat -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A
             nat -A PORTICO-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j $SVC
             nat -A $SVC ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j PORTICO-MARK-MASQ
             nat -A $SVC -p tcp -m comment --comment "ns1/svc1:p80 -> 10.244.1.5:8080" -m statistic --mode random --probability 0.5000000000 -m tcp -j DNAT --to-destination 10.244.1.5:8080
             nat -A $SVC -m comment --comment "ns1/svc1:p80 -> 10.244.0.7:8080" -j $SEP7
             nat -A $SEP7 -s 10.244.0.7/32 -m comment --comment "ns1/svc1:p80" -j PORTICO-MARK-MASQ
             nat -A $SEP7 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination 10.244.0.7:8080"#,
        ),
        (
            "no endpoints: REJECT the cluster IP and the node port in filter, nothing in nat",
            with_node_port(svc1()),
            r#"filter -A PORTICO-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp --dport 80 -j REJECT
             filter -A PORTICO-EXTERNAL-SERVICES -p tcp -m comment --comment "ns1/svc1:p80 has no endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30080 -j REJECT"#,
        ),
        (
            "node port, Cluster policy: EXT marks for masquerade, then the SVC chain",
            endpoints(with_node_port(svc1()), vec![remote()]),
            r#"nat -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A
             nat -A PORTICO-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j $SVC
             nat -A PORTICO-NODEPORTS -p tcp -m tcp --dport 30080:30143 -j PORTICO-NPS-TCP-30080
             nat -A PORTICO-NPS-TCP-30080 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 30080 -j $EXT
             nat -A $EXT -m comment --comment "masquerade traffic for ns1/svc1:p80 external destinations" -j PORTICO-MARK-MASQ
             nat -A $EXT -j $SVC
             nat -A $SVC ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j PORTICO-MARK-MASQ
             nat -A $SVC -p tcp -m comment --comment "ns1/svc1:p80 -> 10.244.1.5:8080" -m tcp -j DNAT --to-destination 10.244.1.5:8080"#,
        ),
        (
            "LB IP, Local policy with a local endpoint: pods short-circuit, the node masquerades, the rest stay local",
            local(endpoints(with_lb(svc1()), vec![remote(), on_this_node()])),
            r#"nat -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A
             nat -A PORTICO-SERVICES -d 0.0.0.200/0.0.0.255 -j PORTICO-SVCS-C8
             nat -A PORTICO-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j $SVC
             nat -A PORTICO-SVCS-C8 -d 198.18.0.200/32 -p tcp -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp --dport 80 -j $EXT
             nat -A PORTICO-NODEPORTS -p tcp -m tcp --dport 30080:30143 -j PORTICO-NPS-TCP-30080
             nat -A PORTICO-NPS-TCP-30080 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 30080 -j $EXT
             nat -A $EXT -s 10.244.0.0/16 -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -j $SVC
             nat -A $EXT -m comment --comment "masquerade LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j PORTICO-MARK-MASQ
             nat -A $EXT -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j $SVC
             nat -A $EXT -j $SVL
             nat -A $SVC ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j PORTICO-MARK-MASQ
             nat -A $SVC -p tcp -m comment --comment "ns1/svc1:p80 -> 10.244.1.5:8080" -m statistic --mode random --probability 0.5000000000 -m tcp -j DNAT --to-destination 10.244.1.5:8080
             nat -A $SVC -m comment --comment "ns1/svc1:p80 -> 10.244.0.7:8080" -j $SEP7
             nat -A $SVL -m comment --comment "ns1/svc1:p80 -> 10.244.0.7:8080" -j $SEP7
             nat -A $SEP7 -s 10.244.0.7/32 -m comment --comment "ns1/svc1:p80" -j PORTICO-MARK-MASQ
             nat -A $SEP7 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination 10.244.0.7:8080
             filter -A PORTICO-NODEPORTS -p tcp -m comment --comment "ns1/svc1:p80 health check node port" -m tcp --dport 31000 -j ACCEPT"#,
        ),
        (
            "Local policy without a local endpoint: external traffic DROPped in filter, pods and the node still served",
            local(endpoints(with_lb(svc1()), vec![remote()])),
            r#"nat -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A
             nat -A PORTICO-SERVICES -d 0.0.0.200/0.0.0.255 -j PORTICO-SVCS-C8
             nat -A PORTICO-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j $SVC
             nat -A PORTICO-SVCS-C8 -d 198.18.0.200/32 -p tcp -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp --dport 80 -j $EXT
             nat -A PORTICO-NODEPORTS -p tcp -m tcp --dport 30080:30143 -j PORTICO-NPS-TCP-30080
             nat -A PORTICO-NPS-TCP-30080 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp --dport 30080 -j $EXT
             nat -A $EXT -s 10.244.0.0/16 -m comment --comment "pod traffic for ns1/svc1:p80 external destinations" -j $SVC
             nat -A $EXT -m comment --comment "masquerade LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j PORTICO-MARK-MASQ
             nat -A $EXT -m comment --comment "route LOCAL traffic for ns1/svc1:p80 external destinations" -m addrtype --src-type LOCAL -j $SVC
             nat -A $SVC ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j PORTICO-MARK-MASQ
             nat -A $SVC -p tcp -m comment --comment "ns1/svc1:p80 -> 10.244.1.5:8080" -m tcp -j DNAT --to-destination 10.244.1.5:8080
             filter -A PORTICO-EXTERNAL-SERVICES -d 198.18.0.200/32 -p tcp -m comment --comment "ns1/svc1:p80 has no local endpoints" -m tcp --dport 80 -j DROP
             filter -A PORTICO-EXTERNAL-SERVICES -p tcp -m comment --comment "ns1/svc1:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30080 -j DROP
             filter -A PORTICO-NODEPORTS -p tcp -m comment --comment "ns1/svc1:p80 health check node port" -m tcp --dport 31000 -j ACCEPT"#,
        ),
        (
            "terminating endpoints serve only when none is ready",
            endpoints(
                svc1(),
                vec![terminating(on_this_node()), terminating(remote())],
            ),
            r#"nat -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A
             nat -A PORTICO-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j $SVC
             nat -A $SVC ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j PORTICO-MARK-MASQ
             nat -A $SVC -m comment --comment "ns1/svc1:p80 -> 10.244.0.7:8080" -m statistic --mode random --probability 0.5000000000 -j $SEP7
             nat -A $SVC -p tcp -m comment --comment "ns1/svc1:p80 -> 10.244.1.5:8080" -m tcp -j DNAT --to-destination 10.244.1.5:8080
             nat -A $SEP7 -s 10.244.0.7/32 -m comment --comment "ns1/svc1:p80" -j PORTICO-MARK-MASQ
             nat -A $SEP7 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination 10.244.0.7:8080"#,
        ),
        (
            "ClientIP affinity: recent checks first, every chosen endpoint recorded",
            {
                let mut port = endpoints(svc1(), vec![remote(), on_this_node()]);
                port.affinity_timeout_seconds = Some(300);
                port
            },
            r#"nat -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A
             nat -A PORTICO-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j $SVC
             nat -A $SVC ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j PORTICO-MARK-MASQ
             nat -A $SVC -p tcp -m comment --comment "ns1/svc1:p80 -> 10.244.1.5:8080" -m recent --name PORTICO-SEP-4DLQR6XP64U3IHTN --rcheck --seconds 300 --reap -m tcp -j DNAT --to-destination 10.244.1.5:8080
             nat -A $SVC -m comment --comment "ns1/svc1:p80 -> 10.244.0.7:8080" -m recent --name $SEP7 --rcheck --seconds 300 --reap -j $SEP7
             nat -A $SVC -p tcp -m comment --comment "ns1/svc1:p80 -> 10.244.1.5:8080" -m statistic --mode random --probability 0.5000000000 -m recent --name PORTICO-SEP-4DLQR6XP64U3IHTN --set -m tcp -j DNAT --to-destination 10.244.1.5:8080
             nat -A $SVC -m comment --comment "ns1/svc1:p80 -> 10.244.0.7:8080" -j $SEP7
             nat -A $SEP7 -s 10.244.0.7/32 -m comment --comment "ns1/svc1:p80" -j PORTICO-MARK-MASQ
             nat -A $SEP7 -p tcp -m comment --comment "ns1/svc1:p80" -m recent --name $SEP7 --set -m tcp -j DNAT --to-destination 10.244.0.7:8080"#,
        ),
        (
            "loadBalancerSourceRanges: FW chain accepts the ranges (and the VIP itself when the node is in range), filter drops the rest",
            {
                let mut port = endpoints(with_lb(svc1()), vec![remote()]);
                port.node_port = None;
                port.load_balancer_source_ranges = vec![
                    "203.0.113.0/24".parse().unwrap(),
                    "198.18.0.0/24".parse().unwrap(),
                ];
                port
            },
            r#"nat -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A
             nat -A PORTICO-SERVICES -d 0.0.0.200/0.0.0.255 -j PORTICO-SVCS-C8
             nat -A PORTICO-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j $SVC
             nat -A PORTICO-SVCS-C8 -d 198.18.0.200/32 -p tcp -m comment --comment "ns1/svc1:p80 loadbalancer IP" -m tcp --dport 80 -j $FW
             nat -A $FW -s 203.0.113.0/24 -m comment --comment "ns1/svc1:p80 loadbalancer IP" -j $EXT
             nat -A $FW -s 198.18.0.0/24 -m comment --comment "ns1/svc1:p80 loadbalancer IP" -j $EXT
             nat -A $FW -s 198.18.0.200/32 -m comment --comment "ns1/svc1:p80 loadbalancer IP" -j $EXT
             nat -A $FW -m comment --comment "other traffic to ns1/svc1:p80 will be dropped by PORTICO-FIREWALL"
             nat -A $EXT -m comment --comment "masquerade traffic for ns1/svc1:p80 external destinations" -j PORTICO-MARK-MASQ
             nat -A $EXT -j $SVC
             nat -A $SVC ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j PORTICO-MARK-MASQ
             nat -A $SVC -p tcp -m comment --comment "ns1/svc1:p80 -> 10.244.1.5:8080" -m tcp -j DNAT --to-destination 10.244.1.5:8080
             filter -A PORTICO-FIREWALL -d 198.18.0.200/32 -p tcp -m comment --comment "ns1/svc1:p80 traffic not accepted by $FW" -m tcp --dport 80 -j DROP"#,
        ),
        (
            "internalTrafficPolicy Local without a local endpoint: nothing is reachable, so REJECT",
            {
                let mut port = endpoints(svc1(), vec![remote()]);
                port.internal_policy = TrafficPolicy::Local;
                port
            },
            r#"filter -A PORTICO-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp --dport 80 -j REJECT"#,
        ),
        (
            "internalTrafficPolicy Local: the cluster IP enters the local chain, which masquerades off-cluster sources",
            {
                let mut port = endpoints(svc1(), vec![remote(), on_this_node()]);
                port.internal_policy = TrafficPolicy::Local;
                port
            },
            r#"nat -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A
             nat -A PORTICO-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j $SVL
             nat -A $SVL ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j PORTICO-MARK-MASQ
             nat -A $SVL -m comment --comment "ns1/svc1:p80 -> 10.244.0.7:8080" -j $SEP7
             nat -A $SEP7 -s 10.244.0.7/32 -m comment --comment "ns1/svc1:p80" -j PORTICO-MARK-MASQ
             nat -A $SEP7 -p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination 10.244.0.7:8080"#,
        ),
    ];
    for (case, port, listing) in cases {
        assert_eq!(
            dump(vec![port]),
            expected(Protocol::Tcp, listing),
            "case: {case}"
        );
    }
}

#[test]
fn udp_and_sctp_ports_match_their_protocol() {
    for (protocol, name, bucket) in [
        (Protocol::Udp, "udp", "UDP"),
        (Protocol::Sctp, "sctp", "SCTP"),
    ] {
        let mut port = endpoints(with_node_port(svc1()), vec![on_this_node()]);
        port.key.protocol = protocol;
        let listing = format!(
            r#"nat -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A
             nat -A PORTICO-SVCS-0A -d 10.96.0.10/32 -p {name} -m comment --comment "ns1/svc1:p80 cluster IP" -m {name} --dport 80 -j $SVC
             nat -A PORTICO-NODEPORTS -p {name} -m {name} --dport 30080:30143 -j PORTICO-NPS-{bucket}-30080
             nat -A PORTICO-NPS-{bucket}-30080 -p {name} -m comment --comment "ns1/svc1:p80" -m {name} --dport 30080 -j $EXT
             nat -A $EXT -m comment --comment "masquerade traffic for ns1/svc1:p80 external destinations" -j PORTICO-MARK-MASQ
             nat -A $EXT -j $SVC
             nat -A $SVC ! -s 10.244.0.0/16 -d 10.96.0.10/32 -p {name} -m comment --comment "ns1/svc1:p80 cluster IP" -m {name} --dport 80 -j PORTICO-MARK-MASQ
             nat -A $SVC -m comment --comment "ns1/svc1:p80 -> 10.244.0.7:8080" -j $SEP7
             nat -A $SEP7 -s 10.244.0.7/32 -m comment --comment "ns1/svc1:p80" -j PORTICO-MARK-MASQ
             nat -A $SEP7 -p {name} -m comment --comment "ns1/svc1:p80" -m {name} -j DNAT --to-destination 10.244.0.7:8080"#
        );
        assert_eq!(dump(vec![port]), expected(protocol, &listing), "{name}");
    }
}

#[test]
fn several_pod_cidrs_use_a_shared_not_pod_chain() {
    let mut node = node();
    node.pod_cidrs.push("10.245.0.0/16".parse().unwrap());
    let port = endpoints(svc1(), vec![remote()]);
    let listing = r#"nat -A PORTICO-MASQ-NOT-POD -s 10.244.0.0/16 -j RETURN
         nat -A PORTICO-MASQ-NOT-POD -s 10.245.0.0/16 -j RETURN
         nat -A PORTICO-MASQ-NOT-POD -j PORTICO-MARK-MASQ
         nat -A PORTICO-SERVICES -d 0.0.0.10/0.0.0.255 -j PORTICO-SVCS-0A
         nat -A PORTICO-SVCS-0A -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j $SVC
         nat -A $SVC -d 10.96.0.10/32 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j PORTICO-MASQ-NOT-POD
         nat -A $SVC -p tcp -m comment --comment "ns1/svc1:p80 -> 10.244.1.5:8080" -m tcp -j DNAT --to-destination 10.244.1.5:8080"#;
    assert_eq!(
        dump_for(vec![port], &node),
        expected(Protocol::Tcp, listing)
    );
}

#[test]
fn ipv6_renders_its_own_rule_set() {
    let mut node = node();
    node.pod_cidrs.push("fd00:244::/64".parse().unwrap());
    let mut port = endpoints(
        mk_port("svc1", "fd00:96::a"),
        vec![mk_endpoint("fd00:244::7", NODE)],
    );
    port.key.family = IpFamily::V6;
    let listing = r#"nat -A PORTICO-SERVICES -d ::a/::ff -j PORTICO-SVCS-0A
         nat -A PORTICO-SVCS-0A -d fd00:96::a/128 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j $SVC
         nat -A $SVC ! -s fd00:244::/64 -d fd00:96::a/128 -p tcp -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp --dport 80 -j PORTICO-MARK-MASQ
         nat -A $SVC -m comment --comment "ns1/svc1:p80 -> [fd00:244::7]:8080" -j PORTICO-SEP-C7I5MKSCKNB34T7Q
         nat -A PORTICO-SEP-C7I5MKSCKNB34T7Q -s fd00:244::7/128 -m comment --comment "ns1/svc1:p80" -j PORTICO-MARK-MASQ
         nat -A PORTICO-SEP-C7I5MKSCKNB34T7Q -p tcp -m comment --comment "ns1/svc1:p80" -m tcp -j DNAT --to-destination [fd00:244::7]:8080"#;
    assert_eq!(
        dump_for(vec![port], &node),
        expected_in(IpFamily::V6, Protocol::Tcp, listing)
    );
}

#[test]
fn statistic_probabilities_are_one_over_the_remaining_endpoints() {
    let many: Vec<Endpoint> = (1..=4)
        .map(|i| mk_endpoint(&format!("10.244.1.{i}"), "node-b"))
        .collect();
    let set = render(
        &state_of(vec![endpoints(svc1(), many)]),
        &node(),
        IpFamily::V4,
    );
    let svc = &set.nat[&names::svc_chain(&svc1().key)];
    let probabilities: Vec<&str> = svc
        .iter()
        .skip(1)
        .map(|rule| {
            rule.split("--probability ")
                .nth(1)
                .map_or("last", |rest| rest.split(' ').next().unwrap())
        })
        .collect();
    assert_eq!(
        probabilities,
        ["0.2500000000", "0.3333333333", "0.5000000000", "last"]
    );
}

fn state_of(ports: Vec<ServicePort>) -> DesiredState {
    let mut state = DesiredState::default();
    for port in ports {
        state.insert(port);
    }
    state
}

#[test]
fn a_changed_service_rewrites_only_its_chains_and_its_bucket() {
    let ports: Vec<ServicePort> = (0..300)
        .map(|i| {
            endpoints(
                mk_port(
                    &format!("svc{i}"),
                    &format!("10.96.{}.{}", i / 250, i % 250 + 1),
                ),
                vec![remote()],
            )
        })
        .collect();
    let mut cache = RenderCache::new(&node(), IpFamily::V4);
    let before = cache.render(&state_of(ports.clone()), &node()).clone();
    assert!(cache.take_changes().rebuilt);
    let mut changed = ports;
    changed[7]
        .endpoints
        .push(mk_endpoint("10.244.2.9", "node-c"));
    let after = cache.render(&state_of(changed.clone()), &node()).clone();
    assert_eq!(
        after,
        render(&state_of(changed), &node(), IpFamily::V4),
        "the cache renders what render does"
    );
    let plan = after.partial_restore(&before);
    let svc7 = names::svc_chain(&mk_port("svc7", "10.96.0.8").key);
    assert_eq!(
        plan.text,
        format!(
            "*nat\n:{svc7} - [0:0]\n\
             -A {svc7} ! -s 10.244.0.0/16 -d 10.96.0.8/32 -p tcp -m comment --comment \"ns1/svc7:p80 cluster IP\" -m tcp --dport 80 -j PORTICO-MARK-MASQ\n\
             -A {svc7} -p tcp -m comment --comment \"ns1/svc7:p80 -> 10.244.1.5:8080\" -m statistic --mode random --probability 0.5000000000 -m tcp -j DNAT --to-destination 10.244.1.5:8080\n\
             -A {svc7} -p tcp -m comment --comment \"ns1/svc7:p80 -> 10.244.2.9:8080\" -m tcp -j DNAT --to-destination 10.244.2.9:8080\n\
             COMMIT\n"
        )
    );
    let changes = cache.take_changes();
    assert!(!changes.rebuilt);
    assert_eq!(
        after.changed_restore(&changes.chains, &ExtraLines::default()),
        plan,
        "the recorded changes give the same restore"
    );
}

#[test]
fn the_cache_follows_services_that_come_and_go() {
    let port = |i: usize| {
        endpoints(
            with_lb(mk_port(&format!("svc{i}"), &format!("10.96.0.{}", i + 1))),
            vec![remote()],
        )
    };
    let mut cache = RenderCache::new(&node(), IpFamily::V4);
    let steps: Vec<Vec<ServicePort>> = vec![
        vec![port(1), port(2)],
        vec![port(1), port(2), port(3)],
        vec![port(2)],
        vec![endpoints(port(2), vec![])],
        vec![],
    ];
    let mut previous = cache.render(&DesiredState::default(), &node()).clone();
    cache.take_changes();
    for (step, ports) in steps.into_iter().enumerate() {
        let state = state_of(ports);
        let rendered = cache.render(&state, &node()).clone();
        assert_eq!(
            rendered,
            render(&state, &node(), IpFamily::V4),
            "step {step}"
        );
        let changes = cache.take_changes();
        assert_eq!(
            rendered.changed_restore(&changes.chains, &ExtraLines::default()),
            rendered.partial_restore(&previous),
            "step {step}"
        );
        previous = rendered;
    }
}

#[test]
fn nodeport_addresses_replace_the_any_local_address_match() {
    let mut state = DesiredState::default();
    state.insert(endpoints(with_node_port(svc1()), vec![on_this_node()]));
    let all_local = render(&state, &node(), IpFamily::V4);
    let dispatch = &all_local.nat[names::SERVICES];
    assert_eq!(
        dispatch.last().unwrap(),
        r#"-m comment --comment "portico service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j PORTICO-NODEPORTS"#
    );

    let mut restricted = node();
    restricted.nodeport_ips = Some(vec![
        "198.18.0.10".parse().unwrap(),
        "2001:db8::10".parse().unwrap(),
    ]);
    let only_listed = render(&state, &restricted, IpFamily::V4);
    let dispatch = &only_listed.nat[names::SERVICES];
    assert_eq!(
        dispatch.last().unwrap(),
        r#"-d 198.18.0.10/32 -m comment --comment "portico service nodeports; NOTE: this must be the last rule in this chain" -j PORTICO-NODEPORTS"#
    );
    assert!(
        !dispatch.iter().any(|rule| rule.contains("addrtype")),
        "{dispatch:?}"
    );
}

#[test]
fn large_clusters_leave_endpoint_rules_without_comments() {
    let port = endpoints(svc1(), vec![remote(), on_this_node()]);
    let many: Vec<Endpoint> = (0..crate::iptables::service::LARGE_CLUSTER_ENDPOINTS)
        .map(|i| mk_endpoint(&format!("10.245.{}.{}", i / 250, i % 250 + 1), "node-b"))
        .collect();
    let big = endpoints(mk_port("big", "10.96.0.11"), many);
    let small = state_of(vec![port.clone()]);
    let large = state_of(vec![port, big]);

    let set = render(&large, &node(), IpFamily::V4);
    let svc = names::svc_chain(&svc1().key);
    let sep7 = names::sep_chain(&svc1().key, &on_this_node());
    assert_eq!(
        set.nat[&svc][1..],
        [
            "-p tcp -m statistic --mode random --probability 0.5000000000 -m tcp -j DNAT --to-destination 10.244.1.5:8080".to_string(),
            format!("-j {sep7}"),
        ]
    );
    assert_eq!(
        set.nat[&sep7],
        [
            "-s 10.244.0.7/32 -j PORTICO-MARK-MASQ",
            "-p tcp -m tcp -j DNAT --to-destination 10.244.0.7:8080"
        ]
    );
    // The Service's own rules keep theirs.
    assert!(set.nat[&svc][0].contains(r#"--comment "ns1/svc1:p80 cluster IP""#));

    // Crossing the threshold either way re-renders every port, as render() does.
    let mut cache = RenderCache::new(&node(), IpFamily::V4);
    for (step, state) in [&small, &large, &small].into_iter().enumerate() {
        assert_eq!(
            cache.render(state, &node()),
            &render(state, &node(), IpFamily::V4),
            "step {step}"
        );
        assert!(cache.take_changes().rebuilt, "step {step}");
    }
}

#[test]
fn without_the_kernels_bpf_match_the_hairpin_rule_is_left_out_and_nothing_else() {
    let state = DesiredState::default();
    let mut ctx = RenderContext::new(&node(), IpFamily::V4, &state);
    let with = fixed_chains(&ctx);
    ctx.hairpin_match = false;
    let without = fixed_chains(&ctx);
    let postrouting = |set: &RuleSet| set.nat[names::POSTROUTING].clone();
    assert_eq!(postrouting(&with)[0], hairpin_rule(IpFamily::V4));
    assert_eq!(postrouting(&with)[1..], postrouting(&without)[..]);
    assert!(
        !postrouting(&without)
            .iter()
            .any(|rule| rule.contains("bpf"))
    );
}
