//! What the pods and clients see through the rules: the kube-proxy behaviour table of
//! DESIGN.md, with real TCP, on both backends.

use portico_agent::args::ProxyMode;

use crate::helper::{Answer, EchoServer, connect_from};
use crate::in_both_modes;
use crate::services::{
    backend, mk_service, mk_slice, node_context, state, tag, with_lb_ip, with_local_policy,
};
use crate::topology::{
    CLIENT_IP, ECHO_PORT, LB_IP, NODE_IP, NODE_NAME, NODE_POD_GATEWAY, POD_A_IP, POD_B_IP, Topology,
};

fn echo_on_pod_a(topology: &Topology) -> EchoServer {
    EchoServer::start(&topology.pod_a, &format!("0.0.0.0:{ECHO_PORT}"))
}

in_both_modes!(cluster_ip_from_a_pod_keeps_the_pod_ip);
async fn cluster_ip_from_a_pod_keeps_the_pod_ip(mode: ProxyMode) {
    let topology = Topology::new(&tag(mode, "cip"));
    let _echo = echo_on_pod_a(&topology);
    let services = [mk_service("web", "10.96.0.10", "ClusterIP", None)];
    let slices = [mk_slice("web", &[(POD_A_IP, NODE_NAME)])];
    backend(mode, &topology.node)
        .sync(&state(&services, &slices), &node_context())
        .await
        .expect("sync");

    assert_eq!(
        connect_from(&topology.pod_b, "10.96.0.10:80"),
        Answer::Peer(POD_B_IP.into())
    );
}

in_both_modes!(node_port_under_cluster_policy_masquerades_to_the_node);
async fn node_port_under_cluster_policy_masquerades_to_the_node(mode: ProxyMode) {
    let topology = Topology::new(&tag(mode, "npc"));
    let _echo = echo_on_pod_a(&topology);
    let services = [mk_service("web", "10.96.0.10", "NodePort", Some(30080))];
    let slices = [mk_slice("web", &[(POD_A_IP, NODE_NAME)])];
    backend(mode, &topology.node)
        .sync(&state(&services, &slices), &node_context())
        .await
        .expect("sync");

    assert_eq!(
        connect_from(&topology.client, &format!("{NODE_IP}:30080")),
        Answer::Peer(NODE_POD_GATEWAY.into())
    );
}

in_both_modes!(local_policy_keeps_the_client_ip_on_node_port_and_lb_ip);
async fn local_policy_keeps_the_client_ip_on_node_port_and_lb_ip(mode: ProxyMode) {
    let topology = Topology::new(&tag(mode, "npl"));
    let _echo = echo_on_pod_a(&topology);
    let services = [with_lb_ip(
        with_local_policy(mk_service("web", "10.96.0.10", "LoadBalancer", Some(30080))),
        LB_IP,
    )];
    let slices = [mk_slice("web", &[(POD_A_IP, NODE_NAME)])];
    backend(mode, &topology.node)
        .sync(&state(&services, &slices), &node_context())
        .await
        .expect("sync");

    assert_eq!(
        connect_from(&topology.client, &format!("{NODE_IP}:30080")),
        Answer::Peer(CLIENT_IP.into())
    );
    assert_eq!(
        connect_from(&topology.client, &format!("{LB_IP}:80")),
        Answer::Peer(CLIENT_IP.into())
    );
    // A pod reaching the LB IP is short-circuited to the ClusterIP path: no SNAT either.
    assert_eq!(
        connect_from(&topology.pod_b, &format!("{LB_IP}:80")),
        Answer::Peer(POD_B_IP.into())
    );
}

in_both_modes!(local_policy_without_a_local_endpoint_drops_external_traffic);
async fn local_policy_without_a_local_endpoint_drops_external_traffic(mode: ProxyMode) {
    let topology = Topology::new(&tag(mode, "npd"));
    let _echo = echo_on_pod_a(&topology);
    // The only endpoint is on another node: this node must not forward external traffic to it.
    let services = [with_local_policy(mk_service(
        "web",
        "10.96.0.10",
        "NodePort",
        Some(30080),
    ))];
    let slices = [mk_slice("web", &[(POD_A_IP, "node-b")])];
    backend(mode, &topology.node)
        .sync(&state(&services, &slices), &node_context())
        .await
        .expect("sync");

    assert_eq!(
        connect_from(&topology.client, &format!("{NODE_IP}:30080")),
        Answer::Timeout
    );
    // Cluster-internal traffic still reaches the endpoint (here it happens to be reachable).
    assert_eq!(
        connect_from(&topology.pod_b, "10.96.0.10:80"),
        Answer::Peer(POD_B_IP.into())
    );
}

in_both_modes!(service_without_endpoints_refuses_connections);
async fn service_without_endpoints_refuses_connections(mode: ProxyMode) {
    let topology = Topology::new(&tag(mode, "rej"));
    let _echo = echo_on_pod_a(&topology);
    let services = [mk_service("web", "10.96.0.10", "NodePort", Some(30080))];
    backend(mode, &topology.node)
        .sync(&state(&services, &[]), &node_context())
        .await
        .expect("sync");

    assert_eq!(
        connect_from(&topology.client, &format!("{NODE_IP}:30080")),
        Answer::Refused
    );
    assert_eq!(
        connect_from(&topology.pod_b, "10.96.0.10:80"),
        Answer::Refused
    );
}

in_both_modes!(a_replaced_or_added_endpoint_is_reached_through_the_cluster_ip_and_node_port);
async fn a_replaced_or_added_endpoint_is_reached_through_the_cluster_ip_and_node_port(
    mode: ProxyMode,
) {
    let topology = Topology::new(&tag(mode, "epc"));
    // Only pod B serves: a connection sent to pod A is refused.
    let _echo = EchoServer::start(&topology.pod_b, &format!("0.0.0.0:{ECHO_PORT}"));
    let services = [mk_service("web", "10.96.0.10", "NodePort", Some(30080))];
    let mut backend = backend(mode, &topology.node);
    // One endpoint, replaced, then a second added and the first removed: in nftables mode the
    // later syncs are partial, changing only endpoint map elements.
    for (step, endpoints) in [
        vec![POD_A_IP],
        vec![POD_B_IP],
        vec![POD_A_IP, POD_B_IP],
        vec![POD_B_IP],
    ]
    .into_iter()
    .enumerate()
    {
        let slice: Vec<(&str, &str)> = endpoints.iter().map(|ip| (*ip, NODE_NAME)).collect();
        backend
            .sync(
                &state(&services, &[mk_slice("web", &slice)]),
                &node_context(),
            )
            .await
            .expect("sync");
        let (node_port, cluster_ip) = match endpoints[..] {
            [POD_A_IP] => (Answer::Refused, Answer::Refused),
            [POD_B_IP] => (
                Answer::Peer(NODE_POD_GATEWAY.into()),
                Answer::Peer(POD_A_IP.into()),
            ),
            _ => continue,
        };
        assert_eq!(
            connect_from(&topology.client, &format!("{NODE_IP}:30080")),
            node_port,
            "step {step}"
        );
        assert_eq!(
            connect_from(&topology.pod_a, "10.96.0.10:80"),
            cluster_ip,
            "step {step}"
        );
    }
}
