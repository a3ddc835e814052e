use super::*;

fn mk_layout(nodes: usize, pods_per_node: usize) -> Layout {
    let spec = LabSpec::new(nodes, pods_per_node, "/bin/portico-lab");
    Layout::plan(&spec, Prefix { pid: 42, seq: 7 }).expect("a valid spec")
}

fn joined(cmds: &[Vec<String>]) -> Vec<String> {
    cmds.iter().map(|argv| argv.join(" ")).collect()
}

#[test]
fn addresses_follow_the_design_plan() {
    let layout = mk_layout(3, 2);
    assert_eq!(layout.host_ip, Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(layout.client_ip, Ipv4Addr::new(198, 18, 0, 2));
    assert_eq!(layout.client_ns, "ptl-42-7-client");
    let node_ips: Vec<_> = layout.nodes.iter().map(|n| n.ip.to_string()).collect();
    assert_eq!(node_ips, ["198.18.0.10", "198.18.0.11", "198.18.0.12"]);
    let node2 = layout.node("node-2").expect("node-2");
    assert_eq!(node2.pod_cidr.to_string(), "10.244.2.0/24");
    assert_eq!(node2.pod_gateway, Ipv4Addr::new(10, 244, 2, 1));
    let pod_ips: Vec<_> = node2.pods.iter().map(|p| p.ip.to_string()).collect();
    assert_eq!(pod_ips, ["10.244.2.2", "10.244.2.3"]);
    assert_eq!(node2.pods[1].ns, "ptl-42-7-n2p1");
    assert_eq!(layout.namespaces().len(), 2 + 3 + 3 * 2);
}

#[test]
fn another_subnet_moves_host_client_and_nodes() {
    let spec = LabSpec::new(1, 0, "x").with_node_subnet("198.18.5.0/24".parse().unwrap());
    let layout = Layout::plan(&spec, Prefix { pid: 1, seq: 0 }).unwrap();
    assert_eq!(layout.host_ip, Ipv4Addr::new(198, 18, 5, 1));
    assert_eq!(layout.nodes[0].ip, Ipv4Addr::new(198, 18, 5, 10));
}

#[test]
fn specs_outside_the_plan_are_refused() {
    let prefix = Prefix { pid: 1, seq: 0 };
    let too_wide = LabSpec::new(1, 0, "x").with_node_subnet("198.18.0.0/16".parse().unwrap());
    for spec in [
        LabSpec::new(0, 1, "x"),
        LabSpec::new(201, 1, "x"),
        LabSpec::new(1, 251, "x"),
        too_wide,
    ] {
        let err = Layout::plan(&spec, prefix).expect_err("refused");
        assert_eq!(err.label(), "spec");
    }
}

#[test]
fn only_the_host_leg_is_created_in_the_host_namespace() {
    let cmds = mk_layout(2, 1).build_commands();
    let in_host: Vec<_> = joined(&cmds)
        .into_iter()
        .filter(|cmd| {
            cmd.starts_with("ip ") && !cmd.starts_with("ip -n ") && !cmd.starts_with("ip netns ")
        })
        .collect();
    assert_eq!(
        in_host,
        [
            "ip link add ptl42-7 type veth peer name host netns ptl-42-7-br",
            "ip addr add 198.18.0.1/24 dev ptl42-7",
            "ip link set ptl42-7 up",
        ]
    );
}

#[test]
fn nodes_forward_and_route_each_others_pod_cidrs() {
    let cmds = joined(&mk_layout(2, 1).build_commands());
    for expected in [
        "ip netns exec ptl-42-7-n0 sysctl -qw net.ipv4.ip_forward=1",
        "ip -n ptl-42-7-n0 route replace 10.244.1.0/24 via 198.18.0.11",
        "ip -n ptl-42-7-n1 route replace 10.244.0.0/24 via 198.18.0.10",
        "ip -n ptl-42-7-n1p0 route replace default via 10.244.1.1",
        "ip -n ptl-42-7-n1 addr add 10.244.1.1/24 dev cbr0",
        "ip -n ptl-42-7-n1p0 addr add 10.244.1.2/24 dev eth0",
    ] {
        assert!(
            cmds.iter().any(|cmd| cmd == expected),
            "missing {expected:?} in {cmds:#?}"
        );
    }
    // The client routes nothing beyond its subnet until a test asks.
    assert!(
        !cmds
            .iter()
            .any(|cmd| cmd.starts_with("ip -n ptl-42-7-client route"))
    );
}

#[test]
fn pod_bridge_ports_hairpin_as_kubelet_sets_them() {
    let cmds = joined(&mk_layout(2, 2).build_commands());
    for (node, port) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let master = format!("ip -n ptl-42-7-n{node} link set p{port} master cbr0");
        let hairpin =
            format!("ip -n ptl-42-7-n{node} link set p{port} type bridge_slave hairpin on");
        let position = |wanted: &str| cmds.iter().position(|cmd| cmd == wanted);
        let (master, hairpin) = (position(&master), position(&hairpin));
        assert!(
            matches!((master, hairpin), (Some(m), Some(h)) if m < h),
            "n{node} p{port}: hairpin on after joining the bridge, in {cmds:#?}"
        );
    }
}

#[test]
fn without_a_cloud_the_layout_has_none() {
    let layout = mk_layout(2, 0);
    assert_eq!(layout.cloud, None);
    assert!(!layout.namespaces().iter().any(|ns| ns.ends_with("-cloud")));
}

#[test]
fn the_cloud_stands_between_the_client_and_the_nodes() {
    let spec = LabSpec::new(2, 0, "x")
        .with_node_subnet("198.18.5.0/24".parse().unwrap())
        .with_cloud();
    let layout = Layout::plan(&spec, Prefix { pid: 42, seq: 7 }).unwrap();
    let cloud = layout.cloud.clone().expect("a cloud");
    assert_eq!(cloud.ns, "ptl-42-7-cloud");
    assert_eq!(cloud.node_side_ip, Ipv4Addr::new(198, 18, 5, 3));
    assert_eq!(cloud.client_side_ip, Ipv4Addr::new(203, 0, 113, 1));
    assert_eq!(cloud.client_subnet.to_string(), "203.0.113.0/24");
    assert_eq!(cloud.load_balancer_range.to_string(), "198.51.100.0/24");
    assert_eq!(layout.client_ip, Ipv4Addr::new(203, 0, 113, 2));
    assert_eq!(
        layout.namespaces()[..3],
        ["ptl-42-7-br", "ptl-42-7-cloud", "ptl-42-7-client"]
    );

    let cmds = joined(&layout.build_commands());
    for expected in [
        "ip -n ptl-42-7-br link add cloud type veth peer name eth0 netns ptl-42-7-cloud",
        "ip -n ptl-42-7-cloud addr add 198.18.5.3/24 dev eth0",
        "ip netns exec ptl-42-7-cloud sysctl -qw net.ipv4.ip_forward=1",
        "ip -n ptl-42-7-cloud link add eth1 type veth peer name eth0 netns ptl-42-7-client",
        "ip -n ptl-42-7-cloud addr add 203.0.113.1/24 dev eth1",
        "ip -n ptl-42-7-client addr add 203.0.113.2/24 dev eth0",
        "ip -n ptl-42-7-client route replace default via 203.0.113.1",
        "ip -n ptl-42-7-n0 route replace 203.0.113.0/24 via 198.18.5.3",
        "ip -n ptl-42-7-n1 route replace 203.0.113.0/24 via 198.18.5.3",
    ] {
        assert!(
            cmds.iter().any(|cmd| cmd == expected),
            "missing {expected:?} in {cmds:#?}"
        );
    }
    // The client is no longer on the lab bridge: the cloud is its only way in.
    assert!(!cmds.iter().any(|cmd| cmd.contains("link add client ")));
}
