//! Hairpin through the real agents: the echo pod on node-0, the only endpoint of a Cluster and
//! of a Local Service, reaches its own Service through the ClusterIP, node-0's and node-1's
//! NodePort and the VIP, and is answered every time, masqueraded as kube-proxy masquerades it:
//! to node-0's address on the pod bridge when node-0 DNATs (the packet goes back out the
//! bridge port it came in on, hairpin mode on), to node-1's address when node-1 does.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::PostParams;
use portico_lab::demo::objects::{self, ECHO_PORT};
use portico_tests::lab_agent::start_agent;
use portico_tests::lab_cluster::{ingress_ips, wait_for};

use crate::two_nodes::{TwoNodeLab, seen_from, two_node_lab};

fn spec_port(
    service: &Service,
    pick: impl Fn(&k8s_openapi::api::core::v1::ServicePort) -> Option<i32>,
) -> u16 {
    let ports = service.spec.as_ref().and_then(|spec| spec.ports.as_ref());
    u16::try_from(ports.and_then(|ports| pick(&ports[0])).expect("a port")).expect("a port number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_reaches_its_own_service_through_every_address() {
    if !portico_tests::require_root() {
        return;
    }
    let TwoNodeLab {
        lab,
        cluster,
        kubeconfig,
    } = two_node_lab("198.18.34.0/24").await;
    let (node0, node1) = (lab.nodes()[0].clone(), lab.nodes()[1].clone());
    let pod = node0.pods[0].clone();
    let _echo = lab
        .spawn_echo_server(&pod.ns, SocketAddr::from(([0, 0, 0, 0], ECHO_PORT)))
        .unwrap();
    cluster.create_pool("vips", &["198.19.34.0/28"], true).await;
    let _controller = cluster.spawn_controller("controller", &[]);
    let slices: kube::Api<EndpointSlice> = kube::Api::namespaced(cluster.client.clone(), "default");
    for (name, policy) in [("echo-cluster", "Cluster"), ("echo-local", "Local")] {
        cluster
            .create_service("default", &objects::echo_service(name, policy))
            .await;
        slices
            .create(
                &PostParams::default(),
                &objects::echo_slice(name, &node0.name, pod.ip),
            )
            .await
            .unwrap();
    }
    let mut agents = Vec::new();
    for node in [&node0, &node1] {
        agents.push(start_agent(&lab, node, &kubeconfig, &[]).unwrap());
    }

    let at = |ip: Ipv4Addr, port: u16| SocketAddr::new(IpAddr::V4(ip), port);
    let mut failures = Vec::new();
    for name in ["echo-cluster", "echo-local"] {
        let services = cluster.services("default");
        // Both agents have programmed the Service once the client gets through node-1's
        // NodePort (Cluster) or node-0's (Local), and the controller has given it a VIP.
        let service = wait_for(
            &format!("{name} with a VIP"),
            Duration::from_secs(20),
            || async {
                let service = services.get(name).await.ok()?;
                (!ingress_ips(&service).is_empty()).then_some(service)
            },
        )
        .await;
        let cluster_ip: Ipv4Addr = service
            .spec
            .as_ref()
            .unwrap()
            .cluster_ip
            .as_ref()
            .unwrap()
            .parse()
            .unwrap();
        let vip: Ipv4Addr = ingress_ips(&service)[0].parse().unwrap();
        let node_port = spec_port(&service, |port| port.node_port);
        let ready_via = if name == "echo-local" {
            node0.ip
        } else {
            node1.ip
        };
        wait_for(
            &format!("{name} programmed"),
            Duration::from_secs(20),
            || seen_from(&lab, lab.client_ns(), at(ready_via, node_port)),
        )
        .await;
        lab.route_vip_via(vip, &node0.name).unwrap();
        wait_for(
            &format!("{name}'s VIP programmed"),
            Duration::from_secs(20),
            || seen_from(&lab, lab.client_ns(), at(vip, 80)),
        )
        .await;

        let cases = [
            ("ClusterIP", at(cluster_ip, 80), node0.pod_gateway),
            (
                "node-0's NodePort",
                at(node0.ip, node_port),
                node0.pod_gateway,
            ),
            ("node-1's NodePort", at(node1.ip, node_port), node1.ip),
            ("the VIP", at(vip, 80), node0.pod_gateway),
        ];
        for (what, target, expected) in cases {
            // One retry: the first SYN after a rule change can be lost.
            let mut seen = seen_from(&lab, &pod.ns, target).await;
            if seen.is_none() {
                seen = seen_from(&lab, &pod.ns, target).await;
            }
            if seen.as_deref() != Some(expected.to_string().as_str()) {
                failures.push(format!(
                    "{name} through {what} ({target}): saw {seen:?}, expected {expected}"
                ));
            }
        }
    }
    drop(agents);
    tokio::task::spawn_blocking(move || lab.teardown())
        .await
        .unwrap();
    assert!(
        failures.is_empty(),
        "the pod reaching itself:\n{}",
        failures.join("\n")
    );
}
