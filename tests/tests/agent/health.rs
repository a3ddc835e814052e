//! The health check node port and the node health server, answered by the real agent from the
//! cluster's EndpointSlices, and `--cleanup`.

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams, PostParams};
use portico_lab::demo::objects;
use portico_tests::cli::http_get;
use portico_tests::lab_cluster::{LabCluster, wait_for};

use crate::nodes::{NodeNs, remove_leftovers};

fn v4(ip: std::net::IpAddr) -> std::net::Ipv4Addr {
    match ip {
        std::net::IpAddr::V4(v4) => v4,
        std::net::IpAddr::V6(_) => panic!("the node namespaces are IPv4"),
    }
}

/// (status, body) of a GET, or (0, error) when nothing answers.
fn probe(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get(addr, path).unwrap_or_else(|e| (0, e.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_answers_follow_the_endpoint_and_the_node_and_cleanup_keeps_foreign_rules() {
    if !portico_tests::require_root() {
        return;
    }
    remove_leftovers();
    let dir = tempfile::tempdir().unwrap();
    let mut node_a = NodeNs::create("node-a", 1, dir.path());
    let mut node_b = NodeNs::create("node-b", 2, dir.path());
    let listen = vec![
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::new(node_a.host_ip, 0),
        SocketAddr::new(node_b.host_ip, 0),
    ];
    let cluster = LabCluster::start_listening(listen).await;
    let nodes: kube::Api<Node> = kube::Api::all(cluster.client.clone());
    for node in [&node_a, &node_b] {
        nodes
            .create(
                &PostParams::default(),
                &objects::node_object(&node.name, v4(node.node_ip)),
            )
            .await
            .unwrap();
    }
    let service = cluster
        .create_service("default", &objects::echo_service("echo", "Local"))
        .await;
    let health_port = service
        .spec
        .unwrap()
        .health_check_node_port
        .expect("the API server allocates it");
    let slices: kube::Api<EndpointSlice> = kube::Api::namespaced(cluster.client.clone(), "default");
    slices
        .create(
            &PostParams::default(),
            &objects::echo_slice("echo", "node-a", "10.244.1.7".parse().unwrap()),
        )
        .await
        .unwrap();

    let kubeconfig_a = cluster.kubeconfig_via(node_a.host_ip);
    let kubeconfig_b = cluster.kubeconfig_via(node_b.host_ip);
    node_a.start_agent(&kubeconfig_a);
    node_b.start_agent(&kubeconfig_b);
    let hc = |node: &NodeNs| SocketAddr::new(node.node_ip, u16::try_from(health_port).unwrap());

    let (status, body) = wait_for(
        "node-a's health check to pass",
        Duration::from_secs(20),
        || async {
            let answer = probe(hc(&node_a), "/healthz");
            (answer.0 == 200).then_some(answer)
        },
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""localEndpoints":1"#), "{body}");
    assert!(
        body.contains(r#""service":{"namespace":"default","name":"echo"}"#),
        "{body}"
    );
    let (status, body) = wait_for(
        "node-b's health check to answer",
        Duration::from_secs(20),
        || async {
            let answer = probe(hc(&node_b), "/healthz");
            (answer.0 != 0).then_some(answer)
        },
    )
    .await;
    assert_eq!(status, 503, "no local endpoint on node-b: {body}");
    assert!(body.contains(r#""localEndpoints":0"#), "{body}");

    // The endpoint moves to node-b: both answers flip within 2 s (default min sync period 1 s).
    let patch = serde_json::json!([{ "op": "replace", "path": "/endpoints/0/nodeName", "value": "node-b" }]);
    slices
        .patch(
            "echo-x1",
            &PatchParams::default(),
            &Patch::<()>::Json(serde_json::from_value(patch).unwrap()),
        )
        .await
        .unwrap();
    wait_for(
        "the health checks to flip",
        Duration::from_secs(2),
        || async {
            (probe(hc(&node_a), "/healthz").0 == 503 && probe(hc(&node_b), "/healthz").0 == 200)
                .then_some(())
        },
    )
    .await;

    // The node health server: healthy, until the autoscaler marks node-b for deletion.
    let node_health = |node: &NodeNs, path: &str| probe(SocketAddr::new(node.node_ip, 10256), path);
    assert_eq!(node_health(&node_b, "/healthz").0, 200, "{}", node_b.logs());
    let taint = serde_json::json!({ "spec": { "taints": [{ "key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule" }] } });
    nodes
        .patch("node-b", &PatchParams::default(), &Patch::Merge(&taint))
        .await
        .unwrap();
    let (_, body) = wait_for(
        "node-b's /healthz to fail",
        Duration::from_secs(5),
        || async {
            let answer = node_health(&node_b, "/healthz");
            (answer.0 == 503).then_some(answer)
        },
    )
    .await;
    assert!(body.contains(r#""nodeEligible":false"#), "{body}");
    assert_eq!(node_health(&node_b, "/livez").0, 200, "still alive");
    assert_eq!(
        node_health(&node_a, "/healthz").0,
        200,
        "node-a is not affected"
    );

    // --cleanup removes Portico's rules and nothing else.
    node_a.stop_agent();
    let saved = String::from_utf8(node_a.exec(&["iptables-save"]).stdout).unwrap();
    assert!(
        saved.contains("PORTICO-SERVICES"),
        "the agent installed its chains"
    );
    assert!(
        node_a
            .exec(&[
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-s",
                "192.0.2.9",
                "-j",
                "ACCEPT"
            ])
            .status
            .success()
    );
    let binary = portico_tests::workspace_binary("portico-agent").unwrap();
    let cleanup = node_a.exec(&[binary.to_str().unwrap(), "--cleanup"]);
    assert!(
        cleanup.status.success(),
        "{}",
        String::from_utf8_lossy(&cleanup.stderr)
    );
    let saved = String::from_utf8(node_a.exec(&["iptables-save"]).stdout).unwrap();
    assert!(
        !saved.contains("PORTICO"),
        "every Portico chain and jump is gone:\n{saved}"
    );
    assert!(
        saved.contains("-A POSTROUTING -s 192.0.2.9/32 -j ACCEPT"),
        "the foreign rule stays:\n{saved}"
    );
    node_b.stop_agent();
}
