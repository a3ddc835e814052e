//! The source-IP table of DESIGN.md (the "Using Source IP" tutorial), with real TCP through the
//! real binaries: the lab's network-namespace cluster (a client, two nodes, a pod behind each
//! running an echo server that replies with the address it saw), portico-agent in each node
//! namespace and portico-controller allocating the LoadBalancer VIPs, all against the lab API
//! server. The client reaches each VIP through a static route to one node (no L2 announcer yet).
//!
//! The rows run twice on the same lab: with `--proxy-mode iptables`, then with the agents
//! restarted in `--proxy-mode nftables` (which also proves that switching removes the other
//! mode's rules), and `--cleanup` at the end removes both.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::PostParams;
use portico_lab::demo::objects::{self, ECHO_PORT};
use portico_lab::netns::LabTopology;
use portico_tests::lab_agent::start_agent;
use portico_tests::lab_cluster::{ingress_ips, wait_for};

use crate::two_nodes::{TwoNodeLab, seen_from, two_node_lab};

async fn wait_seen(lab: &LabTopology, ns: &str, target: SocketAddr, what: &str) -> String {
    wait_for(what, Duration::from_secs(20), || seen_from(lab, ns, target)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_source_ip_table_holds_through_the_real_agents() {
    if !portico_tests::require_root() {
        return;
    }
    let TwoNodeLab {
        lab,
        cluster,
        kubeconfig,
    } = two_node_lab("198.18.30.0/24").await;
    let (node0, node1) = (lab.nodes()[0].clone(), lab.nodes()[1].clone());
    let _echo0 = lab
        .spawn_echo_server(
            &node0.pods[0].ns,
            SocketAddr::from(([0, 0, 0, 0], ECHO_PORT)),
        )
        .unwrap();
    let _echo1 = lab
        .spawn_echo_server(
            &node1.pods[0].ns,
            SocketAddr::from(([0, 0, 0, 0], ECHO_PORT)),
        )
        .unwrap();
    cluster.create_pool("vips", &["198.19.30.0/28"], true).await;
    let _controller = cluster.spawn_controller("controller", &[]);
    let slices: kube::Api<EndpointSlice> = kube::Api::namespaced(cluster.client.clone(), "default");
    for (name, policy) in [("echo-cluster", "Cluster"), ("echo-local", "Local")] {
        cluster
            .create_service("default", &objects::echo_service(name, policy))
            .await;
        slices
            .create(
                &PostParams::default(),
                &objects::echo_slice(name, &node0.name, node0.pods[0].ip),
            )
            .await
            .unwrap();
    }
    for mode in ["iptables", "nftables"] {
        let mut agents = Vec::new();
        for node in [&node0, &node1] {
            agents.push(start_agent(&lab, node, &kubeconfig, &["--proxy-mode", mode]).unwrap());
        }

        let services = cluster.services("default");
        let cluster_svc = services.get("echo-cluster").await.unwrap();
        let local_svc = services.get("echo-local").await.unwrap();
        let cluster_ip: Ipv4Addr = cluster_svc
            .spec
            .as_ref()
            .unwrap()
            .cluster_ip
            .as_ref()
            .unwrap()
            .parse()
            .unwrap();
        let node_port = |s: &Service| {
            u16::try_from(
                s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0]
                    .node_port
                    .unwrap(),
            )
            .unwrap()
        };
        let at = |ip: Ipv4Addr, port: u16| SocketAddr::new(IpAddr::V4(ip), port);
        let client = lab.client_ns().to_owned();
        let client_ip = lab.client_ip().to_string();

        // pod → ClusterIP: the server sees the client pod's own IP (no SNAT).
        let pod1 = &node1.pods[0];
        let seen = wait_seen(&lab, &pod1.ns, at(cluster_ip, 80), "pod → ClusterIP").await;
        assert_eq!(
            seen,
            pod1.ip.to_string(),
            "pod → ClusterIP keeps the pod's IP"
        );

        // NodePort, Cluster, through the node without the endpoint: SNAT to that node's IP.
        let seen = wait_seen(
            &lab,
            &client,
            at(node1.ip, node_port(&cluster_svc)),
            "NodePort Cluster via node-1",
        )
        .await;
        assert_eq!(
            seen,
            node1.ip.to_string(),
            "Cluster policy masquerades to the forwarding node"
        );

        // NodePort, Local: the client's IP through the endpoint's node; no answer from the other.
        let seen = wait_seen(
            &lab,
            &client,
            at(node0.ip, node_port(&local_svc)),
            "NodePort Local via node-0",
        )
        .await;
        assert_eq!(seen, client_ip, "Local policy keeps the client's IP");
        assert_eq!(
            seen_from(&lab, &client, at(node1.ip, node_port(&local_svc))).await,
            None,
            "node-1 has no local endpoint"
        );

        // LoadBalancer VIPs from the controller, routed to a node: the same two behaviours.
        let vip = |name: &'static str| {
            let services = cluster.services("default");
            async move {
                wait_for(
                    &format!("a VIP for {name}"),
                    Duration::from_secs(20),
                    || async {
                        ingress_ips(&services.get(name).await.ok()?)
                            .first()?
                            .parse::<Ipv4Addr>()
                            .ok()
                    },
                )
                .await
            }
        };
        let (cluster_vip, local_vip) = (vip("echo-cluster").await, vip("echo-local").await);
        lab.route_vip_via(cluster_vip, &node1.name).unwrap();
        let seen = wait_seen(
            &lab,
            &client,
            at(cluster_vip, 80),
            "LB VIP Cluster via node-1",
        )
        .await;
        assert_eq!(
            seen,
            node1.ip.to_string(),
            "Cluster VIP: the pod sees the node's IP"
        );
        lab.route_vip_via(local_vip, &node0.name).unwrap();
        let seen = wait_seen(&lab, &client, at(local_vip, 80), "LB VIP Local via node-0").await;
        assert_eq!(seen, client_ip, "Local VIP: the pod sees the client's IP");
        lab.route_vip_via(local_vip, &node1.name).unwrap();
        assert_eq!(
            seen_from(&lab, &client, at(local_vip, 80)).await,
            None,
            "Local VIP through a node without endpoint is dropped"
        );

        // The health check node port, asked from the client as a cloud load balancer would.
        let hc = u16::try_from(
            local_svc
                .spec
                .as_ref()
                .unwrap()
                .health_check_node_port
                .unwrap(),
        )
        .unwrap();
        let on0 = lab
            .http_get_from(&client, at(node0.ip, hc), "/healthz")
            .await
            .unwrap();
        let on1 = lab
            .http_get_from(&client, at(node1.ip, hc), "/healthz")
            .await
            .unwrap();
        assert_eq!((on0.status, on1.status), (200, 503));
        assert!(on0.body.contains(r#""localEndpoints":1"#), "{}", on0.body);
        // The write counter names the backend that wrote (one metric for both modes).
        let admin = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9473);
        let metrics = lab
            .http_get_from(&node0.ns, admin, "/metrics")
            .await
            .unwrap();
        let full =
            format!("portico_agent_dataplane_writes_total{{backend=\"{mode}\",kind=\"full\"}}");
        assert!(metrics.body.contains(&full), "{mode}: {}", metrics.body);
        drop(agents);
        let in_node0 = |args: &[&str]| {
            let output = std::process::Command::new("ip")
                .args(["netns", "exec", &node0.ns])
                .args(args)
                .output()
                .unwrap();
            assert!(output.status.success(), "{args:?}: {output:?}");
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let iptables_rules = in_node0(&["iptables-save"]).contains("PORTICO-");
        let nft_table = in_node0(&["nft", "list", "tables"]).contains("portico");
        assert_eq!(
            (iptables_rules, nft_table),
            (mode == "iptables", mode == "nftables"),
            "{mode}: only that mode's rules are in place"
        );
    }
    let agent = portico_tests::workspace_binary("portico-agent").unwrap();
    let agent_path = agent.to_str().unwrap();
    let cleanup = std::process::Command::new("ip")
        .args(["netns", "exec", &node0.ns, agent_path, "--cleanup"])
        .output()
        .unwrap();
    assert!(cleanup.status.success(), "{cleanup:?}");
    let check = |args: &[&str]| {
        let output = std::process::Command::new("ip")
            .args(["netns", "exec", &node0.ns])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(
        !check(&["iptables-save"]).contains("PORTICO-"),
        "--cleanup removes the chains"
    );
    assert!(
        !check(&["nft", "list", "tables"]).contains("portico"),
        "--cleanup removes the table"
    );
    tokio::task::spawn_blocking(move || lab.teardown())
        .await
        .unwrap();
}
