//! What the agent tells an operator instead of staying silent: EndpointSlice data it cannot use
//! (a warning per problem per slice version, naming the slice and the field, and a counter by
//! reason), and an API server outage (a warning per failing watch, `/readyz` 503 naming it until
//! the API server answers again).

use std::net::SocketAddr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams, PostParams};
use portico_lab::demo::objects;
use portico_tests::cuttable_proxy::CuttableProxy;
use portico_tests::lab_cluster::{LabCluster, wait_for};

use crate::nodes::{NodeNs, remove_leftovers};

/// (status, body) of a GET to the agent's admin server inside the node's namespace.
fn admin_get(node: &NodeNs, path: &str) -> (u16, String) {
    let output = node.exec(&[
        "curl",
        "-s",
        "-m",
        "5",
        "-w",
        "\n%{http_code}",
        &format!("http://127.0.0.1:9473{path}"),
    ]);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_owned())
}

fn slice(value: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(value).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_names_unusable_slice_fields_once_and_an_api_outage_on_readyz() {
    if !portico_tests::require_root() {
        return;
    }
    remove_leftovers();
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeNs::create("node-t", 7, dir.path());
    let cluster = LabCluster::start_listening(vec![
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::new(node.host_ip, 0),
    ])
    .await;
    let node_ip = match node.node_ip {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(_) => unreachable!("the node namespaces are IPv4"),
    };
    kube::Api::<Node>::all(cluster.client.clone())
        .create(
            &PostParams::default(),
            &objects::node_object(&node.name, node_ip),
        )
        .await
        .unwrap();
    cluster
        .create_service("default", &objects::echo_service("echo", "Cluster"))
        .await;
    let slices: kube::Api<EndpointSlice> = kube::Api::namespaced(cluster.client.clone(), "default");
    let labels = serde_json::json!({"kubernetes.io/service-name": "echo"});
    for bad in [
        serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "echo-bad", "namespace": "default", "labels": labels},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["10.244.7.7"], "conditions": {"ready": true}},
                {"addresses": ["10.244.7.8"], "nodeName": "node-t"},
                {"addresses": ["10.244.7.8"], "nodeName": "node-t"},
            ],
            "ports": [{"name": "tcp", "protocol": "TCP"}],
        }),
        serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "echo-fqdn", "namespace": "default", "labels": labels},
            "addressType": "FQDN",
            "endpoints": [{"addresses": ["echo.example.com"]}],
            "ports": [{"name": "tcp", "port": 8080, "protocol": "TCP"}],
        }),
    ] {
        slices
            .create(&PostParams::default(), &slice(bad))
            .await
            .unwrap();
    }

    let upstream: SocketAddr = cluster
        .server
        .urls()
        .iter()
        .find_map(|url| {
            url.trim_start_matches("https://")
                .parse::<SocketAddr>()
                .ok()
                .filter(|addr| addr.ip() == node.host_ip)
        })
        .expect("the lab API server listens on the node's host side");
    let proxy = CuttableProxy::start(node.host_ip, upstream).await;
    let kubeconfig = dir.path().join("kubeconfig-via-proxy");
    std::fs::write(
        &kubeconfig,
        cluster
            .server
            .kubeconfig_for(&format!("https://{}", proxy.addr)),
    )
    .unwrap();
    node.start_agent(&kubeconfig);

    let expected = [
        "EndpointSlice default/echo-bad: ports[0].port",
        "EndpointSlice default/echo-bad: endpoints[0].nodeName",
        "EndpointSlice default/echo-bad: endpoints[2].addresses[0]",
        "EndpointSlice default/echo-fqdn: addressType",
    ];
    wait_for(
        "the agent to name every unusable field",
        Duration::from_secs(30),
        || async {
            let logs = node.logs();
            expected
                .iter()
                .all(|line| logs.contains(line))
                .then_some(())
        },
    )
    .await;
    wait_for("the agent to be ready", Duration::from_secs(30), || async {
        (admin_get(&node, "/readyz").0 == 200).then_some(())
    })
    .await;
    let (_, metrics) = admin_get(&node, "/metrics");
    for (reason, count) in [
        ("missing_port", 1),
        ("missing_node_name", 1),
        ("duplicate_endpoint", 1),
        ("fqdn", 1),
    ] {
        let line =
            format!("portico_agent_endpoint_slice_problems_total{{reason=\"{reason}\"}} {count}");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }

    // Another sync with the same slices says nothing new.
    let syncs = |logs: &str| logs.matches("dataplane sync").count();
    let before = syncs(&node.logs());
    let touch = serde_json::json!({"metadata": {"annotations": {"touched": "1"}}});
    cluster
        .services("default")
        .patch("echo", &PatchParams::default(), &Patch::Merge(&touch))
        .await
        .unwrap();
    wait_for(
        "another dataplane sync",
        Duration::from_secs(30),
        || async { (syncs(&node.logs()) > before).then_some(()) },
    )
    .await;
    let logs = node.logs();
    for line in expected {
        assert_eq!(logs.matches(line).count(), 1, "{line} once:\n{logs}");
    }

    proxy.cut();
    let (_, body) = wait_for(
        "/readyz to answer 503 naming the failing watches",
        Duration::from_secs(30),
        || async {
            let answer = admin_get(&node, "/readyz");
            (answer.0 == 503 && answer.1.contains("watch of EndpointSlice failing"))
                .then_some(answer)
        },
    )
    .await;
    assert!(body.contains("watch of Service failing"), "{body}");
    wait_for(
        "a warning naming the failing EndpointSlice watch",
        Duration::from_secs(30),
        || async {
            node.logs()
                .contains("the watch of EndpointSlice is failing")
                .then_some(())
        },
    )
    .await;
    proxy.restore();
    wait_for(
        "/readyz to answer 200 after the outage",
        Duration::from_secs(60),
        || async { (admin_get(&node, "/readyz").0 == 200).then_some(()) },
    )
    .await;
    assert!(
        node.logs()
            .contains("the watch of EndpointSlice works again"),
        "{}",
        node.logs()
    );
    node.stop_agent();
}
