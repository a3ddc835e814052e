//! The two-node lab the source-IP and hairpin tests share: network namespaces (two nodes, one
//! pod each), the lab API server reachable from the nodes through the host leg, and the Node
//! objects.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::PostParams;
use portico_lab::demo::objects;
use portico_lab::netns::echo::echo_field;
use portico_lab::netns::{LabSpec, LabTopology};
use portico_tests::lab_cluster::LabCluster;

pub struct TwoNodeLab {
    pub lab: LabTopology,
    pub cluster: LabCluster,
    /// A kubeconfig that reaches the API server from inside the node namespaces.
    pub kubeconfig: PathBuf,
}

/// Builds the lab on `node_subnet` (a /24 of its own, so tests run side by side).
pub async fn two_node_lab(node_subnet: &str) -> TwoNodeLab {
    let lab_binary = portico_tests::workspace_binary("portico-lab").expect("portico-lab is built");
    let spec = LabSpec::new(2, 1, lab_binary).with_node_subnet(node_subnet.parse().unwrap());
    let mut lab = tokio::task::spawn_blocking(move || LabTopology::create(spec))
        .await
        .unwrap()
        .expect("lab topology");
    lab.set_probe_timeout(Duration::from_secs(2));
    let host_ip = IpAddr::V4(lab.host_ip());
    let cluster = LabCluster::start_listening(vec![
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::new(host_ip, 0),
    ])
    .await;
    let kubeconfig = cluster.kubeconfig_via(host_ip);
    let nodes: kube::Api<Node> = kube::Api::all(cluster.client.clone());
    for node in lab.nodes() {
        nodes
            .create(
                &PostParams::default(),
                &objects::node_object(&node.name, node.ip),
            )
            .await
            .unwrap();
    }
    TwoNodeLab {
        lab,
        cluster,
        kubeconfig,
    }
}

/// The `client_address` the echo server reports for a request from `ns`, or None when nothing
/// answers.
pub async fn seen_from(lab: &LabTopology, ns: &str, target: SocketAddr) -> Option<String> {
    let body = lab.tcp_request_from(ns, target).await.ok()?;
    echo_field(&body, "client_address").map(str::to_owned)
}
