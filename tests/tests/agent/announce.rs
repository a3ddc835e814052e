//! The L2 announcer in `--proxy-mode off` (beside kube-proxy): the node answers ARP for its VIP
//! with its MAC, and installs no rule and binds no health check port.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use portico_api::{L2Announcement, L2AnnouncementSpec};
use portico_lab::demo::objects;
use portico_tests::lab_cluster::{LabCluster, mk_lb_service, wait_for};

use crate::nodes::{NodeNs, remove_leftovers, run};

/// The MACs that answer `count` ARP requests for `vip` sent from the host out of `link`.
fn arping(link: &str, vip: IpAddr) -> Vec<String> {
    let output = std::process::Command::new("arping")
        .args(["-i", link, "-c", "2", "-w", "3"])
        .arg(vip.to_string())
        .output()
        .expect("arping (Debian package arping) runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split(" bytes from ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_ascii_lowercase)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_mode_off_answers_arp_for_the_vip_without_rules_or_listeners() {
    if !portico_tests::require_root() {
        return;
    }
    remove_leftovers();
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeNs::create("node-l2", 11, dir.path());
    let cluster = LabCluster::start_listening(vec![
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::new(node.host_ip, 0),
    ])
    .await;
    let IpAddr::V4(node_ip) = node.node_ip else {
        unreachable!("the node namespaces are IPv4")
    };
    kube::Api::<Node>::all(cluster.client.clone())
        .create(
            &PostParams::default(),
            &objects::node_object(&node.name, node_ip),
        )
        .await
        .unwrap();
    // A VIP on the node's /24: on-link for the host, which plays the LAN client.
    let vip: IpAddr = "198.18.101.200".parse().unwrap();
    cluster
        .create_pool("l2", &["198.18.101.200/32"], true)
        .await;
    kube::Api::<L2Announcement>::all(cluster.client.clone())
        .create(
            &PostParams::default(),
            &L2Announcement::new("l2", L2AnnouncementSpec::default()),
        )
        .await
        .unwrap();
    let services = cluster.services("default");
    cluster
        .create_service("default", &mk_lb_service("web", 80, &[]))
        .await;
    // No controller here: the address is written as the controller would.
    services
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({
                "status": {"loadBalancer": {"ingress": [{"ip": vip.to_string()}]}}
            })),
        )
        .await
        .unwrap();

    let kubeconfig = cluster.kubeconfig_via(node.host_ip);
    node.start_agent_with(&kubeconfig, "127.0.0.1:9473", &["--proxy-mode", "off"]);
    let node_mac = String::from_utf8_lossy(
        &node
            .exec(&["sh", "-c", "cat /sys/class/net/pag*/address"])
            .stdout,
    )
    .trim()
    .to_ascii_lowercase();
    let host_link = run(&[
        "sh",
        "-c",
        &format!("ip -o addr show to {}/24 | cut -d' ' -f2", node.host_ip),
    ]);
    let host_link = host_link.trim().to_owned();
    let macs = wait_for(
        "the node to answer ARP for its VIP",
        Duration::from_secs(30),
        || {
            let macs = arping(&host_link, vip);
            async move { (!macs.is_empty()).then_some(macs) }
        },
    )
    .await;
    assert!(
        macs.iter().all(|mac| *mac == node_mac),
        "ARP replies from {macs:?}; only the node ({node_mac}) should answer\n{}",
        node.logs()
    );

    // Beside kube-proxy: no Portico chain, and nothing listens but the admin server.
    let rules = String::from_utf8_lossy(&node.exec(&["iptables-save"]).stdout).into_owned();
    assert!(!rules.contains("PORTICO"), "{rules}");
    let listeners = String::from_utf8_lossy(&node.exec(&["ss", "-Hltn"]).stdout).into_owned();
    let others: Vec<&str> = listeners
        .lines()
        .filter(|line| !line.contains("127.0.0.1:9473"))
        .collect();
    assert!(others.is_empty(), "listening in off mode: {others:?}");
    node.stop_agent();
}
