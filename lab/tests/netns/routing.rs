//! Packets between the lab's namespaces: the paths the agent's end-to-end tests build on.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};

use portico_lab::netns::echo::echo_field;

use crate::{have_root, mk_lab};

const ECHO_PORT: u16 = 8080;

#[tokio::test]
async fn client_reaches_every_node_ip() {
    if !have_root("client_reaches_every_node_ip") {
        return;
    }
    let lab = mk_lab(3, 0, 11);
    let mut servers = Vec::new();
    for node in lab.nodes() {
        let listen = SocketAddr::from((node.ip, ECHO_PORT));
        servers.push(lab.spawn_echo_server(&node.ns, listen).unwrap());
    }
    for node in lab.nodes() {
        let target = SocketAddr::from((node.ip, ECHO_PORT));
        let body = lab.tcp_request_from(lab.client_ns(), target).await.unwrap();
        assert_eq!(
            echo_field(&body, "client_address"),
            Some("198.18.11.2"),
            "{body}"
        );
        assert_eq!(
            echo_field(&body, "namespace"),
            Some(node.ns.as_str()),
            "{body}"
        );
    }
    drop(servers);
    lab.teardown();
}

#[tokio::test]
async fn pod_sees_the_client_address_through_its_node() {
    if !have_root("pod_sees_the_client_address_through_its_node") {
        return;
    }
    let lab = mk_lab(2, 1, 12);
    let pod = lab.nodes()[1].pods[0].clone();
    let _server = lab
        .spawn_echo_server(&pod.ns, ([0, 0, 0, 0], ECHO_PORT).into())
        .unwrap();
    let target = SocketAddr::from((pod.ip, ECHO_PORT));

    // Without a route the client cannot reach pod addresses at all.
    let unrouted = lab.tcp_request_from(lab.client_ns(), target).await;
    assert!(
        unrouted.is_err(),
        "reached {target} without a route: {unrouted:?}"
    );

    lab.route_vip_via(pod.ip, "node-1").unwrap();
    let body = lab.curl_from(lab.client_ns(), target).await.unwrap();
    assert_eq!(
        echo_field(&body, "client_address"),
        Some("198.18.12.2"),
        "{body}"
    );
    assert_eq!(
        echo_field(&body, "namespace"),
        Some(pod.ns.as_str()),
        "{body}"
    );
    let udp = lab.udp_request_from(lab.client_ns(), target).await.unwrap();
    assert_eq!(
        echo_field(&udp, "client_address"),
        Some("198.18.12.2"),
        "{udp}"
    );

    // A VIP routed via the wrong node (node-0 has a host-gw route to node-1's pods) still
    // arrives, forwarded by node-0: the source stays the client, as there is no NAT yet.
    lab.route_vip_via(pod.ip, "node-0").unwrap();
    let body = lab.tcp_request_from(lab.client_ns(), target).await.unwrap();
    assert_eq!(
        echo_field(&body, "client_address"),
        Some("198.18.12.2"),
        "{body}"
    );

    lab.remove_route(pod.ip.into()).unwrap();
    lab.remove_route(pod.ip.into()).unwrap(); // absent is fine
    let removed = lab.tcp_request_from(lab.client_ns(), target).await;
    assert!(
        removed.is_err(),
        "reached {target} after removing the route: {removed:?}"
    );
    assert_eq!(
        lab.route_vip_via(pod.ip, "node-9").unwrap_err().label(),
        "unknown_node"
    );
    lab.teardown();
}

#[tokio::test]
async fn pod_on_one_node_reaches_pod_on_another() {
    if !have_root("pod_on_one_node_reaches_pod_on_another") {
        return;
    }
    let lab = mk_lab(3, 1, 13);
    let server_pod = lab.nodes()[2].pods[0].clone();
    let client_pod = lab.nodes()[0].pods[0].clone();
    let _server = lab
        .spawn_echo_server(&server_pod.ns, ([0, 0, 0, 0], ECHO_PORT).into())
        .unwrap();
    let target = SocketAddr::from((server_pod.ip, ECHO_PORT));
    let body = lab.curl_from(&client_pod.ns, target).await.unwrap();
    assert_eq!(
        echo_field(&body, "client_address"),
        Some(client_pod.ip.to_string().as_str()),
        "{body}"
    );
    lab.teardown();
}

#[tokio::test]
async fn node_reaches_a_server_in_the_host_namespace() {
    if !have_root("node_reaches_a_server_in_the_host_namespace") {
        return;
    }
    let lab = mk_lab(2, 0, 14);
    // Bound to the host leg's address only, as the lab API server is.
    let listener = TcpListener::bind((lab.host_ip(), 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut peers = Vec::new();
        for _ in 0..2 {
            let (mut stream, peer) = listener.accept().unwrap();
            let mut request = [0u8; 64];
            let _ = stream.read(&mut request);
            writeln!(stream, "host-server peer={}", peer.ip()).unwrap();
            peers.push(peer.ip().to_string());
        }
        peers
    });
    for node in lab.nodes() {
        let body = lab.tcp_request_from(&node.ns, addr).await.unwrap();
        assert_eq!(body, format!("host-server peer={}\n", node.ip));
    }
    assert_eq!(server.join().unwrap(), ["198.18.14.10", "198.18.14.11"]);
    lab.teardown();
}

#[tokio::test]
async fn probes_tell_refused_from_timed_out() {
    if !have_root("probes_tell_refused_from_timed_out") {
        return;
    }
    let mut lab = mk_lab(1, 0, 18);
    lab.set_probe_timeout(std::time::Duration::from_millis(800));
    let node_ip = lab.nodes()[0].ip;
    let refused = lab
        .tcp_request_from(lab.client_ns(), (node_ip, 1).into())
        .await
        .unwrap_err();
    assert_eq!(refused.label(), "probe", "{refused}");
    assert!(refused.to_string().contains("refused"), "{refused}");

    // Accepted by the kernel's backlog, never answered.
    let silent = TcpListener::bind((lab.host_ip(), 0)).unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let timed_out = lab
        .tcp_request_from(&lab.nodes()[0].ns, silent_addr)
        .await
        .unwrap_err();
    assert_eq!(timed_out.label(), "timeout", "{timed_out}");
    drop(silent);
    lab.teardown();
}

#[tokio::test]
async fn with_a_cloud_the_client_reaches_nodes_through_it_with_its_own_address() {
    if !have_root("with_a_cloud_the_client_reaches_nodes_through_it_with_its_own_address") {
        return;
    }
    let spec = portico_lab::netns::LabSpec::new(2, 0, crate::LAB_BINARY)
        .with_node_subnet("198.18.19.0/24".parse().unwrap())
        .with_cloud();
    let lab = {
        let _guard = crate::sweep_guard();
        portico_lab::netns::LabTopology::create(spec).expect("the lab topology comes up")
    };
    let cloud = lab.cloud().expect("a cloud").clone();
    assert_eq!(lab.client_ip().to_string(), "203.0.113.2");
    let mut servers = Vec::new();
    for node in lab.nodes() {
        let listen = SocketAddr::from((node.ip, ECHO_PORT));
        servers.push(lab.spawn_echo_server(&node.ns, listen).unwrap());
    }
    for node in lab.nodes() {
        let target = SocketAddr::from((node.ip, ECHO_PORT));
        let body = lab.tcp_request_from(lab.client_ns(), target).await.unwrap();
        // The node saw the client's own address, and answered it through the cloud.
        assert_eq!(
            echo_field(&body, "client_address"),
            Some("203.0.113.2"),
            "{body}"
        );
        let route = lab
            .run_in(&node.ns, "ip", &["route", "get", "203.0.113.2"])
            .unwrap();
        assert!(
            route.contains(&format!("via {}", cloud.node_side_ip)),
            "{route}"
        );
    }
    // The cloud itself reaches the nodes on the lab bridge.
    let target = SocketAddr::from((lab.nodes()[0].ip, ECHO_PORT));
    let body = lab.tcp_request_from(&cloud.ns, target).await.unwrap();
    assert_eq!(
        echo_field(&body, "client_address"),
        Some(cloud.node_side_ip.to_string().as_str())
    );
    drop(servers);
    lab.teardown();
}
