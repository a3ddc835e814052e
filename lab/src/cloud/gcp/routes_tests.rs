use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::*;
use crate::cloud::gcp::model::{ForwardingRule, Pool, Snapshot};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);

fn node(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 10 + n)
}

fn url(name: &str) -> String {
    format!("https://www.googleapis.com/compute/v1/projects/p/zones/z/instances/{name}")
}

fn nodes() -> BTreeMap<String, Ipv4Addr> {
    (0..3).map(|n| (format!("node-{n}"), node(n))).collect()
}

fn spec(port: u16) -> CheckSpec {
    CheckSpec {
        port,
        path: "/healthz".into(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        healthy_threshold: 1,
        unhealthy_threshold: 1,
    }
}

fn snapshot(instances: &[&str], check: Option<CheckSpec>) -> Snapshot {
    Snapshot {
        rules: vec![ForwardingRule {
            name: "lb".into(),
            ip: VIP,
            protocol: "TCP".into(),
            port_range: "80-80".into(),
            pool: "lb".into(),
        }],
        pools: [(
            "lb".to_owned(),
            Pool {
                name: "lb".into(),
                instances: instances.iter().map(|n| url(n)).collect(),
                check,
            },
        )]
        .into(),
    }
}

/// Routes of a one-rule snapshot when the checker says `healthy` for these node IPs.
fn route_of(instances: &[&str], check: Option<CheckSpec>, healthy: &[Ipv4Addr]) -> Via {
    let snapshot = snapshot(instances, check);
    let members = members(&snapshot, &nodes(), |ip, _| {
        Some(if healthy.contains(&ip) {
            Health::Healthy
        } else {
            Health::Unhealthy
        })
    });
    routes(&snapshot, &members)[&VIP].clone()
}

#[test]
fn the_rule_ip_goes_to_the_healthy_members_only() {
    let all = ["node-0", "node-1", "node-2"];
    let table: [(&[Ipv4Addr], Via); 3] = [
        (&[node(1)], Via::Nodes(vec![node(1)])),
        (&[node(2), node(0)], Via::Nodes(vec![node(0), node(2)])),
        (
            &[node(0), node(1), node(2)],
            Via::Nodes(vec![node(0), node(1), node(2)]),
        ),
    ];
    for (healthy, want) in table {
        assert_eq!(
            route_of(&all, Some(spec(10256)), healthy),
            want,
            "{healthy:?}"
        );
    }
}

#[test]
fn no_healthy_member_spreads_to_all_members_as_gcps_force_mode() {
    assert_eq!(
        route_of(&["node-0", "node-2"], Some(spec(10256)), &[]),
        Via::Nodes(vec![node(0), node(2)])
    );
}

#[test]
fn a_pool_without_a_check_sends_to_every_member_and_one_without_members_drops() {
    assert_eq!(
        route_of(&["node-1", "node-0"], None, &[]),
        Via::Nodes(vec![node(0), node(1)])
    );
    assert_eq!(route_of(&[], Some(spec(80)), &[]), Via::Blackhole);
    // An instance that is no lab node has no address to route to.
    assert_eq!(route_of(&["elsewhere"], None, &[]), Via::Blackhole);
    assert_eq!(
        route_of(&["elsewhere", "node-2"], Some(spec(80)), &[]),
        Via::Nodes(vec![node(2)])
    );
}

#[test]
fn an_unjudged_member_is_unhealthy_and_members_name_their_node() {
    let snapshot = snapshot(&["node-0", "node-1", "ghost"], Some(spec(31000)));
    let members = members(&snapshot, &nodes(), |ip, spec| {
        assert_eq!(spec.port, 31000);
        (ip == node(1)).then_some(Health::Healthy)
    });
    let view: Vec<(Option<Ipv4Addr>, Health)> = members["lb"]
        .iter()
        .map(|m| (m.node_ip, m.health))
        .collect();
    assert_eq!(
        view,
        [
            (Some(node(0)), Health::Unhealthy),
            (Some(node(1)), Health::Healthy),
            (None, Health::Unhealthy),
        ]
    );
    assert_eq!(members["lb"][2].instance, url("ghost"));
}

#[test]
fn route_commands_are_ecmp_with_one_nexthop_per_node() {
    let s = |argv: Vec<String>| argv.join(" ");
    assert_eq!(
        s(route_argv(VIP, &Via::Nodes(vec![node(0)]))),
        "ip route replace 198.51.100.1/32 via 198.18.0.10"
    );
    assert_eq!(
        s(route_argv(VIP, &Via::Nodes(vec![node(0), node(1)]))),
        "ip route replace 198.51.100.1/32 nexthop via 198.18.0.10 nexthop via 198.18.0.11"
    );
    assert_eq!(
        s(route_argv(VIP, &Via::Blackhole)),
        "ip route replace blackhole 198.51.100.1/32"
    );
}

#[test]
fn the_plan_touches_only_what_changed() {
    let other = Ipv4Addr::new(198, 51, 100, 2);
    let gone = Ipv4Addr::new(198, 51, 100, 3);
    let current: BTreeMap<Ipv4Addr, Via> = [
        (VIP, Via::Nodes(vec![node(0)])),
        (other, Via::Nodes(vec![node(1)])),
        (gone, Via::Blackhole),
    ]
    .into();
    let desired: BTreeMap<Ipv4Addr, Via> = [
        (VIP, Via::Nodes(vec![node(0)])),
        (other, Via::Nodes(vec![node(1), node(2)])),
    ]
    .into();
    let plan: Vec<String> = plan(&current, &desired)
        .into_iter()
        .map(|a| a.join(" "))
        .collect();
    assert_eq!(
        plan,
        [
            "ip route replace 198.51.100.2/32 nexthop via 198.18.0.11 nexthop via 198.18.0.12",
            "ip route del 198.51.100.3/32",
        ]
    );
    assert!(super::plan(&desired, &desired).is_empty());
}
